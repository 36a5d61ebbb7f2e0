// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Build script: links with `link.x` and turns `platform.toml`'s console
//! entry and its devices into constants (`$OUT_DIR/platform.rs`), so the address is written
//! down once. Reads no environment variables.

use std::path::PathBuf;

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

    let text =
        std::fs::read_to_string(dir.join("platform.toml")).expect("platform.toml is readable");
    let table: toml::Table = text.parse().expect("platform.toml is valid TOML");
    let console = table["console"]
        .as_table()
        .expect("platform.toml has a [console] table");
    let field = |key: &str| {
        console[key]
            .as_integer()
            .unwrap_or_else(|| panic!("[console] {key} is an integer"))
    };
    let out = format!(
        "/// The console UART's registers (platform.toml `[console]`).\n\
         const CONSOLE_BASE: u64 = {:#x};\n\
         /// The size of the console UART's register block.\n\
         const CONSOLE_SIZE: u64 = {:#x};\n\
         /// The console UART's interrupt.\n\
         const CONSOLE_INTID: u32 = {};\n",
        field("base"),
        field("size"),
        field("intid"),
    );
    // The devices partitions may own: the kernel refuses a boot package
    // that gives any other (hv_core::devices).
    let mut out = out;
    out.push_str(
        "/// The devices partitions may own (platform.toml `[devices]`).\n\
         const DEVICES: &[hv_core::devices::Peripheral] = &[\n",
    );
    let devices = table
        .get("devices")
        .and_then(toml::Value::as_table)
        .cloned()
        .unwrap_or_default();
    for (name, device) in &devices {
        let integer = |key: &str| {
            device[key]
                .as_integer()
                .unwrap_or_else(|| panic!("[devices.{name}] {key} is an integer"))
        };
        let irqs: Vec<String> = device
            .get("irqs")
            .and_then(toml::Value::as_array)
            .map(|irqs| {
                irqs.iter()
                    .map(|i| {
                        i.as_integer()
                            .unwrap_or_else(|| panic!("[devices.{name}] irqs are integers"))
                            .to_string()
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push_str(&format!(
            "    // {name}\n    hv_core::devices::Peripheral {{ base: {:#x}, size: {:#x}, irqs: &[{}] }},\n",
            integer("base"),
            integer("size"),
            irqs.join(", ")
        ));
    }
    out.push_str("];\n");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out_dir.join("platform.rs"), out).expect("OUT_DIR is writable");
}
