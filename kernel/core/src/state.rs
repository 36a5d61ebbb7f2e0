// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The kernel's whole state, and the deterministic step functions over it.
//!
//! [`KernelState`] holds everything the kernel decides with: partitions,
//! vCPUs, capability tables ([`CapSpace`]), endpoints, notifications,
//! interrupt bindings and each core's current vCPU and ready queue. It is
//! built once from a [`Seed`] (plain data that [`crate::lower::with_seed`]
//! makes from the compiled manifest), then changed only by the step functions, which the
//! glue calls with the one kernel lock held:
//!
//! | event | step |
//! |---|---|
//! | HVC from the running vCPU | [`KernelState::hypercall`] |
//! | a bound interrupt fired | [`KernelState::interrupt`] |
//! | the core's preemption timer | [`KernelState::tick`] |
//! | the running vCPU faulted | [`KernelState::fault`] |
//! | an idle core woke, or a kick arrived | [`KernelState::idle`], [`KernelState::reschedule`] |
//! | a trapped WFI/WFE | [`KernelState::yield_vcpu`]; a virtual machine's WFI: [`KernelState::vm_halt`] |
//! | a virtual machine's exit the kernel does not handle | [`KernelState::vm_exit`] |
//! | a virtual machine's SGI (`ICC_SGI1R_EL1`) | [`KernelState::vm_sgi`] |
//! | a virtual machine's virtual timer fired | [`KernelState::vm_timer`] |
//! | a tick: what to reload on this core | [`KernelState::reload_work`] |
//! | a piece of a restarted partition's memory is reloaded | [`KernelState::reload_progress`] (all of it: [`KernelState::restart_done`]) |
//! | the glue could not reload it | [`KernelState::restart_abandoned`] |
//! | the timer tick, for the time | [`KernelState::advance_clock`] |
//! | before any step of a timed system: the counter | [`KernelState::clock_in`] |
//! | the timer, at a window's end or a budget's event | [`KernelState::time_event`] (program it for [`KernelState::next_event`]) |
//!
//! Each takes the core it runs on and that core's live x0..x7, and returns an
//! [`Outcome`]: what the core runs next (with `regs` then holding that
//! vCPU's x0..x7), which other cores to kick, and at most one [`Effect`] for
//! the glue to carry out. The state keeps x0..x7 of every vCPU that is not
//! running and writes results into them as it wakes vCPUs (a woken receiver's
//! x0 = status, x1 = badge, x2 = message info, x3..x7 = words); the glue
//! saves and restores the rest of the register file itself.
//!
//! Nothing here panics, allocates, or trusts a register: every table access
//! is a checked `get`, and a bad argument returns its [`Status`] in x0 having
//! changed nothing else. [`KernelState::check_invariants`] states, as code,
//! what must hold between any two steps.
//!
//! Submodules: `seed` (boot), `dispatch` (decoding hypercalls; capability
//! and log calls), `fastpath` (`Call` and `ReplyRecv` between two vCPUs of
//! one core), `ipc` (endpoints), `reply` (reply objects: replies kept for
//! later), `notify` (notifications, interrupts), `schedule` (ready queues,
//! preemption, kicks), `timing` (windows and budgets), `fault` (stop and restart), `vm` (virtual machines:
//! exits to monitors, `Vcpu` calls, virtual interrupts, WFI) and
//! `invariants`; [`properties`] states the security properties over it.

use hv_abi::hypercall::{Badge, Status, StopReason};

use crate::MAX_CPUS;
use hv_image::{
    FaultPolicy, MAX_ENDPOINTS, MAX_IRQS, MAX_NOTIFICATIONS, MAX_PARTITIONS, MAX_REPLIES,
    MAX_SYSTEM_VCPUS,
};

use crate::cap::{CapSpace, EndpointId, NotificationId, PartitionId, SlotRef};
use crate::sched::{Links, RunQueue, VcpuId};
use hv_image::Capability;

mod dispatch;
mod domains;
mod fastpath;
mod fault;
#[cfg(any(test, feature = "checks"))]
mod invariants;
mod ipc;
mod klog;
mod notify;
#[cfg(any(test, feature = "checks"))]
pub mod properties;
mod reply;
mod schedule;
mod seed;
mod timing;
mod vm;

pub use domains::Domains;
pub use fastpath::{FastCall, fast_candidate};
pub use fault::backoff::{
    BACKOFF_FIRST_TICKS, BACKOFF_MAX_TICKS, GOOD_RUN_TICKS, LET_GO_TICKS, RELOAD_STEP_BYTES,
    RELOAD_TICK_PERCENT, RESTARTS_AT_ONCE, ReloadWork, RestartPlan, backoff_ticks,
};
use ipc::Endpoint;
pub use klog::{
    Admission, KERNEL_LOG_BYTES, KERNEL_LOG_RESERVE, LOG_LINES_PER_WINDOW, LOG_WINDOW_TICKS,
};
pub use notify::{HeldIrq, IRQ_FIRES_PER_TICK};
use notify::{IrqBinding, Notification};
use reply::ReplyObject;
pub use seed::{EndpointSeed, FaultSignalSeed, IrqSeed, PartitionSeed, ReplySeed, Seed, SeedError};
pub use timing::{MAX_COUNTER_HZ, TimeProblem, TimeSeed};
pub use vm::{Access, ICC_SGI1R_EL1, VmEntry, VmExit, sgi_targets};

/// The kernel's timer ticks per second on each core: the unit of the
/// state's clock ([`KernelState::advance_clock`]), in which log quotas and
/// restart back-offs count.
pub const TICK_HZ: u64 = 100;

/// Bytes one `Log` hypercall carries (x3..x7).
pub const LOG_BYTES: usize = hv_abi::hypercall::LOG_BYTES;

// `Outcome::kick` is a `u8` bitmask of cores.
const _: () = assert!(MAX_CPUS <= 8);

/// Where a partition is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PartitionState {
    /// Its vCPUs run.
    Active,
    /// It faulted under [`FaultPolicy::Stop`]: it never runs again; its
    /// capabilities stay.
    Stopped,
    /// It faulted under [`FaultPolicy::Restart`]: its capability table is
    /// back to its seed and its vCPUs wait for [`KernelState::restart_done`].
    Restarting,
}

/// What a vCPU is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VcpuState {
    /// It is some core's current vCPU.
    Running,
    /// It is in its core's ready queue.
    Ready,
    /// It is queued on `endpoint` to send (`call`: and then wait for a
    /// reply). The badge of the capability it sent through is captured when
    /// it sent, as seL4 does, and kept beside its registers.
    Sending {
        /// The endpoint.
        endpoint: EndpointId,
        /// It called, so it waits for a reply once its message is taken.
        call: bool,
    },
    /// It is queued on `endpoint` to receive.
    Receiving {
        /// The endpoint.
        endpoint: EndpointId,
        /// Where a capability sent with the message it takes may land.
        accept: ReceiveSlot,
    },
    /// It called and `server` took the message; it waits for the reply.
    AwaitingReply {
        /// The vCPU that owes the reply.
        server: VcpuId,
    },
    /// It waits on `notification` for bits.
    Waiting {
        /// The notification.
        notification: NotificationId,
    },
    /// Its partition is stopped or restarting.
    Stopped,
    /// A virtual machine's vCPU that is off: not started yet, or stopped by
    /// its monitor (`VcpuStop`, PSCI `CPU_OFF`). Only `VcpuStart` makes it
    /// run.
    Off,
    /// A virtual machine's vCPU waiting for an interrupt (a trapped WFI).
    Halted,
    /// A virtual machine's vCPU whose exit message waits on `endpoint` for
    /// its monitor to receive it (its message is in its [`vm::VmVcpu`]).
    ExitSending {
        /// The exit endpoint.
        endpoint: EndpointId,
    },
    /// A virtual machine's vCPU whose exit `server` (a vCPU of its monitor)
    /// received; it waits for the answer.
    ExitReply {
        /// The vCPU that owes the answer.
        server: VcpuId,
    },
}

/// The slot of its partition's table that a receiving vCPU named (in the
/// capability field of `Recv`'s or `ReplyRecv`'s x2) for a capability sent
/// with the message it takes, or none: a message carrying a capability to a
/// receiver that named none, or whose slot is no longer empty, is refused.
///
/// # Invariants
/// The slot is below [`hv_image::MAX_CAPS`], or the value is
/// [`ReceiveSlot::NONE`]; [`ReceiveSlot::new`] is the only other way to make
/// one. One byte, so that [`VcpuState`] stays three.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReceiveSlot(u8);

impl ReceiveSlot {
    /// It accepts no capability.
    pub const NONE: Self = Self(u8::MAX);

    /// Slot `slot` (a raw register value), if it is in range.
    #[must_use]
    pub const fn new(slot: u64) -> Option<Self> {
        if slot < hv_image::MAX_CAPS as u64 {
            Some(Self(slot as u8))
        } else {
            None
        }
    }

    /// The slot named, if any.
    #[must_use]
    pub const fn slot(self) -> Option<u64> {
        if (self.0 as usize) < hv_image::MAX_CAPS {
            Some(self.0 as u64)
        } else {
            None
        }
    }
}

const _: () = assert!(hv_image::MAX_CAPS < u8::MAX as usize);

/// What the core runs after a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Next {
    /// The same vCPU carries on; `regs` holds its updated x0..x7.
    Continue,
    /// Save `from`'s registers (if `Some`: `None` means its partition
    /// stopped, so they are not needed) and run `to`, whose x0..x7 are now in
    /// `regs`.
    Switch {
        /// The vCPU that ran, if its registers must be kept.
        from: Option<VcpuId>,
        /// The vCPU to run.
        to: VcpuId,
    },
    /// Nothing is ready: save `from`'s registers (if `Some`) and idle until
    /// an interrupt or a kick.
    Idle {
        /// The vCPU that ran, if its registers must be kept.
        from: Option<VcpuId>,
    },
}

/// Something only the glue can do, asked for by a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Effect {
    /// Unmask (or deactivate) this interrupt at the GIC: its owner has
    /// acknowledged it.
    UnmaskIrq(u32),
    /// Append `bytes[..len]` to the kernel log, from `partition`.
    Log {
        /// The partition that logged.
        partition: PartitionId,
        /// The bytes; only the first `len` count.
        bytes: [u8; LOG_BYTES],
        /// How many bytes count (at most [`LOG_BYTES`]).
        len: u8,
    },
    /// `partition` faulted and is now stopped: report it.
    Fault {
        /// The partition.
        partition: PartitionId,
        /// Who stopped it: the glue (an exception), a controller, or the
        /// partition's own `Fault`.
        reason: StopReason,
    },
    /// Read (`write` is `None`; the value goes in x1 of what runs on this
    /// core, which is the caller, with x0 = `Success`) or write register
    /// `register` (8 to 30, or [`hv_abi::vm::REGISTER_PC`] or
    /// [`hv_abi::vm::REGISTER_PSTATE`]) of `vcpu`, a virtual machine's vCPU
    /// that no core runs: the state holds only x0..x7 of a vCPU, the glue
    /// the rest.
    VcpuRegister {
        /// The vCPU.
        vcpu: VcpuId,
        /// The register.
        register: u8,
        /// The value to write, if it is a write.
        write: Option<u64>,
    },
    /// `partition` faulted and is restarting: report it, wait until no core
    /// runs its old vCPUs any more (the cores in this outcome's `kick` may
    /// still be in them until they take the kick), reload its memory, reset
    /// its vCPUs' other registers and entry points, then call
    /// [`KernelState::restart_done`].
    Restart {
        /// The partition.
        partition: PartitionId,
        /// Who restarted it, as for [`Effect::Fault`].
        reason: StopReason,
    },
}

/// The result of a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Outcome {
    /// What this core runs now.
    pub next: Next,
    /// Other cores to interrupt (bit n: core n), because a vCPU pinned there
    /// became ready with a higher priority than what it runs, or what it
    /// runs stopped. Each should call [`KernelState::reschedule`].
    pub kick: u8,
    /// What else the glue must do.
    pub effect: Option<Effect>,
}

impl Outcome {
    /// The same vCPU carries on; nothing else to do.
    pub const CONTINUE: Self = Self {
        next: Next::Continue,
        kick: 0,
        effect: None,
    };
}

/// What a step decided for its core, before any effect. The IPC paths pass
/// this rather than an [`Outcome`]: it fits in two registers, while an
/// `Outcome` (~56 bytes, for [`Effect::Log`]) is copied through memory at
/// every return.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Step {
    next: Next,
    kick: u8,
}

impl Step {
    const CONTINUE: Self = Self {
        next: Next::Continue,
        kick: 0,
    };

    /// The outcome of this step with `effect`.
    const fn with(self, effect: Option<Effect>) -> Outcome {
        Outcome {
            next: self.next,
            kick: self.kick,
            effect,
        }
    }
}

impl From<Step> for Outcome {
    fn from(step: Step) -> Self {
        step.with(None)
    }
}

/// A partition's scheduling facts and life state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Partition {
    state: PartitionState,
    policy: FaultPolicy,
    /// Its vCPUs are `first_vcpu..first_vcpu + vcpu_count`.
    first_vcpu: u8,
    vcpu_count: u8,
    priority: u8,
    /// If it is a virtual machine: the endpoint its exits go to.
    exits: Option<EndpointId>,
}

impl Partition {
    const EMPTY: Self = Self {
        state: PartitionState::Stopped,
        policy: FaultPolicy::Stop,
        first_vcpu: 0,
        vcpu_count: 0,
        priority: 0,
        exits: None,
    };

    fn vcpus(self) -> impl Iterator<Item = VcpuId> {
        (0..self.vcpu_count)
            .filter_map(move |i| self.first_vcpu.checked_add(i).and_then(VcpuId::of))
    }
}

/// A vCPU: where it runs and what it does. Eight bytes, so that the IPC
/// paths index the table with a shift; its saved registers live apart, in
/// [`KernelState`]'s `regs`, because the fast path never touches them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(C, align(8))]
struct Vcpu {
    partition: PartitionId,
    /// The core it is pinned to.
    core: u8,
    priority: u8,
    state: VcpuState,
    /// The caller it owes a reply to (seL4's implicit reply capability).
    reply_to: Option<VcpuId>,
}

const _: () = assert!(size_of::<Vcpu>() == 8);

impl Vcpu {
    const EMPTY: Self = Self {
        partition: PartitionId(0),
        core: 0,
        priority: 0,
        state: VcpuState::Stopped,
        reply_to: None,
    };
}

/// x0..x7 a vCPU starts with: its index in its partition in x0, so that the
/// vCPUs of one program can tell themselves apart.
fn initial_regs(index: u8) -> [u64; 8] {
    [u64::from(index), 0, 0, 0, 0, 0, 0, 0]
}

/// A core: what it runs and what is ready to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[repr(C)]
struct Core {
    current: Option<VcpuId>,
    ready: RunQueue,
}

impl Core {
    const EMPTY: Self = Self {
        current: None,
        ready: RunQueue::new(),
    };
}

/// Everything the kernel decides with; see the module documentation.
///
/// About 60 KiB: the kernel glue should keep it in a `static` (it can start
/// as [`KernelState::empty`] and be filled in place by
/// [`KernelState::boot`]) rather than build it on a boot stack.
///
/// `repr(C)` only to fix the order: what the IPC fast path reads comes first,
/// at offsets small enough for AArch64 loads to encode, and the large
/// capability tables last.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct KernelState {
    vcpus: [Vcpu; MAX_SYSTEM_VCPUS],
    /// Each vCPU's place in the one queue it is in.
    links: Links,
    endpoints: [Endpoint; MAX_ENDPOINTS],
    endpoint_count: usize,
    vcpu_count: usize,
    core_count: usize,
    partition_count: usize,
    notification_count: usize,
    irq_count: usize,
    /// The system has a schedule or budgets (`timing`); if not, nothing
    /// time-related is done.
    timed: bool,
    cores: [Core; MAX_CPUS],
    /// Each vCPU's x0..x7, valid whenever it is not running.
    regs: [[u64; 8]; MAX_SYSTEM_VCPUS],
    /// The badge each sending vCPU sent with (see [`VcpuState::Sending`]).
    badges: [Badge; MAX_SYSTEM_VCPUS],
    partitions: [Partition; MAX_PARTITIONS],
    notifications: [Notification; MAX_NOTIFICATIONS],
    irqs: [IrqBinding; MAX_IRQS],
    replies: [ReplyObject; MAX_REPLIES],
    reply_count: usize,
    /// What has happened to each partition (faults, restarts, the last
    /// reason), for `PartitionStatus`.
    history: [fault::History; MAX_PARTITIONS],
    /// Each partition's restart streak and back-off.
    backoff: [fault::backoff::Backoff; MAX_PARTITIONS],
    /// The kernel's ticks since boot, as the glue last said.
    clock: u64,
    caps: CapSpace,
    /// Which vCPUs belong to virtual machines (bit n: vCPU n), so the glue
    /// can tell in one load whether a vCPU it enters needs [`VmEntry`] work.
    vm_vcpus: u32,
    /// Which virtual machine vCPUs may have [`VmEntry`] work (bit n: vCPU
    /// n): set whenever a vCPU's entry gains some, cleared when the glue
    /// takes it, so the common entry, with nothing to do, costs one test.
    vm_entries: u32,
    /// Interrupts passed through to virtual machines (bit n of word n / 64:
    /// INTID n): only the kernel delivers them, linked to the physical one.
    passthrough: [u64; vm::PENDING_WORDS],
    /// What the kernel keeps for each virtual machine vCPU besides its
    /// x0..x7: interrupts to deliver, its exit, how to resume it.
    vm: [vm::VmVcpu; MAX_SYSTEM_VCPUS],
    /// The kernel's log, for its reader partition: after the hot fields, so
    /// its 4 KiB do not push their offsets out of reach of one load.
    klog: klog::KernelLog,
    /// Who is told when a partition faults ([`FaultSignalSeed`]); only a
    /// fault reads them.
    fault_signals: [FaultSignalSeed; hv_image::MAX_FAULT_SIGNALS],
    fault_signal_count: usize,
    /// Windows and budgets, in counter ticks.
    timing: timing::Timing,
}

impl KernelState {
    /// A state with no cores, partitions or objects: every step on it does
    /// nothing. [`KernelState::boot`] fills it.
    #[must_use]
    pub const fn empty() -> Self {
        Self {
            vcpus: [Vcpu::EMPTY; MAX_SYSTEM_VCPUS],
            links: Links::new(),
            endpoints: [Endpoint::EMPTY; MAX_ENDPOINTS],
            endpoint_count: 0,
            vcpu_count: 0,
            core_count: 0,
            partition_count: 0,
            notification_count: 0,
            irq_count: 0,
            timed: false,
            cores: [Core::EMPTY; MAX_CPUS],
            regs: [[0; 8]; MAX_SYSTEM_VCPUS],
            badges: [Badge(0); MAX_SYSTEM_VCPUS],
            partitions: [Partition::EMPTY; MAX_PARTITIONS],
            notifications: [Notification::EMPTY; MAX_NOTIFICATIONS],
            irqs: [IrqBinding::EMPTY; MAX_IRQS],
            replies: [ReplyObject::EMPTY; MAX_REPLIES],
            reply_count: 0,
            history: [fault::History::EMPTY; MAX_PARTITIONS],
            backoff: [fault::backoff::Backoff::EMPTY; MAX_PARTITIONS],
            clock: 0,
            vm_vcpus: 0,
            vm_entries: 0,
            passthrough: [0; vm::PENDING_WORDS],
            vm: [vm::VmVcpu::EMPTY; MAX_SYSTEM_VCPUS],
            klog: klog::KernelLog::EMPTY,
            fault_signals: [FaultSignalSeed::EMPTY; hv_image::MAX_FAULT_SIGNALS],
            fault_signal_count: 0,
            timing: timing::Timing::EMPTY,
            caps: CapSpace::new(),
        }
    }

    /// The number of cores the kernel schedules on.
    #[must_use]
    pub const fn core_count(&self) -> usize {
        self.core_count
    }

    /// The number of partitions.
    #[must_use]
    pub const fn partition_count(&self) -> usize {
        self.partition_count
    }

    /// The number of vCPUs, all partitions together.
    #[must_use]
    pub const fn vcpu_count(&self) -> usize {
        self.vcpu_count
    }

    /// The vCPU `core` runs, if any.
    #[must_use]
    pub fn current(&self, core: usize) -> Option<VcpuId> {
        self.cores.get(core).and_then(|c| c.current)
    }

    /// The partition `vcpu` belongs to.
    #[must_use]
    pub fn vcpu_partition(&self, vcpu: VcpuId) -> Option<PartitionId> {
        self.vcpu(vcpu).map(|v| v.partition)
    }

    /// The core `vcpu` is pinned to.
    #[must_use]
    pub fn vcpu_core(&self, vcpu: VcpuId) -> Option<usize> {
        self.vcpu(vcpu).map(|v| usize::from(v.core))
    }

    /// What `vcpu` is doing.
    #[must_use]
    pub fn vcpu_state(&self, vcpu: VcpuId) -> Option<VcpuState> {
        self.vcpu(vcpu).map(|v| v.state)
    }

    /// The x0..x7 the state holds for `vcpu` (stale while it runs).
    #[must_use]
    pub fn saved_regs(&self, vcpu: VcpuId) -> Option<[u64; 8]> {
        self.regs.get(vcpu.index()).copied()
    }

    /// The caller `vcpu` owes a reply to.
    #[must_use]
    pub fn caller_of(&self, vcpu: VcpuId) -> Option<VcpuId> {
        self.vcpu(vcpu).and_then(|v| v.reply_to)
    }

    /// Where `partition` is in its life.
    #[must_use]
    pub fn partition_state(&self, partition: PartitionId) -> Option<PartitionState> {
        self.partition(partition).map(|p| p.state)
    }

    /// The vCPUs of `partition` (the iterator does not borrow the state).
    pub fn partition_vcpus(&self, partition: PartitionId) -> impl Iterator<Item = VcpuId> + use<> {
        self.partition(partition)
            .copied()
            .into_iter()
            .flat_map(Partition::vcpus)
    }

    /// Every partition's capability table, to read.
    #[must_use]
    pub const fn caps(&self) -> &CapSpace {
        &self.caps
    }

    /// The capability in `slot` of `partition`, if any.
    #[must_use]
    pub fn capability(&self, partition: PartitionId, slot: u64) -> Option<Capability> {
        SlotRef::new(partition, slot).and_then(|s| self.caps.get(s))
    }

    /// The bits pending on `notification`.
    #[must_use]
    pub fn notification_word(&self, notification: NotificationId) -> Option<u64> {
        if notification.index() >= self.notification_count {
            return None;
        }
        self.notifications.get(notification.index()).map(|n| n.word)
    }

    /// The x0..x7 `vcpu` starts (or restarts) with.
    fn initial_regs_of(&self, vcpu: VcpuId) -> [u64; 8] {
        let first = self
            .vcpu(vcpu)
            .and_then(|v| self.partition(v.partition))
            .map_or(0, |p| p.first_vcpu);
        initial_regs(vcpu.byte().saturating_sub(first))
    }

    fn vcpu(&self, vcpu: VcpuId) -> Option<&Vcpu> {
        self.vcpus.get(vcpu.index())
    }

    fn vcpu_mut(&mut self, vcpu: VcpuId) -> Option<&mut Vcpu> {
        self.vcpus.get_mut(vcpu.index())
    }

    fn partition(&self, partition: PartitionId) -> Option<&Partition> {
        if partition.index() >= self.partition_count {
            return None;
        }
        self.partitions.get(partition.index())
    }

    /// The partition of `vcpu`, as a status for the hypercall paths (it
    /// cannot fail for a vCPU the state made current).
    fn partition_of(&self, vcpu: VcpuId) -> Result<PartitionId, Status> {
        self.vcpu(vcpu)
            .map(|v| v.partition)
            .ok_or(Status::InvalidArgument)
    }
}

#[cfg(test)]
mod tests;
