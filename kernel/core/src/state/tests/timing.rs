// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Time: windows, background windows, parked vCPUs, budgets, and IPC across
//! windows on both paths. Counter ticks are microseconds here
//! ([`super::support::HZ`]); every frame starts at 0.

use hv_abi::hypercall::{Badge, Hypercall, Status};

use super::support::{
    Machine, Part, R, System, W, budget, endpoint, irq, notification, object, schedule, v,
};
use crate::cap::NotificationId;
use crate::state::{IrqSeed, KernelState, Next, SeedError, TimeProblem, VcpuState};

/// The bit of vCPU `i` in a mask.
fn bit(i: u8) -> u32 {
    1 << i
}

/// Three spinners on core 0: a (vCPU 0, priority 10), b (vCPU 1, 200), c
/// (vCPU 2, 100); windows a 3 ms, b 2 ms, then 5 ms of background.
fn three_windows() -> System {
    let parts = vec![
        Part::new(0b1, 10, &[]),
        Part::new(0b1, 200, &[]),
        Part::new(0b1, 100, &[]),
    ];
    System::new(1, parts, 0, 0).scheduled(schedule(&[&[
        (3000, Some(0b001)),
        (2000, Some(0b010)),
        (5000, None),
    ]]))
}

#[test]
fn a_window_runs_only_its_owner_and_its_end_preempts() {
    let mut m = Machine::new(&three_windows());
    // a's window: a runs although b and c outrank it; they are parked.
    assert_eq!(m.on(0), Some(v(0)));
    assert_eq!(m.state.parked(0), bit(1) | bit(2));
    assert_eq!(m.state.next_event(0), Some(3000));
    // A tick inside the window changes nothing.
    m.clock(0, 1000);
    m.tick(0);
    assert_eq!(m.on(0), Some(v(0)));
    // b's window preempts a.
    let out = m.time_event(0, 3000);
    assert_eq!(
        out.next,
        Next::Switch {
            from: Some(v(0)),
            to: v(1)
        }
    );
    assert_eq!(m.state.parked(0), bit(0) | bit(2));
    assert_eq!(m.state.next_event(0), Some(5000));
    // The background window is anyone's, by priority: b carries on, and a
    // yielding b goes on running (nothing of its priority is ready).
    let out = m.time_event(0, 5000);
    assert_eq!(out.next, Next::Continue);
    assert_eq!(m.state.parked(0), 0);
    // b blocks (it waits on nothing it may: a yield does not give way to
    // lower priorities), so let c take the core by faulting b's turn away:
    // stop b through a fault, and c, the next priority, runs.
    m.step(0, |s, r| {
        s.fault(0, hv_abi::hypercall::StopReason::Exception, r)
    });
    assert_eq!(m.on(0), Some(v(2)));
    // The next frame: a's window again, late by 200 us (the timer was
    // late): c is preempted, a runs until 13000.
    let out = m.time_event(0, 10_200);
    assert_eq!(
        out.next,
        Next::Switch {
            from: Some(v(2)),
            to: v(0)
        }
    );
    assert_eq!(m.state.window(0), Some(0));
    assert_eq!(m.state.next_event(0), Some(13_000));
    m.state.check_invariants().unwrap();
}

#[test]
fn frames_missed_are_skipped_to_the_window_the_clock_is_in() {
    let mut m = Machine::new(&three_windows());
    // 4.5 frames later: the middle of b's window of frame 4.
    m.time_event(0, 44_000);
    assert_eq!(m.state.window(0), Some(1));
    assert_eq!(m.on(0), Some(v(1)));
    assert_eq!(m.state.next_event(0), Some(45_000));
}

/// Core 0: a signaller s (vCPU 0, priority 10) and a waiter w (vCPU 1,
/// priority 50) on notification 0, which interrupt 33 also signals; s has
/// the first 2 ms, w the next 2 ms.
fn waiter() -> System {
    let s = Part::new(0b1, 10, &[notification(0, &[W], 0b1)]);
    let w = Part::new(0b1, 50, &[notification(0, &[R], 0), object(irq(0), &[W])]);
    let mut system = System::new(1, vec![s, w], 0, 1)
        .scheduled(schedule(&[&[(2000, Some(0b01)), (2000, Some(0b10))]]));
    system.irqs.push(IrqSeed {
        intid: 33,
        notification: NotificationId(0),
        badge: Badge(0x100),
        device: None,
    });
    system
}

#[test]
fn a_vcpu_woken_outside_its_window_is_parked_until_its_window() {
    let mut m = Machine::new(&waiter());
    assert_eq!(m.on(0), Some(v(0)));
    // w's window: w runs and waits; its window is its own, so the core
    // idles rather than run s.
    m.time_event(0, 2000);
    assert_eq!(m.on(0), Some(v(1)));
    let out = m.hvc(0, Hypercall::Wait, &[0]);
    assert_eq!(out.next, Next::Idle { from: Some(v(1)) });
    // s's window: s signals; the bit wakes w at once, but w waits parked.
    m.time_event(0, 4000);
    assert_eq!(m.on(0), Some(v(0)));
    let out = m.hvc(0, Hypercall::Signal, &[0]);
    assert_eq!(out.next, Next::Continue);
    assert_eq!(m.state.vcpu_state(v(1)), Some(VcpuState::Ready));
    assert_eq!(m.state.parked(0), bit(1));
    // Its window: it runs with the bits.
    let out = m.time_event(0, 6000);
    assert_eq!(
        out.next,
        Next::Switch {
            from: Some(v(0)),
            to: v(1)
        }
    );
    assert_eq!(m.regs[0][0], Status::Success.to_register());
    assert_eq!(m.regs[0][1], 0b1);
}

#[test]
fn a_device_interrupt_outside_its_owners_window_sets_its_bit_at_once() {
    let mut m = Machine::new(&waiter());
    m.time_event(0, 2000);
    m.hvc(0, Hypercall::Wait, &[0]);
    m.time_event(0, 4000);
    // The interrupt arrives in s's window: the bit is delivered (w is
    // woken) but w runs only in its window; s is not preempted.
    let out = m.step(0, |s, r| s.interrupt(0, 33, r));
    assert_eq!(out.next, Next::Continue);
    assert_eq!(m.on(0), Some(v(0)));
    assert_eq!(m.state.vcpu_state(v(1)), Some(VcpuState::Ready));
    assert_eq!(m.state.parked(0), bit(1));
    m.time_event(0, 6000);
    assert_eq!(m.on(0), Some(v(1)));
    assert_eq!(m.regs[0][1], 0x100);
}

/// Core 0: a hog (vCPU 0, priority 200) with 2 ms of every 10, and a low
/// partition (vCPU 1, priority 10); no schedule.
fn hog() -> System {
    System::new(
        1,
        vec![Part::new(0b1, 200, &[]), Part::new(0b1, 10, &[])],
        0,
        0,
    )
    .budgeted(&[budget(0, 0, 2000, 10_000)])
}

#[test]
fn a_spent_budget_parks_its_vcpu_until_its_next_period() {
    let mut m = Machine::new(&hog());
    assert_eq!(m.on(0), Some(v(0)));
    m.clock(0, 0);
    assert_eq!(m.state.next_event(0), Some(2000));
    // Ticks charge it as it runs.
    m.clock(0, 1500);
    m.tick(0);
    assert_eq!(m.state.budget_left(v(0)), Some(500));
    assert_eq!(m.state.next_event(0), Some(2000));
    // Spent: the low partition runs for the rest of the period.
    let out = m.time_event(0, 2000);
    assert_eq!(
        out.next,
        Next::Switch {
            from: Some(v(0)),
            to: v(1)
        }
    );
    assert_eq!(m.state.budget_left(v(0)), Some(0));
    assert_eq!(m.state.parked(0), bit(0));
    assert_eq!(m.state.next_event(0), Some(10_000));
    m.clock(0, 6000);
    m.tick(0);
    assert_eq!(m.on(0), Some(v(1)));
    // Refilled at the period's end: it preempts at once.
    let out = m.time_event(0, 10_000);
    assert_eq!(
        out.next,
        Next::Switch {
            from: Some(v(1)),
            to: v(0)
        }
    );
    assert_eq!(m.state.budget_left(v(0)), Some(2000));
    // A hypercall charges it too (the glue tells the state the clock first).
    m.clock(0, 10_700);
    m.hvc(0, Hypercall::Yield, &[]);
    assert_eq!(m.state.budget_left(v(0)), Some(1300));
    assert_eq!(m.state.next_event(0), Some(12_000));
}

#[test]
fn a_budget_late_by_whole_periods_is_refilled_once() {
    let mut m = Machine::new(&hog());
    m.time_event(0, 2000);
    assert_eq!(m.on(0), Some(v(1)));
    m.time_event(0, 35_000);
    assert_eq!(m.on(0), Some(v(0)));
    assert_eq!(m.state.budget_left(v(0)), Some(2000));
    assert_eq!(m.state.next_event(0), Some(37_000));
}

/// Core 0: a server s (vCPU 0), a client c (vCPU 1) calling it on endpoint
/// 0 and another partition o (vCPU 2), all priority 10; windows s, c, o of
/// 3 ms each.
fn serving() -> System {
    let s = Part::new(0b1, 10, &[endpoint(0, &[R], 0)]);
    let c = Part::new(0b1, 10, &[endpoint(0, &[W], 0x7)]);
    let o = Part::new(0b1, 10, &[]);
    System::new(1, vec![s, c, o], 1, 0).scheduled(schedule(&[&[
        (3000, Some(0b001)),
        (3000, Some(0b010)),
        (3000, Some(0b100)),
    ]]))
}

#[test]
fn a_call_runs_the_server_on_the_callers_time_on_both_paths() {
    let mut m = Machine::new(&serving());
    // The server waits in its window; then the core idles.
    assert_eq!(m.on(0), Some(v(0)));
    let out = m.hvc(0, Hypercall::Recv, &[0]);
    assert_eq!(out.next, Next::Idle { from: Some(v(0)) });
    m.time_event(0, 3000);
    assert_eq!(m.on(0), Some(v(1)));
    // The call switches to the server outside the server's window, on the
    // fast path (`hvc` checks that the general path agrees).
    let mut regs = [
        u64::from(Hypercall::Call.function_id()),
        0,
        1,
        42,
        0,
        0,
        0,
        0,
    ];
    assert!(m.state.clone().fast_path(0, &mut regs).is_some());
    let out = m.hvc(0, Hypercall::Call, &[0, 1, 42]);
    assert_eq!(
        out.next,
        Next::Switch {
            from: Some(v(1)),
            to: v(0)
        }
    );
    assert_eq!(m.regs[0][3], 42);
    // The reply goes back the same way.
    let out = m.hvc(0, Hypercall::ReplyRecv, &[0, 1, 43]);
    assert_eq!(
        out.next,
        Next::Switch {
            from: Some(v(0)),
            to: v(1)
        }
    );
    assert_eq!(m.regs[0][3], 43);
    // A call still being served when the caller's window ends: the server
    // is preempted with its caller's time and waits, parked, for it.
    m.hvc(0, Hypercall::Call, &[0, 1, 44]);
    assert_eq!(m.on(0), Some(v(0)));
    m.time_event(0, 6000);
    assert_eq!(m.on(0), Some(v(2)));
    assert_eq!(m.state.parked(0), bit(0));
    // In its own window the server runs again (in its own right), and its
    // reply to a caller whose window it is not leaves the caller parked:
    // the fast path declines, the general path parks it.
    m.time_event(0, 9000);
    assert_eq!(m.on(0), Some(v(0)));
    let mut regs = [
        u64::from(Hypercall::ReplyRecv.function_id()),
        0,
        1,
        45,
        0,
        0,
        0,
        0,
    ];
    assert!(m.state.clone().fast_path(0, &mut regs).is_none());
    let out = m.hvc(0, Hypercall::ReplyRecv, &[0, 1, 45]);
    assert_eq!(out.next, Next::Idle { from: Some(v(0)) });
    assert_eq!(m.state.parked(0), bit(1) | bit(2));
    // The caller's window: it has its answer.
    m.time_event(0, 12_000);
    assert_eq!(m.on(0), Some(v(1)));
    assert_eq!(m.regs[0][3], 45);
}

#[test]
fn a_server_preempted_mid_call_resumes_in_its_callers_next_window() {
    let mut m = Machine::new(&serving());
    m.hvc(0, Hypercall::Recv, &[0]);
    m.time_event(0, 3000);
    m.hvc(0, Hypercall::Call, &[0, 1, 1]);
    assert_eq!(m.on(0), Some(v(0)));
    // o's window, then the server's own (it runs, in its own right), then
    // the caller's: still serving, the server runs on the caller's time.
    m.time_event(0, 6000);
    assert_eq!(m.on(0), Some(v(2)));
    m.time_event(0, 9000);
    assert_eq!(m.on(0), Some(v(0)));
    let out = m.time_event(0, 12_000);
    assert_eq!(out.next, Next::Continue);
    assert_eq!(m.on(0), Some(v(0)));
    assert_eq!(m.state.caller_of(v(0)), Some(v(1)));
}

#[test]
fn a_budget_keeps_ipc_off_the_fast_path_and_both_paths_agree() {
    let mut m = Machine::new(
        &System::new(
            1,
            vec![
                Part::new(0b1, 10, &[endpoint(0, &[R], 0)]),
                Part::new(0b1, 10, &[endpoint(0, &[W], 0x7)]),
            ],
            1,
            0,
        )
        .budgeted(&[budget(1, 0, 1000, 10_000)]),
    );
    m.hvc(0, Hypercall::Recv, &[0]);
    assert_eq!(m.on(0), Some(v(1)));
    let mut regs = [
        u64::from(Hypercall::Call.function_id()),
        0,
        1,
        9,
        0,
        0,
        0,
        0,
    ];
    assert!(m.state.clone().fast_path(0, &mut regs).is_none());
    m.clock(0, 400);
    let out = m.hvc(0, Hypercall::Call, &[0, 1, 9]);
    assert_eq!(
        out.next,
        Next::Switch {
            from: Some(v(1)),
            to: v(0)
        }
    );
    assert_eq!(m.state.budget_left(v(1)), Some(600));
    // The server's time is its own: the client's budget is not charged.
    m.clock(0, 900);
    m.hvc(0, Hypercall::ReplyRecv, &[0, 1, 10]);
    assert_eq!(m.on(0), Some(v(1)));
    assert_eq!(m.state.budget_left(v(1)), Some(600));
}

#[test]
fn a_server_on_another_core_answers_in_its_own_windows() {
    // Core 0: the server s (vCPU 0) and x (vCPU 1), 5 ms each; core 1: the
    // caller c (vCPU 2), all 10 ms.
    let s = Part::new(0b01, 10, &[endpoint(0, &[R], 0)]);
    let x = Part::new(0b01, 10, &[]);
    let c = Part::new(0b10, 10, &[endpoint(0, &[W], 0x7)]);
    let system = System::new(2, vec![s, x, c], 1, 0).scheduled(schedule(&[
        &[(5000, Some(0b001)), (5000, Some(0b010))],
        &[(10_000, Some(0b100))],
    ]));
    let mut m = Machine::new(&system);
    m.hvc(0, Hypercall::Recv, &[0]);
    assert_eq!(m.on(0), None);
    m.time_event(0, 5000);
    assert_eq!(m.on(0), Some(v(1)));
    // The call from core 1 wakes the server, which waits parked: a
    // window on core 1 lends no time on core 0. Core 0 is not kicked.
    let out = m.hvc(1, Hypercall::Call, &[0, 1, 5]);
    assert_eq!(out.next, Next::Idle { from: Some(v(2)) });
    assert_eq!(out.kick, 0);
    assert_eq!(m.state.parked(0), bit(0));
    let out = m.time_event(0, 10_000);
    assert_eq!(
        out.next,
        Next::Switch {
            from: Some(v(1)),
            to: v(0)
        }
    );
    assert_eq!(m.regs[0][3], 5);
}

#[test]
fn a_two_vcpu_partition_runs_on_both_cores_in_aligned_windows() {
    // g: two vCPUs (0 on core 0, 1 on core 1); h (vCPU 2) on core 0, k
    // (vCPU 3) on core 1.
    let g = Part::new(0b11, 10, &[]).vcpus(2);
    let h = Part::new(0b01, 10, &[]);
    let k = Part::new(0b10, 10, &[]);
    let system = System::new(2, vec![g, h, k], 0, 0).scheduled(schedule(&[
        &[(4000, Some(0b001)), (6000, Some(0b010))],
        &[(4000, Some(0b001)), (6000, Some(0b100))],
    ]));
    let mut m = Machine::new(&system);
    assert_eq!((m.on(0), m.on(1)), (Some(v(0)), Some(v(1))));
    for core in 0..2 {
        assert_eq!(m.state.next_event(core), Some(4000));
    }
    m.time_event(0, 4000);
    m.time_event(1, 4000);
    assert_eq!((m.on(0), m.on(1)), (Some(v(2)), Some(v(3))));
    m.time_event(1, 10_000);
    m.time_event(0, 10_000);
    assert_eq!((m.on(0), m.on(1)), (Some(v(0)), Some(v(1))));
}

#[test]
fn windows_are_kept_in_ticks_so_that_they_fill_the_frame_exactly() {
    // Three windows of 1 us at a counter of 1.5 ticks a microsecond: each
    // end is rounded down from its cumulative offset, so the frame is 4
    // ticks, not 3 (1 + 1 + 1 each rounded down).
    let system = System::new(1, vec![Part::new(0b1, 10, &[])], 0, 0).scheduled(schedule(&[&[
        (1, Some(1)),
        (1, None),
        (1, None),
    ]]));
    let mut state = Box::new(KernelState::empty());
    system
        .with_seed(|seed| {
            let mut seed = *seed;
            seed.time.counter_hz = 1_500_000;
            state.boot(&seed)
        })
        .unwrap();
    let ends: Vec<u64> = (0..3)
        .map(|w| {
            let mut regs = [0; 8];
            let end = state.next_event(0);
            let now = end.unwrap();
            state.clock_in(0, now);
            let _ = state.time_event(0, &mut regs);
            assert_eq!(state.window(0), Some((w + 1) % 3));
            now
        })
        .collect();
    assert_eq!(ends, [1, 3, 4]);
}

#[test]
fn an_unsound_schedule_or_budget_is_refused() {
    let parts = vec![Part::new(0b1, 10, &[])];
    // Windows that do not fill the frame.
    let mut short = schedule(&[&[(1000, Some(1)), (1000, None)]]);
    short.major_frame_us = 3000;
    let system = System::new(1, parts.clone(), 0, 0).scheduled(short);
    assert_eq!(
        system.with_seed(KernelState::new).unwrap_err(),
        SeedError::Time(TimeProblem::Schedule)
    );
    // A window owned by a partition the system lacks.
    let system = System::new(1, parts.clone(), 0, 0).scheduled(schedule(&[&[(1000, Some(0b10))]]));
    assert_eq!(
        system.with_seed(KernelState::new).unwrap_err(),
        SeedError::Time(TimeProblem::Schedule)
    );
    // A budget for a vCPU that does not exist, and one longer than its period.
    for b in [budget(0, 1, 10, 100), budget(0, 0, 200, 100)] {
        let system = System::new(1, parts.clone(), 0, 0).budgeted(&[b]);
        assert_eq!(
            system.with_seed(KernelState::new).unwrap_err(),
            SeedError::Time(TimeProblem::Budget)
        );
    }
    // No counter.
    let system = System::new(1, parts, 0, 0).budgeted(&[budget(0, 0, 10, 100)]);
    let refused = system.with_seed(|seed| {
        let mut seed = *seed;
        seed.time.counter_hz = 0;
        KernelState::new(&seed)
    });
    assert_eq!(
        refused.unwrap_err(),
        SeedError::Time(TimeProblem::Frequency)
    );
}

#[test]
fn an_untimed_system_does_no_time_work() {
    let system = System::new(1, vec![Part::new(0b1, 10, &[])], 0, 0);
    let mut m = Machine::new(&system);
    assert!(!m.state.is_timed());
    m.clock(0, 123_456);
    assert_eq!(m.state.next_event(0), None);
    assert_eq!(m.state.window(0), None);
    let before = m.state.clone();
    let out = m.time_event(0, 1_000_000);
    assert_eq!(out.next, Next::Continue);
    assert!(*m.state == *before);
}

/// One step of [`random_ipc_across_windows_agrees_on_both_paths`].
#[derive(Clone, Copy, Debug)]
enum Step {
    /// The vCPU on core 0 makes this IPC hypercall on endpoint 0 with x2.
    Ipc(Hypercall, u64),
    /// The timer fires, this many microseconds later.
    Time(u64),
    Tick,
}

fn ipc_steps() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::{Strategy, prop_oneof};
    let calls = proptest::sample::select(vec![
        Hypercall::Call,
        Hypercall::ReplyRecv,
        Hypercall::Recv,
        Hypercall::Reply,
        Hypercall::Send,
        Hypercall::Yield,
    ]);
    prop_oneof![
        8 => (calls, 0u64..3).prop_map(|(call, x2)| Step::Ipc(call, x2)),
        2 => (0u64..4000).prop_map(Step::Time),
        1 => proptest::strategy::Just(Step::Tick),
    ]
}

/// [`serving`] with a budget for the third partition, driven at random:
/// every hypercall runs through both IPC paths (`Machine::raw`), every
/// step keeps every invariant. Returns how often the fast path took a call
/// and how often a vCPU ran outside its own window.
fn drive(steps: &[Step]) -> (usize, usize) {
    let system = serving().budgeted(&[budget(2, 0, 1000, 9000)]);
    let mut m = Machine::new(&system);
    let (mut fast, mut borrowed) = (0, 0);
    for step in steps {
        match *step {
            Step::Ipc(call, x2) => {
                let mut regs = [u64::from(call.function_id()), 0, x2, 7, 0, 0, 0, 0];
                if m.state.clone().fast_path(0, &mut regs).is_some() {
                    fast += 1;
                }
                m.clock(0, m.now);
                m.hvc(0, call, &[0, x2, 7]);
            }
            Step::Time(advance) => {
                m.now += advance;
                m.time_event(0, m.now);
            }
            Step::Tick => {
                m.clock(0, m.now);
                m.tick(0);
            }
        }
        let own = m.state.window(0).map(|w| 1u32 << w);
        if let (Some(cur), Some(own)) = (m.on(0), own)
            && u32::from(cur.byte()) < 3
            && own & (1 << cur.byte()) == 0
        {
            borrowed += 1;
        }
    }
    (fast, borrowed)
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config { cases: 64, ..Default::default() })]

    #[test]
    fn random_ipc_across_windows_agrees_on_both_paths(steps in proptest::collection::vec(ipc_steps(), 1..200)) {
        drive(&steps);
    }
}

/// The random IPC runs take the fast path and run servers on their
/// callers' time: without this the test above could pass on refusals.
#[test]
fn random_ipc_across_windows_reaches_the_fast_path_and_borrowed_time() {
    use proptest::strategy::{Strategy, ValueTree};
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = proptest::collection::vec(ipc_steps(), 200);
    let (mut fast, mut borrowed) = (0, 0);
    for _ in 0..32 {
        let steps = strategy.new_tree(&mut runner).unwrap().current();
        let (f, b) = drive(&steps);
        fast += f;
        borrowed += b;
    }
    assert!(
        fast > 0 && borrowed > 0,
        "fast path {fast}, borrowed time {borrowed}"
    );
}
