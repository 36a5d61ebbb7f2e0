// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Faults: stopping and restarting a partition.
//!
//! When a partition faults (the glue reports an exception it cannot handle
//! for it, or the partition itself calls `Fault`), its [`FaultPolicy`]
//! applies. Both policies first *tear down* the partition's activity, in
//! O(its vCPUs + endpoints):
//! - every vCPU of it leaves whatever queue it is in; one running on another
//!   core stops being that core's current vCPU and the core is kicked;
//! - whoever waits on it gets `PeerGone` (x1..x7 zero): callers it owed a
//!   reply, and senders queued on endpoints it is declared to serve;
//! - a server that owed one of its vCPUs a reply forgets it.
//!
//! Then, under [`FaultPolicy::Stop`], it is [`PartitionState::Stopped`]: its
//! vCPUs never run again, its capabilities stay (what others derived from
//! them stays valid), and [`Effect::Fault`] asks the glue to report it.
//! Under [`FaultPolicy::Restart`], its capability table goes back to its
//! seed ([`crate::cap::CapSpace::reset_partition`]: what it handed on from
//! its roots is revoked), its vCPUs get their initial x0..x7, and it waits
//! in [`PartitionState::Restarting`] while the glue reloads its memory
//! ([`Effect::Restart`]); [`KernelState::restart_done`] makes it run again.
//! The two phases exist because on a multi-core machine another core may
//! still be executing the partition's old code until it takes its kick.

use super::{Effect, FaultPolicy, KernelState, Outcome, PartitionState, VcpuState};
use crate::cap::PartitionId;
use crate::state::ipc::Holds;

impl KernelState {
    /// The vCPU running on `core` faulted (`reason` is the glue's, for the
    /// report): apply its partition's fault policy. `regs` are its x0..x7;
    /// on return they are those of what runs next. If the core runs nothing
    /// (its vCPU was stopped from another core meanwhile), this only
    /// reschedules.
    pub fn fault(&mut self, core: usize, reason: u64, regs: &mut [u64; 8]) -> Outcome {
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
        reason: u64,
        regs: &mut [u64; 8],
    ) -> Outcome {
        let Some(policy) = self.partition(partition).map(|p| p.policy) else {
            return self.reschedule(core, regs);
        };
        let kick = self.tear_down(partition, core);
        let (state, effect) = match policy {
            FaultPolicy::Stop => (PartitionState::Stopped, Effect::Fault { partition, reason }),
            FaultPolicy::Restart => {
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
        self.settle(core, regs, kick).with(Some(effect))
    }

    /// The glue has reloaded a restarting partition's memory and reset its
    /// vCPUs' other registers: make them ready again. Returns the cores that
    /// should call [`KernelState::reschedule`] (bit n: core n, which may
    /// include the caller's own). Does nothing, returning 0, unless the
    /// partition is restarting.
    pub fn restart_done(&mut self, partition: PartitionId) -> u8 {
        let restarting = self
            .partition(partition)
            .is_some_and(|p| p.state == PartitionState::Restarting);
        if !restarting {
            return 0;
        }
        if let Some(p) = self.partitions.get_mut(partition.index()) {
            p.state = PartitionState::Active;
        }
        let mut kick = 0;
        for v in self.partition_vcpus(partition) {
            self.set_regs(v, self.initial_regs_of(v));
            // No core is "here": every core that should look again is named.
            kick |= self.make_ready(v, usize::MAX);
        }
        kick
    }

    /// Stops all activity of `partition` (see the module documentation);
    /// returns the cores other than `here` to kick.
    fn tear_down(&mut self, partition: PartitionId, here: usize) -> u8 {
        let mut kick = 0;
        for v in self.partition_vcpus(partition) {
            let Some(vcpu) = self.vcpu(v).copied() else {
                continue;
            };
            let core = usize::from(vcpu.core);
            match vcpu.state {
                VcpuState::Running => {
                    if let Some(c) = self.cores.get_mut(core)
                        && c.current == Some(v)
                    {
                        c.current = None;
                        if core != here {
                            kick |= 1 << (core % 8);
                        }
                    }
                }
                VcpuState::Ready => {
                    if let Some(c) = self.cores.get_mut(core) {
                        c.ready.remove(&mut self.links, v, vcpu.priority);
                    }
                }
                VcpuState::Sending { endpoint, .. } | VcpuState::Receiving { endpoint } => {
                    self.dequeue_endpoint(endpoint, v);
                }
                VcpuState::Waiting { notification } => {
                    if let Some(n) = self.notifications.get_mut(notification.index()) {
                        n.waiters.remove(&mut self.links, v);
                    }
                }
                VcpuState::AwaitingReply { server } => {
                    if self.caller_of(server) == Some(v)
                        && let Some(s) = self.vcpu_mut(server)
                    {
                        s.reply_to = None;
                    }
                }
                VcpuState::Stopped => {}
            }
            if let Some(vcpu) = self.vcpu_mut(v) {
                vcpu.state = VcpuState::Stopped;
                vcpu.reply_to = None;
            }
            // Its caller, unless that is one of its own (already stopped, or
            // about to be).
            if let Some(caller) = vcpu.reply_to
                && self.vcpu_state(caller) == Some(VcpuState::AwaitingReply { server: v })
                && self.vcpu_partition(caller) != Some(partition)
            {
                kick |= self.wake_peer_gone(caller, here);
            }
        }
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
                kick |= self.wake_peer_gone(sender, here);
            }
        }
        kick
    }
}
