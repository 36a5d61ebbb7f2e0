// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Lock domains: the parts of a system the kernel keeps in states of their
//! own, each under its own lock, so that cores running unrelated partitions
//! never wait for, or slow, each other.
//!
//! Two partitions are in one domain when they share a core (a core has one
//! ready queue), or an object the kernel keeps state for (an endpoint, a
//! notification, an interrupt binding, a reply object), or when one names
//! the other (a `Partition` or `Vcpu` capability, a virtual machine's exit
//! endpoint, an endpoint's server). A domain's cores are the cores its
//! partitions' vCPUs are pinned to. Capabilities move only through
//! endpoints, so no partition ever comes to hold a capability outside its
//! domain, and a step of one domain's state touches nothing of another's:
//! the kernel runs each domain from a [`KernelState`] booted with
//! [`KernelState::boot_domain`], under its own lock. Shared memory and
//! devices without interrupts are only mappings, so they join nothing. The
//! kernel's log is the one thing every domain writes: the glue appends to
//! the log in the reader's domain (see `docs/ARCHITECTURE.md`).

use hv_image::{MAX_ENDPOINTS, MAX_IRQS, MAX_NOTIFICATIONS, MAX_PARTITIONS, MAX_REPLIES, Object};

use super::KernelState;
use super::seed::{Seed, SeedError, pinning, validate};
use crate::MAX_CPUS;
use crate::cap::PartitionId;

// The union-find's nodes: partitions, cores, then the objects.
const CORES: usize = MAX_PARTITIONS;
const ENDPOINTS: usize = CORES + MAX_CPUS;
const NOTIFICATIONS: usize = ENDPOINTS + MAX_ENDPOINTS;
const IRQS: usize = NOTIFICATIONS + MAX_NOTIFICATIONS;
const REPLIES: usize = IRQS + MAX_IRQS;
const NODES: usize = REPLIES + MAX_REPLIES;

/// A system's lock domains: how many, and each core's and partition's.
///
/// # Invariants
/// Domains are numbered from 0 in the order of their lowest core; every
/// core below `cores` and every partition below `partitions` has one below
/// `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Domains {
    count: usize,
    cores: usize,
    partitions: usize,
    of_core: [u8; MAX_CPUS],
    of_partition: [u8; MAX_PARTITIONS],
}

/// Union-find over [`NODES`] nodes, with path halving.
struct Sets([u16; NODES]);

impl Sets {
    fn new() -> Self {
        let mut parent = [0u16; NODES];
        for (i, p) in parent.iter_mut().enumerate() {
            *p = i as u16;
        }
        Self(parent)
    }

    fn root(&mut self, mut node: usize) -> usize {
        while let Some(&parent) = self.0.get(node) {
            let parent = usize::from(parent);
            if parent == node {
                break;
            }
            let grandparent = self.0.get(parent).copied().unwrap_or(parent as u16);
            if let Some(slot) = self.0.get_mut(node) {
                *slot = grandparent;
            }
            node = usize::from(grandparent);
        }
        node
    }

    fn join(&mut self, a: usize, b: usize) {
        let (a, b) = (self.root(a), self.root(b));
        // The lower node becomes the root: deterministic, whatever the order.
        let (low, high) = if a < b { (a, b) } else { (b, a) };
        if let Some(slot) = self.0.get_mut(high) {
            *slot = low as u16;
        }
    }
}

impl Domains {
    /// The domains of `seed`, which must be one [`KernelState::boot`]
    /// accepts.
    ///
    /// # Errors
    /// The seed's first problem, as [`KernelState::boot`] reports it.
    pub fn of(seed: &Seed<'_>) -> Result<Self, SeedError> {
        validate(seed)?;
        let mut sets = Sets::new();
        pinning(seed, |partition, _, core| {
            sets.join(partition, CORES + usize::from(core));
        });
        for (p, partition) in seed.partitions.iter().enumerate() {
            if let Some(e) = partition.exits {
                sets.join(p, ENDPOINTS + e.index());
            }
            for cap in partition.capabilities.iter().flatten() {
                let object = match cap.object {
                    Object::Endpoint(e) => ENDPOINTS + usize::from(e),
                    Object::Notification(n) => NOTIFICATIONS + usize::from(n),
                    Object::Irq(i) => IRQS + usize::from(i),
                    Object::Reply(r) => REPLIES + usize::from(r),
                    Object::Partition(q) => usize::from(q),
                    Object::Vcpu { partition, .. } => usize::from(partition),
                    // A device's interrupts are acknowledged through it.
                    Object::Device(d) => {
                        for (i, irq) in seed.irqs.iter().enumerate() {
                            if irq.device == Some(d) {
                                sets.join(p, IRQS + i);
                            }
                        }
                        continue;
                    }
                    Object::Memory(_) | Object::KernelLog => continue,
                };
                sets.join(p, object);
            }
        }
        for (e, endpoint) in seed.endpoints.iter().enumerate() {
            if let Some(server) = endpoint.server {
                sets.join(server.index(), ENDPOINTS + e);
            }
        }
        for (i, irq) in seed.irqs.iter().enumerate() {
            sets.join(IRQS + i, NOTIFICATIONS + irq.notification.index());
        }
        // A fault of the partition signals its controller's notification.
        for signal in seed.fault_signals {
            sets.join(signal.partition.index(), signal.controller.index());
            sets.join(
                signal.partition.index(),
                NOTIFICATIONS + signal.notification.index(),
            );
        }
        let mut domains = Self {
            count: 0,
            cores: seed.cores,
            partitions: seed.partitions.len(),
            of_core: [0; MAX_CPUS],
            of_partition: [0; MAX_PARTITIONS],
        };
        // Number the domains in the order of their lowest core.
        let mut roots = [usize::MAX; MAX_CPUS];
        for core in 0..seed.cores.min(MAX_CPUS) {
            let root = sets.root(CORES + core);
            let known = roots.iter().take(domains.count).position(|&r| r == root);
            let number = known.unwrap_or_else(|| {
                if let Some(slot) = roots.get_mut(domains.count) {
                    *slot = root;
                }
                domains.count += 1;
                domains.count - 1
            });
            if let Some(slot) = domains.of_core.get_mut(core) {
                *slot = number as u8;
            }
        }
        // Every partition has a vCPU on some core, so its root is a core's.
        for p in 0..seed.partitions.len().min(MAX_PARTITIONS) {
            let root = sets.root(p);
            let number = roots
                .iter()
                .take(domains.count)
                .position(|&r| r == root)
                .unwrap_or(0);
            if let Some(slot) = domains.of_partition.get_mut(p) {
                *slot = number as u8;
            }
        }
        Ok(domains)
    }

    /// How many domains there are (at least one).
    #[must_use]
    pub const fn count(&self) -> usize {
        self.count
    }

    /// The domain of `core`, if the system runs on it.
    #[must_use]
    pub fn of_core(&self, core: usize) -> Option<usize> {
        (core < self.cores)
            .then(|| self.of_core.get(core).map(|&d| usize::from(d)))
            .flatten()
    }

    /// The domain of `partition`, if the system has it.
    #[must_use]
    pub fn of_partition(&self, partition: PartitionId) -> Option<usize> {
        (partition.index() < self.partitions)
            .then(|| {
                self.of_partition
                    .get(partition.index())
                    .map(|&d| usize::from(d))
            })
            .flatten()
    }

    /// The cores of `domain` (bit n: core n).
    #[must_use]
    pub fn cores(&self, domain: usize) -> u64 {
        (0..self.cores)
            .filter(|&c| self.of_core(c) == Some(domain))
            .fold(0, |mask, c| mask | 1 << c)
    }

    /// The partitions of `domain` (bit n: partition n).
    #[must_use]
    pub fn partitions(&self, domain: usize) -> u64 {
        (0..self.partitions)
            .filter(|&p| self.of_partition.get(p).map(|&d| usize::from(d)) == Some(domain))
            .fold(0, |mask, p| mask | 1 << p)
    }
}

impl KernelState {
    /// Boots domain `domain` of `seed` (see [`Domains`]): the whole system
    /// as [`KernelState::boot`] would, but with only that domain's
    /// partitions: the others are stopped, hold no capabilities and have no
    /// vCPU in any queue, so no step of this state runs or touches them.
    /// IDs stay the system's, so a vCPU, partition or object has one number
    /// in every domain.
    ///
    /// # Errors
    /// As [`KernelState::boot`]; a domain that `domains` does not have is
    /// refused as [`SeedError::Cores`] of the domain count.
    pub fn boot_domain(
        &mut self,
        seed: &Seed<'_>,
        domains: &Domains,
        domain: usize,
    ) -> Result<(), SeedError> {
        if domain >= domains.count() {
            return Err(SeedError::Cores(domains.count()));
        }
        self.boot_only(seed, |p| {
            domains.of_partition(PartitionId(p as u8)) == Some(domain)
        })
    }
}
