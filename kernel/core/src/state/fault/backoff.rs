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
//! done by the glue in the timer tick of the partition's *home* core (the
//! one its first vCPU is pinned to), in pieces of [`RELOAD_STEP_BYTES`] for
//! at most [`RELOAD_TICK_PERCENT`] of each tick (at least one piece): what a
//! restart costs the others on that core is bounded per tick, and nothing
//! waits with interrupts masked for a whole partition's RAM or for another
//! core. The state decides every step of it: on each tick the glue asks
//! [`KernelState::reload_work`] what to do on its core, does that much, and
//! says how far it got with [`KernelState::reload_progress`]. Only the home
//! core works on a reload and the partition runs nowhere meanwhile, so the
//! work needs no lock.
//!
//! A reload may not begin while another core may still be executing the
//! partition's old code: a stop notes the cores that were running its vCPUs
//! (they are kicked), and each is *let go* of by its next
//! [`KernelState::tick`] or [`KernelState::reschedule`], which that core
//! takes only after leaving the vCPU. A core that has not let go
//! [`LET_GO_TICKS`] after the stop is reported
//! ([`ReloadWork::Stuck`]) and the restart abandoned: the partition is left
//! stopped, its memory untouched, and any later restart waits for that core
//! too.
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

// A partition's `leaving` cores are a `u8`, one bit per core.
const _: () = assert!(crate::MAX_CPUS <= 8);

/// Ticks after a stop within which every core that ran the partition must
/// have let go of it for a restart to go ahead (1 s).
pub const LET_GO_TICKS: u64 = crate::state::TICK_HZ;

/// What the glue should do on its core's tick for a restart in progress
/// ([`KernelState::reload_work`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReloadWork {
    /// Reload `partition`: first (if `prepare`) put its vCPUs' other
    /// registers back at their entry, then zero and fill its RAM from byte
    /// `from` on, for this tick's share, and report with
    /// [`KernelState::reload_progress`] (or, if it cannot,
    /// [`KernelState::restart_abandoned`]).
    Reload {
        /// The partition to reload.
        partition: PartitionId,
        /// Bytes of its RAM reloaded so far.
        from: u64,
        /// Its vCPUs' registers are to be put back first.
        prepare: bool,
    },
    /// The cores in `cores` did not let go of `partition` within
    /// [`LET_GO_TICKS`]: its restart is abandoned (it is stopped) and the
    /// glue reports it.
    Stuck {
        /// The partition that stays stopped.
        partition: PartitionId,
        /// The cores that did not let go (bit n: core n).
        cores: u8,
        /// The cores to kick for the controllers told that it stopped (its
        /// fault signals; bit n: core n).
        kick: u8,
    },
}

/// A restart's reload, as far as it has gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(in crate::state) struct Reload {
    /// The core that does the work.
    home: u8,
    /// When the partition stopped, for [`LET_GO_TICKS`].
    since: u64,
    /// Its vCPUs' registers have been put back.
    prepared: bool,
    /// Bytes of its RAM reloaded so far.
    done: u64,
}

/// One partition's restarts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(in crate::state) struct Backoff {
    /// Restarts in a row, each soon after the start before (0: none yet).
    streak: u32,
    /// When its last restart finished (it started running again), if one has.
    started: Option<u64>,
    /// When its pending restart may be reloaded.
    due: u64,
    /// The back-off its latest restart was given, in ticks.
    wait: u64,
    /// The cores that may still be executing its code since it last stopped
    /// (bit n: core n), until each lets go.
    leaving: u8,
    /// Its restart's reload, while it is restarting.
    reload: Option<Reload>,
}

impl Backoff {
    pub(in crate::state) const EMPTY: Self = Self {
        streak: 0,
        started: None,
        due: 0,
        wait: 0,
        leaving: 0,
        reload: None,
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

    /// Whether `partition` is restarting, its back-off is over and every
    /// core has let go of it: its memory may be reloaded.
    #[must_use]
    pub fn restart_due(&self, partition: PartitionId) -> bool {
        self.partition(partition)
            .is_some_and(|p| p.state == PartitionState::Restarting)
            && self
                .backoff
                .get(partition.index())
                .is_some_and(|b| self.clock >= b.due && b.leaving == 0)
    }

    /// `partition` stopped on `here`, with its vCPUs running on the cores
    /// in `running` until they take their kick: note them, and, if it is
    /// `restarting`, queue its reload on its home core.
    pub(in crate::state) fn stopped(
        &mut self,
        partition: PartitionId,
        here: usize,
        running: u8,
        restarting: bool,
    ) {
        let now = self.clock;
        let home = self
            .partition_vcpus(partition)
            .next()
            .and_then(|v| self.vcpu_core(v))
            .unwrap_or(here);
        if let Some(backoff) = self.backoff.get_mut(partition.index()) {
            backoff.leaving |= running;
            backoff.reload = restarting.then_some(Reload {
                home: u8::try_from(home).unwrap_or(0),
                since: now,
                prepared: false,
                done: 0,
            });
        }
    }

    /// `core` is in the kernel for a tick or a kick, so it has left any vCPU
    /// of a stopped partition: it lets go of them all.
    pub(in crate::state) fn let_go(&mut self, core: usize) {
        let bit = u32::try_from(core)
            .ok()
            .and_then(|c| 1u8.checked_shl(c))
            .unwrap_or(0);
        for backoff in self.backoff.iter_mut().take(self.partition_count) {
            backoff.leaving &= !bit;
        }
    }

    /// What `core` should do on this tick for a restart in progress: the
    /// next piece of the first due reload whose home it is (in partition
    /// order), or the report of one that a core never let go of. Call it
    /// on each tick, after [`KernelState::advance_clock`] and
    /// [`KernelState::tick`].
    pub fn reload_work(&mut self, core: usize) -> Option<ReloadWork> {
        let now = self.clock;
        for index in 0..self.partition_count {
            let Some(backoff) = self.backoff.get_mut(index) else {
                break;
            };
            let Some(reload) = backoff.reload.as_mut() else {
                continue;
            };
            if usize::from(reload.home) != core || now < backoff.due {
                continue;
            }
            let partition = PartitionId(index as u8);
            if backoff.leaving != 0 {
                if now.saturating_sub(reload.since) <= LET_GO_TICKS {
                    continue;
                }
                let cores = backoff.leaving;
                let kick = self.restart_abandoned(partition);
                return Some(ReloadWork::Stuck {
                    partition,
                    cores,
                    kick,
                });
            }
            let prepare = !reload.prepared;
            reload.prepared = true;
            return Some(ReloadWork::Reload {
                partition,
                from: reload.done,
                prepare,
            });
        }
        None
    }

    /// The glue has reloaded `partition`'s RAM up to byte `done` (of the
    /// [`ReloadWork::Reload`] it was given), and all of it if `complete`:
    /// then the partition runs again ([`KernelState::restart_done`]).
    /// Returns the cores to kick (bit n: core n, the caller's own
    /// included).
    pub fn reload_progress(&mut self, partition: PartitionId, done: u64, complete: bool) -> u8 {
        let Some(reload) = self
            .backoff
            .get_mut(partition.index())
            .and_then(|b| b.reload.as_mut())
        else {
            return 0;
        };
        reload.done = reload.done.max(done);
        if complete {
            self.restart_done(partition)
        } else {
            0
        }
    }

    /// Notes that `partition` runs again (its restart is done).
    pub(in crate::state) fn restarted(&mut self, partition: PartitionId) {
        let now = self.clock;
        if let Some(backoff) = self.backoff.get_mut(partition.index()) {
            backoff.started = Some(now);
            backoff.reload = None;
        }
    }

    /// Forgets `partition`'s reload (its restart was abandoned); the cores
    /// it waits for stay noted.
    pub(in crate::state) fn reload_dropped(&mut self, partition: PartitionId) {
        if let Some(backoff) = self.backoff.get_mut(partition.index()) {
            backoff.reload = None;
        }
    }

    /// Whether `partition` has a reload queued, and the cores it waits for,
    /// for the invariants.
    #[cfg(any(test, feature = "checks"))]
    pub(in crate::state) fn reload_state(&self, partition: PartitionId) -> (bool, u8) {
        self.backoff
            .get(partition.index())
            .map_or((false, 0), |b| (b.reload.is_some(), b.leaving))
    }
}
