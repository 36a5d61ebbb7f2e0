// SPDX-License-Identifier: Apache-2.0 OR MIT
//! One manifest, two boards: `Environment::with_board` builds a system for
//! another platform than its `[system] platform` names, with that board's
//! devices under the same names.

use std::path::{Path, PathBuf};

use hv_manifest::{Environment, compile_with};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn uart0(environment: &Environment) -> (String, u64, u64) {
    let compiled = compile_with(&root().join("systems/demo.toml"), environment)
        .unwrap_or_else(|d| panic!("{d}"));
    let device = compiled
        .manifest
        .devices
        .iter()
        .find(|d| d.name.as_str() == "uart0")
        .expect("the demo gives uart0 to its driver");
    (
        compiled.manifest.platform.to_string(),
        device.pa,
        device.size,
    )
}

#[test]
fn the_demo_builds_for_either_board() {
    let workspace = Environment::from_workspace(&root());
    assert_eq!(
        uart0(&workspace),
        ("qemu-virt".to_owned(), 0x0900_0000, 0x1000)
    );
    assert_eq!(
        uart0(&workspace.with_board("rpi4")),
        ("rpi4".to_owned(), 0xfe20_1000, 0x1000)
    );
}
