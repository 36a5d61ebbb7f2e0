// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Translation validation of every build's stage-2 tables.
//!
//! For every shipped and test manifest (`systems/*.toml`, `tests/qemu/*.toml`)
//! on every machine it is built for ([`machines`]: QEMU virt with a GICv3 and
//! with a GICv2; QEMU raspi4b for the systems tested on the Pi), [`build`] makes the stage-2 tables the way the kernel does at boot
//! (`kernel/kern/src/system.rs`), with the kernel's own code built for the
//! host: `hv_core::lower::{check, place, stage2, stage2_tables,
//! build_stage2}` over a `hv_core::memory::MemoryMap` of the machine (its
//! RAM less the kernel's image, device tree and heap, as
//! `kernel/kern/src/boot.rs` makes it). Then [`walk`], written apart from
//! the builder (it shares no code with `hv_core::pagetable`), reads the
//! tables descriptor by descriptor, and [`check`] compares what they map with
//! what the manifest declares and checks the separation properties:
//!
//! - **exact**: each partition maps exactly its RAM, its devices, its shared
//!   regions, its guest's RAM and files (a monitor) and the GIC's virtual CPU
//!   interface (a virtual machine on a GICv2), each at its IPA, to its
//!   physical memory, with the declared access and memory type, and nothing
//!   else;
//! - **disjoint**: no two mappings (of one partition or two) reach the same
//!   physical page, except a shared region mapped by the partitions the
//!   manifest shares it with, a virtual machine's RAM and its monitor's view
//!   of it, a file mapped by monitors, and the GIC's virtual CPU interface;
//! - **kernel's own**: no mapping reaches the kernel's image (outside the
//!   boot package's files, which monitors read), device tree, heap (where
//!   the stage-2 tables themselves are) or firmware-reserved memory, nor a
//!   device the kernel keeps: the GIC's distributor, redistributors or CPU
//!   interface and its hypervisor control interface, and the console UART
//!   unless the kernel hands it over (a system with a kernel log). The
//!   kernel's timer is the generic timer's system registers: no memory to
//!   map;
//! - **W^X**: nothing both writable and executable but a virtual machine's
//!   RAM (its own stage 1 splits code from data), a program's page that its
//!   ELF segments make both (code and writable data in one page), and shared
//!   memory declared with both rights; devices, files and a monitor's view
//!   of its guest never executable; and, where a program's segments
//!   separate code from data at page granularity, its code not writable and
//!   its writable data not executable ([`program_wx`]). What a program's RAM must be
//!   mapped as is read from its ELF program headers here ([`segments`],
//!   [`ram_access`]), apart from the kernel's reading (`hv_core::elf`).
//!
//! What is a model here, not the machine: where the loader puts the kernel
//! and the device tree; unless `target/bulkhead/` holds this very system's
//! image ([`built_image`]), the kernel's size (an upper bound,
//! [`KERNEL_BOUND`]) and the boot package's programs (the last build of
//! each, or, where there is none, an empty stand-in, whose partition's RAM
//! is then mapped whole, as a virtual machine's). `proofs/README.md`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use hv_core::devices::Peripheral;
use hv_core::lower::{self, Board, Placement};
use hv_core::memory::{MemoryMap, Use};
use hv_core::pagetable::Table;
use hv_core::platform::{Gic, PlatformInfo};
use hv_core::range::PhysRange;
use hv_image::{BootManifest, MappingKind};

/// QEMU virt's device trees with each GIC (the same trees the kernel's
/// host tests use).
pub(crate) const MACHINES: [(&str, &[u8]); 2] = [
    (
        "virt-gicv3",
        include_bytes!("../../../../kernel/core/tests/fixtures/qemu-virt-gicv3-smp4-512m.dtb"),
    ),
    (
        "virt-gicv2",
        include_bytes!("../../../../kernel/core/tests/fixtures/qemu-virt-gicv2-smp4-512m.dtb"),
    ),
];

/// QEMU 10's `raspi4b` with Debian's device tree, as QEMU passes it (the
/// kernel's host tests' fixture).
const RPI4B: &[u8] = include_bytes!("../../../../kernel/core/tests/fixtures/rpi4b-qemu10.dtb");

/// The machines a system built for `platform` runs on, each with its
/// device tree as the kernel reads it.
///
/// # Errors
///
/// A platform this model does not know.
pub(crate) fn machines(platform: &str) -> Result<Vec<(&'static str, Vec<u8>)>, String> {
    match platform {
        "qemu-virt" => Ok(MACHINES.iter().map(|(n, d)| (*n, d.to_vec())).collect()),
        "rpi4" => {
            // The kernel moves QEMU's deleted nodes out of the root first.
            let mut blob = RPI4B.to_vec();
            hv_core::devicetree::move_nops_out(&mut blob).map_err(|e| e.to_string())?;
            Ok(vec![("rpi4", blob)])
        }
        other => Err(format!("platform `{other}` has no machine in this model")),
    }
}

/// Where QEMU's loader puts the kernel's Image: 2 MiB into RAM
/// (`platforms/qemu-virt/platform.toml`).
const IMAGE_OFFSET: u64 = 2 << 20;
/// Where it puts the device tree: 128 MiB into RAM (the same file).
const DEVICE_TREE_OFFSET: u64 = 128 << 20;
/// An upper bound of the kernel's image before its boot package (text,
/// data, .bss and stacks: 1.35 MB measured, `docs/benchmarks.md`), page
/// aligned as `link.x` ends it.
pub(crate) const KERNEL_BOUND: u64 = 2 << 20;
/// The kernel's heap (`HEAP_SIZE` in `kernel/kern/src/boot.rs`), 2 MiB
/// aligned, where the stage-2 tables are allocated.
const HEAP_SIZE: u64 = 4 << 20;
const PAGE: u64 = 4096;

/// A system manifest, compiled, with its files' lengths.
pub(crate) struct Manifest {
    /// Its path, relative to the workspace.
    pub(crate) path: String,
    /// The compiled manifest.
    pub(crate) compiled: hv_manifest::Compiled,
    /// Its built image's kernel size (where the boot package starts) and
    /// boot package, if `target/bulkhead/` holds an image of this very
    /// manifest ([`built_image`]).
    pub(crate) built: Option<(u64, Vec<u8>)>,
    /// Without a built image: each of its programs' ELF file, where the last
    /// build left one (else an empty stand-in, which no table depends on).
    pub(crate) programs: Vec<Option<Vec<u8>>>,
}

/// The kernel's size and the boot package of the image at `path`, if there
/// is one and its package carries `manifest`: the package starts at a page
/// boundary after the kernel (`image::append_package`).
pub(crate) fn built_image(path: &Path, manifest: &BootManifest) -> Option<(u64, Vec<u8>)> {
    let image = std::fs::read(path).ok()?;
    let magic = hv_image::package::MAGIC;
    let at = (PAGE as usize..image.len())
        .step_by(PAGE as usize)
        .find(|&at| image[at..].starts_with(&magic))?;
    let package = &image[at..];
    let total = usize::try_from(u64::from_le_bytes(package.get(16..24)?.try_into().ok()?)).ok()?;
    let package = package.get(..total)?;
    let parsed = hv_image::Package::parse(package).ok()?;
    (parsed.manifest().ok()? == *manifest).then(|| (at as u64, package.to_vec()))
}

/// Every shipped and test manifest's path, sorted.
pub(crate) fn manifest_paths(root: &Path) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    for folder in ["systems", "tests/qemu"] {
        let Ok(entries) = std::fs::read_dir(root.join(folder)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "toml") {
                paths.push(path);
            }
        }
    }
    paths.sort();
    paths
}

/// The kind of thing a mapping shows a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Its own RAM.
    Ram(usize),
    /// A device it owns (index in the manifest's devices).
    Device(usize),
    /// Shared region `n`.
    Shared(usize),
    /// Its guest's RAM (a monitor): the guest's partition index.
    GuestRam(usize),
    /// A file of the boot package (a monitor).
    File(usize),
    /// The GIC's virtual CPU interface (a virtual machine on a GICv2).
    Gicv,
}

/// How a page may be reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Access {
    pub(crate) read: bool,
    pub(crate) write: bool,
    pub(crate) execute: bool,
    /// Device memory (else normal, write-back, inner shareable).
    pub(crate) device: bool,
}

impl Access {
    const fn normal(read: bool, write: bool, execute: bool) -> Self {
        Self {
            read,
            write,
            execute,
            device: false,
        }
    }

    const DEVICE: Self = Self {
        read: true,
        write: true,
        execute: false,
        device: true,
    };
}

impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let flag = |on: bool, c: char| if on { c } else { '-' };
        write!(
            f,
            "{}{}{} {}",
            flag(self.read, 'r'),
            flag(self.write, 'w'),
            flag(self.execute, 'x'),
            if self.device { "device" } else { "normal" }
        )
    }
}

/// A run of pages: `size` bytes from `ipa` show the physical memory from
/// `pa`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Run {
    pub(crate) ipa: u64,
    pub(crate) pa: u64,
    pub(crate) size: u64,
    pub(crate) access: Access,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "IPA {:#x}..{:#x} -> PA {:#x} {}",
            self.ipa,
            self.ipa + self.size,
            self.pa,
            self.access
        )
    }
}

/// One partition's tables as the kernel builds them.
#[derive(Clone)]
pub(crate) struct Tables {
    /// The pool; table 0 is the root.
    pub(crate) tables: Vec<Table>,
    /// The pool's physical address (in the kernel's heap).
    pub(crate) pool: u64,
    /// The root's physical address (VTTBR_EL2's BADDR).
    pub(crate) root: u64,
}

/// A system as the kernel loads it on one machine.
#[derive(Clone)]
pub(crate) struct Built {
    pub(crate) manifest: BootManifest,
    pub(crate) placement: Placement,
    /// The machine's RAM banks.
    pub(crate) ram: Vec<PhysRange>,
    /// The kernel's memory: image, device tree, heap, firmware's.
    pub(crate) kernel: Vec<(PhysRange, &'static str)>,
    /// The boot package's files, rounded out to pages (as the kernel maps
    /// them).
    pub(crate) files: Vec<PhysRange>,
    pub(crate) gic: Gic,
    pub(crate) console: PhysRange,
    pub(crate) partitions: Vec<Tables>,
    /// Each partition's program as the boot package carries it, if it has
    /// one and it is not a stand-in.
    pub(crate) programs: Vec<Option<Vec<u8>>>,
}

/// Loads `manifest` as the kernel would on the machine whose device tree is
/// `dtb`, with the kernel's code: every decision is `hv_core::lower`'s and
/// every table `hv_core::pagetable`'s.
///
/// # Errors
///
/// What the kernel would refuse the system for, or what this model cannot
/// build.
pub(crate) fn build(
    manifest: &Manifest,
    platform: &hv_manifest::platform::Platform,
    dtb: &[u8],
) -> Result<Built, String> {
    let compiled = &manifest.compiled;
    let m = &compiled.manifest;
    let mut info = PlatformInfo::parse(dtb).map_err(|e| format!("device tree: {e}"))?;
    // The machine's RAM as the default run gives it (the platform's).
    info.memory.clear();
    for span in &platform.memory {
        let bank = PhysRange::new(span.base, span.size).ok_or("a bad RAM bank")?;
        info.memory.push(bank).map_err(|_| "too many RAM banks")?;
    }
    let devices: Vec<Peripheral> = platform
        .devices
        .iter()
        .map(|d| Peripheral {
            base: d.span.base,
            size: d.span.size,
            irqs: Box::leak(d.irqs.clone().into_boxed_slice()),
        })
        .collect();
    let console = platform
        .console
        .as_ref()
        .and_then(|c| PhysRange::new(c.span.base, c.span.size))
        .ok_or("the platform has no console")?;
    let board = Board {
        name: &platform.name,
        devices: &devices,
        console,
    };
    lower::check(m, &board, &info, dtb).map_err(|e| e.to_string())?;

    // The image: the kernel, then the boot package at a page boundary.
    let ram_base = platform
        .qemu
        .as_ref()
        .map(|q| q.ram_base)
        .ok_or("no [qemu]")?;
    // The built image's kernel size and boot package, if this very system
    // was built; else a bound and a package with stand-in programs.
    let (kernel_size, package) = match &manifest.built {
        Some((size, package)) => (*size, package.clone()),
        None => {
            let file_bytes: Vec<Vec<u8>> = compiled
                .files
                .iter()
                .map(|p| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display())))
                .collect::<Result<_, _>>()?;
            let files_in: Vec<&[u8]> = file_bytes.iter().map(Vec::as_slice).collect();
            let programs: Vec<&[u8]> = (0..compiled.programs.len())
                .map(|i| manifest.programs.get(i).and_then(Option::as_deref))
                .map(|p| p.unwrap_or_default())
                .collect();
            let package = compiled
                .package(&programs, &files_in)
                .map_err(|e| format!("boot package: {e:?}"))?;
            (KERNEL_BOUND, package)
        }
    };
    let parsed = hv_image::Package::parse(&package).map_err(|e| format!("{e}"))?;
    let image_start = ram_base + IMAGE_OFFSET;
    let package_base = image_start + kernel_size;
    let mut files = Vec::new();
    for i in 0..m.files.len() {
        let bytes = parsed.file(i).ok_or("a file outside the package")?;
        let offset = bytes.as_ptr() as u64 - package.as_ptr() as u64;
        let range = PhysRange::new(package_base + offset, bytes.len() as u64)
            .and_then(|r| r.align_out(PAGE))
            .ok_or("a file's range")?;
        files.push(range);
    }
    let image =
        PhysRange::new(image_start, kernel_size + package.len() as u64).ok_or("image range")?;
    let device_tree =
        PhysRange::new(ram_base + DEVICE_TREE_OFFSET, dtb.len() as u64).ok_or("dtb range")?;
    let mut used = vec![(image, Use::KernelImage), (device_tree, Use::DeviceTree)];
    used.extend(info.reserved.iter().map(|r| (*r, Use::Firmware)));
    let mut memory = MemoryMap::new(&info.memory, &used).map_err(|e| e.to_string())?;
    let heap = memory
        .allocate(HEAP_SIZE, 2 << 20, Use::KernelHeap)
        .map_err(|e| e.to_string())?;
    let placement = lower::place(m, &mut memory).map_err(|e| e.to_string())?;

    let mut kernel = vec![
        (image, "the kernel's image"),
        (device_tree, "the device tree"),
        (heap, "the kernel heap (stage-2 tables)"),
    ];
    kernel.extend(
        info.reserved
            .iter()
            .map(|r| (*r, "firmware-reserved memory")),
    );

    let mut partitions = Vec::new();
    let mut programs = Vec::new();
    let mut heap_used = 0;
    for (index, spec) in m.partitions.iter().enumerate() {
        // A program as the kernel checks it (`lower::program`); a stand-in
        // is none (its RAM mapped whole, as a virtual machine's).
        let program = spec
            .program()
            .and_then(|p| parsed.program(usize::from(p)))
            .filter(|p| !p.is_empty());
        let ram = placement.rams[index];
        let checked = program
            .map(|p| lower::program(index, p, spec.ram_ipa, ram.size(), spec.vcpus.into()))
            .transpose()
            .map_err(|e| e.to_string())?;
        let elf = checked.as_ref().map(|p| &p.elf);
        programs.push(program.map(<[u8]>::to_vec));
        let mappings = lower::stage2(index, m, &placement, &files, &info.gic, elf)
            .map_err(|e| e.to_string())?;
        let count = lower::stage2_tables(spec, elf);
        let pool = heap.start() + heap_used;
        heap_used += count as u64 * PAGE;
        if heap_used > heap.size() {
            return Err("the stage-2 tables do not fit the kernel heap".into());
        }
        let mut tables = vec![Table::EMPTY; count];
        let root =
            lower::build_stage2(index, &mappings, &mut tables, pool).map_err(|e| e.to_string())?;
        partitions.push(Tables { tables, pool, root });
    }
    Ok(Built {
        manifest: m.clone(),
        placement,
        ram: info.memory.to_vec(),
        kernel,
        files,
        gic: info.gic,
        console,
        partitions,
        programs,
    })
}

// The stage-2 descriptor format (Arm ARM D8.3, 4 KiB granule), read here
// without `hv_core::pagetable`.
const OUTPUT: u64 = 0x0000_ffff_ffff_f000;
/// The bits a descriptor may have set: valid and type (1:0), MemAttr
/// (5:2), S2AP (7:6), SH (9:8), AF (10), the output address (47:12) and XN
/// (54:53). Anything else (contiguous hint, 52-bit addresses, software bits)
/// is refused: the kernel sets none.
const KNOWN: u64 = OUTPUT | 0x7ff | (0b11 << 53);

/// Statistics of a walk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Walked {
    /// Tables read.
    pub(crate) tables: usize,
    /// Valid descriptors read.
    pub(crate) descriptors: usize,
}

/// Reads the stage-2 tables at `root` (39-bit IPA, starting at level 1) in
/// `tables`, a pool at `pool`, and returns every mapped page as maximal runs,
/// sorted by IPA.
///
/// # Errors
///
/// A descriptor the kernel never writes: a table outside the pool or read
/// twice, a reserved encoding, a misaligned output, unknown bits, a memory
/// type other than device-nGnRE or normal write-back, normal memory not
/// inner shareable, the access flag clear.
pub(crate) fn walk(tables: &[Table], pool: u64, root: u64) -> Result<(Vec<Run>, Walked), String> {
    let mut runs: Vec<Run> = Vec::new();
    let mut seen = vec![false; tables.len()];
    let mut stats = Walked::default();
    walk_table(tables, pool, root, 1, 0, &mut seen, &mut runs, &mut stats)?;
    Ok((merge(runs), stats))
}

#[expect(
    clippy::too_many_arguments,
    reason = "a recursive walk's state, kept explicit"
)]
fn walk_table(
    tables: &[Table],
    pool: u64,
    address: u64,
    level: u32,
    base: u64,
    seen: &mut [bool],
    runs: &mut Vec<Run>,
    stats: &mut Walked,
) -> Result<(), String> {
    let offset = address.wrapping_sub(pool);
    let index = usize::try_from(offset / PAGE).unwrap_or(usize::MAX);
    if address < pool || !offset.is_multiple_of(PAGE) || index >= tables.len() {
        return Err(format!(
            "a level-{level} table at {address:#x} lies outside the pool"
        ));
    }
    if std::mem::replace(&mut seen[index], true) {
        return Err(format!("table {address:#x} is reached twice"));
    }
    stats.tables += 1;
    let shift = 12 + 9 * (3 - level);
    for (i, &d) in tables[index].0.iter().enumerate() {
        if d & 1 == 0 {
            continue;
        }
        stats.descriptors += 1;
        let ipa = base | ((i as u64) << shift);
        let at = format!("level-{level} descriptor {d:#018x} for IPA {ipa:#x}");
        let table = d & 0b10 != 0;
        if level < 3 && table {
            if d & !(OUTPUT | 0b11) != 0 {
                return Err(format!("{at}: attributes in a table descriptor"));
            }
            walk_table(tables, pool, d & OUTPUT, level + 1, ipa, seen, runs, stats)?;
            continue;
        }
        if level == 3 && !table {
            return Err(format!("{at}: reserved encoding"));
        }
        let size = 1u64 << shift;
        if d & !KNOWN != 0 {
            return Err(format!("{at}: unknown bits {:#x}", d & !KNOWN));
        }
        let pa = d & OUTPUT;
        if !pa.is_multiple_of(size) {
            return Err(format!("{at}: output not aligned to the block"));
        }
        let device = match (d >> 2) & 0xf {
            0b0001 => true,
            0b1111 => false,
            other => return Err(format!("{at}: memory type {other:#06b}")),
        };
        if !device && (d >> 8) & 0b11 != 0b11 {
            return Err(format!("{at}: normal memory not inner shareable"));
        }
        if d & (1 << 10) == 0 {
            return Err(format!("{at}: access flag clear"));
        }
        runs.push(Run {
            ipa,
            pa,
            size,
            access: Access {
                read: d & (1 << 6) != 0,
                write: d & (1 << 7) != 0,
                execute: (d >> 53) & 0b11 == 0,
                device,
            },
        });
    }
    Ok(())
}

/// `runs` sorted by IPA, neighbours that continue each other (in IPA and
/// PA, with the same access) joined.
pub(crate) fn merge(mut runs: Vec<Run>) -> Vec<Run> {
    runs.sort_by_key(|r| r.ipa);
    let mut out: Vec<Run> = Vec::new();
    for run in runs {
        if let Some(last) = out.last_mut()
            && last.ipa + last.size == run.ipa
            && last.pa + last.size == run.pa
            && last.access == run.access
        {
            last.size += run.size;
            continue;
        }
        out.push(run);
    }
    out
}

/// How a partition's `size` bytes of RAM must be mapped, as (offset, size,
/// access) runs: a virtual machine's (no `program`) read, write and execute
/// (its own stage 1 governs); a program's page by page as the segments in
/// that page ask (readable; writable if one of them is; executable if one
/// is), pages no segment touches read-write (stacks, heap). Written from
/// the segments page by page, not as `hv_core::lower::ram_pieces` is.
pub(crate) fn ram_access(
    program: Option<&[(u64, u64, bool, bool)]>,
    size: u64,
) -> Vec<(u64, u64, Access)> {
    let Some(segments) = program else {
        return vec![(0, size, Access::normal(true, true, true))];
    };
    let data = Access::normal(true, true, false);
    // Past the last segment's last page: all stacks and heap.
    let last = segments.iter().map(|s| s.1.next_multiple_of(PAGE)).max();
    let last = last.unwrap_or(0).min(size);
    let mut runs: Vec<(u64, u64, Access)> = Vec::new();
    let mut add = |at: u64, bytes: u64, access: Access| match runs.last_mut() {
        Some(run) if run.2 == access => run.1 += bytes,
        _ => runs.push((at, bytes, access)),
    };
    for page in (0..last).step_by(PAGE as usize) {
        let touching = || {
            segments
                .iter()
                .filter(move |s| s.0 < page + PAGE && page < s.1)
        };
        let access = if touching().next().is_none() {
            data
        } else {
            Access::normal(true, touching().any(|s| s.2), touching().any(|s| s.3))
        };
        add(page, PAGE, access);
    }
    if last < size {
        add(last, size - last, data);
    }
    runs
}

/// What the manifest declares partition `index` maps, with what each
/// mapping is, derived from the manifest and where memory was placed
/// (not from `hv_core::lower::stage2`).
///
/// # Errors
///
/// A mapping the manifest may not make: larger than what it maps, a device
/// another partition owns, a guest's RAM by a partition that is not its
/// monitor, a file by a partition that monitors no virtual machine.
pub(crate) fn expected(built: &Built, index: usize) -> Result<Vec<(Run, Kind)>, String> {
    let m = &built.manifest;
    let spec = &m.partitions[index];
    let ram = built.placement.rams[index];
    let program = match &built.programs[index] {
        Some(elf) => Some(segments(elf)?),
        None => None,
    };
    let mut out: Vec<(Run, Kind)> = ram_access(program.as_deref(), spec.memory_size)
        .into_iter()
        .map(|(offset, size, access)| {
            let run = Run {
                ipa: spec.ram_ipa + offset,
                pa: ram.start() + offset,
                size,
                access,
            };
            (run, Kind::Ram(index))
        })
        .collect();
    if ram.size() != spec.memory_size {
        return Err(format!(
            "RAM placed is {:#x} bytes, the manifest says {:#x}",
            ram.size(),
            spec.memory_size
        ));
    }
    let monitors = |guest: usize| {
        m.partitions
            .get(guest)
            .and_then(|g| g.vm())
            .is_some_and(|vm| usize::from(vm.monitor) == index)
    };
    for mapping in &spec.mappings {
        let (kind, object, access) = match mapping.kind {
            MappingKind::Device { device } => {
                let n = usize::from(device);
                let d = m.devices.get(n).ok_or("no such device")?;
                if usize::from(d.owner) != index {
                    return Err(format!("maps device `{}`, which it does not own", d.name));
                }
                (
                    Kind::Device(n),
                    PhysRange::new(d.pa, d.size).ok_or("device range")?,
                    Access::DEVICE,
                )
            }
            MappingKind::Shared { region } => {
                let n = usize::from(region);
                let rights = mapping.rights;
                let access = Access::normal(
                    true,
                    rights.contains(hv_abi::hypercall::Rights::WRITE),
                    rights.contains(hv_abi::hypercall::Rights::EXECUTE),
                );
                (
                    Kind::Shared(n),
                    *built.placement.shared.get(n).ok_or("no such region")?,
                    access,
                )
            }
            MappingKind::GuestRam { partition } => {
                let n = usize::from(partition);
                if !monitors(n) {
                    return Err(format!(
                        "maps partition {n}'s RAM without being its monitor"
                    ));
                }
                (
                    Kind::GuestRam(n),
                    *built.placement.rams.get(n).ok_or("no such partition")?,
                    Access::normal(true, true, false),
                )
            }
            MappingKind::File { file } => {
                let n = usize::from(file);
                if !(0..m.partitions.len()).any(monitors) {
                    return Err("maps a file without monitoring a virtual machine".into());
                }
                (
                    Kind::File(n),
                    *built.files.get(n).ok_or("no such file")?,
                    Access::normal(true, false, false),
                )
            }
        };
        if mapping.size > object.size() {
            return Err(format!(
                "a mapping of {:#x} bytes at IPA {:#x} is larger than its object ({:#x} bytes)",
                mapping.size,
                mapping.ipa,
                object.size()
            ));
        }
        out.push((
            Run {
                ipa: mapping.ipa,
                pa: object.start(),
                size: mapping.size,
                access,
            },
            kind,
        ));
    }
    if spec.vm().is_some()
        && let Some(gicv) = built.gic.virtual_cpu_interface
    {
        out.push((
            Run {
                ipa: hv_abi::vm::GUEST_GICC,
                pa: gicv.start(),
                size: hv_abi::vm::GUEST_GICC_SIZE.min(gicv.size()),
                access: Access::DEVICE,
            },
            Kind::Gicv,
        ));
    }
    Ok(out)
}

/// What [`check`] found in one system on one machine.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    /// Each property's failures, by property.
    pub(crate) exact: Vec<String>,
    pub(crate) disjoint: Vec<String>,
    pub(crate) kernel: Vec<String>,
    pub(crate) wx: Vec<String>,
    /// Mappings checked, tables and descriptors read.
    pub(crate) mappings: usize,
    pub(crate) walked: Walked,
    /// Pages both writable and executable that are allowed: partitions'
    /// own RAM and shared memory declared so.
    pub(crate) wx_allowed: u64,
}

impl Findings {
    /// Whether every property held.
    pub(crate) fn clean(&self) -> bool {
        self.exact.is_empty()
            && self.disjoint.is_empty()
            && self.kernel.is_empty()
            && self.wx.is_empty()
    }
}

fn overlap(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// Walks every partition's tables in `built` and checks the properties.
pub(crate) fn check(built: &Built) -> Findings {
    let mut f = Findings::default();
    let m = &built.manifest;
    // (partition, run, kind, declared access) of every mapping found in
    // the tables.
    let mut found: Vec<(usize, Run, Kind, Access)> = Vec::new();
    for (index, tables) in built.partitions.iter().enumerate() {
        let name = m.partitions[index].name.as_str();
        let (runs, walked) = match walk(&tables.tables, tables.pool, tables.root) {
            Ok(x) => x,
            Err(e) => {
                f.exact.push(format!("partition `{name}`: {e}"));
                continue;
            }
        };
        f.walked.tables += walked.tables;
        f.walked.descriptors += walked.descriptors;
        let expect = match expected(built, index) {
            Ok(e) => e,
            Err(e) => {
                f.exact.push(format!("partition `{name}`: {e}"));
                continue;
            }
        };
        f.mappings += expect.len();
        let want = merge(expect.iter().map(|(r, _)| *r).collect());
        if want == runs {
            found.extend(expect.iter().map(|(r, k)| (index, *r, *k, r.access)));
            continue;
        }
        {
            let missing = want.iter().filter(|r| !runs.contains(r));
            let extra = runs.iter().filter(|r| !want.contains(r));
            let mut text = format!("partition `{name}` maps what the manifest does not declare:");
            for r in missing.take(4) {
                let _ = write!(text, "\n  declared, not mapped so: {r}");
            }
            for r in extra.take(4) {
                let _ = write!(text, "\n  mapped, not declared: {r}");
            }
            f.exact.push(text);
        }
        // What is found, each piece named by the declaration covering it.
        for run in &runs {
            let kind = expect.iter().find(|(e, _)| {
                e.ipa <= run.ipa
                    && run.ipa + run.size <= e.ipa + e.size
                    && e.pa + (run.ipa - e.ipa) == run.pa
            });
            match kind {
                Some((e, kind)) => found.push((index, *run, *kind, e.access)),
                // Undeclared: already a failure; classify it as the worst.
                None => found.push((index, *run, Kind::Device(usize::MAX), Access::DEVICE)),
            }
        }
    }
    let name = |p: usize| m.partitions[p].name.as_str();
    for (p, run, kind, declared) in &found {
        let span = (run.pa, run.pa + run.size);
        // The kernel's memory, but for the files monitors read.
        for (range, what) in &built.kernel {
            if !overlap(span, (range.start(), range.end())) {
                continue;
            }
            let file_ok = matches!(kind, Kind::File(n) if built.files.get(*n).is_some_and(|f|
                f.start() <= run.pa && run.pa + run.size <= f.end()))
                && !run.access.write
                && !run.access.execute;
            if !file_ok {
                f.kernel.push(format!(
                    "partition `{}` reaches {what} ({range}): {run}",
                    name(*p)
                ));
            }
        }
        // The devices the kernel keeps.
        let gic = &built.gic;
        let mut kept = vec![
            (Some(gic.distributor), "the GIC distributor"),
            (
                Some(gic.cpu_interface),
                "the GIC CPU interface or redistributors",
            ),
            (gic.hyp_interface, "the GIC hypervisor interface"),
        ];
        if m.kernel_log.is_none() {
            kept.push((Some(built.console), "the kernel's console UART"));
        }
        if !matches!(kind, Kind::Gicv) {
            kept.push((gic.virtual_cpu_interface, "the GIC virtual CPU interface"));
        }
        for (range, what) in kept.into_iter().filter_map(|(r, w)| r.map(|r| (r, w))) {
            if overlap(span, (range.start(), range.end())) {
                f.kernel.push(format!(
                    "partition `{}` reaches {what} ({range}): {run}",
                    name(*p)
                ));
            }
        }
        // Memory is RAM; devices are not.
        let in_ram = built
            .ram
            .iter()
            .any(|b| b.start() <= span.0 && span.1 <= b.end());
        let touches_ram = built
            .ram
            .iter()
            .any(|b| overlap(span, (b.start(), b.end())));
        let memory = matches!(
            kind,
            Kind::Ram(_) | Kind::Shared(_) | Kind::GuestRam(_) | Kind::File(_)
        );
        if memory && !in_ram {
            f.kernel.push(format!(
                "partition `{}`: memory outside RAM: {run}",
                name(*p)
            ));
        }
        if !memory && touches_ram {
            f.kernel
                .push(format!("partition `{}`: a device in RAM: {run}", name(*p)));
        }
        // W^X: only where declared so.
        if run.access.write && run.access.execute {
            let allowed = declared.write
                && declared.execute
                && match kind {
                    Kind::Ram(q) => q == p,
                    Kind::Shared(_) => true,
                    _ => false,
                };
            if allowed {
                f.wx_allowed += run.size / PAGE;
            } else {
                f.wx.push(format!(
                    "partition `{}`: writable and executable: {run}",
                    name(*p)
                ));
            }
        }
        if matches!(kind, Kind::Device(_) | Kind::Gicv)
            && (!run.access.device || run.access.execute)
        {
            f.wx.push(format!(
                "partition `{}`: a device mapped as {run}",
                name(*p)
            ));
        }
    }
    // Disjointness: every pair of pieces that reach the same physical page.
    let shared_ok =
        |a: &(usize, Run, Kind, Access), b: &(usize, Run, Kind, Access)| match (a.2, b.2) {
            (Kind::Shared(x), Kind::Shared(y)) => x == y && a.0 != b.0,
            (Kind::File(x), Kind::File(y)) => x == y,
            (Kind::Gicv, Kind::Gicv) => a.0 != b.0,
            (Kind::Ram(v), Kind::GuestRam(g)) | (Kind::GuestRam(g), Kind::Ram(v)) => {
                v == g && m.partitions[g].vm().is_some()
            }
            _ => false,
        };
    let mut by_pa: Vec<&(usize, Run, Kind, Access)> = found.iter().collect();
    by_pa.sort_by_key(|x| x.1.pa);
    for (i, a) in by_pa.iter().enumerate() {
        for b in &by_pa[i + 1..] {
            if b.1.pa >= a.1.pa + a.1.size {
                break;
            }
            if !shared_ok(a, b) {
                f.disjoint.push(format!(
                    "partitions `{}` and `{}` both reach PA {:#x}: {} / {}",
                    name(a.0),
                    name(b.0),
                    b.1.pa,
                    a.1,
                    b.1
                ));
            }
        }
    }
    f
}

/// The level-3 slot (or the block) that maps `ipa` in `tables`, found
/// through table descriptors; `None` if a level on the way is not a table.
fn slot(tables: &mut Tables, ipa: u64) -> Option<&mut u64> {
    let mut index = 0;
    for level in 1..=3u32 {
        let i = ((ipa >> (12 + 9 * (3 - level))) & 0x1ff) as usize;
        let d = tables.tables.get(index)?.0[i];
        if level == 3 || d & 0b11 != 0b11 {
            return Some(&mut tables.tables[index].0[i]);
        }
        index = usize::try_from((d & OUTPUT).checked_sub(tables.pool)? / PAGE).ok()?;
    }
    None
}

/// A corruption: what it is, the partition and IPA whose descriptor it
/// changes, how, and what [`check`] must find.
type Corruption<'a> = (
    &'static str,
    (usize, u64),
    Box<dyn Fn(u64) -> u64 + 'a>,
    fn(&Findings) -> bool,
);

/// Corrupts `built`'s tables in each way the checker must catch, one at a
/// time, and says whether [`check`] caught each: a permission bit flipped,
/// an extra page of the kernel's heap, the GIC distributor, another
/// partition's RAM; and, if a program was loaded (not a stand-in), its
/// code made writable and its data executable.
pub(crate) fn negatives(built: &Built) -> Vec<(String, bool)> {
    let m = &built.manifest;
    // A partition with a shared region: corruptions go there and beside it.
    let Some((p, ipa, size)) = m.partitions.iter().enumerate().find_map(|(p, s)| {
        s.mappings
            .iter()
            .find(|x| matches!(x.kind, MappingKind::Shared { .. }))
            .map(|x| (p, x.ipa, x.size))
    }) else {
        return vec![("a system with shared memory".into(), false)];
    };
    let other = (p + 1) % m.partitions.len();
    let heap = built
        .kernel
        .iter()
        .find(|(_, what)| what.contains("heap"))
        .map_or(0, |(r, _)| r.start());
    // Normal memory, read-write, never executable; device memory likewise.
    let normal = (1 << 54) | (1 << 10) | (0b11 << 8) | (0b11 << 6) | (0b1111 << 2) | 0b11;
    let device = (1 << 54) | (1 << 10) | (0b11 << 6) | (0b0001 << 2) | 0b11;
    let both = |f: &Findings| !f.exact.is_empty() && !f.wx.is_empty();
    let mut corruptions: Vec<Corruption<'_>> = vec![
        (
            "write permission flipped on a shared page",
            (p, ipa),
            Box::new(|d| d ^ (1 << 7)),
            |f| !f.exact.is_empty(),
        ),
        (
            "a shared page made executable",
            (p, ipa),
            Box::new(|d| d & !(1 << 54)),
            |f| !f.exact.is_empty(),
        ),
        (
            "an extra page of the kernel heap (stage-2 tables)",
            (p, ipa + size),
            Box::new(move |_| heap | normal),
            |f| !f.exact.is_empty() && !f.kernel.is_empty(),
        ),
        (
            "an extra page of the GIC distributor",
            (p, ipa + size),
            Box::new(move |_| built.gic.distributor.start() | device),
            |f| !f.exact.is_empty() && !f.kernel.is_empty(),
        ),
        (
            "an extra page of another partition's RAM",
            (p, ipa + size),
            Box::new(move |_| built.placement.rams[other].start() | normal),
            |f| !f.exact.is_empty() && !f.disjoint.is_empty(),
        ),
    ];
    // A page of a loaded program's code, and one of its RAM's data.
    let ram_page = |code: bool| {
        (0..m.partitions.len())
            .filter(|&q| built.programs[q].is_some())
            .find_map(|q| {
                let runs = expected(built, q).ok()?;
                runs.iter()
                    .find(|(r, k)| {
                        *k == Kind::Ram(q) && r.access.execute == code && r.access.write != code
                    })
                    .map(|(r, _)| (q, r.ipa))
            })
    };
    if let (Some(code), Some(data)) = (ram_page(true), ram_page(false)) {
        corruptions.push((
            "a program's code page made writable",
            code,
            Box::new(|d| d | (1 << 7)),
            both,
        ));
        corruptions.push((
            "a program's data page made executable",
            data,
            Box::new(|d| d & !(0b11 << 53)),
            both,
        ));
    }
    corruptions
        .iter()
        .map(|(what, (q, at), change, caught)| {
            let mut bad = built.clone();
            let done = slot(&mut bad.partitions[*q], *at).map(|d| *d = change(*d));
            let caught = done.is_some() && caught(&check(&bad));
            ((*what).to_owned(), caught)
        })
        .collect()
}

/// A program's loadable segments, read from its ELF file (64-bit, little
/// endian, AArch64): `(start, end, writable, executable)` of each.
///
/// # Errors
///
/// A file that is not such an ELF file.
pub(crate) fn segments(elf: &[u8]) -> Result<Vec<(u64, u64, bool, bool)>, String> {
    let u16_at = |at: usize| {
        elf.get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .ok_or("truncated")
    };
    let u32_at = |at: usize| {
        elf.get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or("truncated")
    };
    let u64_at = |at: usize| {
        elf.get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
            .ok_or("truncated")
    };
    if elf.get(..6) != Some(b"\x7fELF\x02\x01") || u16_at(18)? != 183 {
        return Err("not a 64-bit little-endian AArch64 ELF file".into());
    }
    let phoff = usize::try_from(u64_at(32)?).map_err(|e| e.to_string())?;
    let (size, count) = (usize::from(u16_at(54)?), usize::from(u16_at(56)?));
    let mut out = Vec::new();
    for i in 0..count {
        let at = phoff + i * size;
        if u32_at(at)? != 1 {
            continue;
        }
        let flags = u32_at(at + 4)?;
        let (start, memsz) = (u64_at(at + 16)?, u64_at(at + 40)?);
        if memsz > 0 {
            out.push((start, start + memsz, flags & 2 != 0, flags & 1 != 0));
        }
    }
    Ok(out)
}

/// Whether a program's segments separate code from writable data at page
/// granularity: no page holds both something executable and something
/// writable. Only then can stage 2 keep its code read-only and its data
/// never executable.
pub(crate) fn separable(segments: &[(u64, u64, bool, bool)]) -> bool {
    let pages = |s: &(u64, u64, bool, bool)| (s.0 / PAGE, s.1.div_ceil(PAGE));
    segments.iter().filter(|s| s.3).all(|code| {
        let c = pages(code);
        !code.2
            && segments.iter().filter(|s| s.2).all(|data| {
                let d = pages(data);
                c.1 <= d.0 || d.1 <= c.0
            })
    })
}

/// Where each of partition `index`'s program's segments allow it, whether
/// its tables keep the code pages read-only and the writable data pages
/// never executable: the failures, or `None` if its segments do not allow
/// it.
pub(crate) fn program_wx(
    built: &Built,
    index: usize,
    segments: &[(u64, u64, bool, bool)],
) -> Option<Vec<String>> {
    if !separable(segments) {
        return None;
    }
    let spec = &built.manifest.partitions[index];
    let tables = &built.partitions[index];
    let Ok((runs, _)) = walk(&tables.tables, tables.pool, tables.root) else {
        return Some(vec!["its tables cannot be walked".into()]);
    };
    let mut failures = Vec::new();
    for &(start, end, write, execute) in segments {
        let mut page = start / PAGE * PAGE;
        while page < end {
            let ipa = spec.ram_ipa + page;
            let access = runs
                .iter()
                .find(|r| r.ipa <= ipa && ipa < r.ipa + r.size)
                .map(|r| r.access);
            // Read-only data may share a page with code (executable) or
            // with writable data (writable): W^X says nothing of it.
            let wrong = access.is_some_and(|a| (execute && a.write) || (write && a.execute));
            if wrong {
                let want = if execute { "code" } else { "writable data" };
                failures.push(format!(
                    "partition `{}`: its program's {want} at IPA {ipa:#x} is mapped {}",
                    spec.name,
                    access.map_or_else(String::new, |a| a.to_string())
                ));
            }
            page += PAGE;
        }
    }
    Some(failures)
}

#[cfg(test)]
mod tests;
