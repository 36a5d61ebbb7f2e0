// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Boot: every way a seed can be refused, and that a refusal changes nothing.

use hv_abi::hypercall::{Badge, Rights};

use super::ipc::client_server;
use super::support::{Part, R, System, endpoint, irq, notification, object, p};
use crate::cap::NotificationId;
use crate::state::{EndpointSeed, IrqSeed, KernelState, PartitionState, SeedError, VcpuState};
use hv_image::Capability;
use hv_image::Object;

fn refused(system: &System) -> SeedError {
    let mut state = client_server().boot();
    let before = state.clone();
    let error = system.with_seed(|seed| state.boot(seed)).unwrap_err();
    assert!(*state == *before, "a refused seed changed the state");
    // Every refusal reads as a sentence.
    assert!(!error.to_string().is_empty());
    error
}

fn bind(notification: u8, badge: u64, intid: u32) -> IrqSeed {
    IrqSeed {
        intid,
        notification: NotificationId(notification),
        badge: Badge(badge),
        device: None,
    }
}

#[test]
fn a_sound_seed_boots_with_every_vcpu_ready_and_every_root_in_place() {
    let state = client_server().boot();
    assert_eq!(
        (
            state.core_count(),
            state.partition_count(),
            state.vcpu_count()
        ),
        (2, 3, 3)
    );
    for i in 0..3 {
        assert_eq!(state.partition_state(p(i)), Some(PartitionState::Active));
    }
    assert_eq!(
        state.vcpu_state(crate::sched::VcpuId::of(0).unwrap()),
        Some(VcpuState::Ready)
    );
    assert_eq!(state.caps().slots(p(0)).count(), 6);
    assert!(
        state
            .caps()
            .slots(p(0))
            .all(|(s, _)| state.caps().is_root(s))
    );
    assert_eq!(state.partition_state(p(3)), None);
    // `new` is `boot` on a fresh state.
    let fresh = client_server()
        .with_seed(|seed| KernelState::new(seed).map(Box::new))
        .unwrap();
    assert!(*fresh == *state);
}

#[test]
fn every_bad_seed_is_refused() {
    let base = client_server();
    let mut cases: Vec<(System, SeedError)> = Vec::new();
    let mut with = |f: &dyn Fn(&mut System), want: SeedError| {
        let mut s = base.clone();
        f(&mut s);
        cases.push((s, want));
    };
    with(&|s| s.cores = 0, SeedError::Cores(0));
    with(&|s| s.cores = 9, SeedError::Cores(9));
    let too_many = |what, count, max| SeedError::TooMany { what, count, max };
    with(
        &|s| s.parts = vec![Part::new(1, 0, &[]); 17],
        too_many("partitions", 17, 16),
    );
    with(&|s| s.parts[0].vcpus = 31, too_many("vCPUs", 33, 32));
    with(
        &|s| s.parts[0].vcpus = usize::MAX,
        too_many("vCPUs", usize::MAX, 32),
    );
    with(
        &|s| s.endpoints = vec![EndpointSeed::default(); 65],
        too_many("endpoints", 65, 64),
    );
    with(&|s| s.notifications = 65, too_many("notifications", 65, 64));
    with(
        &|s| s.irqs = vec![bind(0, 1, 0); 33],
        too_many("interrupt bindings", 33, 32),
    );
    with(
        &|s| s.parts[1].caps = vec![None; 65],
        too_many("capability slots", 65, 64),
    );
    with(
        &|s| s.parts[1].vcpus = 0,
        SeedError::NoVcpus { partition: 1 },
    );
    with(
        &|s| s.parts[2].cores = 0b100,
        SeedError::NoAllowedCore { partition: 2 },
    );
    with(
        &|s| s.parts[2].cores = 0,
        SeedError::NoAllowedCore { partition: 2 },
    );
    let bad_rights = Some(Capability::new(Object::Memory(0), Rights(1 << 9)));
    with(
        &|s| s.parts[0].caps[3] = bad_rights,
        SeedError::InvalidRights {
            partition: 0,
            slot: 3,
        },
    );
    let unknown = |partition, slot| SeedError::UnknownObject { partition, slot };
    with(
        &|s| s.parts[1].caps.push(endpoint(3, &[R], 0)),
        unknown(1, 2),
    );
    with(
        &|s| s.parts[1].caps.push(notification(1, &[R], 0)),
        unknown(1, 2),
    );
    with(
        &|s| s.parts[1].caps.push(object(irq(0), &[R])),
        unknown(1, 2),
    );
    with(
        &|s| {
            s.parts[1]
                .caps
                .push(object(Object::Partition(p(3).number()), &[R]))
        },
        unknown(1, 2),
    );
    with(
        &|s| s.endpoints[2].server = Some(p(3)),
        SeedError::UnknownServer { endpoint: 2 },
    );
    with(
        &|s| s.irqs = vec![bind(1, 1, 0)],
        SeedError::UnknownNotification { irq: 0 },
    );
    with(
        &|s| s.irqs = vec![bind(0, 1, 5), bind(0, 0, 6)],
        SeedError::ZeroBadge { irq: 1 },
    );
    with(
        &|s| s.irqs = vec![bind(0, 1, 5), bind(0, 2, 5)],
        SeedError::DuplicateInterrupt { irq: 1 },
    );
    for (system, want) in cases {
        assert_eq!(refused(&system), want);
    }
}

#[test]
fn memory_and_device_numbers_are_the_glues_to_check() {
    let mut system = client_server();
    system.parts[1]
        .caps
        .push(object(Object::Device(u16::MAX), &[R]));
    system.parts[1]
        .caps
        .push(object(Object::Memory(u16::MAX), &[R]));
    system.parts[1]
        .caps
        .push(object(Object::Partition(p(2).number()), &[R]));
    system.boot();
}
