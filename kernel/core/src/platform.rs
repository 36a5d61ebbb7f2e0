// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The machine as the device tree describes it.
//!
//! The loader (QEMU, U-Boot, the Raspberry Pi firmware) passes a flattened
//! device tree in x0. [`PlatformInfo::parse`] reads what the kernel needs from
//! it into plain fixed-size data: RAM banks, cores and how each is started
//! (PSCI or a spin table, from its `enable-method`), the GIC, the console UART,
//! the generic timer's interrupts and how to reach PSCI firmware. The rest of
//! the kernel never touches the device tree again.
//!
//! Device addresses are physical: a node's `reg` is translated through its
//! ancestors' `ranges` ([`crate::devicetree::translate`]), as the Raspberry
//! Pi 4's `/soc` bus needs.
//!
//! The `fdt` crate does the parsing. It trusts the tree's structure and
//! panics on many corrupt ones, so [`crate::devicetree::validate`] checks the
//! structure first; after that, this module never panics, and a tree that
//! lacks something gives a [`DtError`] naming what is missing.

use core::fmt;

use fdt::Fdt;
use fdt::node::FdtNode;

use crate::MAX_CPUS;
use crate::range::PhysRange;

/// The most RAM banks recorded.
pub const MAX_MEMORY_BANKS: usize = 8;

/// The most firmware reservations recorded.
pub const MAX_RESERVED: usize = 8;

/// Which GIC architecture the machine has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicVersion {
    /// GICv2 (GIC-400 and friends): distributor plus memory-mapped CPU interface.
    V2,
    /// GICv3: distributor plus redistributors; CPU interface in system registers.
    V3,
}

impl GicVersion {
    /// The INTID in a value read from the acknowledge register (GICC_IAR,
    /// ICC_IAR1_EL1). GICv2's also carries an SGI's source core in bits
    /// 12:10; the end-of-interrupt and deactivate writes must give back the
    /// whole value read, or a GIC-400 leaves the SGI active.
    #[must_use]
    pub const fn intid(self, iar: u32) -> u32 {
        match self {
            Self::V2 => iar & 0x3ff,
            Self::V3 => iar & 0xff_ffff,
        }
    }
}

/// The interrupt controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gic {
    /// GICv2 or GICv3.
    pub version: GicVersion,
    /// The `compatible` string the kernel recognised it by, which names the
    /// part (`arm,gic-400` on the Raspberry Pi 4).
    pub compatible: &'static str,
    /// The distributor (GICD).
    pub distributor: PhysRange,
    /// GICv2: the CPU interface (GICC). GICv3: the redistributors (GICR).
    pub cpu_interface: PhysRange,
    /// GICv2 with virtualization: the virtual interface control (GICH).
    pub hyp_interface: Option<PhysRange>,
    /// GICv2 with virtualization: the virtual CPU interface (GICV).
    pub virtual_cpu_interface: Option<PhysRange>,
    /// The virtual GIC maintenance interrupt, as an INTID.
    pub maintenance_irq: Option<u32>,
}

/// The PL011 UART that the kernel uses as its console.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uart {
    /// Its registers.
    pub registers: PhysRange,
    /// Its interrupt, as an INTID.
    pub irq: Option<u32>,
}

/// The generic timer's interrupts, as INTIDs (PPIs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timer {
    /// The EL1 physical timer.
    pub physical: u32,
    /// The EL1 virtual timer: what guests use.
    pub virtual_timer: u32,
    /// The EL2 physical timer: what the kernel uses.
    pub hypervisor: u32,
}

/// How PSCI firmware is called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conduit {
    /// Through SMC (firmware at EL3, or QEMU with virtualization on).
    Smc,
    /// Through HVC (firmware at EL2: only usable when the kernel is not at EL2).
    Hvc,
}

/// How a secondary core is started, from its `enable-method`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuStart {
    /// PSCI `CPU_ON` (`enable-method = "psci"`, or none on a machine with PSCI).
    Psci,
    /// A spin table (`enable-method = "spin-table"`): the core waits, caches
    /// off, for an entry address at `release`, then jumps there with x0 = 0.
    SpinTable {
        /// The core's `cpu-release-addr`.
        release: u64,
    },
}

/// Why a core cannot be started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoStart {
    /// `enable-method = "psci"` (or none) on a machine without PSCI.
    NoPsci,
    /// `enable-method = "spin-table"` without a `cpu-release-addr`.
    NoReleaseAddress,
    /// An `enable-method` the kernel does not implement.
    Unsupported,
}

/// Everything the kernel reads from the device tree.
#[derive(Clone, Debug)]
pub struct PlatformInfo<'dt> {
    /// The machine's model string.
    pub model: &'dt str,
    /// RAM banks, in device-tree order.
    pub memory: heapless::Vec<PhysRange, MAX_MEMORY_BANKS>,
    /// Memory the firmware reserved.
    pub reserved: heapless::Vec<PhysRange, MAX_RESERVED>,
    /// Each core's MPIDR affinity value, in device-tree order; the first
    /// [`MAX_CPUS`] only.
    pub cpus: heapless::Vec<u64, MAX_CPUS>,
    /// How each core in [`Self::cpus`] is started, in the same order.
    pub starts: heapless::Vec<Result<CpuStart, NoStart>, MAX_CPUS>,
    /// Cores the device tree lists beyond [`MAX_CPUS`], which stay off.
    pub cpus_ignored: usize,
    /// The interrupt controller.
    pub gic: Gic,
    /// The console UART: `/chosen/stdout-path` if it is a PL011, else the first PL011.
    pub uart: Option<Uart>,
    /// The generic timer.
    pub timer: Option<Timer>,
    /// How PSCI is called, if the machine has it.
    pub psci: Option<Conduit>,
    /// The kernel command line (`/chosen/bootargs`), empty if none.
    pub bootargs: &'dt str,
}

/// What made a device tree unusable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DtError {
    /// The blob is not a flattened device tree.
    BadHeader,
    /// A required node is missing.
    Missing(&'static str),
    /// A property has the wrong size or an address that overflows.
    BadProperty {
        /// The node.
        node: &'static str,
        /// The property.
        property: &'static str,
    },
    /// More entries than the fixed-size tables hold.
    TooMany(&'static str),
    /// The blob's blocks break the flattened device tree format, or take a
    /// shape that the `fdt` crate cannot walk without panicking (see
    /// [`crate::devicetree`]).
    Malformed {
        /// Where the problem was found, in bytes from the start of the blob.
        offset: usize,
        /// What is wrong there.
        what: &'static str,
    },
}

impl fmt::Display for DtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadHeader => f.write_str("not a flattened device tree (bad header)"),
            Self::Missing(what) => write!(f, "the device tree has no {what}"),
            Self::BadProperty { node, property } => {
                write!(f, "the device tree's {node} has a malformed `{property}`")
            }
            Self::TooMany(what) => write!(f, "the device tree lists more {what} than supported"),
            Self::Malformed { offset, what } => {
                write!(f, "the device tree is malformed at byte {offset}: {what}")
            }
        }
    }
}

const GIC_V3: &[&str] = &["arm,gic-v3"];
const GIC_V2: &[&str] = &[
    "arm,gic-400",
    "arm,cortex-a15-gic",
    "arm,cortex-a7-gic",
    "arm,cortex-a9-gic",
];

impl<'dt> PlatformInfo<'dt> {
    /// Reads a flattened device tree.
    pub fn parse(blob: &'dt [u8]) -> Result<Self, DtError> {
        crate::devicetree::validate(blob)?;
        let fdt = Fdt::new(blob).map_err(|_| DtError::BadHeader)?;
        let root = fdt.find_node("/").ok_or(DtError::Missing("root node"))?;
        let model = root
            .property("model")
            .and_then(|p| p.as_str())
            .unwrap_or("unknown machine");

        let mut memory = heapless::Vec::new();
        for node in fdt.all_nodes() {
            let is_memory = node.property("device_type").and_then(|p| p.as_str()) == Some("memory");
            if !is_memory {
                continue;
            }
            for range in regs(node, "memory node")? {
                if !range.is_empty() {
                    memory
                        .push(range)
                        .map_err(|_| DtError::TooMany("memory banks"))?;
                }
            }
        }
        if memory.is_empty() {
            return Err(DtError::Missing("memory node"));
        }

        let mut reserved = heapless::Vec::new();
        for r in fdt.memory_reservations() {
            let range = PhysRange::new(r.address() as u64, r.size() as u64).ok_or(
                DtError::BadProperty {
                    node: "/memreserve/",
                    property: "size",
                },
            )?;
            reserved
                .push(range)
                .map_err(|_| DtError::TooMany("memory reservations"))?;
        }
        if let Some(node) = fdt.find_node("/reserved-memory") {
            for child in node.children() {
                // A disabled or empty node reserves nothing (the Pi 4's tree
                // has an empty, disabled `nvram@0` for the bootloader).
                if child.property("status").and_then(|p| p.as_str()) == Some("disabled") {
                    continue;
                }
                for range in regs(child, "/reserved-memory")? {
                    if range.is_empty() {
                        continue;
                    }
                    reserved
                        .push(range)
                        .map_err(|_| DtError::TooMany("memory reservations"))?;
                }
            }
        }

        let psci = fdt
            .find_compatible(&["arm,psci-1.0", "arm,psci-0.2", "arm,psci"])
            .and_then(|n| match n.property("method").and_then(|p| p.as_str()) {
                Some("smc") => Some(Conduit::Smc),
                Some("hvc") => Some(Conduit::Hvc),
                _ => None,
            });
        let bootargs = fdt
            .find_node("/chosen")
            .and_then(|c| c.property("bootargs"))
            .and_then(|p| p.as_str())
            .unwrap_or("");
        let (cpus, methods, cpus_ignored) = parse_cpus(&fdt)?;
        let starts = methods
            .iter()
            .map(|&(method, release)| start_method(method, release, psci.is_some()))
            .collect();
        // A spin table's release addresses are the waiting cores' mailboxes:
        // never handed out, even where the loader reserved nothing.
        for release in methods.iter().filter_map(|&(method, release)| {
            (method == Some("spin-table")).then_some(release).flatten()
        }) {
            let page = PhysRange::new(release & !0xfff, 0x1000).ok_or(DtError::BadProperty {
                node: "cpu",
                property: "cpu-release-addr",
            })?;
            if !reserved.iter().any(|r: &PhysRange| r.covers(page)) {
                reserved
                    .push(page)
                    .map_err(|_| DtError::TooMany("memory reservations"))?;
            }
        }
        let gic = parse_gic(&fdt, blob)?;
        let uart = parse_uart(&fdt, blob)?;
        let timer = parse_timer(&fdt)?;
        Ok(Self {
            model,
            memory,
            reserved,
            cpus,
            starts,
            cpus_ignored,
            gic,
            uart,
            timer,
            psci,
            bootargs,
        })
    }

    /// The value of `key=value` on the kernel command line, if present.
    #[must_use]
    pub fn boot_option(&self, key: &str) -> Option<&'dt str> {
        self.bootargs.split_ascii_whitespace().find_map(|word| {
            let (k, v) = word.split_once('=')?;
            (k == key).then_some(v)
        })
    }

    /// How the core whose MPIDR affinity is `mpidr` is started; `None` if the
    /// device tree does not list it.
    #[must_use]
    pub fn start_of(&self, mpidr: u64) -> Option<Result<CpuStart, NoStart>> {
        let index = self.cpus.iter().position(|&m| m == mpidr)?;
        self.starts.get(index).copied()
    }

    /// The total RAM in bytes.
    #[must_use]
    pub fn memory_bytes(&self) -> u64 {
        self.memory.iter().map(|r| r.size()).sum()
    }
}

/// A node's `reg` ranges, with overflow checked.
fn regs(node: FdtNode<'_, '_>, name: &'static str) -> Result<heapless::Vec<PhysRange, 8>, DtError> {
    let mut out = heapless::Vec::new();
    let Some(reg) = node.reg() else {
        return Ok(out);
    };
    for r in reg {
        let size = r.size.unwrap_or(0) as u64;
        let range =
            PhysRange::new(r.starting_address as u64, size).ok_or(DtError::BadProperty {
                node: name,
                property: "reg",
            })?;
        out.push(range)
            .map_err(|_| DtError::TooMany("reg entries"))?;
    }
    Ok(out)
}

/// A node's `reg` ranges as physical addresses: translated through the
/// ancestors' `ranges`.
fn physical_regs<'dt>(
    blob: &'dt [u8],
    node: FdtNode<'_, 'dt>,
    name: &'static str,
) -> Result<heapless::Vec<PhysRange, 8>, DtError> {
    let bad = DtError::BadProperty {
        node: name,
        property: "reg",
    };
    let translation = crate::devicetree::translate::of(blob, node).ok_or(bad)?;
    regs(node, name)?
        .iter()
        .map(|&range| translation.range(range).ok_or(bad))
        .collect()
}

/// Decides how a core is started from its `enable-method` and
/// `cpu-release-addr`, on a machine that has PSCI or not. No
/// `enable-method` means PSCI where there is PSCI (QEMU's `virt` without
/// `virtualization=on` leaves it out).
fn start_method(
    method: Option<&str>,
    release: Option<u64>,
    psci: bool,
) -> Result<CpuStart, NoStart> {
    match method {
        Some("spin-table") => release
            .map(|release| CpuStart::SpinTable { release })
            .ok_or(NoStart::NoReleaseAddress),
        Some("psci") | None if psci => Ok(CpuStart::Psci),
        Some("psci") | None => Err(NoStart::NoPsci),
        Some(_) => Err(NoStart::Unsupported),
    }
}

/// Big-endian cells of a property, `cells` at a time.
fn cells(bytes: &[u8], cells: usize) -> impl Iterator<Item = u64> + '_ {
    bytes.chunks_exact(4 * cells.max(1)).map(|chunk| {
        chunk.chunks_exact(4).fold(0u64, |acc, c| {
            (acc << 32) | u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        })
    })
}

/// A core's `enable-method` and `cpu-release-addr`, as written.
type Method<'dt> = (Option<&'dt str>, Option<u64>);

/// Each core's MPIDR and [`Method`], and how many more there were.
type Cpus<'dt> = (
    heapless::Vec<u64, MAX_CPUS>,
    heapless::Vec<Method<'dt>, MAX_CPUS>,
    usize,
);

fn parse_cpus<'dt>(fdt: &Fdt<'dt>) -> Result<Cpus<'dt>, DtError> {
    let node = fdt
        .find_node("/cpus")
        .ok_or(DtError::Missing("/cpus node"))?;
    let address_cells = node
        .property("#address-cells")
        .and_then(|p| p.as_usize())
        .ok_or(DtError::BadProperty {
            node: "/cpus",
            property: "#address-cells",
        })?;
    let mut cpus = heapless::Vec::new();
    let mut methods = heapless::Vec::new();
    let mut ignored = 0;
    for cpu in node.children() {
        let is_cpu = cpu.property("device_type").and_then(|p| p.as_str()) == Some("cpu");
        let disabled = cpu.property("status").and_then(|p| p.as_str()) == Some("disabled");
        if !is_cpu || disabled {
            continue;
        }
        let reg = cpu.property("reg").ok_or(DtError::BadProperty {
            node: "cpu",
            property: "reg",
        })?;
        let mpidr = cells(reg.value, address_cells)
            .next()
            .ok_or(DtError::BadProperty {
                node: "cpu",
                property: "reg",
            })?;
        let method = cpu.property("enable-method").and_then(|p| p.as_str());
        // One or two cells (/bits/ 64), whatever #address-cells says.
        let release = cpu
            .property("cpu-release-addr")
            .filter(|p| matches!(p.value.len(), 4 | 8))
            .and_then(|p| cells(p.value, p.value.len() / 4).next());
        if cpus.push(mpidr).is_err() {
            ignored += 1;
        } else {
            // Same capacity as `cpus`, which just took one more.
            let _ = methods.push((method, release));
        }
    }
    if cpus.is_empty() {
        return Err(DtError::Missing("cpu nodes"));
    }
    Ok((cpus, methods, ignored))
}

/// The INTIDs in a node's `interrupts` property (three cells each: type,
/// number, flags; type 0 is an SPI from INTID 32, type 1 a PPI from 16).
fn interrupts(node: FdtNode<'_, '_>) -> heapless::Vec<u32, 8> {
    let mut out = heapless::Vec::new();
    let Some(prop) = node.property("interrupts") else {
        return out;
    };
    for spec in prop.value.chunks_exact(12) {
        let word = |i: usize| u32::from_be_bytes([spec[i], spec[i + 1], spec[i + 2], spec[i + 3]]);
        let base = match word(0) {
            0 => 32,
            1 => 16,
            _ => continue,
        };
        if let Some(id) = word(4).checked_add(base) {
            let _ = out.push(id);
        }
    }
    out
}

fn parse_gic<'dt>(fdt: &Fdt<'dt>, blob: &'dt [u8]) -> Result<Gic, DtError> {
    let (node, version, known) = if let Some(n) = fdt.find_compatible(GIC_V3) {
        (n, GicVersion::V3, GIC_V3)
    } else if let Some(n) = fdt.find_compatible(GIC_V2) {
        (n, GicVersion::V2, GIC_V2)
    } else {
        return Err(DtError::Missing("GICv2 or GICv3 interrupt controller"));
    };
    let lists = |k: &&&str| node.compatible().is_some_and(|c| c.all().any(|c| c == **k));
    let compatible = known.iter().find(lists).copied().unwrap_or(known[0]);
    let reg = physical_regs(blob, node, "GIC")?;
    let missing = DtError::BadProperty {
        node: "GIC",
        property: "reg",
    };
    let distributor = *reg.first().ok_or(missing)?;
    let cpu_interface = *reg.get(1).ok_or(missing)?;
    let (hyp_interface, virtual_cpu_interface) = match version {
        GicVersion::V2 => (reg.get(2).copied(), reg.get(3).copied()),
        GicVersion::V3 => (None, None),
    };
    let maintenance_irq = interrupts(node).first().copied();
    Ok(Gic {
        version,
        compatible,
        distributor,
        cpu_interface,
        hyp_interface,
        virtual_cpu_interface,
        maintenance_irq,
    })
}

fn parse_uart<'dt>(fdt: &Fdt<'dt>, blob: &'dt [u8]) -> Result<Option<Uart>, DtError> {
    let is_pl011 = |n: &FdtNode<'_, '_>| {
        n.compatible()
            .is_some_and(|c| c.all().any(|s| s == "arm,pl011"))
    };
    let chosen = fdt
        .find_node("/chosen")
        .and_then(|_| fdt.chosen().stdout())
        .filter(is_pl011);
    let Some(node) = chosen.or_else(|| fdt.find_compatible(&["arm,pl011"])) else {
        return Ok(None);
    };
    let registers = *physical_regs(blob, node, "PL011")?
        .first()
        .ok_or(DtError::BadProperty {
            node: "PL011",
            property: "reg",
        })?;
    Ok(Some(Uart {
        registers,
        irq: interrupts(node).first().copied(),
    }))
}

fn parse_timer(fdt: &Fdt<'_>) -> Result<Option<Timer>, DtError> {
    let Some(node) = fdt.find_compatible(&["arm,armv8-timer", "arm,armv7-timer"]) else {
        return Ok(None);
    };
    // Order fixed by the binding: secure physical, non-secure physical, virtual, hypervisor.
    let ids = interrupts(node);
    match ids.as_slice() {
        [_, physical, virtual_timer, hypervisor, ..] => Ok(Some(Timer {
            physical: *physical,
            virtual_timer: *virtual_timer,
            hypervisor: *hypervisor,
        })),
        _ => Err(DtError::BadProperty {
            node: "timer",
            property: "interrupts",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::{Conduit, CpuStart, DtError, GicVersion, NoStart, PlatformInfo, start_method};
    use crate::range::PhysRange;

    use crate::fixtures::{GICV2, GICV3, rpi4b};

    #[test]
    fn raspberry_pi_4_in_qemu_10() {
        let blob = rpi4b();
        let info = PlatformInfo::parse(&blob).unwrap();
        assert_eq!(info.model, "Raspberry Pi 4 Model B");
        assert_eq!(
            info.memory.as_slice(),
            &[PhysRange::new(0, 0x3c00_0000).unwrap()]
        );
        // QEMU's /memreserve/ for the spin table covers every release
        // address; the disabled, empty nvram@0 reserves nothing.
        assert_eq!(
            info.reserved.as_slice(),
            &[PhysRange::new(0, 0x1000).unwrap()]
        );
        assert_eq!(info.cpus.as_slice(), &[0, 1, 2, 3]);
        let releases: Vec<_> = info.starts.iter().copied().collect();
        assert_eq!(
            releases,
            [0xd8, 0xe0, 0xe8, 0xf0].map(|release| Ok(CpuStart::SpinTable { release }))
        );
        assert_eq!(
            info.start_of(2),
            Some(Ok(CpuStart::SpinTable { release: 0xe8 }))
        );
        assert_eq!(info.start_of(7), None);
        assert_eq!(info.psci, None);
        // The GIC-400 and UART0, through /soc's ranges.
        assert_eq!(info.gic.version, GicVersion::V2);
        assert_eq!(info.gic.compatible, "arm,gic-400");
        assert_eq!(
            info.gic.distributor,
            PhysRange::new(0xff84_1000, 0x1000).unwrap()
        );
        assert_eq!(
            info.gic.cpu_interface,
            PhysRange::new(0xff84_2000, 0x2000).unwrap()
        );
        assert_eq!(info.gic.hyp_interface, PhysRange::new(0xff84_4000, 0x2000));
        assert_eq!(
            info.gic.virtual_cpu_interface,
            PhysRange::new(0xff84_6000, 0x2000)
        );
        assert_eq!(info.gic.maintenance_irq, Some(25));
        // stdout-path names the mini UART; the first PL011 is UART0.
        let uart = info.uart.unwrap();
        assert_eq!(uart.registers, PhysRange::new(0xfe20_1000, 0x200).unwrap());
        assert_eq!(uart.irq, Some(32 + 121));
        let timer = info.timer.unwrap();
        assert_eq!(
            (timer.physical, timer.virtual_timer, timer.hypervisor),
            (30, 27, 26)
        );
    }

    #[test]
    fn a_gicv2_sgi_keeps_its_source_core_out_of_the_intid() {
        // SGI 0 from core 3: the INTID is 0, the value to write back is not.
        let iar = 3 << 10;
        assert_eq!(GicVersion::V2.intid(iar), 0);
        assert_ne!(GicVersion::V2.intid(iar), iar);
        assert_eq!(GicVersion::V2.intid(1023), 1023);
        assert_eq!(GicVersion::V3.intid(8192), 8192);
    }

    #[test]
    fn qemu_virt_starts_cores_with_psci() {
        for blob in [GICV2, GICV3] {
            let info = PlatformInfo::parse(blob).unwrap();
            assert!(info.starts.iter().all(|s| *s == Ok(CpuStart::Psci)));
        }
    }

    #[test]
    fn each_cores_enable_method_decides() {
        let spin = CpuStart::SpinTable { release: 0xd8 };
        assert_eq!(
            start_method(Some("spin-table"), Some(0xd8), false),
            Ok(spin)
        );
        // A spin table wins over PSCI where a core asks for one.
        assert_eq!(start_method(Some("spin-table"), Some(0xd8), true), Ok(spin));
        assert_eq!(
            start_method(Some("spin-table"), None, true),
            Err(NoStart::NoReleaseAddress)
        );
        assert_eq!(start_method(Some("psci"), None, true), Ok(CpuStart::Psci));
        assert_eq!(start_method(None, None, true), Ok(CpuStart::Psci));
        assert_eq!(
            start_method(Some("psci"), None, false),
            Err(NoStart::NoPsci)
        );
        assert_eq!(start_method(None, Some(0xd8), false), Err(NoStart::NoPsci));
        assert_eq!(
            start_method(Some("brcm,bcm2836-smp"), None, true),
            Err(NoStart::Unsupported)
        );
    }

    #[test]
    fn qemu_virt_gicv3() {
        let info = PlatformInfo::parse(GICV3).unwrap();
        assert_eq!(
            info.memory.as_slice(),
            &[PhysRange::new(0x4000_0000, 512 << 20).unwrap()]
        );
        assert_eq!(info.cpus.as_slice(), &[0, 1, 2, 3]);
        assert_eq!(info.gic.version, GicVersion::V3);
        assert_eq!(
            info.gic.distributor,
            PhysRange::new(0x0800_0000, 0x1_0000).unwrap()
        );
        assert_eq!(
            info.gic.cpu_interface,
            PhysRange::new(0x080a_0000, 0xf6_0000).unwrap()
        );
        assert_eq!(info.gic.maintenance_irq, Some(25));
        let uart = info.uart.unwrap();
        assert_eq!(uart.registers, PhysRange::new(0x0900_0000, 0x1000).unwrap());
        assert_eq!(uart.irq, Some(33));
        let timer = info.timer.unwrap();
        assert_eq!(
            (timer.physical, timer.virtual_timer, timer.hypervisor),
            (30, 27, 26)
        );
        assert_eq!(info.psci, Some(Conduit::Smc));
        assert_eq!(info.boot_option("bulkhead.test"), Some("1"));
        assert_eq!(info.boot_option("missing"), None);
        assert_eq!(info.memory_bytes(), 512 << 20);
    }

    #[test]
    fn qemu_virt_gicv2() {
        let info = PlatformInfo::parse(GICV2).unwrap();
        assert_eq!(info.gic.version, GicVersion::V2);
        assert_eq!(info.gic.compatible, "arm,cortex-a15-gic");
        assert_eq!(
            info.gic.cpu_interface,
            PhysRange::new(0x0801_0000, 0x1_0000).unwrap()
        );
        assert_eq!(
            info.gic.hyp_interface,
            Some(PhysRange::new(0x0803_0000, 0x1_0000).unwrap())
        );
        assert_eq!(
            info.gic.virtual_cpu_interface,
            Some(PhysRange::new(0x0804_0000, 0x1_0000).unwrap())
        );
        assert_eq!(info.cpus.len(), 4);
    }

    #[test]
    fn garbage_is_refused() {
        assert_eq!(
            PlatformInfo::parse(&[0u8; 64]).unwrap_err(),
            DtError::BadHeader
        );
        assert_eq!(PlatformInfo::parse(&[]).unwrap_err(), DtError::BadHeader);
    }
}
