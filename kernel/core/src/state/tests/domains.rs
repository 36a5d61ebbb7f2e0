// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Lock domains: which partitions share a lock, and a domain's own state.

use hv_abi::hypercall::{Badge, Hypercall, MessageInfo};

use super::support::{Machine, Part, R, System, W, endpoint, notification, object, p, v};
use crate::cap::{NotificationId, SlotRef};
use crate::state::{Domains, IrqSeed, Next, PartitionState, VcpuState};
use hv_image::Object;

/// Four client/server pairs, pair n on core n with endpoint n: the client
/// is partition (and vCPU) 2n, the server 2n + 1.
fn four_pairs() -> System {
    let mut parts = Vec::new();
    for n in 0..4u8 {
        parts.push(Part::new(
            1 << n,
            10,
            &[endpoint(n, &[W], 0x10 + u64::from(n))],
        ));
        parts.push(Part::new(1 << n, 10, &[endpoint(n, &[R], 0)]));
    }
    System::new(4, parts, 4, 0)
}

fn domains(system: &System) -> Domains {
    system.with_seed(Domains::of).unwrap()
}

#[test]
fn pairs_that_share_nothing_and_no_core_are_a_domain_each() {
    let d = domains(&four_pairs());
    assert_eq!(d.count(), 4);
    for n in 0..4u8 {
        let domain = usize::from(n);
        assert_eq!(d.of_core(domain), Some(domain));
        assert_eq!(d.of_partition(p(2 * n)), Some(domain));
        assert_eq!(d.of_partition(p(2 * n + 1)), Some(domain));
        assert_eq!(d.cores(domain), 1 << n);
        assert_eq!(d.partitions(domain), 0b11 << (2 * n));
    }
    assert_eq!(d.of_core(4), None);
    assert_eq!(d.of_partition(p(8)), None);
}

#[test]
fn an_endpoint_shared_across_cores_joins_them() {
    // Clients on cores 0 and 1 call one server on core 2; core 3 runs a
    // partition that holds nothing.
    let parts = vec![
        Part::new(0b0001, 10, &[endpoint(0, &[W], 1)]),
        Part::new(0b0010, 10, &[endpoint(0, &[W], 2)]),
        Part::new(0b0100, 10, &[endpoint(0, &[R], 0)]),
        Part::new(0b1000, 10, &[]),
    ];
    let d = domains(&System::new(4, parts, 1, 0));
    assert_eq!(d.count(), 2);
    assert_eq!(d.cores(0), 0b0111);
    assert_eq!(d.cores(1), 0b1000);
    assert_eq!(d.partitions(0), 0b0111);
    assert_eq!(d.of_partition(p(3)), Some(1));
}

#[test]
fn a_core_or_a_partition_on_two_cores_joins_what_it_holds() {
    // Two partitions sharing nothing but core 0; one partition with a vCPU
    // on each of cores 1 and 2; core 3 alone.
    let parts = vec![
        Part::new(0b0001, 10, &[]),
        Part::new(0b0001, 20, &[]),
        Part::new(0b0110, 10, &[]).vcpus(2),
        Part::new(0b1000, 10, &[]),
    ];
    let d = domains(&System::new(4, parts, 0, 0));
    assert_eq!(d.count(), 3);
    assert_eq!(d.partitions(0), 0b0011);
    assert_eq!(d.cores(1), 0b0110);
    assert_eq!(d.cores(2), 0b1000);
}

#[test]
fn control_interrupts_and_their_notifications_join() {
    // Partition 0 (core 0) may stop partition 1 (core 1); partition 2
    // (core 2) owns device 0, whose interrupt signals notification 0, on
    // which partition 3 (core 3) waits.
    let parts = vec![
        Part::new(0b0001, 10, &[object(Object::Partition(1), &[R])]),
        Part::new(0b0010, 10, &[]),
        Part::new(0b0100, 10, &[object(Object::Device(0), &[W])]),
        Part::new(0b1000, 10, &[notification(0, &[R], 0)]),
    ];
    let mut system = System::new(4, parts, 0, 1);
    system.irqs.push(IrqSeed {
        intid: 40,
        notification: NotificationId(0),
        badge: Badge(1),
        device: Some(0),
    });
    let d = domains(&system);
    assert_eq!(d.count(), 2);
    assert_eq!(d.cores(0), 0b0011);
    assert_eq!(d.cores(1), 0b1100);
}

#[test]
fn shared_memory_and_devices_without_interrupts_join_nothing() {
    let parts = vec![
        Part::new(0b01, 10, &[object(Object::Memory(0), &[R, W])]),
        Part::new(
            0b10,
            10,
            &[
                object(Object::Memory(0), &[R]),
                object(Object::Device(3), &[W]),
            ],
        ),
    ];
    assert_eq!(domains(&System::new(2, parts, 0, 0)).count(), 2);
}

#[test]
fn a_bad_seed_is_refused_as_boot_refuses_it() {
    let parts = vec![Part::new(0b100, 10, &[])];
    assert!(System::new(2, parts, 0, 0).with_seed(Domains::of).is_err());
}

#[test]
fn a_domain_state_runs_its_own_partitions_alone() {
    let system = four_pairs();
    let d = domains(&system);
    let mut m = Machine::domain(&system, &d, 2);
    // Pair 2 (vCPUs 4 and 5) on core 2; the other cores have nothing to run,
    // and the other partitions are stopped with no capability.
    assert_eq!(m.on(2), Some(v(4)));
    for core in [0, 1, 3] {
        assert_eq!(m.on(core), None);
    }
    for other in [0, 1, 2, 3, 6, 7] {
        assert_eq!(
            m.state.partition_state(p(other)),
            Some(PartitionState::Stopped)
        );
        assert_eq!(m.state.vcpu_state(v(other)), Some(VcpuState::Stopped));
        assert_eq!(m.state.caps().get(SlotRef::new(p(other), 0).unwrap()), None);
    }
    // The pair's call and reply work as in the whole system.
    m.hvc(2, Hypercall::Yield, &[]);
    assert_eq!(m.on(2), Some(v(5)));
    m.hvc(2, Hypercall::Recv, &[0, 0]);
    assert_eq!(m.on(2), Some(v(4)));
    let out = m.hvc(2, Hypercall::Call, &[0, MessageInfo::words(1).0, 7]);
    assert!(matches!(out.next, Next::Switch { to, .. } if to == v(5)));
    assert_eq!(m.regs[2][1], 0x12, "the client's badge");
    assert_eq!(m.regs[2][3], 7);
    m.hvc(2, Hypercall::ReplyRecv, &[0, MessageInfo::words(1).0, 8]);
    assert_eq!(m.on(2), Some(v(4)));
    assert_eq!(m.regs[2][3], 8);
    // A domain the system does not have is refused.
    let mut state = Box::new(crate::state::KernelState::empty());
    assert!(
        system
            .with_seed(|seed| state.boot_domain(seed, &d, 4))
            .is_err()
    );
}
