// SPDX-License-Identifier: Apache-2.0 OR MIT
//! IPC: synchronous endpoints (the general path).
//!
//! # Endpoints
//!
//! seL4's rendezvous, on one queue per endpoint that holds either waiting
//! senders or waiting receivers (never both), FIFO:
//! - `send` (WRITE) hands the message to the first waiting receiver, or
//!   waits until one takes it; `call` does the same and then waits for the
//!   reply. The receiver gets x0 = `Success`, x1 = the badge of the
//!   sender's capability, x2 = the [`MessageInfo`] (length, and the slot a
//!   transferred capability arrived in), x3..x7 = the words; words past the
//!   length arrive as zeros, so nothing the sender did not mean to send
//!   leaks.
//! - `recv` (READ) takes the first waiting sender's message or waits. A
//!   received `call` leaves the receiver owing that caller a reply (seL4's
//!   implicit reply capability). `recv` while a reply is owed is refused
//!   (`InvalidArgument`), so a caller cannot be forgotten; a server that
//!   wants to answer later keeps the reply in a reply object (`reply.rs`).
//! - `reply` answers the owed caller (x1 = 0, no badge) and carries on;
//!   `reply_recv` replies if a reply is owed (a server loop may start with
//!   it) and then receives.
//! - A `call` that finds its receiver waiting on the same core, with no
//!   higher priority ready there, switches straight to it without touching a
//!   ready queue; `reply_recv` does the same back to its caller. No path
//!   scans anything; every queue operation is O(1). The commonest case of
//!   these (a plain message, no capability) is also done by the shorter
//!   code in `fastpath.rs`, which must agree with this module exactly.
//!
//! **Capability transfer.** Bit 3 of the message info names a slot of the
//! sender's table. It moves only if the sender's endpoint capability has
//! GRANT (the manifest marks the channel as carrying capabilities) and the
//! capability has DERIVE (a transfer makes a copy); otherwise
//! `NotGrantable`. The receiver decides where it may land, as with seL4's
//! receive slot: `recv` and `reply_recv` name an empty slot of the
//! receiver's table in the capability field of their x2 (a reply carries no
//! capability, so the field is free), or name none. The receiver gets a
//! child of the sender's slot, with the same rights and badge, in exactly
//! that slot (and the message info says so), so the sender can revoke it.
//! A message whose capability cannot land there (the receiver named no
//! slot, or the slot is no longer empty: `OutOfResources`; the capability
//! went: `InvalidCapability`) is not delivered at all: its sender gets the
//! status with its registers as they were, and the receiver goes on to the
//! next sender or waits. So a client can neither fill a server's table nor
//! put a capability at a number the server still uses, and a server that
//! never names a slot never receives a capability. When the receiver
//! waits, a sender finds out at once; when the sender waits, when a receiver
//! comes for its message (a receive may turn away several queued senders,
//! each once: O(senders refused)). Replies carry no capabilities.
//!
//! The fast path handles only messages without a capability, and a
//! `reply_recv` that names no receive slot (x2 <= 5); everything else comes
//! here.
//!
//! **Partners that stop.** A caller waiting for a reply from a vCPU whose
//! partition stops or restarts, and a sender queued on an endpoint whose
//! declared server does, are woken with `PeerGone` and x1..x7 zero; while
//! the server is down, a send or call that would wait fails with `PeerGone`.
//!
//! Notifications and interrupts are in `notify.rs`.

use hv_abi::hypercall::{MessageInfo, Rights, Status};

use super::dispatch::SUCCESS;
use super::{KernelState, Next, PartitionState, ReceiveSlot, Step, VcpuState};
use crate::cap::{EndpointId, PartitionId, SlotRef};
use crate::sched::{Queue, VcpuId};
use hv_image::Capability;
use hv_image::Object;

/// What an endpoint's queue holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Holds {
    Nothing,
    Senders,
    Receivers,
}

/// A synchronous endpoint: its queue and its declared server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Endpoint {
    pub(super) queue: Queue,
    pub(super) holds: Holds,
    pub(super) server: Option<PartitionId>,
}

impl Endpoint {
    pub(super) const EMPTY: Self = Self {
        queue: Queue::EMPTY,
        holds: Holds::Nothing,
        server: None,
    };
}

/// x0..x7 of a delivered message (x0 = `Success`): words past `length` are
/// zero.
#[inline(always)]
pub(super) fn message(badge: u64, info: u64, src: &[u64; 8], length: usize) -> [u64; 8] {
    let [_, _, _, w0, w1, w2, w3, w4] = *src;
    let keep = |i: usize, w: u64| if i < length { w } else { 0 };
    [
        SUCCESS,
        badge,
        info,
        keep(0, w0),
        keep(1, w1),
        keep(2, w2),
        keep(3, w3),
        keep(4, w4),
    ]
}

/// [`message`]`(badge, regs[2], regs, length)` written over `regs` itself,
/// as the fast path delivers: the sender's words are already where the
/// receiver's go, and an empty message (the common case) only clears.
/// Written apart from [`message`] on purpose: the test harness runs the fast
/// path (this) against the general path (that) on every hypercall, so each
/// checks the other.
#[inline(always)]
pub(super) fn message_in_place(badge: u64, regs: &mut [u64; 8], length: usize) {
    let [x0, x1, _, w @ ..] = regs;
    *x0 = SUCCESS;
    *x1 = badge;
    if length == 0 {
        *w = [0; 5];
    } else {
        for (i, word) in w.iter_mut().enumerate() {
            if i >= length {
                *word = 0;
            }
        }
    }
}

/// What a woken partner of a stopped partition finds.
const PEER_GONE: [u64; 8] = [Status::PeerGone.to_register(), 0, 0, 0, 0, 0, 0, 0];

/// The message info a receiver gets: the length, and where a transferred
/// capability landed.
fn delivered_info(length: usize, moved: Option<hv_abi::hypercall::CapSlot>) -> u64 {
    let info = MessageInfo::words(length);
    moved.map_or(info, |slot| info.with_capability(slot)).0
}

/// The length of a well-formed message info, else `InvalidArgument`.
fn length_of(info: u64) -> Result<usize, Status> {
    let info = MessageInfo(info);
    if !info.is_well_formed() {
        return Err(Status::InvalidArgument);
    }
    info.length().ok_or(Status::InvalidArgument)
}

/// The length of a reply's message info (`Reply`, `ReplySaved`):
/// well-formed and transferring nothing.
pub(super) fn reply_length(info: u64) -> Result<usize, Status> {
    if MessageInfo(info).capability().is_some() {
        return Err(Status::InvalidArgument);
    }
    length_of(info)
}

impl KernelState {
    /// The capability in `slot` of `partition`, which must name an object
    /// `pick` accepts (else `WrongType`) and hold `right` (else `NoRights`).
    pub(super) fn object_cap<T>(
        &self,
        partition: PartitionId,
        slot: u64,
        right: Rights,
        pick: impl FnOnce(Object) -> Option<T>,
    ) -> Result<(T, Capability), Status> {
        let (_, cap) = self.caps.lookup(partition, slot)?;
        let object = pick(cap.object).ok_or(Status::WrongType)?;
        if !cap.rights.contains(right) {
            return Err(Status::NoRights);
        }
        Ok((object, cap))
    }

    /// The endpoint in `slot` of `partition`, if the capability there names
    /// one and holds `right`; its badge is what a receiver gets in x1.
    fn endpoint_cap(
        &self,
        partition: PartitionId,
        slot: u64,
        right: Rights,
    ) -> Result<(EndpointId, Capability), Status> {
        let (e, cap) = self.object_cap(partition, slot, right, |o| match o {
            Object::Endpoint(e) => EndpointId::of(e),
            _ => None,
        })?;
        if e.index() >= self.endpoint_count {
            return Err(Status::InvalidCapability);
        }
        Ok((e, cap))
    }

    /// The receive slot that x2 of `Recv` or `ReplyRecv` names in its
    /// capability field: none if bit 3 is clear; else a slot of
    /// `partition`'s table, in range (else `InvalidCapability`) and empty
    /// (else `InvalidArgument`, as `Derive` into a full slot is). It must
    /// still be empty when a capability comes.
    fn receive_slot(&self, partition: PartitionId, info: u64) -> Result<ReceiveSlot, Status> {
        let Some(slot) = MessageInfo(info).capability() else {
            return Ok(ReceiveSlot::NONE);
        };
        let at = SlotRef::new(partition, u64::from(slot.0)).ok_or(Status::InvalidCapability)?;
        if self.caps.get(at).is_some() {
            return Err(Status::InvalidArgument);
        }
        ReceiveSlot::new(u64::from(slot.0)).ok_or(Status::InvalidCapability)
    }

    /// Where in `partition`'s table a capability may land for a vCPU that
    /// receives naming `accept`.
    fn landing(partition: PartitionId, accept: ReceiveSlot) -> Option<SlotRef> {
        accept.slot().and_then(|s| SlotRef::new(partition, s))
    }

    /// Takes `v` out of endpoint `e`'s queue.
    pub(super) fn dequeue_endpoint(&mut self, e: EndpointId, v: VcpuId) {
        if let Some(endpoint) = self.endpoints.get_mut(e.index()) {
            endpoint.queue.remove(&mut self.links, v);
            if endpoint.queue.is_empty() {
                endpoint.holds = Holds::Nothing;
            }
        }
    }

    pub(super) fn enqueue_endpoint(&mut self, e: EndpointId, v: VcpuId, holds: Holds) {
        if let Some(endpoint) = self.endpoints.get_mut(e.index()) {
            endpoint.queue.push_back(&mut self.links, v);
            endpoint.holds = holds;
        }
    }

    /// The first vCPU queued on `e`, if the queue holds `holds`.
    pub(super) fn first_waiting(&self, e: EndpointId, holds: Holds) -> Option<VcpuId> {
        let endpoint = self.endpoints.get(e.index())?;
        if endpoint.holds == holds {
            endpoint.queue.head()
        } else {
            None
        }
    }

    pub(super) fn set_state(&mut self, v: VcpuId, state: VcpuState) {
        if let Some(vcpu) = self.vcpu_mut(v) {
            vcpu.state = state;
        }
    }

    pub(super) fn set_regs(&mut self, v: VcpuId, regs: [u64; 8]) {
        if let Some(saved) = self.regs.get_mut(v.index()) {
            *saved = regs;
        }
    }

    pub(super) fn set_reply_to(&mut self, v: VcpuId, caller: Option<VcpuId>) {
        if let Some(vcpu) = self.vcpu_mut(v) {
            vcpu.reply_to = caller;
        }
    }

    /// Wakes `v` with x0..x7 = `regs`; the kick it needs.
    pub(super) fn wake(&mut self, v: VcpuId, regs: [u64; 8], here: usize) -> u8 {
        self.set_regs(v, regs);
        self.make_ready(v, here)
    }

    /// `PeerGone` for `v`, woken from waiting on a partner that stopped.
    pub(super) fn wake_peer_gone(&mut self, v: VcpuId, here: usize) -> u8 {
        self.wake(v, PEER_GONE, here)
    }

    /// `Send` (`call` false) and `Call` (`call` true).
    pub(super) fn send(
        &mut self,
        core: usize,
        cur: VcpuId,
        regs: &mut [u64; 8],
        call: bool,
    ) -> Result<Step, Status> {
        let partition = self.partition_of(cur)?;
        let (e, cap) = self.endpoint_cap(partition, regs[1], Rights::WRITE)?;
        let length = length_of(regs[2])?;
        let transfer = match MessageInfo(regs[2]).capability() {
            None => None,
            Some(slot) => {
                if !cap.rights.contains(Rights::GRANT) {
                    return Err(Status::NotGrantable);
                }
                let (from, moved) = self.caps.lookup(partition, u64::from(slot.0))?;
                if !moved.rights.contains(Rights::DERIVE) {
                    return Err(Status::NotGrantable);
                }
                Some(from)
            }
        };
        let Some(receiver) = self.first_waiting(e, Holds::Receivers) else {
            // Nobody to take it: wait, unless the server is down.
            let server_down = self
                .endpoints
                .get(e.index())
                .and_then(|ep| ep.server)
                .and_then(|p| self.partition(p))
                .is_some_and(|p| p.state != PartitionState::Active);
            if server_down {
                return Err(Status::PeerGone);
            }
            self.set_regs(cur, *regs);
            if let Some(badge) = self.badges.get_mut(cur.index()) {
                *badge = cap.badge;
            }
            self.set_state(cur, VcpuState::Sending { endpoint: e, call });
            self.enqueue_endpoint(e, cur, Holds::Senders);
            let next = self.switch_away(core, Some(cur), regs);
            return Ok(Step { next, kick: 0 });
        };
        let to = self.partition_of(receiver)?;
        let transfer = match transfer {
            None => None,
            Some(from) => {
                let accept = match self.vcpu_state(receiver) {
                    Some(VcpuState::Receiving { accept, .. }) => accept,
                    _ => ReceiveSlot::NONE,
                };
                Some((
                    from,
                    self.caps.check_transfer(from, Self::landing(to, accept))?,
                ))
            }
        };
        // Checked: from here on nothing fails.
        self.dequeue_endpoint(e, receiver);
        let moved = transfer.and_then(|(from, at)| self.caps.transfer(from, Some(at)).ok());
        let msg = message(cap.badge.0, delivered_info(length, moved), regs, length);
        if !call {
            let kick = self.wake(receiver, msg, core);
            regs[0] = SUCCESS;
            return Ok(self.settle(core, regs, kick));
        }
        // The caller's x0..x7 need no saving: the reply (or PeerGone)
        // overwrites all of them.
        self.set_state(cur, VcpuState::AwaitingReply { server: receiver });
        self.set_reply_to(receiver, Some(cur));
        if let Some(step) = self.direct_switch(core, cur, receiver, regs, msg) {
            return Ok(step);
        }
        let kick = self.wake(receiver, msg, core);
        let next = self.switch_away(core, Some(cur), regs);
        Ok(Step { next, kick })
    }

    /// `Recv`.
    pub(super) fn recv(
        &mut self,
        core: usize,
        cur: VcpuId,
        regs: &mut [u64; 8],
    ) -> Result<Step, Status> {
        let partition = self.partition_of(cur)?;
        let (e, _) = self.endpoint_cap(partition, regs[1], Rights::READ)?;
        if self.caller_of(cur).is_some() {
            return Err(Status::InvalidArgument);
        }
        // x2 must be a well-formed message info; only its capability field
        // (the receive slot) counts.
        length_of(regs[2])?;
        let accept = self.receive_slot(partition, regs[2])?;
        Ok(self.receive(core, cur, e, accept, regs, None))
    }

    /// `Reply`.
    pub(super) fn reply(
        &mut self,
        core: usize,
        cur: VcpuId,
        regs: &mut [u64; 8],
    ) -> Result<Step, Status> {
        let caller = self.owed_caller(cur).ok_or(Status::NoCaller)?;
        let length = reply_length(regs[2])?;
        let msg = message(0, MessageInfo::words(length).0, regs, length);
        let msg = self.reply_registers(caller, msg);
        self.set_reply_to(cur, None);
        let kick = self.wake(caller, msg, core);
        regs[0] = SUCCESS;
        Ok(self.settle(core, regs, kick))
    }

    /// `ReplyRecv`.
    pub(super) fn reply_recv(
        &mut self,
        core: usize,
        cur: VcpuId,
        regs: &mut [u64; 8],
    ) -> Result<Step, Status> {
        let partition = self.partition_of(cur)?;
        let (e, _) = self.endpoint_cap(partition, regs[1], Rights::READ)?;
        // The reply's length; its capability field names the receive slot.
        let length = length_of(regs[2])?;
        let accept = self.receive_slot(partition, regs[2])?;
        let reply = self.owed_caller(cur).map(|caller| {
            let msg = message(0, MessageInfo::words(length).0, regs, length);
            (caller, self.reply_registers(caller, msg))
        });
        self.set_reply_to(cur, None);
        Ok(self.receive(core, cur, e, accept, regs, reply))
    }

    /// The caller `cur` owes a reply to, if it is still waiting for it (a
    /// caller, or a virtual machine vCPU waiting for the answer to its exit).
    pub(super) fn owed_caller(&self, cur: VcpuId) -> Option<VcpuId> {
        let caller = self.caller_of(cur)?;
        let waiting = matches!(
            self.vcpu_state(caller),
            Some(VcpuState::AwaitingReply { server } | VcpuState::ExitReply { server })
                if server == cur
        );
        waiting.then_some(caller)
    }

    /// Receives on `e` for `cur`, a capability sent with the message landing
    /// only in `accept`, having first sent `reply` (caller and its x0..x7)
    /// if any. Queued senders whose capability cannot land are turned away.
    fn receive(
        &mut self,
        core: usize,
        cur: VcpuId,
        e: EndpointId,
        accept: ReceiveSlot,
        regs: &mut [u64; 8],
        reply: Option<(VcpuId, [u64; 8])>,
    ) -> Step {
        let mut kick = 0;
        // Each turn takes a sender off the queue: at most MAX_SYSTEM_VCPUS turns.
        while let Some(sender) = self.first_waiting(e, Holds::Senders) {
            match self.queued_transfer(sender, cur, accept) {
                Err(status) => {
                    self.dequeue_endpoint(e, sender);
                    kick |= self.turn_away(sender, status, core);
                }
                Ok(transfer) => {
                    self.dequeue_endpoint(e, sender);
                    self.take_message(core, cur, sender, transfer, regs, &mut kick);
                    if let Some((caller, msg)) = reply {
                        kick |= self.wake(caller, msg, core);
                    }
                    return self.settle(core, regs, kick);
                }
            }
        }
        // Wait. No need to save x0..x7: delivery overwrites all of them.
        self.set_state(
            cur,
            VcpuState::Receiving {
                endpoint: e,
                accept,
            },
        );
        self.enqueue_endpoint(e, cur, Holds::Receivers);
        if let Some((caller, msg)) = reply {
            if let Some(step) = self.direct_switch(core, cur, caller, regs, msg) {
                return step;
            }
            kick |= self.wake(caller, msg, core);
        }
        let next = self.switch_away(core, Some(cur), regs);
        Step { next, kick }
    }

    /// The capability the message of `sender` (queued) carries, and where
    /// it lands for the receiver `cur` that named `accept`; `None` if it
    /// carries none. Else the status its sender gets: its capability went
    /// while it waited (`InvalidCapability`, or `NotGrantable` if a
    /// capability without DERIVE took its slot), or there is nowhere for it
    /// (`OutOfResources`). Changes nothing.
    fn queued_transfer(
        &self,
        sender: VcpuId,
        cur: VcpuId,
        accept: ReceiveSlot,
    ) -> Result<Option<(SlotRef, SlotRef)>, Status> {
        if !matches!(self.vcpu_state(sender), Some(VcpuState::Sending { .. })) {
            return Ok(None);
        }
        let (Some(from), Some(src), Some(to)) = (
            self.vcpu_partition(sender),
            self.saved_regs(sender),
            self.vcpu_partition(cur),
        ) else {
            return Ok(None);
        };
        let Some(slot) = MessageInfo(src[2]).capability() else {
            return Ok(None);
        };
        let from = SlotRef::new(from, u64::from(slot.0)).ok_or(Status::InvalidCapability)?;
        let at = self.caps.check_transfer(from, Self::landing(to, accept))?;
        Ok(Some((from, at)))
    }

    /// Wakes `sender`, just taken off an endpoint's queue, with `status` and
    /// its registers as they were: its message was not delivered (a `call`
    /// waits for no reply). The kick it needs.
    fn turn_away(&mut self, sender: VcpuId, status: Status, here: usize) -> u8 {
        let mut regs = self.saved_regs(sender).unwrap_or_default();
        regs[0] = status.to_register();
        self.wake(sender, regs, here)
    }

    /// Moves the message of `sender`, just taken off its endpoint's queue,
    /// into `regs` (the running receiver `cur`'s), with the capability
    /// `transfer` says (as [`KernelState::queued_transfer`] found it: it
    /// cannot fail).
    fn take_message(
        &mut self,
        core: usize,
        cur: VcpuId,
        sender: VcpuId,
        transfer: Option<(SlotRef, SlotRef)>,
        regs: &mut [u64; 8],
        kick: &mut u8,
    ) {
        if matches!(self.vcpu_state(sender), Some(VcpuState::ExitSending { .. })) {
            self.take_exit(cur, sender, regs);
            return;
        }
        let (Some(from), Some(src), Some(badge)) = (
            self.vcpu(sender).copied(),
            self.saved_regs(sender),
            self.badges.get(sender.index()).copied(),
        ) else {
            return;
        };
        let call = matches!(from.state, VcpuState::Sending { call: true, .. });
        let info = MessageInfo(src[2]);
        let length = info.length().unwrap_or(0);
        let moved = transfer.and_then(|(from, at)| self.caps.transfer(from, Some(at)).ok());
        *regs = message(badge.0, delivered_info(length, moved), &src, length);
        if call {
            self.set_state(sender, VcpuState::AwaitingReply { server: cur });
            self.set_reply_to(cur, Some(sender));
        } else {
            let mut woken = src;
            woken[0] = SUCCESS;
            *kick |= self.wake(sender, woken, core);
        }
    }

    /// `from` (already blocked, its registers kept as needed) hands the core
    /// straight to `to`, which gets `msg`, if `to` is pinned here, may run
    /// now (`timing`) and nothing of higher priority is ready here: no ready
    /// queue is touched.
    pub(super) fn direct_switch(
        &mut self,
        core: usize,
        from: VcpuId,
        to: VcpuId,
        regs: &mut [u64; 8],
        msg: [u64; 8],
    ) -> Option<Step> {
        if self.timed && !self.eligible(to) {
            return None;
        }
        let target = self.vcpus.get_mut(to.index())?;
        let here = self.cores.get_mut(core)?;
        if usize::from(target.core) != core
            || here.ready.highest().is_some_and(|h| h > target.priority)
        {
            return None;
        }
        target.state = VcpuState::Running;
        here.current = Some(to);
        *regs = msg;
        Some(Step {
            next: Next::Switch {
                from: Some(from),
                to,
            },
            kick: 0,
        })
    }
}
