// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Restart back-off: when a restarting partition may be reloaded, and how
//! its reload is cut into bounded steps.
//!
//! A partition that faults soon after every start would otherwise keep its
//! core busy reloading it. So each partition has a *streak*: restarts in a
//! row, each within [`GOOD_RUN_TICKS`] of the start before. The first
//! [`RESTARTS_AT_ONCE`] of a streak are reloaded at once; from then on each
//! waits twice as long as the one before, from [`BACKOFF_FIRST_TICKS`] up
//! to [`BACKOFF_MAX_TICKS`]. A partition that runs [`GOOD_RUN_TICKS`]
//! without a fault starts a new streak. So however a partition crashes, it
//! is restarted at most [`RESTARTS_AT_ONCE`] plus about log2(window /
//! [`BACKOFF_FIRST_TICKS`]) times in any window of ticks, and, once the
//! back-off is at its cap, once every [`BACKOFF_MAX_TICKS`] ticks for ever.
//!
//! The reload itself (zeroing the partition's RAM, copying its program) is
//! done by the glue in the timer tick of the partition's own core (the one
//! its first vCPU is pinned to), once [`KernelState::restart_due`] says so,
//! in pieces of [`RELOAD_STEP_BYTES`] for at most [`RELOAD_TICK_PERCENT`]
//! of each tick (at least one piece): what a restart costs the others on
//! that core is bounded per tick, and nothing waits with interrupts masked
//! for a whole partition's RAM or for another core.
//!
//! Time is the kernel's ticks ([`crate::state::TICK_HZ`] a second), as the
//! glue tells it with [`KernelState::advance_clock`].

use super::super::{KernelState, PartitionState};
use crate::cap::PartitionId;

/// Restarts of a streak that go ahead without waiting.
pub const RESTARTS_AT_ONCE: u32 = 2;

/// The first back-off, in ticks (20 ms).
pub const BACKOFF_FIRST_TICKS: u64 = 2;

/// The longest back-off, in ticks (about 10 s).
pub const BACKOFF_MAX_TICKS: u64 = 1024;

/// Ticks a partition must run after a restart without faulting for its next
/// restart to start a new streak (5 s).
pub const GOOD_RUN_TICKS: u64 = 500;

/// The bytes of a partition's RAM the glue zeroes and fills in one piece of
/// a reload; it checks the time after each.
pub const RELOAD_STEP_BYTES: u64 = 64 * 1024;

/// The share of each tick of its home core (in percent) a reload may take:
/// the most a restart costs the others on that core while it lasts.
pub const RELOAD_TICK_PERCENT: u64 = 10;

/// One partition's restarts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(in crate::state) struct Backoff {
    /// Restarts in a row, each soon after the start before (0: none yet).
    streak: u32,
    /// When its last restart finished (it started running again), if one has.
    started: Option<u64>,
    /// When its pending restart may be reloaded.
    due: u64,
    /// The back-off its latest restart was given, in ticks.
    wait: u64,
}

impl Backoff {
    pub(in crate::state) const EMPTY: Self = Self {
        streak: 0,
        started: None,
        due: 0,
        wait: 0,
    };
}

/// The back-off before restart `streak` of a streak (counted from 1), in
/// ticks.
#[must_use]
pub fn backoff_ticks(streak: u32) -> u64 {
    match streak.checked_sub(RESTARTS_AT_ONCE + 1) {
        None => 0,
        Some(doublings) => BACKOFF_FIRST_TICKS
            .saturating_mul(1u64.checked_shl(doublings).unwrap_or(u64::MAX))
            .min(BACKOFF_MAX_TICKS),
    }
}

/// A restart as decided: how many in a row, and how long it waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RestartPlan {
    /// Restarts in a row, this one included.
    pub streak: u32,
    /// Ticks before its reload may begin.
    pub backoff: u64,
}

impl KernelState {
    /// Tells the state the time: the kernel's ticks since boot. Time only
    /// moves forward; an earlier `now` is ignored.
    pub fn advance_clock(&mut self, now: u64) {
        self.clock = self.clock.max(now);
    }

    /// The state's time, in ticks.
    #[must_use]
    pub const fn clock(&self) -> u64 {
        self.clock
    }

    /// Counts a restart of `partition` now and says when it may go ahead.
    pub(in crate::state) fn plan_restart(&mut self, partition: PartitionId) -> RestartPlan {
        let now = self.clock;
        let Some(backoff) = self.backoff.get_mut(partition.index()) else {
            return RestartPlan {
                streak: 0,
                backoff: 0,
            };
        };
        let ran_well = backoff
            .started
            .is_some_and(|s| now.saturating_sub(s) >= GOOD_RUN_TICKS);
        backoff.streak = if ran_well {
            1
        } else {
            backoff.streak.saturating_add(1)
        };
        backoff.wait = backoff_ticks(backoff.streak);
        backoff.due = now.saturating_add(backoff.wait);
        RestartPlan {
            streak: backoff.streak,
            backoff: backoff.wait,
        }
    }

    /// How `partition`'s latest restart was planned (for the glue's report
    /// of [`crate::state::Effect::Restart`]).
    #[must_use]
    pub fn restart_plan(&self, partition: PartitionId) -> Option<RestartPlan> {
        self.partition(partition)?;
        self.backoff.get(partition.index()).map(|b| RestartPlan {
            streak: b.streak,
            backoff: b.wait,
        })
    }

    /// Whether `partition` is restarting and its back-off is over: the glue
    /// may begin (or go on with) reloading it.
    #[must_use]
    pub fn restart_due(&self, partition: PartitionId) -> bool {
        self.partition(partition)
            .is_some_and(|p| p.state == PartitionState::Restarting)
            && self
                .backoff
                .get(partition.index())
                .is_some_and(|b| self.clock >= b.due)
    }

    /// Notes that `partition` runs again (its restart is done).
    pub(in crate::state) fn restarted(&mut self, partition: PartitionId) {
        let now = self.clock;
        if let Some(backoff) = self.backoff.get_mut(partition.index()) {
            backoff.started = Some(now);
        }
    }
}
