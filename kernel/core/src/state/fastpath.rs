// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The IPC fast path: `Call` and `ReplyRecv` between two vCPUs on one core.
//!
//! seL4's idea: the common case of a client calling a server that waits,
//! and the server answering and waiting again, gets its own short code that
//! checks its preconditions directly and does only what that case needs. On
//! any doubt it returns `None` and the general path ([`KernelState::hypercall`]
//! through `dispatch`) handles the call, so the fast path never decides
//! anything the general path would decide differently; the test harness
//! runs both on every hypercall of every test and requires identical
//! states, registers and outcomes.
//!
//! `Call` is fast when: x2 is a plain message info (no capability, no
//! reserved bits: x2 <= 5); x1 names an endpoint the caller may WRITE; a
//! receiver waits on it, pinned to this core, with no higher priority ready
//! here. `ReplyRecv` is fast when: x2 as above (so it names no receive
//! slot: a server that asks for a capability takes the general path); a
//! caller (or a virtual machine's vCPU waiting for the answer to its exit) waits for this vCPU's
//! reply, pinned to this core, with no higher priority ready here; x1 names
//! an endpoint the vCPU may READ, on which no sender waits.
//!
//! Both then switch straight to the partner: no ready queue is touched. On
//! a timed system (windows or budgets, `timing.rs`) both partners must also
//! be without a budget, and the caller allowed by its core's window in its
//! own right (the server then runs on its time), or the general path
//! decides.
//!
//! A virtual machine's exit ([`KernelState::vm_exit`]) is fast the same
//! way: its monitor's vCPU waits on the exit endpoint, pinned to this core,
//! with no higher priority ready here (and the exit is not an SMC whose
//! arguments the general path must fetch).

use hv_abi::hypercall::{Hypercall, MESSAGE_WORDS, Rights};

use super::ipc::{Holds, message, message_in_place};
use super::vm::{VmExit, exit_message};
use super::{KernelState, Next, ReceiveSlot, Step, VcpuState};
use crate::cap::{EndpointId, SlotRef};
use crate::sched::VcpuId;
use hv_image::{MAX_ENDPOINTS, Object};

/// x0 of `Call`.
const CALL: u64 = Hypercall::Call.function_id() as u64;
const _: () = assert!(Hypercall::ReplyRecv.function_id() as u64 == CALL + 1);

/// A hypercall the fast path may take: which one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FastCall {
    /// `Call`.
    Call,
    /// `ReplyRecv`.
    ReplyRecv,
}

/// Whether the hypercall in `regs` could take the fast path at all, and as
/// which: `Call` or `ReplyRecv` with a plain message info. The kernel's
/// entry makes this test in assembly (`hv_lower_sync`), so that every other
/// hypercall goes straight to the general path and takes its domain's lock
/// once; the test harness asks this function, in the same order.
#[inline(always)]
#[must_use]
pub fn fast_candidate(regs: &[u64; 8]) -> Option<FastCall> {
    // A plain message info is its own length.
    if regs[2] > MESSAGE_WORDS as u64 {
        return None;
    }
    // The two IDs are adjacent: one subtraction tells them apart.
    match regs[0].wrapping_sub(CALL) {
        0 => Some(FastCall::Call),
        1 => Some(FastCall::ReplyRecv),
        _ => None,
    }
}

impl KernelState {
    /// The fast path for `regs` on `core`, if it applies.
    ///
    /// Its helpers are `inline(always)`: the kernel is built for size, at
    /// which the compiler would otherwise keep them as calls, each with its
    /// own prologue, on the one path where every instruction counts.
    #[inline(always)]
    pub(super) fn fast_path(&mut self, core: usize, regs: &mut [u64; 8]) -> Option<Step> {
        let call = fast_candidate(regs)?;
        self.fast_path_as(core, regs, call)
    }

    /// The fast path for `regs` on `core`, which [`fast_candidate`] found to be
    /// `call`.
    #[inline(always)]
    pub(super) fn fast_path_as(
        &mut self,
        core: usize,
        regs: &mut [u64; 8],
        call: FastCall,
    ) -> Option<Step> {
        match call {
            FastCall::Call => self.fast_call(core, regs),
            FastCall::ReplyRecv => self.fast_reply_recv(core, regs),
        }
    }

    /// The endpoint in slot `slot` of the partition of `vcpu`, if it holds
    /// `right`, and the capability's badge.
    #[inline(always)]
    fn fast_endpoint(&self, vcpu: VcpuId, slot: u64, right: Rights) -> Option<(EndpointId, u64)> {
        let partition = self.vcpus.get(vcpu.index())?.partition;
        let cap = self.caps.get(SlotRef::new(partition, slot)?)?;
        // Not checked against the seed's endpoint count, as the general
        // path does: every endpoint capability names an endpoint of the
        // seed (an invariant: the seed is checked, derivation copies it).
        // One test of the number against the table (not `EndpointId::of`'s
        // and then the table's), which every later index of it reuses.
        match cap.object {
            Object::Endpoint(e) if cap.rights.contains(right) && usize::from(e) < MAX_ENDPOINTS => {
                Some((EndpointId(e as u8), cap.badge.0))
            }
            _ => None,
        }
    }

    /// Whether `to` may take the core straight from the running `from`: it
    /// is pinned here and nothing of higher priority is ready here; on a
    /// timed system also neither has a budget and the caller (`from` if
    /// `call`, else `to`) may run in its own right
    /// (`Timing::quick_switch`). An untimed core's ready queue has
    /// its gate clear, so with nothing ready this is one byte's test, as it
    /// was before time existed.
    #[inline(always)]
    fn may_switch_to(&self, core: usize, from: VcpuId, to: VcpuId, call: bool) -> bool {
        let (Some(target), Some(here)) = (self.vcpus.get(to.index()), self.cores.get(core)) else {
            return false;
        };
        if usize::from(target.core) != core {
            return false;
        }
        if here.ready.is_quiet() {
            return true;
        }
        here.ready.highest().is_none_or(|h| h <= target.priority)
            && (!here.ready.gated() || self.timing.quick_switch(core, from, to, call))
    }

    /// Makes `to` the running vCPU of `core` with x0..x7 = `msg`.
    #[inline(always)]
    fn switch_straight(
        &mut self,
        core: usize,
        from: VcpuId,
        to: VcpuId,
        regs: &mut [u64; 8],
        msg: [u64; 8],
    ) -> Step {
        *regs = msg;
        self.switch_to(core, from, to)
    }

    /// Makes `to` the running vCPU of `core` (its x0..x7 already in place).
    #[inline(always)]
    fn switch_to(&mut self, core: usize, from: VcpuId, to: VcpuId) -> Step {
        if let Some(target) = self.vcpus.get_mut(to.index()) {
            target.state = VcpuState::Running;
        }
        if let Some(here) = self.cores.get_mut(core) {
            here.current = Some(to);
        }
        Step {
            next: Next::Switch {
                from: Some(from),
                to,
            },
            kick: 0,
        }
    }

    #[inline(always)]
    fn fast_call(&mut self, core: usize, regs: &mut [u64; 8]) -> Option<Step> {
        let cur = self.cores.get(core)?.current?;
        let (e, badge) = self.fast_endpoint(cur, regs[1], Rights::WRITE)?;
        let endpoint = self.endpoints.get(e.index())?;
        if endpoint.holds != Holds::Receivers {
            return None;
        }
        let server = endpoint.queue.head()?;
        if !self.may_switch_to(core, cur, server, true) {
            return None;
        }
        // Committed: nothing below can fail.
        if let Some(endpoint) = self.endpoints.get_mut(e.index()) {
            endpoint.queue.pop_front(&mut self.links);
            if endpoint.queue.is_empty() {
                endpoint.holds = Holds::Nothing;
            }
        }
        if let Some(caller) = self.vcpus.get_mut(cur.index()) {
            caller.state = VcpuState::AwaitingReply { server };
        }
        if let Some(target) = self.vcpus.get_mut(server.index()) {
            target.reply_to = Some(cur);
        }
        message_in_place(badge, regs, regs[2] as usize);
        Some(self.switch_to(core, cur, server))
    }

    /// The fast path of [`KernelState::vm_exit`], if it applies.
    #[inline(always)]
    pub(super) fn vm_exit_fast(
        &mut self,
        core: usize,
        exit: &VmExit,
        regs: &mut [u64; 8],
    ) -> Option<Step> {
        if exit.is_bare_smc() {
            return None;
        }
        let cur = self.cores.get(core)?.current?;
        let partition = self.partition(self.vcpus.get(cur.index())?.partition)?;
        let (e, index) = (
            partition.exits?,
            cur.byte().saturating_sub(partition.first_vcpu),
        );
        let endpoint = self.endpoints.get(e.index())?;
        if endpoint.holds != Holds::Receivers {
            return None;
        }
        let monitor = endpoint.queue.head()?;
        if !self.may_switch_to(core, cur, monitor, true) {
            return None;
        }
        // Committed: nothing below can fail.
        if let Some(saved) = self.regs.get_mut(cur.index()) {
            // Not `*saved = *regs`: the glue's `regs` reach here through a
            // pointer, and that copy became a call to `memmove`.
            saved.copy_from_slice(regs);
        }
        if let Some(vm) = self.vm.get_mut(cur.index()) {
            vm.access = exit.access;
            vm.message = exit.words;
        }
        if let Some(endpoint) = self.endpoints.get_mut(e.index()) {
            endpoint.queue.pop_front(&mut self.links);
            if endpoint.queue.is_empty() {
                endpoint.holds = Holds::Nothing;
            }
        }
        if let Some(guest) = self.vcpus.get_mut(cur.index()) {
            guest.state = VcpuState::ExitReply { server: monitor };
        }
        if let Some(target) = self.vcpus.get_mut(monitor.index()) {
            target.reply_to = Some(cur);
        }
        let msg = exit_message(index, &exit.words);
        Some(self.switch_straight(core, cur, monitor, regs, msg))
    }

    /// The answer in `regs` (`length` words) to the exit `caller` waits on,
    /// applied to its registers. Out of line: the answer and what it
    /// stages take room on the stack that the service-to-service path
    /// should not set up.
    #[inline(never)]
    fn fast_answer_exit(&mut self, caller: VcpuId, regs: &mut [u64; 8], length: usize) {
        let msg = message(0, regs[2], regs, length);
        self.answer_exit(caller, &msg, regs);
    }

    #[inline(always)]
    fn fast_reply_recv(&mut self, core: usize, regs: &mut [u64; 8]) -> Option<Step> {
        let cur = self.cores.get(core)?.current?;
        let caller = self.vcpus.get(cur.index())?.reply_to?;
        // A virtual machine's vCPU waiting for its monitor's answer to an
        // exit is answered the same way, its answer applied to its own
        // registers. A service's call is tested first, as a whole value
        // (tag and server in one comparison, as the compiler does it now).
        let waiting = self.vcpus.get(caller.index())?.state;
        let exit = if waiting == (VcpuState::AwaitingReply { server: cur }) {
            false
        } else if waiting == (VcpuState::ExitReply { server: cur }) {
            true
        } else {
            return None;
        };
        let (e, _) = self.fast_endpoint(cur, regs[1], Rights::READ)?;
        if self.endpoints.get(e.index())?.holds == Holds::Senders
            || !self.may_switch_to(core, cur, caller, false)
        {
            return None;
        }
        // Committed: nothing below can fail.
        if let Some(server) = self.vcpus.get_mut(cur.index()) {
            server.reply_to = None;
            // x2 <= 5 names no receive slot: it accepts no capability.
            server.state = VcpuState::Receiving {
                endpoint: e,
                accept: ReceiveSlot::NONE,
            };
        }
        if let Some(endpoint) = self.endpoints.get_mut(e.index()) {
            endpoint.queue.push_back(&mut self.links, cur);
            endpoint.holds = Holds::Receivers;
        }
        let length = regs[2] as usize;
        if exit {
            self.fast_answer_exit(caller, regs, length);
        } else {
            message_in_place(0, regs, length);
        }
        Some(self.switch_to(core, cur, caller))
    }
}
