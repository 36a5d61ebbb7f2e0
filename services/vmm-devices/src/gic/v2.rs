// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The GICv2 distributor, as Linux 6.1's `irq-gic` driver uses it.
//!
//! The model is a GICv2 without the Security Extensions, for up to eight vCPUs. Registers
//! for INTIDs 0..31 are banked: every access names the vCPU that made it. The CPU interface
//! is not here: the kernel maps the hardware's virtual CPU interface at the guest's GICC
//! address, and the list registers carry what [`Action::Inject`](super::Action::Inject)
//! asks, including an SGI's source vCPU.
//!
//! What Linux relies on (`drivers/irqchip/irq-gic.c`, `irq-gic-common.c`):
//! - `gic_init_bases` reads GICD_TYPER.ITLinesNumber for the number of interrupts.
//! - `gic_get_cpumask` reads ITARGETSR0..7 to learn its own CPU's bit ("GIC CPU mask not
//!   found - kernel will fail to boot" otherwise): they read as the accessing vCPU's bit in
//!   every byte.
//! - `gic_dist_init` disables the distributor (GICD_CTLR = 0), sends every SPI to the boot
//!   CPU (ITARGETSR, 32-bit writes), makes them level-sensitive, priority 0xa0, inactive and
//!   disabled (`gic_dist_config`), then writes GICD_CTLR = 1. It never writes IGROUPR, so
//!   everything stays in group 0, and the EnableGrp0 bit is the one that matters.
//! - `gic_cpu_init` (`gic_cpu_config`) deactivates and disables all 32 banked interrupts and
//!   sets their priorities (the rest of it is the CPU interface); each IPI (SGIs 0..6) is then
//!   enabled on its own as it is requested.
//! - `gic_ipi_send_mask` writes GICD_SGIR with a CPU target list; `gic_set_affinity` writes
//!   one ITARGETSR byte with one CPU's bit; `gic_set_type` writes ICFGR and reads it back.
//!
//! Choices: SGI enable bits are writable (the architecture allows either; Linux enables them
//! all). ISPENDR and ICPENDR ignore SGI bits, as the architecture says: an SGI is pending per
//! source, set by GICD_SGIR and SPENDSGIR, cleared by CPENDSGIR, all three modelled. An SPI
//! with several target CPUs goes to the lowest-numbered one. NSACR is RAZ/WI.

use alloc::vec;
use alloc::vec::Vec;

use super::state::{BitOp, Field, IrqState, PRIVATE, SGIS, valid_cpu_mask};
use super::{Actions, IIDR, Injection, bitmap_register, extract, spi_count, valid_access};
use crate::layout::{GICD_V2_SIZE, MAX_VCPUS_GICV2};

const CTLR: u64 = 0x000;
const TYPER: u64 = 0x004;
const IIDR_OFFSET: u64 = 0x008;
const IPRIORITYR: u64 = 0x400;
const IPRIORITYR_END: u64 = 0x800;
const ITARGETSR: u64 = 0x800;
const ITARGETSR_END: u64 = 0xc00;
const ICFGR: u64 = 0xc00;
const ICFGR_END: u64 = 0xd00;
const SGIR: u64 = 0xf00;
const CPENDSGIR: u64 = 0xf10;
const SPENDSGIR: u64 = 0xf20;
const SGI_PENDING_END: u64 = 0xf30;
const PIDR2: u64 = 0xfe8;

/// GICD_CTLR: EnableGrp0, EnableGrp1.
const CTLR_ENABLE_GRP0: u32 = 1 << 0;
const CTLR_ENABLE_GRP1: u32 = 1 << 1;
/// PIDR2: ArchRev 2.
const PIDR2_GICV2: u32 = 0x2b;

/// A GICv2 distributor.
#[derive(Clone, Debug)]
pub struct GicV2Model {
    state: IrqState,
    targets: Vec<u8>,
}

impl GicV2Model {
    /// A distributor for `vcpus` vCPUs (at most 8, more are ignored) and `spis` SPIs (rounded
    /// up to a multiple of 32, at most [`super::MAX_SPIS`]), in its reset state: everything
    /// disabled, group 0, SPIs level-sensitive and targeting no CPU.
    pub fn new(vcpus: u8, spis: u32) -> Self {
        let spis = spi_count(spis);
        Self {
            state: IrqState::new(vcpus.min(MAX_VCPUS_GICV2), spis, true),
            targets: vec![0; spis as usize],
        }
    }

    /// How many vCPUs.
    pub fn vcpus(&self) -> u8 {
        self.state.vcpus()
    }

    /// How many SPIs.
    pub fn spi_count(&self) -> u32 {
        self.state.spi_count()
    }

    /// `vcpu` reads `size` bytes (1, 2, 4 or 8, naturally aligned) at `offset`. Reads have no
    /// side effects. Unknown registers, sizes and vCPUs read 0.
    pub fn read(&self, vcpu: u8, offset: u64, size: u8) -> u64 {
        if !valid_access(offset, size) || vcpu >= self.vcpus() || offset >= GICD_V2_SIZE {
            return 0;
        }
        let base = offset & !3;
        let mut value = u64::from(self.read32(vcpu, base));
        if size == 8 {
            value |= u64::from(self.read32(vcpu, base + 4)) << 32;
        }
        extract(value, base, offset, size)
    }

    /// `vcpu` writes the low `size` bytes of `value` at `offset`; returns what the kernel must
    /// do. Byte and halfword writes reach only the byte-accessible registers (IPRIORITYR,
    /// ITARGETSR, CPENDSGIR, SPENDSGIR).
    pub fn write(&mut self, vcpu: u8, offset: u64, size: u8, value: u64) -> Actions {
        let mut actions = Actions::default();
        if !valid_access(offset, size) || vcpu >= self.vcpus() || offset >= GICD_V2_SIZE {
            return actions;
        }
        if is_byte_accessible(offset) {
            for byte in 0..u64::from(size) {
                self.write_byte(
                    vcpu,
                    offset + byte,
                    (value >> (8 * byte)) as u8,
                    &mut actions,
                );
            }
        } else if size == 4 {
            self.write32(vcpu, offset, value as u32, &mut actions);
        } else if size == 8 {
            self.write32(vcpu, offset, value as u32, &mut actions);
            self.write32(vcpu, offset + 4, (value >> 32) as u32, &mut actions);
        }
        actions
    }

    /// Whether the guest has enabled `intid` (for SGIs and PPIs, on `vcpu`).
    pub fn is_enabled(&self, intid: u32, vcpu: u8) -> bool {
        self.state.get(Field::Enabled, intid, vcpu)
    }

    /// Whether `intid` is pending in the model (held, or a level line that is high).
    pub fn is_pending(&self, intid: u32, vcpu: u8) -> bool {
        self.state.pending_view(intid, vcpu)
    }

    /// The CPU targets of SPI `intid` (ITARGETSR), one bit per vCPU.
    pub fn targets(&self, intid: u32) -> u8 {
        intid
            .checked_sub(PRIVATE)
            .and_then(|i| self.targets.get(i as usize))
            .copied()
            .unwrap_or(0)
    }

    /// The vCPU SPI `intid` goes to: the lowest of its targets, or `None` without one.
    pub fn route(&self, intid: u32) -> Option<u8> {
        self.state.route(intid)
    }

    /// An emulated device's line for SPI `intid` changes level; see
    /// [`super::GicV3Model::set_line`], whose rules these are too.
    pub fn set_line(&mut self, intid: u32, level: bool) -> Option<Injection> {
        if intid < PRIVATE {
            return None;
        }
        self.state.set_line(intid, 0, level)
    }

    /// As [`GicV2Model::set_line`], for PPI `intid` (16..31) of `vcpu`.
    pub fn set_ppi_line(&mut self, vcpu: u8, intid: u32, level: bool) -> Option<Injection> {
        if !(SGIS..PRIVATE).contains(&intid) {
            return None;
        }
        self.state.set_line(intid, vcpu, level)
    }

    /// The guest deactivated `intid` on `vcpu`: if it is level-sensitive and its line is
    /// still high, it is injected again.
    pub fn resample(&mut self, intid: u32, vcpu: u8) -> Option<Injection> {
        self.state.resample(intid, vcpu)
    }

    fn read32(&self, vcpu: u8, offset: u64) -> u32 {
        match offset {
            CTLR => self.state.group_enable_bits(),
            TYPER => {
                let lines = (self.spi_count() + PRIVATE) / 32 - 1;
                (u32::from(self.vcpus().max(1) - 1) << 5) | lines
            }
            IIDR_OFFSET => IIDR,
            0x080..0x400 => bitmap_register(offset).map_or(0, |(field, _, word)| {
                self.state.read_word(field, word * 32, vcpu)
            }),
            IPRIORITYR..ITARGETSR_END | CPENDSGIR..SGI_PENDING_END => (0..4).fold(0, |word, i| {
                word | (u32::from(self.read_byte(vcpu, offset + i)) << (8 * i))
            }),
            ICFGR..ICFGR_END => self
                .state
                .read_config(((offset - ICFGR) / 4) as u32 * 16, vcpu),
            PIDR2 => PIDR2_GICV2,
            _ => 0,
        }
    }

    fn read_byte(&self, vcpu: u8, offset: u64) -> u8 {
        match offset {
            IPRIORITYR..IPRIORITYR_END => self.state.priority((offset - IPRIORITYR) as u32, vcpu),
            ITARGETSR..ITARGETSR_END => {
                let intid = (offset - ITARGETSR) as u32;
                if intid < PRIVATE {
                    1 << vcpu
                } else {
                    self.targets(intid)
                }
            }
            CPENDSGIR..SPENDSGIR => self.state.sgi_sources((offset - CPENDSGIR) as u32, vcpu),
            SPENDSGIR..SGI_PENDING_END => self.state.sgi_sources((offset - SPENDSGIR) as u32, vcpu),
            _ => 0,
        }
    }

    fn write_byte(&mut self, vcpu: u8, offset: u64, value: u8, actions: &mut Actions) {
        match offset {
            IPRIORITYR..IPRIORITYR_END => {
                self.state
                    .set_priority((offset - IPRIORITYR) as u32, vcpu, value)
            }
            ITARGETSR..ITARGETSR_END => {
                let intid = (offset - ITARGETSR) as u32;
                let mask = value & valid_cpu_mask(self.vcpus());
                if let Some(target) = intid
                    .checked_sub(PRIVATE)
                    .and_then(|i| self.targets.get_mut(i as usize))
                {
                    *target = mask;
                    let lowest = (mask != 0).then(|| mask.trailing_zeros() as u8);
                    self.state.set_route(intid, lowest, actions);
                }
            }
            CPENDSGIR..SPENDSGIR => {
                self.state
                    .clear_sgi_sources((offset - CPENDSGIR) as u32, vcpu, value, actions);
            }
            SPENDSGIR..SGI_PENDING_END => {
                self.state
                    .set_sgi_sources((offset - SPENDSGIR) as u32, vcpu, value, actions);
            }
            _ => {}
        }
    }

    fn write32(&mut self, vcpu: u8, offset: u64, value: u32, actions: &mut Actions) {
        match offset {
            CTLR => self.state.set_group_enables(
                value & CTLR_ENABLE_GRP0 != 0,
                value & CTLR_ENABLE_GRP1 != 0,
                actions,
            ),
            0x080..0x400 => match bitmap_register(offset) {
                Some((_, None, word)) => self.state.write_groups(word * 32, vcpu, value, actions),
                Some((_, Some(op), word)) => {
                    // SGIs are made pending per source, never through ISPENDR/ICPENDR.
                    let sgi_bits =
                        if word == 0 && matches!(op, BitOp::SetPending | BitOp::ClearPending) {
                            0xffff
                        } else {
                            0
                        };
                    self.state
                        .apply_word(op, word * 32, vcpu, value & !sgi_bits, actions);
                }
                None => {}
            },
            ICFGR..ICFGR_END => {
                self.state
                    .write_config(((offset - ICFGR) / 4) as u32 * 16, vcpu, value)
            }
            SGIR => self.send_sgi(vcpu, value, actions),
            _ => {}
        }
    }

    /// GICD_SGIR: TargetListFilter in bits 25:24 (0: the list, 1: all but the sender, 2: the
    /// sender, 3: nobody), CPUTargetList in bits 23:16, the SGI's INTID in bits 3:0.
    fn send_sgi(&mut self, sender: u8, value: u32, actions: &mut Actions) {
        let sgi = value & 0xf;
        let all = valid_cpu_mask(self.vcpus());
        let targets = match (value >> 24) & 3 {
            0 => (value >> 16) as u8 & all,
            1 => all & !(1 << sender),
            2 => 1 << sender,
            _ => 0,
        };
        for target in (0..self.vcpus()).filter(|t| targets & (1 << t) != 0) {
            self.state.send_sgi(sgi, sender, target, actions);
        }
    }
}

fn is_byte_accessible(offset: u64) -> bool {
    matches!(offset, IPRIORITYR..ITARGETSR_END | CPENDSGIR..SGI_PENDING_END)
}

#[cfg(test)]
mod tests;
