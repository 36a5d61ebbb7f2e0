// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Build script: links with `link.x` and turns `platform.toml`'s console
//! entry and its devices into constants (`$OUT_DIR/platform.rs`), through
//! `hv-manifest`'s platform reader, the one the manifest compiler and
//! `cargo xtask` use too (`Platform::build_script`).

fn main() {
    hv_manifest::platform::Platform::build_script();
}
