// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Markers: a 64-byte pattern one guest leaves in its RAM and another (or
//! the same one) looks for in every byte of its own, to show that guests
//! never see each other's memory.
//!
//! The pattern of a value `v` is the text `BULKHEAD-MARKER-<v in lowercase
//! hex>` repeated and cut at 64 bytes. It is built at run time from the
//! command line, so it is nowhere in the image; the scan skips the image
//! (code, data, .bss and stack, where the pattern is built), and reads
//! everything else of RAM, the device tree included.

use crate::arch::{self, Ram};
use crate::console::say;

/// The pattern's length.
const PATTERN: usize = 64;
/// The text the pattern repeats, before the value.
const PREFIX: &[u8] = b"BULKHEAD-MARKER-";
/// A mebibyte.
const MIB: u64 = 1 << 20;
/// A page.
const PAGE: u64 = 4096;

/// A marker's value, from 1 to 16 hexadecimal digits.
pub(crate) fn parse(text: &str) -> Option<u64> {
    (!text.is_empty() && text.len() <= 16)
        .then(|| u64::from_str_radix(text, 16).ok())
        .flatten()
}

/// The pattern of `value`.
fn pattern(value: u64) -> [u8; PATTERN] {
    let mut unit = [0u8; PREFIX.len() + 16];
    unit[..PREFIX.len()].copy_from_slice(PREFIX);
    let digits = (u64::BITS - value.leading_zeros()).div_ceil(4).max(1) as usize;
    for (i, slot) in unit[PREFIX.len()..PREFIX.len() + digits]
        .iter_mut()
        .enumerate()
    {
        let nibble = (value >> (4 * (digits - 1 - i))) & 0xf;
        *slot = b"0123456789abcdef"[nibble as usize];
    }
    let unit = &unit[..PREFIX.len() + digits];
    core::array::from_fn(|i| unit[i % unit.len()])
}

/// `probe=marker=<hex>`: writes the pattern into the page in the middle of
/// RAM and leaves it there.
pub(crate) fn write(ram: &Ram, text: &str) {
    let Some(value) = parse(text) else {
        say!("marker: `{text}` is not a hexadecimal number of 1 to 16 digits");
        return;
    };
    let page = (ram.start() + (ram.end() - ram.start()) / 2) & !(PAGE - 1);
    let bytes = pattern(value);
    let written = bytes.chunks_exact(8).enumerate().all(|(i, chunk)| {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        ram.write_u64(page + 8 * i as u64, u64::from_le_bytes(word))
    });
    if written {
        say!("marker {value:x} written at {page:#x}");
    } else {
        say!("marker {value:x}: cannot write at {page:#x} (the image or device tree is there)");
    }
}

/// `probe=scan=<hex>`: looks for the pattern at every byte of RAM outside
/// the image.
pub(crate) fn scan(ram: &Ram, text: &str) {
    let Some(value) = parse(text) else {
        say!("scan: `{text}` is not a hexadecimal number of 1 to 16 digits");
        return;
    };
    let bytes = pattern(value);
    let mebibytes = (ram.end() - ram.start()) / MIB;
    match find(ram, &bytes) {
        Some(at) => say!("scanned {mebibytes} MiB: marker {value:x} found at {at:#x}"),
        None => say!("scanned {mebibytes} MiB: marker {value:x} not found"),
    }
}

/// The first address where `pattern` starts, outside the image.
fn find(ram: &Ram, pattern: &[u8; PATTERN]) -> Option<u64> {
    let image = arch::image();
    let first = u64::from_ne_bytes([pattern[0]; 8]);
    let mut address = ram.start();
    while address < ram.end() {
        if image.contains(&address) {
            address = image.end;
            continue;
        }
        if let Some(word) = ram.read_u64(address)
            && has_zero_byte(word ^ first)
        {
            let bytes = word.to_le_bytes();
            for (offset, _) in bytes.iter().enumerate().filter(|(_, b)| **b == pattern[0]) {
                let at = address + offset as u64;
                if matches(ram, at, pattern) {
                    return Some(at);
                }
            }
        }
        address += 8;
    }
    None
}

/// Whether a byte of `word` is zero.
fn has_zero_byte(word: u64) -> bool {
    const LOW: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    word.wrapping_sub(LOW) & !word & HIGH != 0
}

/// Whether `pattern` is at `at` (every byte readable).
fn matches(ram: &Ram, at: u64, pattern: &[u8; PATTERN]) -> bool {
    pattern.iter().enumerate().all(|(i, expected)| {
        let address = at + i as u64;
        ram.read_u64(address & !7)
            .map(|word| word.to_le_bytes()[(address & 7) as usize])
            == Some(*expected)
    })
}
