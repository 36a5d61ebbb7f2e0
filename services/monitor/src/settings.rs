// SPDX-License-Identifier: Apache-2.0 OR MIT
//! What the manifest tells the health monitor, at compile time: the
//! partitions it controls (`BULKHEAD_CONTROLS`, each name with the slot of
//! its capability over it and, with a `fault-notification`, the bit the
//! kernel sets when it stops or restarts, which `cargo xtask` derives from
//! `controls`), the notification it waits on for them
//! (`BULKHEAD_FAULT_NOTIFICATION`, if it has one) and its `settings`
//! (`BULKHEAD_SETTING_*`, read with `svc_rt::setting!`).
//!
//! Every setting is checked when the monitor is built: a bad number or
//! duration, or a `stop-first` name it does not control, stops the build
//! with a message, never the system.

use svc_rt::hypercall::CapSlot;

/// The most partitions it can watch: every other partition of a system.
pub(crate) const MAX_WATCHED: usize = 16;

/// A partition it controls.
#[derive(Clone, Copy)]
pub(crate) struct Controlled {
    /// Its name in the manifest.
    pub(crate) name: &'static str,
    /// The slot of the capability over it.
    pub(crate) slot: CapSlot,
    /// The bits the kernel sets on [`FAULT_NOTIFICATION`] when it stops or
    /// restarts (0 without a fault notification).
    pub(crate) bits: u64,
}

/// The notification the kernel signals when a partition it controls stops
/// or restarts (the manifest's `fault-notification`): it then waits there
/// instead of looking every [`POLL`].
pub(crate) const FAULT_NOTIFICATION: Option<CapSlot> =
    match option_env!("BULKHEAD_FAULT_NOTIFICATION") {
        Some(text) => Some(CapSlot(svc_rt::parse_slot(text))),
        None => None,
    };

/// The partitions it controls, in `controls` order, then `None`s.
pub(crate) const CONTROLLED: [Option<Controlled>; MAX_WATCHED] = parse_controls(env!(
    "BULKHEAD_CONTROLS",
    "the health monitor watches the partitions its manifest entry `controls`, and it controls \
     none: give it `controls = [\"<partition>\", ...]`"
));

/// `restarts`: how many times it restarts each partition (within
/// [`WITHIN`], if given); 0 means it only reports stops. Default 3.
pub(crate) const RESTARTS: u64 = match svc_rt::optional_setting!(RESTARTS) {
    Some(text) => svc_rt::parse_number(text),
    None => 3,
};

/// `within`: the window (nanoseconds) in which [`RESTARTS`] restarts are
/// allowed: a partition that stops once more after that many restarts
/// within it stays stopped. `None` (the default, or `"forever"`): the
/// restarts count in total.
pub(crate) const WITHIN: Option<u64> = match svc_rt::optional_setting!(WITHIN) {
    Some(text) if same(text, "forever") => None,
    Some(text) => Some(svc_rt::parse_duration(text)),
    None => None,
};

/// `poll`: how long it waits between looks at the partitions' status
/// (nanoseconds), when it has no [`FAULT_NOTIFICATION`] to wait on (or
/// cannot wait there). Default 10 ms.
pub(crate) const POLL: u64 = match svc_rt::optional_setting!(POLL) {
    Some(text) => svc_rt::parse_duration(text),
    None => 10_000_000,
};

/// `stop-first`: the partitions it stops when it starts, and then leaves
/// stopped, separated by commas (`"spin"`, `"a, b"`); empty by default.
pub(crate) const STOP_FIRST: &str = match svc_rt::optional_setting!(STOP_FIRST) {
    Some(text) => text,
    None => "",
};

/// How many restart times it remembers per partition: all it needs to judge
/// [`WITHIN`] (none without a window).
pub(crate) const REMEMBERED: usize = if WITHIN.is_some() {
    RESTARTS as usize
} else {
    0
};

const _: () = assert!(
    at_most(REMEMBERED, 64),
    "with `within`, `restarts` is at most 64: the monitor remembers when each restart was"
);
const _: () = assert!(!at_most(POLL as usize, 0), "`poll` must be longer than 0");
const _: () = assert!(
    stop_first_is_controlled(),
    "the setting `stop-first` names a partition that the monitor does not control: list it in \
     its `controls` too"
);

/// `BULKHEAD_CONTROLS`: `<name>:<slot>[:<bit>],...`.
const fn parse_controls(mut rest: &'static str) -> [Option<Controlled>; MAX_WATCHED] {
    let mut table = [None; MAX_WATCHED];
    let mut count = 0;
    while !rest.is_empty() {
        let (entry, tail) = rest.split_at(until(rest.as_bytes(), b','));
        rest = skip_one(tail);
        let colon = until(entry.as_bytes(), b':');
        assert!(
            colon < entry.len(),
            "BULKHEAD_CONTROLS lists <partition>:<slot>[:<bit>], separated by commas"
        );
        let (name, numbers) = entry.split_at(colon);
        let numbers = skip_one(numbers);
        let (slot, bit) = numbers.split_at(until(numbers.as_bytes(), b':'));
        let bits = if bit.is_empty() {
            0
        } else {
            let bit = svc_rt::parse_number(skip_one(bit));
            assert!(bit < 64, "BULKHEAD_CONTROLS: a bit is 0 to 63");
            1 << bit
        };
        assert!(count < MAX_WATCHED, "BULKHEAD_CONTROLS lists too many");
        table[count] = Some(Controlled {
            name,
            slot: CapSlot(svc_rt::parse_slot(slot)),
            bits,
        });
        count += 1;
    }
    table
}

/// Whether every name in [`STOP_FIRST`] is one of [`CONTROLLED`].
const fn stop_first_is_controlled() -> bool {
    let mut rest = STOP_FIRST;
    while !rest.is_empty() {
        let (name, tail) = rest.split_at(until(rest.as_bytes(), b','));
        rest = skip_one(tail);
        let name = name.trim_ascii();
        if !name.is_empty() && controlled(name).is_none() {
            return false;
        }
    }
    true
}

/// The index in [`CONTROLLED`] of the partition called `name`.
pub(crate) const fn controlled(name: &str) -> Option<usize> {
    let mut i = 0;
    while i < MAX_WATCHED {
        if let Some(c) = CONTROLLED[i]
            && same(c.name, name)
        {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// The index of the first `byte` in `bytes`, or its length.
const fn until(bytes: &[u8], byte: u8) -> usize {
    let mut i = 0;
    while i < bytes.len() && bytes[i] != byte {
        i += 1;
    }
    i
}

/// `text` without its first character (a separator), if it has one.
const fn skip_one(text: &str) -> &str {
    if text.is_empty() {
        text
    } else {
        text.split_at(1).1
    }
}

/// Whether `value` is at most `limit` (a function, so that checks of
/// settings that happen to be 0 read the same as any other).
const fn at_most(value: usize, limit: usize) -> bool {
    value <= limit
}

/// Whether two strings are equal, at compile time.
const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}
