// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Bulkhead's fuzz targets, as plain functions of a byte string.
//!
//! Each target feeds the bytes to code that takes untrusted input and
//! panics (failing the run) if that code panics or breaks a rule it
//! promises:
//!
//! - [`hypercall`]: one hypercall with arbitrary registers, from every vCPU
//!   of a seeded system, through the kernel's decoder and dispatch;
//! - [`state_machine`]: sequences of hypercalls, interrupts, ticks, faults,
//!   restarts and virtual machine exits from several partitions on two
//!   cores, with the state's invariants checked after every step;
//! - [`boot_package`]: the boot package decoder and the boot manifest's
//!   validation (as the kernel reads them at boot);
//! - [`device_tree`]: the device tree validator and the platform reader
//!   the kernel runs on the tree the firmware hands it;
//! - [`manifest`]: the manifest compiler, on arbitrary text.
//!
//! `cargo xtask fuzz TARGET --time SECS` runs one under libFuzzer
//! (`fuzz/libfuzzer`, on the nightly toolchain); `cargo xtask test` replays
//! every input kept in `fuzz/corpus/<target>/` and every crash kept in
//! `fuzz/regressions/<target>/` through the same function, on stable.

mod bytes;
mod system;

use std::path::Path;

pub use bytes::Bytes;

/// A fuzz target: it panics if the code under test misbehaves on `data`.
pub type Target = fn(data: &[u8]);

/// The targets, by name.
pub const TARGETS: [(&str, Target); 5] = [
    ("hypercall", hypercall),
    ("state_machine", state_machine),
    ("boot_package", boot_package),
    ("device_tree", device_tree),
    ("manifest", manifest),
];

/// The target called `name`.
#[must_use]
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|&(_, f)| f)
}

/// One hypercall, its registers read from `data`, made by each vCPU a core
/// runs in a freshly booted system: the state's invariants must hold after
/// it, whatever it asked.
pub fn hypercall(data: &[u8]) {
    let mut input = Bytes::new(data);
    let regs = system::registers(&mut input);
    let mut state = system::boot(false);
    for core in 0..system::CORES {
        let mut r = regs;
        let _ = state.hypercall(core, &mut r);
        system::check(&state);
    }
}

/// A sequence of steps read from `data` (see [`system::step`]), with the
/// invariants checked after each. An input of odd length runs the system
/// cut into time windows, with a budget ([`system::boot`]); the length
/// decides, not a byte, so that every input's bytes mean the same steps in
/// both.
pub fn state_machine(data: &[u8]) {
    let mut input = Bytes::new(data);
    let mut machine = system::Machine::new(data.len() % 2 == 1);
    let mut steps = 0;
    while !input.is_empty() && steps < 2_000 {
        machine.step(&mut input);
        steps += 1;
    }
}

/// The boot package decoder and the manifest inside it. The first byte
/// chooses: even, `data[1..]` is decoded as a package whose checksum is
/// made to match (so the fuzzer gets past it), then its manifest; odd,
/// `data[1..]` is decoded as a boot manifest blob on its own.
pub fn boot_package(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 1 {
        if let Ok(manifest) = hv_image::BootManifest::decode(rest) {
            // What decodes is valid, and stays so.
            assert_eq!(manifest.validate(), Ok(()));
        }
        return;
    }
    let mut bytes = rest.to_vec();
    fix_package(&mut bytes);
    if let Ok(package) = hv_image::Package::parse(&bytes) {
        let _ = package.manifest();
        for i in 0..package.program_count() {
            assert!(package.program(i).is_some());
        }
        for i in 0..package.file_count() {
            assert!(package.file(i).is_some());
        }
    }
}

/// Gives a would-be package the magic, version and checksum the decoder
/// checks first, where it has room for them.
fn fix_package(bytes: &mut [u8]) {
    if bytes.len() < hv_image::package::HEADER_SIZE as usize {
        return;
    }
    bytes[..8].copy_from_slice(&hv_image::package::MAGIC);
    bytes[8..12].copy_from_slice(&hv_image::FORMAT_VERSION.to_le_bytes());
    let checked = u64::from_le_bytes(bytes[56..64].try_into().unwrap_or([0; 8]));
    if let Ok(checked) = usize::try_from(checked)
        && checked <= bytes.len()
        && checked >= 64
    {
        bytes[40..44].fill(0);
        let crc = hv_image::crc32(&bytes[..checked]);
        bytes[40..44].copy_from_slice(&crc.to_le_bytes());
    }
}

/// The device tree validator, then (for a tree it accepts) the platform
/// reader and its queries: a tree the validator accepts must never make
/// the reader panic.
pub fn device_tree(data: &[u8]) {
    if hv_core::devicetree::validate(data).is_err() {
        return;
    }
    if let Ok(platform) = hv_core::platform::PlatformInfo::parse(data) {
        let _ = platform.memory_bytes();
        let _ = platform.boot_option("kernel-log");
        // The kernel's check of a device a boot package gives a partition.
        let devices = [hv_core::devices::Peripheral {
            base: 0x0900_0000,
            size: 0x1000,
            irqs: &[33],
        }];
        let console = hv_core::range::PhysRange::new(0x0900_0000, 0x1000);
        for base in [0x0, 0x0800_0000, 0x0900_0000, 0x0a00_0000, 0x4000_0000] {
            let _ = hv_core::devices::check(&platform, data, &devices, (base, 0x1000), console);
        }
    }
}

/// The manifest compiler on `data` as text, against this workspace's
/// programs and platforms: it returns a compiled system or located
/// errors, never panics.
pub fn manifest(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A manifest may name files; the fuzzer must not read devices or
    // anything outside the workspace's test fixtures.
    if text.contains("/dev") || text.contains("..") || text.contains("/proc") {
        return;
    }
    let root = workspace_root();
    let environment = hv_manifest::Environment::from_workspace(root);
    if let Err(errors) =
        hv_manifest::compile_source_in("fuzz.toml", &root.join("tests"), text, &environment)
    {
        // Every error names a place in the text.
        let _ = errors.to_string();
    }
}

/// The workspace this crate is in.
#[must_use]
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."))
}
