// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Fault policies: stop and restart, and what IPC partners see.

use hv_abi::hypercall::{Hypercall, MessageInfo, Status, StopReason};

use super::ipc::client_server;
use super::support::{D, Machine, Part, R, W, endpoint, object, p, st, v};
use crate::state::{Effect, EndpointSeed, Next, PartitionState, VcpuState};
use hv_image::Object;

const PEER_GONE: [u64; 8] = [Status::PeerGone.to_register(), 0, 0, 0, 0, 0, 0, 0];

#[test]
fn a_stopped_server_wakes_its_caller_with_peer_gone() {
    let mut m = Machine::new(&client_server());
    m.hvc(0, Hypercall::Yield, &[]);
    m.hvc(0, Hypercall::Recv, &[0]);
    m.hvc(0, Hypercall::Call, &[0, 2, 1, 2]);
    assert_eq!(m.on(0), Some(v(1)));
    let out = m.step(0, |s, r| s.fault(0, StopReason::Exception, r));
    assert_eq!(
        out.effect,
        Some(Effect::Fault {
            partition: p(1),
            reason: StopReason::Exception
        })
    );
    assert_eq!(
        out.next,
        Next::Switch {
            from: None,
            to: v(0)
        }
    );
    assert_eq!(m.regs[0], PEER_GONE);
    assert_eq!(m.state.partition_state(p(1)), Some(PartitionState::Stopped));
    assert_eq!(m.state.vcpu_state(v(1)), Some(VcpuState::Stopped));
    // Its capabilities stay; it never runs again.
    assert!(m.state.capability(p(1), 0).is_some());
    for _ in 0..3 {
        m.tick(0);
        assert_eq!(m.on(0), Some(v(0)));
    }
}

#[test]
fn senders_to_a_stopped_servers_endpoint_get_peer_gone_and_later_ones_fail_at_once() {
    let mut system = client_server();
    system.endpoints[0] = EndpointSeed { server: Some(p(1)) };
    let mut m = Machine::new(&system);
    m.hvc(0, Hypercall::Send, &[0, 0]);
    assert_eq!(m.on(0), Some(v(1)));
    m.hvc(1, Hypercall::Call, &[0, 0]);
    assert_eq!(m.on(1), None);
    let out = m.hvc(0, Hypercall::Fault, &[0, 7]);
    assert_eq!(
        out.effect,
        Some(Effect::Fault {
            partition: p(1),
            reason: StopReason::Own(7)
        })
    );
    assert_eq!(out.kick, 0b10);
    assert_eq!(m.regs[0], PEER_GONE);
    m.reschedule(1);
    assert_eq!(m.regs[1], PEER_GONE);
    // Nobody will ever receive: a send that would wait fails instead.
    let before = m.state.clone();
    m.hvc(0, Hypercall::Call, &[0, 0]);
    assert_eq!(m.status(0), Some(Status::PeerGone));
    assert!(m.state == before);
}

#[test]
fn a_stopped_caller_is_forgotten_by_its_server() {
    let mut system = client_server();
    system.parts[0] = system.parts[0].clone().vcpus(2);
    system.parts[0].cores = 0b11;
    let mut m = Machine::new(&system);
    // vCPU 0 (core 0) calls the server (vCPU 2); vCPU 1 runs on core 1.
    m.hvc(0, Hypercall::Call, &[0, 0]);
    assert_eq!(m.on(0), Some(v(2)));
    m.hvc(0, Hypercall::Recv, &[0]);
    assert_eq!(m.state.caller_of(v(2)), Some(v(0)));
    assert_eq!(m.on(1), Some(v(1)));
    let out = m.step(1, |s, r| s.fault(1, StopReason::Exception, r));
    assert_eq!(
        out.effect,
        Some(Effect::Fault {
            partition: p(0),
            reason: StopReason::Exception
        })
    );
    assert_eq!(m.state.caller_of(v(2)), None);
    m.hvc(0, Hypercall::Reply, &[0, 0]);
    assert_eq!(m.status(0), Some(Status::NoCaller));
}

#[test]
fn stopping_a_partition_running_on_another_core_kicks_it_out() {
    let mut system = client_server();
    system.parts[0] = system.parts[0].clone().vcpus(2);
    system.parts[0].cores = 0b11;
    let mut m = Machine::new(&system);
    assert_eq!((m.on(0), m.on(1)), (Some(v(0)), Some(v(1))));
    let out = m.hvc(0, Hypercall::Fault, &[0, 3]);
    assert_eq!(out.kick, 0b10);
    assert_eq!(
        out.next,
        Next::Switch {
            from: None,
            to: v(2)
        }
    );
    assert_eq!(m.on(1), None);
    // Core 1 was still in the stopped vCPU: its next trap goes nowhere.
    let out = m.hvc(1, Hypercall::Yield, &[]);
    assert_eq!(
        out.next,
        Next::Switch {
            from: None,
            to: v(3)
        }
    );
}

#[test]
fn restart_resets_the_table_and_waits_for_the_glue() {
    let mut system = client_server();
    system.parts[1] = Part::new(
        0b01,
        10,
        &[endpoint(0, &[R], 0), object(Object::Memory(9), &[R, W, D])],
    )
    .restart();
    system.endpoints[0] = EndpointSeed { server: Some(p(1)) };
    let mut m = Machine::new(&system);
    m.hvc(0, Hypercall::Yield, &[]);
    assert_eq!(m.on(0), Some(v(1)));
    // The server changes its table: derives, deletes a seed.
    m.hvc(0, Hypercall::Derive, &[1, u64::from(R.0 | D.0), 5]);
    assert_eq!(m.status(0), Some(Status::Success));
    m.hvc(0, Hypercall::Delete, &[0]);
    let out = m.hvc(0, Hypercall::Fault, &[0, 9]);
    assert_eq!(
        out.effect,
        Some(Effect::Restart {
            partition: p(1),
            reason: StopReason::Own(9)
        })
    );
    assert_eq!(
        m.state.partition_state(p(1)),
        Some(PartitionState::Restarting)
    );
    assert_eq!(m.state.vcpu_state(v(1)), Some(VcpuState::Stopped));
    assert_eq!(m.state.capability(p(1), 5), None);
    assert!(m.state.capability(p(1), 0).is_some());
    assert!(
        m.state
            .caps()
            .is_root(crate::cap::SlotRef::new(p(1), 0).unwrap())
    );
    // While it restarts, calling it fails rather than waits.
    m.hvc(0, Hypercall::Call, &[0, MessageInfo::words(0).0]);
    assert_eq!(m.status(0), Some(Status::PeerGone));
    // Once its memory is back, it runs again from its initial registers.
    assert_eq!(m.state.restart_done(p(1)), 0);
    m.state.check_invariants().unwrap();
    assert_eq!(m.state.partition_state(p(1)), Some(PartitionState::Active));
    assert_eq!(m.state.restart_done(p(1)), 0);
    m.tick(0);
    assert_eq!(m.on(0), Some(v(1)));
    assert_eq!(m.regs[0], [0; 8]);
}

#[test]
fn restart_done_kicks_the_cores_that_should_look_again() {
    let mut system = client_server();
    system.parts[2] = system.parts[2].clone().restart();
    let mut m = Machine::new(&system);
    m.hvc(1, Hypercall::Fault, &[0, 0]);
    assert_eq!(m.on(1), None);
    // Core 1 idles: it is named.
    assert_eq!(m.state.restart_done(p(2)), 0b10);
    let out = m.reschedule(1);
    assert_eq!(
        out.next,
        Next::Switch {
            from: None,
            to: v(2)
        }
    );
    assert_eq!(m.regs[1][0], st(Status::Success));
}

#[test]
fn a_fault_cannot_forge_the_kernels_or_a_controllers_reason() {
    // Partition 1 runs on core 0 after a yield. Reasons above 0xff are the
    // kernel's: an exception (0x100) or a controller (0x200 + its index).
    let mut m = Machine::new(&client_server());
    m.hvc(0, Hypercall::Yield, &[]);
    assert_eq!(m.on(0), Some(v(1)));
    let before = m.state.clone();
    for forged in [0x100, 0x200, 0x202, 0x2ff, 0x1_0000_0001, u64::MAX] {
        let out = m.hvc(0, Hypercall::Fault, &[0, forged, 5]);
        assert_eq!(out, crate::state::Outcome::CONTINUE, "{forged:#x}");
        assert_eq!(
            m.regs[0],
            [st(Status::InvalidArgument), 0, forged, 5, 0, 0, 0, 0]
        );
        assert!(m.state == before, "{forged:#x}");
    }
    // Its own largest reason is its own.
    let out = m.hvc(0, Hypercall::Fault, &[0, 0xff]);
    assert_eq!(
        out.effect,
        Some(Effect::Fault {
            partition: p(1),
            reason: StopReason::Own(0xff)
        })
    );
}

/// The back-off before each restart of a streak: none for the first
/// `RESTARTS_AT_ONCE`, then doubling from `BACKOFF_FIRST_TICKS` to the cap.
#[test]
fn the_backoff_doubles_up_to_its_cap() {
    use crate::state::{BACKOFF_FIRST_TICKS, BACKOFF_MAX_TICKS, RESTARTS_AT_ONCE, backoff_ticks};
    for streak in 0..=RESTARTS_AT_ONCE {
        assert_eq!(backoff_ticks(streak), 0);
    }
    assert_eq!(backoff_ticks(RESTARTS_AT_ONCE + 1), BACKOFF_FIRST_TICKS);
    assert_eq!(backoff_ticks(RESTARTS_AT_ONCE + 2), 2 * BACKOFF_FIRST_TICKS);
    let mut last = 0;
    for streak in RESTARTS_AT_ONCE + 1..200 {
        let t = backoff_ticks(streak);
        assert!(t == (last * 2).max(BACKOFF_FIRST_TICKS) || t == BACKOFF_MAX_TICKS);
        assert!(t >= last && t <= BACKOFF_MAX_TICKS);
        last = t;
    }
    assert_eq!(backoff_ticks(u32::MAX), BACKOFF_MAX_TICKS);
}

/// A partition (1) that faults as soon as it runs, on core 0 beside another
/// (0), restarted whenever the state says its back-off is over and its
/// reload takes one tick: returns the tick of each restart and the plan
/// reported for it, over `ticks` ticks.
fn crash_loop(ticks: u64) -> Vec<(u64, crate::state::RestartPlan)> {
    let mut system = client_server();
    system.parts[1] = Part::new(0b01, 10, &[]).restart();
    let mut m = Machine::new(&system);
    let mut restarts = Vec::new();
    for now in 0..ticks {
        m.state.advance_clock(now);
        if m.state.restart_due(p(1)) {
            m.state.restart_done(p(1));
        }
        m.tick(0);
        if m.on(0) == Some(v(1)) {
            let out = m.step(0, |s, r| s.fault(0, StopReason::Own(1), r));
            assert!(matches!(out.effect, Some(Effect::Restart { .. })));
            assert!(!m.state.restart_due(p(1)) || m.state.restart_plan(p(1)).unwrap().backoff == 0);
            restarts.push((now, m.state.restart_plan(p(1)).unwrap()));
        }
    }
    restarts
}

/// However fast a partition crashes, its restarts wait longer and longer,
/// and no window of one second (100 ticks), wherever it falls, holds more
/// than a handful: the fixed window that allowed 20 a second (40 across a
/// boundary) is gone.
#[test]
fn a_crash_loop_backs_off_and_is_bounded_in_every_window() {
    use crate::state::{BACKOFF_MAX_TICKS, RESTARTS_AT_ONCE};
    let restarts = crash_loop(20_000);
    for (i, (_, plan)) in restarts.iter().enumerate() {
        assert_eq!(
            plan.streak as usize,
            i + 1,
            "one streak: it never runs well"
        );
        assert_eq!(plan.backoff, crate::state::backoff_ticks(plan.streak));
    }
    assert!(
        restarts[..RESTARTS_AT_ONCE as usize]
            .iter()
            .all(|(_, p)| p.backoff == 0)
    );
    for pair in restarts.windows(2) {
        let ((at, plan), (next, _)) = (pair[0], pair[1]);
        assert!(
            next > at && next >= at + plan.backoff,
            "it waited out its back-off"
        );
    }
    for (start, _) in &restarts {
        let in_window = restarts
            .iter()
            .filter(|(at, _)| (*start..start + 100).contains(at))
            .count();
        assert!(in_window <= 8, "{in_window} restarts within a second");
    }
    // At the cap, one restart per BACKOFF_MAX_TICKS (plus its reload).
    let late: Vec<u64> = restarts.iter().rev().take(3).map(|(at, _)| *at).collect();
    assert!(late[0] - late[1] >= BACKOFF_MAX_TICKS && late[1] - late[2] >= BACKOFF_MAX_TICKS);
}

/// A partition that runs `GOOD_RUN_TICKS` without a fault after a restart
/// starts a new streak: its next restart goes ahead at once.
#[test]
fn running_well_resets_the_backoff() {
    use crate::state::GOOD_RUN_TICKS;
    let mut system = client_server();
    system.parts[1] = Part::new(0b01, 10, &[]).restart();
    let mut m = Machine::new(&system);
    let mut now = 0;
    let crash = |m: &mut Machine, now: &mut u64| {
        while m.on(0) != Some(v(1)) {
            m.tick(0);
        }
        m.step(0, |s, r| s.fault(0, StopReason::Own(1), r));
        let plan = m.state.restart_plan(p(1)).unwrap();
        *now += plan.backoff;
        m.state.advance_clock(*now);
        assert!(m.state.restart_due(p(1)));
        m.state.restart_done(p(1));
        plan
    };
    for streak in 1..=5 {
        assert_eq!(crash(&mut m, &mut now).streak, streak);
    }
    now += GOOD_RUN_TICKS - 1;
    m.state.advance_clock(now);
    assert_eq!(crash(&mut m, &mut now).streak, 6, "not long enough");
    now += GOOD_RUN_TICKS;
    m.state.advance_clock(now);
    let plan = crash(&mut m, &mut now);
    assert_eq!((plan.streak, plan.backoff), (1, 0), "a new streak");
    // Time never runs backwards.
    m.state.advance_clock(0);
    assert_eq!(m.state.clock(), now);
}
