// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The state machine, driven at random: hundreds of steps of hypercalls with
//! random (often invalid) registers from random cores, interrupts, ticks,
//! kicks, faults, restarts (finished or abandoned by the glue) and partition
//! control (status, stop, restart, of others and of itself), against a
//! small seeded system. After every
//! step: no panic, every invariant, a refused call changed nothing, and no
//! partition holds a capability it could not have come by legitimately.

use std::collections::HashMap;

use hv_abi::hypercall::{
    Badge, CapSlot, FUNCTION_BASE, Hypercall, MessageInfo, Rights, Status, StopReason,
};
use proptest::prelude::{Just, Strategy, any, prop_oneof, proptest};
use proptest::test_runner::{Config, TestRunner};

use super::support::{
    D, G, Machine, Part, R, System, W, endpoint, fid, irq, notification, object, p, rights,
};

const C: Rights = Rights::CONTROL;
use crate::cap::{NotificationId, ReplyId, SlotRef};
use crate::sched::VcpuId;
use crate::state::properties::{self, Policy};
use crate::state::{
    Effect, EndpointSeed, FaultSignalSeed, IrqSeed, KernelState, Next, Outcome, PartitionState,
    ReloadWork, ReplySeed, VcpuState, VmExit,
};
use hv_image::Object;

/// Six partitions on two cores, nine vCPUs, five endpoints (two carrying
/// capabilities), two notifications, two interrupts; the first two
/// partitions restart on a fault, the next two stop. Partition capabilities:
/// c controls a (slot 4); b controls itself (slot 6); d may look at and
/// control c, and pass that on (slot 4). Reply objects: b owns two (slots 7
/// and 8), d one (slot 6). Partition e is a virtual machine with two vCPUs
/// (restarting on a fault), a client of endpoint 0; f is its monitor, which
/// serves its exits on endpoint 4 (slot 0) and holds its vCPUs (slots 1 and
/// 2, with every right; slot 3, vCPU 7 with READ only) and a reply object.
/// Fault signals: d hears of c's stops on notification 0, and a of its own
/// on notification 1 (a seed may say so; the manifest would not).
fn system() -> System {
    let a = Part::new(
        0b11,
        10,
        &[
            endpoint(0, &[W, G], 1),
            endpoint(1, &[W], 2),
            notification(0, &[W], 0b1),
            object(Object::Memory(0), &[R, W, D]),
            endpoint(2, &[R], 0),
            notification(1, &[R], 0),
        ],
    )
    .vcpus(2)
    .restart();
    let b = Part::new(
        0b01,
        10,
        &[
            endpoint(0, &[R, G], 0),
            endpoint(1, &[R], 0),
            notification(0, &[R], 0),
            endpoint(2, &[W, G, D], 3),
            object(irq(0), &[W]),
            object(Object::Device(5), &[W]),
            object(Object::Partition(p(1).number()), &[R, C]),
            object(Object::Reply(ReplyId(0).number()), &[W]),
            object(Object::Reply(ReplyId(1).number()), &[W, D]),
        ],
    )
    .restart();
    let c = Part::new(
        0b10,
        20,
        &[
            endpoint(0, &[W], 4),
            endpoint(2, &[R], 0),
            notification(1, &[W, D], 0),
            object(Object::Memory(1), &[R, W, D, G]),
            object(Object::Partition(p(0).number()), &[R, C]),
        ],
    );
    let d = Part::new(
        0b11,
        5,
        &[
            endpoint(1, &[W, G], 5),
            endpoint(3, &[R, W, G, D], 0),
            object(Object::Memory(2), &[R, W, D]),
            notification(0, &[R], 0),
            object(Object::Partition(p(2).number()), &[R, C, D]),
            object(Object::Reply(ReplyId(2).number()), &[W]),
        ],
    )
    .vcpus(2);
    let e = Part::new(0b11, 15, &[endpoint(0, &[W], 6)])
        .vcpus(2)
        .vm(4)
        .restart();
    // e's vCPUs 6 and 7 are its vCPUs 0 and 1.
    let vcpu = |i: u8, r: &[Rights]| {
        object(
            Object::Vcpu {
                partition: 4,
                vcpu: i - 6,
            },
            r,
        )
    };
    let f = Part::new(
        0b11,
        12,
        &[
            endpoint(4, &[R], 0),
            vcpu(6, &[R, W, C]),
            vcpu(7, &[R, W, C]),
            vcpu(7, &[R]),
            object(Object::Reply(ReplyId(3).number()), &[W]),
        ],
    );
    let mut system = System::new(2, vec![a, b, c, d, e, f], 5, 2);
    system.endpoints = vec![
        EndpointSeed { server: Some(p(1)) },
        EndpointSeed { server: Some(p(1)) },
        EndpointSeed { server: None },
        EndpointSeed { server: Some(p(3)) },
        EndpointSeed { server: Some(p(5)) },
    ];
    system.replies = vec![
        ReplySeed { owner: p(1) },
        ReplySeed { owner: p(1) },
        ReplySeed { owner: p(3) },
        ReplySeed { owner: p(5) },
    ];
    system.irqs = vec![
        IrqSeed {
            intid: 40,
            notification: NotificationId(0),
            badge: Badge(0x100),
            device: Some(5),
        },
        IrqSeed {
            intid: 41,
            notification: NotificationId(1),
            badge: Badge(0x200),
            device: None,
        },
    ];
    system.fault_signals = vec![
        FaultSignalSeed {
            partition: p(2),
            controller: p(3),
            notification: NotificationId(0),
            badge: Badge(0x400),
        },
        FaultSignalSeed {
            partition: p(0),
            controller: p(2),
            notification: NotificationId(1),
            badge: Badge(0x800),
        },
    ];
    system
}

/// What each partition could legitimately come to hold: the seed, closed
/// under transfer (a holder of an object with DERIVE, and of an endpoint
/// with WRITE and GRANT, can pass the object to anyone holding the endpoint
/// with READ). Derivation only shrinks, so it adds nothing.
struct Oracle {
    /// The same bound, and the others, as `state::properties` states them.
    policy: Box<Policy>,
    may: HashMap<(u8, Object), Rights>,
    /// Per object: the badges seeded on it, and whether some seeded holder
    /// may mint any badge (badge 0 and DERIVE).
    badges: HashMap<Object, (Vec<u64>, bool)>,
}

impl Oracle {
    fn new(system: &System) -> Self {
        let mut may: HashMap<(u8, Object), Rights> = HashMap::new();
        let mut badges: HashMap<Object, (Vec<u64>, bool)> = HashMap::new();
        for (i, part) in system.parts.iter().enumerate() {
            for cap in part.caps.iter().flatten() {
                let held = may.entry((i as u8, cap.object)).or_insert(Rights::NONE);
                *held = held.union(cap.rights);
                let entry = badges.entry(cap.object).or_default();
                entry.0.push(cap.badge.0);
                entry.1 |= cap.badge.0 == 0 && cap.rights.contains(D);
            }
        }
        let partitions = system.parts.len() as u8;
        loop {
            let before = may.clone();
            for e in 0..system.endpoints.len() as u8 {
                let ep = Object::Endpoint(u16::from(e));
                let has = |m: &HashMap<_, Rights>, q: u8, r: Rights| {
                    m.get(&(q, ep)).is_some_and(|x| x.contains(r))
                };
                for from in (0..partitions).filter(|&q| has(&before, q, rights(&[W, G]))) {
                    for to in (0..partitions).filter(|&q| has(&before, q, R)) {
                        for (&(holder, object), &r) in &before {
                            if holder == from && r.contains(D) {
                                let held = may.entry((to, object)).or_insert(Rights::NONE);
                                *held = held.union(r);
                            }
                        }
                    }
                }
            }
            if may == before {
                break;
            }
        }
        let policy = Box::new(system.with_seed(Policy::new));
        Self {
            policy,
            may,
            badges,
        }
    }

    fn check(&self, state: &KernelState) {
        if let Err(broken) = properties::check_all(state, &self.policy) {
            panic!("{broken}");
        }
        for partition in 0..state.partition_count() as u8 {
            for (slot, cap) in state.caps().slots(p(partition)) {
                let allowed = self
                    .may
                    .get(&(partition, cap.object))
                    .copied()
                    .unwrap_or_default();
                assert!(
                    allowed.contains(cap.rights),
                    "forged: partition {partition} {slot:?} holds {cap:?}, may hold {allowed:?}"
                );
                let (seeded, mint) = self.badges.get(&cap.object).cloned().unwrap_or_default();
                assert!(
                    mint || seeded.contains(&cap.badge.0),
                    "forged badge: {cap:?}"
                );
            }
        }
    }
}

#[derive(Clone, Debug)]
enum Action {
    Hvc {
        core: usize,
        regs: [u64; 8],
    },
    Interrupt {
        core: usize,
        intid: u32,
    },
    Tick {
        core: usize,
    },
    Reschedule {
        core: usize,
    },
    Fault {
        core: usize,
        reason: u64,
    },
    RestartDone {
        partition: u8,
    },
    RestartAbandoned {
        partition: u8,
    },
    /// The glue's tick on `core`, `advance` ticks later: it does what
    /// `reload_work` says, finishing the reload if `complete`.
    Reload {
        core: usize,
        advance: u8,
        complete: bool,
    },
    /// The running vCPU (a virtual machine's, or not) exits with this
    /// syndrome.
    VmExit {
        core: usize,
        esr: u64,
        source: u64,
    },
    VmHalt {
        core: usize,
        pending: bool,
    },
    /// Interrupt `intid` (50 is passed through, 51 not) fires on `core` for
    /// guest vCPU `vcpu`.
    VmIrq {
        core: usize,
        vcpu: u8,
        intid: u32,
    },
    VmSgi {
        core: usize,
        value: u64,
    },
    /// The virtual timer of `vcpu` fires (on its own core).
    VmTimer {
        vcpu: u8,
    },
    /// The glue enters vCPU `vcpu` and takes its work.
    TakeEntry {
        vcpu: u8,
    },
    /// The timer fires on `core` for time's sake, `advance` microseconds
    /// later: a window may end, a budget run out or be refilled.
    Time {
        core: usize,
        advance: u16,
    },
}

/// Random steps; `vm` weighs the virtual machine's (its exits, WFI, SGIs,
/// timer, and its monitor's calls) against the rest, `timed` the timer's
/// time events.
fn action(vm: u32, timed: u32) -> proptest::strategy::BoxedStrategy<Action> {
    let base = u64::from(FUNCTION_BASE);
    // Biased towards IPC, and towards slot 0, where every partition keeps
    // its main endpoint; otherwise vCPUs mostly block on endpoints nobody
    // serves and the interesting rendezvous are rare.
    let ipc = [
        Hypercall::Call,
        Hypercall::ReplyRecv,
        Hypercall::Recv,
        Hypercall::Send,
        Hypercall::Reply,
        Hypercall::Signal,
        Hypercall::Wait,
        Hypercall::IrqAck,
        Hypercall::SaveReply,
        Hypercall::ReplySaved,
    ];
    let x0 = prop_oneof![
        6 => proptest::sample::select(ipc.to_vec()).prop_map(fid),
        8 => proptest::sample::select(Hypercall::ALL.to_vec()).prop_map(fid),
        1 => any::<u64>(),
        1 => (base + 16)..(base + 20),
    ];
    let slot = prop_oneof![6 => Just(0u64), 10 => 0u64..8, 1 => Just(64u64), 1 => any::<u64>()];
    let info = prop_oneof![
        6 => (0usize..=5).prop_map(|n| MessageInfo::words(n).0),
        3 => (0usize..=5, 0u32..8).prop_map(|(n, s)| MessageInfo::words(n).with_capability(CapSlot(s)).0),
        // Slot 3 holds derivable memory in the partitions that may grant.
        3 => Just(MessageInfo::words(1).with_capability(CapSlot(3)).0),
        2 => (0u64..64, 0u64..4).prop_map(|(r, b)| r | b << 32),
        1 => any::<u64>(),
    ];
    let x3 = prop_oneof![4 => 0u64..12, 1 => any::<u64>()];
    let hvc = (0usize..2, x0, slot, info, x3, any::<[u64; 4]>()).prop_map(
        |(core, x0, x1, x2, x3, [a, b, c, d])| Action::Hvc {
            core,
            regs: [x0, x1, x2, x3, a, b, c, d],
        },
    );
    // Partition control, aimed at the slots that hold partition capabilities
    // (and their neighbours).
    let control = [
        Hypercall::PartitionStatus,
        Hypercall::PartitionStop,
        Hypercall::PartitionRestart,
    ];
    let control = (
        0usize..2,
        proptest::sample::select(control.to_vec()),
        3u64..8,
    )
        .prop_map(|(core, call, slot)| Action::Hvc {
            core,
            regs: [fid(call), slot, 0, 0, 0, 0, 0, 0],
        });
    // Receives naming a receive slot (slots 9 and up are empty at first)
    // on the endpoints the receivers keep in slots 0 and 1.
    let accepting = (
        0usize..2,
        proptest::sample::select(vec![Hypercall::Recv, Hypercall::ReplyRecv]),
        0u64..2,
        0usize..=5,
        9u32..12,
    )
        .prop_map(|(core, call, slot, n, accept)| Action::Hvc {
            core,
            regs: [
                fid(call),
                slot,
                MessageInfo::words(n).with_capability(CapSlot(accept)).0,
                0,
                0,
                0,
                0,
                0,
            ],
        });
    // The monitor's calls: on its vCPU slots, with the answers' flags.
    let vcpu_calls = [
        Hypercall::VcpuStart,
        Hypercall::VcpuStop,
        Hypercall::VcpuInject,
        Hypercall::VcpuRead,
        Hypercall::VcpuWrite,
        Hypercall::VcpuStatus,
        Hypercall::ReplyRecv,
        Hypercall::Reply,
        Hypercall::Recv,
    ];
    // The monitor is pinned to core 0.
    let monitor = (
        prop_oneof![4 => Just(0usize), 1 => Just(1usize)],
        proptest::sample::select(vcpu_calls.to_vec()),
        prop_oneof![3 => 1u64..4, 2 => Just(0u64), 1 => 0u64..8],
        prop_oneof![4 => 0u64..40, 1 => any::<u64>()],
        0u64..4,
        any::<u64>(),
    )
        .prop_map(|(core, call, slot, x2, flags, value)| {
            // Answers are 2..5 words: flags, then the value(s).
            let (x2, x3) = match call {
                Hypercall::ReplyRecv | Hypercall::Reply => (2 + x2 % 4, flags),
                _ => (x2, value),
            };
            Action::Hvc {
                core,
                regs: [fid(call), slot, x2, x3, value, 1, 2, 3],
            }
        });
    let exit_esr = prop_oneof![
        // Data aborts with a syndrome: any size, direction, register.
        (
            0u64..4,
            any::<bool>(),
            0u64..32,
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(|(size, write, rt, sign, wide)| (0x24 << 26)
                | (1 << 24)
                | (size << 22)
                | (u64::from(sign) << 21)
                | (rt << 16)
                | (u64::from(wide) << 15)
                | (u64::from(write) << 6)
                | 7),
        (0u64..1 << 22).prop_map(|iss| (0x18 << 26) | iss),
        Just(0x17 << 26),
        any::<u32>().prop_map(u64::from),
    ];
    let steps = prop_oneof![
        16 => hvc,
        1 => control,
        2 => accepting,
        4 * vm => monitor,
        3 * vm => (0usize..2, exit_esr, any::<u64>()).prop_map(|(core, esr, source)| Action::VmExit { core, esr, source }),
        2 * vm => (0usize..2, any::<bool>()).prop_map(|(core, pending)| Action::VmHalt { core, pending }),
        vm.div_ceil(2) => (0usize..2, 4u8..9, 50u32..52).prop_map(|(core, vcpu, intid)| Action::VmIrq { core, vcpu, intid }),
        vm => (0usize..2, prop_oneof![0u64..0x1000_0000, any::<u64>()]).prop_map(|(core, value)| Action::VmSgi { core, value }),
        vm => (5u8..9).prop_map(|vcpu| Action::VmTimer { vcpu }),
        2 * vm => (5u8..9).prop_map(|vcpu| Action::TakeEntry { vcpu }),
        2 => (0usize..2, 40u32..43).prop_map(|(core, intid)| Action::Interrupt { core, intid }),
        3 => (0usize..2).prop_map(|core| Action::Tick { core }),
        2 => (0usize..2).prop_map(|core| Action::Reschedule { core }),
        1 => (0usize..2, any::<u64>()).prop_map(|(core, reason)| Action::Fault { core, reason }),
        2 => (0u8..7).prop_map(|partition| Action::RestartDone { partition }),
        1 => (0u8..7).prop_map(|partition| Action::RestartAbandoned { partition }),
        2 => (0usize..2, prop_oneof![0u8..3, 100u8..=120], any::<bool>()).prop_map(|(core, advance, complete)| Action::Reload { core, advance, complete }),
    ];
    if timed == 0 {
        return steps.boxed();
    }
    let time = (0usize..2, 0u16..2500).prop_map(|(core, advance)| Action::Time { core, advance });
    prop_oneof![16 => steps, timed => time].boxed()
}

/// The slots that `before` to `after` filled with a capability transferred
/// from another partition.
fn transferred(before: &KernelState, after: &KernelState) -> Vec<(u8, u64)> {
    let mut landed = Vec::new();
    for q in 0..after.partition_count() as u8 {
        for (at, _) in after.caps().slots(p(q)) {
            let slot = u64::from(at.slot().0);
            if before.capability(p(q), slot).is_none()
                && after
                    .caps()
                    .parent(at)
                    .is_some_and(|up| up.partition() != at.partition())
            {
                landed.push((q, slot));
            }
        }
    }
    landed
}

/// A capability may land only in a slot its receiver named: one that a vCPU
/// of that partition waited naming, or that the hypercall `regs` (a
/// receiving call) of the vCPU running on `core` named. At most one lands
/// per step.
fn check_landings(before: &KernelState, after: &KernelState, core: usize, regs: &[u64; 8]) {
    let landed = transferred(before, after);
    assert!(landed.len() <= 1, "several capabilities landed: {landed:?}");
    for &(q, slot) in &landed {
        let waited = (0..before.vcpu_count() as u8).any(|v| {
            before.vcpu_partition(VcpuId::of(v).unwrap()) == Some(p(q))
                && matches!(
                    before.vcpu_state(VcpuId::of(v).unwrap()),
                    Some(VcpuState::Receiving { accept, .. }) if accept.slot() == Some(slot)
                )
        });
        let receiving = regs[0] == fid(Hypercall::Recv) || regs[0] == fid(Hypercall::ReplyRecv);
        let named_now = receiving
            && before.current(core).and_then(|v| before.vcpu_partition(v)) == Some(p(q))
            && MessageInfo(regs[2]).capability().map(|c| u64::from(c.0)) == Some(slot);
        assert!(
            waited || named_now,
            "a capability landed in slot {slot} of partition {q}, which no receiver named"
        );
    }
}

/// Runs `action`, checking everything a step must keep.
fn run(m: &mut Machine, oracle: &Oracle, action: &Action) {
    let before = m.state.clone();
    match *action {
        Action::Hvc { core, regs } => {
            let caller = before.current(core).and_then(|v| before.vcpu_partition(v));
            let out = m.raw(core, regs);
            check_landings(&before, &m.state, core, &regs);
            let status = Status::from_register(m.regs[core][0]);
            if regs[0] == fid(Hypercall::Revoke)
                && status == Some(Status::Success)
                && let Some(top) = caller.and_then(|q| SlotRef::new(q, regs[1]))
                && let Err(broken) = properties::revoke_exact(before.caps(), m.state.caps(), top)
            {
                panic!("{broken}");
            }
            // A refused call changes nothing but x0 (and the clock the glue
            // gives a timed state after every step).
            if out.next == Next::Continue
                && status.is_some_and(|s| s != Status::Success)
                && out.effect.is_none()
            {
                let mut expected = before.clone();
                expected.clock_in(core, m.now);
                assert!(m.state == expected, "a refused {regs:x?} changed the state");
                assert_eq!(m.regs[core][1..], regs[1..]);
            }
        }
        Action::Interrupt { core, intid } => {
            m.step(core, |s, r| s.interrupt(core, intid, r));
        }
        Action::Tick { core } => {
            m.tick(core);
        }
        Action::Reschedule { core } => {
            m.reschedule(core);
        }
        Action::Fault { core, reason } => {
            let reason = StopReason::from_register(reason).unwrap_or(StopReason::Exception);
            m.step(core, |s, r| s.fault(core, reason, r));
        }
        Action::RestartDone { partition } => {
            m.state.restart_done(p(partition));
            m.state.check_invariants().unwrap();
        }
        Action::RestartAbandoned { partition } => {
            let kick = m.state.restart_abandoned(p(partition));
            m.state.check_invariants().unwrap();
            for c in (0..2).filter(|c| kick & (1 << c) != 0) {
                m.reschedule(c);
            }
        }
        Action::Reload {
            core,
            advance,
            complete,
        } => {
            let now = m.state.clock() + u64::from(advance);
            m.state.advance_clock(now);
            match m.state.reload_work(core) {
                Some(ReloadWork::Reload {
                    partition, from, ..
                }) => {
                    // Never while a core may still run its old code.
                    assert_eq!(before.reload_state(partition).1, 0);
                    assert_eq!(
                        before.partition_state(partition),
                        Some(PartitionState::Restarting)
                    );
                    let kick = m
                        .state
                        .reload_progress(partition, from + 0x1_0000, complete);
                    for c in (0..2).filter(|c| kick & (1 << c) != 0) {
                        m.reschedule(c);
                    }
                }
                Some(ReloadWork::Stuck {
                    partition,
                    cores,
                    kick,
                }) => {
                    assert_ne!(cores, 0);
                    assert_eq!(
                        m.state.partition_state(partition),
                        Some(PartitionState::Stopped)
                    );
                    m.state.check_invariants().unwrap();
                    for c in (0..2).filter(|c| kick & (1 << c) != 0) {
                        m.reschedule(c);
                    }
                }
                None => {}
            }
            m.state.check_invariants().unwrap();
        }
        Action::VmExit { core, esr, source } => {
            let exit = VmExit::describe(esr, 0x1000, 0x0900_0000, 0x4000_0000, source);
            let exiting = m.on(core).filter(|v| m.state.is_vm(*v));
            // The fast path, where it applies, must do what the general
            // path does.
            let mut general = m.state.clone();
            let mut general_regs = m.regs[core];
            let expected = general.vm_exit_general(core, exit, &mut general_regs);
            general.clock_in(core, m.now);
            let out = m.step(core, |s, r| s.vm_exit(core, exit, r));
            assert_eq!(out, expected, "the VM exit fast path differs");
            assert_eq!(m.regs[core], general_regs, "the VM exit fast path differs");
            assert!(*m.state == *general, "the VM exit fast path differs");
            if let Some(v) = exiting {
                assert_ne!(m.on(core), Some(v), "an exit never continues");
                assert!(!matches!(out.next, Next::Continue));
                assert!(matches!(
                    m.state.vcpu_state(v),
                    Some(
                        VcpuState::ExitSending { .. }
                            | VcpuState::ExitReply { .. }
                            | VcpuState::Off
                    )
                ));
            }
        }
        Action::VmIrq { core, vcpu, intid } => {
            m.state.pass_through(50);
            // Nothing but the clock the glue gives a timed state after it.
            let mut before = m.state.clone();
            before.clock_in(core, m.now);
            let mut taken = true;
            m.step(core, |s, r| {
                s.vm_interrupt(core, VcpuId::of(vcpu).unwrap(), intid, r)
                    .unwrap_or_else(|| {
                        taken = false;
                        Outcome::CONTINUE
                    })
            });
            if taken {
                assert_eq!(intid, 50, "only a passed-through interrupt is taken");
                assert!(m.state.is_vm(VcpuId::of(vcpu).unwrap()));
            } else {
                assert!(
                    *m.state == *before,
                    "an interrupt nobody takes changes nothing"
                );
            }
        }
        Action::VmHalt { core, pending } => {
            m.step(core, |s, r| s.vm_halt(core, pending, r));
        }
        Action::VmSgi { core, value } => {
            m.step(core, |s, r| s.vm_sgi(core, value, r));
        }
        Action::VmTimer { vcpu } => {
            let core = m.state.vcpu_core(VcpuId::of(vcpu).unwrap()).unwrap_or(0);
            // Its usual case's shortcut (`wake_on_idle_core`) ends exactly
            // where the general path does.
            let mut general = m.state.clone();
            let mut general_regs = m.regs[core];
            let expected = general.vm_timer_general(core, 1 << vcpu, &mut general_regs);
            // As `step` does after the real one.
            general.clock_in(core, m.now);
            let out = m.step(core, |s, r| s.vm_timer(core, 1 << vcpu, r));
            assert_eq!(out, expected);
            assert_eq!(m.regs[core], general_regs);
            assert!(*m.state == *general, "vm_timer and its general path agree");
        }
        Action::Time { core, advance } => {
            m.now += u64::from(advance);
            m.time_event(core, m.now);
        }
        Action::TakeEntry { vcpu } => {
            let entry = m.state.take_vm_entry(VcpuId::of(vcpu).unwrap());
            if !m.state.is_vm(VcpuId::of(vcpu).unwrap()) {
                assert!(entry.is_none_or(|e| e.is_empty()));
            }
            m.state.check_invariants().unwrap();
        }
    }
    check_letting_go(&before, &m.state, action);
    oracle.check(&m.state);
}

/// The core an action runs on, if it is one core's step.
fn acting_core(action: &Action) -> Option<usize> {
    match *action {
        Action::Hvc { core, .. }
        | Action::Interrupt { core, .. }
        | Action::Tick { core }
        | Action::Reschedule { core }
        | Action::Fault { core, .. }
        | Action::Reload { core, .. }
        | Action::VmExit { core, .. }
        | Action::VmIrq { core, .. }
        | Action::VmHalt { core, .. }
        | Action::VmSgi { core, .. }
        | Action::Time { core, .. } => Some(core),
        _ => None,
    }
}

/// The reload protocol's safety, stated apart from the state's own
/// bookkeeping: when a partition stops, every other core that was running
/// one of its vCPUs is waited for, and only a step of that core itself
/// (taken outside any vCPU) lets go of it.
fn check_letting_go(before: &KernelState, after: &KernelState, action: &Action) {
    let acting = acting_core(action);
    for q in 0..after.partition_count() as u8 {
        let (_, was) = before.reload_state(p(q));
        let (_, now) = after.reload_state(p(q));
        let kept = match acting {
            // A reload's kicks reschedule any core.
            Some(_) if matches!(action, Action::Reload { .. }) => 0,
            // A step on a core is taken outside any vCPU.
            Some(core) => was & !(1 << core),
            None => was,
        };
        assert_eq!(
            now & kept,
            kept,
            "partition {q}: a core let go by another's step"
        );
        let stopped = before.partition_state(p(q)) == Some(PartitionState::Active)
            && after.partition_state(p(q)) != Some(PartitionState::Active);
        if stopped {
            for c in (0..before.core_count()).filter(|&c| Some(c) != acting) {
                let ran = before
                    .current(c)
                    .is_some_and(|v| before.vcpu_partition(v) == Some(p(q)));
                assert!(
                    !ran || now & (1 << c) != 0,
                    "partition {q} stopped while core {c} ran it, and nobody waits for core {c}"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(Config { cases: 96, ..Config::default() })]

    #[test]
    fn random_virtual_machine_steps_keep_every_invariant(actions in proptest::collection::vec(action(8, 0), 1..400)) {
        let system = system();
        let oracle = Oracle::new(&system);
        let mut m = Machine::new(&system);
        for action in &actions {
            run(&mut m, &oracle, action);
        }
    }

    #[test]
    fn random_timed_steps_keep_every_invariant(actions in proptest::collection::vec(action(4, 3), 1..400)) {
        let system = timed_system();
        let oracle = Oracle::new(&system);
        let mut m = Machine::new(&system);
        for action in &actions {
            run(&mut m, &oracle, action);
        }
    }

    #[test]
    fn random_steps_keep_every_invariant(actions in proptest::collection::vec(action(1, 0), 1..400)) {
        let system = system();
        let oracle = Oracle::new(&system);
        let mut m = Machine::new(&system);
        for action in &actions {
            run(&mut m, &oracle, action);
        }
    }
}

/// [`system`] cut into windows on both cores (core 0: a alone, so that b
/// serves it on its time, then the rest, then background; core 1: a and c,
/// then the rest, then background), with budgets for the second vCPUs of a and d (core 1). The
/// property test runs every hypercall through both IPC paths here too.
fn timed_system() -> System {
    system()
        .scheduled(super::support::schedule(&[
            &[
                (3000, Some(0b00_0001)),
                (2000, Some(0b11_1110)),
                (1000, None),
            ],
            &[
                (2000, Some(0b00_0101)),
                (3000, Some(0b11_1010)),
                (1000, None),
            ],
        ]))
        .budgeted(&[
            super::support::budget(0, 1, 500, 3000),
            super::support::budget(3, 1, 1000, 6000),
        ])
}

/// What `runs` runs of 300 random steps (`vm` weighing the virtual
/// machine's) reach, by name, with how often.
fn reached(vm: u32, runs: usize) -> HashMap<&'static str, usize> {
    let system = system();
    let oracle = Oracle::new(&system);
    let mut runner = TestRunner::deterministic();
    let mut seen: HashMap<&'static str, usize> = HashMap::new();
    let strategy = proptest::collection::vec(action(vm, 0), 300);
    for _ in 0..runs {
        let actions =
            proptest::strategy::ValueTree::current(&strategy.new_tree(&mut runner).unwrap());
        let mut m = Machine::new(&system);
        for action in &actions {
            let before = m.state.clone();
            if let Action::Hvc { core, regs } = *action
                && (regs[0] == fid(Hypercall::Call) || regs[0] == fid(Hypercall::ReplyRecv))
            {
                let mut regs = regs;
                if m.state.clone().fast_path(core, &mut regs).is_some() {
                    let exit = m
                        .state
                        .caller_of(m.on(core).unwrap_or(VcpuId::of(0).unwrap()));
                    let answer = regs[0] == fid(Hypercall::ReplyRecv)
                        && exit.is_some_and(|c| m.state.is_vm(c));
                    // Answers to exits on the fast path are rare here (the
                    // monitor must wait on the exiting vCPU's core): a test
                    // in `vm.rs` sets them up.
                    *seen
                        .entry(if answer {
                            "exit answered on the fast path"
                        } else {
                            "fast path"
                        })
                        .or_default() += 1;
                }
            }
            if let Action::VmExit { core, esr, source } = *action {
                let exit = VmExit::describe(esr, 0x1000, 0x0900_0000, 0x4000_0000, source);
                let mut regs = m.regs[core];
                if m.state
                    .clone()
                    .vm_exit_fast(core, &exit, &mut regs)
                    .is_some()
                {
                    *seen.entry("exit on the fast path").or_default() += 1;
                }
            }
            run(&mut m, &oracle, action);
            let out = m.last;
            let mut see = |what| *seen.entry(what).or_default() += 1;
            if let Action::Hvc { regs, .. } = action
                && let Next::Switch {
                    from: Some(from),
                    to,
                } = out.next
                && regs[0] == fid(Hypercall::Call)
                && m.state.vcpu_state(from) == Some(VcpuState::AwaitingReply { server: to })
            {
                see("call switched straight to its receiver");
            }
            if out.kick != 0 {
                see("kick");
            }
            let called = |call: Hypercall| matches!(action, Action::Hvc { regs, .. } if regs[0] == fid(call));
            let succeeded = |core: usize| m.regs[core][0] == Status::Success.to_register();
            if let Action::Hvc { core, .. } = *action {
                if called(Hypercall::PartitionStatus) && succeeded(core) {
                    see("partition status");
                }
                if called(Hypercall::SaveReply) && succeeded(core) {
                    see("saved reply");
                }
                if called(Hypercall::ReplySaved) && succeeded(core) {
                    see("replied through a reply object");
                }
                if (called(Hypercall::PartitionStop) || called(Hypercall::PartitionRestart))
                    && m.regs[core][0] == Status::Busy.to_register()
                {
                    see("busy");
                }
            }
            match out.effect {
                Some(Effect::Restart { .. }) if called(Hypercall::PartitionRestart) => {
                    see("controller restart");
                }
                Some(Effect::Fault { .. }) if called(Hypercall::PartitionStop) => {
                    see("controller stop");
                }
                Some(Effect::Restart { .. }) => see("restart"),
                Some(Effect::Fault { .. }) => see("stop"),
                Some(Effect::UnmaskIrq(_)) => see("unmask"),
                Some(Effect::Log { .. }) => see("log"),
                Some(Effect::VcpuRegister { .. }) => see("vcpu register"),
                None => {}
            }
            if m.regs
                .iter()
                .any(|r| r[0] == Status::PeerGone.to_register())
                && m.state != before
            {
                see("peer gone");
            }
            if let Action::VmExit { core, .. } = *action
                && let Some(v) = before.current(core).filter(|v| before.is_vm(*v))
                && matches!(
                    m.state.vcpu_state(v),
                    Some(VcpuState::ExitReply { .. } | VcpuState::ExitSending { .. })
                )
            {
                see("exit sent");
            }
            if let Action::Hvc { core, .. } = *action
                && called(Hypercall::ReplyRecv) | called(Hypercall::Reply)
                && (5u8..9).any(|g| {
                    matches!(before.vcpu_state(VcpuId::of(g).unwrap()), Some(VcpuState::ExitReply { server }) if before.current(core) == Some(server))
                        && m.state.vcpu_state(VcpuId::of(g).unwrap()) != before.vcpu_state(VcpuId::of(g).unwrap())
                })
            {
                see("exit answered");
            }
            if (6u8..8).any(|g| {
                before.vcpu_state(VcpuId::of(g).unwrap()) != Some(VcpuState::Halted)
                    && m.state.vcpu_state(VcpuId::of(g).unwrap()) == Some(VcpuState::Halted)
            }) {
                see("vCPU halted");
            }
            if let Action::VmIrq {
                intid: 50, vcpu, ..
            } = *action
                && *m.state != *before
                && m.state.is_vm(VcpuId::of(vcpu).unwrap())
            {
                see("passed-through interrupt taken");
            }
            if (6u8..8).any(|g| {
                before.vcpu_state(VcpuId::of(g).unwrap()) == Some(VcpuState::Halted)
                    && matches!(
                        m.state.vcpu_state(VcpuId::of(g).unwrap()),
                        Some(VcpuState::Ready | VcpuState::Running)
                    )
            }) {
                see("halted vCPU woken");
            }
            if called(Hypercall::VcpuStart)
                && m.regs.iter().any(|_| true)
                && (6u8..8).any(|g| {
                    before.vcpu_state(VcpuId::of(g).unwrap()) == Some(VcpuState::Off)
                        && m.state.vcpu_state(VcpuId::of(g).unwrap()) != Some(VcpuState::Off)
                })
            {
                see("vCPU started");
            }
            if called(Hypercall::VcpuStop)
                && (6u8..8).any(|g| {
                    before.vcpu_state(VcpuId::of(g).unwrap()) != Some(VcpuState::Off)
                        && m.state.vcpu_state(VcpuId::of(g).unwrap()) == Some(VcpuState::Off)
                })
            {
                see("vCPU stopped");
            }
            let transferred = (0..4).any(|q| {
                m.state.caps().slots(p(q)).any(|(s, _)| {
                    m.state
                        .caps()
                        .parent(s)
                        .is_some_and(|up| up.partition() != s.partition())
                })
            });
            if transferred {
                see("transfer");
            }
            for q in 0..4 {
                let (was, now) = (before.partition_state(p(q)), m.state.partition_state(p(q)));
                if let Action::Reload { .. } = action
                    && was == Some(PartitionState::Restarting)
                {
                    if now == Some(PartitionState::Active) {
                        see("reload finished");
                    } else if now == Some(PartitionState::Stopped) {
                        see("reload given up: a core did not let go");
                    }
                }
                if m.state.reload_state(p(q)).1 != 0 {
                    see("waiting for a core to let go");
                }
            }
        }
    }
    seen
}

/// The random runs reach what matters: without this, a strategy that only
/// ever produced refused calls would pass the tests above.
#[test]
fn random_steps_reach_the_interesting_states() {
    let mut seen = reached(1, 96);
    for (what, count) in reached(8, 32) {
        *seen.entry(what).or_default() += count;
    }
    for what in [
        "call switched straight to its receiver",
        "fast path",
        "exit on the fast path",
        "kick",
        "restart",
        "stop",
        "unmask",
        "log",
        "peer gone",
        "transfer",
        "partition status",
        "controller stop",
        "controller restart",
        "busy",
        "saved reply",
        "replied through a reply object",
        "exit sent",
        "exit answered",
        "vCPU halted",
        "passed-through interrupt taken",
        "halted vCPU woken",
        "vCPU started",
        "vCPU stopped",
        "vcpu register",
        "reload finished",
        "waiting for a core to let go",
        "reload given up: a core did not let go",
    ] {
        assert!(
            seen.get(what).copied().unwrap_or(0) > 0,
            "never reached: {what} ({seen:?})"
        );
    }
}

/// The timed random runs reach what matters for time: vCPUs parked, budgets
/// spent, and servers running outside their own windows on their callers'
/// time. (The fast path is rare in this system once windows part its
/// pairs; `timing.rs` drives a client and a server at random for that.)
#[test]
fn random_timed_steps_reach_parking_budgets_and_borrowed_time() {
    let system = timed_system();
    let schedule = system.schedule.clone().unwrap();
    let oracle = Oracle::new(&system);
    let mut runner = TestRunner::deterministic();
    let strategy = proptest::collection::vec(action(1, 2), 300);
    let mut seen: HashMap<&'static str, usize> = HashMap::new();
    for _ in 0..48 {
        let actions =
            proptest::strategy::ValueTree::current(&strategy.new_tree(&mut runner).unwrap());
        let mut m = Machine::new(&system);
        for action in &actions {
            run(&mut m, &oracle, action);
            let mut see = |what| *seen.entry(what).or_default() += 1;
            for core in 0..2 {
                if m.state.parked(core) != 0 {
                    see("parked");
                }
                let Some(cur) = m.on(core) else { continue };
                let own = m
                    .state
                    .window(core)
                    .and_then(|w| schedule.windows.get(w))
                    .is_some_and(|w| {
                        m.state.vcpu_partition(cur).is_some_and(|p| {
                            w.owners.names(p.index()) || w.owners == hv_image::Owners::Background
                        })
                    });
                if !own {
                    see("on a caller's time");
                }
            }
            if (0..m.state.vcpu_count() as u8)
                .any(|v| m.state.budget_left(VcpuId::of(v).unwrap()) == Some(0))
            {
                see("budget spent");
            }
        }
    }
    for what in ["parked", "on a caller's time", "budget spent"] {
        assert!(
            seen.get(what).copied().unwrap_or(0) > 0,
            "never reached: {what} ({seen:?})"
        );
    }
}
