// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Capabilities: the kernel objects a partition may name, and with what rights.
//!
//! A capability ([`hv_image::Capability`], the compiled manifest's word and
//! the kernel's alike) is an [`hv_image::Object`] (an endpoint, a
//! notification, a memory region, a device, an interrupt, a reply object, a
//! partition or a virtual machine's vCPU), the rights held over it and a
//! badge. Each partition has a table of [`MAX_CAPS`] slots; a hypercall names
//! a capability by its slot number in the caller's table, so a partition can
//! only ever use what is in its own table.
//!
//! This module holds the small, `Copy` object IDs and the rule of derivation
//! ([`may_derive`]); [`CapSpace`] (in `cap/space.rs`) holds every partition's
//! table together with the derivation tree that makes revocation complete.
//!
//! A capability names objects by their number in the system (a vCPU by its
//! virtual machine and its index there), as the manifest does, so that a
//! manifest's capability is the kernel's without translation. The fixed
//! capacities of the kernel's tables are the manifest's limits
//! (`hv_image::MAX_PARTITIONS` and friends).
//!
//! Object IDs are plain indices into tables that [`crate::state::KernelState`]
//! sizes at boot from its [`crate::state::Seed`]; [`EndpointId::of`] and its
//! kind turn an object's number into one. Their fields are public so
//! the kernel glue and tests can name objects; the kernel never trusts one it
//! did not validate (every table access is a checked `get`).

use hv_image::{
    Capability, MAX_CAPS, MAX_ENDPOINTS, MAX_IRQS, MAX_NOTIFICATIONS, MAX_PARTITIONS, MAX_REPLIES,
};

mod space;

pub use space::{CapSpace, SlotRef};

// The kernel's tables are as large as the compiled manifest's limits
// (`hv_image`), written there once. A slot's occupancy is one bit of a `u64`
// per partition (see `CapSpace`), and every table index must fit the `u8`
// inside the ID newtypes.
const _: () = assert!(MAX_CAPS == 64);
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

            /// The object an [`hv_image::Object`] numbers `n`, if the kernel's IDs
            /// reach it (every object of a checked seed does).
            #[must_use]
            pub const fn of(n: u16) -> Option<Self> {
                if n <= u8::MAX as u16 {
                    Some(Self(n as u8))
                } else {
                    None
                }
            }

            /// Its number in an [`hv_image::Object`].
            #[must_use]
            pub const fn number(self) -> u16 {
                self.0 as u16
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

/// Whether `child` could have been derived from `parent`: the same object,
/// no right `parent` lacks, and the same badge unless `parent` has none (a
/// badge is set once, as seL4 mints, and then never changes).
#[must_use]
pub fn may_derive(parent: Capability, child: Capability) -> bool {
    parent.object == child.object
        && parent.rights.contains(child.rights)
        && (parent.badge == child.badge || parent.badge.0 == 0)
}

#[cfg(test)]
mod tests;
