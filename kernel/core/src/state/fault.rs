// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Faults: stopping and restarting a partition.
//!
//! When a partition faults (the glue reports an exception it cannot handle
//! for it, or the partition itself calls `Fault`), its [`FaultPolicy`]
//! applies. Both policies first *tear down* the partition's activity, in
//! O(its vCPUs + endpoints + reply objects):
//! - every vCPU of it leaves whatever queue it is in; one running on another
//!   core stops being that core's current vCPU and the core is kicked;
//! - whoever waits on it gets `PeerGone` (x1..x7 zero): callers it owed a
//!   reply (directly or kept in its reply objects), and senders queued on
//!   endpoints it is declared to serve;
//! - a server that owed one of its vCPUs a reply forgets it (a reply object
//!   keeping one empties).
//!
//! Then, under [`FaultPolicy::Stop`], it is [`PartitionState::Stopped`]: its
//! vCPUs never run again, its capabilities stay (what others derived from
//! them stays valid), and [`Effect::Fault`] asks the glue to report it.
//! Under [`FaultPolicy::Restart`], its capability table goes back to its
//! seed ([`crate::cap::CapSpace::reset_partition`]: what it handed on from
//! its roots is revoked), its vCPUs get their initial x0..x7, and it waits
//! in [`PartitionState::Restarting`] while the glue reloads its memory
//! ([`Effect::Restart`]) in the bounded steps [`KernelState::reload_work`]
//! gives it, once the partition's back-off is over (submodule `backoff`:
//! restarts in quick succession wait longer and longer) and every core
//! that ran it has let go of it; [`KernelState::restart_done`] makes it run
//! again. The two phases exist because on a multi-core machine another core
//! may still be executing the partition's old code until it takes its kick.
//! If a restart cannot finish (a core never let go, or its memory could not
//! be reloaded), [`KernelState::restart_abandoned`] leaves it stopped
//! instead.
//!
//! Every partition has a [`History`]: how many times it faulted, how many
//! times it was restarted, and the reason of its last stop or restart.
//! Submodule `control` does the same stops and restarts on request, for a
//! partition holding a `Partition` capability (`PartitionStop`,
//! `PartitionRestart`), and reports the history (`PartitionStatus`).
//!
//! **Fault signals.** A partition that controls another may be told when it
//! stops or restarts, rather than find out by looking: for each
//! [`super::FaultSignalSeed`] of the stopped or restarting partition, the
//! kernel sets the signal's bits on its notification, which wakes the
//! controller waiting there, in the same step. Every stop and restart is
//! signalled (a fault under either policy, a restart the kernel gives up,
//! a controller's `PartitionStop` or `PartitionRestart`), except to the
//! controller that made it itself. A restart that completes is not: the
//! partition was signalled when it stopped, and runs again.

pub(super) mod backoff;
mod control;

use super::{Effect, FaultPolicy, KernelState, Outcome, PartitionState, VcpuState};
use hv_abi::hypercall::StopReason;

use crate::cap::PartitionId;
use crate::state::ipc::Holds;

/// What has happened to one partition since boot, as `PartitionStatus`
/// reports it. The counts saturate rather than wrap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(super) struct History {
    /// Times it faulted: an exception, or its own `Fault` call.
    pub(super) faults: u32,
    /// Times it was restarted: by its fault policy or by a partition that
    /// controls it.
    pub(super) restarts: u32,
    /// The reason of its last stop or restart, in register form
    /// ([`StopReason::to_register`]; 0 before any).
    pub(super) last_reason: u64,
}

impl History {
    pub(super) const EMPTY: Self = Self {
        faults: 0,
        restarts: 0,
        last_reason: 0,
    };
}

impl KernelState {
    /// The vCPU running on `core` faulted (`reason` is the glue's, for the
    /// report; a partition's own `Fault` comes through the hypercall, and
    /// only [`StopReason::Own`] can): apply its partition's fault policy. `regs` are its x0..x7;
    /// on return they are those of what runs next. If the core runs nothing
    /// (its vCPU was stopped from another core meanwhile), this only
    /// reschedules.
    pub fn fault(&mut self, core: usize, reason: StopReason, regs: &mut [u64; 8]) -> Outcome {
        match self.current(core).and_then(|v| self.vcpu_partition(v)) {
            Some(partition) => self.fault_partition(core, partition, reason, regs),
            None => self.reschedule(core, regs),
        }
    }

    /// Applies `partition`'s fault policy; the step runs on `core`.
    pub(super) fn fault_partition(
        &mut self,
        core: usize,
        partition: PartitionId,
        reason: StopReason,
        regs: &mut [u64; 8],
    ) -> Outcome {
        let Some(policy) = self.partition(partition).map(|p| p.policy) else {
            return self.reschedule(core, regs);
        };
        self.record(partition, |h| h.faults = h.faults.saturating_add(1));
        self.stop_or_restart(core, partition, policy, reason, regs)
    }

    /// Tears `partition` down, then stops it (`how` is
    /// [`FaultPolicy::Stop`]) or restarts it ([`FaultPolicy::Restart`]), as
    /// the module documentation says, and records `reason` in its history.
    /// The step runs on `core`, whose running vCPU's x0..x7 are `regs` (on
    /// return, those of what runs next: `partition` itself may have been
    /// running here).
    fn stop_or_restart(
        &mut self,
        core: usize,
        partition: PartitionId,
        how: FaultPolicy,
        reason: StopReason,
        regs: &mut [u64; 8],
    ) -> Outcome {
        // The other cores running its vCPUs, which must let go of it
        // before its memory may be reloaded.
        let running = (0..self.core_count)
            .filter(|&c| c != core)
            .filter(|&c| {
                self.current(c)
                    .is_some_and(|v| self.vcpu_partition(v) == Some(partition))
            })
            .fold(0u8, |m, c| m | 1u8.checked_shl(c as u32).unwrap_or(0));
        let mut kick = self.tear_down(partition, core);
        self.keep_irqs_of(partition);
        self.stopped(partition, core, running, how == FaultPolicy::Restart);
        let (state, effect) = match how {
            FaultPolicy::Stop => (PartitionState::Stopped, Effect::Fault { partition, reason }),
            FaultPolicy::Restart => {
                let _ = self.plan_restart(partition);
                self.caps.reset_partition(partition);
                for v in self.partition_vcpus(partition) {
                    self.set_regs(v, self.initial_regs_of(v));
                }
                (
                    PartitionState::Restarting,
                    Effect::Restart { partition, reason },
                )
            }
        };
        if let Some(p) = self.partitions.get_mut(partition.index()) {
            p.state = state;
        }
        self.record(partition, |h| {
            h.last_reason = reason.to_register();
            if how == FaultPolicy::Restart {
                h.restarts = h.restarts.saturating_add(1);
            }
        });
        let by = match reason {
            StopReason::Controller(index) => Some(PartitionId(index)),
            StopReason::Own(_) | StopReason::Exception => None,
        };
        kick |= self.signal_fault(partition, by, core);
        self.settle(core, regs, kick).with(Some(effect))
    }

    /// The glue has reloaded a restarting partition's memory and reset its
    /// vCPUs' other registers: make them ready again, and unmask the
    /// interrupts it holds that its old self left masked (delivered and not
    /// acknowledged, or held over budget), which it would otherwise never
    /// see again. Returns the cores that should call
    /// [`KernelState::reschedule`] (bit n: core n, which may include the
    /// caller's own). Does nothing, returning 0, unless the partition is
    /// restarting and [`KernelState::restart_due`] (so never before its
    /// back-off is over or while a core may still run its old code).
    pub fn restart_done(&mut self, partition: PartitionId) -> u8 {
        if !self.restart_due(partition) {
            return 0;
        }
        if let Some(p) = self.partitions.get_mut(partition.index()) {
            p.state = PartitionState::Active;
        }
        self.restarted(partition);
        self.release_irqs_of(partition);
        let mut kick = 0;
        for v in self.partition_vcpus(partition) {
            self.set_regs(v, self.initial_regs_of(v));
            if self.is_vm(v) {
                // A virtual machine's vCPUs wait for its monitor to start them.
                self.set_state(v, VcpuState::Off);
            } else {
                // No core is "here": every core that should look again is
                // named.
                kick |= self.make_ready(v, usize::MAX);
            }
        }
        kick
    }

    /// The glue could not restart `partition` (it restarted too often, or
    /// its memory could not be reloaded): it stays stopped, as under
    /// [`FaultPolicy::Stop`], until a partition that controls it restarts
    /// it. Does nothing unless the partition is restarting. Its vCPUs are
    /// already stopped; its fault signals tell its controllers it is
    /// stopped now. Returns the cores to kick for the controllers woken
    /// (bit n: core n, which may include the caller's own).
    pub fn restart_abandoned(&mut self, partition: PartitionId) -> u8 {
        let restarting = self
            .partition(partition)
            .is_some_and(|p| p.state == PartitionState::Restarting);
        if !restarting {
            return 0;
        }
        if let Some(p) = self.partitions.get_mut(partition.index()) {
            p.state = PartitionState::Stopped;
        }
        self.reload_dropped(partition);
        self.signal_fault(partition, None, usize::MAX)
    }

    /// Sets the bits of every fault signal of `partition` on its
    /// notification, except those of controller `by` (who stopped or
    /// restarted it itself); returns the cores to kick for the controllers
    /// woken, other than `here` (`usize::MAX`: every core concerned).
    fn signal_fault(&mut self, partition: PartitionId, by: Option<PartitionId>, here: usize) -> u8 {
        let mut kick = 0;
        for i in 0..self.fault_signal_count {
            let Some(signal) = self.fault_signals.get(i).copied() else {
                break;
            };
            if signal.partition == partition && Some(signal.controller) != by {
                kick |= self.signal_notification(signal.notification, signal.badge, here);
            }
        }
        kick
    }

    /// What has happened to `partition` since boot; the empty history for a
    /// partition the system does not have.
    fn history(&self, partition: PartitionId) -> History {
        self.history
            .get(partition.index())
            .copied()
            .unwrap_or_default()
    }

    /// Updates `partition`'s history with `change`.
    fn record(&mut self, partition: PartitionId, change: impl FnOnce(&mut History)) {
        if let Some(history) = self.history.get_mut(partition.index()) {
            change(history);
        }
    }

    /// Stops all activity of `partition` (see the module documentation);
    /// returns the cores other than `here` to kick.
    fn tear_down(&mut self, partition: PartitionId, here: usize) -> u8 {
        let mut kick = 0;
        for v in self.partition_vcpus(partition) {
            let (left, caller) = self.detach(v, here);
            kick |= left;
            if let Some(vcpu) = self.vcpu_mut(v) {
                vcpu.state = VcpuState::Stopped;
                vcpu.reply_to = None;
            }
            self.clear_vm(v);
            // Its caller, unless that is one of its own (already stopped, or
            // about to be): a caller gets `PeerGone`, a virtual machine's
            // vCPU waiting for its monitor's answer is turned off.
            if let Some(caller) = caller
                && self.vcpu_partition(caller) != Some(partition)
            {
                kick |= self.release_caller(caller, v, here);
            }
        }
        kick |= self.release_kept_callers(partition, here);
        for e in 0..self.endpoint_count {
            let Some(endpoint) = self.endpoints.get_mut(e) else {
                break;
            };
            if endpoint.server != Some(partition) || endpoint.holds != Holds::Senders {
                continue;
            }
            endpoint.holds = Holds::Nothing;
            let mut queue = core::mem::take(&mut endpoint.queue);
            while let Some(sender) = queue.pop_front(&mut self.links) {
                if self.vcpu_state(sender)
                    == Some(VcpuState::ExitSending {
                        endpoint: super::EndpointId(e as u8),
                    })
                {
                    // A guest's exit to a monitor that stopped: the guest's
                    // vCPU is off until the monitor comes back and starts it.
                    self.set_state(sender, VcpuState::Off);
                    self.clear_vm(sender);
                } else {
                    kick |= self.wake_peer_gone(sender, here);
                }
            }
        }
        kick
    }
}
