// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Reading a service's `settings`: a table of simple values (strings,
//! integers, booleans) that its program is built with. Part of reading a
//! manifest (`system.rs`).
//!
//! The compiler does not know what a program means by its settings, so it
//! checks only their form: every key a [name](crate::platform::check_name)
//! (so that `BULKHEAD_SETTING_<KEY>`, upper-cased with `-` as `_`, is one
//! variable per key), every value a string without control characters, an
//! integer or a boolean. Sizes, durations and lists are strings, which the
//! program parses when it is built (`svc_rt::setting!`).

use toml::de::DeValue;

use crate::diag::{At, Sink};
use crate::model::{Setting, SettingValue};
use crate::platform::check_name;
use crate::read::{FieldAt, type_name};

/// The longest string a setting may hold, in bytes.
pub(crate) const MAX_SETTING_LENGTH: usize = 256;

/// The hint for a `settings` table written wrongly.
const HELP: &str = "write `settings = { key = value, ... }`, each value a string, an integer or \
                    a boolean, e.g. `settings = { restarts = 3, poll = \"10ms\" }`";

/// Reads `settings = { key = value, ... }`: each setting that is well
/// formed, in file order. A wrong key or value is reported and left out.
pub(super) fn read_settings(field: &FieldAt<'_, '_>, sink: &mut Sink<'_>) -> Vec<Setting> {
    let Some(mut table) = field.table(sink, "the `settings` table", HELP) else {
        return Vec::new();
    };
    let mut settings = Vec::new();
    for (key, value) in table.entries() {
        let key_ok = check_name(&key, sink, "setting");
        if let Some(value) = read_value(&key, &value, sink)
            && key_ok
        {
            settings.push(Setting {
                key: key.value,
                value,
            });
        }
    }
    settings
}

/// One setting's value, `key`'s.
fn read_value(
    key: &At<String>,
    field: &FieldAt<'_, '_>,
    sink: &mut Sink<'_>,
) -> Option<SettingValue> {
    match field.value.get_ref() {
        DeValue::String(_) => {
            let text = field.string(sink, HELP)?;
            if text.value.len() > MAX_SETTING_LENGTH {
                sink.error(
                    &text.place,
                    format!(
                        "setting `{}` is {} bytes long, more than {MAX_SETTING_LENGTH}",
                        key.value,
                        text.value.len()
                    ),
                    "settings are short values; a program that needs more data should get it \
                     through a channel",
                );
                return None;
            }
            if let Some(bad) = text.value.chars().find(|c| c.is_control()) {
                sink.error(
                    &text.place,
                    format!(
                        "setting `{}` holds the control character {bad:?}",
                        key.value
                    ),
                    "a setting is one line of text: leave out newlines, tabs and other control \
                     characters",
                );
                return None;
            }
            Some(SettingValue::Text(text.value))
        }
        DeValue::Integer(_) => {
            let number = field.integer(sink, HELP)?;
            match i64::try_from(number.value) {
                Ok(value) => Some(SettingValue::Integer(value)),
                Err(_) => {
                    sink.error(
                        &number.place,
                        format!("setting `{}` does not fit 64 bits", key.value),
                        "write it as a string if the program reads it as one",
                    );
                    None
                }
            }
        }
        DeValue::Boolean(value) => Some(SettingValue::Boolean(*value)),
        other => {
            let help = match other {
                DeValue::Table(_) | DeValue::Array(_) => {
                    "settings are not nested: give each value a key of its own, or write a list \
                     as one string, e.g. `stop-first = \"a,b\"`"
                }
                _ => "write it in quotes, as a string, and let the program read it",
            };
            sink.error(
                &field.place,
                format!(
                    "setting `{}` is {}: a setting is a string, an integer or a boolean",
                    key.value,
                    type_name(other)
                ),
                help,
            );
            None
        }
    }
}
