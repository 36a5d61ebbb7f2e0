// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The checked system: every name resolved to an index, every badge and bit
//! chosen, every shared region placed. Built by `check.rs` only when the
//! manifest has no errors; lowered by `lower.rs`, described by `report.rs`.

use std::path::PathBuf;

use hv_abi::hypercall::Rights;
use hv_image::FaultPolicy;

use crate::platform::Platform;

/// Where shared regions start in every partition's address space: above the
/// 3 GiB RAM window that starts at [`hv_image::RAM_IPA`].
pub(crate) const SHARED_IPA: u64 = 0x1_0000_0000;
/// Each shared region starts on a 2 MiB boundary, so the kernel may map it
/// with block descriptors.
pub(crate) const SHARED_ALIGN: u64 = 2 << 20;

/// A checked system.
#[derive(Debug)]
pub(crate) struct System {
    /// Its name.
    pub(crate) name: String,
    /// Its description, if any.
    pub(crate) description: Option<String>,
    /// The platform.
    pub(crate) platform: Platform,
    /// Program names by index, in order of first use: distinct, except that
    /// every monitor of a virtual machine and every partition with settings
    /// has an entry of its own (each is built with its own guest's layout or
    /// settings).
    pub(crate) programs: Vec<String>,
    /// Each program's crate folder, relative to the workspace root
    /// (`services/ping`, `tests/partitions/spin`), by the same index.
    pub(crate) program_folders: Vec<String>,
    /// Partitions, in file order.
    pub(crate) partitions: Vec<Partition>,
    /// Channels, in file order.
    pub(crate) channels: Vec<Channel>,
    /// Interrupts bound to notifications, in partition order.
    pub(crate) irqs: Vec<BoundIrq>,
    /// Who reads the kernel's log, if anyone.
    pub(crate) kernel_log: Option<KernelLog>,
    /// `[system] scrub = "on-switch"`: scrub caches and predictors on every
    /// switch between partitions.
    pub(crate) scrub_on_switch: bool,
    /// The cyclic schedule, if the system has one.
    pub(crate) schedule: Option<Schedule>,
}

/// A checked schedule: every core's windows fill the major frame, every
/// window is at least the platform's shortest, every partition has time on
/// each of its cores.
#[derive(Debug)]
pub(crate) struct Schedule {
    /// The major frame, in microseconds.
    pub(crate) major_frame_us: u64,
    /// The platform's shortest window, in microseconds.
    pub(crate) min_window_us: u64,
    /// Entry `n` is core `n`'s windows, in order; every core of the
    /// platform has some.
    pub(crate) cores: Vec<Vec<Window>>,
}

/// A checked window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    /// How long it lasts, in microseconds.
    pub(crate) length_us: u64,
    /// The partitions it names (indices, in the order written), or none
    /// for a background window.
    pub(crate) owners: Vec<usize>,
}

impl Window {
    /// Whether any partition on the core may run in it.
    pub(crate) fn is_background(&self) -> bool {
        self.owners.is_empty()
    }
}

/// A checked budget: each vCPU of the partition runs at most `time_us` in
/// every `period_us`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Budget {
    /// Microseconds per period.
    pub(crate) time_us: u64,
    /// The period, in microseconds.
    pub(crate) period_us: u64,
}

/// The kernel log's reader.
#[derive(Debug)]
pub(crate) struct KernelLog {
    /// The reading partition.
    pub(crate) partition: usize,
    /// The notification channel's index in [`System::channels`].
    pub(crate) channel: usize,
    /// The bit the kernel sets there.
    pub(crate) bit: u8,
}

/// A checked partition.
#[derive(Debug)]
pub(crate) struct Partition {
    /// Its name.
    pub(crate) name: String,
    /// What runs in it.
    pub(crate) kind: Kind,
    /// Bytes of RAM.
    pub(crate) memory: u64,
    /// Its fixed physical base, if any.
    pub(crate) base: Option<u64>,
    /// vCPUs.
    pub(crate) vcpus: u8,
    /// Core mask.
    pub(crate) cores: u8,
    /// Priority.
    pub(crate) priority: u8,
    /// Fault policy.
    pub(crate) fault: FaultPolicy,
    /// Platform device indices it owns, in its `devices` order.
    pub(crate) devices: Vec<usize>,
    /// The partitions it controls (indices), in its `controls` order.
    pub(crate) controls: Vec<usize>,
    /// Its `fault-notification`, if any: the notification channel's index
    /// in [`System::channels`], and the bit the kernel sets there for each
    /// partition it controls, in `controls` order.
    pub(crate) fault_notification: Option<(usize, Vec<u8>)>,
    /// How many reply objects it owns.
    pub(crate) replies: u8,
    /// Its program's settings, in file order (none for a virtual machine).
    pub(crate) settings: Vec<Setting>,
    /// Its vCPUs' budgets, entry `n` vCPU `n`'s; empty if it has none.
    pub(crate) budgets: Vec<Budget>,
}

impl Partition {
    /// Its program's index in [`System::programs`], if it is a service.
    pub(crate) const fn program(&self) -> Option<usize> {
        match &self.kind {
            Kind::Service { program } => Some(*program),
            Kind::Vm(_) => None,
        }
    }

    /// What makes it a virtual machine, if it is one.
    pub(crate) fn guest(&self) -> Option<&Guest> {
        match &self.kind {
            Kind::Service { .. } => None,
            Kind::Vm(guest) => Some(guest),
        }
    }
}

/// One of a service's `settings`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Setting {
    /// Its key, a name.
    pub(crate) key: String,
    /// Its value.
    pub(crate) value: SettingValue,
}

/// A setting's value: a simple TOML value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SettingValue {
    /// A string (sizes, durations and lists are written as strings).
    Text(String),
    /// An integer.
    Integer(i64),
    /// A boolean.
    Boolean(bool),
}

impl SettingValue {
    /// The value as the program's build gets it: a string as it is, an
    /// integer in decimal, a boolean as `true` or `false`.
    pub(crate) fn text(&self) -> String {
        match self {
            Self::Text(text) => text.clone(),
            Self::Integer(value) => value.to_string(),
            Self::Boolean(value) => value.to_string(),
        }
    }

    /// The value as the manifest writes it, for the report: strings quoted.
    pub(crate) fn shown(&self) -> String {
        match self {
            Self::Text(text) => format!("{text:?}"),
            Self::Integer(_) | Self::Boolean(_) => self.text(),
        }
    }
}

/// What runs in a partition.
#[derive(Debug)]
pub(crate) enum Kind {
    /// A service: a program at EL0.
    Service {
        /// Its index in [`System::programs`].
        program: usize,
    },
    /// A virtual machine, loaded and run by its monitor.
    Vm(Box<Guest>),
}

/// A checked virtual machine: its monitor, its files and where its monitor
/// sees them.
#[derive(Debug)]
pub(crate) struct Guest {
    /// The monitor partition.
    pub(crate) monitor: usize,
    /// Where the monitor sees the guest's RAM (a [`SHARED_ALIGN`] boundary
    /// past every shared region).
    pub(crate) window: u64,
    /// The kernel.
    pub(crate) kernel: GuestFile,
    /// The initramfs, unless `initrd = "none"`.
    pub(crate) initrd: Option<GuestFile>,
    /// The kernel's command line.
    pub(crate) bootargs: String,
}

/// A file a virtual machine boots from, which its monitor maps read-only.
#[derive(Debug)]
pub(crate) struct GuestFile {
    /// Where it comes from, as the manifest said.
    pub(crate) source: FileSource,
    /// Its absolute path.
    pub(crate) path: PathBuf,
    /// Its exact length in bytes (not zero).
    pub(crate) size: u64,
    /// Where the monitor sees it (a [`SHARED_ALIGN`] boundary).
    pub(crate) ipa: u64,
}

/// Where a guest's file comes from.
#[derive(Debug)]
pub(crate) enum FileSource {
    /// The default guest's (`"debian"`, or the key left out).
    Debian,
    /// A path as written in the manifest.
    Path(String),
    /// The guest program of this name (`"guest:<name>"`).
    Program(String),
}

/// A checked channel.
#[derive(Debug)]
pub(crate) struct Channel {
    /// Its name.
    pub(crate) name: String,
    /// What it is, with its ends resolved.
    pub(crate) kind: ChannelKind,
    /// Whether its ends' capabilities carry the derive right.
    pub(crate) derive: bool,
}

/// A channel's kind and resolved ends (partition indices).
#[derive(Debug)]
pub(crate) enum ChannelKind {
    /// Synchronous IPC.
    Endpoint {
        /// The receiving partition.
        server: usize,
        /// Calling partitions with their badges.
        clients: Vec<(usize, u64)>,
        /// Whether clients may pass capabilities.
        grant: bool,
    },
    /// Asynchronous bits.
    Notification {
        /// The waiting partition.
        waiter: usize,
        /// Signalling partitions with their bits.
        signallers: Vec<(usize, u8)>,
    },
    /// Memory shared between partitions.
    SharedMemory {
        /// Bytes.
        size: u64,
        /// Where it appears in every sharer's address space.
        ipa: u64,
        /// Sharing partitions with their rights.
        ends: Vec<(usize, Rights)>,
    },
}

/// An interrupt delivered on a notification.
#[derive(Debug)]
pub(crate) struct BoundIrq {
    /// The GIC INTID.
    pub(crate) intid: u32,
    /// The platform device it belongs to.
    pub(crate) device: usize,
    /// The notification channel's index in [`System::channels`].
    pub(crate) channel: usize,
    /// The bit it sets.
    pub(crate) bit: u8,
}
