// SPDX-License-Identifier: Apache-2.0 OR MIT
//! probe: Bulkhead's own bare-metal test guest, for what a Linux guest
//! cannot test or measure well.
//!
//! It is an arm64 `Image` (the 64-byte header, text offset 0, image size
//! covering .bss and stack, flags 0xa) that the unmodified monitor
//! (`services/vmm`) boots like Linux, at EL1 on vCPU 0 with the MMU off and
//! x0 = the device tree. It runs on vCPU 0 only, never uses floating point,
//! and keeps the MMU off (so every access is to a guest physical address).
//! A manifest names it `kernel = "guest:probe"` (with `initrd = "none"`);
//! `cargo xtask` builds it into `target/bulkhead/guests/probe.img`.
//!
//! It reads its RAM (`/memory`), GIC (`arm,gic-v3` or `arm,cortex-a15-gic`)
//! and command line (`/chosen/bootargs`) from the device tree, and prints
//! through the PL011 the monitor emulates at 0x0900_0000; the console shows
//! each line as `[<guest name>] probe: ...`. Its first line:
//!
//! - `probe: EL<n>, <m> MiB RAM at <base>, GICv<2|3>, counter <Hz> Hz,
//!   bootargs "<command line>"`
//!
//! or, if it cannot go on, `probe: cannot start: <why>` (and it halts).
//! Then it runs the modes its command line names, in order: every word
//! `probe=<mode>`:
//!
//! - `marker=<hex>` (1 to 16 hex digits): writes a 64-byte pattern derived
//!   from the value into the page in the middle of its RAM and leaves it
//!   there: `probe: marker <hex> written at <addr>` ([`marker`]; `<hex>` is
//!   the value in lowercase without leading zeros, addresses are `0x...`).
//! - `scan=<hex>`: looks for that pattern at every byte of RAM outside its
//!   own image: `probe: scanned <n> MiB: marker <hex> not found` or
//!   `probe: scanned <n> MiB: marker <hex> found at <addr>` (`<n>`: the RAM's
//!   size).
//! - `hostile`: tries what a guest must never achieve, one line each,
//!   `probe: <attack>: <what happened>` ([`hostile`] lists them), then
//!   `probe: hostile done`.
//! - `bench`: the costs of a null hypercall, an MMIO read the monitor
//!   answers, the virtual timer's delivery and a read of the GIC
//!   distributor, in counter ticks with three decimals: `probe: bench
//!   hvc-null <t> ticks`, `probe: bench mmio-read <t> ticks`, `probe: bench
//!   vtimer <t> ticks`, `probe: bench gicd-read <t> ticks`, then `probe:
//!   bench done` ([`bench`] has the other lines).
//! - `passthrough=<hex>`: exercises the PL031 real-time clock passed
//!   through to the guest at that address (`devices = ["rtc0"]` in the
//!   manifest; QEMU `virt`'s is at 9010000): its device tree node, its
//!   PrimeCell IDs, its time, and its alarm's interrupt, delivered by the
//!   kernel and ended by the probe. Lines `probe: passthrough at <addr>:
//!   ...`, then `probe: passthrough done` ([`passthrough`] lists them; for
//!   QEMU's RTC: `device tree node pl031@9010000, compatible arm,pl031
//!   arm,primecell, INTID 34`, `periph id 0x31 0x10 0x14 0x00`, `cell id
//!   0x0d 0xf0 0x05 0xb1`, `RTCDR <seconds>`, `interrupt INTID 34 arrived,
//!   RTCMIS 0x1`, `no further interrupt`).
//! - `idle`: `probe: idle`, then WFI forever with interrupts masked (later
//!   modes never run).
//! - `off`: no mode of its own: at the end, power off instead of idling.
//!
//! A malformed value says so (`probe: marker: ...`, `probe: scan: ...`,
//! `probe: passthrough: ...`); an unknown mode prints `probe: unknown mode
//! <mode>`. After the last mode:
//! `probe: done`, then PSCI `SYSTEM_OFF` (`hvc #0`, x0 = 0x8400_0008) if the
//! command line has `probe=off` (the monitor then says `vmm: <name> powered
//! off`; should the call return, `probe: SYSTEM_OFF returned x0 <n>`), else
//! WFI forever.
//!
//! Under Xen (`cargo xtask bench --peers` boots it as Xen's hardware
//! domain), the probe knows Xen by its device tree's node compatible with
//! `xen,xen` and prints through Xen's console hypercall instead of the
//! PL011 (which Xen keeps); its `bench` mode then times Xen's `xen_version`
//! as the null hypercall and has no `mmio-read` ([`bench::run_xen`]).
//!
//! An exception the probe does not expect prints `probe: unexpected
//! exception: ...` ([`trap`]) and a panic `probe: panic: <message>`; both
//! halt it.
//!
//! The `unsafe` is all in [`arch`] (with `entry.S`): the entry, the vector
//! table, device and RAM accesses, system registers and the timed loops.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

#[expect(
    unsafe_code,
    reason = "the entry, vectors, MMIO, system registers and hypervisor calls"
)]
mod arch;
mod bench;
mod console;
mod gic;
mod hostile;
mod machine;
mod marker;
mod passthrough;
mod trap;

use hv_abi::smccc::PsciFunction;

use crate::console::{Signed, say};

/// A mebibyte.
const MIB: u64 = 1 << 20;

/// What a word of the command line asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode<'a> {
    /// `marker=<hex>`.
    Marker(&'a str),
    /// `scan=<hex>`.
    Scan(&'a str),
    /// `passthrough=<hex>`.
    Passthrough(&'a str),
    /// `hostile`.
    Hostile,
    /// `bench`.
    Bench,
    /// `idle`.
    Idle,
    /// `off`.
    Off,
    /// Anything else.
    Unknown(&'a str),
}

impl<'a> Mode<'a> {
    /// The mode named after `probe=`.
    fn parse(word: &'a str) -> Self {
        if let Some(value) = word.strip_prefix("marker=") {
            return Self::Marker(value);
        }
        if let Some(value) = word.strip_prefix("scan=") {
            return Self::Scan(value);
        }
        if let Some(value) = word.strip_prefix("passthrough=") {
            return Self::Passthrough(value);
        }
        match word {
            "hostile" => Self::Hostile,
            "bench" => Self::Bench,
            "idle" => Self::Idle,
            "off" => Self::Off,
            other => Self::Unknown(other),
        }
    }
}

/// The modes a command line names, in order.
fn modes(bootargs: &str) -> impl Iterator<Item = Mode<'_>> {
    bootargs
        .split_ascii_whitespace()
        .filter_map(|word| word.strip_prefix("probe="))
        .map(Mode::parse)
}

/// Says why the probe cannot go on, and halts.
fn cannot_start(why: core::fmt::Arguments<'_>) -> ! {
    say!("cannot start: {why}");
    arch::halt()
}

/// Called by `entry.S` with the device tree's address.
extern "C" fn probe_main(device_tree: u64) -> ! {
    let level = arch::current_el();
    let Some(tree) = arch::device_tree(device_tree) else {
        cannot_start(format_args!("no device tree at {device_tree:#x}"))
    };
    let xen = machine::is_xen(tree);
    if xen {
        console::use_xen();
    }
    let machine = match machine::read(tree) {
        Ok(machine) => machine,
        Err(why) => cannot_start(format_args!("{why}")),
    };
    let Some(ram) = arch::Ram::new(machine.ram_start, machine.ram_size) else {
        cannot_start(format_args!(
            "the RAM at {:#x} ({} bytes) does not hold the image at {:#x}",
            machine.ram_start,
            machine.ram_size,
            arch::image().start
        ))
    };
    say!(
        "EL{level}, {} MiB RAM at {:#x}, GICv{}, counter {} Hz, bootargs \"{}\"",
        machine.ram_size / MIB,
        machine.ram_start,
        machine.gic.version(),
        arch::counter_frequency(),
        machine.bootargs
    );
    if level != 1 {
        cannot_start(format_args!("running at EL{level}, not EL1"));
    }
    for mode in modes(machine.bootargs) {
        match mode {
            Mode::Marker(value) => marker::write(&ram, value),
            Mode::Scan(value) => marker::scan(&ram, value),
            Mode::Passthrough(value) => passthrough::run(&machine, value),
            Mode::Hostile => hostile::run(&ram),
            Mode::Bench if xen => bench::run_xen(&machine),
            Mode::Bench => bench::run(&machine),
            Mode::Idle => {
                say!("idle");
                arch::halt()
            }
            Mode::Off => {}
            Mode::Unknown(word) => say!("unknown mode {word}"),
        }
    }
    say!("done");
    if modes(machine.bootargs).any(|mode| mode == Mode::Off) {
        let [x0, ..] = arch::hvc([PsciFunction::SystemOff as u64, 0, 0, 0]);
        say!("SYSTEM_OFF returned x0 {}", Signed(x0));
    }
    arch::halt()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    match info.location() {
        Some(at) => say!("panic: {} at {}:{}", info.message(), at.file(), at.line()),
        None => say!("panic: {}", info.message()),
    }
    arch::halt()
}
