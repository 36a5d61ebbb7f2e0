// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Durations as people write them (`"10ms"`, `"250us"`, `"1s"`) and as the
//! report prints them (`10 ms`, `250 us`), in whole microseconds: the unit
//! of the schedule and budgets in the boot package (`hv_image::ScheduleSpec`).
//!
//! Parsing is checked arithmetic: `"99999999999s"` is an error, never an
//! overflow. A plain integer is refused: whether `10` means microseconds or
//! milliseconds is exactly the mistake a schedule must not hide.

use crate::diag::{At, Sink};
use crate::read::FieldAt;

/// Microseconds in a millisecond.
const MS: u64 = 1000;
/// Microseconds in a second.
const S: u64 = 1_000_000;

/// The units a duration ends with, longest first where one ends another.
const UNITS: [(&str, u64); 4] = [("us", 1), ("µs", 1), ("ms", MS), ("s", S)];

/// A duration read from a manifest, with how it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Duration {
    /// Microseconds.
    pub(crate) us: u64,
    /// The text as written, for messages.
    pub(crate) written: String,
}

/// Parses `"10ms"`, `"1_500us"`, `"2s"` into microseconds; `None` if it is
/// not digits and a unit, or does not fit 64 bits.
fn parse(text: &str) -> Option<u64> {
    let (digits, unit) = UNITS
        .iter()
        .find_map(|(suffix, unit)| text.strip_suffix(suffix).map(|digits| (digits, *unit)))?;
    if !digits.starts_with(|c: char| c.is_ascii_digit())
        || !digits.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return None;
    }
    let mut value: u64 = 0;
    for c in digits.chars().filter(char::is_ascii_digit) {
        value = value
            .checked_mul(10)?
            .checked_add(u64::from(c.to_digit(10)?))?;
    }
    value.checked_mul(unit)
}

/// Reads a duration: a string of digits and a unit, `us` (or `µs`), `ms` or
/// `s`. `what` names it in errors ("window length").
pub(crate) fn read(
    field: &FieldAt<'_, '_>,
    sink: &mut Sink<'_>,
    what: &str,
) -> Option<At<Duration>> {
    let help = "write a duration as a string of digits and a unit, `us`, `ms` or `s`, e.g. \
                `\"2ms\"` or `\"500us\"`";
    if !field.is_string() {
        if matches!(field.value.get_ref(), toml::de::DeValue::Integer(_)) {
            sink.error(
                &field.place,
                format!("{what} has no unit"),
                format!("{help}: a bare number could mean microseconds or milliseconds"),
            );
        } else {
            field.wrong_type(sink, "a duration", help);
        }
        return None;
    }
    let text = field.string(sink, help)?;
    match parse(&text.value) {
        Some(us) => Some(At::new(
            Duration {
                us,
                written: text.value,
            },
            text.place,
        )),
        None => {
            sink.error(
                &text.place,
                format!("`{}` is not a duration", text.value),
                help,
            );
            None
        }
    }
}

/// A duration for the report and messages: `10 ms`, `1 s`, `2500 us`, `0`.
pub(crate) fn human(us: u64) -> String {
    if us == 0 {
        "0".to_owned()
    } else if us.is_multiple_of(S) {
        format!("{} s", us / S)
    } else if us.is_multiple_of(MS) {
        format!("{} ms", us / MS)
    } else {
        format!("{us} us")
    }
}

/// `part` of `whole` as a percentage with one decimal, rounded down:
/// `20.0%`, `33.3%`.
pub(crate) fn percent(part: u64, whole: u64) -> String {
    let tenths = u128::from(part) * 1000 / u128::from(whole.max(1));
    format!("{}.{}%", tenths / 10, tenths % 10)
}

#[cfg(test)]
mod tests {
    use super::{human, parse, percent};

    #[test]
    fn parses_units_and_refuses_the_rest() {
        assert_eq!(parse("10ms"), Some(10_000));
        assert_eq!(parse("250us"), Some(250));
        assert_eq!(parse("250µs"), Some(250));
        assert_eq!(parse("1_500us"), Some(1500));
        assert_eq!(parse("2s"), Some(2_000_000));
        assert_eq!(parse("0ms"), Some(0));
        assert_eq!(parse("18446744073709551615us"), Some(u64::MAX));
        assert_eq!(parse("18446744073709551615ms"), None);
        for bad in [
            "", "ms", "10", "1.5ms", "10 ms", "10MS", "-1ms", "_1ms", "1m", "1h",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats() {
        assert_eq!(human(10_000), "10 ms");
        assert_eq!(human(2_000_000), "2 s");
        assert_eq!(human(2500), "2500 us");
        assert_eq!(human(0), "0");
        assert_eq!(percent(2, 10), "20.0%");
        assert_eq!(percent(1, 3), "33.3%");
        assert_eq!(percent(10, 10), "100.0%");
    }
}
