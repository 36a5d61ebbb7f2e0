// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The interrupt controller, as far as the virtual timer's interrupt
//! (PPI 27) needs it.
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
//! list register.

use core::sync::atomic::{AtomicU64, Ordering};

use hv_abi::vm::VIRTUAL_TIMER_INTID;

use crate::arch;
use crate::console::say;
use crate::machine::Gic;

/// GICD_CTLR (both versions).
const GICD_CTLR: u64 = 0x0000;
/// GICD_ISENABLER0 (GICv2; banked per CPU) and, in GICv3's SGI frame,
/// GICR_ISENABLER0.
const ISENABLER0: u64 = 0x0100;
/// GICv3 GICD_CTLR: ARE, EnableGrp1, EnableGrp0 (the layout with one
/// security state).
const GICD_CTLR_V3: u32 = (1 << 4) | (1 << 1) | (1 << 0);
/// GICv2 GICD_CTLR: enabled.
const GICD_CTLR_V2: u32 = 1;
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

/// Interrupts taken that were not the virtual timer's.
pub(crate) fn others() -> u64 {
    OTHERS.load(Ordering::SeqCst)
}

/// Takes one interrupt (from the IRQ vector): acknowledges it, hands the
/// virtual timer's to the bench, ends it.
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
    } else {
        OTHERS.store(OTHERS.load(Ordering::SeqCst) + 1, Ordering::SeqCst);
    }
    if version == 3 {
        arch::icc_end(raw);
    } else {
        arch::write32(cpu + GICC_EOIR, raw);
    }
}
