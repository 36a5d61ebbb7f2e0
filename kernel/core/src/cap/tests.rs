// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Tests of the capability tables and the derivation tree.

use hv_abi::hypercall::{Badge, CapSlot, Rights, Status};
use proptest::prelude::{Just, Strategy, prop_assert, prop_assert_eq, prop_oneof, proptest};

use super::{CapSpace, EndpointId, NotificationId, PartitionId, SlotRef};
use hv_image::{Capability, Object};

const RW: Rights = Rights(Rights::READ.0 | Rights::WRITE.0);
const RWD: Rights = Rights(RW.0 | Rights::DERIVE.0);

fn at(partition: u8, slot: u64) -> SlotRef {
    SlotRef::new(PartitionId(partition), slot).unwrap()
}

fn endpoint(i: u8, rights: Rights) -> Capability {
    Capability::new(Object::Endpoint(EndpointId(i).number()), rights)
}

/// Partition 0 holds an all-rights endpoint in slot 0 and a notification in
/// slot 1; partition 1 holds a read-only endpoint in slot 0.
fn seeded() -> Box<CapSpace> {
    let mut caps = Box::new(CapSpace::new());
    caps.seed(at(0, 0), endpoint(0, Rights::ALL)).unwrap();
    let note = Capability::new(Object::Notification(NotificationId(0).number()), RWD);
    caps.seed(at(0, 1), note).unwrap();
    caps.seed(at(1, 0), endpoint(1, Rights::READ)).unwrap();
    caps.check().unwrap();
    caps
}

/// Every slot that has `top` among its ancestors.
fn descendants(caps: &CapSpace, top: SlotRef) -> Vec<SlotRef> {
    let mut found = Vec::new();
    for p in 0..hv_image::MAX_PARTITIONS as u8 {
        for (slot, _) in caps.slots(PartitionId(p)) {
            let mut up = caps.parent(slot);
            while let Some(a) = up {
                if a == top {
                    found.push(slot);
                    break;
                }
                up = caps.parent(a);
            }
        }
    }
    found
}

#[test]
fn slot_refs_check_their_range() {
    assert_eq!(
        SlotRef::new(PartitionId(3), 63).map(|s| s.slot()),
        Some(CapSlot(63))
    );
    assert_eq!(
        SlotRef::new(PartitionId(3), 63).map(|s| s.partition()),
        Some(PartitionId(3))
    );
    assert_eq!(SlotRef::new(PartitionId(0), 64), None);
    assert_eq!(SlotRef::new(PartitionId(0), u64::MAX), None);
    assert_eq!(SlotRef::new(PartitionId(16), 0), None);
}

#[test]
fn derive_attenuates_and_records_the_parent() {
    let mut caps = seeded();
    let (p0, p1) = (PartitionId(0), PartitionId(1));
    caps.derive(p0, 0, 5, RWD, Badge(0)).unwrap();
    assert_eq!(caps.get(at(0, 5)), Some(endpoint(0, RWD)));
    assert_eq!(caps.parent(at(0, 5)), Some(at(0, 0)));
    assert!(caps.is_root(at(0, 0)) && !caps.is_root(at(0, 5)));
    // A grandchild with fewer rights still.
    caps.derive(p0, 5, 6, Rights::READ, Badge(0)).unwrap();
    assert_eq!(caps.parent(at(0, 6)), Some(at(0, 5)));
    // Partition 1's read-only endpoint cannot be derived (no DERIVE).
    assert_eq!(
        caps.derive(p1, 0, 1, Rights::READ, Badge(0)),
        Err(Status::NoRights)
    );
    caps.check().unwrap();
}

#[test]
fn derive_refuses_every_bad_argument_and_changes_nothing() {
    let mut caps = seeded();
    caps.derive(
        PartitionId(0),
        0,
        2,
        Rights::WRITE.union(Rights::DERIVE),
        Badge(7),
    )
    .unwrap();
    let before = caps.clone();
    let p0 = PartitionId(0);
    let cases: &[(u64, u64, Rights, u64, Status)] = &[
        (64, 3, RW, 0, Status::InvalidCapability),
        (u64::MAX, 3, RW, 0, Status::InvalidCapability),
        (9, 3, RW, 0, Status::InvalidCapability),
        (0, 3, Rights(1 << 20), 0, Status::InvalidArgument),
        (2, 3, Rights::READ, 0, Status::NoRights),
        (2, 3, Rights::WRITE, 9, Status::InvalidArgument),
        (0, 64, RW, 0, Status::InvalidCapability),
        (0, 1, RW, 0, Status::InvalidArgument),
        (0, 0, RW, 0, Status::InvalidArgument),
    ];
    for &(src, dst, rights, badge, want) in cases {
        assert_eq!(
            caps.derive(p0, src, dst, rights, Badge(badge)),
            Err(want),
            "{src} {dst} {rights:?}"
        );
        assert!(*caps == *before, "a refused derive changed the tables");
    }
    // Another partition's slot numbers name its own table, not partition 0's.
    assert_eq!(
        caps.derive(PartitionId(1), 1, 3, RW, Badge(0)),
        Err(Status::InvalidCapability)
    );
    assert_eq!(
        caps.derive(PartitionId(200), 0, 3, RW, Badge(0)),
        Err(Status::InvalidCapability)
    );
}

#[test]
fn a_badge_is_minted_once_and_then_inherited() {
    let mut caps = seeded();
    let p0 = PartitionId(0);
    caps.derive(p0, 0, 2, RWD, Badge(0x55)).unwrap();
    assert_eq!(caps.get(at(0, 2)).map(|c| c.badge), Some(Badge(0x55)));
    caps.derive(p0, 2, 3, RW, Badge(0)).unwrap();
    assert_eq!(caps.get(at(0, 3)).map(|c| c.badge), Some(Badge(0x55)));
    assert_eq!(
        caps.derive(p0, 2, 4, RW, Badge(0x66)),
        Err(Status::InvalidArgument)
    );
}

#[test]
fn revoke_empties_every_descendant_in_every_partition_and_nothing_else() {
    let mut caps = seeded();
    let p0 = PartitionId(0);
    caps.derive(p0, 0, 2, RWD, Badge(1)).unwrap();
    caps.derive(p0, 2, 3, RWD, Badge(0)).unwrap();
    caps.derive(p0, 0, 4, RWD, Badge(2)).unwrap();
    let moved = caps.transfer(at(0, 3), Some(at(1, 1))).unwrap();
    assert_eq!(moved, CapSlot(1));
    caps.transfer(at(0, 4), Some(at(2, 0))).unwrap();
    caps.derive(PartitionId(1), 1, 9, RW, Badge(0)).unwrap();
    // A sibling subtree that must survive.
    caps.derive(p0, 1, 7, RW, Badge(0)).unwrap();
    let mut want = caps.clone();
    for slot in descendants(&caps, at(0, 2)) {
        want.delete(slot.partition(), u64::from(slot.slot().0))
            .unwrap();
    }
    assert_eq!(descendants(&caps, at(0, 2)).len(), 3);
    caps.revoke(p0, 2).unwrap();
    assert!(descendants(&caps, at(0, 2)).is_empty());
    for slot in [at(0, 3), at(1, 1), at(1, 9)] {
        assert_eq!(caps.get(slot), None);
    }
    for slot in [at(0, 0), at(0, 2), at(0, 4), at(2, 0), at(0, 7), at(1, 0)] {
        assert!(caps.get(slot).is_some(), "{slot:?} went");
    }
    assert!(*caps == *want);
    caps.check().unwrap();
    assert_eq!(caps.revoke(p0, 3), Err(Status::InvalidCapability));
}

#[test]
fn delete_moves_children_up_to_the_parent() {
    let mut caps = seeded();
    let p0 = PartitionId(0);
    caps.derive(p0, 0, 2, RWD, Badge(0)).unwrap();
    caps.derive(p0, 2, 3, RW, Badge(0)).unwrap();
    caps.derive(p0, 2, 4, RW, Badge(0)).unwrap();
    caps.delete(p0, 2).unwrap();
    assert_eq!(caps.get(at(0, 2)), None);
    assert_eq!(caps.parent(at(0, 3)), Some(at(0, 0)));
    assert_eq!(caps.parent(at(0, 4)), Some(at(0, 0)));
    caps.check().unwrap();
    // And the root can still take them back.
    caps.revoke(p0, 0).unwrap();
    assert_eq!(caps.get(at(0, 3)), None);
    assert_eq!(caps.get(at(0, 4)), None);
    assert_eq!(caps.delete(p0, 2), Err(Status::InvalidCapability));
}

#[test]
fn deleting_a_root_takes_its_descendants_with_it() {
    let mut caps = seeded();
    let p0 = PartitionId(0);
    caps.derive(p0, 0, 2, RWD, Badge(0)).unwrap();
    caps.transfer(at(0, 2), Some(at(1, 1))).unwrap();
    caps.delete(p0, 0).unwrap();
    assert_eq!(caps.get(at(0, 0)), None);
    assert_eq!(caps.get(at(0, 2)), None);
    assert_eq!(caps.get(at(1, 1)), None);
    assert!(caps.get(at(0, 1)).is_some());
    caps.check().unwrap();
    // The slot can be reused, by a derivation: then it is not a root.
    caps.derive(p0, 1, 0, RW, Badge(0)).unwrap();
    assert!(!caps.is_root(at(0, 0)));
    caps.check().unwrap();
}

#[test]
fn transfer_lands_only_in_the_slot_named_and_needs_derive_and_an_empty_one() {
    let mut caps = seeded();
    assert_eq!(
        caps.transfer(at(1, 0), Some(at(0, 5))),
        Err(Status::NotGrantable)
    );
    assert_eq!(
        caps.transfer(at(1, 5), Some(at(0, 5))),
        Err(Status::InvalidCapability)
    );
    // Not the first free slot (1): the one named.
    assert_eq!(caps.transfer(at(0, 0), Some(at(1, 40))), Ok(CapSlot(40)));
    assert_eq!(caps.parent(at(1, 40)), Some(at(0, 0)));
    assert_eq!(caps.slots(PartitionId(1)).count(), 2);
    // A full slot is refused, whatever is free elsewhere.
    let before = caps.clone();
    for full in [at(1, 40), at(1, 0)] {
        assert_eq!(
            caps.transfer(at(0, 0), Some(full)),
            Err(Status::OutOfResources)
        );
    }
    // So is a transfer to a receiver that named no slot.
    assert_eq!(caps.transfer(at(0, 0), None), Err(Status::OutOfResources));
    assert!(*caps == *before);
    caps.check().unwrap();
}

#[test]
fn reset_gives_back_the_seed_and_revokes_what_was_handed_on() {
    let mut caps = seeded();
    let p0 = PartitionId(0);
    caps.derive(p0, 0, 2, RWD, Badge(0)).unwrap();
    caps.transfer(at(0, 2), Some(at(1, 1))).unwrap();
    // Something partition 0 received from partition 1 and derived further.
    caps.seed(at(1, 5), endpoint(3, Rights::ALL)).unwrap();
    caps.transfer(at(1, 5), Some(at(0, 3))).unwrap();
    caps.derive(p0, 3, 4, RWD, Badge(0)).unwrap();
    caps.transfer(at(0, 4), Some(at(2, 0))).unwrap();
    caps.delete(p0, 1).unwrap();
    caps.reset_partition(p0);
    let mine: Vec<_> = caps.slots(p0).collect();
    assert_eq!(mine.len(), 2);
    assert_eq!(caps.get(at(0, 0)), Some(endpoint(0, Rights::ALL)));
    assert!(caps.is_root(at(0, 1)));
    // What came from its roots is gone; what came from partition 1's stays,
    // moved up to partition 1's slot.
    assert_eq!(caps.get(at(1, 1)), None);
    assert_eq!(caps.parent(at(2, 0)), Some(at(1, 5)));
    caps.check().unwrap();
}

#[derive(Clone, Debug)]
enum Op {
    Derive(u8, u64, u64, Rights, u64),
    Revoke(u8, u64),
    Delete(u8, u64),
    Transfer(u8, u64, u8, u64),
    Reset(u8),
}

fn op() -> impl Strategy<Value = Op> {
    let partition = 0u8..3;
    let slot = prop_oneof![8 => 0u64..8, 1 => Just(64u64), 1 => proptest::num::u64::ANY];
    let rights = (0u32..64).prop_map(Rights);
    prop_oneof![
        4 => (partition.clone(), slot.clone(), slot.clone(), rights, prop_oneof![Just(0u64), 1u64..4])
            .prop_map(|(p, s, d, r, b)| Op::Derive(p, s, d, r, b)),
        1 => (partition.clone(), slot.clone()).prop_map(|(p, s)| Op::Revoke(p, s)),
        1 => (partition.clone(), slot.clone()).prop_map(|(p, s)| Op::Delete(p, s)),
        2 => (partition.clone(), 0u64..8, partition.clone(), 0u64..8).prop_map(|(p, s, q, t)| Op::Transfer(p, s, q, t)),
        1 => partition.prop_map(Op::Reset),
    ]
}

proptest! {
    /// Any sequence of operations keeps the tree sound; a refused operation
    /// changes nothing; revoke removes exactly the descendants.
    #[test]
    fn random_operations_keep_the_tree_sound(ops in proptest::collection::vec(op(), 1..120)) {
        let mut caps = seeded();
        caps.seed(at(2, 0), endpoint(2, Rights::ALL)).unwrap();
        for op in ops {
            let before = caps.clone();
            let result = match op {
                Op::Derive(p, s, d, r, b) => caps.derive(PartitionId(p), s, d, r, Badge(b)),
                Op::Revoke(p, s) => {
                    let gone = SlotRef::new(PartitionId(p), s)
                        .map(|top| descendants(&caps, top))
                        .unwrap_or_default();
                    let result = caps.revoke(PartitionId(p), s);
                    if result.is_ok() {
                        for slot in &gone {
                            prop_assert_eq!(caps.get(*slot), None);
                        }
                        // Nothing else changed.
                        let mut want = before.clone();
                        for slot in gone {
                            want.delete(slot.partition(), u64::from(slot.slot().0)).unwrap();
                        }
                        prop_assert!(*caps == *want);
                    }
                    result
                }
                Op::Delete(p, s) => caps.delete(PartitionId(p), s),
                Op::Transfer(p, s, q, t) => {
                    let result = caps.transfer(at(p, s), Some(at(q, t)));
                    if result.is_ok() {
                        // It landed in the slot named, and nowhere else.
                        prop_assert_eq!(result, Ok(CapSlot(t as u32)));
                        prop_assert!(before.get(at(q, t)).is_none(), "it landed on a capability");
                        prop_assert_eq!(caps.parent(at(q, t)), Some(at(p, s)));
                        for s in 0..64 {
                            if s != t {
                                prop_assert_eq!(caps.get(at(q, s)), before.get(at(q, s)));
                            }
                        }
                    }
                    result.map(|_| ())
                }
                Op::Reset(p) => {
                    caps.reset_partition(PartitionId(p));
                    Ok(())
                }
            };
            if result.is_err() {
                prop_assert!(*caps == *before);
            }
            let checked = caps.check();
            prop_assert!(checked.is_ok(), "{:?} after {:?}", checked, op);
        }
    }
}
