// SPDX-License-Identifier: Apache-2.0 OR MIT
//! CRC-32 (IEEE 802.3: reflected, polynomial 0xEDB88320, initial and final
//! value 0xFFFFFFFF), the checksum zlib's `crc32` and `cksum -a crc32b`
//! compute.
//!
//! Table-driven, with the 256-entry table built at compile time: the kernel
//! runs it over the whole boot package (about 100 KiB) once per boot, where a
//! bit-at-a-time loop would cost eight times as many steps.

/// The reflected IEEE polynomial.
const POLYNOMIAL: u32 = 0xEDB8_8320;

/// `TABLE[b]` is the CRC register's update for the byte `b`.
const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut byte = 0;
    while byte < 256 {
        let mut crc = byte as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ POLYNOMIAL
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[byte] = crc;
        byte += 1;
    }
    table
};

/// Feeds `bytes` into a running CRC register (start from `!0`; finish with
/// `!`). Lets a caller checksum a buffer in pieces.
#[must_use]
pub(crate) fn update(mut crc: u32, bytes: &[u8]) -> u32 {
    for &byte in bytes {
        // The index is masked to 0..=255, so it is always in the table.
        let entry = TABLE[usize::from((crc as u8) ^ byte)];
        crc = (crc >> 8) ^ entry;
    }
    crc
}

/// The CRC-32 of `bytes`, as zlib's `crc32(0, bytes, len)` returns it.
#[must_use]
pub fn crc32(bytes: &[u8]) -> u32 {
    !update(!0, bytes)
}

#[cfg(test)]
mod tests {
    use super::{crc32, update};

    #[test]
    fn known_values() {
        // The standard check value, and values zlib computes.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"a"), 0xE8B7_BE43);
        assert_eq!(
            crc32(b"The quick brown fox jumps over the lazy dog"),
            0x414F_A339
        );
    }

    #[test]
    fn pieces_agree_with_the_whole() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        let (a, b) = data.split_at(333);
        assert_eq!(!update(update(!0, a), b), crc32(&data));
    }
}
