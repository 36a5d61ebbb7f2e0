// SPDX-License-Identifier: Apache-2.0 OR MIT
//! U-Boot's boot script, `boot.scr`: the script text wrapped in the legacy
//! image format that `mkimage -A arm64 -O linux -T script -C none` writes,
//! and that U-Boot's distro boot finds on the card and runs with `source`.
//!
//! The format (U-Boot's `include/image.h`): a 64-byte big-endian header
//! (magic `0x27051956`, the header's CRC-32, a timestamp, the data's size,
//! load and entry addresses, the data's CRC-32, OS, architecture, image type,
//! compression, a 32-byte name), then the data. A script image is a
//! multi-file image with one file: the data is that file's size as a
//! big-endian `u32`, a `0` ending the size list, then the script. The CRC is
//! the IEEE CRC-32 that gzip uses (`flate2::Crc`). The timestamp is 0, so the
//! same script always makes the same file.

/// The legacy image magic.
const MAGIC: u32 = 0x2705_1956;
/// The header's length.
pub(crate) const HEADER: usize = 64;
/// `IH_OS_LINUX`.
const OS_LINUX: u8 = 5;
/// `IH_ARCH_ARM64`.
const ARCH_ARM64: u8 = 22;
/// `IH_TYPE_SCRIPT`.
const TYPE_SCRIPT: u8 = 6;
/// `IH_COMP_NONE`.
const COMP_NONE: u8 = 0;

/// The script that loads `image` from the partition U-Boot found the script
/// on and boots it with the firmware's device tree.
pub(crate) fn text(image: &str) -> String {
    format!(
        "\
# Bulkhead's boot script, written by `cargo xtask sdcard --loader u-boot`.
# U-Boot's distro boot runs it from the card's boot partition and sets
# devtype, devnum and distro_bootpart to where it found it; fdt_addr is the
# device tree the Pi's firmware gave U-Boot (from the .dtb for this board).
# booti moves the image to a 2 MiB boundary if it was loaded elsewhere.
echo Bulkhead: loading {image}
load ${{devtype}} ${{devnum}}:${{distro_bootpart}} ${{kernel_addr_r}} {image}
booti ${{kernel_addr_r}} - ${{fdt_addr}}
echo Bulkhead: booti failed
"
    )
}

/// CRC-32 (IEEE), as U-Boot's `crc32(0, ...)` computes it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = flate2::Crc::new();
    crc.update(bytes);
    crc.sum()
}

/// `script` as a legacy script image named `name` (at most 32 bytes).
pub(crate) fn image(name: &str, script: &str) -> Vec<u8> {
    let length = u32::try_from(script.len()).expect("a boot script is short");
    let mut data = Vec::with_capacity(8 + script.len());
    data.extend_from_slice(&length.to_be_bytes());
    data.extend_from_slice(&0u32.to_be_bytes());
    data.extend_from_slice(script.as_bytes());
    let mut header = [0u8; HEADER];
    header[0..4].copy_from_slice(&MAGIC.to_be_bytes());
    // 4..8: the header's CRC, filled in last; 8..12: the time, 0.
    let size = u32::try_from(data.len()).expect("a boot script is short");
    header[12..16].copy_from_slice(&size.to_be_bytes());
    // 16..20 load address and 20..24 entry point: 0 for a script.
    header[24..28].copy_from_slice(&crc32(&data).to_be_bytes());
    header[28] = OS_LINUX;
    header[29] = ARCH_ARM64;
    header[30] = TYPE_SCRIPT;
    header[31] = COMP_NONE;
    let name = name.as_bytes();
    let name = &name[..name.len().min(32)];
    header[32..32 + name.len()].copy_from_slice(name);
    let header_crc = crc32(&header);
    header[4..8].copy_from_slice(&header_crc.to_be_bytes());
    let mut out = header.to_vec();
    out.extend_from_slice(&data);
    out
}

#[cfg(test)]
mod tests {
    use super::{HEADER, crc32, image, text};

    #[test]
    fn crc_is_ieee() {
        // The check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn header_fields_and_crcs() {
        let script = text("bulkhead.img");
        assert!(script.contains(
            "load ${devtype} ${devnum}:${distro_bootpart} ${kernel_addr_r} bulkhead.img\n"
        ));
        assert!(script.contains("booti ${kernel_addr_r} - ${fdt_addr}\n"));
        let bytes = image("Bulkhead boot script", &script);
        let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
        assert_eq!(be(0), 0x2705_1956);
        assert_eq!(be(8), 0, "no timestamp: reproducible");
        assert_eq!(be(12) as usize, bytes.len() - HEADER);
        assert_eq!(be(24), crc32(&bytes[HEADER..]));
        assert_eq!(&bytes[28..32], &[5, 22, 6, 0]);
        assert_eq!(&bytes[32..52], b"Bulkhead boot script");
        let mut header = bytes[..HEADER].to_vec();
        header[4..8].fill(0);
        assert_eq!(be(4), crc32(&header));
        assert_eq!(be(HEADER) as usize, script.len());
        assert_eq!(be(HEADER + 4), 0);
        assert_eq!(&bytes[HEADER + 8..], script.as_bytes());
        assert_eq!(bytes, image("Bulkhead boot script", &script));
    }
}
