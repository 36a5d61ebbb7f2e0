// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Reply objects: a server keeps a caller's reply for later.
//!
//! A received `call` leaves the receiving vCPU owing that caller a reply,
//! in one implicit place per vCPU (`reply_to`), and `recv` is refused while
//! it is full. A server that cannot answer at once (it waits for a device,
//! or for another server) moves the owed reply into a reply object with
//! `SaveReply`, receives further calls, and answers the saved caller later
//! with `ReplySaved`. The manifest gives each partition the reply objects
//! it needs (seL4's MCS kernel has the same objects; its `recv` names one
//! directly).
//!
//! - `SaveReply`: x1 = a capability to a reply object (WRITE), which must
//!   be empty (else `InvalidArgument`); the vCPU must owe a reply (else
//!   `NoCaller`). The caller goes on waiting, now on the object.
//! - `ReplySaved`: x1 = the same, x2 = message info (no capability),
//!   x3..x7 = the words; the object's caller gets them as from `Reply`
//!   (x0 = `Success`, x1 = 0) and the object is empty again. `NoCaller` if
//!   it was empty.
//!
//! A reply object belongs to one partition (the seed says which, and its
//! capabilities live only there); any vCPU of that partition may use it.
//! A capability to it that reached another partition is refused there with
//! `InvalidCapability`.
//!
//! **Partners that stop.** When the owner stops or restarts, every caller
//! kept in its objects is woken with `PeerGone` and the objects empty; when
//! a kept caller's own partition stops, the object holding it empties.
//! Deleting the last capability to an object that holds a caller leaves the
//! caller waiting until the owner stops, as a server that never replies
//! would.

use hv_abi::hypercall::{MessageInfo, Rights, Status};

use super::dispatch::SUCCESS;
use super::ipc::{message, reply_length};
use super::{KernelState, Step, VcpuState};
use crate::cap::{PartitionId, ReplyId};
use crate::sched::VcpuId;
use hv_image::Object;

/// A reply object: its owner, and the caller kept in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct ReplyObject {
    pub(super) owner: PartitionId,
    pub(super) caller: Option<VcpuId>,
}

impl ReplyObject {
    pub(super) const EMPTY: Self = Self {
        owner: PartitionId(0),
        caller: None,
    };
}

impl KernelState {
    /// The reply object in `slot` of `partition`: the capability must name
    /// one (else `WrongType`) with WRITE (else `NoRights`) that `partition`
    /// owns (else `InvalidCapability`).
    fn reply_object(&self, partition: PartitionId, slot: u64) -> Result<ReplyId, Status> {
        let (r, _) = self.object_cap(partition, slot, Rights::WRITE, |o| match o {
            Object::Reply(r) => ReplyId::of(r),
            _ => None,
        })?;
        match self.replies.get(r.index()) {
            Some(object) if r.index() < self.reply_count && object.owner == partition => Ok(r),
            _ => Err(Status::InvalidCapability),
        }
    }

    /// `SaveReply`.
    pub(super) fn save_reply(&mut self, cur: VcpuId, regs: &mut [u64; 8]) -> Result<Step, Status> {
        let partition = self.partition_of(cur)?;
        let r = self.reply_object(partition, regs[1])?;
        let caller = self.owed_caller(cur).ok_or(Status::NoCaller)?;
        // A virtual machine's exit is answered by its monitor at once; it is
        // not kept for later.
        if self.vcpu_state(caller) != Some(VcpuState::AwaitingReply { server: cur }) {
            return Err(Status::InvalidArgument);
        }
        let object = self
            .replies
            .get_mut(r.index())
            .ok_or(Status::InvalidCapability)?;
        if object.caller.is_some() {
            return Err(Status::InvalidArgument);
        }
        object.caller = Some(caller);
        self.set_reply_to(cur, None);
        regs[0] = SUCCESS;
        Ok(Step::CONTINUE)
    }

    /// `ReplySaved`.
    pub(super) fn reply_saved(
        &mut self,
        core: usize,
        cur: VcpuId,
        regs: &mut [u64; 8],
    ) -> Result<Step, Status> {
        let partition = self.partition_of(cur)?;
        let r = self.reply_object(partition, regs[1])?;
        let length = reply_length(regs[2])?;
        let caller = self
            .replies
            .get(r.index())
            .and_then(|o| o.caller)
            .ok_or(Status::NoCaller)?;
        let msg = message(0, MessageInfo::words(length).0, regs, length);
        if let Some(object) = self.replies.get_mut(r.index()) {
            object.caller = None;
        }
        let kick = self.wake(caller, msg, core);
        regs[0] = SUCCESS;
        Ok(self.settle(core, regs, kick))
    }

    /// Empties the reply object that keeps `caller`, if one does (its
    /// partition is stopping).
    pub(super) fn forget_kept_caller(&mut self, caller: VcpuId) {
        for object in self.replies.iter_mut().take(self.reply_count) {
            if object.caller == Some(caller) {
                object.caller = None;
            }
        }
    }

    /// Empties every reply object `partition` owns (it is stopping); wakes
    /// the callers kept there, but those of `partition` itself, with
    /// `PeerGone`. Returns the cores other than `here` to kick.
    pub(super) fn release_kept_callers(&mut self, partition: PartitionId, here: usize) -> u8 {
        let mut kick = 0;
        for r in 0..self.reply_count {
            let Some(object) = self.replies.get_mut(r) else {
                break;
            };
            if object.owner != partition {
                continue;
            }
            let Some(caller) = object.caller.take() else {
                continue;
            };
            if matches!(
                self.vcpu_state(caller),
                Some(VcpuState::AwaitingReply { .. })
            ) && self.vcpu_partition(caller) != Some(partition)
            {
                kick |= self.wake_peer_gone(caller, here);
            }
        }
        kick
    }

    /// The reply object that keeps `caller`, if one does.
    #[cfg(any(test, feature = "checks"))]
    pub(super) fn keeper_of(&self, caller: VcpuId) -> Option<ReplyId> {
        self.replies
            .iter()
            .take(self.reply_count)
            .position(|o| o.caller == Some(caller))
            .map(|r| ReplyId(r as u8))
    }

    /// How many reply objects keep `caller`.
    #[cfg(any(test, feature = "checks"))]
    pub(super) fn keepers_of(&self, caller: VcpuId) -> usize {
        self.replies
            .iter()
            .take(self.reply_count)
            .filter(|o| o.caller == Some(caller))
            .count()
    }

    /// The owner of reply object `r`.
    #[cfg(any(test, feature = "checks"))]
    pub(super) fn reply_owner(&self, r: ReplyId) -> Option<PartitionId> {
        self.replies.get(r.index()).map(|o| o.owner)
    }
}
