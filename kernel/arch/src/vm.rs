// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Virtual machines as the hardware sees them: a guest vCPU's EL1 system
//! registers, FP/SIMD registers, virtual timer and virtual CPU interface,
//! and how a core moves between guests and services.
//!
//! **Lazily switched state.** Each core has at most one guest vCPU whose
//! full EL1 state is in its registers (its *owner*, [`PerCore::owner`]).
//! Entering another guest vCPU saves the owner's state into its
//! [`VmState`] and loads the new one's; entering a service, or the owner
//! again after a service (its monitor, say), switches only what governs EL0
//! and what the service must not see:
//!
//! | register | why it is switched between a guest and a service |
//! |---|---|
//! | HCR_EL2 | services run under TGE (every exception to EL2), guests not |
//! | CPTR_EL2 | FP/SIMD trap for services (built soft-float), open for guests (activity monitors trapped for both, `hv_core::traps`) |
//! | SCTLR_EL1 | governs EL0 under TGE (alignment, cache maintenance, DC ZVA) |
//! | CNTKCTL_EL1 | governs EL0's access to the counters and timers |
//! | TPIDRRO_EL0 | readable at EL0: the guest's would leak to the service |
//!
//! Everything else (the EL1 translation registers, vector base, EL1 stack
//! and exception registers, FP/SIMD, the virtual timer, the list registers)
//! stays loaded while a service runs: a service cannot reach it (EL1
//! registers are not accessible at EL0, FP/SIMD traps, the virtual timer is
//! denied by CNTKCTL_EL1, virtual interrupts are not taken under TGE).
//! CPACR_EL1 is the guest's throughout: under TGE it does not apply at EL0,
//! and CPTR_EL2 traps FP/SIMD for services anyway.
//!
//! **The virtual timer.** A guest owns CNTV. Its counter is the physical
//! one: CNTVOFF_EL2 is 0 on every core ([`crate::vcpu::configure_cpu`]), so
//! a guest counts time from power-on, as on a machine without a hypervisor,
//! and services read the same count. Its interrupt, PPI 27, is
//! taken at EL2; the kernel delivers it to the owner through a list register
//! linked to the physical interrupt ([`timer_fired`]), so it cannot fire
//! again until the guest has handled it. While the owner halts (WFI) or a
//! service runs, its timer stays loaded and keeps firing.
//!
//! # Invariants
//! A vCPU's [`VmState`] is touched only by the core it is pinned to: when
//! it enters the vCPU, or saves it as that core's owner. (vCPUs never move
//! between cores.) [`init_vcpu`] writes it at boot, before anything runs.

pub(crate) mod vgic;

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU8, Ordering};

use aarch64_cpu::registers::{
    AFSR0_EL1, AFSR1_EL1, AMAIR_EL1, CNTKCTL_EL1, CNTV_CTL_EL0, CNTV_CVAL_EL0, CONTEXTIDR_EL1,
    CPACR_EL1, CPTR_EL2, CSSELR_EL1, ELR_EL1, ESR_EL1, FAR_EL1, HCR_EL2, MAIR_EL1, PAR_EL1,
    Readable, SCTLR_EL1, SP_EL1, SPSR_EL1, TCR_EL1, TPIDR_EL1, TPIDRRO_EL0, TTBR0_EL1, TTBR1_EL1,
    VBAR_EL1, VMPIDR_EL2, Writeable,
};
use hv_abi::vm::{VIRTUAL_INTIDS, VIRTUAL_TIMER_INTID};
use hv_core::state::VmEntry;

use hv_image::MAX_SYSTEM_VCPUS;

use crate::vcpu::Context;

/// HCR_EL2 while a guest runs: stage 2 on (VM); set/way cache maintenance
/// by VA instead (SWIO); interrupts to EL2 and virtual ones to the guest
/// (FMO, IMO, AMO); TLB and cache maintenance broadcast in the inner
/// shareable domain (FB, BSU), since a guest's vCPUs run on several cores;
/// WFI and WFE trapped (TWI, TWE); SMC, implementation-defined registers,
/// auxiliary control and set/way operations trapped (TSC, TIDCP, TACR,
/// TSW); EL1 is AArch64 (RW).
const HCR_GUEST: u64 = (1 << 0)
    | (1 << 1)
    | (1 << 3)
    | (1 << 4)
    | (1 << 5)
    | (1 << 9)
    | (0b01 << 10)
    | (1 << 13)
    | (1 << 14)
    | (1 << 19)
    | (1 << 20)
    | (1 << 21)
    | (1 << 22)
    | (1 << 31);

/// HCR_EL2 while a service runs: stage 2 on (VM); interrupts to EL2 (FMO,
/// IMO, AMO); EL0 under TGE with its stage 1 off, memory cacheable (DC);
/// WFI and WFE trapped (TWI, TWE); SMC trapped (TSC); EL1 AArch64 (RW).
pub(crate) const HCR_SERVICE: u64 = (1 << 0)
    | (1 << 3)
    | (1 << 4)
    | (1 << 5)
    | (1 << 12)
    | (1 << 13)
    | (1 << 14)
    | (1 << 19)
    | (1 << 27)
    | (1 << 31);

/// SCTLR_EL1 while a service runs: RES1 bits; EL0's stack alignment
/// checked (SA0); no cache maintenance, CTR_EL0, DC ZVA or DAIF access at
/// EL0 (UCI, UCT, DZE, UMA clear: they trap).
pub(crate) const SCTLR_SERVICE: u64 = 0x30d0_0800 | (1 << 4) | (1 << 3);

/// CNTKCTL_EL1 while a service runs: EL0 may read both counters (EL0PCTEN,
/// EL0VCTEN), not program the timers.
pub(crate) const CNTKCTL_SERVICE: u64 = 0b11;

/// CPTR_EL2 while a guest runs: FP/SIMD open, activity monitors trapped.
const CPTR_GUEST: u64 = hv_core::traps::CPTR_GUEST;
/// CPTR_EL2 while a service runs: FP/SIMD and activity monitors trapped.
const CPTR_SERVICE: u64 = hv_core::traps::CPTR_SERVICE;

/// SCTLR_EL1 at a guest vCPU's reset: its RES1 bits, MMU and caches off.
const SCTLR_RESET: u64 = 0x30d0_0800;

/// SPSR_EL2 a guest vCPU starts with: EL1h, interrupts masked.
pub(crate) const SPSR_EL1H: u64 = 0x3c5;

/// A guest vCPU's EL1 system registers and virtual timer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct El1 {
    sctlr: u64,
    ttbr0: u64,
    ttbr1: u64,
    tcr: u64,
    mair: u64,
    amair: u64,
    vbar: u64,
    contextidr: u64,
    tpidr: u64,
    tpidrro: u64,
    sp: u64,
    elr: u64,
    spsr: u64,
    esr: u64,
    far: u64,
    afsr0: u64,
    afsr1: u64,
    par: u64,
    cpacr: u64,
    csselr: u64,
    cntkctl: u64,
    cntv_ctl: u64,
    cntv_cval: u64,
}

/// A guest vCPU's FP/SIMD registers: V0..V31, FPCR, FPSR. `vm.S` saves and
/// loads it.
#[repr(C, align(16))]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fp {
    v: [u128; 32],
    fpcr: u64,
    fpsr: u64,
}

impl Fp {
    const ZERO: Self = Self {
        v: [0; 32],
        fpcr: 0,
        fpsr: 0,
    };
}

/// Virtual interrupts waiting for a free list register.
#[derive(Clone, Copy, Debug, Default)]
struct Waiting {
    irqs: [u64; 4],
    sgi_sources: [u8; 16],
    /// The virtual timer, linked to its physical interrupt.
    timer: bool,
}

impl Waiting {
    fn is_empty(&self) -> bool {
        // One test of all the words (`all` branches on each).
        !self.timer && self.irqs.iter().fold(0, |all, w| all | w) == 0
    }
}

/// Everything of a guest vCPU that is not in its [`Context`]. In C's
/// layout, what waits first: every entry and every timer interrupt tests
/// it, and at its start its words are in reach of paired loads.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct VmState {
    waiting: Waiting,
    el1: El1,
    fp: Fp,
    gic: vgic::Saved,
    /// Its MPIDR as the guest reads it.
    vmpidr: u64,
    /// The virtual timer's physical interrupt was active for it (delivered
    /// through a linked list register, or waiting for one, and not yet
    /// completed) when it was saved: it is activated again on load.
    timer_active: bool,
}

impl VmState {
    /// When its saved virtual timer fires, in physical counter ticks, if it
    /// is armed and unmasked.
    fn timer_deadline(&self) -> Option<u64> {
        let (ctl, cval) = (self.el1.cntv_ctl, self.el1.cntv_cval);
        // CNTV_CTL_EL0: ENABLE (bit 0), IMASK (bit 1).
        // The virtual counter is the physical one (no offset).
        (ctl & 0b11 == 0b01).then_some(cval)
    }

    const EMPTY: Self = Self {
        waiting: Waiting {
            irqs: [0; 4],
            sgi_sources: [0; 16],
            timer: false,
        },
        el1: El1 {
            sctlr: SCTLR_RESET,
            ttbr0: 0,
            ttbr1: 0,
            tcr: 0,
            mair: 0,
            amair: 0,
            vbar: 0,
            contextidr: 0,
            tpidr: 0,
            tpidrro: 0,
            sp: 0,
            elr: 0,
            spsr: 0,
            esr: 0,
            far: 0,
            afsr0: 0,
            afsr1: 0,
            par: 0,
            cpacr: 0,
            csselr: 0,
            cntkctl: 0,
            cntv_ctl: 0,
            cntv_cval: 0,
        },
        fp: Fp::ZERO,
        gic: vgic::EMPTY,
        vmpidr: 0,
        timer_active: false,
    };
}

struct VmCell(UnsafeCell<VmState>);

// SAFETY: a vCPU's VmState is touched only by the core it is pinned to
// (module invariants).
unsafe impl Sync for VmCell {}

static VM: [VmCell; MAX_SYSTEM_VCPUS] =
    [const { VmCell(UnsafeCell::new(VmState::EMPTY)) }; MAX_SYSTEM_VCPUS];

/// vCPU `vcpu`'s state.
///
/// # Safety
/// The caller is the core `vcpu` is pinned to (or boot, before anything
/// runs), and holds no other reference to it.
unsafe fn state(vcpu: usize) -> Option<&'static mut VmState> {
    // SAFETY: the caller's contract makes this the only reference.
    VM.get(vcpu).map(|cell| unsafe { &mut *cell.0.get() })
}

/// Guest vCPUs of one core whose virtual timers wait while unloaded.
const SLEEPERS: usize = 16;

/// What a core has loaded of the guests.
#[derive(Debug)]
pub(crate) struct PerCore {
    /// The guest vCPU whose EL1 state is in this core's registers.
    owner: Option<usize>,
    /// Whether the registers that govern EL0 (the table above) hold a
    /// guest's values, and HCR_EL2 and CPTR_EL2 a guest's settings.
    guest_mode: bool,
    /// What the kernel asked for before the next entry of a guest vCPU.
    staged: Option<(usize, VmEntry)>,
    /// Guest vCPUs pinned here whose state was saved with their virtual
    /// timer armed: (vCPU, when it fires, in physical counter ticks). The
    /// core's EL1 physical timer, which no guest or service may touch, is
    /// set for the earliest, so a halted vCPU is woken when its timer would
    /// have fired (its own then fires as soon as it is loaded again).
    sleepers: [Option<(usize, u64)>; SLEEPERS],
}

impl PerCore {
    pub(crate) const NEW: Self = Self {
        owner: None,
        guest_mode: false,
        staged: None,
        sleepers: [None; SLEEPERS],
    };

    /// Whether the core is set up for a guest (so entering a service must
    /// switch back).
    pub(crate) const fn guest_mode(&self) -> bool {
        self.guest_mode
    }
}

/// Which guest vCPU each passed-through interrupt goes to (entry n: INTID
/// n; the vCPU's index plus one, 0 for none). Written at boot, before any
/// guest runs; read when interrupts are delivered and vCPUs reset.
static PASSTHROUGH: [AtomicU8; VIRTUAL_INTIDS as usize] =
    [const { AtomicU8::new(0) }; VIRTUAL_INTIDS as usize];

/// Passes shared interrupt `intid` through to guest vCPU `vcpu`: it is
/// delivered to it linked to the physical interrupt, which stays active
/// until the guest completes the virtual one.
pub(crate) fn set_passthrough(intid: u32, vcpu: usize) {
    if let (Some(slot), Ok(value)) = (
        PASSTHROUGH.get(intid as usize),
        u8::try_from(vcpu.saturating_add(1)),
    ) {
        slot.store(value, Ordering::Relaxed);
    }
}

/// Whether `intid` is passed through to guest vCPU `vcpu`.
fn is_passthrough(intid: u32, vcpu: usize) -> bool {
    PASSTHROUGH
        .get(intid as usize)
        .is_some_and(|slot| usize::from(slot.load(Ordering::Relaxed)) == vcpu.wrapping_add(1))
}

/// Releases every interrupt passed through to `vcpu`, which is being reset
/// (`fresh`: the interrupts that arrive with its start, which stay): what
/// it had not completed (in its list registers, or waiting for one) is
/// gone with its old state, so its physical interrupt is deactivated, and
/// enabled again (the kernel masks it while the vCPU is off).
fn release_passthrough(vcpu: usize, fresh: &[u64]) {
    for intid in 0..VIRTUAL_INTIDS {
        let arrived = fresh
            .get(intid as usize / 64)
            .is_some_and(|word| word & 1 << (intid % 64) != 0);
        if is_passthrough(intid, vcpu) && !arrived {
            crate::gic::clear_active(intid);
            let _ = crate::gic::enable(intid, crate::cpu::mpidr_affinity());
        }
    }
}

/// Sets up guest vCPU `vcpu` at boot: `index` is its place in its guest.
pub(crate) fn init_vcpu(vcpu: usize, index: u8) {
    // SAFETY: at boot (or while restarting, with the vCPU claimed and
    // off: its core enters it only after a start) nothing else uses it.
    if let Some(state) = unsafe { state(vcpu) } {
        *state = VmState::EMPTY;
        state.vmpidr = hv_abi::vm::guest_mpidr(index);
    }
}

unsafe extern "C" {
    fn hv_fp_save(fp: *mut Fp);
    fn hv_fp_load(fp: *const Fp);
}

core::arch::global_asm!(
    include_str!("vm.S"),
    fpsr = const core::mem::offset_of!(Fp, fpsr),
    fpcr = const core::mem::offset_of!(Fp, fpcr),
);

/// The kernel asks for `entry` to be applied when this core next enters
/// the guest vCPU `vcpu`, which it is about to run.
pub(crate) fn stage(core: &mut PerCore, vcpu: usize, entry: VmEntry) {
    core.staged = Some(match core.staged.take() {
        Some((for_vcpu, mut earlier)) if for_vcpu == vcpu => {
            earlier.start = entry.start.or(earlier.start);
            earlier.write = entry.write.or(earlier.write);
            for (a, b) in earlier.irqs.iter_mut().zip(entry.irqs) {
                *a |= b;
            }
            for (a, b) in earlier.sgi_sources.iter_mut().zip(entry.sgi_sources) {
                *a |= b;
            }
            (vcpu, earlier)
        }
        // An entry for another vCPU was never applied: that vCPU did not
        // run, and the kernel staged it only on the way to running it.
        _ => (vcpu, entry),
    });
}

/// Makes this core ready to enter vCPU `vcpu` (context `context`), a guest's
/// if `guest`: switches the lazily loaded state and what governs EL0 as the
/// module documentation says, and applies what the kernel staged.
#[inline]
pub(crate) fn before_entry(core: &mut PerCore, vcpu: usize, context: &mut Context, guest: bool) {
    if !guest {
        if core.guest_mode {
            leave_guest_mode(core);
        }
        return;
    }
    // The usual case, out of the general path's way: the owner again, in
    // guest mode, with nothing staged. Only what waits is delivered (all
    // the general path would do).
    if core.guest_mode && core.owner == Some(vcpu) && core.staged.is_none() {
        // SAFETY: `vcpu` is pinned to this core, which is entering it.
        if let Some(state) = unsafe { state(vcpu) }
            && !state.waiting.is_empty()
        {
            deliver(vcpu, &mut state.waiting);
        }
        return;
    }
    enter_guest(core, vcpu, context);
}

/// [`before_entry`] of a guest vCPU, in full.
#[inline(never)]
fn enter_guest(core: &mut PerCore, vcpu: usize, context: &mut Context) {
    // Tested before it is taken: moving an empty `Option` out costs a copy
    // of the whole entry.
    if core.staged.as_ref().is_some_and(|(v, _)| *v != vcpu) {
        core.staged = None;
    }
    let start = core.staged.as_ref().and_then(|(_, e)| e.start);
    if core.owner != Some(vcpu) || start.is_some() {
        if !core.guest_mode {
            CPTR_EL2.set(CPTR_GUEST);
            aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
        }
        if let Some(owner) = core.owner.filter(|&o| o != vcpu) {
            // SAFETY: the owner is pinned to this core (invariants).
            if let Some(old) = unsafe { state(owner) } {
                save(old, core.guest_mode);
                if let Some(deadline) = old.timer_deadline() {
                    add_sleeper(core, owner, deadline);
                }
            }
        }
        remove_sleeper(core, vcpu);
        // SAFETY: `vcpu` is pinned to this core, which is entering it.
        let Some(new) = (unsafe { state(vcpu) }) else {
            return;
        };
        if let Some(entry) = start {
            if core.owner == Some(vcpu) {
                // Whatever it had loaded goes: its timer's physical
                // interrupt, if it held it, is deactivated.
                save(new, core.guest_mode);
            } else if new.timer_active {
                // Saved holding it: nothing is active for it now.
                new.timer_active = false;
            }
            let fresh = core.staged.as_ref().map(|(_, e)| e.irqs);
            reset(vcpu, new, context, entry, fresh.as_ref().map_or(&[], |f| f));
        }
        load(new);
        core.owner = Some(vcpu);
    } else if !core.guest_mode {
        // SAFETY: as above.
        if let Some(state) = unsafe { state(vcpu) } {
            SCTLR_EL1.set(state.el1.sctlr);
            CNTKCTL_EL1.set(state.el1.cntkctl);
            TPIDRRO_EL0.set(state.el1.tpidrro);
        }
        CPTR_EL2.set(CPTR_GUEST);
    }
    if !core.guest_mode {
        HCR_EL2.set(HCR_GUEST);
        aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
        core.guest_mode = true;
    }
    // SAFETY: as above.
    let Some(state) = (unsafe { state(vcpu) }) else {
        return;
    };
    if core.staged.is_some()
        && let Some((_, entry)) = core.staged.take()
    {
        if let Some((register, value)) = entry.write
            && let Some(x) = context.x.get_mut(usize::from(register))
        {
            *x = value;
        }
        for (word, bits) in entry.irqs.iter().enumerate() {
            if let Some(waiting) = state.waiting.irqs.get_mut(word) {
                *waiting |= bits;
            }
        }
        for (sources, new) in state.waiting.sgi_sources.iter_mut().zip(entry.sgi_sources) {
            *sources |= new;
        }
    }
    if !state.waiting.is_empty() {
        deliver(vcpu, &mut state.waiting);
    }
}

/// Leaves guest mode for a service: the guest's EL0-governing registers
/// are kept in its state and the service's put back.
fn leave_guest_mode(core: &mut PerCore) {
    // SAFETY: the owner is pinned to this core (invariants).
    if let Some(state) = core.owner.and_then(|o| unsafe { state(o) }) {
        state.el1.sctlr = SCTLR_EL1.get();
        state.el1.cntkctl = CNTKCTL_EL1.get();
        state.el1.tpidrro = TPIDRRO_EL0.get();
    }
    SCTLR_EL1.set(SCTLR_SERVICE);
    CNTKCTL_EL1.set(CNTKCTL_SERVICE);
    TPIDRRO_EL0.set(0);
    HCR_EL2.set(HCR_SERVICE);
    CPTR_EL2.set(CPTR_SERVICE);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    core.guest_mode = false;
}

/// Puts waiting virtual interrupts into free list registers; asks for a
/// maintenance interrupt if some still wait.
fn deliver(vcpu: usize, waiting: &mut Waiting) {
    deliver_inline(vcpu, waiting);
}

/// [`deliver`], inline: for the timer's interrupt ([`timer_fired`]).
#[inline(always)]
fn deliver_inline(vcpu: usize, waiting: &mut Waiting) {
    // The timer alone (its usual case): one call does it all.
    if waiting.timer && waiting.irqs.iter().fold(0, |all, w| all | w) == 0 {
        waiting.timer = !vgic::inject_timer_alone();
        return;
    }
    if waiting.timer {
        if vgic::inject_timer() {
            waiting.timer = false;
        } else {
            vgic::want_room(true);
            return;
        }
    }
    if waiting.irqs.iter().any(|w| *w != 0) {
        deliver_irqs(vcpu, waiting);
    } else {
        vgic::want_room(false);
    }
}

/// [`deliver`] past the timer: the other waiting interrupts.
#[inline(never)]
fn deliver_irqs(vcpu: usize, waiting: &mut Waiting) {
    for word in 0..waiting.irqs.len() {
        while let Some(bits) = waiting.irqs.get(word).copied().filter(|b| *b != 0) {
            let bit = bits.trailing_zeros();
            let intid = word as u32 * 64 + bit;
            let mut sources = waiting
                .sgi_sources
                .get(intid as usize)
                .copied()
                .unwrap_or(0);
            // GICv2: one list register per source of an SGI.
            let source = if sources == 0 {
                0
            } else {
                sources.trailing_zeros() as u8
            };
            let hw = is_passthrough(intid, vcpu).then_some(intid);
            if !vgic::inject(intid, source, hw) {
                vgic::want_room(true);
                return;
            }
            sources &= !(1 << source);
            if let Some(slot) = waiting.sgi_sources.get_mut(intid as usize) {
                *slot = sources;
            }
            if sources == 0
                && let Some(w) = waiting.irqs.get_mut(word)
            {
                *w &= !(1 << bit);
            }
        }
    }
    vgic::want_room(false);
}

/// Saves the loaded guest vCPU's state into `state`; `guest_mode` says
/// whether its EL0-governing registers are loaded too (else they were
/// saved when the core left guest mode).
fn save(state: &mut VmState, guest_mode: bool) {
    let e = &mut state.el1;
    if guest_mode {
        e.sctlr = SCTLR_EL1.get();
        e.cntkctl = CNTKCTL_EL1.get();
        e.tpidrro = TPIDRRO_EL0.get();
    }
    e.ttbr0 = TTBR0_EL1.get();
    e.ttbr1 = TTBR1_EL1.get();
    e.tcr = TCR_EL1.get();
    e.mair = MAIR_EL1.get();
    e.amair = AMAIR_EL1.get();
    e.vbar = VBAR_EL1.get();
    e.contextidr = CONTEXTIDR_EL1.get();
    e.tpidr = TPIDR_EL1.get();
    e.sp = SP_EL1.get();
    e.elr = ELR_EL1.get();
    e.spsr = SPSR_EL1.get();
    e.esr = ESR_EL1.get();
    e.far = FAR_EL1.get();
    e.afsr0 = AFSR0_EL1.get();
    e.afsr1 = AFSR1_EL1.get();
    e.par = PAR_EL1.get();
    e.cpacr = CPACR_EL1.get();
    e.csselr = CSSELR_EL1.get();
    e.cntv_ctl = CNTV_CTL_EL0.get();
    e.cntv_cval = CNTV_CVAL_EL0.get();
    // Its timer must not fire for the next guest.
    CNTV_CTL_EL0.set(0);
    // SAFETY: `vm.S` stores V0..V31, FPCR and FPSR into the `Fp`, which is
    // valid and aligned; FP/SIMD is open at EL2 (CPTR_EL2, set by the
    // caller) and the kernel itself never uses those registers.
    unsafe { hv_fp_save(&raw mut state.fp) };
    let linked = vgic::save(&mut state.gic);
    // A timer interrupt still waiting for a list register has its physical
    // interrupt active too (it was acknowledged, not completed).
    if state.waiting.timer && !linked {
        crate::gic::deactivate(VIRTUAL_TIMER_INTID);
    }
    state.timer_active = linked || state.waiting.timer;
}

/// Loads guest vCPU `state` into this core's registers.
fn load(state: &VmState) {
    let e = &state.el1;
    SCTLR_EL1.set(e.sctlr);
    CNTKCTL_EL1.set(e.cntkctl);
    TPIDRRO_EL0.set(e.tpidrro);
    TTBR0_EL1.set(e.ttbr0);
    TTBR1_EL1.set(e.ttbr1);
    TCR_EL1.set(e.tcr);
    MAIR_EL1.set(e.mair);
    AMAIR_EL1.set(e.amair);
    VBAR_EL1.set(e.vbar);
    CONTEXTIDR_EL1.set(e.contextidr);
    TPIDR_EL1.set(e.tpidr);
    SP_EL1.set(e.sp);
    ELR_EL1.set(e.elr);
    SPSR_EL1.set(e.spsr);
    ESR_EL1.set(e.esr);
    FAR_EL1.set(e.far);
    AFSR0_EL1.set(e.afsr0);
    AFSR1_EL1.set(e.afsr1);
    PAR_EL1.set(e.par);
    CPACR_EL1.set(e.cpacr);
    CSSELR_EL1.set(e.csselr);
    VMPIDR_EL2.set(state.vmpidr);
    CNTV_CVAL_EL0.set(e.cntv_cval);
    CNTV_CTL_EL0.set(e.cntv_ctl);
    // SAFETY: `vm.S` loads V0..V31, FPCR and FPSR from the `Fp`, which is
    // valid and aligned; FP/SIMD is open at EL2 (CPTR_EL2, set by the
    // caller).
    unsafe { hv_fp_load(&raw const state.fp) };
    // Its timer's interrupt is still in its hands: the physical one must
    // not fire again until it completes the virtual one.
    if state.timer_active {
        crate::gic::activate(VIRTUAL_TIMER_INTID);
    }
    vgic::load(&state.gic);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}

/// Puts a guest vCPU back to its reset state, to start at `entry`: EL1h
/// with interrupts masked, every general register but x0..x7 (the kernel's
/// state gives those) zero, EL1 registers, FP/SIMD, virtual timer and
/// virtual CPU interface at reset.
fn reset(vcpu: usize, state: &mut VmState, context: &mut Context, entry: u64, fresh: &[u64]) {
    release_passthrough(vcpu, fresh);
    let keep = VmState {
        vmpidr: state.vmpidr,
        ..VmState::EMPTY
    };
    *state = keep;
    state.gic = vgic::reset_state();
    for x in context.x.iter_mut().skip(8) {
        *x = 0;
    }
    context.sp_el0 = 0;
    context.tpidr_el0 = 0;
    context.elr = entry;
    context.spsr = SPSR_EL1H;
}

/// The virtual timer's PPI fired on this core: it is the owner's, which
/// gets it through a list register linked to the physical interrupt (the
/// caller must not deactivate the physical one: the guest does, by
/// completing the virtual one). Returns the owner to wake, if any; without
/// an owner the interrupt is deactivated here.
pub(crate) fn timer_fired(core: &mut PerCore) -> Option<usize> {
    let Some(owner) = core.owner else {
        CNTV_CTL_EL0.set(0);
        crate::gic::deactivate(VIRTUAL_TIMER_INTID);
        return None;
    };
    // SAFETY: the owner is pinned to this core (invariants).
    let state = unsafe { state(owner) }?;
    state.waiting.timer = true;
    deliver_inline(owner, &mut state.waiting);
    Some(owner)
}

/// Records that `vcpu`'s virtual timer fires at `deadline` while it is not
/// loaded, and sets the core's wake-up timer.
fn add_sleeper(core: &mut PerCore, vcpu: usize, deadline: u64) {
    remove_sleeper(core, vcpu);
    let slot = core.sleepers.iter_mut().find(|s| s.is_none());
    match slot {
        Some(slot) => *slot = Some((vcpu, deadline)),
        // Full (more guest vCPUs on one core than ever configured): the
        // latest deadline gives way; its vCPU is woken by its next
        // interrupt of another kind.
        None => {
            if let Some(latest) = core
                .sleepers
                .iter_mut()
                .max_by_key(|s| s.map_or(0, |(_, d)| d))
            {
                *latest = Some((vcpu, deadline));
            }
        }
    }
    arm_wake_timer(core);
}

/// Forgets `vcpu`'s unloaded timer (it is being loaded).
fn remove_sleeper(core: &mut PerCore, vcpu: usize) {
    let mut changed = false;
    for slot in &mut core.sleepers {
        if slot.is_some_and(|(v, _)| v == vcpu) {
            *slot = None;
            changed = true;
        }
    }
    if changed {
        arm_wake_timer(core);
    }
}

/// Sets the EL1 physical timer for the earliest sleeper, or stops it.
fn arm_wake_timer(core: &PerCore) {
    match core.sleepers.iter().flatten().map(|(_, d)| *d).min() {
        Some(deadline) => crate::timer::wake_at(deadline),
        None => crate::timer::stop_wake(),
    }
}

/// The wake-up timer fired: the sleepers whose deadline has passed (bit n:
/// vCPU n), which the kernel wakes; the timer is set for the rest.
pub(crate) fn wake_due(core: &mut PerCore) -> u64 {
    let now = crate::cpu::counter();
    let mut due = 0u64;
    for slot in &mut core.sleepers {
        if let Some((vcpu, deadline)) = *slot
            && deadline <= now
        {
            due |= 1 << (vcpu % 64);
            *slot = None;
        }
    }
    arm_wake_timer(core);
    due
}

/// The GIC's maintenance interrupt: list registers have room again for
/// what waits.
pub(crate) fn maintenance(core: &mut PerCore) {
    // SAFETY: the owner is pinned to this core (invariants).
    match core.owner.and_then(|o| Some((o, unsafe { state(o) }?))) {
        Some((owner, state)) => deliver(owner, &mut state.waiting),
        None => vgic::want_room(false),
    }
}

/// Whether the loaded guest vCPU `vcpu` has an interrupt pending in the
/// hardware (a list register) or waiting for one: its WFI would end.
pub(crate) fn pending_in_hardware(core: &PerCore, vcpu: usize) -> bool {
    if core.owner != Some(vcpu) {
        return false;
    }
    // SAFETY: the owner is pinned to this core (invariants); only read.
    let waiting = unsafe { state(vcpu) }.is_some_and(|s| !s.waiting.is_empty());
    waiting || vgic::has_pending()
}
