// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The capability hypercalls (Derive, Revoke, Delete) and Log.

use hv_abi::hypercall::{Badge, Hypercall, Rights, Status};

use super::ipc::client_server;
use super::support::{D, Machine, R, W, p, rights};
use crate::cap::{EndpointId, SlotRef};
use crate::state::{Effect, LOG_BYTES, Outcome};
use hv_image::Capability;
use hv_image::Object;

/// x2 for `Derive`: rights in the low half, badge in the high half.
fn derive_arg(r: Rights, badge: u32) -> u64 {
    u64::from(r.0) | u64::from(badge) << 32
}

#[test]
fn derive_revoke_and_delete_through_hypercalls() {
    let mut m = Machine::new(&client_server());
    // The client's slot 1 is Memory(3) with READ | WRITE | DERIVE.
    m.hvc(
        0,
        Hypercall::Derive,
        &[1, derive_arg(rights(&[R, D]), 0), 10],
    );
    assert_eq!(m.status(0), Some(Status::Success));
    m.hvc(0, Hypercall::Derive, &[10, derive_arg(R, 0x42), 11]);
    assert_eq!(m.status(0), Some(Status::Success));
    let want = Capability::new(Object::Memory(3), R).with_badge(Badge(0x42));
    assert_eq!(m.state.capability(p(0), 11), Some(want));
    assert_eq!(
        m.state.caps().parent(SlotRef::new(p(0), 11).unwrap()),
        SlotRef::new(p(0), 10)
    );
    m.hvc(0, Hypercall::Revoke, &[1]);
    assert_eq!(m.status(0), Some(Status::Success));
    assert_eq!(m.state.capability(p(0), 10), None);
    assert_eq!(m.state.capability(p(0), 11), None);
    assert!(m.state.capability(p(0), 1).is_some());
    m.hvc(0, Hypercall::Delete, &[1]);
    assert_eq!(m.status(0), Some(Status::Success));
    assert_eq!(m.state.capability(p(0), 1), None);
}

#[test]
fn capability_hypercalls_refuse_bad_arguments_and_change_nothing() {
    let mut m = Machine::new(&client_server());
    let all = derive_arg(Rights::ALL, 0);
    let cases: &[(Hypercall, [u64; 3], Status)] = &[
        (
            Hypercall::Derive,
            [64, derive_arg(R, 0), 10],
            Status::InvalidCapability,
        ),
        (
            Hypercall::Derive,
            [u64::MAX, derive_arg(R, 0), 10],
            Status::InvalidCapability,
        ),
        (
            Hypercall::Derive,
            [9, derive_arg(R, 0), 10],
            Status::InvalidCapability,
        ),
        (
            Hypercall::Derive,
            [1, derive_arg(R, 0), 64],
            Status::InvalidCapability,
        ),
        (
            Hypercall::Derive,
            [1, derive_arg(R, 0), u64::MAX],
            Status::InvalidCapability,
        ),
        (
            Hypercall::Derive,
            [1, derive_arg(R, 0), 2],
            Status::InvalidArgument,
        ),
        (
            Hypercall::Derive,
            [1, derive_arg(R, 0), 1],
            Status::InvalidArgument,
        ),
        (Hypercall::Derive, [1, 1 << 6, 10], Status::InvalidArgument),
        (Hypercall::Derive, [1, all, 10], Status::NoRights),
        // No DERIVE on the endpoint capability in slot 0.
        (
            Hypercall::Derive,
            [0, derive_arg(W, 0), 10],
            Status::NoRights,
        ),
        (Hypercall::Revoke, [64, 0, 0], Status::InvalidCapability),
        (Hypercall::Revoke, [20, 0, 0], Status::InvalidCapability),
        (
            Hypercall::Delete,
            [u64::MAX, 0, 0],
            Status::InvalidCapability,
        ),
        (Hypercall::Delete, [20, 0, 0], Status::InvalidCapability),
    ];
    for &(call, [x1, x2, x3], want) in cases {
        let before = m.state.clone();
        let regs = [u64::from(call.function_id()), x1, x2, x3, 4, 5, 6, 7];
        let out = m.raw(0, regs);
        assert_eq!(out, Outcome::CONTINUE);
        assert_eq!(m.status(0), Some(want), "{call:?} {x1} {x2:#x} {x3}");
        assert_eq!(m.regs[0][1..], regs[1..]);
        assert!(
            m.state == before,
            "{call:?} {x1} {x2:#x} {x3} changed the state"
        );
    }
}

#[test]
fn a_partition_names_only_its_own_slots() {
    let mut m = Machine::new(&client_server());
    // The remote (core 1) holds two capabilities; slot 2 is the client's
    // endpoint 1 in the client's table, but empty in the remote's.
    m.hvc(1, Hypercall::Revoke, &[2]);
    assert_eq!(m.status(1), Some(Status::InvalidCapability));
    m.hvc(1, Hypercall::Call, &[2, 0]);
    assert_eq!(m.status(1), Some(Status::InvalidCapability));
    assert_eq!(
        m.state.capability(p(2), 0).map(|c| c.object),
        Some(Object::Endpoint(EndpointId(0).number()))
    );
}

#[test]
fn log_carries_up_to_forty_bytes_little_endian() {
    let mut m = Machine::new(&client_server());
    let text = *b"hello, kernel log: forty bytes exactly!!";
    let mut words = [0u64; 5];
    for (w, chunk) in words.iter_mut().zip(text.chunks(8)) {
        *w = u64::from_le_bytes(chunk.try_into().unwrap());
    }
    let [a, b, c, d, e] = words;
    let out = m.hvc(0, Hypercall::Log, &[0, 40, a, b, c, d, e]);
    assert_eq!(m.status(0), Some(Status::Success));
    assert_eq!(
        out.effect,
        Some(Effect::Log {
            partition: p(0),
            bytes: text,
            len: 40
        })
    );
    let out = m.hvc(0, Hypercall::Log, &[0, 3, a, b]);
    let mut short = [0u8; LOG_BYTES];
    short[..3].copy_from_slice(b"hel");
    assert_eq!(
        out.effect,
        Some(Effect::Log {
            partition: p(0),
            bytes: short,
            len: 3
        })
    );
}
