// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Partition control: status, stop and restart through `Partition`
//! capabilities.

use hv_abi::hypercall::{Hypercall, REASON_CONTROLLER, Rights, RunState, Status, StopReason};

use super::support::{D, Machine, Part, R, System, W, endpoint, object, p, st, v};
use crate::cap::PartitionId;
use crate::state::{Effect, EndpointSeed, Next, PartitionState, VcpuState};
use hv_image::Object;

const C: Rights = Rights::CONTROL;

/// The controller's reason: partition 0 is the monitor.
const BY_MONITOR: u64 = REASON_CONTROLLER;

/// Core 0: the monitor (partition 0, vCPU 0). Core 1: the worker (partition
/// 1, vCPU 1, stops on a fault, serves endpoint 0) and the other (partition
/// 2, vCPU 2, restarts on a fault, serves endpoint 1), taking turns.
///
/// The monitor's slots: 0 controls the worker, 1 reads the other's status,
/// 2 is a client of endpoint 1, 3 controls itself, 4 controls the other
/// without READ.
fn monitored() -> System {
    let partition = |i: u8, r: &[Rights]| object(Object::Partition(p(i).number()), r);
    let monitor = Part::new(
        0b01,
        10,
        &[
            partition(1, &[R, C]),
            partition(2, &[R]),
            endpoint(1, &[W], 1),
            partition(0, &[R, C]),
            partition(2, &[C]),
        ],
    );
    let worker = Part::new(
        0b10,
        10,
        &[endpoint(0, &[R], 0), object(Object::Memory(7), &[R, W, D])],
    );
    let other = Part::new(0b10, 10, &[endpoint(0, &[W], 3), endpoint(1, &[R], 0)]).restart();
    let mut system = System::new(2, vec![monitor, worker, other], 2, 0);
    system.endpoints = vec![
        EndpointSeed { server: Some(p(1)) },
        EndpointSeed { server: Some(p(2)) },
    ];
    system
}

/// `PartitionStatus` on the monitor's `slot`: (state, faults, reason,
/// restarts), checking x5..x7 are zero.
fn status(m: &mut Machine, slot: u64) -> (RunState, u64, u64, u64) {
    let out = m.hvc(0, Hypercall::PartitionStatus, &[slot, 9, 9, 9, 9, 9, 9]);
    assert_eq!(out, crate::state::Outcome::CONTINUE);
    let regs = m.regs[0];
    assert_eq!(m.status(0), Some(Status::Success), "{regs:x?}");
    assert_eq!(regs[5..], [0, 0, 0]);
    let state = RunState::from_register(regs[1]).unwrap();
    (state, regs[2], regs[3], regs[4])
}

/// What the glue does: the cores still in the partition let go of it at
/// their next kick, then its reload finishes.
fn restart_done(m: &mut Machine, partition: PartitionId) -> u8 {
    let (_, leaving) = m.state.reload_state(partition);
    for core in (0..8).filter(|c| leaving & (1 << c) != 0) {
        m.reschedule(core);
    }
    let kick = m.state.restart_done(partition);
    m.state.check_invariants().unwrap();
    kick
}

#[test]
fn status_follows_a_fault_and_a_restart() {
    let mut m = Machine::new(&monitored());
    assert_eq!(status(&mut m, 0), (RunState::Running, 0, 0, 0));
    assert_eq!(m.on(1), Some(v(1)));
    m.hvc(1, Hypercall::Fault, &[0, 7]);
    assert_eq!(status(&mut m, 0), (RunState::Stopped, 1, 7, 0));
    let out = m.hvc(0, Hypercall::PartitionRestart, &[0]);
    assert_eq!(
        out.effect,
        Some(Effect::Restart {
            partition: p(1),
            reason: StopReason::Controller(0)
        })
    );
    assert_eq!(out.next, Next::Continue);
    assert_eq!(m.status(0), Some(Status::Success));
    assert_eq!(status(&mut m, 0), (RunState::Restarting, 1, BY_MONITOR, 1));
    restart_done(&mut m, p(1));
    // A restart by its controller is not a fault.
    assert_eq!(status(&mut m, 0), (RunState::Running, 1, BY_MONITOR, 1));
    // READ alone is enough to look.
    assert_eq!(status(&mut m, 1), (RunState::Running, 0, 0, 0));
}

#[test]
fn a_fault_under_the_restart_policy_counts_as_fault_and_restart() {
    let mut m = Machine::new(&monitored());
    m.tick(1);
    assert_eq!(m.on(1), Some(v(2)));
    m.hvc(1, Hypercall::Fault, &[0, 0x55]);
    assert_eq!(status(&mut m, 1), (RunState::Restarting, 1, 0x55, 1));
}

#[test]
fn stop_tears_down_like_the_stop_policy() {
    let mut m = Machine::new(&monitored());
    // The other calls the worker, which is not receiving: it waits.
    m.tick(1);
    assert_eq!(m.on(1), Some(v(2)));
    m.hvc(1, Hypercall::Call, &[0, 0]);
    assert_eq!(m.on(1), Some(v(1)));
    let out = m.hvc(0, Hypercall::PartitionStop, &[0]);
    assert_eq!(
        out.effect,
        Some(Effect::Fault {
            partition: p(1),
            reason: StopReason::Controller(0)
        })
    );
    // The worker ran on core 1: that core is told to look again.
    assert_eq!(out.kick, 0b10);
    assert_eq!(out.next, Next::Continue);
    assert_eq!(m.status(0), Some(Status::Success));
    assert_eq!(m.state.partition_state(p(1)), Some(PartitionState::Stopped));
    assert_eq!(m.state.vcpu_state(v(1)), Some(VcpuState::Stopped));
    // Its capabilities stay, as under the stop policy.
    assert!(m.state.capability(p(1), 1).is_some());
    // Its caller gets PeerGone and runs on.
    let out = m.reschedule(1);
    assert_eq!(
        out.next,
        Next::Switch {
            from: None,
            to: v(2)
        }
    );
    assert_eq!(m.regs[1][0], st(Status::PeerGone));
    assert_eq!(status(&mut m, 0), (RunState::Stopped, 0, BY_MONITOR, 0));
    // Stopping it again succeeds and does nothing.
    let before = m.state.clone();
    let out = m.hvc(0, Hypercall::PartitionStop, &[0]);
    assert_eq!(out, crate::state::Outcome::CONTINUE);
    assert_eq!(m.status(0), Some(Status::Success));
    assert!(m.state == before);
}

#[test]
fn stop_overrides_the_targets_own_restart_policy() {
    let mut system = monitored();
    system.parts[0].caps[4] = object(Object::Partition(p(2).number()), &[R, C]);
    let mut m = Machine::new(&system);
    let out = m.hvc(0, Hypercall::PartitionStop, &[4]);
    assert_eq!(
        out.effect,
        Some(Effect::Fault {
            partition: p(2),
            reason: StopReason::Controller(0)
        })
    );
    assert_eq!(m.state.partition_state(p(2)), Some(PartitionState::Stopped));
}

#[test]
fn restart_from_stopped_resets_capabilities_and_runs_it_again() {
    let mut m = Machine::new(&monitored());
    // The worker derives a copy of its memory, then faults and stops.
    let derive = u64::from(rights_bits(&[R]));
    m.hvc(1, Hypercall::Derive, &[1, derive, 9]);
    assert_eq!(m.status(1), Some(Status::Success));
    m.hvc(1, Hypercall::Fault, &[0, 1]);
    assert_eq!(m.state.partition_state(p(1)), Some(PartitionState::Stopped));
    assert!(m.state.capability(p(1), 9).is_some());
    let out = m.hvc(0, Hypercall::PartitionRestart, &[0]);
    // Nothing of it runs anywhere: no core to kick.
    assert_eq!(out.kick, 0);
    assert_eq!(
        m.state.partition_state(p(1)),
        Some(PartitionState::Restarting)
    );
    assert_eq!(m.state.capability(p(1), 9), None, "back to its seed");
    assert!(m.state.capability(p(1), 1).is_some());
    // Core 1 runs the other meanwhile; once reloaded, the worker is ready
    // there and starts from its initial registers.
    restart_done(&mut m, p(1));
    assert_eq!(m.state.vcpu_state(v(1)), Some(VcpuState::Ready));
    m.tick(1);
    assert_eq!(m.on(1), Some(v(1)));
    assert_eq!(m.regs[1], [0; 8]);
}

#[test]
fn restart_of_a_running_partition_kicks_its_core() {
    let mut m = Machine::new(&monitored());
    assert_eq!(m.on(1), Some(v(1)));
    let out = m.hvc(0, Hypercall::PartitionRestart, &[0]);
    assert_eq!(out.kick, 0b10);
    assert_eq!(m.on(1), None);
    assert_eq!(
        out.effect,
        Some(Effect::Restart {
            partition: p(1),
            reason: StopReason::Controller(0)
        })
    );
    // Core 1 was still in the worker: its next trap goes nowhere.
    let out = m.hvc(1, Hypercall::Yield, &[]);
    assert_eq!(
        out.next,
        Next::Switch {
            from: None,
            to: v(2)
        }
    );
}

#[test]
fn control_is_busy_while_the_target_restarts() {
    let mut m = Machine::new(&monitored());
    m.hvc(0, Hypercall::PartitionRestart, &[0]);
    for call in [Hypercall::PartitionStop, Hypercall::PartitionRestart] {
        let before = m.state.clone();
        let out = m.hvc(0, call, &[0]);
        assert_eq!(out, crate::state::Outcome::CONTINUE);
        assert_eq!(m.status(0), Some(Status::Busy), "{call:?}");
        assert!(m.state == before, "{call:?}");
    }
    assert_eq!(status(&mut m, 0).0, RunState::Restarting);
    restart_done(&mut m, p(1));
    m.hvc(0, Hypercall::PartitionStop, &[0]);
    assert_eq!(m.status(0), Some(Status::Success));
    assert_eq!(m.state.partition_state(p(1)), Some(PartitionState::Stopped));
}

#[test]
fn an_abandoned_restart_leaves_it_stopped_for_its_controller() {
    let mut m = Machine::new(&monitored());
    // Abandoning nothing does nothing.
    let before = m.state.clone();
    assert_eq!(m.state.restart_abandoned(p(1)), 0);
    assert_eq!(m.state.restart_abandoned(PartitionId(200)), 0);
    assert!(m.state == before);
    m.hvc(0, Hypercall::PartitionRestart, &[0]);
    assert_eq!(m.state.restart_abandoned(p(1)), 0);
    m.state.check_invariants().unwrap();
    assert_eq!(status(&mut m, 0), (RunState::Stopped, 0, BY_MONITOR, 1));
    // A late restart_done changes nothing; the controller can try again.
    assert_eq!(restart_done(&mut m, p(1)), 0);
    assert_eq!(m.state.partition_state(p(1)), Some(PartitionState::Stopped));
    m.hvc(0, Hypercall::PartitionRestart, &[0]);
    assert_eq!(m.status(0), Some(Status::Success));
    restart_done(&mut m, p(1));
    assert_eq!(status(&mut m, 0), (RunState::Running, 0, BY_MONITOR, 2));
}

#[test]
fn a_partition_may_stop_itself() {
    let mut system = monitored();
    // Give core 0 something else to run.
    system.parts[2].cores = 0b01;
    let mut m = Machine::new(&system);
    assert_eq!(status(&mut m, 3), (RunState::Running, 0, 0, 0));
    let out = m.hvc(0, Hypercall::PartitionStop, &[3]);
    assert_eq!(
        out.effect,
        Some(Effect::Fault {
            partition: p(0),
            reason: StopReason::Controller(0)
        })
    );
    // It does not come back: the core runs the next partition.
    assert_eq!(
        out.next,
        Next::Switch {
            from: None,
            to: v(2)
        }
    );
    assert_eq!(m.state.partition_state(p(0)), Some(PartitionState::Stopped));
}

#[test]
fn a_partition_may_restart_itself() {
    let mut m = Machine::new(&monitored());
    // It gives away nothing, but changes its table: that is undone.
    m.hvc(0, Hypercall::Delete, &[1]);
    let out = m.hvc(0, Hypercall::PartitionRestart, &[3]);
    assert_eq!(
        out.effect,
        Some(Effect::Restart {
            partition: p(0),
            reason: StopReason::Controller(0)
        })
    );
    assert_eq!(out.next, Next::Idle { from: None });
    assert!(m.state.capability(p(0), 1).is_some());
    // Core 0 is named, as it idles.
    assert_eq!(restart_done(&mut m, p(0)), 0b01);
    m.reschedule(0);
    assert_eq!(m.on(0), Some(v(0)));
    assert_eq!(m.regs[0], [0; 8]);
    assert_eq!(status(&mut m, 3), (RunState::Running, 0, BY_MONITOR, 1));
}

#[test]
fn the_reason_names_the_controller() {
    // The worker controls the monitor: the reason carries its index, 1.
    let mut system = monitored();
    system.parts[1]
        .caps
        .push(object(Object::Partition(p(0).number()), &[C]));
    let mut m = Machine::new(&system);
    let out = m.hvc(1, Hypercall::PartitionStop, &[2]);
    assert_eq!(
        out.effect,
        Some(Effect::Fault {
            partition: p(0),
            reason: StopReason::Controller(1)
        })
    );
    assert_eq!(
        hv_abi::hypercall::controller_of(REASON_CONTROLLER + 1),
        Some(1)
    );
}

#[test]
fn control_calls_refuse_bad_capabilities_and_change_nothing() {
    let cases: &[(Hypercall, u64, Status)] = &[
        // Out of range, or empty.
        (Hypercall::PartitionStatus, 64, Status::InvalidCapability),
        (
            Hypercall::PartitionStop,
            u64::MAX,
            Status::InvalidCapability,
        ),
        (
            Hypercall::PartitionRestart,
            1 << 32,
            Status::InvalidCapability,
        ),
        (Hypercall::PartitionStop, 5, Status::InvalidCapability),
        // Not a partition.
        (Hypercall::PartitionStatus, 2, Status::WrongType),
        (Hypercall::PartitionStop, 2, Status::WrongType),
        (Hypercall::PartitionRestart, 2, Status::WrongType),
        // READ alone cannot stop or restart; CONTROL alone cannot look.
        (Hypercall::PartitionStop, 1, Status::NoRights),
        (Hypercall::PartitionRestart, 1, Status::NoRights),
        (Hypercall::PartitionStatus, 4, Status::NoRights),
    ];
    let mut m = Machine::new(&monitored());
    for &(call, slot, expected) in cases {
        let before = m.state.clone();
        let regs = [u64::from(call.function_id()), slot, 2, 3, 4, 5, 6, 7];
        let out = m.raw(0, regs);
        assert_eq!(out, crate::state::Outcome::CONTINUE, "{call:?} {slot}");
        assert_eq!(m.regs[0][0], st(expected), "{call:?} {slot}");
        assert_eq!(m.regs[0][1..], regs[1..], "{call:?} {slot}");
        assert!(m.state == before, "{call:?} {slot}");
    }
}

#[test]
fn a_capability_naming_a_partition_the_system_lacks_is_invalid() {
    // The seed refuses such a capability; a state that somehow held one
    // still answers with a status, never a panic.
    let mut m = Machine::new(&monitored());
    let mut forged = m.state.clone();
    forged
        .caps
        .seed(
            crate::cap::SlotRef::new(p(0), 7).unwrap(),
            hv_image::Capability::new(Object::Partition(p(9).number()), Rights::ALL),
        )
        .unwrap();
    m.state = forged;
    for call in [
        Hypercall::PartitionStatus,
        Hypercall::PartitionStop,
        Hypercall::PartitionRestart,
    ] {
        m.hvc(0, call, &[7]);
        assert_eq!(m.status(0), Some(Status::InvalidCapability), "{call:?}");
    }
}

fn rights_bits(r: &[Rights]) -> u32 {
    super::support::rights(r).0
}
