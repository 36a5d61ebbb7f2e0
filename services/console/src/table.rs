// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The console's clients: the partitions that call the `log` endpoint, from
//! the manifest (`svc_rt::clients!(LOG)`), numbered from 1 in badge order.

use svc_rt::clients::{self, Client};
use svc_rt::hypercall::Badge;

/// Most clients the console keeps apart (the kernel's partition limit).
pub(crate) const MAX_CLIENTS: usize = 16;

/// Clients that Ctrl-A and a digit can reach: 1 to 9, then 0 for the tenth.
pub(crate) const FOCUSABLE: usize = 10;

/// The clients, in badge order.
pub(crate) struct Table {
    clients: [Option<Client<'static>>; MAX_CLIENTS],
    len: usize,
}

impl Table {
    /// The table of the `log` endpoint's clients; those past
    /// [`MAX_CLIENTS`] are left out (the manifest cannot have more).
    pub(crate) fn from_manifest() -> Self {
        let mut table = Self {
            clients: [None; MAX_CLIENTS],
            len: 0,
        };
        for client in clients::parse(svc_rt::clients!(LOG)) {
            if let Some(slot) = table.clients.get_mut(table.len) {
                *slot = Some(client);
                table.len += 1;
            }
        }
        table
    }

    /// How many clients there are.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Client `index` (0-based: the client numbered `index + 1`).
    pub(crate) fn get(&self, index: usize) -> Option<&Client<'static>> {
        self.clients.get(index)?.as_ref()
    }

    /// The index of the client whose messages carry `badge`.
    pub(crate) fn by_badge(&self, badge: Badge) -> Option<usize> {
        self.clients
            .iter()
            .take(self.len)
            .position(|c| c.is_some_and(|c| c.badge == badge))
    }

    /// Who has the focus at start: the first client the console can wake,
    /// or else the first client.
    pub(crate) fn initial_focus(&self) -> usize {
        self.clients
            .iter()
            .take(self.len)
            .position(|c| c.is_some_and(|c| c.wake.is_some()))
            .unwrap_or(0)
    }

    /// The number a user types after Ctrl-A to focus client `index`.
    pub(crate) fn key(index: usize) -> Option<u8> {
        match index {
            0..=8 => Some(b'1' + index as u8),
            9 => Some(b'0'),
            _ => None,
        }
    }

    /// The client a digit key names.
    pub(crate) fn index_of_key(key: u8) -> Option<usize> {
        match key {
            b'1'..=b'9' => Some(usize::from(key - b'1')),
            b'0' => Some(9),
            _ => None,
        }
    }
}
