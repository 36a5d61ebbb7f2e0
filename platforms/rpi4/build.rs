// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Build script: links with `link.x` and turns `platform.toml`'s console
//! entry and its devices into constants (`$OUT_DIR/platform.rs`), so the
//! address is written down once. The file is read and checked by
//! `hv-manifest`'s platform reader, the one the manifest compiler and
//! `cargo xtask` use too; a mistake in it fails the build with the file, line
//! and key. Reads no environment variables.

use std::fmt::Write as _;
use std::path::PathBuf;

use hv_manifest::platform::Platform;

fn main() {
    let dir = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    println!("cargo:rerun-if-changed=link.x");
    println!("cargo:rerun-if-changed=platform.toml");
    println!(
        "cargo:rustc-link-arg-bins=-T{}",
        dir.join("link.x").display()
    );

    let platform = Platform::read(&dir.join("platform.toml")).unwrap_or_else(|errors| {
        eprint!("{errors}");
        std::process::exit(1);
    });
    let Some(console) = &platform.console else {
        eprintln!(
            "error: {}: no `[console]`: the kernel needs a UART to print through",
            platform.file
        );
        std::process::exit(1);
    };
    let mut out = format!(
        "/// The console UART's registers (platform.toml `[console]`).\n\
         const CONSOLE_BASE: u64 = {:#x};\n\
         /// The size of the console UART's register block.\n\
         const CONSOLE_SIZE: u64 = {:#x};\n\
         /// The console UART's interrupt.\n\
         const CONSOLE_INTID: u32 = {};\n",
        console.span.base, console.span.size, console.intid,
    );
    // The devices partitions may own: the kernel refuses a boot package
    // that gives any other (hv_core::devices).
    out.push_str(
        "/// The devices partitions may own (platform.toml `[devices]`).\n\
         const DEVICES: &[hv_core::devices::Peripheral] = &[\n",
    );
    for device in &platform.devices {
        let irqs: Vec<String> = device.irqs.iter().map(u32::to_string).collect();
        let _ = writeln!(
            out,
            "    // {}\n    hv_core::devices::Peripheral {{ base: {:#x}, size: {:#x}, irqs: &[{}] }},",
            device.name,
            device.span.base,
            device.span.size,
            irqs.join(", ")
        );
    }
    out.push_str("];\n");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out_dir.join("platform.rs"), out).expect("OUT_DIR is writable");
}
