// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The security properties (`state::properties`) hold where they should and
//! catch what they should: a capability the policy does not allow, a flow
//! outside the channels, a revoke that spares a descendant or touches
//! something else, overlapping memory.

use super::support::{D, G, Part, R, System, W, endpoint, object, p};
use crate::cap::{CapSpace, PartitionId, SlotRef};
use crate::state::properties::{self, Policy, Region};
use hv_image::Object;

/// A client with an endpoint to a server and a region it may pass on.
fn system() -> System {
    let client = Part::new(
        0b1,
        10,
        &[
            endpoint(0, &[W, G], 1),
            object(Object::Memory(0), &[R, W, D]),
        ],
    );
    let server = Part::new(0b1, 10, &[endpoint(0, &[R, G], 0)]);
    let loner = Part::new(0b1, 10, &[object(Object::Memory(1), &[R, W])]);
    System::new(1, vec![client, server, loner], 1, 0)
}

#[test]
fn a_booted_system_has_every_property() {
    let system = system();
    let state = system.boot();
    let policy = system.with_seed(Policy::new);
    properties::check_all(&state, &policy).unwrap();
    // The closure under transfer: the server may come to hold the region.
    assert!(
        policy
            .may_hold(p(1), Object::Memory(0))
            .contains(R.union(W).union(D))
    );
    assert_eq!(
        policy.may_hold(p(2), Object::Memory(0)),
        hv_abi::hypercall::Rights::NONE
    );
    // Client and server talk; the loner is connected to nobody.
    assert!(policy.reaches(p(0), p(1)) && policy.reaches(p(1), p(0)));
    assert!(!policy.reaches(p(0), p(2)) && !policy.reaches(p(2), p(0)));
}

#[test]
fn a_capability_the_seed_did_not_allow_is_forgery() {
    let system = system();
    let state = system.boot();
    // A policy from a seed that never gave the loner its region.
    let mut stricter = system.clone();
    stricter.parts[2].caps = vec![None];
    let policy = stricter.with_seed(Policy::new);
    let broken = properties::no_forgery(&state, &policy).unwrap_err();
    assert_eq!(broken.property, properties::NO_FORGERY);
    assert_eq!(broken.slot, SlotRef::new(p(2), 0));
    let broken = properties::shared_memory_within(&state, &policy).unwrap_err();
    assert_eq!(broken.property, properties::MEMORY);
}

#[test]
fn a_flow_outside_the_declared_channels_is_caught() {
    let system = system();
    let state = system.boot();
    let mut declared = [0u16; hv_image::MAX_PARTITIONS];
    // Only client to server declared: the reply path is not.
    declared[0] = 0b010;
    let policy = system.with_seed(Policy::new).with_channels(declared);
    let broken = properties::flows_within(&state, &policy).unwrap_err();
    assert_eq!(broken.property, properties::FLOW);
    assert_eq!(broken.partitions, Some((p(1), p(0))));
    declared[1] = 0b001;
    let policy = system.with_seed(Policy::new).with_channels(declared);
    properties::flows_within(&state, &policy).unwrap();
}

#[test]
fn revoke_exact_catches_a_spared_descendant_and_a_stray_change() {
    let cap = object(Object::Memory(0), &[R, W, D]).unwrap();
    let mut before = CapSpace::new();
    let a = PartitionId(0);
    let top = SlotRef::new(a, 0).unwrap();
    before.seed(top, cap).unwrap();
    before.seed(SlotRef::new(a, 5).unwrap(), cap).unwrap();
    before
        .derive(a, 0, 1, R.union(D), hv_abi::hypercall::Badge(0))
        .unwrap();
    before
        .derive(a, 1, 2, R, hv_abi::hypercall::Badge(0))
        .unwrap();
    let mut after = before.clone();
    after.revoke(a, 0).unwrap();
    properties::revoke_exact(&before, &after, top).unwrap();
    // Sparing the grandchild.
    let mut spared = before.clone();
    spared.delete(a, 1).unwrap();
    let broken = properties::revoke_exact(&before, &spared, top).unwrap_err();
    assert_eq!(broken.slot, SlotRef::new(a, 2));
    // Touching an unrelated slot.
    let mut stray = after.clone();
    stray.delete(a, 5).unwrap();
    let broken = properties::revoke_exact(&before, &stray, top).unwrap_err();
    assert_eq!(broken.slot, SlotRef::new(a, 5));
}

#[test]
fn memory_overlaps_only_where_shared() {
    let region = |partition: u8, base: u64, shared| Region {
        partition: p(partition),
        base,
        size: 0x1000,
        shared,
    };
    properties::regions_disjoint(&[region(0, 0x1000, None), region(1, 0x2000, None)]).unwrap();
    properties::regions_disjoint(&[region(0, 0x1000, Some(3)), region(1, 0x1000, Some(3))])
        .unwrap();
    let broken = properties::regions_disjoint(&[region(0, 0x1000, None), region(1, 0x1800, None)])
        .unwrap_err();
    assert_eq!(broken.partitions, Some((p(0), p(1))));
    assert!(
        properties::regions_disjoint(&[region(0, 0x1000, Some(3)), region(1, 0x1000, Some(4))])
            .is_err()
    );
}
