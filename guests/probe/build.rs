// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Build script: links the probe with `link.x` (an arm64 `Image` linked at 0
//! as a position-independent executable). Reads no environment variables.

use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    println!("cargo:rerun-if-changed=link.x");
    println!(
        "cargo:rustc-link-arg-bins=-T{}",
        dir.join("link.x").display()
    );
}
