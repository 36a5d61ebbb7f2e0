// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Who calls an endpoint this partition serves: badges, partition names and
//! how to wake each client.
//!
//! `cargo xtask` computes the list from the compiled manifest and passes it to
//! the build of the endpoint's server as `BULKHEAD_CLIENTS_<NAME>` (the
//! channel's name upper-cased, `-` as `_`), which [`crate::clients!`] reads:
//! comma-separated entries `<badge>=<partition>` or
//! `<badge>=<partition>:<slot>`, in badge order, e.g. `1=ping,2=pong,5=echo:7`.
//! The badge is the one the kernel delivers with that partition's messages
//! (decimal); the partition is its name in the manifest; `:<slot>` is present
//! when this partition can signal a notification that the client waits on,
//! and names the capability slot to signal (the first such notification, in
//! slot order). A server uses it to put names to badges and to wake clients
//! that cannot wait on the endpoint itself.

use hv_abi::hypercall::{Badge, CapSlot};

/// One client of an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Client<'a> {
    /// The badge its messages arrive with.
    pub badge: Badge,
    /// Its partition's name.
    pub name: &'a str,
    /// The slot of a notification to signal to wake it, if there is one.
    pub wake: Option<CapSlot>,
}

/// The clients in `list` (the form above), in order. Malformed entries are
/// skipped (xtask never writes one).
pub fn parse(list: &str) -> impl Iterator<Item = Client<'_>> {
    list.split(',').filter_map(entry)
}

fn entry(text: &str) -> Option<Client<'_>> {
    let (badge, rest) = text.split_once('=')?;
    let (name, wake) = match rest.split_once(':') {
        Some((name, slot)) => (name, Some(CapSlot(slot.parse().ok()?))),
        None => (rest, None),
    };
    if name.is_empty() {
        return None;
    }
    Some(Client {
        badge: Badge(badge.parse().ok()?),
        name,
        wake,
    })
}
