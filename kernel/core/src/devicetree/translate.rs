// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Bus addresses to CPU physical addresses, through the ancestors' `ranges`.
//!
//! A node's `reg` is an address on its parent's bus. On QEMU's `virt` every
//! device hangs off the root, so a `reg` is a physical address; on the
//! Raspberry Pi 4 the peripherals sit under `/soc`, whose `ranges` maps the
//! VideoCore bus address 0x7e000000 to the CPU's 0xfe000000 (Devicetree
//! Specification v0.4, 2.3.8). [`find`] walks the tree depth first, in the
//! order `fdt`'s `all_nodes` uses, keeping each ancestor's `ranges`, and
//! gives the chosen node its [`Translation`]. It does not descend into a
//! node without `ranges`: nothing below one has a physical address (`/cpus`
//! is one), and the boot reads the tree faster for it.
//!
//! The walk recurses once per level; [`crate::devicetree::validate`] has
//! bounded the depth to [`MAX_DEPTH`] before anything calls it.

use fdt::Fdt;
use fdt::node::FdtNode;

use super::MAX_DEPTH;
use crate::range::PhysRange;

/// One bus between a node and the root: its `ranges` and the cell counts
/// that read them.
#[derive(Clone, Copy, Debug)]
struct Bus<'dt> {
    /// The bus node's `ranges`; `None` if it has none (no mapping), empty
    /// if its addresses are the parent's.
    ranges: Option<&'dt [u8]>,
    /// The bus's own `#address-cells`: child addresses in `ranges`.
    child_cells: usize,
    /// The bus's parent's `#address-cells`: parent addresses in `ranges`.
    parent_cells: usize,
    /// The bus's own `#size-cells`.
    size_cells: usize,
}

/// How a node's `reg` addresses become physical addresses: the buses from
/// the root (exclusive) down to the node's parent.
#[derive(Clone, Debug, Default)]
pub struct Translation<'dt> {
    buses: heapless::Vec<Bus<'dt>, MAX_DEPTH>,
}

impl Translation<'_> {
    /// The physical address of bus address `address`, or `None` if a bus on
    /// the way has no `ranges`, no range covers it, or a range uses more
    /// than two cells for an address or size.
    #[must_use]
    pub fn address(&self, address: u64) -> Option<u64> {
        let mut address = address;
        for bus in self.buses.iter().rev() {
            address = bus.translate(address)?;
        }
        Some(address)
    }

    /// `range` (a `reg` entry) as a physical range: its start translated,
    /// and the whole of it inside the one mapping that covers the start.
    #[must_use]
    pub fn range(&self, range: PhysRange) -> Option<PhysRange> {
        let start = self.address(range.start())?;
        if range.is_empty() {
            return PhysRange::new(start, 0);
        }
        // The last byte must land where the start's mapping puts it.
        let last = self.address(range.end() - 1)?;
        (last.checked_sub(start)? == range.size() - 1)
            .then(|| PhysRange::new(start, range.size()))
            .flatten()
    }
}

impl Bus<'_> {
    fn translate(&self, address: u64) -> Option<u64> {
        let ranges = self.ranges?;
        if ranges.is_empty() {
            return Some(address);
        }
        let (child, parent, size) = (self.child_cells, self.parent_cells, self.size_cells);
        if child > 2 || parent > 2 || size > 2 || child == 0 {
            return None;
        }
        let entry = 4 * (child + parent + size);
        ranges.chunks_exact(entry).find_map(|chunk| {
            let (c, rest) = chunk.split_at(4 * child);
            let (p, s) = rest.split_at(4 * parent);
            let (c, p, s) = (number(c), number(p), number(s));
            let offset = address.checked_sub(c)?;
            (offset < s).then(|| p.checked_add(offset)).flatten()
        })
    }
}

/// Big-endian cells as one number (at most two cells).
fn number(bytes: &[u8]) -> u64 {
    bytes.chunks_exact(4).fold(0u64, |acc, c| {
        (acc << 32) | u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    })
}

/// A `#address-cells` or `#size-cells` of `node`, or the specification's
/// default.
fn cells(node: FdtNode<'_, '_>, name: &str, default: usize) -> usize {
    node.property(name)
        .and_then(|p| p.as_usize())
        .unwrap_or(default)
}

/// Walks the tree depth first, skipping what lies below a node without
/// `ranges`, and returns the first `pick(node, translation)` that is
/// `Some`.
pub fn find<'b, 'dt, T>(
    fdt: &'b Fdt<'dt>,
    mut pick: impl FnMut(FdtNode<'b, 'dt>, &Translation<'dt>) -> Option<T>,
) -> Option<T> {
    let root = fdt.find_node("/")?;
    let mut chain = Translation::default();
    if let Some(found) = pick(root, &chain) {
        return Some(found);
    }
    let root_cells = cells(root, "#address-cells", 2);
    for child in root.children() {
        if let Some(found) = walk(child, root_cells, &mut chain, &mut pick) {
            return Some(found);
        }
    }
    None
}

/// The [`Translation`] of `node`, a node of the tree in `blob`; `None` if
/// it lies below a node without `ranges`, where it has no physical address,
/// or is not in `blob`.
///
/// Found by walking `blob`'s tokens up to the node's own (its name lies at
/// a place in the blob unique to it), reading only the cell counts and
/// `ranges` of the nodes it passes through: a fraction of what walking the
/// tree with `fdt` costs, which the boot pays for the GIC and the console.
pub fn of<'dt>(blob: &'dt [u8], node: FdtNode<'_, 'dt>) -> Option<Translation<'dt>> {
    use super::{FDT_BEGIN_NODE, FDT_END, FDT_END_NODE, FDT_PROP, be32_usize, c_str, token};
    let structure = blob.get(be32_usize(blob, 8)?..)?;
    let structure = structure.get(..be32_usize(blob, 36)?)?;
    let strings = blob.get(be32_usize(blob, 12)?..)?;
    let target = node.name.as_ptr();
    // The nodes open at `position`: each one's cells and `ranges` so far.
    let mut open: heapless::Vec<(usize, usize, Option<&'dt [u8]>), MAX_DEPTH> =
        heapless::Vec::new();
    let mut position = 0;
    loop {
        let (kind, length) = token(structure, position)?;
        match kind {
            FDT_BEGIN_NODE => {
                if core::ptr::eq(structure.get(position + 4..)?.as_ptr(), target) {
                    // Buses from the root's first child down to the parent.
                    let mut chain = Translation::default();
                    for pair in open.windows(2) {
                        let ((parent_cells, _, _), (child_cells, size_cells, ranges)) =
                            (pair[0], pair[1]);
                        chain
                            .buses
                            .push(Bus {
                                ranges: Some(ranges?),
                                child_cells,
                                parent_cells,
                                size_cells,
                            })
                            .ok()?;
                    }
                    return Some(chain);
                }
                open.push((2, 1, None)).ok()?;
            }
            FDT_END_NODE => {
                open.pop()?;
            }
            FDT_PROP => {
                let value_length = be32_usize(structure, position + 4)?;
                let name = c_str(strings.get(be32_usize(structure, position + 8)?..)?)?;
                let value = structure.get(position + 12..position + 12 + value_length)?;
                let number = || be32_usize(value, 0);
                let here = open.last_mut()?;
                match name {
                    b"#address-cells" => here.0 = number()?,
                    b"#size-cells" => here.1 = number()?,
                    b"ranges" => here.2 = Some(value),
                    _ => {}
                }
            }
            FDT_END => return None,
            _ => {}
        }
        position += length;
    }
}

fn walk<'b, 'dt, T>(
    node: FdtNode<'b, 'dt>,
    parent_cells: usize,
    chain: &mut Translation<'dt>,
    pick: &mut impl FnMut(FdtNode<'b, 'dt>, &Translation<'dt>) -> Option<T>,
) -> Option<T> {
    if let Some(found) = pick(node, chain) {
        return Some(found);
    }
    let ranges = node.property("ranges")?.value;
    let bus = Bus {
        ranges: Some(ranges),
        child_cells: cells(node, "#address-cells", 2),
        parent_cells,
        size_cells: cells(node, "#size-cells", 1),
    };
    if chain.buses.push(bus).is_err() {
        return None;
    }
    let mut found = None;
    for child in node.children() {
        found = walk(child, bus.child_cells, chain, pick);
        if found.is_some() {
            break;
        }
    }
    chain.buses.pop();
    found
}

#[cfg(test)]
mod tests {
    use fdt::Fdt;

    use super::{find, of};
    use crate::fixtures::{GICV3, rpi4b};
    use crate::range::PhysRange;

    fn translated(blob: &[u8], path: &str) -> Option<PhysRange> {
        let fdt = Fdt::new(blob).unwrap();
        let node = fdt.find_node(path).unwrap();
        let reg = node.reg().unwrap().next().unwrap();
        let range = PhysRange::new(reg.starting_address as u64, reg.size.unwrap() as u64)?;
        of(blob, node)?.range(range)
    }

    #[test]
    fn the_pi_4s_soc_bus_is_translated() {
        // /soc ranges: 0x7e000000 -> 0xfe000000 (and 0x7c000000 -> 0xfc000000).
        assert_eq!(
            translated(&rpi4b(), "/soc/serial@7e201000"),
            PhysRange::new(0xfe20_1000, 0x200)
        );
        assert_eq!(
            translated(&rpi4b(), "/soc/gpio@7e200000"),
            PhysRange::new(0xfe20_0000, 0xb4)
        );
        // The GIC-400 sits in the 0x40000000 -> 0xff800000 window.
        assert_eq!(
            translated(&rpi4b(), "/soc/interrupt-controller@40041000"),
            PhysRange::new(0xff84_1000, 0x1000)
        );
    }

    #[test]
    fn root_devices_are_not_moved() {
        assert_eq!(
            translated(GICV3, "/pl011@9000000"),
            PhysRange::new(0x0900_0000, 0x1000)
        );
    }

    #[test]
    fn a_node_without_ranges_above_it_has_no_physical_address() {
        // /cpus has no `ranges`: a core's `reg` is an MPIDR, not an address.
        let blob = rpi4b();
        let fdt = Fdt::new(&blob).unwrap();
        let cpu = fdt.find_node("/cpus/cpu@0").unwrap();
        assert!(of(&blob, cpu).is_none());
        let cpus = fdt.find_node("/cpus").unwrap();
        assert_eq!(of(&blob, cpus).unwrap().address(0x1234), Some(0x1234));
    }

    #[test]
    fn the_walk_visits_nodes_in_all_nodes_order_but_not_below_a_node_without_ranges() {
        let blob = rpi4b();
        let fdt = Fdt::new(&blob).unwrap();
        let mut walked = Vec::new();
        let none: Option<()> = find(&fdt, |node, _| {
            walked.push(node.name.as_ptr());
            None
        });
        assert!(none.is_none());
        let all: Vec<*const u8> = fdt.all_nodes().map(|n| n.name.as_ptr()).collect();
        // A subsequence of all_nodes (the root's name aside, which the two
        // spell differently).
        let mut rest = all[1..].iter();
        assert!(walked[1..].iter().all(|w| rest.any(|a| a == w)));
        let at = |path: &str| fdt.find_node(path).unwrap().name.as_ptr();
        for path in [
            "/soc/serial@7e201000",
            "/soc/interrupt-controller@40041000",
            "/cpus",
        ] {
            assert!(walked.contains(&at(path)), "{path}");
        }
        assert!(!walked.contains(&at("/cpus/cpu@0")));
    }
}
