// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Virtual machines: the exits a guest's monitor answers, the `Vcpu` calls,
//! virtual interrupts and WFI.
//!
//! A virtual machine partition's vCPUs run a guest at EL1. What the kernel
//! does not handle itself becomes an **exit**: the glue describes it
//! ([`VmExit::describe`], or the `hvc` path for a function ID that is not a
//! Bulkhead hypercall) and [`KernelState::vm_exit`] sends it, as a call, on
//! the partition's exit endpoint, which only its monitor serves (the layout
//! is `hv_abi::vm`'s). The vCPU waits ([`VcpuState::ExitSending`] while no
//! monitor vCPU has taken the message, [`VcpuState::ExitReply`] after) until
//! the monitor answers with `Reply` or `ReplyRecv`; the answer is applied
//! (a register written, x0..x3 set) instead of being delivered as a message.
//! The fast IPC path never handles such an answer (it looks only at
//! [`VcpuState::AwaitingReply`]), so everything here is the general path.
//!
//! The monitor holds a `Vcpu` capability for each vCPU of its guest:
//! - `VcpuStart` (CONTROL): an [`VcpuState::Off`] vCPU starts at x2 with
//!   x0 = x3 (the glue resets the rest of it: [`VmEntry::start`]);
//! - `VcpuStop` (CONTROL): it is off, wherever it was; an exit it had sent
//!   is withdrawn, its pending interrupts dropped;
//! - `VcpuInject` (WRITE): virtual interrupt x2 becomes pending; a halted
//!   vCPU wakes, a running one's core is kicked to deliver it;
//! - `VcpuRead`, `VcpuWrite` (READ, WRITE): a register of a vCPU that is
//!   off or waits for its monitor's answer (x0..x7 here, the rest through
//!   [`Effect::VcpuRegister`]);
//! - `VcpuStatus` (READ): where it is ([`VcpuRunState`]).
//!
//! **Interrupts.** The state keeps each vCPU's pending virtual interrupts
//! (INTIDs below [`VIRTUAL_INTIDS`]) until the glue enters the vCPU and
//! takes them ([`KernelState::take_vm_entry`]) to write them into the GIC's
//! list registers; what sits in the list registers is the glue's. A trapped
//! WFI ([`KernelState::vm_halt`]) halts the vCPU unless an interrupt is
//! pending here or, as the glue says, in the list registers; injecting into
//! a halted vCPU, an SGI from another vCPU of its guest
//! ([`KernelState::vm_sgi`]) and its own virtual timer firing
//! ([`KernelState::vm_timer`]) wake it.
//!
//! **Teardown.** When the monitor's partition stops or restarts, the guest
//! vCPUs waiting for its answers are turned off (its next incarnation starts
//! the guest afresh); when the guest's partition stops, its exits are
//! withdrawn. Restarting a virtual machine partition leaves its vCPUs off.

mod calls;
mod exit;

use hv_abi::vm::{EXIT_SMC, EXIT_WORDS, RESUME_SET_RESULT, RESUME_WRITE_REGISTER, VIRTUAL_INTIDS};

use super::dispatch::SUCCESS;
use super::ipc::Holds;
use super::{KernelState, Next, Outcome, PartitionState, Step, VcpuState};
use crate::cap::EndpointId;
use crate::sched::VcpuId;

pub use exit::{Access, ICC_SGI1R_EL1, VmExit, sgi_targets};

/// Words of pending-interrupt bits per vCPU.
pub(super) const PENDING_WORDS: usize = VIRTUAL_INTIDS as usize / 64;
const _: () = assert!(VIRTUAL_INTIDS.is_multiple_of(64));
// `vm_vcpus` and `vm_entries` have a bit per vCPU.
const _: () = assert!(hv_image::MAX_SYSTEM_VCPUS <= 32);

/// What the glue must do when it next enters a virtual machine's vCPU,
/// taken from the state by [`KernelState::take_vm_entry`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VmEntry {
    /// Reset the vCPU to start at this IPA (EL1h, MMU off, interrupts
    /// masked, every register but x0..x7 zero, its EL1 state at reset):
    /// `VcpuStart`.
    pub start: Option<u64>,
    /// Write this general register (8 to 30; the state already wrote x0..x7
    /// into what the vCPU resumes with): the monitor's answer to a load.
    pub write: Option<(u8, u64)>,
    /// Virtual interrupts that became pending (bit n of word n / 64: INTID n).
    pub irqs: [u64; PENDING_WORDS],
    /// For each SGI in `irqs`, the guest's vCPUs that sent it (bit n: vCPU
    /// n), for the GICv2 list registers, which name an SGI's source.
    pub sgi_sources: [u8; 16],
}

impl VmEntry {
    /// Nothing to do.
    pub const NONE: Self = Self {
        start: None,
        write: None,
        irqs: [0; PENDING_WORDS],
        sgi_sources: [0; 16],
    };

    /// Whether there is nothing to do.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        // Field by field: the derived comparison is a byte-wise `memcmp`.
        self.start.is_none()
            && self.write.is_none()
            && self.irqs.iter().all(|w| *w == 0)
            && self.sgi_sources.iter().all(|s| *s == 0)
    }
}

/// What the kernel keeps for one virtual machine vCPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct VmVcpu {
    /// Work for the glue at its next entry.
    entry: VmEntry,
    /// Its exit message while it is queued on its exit endpoint.
    pub(super) message: [u64; EXIT_WORDS],
    /// How the answer to its exit completes it, for a load or `mrs`.
    pub(super) access: Option<Access>,
}

impl VmVcpu {
    pub(super) const EMPTY: Self = Self {
        entry: VmEntry::NONE,
        message: [0; EXIT_WORDS],
        access: None,
    };

    fn has_pending_irq(&self) -> bool {
        self.entry.irqs.iter().any(|w| *w != 0)
    }
}

/// The x0..x7 a monitor vCPU receives for `exit` of the guest's vCPU
/// `index`: a call's message of [`EXIT_WORDS`] words, badge = the index.
pub(super) fn exit_message(index: u8, words: &[u64; EXIT_WORDS]) -> [u64; 8] {
    [
        SUCCESS,
        u64::from(index),
        EXIT_WORDS as u64,
        words[0],
        words[1],
        words[2],
        words[3],
        words[4],
    ]
}

impl KernelState {
    /// Whether `v` belongs to a virtual machine.
    #[inline(always)]
    #[must_use]
    pub fn is_vm(&self, v: VcpuId) -> bool {
        v.index() < 32 && self.vm_vcpus & (1 << v.index()) != 0
    }

    /// The exit endpoint of `v`'s partition, if it is a virtual machine's.
    pub(super) fn exits_of(&self, v: VcpuId) -> Option<EndpointId> {
        self.vcpu(v)
            .and_then(|x| self.partition(x.partition))
            .and_then(|p| p.exits)
    }

    /// `v`'s index in its partition.
    pub(super) fn index_in_partition(&self, v: VcpuId) -> u8 {
        let first = self
            .vcpu(v)
            .and_then(|x| self.partition(x.partition))
            .map_or(0, |p| p.first_vcpu);
        v.byte().saturating_sub(first)
    }

    /// The work the glue must do before it enters `v` (a virtual machine's
    /// vCPU about to run on its core), if there may be some; `None` for any
    /// other vCPU, and for one with nothing to do. Taking it clears it.
    #[inline(always)]
    pub fn take_vm_entry(&mut self, v: VcpuId) -> Option<VmEntry> {
        let bit = 1u32.checked_shl(u32::from(v.byte()))?;
        if self.vm_entries & bit == 0 {
            return None;
        }
        self.vm_entries &= !bit;
        let vm = self.vm.get_mut(v.index())?;
        Some(core::mem::replace(&mut vm.entry, VmEntry::NONE))
    }

    /// Whether vCPU `v`'s entry work is empty or marked for the glue (an
    /// invariant: unmarked work would never be done).
    #[cfg(any(test, feature = "checks"))]
    pub(super) fn vm_entry_marked(&self, v: usize) -> bool {
        let marked = u32::try_from(v)
            .ok()
            .and_then(|v| 1u32.checked_shl(v))
            .is_some_and(|bit| self.vm_entries & bit != 0);
        marked || self.vm.get(v).is_none_or(|vm| vm.entry.is_empty())
    }

    /// Forgets everything the kernel keeps for virtual machine vCPU `v`
    /// (its entry work, exit and access).
    pub(super) fn clear_vm(&mut self, v: VcpuId) {
        if let Some(vm) = self.vm.get_mut(v.index()) {
            *vm = VmVcpu::EMPTY;
        }
        if let Some(bit) = 1u32.checked_shl(u32::from(v.byte())) {
            self.vm_entries &= !bit;
        }
    }

    /// `v`'s entry work, to add to (which marks it for the glue).
    pub(super) fn vm_entry_mut(&mut self, v: VcpuId) -> Option<&mut VmEntry> {
        self.vm_entries |= 1u32.checked_shl(u32::from(v.byte()))?;
        self.vm.get_mut(v.index()).map(|vm| &mut vm.entry)
    }

    /// The running vCPU on `core` (a virtual machine's) exits to its
    /// monitor: `exit` is sent as a call on its exit endpoint, and the vCPU
    /// waits for the answer. `regs` are its x0..x7 (kept: the answer
    /// completes the instruction, it does not replace them); on return,
    /// those of what runs next. A vCPU of a service, or one stopped from
    /// another core meanwhile, only reschedules.
    pub fn vm_exit(&mut self, core: usize, exit: VmExit, regs: &mut [u64; 8]) -> Outcome {
        match self.vm_exit_fast(core, &exit, regs) {
            Some(step) => step.into(),
            None => self.vm_exit_general(core, exit, regs),
        }
    }

    /// The fast path of [`Self::vm_exit`] alone, for the glue's hot path:
    /// if it applies (see `fastpath.rs`), the exit is sent, `regs` hold the
    /// x0..x7 of the monitor's vCPU it returns, which now runs on `core`,
    /// and nothing else needs doing. Otherwise nothing changed and the glue
    /// calls [`Self::vm_exit`].
    #[inline(always)]
    pub fn vm_exit_to_waiting_monitor(
        &mut self,
        core: usize,
        exit: &VmExit,
        regs: &mut [u64; 8],
    ) -> Option<VcpuId> {
        match self.vm_exit_fast(core, exit, regs)?.next {
            Next::Switch { to, .. } => Some(to),
            // The fast path only ever switches.
            Next::Continue | Next::Idle { .. } => None,
        }
    }

    /// [`Self::vm_exit`] without its fast path (`fastpath.rs`), which must
    /// do exactly the same where it applies.
    pub(super) fn vm_exit_general(
        &mut self,
        core: usize,
        exit: VmExit,
        regs: &mut [u64; 8],
    ) -> Outcome {
        let Some(cur) = self.current(core) else {
            return self.reschedule(core, regs);
        };
        let Some(e) = self.exits_of(cur) else {
            return self.reschedule(core, regs);
        };
        let mut exit = exit;
        if exit.is_bare_smc() {
            exit = VmExit::call(EXIT_SMC, regs);
        }
        self.set_regs(cur, *regs);
        if let Some(vm) = self.vm.get_mut(cur.index()) {
            vm.access = exit.access;
            vm.message = exit.words;
        }
        let msg = exit_message(self.index_in_partition(cur), &exit.words);
        let Some(receiver) = self.first_waiting(e, Holds::Receivers) else {
            let monitor_down = self
                .endpoints
                .get(e.index())
                .and_then(|ep| ep.server)
                .and_then(|p| self.partition(p))
                .is_some_and(|p| p.state != PartitionState::Active);
            let state = if monitor_down {
                VcpuState::Off
            } else {
                self.enqueue_endpoint(e, cur, Holds::Senders);
                VcpuState::ExitSending { endpoint: e }
            };
            self.set_state(cur, state);
            let next = self.switch_away(core, Some(cur), regs);
            return Step { next, kick: 0 }.into();
        };
        self.dequeue_endpoint(e, receiver);
        self.set_state(cur, VcpuState::ExitReply { server: receiver });
        self.set_reply_to(receiver, Some(cur));
        if let Some(step) = self.direct_switch(core, cur, receiver, regs, msg) {
            return step.into();
        }
        let kick = self.wake(receiver, msg, core);
        let next = self.switch_away(core, Some(cur), regs);
        Step { next, kick }.into()
    }

    /// The exit message of `sender`, queued on its exit endpoint, which the
    /// running `cur` takes: `regs` become the message and `sender` waits for
    /// `cur`'s answer.
    pub(super) fn take_exit(&mut self, cur: VcpuId, sender: VcpuId, regs: &mut [u64; 8]) {
        let words = self.vm.get(sender.index()).map(|vm| vm.message);
        *regs = exit_message(self.index_in_partition(sender), &words.unwrap_or_default());
        self.set_state(sender, VcpuState::ExitReply { server: cur });
        self.set_reply_to(cur, Some(sender));
    }

    /// What `caller` resumes with when it gets the reply `msg` (x0..x7 as a
    /// message delivers them): the message itself for a caller, or, for a
    /// virtual machine vCPU waiting for its monitor's answer, its own
    /// registers with the answer applied (word 0 says how; a register above
    /// x7 is left for the glue in [`VmEntry::write`]).
    pub(super) fn reply_registers(&mut self, caller: VcpuId, msg: [u64; 8]) -> [u64; 8] {
        if !matches!(self.vcpu_state(caller), Some(VcpuState::ExitReply { .. })) {
            return msg;
        }
        let mut regs = [0; 8];
        self.answer_exit(caller, &msg, &mut regs);
        regs
    }

    /// Writes into `regs` what `caller`, a virtual machine vCPU waiting for
    /// its monitor's answer `msg` to its exit, resumes with (see
    /// [`Self::reply_registers`]).
    #[inline(always)]
    pub(super) fn answer_exit(&mut self, caller: VcpuId, msg: &[u64; 8], regs: &mut [u64; 8]) {
        // `copy_from_slice`: it promises the compiler no overlap, which
        // saves a call to `memmove`.
        match self.regs.get(caller.index()) {
            Some(saved) => regs.copy_from_slice(saved),
            None => *regs = [0; 8],
        }
        let Some(vm) = self.vm.get_mut(caller.index()) else {
            return;
        };
        let flags = msg[3];
        let access = vm.access.take();
        let mut write = None;
        if flags & RESUME_SET_RESULT != 0 {
            regs[..4].copy_from_slice(&msg[4..8]);
        }
        if flags & RESUME_WRITE_REGISTER != 0
            && let Some(access) = access
        {
            let value = access.complete(msg[4]);
            match access.register {
                r @ 0..=7 => {
                    if let Some(slot) = regs.get_mut(usize::from(r)) {
                        *slot = value;
                    }
                }
                r @ 8..=30 => write = Some((r, value)),
                _ => {}
            }
        }
        if let Some(write) = write
            && let Some(entry) = self.vm_entry_mut(caller)
        {
            entry.write = Some(write);
        }
    }

    /// The running virtual machine vCPU on `core` executed WFI: it halts
    /// until an interrupt is pending for it, unless one already is (here,
    /// or, as `pending_in_hardware` says, in its list registers or as its
    /// fired timer). `regs` are its x0..x7; on return, those of what runs
    /// next.
    pub fn vm_halt(
        &mut self,
        core: usize,
        pending_in_hardware: bool,
        regs: &mut [u64; 8],
    ) -> Outcome {
        let Some(cur) = self.current(core) else {
            return self.reschedule(core, regs);
        };
        let pending = self
            .vm
            .get(cur.index())
            .is_some_and(VmVcpu::has_pending_irq);
        if !self.is_vm(cur) || pending || pending_in_hardware {
            return self.settle(core, regs, 0).into();
        }
        self.set_regs(cur, *regs);
        self.set_state(cur, VcpuState::Halted);
        Step {
            next: self.switch_away(core, Some(cur), regs),
            kick: 0,
        }
        .into()
    }

    /// The virtual timers of `vcpus` (bit n: vCPU n; virtual machines'
    /// vCPUs pinned to `core`) fired: the glue has made each one's interrupt
    /// pending in the list registers it keeps for it, or will when it loads
    /// it again. Those halted wake. `regs` are the x0..x7 of what runs on
    /// `core`.
    #[inline]
    pub fn vm_timer(&mut self, core: usize, vcpus: u64, regs: &mut [u64; 8]) -> Outcome {
        // The usual case: one vCPU, halted on this core, which idles.
        if vcpus.is_power_of_two()
            && let Some(v) = VcpuId::new(vcpus.trailing_zeros() as usize)
            && let Some(step) = self.wake_on_idle_core(core, v, regs)
        {
            return step.into();
        }
        self.vm_timer_general(core, vcpus, regs)
    }

    /// [`Self::vm_timer`] past its usual case (which must end the same).
    #[inline(never)]
    pub(super) fn vm_timer_general(
        &mut self,
        core: usize,
        vcpus: u64,
        regs: &mut [u64; 8],
    ) -> Outcome {
        let mut kick = 0;
        // Bit by bit, lowest first: the vCPUs there are (below 64).
        let count = self.vcpu_count.min(64);
        let mut rest = vcpus & 1u64.checked_shl(count as u32).map_or(u64::MAX, |b| b - 1);
        while rest != 0 {
            let v = VcpuId::new(rest.trailing_zeros() as usize);
            rest &= rest - 1;
            let Some(v) = v else {
                continue;
            };
            if self.vcpu_state(v) == Some(VcpuState::Halted) {
                kick |= self.make_ready(v, core);
            }
        }
        self.settle(core, regs, kick).into()
    }

    /// Marks `intid` as passed through to a virtual machine (at boot, from
    /// the manifest): only [`Self::vm_interrupt`] makes it pending, and a
    /// monitor may not inject it.
    pub fn pass_through(&mut self, intid: u32) {
        if let Some(word) = self.passthrough.get_mut((intid / 64) as usize) {
            *word |= 1 << (intid % 64);
        }
    }

    /// Whether `intid` is passed through to a virtual machine.
    pub(super) fn is_passed_through(&self, intid: u32) -> bool {
        self.passthrough
            .get((intid / 64) as usize)
            .is_some_and(|word| word & (1 << (intid % 64)) != 0)
    }

    /// Interrupt `intid` of a device passed through to a virtual machine
    /// fired on `core`: it becomes pending for the machine's vCPU `v` (the
    /// glue links it to the physical interrupt, which stays active until the
    /// guest completes it), which wakes if it halted, and whose core, if
    /// another, is kicked. `regs` are the x0..x7 of what runs on `core`.
    ///
    /// `None`, and nothing changes, if nobody can take it: `intid` is not
    /// passed through, `v` is not a virtual machine's vCPU of an active
    /// partition, or it is off (the glue then masks the interrupt until the
    /// vCPU is started again).
    pub fn vm_interrupt(
        &mut self,
        core: usize,
        v: VcpuId,
        intid: u32,
        regs: &mut [u64; 8],
    ) -> Option<Outcome> {
        let takes = core < self.core_count
            && self.is_passed_through(intid)
            && self.is_vm(v)
            && self.active_target(v).is_ok()
            && !matches!(
                self.vcpu_state(v),
                Some(VcpuState::Off | VcpuState::Stopped) | None
            );
        if !takes {
            return None;
        }
        let kick = self.pend(v, intid, None, core);
        Some(self.settle(core, regs, kick).into())
    }

    /// The running virtual machine vCPU on `core` wrote `value` to
    /// ICC_SGI1R_EL1: SGI `value[27:24]` becomes pending for the vCPUs of
    /// its guest it names (the target list of Aff0 values, levels 1 to 3
    /// zero, or with IRM every vCPU but itself). The glue stepped over the
    /// instruction. `regs` are its x0..x7.
    pub fn vm_sgi(&mut self, core: usize, value: u64, regs: &mut [u64; 8]) -> Outcome {
        let Some(cur) = self.current(core).filter(|&v| self.is_vm(v)) else {
            return self.reschedule(core, regs);
        };
        let Some(partition) = self
            .vcpu(cur)
            .and_then(|v| self.partition(v.partition))
            .copied()
        else {
            return self.reschedule(core, regs);
        };
        let intid = ((value >> 24) & 0xf) as u32;
        let me = self.index_in_partition(cur);
        let targets = sgi_targets(value, partition.vcpu_count, me);
        let mut kick = 0;
        for index in 0..partition.vcpu_count {
            if targets & (1 << index) != 0 {
                let Some(target) = VcpuId::of(partition.first_vcpu.saturating_add(index)) else {
                    continue;
                };
                kick |= self.pend(target, intid, Some(me), core);
            }
        }
        self.settle(core, regs, kick).into()
    }

    /// Makes `intid` pending for `v` (from vCPU `source` of its guest, for
    /// an SGI) and wakes it: a halted `v` becomes ready; a running one's
    /// core (if not `here`) is kicked to deliver it. Returns the kick.
    pub(super) fn pend(&mut self, v: VcpuId, intid: u32, source: Option<u8>, here: usize) -> u8 {
        if !self.is_vm(v) {
            return 0;
        }
        let Some(entry) = self.vm_entry_mut(v) else {
            return 0;
        };
        let word = (intid / 64) as usize;
        if let Some(bits) = entry.irqs.get_mut(word) {
            *bits |= 1 << (intid % 64);
        }
        if let (Some(source), Some(sources)) = (source, entry.sgi_sources.get_mut(intid as usize))
            && source < 8
        {
            *sources |= 1 << source;
        }
        match self.vcpu(v).map(|x| (x.state, x.core)) {
            Some((VcpuState::Halted, _)) => self.make_ready(v, here),
            Some((VcpuState::Running, core)) if usize::from(core) != here => 1 << (core % 8),
            _ => 0,
        }
    }
}
