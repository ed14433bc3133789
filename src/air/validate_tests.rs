use super::*;
use crate::air::load::load_path;
use crate::air::testworld;

fn fixture(name: &str) -> Result<Validated, Vec<Diagnostic>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/air")
        .join(name);
    let nodes = load_path(&dir).into_result().expect("fixture loads");
    validate(nodes)
}

fn show(ds: &[Diagnostic]) -> String {
    ds.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn fixtures_validate() {
    for f in ["counter", "fetch-notify"] {
        if let Err(ds) = fixture(f) {
            panic!("{f}:\n{}", show(&ds));
        }
    }
}

#[test]
fn test_world_validates() {
    let files = testworld::files();
    let nodes = testworld::load(&files);
    if let Err(ds) = validate_with(nodes, &testworld::source(&files)) {
        panic!("{}", show(&ds));
    }
}
