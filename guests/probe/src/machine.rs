// SPDX-License-Identifier: Apache-2.0 OR MIT
//! What the device tree says about the probe's machine: its RAM (`/memory`
//! `reg`), its GIC (`arm,gic-v3`: distributor and redistributors;
//! `arm,cortex-a15-gic`: distributor and CPU interface), its command line
//! (`/chosen/bootargs`), and, when asked ([`device_at`]), the node of a
//! device at a given address (one passed through to the guest).

use fdt::Fdt;

/// The GIC the monitor describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Gic {
    /// GICv2: the distributor (emulated) and the CPU interface (the
    /// hardware's virtual one, mapped by the kernel).
    V2 {
        /// GICD.
        distributor: u64,
        /// GICC.
        cpu: u64,
    },
    /// GICv3: the distributor and the redistributors (both emulated); the
    /// CPU interface is system registers.
    V3 {
        /// GICD.
        distributor: u64,
        /// The first redistributor (vCPU 0's RD frame).
        redistributors: u64,
    },
}

impl Gic {
    /// 2 or 3.
    pub(crate) fn version(self) -> u8 {
        match self {
            Self::V2 { .. } => 2,
            Self::V3 { .. } => 3,
        }
    }
}

/// The machine.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Machine {
    /// The first RAM bank's base.
    pub(crate) ram_start: u64,
    /// Its size in bytes.
    pub(crate) ram_size: u64,
    /// The interrupt controller.
    pub(crate) gic: Gic,
    /// `/chosen/bootargs`, empty if there is none.
    pub(crate) bootargs: &'static str,
    /// The device tree itself.
    pub(crate) tree: &'static [u8],
}

/// A device's node.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DeviceNode {
    /// Its name (`pl031@9010000`).
    pub(crate) name: &'static str,
    /// Its `compatible` strings, NUL-separated as in the tree.
    pub(crate) compatible: &'static str,
    /// Its first interrupt's INTID (an SPI's or a PPI's), if it has one.
    pub(crate) intid: Option<u32>,
}

impl DeviceNode {
    /// Its `compatible` strings.
    pub(crate) fn compatibles(&self) -> impl Iterator<Item = &'static str> {
        self.compatible.split('\0').filter(|s| !s.is_empty())
    }
}

/// The node whose first `reg` region starts at `base`, if the tree has one.
/// Its INTID comes from the first `interrupts` triple (GIC binding: type 0
/// an SPI, 1 a PPI; then the number).
pub(crate) fn device_at(tree: &'static [u8], base: u64) -> Option<DeviceNode> {
    let fdt = Fdt::new(tree).ok()?;
    let node = fdt.all_nodes().find(|node| {
        node.reg()
            .and_then(|mut reg| reg.next())
            .is_some_and(|region| region.starting_address as u64 == base)
    })?;
    let compatible = node
        .property("compatible")
        .and_then(|p| core::str::from_utf8(p.value).ok())
        .unwrap_or("");
    let intid = node.property("interrupts").and_then(|p| {
        let cell = |i: usize| {
            let bytes = p.value.get(4 * i..4 * i + 4)?;
            Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
        };
        match (cell(0)?, cell(1)?) {
            (0, spi) => spi.checked_add(32),
            (1, ppi) => ppi.checked_add(16),
            _ => None,
        }
    });
    Some(DeviceNode {
        name: node.name,
        compatible,
        intid,
    })
}

/// Whether the device tree is Xen's for its hardware domain: it has a node
/// compatible with `xen,xen` (`/hypervisor`).
pub(crate) fn is_xen(tree: &'static [u8]) -> bool {
    Fdt::new(tree).is_ok_and(|fdt| fdt.find_compatible(&["xen,xen"]).is_some())
}

/// Reads the device tree; the error says what is missing.
pub(crate) fn read(tree: &'static [u8]) -> Result<Machine, &'static str> {
    let fdt = Fdt::new(tree).map_err(|_| "the device tree does not parse")?;
    let memory = fdt
        .find_node("/memory")
        .and_then(|node| node.reg()?.next())
        .ok_or("the device tree has no /memory reg")?;
    let ram_size = memory
        .size
        .ok_or("the /memory reg has no size")?
        .try_into()
        .map_err(|_| "the /memory size is too large")?;
    let bootargs = fdt
        .find_node("/chosen")
        .and_then(|chosen| chosen.property("bootargs"))
        .and_then(|property| property.as_str())
        .unwrap_or("");
    let gic = if let Some(node) = fdt.find_compatible(&["arm,gic-v3"]) {
        let mut reg = node.reg().ok_or("the GICv3 node has no reg")?;
        let (Some(distributor), Some(redistributors)) = (reg.next(), reg.next()) else {
            return Err("the GICv3 node's reg lacks the distributor or redistributors");
        };
        Gic::V3 {
            distributor: distributor.starting_address as u64,
            redistributors: redistributors.starting_address as u64,
        }
    } else if let Some(node) = fdt.find_compatible(&["arm,cortex-a15-gic"]) {
        let mut reg = node.reg().ok_or("the GICv2 node has no reg")?;
        let (Some(distributor), Some(cpu)) = (reg.next(), reg.next()) else {
            return Err("the GICv2 node's reg lacks the distributor or CPU interface");
        };
        Gic::V2 {
            distributor: distributor.starting_address as u64,
            cpu: cpu.starting_address as u64,
        }
    } else {
        return Err("the device tree has no arm,gic-v3 or arm,cortex-a15-gic node");
    };
    Ok(Machine {
        ram_start: memory.starting_address as u64,
        ram_size,
        gic,
        bootargs,
        tree,
    })
}
