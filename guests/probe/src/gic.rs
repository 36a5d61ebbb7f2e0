// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The interrupt controller, as far as the virtual timer's interrupt
//! (PPI 27) and a device's SPI passed through ([`enable_spi`]) need it.
//!
//! GICv3: the distributor's affinity routing and both groups on (GICD_CTLR),
//! vCPU 0's redistributor awake (GICR_WAKER) with PPI 27 enabled (its SGI
//! frame's ISENABLER0), and the system-register CPU interface on for group 1
//! (`arch::icc_enable`); interrupts are taken with ICC_IAR1_EL1 and ended
//! with ICC_EOIR1_EL1. GICv2: the distributor on with PPI 27 enabled (its
//! banked ISENABLER0), the CPU interface (GICC, the virtual one the kernel
//! maps there) on for group 0 at the lowest priority mask; GICC_IAR and
//! GICC_EOIR. The distributor and redistributors are the monitor's models
//! (every access traps); the kernel delivers the timer itself, through a
//! list register, and so an SPI passed through (a hardware-linked one: the
//! probe's EOI deactivates the physical interrupt).
//!
//! An SPI is set up as Linux does it: on GICv3 group 1 (GICD_IGROUPR), on
//! GICv2 group 0 and targeted at CPU interface 0 (GICD_ITARGETSR); a middle
//! priority (GICD_IPRIORITYR); enabled (GICD_ISENABLER). Level-sensitive
//! and routed to affinity 0 are the reset state.

use core::sync::atomic::{AtomicU64, Ordering};

use hv_abi::vm::VIRTUAL_TIMER_INTID;

use crate::arch;
use crate::console::say;
use crate::machine::Gic;

/// GICD_CTLR (both versions).
const GICD_CTLR: u64 = 0x0000;
/// GICD_ISENABLER0 (GICv2: banked per CPU; the SPIs' registers follow it)
/// and, in GICv3's SGI frame, GICR_ISENABLER0.
const ISENABLER0: u64 = 0x0100;
/// GICv3 GICD_CTLR: ARE, EnableGrp1, EnableGrp0 (the layout with one
/// security state).
const GICD_CTLR_V3: u32 = (1 << 4) | (1 << 1) | (1 << 0);
/// GICv2 GICD_CTLR: enabled.
const GICD_CTLR_V2: u32 = 1;
/// GICD_IGROUPR0, GICD_IPRIORITYR0 and GICD_ITARGETSR0 (GICv2): each
/// interrupt's bit, byte and byte.
const GICD_IGROUPR: u64 = 0x0080;
const GICD_IPRIORITYR: u64 = 0x0400;
const GICD_ITARGETSR: u64 = 0x0800;
/// The priority SPIs get.
const SPI_PRIORITY: u32 = 0xa0;
/// GICR_WAKER, and its ChildrenAsleep bit.
const GICR_WAKER: u64 = 0x0014;
const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
/// A redistributor's SGI frame follows its RD frame.
const SGI_FRAME: u64 = 0x1_0000;
/// GICC_CTLR, GICC_PMR, GICC_IAR, GICC_EOIR.
const GICC_CTLR: u64 = 0x00;
const GICC_PMR: u64 = 0x04;
const GICC_IAR: u64 = 0x0c;
const GICC_EOIR: u64 = 0x10;
/// The lowest priority mask: every priority gets through.
const PMR_ALL: u32 = 0xff;
/// INTIDs from here are special (1023: nothing pending).
const SPECIAL: u32 = 1020;
/// Polls of GICR_WAKER before giving up.
const PATIENCE: u32 = 1000;

/// 0 before [`init`], then the GIC's version.
static VERSION: AtomicU64 = AtomicU64::new(0);
/// GICv2: the CPU interface's base.
static CPU: AtomicU64 = AtomicU64::new(0);
/// Interrupts taken that were not the timer's.
static OTHERS: AtomicU64 = AtomicU64::new(0);

/// Sets the GIC up for PPI 27 on vCPU 0. Interrupts stay masked in PSTATE.
pub(crate) fn init(gic: Gic) {
    match gic {
        Gic::V3 {
            distributor,
            redistributors,
        } => {
            arch::write32(distributor + GICD_CTLR, GICD_CTLR_V3);
            arch::write32(redistributors + GICR_WAKER, 0);
            let awake = (0..PATIENCE).any(|_| {
                arch::read32(redistributors + GICR_WAKER)
                    .is_some_and(|w| w & WAKER_CHILDREN_ASLEEP == 0)
            });
            if !awake {
                say!("gic: the redistributor stays asleep");
            }
            arch::write32(
                redistributors + SGI_FRAME + ISENABLER0,
                1 << VIRTUAL_TIMER_INTID,
            );
            arch::icc_enable();
            VERSION.store(3, Ordering::SeqCst);
        }
        Gic::V2 { distributor, cpu } => {
            arch::write32(distributor + GICD_CTLR, GICD_CTLR_V2);
            arch::write32(distributor + ISENABLER0, 1 << VIRTUAL_TIMER_INTID);
            arch::write32(cpu + GICC_PMR, PMR_ALL);
            arch::write32(cpu + GICC_CTLR, 1);
            CPU.store(cpu, Ordering::SeqCst);
            VERSION.store(2, Ordering::SeqCst);
        }
    }
}

/// Sets `intid`'s bit in the 32-bit register of a bank of one bit per
/// interrupt at `bank`.
fn set_bit(bank: u64, intid: u32) {
    let register = bank + 4 * u64::from(intid / 32);
    let value = arch::read32(register).unwrap_or(0);
    arch::write32(register, value | 1 << (intid % 32));
}

/// Sets `intid`'s byte in a bank of one byte per interrupt at `bank` (a
/// 32-bit read and write, as the models take them).
fn set_byte(bank: u64, intid: u32, byte: u32) {
    let register = bank + u64::from(intid & !3);
    let shift = 8 * (intid % 4);
    let value = arch::read32(register).unwrap_or(0);
    arch::write32(register, (value & !(0xff << shift)) | byte << shift);
}

/// Enables SPI `intid` (32 to 1019) for vCPU 0 in the distributor, after
/// [`init`].
pub(crate) fn enable_spi(gic: Gic, intid: u32) {
    let distributor = match gic {
        Gic::V3 { distributor, .. } => {
            set_bit(distributor + GICD_IGROUPR, intid);
            distributor
        }
        Gic::V2 { distributor, .. } => {
            set_byte(distributor + GICD_ITARGETSR, intid, 1);
            distributor
        }
    };
    set_byte(distributor + GICD_IPRIORITYR, intid, SPI_PRIORITY);
    arch::write32(
        distributor + ISENABLER0 + 4 * u64::from(intid / 32),
        1 << (intid % 32),
    );
}

/// Interrupts taken that were not the virtual timer's.
pub(crate) fn others() -> u64 {
    OTHERS.load(Ordering::SeqCst)
}

/// Takes one interrupt (from the IRQ vector): acknowledges it, hands the
/// virtual timer's to the bench and a passed-through device's to
/// [`crate::passthrough`] (which quiets the device), ends it.
pub(crate) fn take() {
    let version = VERSION.load(Ordering::SeqCst);
    let cpu = CPU.load(Ordering::SeqCst);
    let raw = match version {
        3 => arch::icc_acknowledge(),
        2 => arch::read32(cpu + GICC_IAR).unwrap_or(SPECIAL),
        _ => {
            say!("gic: an interrupt before the GIC was set up");
            arch::halt()
        }
    };
    let intid = raw & 0x3ff;
    if intid >= SPECIAL {
        return;
    }
    if intid == VIRTUAL_TIMER_INTID {
        crate::bench::timer_fired();
    } else if crate::passthrough::expects(intid) {
        crate::passthrough::fired(intid);
    } else {
        OTHERS.store(OTHERS.load(Ordering::SeqCst) + 1, Ordering::SeqCst);
    }
    if version == 3 {
        arch::icc_end(raw);
    } else {
        arch::write32(cpu + GICC_EOIR, raw);
    }
}
