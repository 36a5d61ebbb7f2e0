// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Reply objects: keeping a caller's reply for later, and every error.

use hv_abi::hypercall::{Hypercall, MessageInfo, Rights, Status};

use super::support::{Machine, Part, R, System, W, endpoint, object, p, st, v};
use crate::cap::ReplyId;
use crate::state::{EndpointSeed, ReplySeed, SeedError, VcpuState};
use hv_image::Object;

fn reply(i: u8) -> Object {
    Object::Reply(ReplyId(i).number())
}

fn words(n: usize) -> u64 {
    MessageInfo::words(n).0
}

/// Core 0: client A (partition 0, vCPU 0), client B (partition 1, vCPU 1)
/// and the server (partition 2, vCPU 2), all priority 10. The server serves
/// endpoint 0 and owns reply objects 0 and 1; its slots: 0 the endpoint, 1
/// reply 0, 2 reply 1 without WRITE, 3 a memory region. B owns reply 2
/// and may stop A.
fn deferred() -> System {
    let a = Part::new(0b1, 10, &[endpoint(0, &[W], 0xa)]);
    let b = Part::new(
        0b1,
        10,
        &[
            endpoint(0, &[W], 0xb),
            object(reply(2), &[W]),
            object(Object::Partition(p(0).number()), &[Rights::CONTROL]),
        ],
    );
    let server = Part::new(
        0b1,
        10,
        &[
            endpoint(0, &[R], 0),
            object(reply(0), &[W]),
            object(reply(1), &[R]),
            object(Object::Memory(1), &[R, W]),
        ],
    )
    .restart();
    let mut system = System::new(1, vec![a, b, server], 1, 0);
    system.endpoints = vec![EndpointSeed { server: Some(p(2)) }];
    system.replies = vec![
        ReplySeed { owner: p(2) },
        ReplySeed { owner: p(2) },
        ReplySeed { owner: p(1) },
    ];
    system
}

/// A and B yield so the server runs; it waits on the endpoint; A calls
/// with 0xa0 and the server has the call in hand.
fn server_holding_a() -> Machine {
    let mut m = Machine::new(&deferred());
    assert_eq!(m.on(0), Some(v(0)));
    m.hvc(0, Hypercall::Yield, &[]);
    m.hvc(0, Hypercall::Yield, &[]);
    assert_eq!(m.on(0), Some(v(2)));
    m.hvc(0, Hypercall::Recv, &[0]);
    assert_eq!(m.on(0), Some(v(0)));
    m.hvc(0, Hypercall::Call, &[0, words(1), 0xa0]);
    assert_eq!(m.on(0), Some(v(2)));
    assert_eq!(m.regs[0][..4], [0, 0xa, words(1), 0xa0]);
    m
}

#[test]
fn a_saved_reply_lets_the_server_take_another_call_and_answer_both() {
    let mut m = server_holding_a();
    // Without saving, the server may not receive again.
    m.hvc(0, Hypercall::Recv, &[0]);
    assert_eq!(m.status(0), Some(Status::InvalidArgument));
    m.hvc(0, Hypercall::SaveReply, &[1]);
    assert_eq!(m.status(0), Some(Status::Success));
    assert_eq!(
        m.state.vcpu_state(v(0)),
        Some(VcpuState::AwaitingReply { server: v(2) })
    );
    assert_eq!(m.state.caller_of(v(2)), None);
    // The server receives B's call (B runs once the server waits).
    m.hvc(0, Hypercall::Recv, &[0]);
    assert_eq!(m.on(0), Some(v(1)));
    m.hvc(0, Hypercall::Call, &[0, words(1), 0xb0]);
    assert_eq!(m.on(0), Some(v(2)));
    assert_eq!(m.regs[0][..4], [0, 0xb, words(1), 0xb0]);
    // B first, through the implicit reply; then A, through the object.
    m.hvc(0, Hypercall::Reply, &[0, words(1), 0xb1]);
    assert_eq!(m.status(0), Some(Status::Success));
    assert_eq!(
        m.state.saved_regs(v(1)).unwrap()[..4],
        [0, 0, words(1), 0xb1]
    );
    m.hvc(0, Hypercall::ReplySaved, &[1, words(2), 0xa1, 0xa2, 0xdead]);
    assert_eq!(m.status(0), Some(Status::Success));
    assert_eq!(
        m.state.saved_regs(v(0)).unwrap(),
        [0, 0, words(2), 0xa1, 0xa2, 0, 0, 0],
        "words past the length arrive as zeros"
    );
    assert_eq!(m.state.vcpu_state(v(0)), Some(VcpuState::Ready));
    // The object is empty again.
    m.hvc(0, Hypercall::ReplySaved, &[1, words(0)]);
    assert_eq!(m.status(0), Some(Status::NoCaller));
}

#[test]
fn saving_and_replying_refuse_bad_arguments_and_change_nothing() {
    let mut m = server_holding_a();
    let cases: [(Hypercall, u64, u64, Status); 9] = [
        (Hypercall::SaveReply, 64, 0, Status::InvalidCapability),
        (Hypercall::SaveReply, 5, 0, Status::InvalidCapability),
        (Hypercall::SaveReply, 0, 0, Status::WrongType),
        (Hypercall::SaveReply, 3, 0, Status::WrongType),
        (Hypercall::SaveReply, 2, 0, Status::NoRights),
        (Hypercall::ReplySaved, 2, words(0), Status::NoRights),
        (Hypercall::ReplySaved, 1, words(0), Status::NoCaller),
        (
            Hypercall::ReplySaved,
            1,
            MessageInfo::words(0)
                .with_capability(hv_abi::hypercall::CapSlot(0))
                .0,
            Status::InvalidArgument,
        ),
        (Hypercall::ReplySaved, 1, 99, Status::InvalidArgument),
    ];
    for (call, slot, info, status) in cases {
        // `raw` checks that a refused call changes nothing but x0.
        let before = m.state.clone();
        m.hvc(0, call, &[slot, info]);
        assert_eq!(m.status(0), Some(status), "{call:?} slot {slot}");
        assert!(m.state == before, "{call:?} slot {slot} changed the state");
    }
    // A full object refuses a second save; with no call in hand, `NoCaller`.
    m.hvc(0, Hypercall::SaveReply, &[1]);
    assert_eq!(m.status(0), Some(Status::Success));
    m.hvc(0, Hypercall::SaveReply, &[1]);
    assert_eq!(m.status(0), Some(Status::NoCaller));
}

#[test]
fn a_full_object_refuses_another_caller() {
    let mut m = server_holding_a();
    m.hvc(0, Hypercall::SaveReply, &[1]);
    m.hvc(0, Hypercall::Recv, &[0]);
    m.hvc(0, Hypercall::Call, &[0, words(0)]);
    assert_eq!(m.on(0), Some(v(2)));
    let before = m.state.clone();
    m.hvc(0, Hypercall::SaveReply, &[1]);
    assert_eq!(m.status(0), Some(Status::InvalidArgument));
    assert!(m.state == before);
    // B's call is still the one in hand.
    assert_eq!(m.state.caller_of(v(2)), Some(v(1)));
}

#[test]
fn a_reply_object_is_its_owners_alone() {
    // B holds a capability to its own reply 2 but owes no reply.
    let mut m = Machine::new(&deferred());
    m.hvc(0, Hypercall::Yield, &[]);
    assert_eq!(m.on(0), Some(v(1)));
    m.hvc(0, Hypercall::SaveReply, &[1]);
    assert_eq!(m.status(0), Some(Status::NoCaller));
    // A seed that puts a reply object in another partition's table is refused.
    let mut system = deferred();
    system.parts[0].caps.push(object(reply(0), &[W]));
    let refused = system.with_seed(|seed| crate::state::KernelState::new(seed).err());
    assert_eq!(
        refused,
        Some(SeedError::ForeignReply {
            partition: 0,
            slot: 1
        })
    );
    let mut system = deferred();
    system.replies.push(ReplySeed { owner: p(9) });
    let refused = system.with_seed(|seed| crate::state::KernelState::new(seed).err());
    assert_eq!(refused, Some(SeedError::UnknownOwner { reply: 3 }));
    let mut system = deferred();
    system.parts[0].caps.push(object(reply(7), &[W]));
    let refused = system.with_seed(|seed| crate::state::KernelState::new(seed).err());
    assert_eq!(
        refused,
        Some(SeedError::UnknownObject {
            partition: 0,
            slot: 1
        })
    );
}

#[test]
fn a_kept_caller_hears_peer_gone_when_the_server_restarts() {
    let mut m = server_holding_a();
    m.hvc(0, Hypercall::SaveReply, &[1]);
    m.step(0, |s, r| {
        s.fault(0, hv_abi::hypercall::StopReason::Exception, r)
    });
    assert_eq!(m.state.saved_regs(v(0)).unwrap()[0], st(Status::PeerGone));
    assert_eq!(m.state.vcpu_state(v(0)), Some(VcpuState::Ready));
    m.state.restart_done(p(2));
    m.state.check_invariants().unwrap();
    // The restarted server's object is empty.
    while m.on(0) != Some(v(2)) {
        m.hvc(0, Hypercall::Yield, &[]);
    }
    m.hvc(0, Hypercall::ReplySaved, &[1, words(0)]);
    assert_eq!(m.status(0), Some(Status::NoCaller));
}

#[test]
fn a_kept_callers_partition_stopping_empties_the_object() {
    let mut m = server_holding_a();
    m.hvc(0, Hypercall::SaveReply, &[1]);
    // The server waits; B runs and stops A's partition (slot 2: CONTROL).
    m.hvc(0, Hypercall::Recv, &[0]);
    assert_eq!(m.on(0), Some(v(1)));
    m.hvc(0, Hypercall::PartitionStop, &[2]);
    assert_eq!(m.status(0), Some(Status::Success));
    assert_eq!(m.state.vcpu_state(v(0)), Some(VcpuState::Stopped));
    // The server finds its object empty, and can keep another caller in it.
    m.hvc(0, Hypercall::Call, &[0, words(0)]);
    assert_eq!(m.on(0), Some(v(2)));
    m.hvc(0, Hypercall::ReplySaved, &[1, words(0)]);
    assert_eq!(m.status(0), Some(Status::NoCaller));
    m.hvc(0, Hypercall::SaveReply, &[1]);
    assert_eq!(m.status(0), Some(Status::Success));
    m.hvc(0, Hypercall::ReplySaved, &[1, words(0)]);
    assert_eq!(m.status(0), Some(Status::Success));
    assert_eq!(m.state.vcpu_state(v(1)), Some(VcpuState::Ready));
}
