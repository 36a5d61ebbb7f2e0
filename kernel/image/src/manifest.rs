// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The compiled manifest: what the kernel builds the system from.
//!
//! A [`BootManifest`] is plain data with fixed capacities. Objects are
//! numbered: endpoints `0..endpoint_count`, notifications
//! `0..notification_count`, and shared regions, devices, interrupts and reply
//! objects by their index in their tables. Capabilities and mappings name objects by those
//! numbers, and a capability's slot is its index in its partition's table.
//! Which numbers are consistent is [`BootManifest::validate`]'s business
//! (`validate.rs`); how the blob travels is `package.rs`'s.

use heapless::Vec;
use hv_abi::hypercall::{Badge, Rights};
use serde::{Deserialize, Serialize};

use crate::schedule::{BudgetSpec, ScheduleSpec};

/// The longest name, in bytes.
pub const NAME_LENGTH: usize = 24;
/// A name: a system, platform, partition, shared region or device. Lowercase
/// letters, digits and `-`, starting with a letter ([`crate::is_valid_name`]).
pub type Name = heapless::String<NAME_LENGTH>;

/// Partitions in a system.
pub const MAX_PARTITIONS: usize = 16;
/// Capabilities in one partition's table (slots `0..MAX_CAPS`).
pub const MAX_CAPS: usize = 64;
/// Stage-2 mappings of one partition besides its RAM.
pub const MAX_MAPPINGS: usize = 16;
/// Endpoints in a system.
pub const MAX_ENDPOINTS: usize = 64;
/// Notifications in a system.
pub const MAX_NOTIFICATIONS: usize = 64;
/// Programs in a boot package.
pub const MAX_PROGRAMS: usize = 16;
/// Interrupts bound to notifications in a system.
pub const MAX_IRQS: usize = 32;
/// Shared memory regions in a system.
pub const MAX_SHARED_REGIONS: usize = 32;
/// Devices owned by partitions in a system.
pub const MAX_DEVICES: usize = 32;
/// vCPUs of one partition.
pub const MAX_VCPUS: u8 = 8;
/// vCPUs of a whole system (the size of the kernel's vCPU tables).
pub const MAX_SYSTEM_VCPUS: usize = 32;
/// Reply objects in a system.
pub const MAX_REPLIES: usize = 64;
/// Files (guest kernels, initramfs images) in a boot package.
pub const MAX_FILES: usize = 8;
/// Fault signals in a system ([`FaultSignal`]): one per partition a health
/// monitor with a fault notification controls.
pub const MAX_FAULT_SIGNALS: usize = 32;

/// The translation granule: every size and address in a manifest is a
/// multiple of it.
pub const PAGE_SIZE: u64 = 4096;
/// Bits of a partition's intermediate physical address space: 39 (512 GiB),
/// one level-1 stage-2 table with a 4 KiB granule, which every Armv8-A core
/// supports. The kernel's stage-2 tables (`hv_core::pagetable`) translate
/// exactly this.
pub const IPA_BITS: u32 = 39;
/// The first IPA past a partition's address space.
pub const IPA_LIMIT: u64 = 1 << IPA_BITS;
/// Where the manifest compiler puts every partition's RAM in its address
/// space. The kernel takes `ram_ipa` from the manifest; services link for this
/// address. It is where a guest machine's RAM is
/// ([`hv_abi::vm::GUEST_RAM_BASE`]), so a virtual machine's RAM is where its
/// kernel looks.
pub const RAM_IPA: u64 = hv_abi::vm::GUEST_RAM_BASE;

/// The compiled manifest of a whole system.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootManifest {
    /// The system's name.
    pub system: Name,
    /// The platform it was compiled for (`platforms/<name>`).
    pub platform: Name,
    /// Every partition; a partition's number is its index.
    pub partitions: Vec<PartitionSpec, MAX_PARTITIONS>,
    /// Endpoints to create, numbered `0..endpoint_count`.
    pub endpoint_count: u16,
    /// Notifications to create, numbered `0..notification_count`.
    pub notification_count: u16,
    /// Memory shared between partitions; the kernel allocates each at boot.
    pub shared_regions: Vec<SharedRegion, MAX_SHARED_REGIONS>,
    /// Devices given to partitions (the platform's others stay unmapped).
    pub devices: Vec<DeviceSpec, MAX_DEVICES>,
    /// Interrupts delivered to partitions as notification bits.
    pub irqs: Vec<IrqSpec, MAX_IRQS>,
    /// Interrupts of devices that virtual machines own, passed straight to
    /// the guest as the same virtual interrupt.
    pub passthrough: Vec<PassthroughIrq, MAX_IRQS>,
    /// The partition that reads the kernel's log, if any: the kernel then
    /// writes its messages there instead of to the UART once the system
    /// runs, and sets `badge` on `notification` when it does.
    pub kernel_log: Option<KernelLogSpec>,
    /// Reply objects to create: entry `n` is reply object `n`, and says which
    /// partition owns it (only that partition may hold capabilities to it).
    pub replies: Vec<u16, MAX_REPLIES>,
    /// The files the boot package carries besides programs (guest kernels
    /// and initramfs images): entry `n` is the package's file `n`. The
    /// kernel never reads them; it maps them, read-only, into the monitors
    /// that load them ([`MappingKind::File`]).
    pub files: Vec<FileSpec, MAX_FILES>,
    /// Scrub on every switch between partitions (`[system] scrub =
    /// "on-switch"`): besides the branch-predictor maintenance the core
    /// needs anyway, every switch clears the predictors and branch history
    /// whether the core needs it or not, cleans and invalidates the data
    /// caches by set/way, and invalidates the instruction cache and TLBs
    /// (`hv_core::speculation`).
    pub scrub_on_switch: bool,
    /// Who the kernel tells when a partition faults: for each partition a
    /// health monitor controls and watches through a notification (the
    /// manifest's `fault-notification`), the bits the kernel sets there.
    pub fault_signals: Vec<FaultSignal, MAX_FAULT_SIGNALS>,
    /// The cyclic schedule (`[schedule]`), if the system has one: each
    /// core's windows in a major frame. Without one, each core runs its
    /// highest-priority ready vCPU, as within a window.
    pub schedule: Option<ScheduleSpec>,
    /// Budgets of vCPUs for priority scheduling: at most one per vCPU.
    pub budgets: Vec<BudgetSpec, MAX_SYSTEM_VCPUS>,
}

/// A partition's faults, signalled to a partition that controls it: when
/// `partition` stops or restarts on a fault (or its restart is abandoned, or
/// another controller stops or restarts it), the kernel sets `badge` on
/// `notification`, which `controller` waits on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FaultSignal {
    /// The partition watched.
    pub partition: u16,
    /// The partition told: it holds a [`Object::Partition`] capability over
    /// `partition` and waits on `notification` (a READ capability).
    pub controller: u16,
    /// The notification the kernel signals.
    pub notification: u16,
    /// The bits it sets there: non-zero, and shared with nothing else that
    /// sets bits on that notification.
    #[serde(with = "badge_serde")]
    pub badge: Badge,
}

/// A file the boot package carries for a monitor to read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSpec {
    /// What it is, e.g. `linux-kernel` (a [`Name`]).
    pub name: Name,
    /// Its exact length in bytes (not zero); the package pads it to a page.
    pub size: u64,
}

/// Who reads the kernel's log, and how the kernel tells it there is more.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KernelLogSpec {
    /// The reading partition; it holds an [`Object::KernelLog`] capability.
    pub partition: u16,
    /// The notification the kernel signals; the partition waits on it.
    pub notification: u16,
    /// The bits the kernel sets there: non-zero.
    #[serde(with = "badge_serde")]
    pub badge: Badge,
}

impl BootManifest {
    /// A system with no partitions: the kernel alone.
    #[must_use]
    pub fn empty(system: Name, platform: Name) -> Self {
        Self {
            system,
            platform,
            partitions: Vec::new(),
            endpoint_count: 0,
            notification_count: 0,
            shared_regions: Vec::new(),
            devices: Vec::new(),
            irqs: Vec::new(),
            passthrough: Vec::new(),
            kernel_log: None,
            replies: Vec::new(),
            files: Vec::new(),
            scrub_on_switch: false,
            fault_signals: Vec::new(),
            schedule: None,
            budgets: Vec::new(),
        }
    }
}

/// One partition: an address space of its own (stage 2), vCPUs and a
/// capability table. A service runs a program at EL0; a virtual machine runs
/// a guest kernel at EL1 that its monitor loads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionSpec {
    /// Its name, unique in the system.
    pub name: Name,
    /// What runs in it.
    pub kind: PartitionKind,
    /// Bytes of RAM, a non-zero multiple of [`PAGE_SIZE`].
    pub memory_size: u64,
    /// Where that RAM is in physical memory, if the manifest fixes it;
    /// otherwise the kernel allocates it from free memory at boot.
    pub memory_base: Option<u64>,
    /// Where that RAM appears in the partition's address space
    /// ([`RAM_IPA`] for everything the compiler writes).
    pub ram_ipa: u64,
    /// vCPUs, `1..=MAX_VCPUS`.
    pub vcpus: u8,
    /// The cores its vCPUs may run on: bit n is core n. Never zero.
    pub cores: u8,
    /// Scheduling priority: higher runs first; equal priorities share in turn.
    pub priority: u8,
    /// What the kernel does when the partition faults.
    pub fault: FaultPolicy,
    /// Stage-2 mappings besides RAM: devices and shared memory.
    pub mappings: Vec<Mapping, MAX_MAPPINGS>,
    /// The capability table: slot n is `caps[n]`.
    pub caps: Vec<Capability, MAX_CAPS>,
}

impl PartitionSpec {
    /// Whether a device is mapped into it ([`MappingKind::Device`]): its
    /// accesses can then raise SErrors, so the kernel synchronises them on
    /// every exit from it, to blame it and no one else for one.
    #[must_use]
    pub fn owns_devices(&self) -> bool {
        self.mappings
            .iter()
            .any(|m| matches!(m.kind, MappingKind::Device { .. }))
    }
}

/// What runs in a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PartitionKind {
    /// A service: a program (an index into the boot package's program
    /// table) that the kernel loads and starts at EL0.
    Service {
        /// The program.
        program: u8,
    },
    /// A virtual machine: its vCPUs run at EL1 and start off; its monitor
    /// loads it and starts them.
    Vm(VmSpec),
}

/// What the kernel needs to know about a virtual machine partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VmSpec {
    /// The partition that monitors it: a service, which maps its RAM
    /// ([`MappingKind::GuestRam`]), holds a [`Object::Vcpu`] capability for
    /// each of its vCPUs and serves `exit_endpoint`.
    pub monitor: u16,
    /// The endpoint the kernel sends the guest's exits to. Only the
    /// monitor holds a capability to it (READ): no partition sends on it.
    pub exit_endpoint: u16,
}

impl PartitionSpec {
    /// Its program, if it is a service.
    #[must_use]
    pub const fn program(&self) -> Option<u8> {
        match self.kind {
            PartitionKind::Service { program } => Some(program),
            PartitionKind::Vm(_) => None,
        }
    }

    /// What makes it a virtual machine, if it is one.
    #[must_use]
    pub const fn vm(&self) -> Option<&VmSpec> {
        match &self.kind {
            PartitionKind::Service { .. } => None,
            PartitionKind::Vm(vm) => Some(vm),
        }
    }
}

/// What happens to a partition that faults: the manifest's word, and the
/// kernel's (`hv_core::state`), which carries it out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FaultPolicy {
    /// It stops for good; the others carry on, and its IPC partners get
    /// `PeerGone`.
    Stop,
    /// It starts again from its program's entry with fresh RAM: its
    /// capability table returns to its seed, its IPC partners get
    /// `PeerGone`, and the kernel reloads its memory and starts it again.
    Restart,
}

/// One stage-2 mapping besides a partition's RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Mapping {
    /// What is mapped.
    pub kind: MappingKind,
    /// Where it appears in the partition's address space; page-aligned.
    pub ipa: u64,
    /// Bytes mapped, a non-zero multiple of [`PAGE_SIZE`].
    pub size: u64,
    /// Access allowed: a non-empty subset of read, write and (shared memory
    /// only) execute.
    #[serde(with = "rights_serde")]
    pub rights: Rights,
}

/// The physical memory behind a [`Mapping`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MappingKind {
    /// The whole register block of `devices[device]`, which the partition must
    /// own; mapped as device memory.
    Device {
        /// Index into [`BootManifest::devices`].
        device: u16,
    },
    /// The whole of `shared_regions[region]`; the partition must hold a
    /// memory capability for it with at least the mapping's rights.
    Shared {
        /// Index into [`BootManifest::shared_regions`].
        region: u16,
    },
    /// The whole RAM of virtual machine `partition`, which this partition
    /// monitors; read and write.
    GuestRam {
        /// The virtual machine partition.
        partition: u16,
    },
    /// The boot package's file `file`, read-only; the mapping's size is the
    /// file's, rounded up to a page (the rest reads as zero).
    File {
        /// Index into [`BootManifest::files`].
        file: u16,
    },
}

/// A capability: an object, the rights held over it and a badge. One in a
/// partition's table in the manifest, and in the kernel's capability tables
/// alike (`hv_core::cap`), which copy the manifest's at boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Capability {
    /// What it names.
    pub object: Object,
    /// What the holder may do with it; only rights meaningful for the
    /// object.
    #[serde(with = "rights_serde")]
    pub rights: Rights,
    /// Delivered to the receiver with every message sent through it (an
    /// endpoint), or ORed into the word by `signal` (a notification: the
    /// bits it sets).
    #[serde(with = "badge_serde")]
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
}

/// The object a capability names, by number: in the manifest, and in the
/// kernel's capability tables alike (`hv_core::cap`), which turn a number
/// into an index of their own tables only where they use it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Object {
    /// Endpoint `n` of `0..endpoint_count`: a synchronous endpoint. WRITE
    /// to send or call, READ to receive, GRANT to move capabilities through
    /// it.
    Endpoint(u16),
    /// Notification `n` of `0..notification_count` (a word of signal bits):
    /// WRITE to signal (ORing in the capability's badge), READ to wait or
    /// poll.
    Notification(u16),
    /// Shared region `n`. The kernel's stage-2 tables, not its capability
    /// tables, give it meaning.
    Memory(u16),
    /// Device `n` (its registers and the acknowledgement of its
    /// interrupts): WRITE lets the holder acknowledge the device's
    /// interrupts.
    Device(u16),
    /// Interrupt `n` of [`BootManifest::irqs`] (an interrupt and the
    /// notification it signals): WRITE lets the holder acknowledge it.
    Irq(u16),
    /// Partition `n`: READ lets the holder see its status
    /// (`PartitionStatus`), CONTROL stop or restart it (`PartitionStop`,
    /// `PartitionRestart`).
    Partition(u16),
    /// The kernel's log (held by [`BootManifest::kernel_log`]'s
    /// partition): READ lets the holder take its messages (`LogRead`).
    KernelLog,
    /// Reply object `n` of [`BootManifest::replies`] (held by its owner): a
    /// place to keep one caller waiting for its reply. WRITE lets the holder
    /// keep the caller it owes a reply in it (`SaveReply`) and answer that
    /// caller later through it (`ReplySaved`), so one server can have several
    /// calls in hand.
    Reply(u16),
    /// vCPU `vcpu` of virtual machine `partition` (held by its monitor):
    /// READ lets the holder see its state and read its registers
    /// (`VcpuStatus`, `VcpuRead`), WRITE write them and make interrupts
    /// pending (`VcpuWrite`, `VcpuInject`), CONTROL start and stop it
    /// (`VcpuStart`, `VcpuStop`).
    Vcpu {
        /// The virtual machine partition.
        partition: u16,
        /// The vCPU's index in it.
        vcpu: u8,
    },
}

/// Memory shared between partitions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedRegion {
    /// The channel's name.
    pub name: Name,
    /// Bytes, a non-zero multiple of [`PAGE_SIZE`]; the kernel allocates it.
    pub size: u64,
}

/// A device given to one partition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceSpec {
    /// Its name in the platform description.
    pub name: Name,
    /// Its register block's physical address, page-aligned.
    pub pa: u64,
    /// Its register block's size, a non-zero multiple of [`PAGE_SIZE`].
    pub size: u64,
    /// The partition that owns it.
    pub owner: u16,
}

/// An interrupt delivered to a partition: when it fires, the kernel masks it
/// and sets `badge` on the notification; the owner acknowledges it with
/// `irq_ack` on its device capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IrqSpec {
    /// The GIC interrupt ID: a shared peripheral interrupt, `32..=1019`.
    pub intid: u32,
    /// The device it belongs to; that device's owner receives it.
    pub device: u16,
    /// The notification it sets bits on.
    pub notification: u16,
    /// The bits it sets: non-zero, and disjoint from those of every other
    /// interrupt on the same notification.
    #[serde(with = "badge_serde")]
    pub badge: Badge,
}

/// An interrupt of a device a virtual machine owns: when it fires, the
/// kernel makes the same INTID pending for the guest's first vCPU, linked
/// to the physical interrupt, which stays active until the guest completes
/// the virtual one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PassthroughIrq {
    /// The GIC interrupt ID: a shared peripheral interrupt, `32..256` (what
    /// a guest's distributor offers).
    pub intid: u32,
    /// The device it belongs to; a virtual machine owns it.
    pub device: u16,
}

/// `Rights` is defined in hv-abi, which has no dependencies; it travels as
/// its `u32`.
mod rights_serde {
    use hv_abi::hypercall::Rights;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(rights: &Rights, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(rights.0)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Rights, D::Error> {
        u32::deserialize(d).map(Rights)
    }
}

/// `Badge` is defined in hv-abi; it travels as its `u64`.
mod badge_serde {
    use hv_abi::hypercall::Badge;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(badge: &Badge, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(badge.0)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Badge, D::Error> {
        u64::deserialize(d).map(Badge)
    }
}
