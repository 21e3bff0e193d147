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

/// docs/testing.md names every fuzz target fuzz/Cargo.toml declares, and
/// each target has a check here (so its crashes can be replayed).
#[test]
fn every_fuzz_target_is_documented_and_checked() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("fuzz/Cargo.toml")).unwrap();
    let docs = std::fs::read_to_string(root.join("docs/testing.md")).unwrap();
    let fuzzing = &docs[docs.find("# Fuzzing").expect("a Fuzzing section")..];
    let mut targets = Vec::new();
    let mut in_bin = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if let Some(name) = line.strip_prefix("name = ").filter(|_| in_bin) {
            targets.push(name.trim_matches('"').to_owned());
        }
    }
    assert!(targets.len() >= 12, "only {targets:?} in fuzz/Cargo.toml");
    for target in &targets {
        assert!(
            fuzzing.contains(&format!("`{target}`")),
            "docs/testing.md does not name the fuzz target {target}"
        );
        assert!(checks::by_name(target).is_some(), "no check for {target}");
    }
    let files = std::fs::read_dir(root.join("fuzz/fuzz_targets"))
        .unwrap()
        .count();
    assert_eq!(
        files,
        targets.len(),
        "a file in fuzz/fuzz_targets without a [[bin]]"
    );
}
