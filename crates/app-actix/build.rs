//! Build information for `onboarding --version` and the `onboarding_build_info` metric:
//! `ONBOARDING_GIT_COMMIT` (the short commit hash, `-dirty` when tracked files had changes, or
//! `unknown` without git or a repository) and `ONBOARDING_BUILD_DATE` (UTC, `YYYY-MM-DD`;
//! `SOURCE_DATE_EPOCH` wins when set, for reproducible builds).
//!
//! vergen runs git and reruns this script only when `.git/HEAD`, the ref it points to, this
//! file or `SOURCE_DATE_EPOCH` changes, so an ordinary rebuild does not run git or recompile
//! the crate. The flip side: `-dirty` and the date are those of the last run, i.e. of the last
//! commit or checkout seen by the build, not of every edit since.

use std::env;
use std::error::Error;

use vergen_gitcl::{Build, Emitter, Gitcl};

/// What vergen puts in a value it could not compute in idempotent mode.
const VERGEN_PLACEHOLDER: &str = "VERGEN_IDEMPOTENT_OUTPUT";

fn main() -> Result<(), Box<dyn Error>> {
    let build = Build::builder().build_date(true).build();
    // Short hash; dirty counts tracked files only, as `git describe --dirty` does.
    let git = Gitcl::builder().sha(true).dirty(false).build();
    // Without git or a repository (a source archive) vergen leaves the git variables unset;
    // `quiet` keeps that from becoming a cargo warning on every such build: the version then
    // says `unknown`, which is the whole story.
    Emitter::default()
        .quiet()
        .add_instructions(&build)?
        .add_instructions(&git)?
        .emit_and_set()?;

    let known = |name: &str| env::var(name).ok().filter(|v| v != VERGEN_PLACEHOLDER);
    let commit = match (known("VERGEN_GIT_SHA"), known("VERGEN_GIT_DIRTY")) {
        (Some(sha), Some(dirty)) if dirty == "true" => format!("{sha}-dirty"),
        (Some(sha), _) => sha,
        (None, _) => "unknown".to_owned(),
    };
    let date = known("VERGEN_BUILD_DATE").unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=ONBOARDING_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=ONBOARDING_BUILD_DATE={date}");
    Ok(())
}
