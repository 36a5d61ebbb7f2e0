// SPDX-License-Identifier: Apache-2.0 OR MIT
//! GICv2 (GIC-400 and friends): a memory-mapped distributor and CPU interface.

use hv_core::platform::Gic as GicInfo;
use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

use super::{FIRST_SPI, GicError, SGI_KICK};

register_structs! {
    Distributor {
        (0x000 => ctlr: ReadWrite<u32>),
        (0x004 => typer: ReadOnly<u32>),
        (0x008 => _reserved0),
        (0x100 => isenabler: [ReadWrite<u32>; 32]),
        (0x180 => icenabler: [ReadWrite<u32>; 32]),
        (0x200 => _reserved1),
        (0x300 => isactiver: [ReadWrite<u32>; 32]),
        (0x380 => icactiver: [ReadWrite<u32>; 32]),
        (0x400 => ipriorityr: [ReadWrite<u32>; 255]),
        (0x7fc => _reserved2),
        (0x800 => itargetsr: [ReadWrite<u32>; 255]),
        (0xbfc => _reserved3),
        (0xf00 => sgir: WriteOnly<u32>),
        (0xf04 => @END),
    }
}

register_structs! {
    CpuInterface {
        (0x000 => ctlr: ReadWrite<u32>),
        (0x004 => pmr: ReadWrite<u32>),
        (0x008 => bpr: ReadWrite<u32>),
        (0x00c => iar: ReadOnly<u32>),
        (0x010 => eoir: WriteOnly<u32>),
        (0x014 => _reserved0),
        (0x1000 => dir: WriteOnly<u32>),
        (0x1004 => @END),
    }
}

/// GICC_CTLR: group 1 enabled, and EOImodeNS: EOIR only drops the priority,
/// DIR deactivates (see `super::priority_drop`).
const CTLR_ENABLE_EOIMODE: u32 = 1 | (1 << 9);

/// Every interrupt gets this priority (lower is more urgent).
const PRIORITY: u32 = 0xa0a0_a0a0;

pub(super) struct Gic {
    distributor: &'static Distributor,
    cpu: &'static CpuInterface,
}

impl Gic {
    pub(super) fn new(info: &GicInfo) -> Self {
        // SAFETY: see `super::init`: the device tree's GICD and GICC regions,
        // mapped as device memory, driven only through this driver.
        unsafe {
            Self {
                distributor: &*(info.distributor.start() as *const Distributor),
                cpu: &*(info.cpu_interface.start() as *const CpuInterface),
            }
        }
    }

    pub(super) fn init_distributor(&self) -> u32 {
        let d = self.distributor;
        d.ctlr.set(0);
        let lines = ((d.typer.get() & 0x1f) + 1) * 32;
        for enable in d.icenabler.iter().take((lines / 32) as usize).skip(1) {
            enable.set(u32::MAX);
        }
        for priority in d.ipriorityr.iter().take((lines / 4) as usize).skip(8) {
            priority.set(PRIORITY);
        }
        d.ctlr.set(1);
        lines
    }

    pub(super) fn init_cpu(&self) -> Result<(), GicError> {
        let d = self.distributor;
        // Banked per core: SGIs and PPIs.
        d.icenabler[0].set(u32::MAX);
        for i in 0..8 {
            d.ipriorityr[i].set(PRIORITY);
        }
        d.isenabler[0].set(1 << SGI_KICK);
        self.cpu.pmr.set(0xff);
        self.cpu.bpr.set(0);
        self.cpu.ctlr.set(CTLR_ENABLE_EOIMODE);
        Ok(())
    }

    /// GICv2 targets cores by interface number; on the machines Bulkhead
    /// runs on that is Aff0 of the MPIDR.
    pub(super) fn enable(&self, intid: u32, target: u64) -> Result<(), GicError> {
        let d = self.distributor;
        if intid >= FIRST_SPI {
            let word = d
                .itargetsr
                .get(intid as usize / 4)
                .ok_or(GicError::BadInterrupt(intid))?;
            let shift = (intid % 4) * 8;
            let value = (word.get() & !(0xff << shift)) | ((1 << (target & 7)) << shift);
            word.set(value);
        }
        d.isenabler
            .get(intid as usize / 32)
            .ok_or(GicError::BadInterrupt(intid))?
            .set(1 << (intid % 32));
        Ok(())
    }

    /// Banked per core for SGIs and PPIs, which is all this is used for.
    pub(super) fn activate(&self, intid: u32) {
        if intid < FIRST_SPI {
            self.distributor.isactiver[0].set(1 << intid);
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
        let d = self.distributor;
        d.icenabler
            .get(intid as usize / 32)
            .ok_or(GicError::BadInterrupt(intid))?
            .set(1 << (intid % 32));
        Ok(())
    }

    /// The whole GICC_IAR value: an SGI's source core included.
    pub(super) fn acknowledge(&self) -> u32 {
        self.cpu.iar.get()
    }

    /// `iar` is the whole value [`Self::acknowledge`] read (for an SGI; a PPI
    /// or SPI has no source bits, so its INTID will do).
    pub(super) fn end(&self, iar: u32) {
        self.cpu.eoir.set(iar);
    }

    /// As for [`Self::end`].
    pub(super) fn deactivate(&self, iar: u32) {
        self.cpu.dir.set(iar);
    }

    pub(super) fn send_sgi(&self, intid: u32, target: u64) -> Result<(), GicError> {
        aarch64_cpu::asm::barrier::dsb(aarch64_cpu::asm::barrier::ISHST);
        self.distributor
            .sgir
            .set(((1 << (target & 7)) << 16) | (intid & 0xf));
        Ok(())
    }
}
