// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The record format and ring layout that `producer` writes and `consumer`
//! checks, over the `records` shared-memory channel.
//!
//! The region holds one [`svc_rt::ring`] byte ring at offset 0 with
//! [`RING_CAPACITY`] bytes. The producer pushes whole records of
//! [`RECORD_SIZE`] bytes (it waits until one fits) and signals
//! `records-ready`; the consumer pops whole records (it waits until one is
//! there) and signals `records-free`. Since the capacity is a multiple of the
//! record size, records never straddle a partial read.
//!
//! A record is four little-endian 64-bit words: the sequence number (0, 1,
//! 2, ...), a payload derived from it ([`payload`]), the sequence number
//! again inverted (so a torn record shows), and an FNV-1a checksum of the
//! first 24 bytes.
#![no_std]

use svc_rt::ring::Ring;
use svc_rt::shared::{Region, Window};

/// The ring in the `records` region at `window` (from
/// `svc_rt::shared!(RECORDS)`). The manifest sizes the region, so one too
/// small for the ring is a mistake in the system: it panics, and the kernel
/// reports the partition's fault.
#[must_use]
pub fn ring(start: &svc_rt::Start, window: Window) -> Ring {
    let Some(ring) = Region::new(start, window)
        .ok()
        .and_then(|region| Ring::new(region, 0, RING_CAPACITY))
    else {
        panic!(
            "the records region ({} bytes at {:#x}) cannot hold the ring",
            window.size, window.ipa
        );
    };
    ring
}

/// Bytes per record.
pub const RECORD_SIZE: usize = 32;
/// The ring's capacity in bytes (a multiple of [`RECORD_SIZE`], a power of two).
pub const RING_CAPACITY: usize = 8192;
/// Records the producer writes in all.
pub const TOTAL: u64 = 100_000;
/// The consumer prints a line every this many records.
pub const PROGRESS_EVERY: u64 = 10_000;

/// The payload of record `sequence`: SplitMix64 of it, so every bit varies.
#[must_use]
pub fn payload(sequence: u64) -> u64 {
    let mut z = sequence.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// FNV-1a, 64 bits.
#[must_use]
pub fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Record `sequence`, as bytes.
#[must_use]
pub fn record(sequence: u64) -> [u8; RECORD_SIZE] {
    let mut bytes = [0u8; RECORD_SIZE];
    bytes[0..8].copy_from_slice(&sequence.to_le_bytes());
    bytes[8..16].copy_from_slice(&payload(sequence).to_le_bytes());
    bytes[16..24].copy_from_slice(&(!sequence).to_le_bytes());
    let sum = checksum(&bytes[..24]);
    bytes[24..32].copy_from_slice(&sum.to_le_bytes());
    bytes
}

/// What is wrong with a record that should be number `expected`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    /// Its sequence number is another.
    Sequence {
        /// The number it carries.
        found: u64,
    },
    /// Its checksum does not match its contents.
    Checksum,
    /// Its payload or inverted sequence number does not match.
    Contents,
}

/// Checks that `bytes` is record `expected`.
pub fn check(bytes: &[u8; RECORD_SIZE], expected: u64) -> Result<(), Problem> {
    let word = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
        u64::from_le_bytes(w)
    };
    if checksum(&bytes[..24]) != word(3) {
        return Err(Problem::Checksum);
    }
    if word(0) != expected {
        return Err(Problem::Sequence { found: word(0) });
    }
    if word(1) != payload(expected) || word(2) != !expected {
        return Err(Problem::Contents);
    }
    Ok(())
}
