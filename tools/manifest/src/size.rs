// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Sizes as people write them (`"256K"`, `"1M"`, `"2G"`, `4096`, `0x1000`)
//! and as the report prints them (`256 KiB`).
//!
//! Parsing is checked arithmetic throughout: `"99999999999G"` is an error,
//! never an overflow.

use std::fmt::Write;

use hv_image::PAGE_SIZE;
use toml::de::DeValue;

use crate::diag::{At, Sink};
use crate::read::FieldAt;

/// Bytes in a kibibyte.
pub(crate) const KIB: u64 = 1 << 10;
/// Bytes in a mebibyte.
pub(crate) const MIB: u64 = 1 << 20;
/// Bytes in a gibibyte.
pub(crate) const GIB: u64 = 1 << 30;
/// Bytes in a tebibyte.
const TIB: u64 = 1 << 40;

/// The units a size string may end with.
const UNITS: [(&str, u64); 8] = [
    ("KiB", KIB),
    ("MiB", MIB),
    ("GiB", GIB),
    ("TiB", TIB),
    ("K", KIB),
    ("M", MIB),
    ("G", GIB),
    ("T", TIB),
];

/// A size read from a manifest, with how it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Size {
    /// Bytes.
    pub(crate) bytes: u64,
    /// The text as written, for messages (`12K`, `0x3000`).
    pub(crate) written: String,
}

/// Why a size string was refused.
#[derive(Debug, PartialEq, Eq)]
enum SizeError {
    /// Not digits and an optional unit.
    Syntax,
    /// More than `u64::MAX` bytes.
    TooLarge,
}

/// Parses `"256K"`, `"1_024"`, `"2GiB"`.
fn parse(text: &str) -> Result<u64, SizeError> {
    let (digits, unit) = UNITS
        .iter()
        .find_map(|(suffix, unit)| text.strip_suffix(suffix).map(|digits| (digits, *unit)))
        .unwrap_or((text, 1));
    if !digits.starts_with(|c: char| c.is_ascii_digit())
        || !digits.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return Err(SizeError::Syntax);
    }
    let mut value: u64 = 0;
    for c in digits.chars().filter(char::is_ascii_digit) {
        let digit = u64::from(c.to_digit(10).ok_or(SizeError::Syntax)?);
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(digit))
            .ok_or(SizeError::TooLarge)?;
    }
    value.checked_mul(unit).ok_or(SizeError::TooLarge)
}

/// Reads a size: an integer byte count or a string with a unit. `what` names
/// it in errors ("memory size").
pub(crate) fn read(field: &FieldAt<'_, '_>, sink: &mut Sink<'_>, what: &str) -> Option<At<Size>> {
    let help = "write a size as a string with a unit, e.g. `\"64K\"`, `\"1M\"`, `\"2G\"`, or as a byte count, e.g. `0x10000`";
    match field.value.get_ref() {
        DeValue::Integer(_) => {
            let integer = field.integer(sink, help)?;
            match u64::try_from(integer.value) {
                Ok(bytes) => Some(At::new(
                    Size {
                        bytes,
                        written: written_integer(bytes, field),
                    },
                    integer.place,
                )),
                Err(_) => {
                    sink.error(
                        &field.place,
                        format!("{what} {} is not a byte count", integer.value),
                        help,
                    );
                    None
                }
            }
        }
        DeValue::String(text) => match parse(text) {
            Ok(bytes) => Some(At::new(
                Size {
                    bytes,
                    written: text.to_string(),
                },
                field.place.clone(),
            )),
            Err(SizeError::Syntax) => {
                sink.error(
                    &field.place,
                    format!("`{text}` is not a size"),
                    "write digits and a unit: `K`, `M`, `G` or `T` (powers of 1024), e.g. `\"64K\"`; or a byte count without quotes",
                );
                None
            }
            Err(SizeError::TooLarge) => {
                sink.error(
                    &field.place,
                    format!("{what} `{text}` is more than 2^64 bytes"),
                    "use a size that fits the platform's memory",
                );
                None
            }
        },
        _ => {
            field.wrong_type(sink, "a size", help);
            None
        }
    }
}

/// An integer as the manifest wrote it, radix included.
fn written_integer(bytes: u64, field: &FieldAt<'_, '_>) -> String {
    match field.value.get_ref() {
        DeValue::Integer(integer) if integer.radix() == 16 => format!("{bytes:#x}"),
        _ => bytes.to_string(),
    }
}

/// Checks that a size is non-zero and a whole number of pages; reports and
/// returns false otherwise.
pub(crate) fn check_pages(size: &At<Size>, sink: &mut Sink<'_>, what: &str) -> bool {
    if size.value.bytes == 0 {
        sink.error(
            &size.place,
            format!("{what} must not be zero"),
            "give at least one 4 KiB page, e.g. `\"4K\"`",
        );
        return false;
    }
    if !size.value.bytes.is_multiple_of(PAGE_SIZE) {
        let up = size
            .value
            .bytes
            .checked_next_multiple_of(PAGE_SIZE)
            .map_or_else(String::new, |up| format!(", e.g. `{}`", short(up)));
        sink.error(
            &size.place,
            format!(
                "`{}` is not a multiple of the 4 KiB page size",
                size.value.written
            ),
            format!("use a multiple of 4K{up}"),
        );
        return false;
    }
    true
}

/// A size as a manifest would write it: `16K`, `1M`, or a hex byte count.
pub(crate) fn short(bytes: u64) -> String {
    for (suffix, unit) in [("T", TIB), ("G", GIB), ("M", MIB), ("K", KIB)] {
        if bytes != 0 && bytes.is_multiple_of(unit) {
            return format!("{}{suffix}", bytes / unit);
        }
    }
    format!("{bytes:#x}")
}

/// A size for the report: `256 KiB`, `1 GiB`, `1536 KiB`, `100 bytes`.
pub(crate) fn human(bytes: u64) -> String {
    let mut text = String::new();
    for (suffix, unit) in [("TiB", TIB), ("GiB", GIB), ("MiB", MIB), ("KiB", KIB)] {
        if bytes != 0 && bytes.is_multiple_of(unit) {
            let _ = write!(text, "{} {suffix}", bytes / unit);
            return text;
        }
    }
    let _ = write!(text, "{bytes} bytes");
    text
}

/// A size for messages, rounded: `4.8 GiB`, `8.0 EiB`; exact below 1 KiB.
pub(crate) fn approximate(bytes: u64) -> String {
    let units = [
        ("EiB", 60),
        ("PiB", 50),
        ("TiB", 40),
        ("GiB", 30),
        ("MiB", 20),
        ("KiB", 10),
    ];
    for (suffix, shift) in units {
        if bytes >> shift != 0 {
            // Tenths, from integers: no float rounding surprises.
            let tenths = (u128::from(bytes) * 10) >> shift;
            return format!("{}.{} {suffix}", tenths / 10, tenths % 10);
        }
    }
    format!("{bytes} bytes")
}

#[cfg(test)]
mod tests {
    use super::{SizeError, approximate, human, parse, short};

    #[test]
    fn approximates() {
        assert_eq!(approximate(u64::MAX), "15.9 EiB");
        assert_eq!(approximate(5 << 30 | 800 << 20), "5.7 GiB");
        assert_eq!(approximate(1023), "1023 bytes");
    }

    #[test]
    fn parses_units_and_refuses_overflow() {
        assert_eq!(parse("4K"), Ok(4096));
        assert_eq!(parse("1_024"), Ok(1024));
        assert_eq!(parse("2GiB"), Ok(2 << 30));
        assert_eq!(parse("16T"), Ok(16 << 40));
        assert_eq!(parse("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse("18446744073709551616"), Err(SizeError::TooLarge));
        assert_eq!(parse("99999999999G"), Err(SizeError::TooLarge));
        for bad in ["", "K", "4k", "4 K", "0x10", "-4K", "_4K", "4KB"] {
            assert_eq!(parse(bad), Err(SizeError::Syntax), "{bad}");
        }
    }

    #[test]
    fn formats() {
        assert_eq!(short(16 * 1024), "16K");
        assert_eq!(short(3 << 30), "3G");
        assert_eq!(short(100), "0x64");
        assert_eq!(human(256 * 1024), "256 KiB");
        assert_eq!(human(1536 * 1024), "1536 KiB");
        assert_eq!(human(0), "0 bytes");
    }
}
