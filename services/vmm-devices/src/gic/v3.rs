// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The GICv3 distributor and redistributors, as Linux 6.1's `irq-gic-v3` driver uses them.
//!
//! The model is a GIC with a single security state (GICD_CTLR.DS = 1, as KVM presents) and
//! affinity routing always on (ARE = 1): the guest cannot turn it off, so the distributor's
//! registers for INTIDs 0..31 are RAZ/WI and SGIs and PPIs live in each vCPU's
//! redistributor. No LPIs, no ITS, no message-based SPIs, no extended ranges.
//!
//! Addressing: [`GicV3Model::read`] and [`GicV3Model::write`] take a [`V3Region`]
//! (the distributor, or vCPU *i*'s redistributor) and the offset inside it (0..64 KiB for the
//! distributor, 0..128 KiB for a redistributor: RD_base, then SGI_base at 64 KiB).
//! [`V3Layout::locate`] turns a guest physical address into that pair.
//!
//! What Linux relies on (`drivers/irqchip/irq-gic-v3.c`, `irq-gic-common.c`):
//! - `gic_validate_dist_version` and `gic_iterate_rdists` check GICD_PIDR2 and GICR_PIDR2
//!   for ArchRev 3 (0x3b here).
//! - `gic_init_bases` reads GICD_TYPER (ITLinesNumber gives `GIC_LINE_NR`; IDbits; no LPIS,
//!   MBIS, ESPI or RSS), GICD_IIDR for quirks and GICD_TYPER2.
//! - `gic_dist_init` writes GICD_CTLR = 0, waits for RWP (always 0 here), sets every SPI to
//!   group 1 (IGROUPR), then `gic_dist_config` makes them level (ICFGR), priority 0xa0
//!   (IPRIORITYR) and disabled and inactive (ICENABLER/ICACTIVER); it enables with
//!   ARE_NS | EnableGrp1A | EnableGrp1 (bits 4, 1, 0: here ARE, EnableGrp1, EnableGrp0) and
//!   routes every SPI to the boot CPU with 64-bit writes to IROUTER.
//! - `__gic_populate_rdist` finds each CPU's redistributor by matching bits 63:32 of GICR_TYPER
//!   with its MPIDR affinity, walking 128 KiB frames until GICR_TYPER.Last (VLPIS clear, so
//!   no extra frames); `gic_update_rdist_properties` reads PPInum (0: 16 PPIs).
//! - `gic_enable_redist` clears GICR_WAKER.ProcessorSleep and waits for ChildrenAsleep to
//!   clear.
//! - `gic_cpu_init` sets SGIs and PPIs to group 1 (GICR_IGROUPR0); `gic_cpu_config`
//!   deactivates and disables all 32 and sets their priorities; each of the seven IPIs (SGIs
//!   0..6) is then enabled on its own as it is requested, and the timer's PPI 27 after
//!   `gic_set_type` has read ICFGR1.
//! - `tests/linux_trace.rs` replays every access Linux 6.1 made to QEMU's GICv3 while
//!   booting and checks each read against QEMU's answer.
//! - `gic_set_type` writes ICFGR and reads it back (`gic_configure_irq`): SPI and PPI
//!   configuration bits are writable, SGIs are edge and read-only.
//! - Masking and unmasking write ICENABLER/ISENABLER, `gic_retrigger` and
//!   `irq_set_irqchip_state` ISPENDR/ICPENDR, `synchronize_irq` reads ISACTIVER (so active
//!   bits read as the guest last wrote them, normally 0, never stuck at 1).

use alloc::vec;
use alloc::vec::Vec;

use super::state::{BitOp, Field, IrqState, PRIVATE, SGIS};
use super::{Actions, IIDR, Injection, bitmap_register, extract, spi_count, valid_access};
use crate::layout::{GICD_V3_SIZE, GICR_FRAME_SIZE, GICR_SGI_OFFSET, MAX_VCPUS_GICV3};
use crate::psci::mpidr_to_vcpu;

// Distributor and SGI_base offsets (the SGI frame reuses the distributor's for INTIDs 0..31).
const CTLR: u64 = 0x0000;
const TYPER: u64 = 0x0004;
const IIDR_OFFSET: u64 = 0x0008;
const TYPER2: u64 = 0x000c;
const IPRIORITYR: u64 = 0x0400;
const IPRIORITYR_END: u64 = 0x0800;
const ICFGR: u64 = 0x0c00;
const ICFGR_END: u64 = 0x0d00;
const IROUTER: u64 = 0x6000;
const IROUTER_END: u64 = 0x8000;
const PIDR2: u64 = 0xffe8;
// Redistributor RD_base offsets.
const GICR_IIDR: u64 = 0x0004;
const GICR_TYPER: u64 = 0x0008;
const GICR_WAKER: u64 = 0x0014;

/// GICD_CTLR: EnableGrp0, EnableGrp1 (DS = 1 layout).
const CTLR_ENABLE_GRP0: u32 = 1 << 0;
const CTLR_ENABLE_GRP1: u32 = 1 << 1;
/// GICD_CTLR: affinity routing enabled (reads as one).
const CTLR_ARE: u32 = 1 << 4;
/// GICD_CTLR: single security state (reads as one).
const CTLR_DS: u32 = 1 << 6;
/// GICD_TYPER.IDbits: 10 bits of INTID.
const TYPER_ID_BITS: u32 = 9 << 19;
/// PIDR2: ArchRev 3, with the JEP106-used bit and Arm's identity code bits.
const PIDR2_GICV3: u32 = 0x3b;
/// GICR_WAKER bits.
const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
/// GICR_TYPER.Last.
const GICR_TYPER_LAST: u64 = 1 << 4;
/// IROUTER: Interrupt Routing Mode (any PE), and the bits that hold (Aff0..Aff2, IRM; Aff3
/// is RES0 as GICD_TYPER.A3V is 0).
const IROUTER_IRM: u64 = 1 << 31;
const IROUTER_MASK: u64 = 0x80ff_ffff;

/// Which frame an access is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum V3Region {
    /// The distributor (64 KiB).
    Distributor,
    /// The redistributor of this vCPU (128 KiB: RD_base, then SGI_base).
    Redistributor(u8),
}

/// Where the guest's GIC frames are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct V3Layout {
    /// The distributor's base.
    pub distributor: u64,
    /// vCPU 0's redistributor; vCPU *i*'s is 128 KiB × *i* above.
    pub redistributors: u64,
    /// How many redistributors.
    pub vcpus: u8,
}

impl V3Layout {
    /// The frame a guest physical address falls in and the offset inside it, if any.
    pub fn locate(&self, address: u64) -> Option<(V3Region, u64)> {
        if let Some(offset) = address
            .checked_sub(self.distributor)
            .filter(|&o| o < GICD_V3_SIZE)
        {
            return Some((V3Region::Distributor, offset));
        }
        let offset = address.checked_sub(self.redistributors)?;
        let index = u8::try_from(offset / GICR_FRAME_SIZE)
            .ok()
            .filter(|&i| i < self.vcpus)?;
        Some((V3Region::Redistributor(index), offset % GICR_FRAME_SIZE))
    }
}

/// A GICv3 distributor and its redistributors.
#[derive(Clone, Debug)]
pub struct GicV3Model {
    state: IrqState,
    irouter: Vec<u64>,
    asleep: Vec<bool>,
}

impl GicV3Model {
    /// A GIC for `vcpus` vCPUs (at most 16, more are ignored) and `spis` SPIs (rounded up to a
    /// multiple of 32, at most [`super::MAX_SPIS`]), in its reset state: everything disabled,
    /// group 0, SPIs level-sensitive and routed to vCPU 0, redistributors asleep.
    pub fn new(vcpus: u8, spis: u32) -> Self {
        let vcpus = vcpus.min(MAX_VCPUS_GICV3);
        let spis = spi_count(spis);
        let mut model = Self {
            state: IrqState::new(vcpus, spis, false),
            irouter: vec![0; spis as usize],
            asleep: vec![true; usize::from(vcpus)],
        };
        let mut ignored = Actions::default();
        for intid in PRIVATE..PRIVATE + spis {
            model.state.set_route(intid, Some(0), &mut ignored);
        }
        model
    }

    /// How many vCPUs.
    pub fn vcpus(&self) -> u8 {
        self.state.vcpus()
    }

    /// How many SPIs.
    pub fn spi_count(&self) -> u32 {
        self.state.spi_count()
    }

    /// The guest reads `size` bytes (1, 2, 4 or 8, naturally aligned) at `offset` in `region`.
    /// Reads have no side effects. Unknown registers, sizes and regions read 0.
    pub fn read(&self, region: V3Region, offset: u64, size: u8) -> u64 {
        if !valid_access(offset, size) {
            return 0;
        }
        if let Some(base) = self.register64(region, offset) {
            return extract(self.read64(region, base), base, offset, size);
        }
        let base = offset & !3;
        let mut value = u64::from(self.read32(region, base));
        if size == 8 {
            value |= u64::from(self.read32(region, base + 4)) << 32;
        }
        extract(value, base, offset, size)
    }

    /// The guest writes the low `size` bytes of `value` at `offset` in `region`; returns what
    /// the kernel must do. Byte and halfword writes reach only the byte-accessible
    /// IPRIORITYR; 32-bit writes reach either half of a 64-bit register.
    pub fn write(&mut self, region: V3Region, offset: u64, size: u8, value: u64) -> Actions {
        let mut actions = Actions::default();
        if !valid_access(offset, size) {
            return actions;
        }
        if let Some(base) = self.register64(region, offset) {
            let merged = match (size, offset == base) {
                (8, _) => value,
                (4, true) => (self.read64(region, base) & !0xffff_ffff) | (value & 0xffff_ffff),
                (4, false) => (self.read64(region, base) & 0xffff_ffff) | (value << 32),
                _ => return actions,
            };
            self.write64(region, base, merged, &mut actions);
        } else if let Some((vcpu, first)) = self.priority_byte(region, offset) {
            for byte in 0..u32::from(size) {
                self.state
                    .set_priority(first + byte, vcpu, (value >> (8 * byte)) as u8);
            }
        } else if size == 4 {
            self.write32(region, offset, value as u32, &mut actions);
        } else if size == 8 {
            self.write32(region, offset, value as u32, &mut actions);
            self.write32(region, offset + 4, (value >> 32) as u32, &mut actions);
        }
        actions
    }

    /// Whether the guest has enabled `intid` (for SGIs and PPIs, on `vcpu`; for SPIs `vcpu`
    /// does not matter).
    pub fn is_enabled(&self, intid: u32, vcpu: u8) -> bool {
        self.state.get(Field::Enabled, intid, vcpu)
    }

    /// Whether `intid` is pending in the model (held, or a level line that is high).
    pub fn is_pending(&self, intid: u32, vcpu: u8) -> bool {
        self.state.pending_view(intid, vcpu)
    }

    /// The vCPU SPI `intid` (32 and up) is routed to: IROUTER's Aff0 when it names one of
    /// the vCPUs, vCPU 0 for IRM = 1 ("any"), `None` if it names no vCPU or `intid` is no SPI.
    pub fn route(&self, intid: u32) -> Option<u8> {
        self.state.route(intid)
    }

    /// An emulated device's interrupt line for SPI `intid` changes level. Returns the
    /// injection to make when the line rises while the SPI is deliverable (enabled, its group
    /// enabled, routed to a vCPU); otherwise the model remembers it pending and a later write
    /// that makes it deliverable carries the injection. A level-sensitive SPI whose line
    /// falls before that is no longer pending. Calling again with the same level does nothing:
    /// after the guest deactivates it, [`GicV3Model::resample`] re-injects a line still high.
    pub fn set_line(&mut self, intid: u32, level: bool) -> Option<Injection> {
        if intid < PRIVATE {
            return None;
        }
        self.state.set_line(intid, 0, level)
    }

    /// As [`GicV3Model::set_line`], for PPI `intid` (16..31) of `vcpu`.
    pub fn set_ppi_line(&mut self, vcpu: u8, intid: u32, level: bool) -> Option<Injection> {
        if !(SGIS..PRIVATE).contains(&intid) {
            return None;
        }
        self.state.set_line(intid, vcpu, level)
    }

    /// The guest deactivated `intid` on `vcpu` (the kernel saw its list register's EOI): if
    /// it is level-sensitive and its line is still high, it is injected again.
    pub fn resample(&mut self, intid: u32, vcpu: u8) -> Option<Injection> {
        self.state.resample(intid, vcpu)
    }

    /// `sender` wrote `value` to ICC_SGI1R_EL1 (trapped by the kernel). The SGI (INTID in
    /// bits 27:24) goes to every vCPU but the sender when IRM (bit 40) is set; otherwise, when
    /// Aff1..3 are 0, to the vCPUs of TargetList (bits 15:0), bit *b* naming Aff0 = RS × 16 + *b*
    /// (RS in bits 47:44). Each target gets the SGI pending, and injected when it has the SGI
    /// enabled. Which group the SGI is in is the target's IGROUPR0, as with GICD_CTLR.DS set.
    pub fn send_sgi(&mut self, sender: u8, value: u64) -> Actions {
        let mut actions = Actions::default();
        let sgi = ((value >> 24) & 0xf) as u32;
        let vcpus = self.vcpus();
        if value & (1 << 40) != 0 {
            for target in (0..vcpus).filter(|&t| t != sender) {
                self.state
                    .apply(BitOp::SetPending, sgi, target, &mut actions);
            }
            return actions;
        }
        let aff123 = value & 0x00ff_00ff_00ff_0000;
        if aff123 != 0 {
            return actions;
        }
        let range = ((value >> 44) & 0xf) as u32 * 16;
        for bit in (0..16).filter(|bit| value & (1 << bit) != 0) {
            if let Ok(target) = u8::try_from(range + bit) {
                self.state
                    .apply(BitOp::SetPending, sgi, target, &mut actions);
            }
        }
        actions
    }

    fn redistributor_vcpu(&self, region: V3Region) -> Option<u8> {
        match region {
            V3Region::Redistributor(vcpu) if vcpu < self.vcpus() => Some(vcpu),
            _ => None,
        }
    }

    /// The base of the 64-bit register `offset` falls in, if it does.
    fn register64(&self, region: V3Region, offset: u64) -> Option<u64> {
        let base = offset & !7;
        let is_64 = match region {
            V3Region::Distributor => (IROUTER..IROUTER_END).contains(&base),
            V3Region::Redistributor(_) => base == GICR_TYPER || base == 0x0070 || base == 0x0078,
        };
        is_64.then_some(base)
    }

    fn read64(&self, region: V3Region, base: u64) -> u64 {
        match region {
            V3Region::Distributor => self.irouter_index(base).map_or(0, |i| self.irouter[i]),
            V3Region::Redistributor(_) => {
                let Some(vcpu) = self.redistributor_vcpu(region) else {
                    return 0;
                };
                if base != GICR_TYPER {
                    return 0; // GICR_PROPBASER, GICR_PENDBASER: no LPIs.
                }
                let last = if vcpu + 1 == self.vcpus() {
                    GICR_TYPER_LAST
                } else {
                    0
                };
                (crate::psci::vcpu_mpidr(vcpu) << 32) | (u64::from(vcpu) << 8) | last
            }
        }
    }

    fn write64(&mut self, region: V3Region, base: u64, value: u64, actions: &mut Actions) {
        if region != V3Region::Distributor {
            return;
        }
        let Some(index) = self.irouter_index(base) else {
            return;
        };
        let value = value & IROUTER_MASK;
        self.irouter[index] = value;
        let target = if value & IROUTER_IRM != 0 {
            Some(0)
        } else {
            mpidr_to_vcpu(value, self.vcpus())
        };
        self.state
            .set_route(PRIVATE + index as u32, target, actions);
    }

    fn irouter_index(&self, base: u64) -> Option<usize> {
        let intid = base.checked_sub(IROUTER)? / 8;
        let index = intid.checked_sub(u64::from(PRIVATE))?;
        (index < u64::from(self.spi_count())).then_some(index as usize)
    }

    /// For an IPRIORITYR byte: the vCPU whose bank it is in and the first INTID it covers.
    fn priority_byte(&self, region: V3Region, offset: u64) -> Option<(u8, u32)> {
        match region {
            V3Region::Distributor => {
                let intid = offset
                    .checked_sub(IPRIORITYR)
                    .filter(|_| offset < IPRIORITYR_END)? as u32;
                // With affinity routing, bytes for INTIDs 0..31 are RAZ/WI.
                (intid >= PRIVATE).then_some((0, intid))
            }
            V3Region::Redistributor(_) => {
                let vcpu = self.redistributor_vcpu(region)?;
                let intid = offset.checked_sub(GICR_SGI_OFFSET + IPRIORITYR)?;
                (intid < u64::from(PRIVATE)).then_some((vcpu, intid as u32))
            }
        }
    }

    fn read32(&self, region: V3Region, offset: u64) -> u32 {
        if let Some((vcpu, first)) = self.priority_byte(region, offset) {
            return (0..4).fold(0, |word, i| {
                word | (u32::from(self.state.priority(first + i, vcpu)) << (8 * i))
            });
        }
        match region {
            V3Region::Distributor => self.read_distributor(offset),
            V3Region::Redistributor(_) => {
                let Some(vcpu) = self.redistributor_vcpu(region) else {
                    return 0;
                };
                match offset.checked_sub(GICR_SGI_OFFSET) {
                    Some(sgi_offset) => self.read_banked(sgi_offset, vcpu, 0).unwrap_or(0),
                    None => self.read_rd_base(offset, vcpu),
                }
            }
        }
    }

    fn read_distributor(&self, offset: u64) -> u32 {
        match offset {
            CTLR => CTLR_DS | CTLR_ARE | self.state.group_enable_bits(),
            TYPER => {
                let lines = (self.spi_count() + PRIVATE) / 32 - 1;
                let cpus = u32::from(self.vcpus().clamp(1, 8) - 1);
                TYPER_ID_BITS | (cpus << 5) | lines
            }
            IIDR_OFFSET => IIDR,
            TYPER2 => 0,
            PIDR2 => PIDR2_GICV3,
            _ => self.read_banked(offset, 0, 1).unwrap_or(0),
        }
    }

    fn read_rd_base(&self, offset: u64, vcpu: u8) -> u32 {
        match offset {
            GICR_IIDR => IIDR,
            GICR_WAKER if self.asleep[usize::from(vcpu)] => {
                WAKER_PROCESSOR_SLEEP | WAKER_CHILDREN_ASLEEP
            }
            PIDR2 => PIDR2_GICV3,
            // GICR_CTLR (no LPIs, RWP and UWP clear), GICR_WAKER awake, the rest.
            _ => 0,
        }
    }

    /// The bitmap and configuration registers shared by the distributor (INTIDs from 32:
    /// `first_word` 1) and the SGI frame (INTIDs 0..31 of `vcpu`: `first_word` 0).
    fn read_banked(&self, offset: u64, vcpu: u8, first_word: u32) -> Option<u32> {
        if let Some(word) = config_word(offset, first_word) {
            return Some(self.state.read_config(word * 16, vcpu));
        }
        let (field, _, word) =
            bitmap_register(offset).filter(|&(_, _, w)| in_frame(w, first_word))?;
        Some(self.state.read_word(field, word * 32, vcpu))
    }

    fn write32(&mut self, region: V3Region, offset: u64, value: u32, actions: &mut Actions) {
        match region {
            V3Region::Distributor => match offset {
                CTLR => self.state.set_group_enables(
                    value & CTLR_ENABLE_GRP0 != 0,
                    value & CTLR_ENABLE_GRP1 != 0,
                    actions,
                ),
                _ => self.write_banked(offset, 0, 1, value, actions),
            },
            V3Region::Redistributor(_) => {
                let Some(vcpu) = self.redistributor_vcpu(region) else {
                    return;
                };
                match offset.checked_sub(GICR_SGI_OFFSET) {
                    Some(sgi_offset) => self.write_banked(sgi_offset, vcpu, 0, value, actions),
                    None if offset == GICR_WAKER => {
                        self.asleep[usize::from(vcpu)] = value & WAKER_PROCESSOR_SLEEP != 0;
                    }
                    None => {}
                }
            }
        }
    }

    fn write_banked(
        &mut self,
        offset: u64,
        vcpu: u8,
        first_word: u32,
        value: u32,
        actions: &mut Actions,
    ) {
        if let Some(word) = config_word(offset, first_word) {
            self.state.write_config(word * 16, vcpu, value);
        } else if let Some((_, op, word)) =
            bitmap_register(offset).filter(|&(_, _, w)| in_frame(w, first_word))
        {
            match op {
                Some(op) => self.state.apply_word(op, word * 32, vcpu, value, actions),
                None => self.state.write_groups(word * 32, vcpu, value, actions),
            }
        }
    }
}

/// Word 0 of each bitmap block is the SGI frame's (INTIDs 0..31); the distributor has the rest.
fn in_frame(word: u32, first_word: u32) -> bool {
    if first_word == 0 {
        word == 0
    } else {
        word >= first_word
    }
}

/// The ICFGR word at `offset` (16 INTIDs each) if the frame has it: words 0 and 1 (SGIs and
/// PPIs) in the SGI frame, the rest in the distributor.
fn config_word(offset: u64, first_word: u32) -> Option<u32> {
    let word = (offset.checked_sub(ICFGR).filter(|_| offset < ICFGR_END)? / 4) as u32;
    let in_range = if first_word == 0 { word < 2 } else { word >= 2 };
    in_range.then_some(word)
}

#[cfg(test)]
mod tests;
