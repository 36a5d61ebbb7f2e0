// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Unit tests of the compiler's API. The golden files in `tests/manifests/`
//! (run by `tests/golden.rs`) cover the checks one by one.

use std::path::{Path, PathBuf};

use hv_abi::hypercall::Rights;
use hv_image::{MappingKind, Object, Owners, RAM_IPA};

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
    let package = compiled.package(&programs, &[]).unwrap();
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
fn programs_are_the_services_and_test_partitions_with_a_main() {
    let dir = std::env::temp_dir().join(format!("hv-manifest-test-{}", std::process::id()));
    // A program has a Cargo.toml and a main.rs; a library (like svc-rt) or
    // a stray folder is not one. Programs come from services/ and
    // tests/partitions/.
    for (folder, files) in [
        ("services/console", &["Cargo.toml", "src/main.rs"][..]),
        ("services/hello", &["Cargo.toml", "src/main.rs"]),
        ("services/rt", &["Cargo.toml", "src/lib.rs"]),
        ("services/notes", &["src/main.rs"]),
        ("tests/partitions/spin", &["Cargo.toml", "src/main.rs"]),
        ("tests/partitions/hello", &["Cargo.toml", "src/main.rs"]),
    ] {
        let folder = dir.join(folder);
        std::fs::create_dir_all(folder.join("src")).unwrap();
        for file in files {
            std::fs::write(folder.join(file), "").unwrap();
        }
    }
    let environment = Environment::from_workspace(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(environment.programs(), ["console", "hello", "spin"]);
    assert_eq!(
        environment.program_folders("spin"),
        [Path::new("tests/partitions/spin")]
    );
    assert_eq!(
        environment.program_folders("hello"),
        [
            Path::new("services/hello"),
            Path::new("tests/partitions/hello")
        ]
    );
    // A manifest that names a program in both places is told so.
    let source = "[system]\nname = \"twice\"\nplatform = \"qemu-virt\"\n\n\
                  [partitions.a]\nprogram = \"hello\"\nmemory = \"64K\"\n\n\
                  [partitions.b]\nprogram = \"spin\"\nmemory = \"64K\"\n";
    let environment = Environment::new(&root(), vec!["hello".to_owned()])
        .with_program("hello", Path::new("tests/partitions/hello"))
        .with_program("spin", Path::new("tests/partitions/spin"));
    let errors = compile_source("twice.toml", source, &environment).unwrap_err();
    assert_eq!(
        errors.to_string(),
        "error: twice.toml:6:11: partitions.a.program: program `hello` is in two places: \
         `services/hello/` and `tests/partitions/hello/`\n  help: a program is named by its \
         folder, so the name must be unique across services/ and tests/partitions/: rename one \
         (its folder and its package `svc-hello`)\n"
    );
    let compiled = compile_source(
        "once.toml",
        &source.replace("\"hello\"", "\"spin\""),
        &environment,
    )
    .unwrap();
    assert!(
        compiled
            .report
            .contains("  0  spin (tests/partitions/spin): a, b\n"),
        "{}",
        compiled.report
    );
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
devices = ["rtc0"]
irqs = { rtc0 = "irq" }

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
                    slot("rtc0", 3)
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
    assert_eq!(driver.mappings[0].ipa, 0x0901_0000);
    assert_eq!(driver.mappings[1].kind, MappingKind::Shared { region: 0 });
    assert_eq!(driver.mappings[1].rights, Rights::READ);
    let client = &compiled.manifest.partitions[1];
    assert_eq!(client.caps[0].badge.0, 1);
    assert_eq!(client.caps[0].rights, Rights::WRITE);
    assert_eq!(compiled.manifest.irqs[0].intid, 34);
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
fn a_fault_notification_takes_bits_past_the_kernel_log_and_signallers() {
    let source = r#"
[system]
name = "watched"
platform = "qemu-virt"
kernel-log = { partition = "monitor", notification = "events" }

[partitions.worker]
program = "hello"
memory = "64K"

[partitions.other]
program = "hello"
memory = "64K"

[partitions.monitor]
program = "console"
memory = "64K"
controls = ["other", "worker"]
fault-notification = "events"

[[channels]]
name = "events"
kind = "notification"
waiter = "monitor"
signallers = ["worker"]
"#;
    let compiled = compile_source("watched.toml", source, &environment()).unwrap();
    // The worker signals bit 0, the kernel log takes bit 1; the monitor's
    // partitions, in `controls` order, bits 2 and 3.
    assert_eq!(compiled.manifest.kernel_log.unwrap().badge.0, 0b10);
    let signal = |partition, badge| hv_image::FaultSignal {
        partition,
        controller: 2,
        notification: 0,
        badge: hv_abi::hypercall::Badge(badge),
    };
    assert_eq!(
        compiled.manifest.fault_signals.as_slice(),
        &[signal(1, 0b100), signal(0, 0b1000)]
    );
}

#[test]
fn settings_become_build_text_and_programs_of_their_own() {
    let source = r#"
[system]
name = "settings"
platform = "qemu-virt"

[partitions.first]
program = "hello"
memory = "64K"
settings = { restarts = -3, quiet = false, poll = "10ms", address = 0x0a00_0000 }

[partitions.second]
program = "hello"
memory = "64K"

[partitions.third]
program = "hello"
memory = "64K"

[partitions.fourth]
program = "hello"
memory = "64K"
settings = { restarts = 3 }
"#;
    let compiled = compile_source("settings.toml", source, &environment()).unwrap();
    let text = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    assert_eq!(
        compiled.settings,
        [
            text(&[
                ("restarts", "-3"),
                ("quiet", "false"),
                ("poll", "10ms"),
                ("address", "167772160"),
            ]),
            Vec::new(),
            Vec::new(),
            text(&[("restarts", "3")]),
        ]
    );
    // Those with settings are built apart; the others share one build.
    assert_eq!(compiled.programs, ["hello", "hello", "hello"]);
    let programs: Vec<u8> = compiled
        .manifest
        .partitions
        .iter()
        .filter_map(hv_image::PartitionSpec::program)
        .collect();
    assert_eq!(programs, [0, 1, 1, 2]);
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

/// A system with one guest, its monitor and a service, for the tests below.
const GUEST_SYSTEM: &str = r#"
[system]
name = "guest"
platform = "qemu-virt"

[partitions.hello]
program = "hello"
memory = "64K"

[partitions.linux]
kind = "vm"
monitor = "linux-vmm"
memory = "64M"
vcpus = 2
kernel = "Image"
initrd = "none"
bootargs = "console=ttyAMA0 quiet"

[partitions.linux-vmm]
program = "vmm"
memory = "1M"
vcpus = 2

[partitions.other]
kind = "vm"
monitor = "other-vmm"
memory = "64M"

[partitions.other-vmm]
program = "vmm"
memory = "1M"

[[channels]]
name = "hello"
kind = "endpoint"
server = "hello"
clients = ["linux-vmm", "linux"]

[[channels]]
name = "ring"
kind = "shared-memory"
size = "12K"
writers = ["hello", "linux-vmm"]
"#;

/// A folder of its own under the system's temporary folder.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hv-manifest-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn guests_get_monitors_files_and_a_layout() {
    let dir = scratch("guests");
    std::fs::write(dir.join("system.toml"), GUEST_SYSTEM).unwrap();
    std::fs::write(dir.join("Image"), [0x5a; 5000]).unwrap();
    let (debian_kernel, debian_initrd) = (dir.join("debian-Image"), dir.join("debian-initrd"));
    std::fs::write(&debian_kernel, [1; 9000]).unwrap();
    std::fs::write(&debian_initrd, [2; 100]).unwrap();
    let programs = ["hello", "vmm"].map(str::to_owned).to_vec();
    let environment = Environment::new(&root(), programs)
        .with_default_guest(debian_kernel.clone(), debian_initrd.clone());
    let compiled = crate::compile_with(&dir.join("system.toml"), &environment).unwrap();

    // Each monitor has a program of its own; guests have none.
    assert_eq!(compiled.programs, ["hello", "vmm", "vmm"]);
    let partitions = &compiled.manifest.partitions;
    assert_eq!(partitions[2].program(), Some(1));
    assert_eq!(partitions[4].program(), Some(2));
    assert_eq!(partitions[1].program(), None);
    // Exit endpoints follow the channels' endpoint, in partition order.
    assert_eq!(compiled.manifest.endpoint_count, 3);
    let linux = partitions[1].vm().copied().unwrap();
    assert_eq!((linux.monitor, linux.exit_endpoint), (2, 1));
    assert_eq!(partitions[3].vm().map(|vm| vm.exit_endpoint), Some(2));

    // Files: the path relative to the manifest's folder, then the default
    // guest's, with their exact lengths.
    let files: Vec<(&str, u64)> = compiled
        .manifest
        .files
        .iter()
        .map(|f| (f.name.as_str(), f.size))
        .collect();
    assert_eq!(
        files,
        [
            ("linux-kernel", 5000),
            ("other-kernel", 9000),
            ("other-initrd", 100)
        ]
    );
    assert_eq!(
        compiled.files,
        [dir.join("Image"), debian_kernel, debian_initrd]
    );
    assert!(compiled.files.iter().all(|path| path.is_absolute()));
    assert_eq!(compiled.guests.len(), 2);
    let guest = &compiled.guests[0];
    assert_eq!((guest.partition, guest.monitor), (1, 2));
    assert_eq!((guest.kernel, guest.initrd), (0, None));
    assert_eq!(guest.bootargs, "console=ttyAMA0 quiet");
    assert_eq!(compiled.guests[1].initrd, Some(2));
    assert_eq!(compiled.guests[1].bootargs, "console=ttyAMA0 rdinit=/init");

    // The monitor: channels, then `exits` and its guest's vCPUs.
    let slot = |name: &str, slot: u32| (name.to_owned(), slot);
    assert_eq!(
        compiled.slots[2].1,
        [
            slot("hello", 0),
            slot("ring", 1),
            slot("exits", 2),
            slot("vcpu-0", 3),
            slot("vcpu-1", 4)
        ]
    );
    let monitor = &partitions[2];
    assert_eq!(monitor.caps[2].object, Object::Endpoint(1));
    assert_eq!(monitor.caps[2].rights, Rights::READ);
    assert_eq!(
        monitor.caps[4].object,
        Object::Vcpu {
            partition: 1,
            vcpu: 1
        }
    );
    assert_eq!(
        monitor.caps[4].rights,
        Rights::READ.union(Rights::WRITE).union(Rights::CONTROL)
    );
    // Nobody may send on an exit endpoint.
    assert!(partitions.iter().all(|p| p.caps.iter().all(|c| {
        !matches!(c.object, Object::Endpoint(1 | 2)) || !c.rights.contains(Rights::WRITE)
    })));
    // Its mappings: the shared ring, then the guest's RAM past it on a
    // 2 MiB boundary, then the kernel right after the RAM.
    let mappings: Vec<(MappingKind, u64, u64, Rights)> = monitor
        .mappings
        .iter()
        .map(|m| (m.kind, m.ipa, m.size, m.rights))
        .collect();
    assert_eq!(
        mappings,
        [
            (
                MappingKind::Shared { region: 0 },
                0x1_0000_0000,
                0x3000,
                Rights::READ.union(Rights::WRITE)
            ),
            (
                MappingKind::GuestRam { partition: 1 },
                0x1_0020_0000,
                64 << 20,
                Rights::READ.union(Rights::WRITE)
            ),
            (
                MappingKind::File { file: 0 },
                0x1_0420_0000,
                0x2000,
                Rights::READ
            ),
        ]
    );
    // The other monitor maps no shared region, and sees its guest at the
    // same place; its initramfs is on the 2 MiB boundary after the kernel.
    let other: Vec<u64> = partitions[4].mappings.iter().map(|m| m.ipa).collect();
    assert_eq!(other, [0x1_0020_0000, 0x1_0420_0000, 0x1_0440_0000]);

    // It packs, files included, and reads back.
    let programs: Vec<&[u8]> = compiled.programs.iter().map(|_| &b"program"[..]).collect();
    let bytes: Vec<Vec<u8>> = compiled
        .files
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    let slices: Vec<&[u8]> = bytes.iter().map(Vec::as_slice).collect();
    let package = compiled.package(&programs, &slices).unwrap();
    let parsed = hv_image::Package::parse(&package).unwrap();
    assert_eq!(parsed.manifest(), Ok(compiled.manifest.clone()));
    assert_eq!(parsed.file(1), Some(&bytes[1][..]));
    // A file whose length changed since is refused.
    assert!(compiled.package(&programs, &slices[..2]).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn relative_guest_paths_start_at_the_manifest_not_the_current_folder() {
    let dir = scratch("relative");
    std::fs::create_dir_all(dir.join("systems/images")).unwrap();
    std::fs::write(dir.join("systems/images/Image"), b"kernel").unwrap();
    let source = "[system]\nname = \"t\"\nplatform = \"qemu-virt\"\n\n\
                  [partitions.linux]\nkind = \"vm\"\nmonitor = \"vmm\"\nmemory = \"64M\"\n\
                  kernel = \"images/Image\"\ninitrd = \"none\"\n\n\
                  [partitions.vmm]\nprogram = \"vmm\"\nmemory = \"1M\"\n";
    std::fs::write(dir.join("systems/t.toml"), source).unwrap();
    let environment = Environment::new(&root(), vec!["vmm".to_owned()]);
    let compiled = crate::compile_with(&dir.join("systems/t.toml"), &environment).unwrap();
    assert_eq!(compiled.files, [dir.join("systems/images/Image")]);
    // Shown relative, resolved from another folder: the error names the
    // path as shown.
    let errors = crate::compile_source_in("systems/t.toml", &dir, source, &environment)
        .unwrap_err()
        .to_string();
    assert!(
        errors.contains("kernel `images/Image` (at systems/images/Image) does not exist"),
        "{errors}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn guest_programs_are_the_workspace_guests_and_boot_once_built() {
    let dir = scratch("guest-program");
    std::fs::write(dir.join("probe.img"), [7; 3000]).unwrap();
    let source = "[system]\nname = \"t\"\nplatform = \"qemu-virt\"\n\n\
                  [partitions.probe]\nkind = \"vm\"\nmonitor = \"vmm\"\nmemory = \"64M\"\n\
                  kernel = \"guest:probe\"\ninitrd = \"none\"\n\n\
                  [partitions.vmm]\nprogram = \"vmm\"\nmemory = \"1M\"\n";
    // The workspace has guests/probe, but nobody built it.
    let workspace = Environment::from_workspace(&root());
    let errors = compile_source("t.toml", source, &workspace)
        .unwrap_err()
        .to_string();
    assert!(
        errors.contains("guest program `probe` (guests/probe) has not been built"),
        "{errors}"
    );
    // Built, it is the guest's kernel file, exactly as long as its image.
    let built = workspace.with_guest_program("probe", dir.join("probe.img"));
    let compiled = compile_source("t.toml", source, &built).unwrap();
    assert_eq!(compiled.files, [dir.join("probe.img")]);
    assert_eq!(compiled.manifest.files[0].name.as_str(), "probe-kernel");
    assert_eq!(compiled.manifest.files[0].size, 3000);
    assert_eq!(compiled.guests[0].initrd, None);
    // An image that went missing is reported with its path.
    let gone = Environment::new(&root(), vec!["vmm".to_owned()])
        .with_guest_program("probe", dir.join("gone.img"));
    let errors = compile_source("t.toml", source, &gone)
        .unwrap_err()
        .to_string();
    assert!(
        errors.contains("guest program `probe`'s image,") && errors.contains("does not exist"),
        "{errors}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A guest that owns QEMU virt's RTC and GPIO, beside a service.
const PASSTHROUGH_SYSTEM: &str = "[system]\nname = \"t\"\nplatform = \"qemu-virt\"\n\n\
     [partitions.hello]\nprogram = \"hello\"\nmemory = \"64K\"\n\n\
     [partitions.linux]\nkind = \"vm\"\nmonitor = \"vmm\"\nmemory = \"64M\"\n\
     kernel = \"guest:probe\"\ninitrd = \"none\"\ndevices = [\"gpio0\", \"rtc0\"]\n\n\
     [partitions.vmm]\nprogram = \"vmm\"\nmemory = \"1M\"\n\n\
     [[channels]]\nname = \"hello\"\nkind = \"endpoint\"\nserver = \"hello\"\n\
     clients = [\"linux\"]\n";

#[test]
fn a_guest_s_devices_are_mapped_and_their_interrupts_passed_through() {
    let dir = scratch("passthrough");
    std::fs::write(dir.join("probe.img"), [7; 3000]).unwrap();
    let environment = Environment::new(&root(), ["hello", "vmm"].map(str::to_owned).to_vec())
        .with_guest_program("probe", dir.join("probe.img"));
    let compiled = compile_source("t.toml", PASSTHROUGH_SYSTEM, &environment).unwrap();
    let manifest = &compiled.manifest;
    // Owned by the guest, numbered in its `devices` order.
    let devices: Vec<(&str, u64, u16)> = manifest
        .devices
        .iter()
        .map(|d| (d.name.as_str(), d.pa, d.owner))
        .collect();
    assert_eq!(
        devices,
        [("gpio0", 0x0903_0000, 1), ("rtc0", 0x0901_0000, 1)]
    );
    // Every interrupt passed through as itself; none bound to a notification.
    let passed: Vec<(u32, u16)> = manifest
        .passthrough
        .iter()
        .map(|irq| (irq.intid, irq.device))
        .collect();
    assert_eq!(passed, [(39, 0), (34, 1)]);
    assert!(manifest.irqs.is_empty());
    // Mapped at IPA = PA, and no capability for them: the guest holds only
    // its channel's.
    let linux = &manifest.partitions[1];
    let mappings: Vec<(MappingKind, u64, u64)> = linux
        .mappings
        .iter()
        .map(|m| (m.kind, m.ipa, m.size))
        .collect();
    assert_eq!(
        mappings,
        [
            (MappingKind::Device { device: 0 }, 0x0903_0000, 0x1000),
            (MappingKind::Device { device: 1 }, 0x0901_0000, 0x1000),
        ]
    );
    assert_eq!(compiled.slots[1].1, [("hello".to_owned(), 0)]);
    assert_eq!(linux.caps.len(), 1);
    // Its monitor is told, in exactly this form.
    let guest = &compiled.guests[0];
    assert_eq!(
        guest.devices_environment(),
        (
            "BULKHEAD_GUEST_DEVICES".to_owned(),
            "gpio0 arm,pl061 0x9030000 0x1000 39;rtc0 arm,pl031 0x9010000 0x1000 34".to_owned()
        )
    );
    // A guest without devices: the variable is there, empty.
    let plain = PASSTHROUGH_SYSTEM.replace("devices = [\"gpio0\", \"rtc0\"]\n", "");
    let compiled = compile_source("t.toml", &plain, &environment).unwrap();
    assert!(compiled.manifest.passthrough.is_empty());
    assert_eq!(
        compiled.guests[0].devices_environment(),
        ("BULKHEAD_GUEST_DEVICES".to_owned(), String::new())
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn guest_device_entries_have_five_fields() {
    let device = |irqs: Vec<u32>| crate::GuestDevice {
        name: "twin".to_owned(),
        compatible: "test,twin".to_owned(),
        base: 0x1_0000_0000,
        size: 0x2000,
        irqs,
    };
    assert_eq!(
        device(vec![]).entry(),
        "twin test,twin 0x100000000 0x2000 -"
    );
    assert_eq!(
        device(vec![40, 41]).entry(),
        "twin test,twin 0x100000000 0x2000 40+41"
    );
}

#[test]
fn at_most_32_interrupts_are_passed_through() {
    let dir = scratch("many-irqs");
    std::fs::create_dir_all(dir.join("many")).unwrap();
    let irqs: Vec<String> = (100..133).map(|i: u32| i.to_string()).collect();
    std::fs::write(
        dir.join("many/platform.toml"),
        format!(
            "name = \"many\"\n[cores]\ncount = 1\n[[memory]]\nbase = 0x4000_0000\n\
             size = 0x4000_0000\n[devices.wide]\ncompatible = \"test,wide\"\n\
             base = 0x2000_0000\nsize = 0x1000\nirqs = [{}]\n",
            irqs.join(", ")
        ),
    )
    .unwrap();
    std::fs::write(dir.join("probe.img"), [7; 3000]).unwrap();
    let environment = Environment::new(&root(), vec!["vmm".to_owned()])
        .with_platform_dir(&dir)
        .with_guest_program("probe", dir.join("probe.img"));
    let source = "[system]\nname = \"t\"\nplatform = \"many\"\n\n\
                  [partitions.linux]\nkind = \"vm\"\nmonitor = \"vmm\"\nmemory = \"64M\"\n\
                  kernel = \"guest:probe\"\ninitrd = \"none\"\ndevices = [\"wide\"]\n\n\
                  [partitions.vmm]\nprogram = \"vmm\"\nmemory = \"1M\"\n";
    let errors = compile_source("t.toml", source, &environment)
        .unwrap_err()
        .to_string();
    assert!(
        errors.contains(
            "t.toml:11:12: partitions.linux.devices[0]: more than 32 interrupts passed through \
             to virtual machines (33 up to here)"
        ),
        "{errors}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// What the kernel will read of a schedule: one window table, core after
/// core, each window's owners as a partition mask (or background), and
/// budgets as one entry per vCPU, whether written once for all of a
/// partition's vCPUs or one by one.
#[test]
fn a_schedule_lowers_to_the_window_table_and_budgets_per_vcpu() {
    let source = r#"
[system]
name = "timed"
platform = "qemu-virt"

[partitions.a]
program = "hello"
memory = "64K"
cores = [0]

[partitions.b]
program = "console"
memory = "64K"
vcpus = 2
cores = [0, 1, 2, 3]
budget = { time = "250us", period = "1s" }

[partitions.c]
program = "hello"
memory = "64K"
vcpus = 2
cores = [0]
budget = [{ time = "1ms", period = "2ms" }, { time = "3ms", period = "10ms" }]

[schedule]
major-frame = "10ms"

[[schedule.timeline]]
cores = [0]
windows = [
  { length = "2500us", partitions = ["a", "c"] },
  { length = "5ms", partitions = ["b", "a"] },
  { length = "2500us", background = true },
]

[[schedule.timeline]]
cores = [1, 2, 3]
windows = [
  { length = "2500us", background = true },
  { length = "5ms", partitions = ["b"] },
  { length = "2500us", background = true },
]
"#;
    let compiled = compile_source("systems/timed.toml", source, &environment()).unwrap();
    let schedule = compiled.manifest.schedule.as_ref().unwrap();
    assert_eq!(schedule.major_frame_us, 10_000);
    assert_eq!(schedule.cores.as_slice(), [3, 3, 3, 3]);
    let core = |n| -> Vec<(u32, Owners)> {
        schedule
            .windows_of(n)
            .unwrap()
            .iter()
            .map(|w| (w.length_us, w.owners))
            .collect()
    };
    assert_eq!(
        core(0),
        [
            (2500, Owners::Partitions(0b101)),
            (5000, Owners::Partitions(0b011)),
            (2500, Owners::Background),
        ]
    );
    for n in 1..4 {
        assert_eq!(
            core(n),
            [
                (2500, Owners::Background),
                (5000, Owners::Partitions(0b10)),
                (2500, Owners::Background),
            ]
        );
    }
    let budgets: Vec<(u16, u8, u32, u32)> = compiled
        .manifest
        .budgets
        .iter()
        .map(|b| (b.partition, b.vcpu, b.budget_us, b.period_us))
        .collect();
    assert_eq!(
        budgets,
        [
            (1, 0, 250, 1_000_000),
            (1, 1, 250, 1_000_000),
            (2, 0, 1000, 2000),
            (2, 1, 3000, 10_000),
        ]
    );
    // `b`'s vCPUs run together: its windows are at 2.5..7.5 ms on every core.
    assert!(
        compiled.report.contains("    2500 us  5 ms     b\n"),
        "{}",
        compiled.report
    );
    // Without a schedule or budgets, the manifest has neither.
    let plain = compile_source(
        "systems/plain.toml",
        "[system]\nname = \"plain\"\nplatform = \"qemu-virt\"\n",
        &environment(),
    )
    .unwrap();
    assert_eq!(plain.manifest.schedule, None);
    assert!(plain.manifest.budgets.is_empty());
    assert!(!plain.report.contains("schedule"));
}

/// Partitions `a` to `d` in a chain of grant endpoints (`a` calls `b`, `b`
/// calls `c`, `c` calls `d`), and a notification `a` signals `e` on, with
/// the derive right if `derive`.
fn grant_chain(derive: bool) -> String {
    let mut source = String::from("[system]\nname = \"chain\"\nplatform = \"qemu-virt\"\n");
    for name in ["a", "b", "c", "d", "e"] {
        source += &format!("\n[partitions.{name}]\nprogram = \"hello\"\nmemory = \"64K\"\n");
    }
    for (client, server) in [("a", "b"), ("b", "c"), ("c", "d")] {
        source += &format!(
            "\n[[channels]]\nname = \"{client}-{server}\"\nkind = \"endpoint\"\n\
             server = \"{server}\"\nclients = [\"{client}\"]\ngrant = true\n"
        );
    }
    source += &format!(
        "\n[[channels]]\nname = \"token\"\nkind = \"notification\"\nwaiter = \"e\"\n\
         signallers = [\"a\"]\nderive = {derive}\n"
    );
    source
}

#[test]
fn grant_chains_matter_only_if_a_derivable_capability_can_travel() {
    // Without the derive right nothing can be passed: the chain is harmless.
    compile_source("chain.toml", &grant_chain(false), &environment()).unwrap();
    let errors = compile_source("chain.toml", &grant_chain(true), &environment()).unwrap_err();
    let messages: Vec<&str> = errors.errors.iter().map(|e| e.message.as_str()).collect();
    // `a` reaches `c` in two hops and `d` in three, `b` (once it holds a
    // copy) reaches `d` in two; one hop is always a channel. Each error sits
    // on the `grant` of the chain's last hop, in file order.
    assert_eq!(messages.len(), 3, "{errors}");
    assert!(
        messages[0].starts_with(
            "`a` can pass a capability to `b` (channel `a-b`), and `b` on to `c` (channel `b-c`), \
             but no channel lets information flow from `a` to `c`"
        ),
        "{errors}"
    );
    assert!(
        messages[1].starts_with(
            "`a` can pass a capability to `b` (channel `a-b`), `b` on to `c` (channel `b-c`), \
             and `c` on to `d` (channel `c-d`), but no channel lets information flow from `a` \
             to `d`"
        ),
        "{errors}"
    );
    assert!(
        messages[2].starts_with(
            "`b` can pass a capability to `c` (channel `b-c`), and `c` on to `d` (channel \
             `c-d`), but no channel lets information flow from `b` to `d`"
        ),
        "{errors}"
    );
    assert!(errors.errors.iter().all(|e| e.key.ends_with(".grant")));
    assert_eq!(errors.errors[0].key, "channels[1].grant");
    assert_eq!(errors.errors[1].key, "channels[2].grant");
}
