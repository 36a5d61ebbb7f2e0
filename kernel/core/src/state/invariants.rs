// SPDX-License-Identifier: Apache-2.0 OR MIT
//! What must hold between any two steps, as code.
//!
//! [`KernelState::check_invariants`] is for tests, fuzzing and the bounded
//! checkers in `proofs/`; the kernel never calls it. It walks everything,
//! so it is slow by design. It checks:
//! - the capability tables ([`crate::cap::CapSpace::check`]): every derived
//!   capability names its parent's object with a subset of its rights, no
//!   parent is dangling, roots are what the seed put there, links agree;
//!   every endpoint capability names an endpoint of the seed;
//! - every vCPU that waits (ready, sending, receiving, waiting on a
//!   notification) is in exactly one queue, the one its state names, and
//!   every other vCPU is in none; queue links agree both ways;
//! - each core's current vCPU is pinned to it and running, and every running
//!   vCPU is its core's current one; ready queues hold only ready vCPUs
//!   pinned there, at their own priority; the map of non-empty priorities
//!   agrees with the queues;
//! - a parked vCPU (time: `timing.rs`) is ready, pinned to the core that
//!   parks it, and in no queue; only a timed system parks, and exactly its
//!   cores' ready queues have their gate set;
//! - an endpoint's queue is empty exactly when it holds nothing, and holds
//!   only senders or only receivers of that endpoint;
//! - a notification with waiters has no bits set;
//! - a vCPU awaiting a reply is owed it by exactly the server it names, or
//!   is kept in exactly one reply object of that server's partition (not
//!   both); every owed reply is to a vCPU awaiting it from that server, and
//!   every kept caller awaits a reply from a vCPU of the object's owner;
//! - a stopped or restarting partition's vCPUs are stopped (in no queue,
//!   owing nothing), and only theirs are;
//! - only virtual machines' vCPUs are off, halted or in an exit, have
//!   virtual machine state, and queue on their own partition's exit
//!   endpoint; a vCPU in an exit is answered by exactly the monitor vCPU it
//!   names, never kept in a reply object;
//! - a restarting partition has a restart in its history, and partitions
//!   the system does not have have no history.

use super::ipc::Holds;
use super::{KernelState, PartitionState, VcpuState};
use crate::MAX_CPUS;
use hv_image::{MAX_PARTITIONS, MAX_SYSTEM_VCPUS};

use crate::cap::PartitionId;
use crate::sched::{Queue, VcpuId};
use hv_image::Object;

type Check = Result<(), &'static str>;

fn ensure(condition: bool, broken: &'static str) -> Check {
    if condition { Ok(()) } else { Err(broken) }
}

impl KernelState {
    /// Checks every invariant in the module documentation; names the first
    /// one broken.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        ensure(self.core_count <= MAX_CPUS, "core count out of range")?;
        ensure(
            self.vcpu_count <= MAX_SYSTEM_VCPUS,
            "vCPU count out of range",
        )?;
        ensure(
            self.partition_count <= self.partitions.len()
                && self.endpoint_count <= self.endpoints.len()
                && self.notification_count <= self.notifications.len()
                && self.irq_count <= self.irqs.len(),
            "object count out of range",
        )?;
        self.caps.check()?;
        // The IPC fast path relies on this instead of checking the count.
        let named_endpoints_exist = (0..MAX_PARTITIONS).all(|p| {
            self.caps
                .slots(PartitionId(p as u8))
                .all(|(_, cap)| match cap.object {
                    Object::Endpoint(e) => usize::from(e) < self.endpoint_count,
                    _ => true,
                })
        });
        ensure(
            named_endpoints_exist,
            "a capability names an unused endpoint",
        )?;
        let mut membership = [0u8; MAX_SYSTEM_VCPUS];
        self.check_queues(&mut membership)?;
        self.check_vcpus(&membership)?;
        self.check_replies()?;
        self.check_cores()?;
        self.check_histories()
    }

    fn check_histories(&self) -> Check {
        for (p, history) in self.history.iter().enumerate() {
            let state = self.partition_state(crate::cap::PartitionId(p as u8));
            if p >= self.partition_count {
                ensure(
                    *history == super::fault::History::EMPTY,
                    "a partition the system lacks has a history",
                )?;
            } else if state == Some(PartitionState::Restarting) {
                ensure(
                    history.restarts > 0,
                    "a restarting partition has no restart in its history",
                )?;
            }
            let (reloading, leaving) = self.reload_state(crate::cap::PartitionId(p as u8));
            ensure(
                reloading == (state == Some(PartitionState::Restarting)),
                "a partition has a reload queued exactly while it is restarting",
            )?;
            ensure(
                leaving & !((1u16 << self.core_count) - 1) as u8 == 0,
                "a partition waits for a core the system lacks",
            )?;
        }
        Ok(())
    }

    /// Walks `queue`, checking its links and that `fits` accepts each
    /// member; counts memberships.
    fn walk(
        &self,
        queue: &Queue,
        membership: &mut [u8; MAX_SYSTEM_VCPUS],
        fits: impl Fn(VcpuId, VcpuState) -> bool,
    ) -> Check {
        let mut before = None;
        let mut count = 0;
        for v in queue.iter(&self.links) {
            count += 1;
            ensure(count <= MAX_SYSTEM_VCPUS, "a queue loops")?;
            ensure(v.index() < self.vcpu_count, "a queue holds an unknown vCPU")?;
            ensure(self.links.prev(v) == before, "queue links disagree")?;
            let state = self.vcpu_state(v).ok_or("a queue holds an unknown vCPU")?;
            ensure(fits(v, state), "a queued vCPU's state names another queue")?;
            let seen = membership
                .get_mut(v.index())
                .ok_or("a queue holds an unknown vCPU")?;
            *seen = seen.saturating_add(1);
            before = Some(v);
        }
        ensure(
            queue.tail() == before,
            "a queue's tail is not its last vCPU",
        )
    }

    fn check_queues(&self, membership: &mut [u8; MAX_SYSTEM_VCPUS]) -> Check {
        for (c, core) in self.cores.iter().enumerate() {
            ensure(
                core.ready.levels_agree(),
                "a ready map disagrees with its queues",
            )?;
            for priority in 0..=u8::MAX {
                self.walk(core.ready.queue(priority), membership, |v, state| {
                    state == VcpuState::Ready
                        && self.vcpu_core(v) == Some(c)
                        && self.vcpu(v).is_some_and(|x| x.priority == priority)
                })?;
            }
        }
        for c in 0..self.cores.len() {
            let parked = self.parked(c);
            for (v, seen) in membership.iter_mut().enumerate() {
                if parked & (1 << v) != 0 {
                    *seen = seen.saturating_add(1);
                }
            }
        }
        self.check_time()?;
        for (e, endpoint) in self.endpoints.iter().enumerate() {
            ensure(
                endpoint.queue.is_empty() == (endpoint.holds == Holds::Nothing),
                "an endpoint's queue and what it holds disagree",
            )?;
            ensure(
                e < self.endpoint_count || endpoint.queue.is_empty(),
                "an unused endpoint has a queue",
            )?;
            self.walk(&endpoint.queue, membership, |_, state| {
                match (endpoint.holds, state) {
                    (Holds::Senders, VcpuState::Sending { endpoint: on, .. })
                    | (Holds::Senders, VcpuState::ExitSending { endpoint: on })
                    | (Holds::Receivers, VcpuState::Receiving { endpoint: on, .. }) => {
                        on.index() == e
                    }
                    _ => false,
                }
            })?;
        }
        for (n, notification) in self.notifications.iter().enumerate() {
            ensure(
                notification.waiters.is_empty() || notification.word == 0,
                "a notification has both bits and waiters",
            )?;
            ensure(
                n < self.notification_count || notification.waiters.is_empty(),
                "an unused notification has waiters",
            )?;
            self.walk(&notification.waiters, membership, |_, state| {
                matches!(state, VcpuState::Waiting { notification: on } if on.index() == n)
            })?;
        }
        for binding in self.irqs.iter().take(self.irq_count) {
            ensure(
                binding.notification.index() < self.notification_count,
                "an interrupt is bound to an unknown notification",
            )?;
        }
        Ok(())
    }

    fn check_vcpus(&self, membership: &[u8; MAX_SYSTEM_VCPUS]) -> Check {
        for (i, vcpu) in self.vcpus.iter().enumerate() {
            let v = VcpuId::new(i).ok_or("a vCPU table larger than its IDs")?;
            let queued = membership.get(i).copied().unwrap_or(0);
            if i >= self.vcpu_count {
                ensure(queued == 0, "an unused vCPU is queued")?;
                continue;
            }
            let partition = self
                .partition(vcpu.partition)
                .ok_or("a vCPU belongs to no partition")?;
            ensure(
                partition.vcpus().any(|x| x == v),
                "a vCPU is outside its partition's range",
            )?;
            ensure(
                usize::from(vcpu.core) < self.core_count,
                "a vCPU is pinned to no core",
            )?;
            ensure(
                vcpu.priority == partition.priority,
                "a vCPU's priority is not its partition's",
            )?;
            let waits = matches!(
                vcpu.state,
                VcpuState::Ready
                    | VcpuState::Sending { .. }
                    | VcpuState::Receiving { .. }
                    | VcpuState::Waiting { .. }
                    | VcpuState::ExitSending { .. }
            );
            let vm_only = matches!(
                vcpu.state,
                VcpuState::Off
                    | VcpuState::Halted
                    | VcpuState::ExitSending { .. }
                    | VcpuState::ExitReply { .. }
            );
            ensure(
                !vm_only || self.is_vm(v),
                "a service's vCPU is in a virtual machine's state",
            )?;
            ensure(
                self.is_vm(v) == partition.exits.is_some(),
                "a vCPU's kind disagrees with its partition's",
            )?;
            if let VcpuState::Receiving { accept, .. } = vcpu.state {
                ensure(
                    accept == super::ReceiveSlot::NONE || accept.slot().is_some(),
                    "a receiver names a slot out of range",
                )?;
            }
            if let VcpuState::ExitSending { endpoint } = vcpu.state {
                ensure(
                    partition.exits == Some(endpoint),
                    "a virtual machine's exit waits on another endpoint",
                )?;
            }
            let idle_vm = self
                .vm
                .get(i)
                .is_some_and(|vm| *vm == super::vm::VmVcpu::EMPTY);
            ensure(
                self.vm_entry_marked(i),
                "a vCPU's entry work is not marked for the glue",
            )?;
            ensure(
                self.is_vm(v) || idle_vm,
                "a service's vCPU has virtual machine state",
            )?;
            ensure(
                queued == u8::from(waits),
                "a vCPU is in the wrong number of queues",
            )?;
            if !waits {
                ensure(
                    self.links.next(v).is_none() && self.links.prev(v).is_none(),
                    "a vCPU in no queue has queue links",
                )?;
            }
            let active = partition.state == PartitionState::Active;
            ensure(
                active == (vcpu.state != VcpuState::Stopped),
                "a vCPU's state disagrees with its partition's",
            )?;
            match vcpu.state {
                VcpuState::Running => ensure(
                    self.current(usize::from(vcpu.core)) == Some(v),
                    "a running vCPU is not its core's current one",
                )?,
                // Owed by its server directly, or kept in exactly one reply
                // object of the server's partition; not both.
                VcpuState::AwaitingReply { server } => {
                    let direct = self.caller_of(server) == Some(v);
                    let kept = self.keepers_of(v);
                    let keeper_is_servers = self
                        .keeper_of(v)
                        .and_then(|r| self.reply_owner(r))
                        .is_some_and(|owner| Some(owner) == self.vcpu_partition(server));
                    ensure(
                        (direct && kept == 0) || (!direct && kept == 1 && keeper_is_servers),
                        "a vCPU awaits a reply its server does not owe",
                    )?;
                }
                VcpuState::ExitReply { server } => ensure(
                    self.caller_of(server) == Some(v) && self.keepers_of(v) == 0,
                    "a virtual machine's exit is answered by no monitor vCPU",
                )?,
                VcpuState::Stopped => ensure(
                    self.vm
                        .get(i)
                        .is_none_or(|vm| *vm == super::vm::VmVcpu::EMPTY),
                    "a stopped vCPU has virtual machine state",
                )?,
                _ => {}
            }
            if let Some(caller) = vcpu.reply_to {
                ensure(
                    matches!(
                        self.vcpu_state(caller),
                        Some(VcpuState::AwaitingReply { server } | VcpuState::ExitReply { server })
                            if server == v
                    ),
                    "a reply is owed to a vCPU not awaiting it",
                )?;
            }
        }
        Ok(())
    }

    fn check_replies(&self) -> Check {
        for (r, object) in self.replies.iter().enumerate() {
            let Some(caller) = object.caller else {
                continue;
            };
            ensure(
                r < self.reply_count,
                "an unused reply object keeps a caller",
            )?;
            let server = match self.vcpu_state(caller) {
                Some(VcpuState::AwaitingReply { server }) => server,
                _ => return Err("a reply object keeps a vCPU not awaiting a reply"),
            };
            ensure(
                self.vcpu_partition(server) == Some(object.owner),
                "a reply object keeps a caller of another partition's server",
            )?;
        }
        for partition in 0..MAX_PARTITIONS {
            for (_, cap) in self.caps.slots(PartitionId(partition as u8)) {
                if let Object::Reply(r) = cap.object {
                    ensure(
                        usize::from(r) < self.reply_count,
                        "a capability names an unused reply object",
                    )?;
                }
            }
        }
        Ok(())
    }

    fn check_cores(&self) -> Check {
        for (c, core) in self.cores.iter().enumerate() {
            let Some(v) = core.current else { continue };
            ensure(c < self.core_count, "an unused core runs a vCPU")?;
            ensure(
                self.vcpu_core(v) == Some(c),
                "a core runs a vCPU pinned elsewhere",
            )?;
            ensure(
                self.vcpu_state(v) == Some(VcpuState::Running),
                "a core's current vCPU is not running",
            )?;
        }
        Ok(())
    }
}
