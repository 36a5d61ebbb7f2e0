// SPDX-License-Identifier: Apache-2.0 OR MIT
//! `probe=hostile`: what a guest must never achieve, tried one by one. Each
//! must come back (a read gives 0 or an emulated value, a write is ignored,
//! a call is refused), never reach another partition and never crash the
//! probe; each prints what happened:
//!
//! - `read outside RAM at <addr>: returned <value>` and `write outside RAM
//!   at <addr>: returned, reads back <value>`, for the first address past
//!   RAM, 0x4800_0000 + the RAM's size and 0x1_0000_0000 (where other
//!   partitions' memory might be);
//! - `read GIC distributor IIDR at <addr>: returned <value>` and `write GIC
//!   distributor IIDR at <addr>: returned, reads back <value>`: the GIC's
//!   real distributor address, which the monitor emulates;
//! - `smc #0 with x0 0xc6000000: returned x0 <n>`: Bulkhead's `Version`
//!   through SMC, which is no hypercall;
//! - `hvc #0 with unknown function 0xc600ffff: returned x0 <n>`: an unassigned
//!   ID in Bulkhead's range (SMCCC NOT_SUPPORTED is -1);
//! - `hvc #0 with PSCI MIGRATE 0x84000005: returned x0 <n>`: a PSCI function
//!   the monitor does not implement;
//! - `read MDSCR_EL1: returned <value>`, `write MDSCR_EL1: returned, reads
//!   back <value>`, `read PMCR_EL0: returned <value>`: debug and PMU
//!   registers, which the hypervisor should trap (reads as zero);
//! - `hvc #1 with x0 0xc6000000: returned x0 <n>`: Bulkhead's `Version`
//!   with a reserved immediate, which must be refused (-1), not answered;
//! - `read AMCNTENSET0_EL0: returned <value>`: an activity monitors
//!   register, trapped by the hypervisor (reads as zero); on a CPU without
//!   activity monitors (QEMU's) the line is `read AMCNTENSET0_EL0:
//!   undefined, the CPU has no activity monitors`.
//!
//! If the CPU took an exception instead, the line ends `took an exception,
//! ESR <esr>`. Then `hostile done`.

use core::fmt::Display;

use hv_abi::hypercall::FUNCTION_BASE;
use hv_abi::vm::GUEST_GICD;

use crate::arch::{self, Ram};
use crate::console::{Signed, say};
use crate::trap::attempt;

/// Where other partitions' memory might be, from the RAM's size.
const FAR_RAM: u64 = 0x4800_0000;
/// The IPA where monitors see their guest's RAM and services their shared
/// memory.
const SHARED: u64 = 0x1_0000_0000;
/// GICD_IIDR's offset.
const GICD_IIDR: u64 = 0x08;
/// What the write attacks write.
const SCRIBBLE: u32 = 0xbad0_cafe;
/// MDSCR_EL1.MDE and KDE: debug exceptions on, at EL1 too.
const DEBUG_ON: u64 = (1 << 15) | (1 << 13);
/// An ID in Bulkhead's SMCCC range that no hypercall has.
const UNKNOWN_FUNCTION: u64 = FUNCTION_BASE as u64 | 0xffff;
/// PSCI `MIGRATE`, which a monitor of guests with no Trusted OS does not
/// implement.
const PSCI_MIGRATE: u64 = hv_abi::smccc::function::MIGRATE as u64;

/// Prints `<attack>: <what happened>`.
fn report<T: Display>(attack: impl Display, outcome: Result<T, u64>) {
    match outcome {
        Ok(what) => say!("{attack}: {what}"),
        Err(esr) => say!("{attack}: took an exception, ESR {esr:#x}"),
    }
}

/// Reads back what a write left.
struct ReadsBack(u64);

impl Display for ReadsBack {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "returned, reads back {:#x}", self.0)
    }
}

/// A register's value as read.
struct Returned(u64);

impl Display for Returned {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "returned {:#x}", self.0)
    }
}

/// A call's x0.
struct ReturnedX0(u64);

impl Display for ReturnedX0 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "returned x0 {}", Signed(self.0))
    }
}

/// A 32-bit read of `address`, then a write and a read back.
fn read_and_write(what: &str, address: u64) {
    let read = |address| u64::from(arch::read32(address).unwrap_or(0));
    report(
        format_args!("read {what} at {address:#x}"),
        attempt(|| Returned(read(address))),
    );
    report(
        format_args!("write {what} at {address:#x}"),
        attempt(|| {
            arch::write32(address, SCRIBBLE);
            ReadsBack(read(address))
        }),
    );
}

/// Runs every attack.
pub(crate) fn run(ram: &Ram) {
    let size = ram.end() - ram.start();
    for address in [ram.end(), FAR_RAM + size, SHARED] {
        read_and_write("outside RAM", address);
    }
    read_and_write("GIC distributor IIDR", GUEST_GICD + GICD_IIDR);
    let version = u64::from(hv_abi::hypercall::Hypercall::Version.function_id());
    report(
        format_args!("smc #0 with x0 {version:#x}"),
        attempt(|| ReturnedX0(arch::smc([version, 0, 0, 0])[0])),
    );
    report(
        format_args!("hvc #0 with unknown function {UNKNOWN_FUNCTION:#x}"),
        attempt(|| ReturnedX0(arch::hvc([UNKNOWN_FUNCTION, 0, 0, 0])[0])),
    );
    report(
        format_args!("hvc #0 with PSCI MIGRATE {PSCI_MIGRATE:#x}"),
        attempt(|| ReturnedX0(arch::hvc([PSCI_MIGRATE, 0, 0, 0])[0])),
    );
    report(
        "read MDSCR_EL1",
        attempt(|| Returned(arch::debug_control())),
    );
    report(
        "write MDSCR_EL1",
        attempt(|| {
            arch::set_debug_control(DEBUG_ON);
            ReadsBack(arch::debug_control())
        }),
    );
    report("read PMCR_EL0", attempt(|| Returned(arch::pmu_control())));
    report(
        format_args!("hvc #1 with x0 {version:#x}"),
        attempt(|| ReturnedX0(arch::hvc_reserved([version, 0, 0, 0])[0])),
    );
    match attempt(|| Returned(arch::amu_counters_enabled())) {
        // Undefined instruction (EC 0), which is all a CPU without FEAT_AMUv1
        // can do.
        Err(esr) if esr >> 26 == 0 && arch::amu_version() == 0 => {
            say!("read AMCNTENSET0_EL0: undefined, the CPU has no activity monitors");
        }
        outcome => report("read AMCNTENSET0_EL0", outcome),
    }
    say!("hostile done");
}
