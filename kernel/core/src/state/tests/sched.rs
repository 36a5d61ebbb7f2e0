// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Pinning, priorities, round-robin, idling.

use hv_abi::hypercall::{Hypercall, Status};

use super::support::{Machine, Part, R, System, notification, p, v};
use crate::state::{KernelState, Next, VcpuState};

#[test]
fn vcpus_spread_over_their_allowed_cores() {
    let system = System::new(
        4,
        vec![
            Part::new(0b1111, 1, &[]).vcpus(4),
            Part::new(0b0110, 1, &[]).vcpus(3),
            Part::new(0b1111, 1, &[]),
            Part::new(0b1000_0001, 1, &[]).vcpus(2),
        ],
        0,
        0,
    );
    let state = system.boot();
    let cores = |part: u8| -> Vec<usize> {
        state
            .partition_vcpus(p(part))
            .map(|x| state.vcpu_core(x).unwrap())
            .collect()
    };
    assert_eq!(cores(0), [0, 1, 2, 3]);
    // Two allowed cores, three vCPUs: both used, then the less loaded.
    assert_eq!(cores(1), [1, 2, 1]);
    // One vCPU goes where the fewest vCPUs are (cores 0 and 3 tie).
    assert_eq!(cores(2), [0]);
    // Cores beyond the machine are ignored.
    assert_eq!(cores(3), [0, 0]);
    assert_eq!(state.vcpu_count(), 10);
}

#[test]
fn the_highest_priority_runs_and_equal_priorities_take_turns() {
    let system = System::new(
        1,
        vec![
            Part::new(1, 5, &[notification(0, &[R], 0)]),
            Part::new(1, 5, &[]),
            Part::new(1, 1, &[]),
        ],
        0,
        1,
    );
    let mut m = Machine::new(&system);
    assert_eq!(m.on(0), Some(v(0)));
    assert_eq!(
        m.tick(0).next,
        Next::Switch {
            from: Some(v(0)),
            to: v(1)
        }
    );
    assert_eq!(
        m.tick(0).next,
        Next::Switch {
            from: Some(v(1)),
            to: v(0)
        }
    );
    // Yield sends the caller to the back, as a tick does.
    let out = m.hvc(0, Hypercall::Yield, &[]);
    assert_eq!(
        out.next,
        Next::Switch {
            from: Some(v(0)),
            to: v(1)
        }
    );
    assert_eq!(m.state.saved_regs(v(0)).map(|r| r[0]), Some(0));
    // vCPU 2 (priority 1) waits until both others block.
    m.tick(0);
    m.hvc(0, Hypercall::Wait, &[0]);
    assert_eq!(m.on(0), Some(v(1)));
    assert_eq!(m.tick(0).next, Next::Continue);
    m.step(0, |s, r| s.yield_vcpu(0, r));
    assert_eq!(m.on(0), Some(v(1)));
    m.hvc(0, Hypercall::Fault, &[0, 1]);
    assert_eq!(m.on(0), Some(v(2)));
    assert_eq!(m.tick(0).next, Next::Continue);
}

#[test]
fn a_vcpu_alone_at_its_priority_continues_after_yield() {
    let system = System::new(1, vec![Part::new(1, 9, &[]), Part::new(1, 3, &[])], 0, 0);
    let mut m = Machine::new(&system);
    let out = m.hvc(0, Hypercall::Yield, &[]);
    assert_eq!(out.next, Next::Continue);
    assert_eq!(m.status(0), Some(Status::Success));
}

#[test]
fn a_core_with_nothing_ready_idles_and_a_stale_hypercall_reschedules() {
    let system = System::new(
        2,
        vec![Part::new(0b10, 1, &[notification(0, &[R], 0)])],
        0,
        1,
    );
    let mut m = Machine::new(&system);
    // Core 0 has nothing pinned to it.
    assert_eq!(m.on(0), None);
    assert_eq!(
        m.step(0, |s, r| s.idle(0, r)).next,
        Next::Idle { from: None }
    );
    assert_eq!(m.tick(0).next, Next::Idle { from: None });
    // An idle core's "hypercall" (a race with a stop) only reschedules.
    let before = m.state.clone();
    assert_eq!(
        m.hvc(0, Hypercall::Yield, &[]).next,
        Next::Idle { from: None }
    );
    assert!(m.state == before);
    // Except the version, which is answered before anything is looked at.
    assert_eq!(m.hvc(0, Hypercall::Version, &[]).next, Next::Continue);
    assert_eq!(
        m.regs[0][..2],
        [0, u64::from(hv_abi::hypercall::ABI_VERSION)]
    );
    assert!(m.state == before);
    let out = m.hvc(1, Hypercall::Wait, &[0]);
    assert_eq!(out.next, Next::Idle { from: Some(v(0)) });
    assert_eq!(
        m.state.vcpu_state(v(0)),
        Some(VcpuState::Waiting {
            notification: crate::cap::NotificationId(0)
        })
    );
}

#[test]
fn an_empty_state_does_nothing_on_any_step() {
    let mut state = Box::new(KernelState::empty());
    let mut regs = [
        u64::from(Hypercall::Yield.function_id()),
        1,
        2,
        3,
        4,
        5,
        6,
        7,
    ];
    for core in [0, 1, 8, usize::MAX] {
        assert_eq!(
            state.hypercall(core, &mut regs).next,
            Next::Idle { from: None }
        );
        assert_eq!(state.tick(core, &mut regs).next, Next::Idle { from: None });
        assert_eq!(
            state
                .fault(core, hv_abi::hypercall::StopReason::Exception, &mut regs)
                .next,
            Next::Idle { from: None }
        );
        assert_eq!(
            state.interrupt(core, 1, &mut regs).next,
            Next::Idle { from: None }
        );
    }
    assert_eq!(state.restart_done(p(0)), 0);
    state.check_invariants().unwrap();
}
