//! `schema.graphql` is what `orchestrator schema` prints; this fails when they drift.

#[test]
fn checked_in_schema_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema.graphql");
    let current = orchestrator_api::sdl();
    if std::env::var("UPDATE_SCHEMA").is_ok_and(|v| v == "1") {
        std::fs::write(path, &current).unwrap();
    }
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        checked_in == current,
        "schema.graphql is out of date; regenerate it with `cargo run -q -- schema > schema.graphql` (or UPDATE_SCHEMA=1 cargo test -p orchestrator-tests --test schema_snapshot)"
    );
}
