// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Interrupts the kernel takes for itself: its timer tick and the cross-core
//! kick.
//!
//! Every core runs the EL2 physical timer at [`TICK_HZ`]; the tick is what
//! preempts partitions (see `dispatch`). A core that has nothing to run
//! sleeps in [`idle`] until an interrupt arrives.
//!
//! On a timed system (a schedule or budgets: [`set_timed`]) the timer is
//! programmed instead for the earliest of the core's next tick and the
//! state's next time event (a window's end, a budget running out or being
//! refilled: `KernelState::next_event`), by absolute counter value
//! ([`arm_until`]); a timer interrupt is a tick only once the tick's time has
//! come ([`tick_due`]).

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use hv_arch_aarch64 as arch;
use hv_arch_aarch64::gic;
use hv_core::MAX_CPUS;
use hv_core::platform::PlatformInfo;

/// Timer interrupts per second on each core (`hv-core`'s clock counts them).
pub(crate) const TICK_HZ: u64 = hv_core::state::TICK_HZ;

static TIMER_INTID: AtomicU32 = AtomicU32::new(u32::MAX);
/// The GIC's maintenance interrupt, if guests can be given virtual
/// interrupts (`u32::MAX`: none).
static MAINTENANCE_INTID: AtomicU32 = AtomicU32::new(u32::MAX);
/// The EL1 physical timer's interrupt: the kernel's wake-up for guests
/// whose virtual timer is not loaded.
static WAKE_INTID: AtomicU32 = AtomicU32::new(u32::MAX);
static PERIOD: AtomicU64 = AtomicU64::new(0);
static TICKS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Each core's next tick, as a counter value (timed systems only).
static NEXT_TICK: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Whether the system is timed: set once at install.
static TIMED: AtomicBool = AtomicBool::new(false);

/// How far in the future the major frame starts, from the moment the
/// system is installed: long enough for every core to be running its
/// domain by then (they start at once; this is slack, not a wait).
const FRAME_START_DELAY_US: u64 = 1_000;

/// The counter that runs a schedule: its frequency, and the start of the
/// first major frame on every core, a little in the future.
pub(crate) fn frame_counter() -> hv_core::lower::Counter {
    let hz = arch::cpu::timer_frequency();
    hv_core::lower::Counter {
        hz,
        start: arch::cpu::counter() + hz * FRAME_START_DELAY_US / 1_000_000,
    }
}

/// Records that the system is timed: from now on timer interrupts are
/// told apart into ticks and time events.
pub(crate) fn set_timed() {
    TIMED.store(true, Ordering::Release);
}

/// Whether the system is timed.
#[inline(always)]
pub(crate) fn is_timed() -> bool {
    TIMED.load(Ordering::Relaxed)
}

/// On a timed system's timer interrupt on this core at counter `counter`:
/// whether it is (also) a tick. If so it is counted and the next one is set
/// a period later (or, if ticks were missed, a period from now).
pub(crate) fn tick_due(counter: u64) -> bool {
    let core = arch::cpu::index();
    let (Some(next), Some(count)) = (NEXT_TICK.get(core), TICKS.get(core)) else {
        return true;
    };
    let due = next.load(Ordering::Relaxed);
    if counter < due {
        return false;
    }
    count.fetch_add(1, Ordering::Relaxed);
    let period = PERIOD.load(Ordering::Relaxed).max(1);
    let following = due + period;
    next.store(
        if following > counter {
            following
        } else {
            counter + period
        },
        Ordering::Relaxed,
    );
    true
}

/// Programs this core's timer for the earlier of its next tick and `event`
/// (a counter value, from `KernelState::next_event`).
pub(crate) fn arm_until(event: Option<u64>) {
    let tick = NEXT_TICK
        .get(arch::cpu::index())
        .map_or(u64::MAX, |t| t.load(Ordering::Relaxed));
    arch::timer::arm_at(event.map_or(tick, |e| e.min(tick)));
}

/// Sets up the distributor and the tick's parameters; on core 0, once.
/// Returns the number of interrupt lines.
pub(crate) fn init(info: &PlatformInfo<'_>) -> Result<u32, &'static str> {
    let timer = info
        .timer
        .ok_or("the device tree has no generic timer node")?;
    TIMER_INTID.store(timer.hypervisor, Ordering::Relaxed);
    WAKE_INTID.store(timer.physical, Ordering::Relaxed);
    PERIOD.store(arch::cpu::timer_frequency() / TICK_HZ, Ordering::Relaxed);
    let lines = gic::init(&info.gic);
    if gic::can_virtualize()
        && let Some(maintenance) = info.gic.maintenance_irq
    {
        MAINTENANCE_INTID.store(maintenance, Ordering::Relaxed);
    }
    Ok(lines)
}

/// The EL1 physical timer's interrupt (guests' wake-ups).
pub(crate) fn wake_intid() -> u32 {
    WAKE_INTID.load(Ordering::Relaxed)
}

/// The GIC's maintenance interrupt, if guests can be given virtual
/// interrupts.
pub(crate) fn maintenance_intid() -> Option<u32> {
    let intid = MAINTENANCE_INTID.load(Ordering::Relaxed);
    (intid != u32::MAX).then_some(intid)
}

/// Sets up this core's interrupt interface and starts its tick.
pub(crate) fn init_cpu() -> Result<(), gic::GicError> {
    arch::vcpu::configure_cpu();
    gic::init_cpu()?;
    gic::enable(
        TIMER_INTID.load(Ordering::Relaxed),
        arch::cpu::mpidr_affinity(),
    )?;
    // A guest's virtual timer and the virtual CPU interface's maintenance
    // interrupt reach the kernel on this core (see `dispatch`).
    if gic::can_virtualize() {
        let here = arch::cpu::mpidr_affinity();
        gic::enable(hv_abi::vm::VIRTUAL_TIMER_INTID, here)?;
        gic::enable(wake_intid(), here)?;
        if let Some(maintenance) = maintenance_intid() {
            gic::enable(maintenance, here)?;
        }
    }
    arch::timer::deny_lower_levels();
    let period = PERIOD.load(Ordering::Relaxed);
    if let Some(next) = NEXT_TICK.get(arch::cpu::index()) {
        next.store(arch::cpu::counter() + period, Ordering::Relaxed);
    }
    arch::timer::arm(period);
    Ok(())
}

/// The EL2 timer's interrupt.
pub(crate) fn timer_intid() -> u32 {
    TIMER_INTID.load(Ordering::Relaxed)
}

/// The kernel's ticks since the counter started: the clock `hv-core`'s
/// time-based decisions (log quotas, restart back-off) count in. The same on
/// every core, since the counter is the system's.
pub(crate) fn now() -> u64 {
    arch::cpu::counter() / PERIOD.load(Ordering::Relaxed).max(1)
}

/// Counter ticks between two timer ticks.
pub(crate) fn period() -> u64 {
    PERIOD.load(Ordering::Relaxed)
}

/// Counts a tick on this core and re-arms the timer for the next.
pub(crate) fn tick() {
    if let Some(count) = TICKS.get(arch::cpu::index()) {
        count.fetch_add(1, Ordering::Relaxed);
    }
    arch::timer::arm(PERIOD.load(Ordering::Relaxed));
}

/// Waits (up to one second) until each of the first `cores` cores has ticked
/// twice; returns how many have.
pub(crate) fn wait_for_ticks(cores: usize) -> usize {
    let ticking = || {
        TICKS
            .iter()
            .take(cores)
            .filter(|t| t.load(Ordering::Relaxed) >= 2)
            .count()
    };
    let deadline = arch::cpu::counter() + arch::cpu::timer_frequency();
    while ticking() < cores && arch::cpu::counter() < deadline {
        arch::cpu::wait_for_interrupt();
    }
    ticking()
}

/// This core's idle loop: sleep, take interrupts, forever.
pub(crate) fn idle() -> ! {
    loop {
        arch::cpu::wait_for_interrupt();
    }
}
