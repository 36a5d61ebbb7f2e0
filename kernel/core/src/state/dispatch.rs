// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Hypercalls: decoding x0 and running the call, plus the capability and
//! log calls.
//!
//! [`KernelState::hypercall`] decodes x0 with [`Hypercall::try_from`] and
//! hands the registers to the call. A call checks all its arguments before
//! it changes anything, so a bad one only writes its [`Status`] to x0.
//! Registers a call does not use are ignored; reserved bits inside a
//! register it does use (the message info's, the rights') must be zero.
//!
//! `Version` is the null hypercall: the kernel's entry code answers it
//! before anything else (`vcpu.S`), and here it reads no state. `Call` and
//! `ReplyRecv` try the fast path (`fastpath.rs`) first; the glue calls
//! [`KernelState::hypercall_fast`] and then, if it declined,
//! [`KernelState::hypercall_general`]; everything else, and every case the
//! fast path declines, goes through `dispatch`.
//!
//! Capability calls (slots are raw x registers; anything out of range is
//! `InvalidCapability`):
//! - `Derive`: x1 source slot, x2 = rights (bits 31:0) and badge (bits
//!   63:32; 0 keeps the source's badge, so a minted badge is at most 32
//!   bits), x3 destination slot. Rules in [`crate::cap::CapSpace::derive`].
//! - `Revoke`: x1 slot; empties everything derived from it, in any
//!   partition.
//! - `Delete`: x1 slot; empties it (its children move up to its parent; a
//!   root takes its descendants with it).
//! - `Log`: x2 byte count (at most [`LOG_BYTES`]), x3..x7 the bytes,
//!   little-endian; becomes [`Effect::Log`].
//! - `Fault`: x2 reason, at most [`hv_abi::hypercall::REASON_OWN_MAX`]
//!   (`InvalidArgument` above: the kernel's reasons cannot be forged); the
//!   partition's fault policy applies.
//!
//! The partition-control calls (`PartitionStatus`, `PartitionStop`,
//! `PartitionRestart`) are `fault/control.rs`'s.

use hv_abi::hypercall::{ABI_VERSION, Hypercall, Status, StopReason, derive_fields};

use super::{Effect, KernelState, LOG_BYTES, Next, Outcome, Step};
use crate::cap::{CapSpace, PartitionId};
use crate::sched::VcpuId;

/// x0 of the null hypercall.
const VERSION: u64 = Hypercall::Version.function_id() as u64;
/// x0 of a call that worked, computed once here rather than on every call.
pub(super) const SUCCESS: u64 = Status::Success.to_register();

impl KernelState {
    /// The running vCPU on `core` made a hypercall; `regs` are its x0..x7
    /// (x0 the SMCCC function ID). On return `regs` hold the x0..x7 of the
    /// vCPU that runs next on this core, as [`Outcome::next`] says.
    ///
    /// If the core runs nothing (the vCPU was stopped from another core
    /// while it trapped), the call is dropped and the core reschedules;
    /// except `Version`, which reads no state and is answered first, before
    /// anything else is looked at (a stopped vCPU that asks the version
    /// learns nothing and is taken off the core by the kick already on its
    /// way).
    pub fn hypercall(&mut self, core: usize, regs: &mut [u64; 8]) -> Outcome {
        if regs[0] != VERSION
            && let Some(step) = self.fast_path(core, regs)
        {
            return step.into();
        }
        self.hypercall_general(core, regs)
    }

    /// The IPC fast path alone, for the glue's hot path: if it applies to
    /// the hypercall in `regs` (see `fastpath.rs`), it is done, `regs` hold
    /// the x0..x7 of the vCPU it returns, which now runs on `core`, and
    /// nothing else needs doing (no kick, no effect). Otherwise nothing
    /// changed and the glue calls [`KernelState::hypercall_general`].
    ///
    /// `call` is what [`super::fast_candidate`] says of `regs`: the kernel's
    /// entry (`hv_lower_sync` in the arch crate's `vcpu.S`) makes the same
    /// test in assembly before anything is saved, and sends only these
    /// hypercalls here.
    #[inline(always)]
    pub fn hypercall_fast(
        &mut self,
        core: usize,
        regs: &mut [u64; 8],
        call: super::FastCall,
    ) -> Option<VcpuId> {
        match self.fast_path_as(core, regs, call)?.next {
            Next::Switch { to, .. } => Some(to),
            // The fast path only ever switches.
            Next::Continue | Next::Idle { .. } => None,
        }
    }

    /// A hypercall the fast path declined (or was not tried on): `Version`
    /// is answered first, reading no state; everything else goes through
    /// `dispatch`.
    #[inline(never)]
    pub fn hypercall_general(&mut self, core: usize, regs: &mut [u64; 8]) -> Outcome {
        if regs[0] == VERSION {
            regs[0] = SUCCESS;
            regs[1] = u64::from(ABI_VERSION);
            return Outcome::CONTINUE;
        }
        self.dispatch(core, regs)
    }

    /// The running vCPU on `core` executed `svc #n` or `hvc #n` with n != 0,
    /// which the ABI reserves (`docs/abi.md` §1.1): refused with
    /// `NotSupported` whatever x0 says (a virtual machine's goes to no
    /// monitor either), nothing else changed. As for a hypercall, a core
    /// that runs nothing (the vCPU was stopped meanwhile) reschedules.
    pub fn reserved_call(&mut self, core: usize, regs: &mut [u64; 8]) -> Outcome {
        if self.current(core).is_none() {
            return self.reschedule(core, regs);
        }
        refuse(regs, Status::NotSupported)
    }

    /// Every hypercall but `Version`. The calls that can ask the glue for
    /// something return an [`Outcome`]; the rest, the IPC paths among them,
    /// return the smaller [`Step`].
    #[inline(never)]
    pub(super) fn dispatch(&mut self, core: usize, regs: &mut [u64; 8]) -> Outcome {
        let Some(cur) = self.current(core) else {
            return self.reschedule(core, regs);
        };
        let call = match Hypercall::try_from(regs[0]) {
            Ok(call) => call,
            // A virtual machine's `hvc` that is not Bulkhead's (PSCI, say)
            // is its monitor's business.
            Err(_) if self.is_vm(cur) => {
                let exit = super::VmExit::call(hv_abi::vm::EXIT_HVC, regs);
                return self.vm_exit(core, exit, regs);
            }
            Err(status) => return refuse(regs, status),
        };
        let step = match call {
            Hypercall::Call => self.send(core, cur, regs, true),
            Hypercall::ReplyRecv => self.reply_recv(core, cur, regs),
            Hypercall::Send => self.send(core, cur, regs, false),
            Hypercall::Recv => self.recv(core, cur, regs),
            Hypercall::Reply => self.reply(core, cur, regs),
            Hypercall::Signal => self.signal(core, cur, regs),
            Hypercall::Wait => self.wait(core, cur, regs, true),
            Hypercall::Poll => self.wait(core, cur, regs, false),
            Hypercall::Version => {
                regs[0] = SUCCESS;
                regs[1] = u64::from(ABI_VERSION);
                Ok(Step::CONTINUE)
            }
            Hypercall::Yield => {
                regs[0] = SUCCESS;
                Ok(self.rotate(core, regs))
            }
            Hypercall::Derive => self.cap_call(cur, regs, |caps, p, r| {
                let (rights, badge) = derive_fields(r[2]);
                caps.derive(p, r[1], r[3], rights, badge)
            }),
            Hypercall::Revoke => self.cap_call(cur, regs, |caps, p, r| caps.revoke(p, r[1])),
            Hypercall::Delete => self.cap_call(cur, regs, |caps, p, r| caps.delete(p, r[1])),
            Hypercall::IrqAck => {
                return self
                    .irq_ack(cur, regs)
                    .unwrap_or_else(|status| refuse(regs, status));
            }
            Hypercall::Log => {
                return self
                    .log(cur, regs)
                    .unwrap_or_else(|status| refuse(regs, status));
            }
            Hypercall::LogRead => {
                return self
                    .log_read(cur, regs)
                    .unwrap_or_else(|status| refuse(regs, status));
            }
            Hypercall::Fault => {
                // Only the partition's own reasons: the kernel's (an
                // exception, a controller) cannot be forged.
                let Some(reason) = StopReason::own(regs[2]) else {
                    return refuse(regs, Status::InvalidArgument);
                };
                return match self.partition_of(cur) {
                    Ok(p) => self.fault_partition(core, p, reason, regs),
                    Err(status) => refuse(regs, status),
                };
            }
            Hypercall::PartitionStatus => self.partition_status(cur, regs),
            Hypercall::PartitionStop => {
                return self
                    .partition_control(core, cur, regs, super::FaultPolicy::Stop)
                    .unwrap_or_else(|status| refuse(regs, status));
            }
            Hypercall::PartitionRestart => {
                return self
                    .partition_control(core, cur, regs, super::FaultPolicy::Restart)
                    .unwrap_or_else(|status| refuse(regs, status));
            }
            Hypercall::SaveReply => self.save_reply(cur, regs),
            Hypercall::ReplySaved => self.reply_saved(core, cur, regs),
            Hypercall::VcpuStart
            | Hypercall::VcpuStop
            | Hypercall::VcpuInject
            | Hypercall::VcpuRead
            | Hypercall::VcpuWrite
            | Hypercall::VcpuStatus => {
                return self
                    .vcpu_call(core, cur, call, regs)
                    .unwrap_or_else(|status| refuse(regs, status));
            }
        };
        match step {
            Ok(step) => step.into(),
            Err(status) => refuse(regs, status),
        }
    }

    /// A capability call: `op` on the caller's partition's table.
    fn cap_call(
        &mut self,
        cur: VcpuId,
        regs: &mut [u64; 8],
        op: impl FnOnce(&mut CapSpace, PartitionId, &[u64; 8]) -> Result<(), Status>,
    ) -> Result<Step, Status> {
        let partition = self.partition_of(cur)?;
        op(&mut self.caps, partition, regs)?;
        regs[0] = SUCCESS;
        Ok(Step::CONTINUE)
    }

    /// `Log`.
    fn log(&mut self, cur: VcpuId, regs: &mut [u64; 8]) -> Result<Outcome, Status> {
        let partition = self.partition_of(cur)?;
        let len = u8::try_from(regs[2])
            .ok()
            .filter(|&n| usize::from(n) <= LOG_BYTES)
            .ok_or(Status::InvalidArgument)?;
        let mut bytes = [0u8; LOG_BYTES];
        let words = regs.iter().skip(3).flat_map(|w| w.to_le_bytes());
        for (i, (dst, src)) in bytes.iter_mut().zip(words).enumerate() {
            if i < usize::from(len) {
                *dst = src;
            }
        }
        regs[0] = SUCCESS;
        Ok(Outcome {
            effect: Some(Effect::Log {
                partition,
                bytes,
                len,
            }),
            ..Outcome::CONTINUE
        })
    }
}

/// A refused call: its status in x0, nothing else changed.
fn refuse(regs: &mut [u64; 8], status: Status) -> Outcome {
    regs[0] = status.to_register();
    Outcome::CONTINUE
}
