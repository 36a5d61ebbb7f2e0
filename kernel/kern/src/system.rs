// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Loading the system the boot package describes: partitions, their memory,
//! their stage-2 tables, their programs and their capabilities.
//!
//! The kernel trusts only the compiled manifest, and re-validates it here:
//! [`Package::parse`] checks the package's magic, version and CRC, and
//! `BootManifest::decode` every rule the manifest compiler applied. A package
//! that fails either is refused with a clear message before anything is
//! loaded. Every other decision is [`hv_core::lower`]'s, tested on the host:
//! whether the devices and interrupts it gives partitions may be given on
//! this machine, where shared memory and each partition's RAM go, what each
//! partition's stage 2 maps, whether a program fits, where each vCPU starts
//! and the seed of `hv-core`'s [`hv_core::state::KernelState`]. This module
//! carries those decisions out on the machine: it zeroes RAM and copies
//! programs in, builds the stage-2 tables in kernel memory and prepares the
//! vCPUs.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use hv_arch_aarch64 as arch;
use hv_core::elf::Elf;
use hv_core::lower::{self, LowerError, Placement};
use hv_core::memory::MemoryMap;
use hv_core::pagetable::Table;
use hv_core::platform::PlatformInfo;
use hv_core::range::{PhysRange, Size};
use hv_core::state::{Seed, SeedError};
use hv_image::{BootManifest, ManifestError, Package, PackageError, PartitionSpec};

use crate::console::report;

pub(crate) use hv_core::lower::Board;

/// Why the system could not be loaded.
#[derive(Debug)]
pub(crate) enum LoadError {
    /// The package is corrupt or from another format version.
    Package(PackageError),
    /// The compiled manifest breaks a rule.
    Manifest(ManifestError),
    /// The manifest cannot become this machine's system
    /// ([`hv_core::lower`]).
    Lower(LowerError),
    /// Writing into a partition's RAM was refused.
    Ram(arch::ram::RamError),
    /// A vCPU could not be prepared.
    Vcpu(arch::vcpu::VcpuError),
    /// The capability system refused the seed.
    Seed(SeedError),
}

impl From<LowerError> for LoadError {
    fn from(e: LowerError) -> Self {
        Self::Lower(e)
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Package(e) => write!(f, "the boot package is unusable: {e}"),
            Self::Manifest(e) => write!(f, "the compiled manifest is invalid: {e}"),
            Self::Lower(e) => write!(f, "{e}"),
            Self::Ram(e) => write!(f, "loading partition RAM: {e:?}"),
            Self::Vcpu(e) => write!(f, "preparing a vCPU: {e:?}"),
            Self::Seed(e) => write!(f, "the capability system refused the system: {e:?}"),
        }
    }
}

/// What the kernel keeps about a loaded partition, for reports and restarts.
pub(crate) struct Loaded {
    /// The manifest's partitions, in order.
    pub(crate) partitions: Vec<LoadedPartition>,
}

/// One loaded partition.
pub(crate) struct LoadedPartition {
    /// Its name.
    pub(crate) name: hv_image::Name,
    /// Its RAM in physical memory.
    pub(crate) ram: PhysRange,
    /// Its VTTBR_EL2 value.
    pub(crate) vttbr: u64,
    /// Its first vCPU (they are numbered consecutively).
    pub(crate) first_vcpu: usize,
    /// Its vCPU count.
    pub(crate) vcpus: usize,
    /// Its program's entry point (an IPA; 0 for a virtual machine, which
    /// its monitor starts).
    pub(crate) entry: u64,
    /// Its program, for restarts (none for a virtual machine).
    program: Option<&'static [u8]>,
    /// Where its RAM appears (an IPA).
    ram_ipa: u64,
    /// The interrupt controller's version, which services learn in x4.
    gic_version: u64,
    /// It owns a device: its exits synchronise SErrors (`arch::serror`).
    owns_devices: bool,
}

/// Reads the package, re-validates the manifest and loads every partition.
/// Returns what was loaded and the manifest, from which the capability
/// system's seed is made ([`with_seed`]).
pub(crate) fn load(
    package: &'static [u8],
    board: &Board<'_>,
    (info, device_tree): (&PlatformInfo<'_>, &[u8]),
    memory: &mut MemoryMap,
) -> Result<(Loaded, BootManifest), LoadError> {
    let package = Package::parse(package).map_err(LoadError::Package)?;
    let manifest = package.manifest().map_err(LoadError::Manifest)?;
    lower::check(&manifest, board, info, device_tree)?;
    report!(
        "system `{}`: {} partitions, {} endpoints, {} notifications, {} shared regions",
        manifest.system,
        manifest.partitions.len(),
        manifest.endpoint_count,
        manifest.notification_count,
        manifest.shared_regions.len()
    );
    let placement = lower::place(&manifest, memory)?;
    for range in &placement.shared {
        arch::ram::zero(*range).map_err(LoadError::Ram)?;
    }
    let files = package_files(&package, &manifest)?;
    let mut partitions = Vec::new();
    let mut next_vcpu = 0;
    for (index, spec) in manifest.partitions.iter().enumerate() {
        let program = match spec.program() {
            Some(program) => Some(
                package
                    .program(usize::from(program))
                    .ok_or(LowerError::TooLarge("programs"))?,
            ),
            None => None,
        };
        let context = (&manifest, &placement, files.as_slice(), &info.gic);
        let loaded = load_partition(index, spec, program, context, next_vcpu)?;
        report!(
            "partition {index} `{}`: {} RAM at {} (IPA {:#x}), {} vCPU(s), priority {}, {} capabilities",
            spec.name,
            Size(loaded.ram.size()),
            loaded.ram,
            spec.ram_ipa,
            spec.vcpus,
            spec.priority,
            spec.caps.len()
        );
        next_vcpu += loaded.vcpus;
        partitions.push(loaded);
    }
    Ok((Loaded { partitions }, manifest))
}

/// Where each of the package's files lies in memory (the package is part
/// of the kernel image, identity-mapped), rounded out to whole pages.
fn package_files(
    package: &Package<'_>,
    manifest: &BootManifest,
) -> Result<Vec<PhysRange>, LoadError> {
    (0..manifest.files.len())
        .map(|i| {
            let bytes = package.file(i).ok_or(LowerError::TooLarge("files"))?;
            PhysRange::new(bytes.as_ptr() as u64, bytes.len() as u64)
                .and_then(|r| r.align_out(4096))
                .ok_or(LoadError::Lower(LowerError::TooLarge("files")))
        })
        .collect()
}

/// What every partition's loading may refer to: the manifest, where its
/// memory lies, where the package's files lie, and the interrupt controller.
type Context<'a> = (
    &'a BootManifest,
    &'a Placement,
    &'a [PhysRange],
    &'a hv_core::platform::Gic,
);

fn load_partition(
    index: usize,
    spec: &PartitionSpec,
    program: Option<&'static [u8]>,
    (manifest, placement, files, gic): Context<'_>,
    first_vcpu: usize,
) -> Result<LoadedPartition, LoadError> {
    let ram = *placement
        .rams
        .get(index)
        .ok_or(LowerError::TooLarge("partitions"))?;
    let checked = program
        .map(|file| lower::program(index, file, spec.ram_ipa, ram.size(), spec.vcpus.into()))
        .transpose()?;
    let elf = checked.as_ref().map(|p| &p.elf);
    let mappings = lower::stage2(index, manifest, placement, files, gic, elf)?;
    // Stage-2 tables on the kernel heap (they live as long as the system).
    let tables: &'static mut [Table] =
        Box::leak(vec![Table::EMPTY; lower::stage2_tables(spec, elf)].into_boxed_slice());
    let pool = tables.as_ptr() as u64;
    let root = lower::build_stage2(index, &mappings, tables, pool)?;
    let vttbr = arch::vcpu::vttbr(lower::vmid(index)?, root);

    let entry = match checked {
        Some(program) => {
            arch::ram::zero(ram).map_err(LoadError::Ram)?;
            for segment in program.elf.segments() {
                arch::ram::write(ram, segment.address, segment.data).map_err(LoadError::Ram)?;
            }
            program.entry
        }
        None => {
            arch::ram::zero(ram).map_err(LoadError::Ram)?;
            0
        }
    };
    let loaded = LoadedPartition {
        name: spec.name.clone(),
        ram,
        vttbr,
        first_vcpu,
        vcpus: usize::from(spec.vcpus),
        entry,
        program,
        ram_ipa: spec.ram_ipa,
        gic_version: lower::gic_version(gic),
        owns_devices: spec.owns_devices(),
    };
    if program.is_none() {
        for v in 0..loaded.vcpus {
            arch::vcpu::init_guest(first_vcpu + v, v as u8);
        }
    }
    prepare_vcpus(index, &loaded)?;
    Ok(loaded)
}

/// Sets every vCPU of a loaded partition to start at its entry, each with its
/// own stack below the top of RAM ([`lower::vcpu_start`]).
fn prepare_vcpus(index: usize, partition: &LoadedPartition) -> Result<(), LoadError> {
    for v in 0..partition.vcpus {
        let start = lower::vcpu_start(
            index,
            v,
            partition.entry,
            (partition.ram_ipa, partition.ram.size()),
            partition.gic_version,
        );
        let start = arch::vcpu::Start {
            entry: start.entry,
            stack: start.stack,
            args: start.args,
            vttbr: partition.vttbr,
            vm: partition.program.is_none(),
            sync_errors: partition.owns_devices,
        };
        arch::vcpu::prepare(partition.first_vcpu + v, start).map_err(LoadError::Vcpu)?;
    }
    Ok(())
}

/// Sets a restarting partition's vCPUs back at their entry, the first step
/// of its reload. Preparing one waits (up to a second) until no other core
/// is still inside it; `hv-core` hands the reload out only once every core
/// that ran it has let go of it (`KernelState::reload_work`), so in
/// practice nothing waits.
pub(crate) fn reload_vcpus(index: usize, partition: &LoadedPartition) -> Result<(), LoadError> {
    prepare_vcpus(index, partition)
}

/// One step of reloading a restarting partition's RAM (after
/// [`reload_vcpus`]): zeroes at most `step` bytes from `offset` and copies
/// in what of its program falls there (a virtual machine's RAM is only
/// zeroed, for its monitor to load). Returns the offset reached; the reload
/// is done when that is the RAM's size. Bounded, so that the core doing it
/// (with interrupts masked) is held up at most that long per step.
pub(crate) fn reload_step(
    index: usize,
    partition: &LoadedPartition,
    offset: u64,
    step: u64,
) -> Result<u64, LoadError> {
    let ram = partition.ram;
    let Some((offset, len)) = lower::reload_chunk(ram.size(), offset, step) else {
        return Ok(ram.size());
    };
    let chunk = PhysRange::new(ram.start() + offset, len).ok_or(LowerError::TooLarge("memory"))?;
    arch::ram::zero(chunk).map_err(LoadError::Ram)?;
    let Some(program) = partition.program else {
        return Ok(offset + len);
    };
    let elf = Elf::parse(program).map_err(|e| LowerError::Program(index, e))?;
    for piece in lower::reload_pieces(&elf, (offset, len)) {
        let (at, bytes) = piece.map_err(|e| LowerError::Program(index, e))?;
        arch::ram::write(chunk, at, bytes).map_err(LoadError::Ram)?;
    }
    Ok(offset + len)
}

/// The capability system's seed for `manifest` ([`lower::with_seed`]):
/// calls `f` with it.
pub(crate) fn with_seed<R>(
    manifest: &BootManifest,
    cores: usize,
    counter: lower::Counter,
    f: impl FnOnce(&Seed<'_>) -> R,
) -> Result<R, LoadError> {
    Ok(lower::with_seed(manifest, cores, counter, f)?)
}
