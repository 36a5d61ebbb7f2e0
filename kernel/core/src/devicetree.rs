// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Checking a flattened device tree before anything else reads it.
//!
//! The loader hands the kernel a device tree that it built, patched or merely
//! passed on, and the kernel must not panic whatever its bytes say. The `fdt`
//! crate that [`crate::platform`] reads the tree with trusts the tree's layout
//! and panics on many corrupt blobs: a property that runs past its block, a
//! name offset outside the strings block, a node that never ends, a
//! `#address-cells` shorter than four bytes. [`validate`] walks the whole blob
//! once, without allocating, as chapter 5 of the Devicetree Specification
//! v0.4 lays it out (header, memory reservation block, structure block,
//! strings block), and refuses anything that `fdt` 0.1.5 could not then walk
//! safely, so that every call
//! [`PlatformInfo::parse`](crate::platform::PlatformInfo::parse) makes after
//! it returns `Ok` is safe.
//!
//! Some well-formed trees are refused too, because of how `fdt` walks them:
//! - `FDT_NOP` is accepted only outside the root node. Inside a node, `fdt`
//!   panics when it skips over the node (which `find_node` and `children` do)
//!   unless the NOP comes right before `FDT_END_NODE`, and there `all_nodes`
//!   silently stops early. Trees that libfdt edited in place with
//!   `fdt_nop_property` or `fdt_nop_node` are therefore refused.
//! - Nodes may nest at most [`MAX_DEPTH`] deep: `all_nodes` keeps 64 parent
//!   slots, and skipping a node recurses once per level on the kernel stack.
//! - In `/aliases`, a property name must not contain `/` and its value must
//!   be a path starting with `/`: when `find_node` does not find a path it
//!   looks it up as an alias, and an alias naming another alias would recurse
//!   forever.
//! - In `/chosen`, `bootargs`, `stdout-path` and `stdin-path` must be
//!   NUL-terminated UTF-8 strings: `fdt` drops their last byte without
//!   checking that there is one.
//!
//! Property values that `fdt` reads through `Option` (`reg`, `compatible`,
//! `model`, `status`, `device_type`, `method` and the rest) are left to
//! [`crate::platform`], which checks what it uses: refusing a whole tree for
//! an odd value in a node the kernel never reads would stop a boot for nothing.

pub mod translate;

use core::ffi::CStr;
use core::str;

use crate::platform::DtError;

/// The deepest nesting of nodes accepted, counting the root as 1.
///
/// Real trees nest fewer than ten deep; libfdt and U-Boot stop at 32 too.
pub const MAX_DEPTH: usize = 32;

const MAGIC: u32 = 0xd00d_feed;
/// The version 17 header: ten big-endian `u32`s, all of which `fdt` reads.
const HEADER_SIZE: usize = 40;
const RESERVATION_SIZE: usize = 16;

pub(crate) const FDT_BEGIN_NODE: u32 = 1;
pub(crate) const FDT_END_NODE: u32 = 2;
pub(crate) const FDT_PROP: u32 = 3;
const FDT_NOP: u32 = 4;
pub(crate) const FDT_END: u32 = 9;

/// Checks that `blob` is a flattened device tree that the `fdt` crate can
/// walk without panicking.
///
/// Errors: [`DtError::BadHeader`] unless the header has the magic number, a
/// `version` of at least 16 and a `last_comp_version` of at most 17, and
/// places its blocks (aligned as the specification asks) after the header
/// and inside `totalsize` bytes, which `blob` must hold;
/// [`DtError::Malformed`] with the byte offset of the first problem found in
/// the blocks.
pub fn validate(blob: &[u8]) -> Result<(), DtError> {
    let header = Header::read(blob)?;
    let tree = blob.get(..header.totalsize).ok_or(DtError::BadHeader)?;
    check_reservations(tree, header.reservations)?;
    let structure = tree
        .get(header.structure.0..header.structure.1)
        .ok_or(DtError::BadHeader)?;
    let strings = tree
        .get(header.strings.0..header.strings.1)
        .ok_or(DtError::BadHeader)?;
    Structure {
        block: structure,
        base: header.structure.0,
        strings,
    }
    .check()
}

/// A big-endian `u32` at `offset`.
pub(crate) fn be32(bytes: &[u8], offset: usize) -> Option<u32> {
    match *bytes.get(offset..offset.checked_add(4)?)? {
        [a, b, c, d] => Some(u32::from_be_bytes([a, b, c, d])),
        _ => None,
    }
}

/// A big-endian `u32` at `offset`, as a size or an offset.
pub(crate) fn be32_usize(bytes: &[u8], offset: usize) -> Option<usize> {
    usize::try_from(be32(bytes, offset)?).ok()
}

/// Moves every `FDT_NOP` inside the root node to just after it, in place,
/// and returns how many it moved; the tree means the same afterwards.
///
/// QEMU 10's `raspi4b` deletes nodes from the tree it is given
/// (`brcm,bcm2711-thermal`, `brcm,bcm2711-genet-v5`) with libfdt's
/// `fdt_nop_node`, which leaves `FDT_NOP`s inside the root node, where
/// [`validate`] refuses them because `fdt` cannot walk them. The kernel calls
/// this on the loader's tree (its own memory from then on) before
/// [`validate`]. The tokens that are not NOPs keep their order and move
/// towards the start of the structure block; the NOPs go after the root's
/// `FDT_END_NODE`, before `FDT_END`, where they are allowed: no block
/// changes size or place, so the header stays as it is.
///
/// # Errors
/// [`DtError::BadHeader`] or [`DtError::Malformed`] if the tree is not one
/// whose tokens can be walked to `FDT_END`; the blob is then unchanged
/// ([`validate`] says more).
pub fn move_nops_out(blob: &mut [u8]) -> Result<usize, DtError> {
    let header = Header::read(blob)?;
    let (start, end) = header.structure;
    let block = blob.get_mut(start..end).ok_or(DtError::BadHeader)?;
    let malformed = |position: usize| DtError::Malformed {
        offset: start.saturating_add(position),
        what: "a token that cannot be walked to FDT_END",
    };
    // First pass: that every token can be walked, up to FDT_END, and
    // whether there is anything to move (usually not: then nothing more).
    let (mut position, mut depth, mut nops) = (0usize, 0usize, false);
    let end_token = loop {
        let (token, length) = token(block, position).ok_or_else(|| malformed(position))?;
        match token {
            FDT_END => break position,
            FDT_BEGIN_NODE => depth += 1,
            FDT_END_NODE => depth = depth.checked_sub(1).ok_or_else(|| malformed(position))?,
            FDT_NOP if depth > 0 => nops = true,
            _ => {}
        }
        position += length;
    };
    if !nops {
        return Ok(0);
    }
    // Second pass: each kept token copied down to `write`, which never
    // passes the token being read.
    let (mut position, mut write, mut depth, mut moved) = (0usize, 0usize, 0usize, 0usize);
    while position < end_token {
        let Some((token, length)) = token(block, position) else {
            break; // checked above
        };
        match token {
            FDT_NOP if depth > 0 => moved += 1,
            _ => {
                block.copy_within(position..position + length, write);
                write += length;
            }
        }
        match token {
            FDT_BEGIN_NODE => depth += 1,
            FDT_END_NODE => depth = depth.saturating_sub(1),
            _ => {}
        }
        position += length;
    }
    for word in block[write..end_token].chunks_exact_mut(4) {
        word.copy_from_slice(&FDT_NOP.to_be_bytes());
    }
    Ok(moved)
}

/// The token at `position` of a structure block and its length with its
/// padding, if it lies wholly inside the block; `FDT_END` counts as 4.
pub(crate) fn token(block: &[u8], position: usize) -> Option<(u32, usize)> {
    let token = be32(block, position)?;
    let length = match token {
        FDT_BEGIN_NODE => align4(4 + c_str(block.get(position + 4..)?)?.len() + 1)?,
        FDT_PROP => align4(be32_usize(block, position + 4)?.checked_add(12)?)?,
        FDT_END_NODE | FDT_NOP | FDT_END => 4,
        _ => return None,
    };
    (position.checked_add(length)? <= block.len()).then_some((token, length))
}

/// `offset` rounded up to a multiple of four, as tokens are aligned.
fn align4(offset: usize) -> Option<usize> {
    Some(offset.checked_add(3)? & !3)
}

/// The bytes from the start of `bytes` up to (not including) the first NUL.
pub(crate) fn c_str(bytes: &[u8]) -> Option<&[u8]> {
    // `CStr` finds the NUL with `memchr`, and comes optimized even in debug
    // builds, which keeps the exhaustive corruption tests quick.
    Some(CStr::from_bytes_until_nul(bytes).ok()?.to_bytes())
}

/// The parts of the header that locate the blocks, checked against each
/// other and the blob's length. Block bounds are `(start, end)` offsets.
struct Header {
    totalsize: usize,
    structure: (usize, usize),
    strings: (usize, usize),
    reservations: usize,
}

impl Header {
    fn read(blob: &[u8]) -> Result<Self, DtError> {
        let field = |index: usize| {
            let at = index.checked_mul(4).ok_or(DtError::BadHeader)?;
            be32_usize(blob, at).ok_or(DtError::BadHeader)
        };
        if be32(blob, 0) != Some(MAGIC) {
            return Err(DtError::BadHeader);
        }
        let totalsize = field(1)?;
        let (version, last_compatible) = (field(5)?, field(6)?);
        let block = |offset: usize, size: usize, align: usize| {
            let end = offset.checked_add(size)?;
            (offset >= HEADER_SIZE && offset.is_multiple_of(align) && end <= totalsize)
                .then_some((offset, end))
        };
        let structure = block(field(2)?, field(9)?, 4);
        let strings = block(field(3)?, field(8)?, 1);
        let reservations = block(field(4)?, 0, 8);
        match (structure, strings, reservations) {
            (Some(structure), Some(strings), Some((reservations, _)))
                if (HEADER_SIZE..=blob.len()).contains(&totalsize)
                    && version >= 16
                    && last_compatible <= 17 =>
            {
                Ok(Self {
                    totalsize,
                    structure,
                    strings,
                    reservations,
                })
            }
            _ => Err(DtError::BadHeader),
        }
    }
}

/// The memory reservation block: 16-byte (address, size) entries, ending
/// with an all-zero one before the end of the tree.
fn check_reservations(tree: &[u8], start: usize) -> Result<(), DtError> {
    let unterminated = DtError::Malformed {
        offset: start,
        what: "the memory reservation block has no terminating entry",
    };
    let entries = tree.get(start..).ok_or(unterminated)?;
    if entries
        .chunks_exact(RESERVATION_SIZE)
        .any(|entry| entry.iter().all(|&b| b == 0))
    {
        Ok(())
    } else {
        Err(unterminated)
    }
}

/// The structure block, and the strings block that its property names point
/// into.
struct Structure<'b> {
    block: &'b [u8],
    /// The block's offset in the blob, for error offsets.
    base: usize,
    strings: &'b [u8],
}

/// Where the walk is inside the node it is in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Outside the root node: before it, or after it has closed.
    Outside,
    /// Among the node's properties, which come before its children.
    Properties,
    /// Among the node's children.
    Children,
}

/// Which standard node the walk is in, for the rules that apply there.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Special {
    None,
    Aliases,
    Chosen,
}

impl Structure<'_> {
    fn malformed(&self, position: usize, what: &'static str) -> DtError {
        DtError::Malformed {
            offset: self.base.saturating_add(position),
            what,
        }
    }

    /// Walks the tokens: `FDT_NOP*`, the root node, `FDT_NOP*`, `FDT_END`,
    /// where a node is `FDT_BEGIN_NODE` name, `FDT_PROP*`, child nodes,
    /// `FDT_END_NODE`.
    fn check(&self) -> Result<(), DtError> {
        let mut position = 0;
        // Nodes open now; 0 outside the root.
        let mut depth = 0;
        let mut root_seen = false;
        let mut place = Place::Outside;
        let mut special = Special::None;
        loop {
            let token = be32(self.block, position).ok_or_else(|| {
                self.malformed(position, "the structure block ends before FDT_END")
            })?;
            let next = match token {
                FDT_BEGIN_NODE => {
                    if root_seen && depth == 0 {
                        return Err(self.malformed(position, "a second root node"));
                    }
                    if depth >= MAX_DEPTH {
                        return Err(self.malformed(position, "nodes nested too deeply"));
                    }
                    let (name, next) = self.node_name(position)?;
                    if depth == 0 && !name.is_empty() {
                        return Err(self.malformed(position, "the root node has a name"));
                    }
                    special = match (depth, name.split('@').next()) {
                        (1, Some("aliases")) => Special::Aliases,
                        (1, Some("chosen")) => Special::Chosen,
                        _ => Special::None,
                    };
                    depth += 1; // below MAX_DEPTH, checked above
                    root_seen = true;
                    place = Place::Properties;
                    next
                }
                FDT_END_NODE => {
                    depth = depth
                        .checked_sub(1)
                        .ok_or_else(|| self.malformed(position, "FDT_END_NODE outside any node"))?;
                    place = if depth == 0 {
                        Place::Outside
                    } else {
                        Place::Children
                    };
                    position.checked_add(4)
                }
                FDT_PROP => {
                    let what = match place {
                        Place::Properties => None,
                        Place::Outside => Some("a property outside any node"),
                        Place::Children => Some("a property after a child node"),
                    };
                    if let Some(what) = what {
                        return Err(self.malformed(position, what));
                    }
                    let (name, value, next) = self.property(position)?;
                    check_value(name, value, special)
                        .map_err(|what| self.malformed(position, what))?;
                    next
                }
                FDT_NOP if place == Place::Outside => position.checked_add(4),
                FDT_NOP => {
                    return Err(self.malformed(
                        position,
                        "FDT_NOP inside a node (the fdt crate cannot skip it there)",
                    ));
                }
                FDT_END => {
                    let what = if depth != 0 {
                        "FDT_END before the root node is closed"
                    } else if !root_seen {
                        "no root node"
                    } else if position.checked_add(4) != Some(self.block.len()) {
                        "bytes after FDT_END in the structure block"
                    } else {
                        return Ok(());
                    };
                    return Err(self.malformed(position, what));
                }
                _ => return Err(self.malformed(position, "an unknown token")),
            };
            position =
                next.ok_or_else(|| self.malformed(position, "the structure block is too long"))?;
        }
    }

    /// The name of the node whose `FDT_BEGIN_NODE` is at `position`, and the
    /// position of the token after it.
    fn node_name(&self, position: usize) -> Result<(&str, Option<usize>), DtError> {
        let start = position.checked_add(4);
        let name = start
            .and_then(|start| self.block.get(start..))
            .and_then(c_str)
            .ok_or_else(|| self.malformed(position, "a node name is not NUL-terminated"))?;
        let name = str::from_utf8(name)
            .map_err(|_| self.malformed(position, "a node name is not UTF-8"))?;
        let next = start
            .and_then(|start| start.checked_add(name.len()))
            .and_then(|end| end.checked_add(1))
            .and_then(align4);
        Ok((name, next))
    }

    /// The name and value of the property whose `FDT_PROP` is at `position`,
    /// and the position of the token after it.
    fn property(&self, position: usize) -> Result<(&str, &[u8], Option<usize>), DtError> {
        let field = |index: usize| {
            index
                .checked_mul(4)
                .and_then(|offset| position.checked_add(offset))
                .and_then(|at| be32_usize(self.block, at))
                .ok_or_else(|| {
                    self.malformed(position, "a property header overruns the structure block")
                })
        };
        let (len, name_offset) = (field(1)?, field(2)?);
        let start = position.checked_add(12);
        let end = start.and_then(|start| start.checked_add(len));
        let value = start
            .zip(end)
            .and_then(|(start, end)| self.block.get(start..end))
            .ok_or_else(|| {
                self.malformed(position, "a property value overruns the structure block")
            })?;
        let name = self
            .strings
            .get(name_offset..)
            .and_then(c_str)
            .ok_or_else(|| {
                self.malformed(
                    position,
                    "a property name is not a NUL-terminated string in the strings block",
                )
            })?;
        let name = str::from_utf8(name)
            .map_err(|_| self.malformed(position, "a property name is not UTF-8"))?;
        Ok((name, value, end.and_then(align4)))
    }
}

/// The rules on one property's value, with what is wrong if one is broken.
fn check_value(name: &str, value: &[u8], special: Special) -> Result<(), &'static str> {
    let is_string = |value: &[u8]| value.last() == Some(&0) && str::from_utf8(value).is_ok();
    match (special, name) {
        (_, "#address-cells") if value.len() != 4 => Err("`#address-cells` is not 4 bytes"),
        (_, "#size-cells") if value.len() != 4 => Err("`#size-cells` is not 4 bytes"),
        (_, "#interrupt-cells") if value.len() != 4 => Err("`#interrupt-cells` is not 4 bytes"),
        (Special::Aliases, _) if name.contains('/') => Err("an alias name contains `/`"),
        (Special::Aliases, _) if !(is_string(value) && value.starts_with(b"/")) => {
            Err("an alias is not a NUL-terminated path starting with `/`")
        }
        (Special::Chosen, "bootargs") if !is_string(value) => {
            Err("`/chosen/bootargs` is not a NUL-terminated UTF-8 string")
        }
        (Special::Chosen, "stdout-path") if !is_string(value) => {
            Err("`/chosen/stdout-path` is not a NUL-terminated UTF-8 string")
        }
        (Special::Chosen, "stdin-path") if !is_string(value) => {
            Err("`/chosen/stdin-path` is not a NUL-terminated UTF-8 string")
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::move_nops_out;
    use crate::fixtures::RPI4B;

    #[test]
    fn qemus_deleted_nodes_are_moved_out_of_the_root() {
        let mut blob = RPI4B.to_vec();
        assert!(validate(&blob).is_err(), "QEMU 10 leaves NOPs in the root");
        let moved = move_nops_out(&mut blob).unwrap();
        assert!(moved > 0);
        assert_eq!(blob.len(), RPI4B.len());
        validate(&blob).unwrap();
        let fdt = fdt::Fdt::new(&blob).unwrap();
        assert!(fdt.find_node("/soc/serial@7e201000").is_some());
        // The nodes QEMU deleted are gone; their neighbours are not.
        assert!(fdt.find_compatible(&["brcm,bcm2711-thermal"]).is_none());
        assert!(fdt.find_compatible(&["brcm,bcm2711-genet-v5"]).is_none());
        assert!(fdt.find_node("/cpus/cpu@3").is_some());
        // Nothing more to move, and a tree without any stays as it was.
        assert_eq!(move_nops_out(&mut blob), Ok(0));
        let mut virt = GICV3.to_vec();
        assert_eq!(move_nops_out(&mut virt), Ok(0));
        assert_eq!(virt, GICV3);
    }

    #[test]
    fn a_tree_that_cannot_be_walked_is_left_alone() {
        let mut blob = RPI4B.to_vec();
        // Cut the structure block short: an unknown token in the middle.
        let start = u32::from_be_bytes(blob[8..12].try_into().unwrap()) as usize;
        let at = start + 4 * 64;
        blob[at..at + 4].copy_from_slice(&0x77u32.to_be_bytes());
        let before = blob.clone();
        assert!(move_nops_out(&mut blob).is_err());
        assert_eq!(blob, before);
    }

    use std::panic::catch_unwind;
    use std::thread;

    use fdt::Fdt;
    use proptest::prelude::{ProptestConfig, Strategy, any, prop_assert, prop_oneof, proptest};

    use super::{MAX_DEPTH, validate};
    use crate::platform::{DtError, PlatformInfo};
    use crate::range::PhysRange;

    use crate::fixtures::{GICV2, GICV3};

    /// Where [`Tree::blob`] puts the structure block: after the header and a
    /// memory reservation block holding only its terminator.
    const STRUCT: usize = 56;

    /// A hand-made tree: tokens and strings, laid out by [`Tree::blob`].
    #[derive(Default)]
    struct Tree {
        structure: Vec<u8>,
        strings: Vec<u8>,
    }

    impl Tree {
        fn word(mut self, word: u32) -> Self {
            self.structure.extend(word.to_be_bytes());
            self
        }

        fn pad(mut self) -> Self {
            while !self.structure.len().is_multiple_of(4) {
                self.structure.push(0);
            }
            self
        }

        fn begin(mut self, name: &str) -> Self {
            self = self.word(1);
            self.structure.extend(name.as_bytes());
            self.structure.push(0);
            self.pad()
        }

        fn end(self) -> Self {
            self.word(2)
        }

        /// A property whose name is interned in the strings block.
        fn prop(mut self, name: &str, value: &[u8]) -> Self {
            let offset = self.strings.len();
            self.strings.extend(name.as_bytes());
            self.strings.push(0);
            self = self.raw_prop(value.len() as u32, offset as u32);
            self.structure.extend(value);
            self.pad()
        }

        /// A property header with any length and name offset, and no value.
        fn raw_prop(self, len: u32, name_offset: u32) -> Self {
            self.word(3).word(len).word(name_offset)
        }

        fn nop(self) -> Self {
            self.word(4)
        }

        fn finish(self) -> Self {
            self.word(9)
        }

        /// A root with what QEMU-like trees need, around `children`.
        fn minimal(children: impl FnOnce(Self) -> Self) -> Self {
            let tree = Self::default()
                .begin("")
                .prop("#address-cells", &2u32.to_be_bytes())
                .prop("#size-cells", &2u32.to_be_bytes());
            children(tree).end().finish()
        }

        fn blob(&self) -> Vec<u8> {
            let strings = STRUCT + self.structure.len();
            let total = strings + self.strings.len();
            let header = [
                0xd00d_feed,
                total as u32,
                STRUCT as u32,
                strings as u32,
                40,
                17,
                16,
                0,
                self.strings.len() as u32,
                self.structure.len() as u32,
            ];
            let mut blob: Vec<u8> = header.iter().flat_map(|w| w.to_be_bytes()).collect();
            blob.extend([0; 16]);
            blob.extend(&self.structure);
            blob.extend(&self.strings);
            blob
        }
    }

    fn malformed(offset: usize, what: &'static str) -> Result<(), DtError> {
        Err(DtError::Malformed { offset, what })
    }

    /// Every `fdt` call `PlatformInfo::parse` makes, on every node and more,
    /// so that a validated tree that `fdt` still panics on shows up even when
    /// `parse` gives up before reaching the bad part.
    fn walk_with_fdt(blob: &[u8]) {
        let Ok(fdt) = Fdt::new(blob) else { return };
        let _ = fdt.memory_reservations().count();
        for node in fdt.all_nodes() {
            for property in node.properties() {
                let _ = (property.as_str(), property.as_usize());
            }
            let _ = node.reg().map(Iterator::count);
            let _ = node.compatible().map(|c| c.all().count());
            let _ = node.interrupts().map(Iterator::count);
            let _ = node.cell_sizes();
            for child in node.children() {
                let _ = child.reg().map(Iterator::count);
            }
        }
        let paths = [
            "/", "/chosen", "/cpus", "/memory", "/aliases", "/none", "serial0", "cpus", "x/y",
        ];
        for path in paths {
            let _ = fdt.find_node(path).map(|n| n.children().count());
        }
        if fdt.find_node("/chosen").is_some() {
            let chosen = fdt.chosen();
            let _ = (chosen.bootargs(), chosen.stdout(), chosen.stdin());
        }
        let _ = fdt.find_compatible(&["arm,pl011", "none"]);
        let _ = fdt.aliases().map(|aliases| aliases.all().count());
    }

    /// Whether `PlatformInfo::parse` returned rather than panicked.
    fn survives(blob: &[u8]) -> bool {
        catch_unwind(|| PlatformInfo::parse(blob).is_ok()).is_ok()
    }

    /// Whether the wider `fdt` walk returned rather than panicked, on a tree
    /// that validates.
    fn fdt_survives(blob: &[u8]) -> bool {
        validate(blob).is_err() || catch_unwind(|| walk_with_fdt(blob)).is_ok()
    }

    #[test]
    fn qemu_trees_validate_and_parse() {
        for blob in [GICV2, GICV3] {
            assert_eq!(validate(blob), Ok(()));
            assert!(PlatformInfo::parse(blob).is_ok());
        }
        assert_eq!(validate(&Tree::minimal(|t| t).blob()), Ok(()));
    }

    #[test]
    fn bad_headers() {
        assert_eq!(validate(&GICV3[..39]), Err(DtError::BadHeader));
        let mut magic = GICV3.to_vec();
        magic[0] = 0xd1;
        assert_eq!(validate(&magic), Err(DtError::BadHeader));
        assert_eq!(validate(&GICV3[..GICV3.len() - 1]), Err(DtError::BadHeader));
        let mut version = GICV3.to_vec();
        version[23] = 15;
        assert_eq!(validate(&version), Err(DtError::BadHeader));
        let mut strings = GICV3.to_vec();
        strings[32..36].copy_from_slice(&512u32.to_be_bytes()); // one past totalsize
        assert_eq!(validate(&strings), Err(DtError::BadHeader));
    }

    #[test]
    fn bad_blocks() {
        let mut unterminated = Tree::minimal(|t| t).blob();
        unterminated[40 + 15] = 1;
        let name = Tree::default().word(1).word(0x6162_6364).blob();
        let overrun = Tree::default().begin("").raw_prop(8, 0).blob();
        let huge = Tree::default().begin("").raw_prop(u32::MAX, 0).blob();
        let mut outside = Tree::minimal(|t| t.prop("model", b"m\0")).blob();
        let last = outside.len() - 1;
        outside[last] = b'x'; // the last name in the strings block loses its NUL
        let beyond = Tree::default()
            .begin("")
            .raw_prop(0, 1000)
            .end()
            .finish()
            .blob();
        let open = Tree::default().begin("").begin("a").end().finish().blob();
        let extra = Tree::default().begin("").end().end().finish().blob();
        let no_end = Tree::default().begin("").end().blob();
        let short = Tree::minimal(|t| t.prop("#address-cells", &[0, 2])).blob();
        let cases = [
            (
                unterminated,
                40,
                "the memory reservation block has no terminating entry",
            ),
            (name, STRUCT, "a node name is not NUL-terminated"),
            (
                overrun,
                STRUCT + 8,
                "a property value overruns the structure block",
            ),
            (
                huge,
                STRUCT + 8,
                "a property value overruns the structure block",
            ),
            (
                outside,
                STRUCT + 40,
                "a property name is not a NUL-terminated string in the strings block",
            ),
            (
                beyond,
                STRUCT + 8,
                "a property name is not a NUL-terminated string in the strings block",
            ),
            (open, STRUCT + 20, "FDT_END before the root node is closed"),
            (extra, STRUCT + 12, "FDT_END_NODE outside any node"),
            (
                no_end,
                STRUCT + 12,
                "the structure block ends before FDT_END",
            ),
            (short, STRUCT + 40, "`#address-cells` is not 4 bytes"),
        ];
        for (blob, offset, what) in cases {
            assert_eq!(validate(&blob), malformed(offset, what), "{what}");
            assert!(survives(&blob), "{what}");
        }
    }

    /// Well-formed trees that the `fdt` crate cannot walk are refused.
    #[test]
    fn shapes_the_fdt_crate_cannot_walk() {
        // `fdt` panics on these.
        let panics = [
            (
                Tree::minimal(|t| t.nop().prop("model", b"m\0")),
                STRUCT + 40,
                "FDT_NOP inside a node (the fdt crate cannot skip it there)",
            ),
            (
                Tree::minimal(|t| t.begin("a").end().prop("model", b"m\0")),
                STRUCT + 52,
                "a property after a child node",
            ),
            (
                Tree::minimal(|t| t.begin("chosen").prop("stdout-path", b"").end()),
                STRUCT + 52,
                "`/chosen/stdout-path` is not a NUL-terminated UTF-8 string",
            ),
        ];
        for (tree, offset, what) in panics {
            let blob = tree.blob();
            assert_eq!(validate(&blob), malformed(offset, what), "{what}");
            assert!(catch_unwind(|| walk_with_fdt(&blob)).is_err(), "{what}");
        }
        // `fdt` recurses until the stack overflows looking up `a` or `/x`.
        let recurses = [
            (
                Tree::minimal(|t| t.begin("aliases").prop("a", b"b\0").prop("b", b"a\0").end()),
                "an alias is not a NUL-terminated path starting with `/`",
            ),
            (
                Tree::minimal(|t| t.begin("aliases").prop("/x", b"/x\0").end()),
                "an alias name contains `/`",
            ),
        ];
        for (tree, what) in recurses {
            assert_eq!(
                validate(&tree.blob()),
                malformed(STRUCT + 52, what),
                "{what}"
            );
        }
        // Against the specification, though `fdt` copes.
        let copes = [
            (
                Tree::default().begin("x").end().finish(),
                STRUCT,
                "the root node has a name",
            ),
            (
                Tree::default().begin("").end().begin("").end().finish(),
                STRUCT + 12,
                "a second root node",
            ),
            (
                Tree::default().begin("").end().finish().word(0),
                STRUCT + 12,
                "bytes after FDT_END in the structure block",
            ),
            (Tree::default().word(5), STRUCT, "an unknown token"),
        ];
        for (tree, offset, what) in copes {
            assert_eq!(validate(&tree.blob()), malformed(offset, what), "{what}");
        }
        // NOPs around the root are fine.
        let nops = Tree::default().nop().begin("").end().nop().finish();
        assert_eq!(validate(&nops.blob()), Ok(()));
    }

    #[test]
    fn nesting_is_limited() {
        let nest = |depth: usize| {
            let mut tree = Tree::default().begin("");
            for _ in 1..depth {
                tree = tree.begin("n");
            }
            for _ in 0..depth {
                tree = tree.end();
            }
            tree.finish().blob()
        };
        assert_eq!(validate(&nest(MAX_DEPTH)), Ok(()));
        let deepest = STRUCT + 8 * MAX_DEPTH;
        assert_eq!(
            validate(&nest(MAX_DEPTH + 1)),
            malformed(deepest, "nodes nested too deeply")
        );
    }

    /// Every byte of the GICv3 tree set to 0x00, 0xff and 0x41, and the tree
    /// cut short at every length: `parse` never panics.
    ///
    /// Most corruptions still validate (they land in property values) and
    /// then cost a full `parse` through the unoptimized `fdt` crate, so the
    /// positions are shared out among the machine's cores.
    #[test]
    fn every_single_byte_corruption_and_truncation_survives() {
        let threads = thread::available_parallelism().map_or(1, usize::from);
        let positions: Vec<usize> = (0..GICV3.len()).collect();
        let chunk = positions.len().div_ceil(threads);
        // Per thread: corruptions tried, and (position, byte written or
        // `None` for a cut there) for each that panicked.
        type Outcome = (usize, Vec<(usize, Option<u8>)>);
        let results: Vec<Outcome> = thread::scope(|scope| {
            let workers: Vec<_> = positions
                .chunks(chunk)
                .map(|positions| {
                    scope.spawn(move || {
                        let (mut tried, mut failed) = (0, Vec::new());
                        let mut blob = GICV3.to_vec();
                        for &at in positions {
                            // Writing the byte already there gives the fixture itself.
                            for byte in [0x00, 0xff, 0x41].into_iter().filter(|&b| b != GICV3[at]) {
                                blob[at] = byte;
                                tried += 1;
                                if !survives(&blob) {
                                    failed.push((at, Some(byte)));
                                }
                            }
                            blob[at] = GICV3[at];
                            tried += 1;
                            if !survives(&GICV3[..at]) {
                                failed.push((at, None));
                            }
                        }
                        (tried, failed)
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        let tried: usize = results.iter().map(|(tried, _)| tried).sum();
        let failed: Vec<_> = results.into_iter().flat_map(|(_, failed)| failed).collect();
        println!("{tried} corruptions tried, {} panicked", failed.len());
        assert!(
            failed.is_empty(),
            "(position, byte or truncation): {failed:?}"
        );
    }

    /// A small tree with what the QEMU trees lack: `/aliases`, a
    /// `stdout-path` that names an alias, `/reserved-memory` and a disabled
    /// core, so that the corruption tests reach those paths through `fdt`.
    fn tree_with_aliases() -> Vec<u8> {
        let cells =
            |words: &[u32]| -> Vec<u8> { words.iter().flat_map(|w| w.to_be_bytes()).collect() };
        let node = |tree: Tree, name: &str, props: &[(&str, &[u8])]| {
            let tree = props
                .iter()
                .fold(tree.begin(name), |t, (name, value)| t.prop(name, value));
            tree.end()
        };
        Tree::minimal(|t| {
            let t = t.prop("model", b"aliased\0");
            let t = node(
                t,
                "aliases",
                &[("serial0", b"/pl011@9000000\0"), ("cpus", b"/cpus\0")],
            );
            let t = node(
                t,
                "chosen",
                &[("stdout-path", b"serial0\0"), ("bootargs", b"a=b\0")],
            );
            let t = t
                .begin("cpus")
                .prop("#address-cells", &cells(&[1]))
                .prop("#size-cells", &cells(&[0]));
            let t = node(
                t,
                "cpu@0",
                &[("device_type", b"cpu\0"), ("reg", &cells(&[0]))],
            );
            let t = node(
                t,
                "cpu@1",
                &[
                    ("device_type", b"cpu\0"),
                    ("status", b"disabled\0"),
                    ("reg", &cells(&[1])),
                ],
            );
            let t = t.end();
            let t = node(
                t,
                "memory@40000000",
                &[
                    ("device_type", b"memory\0"),
                    ("reg", &cells(&[0, 0x4000_0000, 0, 0x2000_0000])),
                ],
            );
            let t = t
                .begin("reserved-memory")
                .prop("#address-cells", &cells(&[2]))
                .prop("#size-cells", &cells(&[2]));
            let t = node(
                t,
                "fw@48000000",
                &[("reg", &cells(&[0, 0x4800_0000, 0, 0x1000]))],
            );
            let t = t.end();
            let t = node(
                t,
                "intc@8000000",
                &[
                    ("compatible", b"arm,gic-v3\0"),
                    ("#interrupt-cells", &cells(&[3])),
                    (
                        "reg",
                        &cells(&[0, 0x800_0000, 0, 0x1_0000, 0, 0x80a_0000, 0, 0xf6_0000]),
                    ),
                ],
            );
            let t = node(
                t,
                "pl011@9000000",
                &[
                    ("compatible", b"arm,pl011\0arm,primecell\0"),
                    ("reg", &cells(&[0, 0x900_0000, 0, 0x1000])),
                    ("interrupts", &cells(&[0, 1, 4])),
                ],
            );
            node(
                t,
                "psci",
                &[("compatible", b"arm,psci-1.0\0"), ("method", b"smc\0")],
            )
        })
        .blob()
    }

    #[test]
    fn a_tree_with_aliases_validates_and_parses() {
        let blob = tree_with_aliases();
        assert_eq!(validate(&blob), Ok(()));
        let info = PlatformInfo::parse(&blob).unwrap();
        assert_eq!(info.cpus.as_slice(), &[0]);
        assert_eq!(
            info.reserved.as_slice(),
            &[PhysRange::new(0x4800_0000, 0x1000).unwrap()]
        );
        let uart = info.uart.unwrap();
        assert_eq!(uart.registers, PhysRange::new(0x0900_0000, 0x1000).unwrap());
        assert_eq!(info.bootargs, "a=b");
    }

    /// One random change to a tree of `len` bytes: a byte anywhere, or an
    /// aligned word (where tokens, lengths and offsets live), often a small one.
    fn corruption(len: usize) -> impl Strategy<Value = (usize, Vec<u8>)> {
        let byte = (0..len, any::<u8>()).prop_map(|(at, b)| (at, vec![b]));
        let word = (0..len / 4, prop_oneof![0u32..16, any::<u32>()])
            .prop_map(|(at, w)| (at * 4, w.to_be_bytes().to_vec()));
        prop_oneof![byte, word]
    }

    /// `tree` with `changes` made to it.
    fn corrupt(tree: &[u8], changes: Vec<(usize, Vec<u8>)>) -> Vec<u8> {
        let mut blob = tree.to_vec();
        for (at, bytes) in changes {
            blob[at..at + bytes.len()].copy_from_slice(&bytes);
        }
        blob
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        /// A few random changes to the GICv3 tree: neither `parse` nor, when
        /// the result validates, the wider `fdt` walk panics.
        #[test]
        fn random_corruptions_survive(
            changes in proptest::collection::vec(corruption(GICV3.len()), 1..5),
        ) {
            let blob = corrupt(GICV3, changes);
            prop_assert!(survives(&blob));
            prop_assert!(fdt_survives(&blob));
        }

        /// The same for the tree with aliases.
        #[test]
        fn random_corruptions_of_aliases_survive(
            changes in proptest::collection::vec(corruption(tree_with_aliases().len()), 1..5),
        ) {
            let blob = corrupt(&tree_with_aliases(), changes);
            prop_assert!(survives(&blob));
            prop_assert!(fdt_survives(&blob));
        }
    }
}
