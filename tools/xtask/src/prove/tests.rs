// SPDX-License-Identifier: Apache-2.0 OR MIT

use super::{Options, Verdict, mutant_row, parse, parse_rows, table};

#[test]
fn rows_become_test_names() {
    assert_eq!(
        super::slug("mutant mutant-revoke-spares-one is caught"),
        "mutant-mutant-revoke-spares-one-is-caught"
    );
    assert_eq!(
        super::slug("W^X outside a partition's own RAM"),
        "w-x-outside-a-partition-s-own-ram"
    );
}

#[test]
fn options() {
    assert_eq!(parse::<&str>(&[]).unwrap(), Options { quick: false });
    assert_eq!(parse(&["--quick"]).unwrap(), Options { quick: true });
    assert_eq!(
        parse(&["--fast"]).unwrap_err().to_string(),
        "cargo xtask prove: unknown option `--fast`; try `cargo xtask help`"
    );
}

#[test]
fn sources_print_one_check_a_line() {
    let text = "building...\n\
        {\"property\":\"attenuation\",\"method\":\"stateright\",\"scope\":\"depth 6\",\"states\":1234,\"result\":\"pass\",\"seconds\":1.5}\n\
        {\"property\":\"flow\",\"method\":\"z3\",\"scope\":\"unbounded\",\"states\":null,\"result\":\"fail\",\"seconds\":0.25,\"detail\":\"x\"}\n";
    let rows = parse_rows(text).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].states, Some(1234));
    assert_eq!(rows[0].verdict, Verdict::Pass);
    assert_eq!(rows[1].states, None);
    assert_eq!(rows[1].verdict, Verdict::Fail);
    assert_eq!(rows[1].detail.as_deref(), Some("x"));
    assert!(parse_rows("{\"property\":\"p\"}").is_err());
    assert!(
        parse_rows("{\"property\":\"p\",\"method\":\"m\",\"scope\":\"s\",\"result\":\"maybe\"}")
            .is_err()
    );
    let shown = table(&rows);
    assert!(shown.starts_with("| property"), "{shown}");
    assert!(shown.contains("| FAIL "), "{shown}");
}

#[test]
fn a_mutant_is_caught_only_by_a_failure_with_a_counterexample() {
    let failing = "{\"property\":\"attenuation\",\"method\":\"stateright\",\"scope\":\"depth 4\",\"states\":99,\"result\":\"fail\",\"seconds\":1,\"detail\":\"derive(p0, slot 1) then ...\"}";
    let caught = mutant_row("mutant m is caught", false, failing, 2.0);
    assert_eq!(caught.verdict, Verdict::Pass);
    assert!(caught.detail.unwrap().contains("derive(p0, slot 1)"));
    assert_eq!(caught.states, Some(99));
    // It passed: not caught.
    let passing = failing.replace("\"fail\"", "\"pass\"");
    assert_eq!(mutant_row("m", true, &passing, 1.0).verdict, Verdict::Fail);
    // It failed to build: no counterexample.
    assert_eq!(
        mutant_row("m", false, "error[E0425]", 1.0).verdict,
        Verdict::Fail
    );
}

/// An AArch64 ELF file with one loadable segment: 16 bytes of code at
/// 0x1000, read and execute.
pub(crate) fn tiny_elf() -> Vec<u8> {
    let mut e = vec![0u8; 64 + 56];
    e[..6].copy_from_slice(b"\x7fELF\x02\x01");
    e[18..20].copy_from_slice(&183u16.to_le_bytes());
    e[32..40].copy_from_slice(&64u64.to_le_bytes());
    e[54..56].copy_from_slice(&56u16.to_le_bytes());
    e[56..58].copy_from_slice(&1u16.to_le_bytes());
    e[64..68].copy_from_slice(&1u32.to_le_bytes());
    e[68..72].copy_from_slice(&5u32.to_le_bytes());
    e[80..88].copy_from_slice(&0x1000u64.to_le_bytes());
    e[104..112].copy_from_slice(&16u64.to_le_bytes());
    e
}
