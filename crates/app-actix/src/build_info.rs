//! What this binary is: its version, the commit it was built from and the day it was built,
//! as set by `build.rs`. `onboarding --version` prints them, and the metric
//! `onboarding_build_info` carries them as labels.

/// The crate's version, e.g. `0.1.0`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The short commit hash, with `-dirty` when tracked files had changes, or `unknown` when the
/// build had no git repository.
pub const COMMIT: &str = env!("ONBOARDING_GIT_COMMIT");

/// The build's day, UTC, `YYYY-MM-DD` (`SOURCE_DATE_EPOCH`'s when set).
pub const BUILD_DATE: &str = env!("ONBOARDING_BUILD_DATE");

/// What `onboarding --version` prints after the name: `0.1.0 (a1b2c3d 2026-12-04)`.
pub const VERSION_LINE: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("ONBOARDING_GIT_COMMIT"),
    " ",
    env!("ONBOARDING_BUILD_DATE"),
    ")"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_line_is_made_of_the_parts() {
        assert_eq!(VERSION_LINE, format!("{VERSION} ({COMMIT} {BUILD_DATE})"));
        assert!(!COMMIT.is_empty() && !COMMIT.contains(' '), "{COMMIT}");
    }
}
