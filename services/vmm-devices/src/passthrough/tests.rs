// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Tests of `BULKHEAD_GUEST_DEVICES` parsing: the compiler's format, and every way an entry
//! can be malformed, each skipped with a reason while the others are kept.

use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use proptest::prelude::*;

use super::{Device, EntryError, Parsed, Problem, parse};

fn rtc() -> Device {
    Device {
        name: "rtc0".into(),
        compatible: "arm,pl031".into(),
        base: 0x0901_0000,
        size: 0x1000,
        irqs: vec![34],
    }
}

/// The one problem of a text holding one bad entry.
fn problem(text: &str) -> Problem {
    let parsed = parse(text);
    assert!(
        parsed.devices.is_empty(),
        "{text:?} gave {:?}",
        parsed.devices
    );
    assert_eq!(parsed.errors.len(), 1, "{text:?}");
    assert_eq!(parsed.errors[0].entry, text);
    parsed.errors[0].problem.clone()
}

#[test]
fn the_compilers_example() {
    let parsed = parse("rtc0 arm,pl031 0x9010000 0x1000 34");
    assert_eq!(
        parsed,
        Parsed {
            devices: vec![rtc()],
            errors: vec![],
        }
    );
}

#[test]
fn empty_means_no_devices() {
    assert_eq!(parse(""), Parsed::default());
    assert_eq!(parse(";"), Parsed::default());
    assert_eq!(parse(" ; ;"), Parsed::default());
}

#[test]
fn several_entries_several_irqs_and_none() {
    let parsed = parse(
        "rtc0 arm,pl031 0x9010000 0x1000 34;gpio0 arm,pl061 0x9030000 0x1000 39+40;\
         flash0 cfi-flash 0x4000000 0x4000000 -",
    );
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    assert_eq!(parsed.devices.len(), 3);
    assert_eq!(parsed.devices[0], rtc());
    assert_eq!(parsed.devices[1].name, "gpio0");
    assert_eq!(parsed.devices[1].irqs, [39, 40]);
    assert_eq!(parsed.devices[2].compatible, "cfi-flash");
    assert_eq!(parsed.devices[2].base, 0x0400_0000);
    assert_eq!(parsed.devices[2].size, 0x0400_0000);
    assert!(parsed.devices[2].irqs.is_empty());
}

#[test]
fn a_trailing_separator_is_harmless() {
    assert_eq!(
        parse("rtc0 arm,pl031 0x9010000 0x1000 34;").devices,
        [rtc()]
    );
}

#[test]
fn uppercase_hex_and_the_widest_numbers_parse() {
    let parsed = parse("rtc0 arm,pl031 0x9010ABC 0xFFF 1019");
    assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
    assert_eq!(parsed.devices[0].base, 0x0901_0abc);
    assert_eq!(parsed.devices[0].irqs, [1019]);
    let parsed = parse("far x 0xffffffffffffe000 0x1000 32");
    assert_eq!(parsed.devices[0].base, 0xffff_ffff_ffff_e000);
    assert_eq!(parsed.devices[0].end(), 0xffff_ffff_ffff_f000);
}

#[test]
fn wrong_field_counts() {
    assert_eq!(problem("rtc0 arm,pl031 0x9010000"), Problem::Fields(3));
    assert_eq!(
        problem("rtc0 arm,pl031 0x9010000 0x1000 34 extra"),
        Problem::Fields(6)
    );
    // Two spaces make an empty field.
    assert_eq!(
        problem("rtc0  arm,pl031 0x9010000 0x1000 34"),
        Problem::Fields(6)
    );
    assert_eq!(problem("rtc0,arm,pl031,0x9010000"), Problem::Fields(1));
    // A tab is no separator.
    assert_eq!(
        problem("rtc0\tarm,pl031 0x9010000 0x1000 34"),
        Problem::Fields(4)
    );
}

#[test]
fn bad_names_and_compatible_strings() {
    assert_eq!(
        problem("rtc\u{7} arm,pl031 0x9010000 0x1000 34"),
        Problem::BadText("name")
    );
    assert_eq!(
        problem("rtc0 arm,pl031\0 0x9010000 0x1000 34"),
        Problem::BadText("compatible string")
    );
    assert_eq!(
        problem("rtc0 arm/pl031 0x9010000 0x1000 34"),
        Problem::BadText("compatible string")
    );
    assert_eq!(
        problem("rtc0 arm, 0x9010000 0x1000 34"),
        Problem::BadText("compatible string")
    );
    assert_eq!(
        problem("rtc0 arm,pl,031 0x9010000 0x1000 34"),
        Problem::BadText("compatible string")
    );
    assert_eq!(
        problem("rtc0 \u{e9}t\u{e9} 0x9010000 0x1000 34"),
        Problem::BadText("compatible string")
    );
}

#[test]
fn bad_numbers() {
    assert_eq!(
        problem("rtc0 arm,pl031 9010000 0x1000 34"),
        Problem::BadBase
    );
    assert_eq!(problem("rtc0 arm,pl031 0x 0x1000 34"), Problem::BadBase);
    assert_eq!(
        problem("rtc0 arm,pl031 0x901g000 0x1000 34"),
        Problem::BadBase
    );
    assert_eq!(
        problem("rtc0 arm,pl031 0x10000000000000000 0x1000 34"),
        Problem::BadBase
    );
    assert_eq!(
        problem("rtc0 arm,pl031 0x+9010000 0x1000 34"),
        Problem::BadBase
    );
    assert_eq!(
        problem("rtc0 arm,pl031 0x9010000 4096 34"),
        Problem::BadSize
    );
    assert_eq!(
        problem("rtc0 arm,pl031 0x9010000 0x0 34"),
        Problem::EmptyFrame
    );
    assert_eq!(
        problem("rtc0 arm,pl031 0xfffffffffffff000 0x1001 34"),
        Problem::Wraps
    );
}

#[test]
fn bad_interrupts() {
    for irqs in [
        "",
        "+",
        "34+",
        "+34",
        "34,35",
        "0x22",
        "-34",
        "34 ",
        "99999999999",
        "- ",
    ] {
        let text = alloc::format!("rtc0 arm,pl031 0x9010000 0x1000 {irqs}");
        let problem = problem(&text);
        assert!(
            matches!(problem, Problem::BadIrqs | Problem::Fields(_)),
            "{irqs:?}: {problem:?}"
        );
    }
    assert_eq!(
        problem("rtc0 arm,pl031 0x9010000 0x1000 27"),
        Problem::NotSpi(27)
    );
    assert_eq!(
        problem("rtc0 arm,pl031 0x9010000 0x1000 34+0"),
        Problem::NotSpi(0)
    );
    assert_eq!(
        problem("rtc0 arm,pl031 0x9010000 0x1000 1020"),
        Problem::NotSpi(1020)
    );
    assert_eq!(
        problem("rtc0 arm,pl031 0x9010000 0x1000 4294967295"),
        Problem::NotSpi(u32::MAX)
    );
    assert_eq!(
        problem("rtc0 arm,pl031 0x9010000 0x1000 34+35+34"),
        Problem::DuplicateIrq(34)
    );
}

#[test]
fn a_bad_entry_is_skipped_and_the_others_kept() {
    let parsed =
        parse("bad0 arm,pl061 0x9030000;rtc0 arm,pl031 0x9010000 0x1000 34;bad1 x 0x0 0x0 -");
    assert_eq!(parsed.devices, [rtc()]);
    assert_eq!(
        parsed.errors,
        [
            EntryError {
                entry: "bad0 arm,pl061 0x9030000".into(),
                problem: Problem::Fields(3),
            },
            EntryError {
                entry: "bad1 x 0x0 0x0 -".into(),
                problem: Problem::EmptyFrame,
            },
        ]
    );
}

#[test]
fn errors_say_which_entry_and_why() {
    let parsed = parse("rtc0 arm,pl031 0x9010000 0x1000 27");
    assert_eq!(
        parsed.errors[0].to_string(),
        "\"rtc0 arm,pl031 0x9010000 0x1000 27\": INTID 27 is not an SPI (32 to 1019)"
    );
    let parsed = parse("rtc0 arm,pl031");
    assert_eq!(
        parsed.errors[0].to_string(),
        "\"rtc0 arm,pl031\": 2 field(s), not 5 separated by single spaces \
         (name compatible base size irqs)"
    );
}

#[test]
fn node_names_come_from_the_compatible_string() {
    assert_eq!(rtc().node_name(), "pl031@9010000");
    let flash = Device {
        compatible: "cfi-flash".into(),
        base: 0,
        ..rtc()
    };
    assert_eq!(flash.node_name(), "cfi-flash@0");
}

#[test]
fn primecells_are_recognised() {
    let with = |compatible: &str| Device {
        compatible: compatible.into(),
        ..rtc()
    };
    for yes in [
        "arm,pl031",
        "arm,pl061",
        "arm,pl011",
        "arm,pl330",
        "arm,sp805",
        "arm,sp804",
        "arm,sp810",
    ] {
        assert!(with(yes).is_primecell(), "{yes}");
    }
    for no in [
        "arm,pl310-cache",
        "arm,pl31",
        "arm,pl0311",
        "arm,sp8x5",
        "arm,sp80",
        "arm,sp701",
        "arm,gic-v3",
        "cfi-flash",
        "st,pl031",
        "arm,plxyz",
    ] {
        assert!(!with(no).is_primecell(), "{no}");
    }
}

#[test]
fn devices_display_for_the_monitors_report() {
    assert_eq!(
        rtc().to_string(),
        "rtc0 (arm,pl031) at 0x9010000..0x9011000, INTID 34"
    );
    let two = Device {
        irqs: vec![39, 40],
        ..rtc()
    };
    assert!(two.to_string().ends_with("INTIDs 39, 40"));
    let none = Device {
        irqs: Vec::new(),
        ..rtc()
    };
    assert!(none.to_string().ends_with("no interrupt"));
}

proptest! {
    /// Whatever the text, parsing returns (never panics), and every entry is accounted for.
    #[test]
    fn any_text_parses_without_panicking(text in ".{0,200}") {
        let parsed = parse(&text);
        let entries = text.split(';').filter(|e| !e.trim().is_empty()).count();
        prop_assert_eq!(parsed.devices.len() + parsed.errors.len(), entries);
    }

    /// Any well-formed entry comes back as it was written.
    #[test]
    fn well_formed_entries_round_trip(
        name in "[a-z][a-z0-9]{0,7}",
        vendor in "[a-z]{1,6}",
        model in "[a-z0-9]{1,8}",
        base in 0u64..(1 << 48),
        size in 1u64..(1 << 32),
        irqs in proptest::collection::btree_set(32u32..1020, 0..4),
    ) {
        let compatible = alloc::format!("{vendor},{model}");
        let irq_text = if irqs.is_empty() {
            String::from("-")
        } else {
            irqs.iter().map(ToString::to_string).collect::<Vec<_>>().join("+")
        };
        let text = alloc::format!("{name} {compatible} {base:#x} {size:#x} {irq_text}");
        let parsed = parse(&text);
        prop_assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        let device = &parsed.devices[0];
        prop_assert_eq!(&device.name, &name);
        prop_assert_eq!(&device.compatible, &compatible);
        prop_assert_eq!(device.base, base);
        prop_assert_eq!(device.size, size);
        prop_assert_eq!(device.irqs.clone(), irqs.into_iter().collect::<Vec<_>>());
        prop_assert_eq!(device.node_name(), alloc::format!("{model}@{base:x}"));
    }
}
