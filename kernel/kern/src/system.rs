// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Loading the system the boot package describes: partitions, their memory,
//! their stage-2 tables, their programs and their capabilities.
//!
//! The kernel trusts only the compiled manifest, and re-validates it here:
//! [`Package::parse`] checks the package's magic, version and CRC, and
//! `BootManifest::decode` every rule the manifest compiler applied. A package
//! that fails either is refused with a clear message before anything is
//! loaded, and so is one that gives a partition a device it may not have
//! ([`hv_core::devices`]: the rule the compiler applies, checked against the
//! device tree and the board's list of devices). Then, for each partition: its RAM is carved from free memory (or
//! claimed where the manifest fixed it), zeroed, its program's segments
//! copied in, its stage-2 tables built (RAM, then each device and shared
//! region it is given), its vCPUs prepared, and its capabilities seeded into
//! `hv-core`'s [`KernelState`].

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use hv_abi::hypercall::Rights;
use hv_arch_aarch64 as arch;
use hv_core::cap::{Capability, EndpointId, NotificationId, PartitionId};
use hv_core::devices::{self, DeviceError, Peripheral};
use hv_core::elf::{Elf, ElfError};
use hv_core::memory::{MapError as MemoryError, MemoryMap, Use};
use hv_core::pagetable::{self, Attributes, Builder, Regime, Table};
use hv_core::platform::PlatformInfo;
use hv_core::range::{PhysRange, Size};
use hv_core::state::{EndpointSeed, IrqSeed, PartitionSeed, ReplySeed, Seed, SeedError};
use hv_image::ManifestError;
use hv_image::{BootManifest, MappingKind, Object, PartitionSpec};
use hv_image::{Package, PackageError};

use crate::boot::report;

/// Translation tables per partition for its RAM (in blocks) and a few small
/// mappings in pages; larger mappings (a monitor's view of its guest's
/// files, which lie on page boundaries only) add a table per 2 MiB.
const STAGE2_TABLES: usize = 16;

/// Each vCPU's stack, carved from the top of its partition's RAM.
const VCPU_STACK: u64 = 16 << 10;

/// Why the system could not be loaded.
#[derive(Debug)]
pub(crate) enum LoadError {
    /// The package is corrupt or from another format version.
    Package(PackageError),
    /// The compiled manifest breaks a rule.
    Manifest(ManifestError),
    /// Built for another platform.
    Platform,
    /// The manifest gives a partition a device it may not have.
    Device {
        /// The device's name.
        device: hv_image::Name,
        /// The partition given it.
        owner: hv_image::Name,
        /// Its registers.
        pa: u64,
        /// Why not.
        why: DeviceError,
    },
    /// The manifest binds a device an interrupt that is not the device's.
    Interrupt(hv_image::Name, u32),
    /// Out of memory, or a fixed region is not free.
    Memory(&'static str, MemoryError),
    /// A program is not a loadable AArch64 ELF file.
    Program(usize, ElfError),
    /// A program does not fit its partition's RAM with the vCPU stacks.
    ProgramTooLarge(usize),
    /// Stage-2 tables could not be built.
    Stage2(usize, pagetable::MapError),
    /// Writing into a partition's RAM was refused.
    Ram(arch::ram::RamError),
    /// A vCPU could not be prepared.
    Vcpu(arch::vcpu::VcpuError),
    /// The capability system refused the seed.
    Seed(SeedError),
    /// An index does not fit the kernel's tables.
    TooLarge(&'static str),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Package(e) => write!(f, "the boot package is unusable: {e}"),
            Self::Manifest(e) => write!(f, "the compiled manifest is invalid: {e}"),
            Self::Platform => f.write_str("the system was built for another platform"),
            Self::Device {
                device,
                owner,
                pa,
                why,
            } => write!(
                f,
                "the manifest gives partition `{owner}` device `{device}` at {pa:#x}, which no partition may have: {why}"
            ),
            Self::Interrupt(device, intid) => write!(
                f,
                "the manifest binds INTID {intid} as device `{device}`'s, but it is not that device's"
            ),
            Self::Memory(what, e) => write!(f, "no memory for {what}: {e}"),
            Self::Program(p, e) => write!(f, "partition {p}'s program: {e}"),
            Self::ProgramTooLarge(p) => write!(f, "partition {p}'s program does not fit its RAM"),
            Self::Stage2(p, e) => write!(f, "partition {p}'s stage-2 tables: {e:?}"),
            Self::Ram(e) => write!(f, "loading partition RAM: {e:?}"),
            Self::Vcpu(e) => write!(f, "preparing a vCPU: {e:?}"),
            Self::Seed(e) => write!(f, "the capability system refused the system: {e:?}"),
            Self::TooLarge(what) => write!(f, "too many {what} for the kernel's tables"),
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
/// Returns what was loaded and the seed the capability system starts from.
pub(crate) fn load(
    package: &'static [u8],
    platform: &Board,
    machine: (&PlatformInfo<'_>, &[u8]),
    memory: &mut MemoryMap,
) -> Result<(Loaded, BootManifest), LoadError> {
    let package = Package::parse(package).map_err(LoadError::Package)?;
    let manifest = package.manifest().map_err(LoadError::Manifest)?;
    if manifest.platform.as_str() != platform.name {
        return Err(LoadError::Platform);
    }
    check_devices(&manifest, machine, platform)?;
    report!(
        "system `{}`: {} partitions, {} endpoints, {} notifications, {} shared regions",
        manifest.system,
        manifest.partitions.len(),
        manifest.endpoint_count,
        manifest.notification_count,
        manifest.shared_regions.len()
    );
    let mut shared = Vec::new();
    for region in &manifest.shared_regions {
        let range = memory
            .allocate(region.size, 4096, Use::Shared)
            .map_err(|e| LoadError::Memory("shared memory", e))?;
        arch::ram::zero(range).map_err(LoadError::Ram)?;
        shared.push(range);
    }
    // Every partition's RAM first: a monitor maps its guest's, which may
    // come later in the manifest.
    let mut rams = Vec::new();
    for spec in &manifest.partitions {
        rams.push(allocate_ram(spec, memory)?);
    }
    let files = package_files(&package, &manifest)?;
    let context = Shared {
        manifest: &manifest,
        shared: &shared,
        rams: &rams,
        files: &files,
        gic: machine.0.gic,
    };
    let mut partitions = Vec::new();
    let mut next_vcpu = 0;
    for (index, spec) in manifest.partitions.iter().enumerate() {
        let program = match spec.program() {
            Some(program) => Some(
                package
                    .program(usize::from(program))
                    .ok_or(LoadError::TooLarge("programs"))?,
            ),
            None => None,
        };
        let loaded = load_partition(index, spec, program, &context, next_vcpu)?;
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

/// What the kernel knows of its board before it reads the device tree.
pub(crate) struct Board {
    /// Its name, which the manifest must name.
    pub(crate) name: &'static str,
    /// The devices partitions may own.
    pub(crate) devices: &'static [Peripheral],
    /// The kernel's console UART.
    pub(crate) console: PhysRange,
}

/// Every device the manifest gives a partition may be given on this
/// machine, by the rule the compiler applied (`hv_core::devices`): the
/// kernel's own devices, memory, bus masters and firmware's are refused,
/// and so is the console UART unless a partition reads the kernel log
/// (then the kernel stops printing to it once the system runs). Every
/// interrupt bound to a device, or passed through, is that device's.
fn check_devices(
    manifest: &BootManifest,
    (info, device_tree): (&PlatformInfo<'_>, &[u8]),
    platform: &Board,
) -> Result<(), LoadError> {
    let console = manifest.kernel_log.is_none().then_some(platform.console);
    let mut found = Vec::new();
    for d in &manifest.devices {
        let owner = manifest
            .partitions
            .get(usize::from(d.owner))
            .ok_or(LoadError::TooLarge("partitions"))?;
        let peripheral =
            devices::check(info, device_tree, platform.devices, (d.pa, d.size), console).map_err(
                |why| LoadError::Device {
                    device: d.name.clone(),
                    owner: owner.name.clone(),
                    pa: d.pa,
                    why,
                },
            )?;
        found.push(peripheral);
    }
    let bound = manifest.irqs.iter().map(|i| (i.device, i.intid));
    let passed = manifest.passthrough.iter().map(|i| (i.device, i.intid));
    for (device, intid) in bound.chain(passed) {
        let index = usize::from(device);
        let ours = found.get(index).is_some_and(|p| p.has_irq(intid));
        if !ours {
            let name = manifest
                .devices
                .get(index)
                .map(|d| d.name.clone())
                .unwrap_or_default();
            return Err(LoadError::Interrupt(name, intid));
        }
    }
    Ok(())
}

/// What every partition's loading may refer to.
struct Shared<'a> {
    manifest: &'a BootManifest,
    /// Each shared region's memory.
    shared: &'a [PhysRange],
    /// Each partition's RAM.
    rams: &'a [PhysRange],
    /// Each package file's bytes in memory, page-aligned.
    files: &'a [PhysRange],
    /// The interrupt controller.
    gic: hv_core::platform::Gic,
}

/// Carves (or claims) a partition's RAM.
fn allocate_ram(spec: &PartitionSpec, memory: &mut MemoryMap) -> Result<PhysRange, LoadError> {
    match spec.memory_base {
        Some(base) => {
            let range =
                PhysRange::new(base, spec.memory_size).ok_or(LoadError::TooLarge("memory"))?;
            memory.claim(range, Use::Partition)
        }
        // 2 MiB alignment lets stage 2 map the RAM with blocks.
        None => memory.allocate(spec.memory_size, 2 << 20, Use::Partition),
    }
    .map_err(|e| LoadError::Memory("partition RAM", e))
}

/// Where each of the package's files lies in memory (the package is part
/// of the kernel image, identity-mapped), rounded out to whole pages.
fn package_files(
    package: &Package<'_>,
    manifest: &BootManifest,
) -> Result<Vec<PhysRange>, LoadError> {
    (0..manifest.files.len())
        .map(|i| {
            let bytes = package.file(i).ok_or(LoadError::TooLarge("files"))?;
            PhysRange::new(bytes.as_ptr() as u64, bytes.len() as u64)
                .and_then(|r| r.align_out(4096))
                .ok_or(LoadError::TooLarge("files"))
        })
        .collect()
}

fn load_partition(
    index: usize,
    spec: &PartitionSpec,
    program: Option<&'static [u8]>,
    context: &Shared<'_>,
    first_vcpu: usize,
) -> Result<LoadedPartition, LoadError> {
    let manifest = context.manifest;
    let ram = *context
        .rams
        .get(index)
        .ok_or(LoadError::TooLarge("partitions"))?;
    let large = spec
        .mappings
        .iter()
        .map(|m| {
            usize::try_from(m.size >> 21)
                .unwrap_or(usize::MAX)
                .saturating_add(2)
        })
        .fold(0usize, usize::saturating_add);
    // Stage-2 tables on the kernel heap (they live as long as the system).
    let tables: &'static mut [Table] =
        Box::leak(vec![Table::EMPTY; STAGE2_TABLES.saturating_add(large)].into_boxed_slice());
    let root = tables.as_ptr() as u64;
    let mut builder =
        Builder::new(tables, root, Regime::Stage2).map_err(|e| LoadError::Stage2(index, e))?;
    let ram_view = PhysRange::new(spec.ram_ipa, ram.size()).ok_or(LoadError::TooLarge("memory"))?;
    builder
        .map_to(ram_view, ram.start(), Attributes::ReadWriteExecute)
        .map_err(|e| LoadError::Stage2(index, e))?;
    for mapping in &spec.mappings {
        let view =
            PhysRange::new(mapping.ipa, mapping.size).ok_or(LoadError::TooLarge("mappings"))?;
        let (output, attributes) = match mapping.kind {
            MappingKind::Device { device } => {
                let device = manifest
                    .devices
                    .get(usize::from(device))
                    .ok_or(LoadError::TooLarge("devices"))?;
                (device.pa, Attributes::Device)
            }
            MappingKind::GuestRam { partition } => {
                let range = context
                    .rams
                    .get(usize::from(partition))
                    .ok_or(LoadError::TooLarge("partitions"))?;
                (range.start(), Attributes::ReadWrite)
            }
            MappingKind::File { file } => {
                let range = context
                    .files
                    .get(usize::from(file))
                    .ok_or(LoadError::TooLarge("files"))?;
                (range.start(), Attributes::ReadOnly)
            }
            MappingKind::Shared { region } => {
                let range = context
                    .shared
                    .get(usize::from(region))
                    .ok_or(LoadError::TooLarge("shared regions"))?;
                let attributes = match (
                    mapping.rights.contains(Rights::WRITE),
                    mapping.rights.contains(Rights::EXECUTE),
                ) {
                    (true, true) => Attributes::ReadWriteExecute,
                    (true, false) => Attributes::ReadWrite,
                    (false, true) => Attributes::Code,
                    (false, false) => Attributes::ReadOnly,
                };
                (range.start(), attributes)
            }
        };
        builder
            .map_to(view, output, attributes)
            .map_err(|e| LoadError::Stage2(index, e))?;
    }
    let gic_version = match context.gic.version {
        hv_core::platform::GicVersion::V2 => 2,
        hv_core::platform::GicVersion::V3 => 3,
    };
    // A GICv2 guest reaches the GIC's virtual CPU interface (GICV) where its
    // CPU interface would be; on GICv3 its CPU interface is system registers.
    if spec.vm().is_some()
        && let Some(gicv) = context.gic.virtual_cpu_interface
    {
        let view = PhysRange::new(hv_abi::vm::GUEST_GICC, hv_abi::vm::GUEST_GICC_SIZE)
            .ok_or(LoadError::TooLarge("mappings"))?;
        builder
            .map_to(view, gicv.start(), Attributes::Device)
            .map_err(|e| LoadError::Stage2(index, e))?;
    }
    let vmid = u8::try_from(index + 1).map_err(|_| LoadError::TooLarge("partitions"))?;
    let vttbr = arch::vcpu::vttbr(vmid, builder.root_address());

    let entry = match program {
        Some(program) => load_program(index, program, ram, spec.ram_ipa, usize::from(spec.vcpus))?,
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
        gic_version,
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

/// Zeroes `ram` and copies the program's segments in; returns the entry IPA.
fn load_program(
    index: usize,
    program: &[u8],
    ram: PhysRange,
    ram_ipa: u64,
    vcpus: usize,
) -> Result<u64, LoadError> {
    let elf = Elf::parse(program).map_err(|e| LoadError::Program(index, e))?;
    let (_, end) = elf
        .memory_span()
        .ok_or(LoadError::Program(index, ElfError::BadSegment))?;
    let stacks = VCPU_STACK * vcpus as u64;
    if end
        .checked_add(stacks)
        .is_none_or(|needed| needed > ram.size())
    {
        return Err(LoadError::ProgramTooLarge(index));
    }
    arch::ram::zero(ram).map_err(LoadError::Ram)?;
    for segment in elf.segments() {
        arch::ram::write(ram, segment.address, segment.data).map_err(LoadError::Ram)?;
    }
    Ok(ram_ipa + elf.entry())
}

/// Sets every vCPU of a loaded partition to start at its entry, each with its
/// own stack below the top of RAM.
fn prepare_vcpus(index: usize, partition: &LoadedPartition) -> Result<(), LoadError> {
    let top = partition.ram_ipa + partition.ram.size();
    for v in 0..partition.vcpus {
        let start = arch::vcpu::Start {
            entry: partition.entry,
            stack: top - VCPU_STACK * v as u64,
            args: [
                index as u64,
                partition.ram_ipa,
                partition.ram.size(),
                v as u64,
                partition.gic_version,
            ],
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
/// is still inside it; the caller first checks that every core that may
/// have run it has taken its kick, so in practice nothing waits.
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
    let len = step.min(ram.size().saturating_sub(offset));
    let Some(chunk) = PhysRange::new(ram.start() + offset, len) else {
        return Ok(ram.size());
    };
    arch::ram::zero(chunk).map_err(LoadError::Ram)?;
    let Some(program) = partition.program else {
        return Ok(offset + len);
    };
    let elf = Elf::parse(program).map_err(|e| LoadError::Program(index, e))?;
    for segment in elf.segments() {
        let (start, end) = (segment.address, segment.address + segment.data.len() as u64);
        let (from, to) = (start.max(offset), end.min(offset + len));
        if from >= to {
            continue;
        }
        let bytes = segment
            .data
            .get((from - start) as usize..(to - start) as usize)
            .ok_or(LoadError::Program(index, ElfError::BadSegment))?;
        arch::ram::write(chunk, from - offset, bytes).map_err(LoadError::Ram)?;
    }
    Ok(offset + len)
}

/// The capability system's seed for `manifest`: calls `f` with it (the seed
/// borrows tables built here).
pub(crate) fn with_seed<R>(
    manifest: &BootManifest,
    cores: usize,
    f: impl FnOnce(&Seed<'_>) -> R,
) -> Result<R, LoadError> {
    let mut caps: Vec<Vec<Option<Capability>>> = Vec::new();
    for spec in &manifest.partitions {
        let mut table = Vec::new();
        for cap in &spec.caps {
            table.push(Some(
                Capability::new(cap.object, cap.rights).with_badge(cap.badge),
            ));
        }
        caps.push(table);
    }
    let partitions: Vec<PartitionSeed<'_>> = manifest
        .partitions
        .iter()
        .zip(&caps)
        .map(|(spec, table)| PartitionSeed {
            vcpus: usize::from(spec.vcpus),
            cores: u64::from(spec.cores),
            priority: spec.priority,
            fault_policy: spec.fault,
            capabilities: table,
            exits: spec
                .vm()
                .and_then(|vm| u8::try_from(vm.exit_endpoint).ok())
                .map(EndpointId),
        })
        .collect();
    // An endpoint's server is the partition that may receive on it.
    let mut endpoints = vec![EndpointSeed::default(); usize::from(manifest.endpoint_count)];
    for (p, spec) in manifest.partitions.iter().enumerate() {
        for cap in &spec.caps {
            if let Object::Endpoint(e) = cap.object
                && cap.rights.contains(Rights::READ)
                && let Some(seed) = endpoints.get_mut(usize::from(e))
            {
                seed.server = Some(PartitionId(
                    u8::try_from(p).map_err(|_| LoadError::TooLarge("partitions"))?,
                ));
            }
        }
    }
    let irqs: Vec<IrqSeed> = manifest
        .irqs
        .iter()
        .map(|irq| {
            Ok(IrqSeed {
                intid: irq.intid,
                notification: NotificationId(
                    u8::try_from(irq.notification)
                        .map_err(|_| LoadError::TooLarge("notifications"))?,
                ),
                badge: irq.badge,
                device: Some(irq.device),
            })
        })
        .collect::<Result<_, LoadError>>()?;
    let replies: Vec<ReplySeed> = manifest
        .replies
        .iter()
        .map(|&owner| {
            Ok(ReplySeed {
                owner: PartitionId(
                    u8::try_from(owner).map_err(|_| LoadError::TooLarge("partitions"))?,
                ),
            })
        })
        .collect::<Result<_, LoadError>>()?;
    let seed = Seed {
        cores,
        partitions: &partitions,
        endpoints: &endpoints,
        notifications: usize::from(manifest.notification_count),
        irqs: &irqs,
        replies: &replies,
        kernel_log: match manifest.kernel_log {
            Some(log) => Some((
                NotificationId(
                    u8::try_from(log.notification)
                        .map_err(|_| LoadError::TooLarge("notifications"))?,
                ),
                log.badge,
            )),
            None => None,
        },
    };
    Ok(f(&seed))
}
