// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Every input kept for a fuzz target replays through it on stable: the
//! corpus (`fuzz/corpus/<target>/`, what libFuzzer found interesting) and
//! the regressions (`fuzz/regressions/<target>/`, every crash it found,
//! kept after the fix).

use std::fs;
use std::path::Path;

/// The inputs kept in `folder`, by file name.
fn inputs(folder: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut inputs: Vec<_> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let bytes = fs::read(e.path()).unwrap_or_else(|err| panic!("{name}: {err}"));
            (name, bytes)
        })
        .collect();
    inputs.sort();
    inputs
}

#[test]
fn every_kept_input_replays() {
    let root = hv_fuzz::workspace_root().join("fuzz");
    let mut replayed = 0;
    for (name, target) in hv_fuzz::TARGETS {
        let corpus = inputs(&root.join("corpus").join(name));
        assert!(!corpus.is_empty(), "fuzz/corpus/{name} holds no input");
        for kind in ["corpus", "regressions"] {
            for (file, bytes) in inputs(&root.join(kind).join(name)) {
                let outcome = std::panic::catch_unwind(|| target(&bytes));
                assert!(outcome.is_ok(), "fuzz/{kind}/{name}/{file} fails");
                replayed += 1;
            }
        }
    }
    println!("{replayed} inputs replayed");
}

#[test]
fn every_target_has_a_libfuzzer_binary() {
    let targets = hv_fuzz::workspace_root().join("fuzz/libfuzzer/fuzz_targets");
    for (name, _) in hv_fuzz::TARGETS {
        let file = targets.join(format!("{name}.rs"));
        let text = fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(
            text.contains(&format!("hv_fuzz::{name}(")),
            "{} does not call hv_fuzz::{name}",
            file.display()
        );
    }
}
