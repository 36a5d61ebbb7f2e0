// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Lowering: how a compiled manifest becomes the kernel's system, decided as
//! data so that the host tests see every decision.
//!
//! The kernel glue (`kernel/kern/src/system.rs`) parses the boot package and
//! decodes the manifest (`hv_image`, which validates it again), then asks
//! this module, in order:
//!
//! 1. [`check`]: whether the manifest is for this board, and whether every
//!    device and interrupt it gives a partition may be given on this machine
//!    ([`crate::devices`], the rule the compiler applied).
//! 2. [`place`]: where each shared region and each partition's RAM lies in
//!    physical memory.
//! 3. [`program`]: whether a service's program fits its RAM beside its vCPU
//!    stacks, and where it starts.
//! 4. [`stage2`]: each partition's stage-2 mappings (its RAM, a program's
//!    with its segments' access, then its devices, shared memory, guests'
//!    RAM and files, and a GICv2 guest's virtual CPU interface),
//!    [`stage2_tables`] how many tables they may take and [`build_stage2`]
//!    the tables themselves, in memory the glue gives.
//! 5. [`vcpu_start`]: where each vCPU starts, on which stack, with which
//!    arguments.
//! 6. [`with_seed`]: the [`Seed`] the kernel's state boots from.
//!
//! and, to restart a partition, [`reload_chunk`] and [`reload_pieces`]: which
//! part of its RAM one bounded step zeroes, and what of its program it copies
//! back there. The glue does only what touches the machine: zeroing and
//! copying RAM, installing tables, preparing vCPUs.
//!
//! Nothing here trusts the manifest more than its decoder did: every index
//! is a checked `get`, and what does not fit is a [`LowerError`].

use core::fmt;

use heapless::Vec;
use hv_abi::hypercall::Rights;
use hv_image::{
    BootManifest, MAX_CAPS, MAX_ENDPOINTS, MAX_FAULT_SIGNALS, MAX_IRQS, MAX_MAPPINGS,
    MAX_PARTITIONS, MAX_REPLIES, MAX_SHARED_REGIONS, MappingKind, Name, Object, PAGE_SIZE,
    PartitionSpec,
};

use crate::cap::{EndpointId, NotificationId, PartitionId};
use crate::devices::{self, DeviceError, Peripheral};
use crate::elf::{Elf, ElfError, Segment};
use crate::memory::{MapError, MemoryMap, Use};
use crate::pagetable::{self, Attributes, Builder, Regime, Table};
use crate::platform::{Gic, GicVersion, PlatformInfo};
use crate::range::PhysRange;
use crate::state::{
    EndpointSeed, FaultSignalSeed, IrqSeed, PartitionSeed, ReplySeed, Seed, TimeSeed,
};
use hv_image::Capability;

/// Each vCPU's stack, carved from the top of its partition's RAM.
pub const VCPU_STACK: u64 = 16 << 10;

/// Translation tables per partition for its RAM (in blocks) and a few small
/// mappings in pages; larger mappings (a monitor's view of its guest's
/// files, which lie on page boundaries only) add a table per 2 MiB.
pub const STAGE2_TABLES: usize = 16;

/// The alignment of RAM the kernel allocates for a partition: 2 MiB lets
/// stage 2 map it with blocks.
pub const RAM_ALIGN: u64 = 2 << 20;

/// The loadable segments a program may have ([`program`]): one linked with
/// `services/rt/link.x` has four.
pub const MAX_SEGMENTS: usize = 8;

/// The pieces a partition's RAM may be mapped in ([`ram_pieces`]): each
/// segment starts and ends one at most. A program linked with
/// `services/rt/link.x` takes three (code and read-only data, read-only
/// data, writable data and the rest).
pub const MAX_RAM_PIECES: usize = 2 * MAX_SEGMENTS + 1;

/// A partition's stage-2 mappings: its RAM's pieces, each of its manifest
/// mappings, and a virtual machine's GIC virtual CPU interface.
pub const MAX_STAGE2_MAPPINGS: usize = MAX_MAPPINGS + MAX_RAM_PIECES + 1;

/// The counter that runs a system's schedule and budgets: its frequency
/// (`CNTFRQ_EL0`) and the value at which every core starts the major frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counter {
    /// Ticks per second.
    pub hz: u64,
    /// The counter value at which the major frame (and every budget's
    /// first period) starts on every core.
    pub start: u64,
}

impl Counter {
    /// For tests of systems without a schedule or budgets, which read no
    /// counter.
    pub const NONE: Self = Self { hz: 0, start: 0 };
}

/// Why a manifest cannot become this machine's system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LowerError {
    /// Built for another platform.
    Platform,
    /// The manifest gives a partition a device it may not have.
    Device {
        /// The device's name.
        device: Name,
        /// The partition given it.
        owner: Name,
        /// Its registers.
        pa: u64,
        /// Why not.
        why: DeviceError,
    },
    /// The manifest binds a device an interrupt that is not the device's.
    Interrupt(Name, u32),
    /// Out of memory, or a fixed region is not free.
    Memory(&'static str, MapError),
    /// A program is not a loadable AArch64 ELF file.
    Program(usize, ElfError),
    /// A program does not fit its partition's RAM with the vCPU stacks.
    ProgramTooLarge(usize),
    /// Stage-2 tables could not be built.
    Stage2(usize, pagetable::MapError),
    /// An index does not fit the kernel's tables, or names nothing.
    TooLarge(&'static str),
}

impl fmt::Display for LowerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
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
            Self::TooLarge(what) => write!(f, "too many {what} for the kernel's tables"),
        }
    }
}

/// What the kernel knows of its board before it reads the device tree.
#[derive(Clone, Copy, Debug)]
pub struct Board<'a> {
    /// Its name, which the manifest must name.
    pub name: &'a str,
    /// The devices partitions may own (`platform.toml`).
    pub devices: &'a [Peripheral],
    /// The kernel's console UART.
    pub console: PhysRange,
}

/// Checks that `manifest` was built for `board`, that every device it gives
/// a partition may be given on this machine (`info`, read from
/// `device_tree`), by the rule the compiler applied: the kernel's own
/// devices, memory, bus masters and firmware's are refused, and so is the
/// console UART unless a partition reads the kernel log (then the kernel
/// stops printing to it once the system runs). And that every interrupt
/// bound to a device, or passed through, is that device's.
///
/// # Errors
///
/// [`LowerError::Platform`], then the first device refused
/// ([`LowerError::Device`]), then the first interrupt that is not its
/// device's ([`LowerError::Interrupt`]).
pub fn check(
    manifest: &BootManifest,
    board: &Board<'_>,
    info: &PlatformInfo<'_>,
    device_tree: &[u8],
) -> Result<(), LowerError> {
    if manifest.platform.as_str() != board.name {
        return Err(LowerError::Platform);
    }
    let console = manifest.kernel_log.is_none().then_some(board.console);
    let mut found: Vec<&Peripheral, { hv_image::MAX_DEVICES }> = Vec::new();
    for d in &manifest.devices {
        let owner = manifest
            .partitions
            .get(usize::from(d.owner))
            .ok_or(LowerError::TooLarge("partitions"))?;
        let peripheral = devices::check(info, device_tree, board.devices, (d.pa, d.size), console)
            .map_err(|why| LowerError::Device {
                device: d.name.clone(),
                owner: owner.name.clone(),
                pa: d.pa,
                why,
            })?;
        found
            .push(peripheral)
            .map_err(|_| LowerError::TooLarge("devices"))?;
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
            return Err(LowerError::Interrupt(name, intid));
        }
    }
    Ok(())
}

/// Where a system's memory lies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Each shared region's memory, in the manifest's order.
    pub shared: Vec<PhysRange, MAX_SHARED_REGIONS>,
    /// Each partition's RAM, in the manifest's order.
    pub rams: Vec<PhysRange, MAX_PARTITIONS>,
}

/// Takes the memory of every shared region, then of every partition's RAM,
/// from `memory`: each shared region from the lowest free pages, each
/// partition's RAM where the manifest fixes it (`memory_base`) or else from
/// the lowest free memory aligned to [`RAM_ALIGN`]. Every partition's RAM
/// is placed before any is loaded, because a monitor maps its guest's, which
/// may come later in the manifest.
///
/// # Errors
///
/// [`LowerError::Memory`] if memory runs out, or a fixed RAM is not free
/// (outside RAM, overlapping the kernel, or overlapping another
/// partition's).
pub fn place(manifest: &BootManifest, memory: &mut MemoryMap) -> Result<Placement, LowerError> {
    let mut placement = Placement {
        shared: Vec::new(),
        rams: Vec::new(),
    };
    for region in &manifest.shared_regions {
        let range = memory
            .allocate(region.size, PAGE_SIZE, Use::Shared)
            .map_err(|e| LowerError::Memory("shared memory", e))?;
        placement
            .shared
            .push(range)
            .map_err(|_| LowerError::TooLarge("shared regions"))?;
    }
    for spec in &manifest.partitions {
        let ram = match spec.memory_base {
            Some(base) => {
                let range =
                    PhysRange::new(base, spec.memory_size).ok_or(LowerError::TooLarge("memory"))?;
                memory.claim(range, Use::Partition)
            }
            None => memory.allocate(spec.memory_size, RAM_ALIGN, Use::Partition),
        }
        .map_err(|e| LowerError::Memory("partition RAM", e))?;
        placement
            .rams
            .push(ram)
            .map_err(|_| LowerError::TooLarge("partitions"))?;
    }
    Ok(placement)
}

/// One stage-2 mapping: `ipa` in the partition's address space shows the
/// physical memory from `pa`, with `attributes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stage2Mapping {
    /// Where, in the partition's address space.
    pub ipa: PhysRange,
    /// The physical address `ipa` starts at.
    pub pa: u64,
    /// How: memory type and access.
    pub attributes: Attributes,
}

/// The stage-2 mappings of partition `index`: its RAM in the pieces
/// [`ram_pieces`] gives for its `program` as [`program`] checked it (a
/// virtual machine's, with none, whole: read, write, execute), then each of
/// its manifest's mappings in order (a device as device memory; a guest's RAM read-write; a file read-only; shared memory
/// with the mapping's rights), then, for a virtual machine on a GICv2
/// machine, the GIC's virtual CPU interface where the guest's CPU interface
/// is ([`hv_abi::vm::GUEST_GICC`]). `files` is where each of the package's
/// files lies, in whole pages.
///
/// # Errors
///
/// [`LowerError::TooLarge`] if a mapping names what does not exist, or the
/// program's RAM takes more than [`MAX_RAM_PIECES`] (not one [`program`]
/// accepts).
pub fn stage2(
    index: usize,
    manifest: &BootManifest,
    placement: &Placement,
    files: &[PhysRange],
    gic: &Gic,
    program: Option<&Elf<'_>>,
) -> Result<Vec<Stage2Mapping, MAX_STAGE2_MAPPINGS>, LowerError> {
    let spec = manifest
        .partitions
        .get(index)
        .ok_or(LowerError::TooLarge("partitions"))?;
    let ram = *placement
        .rams
        .get(index)
        .ok_or(LowerError::TooLarge("partitions"))?;
    let mut out = Vec::new();
    let mut push = |ipa: u64, size: u64, pa: u64, attributes: Attributes| {
        let ipa = PhysRange::new(ipa, size).ok_or(LowerError::TooLarge("mappings"))?;
        out.push(Stage2Mapping {
            ipa,
            pa,
            attributes,
        })
        .map_err(|_| LowerError::TooLarge("mappings"))
    };
    for (start, end, attributes) in ram_pieces(program, ram.size()) {
        push(
            spec.ram_ipa.saturating_add(start),
            end - start,
            ram.start().saturating_add(start),
            attributes,
        )?;
    }
    for mapping in &spec.mappings {
        let (pa, attributes) = match mapping.kind {
            MappingKind::Device { device } => {
                let device = manifest
                    .devices
                    .get(usize::from(device))
                    .ok_or(LowerError::TooLarge("devices"))?;
                (device.pa, Attributes::Device)
            }
            MappingKind::GuestRam { partition } => {
                let range = placement
                    .rams
                    .get(usize::from(partition))
                    .ok_or(LowerError::TooLarge("partitions"))?;
                (range.start(), Attributes::ReadWrite)
            }
            MappingKind::File { file } => {
                let range = files
                    .get(usize::from(file))
                    .ok_or(LowerError::TooLarge("files"))?;
                (range.start(), Attributes::ReadOnly)
            }
            MappingKind::Shared { region } => {
                let range = placement
                    .shared
                    .get(usize::from(region))
                    .ok_or(LowerError::TooLarge("shared regions"))?;
                (range.start(), shared_attributes(mapping.rights))
            }
        };
        push(mapping.ipa, mapping.size, pa, attributes)?;
    }
    // A GICv2 guest reaches the GIC's virtual CPU interface (GICV) where its
    // CPU interface would be; on GICv3 its CPU interface is system registers.
    if spec.vm().is_some()
        && let Some(gicv) = gic.virtual_cpu_interface
    {
        push(
            hv_abi::vm::GUEST_GICC,
            hv_abi::vm::GUEST_GICC_SIZE,
            gicv.start(),
            Attributes::Device,
        )?;
    }
    Ok(out)
}

/// The pieces stage 2 maps `size` bytes of a partition's RAM in, as
/// (offset, end, attributes), in order: with no `program` (a virtual
/// machine, whose own stage 1 governs), all of it read, write and execute;
/// else each page with the access of the program's segments in it
/// (executable: read-only and executable; writable: read-write, never
/// executable; neither: read-only; writable and executable segments in one
/// page: read, write and execute), and every page no segment touches
/// (stacks, heap) read-write, never executable.
pub fn ram_pieces<'a>(
    program: Option<&'a Elf<'_>>,
    size: u64,
) -> impl Iterator<Item = (u64, u64, Attributes)> + 'a {
    let mut offset = 0;
    core::iter::from_fn(move || {
        if offset >= size {
            return None;
        }
        let start = offset;
        let (attributes, mut end) = page_access(program, start, size);
        while end < size {
            match page_access(program, end, size) {
                (same, next) if same == attributes => end = next,
                _ => break,
            }
        }
        offset = end;
        Some((start, end, attributes))
    })
}

/// The access of the page at `offset` (see [`ram_pieces`]), and where, up
/// to `size`, the segments next start or end a page.
fn page_access(program: Option<&Elf<'_>>, offset: u64, size: u64) -> (Attributes, u64) {
    let Some(elf) = program else {
        return (Attributes::ReadWriteExecute, size);
    };
    let (mut covered, mut write, mut execute, mut next) = (false, false, false, size);
    let page = |a: u64| a & !(PAGE_SIZE - 1);
    for s in elf.segments().filter(|s| s.memory_size > 0) {
        let end = s.address.saturating_add(s.memory_size);
        let (start, end) = (page(s.address), page(end.saturating_add(PAGE_SIZE - 1)));
        if start <= offset && offset < end {
            (covered, write, execute) = (true, write | s.writable, execute | s.executable);
            next = next.min(end);
        } else if start > offset {
            next = next.min(start);
        }
    }
    let attributes = match (covered, write, execute) {
        (true, true, true) => Attributes::ReadWriteExecute,
        (true, false, true) => Attributes::Code,
        (true, false, false) => Attributes::ReadOnly,
        _ => Attributes::ReadWrite,
    };
    (attributes, next)
}

/// The memory attributes of shared memory mapped with `rights` (read is
/// implied: the manifest maps nothing it cannot read).
#[must_use]
pub const fn shared_attributes(rights: Rights) -> Attributes {
    match (
        rights.contains(Rights::WRITE),
        rights.contains(Rights::EXECUTE),
    ) {
        (true, true) => Attributes::ReadWriteExecute,
        (true, false) => Attributes::ReadWrite,
        (false, true) => Attributes::Code,
        (false, false) => Attributes::ReadOnly,
    }
}

/// How many translation tables a partition's stage 2 may need, with its
/// `program`: [`STAGE2_TABLES`], two more per mapping plus one per 2 MiB of
/// it, and two more per piece of its RAM past the first ([`ram_pieces`]).
#[must_use]
pub fn stage2_tables(spec: &PartitionSpec, program: Option<&Elf<'_>>) -> usize {
    let pieces = ram_pieces(program, spec.memory_size).count();
    spec.mappings
        .iter()
        .map(|m| {
            usize::try_from(m.size >> 21)
                .unwrap_or(usize::MAX)
                .saturating_add(2)
        })
        .fold(STAGE2_TABLES, usize::saturating_add)
        .saturating_add(pieces.saturating_sub(1).saturating_mul(2))
}

/// Builds partition `index`'s stage-2 tables for `mappings` in `tables`, a
/// pool that lies at physical address `pool_base`; returns the root
/// table's physical address (for VTTBR_EL2).
///
/// # Errors
///
/// [`LowerError::Stage2`] if the pool is too small or a mapping is
/// misaligned or overlaps another.
pub fn build_stage2(
    index: usize,
    mappings: &[Stage2Mapping],
    tables: &mut [Table],
    pool_base: u64,
) -> Result<u64, LowerError> {
    let mut builder = Builder::new(tables, pool_base, Regime::Stage2)
        .map_err(|e| LowerError::Stage2(index, e))?;
    for m in mappings {
        builder
            .map_to(m.ipa, m.pa, m.attributes)
            .map_err(|e| LowerError::Stage2(index, e))?;
    }
    Ok(builder.root_address())
}

/// The VMID of partition `index`: its number plus one (VMID 0 is no
/// partition's).
///
/// # Errors
///
/// [`LowerError::TooLarge`] past 254.
pub fn vmid(index: usize) -> Result<u8, LowerError> {
    index
        .checked_add(1)
        .and_then(|v| u8::try_from(v).ok())
        .ok_or(LowerError::TooLarge("partitions"))
}

/// The interrupt controller's version as services learn it in x4: 2 or 3.
#[must_use]
pub const fn gic_version(gic: &Gic) -> u64 {
    match gic.version {
        GicVersion::V2 => 2,
        GicVersion::V3 => 3,
    }
}

/// A service's program, checked against its partition.
#[derive(Clone, Copy, Debug)]
pub struct Program<'f> {
    /// The file: its segments are copied to their addresses, as offsets
    /// into the partition's RAM.
    pub elf: Elf<'f>,
    /// Where its vCPUs start: an IPA.
    pub entry: u64,
}

/// Checks that partition `index`'s program `file` is a loadable AArch64 ELF
/// file of at most [`MAX_SEGMENTS`] segments which, with `vcpus` stacks of
/// [`VCPU_STACK`] below the top, fit `ram_size` bytes of RAM at `ram_ipa`.
///
/// # Errors
///
/// [`LowerError::Program`] for a file that is not a loadable program,
/// [`LowerError::TooLarge`] for one of more segments,
/// [`LowerError::ProgramTooLarge`] for one that does not fit.
pub fn program(
    index: usize,
    file: &[u8],
    ram_ipa: u64,
    ram_size: u64,
    vcpus: usize,
) -> Result<Program<'_>, LowerError> {
    let elf = Elf::parse(file).map_err(|e| LowerError::Program(index, e))?;
    if elf.segments().nth(MAX_SEGMENTS).is_some() {
        return Err(LowerError::TooLarge("program segments"));
    }
    let (_, end) = elf
        .memory_span()
        .ok_or(LowerError::Program(index, ElfError::BadSegment))?;
    let stacks = (vcpus as u64).checked_mul(VCPU_STACK);
    if stacks
        .and_then(|s| end.checked_add(s))
        .is_none_or(|needed| needed > ram_size)
    {
        return Err(LowerError::ProgramTooLarge(index));
    }
    let entry = ram_ipa
        .checked_add(elf.entry())
        .ok_or(LowerError::Program(index, ElfError::BadSegment))?;
    Ok(Program { elf, entry })
}

/// Where a vCPU starts, and with what.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcpuStart {
    /// Its first instruction's IPA (0 for a virtual machine's, which its
    /// monitor sets).
    pub entry: u64,
    /// Its stack pointer: the top of its partition's RAM, less a
    /// [`VCPU_STACK`] for each vCPU before it.
    pub stack: u64,
    /// x0..x4: the partition's index, its RAM's IPA and size, the vCPU's
    /// index in it and the GIC's version.
    pub args: [u64; 5],
}

/// Where vCPU `vcpu` of partition `index`, whose RAM is `ram_size` bytes at
/// `ram_ipa`, starts its program at `entry`.
#[must_use]
pub const fn vcpu_start(
    index: usize,
    vcpu: usize,
    entry: u64,
    (ram_ipa, ram_size): (u64, u64),
    gic_version: u64,
) -> VcpuStart {
    let top = ram_ipa.saturating_add(ram_size);
    VcpuStart {
        entry,
        stack: top.saturating_sub(VCPU_STACK.saturating_mul(vcpu as u64)),
        args: [index as u64, ram_ipa, ram_size, vcpu as u64, gic_version],
    }
}

/// The part of a `ram_size`-byte RAM that one reload step of at most `step`
/// bytes from `offset` covers, as (offset, length); `None` once the reload
/// is done.
#[must_use]
pub fn reload_chunk(ram_size: u64, offset: u64, step: u64) -> Option<(u64, u64)> {
    let len = step.min(ram_size.saturating_sub(offset));
    (len > 0).then_some((offset, len))
}

/// What of `elf`'s segments falls in the chunk of RAM `(offset, len)`, as
/// (offset into the chunk, bytes).
pub fn reload_pieces<'a, 'f>(
    elf: &'a Elf<'f>,
    (offset, len): (u64, u64),
) -> impl Iterator<Item = Result<(u64, &'f [u8]), ElfError>> + 'a {
    let end = offset.saturating_add(len);
    elf.segments().filter_map(move |segment: Segment<'f>| {
        let start = segment.address;
        let stop = start.saturating_add(segment.data.len() as u64);
        let (from, to) = (start.max(offset), stop.min(end));
        if from >= to {
            return None;
        }
        let bytes = usize::try_from(from - start)
            .ok()
            .zip(usize::try_from(to - start).ok())
            .and_then(|(a, b)| segment.data.get(a..b));
        Some(
            bytes
                .map(|b| (from - offset, b))
                .ok_or(ElfError::BadSegment),
        )
    })
}

/// The kernel state's seed for `manifest` on `cores` cores: calls `f` with
/// it (the seed borrows tables built here, on the stack).
///
/// Partition `n` is the manifest's partition `n`, with its vCPUs, cores,
/// priority, fault policy and capabilities (slot `n` is the manifest's
/// capability `n`, unchanged); a virtual machine's exits go to its exit
/// endpoint. An endpoint's server is the partition holding a capability to
/// receive on it (READ). Interrupt bindings, reply objects and the kernel
/// log's reader are the manifest's. Whether the seed is sound is
/// [`crate::state::KernelState::boot`]'s business.
///
/// # Errors
///
/// [`LowerError::TooLarge`] if the manifest has more of something than the
/// kernel's tables, or numbers an object past them.
pub fn with_seed<R>(
    manifest: &BootManifest,
    cores: usize,
    counter: Counter,
    f: impl FnOnce(&Seed<'_>) -> R,
) -> Result<R, LowerError> {
    let count = manifest.partitions.len();
    let mut caps = [[None::<Capability>; MAX_CAPS]; MAX_PARTITIONS];
    for (table, spec) in caps.iter_mut().zip(&manifest.partitions) {
        for (slot, cap) in table.iter_mut().zip(&spec.caps) {
            *slot = Some(*cap);
        }
    }
    let mut partitions: Vec<PartitionSeed<'_>, MAX_PARTITIONS> = Vec::new();
    for (spec, table) in manifest.partitions.iter().zip(&caps) {
        let exits = match spec.vm() {
            Some(vm) => {
                Some(EndpointId::of(vm.exit_endpoint).ok_or(LowerError::TooLarge("endpoints"))?)
            }
            None => None,
        };
        let seed = PartitionSeed {
            vcpus: usize::from(spec.vcpus),
            cores: u64::from(spec.cores),
            priority: spec.priority,
            fault_policy: spec.fault,
            capabilities: table.get(..spec.caps.len()).unwrap_or_default(),
            exits,
        };
        partitions
            .push(seed)
            .map_err(|_| LowerError::TooLarge("partitions"))?;
    }
    // An endpoint's server is the partition that may receive on it.
    let mut endpoints = [EndpointSeed::default(); MAX_ENDPOINTS];
    let endpoint_count = usize::from(manifest.endpoint_count);
    if endpoint_count > MAX_ENDPOINTS {
        return Err(LowerError::TooLarge("endpoints"));
    }
    for (p, spec) in manifest.partitions.iter().enumerate() {
        let id = u8::try_from(p).map_err(|_| LowerError::TooLarge("partitions"))?;
        for cap in &spec.caps {
            if let Object::Endpoint(e) = cap.object
                && cap.rights.contains(Rights::READ)
                && let Some(seed) = endpoints.get_mut(usize::from(e))
            {
                seed.server = Some(PartitionId(id));
            }
        }
    }
    let notification = |n: u16| NotificationId::of(n).ok_or(LowerError::TooLarge("notifications"));
    let mut irqs: Vec<IrqSeed, MAX_IRQS> = Vec::new();
    for irq in &manifest.irqs {
        let seed = IrqSeed {
            intid: irq.intid,
            notification: notification(irq.notification)?,
            badge: irq.badge,
            device: Some(irq.device),
        };
        irqs.push(seed)
            .map_err(|_| LowerError::TooLarge("interrupts"))?;
    }
    let mut replies: Vec<ReplySeed, MAX_REPLIES> = Vec::new();
    for &owner in &manifest.replies {
        let owner = PartitionId::of(owner).ok_or(LowerError::TooLarge("partitions"))?;
        replies
            .push(ReplySeed { owner })
            .map_err(|_| LowerError::TooLarge("reply objects"))?;
    }
    let kernel_log = match manifest.kernel_log {
        Some(log) => Some((notification(log.notification)?, log.badge)),
        None => None,
    };
    let partition = |n: u16| PartitionId::of(n).ok_or(LowerError::TooLarge("partitions"));
    let mut fault_signals: Vec<FaultSignalSeed, MAX_FAULT_SIGNALS> = Vec::new();
    for signal in &manifest.fault_signals {
        let seed = FaultSignalSeed {
            partition: partition(signal.partition)?,
            controller: partition(signal.controller)?,
            notification: notification(signal.notification)?,
            badge: signal.badge,
        };
        fault_signals
            .push(seed)
            .map_err(|_| LowerError::TooLarge("fault signals"))?;
    }
    let seed = Seed {
        cores,
        partitions: partitions.get(..count).unwrap_or_default(),
        endpoints: endpoints.get(..endpoint_count).unwrap_or_default(),
        notifications: usize::from(manifest.notification_count),
        irqs: &irqs,
        replies: &replies,
        kernel_log,
        fault_signals: &fault_signals,
        time: TimeSeed {
            schedule: manifest.schedule.as_ref(),
            budgets: &manifest.budgets,
            counter_hz: counter.hz,
            start: counter.start,
        },
    };
    Ok(f(&seed))
}

#[cfg(test)]
mod tests;
