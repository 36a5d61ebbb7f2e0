// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The small system the checker explores, its actions, and the simulated
//! kernel glue that runs them on the real [`KernelState`].
//!
//! Three partitions of one vCPU each on two cores, two endpoints, two
//! notifications, two interrupts:
//!
//! | partition | core, priority, on a fault | slots 0..=4 |
//! |---|---|---|
//! | p0 (A) | 0, 10, restart | ep0 W+G badge 1; notif0 W badge 1; mem0 R+W+D; partition p1 R+C; none |
//! | p1 (B) | 1, 20, stop | ep0 R+G; notif0 R; mem0 R; irq1 W; none |
//! | p2 (H) | 1, 10, restart | ep1 R+W+G+D; notif1 R+W+D; mem1 R+W+D; partition p2 R+C; irq0 W |
//!
//! Endpoint 0 is served by p1. Interrupt 0 (INTID 40) signals notification
//! 1 (H's), interrupt 1 (INTID 41) notification 0 (B's). The manifest's
//! channel graph is A ↔ B; H is connected to nobody, which the
//! noninterference check uses. Slots 5..=7 start empty; arguments name slots
//! 0..=7 and the invalid 64.

use core::fmt;

use hv_abi::hypercall::{Badge, CapSlot, Hypercall, MessageInfo, Rights, Status, StopReason};
use hv_core::cap::{NotificationId, PartitionId};
use hv_core::sched::VcpuId;
use hv_core::state::{
    EndpointSeed, IrqSeed, KernelState, Next, Outcome, PartitionSeed, ReloadWork, Seed, TimeSeed,
    VcpuState,
};
use hv_image::{Capability, FaultPolicy, Object};

/// Partitions in the system.
pub const PARTITIONS: usize = 3;
/// Cores.
pub const CORES: usize = 2;
/// Endpoints.
pub const ENDPOINTS: usize = 2;
/// Notifications.
pub const NOTIFICATIONS: usize = 2;
/// The partition the noninterference check varies.
pub const HIGH: u8 = 2;
/// The interrupt bound to the high partition's notification.
pub const HIGH_INTID: u32 = 40;

const R: Rights = Rights::READ;
const W: Rights = Rights::WRITE;
const G: Rights = Rights::GRANT;
const D: Rights = Rights::DERIVE;
const C: Rights = Rights::CONTROL;

fn rights(r: &[Rights]) -> Rights {
    r.iter().fold(Rights::NONE, |a, x| a.union(*x))
}

fn cap(object: Object, r: &[Rights], badge: u64) -> Option<Capability> {
    Some(Capability::new(object, rights(r)).with_badge(Badge(badge)))
}

/// The seeded capability tables, per partition.
pub fn tables() -> [Vec<Option<Capability>>; PARTITIONS] {
    [
        vec![
            cap(Object::Endpoint(0), &[W, G], 1),
            cap(Object::Notification(0), &[W], 1),
            cap(Object::Memory(0), &[R, W, D], 0),
            cap(Object::Partition(1), &[R, C], 0),
        ],
        vec![
            cap(Object::Endpoint(0), &[R, G], 0),
            cap(Object::Notification(0), &[R], 0),
            cap(Object::Memory(0), &[R], 0),
            cap(Object::Irq(1), &[W], 0),
        ],
        vec![
            cap(Object::Endpoint(1), &[R, W, G, D], 0),
            cap(Object::Notification(1), &[R, W, D], 0),
            cap(Object::Memory(1), &[R, W, D], 0),
            cap(Object::Partition(2), &[R, C], 0),
            cap(Object::Irq(0), &[W], 0),
        ],
    ]
}

/// Each partition's fault policy.
pub const POLICIES: [FaultPolicy; PARTITIONS] = [
    FaultPolicy::Restart,
    FaultPolicy::Stop,
    FaultPolicy::Restart,
];

/// The manifest's channel graph: bit q of entry p, p may flow to q.
pub const CHANNELS: [u16; PARTITIONS] = [0b010, 0b001, 0b000];

/// Runs `f` on the system's seed.
pub fn with_seed<T>(f: impl FnOnce(&Seed<'_>) -> T) -> T {
    let tables = tables();
    let placement: [(u64, u8); PARTITIONS] = [(0b01, 10), (0b10, 20), (0b10, 10)];
    let parts: Vec<PartitionSeed<'_>> = tables
        .iter()
        .zip(placement)
        .zip(POLICIES)
        .map(|((caps, (cores, priority)), policy)| PartitionSeed {
            vcpus: 1,
            cores,
            priority,
            fault_policy: policy,
            capabilities: caps,
            exits: None,
        })
        .collect();
    let endpoints = [
        EndpointSeed {
            server: Some(PartitionId(1)),
        },
        EndpointSeed { server: None },
    ];
    let irqs = [
        IrqSeed {
            intid: 40,
            notification: NotificationId(1),
            badge: Badge(0x100),
            device: None,
        },
        IrqSeed {
            intid: 41,
            notification: NotificationId(0),
            badge: Badge(0x200),
            device: None,
        },
    ];
    f(&Seed {
        cores: CORES,
        partitions: &parts,
        endpoints: &endpoints,
        notifications: NOTIFICATIONS,
        irqs: &irqs,
        replies: &[],
        kernel_log: None,
        fault_signals: &[],
        time: TimeSeed::NONE,
    })
}

/// The booted system, each core having picked its first vCPU.
pub fn boot() -> Box<KernelState> {
    let mut state = Box::new(KernelState::empty());
    with_seed(|seed| state.boot(seed)).expect("the checker's seed boots");
    for core in 0..CORES {
        let mut regs = [0; 8];
        state.idle(core, &mut regs);
    }
    state
}

/// A hypercall with its arguments, from small domains that include invalid
/// values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// `Derive` from `src` to `dst` with `rights` and `badge`.
    Derive {
        /// Source slot.
        src: u64,
        /// Rights asked for.
        rights: Rights,
        /// Badge (0: keep).
        badge: u64,
        /// Destination slot.
        dst: u64,
    },
    /// `Revoke` of a slot.
    Revoke(u64),
    /// `Delete` of a slot.
    Delete(u64),
    /// `Send` (`call` false) or `Call` on the endpoint in `slot`, with `words`
    /// words and maybe the capability in slot `cap`; `info` overrides the
    /// message info if set (malformed ones).
    Send {
        /// It is a `Call`.
        call: bool,
        /// The endpoint's slot.
        slot: u64,
        /// Message words.
        words: usize,
        /// A capability to transfer.
        cap: Option<u32>,
        /// A raw message info instead.
        info: Option<u64>,
    },
    /// `Recv` (`reply` false) or `ReplyRecv` on the endpoint in `slot`,
    /// naming receive slot `accept`.
    Recv {
        /// It is a `ReplyRecv`.
        reply: bool,
        /// The endpoint's slot.
        slot: u64,
        /// The receive slot.
        accept: Option<u32>,
    },
    /// `Reply` with one word.
    Reply,
    /// `Signal` on the notification in a slot.
    Signal(u64),
    /// `Wait` on the notification in a slot.
    Wait(u64),
    /// `Poll` on the notification in a slot.
    Poll(u64),
    /// `IrqAck` of the interrupt in a slot.
    IrqAck(u64),
    /// `PartitionStatus` of the partition in a slot.
    Status(u64),
    /// `PartitionStop` of the partition in a slot.
    Stop(u64),
    /// `PartitionRestart` of the partition in a slot.
    Restart(u64),
    /// `Fault` with a reason.
    Fault(u64),
    /// `Yield`.
    Yield,
}

/// An event the checker applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Partition `p`'s vCPU makes a hypercall, if it is running.
    Hvc {
        /// The partition.
        p: u8,
        /// The call.
        call: Call,
    },
    /// An interrupt is taken on a core.
    Interrupt {
        /// The core.
        core: u8,
        /// The interrupt.
        intid: u32,
    },
    /// The preemption timer fires on a core.
    Tick(u8),
    /// A core takes a kick (or wakes from idle).
    Reschedule(u8),
    /// The vCPU running on a core takes an exception.
    Fault(u8),
    /// The glue's tick on a core, a second later, does the restart work
    /// `reload_work` asks for and reports it complete.
    Reload(u8),
}

/// The rights names, for counterexamples.
fn rights_name(r: Rights) -> String {
    if !r.is_valid() {
        return format!("{:#x}", r.0);
    }
    let names = [
        (R, "R"),
        (W, "W"),
        (Rights::EXECUTE, "X"),
        (G, "G"),
        (D, "D"),
        (C, "C"),
    ];
    let s: String = names
        .iter()
        .filter(|(x, _)| r.contains(*x))
        .map(|(_, n)| *n)
        .collect();
    if s.is_empty() { "none".into() } else { s }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Call::Derive {
                src,
                rights,
                badge,
                dst,
            } => write!(
                f,
                "Derive(slot {src} → slot {dst}, rights {}, badge {badge})",
                rights_name(rights)
            ),
            Call::Revoke(s) => write!(f, "Revoke(slot {s})"),
            Call::Delete(s) => write!(f, "Delete(slot {s})"),
            Call::Send {
                call,
                slot,
                words,
                cap,
                info,
            } => {
                let name = if call { "Call" } else { "Send" };
                write!(f, "{name}(slot {slot}, {words} words")?;
                if let Some(c) = cap {
                    write!(f, ", cap slot {c}")?;
                }
                if let Some(i) = info {
                    write!(f, ", info {i:#x}")?;
                }
                write!(f, ")")
            }
            Call::Recv {
                reply,
                slot,
                accept,
            } => {
                let name = if reply { "ReplyRecv" } else { "Recv" };
                match accept {
                    Some(a) => write!(f, "{name}(slot {slot}, accept slot {a})"),
                    None => write!(f, "{name}(slot {slot})"),
                }
            }
            Call::Reply => write!(f, "Reply"),
            Call::Signal(s) => write!(f, "Signal(slot {s})"),
            Call::Wait(s) => write!(f, "Wait(slot {s})"),
            Call::Poll(s) => write!(f, "Poll(slot {s})"),
            Call::IrqAck(s) => write!(f, "IrqAck(slot {s})"),
            Call::Status(s) => write!(f, "PartitionStatus(slot {s})"),
            Call::Stop(s) => write!(f, "PartitionStop(slot {s})"),
            Call::Restart(s) => write!(f, "PartitionRestart(slot {s})"),
            Call::Fault(r) => write!(f, "Fault(reason {r:#x})"),
            Call::Yield => write!(f, "Yield"),
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Action::Hvc { p, call } => write!(f, "p{p}: {call}"),
            Action::Interrupt { core, intid } => write!(f, "core {core}: interrupt {intid}"),
            Action::Tick(c) => write!(f, "core {c}: tick"),
            Action::Reschedule(c) => write!(f, "core {c}: reschedule"),
            Action::Fault(c) => write!(f, "core {c}: exception"),
            Action::Reload(c) => write!(f, "core {c}: reload tick"),
        }
    }
}

impl Call {
    /// x0..x7 of this call, made by partition `p` (x3.. carry words that
    /// name the sender).
    #[must_use]
    pub fn regs(self, p: u8) -> [u64; 8] {
        let fid = |c: Hypercall| u64::from(c.function_id());
        let tag = 0x100 * (u64::from(p) + 1);
        let mut regs = [0, 0, 0, tag + 3, tag + 4, tag + 5, tag + 6, tag + 7];
        let info = |words: usize, cap: Option<u32>| {
            let i = MessageInfo::words(words);
            cap.map_or(i, |c| i.with_capability(CapSlot(c))).0
        };
        let (call, x1, x2, x3) = match self {
            Call::Derive {
                src,
                rights,
                badge,
                dst,
            } => (
                Hypercall::Derive,
                src,
                u64::from(rights.0) | badge << 32,
                dst,
            ),
            Call::Revoke(s) => (Hypercall::Revoke, s, 0, regs[3]),
            Call::Delete(s) => (Hypercall::Delete, s, 0, regs[3]),
            Call::Send {
                call,
                slot,
                words,
                cap,
                info: raw,
            } => (
                if call {
                    Hypercall::Call
                } else {
                    Hypercall::Send
                },
                slot,
                raw.unwrap_or_else(|| info(words, cap)),
                regs[3],
            ),
            Call::Recv {
                reply,
                slot,
                accept,
            } => (
                if reply {
                    Hypercall::ReplyRecv
                } else {
                    Hypercall::Recv
                },
                slot,
                info(usize::from(reply), accept),
                regs[3],
            ),
            Call::Reply => (Hypercall::Reply, 0, info(1, None), regs[3]),
            Call::Signal(s) => (Hypercall::Signal, s, 0, regs[3]),
            Call::Wait(s) => (Hypercall::Wait, s, 0, regs[3]),
            Call::Poll(s) => (Hypercall::Poll, s, 0, regs[3]),
            Call::IrqAck(s) => (Hypercall::IrqAck, s, 0, regs[3]),
            Call::Status(s) => (Hypercall::PartitionStatus, s, 0, regs[3]),
            Call::Stop(s) => (Hypercall::PartitionStop, s, 0, regs[3]),
            Call::Restart(s) => (Hypercall::PartitionRestart, s, 0, regs[3]),
            Call::Fault(r) => (Hypercall::Fault, 0, r, regs[3]),
            Call::Yield => (Hypercall::Yield, 0, 0, regs[3]),
        };
        regs[0] = fid(call);
        regs[1] = x1;
        regs[2] = x2;
        regs[3] = x3;
        regs
    }
}

/// Every hypercall a partition may make, with arguments from small domains:
/// valid ones, and every class of invalid one (empty slot, slot out of
/// range, wrong object type, missing right, occupied destination, undefined
/// rights bits, malformed message info, bad fault reason). The same tuples
/// serve every partition, so what is valid for one is another's wrong type
/// or missing right.
#[must_use]
pub fn calls() -> Vec<Call> {
    let derive = |src, r: &[Rights], badge, dst| Call::Derive {
        src,
        rights: rights(r),
        badge,
        dst,
    };
    let send = |call, slot, words, cap| Call::Send {
        call,
        slot,
        words,
        cap,
        info: None,
    };
    let mut all = vec![
        derive(2, &[R, D], 0, 5),
        derive(2, &[R], 0, 6),
        derive(5, &[R], 0, 6),
        derive(2, &[R, W, G, D, C], 0, 5),
        derive(0, &[W], 0, 5),
        derive(1, &[W], 7, 6),
        derive(7, &[R], 0, 5),
        derive(64, &[R], 0, 5),
        derive(2, &[R], 0, 64),
        derive(2, &[R], 0, 0),
        Call::Derive {
            src: 2,
            rights: Rights(1 << 20),
            badge: 0,
            dst: 5,
        },
        Call::Revoke(2),
        Call::Revoke(5),
        Call::Revoke(64),
        Call::Delete(2),
        Call::Delete(5),
        Call::Delete(7),
        send(false, 0, 1, None),
        send(false, 0, 1, Some(2)),
        send(false, 0, 1, Some(5)),
        send(false, 1, 1, None),
        send(true, 0, 2, None),
        send(true, 0, 1, Some(5)),
        Call::Send {
            call: false,
            slot: 0,
            words: 1,
            cap: None,
            info: Some(0xff00),
        },
        Call::Recv {
            reply: false,
            slot: 0,
            accept: None,
        },
        Call::Recv {
            reply: false,
            slot: 0,
            accept: Some(6),
        },
        Call::Recv {
            reply: false,
            slot: 2,
            accept: None,
        },
        Call::Recv {
            reply: true,
            slot: 0,
            accept: Some(6),
        },
        Call::Reply,
        Call::Signal(1),
        Call::Signal(0),
        Call::Wait(1),
        Call::Poll(1),
        Call::IrqAck(3),
        Call::IrqAck(4),
        Call::Status(3),
        Call::Stop(3),
        Call::Restart(3),
        Call::Fault(1),
        Call::Fault(0x1000),
    ];
    all.push(Call::Yield);
    all
}

/// Every action the checker tries in every state (disabled ones, a call of
/// a vCPU that is not running, are skipped).
#[must_use]
pub fn actions() -> Vec<Action> {
    let mut all = Vec::new();
    for p in 0..PARTITIONS as u8 {
        for call in calls() {
            all.push(Action::Hvc { p, call });
        }
    }
    for core in 0..CORES as u8 {
        all.push(Action::Tick(core));
        all.push(Action::Reschedule(core));
        all.push(Action::Fault(core));
        all.push(Action::Reload(core));
    }
    all.push(Action::Interrupt { core: 1, intid: 40 });
    all.push(Action::Interrupt { core: 0, intid: 41 });
    all
}

/// The vCPU of partition `p` (one each).
#[must_use]
pub fn vcpu_of(state: &KernelState, p: u8) -> Option<VcpuId> {
    state.partition_vcpus(PartitionId(p)).next()
}

/// What a step did, as the checks need it.
#[derive(Clone, Debug)]
pub struct Report {
    /// The outcome the step returned.
    pub outcome: Outcome,
    /// For a hypercall: the calling partition and the status it sees, if
    /// it carries on (running, or preempted after the call) rather than
    /// blocking or stopping.
    pub status: Option<Status>,
    /// For a hypercall: it returned on the same vCPU, unswitched.
    pub continued: bool,
    /// The registers each core's vCPU holds after the step (what it sees),
    /// for cores whose vCPU changed or made the call.
    pub seen: Vec<(usize, VcpuId, [u64; 8])>,
}

/// Whether `action` can happen in `state`: a hypercall only from a running
/// vCPU; a fault only where a vCPU runs; the reload tick only while a
/// partition restarts.
#[must_use]
pub fn enabled(state: &KernelState, action: &Action) -> bool {
    match *action {
        Action::Hvc { p, .. } => vcpu_of(state, p).is_some_and(|v| {
            state
                .vcpu_core(v)
                .is_some_and(|c| state.current(c) == Some(v))
        }),
        Action::Fault(core) => state.current(usize::from(core)).is_some(),
        Action::Reload(_) => (0..PARTITIONS as u8).any(|p| {
            state.partition_state(PartitionId(p))
                == Some(hv_core::state::PartitionState::Restarting)
        }),
        _ => true,
    }
}

/// Runs `action` on `state` as the kernel glue would, kicks taken as
/// separate [`Action::Reschedule`] steps ([`apply_with`]).
pub fn apply(state: &mut KernelState, action: &Action) -> Report {
    apply_with(state, action, false)
}

/// Runs `action` on `state` as the kernel glue would. The registers a vCPU
/// holds while it runs are not part of the state the checker keeps: a
/// hypercall's are its arguments, and they are zero when a non-hypercall
/// step interrupts it (the glue saves whatever they are).
///
/// With `prompt_kicks`, the other cores a step kicks reschedule at once,
/// before any other action (the interrupt arrives before anything else
/// happens); without, [`Action::Reschedule`] takes a kick whenever the
/// search chooses, so every interleaving with the kicked core's own steps
/// is explored.
pub fn apply_with(state: &mut KernelState, action: &Action, prompt_kicks: bool) -> Report {
    let before: Vec<Option<VcpuId>> = (0..CORES).map(|c| state.current(c)).collect();
    let mut regs = [0u64; 8];
    let (core, outcome, caller) = match *action {
        Action::Hvc { p, call } => {
            let v = vcpu_of(state, p).expect("every partition has a vCPU");
            let core = state.vcpu_core(v).unwrap_or(0);
            regs = call.regs(p);
            (core, state.hypercall(core, &mut regs), Some(v))
        }
        Action::Interrupt { core, intid } => {
            let core = usize::from(core);
            (core, state.interrupt(core, intid, &mut regs), None)
        }
        Action::Tick(core) => {
            let core = usize::from(core);
            (core, state.tick(core, &mut regs), None)
        }
        Action::Reschedule(core) => {
            let core = usize::from(core);
            (core, state.reschedule(core, &mut regs), None)
        }
        Action::Fault(core) => {
            let core = usize::from(core);
            (
                core,
                state.fault(core, StopReason::Exception, &mut regs),
                None,
            )
        }
        Action::Reload(core) => {
            let core = usize::from(core);
            let now = state.clock() + 100;
            state.advance_clock(now);
            let kick = match state.reload_work(core) {
                Some(ReloadWork::Reload {
                    partition, from, ..
                }) => state.reload_progress(partition, from + 0x1_0000, true),
                Some(ReloadWork::Stuck { kick, .. }) => kick,
                None => 0,
            };
            let mut seen = Vec::new();
            if prompt_kicks {
                reschedule_kicked(state, kick, usize::MAX, &mut seen);
            }
            return Report {
                outcome: Outcome {
                    kick,
                    ..Outcome::CONTINUE
                },
                status: None,
                continued: false,
                seen,
            };
        }
    };
    let continued = outcome.next == Next::Continue;
    let mut status = None;
    if let Some(v) = caller {
        if continued && state.current(core) == Some(v) {
            status = Status::from_register(regs[0]);
        } else if state.vcpu_state(v) == Some(VcpuState::Ready) {
            status = state
                .saved_regs(v)
                .and_then(|r| Status::from_register(r[0]));
        }
    }
    let mut seen = Vec::new();
    if let Some(now) = state.current(core)
        && (caller == Some(now) || before.get(core).copied().flatten() != Some(now))
    {
        seen.push((core, now, regs));
    }
    if prompt_kicks {
        reschedule_kicked(state, outcome.kick, core, &mut seen);
    }
    Report {
        outcome,
        status,
        continued,
        seen,
    }
}

/// The cores in `kick` but `here` take their kick: each reschedules, and
/// what it switches to is noted in `seen`.
fn reschedule_kicked(
    state: &mut KernelState,
    kick: u8,
    here: usize,
    seen: &mut Vec<(usize, VcpuId, [u64; 8])>,
) {
    for other in (0..CORES).filter(|&c| c != here && kick & (1 << c) != 0) {
        let was = state.current(other);
        let mut regs = [0u64; 8];
        state.reschedule(other, &mut regs);
        if let Some(now) = state.current(other)
            && was != Some(now)
        {
            seen.push((other, now, regs));
        }
    }
}
