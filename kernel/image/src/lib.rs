// SPDX-License-Identifier: Apache-2.0 OR MIT
//! hv-image: the compiled manifest and the boot package that carries it.
//!
//! The manifest compiler (`tools/manifest`) turns a system's TOML into a
//! [`BootManifest`], encodes it with postcard and packs it with every
//! partition's program into a boot package ([`package`]) that follows the
//! kernel in the image, with the files (guest kernels, initramfs) that
//! virtual machines' monitors load. At boot the kernel parses the package, decodes the
//! manifest and validates it again ([`BootManifest::validate`]): the kernel
//! trusts only what survives that check, never the tool that wrote it.
//!
//! Design principles:
//! - **Plain data, fixed capacity.** Every table is a `heapless` vector with a
//!   limit written here once ([`MAX_PARTITIONS`] and friends), so decoding
//!   needs no allocator and a blob can never ask for more than the kernel has:
//!   the kernel's own tables (`hv-core`) are sized by the same constants, and
//!   speak the same [`Capability`], [`Object`] and [`FaultPolicy`].
//! - **No panics on any input.** Decoding and validation use `get`, checked
//!   arithmetic and `Result`s; errors are small `Copy` values that say what is
//!   wrong and where.
//! - **One crate, both sides.** The host tool encodes with the same types the
//!   kernel decodes, so the format is written down once; and the rule of
//!   what a partition may be given ([`grant`]) is written once for both. `std` (a feature,
//!   or in tests) adds only the encoder, [`package::build`].

#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![forbid(unsafe_code)]

mod crc;
mod error;
pub mod grant;
mod manifest;
pub mod package;
mod schedule;
#[cfg(test)]
mod tests;
mod validate;

pub use crc::crc32;
pub use error::{Item, ManifestError, MappingProblem, VmProblem};
/// The fixed-capacity collections the manifest is made of, for users that
/// build one.
pub use heapless;
pub use manifest::{
    BootManifest, Capability, DeviceSpec, FaultPolicy, FaultSignal, FileSpec, IPA_BITS, IPA_LIMIT,
    IrqSpec, KernelLogSpec, MAX_CAPS, MAX_DEVICES, MAX_ENDPOINTS, MAX_FAULT_SIGNALS, MAX_FILES,
    MAX_IRQS, MAX_MAPPINGS, MAX_NOTIFICATIONS, MAX_PARTITIONS, MAX_PROGRAMS, MAX_REPLIES,
    MAX_SHARED_REGIONS, MAX_SYSTEM_VCPUS, MAX_VCPUS, Mapping, MappingKind, NAME_LENGTH, Name,
    Object, PAGE_SIZE, PartitionKind, PartitionSpec, PassthroughIrq, RAM_IPA, SharedRegion, VmSpec,
};
pub use package::{FORMAT_VERSION, Package, PackageError};
pub use schedule::{
    BudgetProblem, BudgetSpec, MAX_CORES, MAX_FRAME_US, MAX_WINDOWS, Owners, ScheduleProblem,
    ScheduleSpec, Window,
};
pub use validate::is_valid_name;
