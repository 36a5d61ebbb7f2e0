// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Fault signals: a controller told, on a notification, that a partition it
//! controls stopped or restarts.

use hv_abi::hypercall::{Badge, Hypercall, Rights, Status};

use super::support::{Machine, Part, R, System, notification, object, p, v};
use crate::cap::NotificationId;
use crate::state::{FaultSignalSeed, Next, PartitionState, ReloadWork};
use hv_image::Object;

const C: Rights = Rights::CONTROL;

/// Core 0: the monitor (partition 0, vCPU 0, priority 20), the worker
/// (partition 1, vCPU 1, stops on a fault) and the other (partition 2, vCPU
/// 2, restarts on a fault), both priority 10. Core 1: a second controller of
/// the worker (partition 3, vCPU 3).
///
/// The monitor's slots: 0 controls the worker, 1 the other, 2 waits on
/// notification 0, where the worker's faults set bit 0 and the other's bit
/// 1 (`0b10`). The second controller's: 0 controls the worker, 1 waits on
/// notification 1, where the worker's faults set bit 0.
fn watched() -> System {
    let partition = |i: u8| object(Object::Partition(p(i).number()), &[R, C]);
    let monitor = Part::new(
        0b01,
        20,
        &[partition(1), partition(2), notification(0, &[R], 0)],
    );
    let worker = Part::new(0b01, 10, &[]);
    let other = Part::new(0b01, 10, &[]).restart();
    let second = Part::new(0b10, 10, &[partition(1), notification(1, &[R], 0)]);
    let mut system = System::new(2, vec![monitor, worker, other, second], 0, 2);
    let signal = |partition: u8, controller: u8, n: u8, bits: u64| FaultSignalSeed {
        partition: p(partition),
        controller: p(controller),
        notification: NotificationId(n),
        badge: Badge(bits),
    };
    system.fault_signals = vec![
        signal(1, 0, 0, 0b01),
        signal(2, 0, 0, 0b10),
        signal(1, 3, 1, 0b01),
    ];
    system
}

/// The monitor waits on its notification; the worker runs on core 0, the
/// second controller on core 1.
fn monitor_waiting() -> Machine {
    let mut m = Machine::new(&watched());
    assert_eq!(m.on(0), Some(v(0)));
    assert_eq!(m.on(1), Some(v(3)));
    m.hvc(0, Hypercall::Wait, &[2]);
    assert_eq!(m.on(0), Some(v(1)));
    m
}

/// Both controllers wait on their notifications; the worker runs on core 0.
fn waiting() -> Machine {
    let mut m = monitor_waiting();
    m.hvc(1, Hypercall::Wait, &[1]);
    assert_eq!(m.on(1), None);
    m
}

#[test]
fn a_fault_wakes_every_controller_at_once() {
    let mut m = waiting();
    let out = m.hvc(0, Hypercall::Fault, &[0, 7]);
    // The worker stopped, and the same step switched to the monitor, whose
    // `Wait` returns the worker's bit.
    assert_eq!(m.state.partition_state(p(1)), Some(PartitionState::Stopped));
    assert!(matches!(out.next, Next::Switch { to, .. } if to == v(0)));
    assert_eq!(m.status(0), Some(Status::Success));
    assert_eq!(m.regs[0][1], 0b01);
    // The second controller, on core 1, is made ready there and its core
    // kicked.
    assert_eq!(out.kick, 0b10);
    m.reschedule(1);
    assert_eq!(m.on(1), Some(v(3)));
    assert_eq!(m.regs[1][..2], [Status::Success.to_register(), 0b01]);
}

#[test]
fn a_restart_by_the_fault_policy_is_signalled_too() {
    let mut m = waiting();
    // The worker gives the core to the other by stopping.
    m.hvc(0, Hypercall::Fault, &[0, 1]);
    m.hvc(0, Hypercall::Wait, &[2]);
    assert_eq!(m.on(0), Some(v(2)));
    let out = m.hvc(0, Hypercall::Fault, &[0, 2]);
    assert_eq!(
        m.state.partition_state(p(2)),
        Some(PartitionState::Restarting)
    );
    assert!(matches!(out.next, Next::Switch { to, .. } if to == v(0)));
    assert_eq!(m.regs[0][..2], [Status::Success.to_register(), 0b10]);
    // Not the second controller: the other is not its.
    assert_eq!(out.kick, 0);
}

#[test]
fn a_controller_is_not_told_of_its_own_stop_or_restart() {
    let mut m = waiting();
    m.hvc(0, Hypercall::Fault, &[0, 1]);
    m.reschedule(1);
    m.hvc(1, Hypercall::Wait, &[1]);
    // The monitor restarts the worker, then stops it: the second controller
    // hears of both (its word collects the bits), the monitor of neither.
    m.hvc(0, Hypercall::PartitionRestart, &[0]);
    assert_eq!(m.status(0), Some(Status::Success));
    assert_eq!(m.last.kick, 0b10);
    m.reschedule(1);
    assert_eq!(m.regs[1][..2], [Status::Success.to_register(), 0b01]);
    m.hvc(0, Hypercall::Poll, &[2]);
    assert_eq!(m.regs[0][..2], [Status::Success.to_register(), 0]);
    // The second controller stops it, during its restart: refused (Busy),
    // and nobody is told.
    m.hvc(1, Hypercall::PartitionStop, &[0]);
    assert_eq!(m.status(1), Some(Status::Busy));
    m.hvc(0, Hypercall::Poll, &[2]);
    assert_eq!(m.regs[0][1], 0);
}

#[test]
fn another_controllers_stop_is_signalled() {
    let mut m = monitor_waiting();
    let out = m.hvc(1, Hypercall::PartitionStop, &[0]);
    assert_eq!(m.status(1), Some(Status::Success));
    assert_eq!(m.state.partition_state(p(1)), Some(PartitionState::Stopped));
    // Core 0 ran the worker: it is kicked, and runs the monitor when it
    // reschedules, its `Wait` answered with the worker's bit.
    assert_eq!(out.kick & 0b01, 0b01);
    m.reschedule(0);
    assert_eq!(m.on(0), Some(v(0)));
    assert_eq!(m.regs[0][..2], [Status::Success.to_register(), 0b01]);
    // Core 1's own word holds nothing.
    m.hvc(1, Hypercall::Poll, &[1]);
    assert_eq!(m.regs[1][1], 0);
}

#[test]
fn an_abandoned_restart_is_signalled() {
    let mut m = waiting();
    m.hvc(0, Hypercall::Fault, &[0, 1]);
    // The monitor does not wait: the bits wait for it.
    m.hvc(0, Hypercall::PartitionRestart, &[0]);
    m.hvc(0, Hypercall::Poll, &[2]);
    assert_eq!(m.regs[0][1], 0);
    // The second controller took the fault's bit; the restart's is there.
    m.reschedule(1);
    m.hvc(1, Hypercall::Poll, &[1]);
    assert_eq!(m.regs[1][1], 0b01);
    m.hvc(1, Hypercall::Wait, &[1]);
    assert_eq!(m.on(1), None);
    // The kernel gives the restart up: both controllers hear of it.
    assert_eq!(m.state.restart_abandoned(p(1)), 0b10);
    m.state.check_invariants().unwrap();
    m.reschedule(1);
    assert_eq!(m.regs[1][..2], [Status::Success.to_register(), 0b01]);
    m.hvc(0, Hypercall::Wait, &[2]);
    assert_eq!(m.on(0), Some(v(0)), "the bit was set: Wait returns at once");
    assert_eq!(m.regs[0][..2], [Status::Success.to_register(), 0b01]);
}

#[test]
fn a_stuck_restart_is_signalled_and_kicks() {
    let mut m = monitor_waiting();
    // The second controller restarts the worker from core 1 while core 0
    // runs it; core 0 never steps again, so it never lets go.
    let out = m.hvc(1, Hypercall::PartitionRestart, &[0]);
    assert_eq!(m.status(1), Some(Status::Success));
    // The monitor is told (made ready on core 0, which is kicked).
    assert_eq!(out.kick & 0b01, 0b01);
    m.hvc(1, Hypercall::Wait, &[1]);
    assert_eq!(m.on(1), None);
    let now = m.state.clock() + crate::state::LET_GO_TICKS + 1;
    m.state.advance_clock(now);
    // The reload's home is core 0: there the restart is given up, and the
    // second controller, waiting on core 1, is woken by it.
    assert_eq!(
        m.state.reload_work(0),
        Some(ReloadWork::Stuck {
            partition: p(1),
            cores: 0b01,
            kick: 0b10,
        })
    );
    m.state.check_invariants().unwrap();
    m.reschedule(1);
    assert_eq!(m.on(1), Some(v(3)));
    assert_eq!(m.regs[1][..2], [Status::Success.to_register(), 0b01]);
}

#[test]
fn a_fault_signal_must_name_what_the_system_has() {
    use crate::state::{KernelState, SeedError};
    let good = watched();
    let edits: [fn(&mut FaultSignalSeed); 4] = [
        |s| s.partition = p(4),
        |s| s.controller = p(9),
        |s| s.notification = NotificationId(2),
        |s| s.badge = Badge(0),
    ];
    for edit in edits {
        let mut system = good.clone();
        edit(&mut system.fault_signals[2]);
        let mut state = Box::new(KernelState::empty());
        assert_eq!(
            system.with_seed(|seed| state.boot(seed)),
            Err(SeedError::BadFaultSignal { signal: 2 })
        );
    }
}
