// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The interrupt state both distributor models keep, and the register semantics they share.
//!
//! Each interrupt has, per vCPU for SGIs and PPIs (INTIDs 0..31) and once for SPIs: enabled,
//! pending (held by the distributor, not yet handed to the kernel), active (as the guest last
//! wrote it), group, edge (ICFGR), priority, the level of its input line, `handed` (a
//! level-sensitive line's current assertion has been injected) and `injected` (the kernel
//! may hold it in a list register, so clearing or disabling it must be passed on). The models
//! translate register offsets into calls here; this module decides what gets injected.

use alloc::vec;
use alloc::vec::Vec;

use super::{Action, Actions, Injection, PRIORITY_MASK};

/// INTIDs below this are private to a vCPU (SGIs and PPIs).
pub(crate) const PRIVATE: u32 = 32;
/// INTIDs below this are SGIs.
pub(crate) const SGIS: u32 = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    Enabled,
    Pending,
    Active,
    Group,
    Edge,
    Line,
    Handed,
    Injected,
}

const FIELDS: usize = 8;

/// What a write to a set/clear register does to each bit written as 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BitOp {
    SetEnable,
    ClearEnable,
    SetPending,
    ClearPending,
    SetActive,
    ClearActive,
}

/// A contiguous range of interrupts: one vCPU's 32 private ones, or all the SPIs.
#[derive(Clone, Debug)]
struct Bank {
    count: u32,
    bits: [Vec<u32>; FIELDS],
    priority: Vec<u8>,
}

impl Bank {
    fn new(count: u32) -> Self {
        let words = count.div_ceil(32) as usize;
        Self {
            count,
            bits: core::array::from_fn(|_| vec![0; words]),
            priority: vec![0; count as usize],
        }
    }

    fn get(&self, field: Field, index: u32) -> bool {
        index < self.count
            && self.bits[field as usize][(index / 32) as usize] & (1 << (index % 32)) != 0
    }

    fn set(&mut self, field: Field, index: u32, value: bool) {
        if index < self.count {
            let word = &mut self.bits[field as usize][(index / 32) as usize];
            if value {
                *word |= 1 << (index % 32);
            } else {
                *word &= !(1 << (index % 32));
            }
        }
    }
}

/// All the interrupt state of one guest.
#[derive(Clone, Debug)]
pub(crate) struct IrqState {
    vcpus: u8,
    private: Vec<Bank>,
    spis: Bank,
    /// Where each SPI goes now, as the model's routing registers say.
    spi_route: Vec<Option<u8>>,
    /// Where each SPI was last injected.
    spi_last: Vec<u8>,
    /// GICD_CTLR's EnableGrp0 and EnableGrp1.
    group_enabled: [bool; 2],
    /// GICv2 only: per target vCPU and SGI, the source vCPUs it is pending from.
    sgi_sources: Vec<[u8; SGIS as usize]>,
}

impl IrqState {
    /// State for `vcpus` vCPUs and `spis` SPIs (a multiple of 32), everything disabled,
    /// group 0, level-sensitive but SGIs (always edge). With `sgi_sources`, SGIs remember who
    /// sent them (GICv2).
    pub(crate) fn new(vcpus: u8, spis: u32, sgi_sources: bool) -> Self {
        let mut private = Bank::new(PRIVATE);
        for sgi in 0..SGIS {
            private.set(Field::Edge, sgi, true);
        }
        Self {
            vcpus,
            private: vec![private; usize::from(vcpus)],
            spis: Bank::new(spis),
            spi_route: vec![None; spis as usize],
            spi_last: vec![0; spis as usize],
            group_enabled: [false; 2],
            sgi_sources: if sgi_sources {
                vec![[0; SGIS as usize]; usize::from(vcpus)]
            } else {
                Vec::new()
            },
        }
    }

    pub(crate) fn vcpus(&self) -> u8 {
        self.vcpus
    }

    pub(crate) fn spi_count(&self) -> u32 {
        self.spis.count
    }

    /// The bank and index holding `intid` (as seen by `vcpu` if private).
    fn slot(&self, intid: u32, vcpu: u8) -> Option<(&Bank, u32)> {
        if intid < PRIVATE {
            self.private
                .get(usize::from(vcpu))
                .map(|bank| (bank, intid))
        } else {
            let index = intid - PRIVATE;
            (index < self.spis.count).then_some((&self.spis, index))
        }
    }

    fn slot_mut(&mut self, intid: u32, vcpu: u8) -> Option<(&mut Bank, u32)> {
        if intid < PRIVATE {
            self.private
                .get_mut(usize::from(vcpu))
                .map(|bank| (bank, intid))
        } else {
            let index = intid - PRIVATE;
            (index < self.spis.count).then_some((&mut self.spis, index))
        }
    }

    /// Whether `intid` exists for `vcpu` (any vCPU for an SPI).
    pub(crate) fn exists(&self, intid: u32, vcpu: u8) -> bool {
        self.slot(intid, vcpu).is_some()
    }

    pub(crate) fn get(&self, field: Field, intid: u32, vcpu: u8) -> bool {
        self.slot(intid, vcpu)
            .is_some_and(|(bank, index)| bank.get(field, index))
    }

    pub(crate) fn set(&mut self, field: Field, intid: u32, vcpu: u8, value: bool) {
        if let Some((bank, index)) = self.slot_mut(intid, vcpu) {
            bank.set(field, index, value);
        }
    }

    pub(crate) fn priority(&self, intid: u32, vcpu: u8) -> u8 {
        self.slot(intid, vcpu)
            .map_or(0, |(bank, index)| bank.priority[index as usize])
    }

    pub(crate) fn set_priority(&mut self, intid: u32, vcpu: u8, priority: u8) {
        if let Some((bank, index)) = self.slot_mut(intid, vcpu) {
            bank.priority[index as usize] = priority & PRIORITY_MASK;
        }
    }

    /// The guest's view of pending: held here, or a level-sensitive line that is high.
    pub(crate) fn pending_view(&self, intid: u32, vcpu: u8) -> bool {
        self.get(Field::Pending, intid, vcpu)
            || (self.get(Field::Line, intid, vcpu) && !self.get(Field::Edge, intid, vcpu))
    }

    pub(crate) fn set_group_enables(&mut self, group0: bool, group1: bool, actions: &mut Actions) {
        self.group_enabled = [group0, group1];
        self.flush_all(actions);
    }

    /// GICD_CTLR's EnableGrp0 (bit 0) and EnableGrp1 (bit 1), the same in both layouts.
    pub(crate) fn group_enable_bits(&self) -> u32 {
        u32::from(self.group_enabled[0]) | (u32::from(self.group_enabled[1]) << 1)
    }

    pub(crate) fn route(&self, intid: u32) -> Option<u8> {
        let index = intid.checked_sub(PRIVATE)?;
        self.spi_route.get(index as usize).copied().flatten()
    }

    /// Sets where an SPI goes and injects it there if it was waiting for a target.
    pub(crate) fn set_route(&mut self, intid: u32, target: Option<u8>, actions: &mut Actions) {
        let target = target.filter(|&vcpu| vcpu < self.vcpus);
        if let Some(route) = intid
            .checked_sub(PRIVATE)
            .and_then(|i| self.spi_route.get_mut(i as usize))
        {
            *route = target;
            self.flush(intid, 0, actions);
        }
    }

    /// The vCPU `intid` would be injected into now, if it were pending.
    fn deliverable(&self, intid: u32, vcpu: u8) -> Option<u8> {
        let group = usize::from(self.get(Field::Group, intid, vcpu));
        if !self.get(Field::Enabled, intid, vcpu) || !self.group_enabled[group] {
            return None;
        }
        if intid < PRIVATE {
            (vcpu < self.vcpus).then_some(vcpu)
        } else {
            self.route(intid)
        }
    }

    /// The vCPU whose list registers may hold `intid`.
    fn holder(&self, intid: u32, vcpu: u8) -> u8 {
        match intid.checked_sub(PRIVATE) {
            Some(index) => self.spi_last.get(index as usize).copied().unwrap_or(0),
            None => vcpu,
        }
    }

    /// Injects `intid` if it is pending and deliverable; returns the injections made.
    pub(crate) fn flush(&mut self, intid: u32, vcpu: u8, actions: &mut Actions) {
        if !self.get(Field::Pending, intid, vcpu) {
            return;
        }
        let Some(target) = self.deliverable(intid, vcpu) else {
            return;
        };
        let priority = self.priority(intid, vcpu);
        let group1 = self.get(Field::Group, intid, vcpu);
        let injection = |source| Injection {
            intid,
            vcpu: target,
            priority,
            group1,
            source,
        };
        if intid < SGIS
            && let Some(sources) = self.sgi_sources.get_mut(usize::from(vcpu))
        {
            let mask = core::mem::take(&mut sources[intid as usize]);
            for source in (0..8).filter(|s| mask & (1 << s) != 0) {
                actions.push(Action::Inject(injection(Some(source))));
            }
        } else {
            actions.push(Action::Inject(injection(None)));
        }
        self.set(Field::Pending, intid, vcpu, false);
        self.set(Field::Injected, intid, vcpu, true);
        let level = !self.get(Field::Edge, intid, vcpu);
        self.set(
            Field::Handed,
            intid,
            vcpu,
            level && self.get(Field::Line, intid, vcpu),
        );
        if let Some(last) = intid
            .checked_sub(PRIVATE)
            .and_then(|i| self.spi_last.get_mut(i as usize))
        {
            *last = target;
        }
    }

    /// Flushes every interrupt (after a change that may make many deliverable).
    pub(crate) fn flush_all(&mut self, actions: &mut Actions) {
        for vcpu in 0..self.vcpus {
            for intid in 0..PRIVATE {
                self.flush(intid, vcpu, actions);
            }
        }
        for intid in PRIVATE..PRIVATE + self.spis.count {
            self.flush(intid, 0, actions);
        }
    }

    /// One bit of a set/clear register written as 1.
    pub(crate) fn apply(&mut self, op: BitOp, intid: u32, vcpu: u8, actions: &mut Actions) {
        if !self.exists(intid, vcpu) {
            return;
        }
        let holder = self.holder(intid, vcpu);
        let injected = self.get(Field::Injected, intid, vcpu);
        let level_high = self.get(Field::Line, intid, vcpu) && !self.get(Field::Edge, intid, vcpu);
        let is_ppi = (SGIS..PRIVATE).contains(&intid);
        match op {
            BitOp::SetEnable => {
                if !self.get(Field::Enabled, intid, vcpu) {
                    self.set(Field::Enabled, intid, vcpu, true);
                    if is_ppi {
                        actions.push(Action::PpiEnable {
                            intid,
                            vcpu,
                            enabled: true,
                        });
                    }
                    self.flush(intid, vcpu, actions);
                }
            }
            BitOp::ClearEnable => {
                if self.get(Field::Enabled, intid, vcpu) {
                    self.set(Field::Enabled, intid, vcpu, false);
                    if is_ppi {
                        actions.push(Action::PpiEnable {
                            intid,
                            vcpu,
                            enabled: false,
                        });
                    }
                    if injected {
                        actions.push(Action::Retract {
                            intid,
                            vcpu: holder,
                        });
                    }
                    if level_high && self.get(Field::Handed, intid, vcpu) {
                        // Still asserted: pending again, for when it is enabled.
                        self.set(Field::Handed, intid, vcpu, false);
                        self.set(Field::Pending, intid, vcpu, true);
                    }
                }
            }
            BitOp::SetPending => {
                self.set(Field::Pending, intid, vcpu, true);
                self.flush(intid, vcpu, actions);
            }
            BitOp::ClearPending => {
                self.set(Field::Pending, intid, vcpu, false);
                if injected {
                    actions.push(Action::Retract {
                        intid,
                        vcpu: holder,
                    });
                }
                if level_high {
                    // The line holds it pending whatever software says.
                    self.set(Field::Handed, intid, vcpu, false);
                    self.set(Field::Pending, intid, vcpu, true);
                    self.flush(intid, vcpu, actions);
                }
            }
            BitOp::SetActive => self.set(Field::Active, intid, vcpu, true),
            BitOp::ClearActive => {
                self.set(Field::Active, intid, vcpu, false);
                if injected {
                    actions.push(Action::Deactivate {
                        intid,
                        vcpu: holder,
                    });
                }
            }
        }
    }

    /// A set/clear register's word: bit *i* is INTID `base + i`.
    pub(crate) fn apply_word(
        &mut self,
        op: BitOp,
        base: u32,
        vcpu: u8,
        value: u32,
        actions: &mut Actions,
    ) {
        for bit in (0..32).filter(|bit| value & (1 << bit) != 0) {
            self.apply(op, base + bit, vcpu, actions);
        }
    }

    /// A bitmap register's word (ISENABLER and the like read the same state through both
    /// the set and the clear register).
    pub(crate) fn read_word(&self, field: Field, base: u32, vcpu: u8) -> u32 {
        (0..32).fold(0, |word, bit| {
            let on = if field == Field::Pending {
                self.pending_view(base + bit, vcpu)
            } else {
                self.get(field, base + bit, vcpu)
            };
            word | (u32::from(on) << bit)
        })
    }

    /// IGROUPR: the group of 32 interrupts from `base`.
    pub(crate) fn write_groups(&mut self, base: u32, vcpu: u8, value: u32, actions: &mut Actions) {
        for bit in 0..32 {
            self.set(Field::Group, base + bit, vcpu, value & (1 << bit) != 0);
            self.flush(base + bit, vcpu, actions);
        }
    }

    /// ICFGR: 16 interrupts from `base`, two bits each, bit 1 of each pair = edge. SGIs stay
    /// edge-triggered.
    pub(crate) fn read_config(&self, base: u32, vcpu: u8) -> u32 {
        (0..16).fold(0, |word, i| {
            word | (u32::from(self.get(Field::Edge, base + i, vcpu)) << (2 * i + 1))
        })
    }

    pub(crate) fn write_config(&mut self, base: u32, vcpu: u8, value: u32) {
        for i in (0..16).filter(|i| base + i >= SGIS) {
            self.set(Field::Edge, base + i, vcpu, value & (1 << (2 * i + 1)) != 0);
        }
    }

    /// An input line changes level. See [`super::v3::GicV3Model::set_line`].
    pub(crate) fn set_line(&mut self, intid: u32, vcpu: u8, level: bool) -> Option<Injection> {
        if intid < SGIS || !self.exists(intid, vcpu) {
            return None;
        }
        let was = self.get(Field::Line, intid, vcpu);
        self.set(Field::Line, intid, vcpu, level);
        match (was, level) {
            (false, true) => {
                self.set(Field::Pending, intid, vcpu, true);
                self.flush_one(intid, vcpu)
            }
            (true, false) => {
                self.set(Field::Handed, intid, vcpu, false);
                if !self.get(Field::Edge, intid, vcpu) {
                    self.set(Field::Pending, intid, vcpu, false);
                }
                None
            }
            _ => None,
        }
    }

    /// The guest deactivated `intid`: a level-sensitive line still high is pending again.
    pub(crate) fn resample(&mut self, intid: u32, vcpu: u8) -> Option<Injection> {
        if !self.exists(intid, vcpu) {
            return None;
        }
        self.set(Field::Handed, intid, vcpu, false);
        if self.get(Field::Line, intid, vcpu) && !self.get(Field::Edge, intid, vcpu) {
            self.set(Field::Pending, intid, vcpu, true);
            return self.flush_one(intid, vcpu);
        }
        None
    }

    fn flush_one(&mut self, intid: u32, vcpu: u8) -> Option<Injection> {
        let mut actions = Actions::default();
        self.flush(intid, vcpu, &mut actions);
        actions.injections().next()
    }

    /// GICv2: `source` sends SGI `sgi` to `target`.
    pub(crate) fn send_sgi(&mut self, sgi: u32, source: u8, target: u8, actions: &mut Actions) {
        self.set_sgi_sources(sgi, target, 1 << source, actions);
    }

    /// GICv2 SPENDSGIR / SGIR: adds pending sources to an SGI of `target`.
    pub(crate) fn set_sgi_sources(
        &mut self,
        sgi: u32,
        target: u8,
        mask: u8,
        actions: &mut Actions,
    ) {
        let valid = valid_cpu_mask(self.vcpus);
        let Some(sources) = self.sgi_sources.get_mut(usize::from(target)) else {
            return;
        };
        let Some(slot) = sources.get_mut(sgi as usize) else {
            return;
        };
        *slot |= mask & valid;
        if *slot != 0 {
            self.set(Field::Pending, sgi, target, true);
            self.flush(sgi, target, actions);
        }
    }

    /// GICv2 CPENDSGIR: removes pending sources from an SGI of `target`.
    pub(crate) fn clear_sgi_sources(
        &mut self,
        sgi: u32,
        target: u8,
        mask: u8,
        actions: &mut Actions,
    ) {
        let Some(slot) = self
            .sgi_sources
            .get_mut(usize::from(target))
            .and_then(|s| s.get_mut(sgi as usize))
        else {
            return;
        };
        *slot &= !mask;
        if *slot == 0 {
            self.set(Field::Pending, sgi, target, false);
        }
        if mask != 0 && self.get(Field::Injected, sgi, target) {
            actions.push(Action::Retract {
                intid: sgi,
                vcpu: target,
            });
        }
    }

    /// GICv2: the sources an SGI of `target` is pending from.
    pub(crate) fn sgi_sources(&self, sgi: u32, target: u8) -> u8 {
        self.sgi_sources
            .get(usize::from(target))
            .and_then(|s| s.get(sgi as usize))
            .copied()
            .unwrap_or(0)
    }
}

/// One bit per existing vCPU, for GICv2's 8-bit CPU masks.
pub(crate) fn valid_cpu_mask(vcpus: u8) -> u8 {
    if vcpus >= 8 { 0xff } else { (1u8 << vcpus) - 1 }
}
