// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Reading what makes a partition a virtual machine: `kind`, `monitor`,
//! `kernel`, `initrd`, `bootargs`, and what a virtual machine may not have
//! (a program, `irqs`, too little memory). Part of reading a manifest
//! (`system.rs`); whether the monitor exists and the files are there is
//! `vm.rs`'s (the checks) business, and whether its `devices` can be passed
//! through `check/passthrough.rs`'s.

use super::PartitionDecl;
use crate::diag::{At, Place, Sink};
use crate::read::{TableReader, closest};
use crate::size::{MIB, short};

/// The least RAM a virtual machine gets: Debian's arm64 kernel needs
/// 56 MiB before its initramfs and its first process have any.
pub(crate) const VM_MIN_MEMORY: u64 = 64 * MIB;
/// A virtual machine's RAM is a whole number of 2 MiB blocks: so it maps
/// with block descriptors in its own address space and its monitor's, and
/// the arm64 boot protocol's 2 MiB-aligned kernel base is inside it.
pub(crate) const VM_MEMORY_ALIGN: u64 = 2 * MIB;
/// The longest kernel command line, in bytes (Linux's arm64
/// `COMMAND_LINE_SIZE` is 2048; a guest's device tree keeps it shorter).
pub(crate) const MAX_BOOTARGS: usize = 1024;
/// The command line a guest gets unless the manifest gives one.
pub(crate) const DEFAULT_BOOTARGS: &str = "console=ttyAMA0 rdinit=/init";
/// The length of `-kernel` and `-initrd`, which follow a virtual machine's
/// name in its files' names.
pub(crate) const FILE_SUFFIX_LENGTH: usize = 7;
/// The word that names the default guest's files.
pub(crate) const DEBIAN: &str = "debian";
/// What a `kernel` that names a guest program starts with:
/// `"guest:probe"` is the program `guests/probe`.
pub(crate) const GUEST_PROGRAM_PREFIX: &str = "guest:";

/// What a partition is: `kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KindDecl {
    /// A service: a program at EL0 (the default).
    Service,
    /// A virtual machine: a guest kernel at EL1, loaded by its monitor.
    Vm,
}

/// Where a guest's kernel or initramfs comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum FileChoice {
    /// `"debian"`: the default guest's file (from `cargo xtask guests`).
    Debian,
    /// `"none"` (initramfs only): no file.
    None,
    /// `"guest:<name>"` (kernel only): the guest program `guests/<name>`,
    /// whose image the caller builds.
    Program(String),
    /// A path, as written (relative to the manifest's folder, or absolute).
    Path(String),
}

/// A `kernel` or `initrd` key.
#[derive(Clone, Debug)]
pub(crate) enum FileKey {
    /// Not written: the default guest's file.
    Default,
    /// Written and readable.
    Given(At<FileChoice>),
    /// Written but not readable (reported already).
    Unreadable,
}

/// What a virtual machine partition declares besides what every partition
/// does.
#[derive(Clone, Debug)]
pub(crate) struct GuestDecl {
    /// `monitor`: the service partition that loads and runs it.
    pub(crate) monitor: Option<At<String>>,
    /// `kernel`.
    pub(crate) kernel: FileKey,
    /// `initrd`.
    pub(crate) initrd: FileKey,
    /// `bootargs`, or the default if it was left out; `None` if it was
    /// written wrongly (reported already).
    pub(crate) bootargs: Option<String>,
}

/// The keys a service partition takes.
pub(super) const SERVICE_KEYS: [&str; 15] = [
    "kind",
    "program",
    "memory",
    "vcpus",
    "cores",
    "priority",
    "devices",
    "irqs",
    "fault",
    "controls",
    "fault-notification",
    "replies",
    "settings",
    "budget",
    "description",
];

/// The keys a virtual machine partition takes.
pub(super) const VM_KEYS: [&str; 15] = [
    "kind",
    "monitor",
    "memory",
    "vcpus",
    "cores",
    "priority",
    "devices",
    "fault",
    "controls",
    "replies",
    "kernel",
    "initrd",
    "bootargs",
    "budget",
    "description",
];

/// The keys only a virtual machine takes.
const GUEST_KEYS: [&str; 4] = ["monitor", "kernel", "initrd", "bootargs"];

/// Reads `kind`: `Some(kind)`, the default [`KindDecl::Service`] if it is
/// left out, or `None` if it is wrong (reported).
pub(super) fn read_kind(table: &mut TableReader<'_, '_>, sink: &mut Sink<'_>) -> Option<KindDecl> {
    let help = "write `kind = \"service\"` (the default: a program at EL0) or `kind = \"vm\"` \
                (a virtual machine: a guest kernel at EL1, run by a monitor partition)";
    let Some(field) = table.get("kind") else {
        return Some(KindDecl::Service);
    };
    let text = field.string(sink, help)?;
    match text.value.as_str() {
        "service" => Some(KindDecl::Service),
        "vm" => Some(KindDecl::Vm),
        other => {
            let help = match closest(other, &["service", "vm"]) {
                Some(near) => format!("did you mean `{near}`? {help}"),
                None => help.to_owned(),
            };
            sink.error(
                &text.place,
                format!("unknown partition kind `{other}`"),
                help,
            );
            None
        }
    }
}

/// Reads the keys of a virtual machine (`monitor`, `kernel`, `initrd`,
/// `bootargs`), all of them whatever the kind, so that none is called
/// unknown. For a virtual machine, `monitor` is required (reported at the
/// table); for a service, each one given is an error; for a partition whose
/// kind could not be read, nothing more is said.
pub(super) fn read_guest(
    kind: Option<KindDecl>,
    table: &mut TableReader<'_, '_>,
    sink: &mut Sink<'_>,
) -> Option<GuestDecl> {
    if kind == Some(KindDecl::Service) {
        for key in GUEST_KEYS {
            if let Some(field) = table.get(key) {
                sink.error(
                    &field.place,
                    format!("`{key}` is for virtual machines; this partition is a service"),
                    "remove it, or make the partition a virtual machine: `kind = \"vm\"`, \
                     with a `monitor` and no `program`",
                );
            }
        }
        return None;
    }
    let monitor_help = "add `monitor = \"<partition>\"`: the service partition (running `vmm`) \
                        that loads the guest and answers its exits";
    let monitor = if kind == Some(KindDecl::Vm) {
        table.require(sink, "monitor", monitor_help)
    } else {
        table.get("monitor")
    }
    .and_then(|field| field.string(sink, "write the monitor partition's name in quotes"));
    let kernel = read_file(table, "kernel", sink);
    let initrd = read_file(table, "initrd", sink);
    let bootargs = match table.get("bootargs") {
        None => Some(DEFAULT_BOOTARGS.to_owned()),
        Some(field) => field
            .string(sink, "write the kernel's command line in quotes")
            .filter(|text| check_bootargs(text, sink))
            .map(|text| text.value),
    };
    (kind == Some(KindDecl::Vm)).then_some(GuestDecl {
        monitor,
        kernel,
        initrd,
        bootargs,
    })
}

/// Reads `kernel` or `initrd`: `"debian"`, a path, (kernel only)
/// `"guest:<name>"` or (initrd only) `"none"`.
fn read_file(table: &mut TableReader<'_, '_>, key: &str, sink: &mut Sink<'_>) -> FileKey {
    let help = if key == "kernel" {
        "write `kernel = \"debian\"` (the default: Debian's arm64 kernel, which `cargo xtask \
         guests` fetches), `kernel = \"guest:<name>\"` (the guest program guests/<name>) or \
         the path of an arm64 `Image`, relative to the manifest's folder"
    } else {
        "write `initrd = \"debian\"` (the default: the busybox initramfs that `cargo xtask \
         guests` builds), the path of an initramfs, relative to the manifest's folder, or \
         `initrd = \"none\"`"
    };
    let Some(field) = table.get(key) else {
        return FileKey::Default;
    };
    let Some(text) = field.string(sink, help) else {
        return FileKey::Unreadable;
    };
    if let Some(name) = text.value.strip_prefix(GUEST_PROGRAM_PREFIX) {
        let problem = if key != "kernel" {
            Some(format!(
                "`{key}` cannot be a guest program: `{GUEST_PROGRAM_PREFIX}<name>` names a kernel"
            ))
        } else if name.is_empty() {
            Some(format!(
                "`{key} = \"{GUEST_PROGRAM_PREFIX}\"` names no guest program"
            ))
        } else {
            None
        };
        if let Some(problem) = problem {
            sink.error(&text.place, problem, help);
            return FileKey::Unreadable;
        }
        return FileKey::Given(At::new(FileChoice::Program(name.to_owned()), text.place));
    }
    let choice = match text.value.as_str() {
        DEBIAN => FileChoice::Debian,
        "none" if key == "initrd" => FileChoice::None,
        "" => {
            sink.error(&text.place, format!("`{key}` is an empty path"), help);
            return FileKey::Unreadable;
        }
        path => FileChoice::Path(path.to_owned()),
    };
    FileKey::Given(At::new(choice, text.place))
}

/// Checks a command line: at most [`MAX_BOOTARGS`] bytes of printable ASCII.
fn check_bootargs(text: &At<String>, sink: &mut Sink<'_>) -> bool {
    let help = "the guest's device tree carries it as `/chosen/bootargs`: printable ASCII \
                (spaces included, no tabs or newlines), at most 1024 bytes";
    if text.value.len() > MAX_BOOTARGS {
        sink.error(
            &text.place,
            format!(
                "the command line is {} bytes, more than {MAX_BOOTARGS}",
                text.value.len()
            ),
            help,
        );
        return false;
    }
    if let Some((at, c)) = text
        .value
        .char_indices()
        .find(|(_, c)| !(' '..='~').contains(c))
    {
        sink.error(
            &text.place,
            format!("the command line has {c:?} at byte {at}, which is not printable ASCII"),
            help,
        );
        return false;
    }
    true
}

/// Refuses `irqs` on a virtual machine, written at `place`: the interrupts
/// of the devices it owns are passed through to the guest, each as the same
/// INTID; `irqs` binds a service's device interrupts to notification bits.
pub(super) fn refuse_irqs(place: &Place, sink: &mut Sink<'_>) {
    sink.error(
        place,
        "a virtual machine takes no `irqs`: its devices bring their interrupts with them, \
         passed through to the guest",
        "remove `irqs`: every interrupt of a device in a virtual machine's `devices` reaches \
         the guest as the same INTID; `irqs` binds a service's device interrupts to \
         notifications",
    );
}

/// Checks what a virtual machine may not have: a name too long for its
/// files, a program, less than [`VM_MIN_MEMORY`] or memory that is not whole
/// 2 MiB blocks.
pub(super) fn check_vm_partition(partition: &PartitionDecl, sink: &mut Sink<'_>) {
    let longest = hv_image::NAME_LENGTH - FILE_SUFFIX_LENGTH;
    if partition.name.value.len() > longest {
        sink.error(
            &partition.name.place,
            format!(
                "the name of virtual machine `{}` is {} bytes long; a virtual machine's name is at most {longest}",
                partition.name.value,
                partition.name.value.len()
            ),
            format!(
                "shorten it: its files are named `<name>-kernel` and `<name>-initrd`, at most {} bytes",
                hv_image::NAME_LENGTH
            ),
        );
    }
    if let Some(program) = &partition.program {
        sink.error(
            &program.place,
            "a virtual machine runs no program: its monitor loads its kernel",
            "remove `program`: the guest boots its `kernel` (Debian's by default), and its \
             `monitor` partition runs the program (`vmm`)",
        );
    }
    let Some(memory) = &partition.memory else {
        return;
    };
    let bytes = memory.value.bytes;
    if bytes < VM_MIN_MEMORY {
        sink.error(
            &memory.place,
            format!(
                "`{}` is too little for a virtual machine: it needs at least {}",
                memory.value.written,
                short(VM_MIN_MEMORY)
            ),
            "Debian's arm64 kernel alone needs 56 MiB, before its initramfs and first process; \
             give it `memory = \"64M\"` or more",
        );
    } else if !bytes.is_multiple_of(VM_MEMORY_ALIGN) {
        let up = bytes
            .checked_next_multiple_of(VM_MEMORY_ALIGN)
            .map_or_else(String::new, |up| format!(", e.g. `{}`", short(up)));
        sink.error(
            &memory.place,
            format!(
                "`{}` is not a multiple of 2 MiB, which a virtual machine's RAM must be",
                memory.value.written
            ),
            format!(
                "a guest's RAM is mapped in 2 MiB blocks, in its own address space and its \
                 monitor's; use a multiple of 2M{up}"
            ),
        );
    }
}
