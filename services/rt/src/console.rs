// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The console's client protocol, spoken over an endpoint (the `log`
//! channel, served by the `console` service).
//!
//! It lives here, not in a `console-api` crate, because [`crate::println!`]
//! speaks it: a partition whose manifest gives it a `log` capability prints
//! through the console, one line at a time, prefixed with its name.
//!
//! Every request is a `call`; word 0 holds the operation in bits 7:0:
//!
//! | op | request | reply |
//! |---|---|---|
//! | [`OP_WRITE`] (1) | word 0 bits 15:8 = n (0..=32); words 1..=4 = n bytes, little-endian, 8 per word; the message carries at least `1 + ceil(n / 8)` words | word 0 = status, word 1 = n |
//! | [`OP_READ`] (2) | nothing else | word 0 = status, word 1 = n (0..=24), words 2..=4 = n bytes of keyboard input |
//!
//! Status is [`STATUS_OK`] or one of the errors below. The console buffers
//! each client's bytes until a newline and then prints the line whole as
//! `[name] line`; a line longer than its buffer is printed in pieces, each
//! prefixed. Control characters other than tab are shown as `.`; carriage
//! returns are dropped, so nobody can overwrite another partition's line.
//!
//! Keyboard input goes only to the partition that has the focus (Ctrl-A then
//! its number, see the console service). `OP_READ` never waits: n = 0 means
//! nothing is waiting. To sleep until input arrives, a partition waits on a
//! notification that the console signals: one whose waiter it is and whose
//! signaller is the console (e.g. `echo-input` in `systems/demo.toml`); the
//! console signals it whenever bytes for that partition arrive.

use hv_abi::hypercall::{CapSlot, MESSAGE_WORDS, MessageInfo, Status};

use crate::call::{self, Message};

/// Write bytes to the console.
pub const OP_WRITE: u64 = 1;
/// Take bytes of keyboard input, without waiting.
pub const OP_READ: u64 = 2;

/// Most bytes one `OP_WRITE` carries.
pub const WRITE_MAX: usize = 32;
/// Most bytes one `OP_READ` returns.
pub const READ_MAX: usize = 24;

/// The request was carried out.
pub const STATUS_OK: u64 = 0;
/// Word 0 names no operation the console knows.
pub const STATUS_UNKNOWN_OP: u64 = 1;
/// The byte count is over the limit, or the message is too short for it.
pub const STATUS_BAD_LENGTH: u64 = 2;
/// The badge names no client the console knows.
pub const STATUS_UNKNOWN_CLIENT: u64 = 3;

/// Why a console request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The kernel refused the call (no such capability, the console is gone...).
    Kernel(Status),
    /// The console refused the request with this status.
    Refused(u64),
}

/// Packs up to `words.len() * 8` bytes into words, little-endian.
pub fn pack(bytes: &[u8], words: &mut [u64]) {
    for (i, byte) in bytes.iter().enumerate() {
        if let Some(word) = words.get_mut(i / 8) {
            *word |= u64::from(*byte) << ((i % 8) * 8);
        }
    }
}

/// Unpacks `into.len()` bytes from words, little-endian (zeros past the words).
pub fn unpack(words: &[u64], into: &mut [u8]) {
    for (i, slot) in into.iter_mut().enumerate() {
        *slot = words
            .get(i / 8)
            .map_or(0, |word| (word >> ((i % 8) * 8)) as u8);
    }
}

/// The reply's status word turned into a result.
fn checked(reply: &Message) -> Result<&Message, Error> {
    match reply.words[0] {
        STATUS_OK => Ok(reply),
        refused => Err(Error::Refused(refused)),
    }
}

/// Writes `bytes` to the console through `endpoint`, in as many requests as
/// it takes.
pub fn write(endpoint: CapSlot, bytes: &[u8]) -> Result<(), Error> {
    for chunk in bytes.chunks(WRITE_MAX) {
        let mut words = [0u64; MESSAGE_WORDS];
        words[0] = OP_WRITE | ((chunk.len() as u64) << 8);
        pack(chunk, &mut words[1..]);
        let message = Message {
            info: MessageInfo::words(1 + chunk.len().div_ceil(8)),
            words,
        };
        let reply = call::call(endpoint, &message).map_err(Error::Kernel)?;
        checked(&reply)?;
    }
    Ok(())
}

/// Takes up to [`READ_MAX`] bytes of keyboard input into `into`, without
/// waiting; returns how many (0: none waiting).
pub fn read(endpoint: CapSlot, into: &mut [u8]) -> Result<usize, Error> {
    let reply = call::call(endpoint, &Message::new(&[OP_READ])).map_err(Error::Kernel)?;
    let reply = checked(&reply)?;
    let count = usize::try_from(reply.words[1])
        .unwrap_or(usize::MAX)
        .min(READ_MAX)
        .min(into.len());
    unpack(&reply.words[2..], &mut into[..count]);
    Ok(count)
}
