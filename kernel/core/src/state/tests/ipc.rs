// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Endpoints: call/reply, send/recv, capability transfer, and every error.

use hv_abi::hypercall::{
    ABI_VERSION, Badge, CapSlot, FUNCTION_BASE, Hypercall, MessageInfo, Rights, Status,
};

use super::support::{
    D, G, Machine, Part, R, System, W, endpoint, fid, notification, object, p, st, v,
};
use crate::cap::{NotificationId, SlotRef};
use crate::state::{IrqSeed, Next, Outcome, ReceiveSlot, VcpuState};
use hv_image::Capability;
use hv_image::Object;

/// Core 0: the client (vCPU 0) and the server (vCPU 1), both priority 10;
/// core 1: the remote client (vCPU 2). Endpoint 0 carries capabilities,
/// endpoint 1 does not, endpoint 2 is the remote's.
pub(super) fn client_server() -> System {
    let client = Part::new(
        0b01,
        10,
        &[
            endpoint(0, &[W, G], 0x11),
            object(Object::Memory(3), &[R, W, D]),
            endpoint(1, &[W], 0x12),
            notification(0, &[W], 0b100),
            object(Object::Memory(4), &[R, W]),
            endpoint(2, &[W], 0x15),
        ],
    );
    let server = Part::new(0b01, 10, &[endpoint(0, &[R], 0), endpoint(1, &[R], 0)]);
    let remote = Part::new(0b10, 10, &[endpoint(0, &[W], 0x22), endpoint(2, &[R], 0)]);
    System::new(2, vec![client, server, remote], 3, 1)
}

fn words(n: usize) -> u64 {
    MessageInfo::words(n).0
}

/// The client yields so that the server runs and waits on endpoint 0,
/// naming no receive slot.
fn server_waiting(m: &mut Machine) {
    server_waiting_for(m, None);
}

/// x2 of a receiving call naming receive slot `slot`.
fn into(slot: u32) -> u64 {
    MessageInfo::words(0).with_capability(CapSlot(slot)).0
}

/// As [`server_waiting`], the server naming `accept` as its receive slot.
fn server_waiting_for(m: &mut Machine, accept: Option<u32>) {
    assert_eq!(m.on(0), Some(v(0)));
    m.hvc(0, Hypercall::Yield, &[]);
    assert_eq!(m.on(0), Some(v(1)));
    let out = m.hvc(0, Hypercall::Recv, &[0, accept.map_or(0, into)]);
    assert_eq!(
        out.next,
        Next::Switch {
            from: Some(v(1)),
            to: v(0)
        }
    );
    assert_eq!(
        m.state.vcpu_state(v(1)),
        Some(VcpuState::Receiving {
            endpoint: crate::cap::EndpointId(0),
            accept: accept.map_or(ReceiveSlot::NONE, |s| {
                ReceiveSlot::new(u64::from(s)).unwrap()
            }),
        })
    );
}

#[test]
fn version_is_the_null_hypercall() {
    let mut m = Machine::new(&client_server());
    let before = m.state.clone();
    let out = m.raw(0, [fid(Hypercall::Version), 5, 6, 7, 8, 9, 10, 11]);
    assert_eq!(out, crate::state::Outcome::CONTINUE);
    assert_eq!(m.regs[0], [0, u64::from(ABI_VERSION), 6, 7, 8, 9, 10, 11]);
    assert!(m.state == before);
}

#[test]
fn a_reserved_immediate_is_refused_whatever_x0_says() {
    // `svc #1` with the null hypercall's, a call's and a log's x0: each is
    // refused with `NotSupported`, x1..x7 and the state unchanged.
    let mut m = Machine::new(&client_server());
    let before = m.state.clone();
    for call in [Hypercall::Version, Hypercall::Call, Hypercall::Log] {
        let regs = [fid(call), 0, words(1), 7, 8, 9, 10, 11];
        m.regs[0] = regs;
        let out = m.step(0, |s, r| s.reserved_call(0, r));
        assert_eq!(out, crate::state::Outcome::CONTINUE);
        assert_eq!(m.status(0), Some(Status::NotSupported));
        assert_eq!(m.regs[0][1..], regs[1..]);
        assert!(m.state == before);
    }
}

#[test]
fn call_and_reply_recv_round_trip_on_the_fast_path() {
    let mut m = Machine::new(&client_server());
    server_waiting(&mut m);
    let out = m.raw(
        0,
        [fid(Hypercall::Call), 0, words(3), 7, 8, 9, 0xdead, 0xbeef],
    );
    // Straight to the server, which gets the badge and only three words.
    assert_eq!(
        out.next,
        Next::Switch {
            from: Some(v(0)),
            to: v(1)
        }
    );
    assert_eq!(out.kick, 0);
    assert_eq!(m.regs[0], [0, 0x11, words(3), 7, 8, 9, 0, 0]);
    assert_eq!(
        m.state.vcpu_state(v(0)),
        Some(VcpuState::AwaitingReply { server: v(1) })
    );
    assert_eq!(m.state.caller_of(v(1)), Some(v(0)));
    // The reply goes straight back; the server waits again.
    let out = m.raw(
        0,
        [fid(Hypercall::ReplyRecv), 0, words(2), 42, 43, 44, 45, 46],
    );
    assert_eq!(
        out.next,
        Next::Switch {
            from: Some(v(1)),
            to: v(0)
        }
    );
    assert_eq!(m.regs[0], [0, 0, words(2), 42, 43, 0, 0, 0]);
    assert_eq!(m.state.caller_of(v(1)), None);
    assert!(matches!(
        m.state.vcpu_state(v(1)),
        Some(VcpuState::Receiving { .. })
    ));
}

#[test]
fn reply_wakes_the_caller_and_the_server_carries_on() {
    let mut m = Machine::new(&client_server());
    server_waiting(&mut m);
    m.hvc(0, Hypercall::Call, &[0, words(0)]);
    let out = m.hvc(0, Hypercall::Reply, &[0, words(1), 99]);
    assert_eq!(out.next, Next::Continue);
    assert_eq!(m.status(0), Some(Status::Success));
    assert_eq!(m.state.vcpu_state(v(0)), Some(VcpuState::Ready));
    assert_eq!(
        m.state.saved_regs(v(0)),
        Some([0, 0, words(1), 99, 0, 0, 0, 0])
    );
    // A second reply has nobody to go to.
    m.hvc(0, Hypercall::Reply, &[0, words(0)]);
    assert_eq!(m.status(0), Some(Status::NoCaller));
}

#[test]
fn senders_queue_in_order_and_are_released_as_they_are_taken() {
    let mut m = Machine::new(&client_server());
    // The client sends first and waits (nobody receives): the server runs.
    let out = m.hvc(0, Hypercall::Send, &[0, words(1), 1]);
    assert_eq!(
        out.next,
        Next::Switch {
            from: Some(v(0)),
            to: v(1)
        }
    );
    // The remote sends second, on core 1, which then idles.
    let out = m.hvc(1, Hypercall::Send, &[0, words(1), 2]);
    assert_eq!(out.next, Next::Idle { from: Some(v(2)) });
    m.hvc(0, Hypercall::Recv, &[0]);
    assert_eq!(m.regs[0], [0, 0x11, words(1), 1, 0, 0, 0, 0]);
    assert_eq!(m.state.vcpu_state(v(0)), Some(VcpuState::Ready));
    let out = m.hvc(0, Hypercall::Recv, &[0]);
    assert_eq!(m.regs[0], [0, 0x22, words(1), 2, 0, 0, 0, 0]);
    // The remote's core idles, so it is kicked.
    assert_eq!(out.kick, 0b10);
    let out = m.reschedule(1);
    assert_eq!(
        out.next,
        Next::Switch {
            from: None,
            to: v(2)
        }
    );
    assert_eq!(m.regs[1], [0, 0, words(1), 2, 0, 0, 0, 0]);
    // Nobody left: the server waits and the client runs, its send done.
    let out = m.hvc(0, Hypercall::Recv, &[0]);
    assert_eq!(
        out.next,
        Next::Switch {
            from: Some(v(1)),
            to: v(0)
        }
    );
    assert_eq!(m.status(0), Some(Status::Success));
}

#[test]
fn waking_a_receiver_on_another_core_kicks_it() {
    let mut m = Machine::new(&client_server());
    let out = m.hvc(1, Hypercall::Recv, &[1]);
    assert_eq!(out.next, Next::Idle { from: Some(v(2)) });
    let out = m.hvc(0, Hypercall::Send, &[5, words(2), 3, 4]);
    assert_eq!(out.next, Next::Continue);
    assert_eq!(out.kick, 0b10);
    assert_eq!(m.status(0), Some(Status::Success));
    let out = m.reschedule(1);
    assert_eq!(
        out.next,
        Next::Switch {
            from: None,
            to: v(2)
        }
    );
    assert_eq!(m.regs[1], [0, 0x15, words(2), 3, 4, 0, 0, 0]);
}

#[test]
fn bad_arguments_change_nothing_but_x0() {
    let mut m = Machine::new(&client_server());
    let info = |n: usize, slot: u32| MessageInfo::words(n).with_capability(CapSlot(slot)).0;
    let cases: &[(u64, u64, u64, Status)] = &[
        (
            u64::from(FUNCTION_BASE) + Hypercall::ALL.len() as u64,
            0,
            0,
            Status::NotSupported,
        ),
        (u64::MAX, 0, 0, Status::NotSupported),
        (0, 0, 0, Status::NotSupported),
        (fid(Hypercall::Call) | 1 << 32, 0, 0, Status::NotSupported),
        (fid(Hypercall::Call), 64, 0, Status::InvalidCapability),
        (fid(Hypercall::Call), u64::MAX, 0, Status::InvalidCapability),
        (fid(Hypercall::Call), 1 << 32, 0, Status::InvalidCapability),
        (fid(Hypercall::Call), 9, 0, Status::InvalidCapability),
        (fid(Hypercall::Call), 3, 0, Status::WrongType),
        (fid(Hypercall::Call), 1, 0, Status::WrongType),
        (fid(Hypercall::Recv), 0, 0, Status::NoRights),
        (fid(Hypercall::ReplyRecv), 0, 0, Status::NoRights),
        (fid(Hypercall::Call), 0, 6, Status::InvalidArgument),
        (fid(Hypercall::Send), 0, 7, Status::InvalidArgument),
        (fid(Hypercall::Call), 0, 1 << 4, Status::InvalidArgument),
        (fid(Hypercall::Call), 0, 1 << 31, Status::InvalidArgument),
        (fid(Hypercall::Call), 2, info(1, 1), Status::NotGrantable),
        (fid(Hypercall::Call), 0, info(1, 4), Status::NotGrantable),
        (
            fid(Hypercall::Call),
            0,
            info(1, 9),
            Status::InvalidCapability,
        ),
        (
            fid(Hypercall::Call),
            0,
            info(1, u32::MAX),
            Status::InvalidCapability,
        ),
        (fid(Hypercall::Reply), 0, 0, Status::NoCaller),
        (fid(Hypercall::Signal), 0, 0, Status::WrongType),
        (fid(Hypercall::Wait), 3, 0, Status::NoRights),
        (fid(Hypercall::Poll), 3, 0, Status::NoRights),
        (fid(Hypercall::IrqAck), 0, 0, Status::WrongType),
        (fid(Hypercall::Log), 0, 41, Status::InvalidArgument),
        (fid(Hypercall::Log), 0, u64::MAX, Status::InvalidArgument),
        (fid(Hypercall::LogRead), 0, 0, Status::WrongType),
        (fid(Hypercall::LogRead), 99, 0, Status::InvalidCapability),
        (fid(Hypercall::PartitionStatus), 0, 0, Status::WrongType),
        (
            fid(Hypercall::PartitionStop),
            99,
            0,
            Status::InvalidCapability,
        ),
        (fid(Hypercall::PartitionRestart), 1, 0, Status::WrongType),
    ];
    for &(x0, x1, x2, want) in cases {
        let before = m.state.clone();
        let regs = [x0, x1, x2, 3, 4, 5, 6, 7];
        let out = m.raw(0, regs);
        assert_eq!(
            out,
            crate::state::Outcome::CONTINUE,
            "{x0:#x} {x1:#x} {x2:#x}"
        );
        assert_eq!(m.regs[0][0], st(want), "{x0:#x} {x1:#x} {x2:#x}");
        assert_eq!(m.regs[0][1..], regs[1..], "{x0:#x} {x1:#x} {x2:#x}");
        assert!(
            m.state == before,
            "{x0:#x} {x1:#x} {x2:#x} changed the state"
        );
    }
}

#[test]
fn server_side_protocol_errors() {
    let mut m = Machine::new(&client_server());
    server_waiting(&mut m);
    m.hvc(0, Hypercall::Call, &[0, words(0)]);
    assert_eq!(m.on(0), Some(v(1)));
    for (regs, want) in [
        // Receiving again while a reply is owed would forget the caller.
        (
            [fid(Hypercall::Recv), 0, 0, 0, 0, 0, 0, 0],
            Status::InvalidArgument,
        ),
        // Replies carry no capabilities (`ReplyRecv`'s capability field
        // names a receive slot instead).
        (
            [
                fid(Hypercall::Reply),
                0,
                MessageInfo::words(0).with_capability(CapSlot(0)).0,
                0,
                0,
                0,
                0,
                0,
            ],
            Status::InvalidArgument,
        ),
        // A receive slot that is not empty, or out of range.
        (
            [fid(Hypercall::ReplyRecv), 0, into(0), 0, 0, 0, 0, 0],
            Status::InvalidArgument,
        ),
        (
            [fid(Hypercall::ReplyRecv), 0, into(1), 0, 0, 0, 0, 0],
            Status::InvalidArgument,
        ),
        (
            [fid(Hypercall::ReplyRecv), 0, into(64), 0, 0, 0, 0, 0],
            Status::InvalidCapability,
        ),
        (
            [fid(Hypercall::ReplyRecv), 0, into(u32::MAX), 0, 0, 0, 0, 0],
            Status::InvalidCapability,
        ),
        (
            [
                fid(Hypercall::ReplyRecv),
                0,
                into(5) | 1 << 4,
                0,
                0,
                0,
                0,
                0,
            ],
            Status::InvalidArgument,
        ),
        (
            [fid(Hypercall::ReplyRecv), 0, 6, 0, 0, 0, 0, 0],
            Status::InvalidArgument,
        ),
        (
            [fid(Hypercall::ReplyRecv), 2, 0, 0, 0, 0, 0, 0],
            Status::InvalidCapability,
        ),
    ] {
        let before = m.state.clone();
        m.raw(0, regs);
        assert_eq!(m.status(0), Some(want), "{regs:?}");
        assert!(m.state == before);
    }
}

#[test]
fn a_capability_moves_only_over_a_grant_endpoint_and_stays_revocable() {
    let mut m = Machine::new(&client_server());
    // The server names slot 5 (its first free slot is 2).
    server_waiting_for(&mut m, Some(5));
    let send = MessageInfo::words(1).with_capability(CapSlot(1)).0;
    m.raw(0, [fid(Hypercall::Call), 0, send, 77, 0, 0, 0, 0]);
    let arrived = MessageInfo::words(1).with_capability(CapSlot(5)).0;
    assert_eq!(m.regs[0], [0, 0x11, arrived, 77, 0, 0, 0, 0]);
    let moved = SlotRef::new(p(1), 5).unwrap();
    assert_eq!(
        m.state.capability(p(1), 5),
        Some(Capability::new(Object::Memory(3), Rights(0b1_0011)))
    );
    assert_eq!(m.state.caps().parent(moved), SlotRef::new(p(0), 1));
    assert_eq!(m.state.caps().slots(p(1)).count(), 3);
    m.hvc(0, Hypercall::ReplyRecv, &[0, words(0)]);
    // The client takes it back.
    m.hvc(0, Hypercall::Revoke, &[1]);
    assert_eq!(m.status(0), Some(Status::Success));
    assert_eq!(m.state.capability(p(1), 5), None);
}

/// The client's call carrying the capability in its slot 1.
fn call_with_capability(m: &mut Machine) -> Outcome {
    let send = MessageInfo::words(1).with_capability(CapSlot(1)).0;
    m.raw(0, [fid(Hypercall::Call), 0, send, 7, 0, 0, 0, 0])
}

#[test]
fn a_transfer_to_a_receiver_that_named_no_slot_is_refused_and_changes_nothing() {
    let mut m = Machine::new(&client_server());
    server_waiting(&mut m);
    let before = m.state.clone();
    let out = call_with_capability(&mut m);
    assert_eq!(out.next, Next::Continue);
    assert_eq!(m.status(0), Some(Status::OutOfResources));
    assert!(m.state == before, "the message was delivered");
}

#[test]
fn a_client_cannot_fill_a_servers_table() {
    let mut m = Machine::new(&client_server());
    m.hvc(0, Hypercall::Yield, &[]);
    // The server gives up its slot 1 (its first free one now): a
    // capability must not appear there.
    m.hvc(0, Hypercall::Delete, &[1]);
    assert_eq!(m.status(0), Some(Status::Success));
    m.hvc(0, Hypercall::Recv, &[0]);
    assert_eq!(m.on(0), Some(v(0)));
    let table = m.state.caps().slots(p(1)).count();
    for _ in 0..100 {
        call_with_capability(&mut m);
        assert_eq!(m.status(0), Some(Status::OutOfResources));
        assert_eq!(m.on(0), Some(v(0)));
    }
    assert_eq!(m.state.caps().slots(p(1)).count(), table);
    assert_eq!(m.state.capability(p(1), 1), None);
    // And a plain message still gets through.
    m.raw(0, [fid(Hypercall::Call), 0, words(1), 8, 0, 0, 0, 0]);
    assert_eq!(m.regs[0], [0, 0x11, words(1), 8, 0, 0, 0, 0]);
}

#[test]
fn a_named_slot_filled_before_the_capability_comes_refuses_it() {
    // The server has two vCPUs on core 0: one names slot 5 and waits, the
    // other then fills slot 5 itself.
    let mut system = client_server();
    system.parts[1] = system.parts[1].clone().vcpus(2);
    system.parts[1]
        .caps
        .push(object(Object::Memory(5), &[R, D]));
    let mut m = Machine::new(&system);
    m.hvc(0, Hypercall::Yield, &[]);
    assert_eq!(m.on(0), Some(v(1)));
    m.hvc(0, Hypercall::Recv, &[0, into(5)]);
    assert_eq!(m.on(0), Some(v(2)), "the server's second vCPU runs");
    m.hvc(0, Hypercall::Derive, &[2, u64::from(R.0), 5]);
    assert_eq!(m.status(0), Some(Status::Success));
    m.hvc(0, Hypercall::Recv, &[1]);
    assert_eq!(m.on(0), Some(v(0)));
    let before = m.state.clone();
    call_with_capability(&mut m);
    assert_eq!(m.status(0), Some(Status::OutOfResources));
    assert!(m.state == before);
    assert_eq!(
        m.state.capability(p(1), 5),
        Some(Capability::new(Object::Memory(5), R))
    );
}

/// Core 0's client sends (`call`) with `info` and waits, the server not yet
/// receiving; the server then runs.
fn queued_send(m: &mut Machine, call: bool, info: u64, word: u64) {
    let which = if call {
        Hypercall::Call
    } else {
        Hypercall::Send
    };
    m.hvc(0, which, &[0, info, word]);
    assert_eq!(m.on(0), Some(v(1)), "the server runs");
}

#[test]
fn a_queued_capability_lands_only_in_the_slot_the_receiver_names() {
    let mut m = Machine::new(&client_server());
    let send = MessageInfo::words(1).with_capability(CapSlot(1)).0;
    queued_send(&mut m, true, send, 5);
    m.hvc(0, Hypercall::Recv, &[0, into(9)]);
    let arrived = MessageInfo::words(1).with_capability(CapSlot(9)).0;
    assert_eq!(m.regs[0], [0, 0x11, arrived, 5, 0, 0, 0, 0]);
    assert_eq!(
        m.state.caps().parent(SlotRef::new(p(1), 9).unwrap()),
        SlotRef::new(p(0), 1)
    );
    assert_eq!(m.state.caps().slots(p(1)).count(), 3);
}

#[test]
fn a_queued_capability_the_receiver_did_not_ask_for_is_turned_away() {
    let mut m = Machine::new(&client_server());
    let send = MessageInfo::words(1).with_capability(CapSlot(1)).0;
    queued_send(&mut m, true, send, 5);
    // The remote sends a plain message behind it, on core 1.
    m.hvc(1, Hypercall::Send, &[0, words(1), 6]);
    let table = m.state.caps().slots(p(1)).count();
    let out = m.hvc(0, Hypercall::Recv, &[0]);
    // The server takes the remote's message; the client is woken with
    // OutOfResources, its registers as they were, owed no reply.
    assert_eq!(m.regs[0], [0, 0x22, words(1), 6, 0, 0, 0, 0]);
    assert_eq!(out.kick, 0b10);
    assert_eq!(m.state.caps().slots(p(1)).count(), table);
    assert_eq!(m.state.vcpu_state(v(0)), Some(VcpuState::Ready));
    assert_eq!(
        m.state.saved_regs(v(0)),
        Some([st(Status::OutOfResources), 0, send, 5, 0, 0, 0, 0])
    );
    assert_eq!(m.state.caller_of(v(1)), None);
}

#[test]
fn a_queued_capability_that_went_while_waiting_is_refused() {
    let mut system = client_server();
    system.parts[0] = system.parts[0].clone().vcpus(2);
    system.parts[0].cores = 0b11;
    let mut m = Machine::new(&system);
    // vCPU 0 on core 0 and vCPU 1 (the client's second) on core 1.
    assert_eq!(m.state.vcpu_core(v(1)), Some(1));
    let send = MessageInfo::words(1).with_capability(CapSlot(1)).0;
    m.raw(0, [fid(Hypercall::Send), 0, send, 5, 0, 0, 0, 0]);
    assert_eq!(m.on(0), Some(v(2)), "the server runs");
    m.hvc(1, Hypercall::Delete, &[1]);
    assert_eq!(m.status(1), Some(Status::Success));
    // Nothing else queued: the server waits, the sender is refused.
    m.hvc(0, Hypercall::Recv, &[0, into(9)]);
    assert!(matches!(
        m.state.vcpu_state(v(2)),
        Some(VcpuState::Receiving { .. })
    ));
    assert_eq!(m.on(0), Some(v(0)));
    assert_eq!(m.status(0), Some(Status::InvalidCapability));
    assert_eq!(m.state.caps().slots(p(1)).count(), 2);
}

#[test]
fn a_call_to_a_lower_priority_receiver_queues_it_behind_higher_ones() {
    let a = Part::new(0b1, 10, &[endpoint(0, &[W], 0xa), notification(0, &[R], 0)]);
    let server = Part::new(0b1, 5, &[endpoint(0, &[R], 0)]);
    let b = Part::new(0b1, 10, &[notification(0, &[R], 0)]);
    let mut system = System::new(1, vec![a, server, b], 1, 1);
    system.irqs.push(IrqSeed {
        intid: 40,
        notification: NotificationId(0),
        badge: Badge(1),
        device: None,
    });
    let mut m = Machine::new(&system);
    assert_eq!(m.on(0), Some(v(0)));
    m.hvc(0, Hypercall::Wait, &[1]);
    assert_eq!(m.on(0), Some(v(2)));
    m.hvc(0, Hypercall::Wait, &[0]);
    assert_eq!(m.on(0), Some(v(1)));
    let out = m.hvc(0, Hypercall::Recv, &[0]);
    assert_eq!(out.next, Next::Idle { from: Some(v(1)) });
    // Two interrupts wake the two waiters in turn; equal priority does not
    // preempt.
    m.step(0, |s, r| s.interrupt(0, 40, r));
    assert_eq!(m.on(0), Some(v(0)));
    assert_eq!(m.regs[0][..2], [0, 1]);
    m.step(0, |s, r| s.interrupt(0, 40, r));
    assert_eq!(m.on(0), Some(v(0)));
    // The server is below vCPU 2, so the call does not switch to it.
    let out = m.hvc(0, Hypercall::Call, &[0, words(1), 9]);
    assert_eq!(
        out.next,
        Next::Switch {
            from: Some(v(0)),
            to: v(2)
        }
    );
    assert_eq!(m.state.vcpu_state(v(1)), Some(VcpuState::Ready));
    assert_eq!(
        m.state.saved_regs(v(1)),
        Some([0, 0xa, words(1), 9, 0, 0, 0, 0])
    );
    assert_eq!(m.state.caller_of(v(1)), Some(v(0)));
}

#[test]
fn the_common_call_and_reply_recv_take_the_fast_path() {
    let mut m = Machine::new(&client_server());
    server_waiting(&mut m);
    let call = [fid(Hypercall::Call), 0, words(2), 1, 2, 0, 0, 0];
    let mut regs = call;
    assert!(m.state.clone().fast_path(0, &mut regs).is_some());
    // Not with a capability, a malformed info, or a bad slot.
    for x in [
        [
            fid(Hypercall::Call),
            0,
            MessageInfo::words(0).with_capability(CapSlot(1)).0,
            0,
            0,
            0,
            0,
            0,
        ],
        [fid(Hypercall::Call), 0, 6, 0, 0, 0, 0, 0],
        [fid(Hypercall::Call), 3, 0, 0, 0, 0, 0, 0],
        [fid(Hypercall::Send), 0, 0, 0, 0, 0, 0, 0],
    ] {
        let mut regs = x;
        assert!(m.state.clone().fast_path(0, &mut regs).is_none(), "{x:x?}");
    }
    m.raw(0, call);
    let reply = [fid(Hypercall::ReplyRecv), 0, words(1), 9, 0, 0, 0, 0];
    let mut regs = reply;
    assert!(m.state.clone().fast_path(0, &mut regs).is_some());
    m.raw(0, reply);
    assert_eq!(m.on(0), Some(v(0)));
    // The client now sends without waiting for a reply: the server takes it
    // and owes nobody, so its next ReplyRecv has no one to answer and the
    // general path just receives.
    m.hvc(0, Hypercall::Send, &[0, words(0)]);
    m.hvc(0, Hypercall::Yield, &[]);
    assert_eq!(m.on(0), Some(v(1)));
    assert_eq!(m.state.caller_of(v(1)), None);
    let mut regs = reply;
    assert!(m.state.clone().fast_path(0, &mut regs).is_none());
}
