// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Time: each core's cyclic schedule of windows, and vCPU budgets.
//!
//! A system may give every core a major frame of windows
//! ([`hv_image::ScheduleSpec`]) and some vCPUs a budget per period
//! ([`hv_image::BudgetSpec`]). The state keeps them in counter ticks (the
//! glue gives the counter's frequency, [`TimeSeed::counter_hz`]): each
//! window's end is its *cumulative* offset from the frame's start, rounded
//! down, so rounding never makes the windows add up to more or less than the
//! frame. Every core starts the frame at the same counter value
//! ([`TimeSeed::start`]), so windows at the same offset on two cores are
//! aligned; budget periods start there too.
//!
//! **Eligibility.** A vCPU may run when:
//! - its budget (if it has one) is not spent, and
//! - its core's current window allows it (the window names its partition,
//!   or is a background window, or the core has no schedule), or it serves
//!   a call of a caller on the same core that may run: the server runs on
//!   its caller's time ([`KernelState::eligible`]). Time is a core's: a
//!   caller's window on one core lends nothing on another, so a server on
//!   another core answers in its own windows.
//!
//! A ready vCPU that may not run is *parked*: in its core's `parked` mask,
//! not in the ready queue, so the ready queue (and the IPC fast path that
//! asks it) holds only vCPUs that may run. [`KernelState::enqueue`] is the
//! one place that decides ready-or-parked; a window change or a refilled
//! budget moves vCPUs between the two ([`KernelState::resort`]), and a
//! running vCPU that may no longer run is preempted ([`KernelState::settle`]).
//!
//! **The clock.** The glue tells the state the counter after each step of a
//! timed system, and before a timer step ([`KernelState::clock_in`]): the
//! vCPU that ran on the core since the last time is charged for the time
//! between, if it has a budget. The IPC fast path never switches to or from
//! a vCPU with a budget (it cannot read the clock), so a budgeted vCPU
//! current at one clock point ran until the next. One found spent after a
//! step is preempted by a timer interrupt at once ([`KernelState::next_event`]
//! says "now"). Window changes and refills happen in
//! [`KernelState::time_event`] (and the tick), at the times `next_event`
//! tells the glue to program the timer for.
//!
//! A system without a schedule or budgets is untimed: none of this runs, and
//! the only cost on its paths is the test of one flag (a bit of each core's
//! ready-queue summary, see [`crate::sched::RunQueue::set_gate`]).

use hv_image::{BudgetSpec, MAX_SYSTEM_VCPUS, MAX_WINDOWS, Owners, ScheduleSpec};

use super::{KernelState, Outcome, VcpuState};
use crate::MAX_CPUS;
use crate::sched::VcpuId;

/// The counter frequencies the state accepts: up to 10 GHz, so that ten
/// seconds of microseconds times the frequency fits a `u64` many times over.
pub const MAX_COUNTER_HZ: u64 = 10_000_000_000;

/// The time part of a [`super::Seed`]: the schedule and budgets from the
/// manifest, and the counter they are run by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeSeed<'a> {
    /// The cyclic schedule, if the system has one.
    pub schedule: Option<&'a ScheduleSpec>,
    /// The budgets of vCPUs, at most one each.
    pub budgets: &'a [BudgetSpec],
    /// The counter's frequency in Hz (`CNTFRQ_EL0`); not zero if there is a
    /// schedule or a budget.
    pub counter_hz: u64,
    /// The counter value at which every core starts the major frame (and
    /// every budget its first period).
    pub start: u64,
}

impl TimeSeed<'_> {
    /// No schedule and no budgets: priority scheduling alone.
    pub const NONE: TimeSeed<'static> = TimeSeed {
        schedule: None,
        budgets: &[],
        counter_hz: 0,
        start: 0,
    };

    /// Whether the system is timed at all.
    #[must_use]
    pub fn is_timed(&self) -> bool {
        self.schedule.is_some() || !self.budgets.is_empty()
    }
}

/// What is wrong with a [`TimeSeed`] (the kernel's decoder checked the
/// manifest's; a hand-made seed is checked again).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeProblem {
    /// The counter frequency is zero or above [`MAX_COUNTER_HZ`].
    Frequency,
    /// The schedule is not one the image's checks accept (frame, window
    /// counts and lengths, owners).
    Schedule,
    /// A budget names no vCPU, one twice, or does not fit its period.
    Budget,
}

/// `us` microseconds in counter ticks at `hz`, rounded down.
fn ticks(us: u64, hz: u64) -> u64 {
    // At most 10^7 us times 10^10 Hz: 10^17, within a u64.
    us.saturating_mul(hz) / 1_000_000
}

/// The bit of `v` in a vCPU mask.
#[inline(always)]
pub(super) const fn bit(v: VcpuId) -> u32 {
    1u32.wrapping_shl(v.byte() as u32)
}

/// A window, in the state's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Slot {
    /// Its end, in ticks from the frame's start.
    end: u64,
    /// The vCPUs pinned to its core that it allows.
    allowed: u32,
}

/// A core's place in the schedule and its clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct CoreTime {
    /// Its windows are `first..first + count` of the table; `count` 0: the
    /// core has no schedule (every vCPU pinned to it may run).
    first: u8,
    count: u8,
    /// The current window (an index into the table).
    window: u8,
    /// The counter value at which the current frame started.
    base: u64,
    /// The vCPUs pinned here that the current window allows.
    allowed: u32,
    /// The counter at this core's last [`KernelState::clock_in`].
    since: u64,
    /// Ready vCPUs pinned here that may not run now: kept out of the ready
    /// queue until their window or their budget's next period.
    parked: u32,
    /// The vCPUs pinned here that the current window allows in their own
    /// right and that have no budget: callers the IPC fast path may switch
    /// from or back to.
    quick: u32,
    /// The vCPUs without a budget.
    unbudgeted: u32,
    /// The vCPU this core ran at its last [`KernelState::clock_in`]: the
    /// one charged for the time until the next.
    charged: Option<VcpuId>,
    /// The vCPUs pinned here (for good: a vCPU never changes core).
    pinned: u32,
}

impl CoreTime {
    const EMPTY: Self = Self {
        first: 0,
        count: 0,
        window: 0,
        base: 0,
        allowed: u32::MAX,
        since: 0,
        parked: 0,
        quick: u32::MAX,
        unbudgeted: u32::MAX,
        charged: None,
        pinned: 0,
    };
}

/// A vCPU's budget, in ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Budget {
    time: u64,
    period: u64,
    remaining: u64,
    /// When its current period ends (and `remaining` is refilled).
    period_end: u64,
}

impl Budget {
    const EMPTY: Self = Self {
        time: 0,
        period: 0,
        remaining: 0,
        period_end: 0,
    };
}

/// Everything time: see the module documentation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Timing {
    /// The counter, as the glue last said.
    now: u64,
    /// The major frame in ticks (0: no schedule).
    frame: u64,
    cores: [CoreTime; MAX_CPUS],
    windows: [Slot; MAX_WINDOWS],
    budgets: [Budget; MAX_SYSTEM_VCPUS],
    /// Which vCPUs have a budget.
    budgeted: u32,
}

impl Timing {
    pub(super) const EMPTY: Self = Self {
        now: 0,
        frame: 0,
        cores: [CoreTime::EMPTY; MAX_CPUS],
        windows: [Slot { end: 0, allowed: 0 }; MAX_WINDOWS],
        budgets: [Budget::EMPTY; MAX_SYSTEM_VCPUS],
        budgeted: 0,
    };

    fn exhausted(&self, v: VcpuId) -> bool {
        self.budgeted & bit(v) != 0 && self.budgets.get(v.index()).is_none_or(|b| b.remaining == 0)
    }

    fn allowed(&self, core: usize) -> u32 {
        self.cores.get(core).map_or(0, |c| c.allowed)
    }

    /// The vCPUs pinned to `core`.
    fn pinned(&self, core: usize) -> u32 {
        self.cores.get(core).map_or(0, |c| c.pinned)
    }

    /// Whether the IPC fast path may switch `core` between the running
    /// `from` and `to` (`call`: `to` takes `from`'s call; else `to` is the
    /// caller `from` answers): neither has a budget (the fast path cannot
    /// read the clock to charge one), and the caller may run in its own
    /// right, so the general path finds `to` eligible too.
    #[inline(always)]
    pub(super) fn quick_switch(&self, core: usize, from: VcpuId, to: VcpuId, call: bool) -> bool {
        let (caller, server) = if call { (from, to) } else { (to, from) };
        self.cores
            .get(core)
            .is_some_and(|c| c.quick & bit(caller) != 0 && c.unbudgeted & bit(server) != 0)
    }

    /// The vCPUs parked on `core`.
    pub(super) fn parked(&self, core: usize) -> u32 {
        self.cores.get(core).map_or(0, |c| c.parked)
    }

    /// Parks (`on`) or unparks `v` on `core`.
    pub(super) fn park(&mut self, core: usize, v: VcpuId, on: bool) {
        if let Some(c) = self.cores.get_mut(core) {
            if on {
                c.parked |= bit(v);
            } else {
                c.parked &= !bit(v);
            }
        }
    }

    /// The end of `core`'s current window, if it has a schedule.
    fn window_end(&self, core: usize) -> Option<u64> {
        let c = self.cores.get(core)?;
        if c.count == 0 {
            return None;
        }
        let slot = self.windows.get(usize::from(c.window))?;
        Some(c.base.saturating_add(slot.end))
    }
}

/// Checks `time` against partitions of `vcpus` vCPUs each, on `cores`
/// cores.
pub(super) fn validate(time: &TimeSeed<'_>, vcpus: &[usize]) -> Result<(), TimeProblem> {
    if !time.is_timed() {
        return Ok(());
    }
    if time.counter_hz == 0 || time.counter_hz > MAX_COUNTER_HZ {
        return Err(TimeProblem::Frequency);
    }
    if let Some(schedule) = time.schedule {
        let frame = schedule.major_frame_us;
        if frame == 0 || frame > hv_image::MAX_FRAME_US || schedule.cores.is_empty() {
            return Err(TimeProblem::Schedule);
        }
        let counted: usize = schedule.cores.iter().map(|&n| usize::from(n)).sum();
        if counted != schedule.windows.len() {
            return Err(TimeProblem::Schedule);
        }
        let known = (1u32 << vcpus.len().min(16)) - 1;
        for core in 0..schedule.cores.len() {
            let windows = schedule.windows_of(core).unwrap_or_default();
            let mut total = 0u64;
            for w in windows {
                let owned = match w.owners {
                    Owners::Partitions(mask) => mask != 0 && u32::from(mask) & !known == 0,
                    Owners::Background => true,
                };
                if w.length_us == 0 || !owned {
                    return Err(TimeProblem::Schedule);
                }
                total += u64::from(w.length_us);
            }
            if windows.is_empty() || total != u64::from(frame) {
                return Err(TimeProblem::Schedule);
            }
        }
    }
    for (i, b) in time.budgets.iter().enumerate() {
        let exists = vcpus
            .get(usize::from(b.partition))
            .is_some_and(|&n| usize::from(b.vcpu) < n);
        let twice = time
            .budgets
            .iter()
            .take(i)
            .any(|o| o.partition == b.partition && o.vcpu == b.vcpu);
        if !exists
            || twice
            || b.period_us == 0
            || b.period_us > hv_image::MAX_FRAME_US
            || b.budget_us == 0
            || b.budget_us > b.period_us
        {
            return Err(TimeProblem::Budget);
        }
    }
    Ok(())
}

impl KernelState {
    /// Sets up time from a checked `time` once every vCPU is pinned, and
    /// parks the ready vCPUs that may not run in their core's first window.
    #[inline(never)]
    pub(super) fn boot_time(&mut self, time: &TimeSeed<'_>) {
        self.timing = Timing::EMPTY;
        self.timed = time.is_timed();
        for core in &mut self.cores {
            core.ready.set_gate(self.timed);
        }
        if !self.timed {
            return;
        }
        let hz = time.counter_hz;
        self.timing.now = time.start;
        // Partition p's vCPUs, and each core's pinned vCPUs, as masks.
        let mut of_partition = [0u32; hv_image::MAX_PARTITIONS];
        let mut on_core = [0u32; MAX_CPUS];
        for v in 0..self.vcpu_count {
            let Some(id) = VcpuId::new(v) else {
                continue;
            };
            if let Some(vcpu) = self.vcpu(id).copied() {
                if let Some(m) = of_partition.get_mut(vcpu.partition.index()) {
                    *m |= bit(id);
                }
                if let Some(m) = on_core.get_mut(usize::from(vcpu.core)) {
                    *m |= bit(id);
                }
            }
        }
        if let Some(schedule) = time.schedule {
            self.timing.frame = ticks(u64::from(schedule.major_frame_us), hz);
            let mut first = 0usize;
            for (core, &count) in schedule.cores.iter().enumerate().take(self.core_count) {
                let pinned = on_core.get(core).copied().unwrap_or(0);
                let mut at = 0u64;
                for (w, window) in schedule
                    .windows_of(core)
                    .unwrap_or_default()
                    .iter()
                    .enumerate()
                {
                    at += u64::from(window.length_us);
                    let allowed = match window.owners {
                        Owners::Background => pinned,
                        Owners::Partitions(_) => {
                            of_partition
                                .iter()
                                .enumerate()
                                .filter(|(p, _)| window.owners.names(*p))
                                .fold(0, |m, (_, vcpus)| m | vcpus)
                                & pinned
                        }
                    };
                    if let Some(slot) = self.timing.windows.get_mut(first + w) {
                        *slot = Slot {
                            end: ticks(at, hz),
                            allowed,
                        };
                    }
                }
                if let Some(c) = self.timing.cores.get_mut(core) {
                    *c = CoreTime {
                        first: first as u8,
                        count,
                        window: first as u8,
                        base: time.start,
                        allowed: self.timing.windows.get(first).map_or(0, |s| s.allowed),
                        since: time.start,
                        ..CoreTime::EMPTY
                    };
                }
                first += usize::from(count);
            }
        }
        for (c, &pinned) in self.timing.cores.iter_mut().zip(&on_core) {
            c.pinned = pinned;
        }
        for b in time.budgets {
            let Some(v) = self
                .partitions
                .get(usize::from(b.partition))
                .and_then(|p| p.first_vcpu.checked_add(b.vcpu))
                .and_then(VcpuId::of)
            else {
                continue;
            };
            let time_ticks = ticks(u64::from(b.budget_us), hz).max(1);
            let period = ticks(u64::from(b.period_us), hz).max(time_ticks);
            if let Some(slot) = self.timing.budgets.get_mut(v.index()) {
                *slot = Budget {
                    time: time_ticks,
                    period,
                    remaining: time_ticks,
                    period_end: time.start.saturating_add(period),
                };
                self.timing.budgeted |= bit(v);
            }
        }
        for core in 0..self.core_count {
            self.set_quick(core);
            self.resort(core);
        }
    }

    /// Refreshes `core`'s masks for the IPC fast path from its window and
    /// the budgets.
    fn set_quick(&mut self, core: usize) {
        let unbudgeted = !self.timing.budgeted;
        if let Some(c) = self.timing.cores.get_mut(core) {
            c.quick = c.allowed & unbudgeted;
            c.unbudgeted = unbudgeted;
        }
    }

    /// Whether the system has a schedule or budgets (else none of this
    /// module's work is done).
    #[must_use]
    pub const fn is_timed(&self) -> bool {
        self.timed
    }

    /// Whether `v` may run now (see the module documentation): its budget
    /// is not spent, and its core's window allows it or it serves, on their
    /// core, a caller that may run. The common cases inline: no budget, and
    /// the window allows it, or it does not and it serves no caller who
    /// could lend it time.
    #[inline(always)]
    pub(super) fn eligible(&self, v: VcpuId) -> bool {
        if !self.timed {
            return true;
        }
        let Some(vcpu) = self.vcpu(v) else {
            return false;
        };
        let Some(c) = self.timing.cores.get(usize::from(vcpu.core)) else {
            return false;
        };
        if c.quick & bit(v) != 0 {
            return true;
        }
        if c.unbudgeted & bit(v) != 0 && vcpu.reply_to.is_none() {
            return false;
        }
        self.eligible_else(v)
    }

    /// [`KernelState::eligible`] for a vCPU with a budget or a caller.
    #[inline(never)]
    fn eligible_else(&self, v: VcpuId) -> bool {
        let mut at = v;
        // A chain of calls is at most every vCPU long.
        for _ in 0..MAX_SYSTEM_VCPUS {
            let Some(vcpu) = self.vcpu(at) else {
                return false;
            };
            if self.timing.exhausted(at) {
                return false;
            }
            if self.timing.allowed(usize::from(vcpu.core)) & bit(at) != 0 {
                return true;
            }
            let Some(caller) = vcpu.reply_to else {
                return false;
            };
            let waits = self.vcpu(caller).is_some_and(|c| {
                c.core == vcpu.core
                    && matches!(c.state,
                        VcpuState::AwaitingReply { server } | VcpuState::ExitReply { server }
                            if server == at)
            });
            if !waits {
                return false;
            }
            at = caller;
        }
        false
    }

    /// Puts `v` (ready, in no queue) in its core's ready queue (at the
    /// front if `front`) if it may run, else parks it. Returns whether it
    /// was queued.
    #[inline(never)]
    pub(super) fn enqueue(&mut self, v: VcpuId, front: bool) -> bool {
        let runs = self.eligible(v);
        self.enqueue_as(v, front, runs)
    }

    /// [`KernelState::enqueue`], whether `v` may run being known: `runs`.
    pub(super) fn enqueue_as(&mut self, v: VcpuId, front: bool, runs: bool) -> bool {
        let Some(vcpu) = self.vcpus.get(v.index()).copied() else {
            return false;
        };
        let c = usize::from(vcpu.core);
        if !runs {
            self.timing.park(c, v, true);
            return false;
        }
        let Some(core) = self.cores.get_mut(c) else {
            return false;
        };
        if front {
            core.ready.push_front(&mut self.links, v, vcpu.priority);
        } else {
            core.ready.push_back(&mut self.links, v, vcpu.priority);
        }
        runs
    }

    /// Takes the ready `v` out of its core's ready queue or parked set.
    pub(super) fn unready(&mut self, v: VcpuId) {
        let Some(vcpu) = self.vcpus.get(v.index()).copied() else {
            return;
        };
        let core = usize::from(vcpu.core);
        if self.timing.parked(core) & bit(v) != 0 {
            self.timing.park(core, v, false);
        } else if let Some(c) = self.cores.get_mut(core) {
            c.ready.remove(&mut self.links, v, vcpu.priority);
        }
    }

    /// Moves `core`'s ready vCPUs between its ready queue and its parked
    /// set as they may or may not run now.
    #[inline(never)]
    pub(super) fn resort(&mut self, core: usize) {
        let mut pinned = self.timing.pinned(core);
        while pinned != 0 {
            let v = VcpuId::new(pinned.trailing_zeros() as usize);
            pinned &= pinned - 1;
            let Some(v) = v else {
                continue;
            };
            if self
                .vcpu(v)
                .is_none_or(|vcpu| vcpu.state != VcpuState::Ready)
            {
                continue;
            }
            let parked = self.timing.parked(core) & bit(v) != 0;
            let runs = self.eligible(v);
            if parked == runs {
                self.unready(v);
                self.enqueue_as(v, false, runs);
            }
        }
    }

    /// Tells a timed state the counter's value on `core`, after each of its
    /// steps (and before a timer step, so that it sees the time): the vCPU
    /// that ran there since the last call is charged for the time between,
    /// if it has a budget, and the one running now is the next to charge.
    /// Does nothing on an untimed system.
    #[inline(never)]
    pub fn clock_in(&mut self, core: usize, now: u64) {
        if !self.timed {
            return;
        }
        self.timing.now = self.timing.now.max(now);
        if self.timing.budgeted == 0 {
            // Nobody to charge.
            if let Some(c) = self.timing.cores.get_mut(core) {
                c.since = c.since.max(now);
            }
            return;
        }
        let current = self.current(core);
        let Some(c) = self.timing.cores.get_mut(core) else {
            return;
        };
        let elapsed = now.saturating_sub(c.since);
        c.since = c.since.max(now);
        let charged = core::mem::replace(&mut c.charged, current);
        if let Some(v) = charged
            && self.timing.budgeted & bit(v) != 0
            && let Some(b) = self.timing.budgets.get_mut(v.index())
        {
            b.remaining = b.remaining.saturating_sub(elapsed);
        }
    }

    /// The counter value the glue should next interrupt `core` at for
    /// time's sake (a window's end, the running vCPU's budget running out, a
    /// budget's period ending), if any; the glue takes the earlier of it and
    /// its next tick.
    #[must_use]
    #[inline(never)]
    pub fn next_event(&self, core: usize) -> Option<u64> {
        if !self.timed {
            return None;
        }
        let mut next = self.timing.window_end(core);
        let mut earliest = |at: u64| next = Some(next.map_or(at, |n: u64| n.min(at)));
        let current = self.current(core);
        let mut budgeted = self.timing.budgeted & self.timing.pinned(core);
        while budgeted != 0 {
            let id = VcpuId::new(budgeted.trailing_zeros() as usize);
            budgeted &= budgeted - 1;
            let Some(id) = id else {
                continue;
            };
            let Some(b) = self.timing.budgets.get(id.index()) else {
                continue;
            };
            earliest(b.period_end);
            // Spent while it runs (found after a step): at once.
            if current == Some(id) {
                let since = self.timing.cores.get(core).map_or(0, |c| c.since);
                earliest(since.saturating_add(b.remaining));
            }
        }
        next
    }

    /// Brings `core`'s window and its vCPUs' budgets up to the clock:
    /// moves to the window the clock is in, refills budgets whose period
    /// ended, and re-sorts the ready vCPUs if anything changed.
    #[inline(never)]
    pub(super) fn refresh(&mut self, core: usize) {
        if !self.timed {
            return;
        }
        let now = self.timing.now;
        let mut changed = false;
        let frame = self.timing.frame;
        let windows = &self.timing.windows;
        if let Some(c) = self.timing.cores.get_mut(core)
            && c.count > 0
            && frame > 0
        {
            let end = |c: &CoreTime| {
                windows
                    .get(usize::from(c.window))
                    .map_or(u64::MAX, |s| c.base.saturating_add(s.end))
            };
            if now >= end(c) {
                let (first, last) = (c.first, c.first.saturating_add(c.count - 1));
                // Usually the next window; after the frame's end, the next
                // frame's first, whole frames missed being skipped at once.
                if now >= c.base.saturating_add(frame) {
                    c.base += (now - c.base) / frame * frame;
                    c.window = first;
                }
                while c.window < last && now >= end(c) {
                    c.window += 1;
                }
                if now >= end(c) {
                    // Past the frame's last window: the next frame's first.
                    c.base += frame;
                    c.window = first;
                }
                c.allowed = windows.get(usize::from(c.window)).map_or(0, |s| s.allowed);
                changed = true;
            }
        }
        let mut budgeted = self.timing.budgeted & self.timing.pinned(core);
        while budgeted != 0 {
            let id = VcpuId::new(budgeted.trailing_zeros() as usize);
            budgeted &= budgeted - 1;
            let Some(id) = id else {
                continue;
            };
            if let Some(b) = self.timing.budgets.get_mut(id.index())
                && now >= b.period_end
            {
                let behind = (now - b.period_end) / b.period.max(1) + 1;
                b.period_end = b.period_end.saturating_add(behind.saturating_mul(b.period));
                changed |= b.remaining != b.time;
                b.remaining = b.time;
            }
        }
        if changed {
            self.set_quick(core);
            self.resort(core);
        }
    }

    /// The timer fired on `core` for time's sake, not for a tick (see
    /// [`KernelState::next_event`]): windows and budgets brought up to the
    /// clock (given by [`KernelState::clock_in`] first), and the running
    /// vCPU preempted if it may no longer run or something of higher
    /// priority now may.
    #[inline(never)]
    pub fn time_event(&mut self, core: usize, regs: &mut [u64; 8]) -> Outcome {
        self.refresh(core);
        self.settle(core, regs, 0).into()
    }

    /// The vCPUs parked on `core`: ready, but not allowed to run now.
    #[must_use]
    pub fn parked(&self, core: usize) -> u32 {
        self.timing.parked(core)
    }

    /// The index (in the whole schedule's table) of `core`'s current
    /// window, if it has a schedule.
    #[must_use]
    pub fn window(&self, core: usize) -> Option<usize> {
        let c = self.timing.cores.get(core)?;
        (self.timed && c.count > 0).then_some(usize::from(c.window))
    }

    /// What is left of `v`'s budget in this period, in counter ticks, if it
    /// has one.
    #[must_use]
    pub fn budget_left(&self, v: VcpuId) -> Option<u64> {
        if self.timing.budgeted & bit(v) == 0 {
            return None;
        }
        self.timing.budgets.get(v.index()).map(|b| b.remaining)
    }

    /// The invariants of time: parked vCPUs are ready, pinned to their core
    /// and may not run; queued ready vCPUs are not parked.
    #[cfg(any(test, feature = "checks"))]
    pub(super) fn check_time(&self) -> Result<(), &'static str> {
        for (c, core) in self.cores.iter().enumerate() {
            let parked = self.timing.parked(c);
            if !self.timed && parked != 0 {
                return Err("an untimed system parks a vCPU");
            }
            if core.ready.gated() != self.timed {
                return Err("a ready queue's gate disagrees with the system's timing");
            }
            for v in (0..MAX_SYSTEM_VCPUS).filter(|&v| parked & (1 << v) != 0) {
                let id = VcpuId::new(v).ok_or("an unknown vCPU is parked")?;
                let vcpu = self.vcpu(id).ok_or("an unknown vCPU is parked")?;
                if v >= self.vcpu_count
                    || usize::from(vcpu.core) != c
                    || vcpu.state != VcpuState::Ready
                {
                    return Err("a parked vCPU is not ready on its core");
                }
            }
        }
        Ok(())
    }
}
