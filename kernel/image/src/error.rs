// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Why a compiled manifest is refused: [`ManifestError`], a small `Copy` value
//! that says what is wrong and where (by index: the kernel has no file to
//! point into), and its parts.

use core::fmt;

use crate::manifest::{MAX_ENDPOINTS, MAX_NOTIFICATIONS, MAX_VCPUS};
use crate::schedule::{BudgetProblem, ScheduleProblem};

/// The first shared peripheral interrupt (GIC INTID); lower ones are per core.
pub(crate) const SPI_FIRST: u32 = 32;
/// The last shared peripheral interrupt; 1020..1023 are special INTIDs.
pub(crate) const SPI_LAST: u32 = 1019;

/// Something that has a name in a manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Item {
    /// The system.
    System,
    /// The platform.
    Platform,
    /// Partition `n`.
    Partition(u16),
    /// Shared region `n`.
    SharedRegion(u16),
    /// Device `n`.
    Device(u16),
    /// File `n`.
    File(u16),
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::System => f.write_str("system"),
            Self::Platform => f.write_str("platform"),
            Self::Partition(n) => write!(f, "partition {n}"),
            Self::SharedRegion(n) => write!(f, "shared region {n}"),
            Self::Device(n) => write!(f, "device {n}"),
            Self::File(n) => write!(f, "file {n}"),
        }
    }
}

/// Why a compiled manifest was refused: what is wrong, and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ManifestError {
    /// The blob is not a postcard encoding of a manifest within the limits.
    Malformed,
    /// Bytes follow the encoded manifest.
    TrailingBytes,
    /// A name is empty or has a character other than `a-z`, `0-9`, `-`, or
    /// does not start with a letter.
    BadName(Item),
    /// Two items of the same kind have the same name.
    DuplicateName {
        /// The later one.
        item: Item,
        /// The index of the earlier one.
        first: u16,
    },
    /// `endpoint_count` exceeds [`MAX_ENDPOINTS`].
    TooManyEndpoints,
    /// `notification_count` exceeds [`MAX_NOTIFICATIONS`].
    TooManyNotifications,
    /// The kernel log names a partition or notification that does not exist,
    /// or no bits.
    BadKernelLog,
    /// A fault signal names a partition or notification that does not
    /// exist, sets no bits or bits something else sets on its notification,
    /// or its controller lacks the capabilities it implies (CONTROL over the
    /// partition, READ on the notification).
    BadFaultSignal {
        /// The signal's index in [`crate::BootManifest::fault_signals`].
        signal: u16,
    },
    /// A reply object's owner is not a partition.
    BadReplyOwner {
        /// The reply object.
        reply: u16,
    },
    /// A partition's program is not in the package's program table.
    MissingProgram {
        /// The partition.
        partition: u16,
    },
    /// A partition's memory size is zero or not a multiple of [`PAGE_SIZE`](crate::PAGE_SIZE).
    BadMemorySize {
        /// The partition.
        partition: u16,
    },
    /// A partition's fixed memory base is not page-aligned, or base + size
    /// overflows.
    BadMemoryBase {
        /// The partition.
        partition: u16,
    },
    /// Two partitions' fixed physical memory overlaps.
    MemoryOverlap {
        /// The later partition.
        partition: u16,
        /// The earlier one.
        other: u16,
    },
    /// A partition's RAM IPA is not page-aligned or its RAM leaves the IPA
    /// space.
    BadRamIpa {
        /// The partition.
        partition: u16,
    },
    /// A partition's vCPU count is not `1..=MAX_VCPUS`.
    BadVcpus {
        /// The partition.
        partition: u16,
    },
    /// A partition may run on no core.
    NoCores {
        /// The partition.
        partition: u16,
    },
    /// A stage-2 mapping is wrong.
    Mapping {
        /// The partition.
        partition: u16,
        /// The mapping's index.
        mapping: u16,
        /// What is wrong with it.
        problem: MappingProblem,
    },
    /// A capability names an object that does not exist.
    UnknownObject {
        /// The partition.
        partition: u16,
        /// The slot.
        slot: u16,
    },
    /// A capability's rights are empty, undefined, or not meaningful for its
    /// object.
    BadRights {
        /// The partition.
        partition: u16,
        /// The slot.
        slot: u16,
    },
    /// A device or interrupt capability is held by a partition that does not
    /// own the device.
    NotOwner {
        /// The partition.
        partition: u16,
        /// The slot.
        slot: u16,
    },
    /// A shared region's size is zero or not a multiple of [`PAGE_SIZE`](crate::PAGE_SIZE).
    BadRegionSize {
        /// The region.
        region: u16,
    },
    /// A device's range is empty, not page-aligned, or overflows.
    BadDevice {
        /// The device.
        device: u16,
    },
    /// A device's owner is not a partition.
    BadDeviceOwner {
        /// The device.
        device: u16,
    },
    /// Two devices' ranges overlap.
    DeviceOverlap {
        /// The later device.
        device: u16,
        /// The earlier one.
        other: u16,
    },
    /// An interrupt is not a shared peripheral interrupt (32 to 1019).
    BadIntid {
        /// The interrupt's index.
        irq: u16,
    },
    /// An interrupt ID is bound twice.
    DuplicateIntid {
        /// The later binding.
        irq: u16,
        /// The earlier one.
        first: u16,
    },
    /// An interrupt names a device or notification that does not exist, or
    /// a device a virtual machine owns (whose interrupts are passed through).
    UnknownIrqObject {
        /// The interrupt's index.
        irq: u16,
    },
    /// A passed-through interrupt is not an SPI a guest can be given (or is
    /// the emulated UART's), is
    /// bound twice (here or in [`crate::BootManifest::irqs`]), or belongs to
    /// a device no virtual machine owns.
    BadPassthrough {
        /// Its index in [`crate::BootManifest::passthrough`].
        irq: u16,
    },
    /// An interrupt's badge is zero or shares bits with another interrupt's on
    /// the same notification (`other`).
    BadIrqBadge {
        /// The interrupt's index.
        irq: u16,
        /// The earlier interrupt it clashes with, if that is the problem.
        other: Option<u16>,
    },
    /// An interrupt's badge shares bits with what a capability to its
    /// notification signals (`slot` of `partition`), so that capability
    /// could pass for the interrupt.
    IrqBadgeSignalled {
        /// The interrupt's index.
        irq: u16,
        /// The partition holding the capability.
        partition: u16,
        /// The capability's slot.
        slot: u16,
    },
    /// An interrupt's badge shares bits with the kernel log's on the same
    /// notification.
    IrqBadgeKernelLog {
        /// The interrupt's index.
        irq: u16,
    },
    /// A file is empty.
    BadFileSize {
        /// The file.
        file: u16,
    },
    /// A file is not in the package, or its length differs from the
    /// manifest's.
    MissingFile {
        /// The file.
        file: u16,
    },
    /// A virtual machine partition is wrong.
    Vm {
        /// The partition.
        partition: u16,
        /// What is wrong with it.
        problem: VmProblem,
    },
    /// The schedule is wrong.
    Schedule(ScheduleProblem),
    /// A budget is wrong.
    Budget {
        /// Its index in [`crate::BootManifest::budgets`].
        budget: u16,
        /// What is wrong with it.
        problem: BudgetProblem,
    },
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Malformed => {
                f.write_str("not a compiled manifest of this format (or over the kernel's limits)")
            }
            Self::TrailingBytes => f.write_str("bytes follow the compiled manifest"),
            Self::BadName(item) => write!(
                f,
                "{item}: the name must be a lowercase letter followed by letters, digits or `-`"
            ),
            Self::DuplicateName { item, first } => {
                write!(f, "{item}: has the same name as number {first}")
            }
            Self::TooManyEndpoints => write!(f, "more than {MAX_ENDPOINTS} endpoints"),
            Self::TooManyNotifications => {
                write!(f, "more than {MAX_NOTIFICATIONS} notifications")
            }
            Self::BadKernelLog => f.write_str(
                "the kernel log's reader or notification does not exist, or it sets no bits",
            ),
            Self::BadFaultSignal { signal } => write!(
                f,
                "fault signal {signal}: its partition, controller or notification does not \
                 exist, the controller does not control the partition or wait on the \
                 notification, or its bits are zero or another's"
            ),
            Self::BadReplyOwner { reply } => {
                write!(f, "reply object {reply} belongs to no partition")
            }
            Self::MissingProgram { partition } => write!(
                f,
                "partition {partition}: its program is not in the package"
            ),
            Self::BadMemorySize { partition } => write!(
                f,
                "partition {partition}: memory size is zero or not a multiple of 4 KiB"
            ),
            Self::BadMemoryBase { partition } => write!(
                f,
                "partition {partition}: fixed memory base is not 4 KiB-aligned or base + size overflows"
            ),
            Self::MemoryOverlap { partition, other } => write!(
                f,
                "partition {partition}: fixed memory overlaps partition {other}'s"
            ),
            Self::BadRamIpa { partition } => write!(
                f,
                "partition {partition}: RAM is not 4 KiB-aligned in, or does not fit, the 40-bit IPA space"
            ),
            Self::BadVcpus { partition } => write!(
                f,
                "partition {partition}: vCPU count is not 1 to {MAX_VCPUS}"
            ),
            Self::NoCores { partition } => {
                write!(f, "partition {partition}: may run on no core")
            }
            Self::Mapping {
                partition,
                mapping,
                problem,
            } => write!(f, "partition {partition} mapping {mapping}: {problem}"),
            Self::UnknownObject { partition, slot } => write!(
                f,
                "partition {partition} slot {slot}: the capability names an object that does not exist"
            ),
            Self::BadRights { partition, slot } => write!(
                f,
                "partition {partition} slot {slot}: rights are empty or not meaningful for the object"
            ),
            Self::NotOwner { partition, slot } => write!(
                f,
                "partition {partition} slot {slot}: the object belongs to another partition (a device's owner, a reply object's, a vCPU's monitor)"
            ),
            Self::BadRegionSize { region } => write!(
                f,
                "shared region {region}: size is zero or not a multiple of 4 KiB"
            ),
            Self::BadDevice { device } => write!(
                f,
                "device {device}: range is empty, not 4 KiB-aligned, or overflows"
            ),
            Self::BadDeviceOwner { device } => {
                write!(f, "device {device}: the owner is not a partition")
            }
            Self::DeviceOverlap { device, other } => {
                write!(f, "device {device}: overlaps device {other}")
            }
            Self::BadIntid { irq } => write!(
                f,
                "interrupt {irq}: not a shared peripheral interrupt ({SPI_FIRST} to {SPI_LAST})"
            ),
            Self::DuplicateIntid { irq, first } => {
                write!(f, "interrupt {irq}: the same INTID as interrupt {first}")
            }
            Self::UnknownIrqObject { irq } => write!(
                f,
                "interrupt {irq}: names a device or notification that does not exist, or a \
                 virtual machine's device"
            ),
            Self::BadPassthrough { irq } => write!(
                f,
                "passed-through interrupt {irq}: not an SPI below 256, the emulated UART's (33), \
                 bound twice, or of a device no virtual machine owns"
            ),
            Self::BadIrqBadge { irq, other: None } => {
                write!(f, "interrupt {irq}: the badge is zero")
            }
            Self::BadIrqBadge {
                irq,
                other: Some(other),
            } => write!(
                f,
                "interrupt {irq}: badge shares bits with interrupt {other} on the same notification"
            ),
            Self::IrqBadgeSignalled {
                irq,
                partition,
                slot,
            } => write!(
                f,
                "interrupt {irq}: badge shares bits with what partition {partition}'s capability \
                 {slot} signals on the same notification"
            ),
            Self::IrqBadgeKernelLog { irq } => write!(
                f,
                "interrupt {irq}: badge shares bits with the kernel log's on the same notification"
            ),
            Self::BadFileSize { file } => write!(f, "file {file}: it is empty"),
            Self::MissingFile { file } => write!(
                f,
                "file {file}: not in the package, or its length differs from the manifest's"
            ),
            Self::Vm { partition, problem } => write!(f, "partition {partition}: {problem}"),
            Self::Schedule(problem) => write!(f, "schedule: {problem}"),
            Self::Budget { budget, problem } => write!(f, "budget {budget}: {problem}"),
        }
    }
}

/// What is wrong with a stage-2 mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MappingProblem {
    /// Empty, not page-aligned, or outside the IPA space (or, for a
    /// virtual machine's device, not at the device's physical address).
    Range,
    /// Overlaps the partition's RAM (`None`) or an earlier mapping.
    Overlap(Option<u16>),
    /// Names a device or shared region that does not exist.
    Unknown,
    /// Maps a device another partition owns.
    NotOwned,
    /// Its size differs from the device's or region's.
    Size,
    /// Its rights are empty or not meaningful (devices: read and write;
    /// shared memory: read, write and execute).
    Rights,
    /// Maps a shared region without a memory capability for it that carries
    /// at least the mapping's rights.
    NoCapability,
    /// Maps the RAM of a partition that is not a virtual machine this
    /// partition monitors.
    NotMonitor,
}

impl MappingProblem {
    /// This problem, located.
    pub(crate) const fn at(self, partition: u16, mapping: u16) -> ManifestError {
        ManifestError::Mapping {
            partition,
            mapping,
            problem: self,
        }
    }
}

impl fmt::Display for MappingProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Range => f.write_str("empty, not 4 KiB-aligned, or outside the 40-bit IPA space"),
            Self::Overlap(None) => f.write_str("overlaps the partition's RAM"),
            Self::Overlap(Some(other)) => write!(f, "overlaps mapping {other}"),
            Self::Unknown => f.write_str("no such device, shared region, partition or file"),
            Self::NotOwned => f.write_str("the device belongs to another partition"),
            Self::Size => f.write_str("its size differs from what it maps"),
            Self::Rights => f.write_str(
                "rights are empty or not meaningful (devices and guest RAM: read, write; memory: read, write, execute; files: read)",
            ),
            Self::NoCapability => {
                f.write_str("no memory capability for the region carries the mapping's rights")
            }
            Self::NotMonitor => f.write_str(
                "maps the RAM of a partition that is not a virtual machine it monitors",
            ),
        }
    }
}

/// What is wrong with a virtual machine partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VmProblem {
    /// Its monitor is not another partition that runs a program.
    Monitor,
    /// Another virtual machine has the same monitor.
    SharedMonitor {
        /// The other virtual machine.
        other: u16,
    },
    /// Its exit endpoint does not exist, or another virtual machine uses it.
    ExitEndpoint,
    /// Its monitor holds no capability to receive on its exit endpoint.
    ExitNotServed,
    /// A partition holds a capability that sends on its exit endpoint (only
    /// the kernel sends there).
    ExitWritable {
        /// The partition.
        holder: u16,
    },
    /// A device it owns overlaps its RAM or the devices its monitor emulates
    /// (`hv_abi::vm::GUEST_EMULATED`), where the device would be mapped.
    DeviceInLayout {
        /// The device.
        device: u16,
    },
}

impl fmt::Display for VmProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Monitor => f.write_str("its monitor is not another partition running a program"),
            Self::SharedMonitor { other } => {
                write!(f, "its monitor also monitors partition {other}")
            }
            Self::ExitEndpoint => f.write_str(
                "its exit endpoint does not exist or belongs to another virtual machine",
            ),
            Self::ExitNotServed => f.write_str("its monitor cannot receive on its exit endpoint"),
            Self::ExitWritable { holder } => write!(
                f,
                "partition {holder} may send on its exit endpoint, where only the kernel sends"
            ),
            Self::DeviceInLayout { device } => write!(
                f,
                "device {device} overlaps its RAM or the devices its monitor emulates"
            ),
        }
    }
}
