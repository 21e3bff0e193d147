//! Every input a fuzzer once crashed on, kept in `fuzz/regressions/<target>/`,
//! replayed through the same invariant checks the fuzz target runs.

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::Path;

#[test]
fn crashing_inputs_stay_fixed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut replayed = 0;
    for dir in std::fs::read_dir(&root).expect("fuzz/regressions") {
        let dir = dir.unwrap().path();
        let target = dir.file_name().unwrap().to_string_lossy().into_owned();
        let check = checks::by_name(&target)
            .unwrap_or_else(|| panic!("{}: no fuzz target of that name", dir.display()));
        for input in std::fs::read_dir(&dir).unwrap() {
            let input = input.unwrap().path();
            let bytes = std::fs::read(&input).unwrap();
            let outcome = std::panic::catch_unwind(|| check(&bytes));
            assert!(outcome.is_ok(), "{} fails again", input.display());
            replayed += 1;
        }
    }
    assert!(
        replayed > 0,
        "no regression inputs under {}",
        root.display()
    );
}
