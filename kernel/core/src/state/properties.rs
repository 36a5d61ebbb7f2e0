// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The security properties of the capability system, stated once, as
//! predicates over the kernel's state, for every checker to reuse: the unit
//! and property tests here, the fuzz targets (`fuzz/`), and the bounded
//! checker of the real code (`proofs/refine`). The kernel never calls them.
//!
//! [`KernelState::check_invariants`] says the state is well formed; these
//! say it is *secure* with respect to what the manifest allowed, which a
//! [`Policy`] records from the [`Seed`]:
//!
//! - [`no_forgery`]: every capability a partition holds traces, through its
//!   chain of parents, to a root that is exactly what the seed put in that
//!   root's slot, every link of that chain being a derivation the rules
//!   allow ([`crate::cap::may_derive`]); and the partition may hold that
//!   object with those rights and that badge at all: what the seed gave it,
//!   closed under transfer (a holder of a capability with DERIVE and of an
//!   endpoint with WRITE and GRANT may pass it to a holder of that endpoint
//!   with READ).
//! - [`rights_attenuate`]: along every derivation the object stays the same,
//!   the rights shrink or stay and a badge, once set, stays.
//! - [`revoke_exact`] (over the tables before and after a revoke): every
//!   slot that descended from the revoked one is empty, and every other slot
//!   holds what it held, with the same parent.
//! - [`shared_memory_within`]: a memory region's capability is held only by
//!   partitions the manifest shares it with (or lets it be passed to);
//!   [`regions_disjoint`] is the same rule over address ranges, for checkers
//!   of the stage-2 maps.
//! - [`flows_within`]: the may-flow relation the current capabilities induce
//!   ([`may_flow`]) is contained in the manifest's channel graph
//!   ([`Policy::channels`]).
//!
//! The closure under transfer over-approximates: it joins the rights of all
//! the capabilities a partition may hold on one object. The channel graph
//! covers what capabilities induce (endpoints, both ways, because a call is
//! answered; notifications; shared memory; partition, vCPU, interrupt and
//! log capabilities) and the manifest's fault signals; it does not cover
//! timing (shared cores, caches), which time partitioning addresses.

use core::fmt;

use hv_abi::hypercall::Rights;
use hv_image::{Capability, MAX_CAPS, MAX_PARTITIONS, Object};

use super::{KernelState, Seed};
use crate::cap::{CapSpace, PartitionId, SlotRef, may_derive};

/// Distinct objects a policy tracks: at most one per seeded slot.
const MAX_OBJECTS: usize = MAX_PARTITIONS * MAX_CAPS;

/// A property broken: which, what about it, and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Broken {
    /// The property's name.
    pub property: &'static str,
    /// What is wrong.
    pub what: &'static str,
    /// The slot concerned, if one is.
    pub slot: Option<SlotRef>,
    /// The partitions concerned, if two are (a flow: from, to).
    pub partitions: Option<(PartitionId, PartitionId)>,
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.property, self.what)?;
        if let Some(s) = self.slot {
            write!(f, " (partition {} slot {})", s.partition().0, s.slot().0)?;
        }
        if let Some((a, b)) = self.partitions {
            write!(f, " (partition {} to partition {})", a.0, b.0)?;
        }
        Ok(())
    }
}

/// The result of a property check.
pub type Verdict = Result<(), Broken>;

/// The name of [`no_forgery`].
pub const NO_FORGERY: &str = "no forgery";
/// The name of [`rights_attenuate`].
pub const ATTENUATION: &str = "rights only attenuate";
/// The name of [`revoke_exact`].
pub const REVOKE: &str = "revoke removes every descendant and nothing else";
/// The name of [`shared_memory_within`].
pub const MEMORY: &str = "memory disjoint except where the manifest shares it";
/// The name of [`flows_within`].
pub const FLOW: &str = "information flows only along the manifest's channels";

fn broken(property: &'static str, what: &'static str, slot: Option<SlotRef>) -> Broken {
    Broken {
        property,
        what,
        slot,
        partitions: None,
    }
}

/// One object of a policy: the rights each partition may come to hold on it,
/// and the badges it may carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    object: Object,
    may: [Rights; MAX_PARTITIONS],
    /// Some holder was seeded with it unbadged and with DERIVE, so any badge
    /// may be minted on it.
    mint: bool,
}

/// What the manifest allows, as the properties need it; built from the
/// [`Seed`] by [`Policy::new`]. About 100 KiB: box it.
#[derive(Clone, Debug)]
pub struct Policy {
    partitions: usize,
    /// What the seed put in each slot (index: partition * MAX_CAPS + slot).
    seeds: [Option<Capability>; MAX_PARTITIONS * MAX_CAPS],
    objects: heapless::Vec<Entry, MAX_OBJECTS>,
    /// Every (object, badge) the seed holds.
    badges: heapless::Vec<(Object, u64), MAX_OBJECTS>,
    /// The notification each interrupt binding signals.
    irq_notifications: [Option<u16>; hv_image::MAX_IRQS],
    /// Bit q of entry p: information may flow from p to q.
    channels: [u16; MAX_PARTITIONS],
}

impl Policy {
    /// The policy of `seed`: what each partition may come to hold (the seed,
    /// closed under transfer), and the channel graph that induces, plus the
    /// seed's fault signals.
    #[must_use]
    pub fn new(seed: &Seed<'_>) -> Self {
        let mut policy = Self {
            partitions: seed.partitions.len().min(MAX_PARTITIONS),
            seeds: [None; MAX_PARTITIONS * MAX_CAPS],
            objects: heapless::Vec::new(),
            badges: heapless::Vec::new(),
            irq_notifications: [None; hv_image::MAX_IRQS],
            channels: [0; MAX_PARTITIONS],
        };
        for (i, irq) in seed.irqs.iter().enumerate() {
            if let Some(n) = policy.irq_notifications.get_mut(i) {
                *n = Some(irq.notification.number());
            }
        }
        for (p, part) in seed.partitions.iter().enumerate().take(MAX_PARTITIONS) {
            for (s, cap) in part.capabilities.iter().enumerate().take(MAX_CAPS) {
                let Some(cap) = *cap else { continue };
                if let Some(at) = policy.seeds.get_mut(p * MAX_CAPS + s) {
                    *at = Some(cap);
                }
                let entry = policy.entry_mut(cap.object);
                if let Some(e) = entry {
                    if let Some(r) = e.may.get_mut(p) {
                        *r = r.union(cap.rights);
                    }
                    e.mint |= cap.badge.0 == 0 && cap.rights.contains(Rights::DERIVE);
                }
                if !policy.badges.contains(&(cap.object, cap.badge.0)) {
                    let _ = policy.badges.push((cap.object, cap.badge.0));
                }
            }
        }
        policy.close_under_transfer();
        let may = |e: &Entry, p: usize| e.may.get(p).copied().unwrap_or_default();
        policy.channels = flows(policy.partitions, &policy.irq_notifications, |visit| {
            for e in &policy.objects {
                for p in 0..policy.partitions {
                    let r = may(e, p);
                    if r != Rights::NONE {
                        visit(p, e.object, r);
                    }
                }
            }
        });
        for signal in seed.fault_signals {
            if let Some(bits) = policy.channels.get_mut(signal.partition.index()) {
                *bits |= 1 << (signal.controller.index() % 16);
            }
        }
        policy
    }

    /// The entry of `object`, made if new (none if the table is full, which
    /// a checked seed cannot make happen).
    fn entry_mut(&mut self, object: Object) -> Option<&mut Entry> {
        let at = match self.objects.iter().position(|e| e.object == object) {
            Some(at) => at,
            None => {
                self.objects
                    .push(Entry {
                        object,
                        may: [Rights::NONE; MAX_PARTITIONS],
                        mint: false,
                    })
                    .ok()?;
                self.objects.len() - 1
            }
        };
        self.objects.get_mut(at)
    }

    /// Adds what transfers over endpoints allow, until nothing changes.
    fn close_under_transfer(&mut self) {
        let grant = Rights::WRITE.union(Rights::GRANT);
        loop {
            let mut changed = false;
            let endpoints: heapless::Vec<[Rights; MAX_PARTITIONS], MAX_OBJECTS> = self
                .objects
                .iter()
                .filter(|e| matches!(e.object, Object::Endpoint(_)))
                .map(|e| e.may)
                .collect();
            for may_e in &endpoints {
                for (from, rf) in may_e.iter().enumerate() {
                    if !rf.contains(grant) {
                        continue;
                    }
                    for (to, rt) in may_e.iter().enumerate() {
                        if !rt.contains(Rights::READ) {
                            continue;
                        }
                        for e in &mut self.objects {
                            let (Some(&r), Some(&old)) = (e.may.get(from), e.may.get(to)) else {
                                continue;
                            };
                            let new = old.union(r);
                            if r.contains(Rights::DERIVE) && new != old {
                                if let Some(at) = e.may.get_mut(to) {
                                    *at = new;
                                }
                                changed = true;
                            }
                        }
                    }
                }
            }
            if !changed {
                return;
            }
        }
    }

    /// The rights `partition` may come to hold on `object`.
    #[must_use]
    pub fn may_hold(&self, partition: PartitionId, object: Object) -> Rights {
        self.objects
            .iter()
            .find(|e| e.object == object)
            .and_then(|e| e.may.get(partition.index()).copied())
            .unwrap_or_default()
    }

    /// Whether a capability on `object` may carry `badge`.
    #[must_use]
    pub fn may_carry(&self, object: Object, badge: u64) -> bool {
        self.badges.contains(&(object, badge))
            || self.objects.iter().any(|e| e.object == object && e.mint)
    }

    /// The channel graph: bit q of entry p says information may flow from p
    /// to q.
    #[must_use]
    pub const fn channels(&self) -> &[u16; MAX_PARTITIONS] {
        &self.channels
    }

    /// This policy with the manifest's declared channel graph instead of the
    /// one its capabilities induce (a checker states the graph it means, and
    /// checks [`Policy::channels`] of the induced one against it).
    #[must_use]
    pub const fn with_channels(mut self, channels: [u16; MAX_PARTITIONS]) -> Self {
        self.channels = channels;
        self
    }

    /// Whether `from` is connected to `to` through the channel graph, in any
    /// number of steps (every partition is connected to itself).
    #[must_use]
    pub fn reaches(&self, from: PartitionId, to: PartitionId) -> bool {
        let mut seen: u16 = 1 << (from.index() % 16);
        loop {
            let mut next = seen;
            for p in 0..self.partitions {
                if seen & (1 << p) != 0 {
                    next |= self.channels.get(p).copied().unwrap_or(0);
                }
            }
            if next == seen {
                return seen & (1 << (to.index() % 16)) != 0;
            }
            seen = next;
        }
    }

    /// What the seed put in `slot`.
    #[must_use]
    pub fn seeded(&self, slot: SlotRef) -> Option<Capability> {
        let index = slot.partition().index() * MAX_CAPS + slot.slot().0 as usize;
        self.seeds.get(index).copied().flatten()
    }
}

/// The flow relation `visit` describes (it calls its argument with each
/// partition, object and rights held), as bits: q in entry p if p may flow
/// to q.
fn flows(
    partitions: usize,
    irq_notifications: &[Option<u16>; hv_image::MAX_IRQS],
    each: impl FnOnce(&mut dyn FnMut(usize, Object, Rights)),
) -> [u16; MAX_PARTITIONS] {
    // Per kind of object, per object number (u16 folded into a small
    // table): which partitions hold it with READ, with WRITE, at all.
    const SLOTS: usize = 64;
    #[derive(Clone, Copy, Default)]
    struct Holders {
        read: u16,
        write: u16,
        control: u16,
    }
    let mut endpoint = [Holders::default(); SLOTS];
    let mut notification = [Holders::default(); SLOTS];
    let mut memory = [Holders::default(); SLOTS];
    let mut irq = [Holders::default(); SLOTS];
    let mut log_readers = 0u16;
    let mut out = [0u16; MAX_PARTITIONS];
    let add = |from: usize, to_mask: u16, out: &mut [u16; MAX_PARTITIONS]| {
        if let Some(bits) = out.get_mut(from) {
            *bits |= to_mask;
        }
    };
    let mut direct = [0u16; MAX_PARTITIONS];
    each(&mut |p, object, r| {
        let bit = 1u16 << (p % 16);
        let mark = |table: &mut [Holders; SLOTS], n: u16| {
            if let Some(h) = table.get_mut(usize::from(n) % SLOTS) {
                if r.contains(Rights::READ) {
                    h.read |= bit;
                }
                if r.contains(Rights::WRITE) {
                    h.write |= bit;
                }
                if r.contains(Rights::CONTROL) {
                    h.control |= bit;
                }
            }
        };
        match object {
            Object::Endpoint(n) => mark(&mut endpoint, n),
            Object::Notification(n) => mark(&mut notification, n),
            Object::Memory(n) => mark(&mut memory, n),
            Object::Irq(n) => mark(&mut irq, n),
            Object::KernelLog if r.contains(Rights::READ) => log_readers |= bit,
            Object::Partition(t) | Object::Vcpu { partition: t, .. } => {
                // Status (READ) flows from the target; control, both ways
                // (the controller learns it is busy or restarting).
                let t = usize::from(t) % 16;
                if r.contains(Rights::READ) || r.contains(Rights::CONTROL) {
                    add(t, bit, &mut direct);
                }
                if r.contains(Rights::CONTROL) || r.contains(Rights::WRITE) {
                    add(p, 1 << t, &mut direct);
                }
            }
            _ => {}
        }
    });
    for p in 0..partitions.min(MAX_PARTITIONS) {
        let bit = 1u16 << p;
        let mut to = direct.get(p).copied().unwrap_or(0);
        for h in &endpoint {
            // A message goes to the reader, and a reply (or the mere fact
            // that it was taken) back to the writer.
            if h.write & bit != 0 {
                to |= h.read;
            }
            if h.read & bit != 0 {
                to |= h.write;
            }
        }
        for h in &notification {
            if h.write & bit != 0 {
                to |= h.read;
            }
        }
        for h in &memory {
            if h.write & bit != 0 {
                to |= h.read | h.write;
            }
        }
        for (i, h) in irq.iter().enumerate() {
            // Acknowledging an interrupt lets it signal its notification
            // again.
            let bound = irq_notifications.get(i).copied().flatten();
            if h.write & bit != 0
                && let Some(n) = bound
                && let Some(nh) = notification.get(usize::from(n) % SLOTS)
            {
                to |= nh.read;
            }
        }
        // Everyone logs; the reader reads it.
        to |= log_readers;
        add(p, to & !bit, &mut out);
    }
    out
}

/// The may-flow relation the capabilities in `state` induce: bit q of entry
/// p says p may now pass information to q (see [`Policy::channels`] for
/// what counts).
#[must_use]
pub fn may_flow(state: &KernelState, policy: &Policy) -> [u16; MAX_PARTITIONS] {
    let count = state.partition_count().min(MAX_PARTITIONS);
    flows(count, &policy.irq_notifications, |visit| {
        for p in 0..count {
            for (_, cap) in state.caps().slots(PartitionId(p as u8)) {
                visit(p, cap.object, cap.rights);
            }
        }
    })
}

/// Every occupied slot of every partition of `state`.
fn occupied(state: &KernelState) -> impl Iterator<Item = (SlotRef, Capability)> + '_ {
    let count = state.partition_count().min(MAX_PARTITIONS);
    (0..count).flat_map(move |p| state.caps().slots(PartitionId(p as u8)))
}

/// No forgery: see the module documentation.
pub fn no_forgery(state: &KernelState, policy: &Policy) -> Verdict {
    let caps = state.caps();
    for (at, cap) in occupied(state) {
        let fail = |what| Err(broken(NO_FORGERY, what, Some(at)));
        // The chain of parents ends at a seeded root, every link allowed.
        let mut child = (at, cap);
        let mut steps = 0;
        loop {
            steps += 1;
            if steps > MAX_PARTITIONS * MAX_CAPS {
                return fail("its chain of parents loops");
            }
            match caps.parent(child.0) {
                None => {
                    if policy.seeded(child.0) != Some(child.1) {
                        return fail("it traces to a root the seed did not put there");
                    }
                    break;
                }
                Some(up) => {
                    let Some(parent) = caps.get(up) else {
                        return fail("its parent slot is empty");
                    };
                    if !may_derive(parent, child.1) {
                        return fail("a link of its chain is no allowed derivation");
                    }
                    child = (up, parent);
                }
            }
        }
        if !policy
            .may_hold(at.partition(), cap.object)
            .contains(cap.rights)
        {
            return fail("its partition may not hold that object with those rights");
        }
        if !policy.may_carry(cap.object, cap.badge.0) {
            return fail("it carries a badge nobody could have minted");
        }
    }
    Ok(())
}

/// Rights only attenuate: every derived capability names its parent's
/// object, with no right the parent lacks, and its parent's badge unless the
/// parent had none.
pub fn rights_attenuate(state: &KernelState) -> Verdict {
    let caps = state.caps();
    for (at, cap) in occupied(state) {
        let Some(up) = caps.parent(at) else { continue };
        let Some(parent) = caps.get(up) else {
            return Err(broken(ATTENUATION, "its parent slot is empty", Some(at)));
        };
        if parent.object != cap.object {
            return Err(broken(
                ATTENUATION,
                "it names another object than its parent",
                Some(at),
            ));
        }
        if !parent.rights.contains(cap.rights) {
            return Err(broken(
                ATTENUATION,
                "it holds a right its parent lacks",
                Some(at),
            ));
        }
        if parent.badge.0 != 0 && parent.badge != cap.badge {
            return Err(broken(
                ATTENUATION,
                "its badge differs from its parent's",
                Some(at),
            ));
        }
    }
    Ok(())
}

/// Whether `slot` descends from `top` (strictly) in `caps`.
fn descends(caps: &CapSpace, slot: SlotRef, top: SlotRef) -> bool {
    let mut at = caps.parent(slot);
    for _ in 0..MAX_PARTITIONS * MAX_CAPS {
        match at {
            None => return false,
            Some(a) if a == top => return true,
            Some(a) => at = caps.parent(a),
        }
    }
    false
}

/// Revoke is exact: `after` is `before` with `top` revoked, so every slot
/// that descended from `top` in `before` is empty in `after`, and every
/// other slot (`top` among them) holds what it held, with the same parent.
pub fn revoke_exact(before: &CapSpace, after: &CapSpace, top: SlotRef) -> Verdict {
    for p in 0..MAX_PARTITIONS {
        for s in 0..MAX_CAPS as u64 {
            let Some(at) = SlotRef::new(PartitionId(p as u8), s) else {
                continue;
            };
            if before.get(at).is_none() && after.get(at).is_none() {
                continue;
            }
            if descends(before, at, top) {
                if after.get(at).is_some() {
                    return Err(broken(REVOKE, "a descendant survived the revoke", Some(at)));
                }
            } else if after.get(at) != before.get(at) || after.parent(at) != before.parent(at) {
                return Err(broken(
                    REVOKE,
                    "a slot that did not descend changed",
                    Some(at),
                ));
            }
        }
    }
    Ok(())
}

/// Shared memory stays within the manifest: every memory region's
/// capability is held only by a partition the manifest shares the region
/// with (or lets it be passed to), with rights it allows.
pub fn shared_memory_within(state: &KernelState, policy: &Policy) -> Verdict {
    for (at, cap) in occupied(state) {
        if let Object::Memory(_) = cap.object
            && !policy
                .may_hold(at.partition(), cap.object)
                .contains(cap.rights)
        {
            return Err(broken(
                MEMORY,
                "a partition the manifest does not share the region with holds it",
                Some(at),
            ));
        }
    }
    Ok(())
}

/// A range of addresses a partition can reach, for [`regions_disjoint`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// Who reaches it.
    pub partition: PartitionId,
    /// Its first address.
    pub base: u64,
    /// Its size in bytes.
    pub size: u64,
    /// The manifest's shared region it is, if it is one.
    pub shared: Option<u16>,
}

/// Memory is disjoint except where the manifest shares it: two regions of
/// different partitions overlap only if both are the same shared region.
pub fn regions_disjoint(regions: &[Region]) -> Verdict {
    for (i, a) in regions.iter().enumerate() {
        for b in regions.iter().skip(i + 1) {
            let overlap = a.base < b.base.saturating_add(b.size)
                && b.base < a.base.saturating_add(a.size)
                && a.size != 0
                && b.size != 0;
            let shared = a.shared.is_some() && a.shared == b.shared;
            if overlap && a.partition != b.partition && !shared {
                return Err(Broken {
                    property: MEMORY,
                    what: "two partitions' memory overlaps outside a shared region",
                    slot: None,
                    partitions: Some((a.partition, b.partition)),
                });
            }
        }
    }
    Ok(())
}

/// Information flows only along the manifest's channels: [`may_flow`] of
/// `state` is contained in [`Policy::channels`].
pub fn flows_within(state: &KernelState, policy: &Policy) -> Verdict {
    let now = may_flow(state, policy);
    for (p, (&have, &allowed)) in now.iter().zip(policy.channels.iter()).enumerate() {
        let extra = have & !allowed;
        if extra != 0 {
            return Err(Broken {
                property: FLOW,
                what: "the capabilities let information flow outside the channel graph",
                slot: None,
                partitions: Some((
                    PartitionId(p as u8),
                    PartitionId(extra.trailing_zeros() as u8),
                )),
            });
        }
    }
    Ok(())
}

/// Every property that holds of one state ([`no_forgery`],
/// [`rights_attenuate`], [`shared_memory_within`], [`flows_within`]), the
/// first broken one named.
pub fn check_all(state: &KernelState, policy: &Policy) -> Verdict {
    no_forgery(state, policy)?;
    rights_attenuate(state)?;
    shared_memory_within(state, policy)?;
    flows_within(state, policy)
}
