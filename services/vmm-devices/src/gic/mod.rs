// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Models of the GIC's distributor (GICv3: and redistributors), which the monitor emulates.
//!
//! The split of work: the kernel owns the GIC's virtual CPU interface (list registers,
//! maintenance interrupts, the guest's ICC/GICC accesses); the monitor owns everything a
//! guest configures through the distributor's memory-mapped frames, and decides from it
//! which interrupt goes to which vCPU, when. The models here are that decision:
//!
//! - [`GicV3Model`]: distributor and one redistributor per vCPU, for `arm,gic-v3` guests.
//! - [`GicV2Model`]: distributor only, for `arm,cortex-a15-gic` guests; the CPU interface is
//!   the hardware's virtual one, mapped by the kernel.
//!
//! Interrupts enter a model three ways: the guest writes a pending register (ISPENDR, GICv2's
//! SGIR and SPENDSGIR), the guest sends a GICv3 SGI through ICC_SGI1R_EL1 (trapped by the
//! kernel, [`GicV3Model::send_sgi`]), or an emulated device's line changes level
//! (`set_line`). An interrupt that is pending, enabled, in an enabled group and has a target
//! vCPU is handed to the kernel as an [`Injection`]; one that is not waits, pending, until a
//! write makes it deliverable, and that write's [`Actions`] carry the injection then.
//!
//! What the models do not see: once injected, an interrupt's pending and active states live
//! in a list register, so ISPENDR/ISACTIVER read what the monitor holds (pending interrupts
//! not yet injected, level lines that are high, active bits the guest wrote), not the vCPU
//! interface's state. The kernel must therefore:
//! - drop an [`Action::Inject`] of an INTID that a list register of that vCPU already holds
//!   pending (a level line re-asserted, an SGI sent twice), or mark it pending if it is only
//!   active;
//! - carry out [`Action::Retract`] (remove a pending-only list register entry) and
//!   [`Action::Deactivate`] (clear the active state), and tell the monitor when the guest
//!   deactivates a level-sensitive interrupt so it can [`GicV3Model::resample`] the line.
//!
//! Priorities keep their top five bits ([`PRIORITY_MASK`]): 32 levels, what a list
//! register's priority field carries on common hardware (ICH_VTR_EL2.PRIbits = 4).
//!
//! No model panics on any input: offsets, sizes, values, INTIDs and vCPU indices that do not
//! exist read as zero and change nothing.

mod state;
pub mod v2;
pub mod v3;

use alloc::vec::Vec;

use state::{BitOp, Field};

pub use v2::GicV2Model;
pub use v3::{GicV3Model, V3Layout, V3Region};

/// The priority bits implemented (the top five).
pub const PRIORITY_MASK: u8 = 0xf8;

/// SPIs a model has when the monitor has no reason to choose: 64, INTIDs 32..95.
pub const DEFAULT_SPIS: u32 = 64;

/// The most SPIs a GIC can have (INTIDs 32..1019, rounded down to whole registers).
pub const MAX_SPIS: u32 = 960;

/// The value both models give GICD_IIDR (and GICR_IIDR): implementer 0x43b (Arm's JEP106
/// code, as every GIC model Linux knows uses), product 0x42 ('B', Bulkhead), variant and
/// revision 0. It matches none of the quirks in Linux's `gic_quirks`.
pub const IIDR: u32 = 0x4200_043b;

/// An interrupt to put in one of a vCPU's list registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Injection {
    /// The INTID.
    pub intid: u32,
    /// The vCPU to deliver it to.
    pub vcpu: u8,
    /// Its priority (top five bits meaningful).
    pub priority: u8,
    /// Group 1 (else group 0). GICv2 Linux leaves every interrupt in group 0, signalled as
    /// IRQ by the virtual CPU interface; GICv3 Linux puts them all in group 1.
    pub group1: bool,
    /// GICv2 SGIs: the vCPU that sent it, for the list register's CPUID field.
    pub source: Option<u8>,
}

/// Something the kernel must do after a guest access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Make the interrupt pending in the vCPU's list registers.
    Inject(Injection),
    /// The guest cleared the interrupt's pending state or disabled it: remove it from the
    /// vCPU's list registers if it is there and only pending.
    Retract {
        /// The INTID.
        intid: u32,
        /// The vCPU it was injected into.
        vcpu: u8,
    },
    /// The guest cleared the interrupt's active state (ICACTIVER): clear it in the vCPU's
    /// list registers.
    Deactivate {
        /// The INTID.
        intid: u32,
        /// The vCPU it was injected into.
        vcpu: u8,
    },
    /// A PPI of a vCPU was enabled or disabled (the kernel delivers the timer's PPIs itself,
    /// and should hold them while the guest has them disabled).
    PpiEnable {
        /// The INTID (16..31).
        intid: u32,
        /// The vCPU.
        vcpu: u8,
        /// Enabled now.
        enabled: bool,
    },
}

/// What a write asks of the kernel, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Actions {
    list: Vec<Action>,
}

impl Actions {
    /// No action.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// How many actions.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// The actions, in the order they must be carried out.
    pub fn as_slice(&self) -> &[Action] {
        &self.list
    }

    /// Just the injections.
    pub fn injections(&self) -> impl Iterator<Item = Injection> + '_ {
        self.list.iter().filter_map(|action| match action {
            Action::Inject(injection) => Some(*injection),
            _ => None,
        })
    }

    /// Appends the actions of `other`.
    pub fn extend(&mut self, other: Actions) {
        self.list.extend(other.list);
    }

    fn push(&mut self, action: Action) {
        self.list.push(action);
    }
}

impl IntoIterator for Actions {
    type Item = Action;
    type IntoIter = alloc::vec::IntoIter<Action>;

    fn into_iter(self) -> Self::IntoIter {
        self.list.into_iter()
    }
}

/// Rounds a requested SPI count to whole 32-interrupt registers, at most [`MAX_SPIS`].
fn spi_count(spis: u32) -> u32 {
    spis.min(MAX_SPIS).div_ceil(32) * 32
}

/// The bytes of an access: 1, 2, 4 or 8, aligned to its size.
fn valid_access(offset: u64, size: u8) -> bool {
    matches!(size, 1 | 2 | 4 | 8) && offset.is_multiple_of(u64::from(size))
}

/// The part of `register` (at `base`) an access of `size` bytes at `offset` reads.
fn extract(register: u64, base: u64, offset: u64, size: u8) -> u64 {
    let shifted = register >> ((offset - base) * 8);
    if size >= 8 {
        shifted
    } else {
        shifted & ((1 << (u32::from(size) * 8)) - 1)
    }
}

// Offsets of the bitmap registers, the same in both distributors and the GICv3 SGI frame.
const IGROUPR: u64 = 0x080;
const ISENABLER: u64 = 0x100;
const ICENABLER: u64 = 0x180;
const ISPENDR: u64 = 0x200;
const ICPENDR: u64 = 0x280;
const ISACTIVER: u64 = 0x300;
const ICACTIVER: u64 = 0x380;
const BITMAPS_END: u64 = 0x400;

/// A register among the bitmap blocks (0x080..0x400): the state it shows, what writing ones
/// to it does (`None` for IGROUPR, which is written whole), and its word: it covers INTIDs
/// 32 × word to 32 × word + 31.
fn bitmap_register(offset: u64) -> Option<(Field, Option<BitOp>, u32)> {
    let (field, op, start) = match offset {
        IGROUPR..ISENABLER => (Field::Group, None, IGROUPR),
        ISENABLER..ICENABLER => (Field::Enabled, Some(BitOp::SetEnable), ISENABLER),
        ICENABLER..ISPENDR => (Field::Enabled, Some(BitOp::ClearEnable), ICENABLER),
        ISPENDR..ICPENDR => (Field::Pending, Some(BitOp::SetPending), ISPENDR),
        ICPENDR..ISACTIVER => (Field::Pending, Some(BitOp::ClearPending), ICPENDR),
        ISACTIVER..ICACTIVER => (Field::Active, Some(BitOp::SetActive), ISACTIVER),
        ICACTIVER..BITMAPS_END => (Field::Active, Some(BitOp::ClearActive), ICACTIVER),
        _ => return None,
    };
    Some((field, op, ((offset - start) / 4) as u32))
}

#[cfg(test)]
mod tests;
