//! Builds the crate again when a migration is added or changed:
//! `sqlx::migrate!` embeds the migration files, and cargo watches no folder
//! unless told to (a new migration was left out of a build otherwise).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
