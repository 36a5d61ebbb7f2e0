// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Build script: writes one `#[test]` per golden manifest in
//! `tests/manifests/ok/*.toml` and `tests/manifests/err/*.toml` into
//! `$OUT_DIR/golden_cases.rs`, which `tests/golden.rs` includes, so a new
//! fixture file is a new test without touching any list. Reads no
//! environment variables besides Cargo's `CARGO_MANIFEST_DIR` and `OUT_DIR`.

use std::fmt::Write;
use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let fixtures = dir.join("../../tests/manifests");
    let mut out = String::new();
    for kind in ["ok", "err"] {
        let folder = fixtures.join(kind);
        println!("cargo:rerun-if-changed={}", folder.display());
        let mut names: Vec<String> = std::fs::read_dir(&folder)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                name.strip_suffix(".toml").map(str::to_owned)
            })
            .collect();
        names.sort();
        for name in names {
            let function: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '_'
                    }
                })
                .collect();
            writeln!(
                out,
                "#[test]\nfn {kind}_{function}() {{\n    golden({kind:?}, {name:?});\n}}\n"
            )
            .expect("writing to a String");
        }
    }
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out_dir.join("golden_cases.rs"), out).expect("OUT_DIR is writable");
}
