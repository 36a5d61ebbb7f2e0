// SPDX-License-Identifier: Apache-2.0 OR MIT
//! hv-manifest: the manifest compiler. A system's TOML in; a checked
//! [`BootManifest`], the capability slots of every partition, the files
//! its virtual machines boot, the settings its programs are built with and
//! a report out, or every error found, each
//! with file, line, column, key and a hint.
//!
//! The format is documented in `docs/manifest.md`. The stages, one module
//! each:
//! 1. `read`/`system`: the TOML, parsed with spans, read into declarations
//!    (`diag` collects the errors, `size` reads sizes);
//!    unknown keys, missing keys and wrong types are errors.
//! 2. `environment`/[`platform`]: the programs that exist, and
//!    `platforms/<name>/platform.toml`, read and checked the same way
//!    (the one reader of that file: `cargo xtask` and the platform crate's
//!    build script use [`platform::Platform::read`] too).
//! 3. `check`/`channels`/`vm`: names resolve, memory and devices fit the
//!    platform and are owned once, badges and bits are chosen, virtual
//!    machines have their monitors and files and devices that can be passed
//!    through to them, the schedule fills its frame on every core and gives
//!    every partition time (`check/schedule.rs`), limits hold, and the
//!    manifest is grant-transitive (`check/grants.rs`).
//! 4. `lower`: the checked system becomes a [`BootManifest`], which is then
//!    validated as the kernel will validate it; a failure there is a bug here.
//! 5. `report`: the memory map, capabilities and channel graph, and each
//!    core's timeline and each partition's share of it, as text.
//!
//! Design principles: report everything (never stop at the first error);
//! never panic, whatever the input; no output from a manifest with errors.

#![forbid(unsafe_code)]

mod channels;
mod check;
mod diag;
mod environment;
mod lower;
mod model;
pub mod platform;
mod read;
mod report;
mod size;
mod system;
mod time;
mod vm;

use std::path::{Path, PathBuf};

pub use diag::{Diagnostic, Diagnostics};
pub use environment::{Environment, PROGRAM_FOLDERS};
pub use hv_image::BootManifest;
use hv_image::package::{self, BuildError};

use crate::diag::Sink;

/// A compiled system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compiled {
    /// The manifest the kernel will read, already validated.
    pub manifest: BootManifest,
    /// Program names by index: program `x` is the crate `services/x` or
    /// `tests/partitions/x` (package `svc-x`); a service's program indexes this list. A name
    /// appears once for all the partitions that run it, except that every
    /// monitor of a virtual machine has an entry of its own (so `vmm` may be
    /// listed once per guest): each is built with its own guest's layout;
    /// and so does every partition with settings, built with its own.
    pub programs: Vec<String>,
    /// For each partition, in order: its name and each capability's name
    /// (the channel's or the device's) with its slot.
    pub slots: Vec<(String, Vec<(String, u32)>)>,
    /// The files the boot package carries (guest kernels and initramfs
    /// images), as absolute paths, in [`BootManifest::files`] order.
    pub files: Vec<PathBuf>,
    /// Every virtual machine, in partition order.
    pub guests: Vec<Guest>,
    /// For each partition, in order: its `settings`, each key with its
    /// value as its program's build gets it (a string as written, an integer
    /// in decimal, a boolean as `true` or `false`), in file order. A
    /// partition with settings has a program of its own.
    pub settings: Vec<Vec<(String, String)>>,
    /// The report: memory map, address spaces, capabilities, channels.
    pub report: String,
}

/// A virtual machine, as its monitor's build needs it (the rest is in the
/// manifest: its RAM, and the monitor's mappings of it and of its files).
/// `cargo xtask` builds the monitor with `BULKHEAD_GUEST_*` from it, among
/// them [`Guest::devices_environment`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Guest {
    /// The virtual machine's partition index.
    pub partition: usize,
    /// Its monitor's partition index.
    pub monitor: usize,
    /// Its kernel's index in [`BootManifest::files`] and [`Compiled::files`].
    pub kernel: usize,
    /// Its initramfs's index there, if it has one.
    pub initrd: Option<usize>,
    /// Its kernel's command line.
    pub bootargs: String,
    /// The devices it owns, passed through to it, in its `devices` order.
    pub devices: Vec<GuestDevice>,
}

/// The variable that tells a monitor's build the devices passed through to
/// its guest: see [`Guest::devices_value`].
pub const GUEST_DEVICES_VARIABLE: &str = "BULKHEAD_GUEST_DEVICES";

impl Guest {
    /// What its monitor is built with as [`GUEST_DEVICES_VARIABLE`]: each
    /// device's [`GuestDevice::entry`], separated by `;`, in the guest's
    /// `devices` order; empty when it has none. For example
    /// `rtc0 arm,pl031 0x9010000 0x1000 34`.
    #[must_use]
    pub fn devices_value(&self) -> String {
        self.devices
            .iter()
            .map(GuestDevice::entry)
            .collect::<Vec<_>>()
            .join(";")
    }

    /// The variable and its value, as its monitor's build gets them (always,
    /// the value empty when the guest has no devices).
    #[must_use]
    pub fn devices_environment(&self) -> (String, String) {
        (GUEST_DEVICES_VARIABLE.to_owned(), self.devices_value())
    }
}

/// A device a virtual machine owns: mapped into the guest at its physical
/// address (IPA = PA), each of its interrupts passed through to the guest as
/// the same INTID. Its monitor describes it in the guest's device tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestDevice {
    /// Its name, from the platform (a manifest name: lowercase letters,
    /// digits and `-`).
    pub name: String,
    /// Its device-tree compatible string (printable ASCII, no spaces or `;`:
    /// the compiler refuses others for a virtual machine).
    pub compatible: String,
    /// Its physical address, which is also where the guest sees it.
    pub base: u64,
    /// The size of its register block, in bytes.
    pub size: u64,
    /// Its interrupts (GIC INTIDs, SPIs below 256), in the platform's order.
    pub irqs: Vec<u32>,
}

impl GuestDevice {
    /// The device as one entry of [`Guest::devices_value`]: five fields
    /// separated by single spaces, `name compatible base size irqs`, with
    /// `base` and `size` in lowercase hexadecimal after `0x`, and `irqs` the
    /// INTIDs in decimal joined by `+`, or `-` if it has none:
    /// `rtc0 arm,pl031 0x9010000 0x1000 34`.
    #[must_use]
    pub fn entry(&self) -> String {
        let irqs = if self.irqs.is_empty() {
            "-".to_owned()
        } else {
            self.irqs
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join("+")
        };
        format!(
            "{} {} {:#x} {:#x} {irqs}",
            self.name, self.compatible, self.base, self.size
        )
    }
}

impl Compiled {
    /// Packs the manifest with the programs' bytes, in [`Self::programs`]
    /// order, and the files' bytes, in [`Self::files`] order, into a boot
    /// package.
    ///
    /// # Errors
    ///
    /// If the programs or files do not match the manifest (a file's length
    /// must be the one it had when the manifest was compiled) or do not fit
    /// the format.
    pub fn package(&self, programs: &[&[u8]], files: &[&[u8]]) -> Result<Vec<u8>, BuildError> {
        package::build(&self.manifest, programs, files)
    }
}

/// Compiles the system manifest at `system_toml` against the workspace at
/// `workspace_root`, with no default guest (see [`compile_with`]). Paths in
/// errors are shown as `system_toml` was given.
///
/// # Errors
///
/// Every error found, if there is any.
pub fn compile(system_toml: &Path, workspace_root: &Path) -> Result<Compiled, Diagnostics> {
    compile_with(system_toml, &Environment::from_workspace(workspace_root))
}

/// Compiles the system manifest at `system_toml` in `environment` (the
/// programs, the platforms and the default guest). Relative `kernel` and
/// `initrd` paths are resolved from the manifest's folder; paths in errors
/// are shown as `system_toml` was given.
///
/// # Errors
///
/// Every error found, if there is any.
pub fn compile_with(
    system_toml: &Path,
    environment: &Environment,
) -> Result<Compiled, Diagnostics> {
    let file = system_toml.display().to_string();
    let source = std::fs::read_to_string(system_toml).map_err(|error| Diagnostics {
        errors: vec![Diagnostic {
            file: file.clone(),
            position: None,
            key: String::new(),
            message: format!("cannot read the manifest: {error}"),
            help: "check the path".to_owned(),
        }],
    })?;
    let folder = system_toml.parent().unwrap_or(Path::new(""));
    compile_source_in(&file, &absolute(folder), &source, environment)
}

/// `folder` made absolute from the current directory, if it can be.
fn absolute(folder: &Path) -> PathBuf {
    let folder = if folder.as_os_str().is_empty() {
        Path::new(".")
    } else {
        folder
    };
    std::path::absolute(folder).unwrap_or_else(|_| folder.to_path_buf())
}

/// Compiles manifest text; `file` is how to name it in errors, and relative
/// `kernel` and `initrd` paths are resolved from its folder, from the
/// current directory.
///
/// # Errors
///
/// Every error found, if there is any.
pub fn compile_source(
    file: &str,
    source: &str,
    environment: &Environment,
) -> Result<Compiled, Diagnostics> {
    let folder = Path::new(file).parent().unwrap_or(Path::new(""));
    compile_source_in(file, &absolute(folder), source, environment)
}

/// Compiles manifest text named `file` in errors, whose relative `kernel`
/// and `initrd` paths are resolved from `folder` (errors show them from
/// `file`'s folder, as `file` is shown).
///
/// # Errors
///
/// Every error found, if there is any.
pub fn compile_source_in(
    file: &str,
    folder: &Path,
    source: &str,
    environment: &Environment,
) -> Result<Compiled, Diagnostics> {
    let folder = vm::Folder::of(file, folder);
    let mut sink = Sink::new(file, source);
    let (document, syntax_errors) = toml::de::DeTable::parse_recoverable(source);
    for error in read::cascade_free(source, &syntax_errors) {
        read::syntax_error(&mut sink, error);
    }
    if sink.has_errors() {
        return Err(Diagnostics {
            errors: sink.into_diagnostics(),
        });
    }
    let mut declared = system::read(document.get_ref(), &mut sink);
    if let (Some(board), Some(platform)) = (environment.board(), declared.platform.as_mut()) {
        board.clone_into(&mut platform.value);
    }
    let mut platform_errors = Vec::new();
    let platform = declared
        .platform
        .as_ref()
        .and_then(|name| environment.load_platform(name, &mut sink, &mut platform_errors));
    let checked = check::check(
        &declared,
        platform.as_ref(),
        environment,
        &folder,
        &mut sink,
    );
    let mut errors = platform_errors;
    errors.extend(sink.into_diagnostics());
    if !errors.is_empty() {
        return Err(Diagnostics { errors });
    }
    let internal = |message: String| Diagnostics {
        errors: vec![Diagnostic {
            file: file.to_owned(),
            position: None,
            key: String::new(),
            message: format!("internal error: {message}"),
            help:
                "this is a bug in hv-manifest (tools/manifest): please report it with this manifest"
                    .to_owned(),
        }],
    };
    let system =
        checked.ok_or_else(|| internal("the checks failed without an error".to_owned()))?;
    let lower::Lowered {
        manifest,
        slots,
        files,
    } = lower::lower(&system).map_err(internal)?;
    manifest.validate().map_err(|error| {
        internal(format!(
            "the compiled manifest fails the kernel's own check: {error}"
        ))
    })?;
    let guests = guests(&system, &manifest);
    let report = report::report(&system, &manifest, &slots, &guests);
    let settings = system
        .partitions
        .iter()
        .map(|p| {
            p.settings
                .iter()
                .map(|s| (s.key.clone(), s.value.text()))
                .collect()
        })
        .collect();
    Ok(Compiled {
        manifest,
        programs: system.programs,
        slots,
        files,
        guests,
        settings,
        report,
    })
}

/// Every virtual machine of a compiled system.
fn guests(system: &model::System, manifest: &BootManifest) -> Vec<Guest> {
    let file = |name: String| manifest.files.iter().position(|f| f.name.as_str() == name);
    system
        .partitions
        .iter()
        .enumerate()
        .filter_map(|(partition, p)| {
            let guest = p.guest()?;
            let devices = p
                .devices
                .iter()
                .filter_map(|&device| system.platform.devices.get(device))
                .map(|device| GuestDevice {
                    name: device.name.clone(),
                    compatible: device.compatible.clone(),
                    base: device.span.base,
                    size: device.span.size,
                    irqs: device.irqs.clone(),
                })
                .collect();
            Some(Guest {
                partition,
                monitor: guest.monitor,
                kernel: file(format!("{}-kernel", p.name))?,
                initrd: file(format!("{}-initrd", p.name)),
                bootargs: guest.bootargs.clone(),
                devices,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
