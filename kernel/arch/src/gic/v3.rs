// SPDX-License-Identifier: Apache-2.0 OR MIT
//! GICv3: a memory-mapped distributor and redistributors, and the CPU
//! interface in system registers (ICC_*_EL1, ICC_SRE_EL2).

use aarch64_cpu::registers::{ICC_CTLR_EL1, ICC_SRE_EL2, ReadWriteable};
use hv_core::platform::Gic as GicInfo;
use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite};

use super::{FIRST_SPI, GicError, SGI_KICK};
use crate::sysreg;

register_structs! {
    Distributor {
        (0x0000 => ctlr: ReadWrite<u32>),
        (0x0004 => typer: ReadOnly<u32>),
        (0x0008 => _reserved0),
        (0x0080 => igroupr: [ReadWrite<u32>; 32]),
        (0x0100 => isenabler: [ReadWrite<u32>; 32]),
        (0x0180 => icenabler: [ReadWrite<u32>; 32]),
        (0x0200 => _reserved1),
        (0x0380 => icactiver: [ReadWrite<u32>; 32]),
        (0x0400 => ipriorityr: [ReadWrite<u32>; 256]),
        (0x0800 => _reserved2),
        (0x6000 => irouter: [ReadWrite<u64>; 1020]),
        (0x7fe0 => @END),
    }
}

register_structs! {
    /// One redistributor: its RD_base frame then its SGI_base frame.
    Redistributor {
        (0x00000 => ctlr: ReadWrite<u32>),
        (0x00004 => _reserved0),
        (0x00008 => typer: ReadOnly<u64>),
        (0x00010 => _reserved1),
        (0x00014 => waker: ReadWrite<u32>),
        (0x00018 => _reserved2),
        (0x10080 => igroupr0: ReadWrite<u32>),
        (0x10084 => _reserved3),
        (0x10100 => isenabler0: ReadWrite<u32>),
        (0x10104 => _reserved4),
        (0x10180 => icenabler0: ReadWrite<u32>),
        (0x10184 => _reserved5),
        (0x10300 => isactiver0: ReadWrite<u32>),
        (0x10304 => _reserved7),
        (0x10400 => ipriorityr: [ReadWrite<u32>; 8]),
        (0x10420 => _reserved6),
        (0x20000 => @END),
    }
}

/// GICD_CTLR: affinity routing, group 1 non-secure enabled, register writes pending.
const CTLR_ARE_NS: u32 = 1 << 4;
const CTLR_ENABLE_GRP1_NS: u32 = 1 << 1;
const CTLR_RWP: u32 = 1 << 31;
/// ICC_CTLR_EL1.EOImode: EOIR only drops the priority; DIR deactivates.
const ICC_CTLR_EOIMODE: u64 = 1 << 1;
/// ICC_CTLR_EL1.RSS: SGIs may target Aff0 values 16 to 255.
const ICC_CTLR_RSS: u64 = 1 << 18;
/// GICR_WAKER bits.
const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
/// GICR_TYPER.Last: this is the last redistributor in the region.
const TYPER_LAST: u64 = 1 << 4;
/// GICR_TYPER.VLPIS: the redistributor has the two extra GICv4 frames
/// (virtual LPIs), so it spans four 64 KiB frames rather than two.
const TYPER_VLPIS: u64 = 1 << 1;
/// One redistributor's size: RD_base and SGI_base frames (GICv3)...
const FRAMES_V3: u64 = 0x2_0000;
/// ...plus VLPI_base and a reserved frame (GICv4).
const FRAMES_V4: u64 = 0x4_0000;
/// Every interrupt gets this priority (lower is more urgent; 0xa0 leaves room above).
const PRIORITY: u32 = 0xa0a0_a0a0;

pub(super) struct Gic {
    distributor: &'static Distributor,
    redistributors: u64,
    redistributors_end: u64,
}

impl Gic {
    pub(super) fn new(info: &GicInfo) -> Self {
        // SAFETY: see `super::init`: the device tree's GICD region, mapped as
        // device memory, driven only through this driver.
        let distributor = unsafe { &*(info.distributor.start() as *const Distributor) };
        Self {
            distributor,
            redistributors: info.cpu_interface.start(),
            redistributors_end: info.cpu_interface.end(),
        }
    }

    pub(super) fn init_distributor(&self) -> u32 {
        let d = self.distributor;
        d.ctlr.set(0);
        while d.ctlr.get() & CTLR_RWP != 0 {}
        let lines = ((d.typer.get() & 0x1f) + 1) * 32;
        for (enable, group) in d
            .icenabler
            .iter()
            .zip(&d.igroupr)
            .take((lines / 32) as usize)
            .skip(1)
        {
            enable.set(u32::MAX);
            group.set(u32::MAX);
        }
        for priority in d.ipriorityr.iter().take((lines / 4) as usize).skip(8) {
            priority.set(PRIORITY);
        }
        d.ctlr.set(CTLR_ARE_NS | CTLR_ENABLE_GRP1_NS);
        while d.ctlr.get() & CTLR_RWP != 0 {}
        lines
    }

    /// This core's redistributor, found by matching GICR_TYPER's affinity.
    fn redistributor(&self) -> Result<&'static Redistributor, GicError> {
        let mine = affinity_key(crate::cpu::mpidr_affinity());
        let mut frame = self.redistributors;
        while frame.saturating_add(FRAMES_V3) <= self.redistributors_end {
            // SAFETY: `frame` steps through the device tree's GICR region
            // (mapped as device memory) in whole redistributors, and the
            // two frames read here lie inside it (checked above).
            let r = unsafe { &*(frame as *const Redistributor) };
            let typer = r.typer.get();
            if typer >> 32 == mine {
                return Ok(r);
            }
            if typer & TYPER_LAST != 0 {
                break;
            }
            frame += if typer & TYPER_VLPIS != 0 {
                FRAMES_V4
            } else {
                FRAMES_V3
            };
        }
        Err(GicError::NoRedistributor(crate::cpu::mpidr_affinity()))
    }

    pub(super) fn init_cpu(&self) -> Result<(), GicError> {
        let r = self.redistributor()?;
        r.waker.set(r.waker.get() & !WAKER_PROCESSOR_SLEEP);
        while r.waker.get() & WAKER_CHILDREN_ASLEEP != 0 {}
        r.icenabler0.set(u32::MAX);
        r.igroupr0.set(u32::MAX);
        for p in &r.ipriorityr {
            p.set(PRIORITY);
        }
        r.isenabler0.set(1 << SGI_KICK);
        ICC_SRE_EL2.modify(ICC_SRE_EL2::SRE::SET + ICC_SRE_EL2::ENABLE::SET);
        aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
        sysreg::write_icc_pmr_el1(0xff);
        // EOImode 1: EOIR drops the priority, DIR deactivates (see
        // `super::priority_drop`).
        sysreg::write_icc_ctlr_el1(ICC_CTLR_EOIMODE);
        sysreg::write_icc_igrpen1_el1(1);
        aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
        // Kicks to a core with Aff0 above 15 need the range selector (RS in
        // ICC_SGI1R_EL1); without it they would be lost. The CPU interfaces
        // of one system agree, so this core's answer stands for its senders.
        let affinity = crate::cpu::mpidr_affinity();
        if affinity & 0xff > 15 && ICC_CTLR_EL1.get() & ICC_CTLR_RSS == 0 {
            return Err(GicError::NoRangeSelector(affinity));
        }
        Ok(())
    }

    pub(super) fn enable(&self, intid: u32, target: u64) -> Result<(), GicError> {
        let bit = 1 << (intid % 32);
        if intid < FIRST_SPI {
            self.redistributor()?.isenabler0.set(bit);
            return Ok(());
        }
        let index = intid as usize / 32;
        let route = self
            .distributor
            .irouter
            .get(intid as usize)
            .ok_or(GicError::BadInterrupt(intid))?;
        route.set(target & 0xff_00ff_ffff);
        self.distributor
            .isenabler
            .get(index)
            .ok_or(GicError::BadInterrupt(intid))?
            .set(bit);
        Ok(())
    }

    pub(super) fn activate(&self, intid: u32) {
        if intid < FIRST_SPI
            && let Ok(r) = self.redistributor()
        {
            r.isactiver0.set(1 << intid);
        }
    }

    /// Deactivates shared interrupt `intid` at the distributor, from any
    /// core.
    pub(super) fn clear_active(&self, intid: u32) {
        if intid >= FIRST_SPI
            && let Some(word) = self.distributor.icactiver.get(intid as usize / 32)
        {
            word.set(1 << (intid % 32));
        }
    }

    pub(super) fn disable(&self, intid: u32) -> Result<(), GicError> {
        let bit = 1 << (intid % 32);
        if intid < FIRST_SPI {
            self.redistributor()?.icenabler0.set(bit);
            return Ok(());
        }
        let index = intid as usize / 32;
        self.distributor
            .icenabler
            .get(index)
            .ok_or(GicError::BadInterrupt(intid))?
            .set(bit);
        Ok(())
    }
}

/// MPIDR affinity as GICR_TYPER\[63:32\] packs it: Aff3.Aff2.Aff1.Aff0.
fn affinity_key(mpidr: u64) -> u64 {
    ((mpidr >> 8) & 0xff00_0000) | (mpidr & 0xff_ffff)
}

pub(super) fn acknowledge() -> u32 {
    sysreg::read_icc_iar1_el1() as u32 & 0xff_ffff
}

pub(super) fn end(intid: u32) {
    sysreg::write_icc_eoir1_el1(u64::from(intid));
}

pub(super) fn deactivate(intid: u32) {
    sysreg::write_icc_dir_el1(u64::from(intid));
}

/// ICC_SGI1R_EL1: Aff3 \[55:48\], RS \[47:44\], Aff2 \[39:32\], INTID
/// \[27:24\], Aff1 \[23:16\], target list \[15:0\]: one bit per Aff0
/// value in the range of 16 that RS selects (Aff0 / 16). A range other than
/// 0 works only where ICC_CTLR_EL1.RSS says the CPU interface supports it,
/// which any system with an Aff0 above 15 needs.
pub(super) fn send_sgi(intid: u32, target: u64) {
    let aff0 = target & 0xff;
    let aff1 = (target >> 8) & 0xff;
    let aff2 = (target >> 16) & 0xff;
    let aff3 = (target >> 32) & 0xff;
    let value = (aff3 << 48)
        | ((aff0 / 16) << 44)
        | (aff2 << 32)
        | (u64::from(intid & 0xf) << 24)
        | (aff1 << 16)
        | (1 << (aff0 % 16));
    aarch64_cpu::asm::barrier::dsb(aarch64_cpu::asm::barrier::ISHST);
    sysreg::write_icc_sgi1r_el1(value);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}
