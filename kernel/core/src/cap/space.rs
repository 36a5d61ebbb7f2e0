// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Every partition's capability table, and the derivation tree across them.
//!
//! [`CapSpace`] holds [`MAX_CAPS`] slots for each of [`MAX_PARTITIONS`]
//! partitions in one array, so a [`SlotRef`] (partition, slot) is a 16-bit
//! index and a derivation can link slots of different partitions (a capability
//! transferred over an endpoint is a child of the sender's slot).
//!
//! # The derivation tree
//!
//! Every occupied slot is either a *root*, put there from the seed at boot
//! (and remembered, so a restarted partition gets its table back), or the
//! child of the slot it was derived or transferred from. The tree is stored
//! as links in the slots themselves (parent, first child, next and previous
//! sibling), so that every operation is proportional to what it touches:
//! deriving is O(1); revoking is O(descendants), with no recursion and no
//! depth limit; deleting is O(children). Nothing allocates.
//!
//! The rules, checked by [`CapSpace::check`]:
//! - a child names the same object as its parent, holds no right the parent
//!   lacks, and has the parent's badge unless the parent had none;
//! - a root is exactly the capability the seed put in that slot;
//! - `revoke(c)` empties every slot descending from `c`, in any partition,
//!   and nothing else;
//! - `delete(c)` empties `c`; its children move up to `c`'s parent, so that
//!   whoever could revoke `c` can still revoke them. A root has no parent to
//!   move them to, so deleting a root revokes it first: giving up what the
//!   manifest granted gives up everything derived from it. (The other choice,
//!   turning the orphans into new roots, would leave capabilities that trace
//!   back to no line of the manifest.)

use hv_abi::hypercall::{Badge, CapSlot, Rights, Status};

use hv_image::{MAX_CAPS, MAX_PARTITIONS};

use super::PartitionId;
use hv_image::Capability;

/// Slots in all partitions' tables together.
const TOTAL: usize = MAX_PARTITIONS * MAX_CAPS;
const _: () = assert!(TOTAL <= u16::MAX as usize);

/// One slot of one partition's table: `partition * MAX_CAPS + slot`.
///
/// # Invariants
/// The index is below `MAX_PARTITIONS * MAX_CAPS`; [`SlotRef::new`] is the
/// only way to make one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SlotRef(u16);

impl SlotRef {
    /// Slot `slot` of `partition`'s table, or `None` if either is out of
    /// range. `slot` is a raw register value, so anything is accepted.
    #[must_use]
    #[inline]
    pub const fn new(partition: PartitionId, slot: u64) -> Option<Self> {
        if partition.index() >= MAX_PARTITIONS || slot >= MAX_CAPS as u64 {
            return None;
        }
        // Both factors are bounded above, so this is below TOTAL.
        Some(Self((partition.index() * MAX_CAPS + slot as usize) as u16))
    }

    /// The partition whose table holds this slot.
    #[must_use]
    pub const fn partition(self) -> PartitionId {
        PartitionId((self.0 as usize / MAX_CAPS) as u8)
    }

    /// The slot's number in that table.
    #[must_use]
    pub const fn slot(self) -> CapSlot {
        CapSlot((self.0 as usize % MAX_CAPS) as u32)
    }

    const fn index(self) -> usize {
        self.0 as usize
    }
}

/// A slot: its capability and its place in the derivation tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Node {
    cap: Option<Capability>,
    /// `None` for a root (and for an empty slot).
    parent: Option<SlotRef>,
    first_child: Option<SlotRef>,
    /// Siblings: the other children of `parent`.
    next: Option<SlotRef>,
    prev: Option<SlotRef>,
}

impl Node {
    const EMPTY: Self = Self {
        cap: None,
        parent: None,
        first_child: None,
        next: None,
        prev: None,
    };
}

/// Every partition's capability table and the derivation tree over them.
///
/// Every method that takes a raw slot number (`u64`, as a partition passes it
/// in a register) checks it and answers a bad one with the [`Status`] the
/// hypercall returns, having changed nothing.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CapSpace {
    nodes: [Node; TOTAL],
    /// What the seed put in each slot, for [`CapSpace::reset_partition`] and
    /// for checking roots.
    seeds: [Option<Capability>; TOTAL],
    /// Bit `s` of entry `p`: slot `s` of partition `p` is occupied, so the
    /// first free slot is one `trailing_ones` away.
    used: [u64; MAX_PARTITIONS],
}

impl Default for CapSpace {
    fn default() -> Self {
        Self::new()
    }
}

impl CapSpace {
    /// Empty tables.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            nodes: [Node::EMPTY; TOTAL],
            seeds: [None; TOTAL],
            used: [0; MAX_PARTITIONS],
        }
    }

    /// Empties every table and forgets every seed.
    pub fn clear(&mut self) {
        self.nodes.fill(Node::EMPTY);
        self.seeds.fill(None);
        self.used.fill(0);
    }

    /// The capability in `slot`, if any.
    #[must_use]
    #[inline]
    pub fn get(&self, slot: SlotRef) -> Option<Capability> {
        self.node(slot).and_then(|n| n.cap)
    }

    /// The slot `slot` (a raw register value) of `partition` and its
    /// capability; [`Status::InvalidCapability`] if out of range or empty.
    pub fn lookup(
        &self,
        partition: PartitionId,
        slot: u64,
    ) -> Result<(SlotRef, Capability), Status> {
        let at = SlotRef::new(partition, slot).ok_or(Status::InvalidCapability)?;
        let cap = self.get(at).ok_or(Status::InvalidCapability)?;
        Ok((at, cap))
    }

    /// The slot `slot` was derived from, or `None` for a root or empty slot.
    #[must_use]
    pub fn parent(&self, slot: SlotRef) -> Option<SlotRef> {
        self.node(slot).and_then(|n| n.parent)
    }

    /// Whether `slot` holds a capability that the seed put there.
    #[must_use]
    pub fn is_root(&self, slot: SlotRef) -> bool {
        self.node(slot)
            .is_some_and(|n| n.cap.is_some() && n.parent.is_none())
    }

    /// The occupied slots of `partition`, in slot order.
    pub fn slots(
        &self,
        partition: PartitionId,
    ) -> impl Iterator<Item = (SlotRef, Capability)> + '_ {
        (0..MAX_CAPS as u64).filter_map(move |s| {
            let at = SlotRef::new(partition, s)?;
            Some((at, self.get(at)?))
        })
    }

    /// Puts `cap` in the empty `slot` as a root and remembers it as that
    /// slot's seed. Only boot (through [`crate::state::KernelState`]) seeds.
    pub fn seed(&mut self, slot: SlotRef, cap: Capability) -> Result<(), Status> {
        if self.get(slot).is_some() {
            return Err(Status::InvalidArgument);
        }
        let seed = self
            .seeds
            .get_mut(slot.index())
            .ok_or(Status::InvalidCapability)?;
        *seed = Some(cap);
        self.install(slot, cap, None);
        Ok(())
    }

    /// Derives a capability from `src` into the empty `dst`, both in
    /// `partition`'s table, with `rights` and `badge` (0: keep `src`'s).
    ///
    /// Checks, in order: `src` valid ([`Status::InvalidCapability`]);
    /// `rights` defined ([`Status::InvalidArgument`]); `src` has DERIVE and
    /// every right asked for ([`Status::NoRights`]); a new badge only where
    /// `src` has none ([`Status::InvalidArgument`]); `dst` in range
    /// ([`Status::InvalidCapability`]) and empty ([`Status::InvalidArgument`]).
    pub fn derive(
        &mut self,
        partition: PartitionId,
        src: u64,
        dst: u64,
        rights: Rights,
        badge: Badge,
    ) -> Result<(), Status> {
        let (from, cap) = self.lookup(partition, src)?;
        if !rights.is_valid() {
            return Err(Status::InvalidArgument);
        }
        #[cfg(not(feature = "mutant-derive-no-attenuate"))]
        let attenuates = cap.rights.contains(rights);
        #[cfg(feature = "mutant-derive-no-attenuate")]
        let attenuates = true;
        if !cap.rights.contains(Rights::DERIVE) || !attenuates {
            return Err(Status::NoRights);
        }
        let badge = match (badge.0, cap.badge.0) {
            (0, _) => cap.badge,
            (_, 0) => badge,
            _ => return Err(Status::InvalidArgument),
        };
        let to = SlotRef::new(partition, dst).ok_or(Status::InvalidCapability)?;
        if self.get(to).is_some() {
            return Err(Status::InvalidArgument);
        }
        let child = Capability {
            object: cap.object,
            rights,
            badge,
        };
        self.install(to, child, Some(from));
        Ok(())
    }

    /// Whether [`CapSpace::transfer`] of `from` to `to` would succeed, with
    /// the status it would fail with. Changes nothing.
    pub fn check_transfer(&self, from: SlotRef, to: Option<SlotRef>) -> Result<SlotRef, Status> {
        let cap = self.get(from).ok_or(Status::InvalidCapability)?;
        if !cap.rights.contains(Rights::DERIVE) {
            return Err(Status::NotGrantable);
        }
        match to {
            Some(to) if self.get(to).is_none() => Ok(to),
            _ => Err(Status::OutOfResources),
        }
    }

    /// Copies the capability in `from` into `to`, the receive slot the
    /// receiver named, as a child of `from` with the same rights and badge.
    /// Checks, in order: `from` holds a capability
    /// ([`Status::InvalidCapability`]) with DERIVE ([`Status::NotGrantable`]:
    /// a transfer makes a copy, and DERIVE is the right to make copies); the
    /// receiver named a slot (`to` is `Some`) and it is empty
    /// ([`Status::OutOfResources`]). The endpoint's GRANT right is the
    /// caller's to check. A transfer never picks a slot itself: a receiver
    /// that named none gets nothing, so a sender can neither fill its table
    /// nor put a capability at a number it still uses.
    pub fn transfer(&mut self, from: SlotRef, to: Option<SlotRef>) -> Result<CapSlot, Status> {
        let to = self.check_transfer(from, to)?;
        let cap = self.get(from).ok_or(Status::InvalidCapability)?;
        self.install(to, cap, Some(from));
        Ok(to.slot())
    }

    /// Empties every slot that descends from `slot` of `partition`, in any
    /// partition's table. The slot itself stays.
    pub fn revoke(&mut self, partition: PartitionId, slot: u64) -> Result<(), Status> {
        let (at, _) = self.lookup(partition, slot)?;
        self.revoke_descendants(at);
        Ok(())
    }

    /// Empties `slot` of `partition`; see the module documentation for what
    /// happens to what was derived from it.
    pub fn delete(&mut self, partition: PartitionId, slot: u64) -> Result<(), Status> {
        let (at, _) = self.lookup(partition, slot)?;
        self.delete_slot(at);
        Ok(())
    }

    /// Gives `partition` back the table the seed gave it: every occupied
    /// slot is deleted (so what it handed on from its roots goes too, and
    /// what it derived from capabilities it received moves up to the giver),
    /// then the seed's roots are put back.
    pub fn reset_partition(&mut self, partition: PartitionId) {
        for s in 0..MAX_CAPS as u64 {
            if let Some(at) = SlotRef::new(partition, s)
                && self.get(at).is_some()
            {
                self.delete_slot(at);
            }
        }
        for s in 0..MAX_CAPS as u64 {
            if let Some(at) = SlotRef::new(partition, s)
                && let Some(Some(cap)) = self.seeds.get(at.index()).copied()
            {
                self.install(at, cap, None);
            }
        }
    }

    fn node(&self, slot: SlotRef) -> Option<&Node> {
        self.nodes.get(slot.index())
    }

    fn node_mut(&mut self, slot: SlotRef) -> Option<&mut Node> {
        self.nodes.get_mut(slot.index())
    }

    fn set_used(&mut self, slot: SlotRef, used: bool) {
        if let Some(bits) = self.used.get_mut(slot.partition().index()) {
            let bit = 1u64 << (slot.slot().0 % 64);
            if used {
                *bits |= bit;
            } else {
                *bits &= !bit;
            }
        }
    }

    /// Fills the empty `slot` with `cap`, as a root or as the newest child of
    /// `parent`.
    fn install(&mut self, slot: SlotRef, cap: Capability, parent: Option<SlotRef>) {
        if let Some(node) = self.node_mut(slot) {
            *node = Node {
                cap: Some(cap),
                ..Node::EMPTY
            };
            self.set_used(slot, true);
            if let Some(parent) = parent {
                self.link_child(parent, slot);
            }
        }
    }

    /// Makes the unlinked `child` the first child of `parent`.
    fn link_child(&mut self, parent: SlotRef, child: SlotRef) {
        let Some(old_first) = self.node(parent).map(|n| n.first_child) else {
            return;
        };
        if let Some(old) = old_first
            && let Some(n) = self.node_mut(old)
        {
            n.prev = Some(child);
        }
        if let Some(n) = self.node_mut(child) {
            n.parent = Some(parent);
            n.prev = None;
            n.next = old_first;
        }
        if let Some(n) = self.node_mut(parent) {
            n.first_child = Some(child);
        }
    }

    /// Takes `slot` out of its parent's list of children.
    fn unlink(&mut self, slot: SlotRef) {
        let Some(&Node {
            parent, next, prev, ..
        }) = self.node(slot)
        else {
            return;
        };
        match prev {
            Some(p) => {
                if let Some(n) = self.node_mut(p) {
                    n.next = next;
                }
            }
            None => {
                if let Some(n) = parent.and_then(|p| self.node_mut(p)) {
                    n.first_child = next;
                }
            }
        }
        if let Some(n) = next.and_then(|x| self.node_mut(x)) {
            n.prev = prev;
        }
        if let Some(n) = self.node_mut(slot) {
            n.parent = None;
            n.next = None;
            n.prev = None;
        }
    }

    /// Empties an unlinked slot without children.
    fn clear_slot(&mut self, slot: SlotRef) {
        if let Some(node) = self.node_mut(slot) {
            *node = Node::EMPTY;
        }
        self.set_used(slot, false);
    }

    /// Post-order walk without a stack: go down first children to a leaf,
    /// empty it, step back to its parent, repeat. Each descendant is entered
    /// once and emptied once, so the loop is bounded by twice the table size
    /// (the bound only matters if the tree were corrupt).
    fn revoke_descendants(&mut self, top: SlotRef) {
        let mut at = top;
        for _ in 0..2 * TOTAL {
            let Some(&Node {
                first_child,
                parent,
                ..
            }) = self.node(at)
            else {
                return;
            };
            if let Some(child) = first_child {
                at = child;
                continue;
            }
            if at == top {
                return;
            }
            let Some(up) = parent else { return };
            #[cfg(feature = "mutant-revoke-spares-one")]
            if up == top
                && self
                    .node(at)
                    .is_some_and(|n| n.next.is_none() && n.prev.is_none())
            {
                return;
            }
            self.unlink(at);
            self.clear_slot(at);
            at = up;
        }
    }

    fn delete_slot(&mut self, slot: SlotRef) {
        let Some(&Node {
            parent,
            first_child,
            ..
        }) = self.node(slot)
        else {
            return;
        };
        match parent {
            None => self.revoke_descendants(slot),
            Some(up) => {
                let mut child = first_child;
                for _ in 0..TOTAL {
                    let Some(c) = child else { break };
                    child = self.node(c).and_then(|n| n.next);
                    self.unlink(c);
                    self.link_child(up, c);
                }
            }
        }
        self.unlink(slot);
        self.clear_slot(slot);
    }

    /// Checks the rules in the module documentation and the consistency of
    /// the links and the occupancy bits; names the first rule broken.
    pub fn check(&self) -> Result<(), &'static str> {
        // Children found by walking every list of children, against slots
        // that have a parent: equal only if each child is in exactly its
        // parent's list (a detached loop of siblings would go uncounted).
        let mut listed = 0usize;
        let mut derived = 0usize;
        for (i, node) in self.nodes.iter().enumerate() {
            let at = SlotRef(i as u16);
            let used = self
                .used
                .get(at.partition().index())
                .is_some_and(|bits| bits & (1 << (at.slot().0 % 64)) != 0);
            let Some(cap) = node.cap else {
                if used || *node != Node::EMPTY {
                    return Err("an empty slot is marked used or linked");
                }
                continue;
            };
            if !used {
                return Err("an occupied slot is not marked used");
            }
            if !cap.rights.is_valid() {
                return Err("a capability has undefined rights");
            }
            self.check_links(at, node, cap)?;
            if node.parent.is_some() {
                derived += 1;
            }
            let mut child = node.first_child;
            while let Some(c) = child {
                listed += 1;
                if listed > TOTAL || self.parent(c) != Some(at) {
                    return Err("a list of children is broken");
                }
                child = self.node(c).and_then(|n| n.next);
            }
        }
        if listed != derived {
            return Err("a derived capability is missing from its parent's children");
        }
        Ok(())
    }

    fn check_links(&self, at: SlotRef, node: &Node, cap: Capability) -> Result<(), &'static str> {
        let occupied = |s: SlotRef| self.get(s).is_some();
        match node.parent {
            None => {
                if node.prev.is_some() || node.next.is_some() {
                    return Err("a root has siblings");
                }
                if self.seeds.get(at.index()).copied().flatten() != Some(cap) {
                    return Err("a root is not what the seed put in its slot");
                }
            }
            Some(up) => {
                let parent = self.get(up).ok_or("a capability's parent slot is empty")?;
                if !super::may_derive(parent, cap) {
                    return Err("a capability exceeds its parent (object, rights or badge)");
                }
                let first = self.node(up).and_then(|n| n.first_child);
                if node.prev.is_none() && first != Some(at) {
                    return Err("a first child is not its parent's first child");
                }
                // The chain of parents ends at a root.
                let mut ancestor = Some(up);
                let mut steps = 0;
                while let Some(a) = ancestor {
                    steps += 1;
                    if steps > TOTAL || a == at {
                        return Err("the derivation tree has a cycle");
                    }
                    ancestor = self.parent(a);
                }
            }
        }
        if let Some(p) = node.prev
            && (!occupied(p)
                || self.node(p).and_then(|n| n.next) != Some(at)
                || self.parent(p) != node.parent)
        {
            return Err("sibling links disagree");
        }
        if let Some(n) = node.next
            && (!occupied(n) || self.node(n).and_then(|x| x.prev) != Some(at))
        {
            return Err("sibling links disagree");
        }
        if let Some(c) = node.first_child
            && (!occupied(c)
                || self.parent(c) != Some(at)
                || self.node(c).and_then(|n| n.prev).is_some())
        {
            return Err("a first child does not point back");
        }
        Ok(())
    }
}
