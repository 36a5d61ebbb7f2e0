// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Boot: the [`Seed`] a system starts from, and checking it.
//!
//! A [`Seed`] is plain data, so that tests and the fuzzer can write one by
//! hand; [`crate::lower::with_seed`] makes the kernel's from the compiled
//! manifest. [`KernelState::boot`]
//! checks all of it before changing anything, so a bad seed leaves the state
//! as it was, and reports the first problem as a [`SeedError`].
//!
//! Boot pins each vCPU to one of its partition's allowed cores: the allowed
//! core with the fewest of this partition's vCPUs, then the fewest vCPUs of
//! any partition, then the lowest number. So a partition's vCPUs spread over
//! its cores, and single-vCPU partitions spread over the machine. Every vCPU
//! of a service starts ready, with x0 = its index in its partition; a
//! virtual machine's start off, for its monitor to start (`VcpuStart`).

use core::fmt;

use hv_abi::hypercall::Badge;

use super::timing::{TimeProblem, TimeSeed};
use super::{Core, KernelState, Partition, PartitionState, Vcpu, VcpuState};
use crate::MAX_CPUS;
use hv_image::{
    FaultPolicy, MAX_CAPS, MAX_ENDPOINTS, MAX_FAULT_SIGNALS, MAX_IRQS, MAX_NOTIFICATIONS,
    MAX_PARTITIONS, MAX_REPLIES, MAX_SYSTEM_VCPUS,
};

use crate::cap::{EndpointId, NotificationId, PartitionId, SlotRef};
use crate::sched::VcpuId;
use hv_image::Capability;
use hv_image::Object;

/// One partition of a [`Seed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionSeed<'a> {
    /// How many vCPUs it has (at least one).
    pub vcpus: usize,
    /// The cores its vCPUs may run on: bit n for core n.
    pub cores: u64,
    /// The priority of all its vCPUs: 0 lowest, 255 highest.
    pub priority: u8,
    /// What happens when it faults.
    pub fault_policy: FaultPolicy,
    /// Its initial capabilities: entry n goes in slot n (at most
    /// [`MAX_CAPS`] entries).
    pub capabilities: &'a [Option<Capability>],
    /// If it is a virtual machine: the endpoint its exits go to. Its vCPUs
    /// then start off, for its monitor to start.
    pub exits: Option<EndpointId>,
}

/// One endpoint of a [`Seed`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EndpointSeed {
    /// The partition that serves it, if the manifest says: while that
    /// partition is stopped or restarting, sending or calling on the endpoint
    /// fails with `PeerGone` rather than waiting forever.
    pub server: Option<PartitionId>,
}

/// One reply object of a [`Seed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReplySeed {
    /// The partition it belongs to: only its vCPUs may use it, and only it
    /// may hold capabilities to it.
    pub owner: PartitionId,
}

/// One interrupt binding of a [`Seed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IrqSeed {
    /// The interrupt's ID at the interrupt controller.
    pub intid: u32,
    /// The notification it signals.
    pub notification: NotificationId,
    /// The bits it sets there (not zero).
    pub badge: Badge,
    /// The device it belongs to, if any: a `Device` capability for it may
    /// acknowledge it.
    pub device: Option<u16>,
}

/// One fault signal of a [`Seed`]: when `partition` stops or restarts on a
/// fault, the kernel sets `badge` on `notification`, which `controller`
/// (a partition that controls it) waits on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FaultSignalSeed {
    /// The partition watched.
    pub partition: PartitionId,
    /// The partition told; a stop or restart it makes itself is not
    /// signalled to it.
    pub controller: PartitionId,
    /// The notification signalled.
    pub notification: NotificationId,
    /// The bits set there (not zero).
    pub badge: Badge,
}

impl FaultSignalSeed {
    pub(super) const EMPTY: Self = Self {
        partition: PartitionId(0),
        controller: PartitionId(0),
        notification: NotificationId(0),
        badge: Badge(0),
    };
}

/// Everything the kernel needs to start a system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seed<'a> {
    /// Cores to schedule on: 0 to `cores - 1` (1 to [`MAX_CPUS`]).
    pub cores: usize,
    /// The partitions; [`PartitionId`] n is entry n.
    pub partitions: &'a [PartitionSeed<'a>],
    /// The endpoints; [`crate::cap::EndpointId`] n is entry n.
    pub endpoints: &'a [EndpointSeed],
    /// How many notifications there are.
    pub notifications: usize,
    /// The interrupt bindings; [`crate::cap::IrqId`] n is entry n.
    pub irqs: &'a [IrqSeed],
    /// The reply objects; [`crate::cap::ReplyId`] n is entry n.
    pub replies: &'a [ReplySeed],
    /// The notification (and bits) the kernel signals when it logs, if a
    /// partition reads the kernel's log; that partition holds a
    /// `KernelLog` capability.
    pub kernel_log: Option<(NotificationId, Badge)>,
    /// Who is told when a partition faults (the manifest's
    /// `fault-notification`).
    pub fault_signals: &'a [FaultSignalSeed],
    /// The schedule and budgets, and the counter that runs them
    /// ([`TimeSeed::NONE`]: priority scheduling alone).
    pub time: TimeSeed<'a>,
}

/// Why a seed was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SeedError {
    /// The core count is 0 or above [`MAX_CPUS`].
    Cores(usize),
    /// More of something than the kernel's tables hold.
    TooMany {
        /// What.
        what: &'static str,
        /// How many the seed has.
        count: usize,
        /// How many fit.
        max: usize,
    },
    /// A partition has no vCPU.
    NoVcpus {
        /// The partition's index.
        partition: usize,
    },
    /// None of a partition's allowed cores is one the kernel runs on.
    NoAllowedCore {
        /// The partition's index.
        partition: usize,
    },
    /// A capability has rights the ABI does not define.
    InvalidRights {
        /// The partition's index.
        partition: usize,
        /// The slot.
        slot: usize,
    },
    /// A capability names an endpoint, notification, interrupt or partition
    /// the seed does not have.
    UnknownObject {
        /// The partition's index.
        partition: usize,
        /// The slot.
        slot: usize,
    },
    /// A partition holds a capability to a reply object it does not own.
    ForeignReply {
        /// The partition's index.
        partition: usize,
        /// The slot.
        slot: usize,
    },
    /// A reply object's owner is not a partition of the seed.
    UnknownOwner {
        /// The reply object's index.
        reply: usize,
    },
    /// An endpoint's server is not a partition of the seed.
    UnknownServer {
        /// The endpoint's index.
        endpoint: usize,
    },
    /// A virtual machine's exit endpoint is not an endpoint of the seed, or
    /// is another virtual machine's too.
    BadExits {
        /// The partition's index.
        partition: usize,
    },
    /// An interrupt is bound to a notification the seed does not have.
    UnknownNotification {
        /// The binding's index.
        irq: usize,
    },
    /// An interrupt would set no bits.
    ZeroBadge {
        /// The binding's index.
        irq: usize,
    },
    /// Two bindings name the same interrupt.
    DuplicateInterrupt {
        /// The index of the second binding.
        irq: usize,
    },
    /// A fault signal names a partition or notification the seed does not
    /// have, or sets no bits.
    BadFaultSignal {
        /// The signal's index.
        signal: usize,
    },
    /// The schedule, a budget or the counter frequency is unsound.
    Time(TimeProblem),
}

impl fmt::Display for SeedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Cores(n) => write!(f, "{n} cores: the kernel runs on 1 to {MAX_CPUS}"),
            Self::TooMany { what, count, max } => {
                write!(f, "{count} {what}: at most {max} fit")
            }
            Self::NoVcpus { partition } => write!(f, "partition {partition} has no vCPU"),
            Self::NoAllowedCore { partition } => {
                write!(
                    f,
                    "partition {partition} may run on no core the kernel uses"
                )
            }
            Self::InvalidRights { partition, slot } => write!(
                f,
                "partition {partition} slot {slot}: rights the ABI does not define"
            ),
            Self::UnknownObject { partition, slot } => write!(
                f,
                "partition {partition} slot {slot}: names an object the system does not have"
            ),
            Self::ForeignReply { partition, slot } => write!(
                f,
                "partition {partition} slot {slot}: names a reply object another partition owns"
            ),
            Self::UnknownOwner { reply } => {
                write!(f, "reply object {reply}: its owner is not a partition")
            }
            Self::UnknownServer { endpoint } => {
                write!(f, "endpoint {endpoint}: its server is not a partition")
            }
            Self::BadExits { partition } => write!(
                f,
                "partition {partition}: its exit endpoint does not exist or is shared"
            ),
            Self::UnknownNotification { irq } => {
                write!(f, "interrupt binding {irq}: no such notification")
            }
            Self::ZeroBadge { irq } => write!(f, "interrupt binding {irq}: sets no bits"),
            Self::DuplicateInterrupt { irq } => {
                write!(
                    f,
                    "interrupt binding {irq}: that interrupt is already bound"
                )
            }
            Self::BadFaultSignal { signal } => write!(
                f,
                "fault signal {signal}: no such partition or notification, or no bits"
            ),
            Self::Time(problem) => write!(f, "time: {problem:?}"),
        }
    }
}

fn at_most(what: &'static str, count: usize, max: usize) -> Result<(), SeedError> {
    if count > max {
        return Err(SeedError::TooMany { what, count, max });
    }
    Ok(())
}

/// Checks everything [`KernelState::boot`] relies on.
pub(super) fn validate(seed: &Seed<'_>) -> Result<(), SeedError> {
    if seed.cores == 0 || seed.cores > MAX_CPUS {
        return Err(SeedError::Cores(seed.cores));
    }
    let online = (1u64 << seed.cores) - 1;
    at_most("partitions", seed.partitions.len(), MAX_PARTITIONS)?;
    at_most("endpoints", seed.endpoints.len(), MAX_ENDPOINTS)?;
    at_most("notifications", seed.notifications, MAX_NOTIFICATIONS)?;
    at_most("interrupt bindings", seed.irqs.len(), MAX_IRQS)?;
    at_most("reply objects", seed.replies.len(), MAX_REPLIES)?;
    at_most("fault signals", seed.fault_signals.len(), MAX_FAULT_SIGNALS)?;
    for (i, s) in seed.fault_signals.iter().enumerate() {
        if s.partition.index() >= seed.partitions.len()
            || s.controller.index() >= seed.partitions.len()
            || s.notification.index() >= seed.notifications
            || s.badge.0 == 0
        {
            return Err(SeedError::BadFaultSignal { signal: i });
        }
    }
    for (i, r) in seed.replies.iter().enumerate() {
        if r.owner.index() >= seed.partitions.len() {
            return Err(SeedError::UnknownOwner { reply: i });
        }
    }
    let vcpus = seed
        .partitions
        .iter()
        .try_fold(0usize, |sum, p| sum.checked_add(p.vcpus))
        .unwrap_or(usize::MAX);
    at_most("vCPUs", vcpus, MAX_SYSTEM_VCPUS)?;
    // Whether vCPU `vcpu` of `partition` is a virtual machine's.
    let vcpu_exists = |partition: u16, vcpu: u8| {
        seed.partitions
            .get(usize::from(partition))
            .is_some_and(|q| q.exits.is_some() && usize::from(vcpu) < q.vcpus)
    };
    for (i, p) in seed.partitions.iter().enumerate() {
        if let Some(e) = p.exits {
            let shared = seed.partitions.iter().take(i).any(|o| o.exits == Some(e));
            if e.index() >= seed.endpoints.len() || shared {
                return Err(SeedError::BadExits { partition: i });
            }
        }

        if p.vcpus == 0 {
            return Err(SeedError::NoVcpus { partition: i });
        }
        if p.cores & online == 0 {
            return Err(SeedError::NoAllowedCore { partition: i });
        }
        at_most("capability slots", p.capabilities.len(), MAX_CAPS)?;
        for (slot, cap) in p.capabilities.iter().enumerate() {
            let Some(cap) = cap else { continue };
            if !cap.rights.is_valid() {
                return Err(SeedError::InvalidRights { partition: i, slot });
            }
            let known = match cap.object {
                Object::Endpoint(e) => usize::from(e) < seed.endpoints.len(),
                Object::Notification(n) => usize::from(n) < seed.notifications,
                Object::Irq(q) => usize::from(q) < seed.irqs.len(),
                Object::Partition(q) => usize::from(q) < seed.partitions.len(),
                Object::KernelLog => seed.kernel_log.is_some(),
                Object::Vcpu { partition, vcpu } => vcpu_exists(partition, vcpu),
                Object::Reply(r) => match seed.replies.get(usize::from(r)) {
                    Some(reply) if reply.owner.index() != i => {
                        return Err(SeedError::ForeignReply { partition: i, slot });
                    }
                    owned => owned.is_some(),
                },
                // Memory regions and devices are the glue's tables.
                Object::Memory(_) | Object::Device(_) => true,
            };
            if !known {
                return Err(SeedError::UnknownObject { partition: i, slot });
            }
        }
    }
    for (i, e) in seed.endpoints.iter().enumerate() {
        if e.server.is_some_and(|p| p.index() >= seed.partitions.len()) {
            return Err(SeedError::UnknownServer { endpoint: i });
        }
    }
    let mut vcpus = [0usize; MAX_PARTITIONS];
    for (n, p) in vcpus.iter_mut().zip(seed.partitions) {
        *n = p.vcpus;
    }
    super::timing::validate(
        &seed.time,
        vcpus.get(..seed.partitions.len()).unwrap_or_default(),
    )
    .map_err(SeedError::Time)?;
    for (i, irq) in seed.irqs.iter().enumerate() {
        if irq.notification.index() >= seed.notifications {
            return Err(SeedError::UnknownNotification { irq: i });
        }
        if irq.badge.0 == 0 {
            return Err(SeedError::ZeroBadge { irq: i });
        }
        if seed.irqs.iter().take(i).any(|o| o.intid == irq.intid) {
            return Err(SeedError::DuplicateInterrupt { irq: i });
        }
    }
    Ok(())
}

/// Where boot pins each vCPU of a valid `seed`: calls `each(partition,
/// index in its partition, core)` for every vCPU, in order.
pub(super) fn pinning(seed: &Seed<'_>, mut each: impl FnMut(usize, u8, u8)) {
    let mut all = [0u8; MAX_CPUS];
    for (i, p) in seed.partitions.iter().enumerate() {
        let mut mine = [0u8; MAX_CPUS];
        // Counts were checked against the u8-sized tables by `validate`.
        for index in 0..p.vcpus as u8 {
            let core = choose_core(p.cores, seed.cores, &mine, &all);
            for counts in [&mut mine, &mut all] {
                if let Some(n) = counts.get_mut(usize::from(core)) {
                    *n = n.saturating_add(1);
                }
            }
            each(i, index, core);
        }
    }
}

/// The allowed core with the fewest of this partition's vCPUs, then the
/// fewest vCPUs overall, then the lowest number.
fn choose_core(allowed: u64, cores: usize, mine: &[u8; MAX_CPUS], all: &[u8; MAX_CPUS]) -> u8 {
    (0..cores.min(MAX_CPUS))
        .filter(|&c| allowed & (1 << c) != 0)
        .min_by_key(|&c| (mine.get(c).copied(), all.get(c).copied(), c))
        .map_or(0, |c| c as u8)
}

impl KernelState {
    /// A state booted from `seed`.
    ///
    /// The state is large (see [`KernelState`]); the kernel itself should
    /// use [`KernelState::boot`] on a `static` instead.
    pub fn new(seed: &Seed<'_>) -> Result<Self, SeedError> {
        let mut state = Self::empty();
        state.boot(seed)?;
        Ok(state)
    }

    /// Checks `seed` and, if it is sound, replaces this state with the
    /// system it describes; otherwise changes nothing.
    pub fn boot(&mut self, seed: &Seed<'_>) -> Result<(), SeedError> {
        self.boot_only(seed, |_| true)
    }

    /// [`KernelState::boot`] with only the partitions `keep` says yes to:
    /// the others are numbered and pinned as in the whole system, but
    /// stopped, with no capability and no vCPU in any queue
    /// ([`KernelState::boot_domain`]).
    pub(super) fn boot_only(
        &mut self,
        seed: &Seed<'_>,
        keep: impl Fn(usize) -> bool,
    ) -> Result<(), SeedError> {
        validate(seed)?;
        self.clear();
        self.core_count = seed.cores;
        self.endpoint_count = seed.endpoints.len();
        self.notification_count = seed.notifications;
        self.irq_count = seed.irqs.len();
        self.klog.set_reader(seed.kernel_log);
        self.fault_signal_count = seed.fault_signals.len();
        for (signal, s) in self.fault_signals.iter_mut().zip(seed.fault_signals) {
            *signal = *s;
        }
        for (endpoint, s) in self.endpoints.iter_mut().zip(seed.endpoints) {
            endpoint.server = s.server;
        }
        self.reply_count = seed.replies.len();
        for (object, s) in self.replies.iter_mut().zip(seed.replies) {
            object.owner = s.owner;
        }
        for (binding, s) in self.irqs.iter_mut().zip(seed.irqs) {
            binding.intid = s.intid;
            binding.notification = s.notification;
            binding.badge = s.badge;
            binding.device = s.device;
        }
        let mut first = 0u8;
        for (i, p) in seed.partitions.iter().enumerate() {
            // All counts were checked against the u8-sized tables above.
            let kept = keep(i);
            if let Some(slot) = self.partitions.get_mut(i) {
                *slot = Partition {
                    state: if kept {
                        PartitionState::Active
                    } else {
                        PartitionState::Stopped
                    },
                    policy: p.fault_policy,
                    first_vcpu: first,
                    vcpu_count: p.vcpus as u8,
                    priority: p.priority,
                    exits: p.exits,
                };
            }
            first = first.saturating_add(p.vcpus as u8);
            if !kept {
                continue;
            }
            let id = PartitionId(i as u8);
            for (slot, cap) in p.capabilities.iter().enumerate() {
                if let (Some(cap), Some(at)) = (cap, SlotRef::new(id, slot as u64)) {
                    // Every slot is empty after `clear`, so this cannot fail.
                    let _ = self.caps.seed(at, *cap);
                }
            }
        }
        let mut next = 0u8;
        pinning(seed, |i, index, core| {
            let v = VcpuId::of(next);
            next = next.saturating_add(1);
            let Some(v) = v else {
                return;
            };
            let Some(p) = seed.partitions.get(i) else {
                return;
            };
            let kept = keep(i);
            // A virtual machine's vCPUs start off: its monitor starts them.
            let state = match (kept, p.exits.is_some()) {
                (false, _) => VcpuState::Stopped,
                (true, true) => VcpuState::Off,
                (true, false) => VcpuState::Ready,
            };
            if let Some(slot) = self.vcpus.get_mut(v.index()) {
                *slot = Vcpu {
                    partition: PartitionId(i as u8),
                    core,
                    priority: p.priority,
                    state,
                    reply_to: None,
                };
            }
            if let Some(saved) = self.regs.get_mut(v.index()) {
                *saved = super::initial_regs(index);
            }
            if p.exits.is_some() {
                self.vm_vcpus |= 1 << (v.index() % 32);
            } else if state == VcpuState::Ready
                && let Some(c) = self.cores.get_mut(usize::from(core))
            {
                c.ready.push_back(&mut self.links, v, p.priority);
            }
        });
        self.partition_count = seed.partitions.len();
        self.vcpu_count = usize::from(first);
        self.boot_time(&seed.time);
        Ok(())
    }

    /// Back to [`KernelState::empty`], in place (the state is too large to
    /// build a fresh one on a small stack).
    fn clear(&mut self) {
        self.partitions.fill(Partition::EMPTY);
        self.partition_count = 0;
        self.vcpus.fill(Vcpu::EMPTY);
        self.regs.fill([0; 8]);
        self.badges.fill(Badge(0));
        self.vcpu_count = 0;
        self.links = crate::sched::Links::new();
        self.cores.fill(Core::EMPTY);
        self.core_count = 0;
        self.caps.clear();
        self.endpoints.fill(super::Endpoint::EMPTY);
        self.endpoint_count = 0;
        self.notifications.fill(super::Notification::EMPTY);
        self.notification_count = 0;
        self.irqs.fill(super::IrqBinding::EMPTY);
        self.irq_count = 0;
        self.replies.fill(super::ReplyObject::EMPTY);
        self.reply_count = 0;
        self.history.fill(super::fault::History::EMPTY);
        self.backoff.fill(super::fault::backoff::Backoff::EMPTY);
        self.klog.set_reader(None);
        self.fault_signals.fill(FaultSignalSeed::EMPTY);
        self.fault_signal_count = 0;
        self.vm.fill(super::vm::VmVcpu::EMPTY);
        self.vm_vcpus = 0;
        self.vm_entries = 0;
        self.passthrough = [0; super::vm::PENDING_WORDS];
    }
}
