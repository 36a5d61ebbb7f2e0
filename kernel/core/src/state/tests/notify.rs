// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Notifications and interrupts.

use hv_abi::hypercall::{Badge, Hypercall, Status};

use super::support::{Machine, Part, R, System, W, irq, notification, object, v};
use crate::cap::NotificationId;
use crate::state::{Effect, IrqSeed, Next, Outcome, VcpuState};
use hv_image::Object;

/// Core 0: a signaller (vCPU 0, priority 10) and a waiter (vCPU 1, priority
/// 20 when `urgent`, else 10); core 1: a second waiter (vCPU 2). Interrupt
/// 33 (device 7's first) sets bit 0x100 of notification 0, interrupt 34
/// (device 7's second) sets 0x200, interrupt 35 (no device) sets 0x400.
fn signals(urgent: bool) -> System {
    let signaller = Part::new(
        0b01,
        10,
        &[notification(0, &[W], 0b101), notification(0, &[W], 0)],
    );
    let waiter = Part::new(
        0b01,
        if urgent { 20 } else { 10 },
        &[
            notification(0, &[R], 0),
            object(irq(0), &[W]),
            object(Object::Device(7), &[W]),
            object(irq(2), &[R]),
            object(Object::Device(8), &[W]),
        ],
    );
    let remote = Part::new(0b10, 10, &[notification(0, &[R], 0)]);
    let mut system = System::new(2, vec![signaller, waiter, remote], 0, 1);
    for (intid, badge, device) in [
        (33, 0x100, Some(7)),
        (34, 0x200, Some(7)),
        (35, 0x400, None),
    ] {
        system.irqs.push(IrqSeed {
            intid,
            notification: NotificationId(0),
            badge: Badge(badge),
            device,
        });
    }
    system
}

#[test]
fn signal_accumulates_bits_and_wait_takes_and_clears_them() {
    let mut m = Machine::new(&signals(false));
    let word = |m: &Machine| m.state.notification_word(NotificationId(0));
    m.hvc(0, Hypercall::Signal, &[0]);
    assert_eq!(m.status(0), Some(Status::Success));
    m.step(0, |s, r| s.interrupt(0, 35, r));
    assert_eq!(word(&m), Some(0b101 | 0x400));
    // A badge of zero sets nothing and wakes nobody.
    m.hvc(0, Hypercall::Signal, &[1]);
    assert_eq!(word(&m), Some(0b101 | 0x400));
    m.hvc(0, Hypercall::Yield, &[]);
    assert_eq!(m.on(0), Some(v(1)));
    let out = m.hvc(0, Hypercall::Wait, &[0]);
    assert_eq!(out.next, Next::Continue);
    assert_eq!(m.regs[0][..2], [0, 0b101 | 0x400]);
    assert_eq!(word(&m), Some(0));
}

#[test]
fn poll_never_waits_and_reports_no_bits_as_success() {
    let mut m = Machine::new(&signals(false));
    let out = m.hvc(1, Hypercall::Poll, &[0]);
    assert_eq!(out, Outcome::CONTINUE);
    assert_eq!(m.regs[1][..2], [0, 0]);
    m.hvc(0, Hypercall::Signal, &[0]);
    m.hvc(1, Hypercall::Poll, &[0]);
    assert_eq!(m.regs[1][..2], [0, 0b101]);
    assert_eq!(m.state.notification_word(NotificationId(0)), Some(0));
}

#[test]
fn a_signal_wakes_the_first_waiter_on_another_core_with_a_kick() {
    let mut m = Machine::new(&signals(false));
    let out = m.hvc(1, Hypercall::Wait, &[0]);
    assert_eq!(out.next, Next::Idle { from: Some(v(2)) });
    let out = m.hvc(0, Hypercall::Signal, &[0]);
    assert_eq!((out.next, out.kick), (Next::Continue, 0b10));
    assert_eq!(m.state.notification_word(NotificationId(0)), Some(0));
    let out = m.reschedule(1);
    assert_eq!(
        out.next,
        Next::Switch {
            from: None,
            to: v(2)
        }
    );
    assert_eq!(m.regs[1][..2], [0, 0b101]);
}

#[test]
fn a_woken_waiter_keeps_its_other_registers() {
    let mut m = Machine::new(&signals(false));
    m.raw(
        1,
        [
            u64::from(Hypercall::Wait.function_id()),
            0,
            22,
            33,
            44,
            55,
            66,
            77,
        ],
    );
    m.hvc(0, Hypercall::Signal, &[0]);
    m.reschedule(1);
    assert_eq!(m.regs[1], [0, 0b101, 22, 33, 44, 55, 66, 77]);
}

#[test]
fn waking_a_higher_priority_on_the_same_core_preempts_at_once() {
    let mut m = Machine::new(&signals(true));
    // The urgent waiter runs first and waits; the signaller gets the core.
    assert_eq!(m.on(0), Some(v(1)));
    let out = m.hvc(0, Hypercall::Wait, &[0]);
    assert_eq!(
        out.next,
        Next::Switch {
            from: Some(v(1)),
            to: v(0)
        }
    );
    let out = m.raw(
        0,
        [
            u64::from(Hypercall::Signal.function_id()),
            0,
            9,
            9,
            9,
            9,
            9,
            9,
        ],
    );
    assert_eq!(
        out.next,
        Next::Switch {
            from: Some(v(0)),
            to: v(1)
        }
    );
    assert_eq!(m.regs[0][..2], [0, 0b101]);
    // The preempted signaller got its result and waits at the front.
    assert_eq!(m.state.vcpu_state(v(0)), Some(VcpuState::Ready));
    assert_eq!(m.state.saved_regs(v(0)), Some([0, 0, 9, 9, 9, 9, 9, 9]));
}

#[test]
fn an_interrupt_signals_its_notification_and_is_acknowledged_once() {
    let mut m = Machine::new(&signals(false));
    m.hvc(0, Hypercall::Yield, &[]);
    assert_eq!(m.on(0), Some(v(1)));
    m.hvc(0, Hypercall::Wait, &[0]);
    // The core now runs the signaller; the interrupt wakes the waiter.
    let out = m.step(0, |s, r| s.interrupt(0, 33, r));
    assert_eq!((out.next, out.effect), (Next::Continue, None));
    assert_eq!(m.state.vcpu_state(v(1)), Some(VcpuState::Ready));
    assert_eq!(m.state.saved_regs(v(1)).map(|r| r[1]), Some(0x100));
    m.hvc(0, Hypercall::Yield, &[]);
    assert_eq!(m.on(0), Some(v(1)));
    let out = m.hvc(0, Hypercall::IrqAck, &[1]);
    assert_eq!(m.status(0), Some(Status::Success));
    assert_eq!(out.effect, Some(Effect::UnmaskIrq(33)));
    // Not masked any more: nothing to ask of the glue.
    let out = m.hvc(0, Hypercall::IrqAck, &[1]);
    assert_eq!((m.status(0), out.effect), (Some(Status::Success), None));
}

#[test]
fn a_device_capability_acknowledges_the_devices_nth_interrupt() {
    let mut m = Machine::new(&signals(false));
    m.step(0, |s, r| s.interrupt(0, 34, r));
    m.step(0, |s, r| s.interrupt(0, 33, r));
    m.hvc(0, Hypercall::Yield, &[]);
    let out = m.hvc(0, Hypercall::IrqAck, &[2, 1]);
    assert_eq!(out.effect, Some(Effect::UnmaskIrq(34)));
    let out = m.hvc(0, Hypercall::IrqAck, &[2, 0]);
    assert_eq!(out.effect, Some(Effect::UnmaskIrq(33)));
    for (args, want) in [
        ([2, 2], Status::InvalidArgument),
        ([2, u64::MAX], Status::InvalidArgument),
        ([4, 0], Status::InvalidArgument),
        ([3, 0], Status::NoRights),
        ([0, 0], Status::WrongType),
        ([64, 0], Status::InvalidCapability),
    ] {
        let before = m.state.clone();
        let out = m.hvc(0, Hypercall::IrqAck, &args);
        assert_eq!((m.status(0), out.effect), (Some(want), None), "{args:?}");
        assert!(m.state == before);
    }
}

#[test]
fn an_unbound_interrupt_or_a_bad_core_changes_nothing() {
    let mut m = Machine::new(&signals(false));
    let before = m.state.clone();
    let out = m.step(0, |s, r| s.interrupt(0, 99, r));
    assert_eq!(out, Outcome::CONTINUE);
    assert!(m.state == before);
    let mut regs = [0; 8];
    let out = m.state.interrupt(7, 33, &mut regs);
    assert_eq!(out.next, Next::Idle { from: None });
    assert!(m.state == before);
}

/// An interrupt that fires and is acknowledged over and over (a level
/// interrupt its driver never clears): the first `IRQ_FIRES_PER_TICK` acks
/// in a tick unmask it, the next one leaves it held until the next tick,
/// when it is released once, reported the first time only; other
/// interrupts keep their own budgets.
#[test]
fn a_storm_is_held_after_its_budget_until_the_next_tick() {
    use crate::state::{HeldIrq, IRQ_FIRES_PER_TICK};
    let mut m = Machine::new(&signals(true));
    assert_eq!(m.on(0), Some(v(1)));
    let storm = |m: &mut Machine| {
        let mut unmasked = 0;
        loop {
            m.step(0, |s, r| s.interrupt(0, 33, r));
            let out = m.hvc(0, Hypercall::IrqAck, &[1]);
            assert_eq!(m.status(0), Some(Status::Success), "held is no error");
            if out.effect != Some(Effect::UnmaskIrq(33)) {
                assert_eq!(out.effect, None);
                return unmasked;
            }
            unmasked += 1;
            assert!(unmasked < 1000);
        }
    };
    m.state.advance_clock(5);
    assert_eq!(storm(&mut m), IRQ_FIRES_PER_TICK - 1);
    assert!(m.state.has_held_irqs());
    assert_eq!(m.state.release_held_irq(), None, "not within its tick");
    // Interrupt 34 has a budget of its own.
    m.step(0, |s, r| s.interrupt(0, 34, r));
    let out = m.hvc(0, Hypercall::IrqAck, &[2, 1]);
    assert_eq!(out.effect, Some(Effect::UnmaskIrq(34)));
    m.state.advance_clock(6);
    assert_eq!(
        m.state.release_held_irq(),
        Some(HeldIrq {
            intid: 33,
            first: true
        })
    );
    assert_eq!(m.state.release_held_irq(), None);
    assert!(!m.state.has_held_irqs());
    // The next tick's storm is held again, and not reported again.
    assert_eq!(storm(&mut m), IRQ_FIRES_PER_TICK - 1);
    m.state.advance_clock(7);
    assert_eq!(
        m.state.release_held_irq(),
        Some(HeldIrq {
            intid: 33,
            first: false
        })
    );
    m.state.check_invariants().unwrap();
}
