// SPDX-License-Identifier: Apache-2.0 OR MIT
//! `probe=passthrough=<hex>`: the PL031 real-time clock the manifest passes
//! through to the guest at `<hex>` (`devices = ["rtc0"]`: QEMU `virt`'s, at
//! 0x0901_0000, INTID 34). The kernel maps its registers at their physical
//! address, so the probe's accesses reach the real device (not the
//! monitor), and forwards its interrupt with a hardware-linked list
//! register, so the probe's EOI ends the physical interrupt.
//!
//! In order, each line starting `passthrough at <base>: ` (`<base>` as
//! `0x...`):
//!
//! 1. the monitor's device tree node whose `reg` starts there: `device tree
//!    node <name>, compatible <strings>, INTID <n>` (the strings separated
//!    by spaces; QEMU's RTC: `pl031@9010000, compatible arm,pl031
//!    arm,primecell, INTID 34`);
//! 2. its PrimeCell ID registers (0xFE0 to 0xFFC, the low byte of each):
//!    `periph id 0x31 0x10 0x14 0x00` and `cell id 0x0d 0xf0 0x05 0xb1` for
//!    a PL031;
//! 3. the time: `RTCDR <seconds>` (decimal; QEMU starts it at the host's
//!    time, so never 0);
//! 4. its alarm, one second ahead (RTCMR = RTCDR + 1, RTCIMSC = 1) with the
//!    SPI enabled in the (emulated) distributor ([`crate::gic::enable_spi`]),
//!    the probe waiting in WFI: `interrupt INTID <n> arrived, RTCMIS <m>`
//!    (the handler reads the masked status, clears the interrupt, RTCICR =
//!    1, and the GIC driver ends it; `RTCMIS 0x1` if the device really
//!    raised it), or, after [`TIMEOUT_SECONDS`] of counter time, `no
//!    interrupt within 5 s (RTCRIS <r>, RTCMIS <m>)`;
//! 5. then a fifth of a second more: `no further interrupt` (the interrupt
//!    was ended and the device quiet, so nothing came again), or `<n>
//!    further interrupt(s)`;
//!
//! and `passthrough done`. The virtual timer wakes the WFI at the deadline,
//! so a missing interrupt cannot hang the probe.
//!
//! If it cannot go on, it says why and stops the mode (still `passthrough
//! done`): `passthrough: <text> is not a hexadecimal address ...`, `no
//! device tree node with reg at <base>`, `the node has no interrupt`, `the
//! node is not an arm,pl031`, `cannot access <base> (inside RAM or
//! unaligned)`.

use core::fmt;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::arch;
use crate::console::say;
use crate::machine::{DeviceNode, Machine};

/// RTCDR: the time, in seconds.
const RTCDR: u64 = 0x00;
/// RTCMR: the alarm's match value.
const RTCMR: u64 = 0x04;
/// RTCIMSC: the interrupt mask (1: the alarm interrupts).
const RTCIMSC: u64 = 0x10;
/// RTCRIS and RTCMIS: the raw and masked interrupt status.
const RTCRIS: u64 = 0x14;
const RTCMIS: u64 = 0x18;
/// RTCICR: writing 1 clears the interrupt.
const RTCICR: u64 = 0x1c;
/// The first peripheral ID register, and the first cell ID register.
const PERIPH_ID: u64 = 0xfe0;
const CELL_ID: u64 = 0xff0;
/// How long to wait for the alarm's interrupt, in seconds of counter time.
const TIMEOUT_SECONDS: u64 = 5;
/// How long to watch for a further interrupt: this part of a second.
const SETTLE_FRACTION: u64 = 5;

/// The device's base while the probe waits for its interrupt.
static BASE: AtomicU64 = AtomicU64::new(0);
/// The INTID waited for, 0 when none.
static WAITING: AtomicU32 = AtomicU32::new(0);
/// Interrupts taken since the alarm was set.
static TAKEN: AtomicU32 = AtomicU32::new(0);
/// RTCMIS in the handler, the first time.
static STATUS: AtomicU32 = AtomicU32::new(0);

/// Whether `intid` is the passed-through interrupt being waited for.
pub(crate) fn expects(intid: u32) -> bool {
    intid != 0 && WAITING.load(Ordering::SeqCst) == intid
}

/// Its interrupt, from the GIC driver (before the EOI): records the masked
/// status and clears the interrupt, so the level drops before the EOI ends
/// the physical interrupt.
pub(crate) fn fired(_intid: u32) {
    let base = BASE.load(Ordering::SeqCst);
    let status = arch::read32(base + RTCMIS).unwrap_or(0);
    if TAKEN.load(Ordering::SeqCst) == 0 {
        STATUS.store(status, Ordering::SeqCst);
    }
    arch::write32(base + RTCICR, 1);
    TAKEN.fetch_add(1, Ordering::SeqCst);
}

/// A node's compatible strings, separated by spaces.
struct Compatible(DeviceNode);

impl fmt::Display for Compatible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, text) in self.0.compatibles().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(text)?;
        }
        Ok(())
    }
}

/// Four ID registers' low bytes, as `0x31 0x10 0x14 0x00`.
struct Ids([u32; 4]);

impl fmt::Display for Ids {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.0.map(|value| value & 0xff);
        write!(f, "{a:#04x} {b:#04x} {c:#04x} {d:#04x}")
    }
}

/// The four ID registers from `first`.
fn ids(first: u64) -> Ids {
    Ids(core::array::from_fn(|i| {
        arch::read32(first + 4 * i as u64).unwrap_or(0)
    }))
}

/// Waits in WFI until the counter reaches `deadline` or `done` says so; the
/// virtual timer, armed for the deadline, ends the last WFI.
fn wait(deadline: u64, done: impl Fn() -> bool) {
    arch::timer_arm(deadline);
    // Interrupts stay masked but for a moment after each WFI, so that one
    // arriving between the check and the WFI still ends the WFI.
    while !done() && arch::counter() < deadline {
        arch::wait_for_interrupt();
        arch::irq_unmask();
        arch::irq_mask();
    }
    arch::timer_disarm();
}

/// Runs the mode on the device at the address `text`.
pub(crate) fn run(machine: &Machine, text: &str) {
    if let Some(base) = crate::marker::parse(text) {
        exercise(machine, base);
    } else {
        say!("passthrough: `{text}` is not a hexadecimal address of 1 to 16 digits");
    }
    say!("passthrough done");
}

fn exercise(machine: &Machine, base: u64) {
    let Some(node) = crate::machine::device_at(machine.tree, base) else {
        say!("passthrough at {base:#x}: no device tree node with reg at {base:#x}");
        return;
    };
    let Some(intid) = node.intid else {
        say!("passthrough at {base:#x}: the node has no interrupt");
        return;
    };
    say!(
        "passthrough at {base:#x}: device tree node {}, compatible {}, INTID {intid}",
        node.name,
        Compatible(node)
    );
    if !node.compatibles().any(|c| c == "arm,pl031") {
        say!("passthrough at {base:#x}: the node is not an arm,pl031");
        return;
    }
    let Some(now) = arch::read32(base + RTCDR) else {
        say!("passthrough at {base:#x}: cannot access {base:#x} (inside RAM or unaligned)");
        return;
    };
    say!(
        "passthrough at {base:#x}: periph id {}",
        ids(base + PERIPH_ID)
    );
    say!("passthrough at {base:#x}: cell id {}", ids(base + CELL_ID));
    say!("passthrough at {base:#x}: RTCDR {now}");

    crate::gic::init(machine.gic);
    crate::gic::enable_spi(machine.gic, intid);
    arch::write32(base + RTCIMSC, 0);
    arch::write32(base + RTCICR, 1);
    BASE.store(base, Ordering::SeqCst);
    TAKEN.store(0, Ordering::SeqCst);
    WAITING.store(intid, Ordering::SeqCst);
    let time = arch::read32(base + RTCDR).unwrap_or(now);
    arch::write32(base + RTCMR, time.wrapping_add(1));
    arch::write32(base + RTCIMSC, 1);

    let frequency = arch::counter_frequency();
    let arrived = || TAKEN.load(Ordering::SeqCst) > 0;
    wait(arch::counter() + TIMEOUT_SECONDS * frequency, arrived);
    if arrived() {
        say!(
            "passthrough at {base:#x}: interrupt INTID {intid} arrived, RTCMIS {:#x}",
            STATUS.load(Ordering::SeqCst)
        );
        wait(arch::counter() + frequency / SETTLE_FRACTION, || false);
        match TAKEN.load(Ordering::SeqCst).saturating_sub(1) {
            0 => say!("passthrough at {base:#x}: no further interrupt"),
            more => say!("passthrough at {base:#x}: {more} further interrupt(s)"),
        }
    } else {
        say!(
            "passthrough at {base:#x}: no interrupt within {TIMEOUT_SECONDS} s (RTCRIS {:#x}, RTCMIS {:#x})",
            arch::read32(base + RTCRIS).unwrap_or(0),
            arch::read32(base + RTCMIS).unwrap_or(0)
        );
    }
    arch::write32(base + RTCIMSC, 0);
    arch::write32(base + RTCICR, 1);
    WAITING.store(0, Ordering::SeqCst);
}
