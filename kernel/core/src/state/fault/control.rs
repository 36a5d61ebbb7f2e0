// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Partition control: what a partition may do to another through a
//! `Partition` capability, so that a health monitor can watch and restart
//! the partitions the manifest gives it.
//!
//! - `PartitionStatus` (READ): x1 the partition's [`RunState`], x2 how many
//!   times it has faulted, x3 the reason of its last stop or restart (0
//!   before any), x4 how many times it has been restarted; x5..x7 zero.
//! - `PartitionStop` (CONTROL): tears it down and stops it, exactly as the
//!   `stop` fault policy does, whatever its own policy; the glue reports it
//!   ([`crate::state::Effect::Fault`]). Stopping a stopped partition succeeds and does
//!   nothing.
//! - `PartitionRestart` (CONTROL): tears it down, gives it back its seed
//!   capabilities and has the glue reload it, exactly as the `restart` fault
//!   policy does ([`crate::state::Effect::Restart`]), from running or from stopped: a
//!   monitor brings back a partition that stopped on a fault this way.
//!
//! The reason a stop or restart carries (for the glue's report and for the
//! target's history) is [`StopReason::Controller`] with the caller's partition
//! index. Neither counts as a fault of the target.
//!
//! Both refuse with `Busy` while the target is restarting: the glue is then
//! reloading its memory outside the kernel lock, and a second reload, or a
//! stop that the end of the first would undo, must not start meanwhile.
//!
//! **A partition that names itself** (the kernel allows it; the manifest
//! does not grant it) is treated like any other target: `PartitionStop`
//! stops it and `PartitionRestart` restarts it, whatever its fault policy,
//! and neither returns to the caller, whose vCPUs are torn down with the
//! rest of it. `PartitionStatus` on itself reports it running.
//!
//! Checks, in order: the slot ([`Status::InvalidCapability`]), the object
//! ([`Status::WrongType`]), the right ([`Status::NoRights`]), the target
//! partition exists ([`Status::InvalidCapability`]), its state
//! ([`Status::Busy`]). A refused call changes nothing but x0.

use hv_abi::hypercall::{Rights, RunState, Status, StopReason};

use super::super::dispatch::SUCCESS;
use super::super::{FaultPolicy, KernelState, Outcome, PartitionState, Step};
use crate::cap::PartitionId;
use crate::sched::VcpuId;
use hv_image::Object;

impl KernelState {
    /// The partition named by the capability in `slot` of `caller`'s table,
    /// if that capability names one and holds `right`.
    fn partition_cap(
        &self,
        caller: PartitionId,
        slot: u64,
        right: Rights,
    ) -> Result<PartitionId, Status> {
        let (target, _) = self.object_cap(caller, slot, right, |o| match o {
            Object::Partition(p) => PartitionId::of(p),
            _ => None,
        })?;
        self.partition(target).ok_or(Status::InvalidCapability)?;
        Ok(target)
    }

    /// Where `partition` is in its life, as the ABI encodes it.
    fn run_state(&self, partition: PartitionId) -> Option<RunState> {
        self.partition_state(partition).map(|state| match state {
            PartitionState::Active => RunState::Running,
            PartitionState::Stopped => RunState::Stopped,
            PartitionState::Restarting => RunState::Restarting,
        })
    }

    /// `PartitionStatus`.
    pub(in crate::state) fn partition_status(
        &self,
        cur: VcpuId,
        regs: &mut [u64; 8],
    ) -> Result<Step, Status> {
        let caller = self.partition_of(cur)?;
        let target = self.partition_cap(caller, regs[1], Rights::READ)?;
        let state = self.run_state(target).ok_or(Status::InvalidCapability)?;
        let history = self.history(target);
        *regs = [
            SUCCESS,
            state.to_register(),
            u64::from(history.faults),
            history.last_reason,
            u64::from(history.restarts),
            0,
            0,
            0,
        ];
        Ok(Step::CONTINUE)
    }

    /// `PartitionStop` (`how` = [`FaultPolicy::Stop`]) and
    /// `PartitionRestart` ([`FaultPolicy::Restart`]), made by the vCPU
    /// running on `core`.
    pub(in crate::state) fn partition_control(
        &mut self,
        core: usize,
        cur: VcpuId,
        regs: &mut [u64; 8],
        how: FaultPolicy,
    ) -> Result<Outcome, Status> {
        let caller = self.partition_of(cur)?;
        let target = self.partition_cap(caller, regs[1], Rights::CONTROL)?;
        let state = self
            .partition_state(target)
            .ok_or(Status::InvalidCapability)?;
        match (state, how) {
            (PartitionState::Restarting, _) => return Err(Status::Busy),
            (PartitionState::Stopped, FaultPolicy::Stop) => {
                regs[0] = SUCCESS;
                return Ok(Outcome::CONTINUE);
            }
            (PartitionState::Active, _) | (PartitionState::Stopped, FaultPolicy::Restart) => {}
        }
        regs[0] = SUCCESS;
        let reason = StopReason::Controller(caller.0);
        Ok(self.stop_or_restart(core, target, how, reason, regs))
    }
}
