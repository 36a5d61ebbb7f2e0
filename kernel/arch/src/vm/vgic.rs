// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The GIC's virtual CPU interface: the list registers through which the
//! kernel delivers virtual interrupts to the guest vCPU loaded on a core.
//!
//! GICv3 has them as system registers (ICH_*_EL2), GICv2 in a memory-mapped
//! frame (GICH); the guest takes and completes its interrupts through the
//! virtual CPU interface without trapping (ICV_* system registers on v3,
//! the GICV frame mapped at its GICC address on v2). What is in the list
//! registers belongs to the vCPU whose state the core has loaded
//! (`vm::PerCore`); [`save`] and [`load`] move it in and out, [`inject`]
//! adds an interrupt.
//!
//! A list register with its HW bit set is linked to a physical interrupt
//! (the virtual timer's PPI): the guest's deactivation of the virtual one
//! deactivates the physical one, which stays active meanwhile and so cannot
//! fire again. The link is the vCPU's: [`save`] reports that the physical
//! interrupt was active for it and deactivates it (so the next guest's
//! timer on this core is not blocked); `vm` activates it again before it
//! loads the vCPU ([`crate::gic::activate`]).

use aarch64_cpu::registers::{
    ICH_AP0R0_EL2, ICH_AP1R0_EL2, ICH_HCR_EL2, ICH_LR0_EL2, ICH_LR1_EL2, ICH_LR2_EL2, ICH_LR3_EL2,
    ICH_LR4_EL2, ICH_LR5_EL2, ICH_LR6_EL2, ICH_LR7_EL2, ICH_LR8_EL2, ICH_LR9_EL2, ICH_LR10_EL2,
    ICH_LR11_EL2, ICH_LR12_EL2, ICH_LR13_EL2, ICH_LR14_EL2, ICH_LR15_EL2, ICH_VMCR_EL2,
    ICH_VTR_EL2, Readable, Writeable,
};
use core::sync::atomic::{AtomicUsize, Ordering};

use hv_core::platform::{Gic as GicInfo, GicVersion};
use spin::Once;
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite};

/// The most list registers any GIC has.
pub(crate) const MAX_LRS: usize = 16;

/// Every virtual interrupt's priority (Linux masks at 0xf0 and below).
const PRIORITY: u64 = 0xa0;

register_structs! {
    /// GICv2's virtual interface control frame (GICH).
    Gich {
        (0x000 => hcr: ReadWrite<u32>),
        (0x004 => vtr: ReadOnly<u32>),
        (0x008 => vmcr: ReadWrite<u32>),
        (0x00c => _reserved0),
        (0x0f0 => apr: ReadWrite<u32>),
        (0x0f4 => _reserved1),
        (0x100 => lr: [ReadWrite<u32>; 64]),
        (0x200 => @END),
    }
}

/// ICH_HCR_EL2 / GICH_HCR: the virtual CPU interface is enabled.
const HCR_EN: u64 = 1 << 0;
/// ICH_HCR_EL2 / GICH_HCR: a maintenance interrupt while no list register
/// holds a pending interrupt (so that waiting ones can be put in).
const HCR_NPIE: u64 = 1 << 3;

enum Interface {
    V2 { gich: &'static Gich, lrs: usize },
    V3 { lrs: usize },
}

// SAFETY: the GICH frame is per core (banked), each core touches only its
// own; the reference is a plain device address.
unsafe impl Sync for Interface {}
// SAFETY: as above.
unsafe impl Send for Interface {}

static INTERFACE: Once<Interface> = Once::new();

/// GICv3's list registers, set with [`INTERFACE`] (0 for GICv2, or before
/// it): the hot paths ([`inject_timer`], [`want_room`]) need only this of
/// it, without `Once`'s check.
static V3_LRS: AtomicUsize = AtomicUsize::new(0);

/// A list register's state field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Invalid,
    Pending,
    Active,
    PendingAndActive,
}

impl State {
    /// The state field's value.
    const fn bits(self) -> u64 {
        match self {
            Self::Invalid => 0,
            Self::Pending => 1,
            Self::Active => 2,
            Self::PendingAndActive => 3,
        }
    }
}

/// A GICv3 list register holding `lr` (group 1).
const fn encode_v3(lr: Lr) -> u64 {
    let link = match lr.hw {
        Some(physical) => (1 << 61) | (((physical & 0x1fff) as u64) << 32),
        None => 0,
    };
    (lr.state.bits() << 62) | link | (1 << 60) | (PRIORITY << 48) | lr.intid as u64
}

/// A list register's contents, whatever the GIC's version.
#[derive(Clone, Copy, Debug)]
struct Lr {
    intid: u32,
    state: State,
    /// Linked to this physical interrupt.
    hw: Option<u32>,
    /// The sending vCPU of an SGI (GICv2).
    source: u8,
}

/// What one vCPU's virtual CPU interface holds while another's is loaded.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Saved {
    lrs: [u64; MAX_LRS],
    vmcr: u64,
    apr0: u64,
    apr1: u64,
    hcr: u64,
}

/// A vCPU's interface before it first runs.
pub(crate) const EMPTY: Saved = Saved {
    lrs: [0; MAX_LRS],
    vmcr: 0,
    apr0: 0,
    apr1: 0,
    hcr: HCR_EN,
};

/// Sets the interface up from the device tree's description (on core 0,
/// once): GICv2's GICH frame must be mapped by then.
pub(crate) fn init(gic: &GicInfo) -> bool {
    let interface = match (gic.version, gic.hyp_interface) {
        (GicVersion::V3, _) => Interface::V3 {
            lrs: ((ICH_VTR_EL2.get() & 0x1f) as usize + 1).min(MAX_LRS),
        },
        (GicVersion::V2, Some(frame)) => {
            // SAFETY: the device tree's GICH frame, mapped by the kernel as
            // device memory and driven only here; each core reaches its own
            // banked copy through the same address.
            let gich = unsafe { &*(frame.start() as *const Gich) };
            let lrs = ((gich.vtr.get() & 0x3f) as usize + 1).min(MAX_LRS);
            Interface::V2 { gich, lrs }
        }
        (GicVersion::V2, None) => return false,
    };
    if let Interface::V3 { lrs } = INTERFACE.call_once(|| interface) {
        // On core 0 before the others start: a relaxed load sees it.
        V3_LRS.store(*lrs, Ordering::Relaxed);
    }
    true
}

/// Whether [`init`] found a virtual CPU interface.
pub(crate) fn ready() -> bool {
    INTERFACE.get().is_some()
}

/// Enables this core's virtual CPU interface (it signals nothing while a
/// service runs under HCR_EL2.TGE, nor while its list registers are empty).
pub(crate) fn init_cpu() {
    match INTERFACE.get() {
        Some(Interface::V3 { .. }) => ICH_HCR_EL2.set(HCR_EN),
        Some(Interface::V2 { gich, .. }) => gich.hcr.set(HCR_EN as u32),
        None => {}
    }
}

impl Interface {
    fn lrs(&self) -> usize {
        match self {
            Self::V2 { lrs, .. } | Self::V3 { lrs } => *lrs,
        }
    }

    fn read_raw(&self, n: usize) -> u64 {
        match self {
            Self::V2 { gich, .. } => gich.lr.get(n).map_or(0, |r| u64::from(r.get())),
            Self::V3 { .. } => read_ich_lr(n),
        }
    }

    fn write_raw(&self, n: usize, value: u64) {
        match self {
            Self::V2 { gich, .. } => {
                if let Some(r) = gich.lr.get(n) {
                    r.set(value as u32);
                }
            }
            Self::V3 { .. } => write_ich_lr(n, value),
        }
    }

    fn decode(&self, raw: u64) -> Lr {
        let (state, intid, hw, physical, source) = match self {
            Self::V2 { .. } => (
                (raw >> 28) & 0b11,
                (raw & 0x3ff) as u32,
                raw & (1 << 31) != 0,
                ((raw >> 10) & 0x3ff) as u32,
                ((raw >> 10) & 0b111) as u8,
            ),
            Self::V3 { .. } => (
                raw >> 62,
                raw as u32,
                raw & (1 << 61) != 0,
                ((raw >> 32) & 0x1fff) as u32,
                0,
            ),
        };
        Lr {
            intid,
            state: match state {
                0 => State::Invalid,
                1 => State::Pending,
                2 => State::Active,
                _ => State::PendingAndActive,
            },
            hw: hw.then_some(physical),
            source: if hw { 0 } else { source },
        }
    }

    fn encode(&self, lr: Lr) -> u64 {
        let state = lr.state.bits();
        match self {
            // GICv2 guests take group 0 as IRQs (their GICV_CTLR enables
            // group 0, as Linux's driver writes it).
            Self::V2 { .. } => {
                let link = match lr.hw {
                    Some(physical) => (1 << 31) | (u64::from(physical & 0x3ff) << 10),
                    None => u64::from(lr.source & 0b111) << 10,
                };
                link | (state << 28) | ((PRIORITY >> 3) << 23) | u64::from(lr.intid & 0x3ff)
            }
            Self::V3 { .. } => encode_v3(lr),
        }
    }

    fn hcr(&self) -> u64 {
        match self {
            Self::V2 { gich, .. } => u64::from(gich.hcr.get()),
            Self::V3 { .. } => ICH_HCR_EL2.get(),
        }
    }

    fn set_hcr(&self, value: u64) {
        match self {
            Self::V2 { gich, .. } => gich.hcr.set(value as u32),
            Self::V3 { .. } => ICH_HCR_EL2.set(value),
        }
    }
}

/// Moves the loaded vCPU's interface into `saved` and empties the list
/// registers. Returns whether a live list register was linked to the
/// virtual timer's physical interrupt, which is then deactivated here (the
/// caller keeps that it was active, to activate it again on load).
pub(crate) fn save(saved: &mut Saved) -> bool {
    let Some(gic) = INTERFACE.get() else {
        return false;
    };
    let mut linked = false;
    for n in 0..gic.lrs() {
        let lr = gic.decode(gic.read_raw(n));
        // A list register the guest has finished with keeps its old fields:
        // only a live one's link means the physical interrupt is active.
        // The timer's is a private interrupt of this core, which the next
        // guest here needs; a passed-through SPI stays active until the
        // guest, loaded again, completes it.
        saved.lrs[n] = if lr.state == State::Invalid {
            0
        } else {
            linked |= lr.hw == Some(hv_abi::vm::VIRTUAL_TIMER_INTID);
            gic.read_raw(n)
        };
        gic.write_raw(n, 0);
    }
    if linked {
        crate::gic::deactivate(hv_abi::vm::VIRTUAL_TIMER_INTID);
    }
    match gic {
        Interface::V2 { gich, .. } => {
            saved.vmcr = u64::from(gich.vmcr.get());
            saved.apr0 = u64::from(gich.apr.get());
        }
        Interface::V3 { .. } => {
            saved.vmcr = ICH_VMCR_EL2.get();
            saved.apr0 = ICH_AP0R0_EL2.get();
            saved.apr1 = ICH_AP1R0_EL2.get();
        }
    }
    saved.hcr = gic.hcr();
    linked
}

/// Loads a vCPU's interface from `saved`.
pub(crate) fn load(saved: &Saved) {
    let Some(gic) = INTERFACE.get() else { return };
    for n in 0..gic.lrs() {
        gic.write_raw(n, saved.lrs[n]);
    }
    match gic {
        Interface::V2 { gich, .. } => {
            gich.vmcr.set(saved.vmcr as u32);
            gich.apr.set(saved.apr0 as u32);
        }
        Interface::V3 { .. } => {
            ICH_VMCR_EL2.set(saved.vmcr);
            ICH_AP0R0_EL2.set(saved.apr0);
            ICH_AP1R0_EL2.set(saved.apr1);
        }
    }
    gic.set_hcr(saved.hcr | HCR_EN);
}

/// The interface of a vCPU at reset: nothing pending or active.
pub(crate) const fn reset_state() -> Saved {
    EMPTY
}

/// Adds virtual interrupt `intid` (from vCPU `source`, for a GICv2 SGI;
/// linked to physical interrupt `hw`, if any) to the loaded vCPU's list
/// registers. Already pending: nothing changes; active: it becomes pending
/// too. Returns `false` if no list register was free.
pub(crate) fn inject(intid: u32, source: u8, hw: Option<u32>) -> bool {
    let Some(gic) = INTERFACE.get() else {
        return true;
    };
    // The list registers that may hold something (bit n: register n), and
    // the first free one. GICv3 says which are empty (ICH_ELRSR_EL2), so
    // only the others are read; GICv2's are all read.
    let (mut live, mut free) = match gic {
        Interface::V3 { lrs } => {
            let all = (1u64 << *lrs) - 1;
            // An empty register is one whose state is invalid (its HW bit
            // set or its EOI bit clear: the kernel never sets EOI), exactly
            // the registers skipped below as free.
            let empty = ich_elrsr() & all;
            (
                all & !empty,
                (empty != 0).then(|| empty.trailing_zeros() as usize),
            )
        }
        Interface::V2 { lrs, .. } => ((1u64 << *lrs) - 1, None),
    };
    while live != 0 {
        let n = live.trailing_zeros() as usize;
        live &= live - 1;
        let mut lr = gic.decode(gic.read_raw(n));
        if lr.state == State::Invalid {
            free = free.or(Some(n));
            continue;
        }
        // GICv2 SGIs from different sources are different interrupts.
        if lr.intid != intid || (intid < 16 && lr.source != source && lr.hw.is_none()) {
            continue;
        }
        match (lr.state, lr.hw) {
            // The monitor cannot inject the timer's interrupt (the kernel
            // refuses it), so an unlinked copy of it is never there to join.
            (State::Pending | State::PendingAndActive, _) => return true,
            (State::Active, None) => {
                lr.state = State::PendingAndActive;
                gic.write_raw(n, gic.encode(lr));
                return true;
            }
            // An active linked one: its physical interrupt is still active,
            // so this cannot be a second firing of it; another register
            // takes the new one. (Invalid ones were skipped above.)
            (State::Active, Some(_)) | (State::Invalid, _) => {}
        }
    }
    let Some(n) = free else { return false };
    let lr = Lr {
        intid,
        state: State::Pending,
        hw,
        source,
    };
    gic.write_raw(n, gic.encode(lr));
    true
}

/// The virtual timer's interrupt, linked to its PPI, into the first list
/// register, in the usual case where that is what [`inject`] would do: on
/// GICv3 with every list register empty (nothing to join, the first free
/// one). Whether it went in.
#[inline(always)]
fn timer_into_empty_lr0() -> bool {
    let timer = hv_abi::vm::VIRTUAL_TIMER_INTID;
    let lrs = V3_LRS.load(Ordering::Relaxed);
    if lrs == 0 {
        return false;
    }
    let all = (1u64 << lrs) - 1;
    if ich_elrsr() & all != all {
        return false;
    }
    ICH_LR0_EL2.set(encode_v3(Lr {
        intid: timer,
        state: State::Pending,
        hw: Some(timer),
        source: 0,
    }));
    true
}

/// [`inject`] of the virtual timer's interrupt, linked to its PPI, its
/// usual case first ([`timer_into_empty_lr0`]).
#[inline]
pub(crate) fn inject_timer() -> bool {
    let timer = hv_abi::vm::VIRTUAL_TIMER_INTID;
    timer_into_empty_lr0() || inject(timer, 0, Some(timer))
}

/// [`inject_timer`] when nothing else waits for a list register, then
/// [`want_room`]: no maintenance interrupt is wanted any more if it went
/// in, one is if not. Returns whether it went in.
#[inline]
pub(crate) fn inject_timer_alone() -> bool {
    if timer_into_empty_lr0() {
        let hcr = ICH_HCR_EL2.get();
        if hcr & HCR_NPIE != 0 {
            ICH_HCR_EL2.set(hcr & !HCR_NPIE);
        }
        return true;
    }
    let timer = hv_abi::vm::VIRTUAL_TIMER_INTID;
    let delivered = inject(timer, 0, Some(timer));
    want_room(!delivered);
    delivered
}

/// Whether a list register holds a pending interrupt (a WFI would end).
pub(crate) fn has_pending() -> bool {
    let Some(gic) = INTERFACE.get() else {
        return false;
    };
    (0..gic.lrs()).any(|n| {
        matches!(
            gic.decode(gic.read_raw(n)).state,
            State::Pending | State::PendingAndActive
        )
    })
}

/// Asks for (or stops asking for) a maintenance interrupt once no list
/// register holds a pending interrupt, when more wait than fit.
pub(crate) fn want_room(on: bool) {
    let want = |hcr| if on { hcr | HCR_NPIE } else { hcr & !HCR_NPIE };
    if V3_LRS.load(Ordering::Relaxed) != 0 {
        let hcr = ICH_HCR_EL2.get();
        if want(hcr) != hcr {
            ICH_HCR_EL2.set(want(hcr));
        }
        return;
    }
    let Some(gic) = INTERFACE.get() else { return };
    let hcr = gic.hcr();
    if want(hcr) != hcr {
        gic.set_hcr(want(hcr));
    }
}

// SAFETY: `hv_ich_elrsr` (`vm.S`) is `mrs x0, ICH_ELRSR_EL2; ret`: it
// takes nothing, clobbers only x0, and is safe to call at EL2 at any time,
// hence `safe fn`.
unsafe extern "C" {
    /// ICH_ELRSR_EL2 (`vm.S`; `aarch64-cpu` lacks it): bit n is set if list
    /// register n is empty. Reading it has no side effect and touches no
    /// memory.
    #[link_name = "hv_ich_elrsr"]
    safe fn ich_elrsr() -> u64;
}

/// Reads ICH_LR<n>_EL2 (0 past the registers).
fn read_ich_lr(n: usize) -> u64 {
    match n {
        0 => ICH_LR0_EL2.get(),
        1 => ICH_LR1_EL2.get(),
        2 => ICH_LR2_EL2.get(),
        3 => ICH_LR3_EL2.get(),
        4 => ICH_LR4_EL2.get(),
        5 => ICH_LR5_EL2.get(),
        6 => ICH_LR6_EL2.get(),
        7 => ICH_LR7_EL2.get(),
        8 => ICH_LR8_EL2.get(),
        9 => ICH_LR9_EL2.get(),
        10 => ICH_LR10_EL2.get(),
        11 => ICH_LR11_EL2.get(),
        12 => ICH_LR12_EL2.get(),
        13 => ICH_LR13_EL2.get(),
        14 => ICH_LR14_EL2.get(),
        15 => ICH_LR15_EL2.get(),
        _ => 0,
    }
}

/// Writes ICH_LR<n>_EL2 (nothing past the registers).
fn write_ich_lr(n: usize, value: u64) {
    match n {
        0 => ICH_LR0_EL2.set(value),
        1 => ICH_LR1_EL2.set(value),
        2 => ICH_LR2_EL2.set(value),
        3 => ICH_LR3_EL2.set(value),
        4 => ICH_LR4_EL2.set(value),
        5 => ICH_LR5_EL2.set(value),
        6 => ICH_LR6_EL2.set(value),
        7 => ICH_LR7_EL2.set(value),
        8 => ICH_LR8_EL2.set(value),
        9 => ICH_LR9_EL2.set(value),
        10 => ICH_LR10_EL2.set(value),
        11 => ICH_LR11_EL2.set(value),
        12 => ICH_LR12_EL2.set(value),
        13 => ICH_LR13_EL2.set(value),
        14 => ICH_LR14_EL2.set(value),
        15 => ICH_LR15_EL2.set(value),
        _ => {}
    }
}
