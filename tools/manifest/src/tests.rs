// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Unit tests of the compiler's API. The golden files in `tests/manifests/`
//! (run by `tests/golden.rs`) cover the checks one by one.

use std::path::{Path, PathBuf};

use hv_abi::hypercall::Rights;
use hv_image::{MappingKind, Object, RAM_IPA};

use crate::{Environment, compile, compile_source};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn environment() -> Environment {
    let programs = ["console", "hello", "uart-pl011"];
    Environment::new(&root(), programs.iter().map(|p| (*p).to_owned()).collect())
}

#[test]
fn the_shipped_demo_compiles() {
    let compiled = compile(&root().join("systems/demo.toml"), &root()).unwrap();
    assert_eq!(compiled.manifest.system.as_str(), "demo");
    assert_eq!(compiled.manifest.platform.as_str(), "qemu-virt");
    assert_eq!(compiled.slots.len(), compiled.manifest.partitions.len());
    assert!(compiled.report.starts_with("system demo on qemu-virt: "));
    // Programs' bytes do not matter to the package format: stand-ins do.
    let programs: Vec<&[u8]> = compiled.programs.iter().map(|_| &b"program"[..]).collect();
    let package = compiled.package(&programs).unwrap();
    assert_eq!(
        hv_image::Package::parse(&package).unwrap().manifest(),
        Ok(compiled.manifest)
    );
}

#[test]
fn an_unreadable_file_is_one_error_without_a_position() {
    let errors = compile(Path::new("no/such/system.toml"), &root()).unwrap_err();
    assert_eq!(errors.len(), 1);
    let text = errors.to_string();
    assert!(
        text.starts_with("error: no/such/system.toml: cannot read the manifest: "),
        "{text}"
    );
    assert!(text.ends_with("\n  help: check the path\n"), "{text}");
}

#[test]
fn programs_are_the_services_with_a_main() {
    let dir = std::env::temp_dir().join(format!("hv-manifest-test-{}", std::process::id()));
    // A program has a Cargo.toml and a main.rs; a library (like svc-rt) or
    // a stray folder is not one.
    for (service, files) in [
        ("console", &["Cargo.toml", "src/main.rs"][..]),
        ("hello", &["Cargo.toml", "src/main.rs"]),
        ("rt", &["Cargo.toml", "src/lib.rs"]),
        ("notes", &["src/main.rs"]),
    ] {
        let folder = dir.join("services").join(service);
        std::fs::create_dir_all(folder.join("src")).unwrap();
        for file in files {
            std::fs::write(folder.join(file), "").unwrap();
        }
    }
    let environment = Environment::from_workspace(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(environment.programs(), ["console", "hello"]);
}

#[test]
fn slots_name_every_capability_in_table_order() {
    let source = r#"
[system]
name = "pair"
platform = "qemu-virt"

[partitions.driver]
program = "uart-pl011"
memory = "64K"
devices = ["uart0"]
irqs = { uart0 = "irq" }

[partitions.client]
program = "hello"
memory = "64K"

[[channels]]
name = "irq"
kind = "notification"
waiter = "driver"

[[channels]]
name = "bytes"
kind = "endpoint"
server = "driver"
clients = ["client"]

[[channels]]
name = "window"
kind = "shared-memory"
size = "8K"
writers = ["client"]
readers = ["driver"]
"#;
    let compiled = compile_source("pair.toml", source, &environment()).unwrap();
    let slot = |name: &str, slot: u32| (name.to_owned(), slot);
    assert_eq!(
        compiled.slots,
        [
            (
                "driver".to_owned(),
                vec![
                    slot("irq", 0),
                    slot("bytes", 1),
                    slot("window", 2),
                    slot("uart0", 3)
                ]
            ),
            (
                "client".to_owned(),
                vec![slot("bytes", 0), slot("window", 1)]
            ),
        ]
    );
    assert_eq!(compiled.programs, ["uart-pl011", "hello"]);
    let driver = &compiled.manifest.partitions[0];
    assert_eq!(driver.ram_ipa, RAM_IPA);
    assert_eq!(driver.caps[3].object, Object::Device(0));
    assert_eq!(driver.mappings[0].kind, MappingKind::Device { device: 0 });
    assert_eq!(driver.mappings[0].ipa, 0x0900_0000);
    assert_eq!(driver.mappings[1].kind, MappingKind::Shared { region: 0 });
    assert_eq!(driver.mappings[1].rights, Rights::READ);
    let client = &compiled.manifest.partitions[1];
    assert_eq!(client.caps[0].badge.0, 1);
    assert_eq!(client.caps[0].rights, Rights::WRITE);
    assert_eq!(compiled.manifest.irqs[0].intid, 33);
    assert_eq!(compiled.manifest.irqs[0].badge.0, 1);
}

#[test]
fn controlled_partitions_become_named_partition_capabilities_last() {
    let source = r#"
[system]
name = "watched"
platform = "qemu-virt"
kernel-log = { partition = "monitor", notification = "events" }

[partitions.worker]
program = "hello"
memory = "64K"

[partitions.monitor]
program = "console"
memory = "64K"
controls = ["worker"]

[[channels]]
name = "events"
kind = "notification"
waiter = "monitor"
signallers = ["worker"]
"#;
    let compiled = compile_source("watched.toml", source, &environment()).unwrap();
    let (name, slots) = &compiled.slots[1];
    assert_eq!(name, "monitor");
    assert_eq!(
        slots,
        &[
            ("events".to_owned(), 0),
            ("kernel-log".to_owned(), 1),
            ("worker".to_owned(), 2)
        ]
    );
    let cap = compiled.manifest.partitions[1].caps[2];
    assert_eq!(cap.object, Object::Partition(0));
    assert_eq!(cap.rights, Rights::READ.union(Rights::CONTROL));
    assert_eq!(cap.badge.0, 0);
    // The worker gets nothing over the monitor.
    assert!(
        compiled.manifest.partitions[0]
            .caps
            .iter()
            .all(|c| !matches!(c.object, Object::Partition(_)))
    );
}

#[test]
fn diagnostics_render_as_blocks() {
    let source = "[system]\nname = \"t\"\nplatform = \"qemu-virt\"\n\n[partitions.console]\nprogram = \"console\"\nmemory = \"12K\"\n";
    let errors = compile_source("systems/bad.toml", source, &environment());
    let source = source.replace("12K", "13K");
    let second = compile_source("systems/bad.toml", &source, &environment());
    assert!(errors.is_ok(), "12K is three pages");
    assert_eq!(
        second.unwrap_err().to_string(),
        "error: systems/bad.toml:7:10: partitions.console.memory: `13K` is not a multiple of the 4 KiB page size\n  help: use a multiple of 4K, e.g. `16K`\n"
    );
}
