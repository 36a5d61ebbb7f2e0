// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Reading `[[channels]]` tables: the kind, its ends, badges, bits and
//! memory rights. Part of reading a manifest (`system.rs`).

use hv_abi::hypercall::Rights;

use super::{ChannelDecl, ChannelKind, End, SharedEnd, read_bit};
use crate::diag::{At, Sink};
use crate::platform::check_name;
use crate::read::{FieldAt, TableReader};
use crate::size;

/// Reads one `[[channels]]` table.
pub(super) fn read_channel(mut table: TableReader<'_, '_>, sink: &mut Sink<'_>) -> ChannelDecl {
    let place = table.place.clone();
    let name = table
        .require(
            sink,
            "name",
            "add `name = \"<name>\"`: services refer to the channel by it",
        )
        .and_then(|field| field.string(sink, "write the channel's name in quotes"))
        .inspect(|name| {
            check_name(name, sink, "channel");
        });
    let kinds = ["endpoint", "notification", "shared-memory"];
    let kind_help = "write `kind = \"endpoint\"`, `\"notification\"` or `\"shared-memory\"`";
    let kind_text = table
        .require(sink, "kind", kind_help)
        .and_then(|field| field.string(sink, kind_help));
    table.set_what(match kind_text.as_ref().map(|kind| kind.value.as_str()) {
        Some("endpoint") => "an endpoint channel",
        Some("notification") => "a notification channel",
        Some("shared-memory") => "a shared-memory channel",
        _ => "a channel",
    });
    let errors_before = sink.count();
    let kind = match kind_text.as_ref().map(|kind| kind.value.as_str()) {
        Some("endpoint") => read_endpoint(&mut table, sink),
        Some("notification") => read_notification(&mut table, sink),
        Some("shared-memory") => read_shared(&mut table, sink),
        Some(other) => {
            let help = match crate::read::closest(other, &kinds) {
                Some(near) => format!("did you mean `{near}`? {kind_help}"),
                None => kind_help.to_owned(),
            };
            if let Some(kind) = &kind_text {
                sink.error(&kind.place, format!("unknown channel kind `{other}`"), help);
            }
            ChannelKind::Unknown
        }
        None => ChannelKind::Unknown,
    };
    let keys: &[&str] = match kind {
        ChannelKind::Endpoint { .. } => &[
            "name",
            "kind",
            "server",
            "clients",
            "grant",
            "derive",
            "description",
        ],
        ChannelKind::Notification { .. } => &[
            "name",
            "kind",
            "waiter",
            "signallers",
            "derive",
            "description",
        ],
        ChannelKind::SharedMemory { .. } => &[
            "name",
            "kind",
            "size",
            "readers",
            "writers",
            "ends",
            "derive",
            "description",
        ],
        ChannelKind::Unknown => {
            // Without a kind, which keys belong cannot be told; say nothing.
            let _ = table.entries();
            &[]
        }
    };
    let complete = sink.count() == errors_before;
    let derive = table
        .get("derive")
        .and_then(|field| {
            field.boolean(
                sink,
                "write `derive = true` to let every end make copies of its capability",
            )
        })
        .is_some_and(|derive| derive.value);
    if let Some(description) = table.get("description") {
        let _ = description.string(sink, "write the description in quotes");
    }
    table.finish(sink, keys);
    ChannelDecl {
        name,
        place,
        kind,
        complete,
        derive,
    }
}

/// A partition name.
fn partition_name(field: &FieldAt<'_, '_>, sink: &mut Sink<'_>) -> Option<At<String>> {
    field.string(sink, "write the partition's name in quotes")
}

/// A list of ends: names, or tables `{ partition = "..", <tag> = .. }`.
fn read_ends(
    field: &FieldAt<'_, '_>,
    sink: &mut Sink<'_>,
    tag: &'static str,
    help: &str,
) -> Vec<End> {
    let mut ends = Vec::new();
    for item in field.array(sink, help).unwrap_or_default() {
        if item.is_string() {
            if let Some(partition) = partition_name(&item, sink) {
                ends.push(End {
                    partition,
                    tag: None,
                });
            }
            continue;
        }
        let Some(mut table) = item.table(sink, "an end", help) else {
            continue;
        };
        let partition = table
            .require(sink, "partition", "add `partition = \"<name>\"`")
            .and_then(|field| partition_name(&field, sink));
        let value = table.get(tag).and_then(|field| {
            if tag == "bit" {
                read_bit(&field, sink).map(|bit| At::new(u64::from(bit.value), bit.place))
            } else {
                read_badge(&field, sink)
            }
        });
        table.finish(sink, &["partition", tag]);
        if let Some(partition) = partition {
            ends.push(End {
                partition,
                tag: value,
            });
        }
    }
    ends
}

/// An endpoint badge: 1 to 2^64 - 1 (0 is the server's own).
fn read_badge(field: &FieldAt<'_, '_>, sink: &mut Sink<'_>) -> Option<At<u64>> {
    let badge = field.integer_in(
        sink,
        1..=i128::from(i64::MAX),
        "badge",
        "a client's badge is a positive integer; 0 means no badge",
    )?;
    u64::try_from(badge.value)
        .ok()
        .map(|b| At::new(b, badge.place))
}

/// The keys of an endpoint.
fn read_endpoint(table: &mut TableReader<'_, '_>, sink: &mut Sink<'_>) -> ChannelKind {
    let server = table
        .require(
            sink,
            "server",
            "add `server = \"<partition>\"`: who receives the calls",
        )
        .and_then(|field| partition_name(&field, sink));
    let help = "list the calling partitions, e.g. `clients = [\"hello\"]` or `[{ partition = \"hello\", badge = 7 }]`";
    let clients = table
        .require(sink, "clients", help)
        .map(|field| read_ends(&field, sink, "badge", help))
        .unwrap_or_default();
    let grant = table.get("grant").and_then(|field| {
        field.boolean(
            sink,
            "write `grant = true` to let clients pass capabilities",
        )
    });
    ChannelKind::Endpoint {
        server,
        clients,
        grant,
    }
}

/// The keys of a notification.
fn read_notification(table: &mut TableReader<'_, '_>, sink: &mut Sink<'_>) -> ChannelKind {
    let waiter = table
        .require(
            sink,
            "waiter",
            "add `waiter = \"<partition>\"`: who waits for the bits",
        )
        .and_then(|field| partition_name(&field, sink));
    let help = "list the signalling partitions, e.g. `signallers = [\"producer\"]` or `[{ partition = \"producer\", bit = 0 }]`";
    let signallers = table
        .get("signallers")
        .map(|field| read_ends(&field, sink, "bit", help))
        .unwrap_or_default();
    ChannelKind::Notification { waiter, signallers }
}

/// The keys of a shared-memory channel.
fn read_shared(table: &mut TableReader<'_, '_>, sink: &mut Sink<'_>) -> ChannelKind {
    let size = table
        .require(
            sink,
            "size",
            "add `size = \"<size>\"`, e.g. `size = \"64K\"`",
        )
        .and_then(|field| size::read(&field, sink, "shared memory size"))
        .filter(|s| size::check_pages(s, sink, "shared memory size"));
    let mut ends = Vec::new();
    for (key, rights) in [
        ("readers", Rights::READ),
        ("writers", Rights::READ.union(Rights::WRITE)),
    ] {
        let help = format!("list partition names, e.g. `{key} = [\"consumer\"]`");
        let Some(field) = table.get(key) else {
            continue;
        };
        for item in field.array(sink, &help).unwrap_or_default() {
            if let Some(partition) = partition_name(&item, sink) {
                let place = partition.place.clone();
                ends.push(SharedEnd {
                    partition,
                    rights: At::new(rights, place),
                });
            }
        }
    }
    let help =
        "list `{ partition = \"<name>\", rights = \"rw\" }` tables; rights are `r`, `w` and `x`";
    if let Some(field) = table.get("ends") {
        for item in field.array(sink, help).unwrap_or_default() {
            let Some(mut end) = item.table(sink, "a shared-memory end", help) else {
                continue;
            };
            let partition = end
                .require(sink, "partition", "add `partition = \"<name>\"`")
                .and_then(|field| partition_name(&field, sink));
            let rights = end
                .require(
                    sink,
                    "rights",
                    "add `rights = \"r\"`, `\"rw\"` or `\"rwx\"`",
                )
                .and_then(|field| read_rights(&field, sink));
            end.finish(sink, &["partition", "rights"]);
            if let (Some(partition), Some(rights)) = (partition, rights) {
                ends.push(SharedEnd { partition, rights });
            }
        }
    }
    // In the order written, whichever key listed them.
    ends.sort_by_key(|end| end.partition.place.span.start);
    ChannelKind::SharedMemory { size, ends }
}

/// Memory rights: `"r"`, `"rw"`, `"rx"`, `"rwx"`...
fn read_rights(field: &FieldAt<'_, '_>, sink: &mut Sink<'_>) -> Option<At<Rights>> {
    let help = "write the rights as letters: `r` (read), `w` (write), `x` (execute), e.g. `\"rw\"`";
    let text = field.string(sink, help)?;
    let mut rights = Rights::NONE;
    for letter in text.value.chars() {
        let right = match letter {
            'r' => Rights::READ,
            'w' => Rights::WRITE,
            'x' => Rights::EXECUTE,
            _ => {
                sink.error(
                    &text.place,
                    format!("`{letter}` in `{}` is not a memory right", text.value),
                    help,
                );
                return None;
            }
        };
        if rights.contains(right) {
            sink.error(
                &text.place,
                format!("`{letter}` appears twice in `{}`", text.value),
                help,
            );
            return None;
        }
        rights = rights.union(right);
    }
    if rights == Rights::NONE {
        sink.error(&text.place, "no rights given", help);
        return None;
    }
    Some(At::new(rights, text.place))
}
