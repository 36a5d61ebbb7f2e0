// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Tests of both translation regimes.

use super::{Attributes, Builder, MapError, Regime, Table, Translation};
use crate::range::PhysRange;

fn r(start: u64, end: u64) -> PhysRange {
    PhysRange::from_bounds(start, end).unwrap()
}

fn pool(n: usize) -> Vec<Table> {
    vec![Table::EMPTY; n]
}

#[test]
fn ram_uses_large_blocks_and_the_image_uses_pages() {
    let mut tables = pool(8);
    let mut b = Builder::new(&mut tables, 0x4100_0000, Regime::El2).unwrap();
    b.map(r(0x4020_0000, 0x4021_0000), Attributes::Code)
        .unwrap();
    b.map(r(0x4021_0000, 0x4030_0000), Attributes::ReadWrite)
        .unwrap();
    b.map(r(0x4000_0000, 0x4020_0000), Attributes::ReadWrite)
        .unwrap();
    b.map(r(0x4040_0000, 0x1_0000_0000), Attributes::ReadWrite)
        .unwrap();
    b.map(r(0x4030_0000, 0x4040_0000), Attributes::ReadWrite)
        .unwrap();
    b.map(r(0x0900_0000, 0x0900_1000), Attributes::Device)
        .unwrap();
    assert_eq!(b.lookup(0x4020_0000), Some(Attributes::Code));
    assert_eq!(b.lookup(0x4020_ffff), Some(Attributes::Code));
    assert_eq!(b.lookup(0x4021_0000), Some(Attributes::ReadWrite));
    assert_eq!(b.lookup(0xffff_f000), Some(Attributes::ReadWrite));
    assert_eq!(b.lookup(0x0900_0fff), Some(Attributes::Device));
    assert_eq!(b.lookup(0x0900_1000), None);
    assert_eq!(b.lookup(0x1_0000_0000), None);
    // root, L1, L2 for 0x40000000, L3 for the image's 2 MiB, and L2 + L3 for the UART.
    assert_eq!(b.tables_used(), 6);
}

#[test]
fn stage2_maps_ipa_to_elsewhere() {
    let mut tables = pool(8);
    let mut b = Builder::new(&mut tables, 0x8000_0000, Regime::Stage2).unwrap();
    // A partition's RAM: IPA 0x4000_0000 backed by PA 0x4560_0000 (2 MiB aligned).
    b.map_to(
        r(0x4000_0000, 0x4040_0000),
        0x4560_0000,
        Attributes::ReadWriteExecute,
    )
    .unwrap();
    // A device at IPA = PA.
    b.map(r(0x0900_0000, 0x0900_1000), Attributes::Device)
        .unwrap();
    assert_eq!(
        b.translate(0x4000_1234),
        Some(Translation {
            output: 0x4560_1234,
            attributes: Attributes::ReadWriteExecute
        })
    );
    assert_eq!(
        b.translate(0x403f_ffff).map(|t| t.output),
        Some(0x459f_ffff)
    );
    assert_eq!(b.translate(0x4040_0000), None);
    assert_eq!(b.lookup(0x0900_0010), Some(Attributes::Device));
    // Beyond the 39-bit IPA space: refused, and never translated.
    assert!(matches!(
        b.map_to(r(1 << 39, (1 << 39) + 0x1000), 0, Attributes::ReadWrite),
        Err(MapError::BadRange(_))
    ));
    assert_eq!(b.translate(1 << 39), None);
}

#[test]
fn stage2_blocks_need_aligned_output() {
    let mut tables = pool(8);
    let mut b = Builder::new(&mut tables, 0, Regime::Stage2).unwrap();
    // Input 2 MiB aligned, output only 4 KiB aligned: pages, not a block.
    b.map_to(
        r(0x4000_0000, 0x4020_0000),
        0x4561_0000,
        Attributes::ReadWrite,
    )
    .unwrap();
    assert_eq!(
        b.translate(0x401f_f000).map(|t| t.output),
        Some(0x4580_f000)
    );
    // root (L1), L2, L3.
    assert_eq!(b.tables_used(), 3);
}

#[test]
fn every_attribute_reads_back_in_both_regimes() {
    for regime in [Regime::El2, Regime::Stage2] {
        for attributes in [
            Attributes::Code,
            Attributes::ReadOnly,
            Attributes::ReadWrite,
            Attributes::ReadWriteExecute,
            Attributes::Device,
        ] {
            let mut tables = pool(4);
            let mut b = Builder::new(&mut tables, 0, regime).unwrap();
            b.map(r(0x1000_0000, 0x1000_1000), attributes).unwrap();
            assert_eq!(b.lookup(0x1000_0000), Some(attributes), "{regime:?}");
        }
    }
}

#[test]
fn overlapping_maps_are_refused() {
    let mut tables = pool(8);
    let mut b = Builder::new(&mut tables, 0, Regime::El2).unwrap();
    b.map(r(0x4000_0000, 0x8000_0000), Attributes::ReadWrite)
        .unwrap();
    assert_eq!(
        b.map(r(0x7fff_f000, 0x8000_1000), Attributes::Code),
        Err(MapError::AlreadyMapped(0x7fff_f000))
    );
    // Nothing of the refused range was mapped.
    assert_eq!(b.lookup(0x8000_0000), None);
}

#[test]
fn misaligned_or_too_high_ranges_are_refused() {
    let mut tables = pool(2);
    let mut b = Builder::new(&mut tables, 0, Regime::El2).unwrap();
    assert!(matches!(
        b.map(r(0x10, 0x1000), Attributes::Code),
        Err(MapError::BadRange(_))
    ));
    assert!(matches!(
        b.map(r(1 << 48, (1 << 48) + 0x1000), Attributes::Code),
        Err(MapError::BadRange(_))
    ));
    assert!(matches!(
        b.map_to(r(0, 0x1000), !0xfff, Attributes::Code),
        Err(MapError::BadRange(_))
    ));
}

#[test]
fn running_out_of_tables_is_an_error() {
    let mut tables = pool(2);
    let mut b = Builder::new(&mut tables, 0, Regime::El2).unwrap();
    assert_eq!(
        b.map(r(0x1000, 0x2000), Attributes::Device),
        Err(MapError::OutOfTables)
    );
}

proptest::proptest! {
    /// Whatever is mapped reads back with its own output and attributes, and
    /// what is not mapped reads back as unmapped, in both regimes.
    #[test]
    fn translate_agrees_with_map(
        stage2: bool,
        pages in proptest::collection::vec((0u64..2048, 1u64..600, 0u8..5, 0u64..4096), 1..8),
    ) {
        let regime = if stage2 { Regime::Stage2 } else { Regime::El2 };
        let mut tables = pool(64);
        let mut b = Builder::new(&mut tables, 0x8000_0000, regime).unwrap();
        let mut model: Vec<(PhysRange, u64, Attributes)> = Vec::new();
        let kinds = [
            Attributes::Code,
            Attributes::ReadOnly,
            Attributes::ReadWrite,
            Attributes::ReadWriteExecute,
            Attributes::Device,
        ];
        for (first, count, kind, out_page) in pages {
            let range = r(first * 4096 + 0x4000_0000, (first + count) * 4096 + 0x4000_0000);
            let output = if stage2 { 0x1_0000_0000 + out_page * 4096 } else { range.start() };
            let attributes = kinds[kind as usize];
            let clash = model.iter().any(|(m, _, _)| m.overlaps(range));
            let result = b.map_to(range, output, attributes);
            proptest::prop_assert_eq!(result.is_ok(), !clash);
            if !clash {
                model.push((range, output, attributes));
            }
        }
        for page in 0..2700u64 {
            let addr = 0x4000_0000 + page * 4096 + 8;
            let want = model
                .iter()
                .find(|(m, _, _)| m.contains(addr))
                .map(|(m, out, a)| Translation { output: out + (addr - m.start()), attributes: *a });
            proptest::prop_assert_eq!(b.translate(addr), want);
        }
    }
}
