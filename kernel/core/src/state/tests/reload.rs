// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Restarts as the glue carries them out: the reload's steps, waiting for
//! the cores that ran the partition, and its interrupts afterwards.

use hv_abi::hypercall::{Badge, Hypercall, Status, StopReason};

use super::support::{Machine, Part, R, System, W, irq, notification, object, p, v};
use crate::cap::{NotificationId, PartitionId};
use crate::state::{HeldIrq, IrqSeed, LET_GO_TICKS, PartitionState, ReloadWork};
use hv_image::Object;

/// Core 0: a controller (partition 0) whose slot 0 controls the worker.
/// Core 1: the worker (partition 1, stops on a fault).
fn controlled() -> System {
    let controller = Part::new(
        0b01,
        10,
        &[object(
            Object::Partition(p(1).number()),
            &[R, hv_abi::hypercall::Rights::CONTROL],
        )],
    );
    let worker = Part::new(0b10, 10, &[]);
    System::new(2, vec![controller, worker], 0, 0)
}

fn reload(partition: PartitionId, from: u64, prepare: bool) -> Option<ReloadWork> {
    Some(ReloadWork::Reload {
        partition,
        from,
        prepare,
    })
}

#[test]
fn a_reload_waits_for_the_cores_that_ran_it_and_goes_in_steps_on_its_home_core() {
    let mut m = Machine::new(&controlled());
    assert_eq!(m.on(1), Some(v(1)));
    m.hvc(0, Hypercall::PartitionRestart, &[0]);
    assert_eq!(m.status(0), Some(Status::Success));
    // Core 1 may still be in the worker's code until it takes its kick.
    assert_eq!(m.state.reload_state(p(1)), (true, 0b10));
    assert!(!m.state.restart_due(p(1)));
    assert_eq!(m.state.reload_work(1), None);
    assert_eq!(m.state.restart_done(p(1)), 0, "not before core 1 lets go");
    assert_eq!(
        m.state.partition_state(p(1)),
        Some(PartitionState::Restarting)
    );
    m.reschedule(1);
    assert!(m.state.restart_due(p(1)));
    // Only its home core works on it.
    assert_eq!(m.state.reload_work(0), None);
    assert_eq!(m.state.reload_work(1), reload(p(1), 0, true));
    assert_eq!(m.state.reload_work(1), reload(p(1), 0, false));
    assert_eq!(m.state.reload_progress(p(1), 0x1_0000, false), 0);
    m.state.check_invariants().unwrap();
    assert_eq!(m.state.reload_work(1), reload(p(1), 0x1_0000, false));
    assert_eq!(
        m.state.partition_state(p(1)),
        Some(PartitionState::Restarting)
    );
    // Done: core 1, idle since, is told to look again.
    assert_eq!(m.state.reload_progress(p(1), 0x2_0000, true), 0b10);
    m.state.check_invariants().unwrap();
    assert_eq!(m.state.partition_state(p(1)), Some(PartitionState::Active));
    assert_eq!(m.state.reload_work(1), None);
    assert_eq!(m.state.reload_progress(p(1), 0x3_0000, true), 0, "once");
    m.reschedule(1);
    assert_eq!(m.on(1), Some(v(1)));
}

#[test]
fn a_core_that_never_lets_go_abandons_the_restart_and_the_next_waits_for_it_too() {
    let mut m = Machine::new(&controlled());
    m.hvc(0, Hypercall::PartitionRestart, &[0]);
    m.state.advance_clock(LET_GO_TICKS);
    assert_eq!(m.state.reload_work(1), None);
    m.state.advance_clock(LET_GO_TICKS + 1);
    assert_eq!(
        m.state.reload_work(0),
        None,
        "only its home core reports it"
    );
    assert_eq!(
        m.state.reload_work(1),
        Some(ReloadWork::Stuck {
            partition: p(1),
            cores: 0b10,
            kick: 0,
        })
    );
    m.state.check_invariants().unwrap();
    assert_eq!(m.state.partition_state(p(1)), Some(PartitionState::Stopped));
    assert_eq!(m.state.reload_work(1), None, "reported once");
    // Its controller may try again, but its memory is still not ours.
    m.hvc(0, Hypercall::PartitionRestart, &[0]);
    assert_eq!(m.status(0), Some(Status::Success));
    assert_eq!(m.state.reload_state(p(1)), (true, 0b10));
    m.tick(1);
    assert_eq!(m.state.reload_work(1), reload(p(1), 0, true));
}

#[test]
fn a_fault_on_its_own_core_needs_no_letting_go() {
    let mut system = controlled();
    system.parts[1] = system.parts[1].clone().restart();
    let mut m = Machine::new(&system);
    m.step(1, |s, r| s.fault(1, StopReason::Exception, r));
    assert_eq!(m.state.reload_state(p(1)), (true, 0));
    assert_eq!(m.state.reload_work(1), reload(p(1), 0, true));
}

/// Core 0: the driver (partition 0, restarts on a fault) holds interrupt
/// 33 (through device 7) and 35 (its own capability) on notification 0;
/// interrupt 34 belongs to partition 1 on core 1.
fn driver() -> System {
    let driver = Part::new(
        0b01,
        10,
        &[
            notification(0, &[R], 0),
            object(Object::Device(7), &[W]),
            object(irq(2), &[W]),
        ],
    )
    .restart();
    let other = Part::new(0b10, 10, &[notification(1, &[R], 0), object(irq(1), &[W])]);
    let mut system = System::new(2, vec![driver, other], 0, 2);
    for (intid, n, device) in [(33, 0, Some(7)), (34, 1, None), (35, 0, None)] {
        system.irqs.push(IrqSeed {
            intid,
            notification: NotificationId(n),
            badge: Badge(1),
            device,
        });
    }
    system
}

#[test]
fn a_restarted_driver_gets_back_the_interrupts_its_old_self_left_masked() {
    let mut m = Machine::new(&driver());
    for (core, intid) in [(0, 33), (1, 34), (0, 35)] {
        m.step(core, |s, r| s.interrupt(core, intid, r));
    }
    // It took the signal, then crashed before acknowledging.
    m.hvc(0, Hypercall::Wait, &[0]);
    m.step(0, |s, r| s.fault(0, StopReason::Exception, r));
    assert!(!m.state.has_held_irqs(), "not while it restarts");
    m.state.restart_done(p(0));
    m.state.check_invariants().unwrap();
    assert!(m.state.has_held_irqs());
    let mut released = Vec::new();
    while let Some(held) = m.state.release_held_irq() {
        released.push(held);
    }
    let quiet = |intid| HeldIrq {
        intid,
        first: false,
    };
    assert_eq!(released, [quiet(33), quiet(35)], "not partition 1's 34");
    assert!(!m.state.has_held_irqs());
}

#[test]
fn a_stopped_drivers_interrupts_stay_masked() {
    let mut system = driver();
    system.parts[0].policy = crate::state::FaultPolicy::Stop;
    let mut m = Machine::new(&system);
    m.step(0, |s, r| s.interrupt(0, 33, r));
    m.step(0, |s, r| s.fault(0, StopReason::Exception, r));
    assert!(!m.state.has_held_irqs());
    assert_eq!(m.state.release_held_irq(), None);
}

#[test]
fn a_driver_that_stops_again_before_the_tick_keeps_its_interrupts_masked() {
    let mut m = Machine::new(&driver());
    m.step(0, |s, r| s.interrupt(0, 33, r));
    m.step(0, |s, r| s.fault(0, StopReason::Exception, r));
    m.state.restart_done(p(0));
    assert!(m.state.has_held_irqs());
    // It runs again and faults before any tick released its interrupt.
    m.reschedule(0);
    assert_eq!(m.on(0), Some(v(0)));
    m.step(0, |s, r| s.fault(0, StopReason::Exception, r));
    m.state.check_invariants().unwrap();
    assert!(!m.state.has_held_irqs(), "masked while it restarts");
    assert_eq!(m.state.release_held_irq(), None);
    // Its next restart releases it again.
    m.state.restart_done(p(0));
    assert_eq!(
        m.state.release_held_irq(),
        Some(HeldIrq {
            intid: 33,
            first: false
        })
    );
}
