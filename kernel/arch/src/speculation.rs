// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Speculation barriers between partitions: carrying out
//! `hv_core::speculation`'s plan on every switch from one partition to
//! another.
//!
//! [`configure`] (once, on the boot core, before any partition runs) asks
//! firmware which Spectre workarounds it offers and records the manifest's
//! `scrub` setting; each core then chooses its own plan from its ID
//! registers the first time it switches ([`on_partition_switch`], called by
//! `vcpu` when the VTTBR_EL2 it loads differs from the one loaded: a vCPU
//! of another partition, never the same partition's re-entry). Cores of
//! different kinds (big.LITTLE) each get their own.
//!
//! The scrub (`[system] scrub = "on-switch"`) cleans and invalidates the
//! data and unified caches to the point of coherence by set/way, and
//! invalidates the instruction cache and all EL1&0 TLB entries, on this
//! core only. CSSELR_EL1, which the walk uses, belongs to the guest whose
//! EL1 state may be loaded, so it is put back.

use aarch64_cpu::registers::{
    CCSIDR_EL1, CLIDR_EL1, CSSELR_EL1, ID_AA64MMFR1_EL1, ID_AA64MMFR2_EL1, ID_AA64PFR0_EL1,
    MIDR_EL1, Readable, Writeable,
};
use hv_abi::smccc::{SMCCC_ARCH_WORKAROUND_1, SMCCC_ARCH_WORKAROUND_3};
use hv_core::speculation::{Bhb, CacheGeometry, CpuId, Firmware, Plan, Scrub, choose};
use spin::Once;

use crate::insn;

/// What firmware offers and the manifest's choice, set by [`configure`].
static SETTINGS: Once<(Firmware, Scrub)> = Once::new();

/// Learns what firmware offers and records `scrub`; returns this core's
/// plan, for the boot report. Call once, on the boot core, after the PSCI
/// conduit is set and before any partition runs.
pub fn configure(scrub: Scrub) -> Plan {
    let firmware = crate::psci::spectre_workarounds();
    SETTINGS.call_once(|| (firmware, scrub));
    plan()
}

/// This core's ID registers.
fn cpu_id() -> CpuId {
    CpuId {
        midr: MIDR_EL1.get(),
        pfr0: ID_AA64PFR0_EL1.get(),
        mmfr1: ID_AA64MMFR1_EL1.get(),
        isar2: crate::sysreg::read_id_aa64isar2_el1(),
    }
}

/// This core's plan under the settings [`configure`] recorded (none yet:
/// the default firmware and scrub setting).
fn plan() -> Plan {
    let (firmware, scrub) = SETTINGS.get().copied().unwrap_or_default();
    choose(cpu_id(), firmware, scrub)
}

/// What a switch between partitions does on one core, as its `PerCpu`
/// keeps it: the common case (only a branch history loop, as on A57 and
/// A72, or nothing, as on A53) costs one byte's tests and the loop;
/// anything else goes out of line.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Switch {
    /// What a switch does in line: nothing (0), the branch history loop
    /// with this count, or, if [`SLOW`], a call out of line: the plan is not
    /// known yet (before [`configure`] has run), or it asks for more than
    /// the loop (firmware, `CLRBHB`, the scrub).
    mode: u8,
    /// The plan, once known.
    plan: Option<Plan>,
}

/// [`Switch::mode`]: out of line.
const SLOW: u8 = u8::MAX;

impl Switch {
    /// Before the kernel configured it: nothing is done, and the plan is
    /// looked for at every switch until it is known.
    pub(crate) const UNKNOWN: Self = Self {
        mode: SLOW,
        plan: None,
    };

    /// The switch for `plan`.
    fn from_plan(plan: Plan) -> Self {
        let slow =
            plan.workaround_1 || plan.scrub || matches!(plan.bhb, Bhb::Clear | Bhb::Firmware);
        let mode = match plan.bhb {
            _ if slow => SLOW,
            // A count of 255 is SLOW's value: the slow path runs it.
            Bhb::Loop(count) => count.max(1),
            _ => 0,
        };
        Self {
            mode,
            plan: Some(plan),
        }
    }
}

/// Carries out this core's plan on a switch between partitions
/// (`switch` is its `PerCpu`'s, filled in the first time the plan is known).
#[inline(always)]
pub(crate) fn on_partition_switch(switch: &mut Switch) {
    match switch.mode {
        0 => {}
        SLOW => slow_switch(switch),
        count => insn::branch_history_loop(count),
    }
}

/// A switch whose plan is not known yet, or asks for more than the loop.
/// Cold: the common plans run in line.
#[cold]
#[inline(never)]
fn slow_switch(switch: &mut Switch) {
    if switch.plan.is_none() {
        learn(switch);
    }
    if let Some(plan) = &switch.plan {
        if let Bhb::Loop(count) = plan.bhb {
            insn::branch_history_loop(count.max(1));
        }
        the_rest(plan);
    }
}

/// Looks for this core's plan, once [`configure`] has run.
#[cold]
#[inline(never)]
fn learn(switch: &mut Switch) {
    if SETTINGS.get().is_some() {
        *switch = Switch::from_plan(plan());
    }
}

/// Everything in `plan` but the branch history loop: firmware's
/// workarounds, `CLRBHB`, and, when scrubbing, the caches and TLBs.
#[inline(never)]
fn the_rest(plan: &Plan) {
    if plan.workaround_1 {
        crate::psci::workaround(SMCCC_ARCH_WORKAROUND_1);
    }
    match plan.bhb {
        Bhb::None | Bhb::Unavailable | Bhb::Loop(_) => {}
        Bhb::Clear => insn::clear_branch_history(),
        Bhb::Firmware => crate::psci::workaround(SMCCC_ARCH_WORKAROUND_3),
    }
    if plan.scrub {
        scrub_caches();
        insn::ic_iallu();
        insn::tlbi_alle1();
    }
}

/// Cleans and invalidates every data and unified cache level to the point
/// of coherence, by set/way, on this core.
fn scrub_caches() {
    let selected = CSSELR_EL1.get();
    let ccidx = ID_AA64MMFR2_EL1.get() >> 20 & 0xf != 0;
    aarch64_cpu::asm::barrier::dsb(aarch64_cpu::asm::barrier::SY);
    for level in hv_core::speculation::data_cache_levels(CLIDR_EL1.get()) {
        CSSELR_EL1.set(u64::from(level) << 1);
        aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
        let ccsidr = CCSIDR_EL1.get();
        let cache = CacheGeometry::from_ccsidr(level, ccsidr, ccidx);
        for way in 0..cache.ways {
            for set in 0..cache.sets {
                insn::dc_cisw(cache.operand(set, way));
            }
        }
    }
    aarch64_cpu::asm::barrier::dsb(aarch64_cpu::asm::barrier::SY);
    CSSELR_EL1.set(selected);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}
