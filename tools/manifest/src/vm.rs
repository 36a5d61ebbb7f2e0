// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Virtual machines: each one's monitor resolved and checked, its kernel and
//! initramfs found and measured, and where its monitor sees them chosen.
//!
//! A monitor is a service partition of the same system, not the virtual
//! machine itself, and monitors one virtual machine only, so that a monitor
//! that crashes takes down only its own guest. `kernel` and `initrd` name the
//! default guest (`"debian"`, which the caller resolves: the compiler never
//! fetches anything), a file relative to the manifest's folder, (kernel
//! only) a guest program (`"guest:<name>"`, whose image the caller builds)
//! or (initrd only) `"none"`; a file must exist and not be empty.
//!
//! Layout: every monitor sees its guest's RAM at the first 2 MiB boundary
//! past every shared region of the system ([`SHARED_IPA`] if there are
//! none), then the kernel on the next 2 MiB boundary (the RAM is whole 2 MiB
//! blocks), then the initramfs on the 2 MiB boundary after the kernel, all
//! inside the 39-bit IPA space. What reading a virtual machine's table
//! checks alone (its keys, memory, bootargs) is `system/vm.rs`'s.

use std::path::{Path, PathBuf};

use hv_image::{IPA_LIMIT, MAX_ENDPOINTS, MAX_FILES, PAGE_SIZE};

use crate::channels;
use crate::diag::{Place, Sink};
use crate::environment::Environment;
use crate::model::{Channel, ChannelKind, FileSource, Guest, GuestFile, SHARED_ALIGN, SHARED_IPA};
use crate::system::{self, FileChoice, FileKey, GuestDecl, KindDecl, PartitionDecl, SystemDecl};

/// The folder of the manifest being compiled: relative `kernel` and
/// `initrd` paths are resolved from it.
#[derive(Clone, Debug)]
pub(crate) struct Folder {
    /// The folder, absolute (or as the caller gave it).
    pub(crate) absolute: PathBuf,
    /// The folder as errors show it: the manifest's name as given, less the
    /// file name (empty for a manifest in the current folder).
    pub(crate) shown: PathBuf,
}

impl Folder {
    /// The folder of the manifest shown as `file`, which is `absolute`.
    pub(crate) fn of(file: &str, absolute: &Path) -> Self {
        Self {
            absolute: absolute.to_path_buf(),
            shown: Path::new(file)
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
        }
    }
}

/// The capability names a monitor gets for its guest, in slot order:
/// `exits`, then `vcpu-0` to `vcpu-<vcpus - 1>`.
pub(crate) fn monitor_capability_names(vcpus: u8) -> Vec<String> {
    std::iter::once("exits".to_owned())
        .chain((0..vcpus).map(|vcpu| format!("vcpu-{vcpu}")))
        .collect()
}

/// The virtual machine partition `index` monitors, if any (the first that
/// names it: a second is an error).
pub(crate) fn monitored_by(decl: &SystemDecl, index: usize) -> Option<&PartitionDecl> {
    let name = &decl.partitions.get(index)?.name.value;
    decl.partitions
        .iter()
        .find(|p| p.monitor().is_some_and(|m| m.value == *name))
}

/// What monitoring adds to partition `index`'s tables: capabilities
/// (`exits` and one per vCPU) and mappings (the guest's RAM and files).
pub(crate) fn monitor_load(decl: &SystemDecl, index: usize) -> (usize, usize) {
    let Some(vm) = monitored_by(decl, index) else {
        return (0, 0);
    };
    let initrd = vm.guest.as_ref().is_some_and(
        |g| !matches!(&g.initrd, FileKey::Given(choice) if choice.value == FileChoice::None),
    );
    (1 + usize::from(vm.vcpus), 2 + usize::from(initrd))
}

/// Where the system's shared regions end: guests' windows start on the
/// next 2 MiB boundary.
fn shared_end(channels: &[Channel]) -> u64 {
    channels
        .iter()
        .filter_map(|channel| match &channel.kind {
            ChannelKind::SharedMemory { size, ipa, .. } => ipa.checked_add(*size),
            _ => None,
        })
        .fold(SHARED_IPA, u64::max)
}

/// Checks every virtual machine; returns, for each partition, its checked
/// guest (`None` for services and for virtual machines with errors).
/// `channels` are the checked channels, if they checked.
pub(crate) fn check(
    decl: &SystemDecl,
    names: &[&str],
    channels: Option<&[Channel]>,
    environment: &Environment,
    folder: &Folder,
    sink: &mut Sink<'_>,
) -> Vec<Option<Guest>> {
    let window = channels.and_then(|c| shared_end(c).checked_next_multiple_of(SHARED_ALIGN));
    let endpoint_channels = decl
        .channels
        .iter()
        .filter(|c| matches!(c.kind, system::ChannelKind::Endpoint { .. }))
        .count();
    let (mut vms, mut files) = (0usize, 0usize);
    let mut guests = Vec::new();
    for (index, partition) in decl.partitions.iter().enumerate() {
        let Some(guest) = &partition.guest else {
            guests.push(None);
            continue;
        };
        vms += 1;
        if endpoint_channels <= MAX_ENDPOINTS && endpoint_channels + vms == MAX_ENDPOINTS + 1 {
            sink.error(
                &partition.place,
                format!(
                    "more than {MAX_ENDPOINTS} endpoints: {endpoint_channels} endpoint channels, \
                     and one for each virtual machine's exits"
                ),
                "the kernel holds at most 64 endpoints; let services share endpoints with badges",
            );
        }
        let monitor = check_monitor(decl, index, guest, names, channels, sink);
        let (kernel, initrd) = check_files(partition, guest, environment, folder, sink);
        for file in [&kernel, &initrd] {
            if matches!(file, Found::File(_) | Found::Failed) {
                files += 1;
                if files == MAX_FILES + 1 {
                    sink.error(
                        &partition.place,
                        format!("more than {MAX_FILES} files in the boot package"),
                        format!(
                            "each virtual machine brings its kernel and, unless `initrd = \
                             \"none\"`, its initramfs; a package carries at most {MAX_FILES}"
                        ),
                    );
                }
            }
        }
        let initrd = match initrd {
            Found::File(file) => Some(Some(file)),
            Found::None => Some(None),
            Found::Failed => None,
        };
        let placed = match (monitor, kernel, initrd, &guest.bootargs, window) {
            (Some(monitor), Found::File(kernel), Some(initrd), Some(bootargs), Some(window)) => {
                let unplaced = Unplaced {
                    monitor,
                    kernel,
                    initrd,
                    bootargs: bootargs.clone(),
                };
                place(partition, names, unplaced, window, sink)
            }
            _ => None,
        };
        guests.push(placed);
    }
    guests
}

/// A file found, before the monitor's layout is chosen.
struct FileFound {
    /// Where it comes from.
    source: FileSource,
    /// Its absolute path.
    path: PathBuf,
    /// Its length.
    size: u64,
}

/// What a `kernel` or `initrd` key came to.
enum Found {
    /// A file.
    File(FileFound),
    /// `initrd = "none"`.
    None,
    /// Something is wrong (reported), or the key was unreadable.
    Failed,
}

/// A virtual machine checked but not yet laid out in its monitor.
struct Unplaced {
    /// The monitor partition.
    monitor: usize,
    /// The kernel.
    kernel: FileFound,
    /// The initramfs, if any.
    initrd: Option<FileFound>,
    /// The command line.
    bootargs: String,
}

/// Lays a guest out in its monitor's address space from `window`, or
/// reports that it does not fit.
fn place(
    partition: &PartitionDecl,
    names: &[&str],
    unplaced: Unplaced,
    window: u64,
    sink: &mut Sink<'_>,
) -> Option<Guest> {
    let memory = partition.memory.as_ref()?.value.bytes;
    let mapped = |size: u64| size.checked_next_multiple_of(PAGE_SIZE);
    let kernel_ipa = window
        .checked_add(memory)?
        .checked_next_multiple_of(SHARED_ALIGN);
    let kernel_end = kernel_ipa.and_then(|ipa| ipa.checked_add(mapped(unplaced.kernel.size)?));
    let initrd_ipa = match &unplaced.initrd {
        None => None,
        Some(_) => kernel_end.and_then(|end| end.checked_next_multiple_of(SHARED_ALIGN)),
    };
    let end = match (&unplaced.initrd, initrd_ipa) {
        (None, _) => kernel_end,
        (Some(initrd), Some(ipa)) => mapped(initrd.size).and_then(|size| ipa.checked_add(size)),
        (Some(_), None) => None,
    };
    let monitor_name = names.get(unplaced.monitor).copied().unwrap_or("?");
    let fits = end.is_some_and(|end| end <= IPA_LIMIT);
    let (Some(kernel_ipa), true) = (kernel_ipa, fits) else {
        sink.error(
            &partition.place,
            format!(
                "virtual machine `{}`'s RAM, kernel and initramfs do not fit its monitor \
                 `{monitor_name}`'s 39-bit address space, after the shared regions at {:#x}",
                partition.name.value, window
            ),
            "use smaller shared regions, or give the guest less memory or smaller files",
        );
        return None;
    };
    let file = |found: FileFound, ipa: u64| GuestFile {
        source: found.source,
        path: found.path,
        size: found.size,
        ipa,
    };
    let initrd = match (unplaced.initrd, initrd_ipa) {
        (Some(initrd), Some(ipa)) => Some(file(initrd, ipa)),
        _ => None,
    };
    Some(Guest {
        monitor: unplaced.monitor,
        window,
        kernel: file(unplaced.kernel, kernel_ipa),
        initrd,
        bootargs: unplaced.bootargs,
    })
}

/// Resolves and checks a virtual machine's monitor: another partition, a
/// service, monitoring nothing else, and with no capability already named
/// like the ones it gets for the guest.
fn check_monitor(
    decl: &SystemDecl,
    index: usize,
    guest: &GuestDecl,
    names: &[&str],
    channels: Option<&[Channel]>,
    sink: &mut Sink<'_>,
) -> Option<usize> {
    let named = guest.monitor.as_ref()?;
    let monitor = channels::resolve_partition(named, names, sink)?;
    let partition = decl.partitions.get(index)?;
    let target = decl.partitions.get(monitor)?;
    let help = "name a service partition (one running `vmm`) that loads the guest, answers its \
                exits and holds its vCPUs";
    if monitor == index {
        sink.error(
            &named.place,
            format!(
                "virtual machine `{}` cannot be its own monitor",
                partition.name.value
            ),
            help,
        );
        return None;
    }
    match target.kind {
        Some(KindDecl::Vm) => {
            sink.error(
                &named.place,
                format!(
                    "`{}` is a virtual machine; a monitor is a service partition",
                    named.value
                ),
                format!("a virtual machine cannot monitor another: {help}"),
            );
            return None;
        }
        Some(KindDecl::Service) => {}
        // Its kind was wrong, and said so.
        None => return None,
    }
    if let Some(other) = decl.partitions[..index]
        .iter()
        .find(|p| p.monitor().is_some_and(|m| m.value == named.value))
    {
        sink.error(
            &named.place,
            format!(
                "`{}` already monitors virtual machine `{}`, and a monitor has one guest only",
                named.value, other.name.value
            ),
            "give each virtual machine a monitor partition of its own (several may run `vmm`): \
             a monitor that crashes then takes down only its own guest",
        );
        return None;
    }
    let mut clash = false;
    for (k, name) in monitor_capability_names(partition.vcpus)
        .into_iter()
        .enumerate()
    {
        let theirs = match k.checked_sub(1) {
            None => format!("the exits of virtual machine `{}`", partition.name.value),
            Some(vcpu) => format!("vCPU {vcpu} of virtual machine `{}`", partition.name.value),
        };
        let what = if channels.is_some_and(|channels| {
            channels
                .iter()
                .any(|c| c.name == name && channels::involves(&c.kind, monitor))
        }) {
            Some("channel")
        } else if target.devices.iter().any(|d| d.value == name) {
            Some("device")
        } else if target.controls.iter().any(|c| c.value == name) {
            Some("controlled partition")
        } else {
            None
        };
        if let Some(what) = what {
            sink.error(
                &named.place,
                format!(
                    "partition `{}` would hold two capabilities named `{name}`: the {what} and \
                     {theirs}",
                    named.value
                ),
                format!(
                    "rename the {what}: a monitor's capabilities over its guest are named \
                     `exits` and `vcpu-0`, `vcpu-1`, ..."
                ),
            );
            clash = true;
        }
    }
    (!clash).then_some(monitor)
}

/// Finds a virtual machine's kernel and initramfs. A use of the default
/// guest without one is reported once for both.
fn check_files(
    partition: &PartitionDecl,
    guest: &GuestDecl,
    environment: &Environment,
    folder: &Folder,
    sink: &mut Sink<'_>,
) -> (Found, Found) {
    let default_guest = environment.default_guest();
    let (kernel_default, initrd_default) =
        (uses_default(&guest.kernel), uses_default(&guest.initrd));
    if default_guest.is_none() && (kernel_default.is_some() || initrd_default.is_some()) {
        let what = match (kernel_default, initrd_default) {
            (Some(_), Some(_)) => {
                "the default guest (Debian's arm64 kernel and the busybox initramfs)"
            }
            (Some(_), None) => "the default guest's kernel (Debian's arm64 kernel)",
            _ => "the default guest's initramfs (the busybox one)",
        };
        let place = kernel_default
            .flatten()
            .or(initrd_default.flatten())
            .unwrap_or(&partition.place);
        sink.error(
            place,
            format!(
                "virtual machine `{}` boots {what}, but the compiler was given no default guest",
                partition.name.value
            ),
            "run `cargo xtask guests`, which fetches and builds the default guest (`cargo xtask` \
             hands it to the compiler); or give `kernel = \"<path>\"` and `initrd = \"<path>\"` \
             (or `initrd = \"none\"`), relative to the manifest's folder",
        );
    }
    let default_kernel = default_guest.map(|g| g.kernel.as_path());
    let default_initrd = default_guest.map(|g| g.initrd.as_path());
    let kernel = Lookup {
        default: default_kernel,
        environment,
        folder,
    };
    let initrd = Lookup {
        default: default_initrd,
        ..kernel
    };
    (
        find(partition, Role::Kernel, &guest.kernel, &kernel, sink),
        find(partition, Role::Initrd, &guest.initrd, &initrd, sink),
    )
}

/// Whether a `kernel` or `initrd` key names the default guest's file, and
/// where if it is written.
fn uses_default(key: &FileKey) -> Option<Option<&Place>> {
    match key {
        FileKey::Default => Some(None),
        FileKey::Given(choice) if choice.value == FileChoice::Debian => Some(Some(&choice.place)),
        _ => None,
    }
}

/// Which of a guest's files.
#[derive(Clone, Copy)]
enum Role {
    /// `kernel`.
    Kernel,
    /// `initrd`.
    Initrd,
}

impl Role {
    /// Its key.
    const fn key(self) -> &'static str {
        match self {
            Self::Kernel => "kernel",
            Self::Initrd => "initrd",
        }
    }

    /// What it is, in words.
    const fn what(self) -> &'static str {
        match self {
            Self::Kernel => "an arm64 `Image`",
            Self::Initrd => "an initramfs",
        }
    }

    /// What else it could be, in words.
    const fn alternatives(self) -> &'static str {
        match self {
            Self::Kernel => {
                "`kernel = \"debian\"` (the default) for Debian's, or `kernel = \"guest:<name>\"` \
                 for a guest program"
            }
            Self::Initrd => {
                "`initrd = \"debian\"` (the default) for the busybox one, or `initrd = \"none\"`"
            }
        }
    }
}

/// Where [`find`] looks for a guest's file.
#[derive(Clone, Copy)]
struct Lookup<'e> {
    /// The default guest's file for this role, if the compiler was given one.
    default: Option<&'e Path>,
    /// The guest programs.
    environment: &'e Environment,
    /// The manifest's folder, for paths.
    folder: &'e Folder,
}

/// Finds one of a guest's files: the default guest's (if the compiler was
/// given one; if not, that was reported), a guest program's image, a path,
/// or none.
fn find(
    partition: &PartitionDecl,
    role: Role,
    key: &FileKey,
    lookup: &Lookup<'_>,
    sink: &mut Sink<'_>,
) -> Found {
    let (default, folder) = (lookup.default, lookup.folder);
    let key_name = role.key();
    let (choice, place) = match key {
        FileKey::Unreadable => return Found::Failed,
        FileKey::Default => (&FileChoice::Debian, &partition.place),
        FileKey::Given(choice) => (&choice.value, &choice.place),
    };
    match choice {
        FileChoice::None => Found::None,
        FileChoice::Program(name) => find_program(name, place, lookup.environment, sink),
        FileChoice::Debian => {
            let Some(path) = default else {
                return Found::Failed;
            };
            let shown = path.display().to_string();
            match measure(path) {
                Ok(size) => found(FileSource::Debian, path, size),
                Err(problem) => {
                    sink.error(
                        place,
                        format!(
                            "the default guest's {key_name}, {shown}, {}",
                            problem.words()
                        ),
                        "run `cargo xtask guests` to fetch and build the default guest again",
                    );
                    Found::Failed
                }
            }
        }
        FileChoice::Path(written) => {
            let path = folder.absolute.join(written);
            let shown = folder.shown.join(written).display().to_string();
            match measure(&path) {
                Ok(size) => found(FileSource::Path(written.clone()), &path, size),
                Err(problem) => {
                    let folder_shown = if folder.shown.as_os_str().is_empty() {
                        "the current folder".to_owned()
                    } else {
                        folder.shown.display().to_string()
                    };
                    let at = if Path::new(written).is_absolute() {
                        String::new()
                    } else {
                        format!(" (at {shown})")
                    };
                    sink.error(
                        place,
                        format!("{key_name} `{written}`{at} {}", problem.words()),
                        format!(
                            "give the path of {} relative to the manifest's folder \
                             ({folder_shown}), {}",
                            role.what(),
                            role.alternatives()
                        ),
                    );
                    Found::Failed
                }
            }
        }
    }
}

/// Finds the image of the guest program `name`, written at `place`.
fn find_program(
    name: &str,
    place: &Place,
    environment: &Environment,
    sink: &mut Sink<'_>,
) -> Found {
    let image = match environment.guest_program(name) {
        None => {
            let known = environment.guest_program_names();
            let available = if known.is_empty() {
                "there are no guest programs".to_owned()
            } else {
                format!(
                    "the guest programs in guests/ are {}",
                    crate::read::list(&known)
                )
            };
            let help = match crate::read::closest(name, &known) {
                Some(near) => format!("did you mean `guest:{near}`? {available}"),
                None => available,
            };
            sink.error(
                place,
                format!(
                    "no guest program `{name}`: there is no guests/{name}/ with a Cargo.toml and \
                     src/main.rs"
                ),
                help,
            );
            return Found::Failed;
        }
        Some(None) => {
            sink.error(
                place,
                format!("guest program `{name}` (guests/{name}) has not been built"),
                "`cargo xtask` builds the guest programs a manifest names before it compiles \
                 the manifest; a caller of hv-manifest gives each one's arm64 `Image` with \
                 `Environment::with_guest_program`",
            );
            return Found::Failed;
        }
        Some(Some(image)) => image,
    };
    match measure(image) {
        Ok(size) => found(FileSource::Program(name.to_owned()), image, size),
        Err(problem) => {
            sink.error(
                place,
                format!(
                    "guest program `{name}`'s image, {}, {}",
                    image.display(),
                    problem.words()
                ),
                "build it again: `cargo xtask build` builds the guest programs a manifest names",
            );
            Found::Failed
        }
    }
}

/// What can be wrong with a guest's file.
enum Problem {
    /// It is not there.
    Missing,
    /// It is a folder (or something else that is not a file).
    NotAFile,
    /// It is empty.
    Empty,
    /// It could not be read.
    Unreadable(std::io::Error),
}

impl Problem {
    /// The problem as the end of a sentence.
    fn words(&self) -> String {
        match self {
            Self::Missing => "does not exist".to_owned(),
            Self::NotAFile => "is not a file".to_owned(),
            Self::Empty => "is empty".to_owned(),
            Self::Unreadable(error) => format!("cannot be read: {error}"),
        }
    }
}

/// A file's length, if it is a non-empty file.
fn measure(path: &Path) -> Result<u64, Problem> {
    let metadata = std::fs::metadata(path).map_err(|error| {
        if error.kind() == std::io::ErrorKind::NotFound {
            Problem::Missing
        } else {
            Problem::Unreadable(error)
        }
    })?;
    if !metadata.is_file() {
        return Err(Problem::NotAFile);
    }
    if metadata.len() == 0 {
        return Err(Problem::Empty);
    }
    // Open it too: a file that cannot be read would fail only when the
    // package is built.
    std::fs::File::open(path).map_err(Problem::Unreadable)?;
    Ok(metadata.len())
}

/// A file that [`measure`] accepted.
fn found(source: FileSource, path: &Path, size: u64) -> Found {
    Found::File(FileFound {
        source,
        path: path.to_path_buf(),
        size,
    })
}
