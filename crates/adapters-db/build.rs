//! Rebuild when a migration changes: `embed_migrations!` reads the SQL at compile time and
//! cargo does not track those files by itself (diesel issue #3119).

fn main() {
    println!("cargo:rerun-if-changed=../../migrations/sqlite");
    println!("cargo:rerun-if-changed=../../migrations/postgres");
}
