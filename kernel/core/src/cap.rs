// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Capabilities: the kernel objects a partition may name, and with what rights.
//!
//! A capability is an [`Object`] (an endpoint, a notification, a memory
//! region, a device, an interrupt, a reply object, a partition or a virtual
//! machine's vCPU), the
//! [`Rights`] held over it and a [`Badge`]. Each partition has a table of
//! [`MAX_SLOTS`] slots; a hypercall names a capability by its slot number in
//! the caller's table, so a partition can only ever use what is in its own
//! table.
//!
//! This module holds the small, `Copy` vocabulary (object IDs, [`Object`],
//! [`Capability`]) and the fixed capacities of the kernel's object tables;
//! [`CapSpace`] (in `cap/space.rs`) holds every partition's table together with
//! the derivation tree that makes revocation complete.
//!
//! Object IDs are plain indices into tables that [`crate::state::KernelState`]
//! sizes at boot from its [`crate::state::Seed`]. Their fields are public so
//! the kernel glue and tests can name objects; the kernel never trusts one it
//! did not validate (every table access is a checked `get`).

use hv_abi::hypercall::{Badge, Rights};

mod space;

pub use space::{CapSpace, SlotRef};

/// The most partitions a system may have.
pub const MAX_PARTITIONS: usize = 16;

/// Capability slots in each partition's table.
pub const MAX_SLOTS: usize = 64;

/// The most endpoints a system may have.
pub const MAX_ENDPOINTS: usize = 64;

/// The most notifications a system may have.
pub const MAX_NOTIFICATIONS: usize = 64;

/// The most interrupts that may be bound to notifications.
pub const MAX_IRQS: usize = 32;

/// The most reply objects a system may have.
pub const MAX_REPLIES: usize = 64;

// A slot's occupancy is one bit of a `u64` per partition (see `CapSpace`), and
// every table index must fit the `u8` inside the ID newtypes.
const _: () = assert!(MAX_SLOTS == 64);
const _: () = assert!(MAX_PARTITIONS <= 256 && MAX_ENDPOINTS <= 256);
const _: () = assert!(MAX_NOTIFICATIONS <= 256 && MAX_IRQS <= 256 && MAX_REPLIES <= 256);

macro_rules! object_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub u8);

        impl $name {
            /// The index of this object in its table.
            #[must_use]
            pub const fn index(self) -> usize {
                self.0 as usize
            }
        }
    };
}

object_id!(
    /// A partition, by its index in the seed.
    PartitionId
);
object_id!(
    /// A synchronous IPC endpoint, by its index in the seed.
    EndpointId
);
object_id!(
    /// A notification (a word of signal bits), by its index in the seed.
    NotificationId
);
object_id!(
    /// A reply object (a place to keep one caller waiting for its reply), by
    /// its index in the seed.
    ReplyId
);
object_id!(
    /// An interrupt binding (an interrupt and the notification it signals), by
    /// its index in the seed.
    IrqId
);

/// What a capability names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Object {
    /// A synchronous endpoint: WRITE to send or call, READ to receive, GRANT
    /// to move capabilities through it.
    Endpoint(EndpointId),
    /// A notification: WRITE to signal (ORing in the capability's badge),
    /// READ to wait or poll.
    Notification(NotificationId),
    /// A memory region, by the glue's region number. The kernel's stage-2
    /// bookkeeping, not this crate, gives it meaning.
    Memory(u16),
    /// A device (MMIO range plus interrupts), by the glue's device number.
    /// WRITE lets the holder acknowledge the device's interrupts.
    Device(u16),
    /// One interrupt binding; WRITE lets the holder acknowledge it.
    Irq(IrqId),
    /// A reply object: WRITE lets the holder keep the caller it owes a
    /// reply in it (`SaveReply`) and answer that caller later through it
    /// (`ReplySaved`), so one server can have several calls in hand.
    Reply(ReplyId),
    /// A partition: READ lets the holder see its status
    /// (`PartitionStatus`), CONTROL stop or restart it (`PartitionStop`,
    /// `PartitionRestart`).
    Partition(PartitionId),
    /// The kernel's log: READ lets the holder take its messages (`LogRead`).
    KernelLog,
    /// A virtual machine's vCPU, held by its monitor: READ lets the holder
    /// see its state and read its registers (`VcpuStatus`, `VcpuRead`),
    /// WRITE write them and make interrupts pending (`VcpuWrite`,
    /// `VcpuInject`), CONTROL start and stop it (`VcpuStart`, `VcpuStop`).
    Vcpu(crate::sched::VcpuId),
}

/// A capability: an object, the rights held over it and a badge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Capability {
    /// What it names.
    pub object: Object,
    /// What the holder may do with it.
    pub rights: Rights,
    /// Delivered to the receiver with every message sent through it (an
    /// endpoint), or ORed into the word by `signal` (a notification).
    pub badge: Badge,
}

impl Capability {
    /// A capability over `object` with `rights` and no badge.
    #[must_use]
    pub const fn new(object: Object, rights: Rights) -> Self {
        Self {
            object,
            rights,
            badge: Badge(0),
        }
    }

    /// This capability with `badge`.
    #[must_use]
    pub const fn with_badge(self, badge: Badge) -> Self {
        Self { badge, ..self }
    }

    /// Whether `child` could have been derived from this capability: the same
    /// object, no right this one lacks, and the same badge unless this one
    /// has none (a badge is set once, as seL4 mints, and then never changes).
    #[must_use]
    pub fn may_derive(self, child: Self) -> bool {
        self.object == child.object
            && self.rights.contains(child.rights)
            && (self.badge == child.badge || self.badge.0 == 0)
    }
}

#[cfg(test)]
mod tests;
