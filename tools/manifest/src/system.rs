// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Reading a system manifest into declarations: every key and type checked,
//! every value kept with its place, nothing yet resolved.
//!
//! What can be judged from one value alone is judged here (a name's
//! spelling, a size's alignment, a priority's range); whatever needs another
//! part of the file or the platform is `check.rs`'s. A value that is wrong is
//! reported and left out, so later checks see only what was readable.
//! `[[channels]]` tables are read in `system/channel.rs`, the keys of
//! virtual machines (`kind`, `monitor`, `kernel`, `initrd`, `bootargs`) in
//! `system/vm.rs`.

mod channel;
mod schedule;
mod settings;
mod vm;

use hv_abi::hypercall::Rights;
use hv_image::{FaultPolicy, MAX_VCPUS};

use crate::diag::{At, Place, Sink};
use crate::model::Setting;
use crate::platform::{address, check_name};
use crate::read::{FieldAt, TableReader};
use crate::size::{self, Size};

pub(crate) use schedule::{BudgetDecl, BudgetsDecl, OwnersDecl, ScheduleDecl};
pub(crate) use vm::{FileChoice, FileKey, GuestDecl, KindDecl, VM_MEMORY_ALIGN, VM_MIN_MEMORY};

/// The default scheduling priority.
const DEFAULT_PRIORITY: u8 = 100;

/// The most reply objects one partition may own.
pub(crate) const MAX_PARTITION_REPLIES: u8 = 16;

/// The whole file.
#[derive(Debug, Default)]
pub(crate) struct SystemDecl {
    /// `[system] name`.
    pub(crate) name: Option<At<String>>,
    /// `[system] platform`.
    pub(crate) platform: Option<At<String>>,
    /// `[system] description`.
    pub(crate) description: Option<String>,
    /// `[partitions.*]`, in file order.
    pub(crate) partitions: Vec<PartitionDecl>,
    /// `[[channels]]`, in file order.
    pub(crate) channels: Vec<ChannelDecl>,
    /// `[system] kernel-log`.
    pub(crate) kernel_log: Option<KernelLogDecl>,
    /// `[system] scrub = "on-switch"` (the default, `"needed"`, is false).
    pub(crate) scrub_on_switch: bool,
    /// `[schedule]`, if given and readable.
    pub(crate) schedule: Option<ScheduleDecl>,
}

/// `[system] kernel-log = { partition = "...", notification = "..." }`: the
/// partition that reads the kernel's log, and the notification channel it
/// waits on, where the kernel sets a bit when it logs.
#[derive(Debug)]
pub(crate) struct KernelLogDecl {
    /// The reading partition.
    pub(crate) partition: At<String>,
    /// The notification channel.
    pub(crate) notification: At<String>,
}

/// One `[partitions.<name>]` table.
#[derive(Debug)]
pub(crate) struct PartitionDecl {
    /// The table's key, which names the partition.
    pub(crate) name: At<String>,
    /// The table (its header, or its inline braces).
    pub(crate) place: Place,
    /// `kind`; `None` if it was written wrongly.
    pub(crate) kind: Option<KindDecl>,
    /// `program`.
    pub(crate) program: Option<At<String>>,
    /// `memory`, or `memory.size`.
    pub(crate) memory: Option<At<Size>>,
    /// `memory.base`.
    pub(crate) base: Option<At<u64>>,
    /// `vcpus`.
    pub(crate) vcpus: u8,
    /// `cores`, if given (each index with its place), and the array's place.
    pub(crate) cores: Option<(Vec<At<u8>>, Place)>,
    /// `priority`.
    pub(crate) priority: u8,
    /// `devices`.
    pub(crate) devices: Vec<At<String>>,
    /// `irqs`.
    pub(crate) irqs: Vec<IrqDecl>,
    /// `fault`.
    pub(crate) fault: FaultPolicy,
    /// `controls`: the partitions it may watch, stop and restart.
    pub(crate) controls: Vec<At<String>>,
    /// `fault-notification`: the notification channel it waits on, where
    /// the kernel tells it that a partition it controls stopped or restarts.
    pub(crate) fault_notification: Option<At<String>>,
    /// `replies`: how many reply objects it owns.
    pub(crate) replies: Option<At<u8>>,
    /// What a virtual machine declares besides (`None` for others).
    pub(crate) guest: Option<GuestDecl>,
    /// `settings`: its program's settings, each well-formed one in file
    /// order.
    pub(crate) settings: Vec<Setting>,
    /// `budget`: what each of its vCPUs may run per period.
    pub(crate) budget: Option<BudgetsDecl>,
}

impl PartitionDecl {
    /// Whether it is a virtual machine.
    pub(crate) fn is_vm(&self) -> bool {
        self.kind == Some(KindDecl::Vm)
    }

    /// Its `monitor`, if it is a virtual machine that names one.
    pub(crate) fn monitor(&self) -> Option<&At<String>> {
        self.guest.as_ref().and_then(|guest| guest.monitor.as_ref())
    }
}

/// One entry of a partition's `irqs`: a device's interrupts delivered on a
/// notification channel.
#[derive(Debug)]
pub(crate) struct IrqDecl {
    /// The device (the entry's key).
    pub(crate) device: At<String>,
    /// The notification channel.
    pub(crate) channel: At<String>,
    /// The first bit, if given.
    pub(crate) bit: Option<At<u8>>,
}

/// One `[[channels]]` entry.
#[derive(Debug)]
pub(crate) struct ChannelDecl {
    /// `name`.
    pub(crate) name: Option<At<String>>,
    /// The `[[channels]]` table.
    pub(crate) place: Place,
    /// `kind` and what goes with it.
    pub(crate) kind: ChannelKind,
    /// Whether every end was read without error. When one was not, checks
    /// on how many ends there are stay quiet: the error already said it.
    pub(crate) complete: bool,
    /// `derive`: its ends' capabilities carry the derive right.
    pub(crate) derive: bool,
}

/// What a channel is.
#[derive(Debug)]
pub(crate) enum ChannelKind {
    /// Synchronous IPC.
    Endpoint {
        /// `server`.
        server: Option<At<String>>,
        /// `clients`, each with an optional badge.
        clients: Vec<End>,
        /// `grant`, where written (its place locates errors about grant
        /// chains).
        grant: Option<At<bool>>,
    },
    /// Asynchronous bits.
    Notification {
        /// `waiter`.
        waiter: Option<At<String>>,
        /// `signallers`, each with an optional bit.
        signallers: Vec<End>,
    },
    /// Memory shared between partitions.
    SharedMemory {
        /// `size`.
        size: Option<At<Size>>,
        /// `readers`, `writers` and `ends`, in that order.
        ends: Vec<SharedEnd>,
    },
    /// `kind` is missing or unknown; the rest was not read.
    Unknown,
}

/// A partition at one end of an endpoint or notification, with its badge or
/// bit if given.
#[derive(Debug)]
pub(crate) struct End {
    /// The partition.
    pub(crate) partition: At<String>,
    /// The badge (endpoint) or bit (notification).
    pub(crate) tag: Option<At<u64>>,
}

/// A partition sharing memory, with its rights.
#[derive(Debug)]
pub(crate) struct SharedEnd {
    /// The partition.
    pub(crate) partition: At<String>,
    /// Its rights: a non-empty subset of read, write, execute.
    pub(crate) rights: At<Rights>,
}

/// Reads a system manifest.
pub(crate) fn read(document: &toml::de::DeTable<'_>, sink: &mut Sink<'_>) -> SystemDecl {
    let mut root = TableReader::new(document, Place::default(), "a system manifest");
    let mut system = SystemDecl::default();
    let system_help = "start the file with `[system]`, giving `name` and `platform`";
    if let Some(mut table) = root
        .require(sink, "system", system_help)
        .and_then(|field| field.table(sink, "the `[system]` table", system_help))
    {
        system.name = table
            .require(sink, "name", "add `name = \"<system name>\"`")
            .and_then(|field| field.string(sink, "write the system's name in quotes"))
            .inspect(|name| {
                check_name(name, sink, "system");
            });
        system.platform = table
            .require(
                sink,
                "platform",
                "add `platform = \"<name>\"`, a folder of platforms/",
            )
            .and_then(|field| field.string(sink, "write the platform's name in quotes"));
        system.description = table
            .get("description")
            .and_then(|field| field.string(sink, "write the description in quotes"))
            .map(|description| description.value);
        let log_help =
            "write `kernel-log = { partition = \"<reader>\", notification = \"<channel>\" }`";
        system.kernel_log = table
            .get("kernel-log")
            .and_then(|field| field.table(sink, "the kernel log's reader", log_help))
            .and_then(|mut log| {
                let partition = log
                    .require(sink, "partition", log_help)
                    .and_then(|field| field.string(sink, "write the partition's name in quotes"));
                let notification = log
                    .require(sink, "notification", log_help)
                    .and_then(|field| {
                        field.string(sink, "write the notification channel's name in quotes")
                    });
                log.finish(sink, &["partition", "notification"]);
                Some(KernelLogDecl {
                    partition: partition?,
                    notification: notification?,
                })
            });
        system.scrub_on_switch = table
            .get("scrub")
            .and_then(|field| read_scrub(&field, sink))
            .unwrap_or(false);
        table.finish(
            sink,
            &["name", "platform", "description", "kernel-log", "scrub"],
        );
    }
    let partitions_help = "declare each partition as a table: `[partitions.<name>]`";
    if let Some(mut table) = root
        .get("partitions")
        .and_then(|field| field.table(sink, "the `[partitions]` table", partitions_help))
    {
        for (name, field) in table.entries() {
            // A badly spelt name is reported and kept, so that references
            // to it still resolve and report nothing more.
            check_name(&name, sink, "partition");
            let Some(reader) = field.table(sink, "a partition", partitions_help) else {
                continue;
            };
            system.partitions.push(read_partition(name, reader, sink));
        }
    }
    let channels_help = "declare each channel as an `[[channels]]` table";
    if let Some(items) = root
        .get("channels")
        .and_then(|field| field.array(sink, channels_help))
    {
        for item in items {
            if let Some(reader) = item.table(sink, "a channel", channels_help) {
                system.channels.push(channel::read_channel(reader, sink));
            }
        }
    }
    system.schedule = root
        .get("schedule")
        .and_then(|field| schedule::read_schedule(&field, sink));
    root.finish(sink, &["system", "partitions", "channels", "schedule"]);
    system
}

/// Reads one `[partitions.<name>]` table.
fn read_partition(
    name: At<String>,
    mut table: TableReader<'_, '_>,
    sink: &mut Sink<'_>,
) -> PartitionDecl {
    let kind = vm::read_kind(&mut table, sink);
    if kind == Some(KindDecl::Vm) {
        table.set_what("a virtual machine partition");
    }
    let program_help = "add `program = \"<name>\"`: the program in services/<name> or tests/partitions/<name> that the partition runs";
    let program = if kind == Some(KindDecl::Service) {
        table.require(sink, "program", program_help)
    } else {
        table.get("program")
    }
    .and_then(|field| field.string(sink, "write the program's name in quotes"));
    let guest = vm::read_guest(kind, &mut table, sink);
    let (memory, base) = match table.require(
        sink,
        "memory",
        "add `memory = \"<size>\"`, e.g. `memory = \"256K\"`",
    ) {
        Some(field) => read_memory(&field, sink),
        None => (None, None),
    };
    let vcpus = table
        .get("vcpus")
        .and_then(|field| {
            field.integer_in(
                sink,
                1..=i128::from(MAX_VCPUS),
                "vCPU count",
                "a partition has 1 to 8 vCPUs",
            )
        })
        .and_then(|vcpus| u8::try_from(vcpus.value).ok())
        .unwrap_or(1);
    let cores = table
        .get("cores")
        .and_then(|field| read_cores(&field, sink));
    let priority = table
        .get("priority")
        .and_then(|field| {
            field.integer_in(
                sink,
                0..=255,
                "priority",
                "priorities are 0 to 255; higher runs first",
            )
        })
        .and_then(|priority| u8::try_from(priority.value).ok())
        .unwrap_or(DEFAULT_PRIORITY);
    let devices_help = "list device names from the platform, e.g. `devices = [\"uart0\"]`";
    let devices = table
        .get("devices")
        .and_then(|field| field.array(sink, devices_help))
        .unwrap_or_default()
        .iter()
        .filter_map(|item| item.string(sink, devices_help))
        .collect();
    let irqs = match (table.get("irqs"), kind) {
        (Some(field), Some(KindDecl::Vm)) => {
            vm::refuse_irqs(&field.place, sink);
            Vec::new()
        }
        (Some(field), _) => read_irqs(&field, sink),
        (None, _) => Vec::new(),
    };
    let fault = table
        .get("fault")
        .and_then(|field| read_fault(&field, sink))
        .unwrap_or(FaultPolicy::Stop);
    let controls_help =
        "list the partitions it watches and restarts by name, e.g. `controls = [\"crasher\"]`";
    let controls = table
        .get("controls")
        .and_then(|field| field.array(sink, controls_help))
        .unwrap_or_default()
        .iter()
        .filter_map(|item| item.string(sink, controls_help))
        .collect();
    let fault_notification = table.get("fault-notification").and_then(|field| {
        field.string(
            sink,
            "name the notification channel it waits on, e.g. `fault-notification = \"health\"`",
        )
    });
    let replies = table.get("replies").and_then(|field| {
        field
            .integer_in(
                sink,
                0..=i128::from(MAX_PARTITION_REPLIES),
                "reply object count",
                "a partition has 0 to 16 reply objects: one for each call it keeps in hand \
                 while it takes others",
            )
            .and_then(|n| Some(At::new(u8::try_from(n.value).ok()?, n.place)))
    });
    let settings = if kind == Some(KindDecl::Vm) {
        if let Some(field) = table.get("settings") {
            sink.error(
                &field.place,
                "a virtual machine has no program to take settings",
                "give them to its `monitor`, the service that runs its program (`vmm`)",
            );
        }
        Vec::new()
    } else {
        table
            .get("settings")
            .map(|field| settings::read_settings(&field, sink))
            .unwrap_or_default()
    };
    let budget = table
        .get("budget")
        .and_then(|field| schedule::read_budgets(&field, sink));
    if let Some(description) = table.get("description") {
        let _ = description.string(sink, "write the description in quotes");
    }
    let place = table.place.clone();
    let keys: Vec<&str> = match kind {
        Some(KindDecl::Service) => vm::SERVICE_KEYS.to_vec(),
        Some(KindDecl::Vm) => vm::VM_KEYS.to_vec(),
        None => {
            let mut all = vm::SERVICE_KEYS.to_vec();
            all.extend(
                vm::VM_KEYS
                    .iter()
                    .filter(|key| !vm::SERVICE_KEYS.contains(key)),
            );
            all
        }
    };
    table.finish(sink, &keys);
    let partition = PartitionDecl {
        name,
        place,
        kind,
        program,
        memory,
        base,
        vcpus,
        cores,
        priority,
        devices,
        irqs,
        fault,
        controls,
        fault_notification,
        replies,
        guest,
        settings,
        budget,
    };
    if partition.is_vm() {
        vm::check_vm_partition(&partition, sink);
    }
    partition
}

/// `memory = "256K"` or `memory = { size = "256K", base = 0x5000_0000 }`.
fn read_memory(
    field: &FieldAt<'_, '_>,
    sink: &mut Sink<'_>,
) -> (Option<At<Size>>, Option<At<u64>>) {
    if !field.is_table() {
        let size = size::read(field, sink, "memory size")
            .filter(|s| size::check_pages(s, sink, "memory size"));
        return (size, None);
    }
    let help = "write `memory = { size = \"256K\" }`, with `base = <address>` to fix where it is";
    let Some(mut table) = field.table(sink, "the `memory` table", help) else {
        return (None, None);
    };
    let size = table
        .require(
            sink,
            "size",
            "add `size = \"<size>\"`, e.g. `size = \"256K\"`",
        )
        .and_then(|field| size::read(&field, sink, "memory size"))
        .filter(|s| size::check_pages(s, sink, "memory size"));
    let base = table.get("base").and_then(|field| address(&field, sink));
    let base = base.filter(|base| {
        let aligned = base.value.is_multiple_of(hv_image::PAGE_SIZE);
        if !aligned {
            sink.error(
                &base.place,
                format!("memory base {:#x} is not 4 KiB-aligned", base.value),
                format!(
                    "use a multiple of 0x1000, e.g. `{:#x}`",
                    base.value & !(hv_image::PAGE_SIZE - 1)
                ),
            );
        }
        aligned
    });
    table.finish(sink, &["size", "base"]);
    (size, base)
}

/// `cores = [0, 1]`.
fn read_cores(field: &FieldAt<'_, '_>, sink: &mut Sink<'_>) -> Option<(Vec<At<u8>>, Place)> {
    let help = "list core numbers, e.g. `cores = [0, 1]`; leave `cores` out for every core";
    let items = field.array(sink, help)?;
    let mut cores: Vec<At<u8>> = Vec::new();
    for item in items {
        let Some(core) = item.integer_in(sink, 0..=255, "core", help) else {
            continue;
        };
        let Ok(index) = u8::try_from(core.value) else {
            continue;
        };
        if cores.iter().any(|c| c.value == index) {
            sink.error(
                &core.place,
                format!("core {index} is listed twice"),
                "list each core once",
            );
            continue;
        }
        cores.push(At::new(index, core.place));
    }
    Some((cores, field.place.clone()))
}

/// `irqs = { uart0 = "uart-irq" }` or `{ uart0 = { channel = "uart-irq", bit = 0 } }`.
fn read_irqs(field: &FieldAt<'_, '_>, sink: &mut Sink<'_>) -> Vec<IrqDecl> {
    let help = "map each device to a notification channel, e.g. `irqs = { uart0 = \"uart-irq\" }`";
    let Some(mut table) = field.table(sink, "the `irqs` table", help) else {
        return Vec::new();
    };
    let mut irqs = Vec::new();
    for (device, value) in table.entries() {
        if value.is_string() {
            if let Some(channel) = value.string(sink, help) {
                irqs.push(IrqDecl {
                    device,
                    channel,
                    bit: None,
                });
            }
            continue;
        }
        let detail =
            "write `{ channel = \"<notification>\", bit = <0 to 63> }` or just the channel's name";
        let Some(mut entry) = value.table(sink, "an interrupt binding", detail) else {
            continue;
        };
        let channel = entry
            .require(
                sink,
                "channel",
                "add `channel = \"<notification channel>\"`",
            )
            .and_then(|field| field.string(sink, "write the channel's name in quotes"));
        let bit = entry.get("bit").and_then(|field| read_bit(&field, sink));
        entry.finish(sink, &["channel", "bit"]);
        if let Some(channel) = channel {
            irqs.push(IrqDecl {
                device,
                channel,
                bit,
            });
        }
    }
    irqs
}

/// A notification bit, 0 to 63.
pub(crate) fn read_bit(field: &FieldAt<'_, '_>, sink: &mut Sink<'_>) -> Option<At<u8>> {
    let bit = field.integer_in(sink, 0..=63, "bit", "a notification has 64 bits, 0 to 63")?;
    u8::try_from(bit.value).ok().map(|b| At::new(b, bit.place))
}

/// `scrub = "needed" | "on-switch"`: whether every switch between
/// partitions scrubs caches and predictors (true), or does only the
/// branch-predictor maintenance the core needs (false).
fn read_scrub(field: &FieldAt<'_, '_>, sink: &mut Sink<'_>) -> Option<bool> {
    let help = "write `scrub = \"needed\"` (the default) or `scrub = \"on-switch\"`";
    let text = field.string(sink, help)?;
    match text.value.as_str() {
        "needed" => Some(false),
        "on-switch" => Some(true),
        other => {
            sink.error(
                &text.place,
                format!("unknown scrub setting `{other}`"),
                help,
            );
            None
        }
    }
}

/// `fault = "stop" | "restart"`.
fn read_fault(field: &FieldAt<'_, '_>, sink: &mut Sink<'_>) -> Option<FaultPolicy> {
    let help = "write `fault = \"stop\"` or `fault = \"restart\"`";
    let text = field.string(sink, help)?;
    match text.value.as_str() {
        "stop" => Some(FaultPolicy::Stop),
        "restart" => Some(FaultPolicy::Restart),
        other => {
            sink.error(&text.place, format!("unknown fault policy `{other}`"), help);
            None
        }
    }
}
