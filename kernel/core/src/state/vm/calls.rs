// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The `Vcpu` calls a monitor makes on its guest's vCPUs, and turning a
//! vCPU off.

use hv_abi::hypercall::{Hypercall, Rights, Status};
use hv_abi::vm::{
    REGISTER_PC, REGISTER_PSTATE, Register, VIRTUAL_INTIDS, VIRTUAL_TIMER_INTID, VcpuRunState,
};

use super::super::dispatch::SUCCESS;
use super::super::{Effect, KernelState, Outcome, PartitionState, VcpuState};
use crate::cap::PartitionId;
use crate::sched::VcpuId;
use hv_image::Object;

impl KernelState {
    /// The `Vcpu` calls (`VcpuStart` .. `VcpuStatus`): x1 the capability.
    pub(in crate::state) fn vcpu_call(
        &mut self,
        core: usize,
        cur: VcpuId,
        call: Hypercall,
        regs: &mut [u64; 8],
    ) -> Result<Outcome, Status> {
        let caller = self.partition_of(cur)?;
        let right = match call {
            Hypercall::VcpuStart | Hypercall::VcpuStop => Rights::CONTROL,
            Hypercall::VcpuInject | Hypercall::VcpuWrite => Rights::WRITE,
            _ => Rights::READ,
        };
        let target = self.vcpu_cap(caller, regs[1], right)?;
        match call {
            Hypercall::VcpuStart => self.vcpu_start(core, target, regs),
            Hypercall::VcpuStop => self.vcpu_stop(core, target, regs),
            Hypercall::VcpuInject => {
                let intid = (regs[2] & 0xffff) as u32;
                let source = ((regs[2] >> 16) & 0xff) as u8;
                // The virtual timer's interrupt, and those passed through,
                // are the kernel's to deliver (linked to their physical
                // ones): a monitor may not.
                if intid >= VIRTUAL_INTIDS
                    || intid == VIRTUAL_TIMER_INTID
                    || self.is_passed_through(intid)
                    || regs[2] >> 24 != 0
                {
                    return Err(Status::InvalidArgument);
                }
                self.active_target(target)?;
                let sgi_source = (intid < 16).then_some(source);
                let kick = self.pend(target, intid, sgi_source, core);
                regs[0] = SUCCESS;
                Ok(self.settle(core, regs, kick).into())
            }
            Hypercall::VcpuStatus => {
                let state = match self.vcpu_state(target) {
                    Some(VcpuState::Off | VcpuState::Stopped) | None => VcpuRunState::Off,
                    Some(VcpuState::Halted) => VcpuRunState::Halted,
                    Some(VcpuState::ExitSending { .. } | VcpuState::ExitReply { .. }) => {
                        VcpuRunState::Exit
                    }
                    Some(_) => VcpuRunState::Running,
                };
                *regs = [SUCCESS, state as u64, 0, 0, 0, 0, 0, 0];
                Ok(Outcome::CONTINUE)
            }
            Hypercall::VcpuRead | Hypercall::VcpuWrite => {
                let register = Register::from_register(regs[2]).ok_or(Status::InvalidArgument)?;
                let still = matches!(
                    self.vcpu_state(target),
                    Some(VcpuState::Off | VcpuState::ExitReply { .. })
                );
                if !still {
                    return Err(Status::Busy);
                }
                let write = (call == Hypercall::VcpuWrite).then_some(regs[3]);
                let low = match register {
                    Register::X(n) if n < 8 => Some(usize::from(n)),
                    _ => None,
                };
                if let Some(n) = low {
                    let mut saved = self.saved_regs(target).unwrap_or_default();
                    let value = saved.get(n).copied().unwrap_or(0);
                    if let (Some(w), Some(slot)) = (write, saved.get_mut(n)) {
                        *slot = w;
                        self.set_regs(target, saved);
                    }
                    *regs = [
                        SUCCESS,
                        if write.is_some() { 0 } else { value },
                        0,
                        0,
                        0,
                        0,
                        0,
                        0,
                    ];
                    return Ok(Outcome::CONTINUE);
                }
                let register = match register {
                    Register::X(n) => n,
                    Register::Pc => REGISTER_PC as u8,
                    Register::Pstate => REGISTER_PSTATE as u8,
                };
                *regs = [SUCCESS, 0, 0, 0, 0, 0, 0, 0];
                Ok(Outcome {
                    effect: Some(Effect::VcpuRegister {
                        vcpu: target,
                        register,
                        write,
                    }),
                    ..Outcome::CONTINUE
                })
            }
            _ => Err(Status::NotSupported),
        }
    }

    /// The vCPU named by the capability in `slot` of `caller`'s table, if
    /// that capability names one and holds `right`.
    fn vcpu_cap(&self, caller: PartitionId, slot: u64, right: Rights) -> Result<VcpuId, Status> {
        let ((partition, index), _) = self.object_cap(caller, slot, right, |o| match o {
            Object::Vcpu { partition, vcpu } => Some((partition, vcpu)),
            _ => None,
        })?;
        // vCPU `index` of the partition: they are numbered consecutively.
        let target = PartitionId::of(partition)
            .and_then(|p| self.partition(p))
            .filter(|p| index < p.vcpu_count)
            .and_then(|p| p.first_vcpu.checked_add(index))
            .and_then(VcpuId::of)
            .ok_or(Status::InvalidCapability)?;
        if !self.is_vm(target) || target.index() >= self.vcpu_count {
            return Err(Status::InvalidCapability);
        }
        Ok(target)
    }

    /// `PeerGone` unless `v`'s partition runs.
    pub(in crate::state) fn active_target(&self, v: VcpuId) -> Result<(), Status> {
        let active = self
            .vcpu_partition(v)
            .and_then(|p| self.partition_state(p))
            .is_some_and(|s| s == PartitionState::Active);
        if active {
            Ok(())
        } else {
            Err(Status::PeerGone)
        }
    }

    /// `VcpuStart`: x2 the entry, x3 its x0.
    fn vcpu_start(
        &mut self,
        core: usize,
        target: VcpuId,
        regs: &mut [u64; 8],
    ) -> Result<Outcome, Status> {
        self.active_target(target)?;
        if self.vcpu_state(target) != Some(VcpuState::Off) {
            return Err(Status::InvalidArgument);
        }
        let (entry, argument) = (regs[2], regs[3]);
        self.set_regs(target, [argument, 0, 0, 0, 0, 0, 0, 0]);
        self.clear_vm(target);
        if let Some(e) = self.vm_entry_mut(target) {
            e.start = Some(entry);
        }
        let kick = self.make_ready(target, core);
        regs[0] = SUCCESS;
        Ok(self.settle(core, regs, kick).into())
    }

    /// `VcpuStop`.
    fn vcpu_stop(
        &mut self,
        core: usize,
        target: VcpuId,
        regs: &mut [u64; 8],
    ) -> Result<Outcome, Status> {
        self.active_target(target)?;
        let kick = self.turn_off(target, core);
        regs[0] = SUCCESS;
        // The caller may have stopped itself (a monitor holding a capability
        // to its own vCPU cannot: only virtual machines' vCPUs are named).
        Ok(self.settle(core, regs, kick).into())
    }

    /// Takes `v` (a virtual machine's vCPU) out of whatever it was doing and
    /// turns it off; returns the cores other than `here` to kick.
    pub(in crate::state) fn turn_off(&mut self, v: VcpuId, here: usize) -> u8 {
        let kick = self.leave(v, here);
        self.set_state(v, VcpuState::Off);
        self.set_reply_to(v, None);
        self.clear_vm(v);
        kick
    }

    /// Takes `v` out of the queue it is in, the core it runs on, or the
    /// exchange it waits in (a caller it owes a reply gets `PeerGone`);
    /// returns the cores other than `here` to kick. Its state is for the
    /// caller to set.
    pub(in crate::state) fn leave(&mut self, v: VcpuId, here: usize) -> u8 {
        let (mut kick, caller) = self.detach(v, here);
        if let Some(caller) = caller {
            kick |= self.release_caller(caller, v, here);
        }
        kick
    }

    /// [`Self::leave`] but for the caller `v` owes a reply, which is
    /// returned with the cores to kick, for the caller to release.
    pub(in crate::state) fn detach(&mut self, v: VcpuId, here: usize) -> (u8, Option<VcpuId>) {
        let Some(vcpu) = self.vcpu(v).copied() else {
            return (0, None);
        };
        let core = usize::from(vcpu.core);
        let mut kick = 0;
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
            VcpuState::Ready => self.unready(v),
            VcpuState::Sending { endpoint, .. }
            | VcpuState::Receiving { endpoint, .. }
            | VcpuState::ExitSending { endpoint } => {
                self.dequeue_endpoint(endpoint, v);
            }
            VcpuState::Waiting { notification } => {
                if let Some(n) = self.notifications.get_mut(notification.index()) {
                    n.waiters.remove(&mut self.links, v);
                }
            }
            VcpuState::AwaitingReply { server } | VcpuState::ExitReply { server } => {
                if self.caller_of(server) == Some(v) {
                    self.set_reply_to(server, None);
                }
                self.forget_kept_caller(v);
            }
            VcpuState::Stopped | VcpuState::Off | VcpuState::Halted => {}
        }
        (kick, vcpu.reply_to)
    }

    /// `server` stops owing `caller` its reply because it is going away:
    /// a caller gets `PeerGone`; a virtual machine vCPU waiting for its
    /// monitor's answer is turned off (the monitor's next incarnation starts
    /// its guest afresh). Returns the kick.
    pub(in crate::state) fn release_caller(
        &mut self,
        caller: VcpuId,
        server: VcpuId,
        here: usize,
    ) -> u8 {
        match self.vcpu_state(caller) {
            Some(VcpuState::AwaitingReply { server: s }) if s == server => {
                self.wake_peer_gone(caller, here)
            }
            Some(VcpuState::ExitReply { server: s }) if s == server => self.turn_off(caller, here),
            _ => 0,
        }
    }
}
