// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Tests of the Image header and placement.

use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;

use proptest::prelude::{any, prop_assert, prop_assert_eq, proptest};

use super::{
    BootFile, ImageError, ImageHeader, KERNEL_ALIGN, LEGACY_TEXT_OFFSET, MAX_DTB_SIZE, PageSize,
    Region, placement,
};

const MIB: u64 = 1 << 20;
const RAM: u64 = 0x4000_0000;

/// A header as Debian's 6.1 arm64 kernel has it.
fn header_bytes(text_offset: u64, image_size: u64, flags: u64) -> Vec<u8> {
    let mut bytes = vec![0u8; 64];
    bytes[0..2].copy_from_slice(b"MZ");
    bytes[0x08..0x10].copy_from_slice(&text_offset.to_le_bytes());
    bytes[0x10..0x18].copy_from_slice(&image_size.to_le_bytes());
    bytes[0x18..0x20].copy_from_slice(&flags.to_le_bytes());
    bytes[0x38..0x3c].copy_from_slice(b"ARM\x64");
    bytes
}

fn debian() -> ImageHeader {
    ImageHeader::parse(&header_bytes(0, 0x201_0000, 0xa)).unwrap()
}

#[test]
fn parses_debians_header() {
    let header = debian();
    assert_eq!(header.text_offset, 0);
    assert_eq!(header.image_size, 0x201_0000);
    assert_eq!(header.page_size(), PageSize::Size4K);
    assert!(header.may_be_placed_anywhere());
    assert!(!header.legacy);
}

#[test]
fn page_sizes_come_from_bits_one_and_two() {
    for (flags, size, bytes) in [
        (0b000, PageSize::Unspecified, 4096),
        (0b010, PageSize::Size4K, 4096),
        (0b100, PageSize::Size16K, 16384),
        (0b110, PageSize::Size64K, 65536),
    ] {
        let header = ImageHeader::parse(&header_bytes(0, 0x10_0000, flags)).unwrap();
        assert_eq!(header.page_size(), size);
        assert_eq!(header.page_size().bytes(), bytes);
        assert!(!header.may_be_placed_anywhere());
    }
}

#[test]
fn refuses_short_images() {
    let bytes = header_bytes(0, 0x100_0000, 0xa);
    assert_eq!(
        ImageHeader::parse(&bytes[..63]),
        Err(ImageError::TooShort { length: 63 })
    );
    assert_eq!(
        ImageHeader::parse(&[]),
        Err(ImageError::TooShort { length: 0 })
    );
}

#[test]
fn refuses_a_bad_magic() {
    let mut bytes = header_bytes(0, 0x100_0000, 0xa);
    bytes[0x38..0x3c].copy_from_slice(b"\x7fELF");
    let error = ImageHeader::parse(&bytes).unwrap_err();
    assert_eq!(error, ImageError::BadMagic { found: 0x464c_457f });
    assert!(error.to_string().contains("not an arm64 Image"), "{error}");
}

#[test]
fn refuses_big_endian_kernels() {
    let error = ImageHeader::parse(&header_bytes(0, 0x100_0000, 0xb)).unwrap_err();
    assert_eq!(error, ImageError::BigEndian);
    assert!(error.to_string().contains("big-endian"));
}

#[test]
fn legacy_images_get_the_documented_text_offset_and_their_length() {
    let mut bytes = header_bytes(0x1234, 0, 0x1);
    bytes.resize(5 * MIB as usize, 0);
    let header = ImageHeader::parse(&bytes).unwrap();
    assert!(header.legacy);
    assert_eq!(header.text_offset, LEGACY_TEXT_OFFSET);
    assert_eq!(header.image_size, 5 * MIB);
    // Flags were not defined then: the endianness bit of a legacy header means nothing.
    assert_eq!(header.flags, 0);
}

#[test]
fn places_debian_on_qemu_virt_with_512_mib() {
    let layout = placement(&debian(), RAM, 512 * MIB, 1_078_000, 0x2000).unwrap();
    assert_eq!(layout.kernel_base, RAM);
    assert_eq!(layout.entry(), RAM);
    assert_eq!(
        layout.kernel,
        Region {
            start: RAM,
            size: 0x201_0000
        }
    );
    assert_eq!(
        layout.dtb,
        Region {
            start: RAM + 512 * MIB - 0x2000,
            size: 0x2000
        }
    );
    let initrd = layout.initrd.unwrap();
    assert_eq!(initrd.size, 1_078_000);
    assert_eq!(initrd.start % 4096, 0);
    assert!(initrd.end() <= layout.dtb.start);
    assert!(layout.dtb.start - initrd.end() < 4096);
}

#[test]
fn honours_text_offset_and_rounds_the_base_up() {
    let header = ImageHeader::parse(&header_bytes(0x8_0000, 0x100_0000, 0x2)).unwrap();
    let layout = placement(&header, RAM + 0x1000, 64 * MIB, 0, 0x1000).unwrap();
    assert_eq!(layout.kernel_base, RAM + KERNEL_ALIGN);
    assert_eq!(layout.entry(), RAM + KERNEL_ALIGN + 0x8_0000);
    assert_eq!(layout.initrd, None);
}

#[test]
fn the_device_tree_never_crosses_a_2_mib_boundary() {
    // RAM ends 4 KiB past a 2 MiB boundary: an 8 KiB tree cannot sit at the very top.
    let layout = placement(&debian(), RAM, 64 * MIB + 0x1000, 0, 0x2000).unwrap();
    assert_eq!(layout.dtb.start, RAM + 64 * MIB - 0x2000);
    // A 4 KiB tree fits in the last 4 KiB.
    let layout = placement(&debian(), RAM, 64 * MIB + 0x1000, 0, 0x1000).unwrap();
    assert_eq!(layout.dtb.start, RAM + 64 * MIB);
    // A 2 MiB tree takes a whole block.
    let layout = placement(&debian(), RAM, 64 * MIB + 0x1000, 0, MAX_DTB_SIZE).unwrap();
    assert_eq!(layout.dtb.start, RAM + 62 * MIB);
}

#[test]
fn the_device_tree_is_8_byte_aligned() {
    let layout = placement(&debian(), RAM, 64 * MIB, 0, 1001).unwrap();
    assert_eq!(layout.dtb.start % 8, 0);
    assert!(layout.dtb.end() <= RAM + 64 * MIB);
}

#[test]
fn initrd_pages_follow_the_kernels_page_size() {
    let header = ImageHeader::parse(&header_bytes(0, 0x100_0000, 0b110)).unwrap();
    let layout = placement(&header, RAM, 64 * MIB, 12345, 0x1000).unwrap();
    assert_eq!(layout.initrd.unwrap().start % 65536, 0);
}

#[test]
fn a_kernel_too_large_for_ram_says_how_much_is_missing() {
    let error = placement(&debian(), RAM, 16 * MIB, 0, 0x1000).unwrap_err();
    assert_eq!(
        error,
        ImageError::DoesNotFit {
            file: BootFile::Kernel,
            size: 0x201_0000,
            available: 16 * MIB
        }
    );
    let message = error.to_string();
    assert!(
        message.starts_with("the kernel Image (33619968 bytes) does not fit"),
        "{message}"
    );
    assert!(message.contains("16842752 bytes are missing"), "{message}");
}

#[test]
fn an_initrd_too_large_says_so() {
    let error = placement(&debian(), RAM, 40 * MIB, 8 * MIB, 0x2000).unwrap_err();
    let ImageError::DoesNotFit {
        file: BootFile::Initrd,
        size,
        available,
    } = error
    else {
        panic!("{error:?}");
    };
    assert_eq!(size, 8 * MIB);
    // RAM ends at 40 MiB, the tree takes the last 8 KiB, the kernel ends at 0x2010000.
    assert_eq!(available, 40 * MIB - 0x2000 - 0x201_0000);
    assert!(
        error
            .to_string()
            .starts_with("the initrd (8388608 bytes) does not fit")
    );
}

#[test]
fn a_device_tree_with_no_room_says_so() {
    // The kernel takes all of RAM.
    let error = placement(&debian(), RAM, 0x201_0000, 0, 0x100).unwrap_err();
    assert_eq!(
        error,
        ImageError::DoesNotFit {
            file: BootFile::DeviceTree,
            size: 0x100,
            available: 0
        }
    );
    assert!(error.to_string().contains("the device tree (256 bytes)"));
}

#[test]
fn refuses_oversized_device_trees() {
    let error = placement(&debian(), RAM, 512 * MIB, 0, MAX_DTB_SIZE + 1).unwrap_err();
    assert_eq!(
        error,
        ImageError::DtbTooLarge {
            size: MAX_DTB_SIZE + 1
        }
    );
}

#[test]
fn refuses_ram_that_wraps_or_is_empty() {
    assert!(matches!(
        placement(&debian(), u64::MAX - MIB, 2 * MIB, 0, 8),
        Err(ImageError::BadRam { .. })
    ));
    assert!(matches!(
        placement(&debian(), RAM, 0, 0, 8),
        Err(ImageError::BadRam { .. })
    ));
}

#[test]
fn ram_at_the_very_top_does_not_overflow() {
    let base = u64::MAX - 64 * MIB + 1;
    assert!(placement(&debian(), base, 64 * MIB - 1, 0, 8).is_err());
}

#[test]
fn keeps_the_initrd_within_32_gib_of_the_kernel() {
    let layout = placement(&debian(), RAM, 64 << 30, 16 * MIB, 0x2000).unwrap();
    let window_end = (RAM & !((1 << 30) - 1)) + (32 << 30);
    assert_eq!(layout.dtb.end(), window_end);
    assert!(layout.initrd.unwrap().end() <= window_end);
}

#[test]
fn placed_anywhere_means_below_48_bits() {
    let base = (1u64 << 48) - 16 * MIB;
    let error = placement(&debian(), base, 1 << 30, 0, 8).unwrap_err();
    assert!(matches!(error, ImageError::Above48Bits { .. }));
    // Without bit 3 the limit does not apply.
    let header = ImageHeader::parse(&header_bytes(0, 0x201_0000, 0x2)).unwrap();
    assert!(placement(&header, base, 1 << 30, 0, 8).is_ok());
}

proptest! {
    #[test]
    fn placements_are_inside_ram_aligned_and_apart(
        text_offset in 0u64..(4 << 20),
        image_size in 1u64..(256 << 20),
        flags in 0u64..16,
        ram_base in any::<u64>(),
        ram_size in any::<u64>(),
        initrd_size in 0u64..(256 << 20),
        dtb_size in 0u64..(3 << 20),
    ) {
        let header = ImageHeader::parse(&header_bytes(text_offset, image_size, flags & !1)).unwrap();
        let ram_size = ram_size % (1 << 40);
        let Ok(layout) = placement(&header, ram_base, ram_size, initrd_size, dtb_size) else {
            return Ok(());
        };
        let ram = Region { start: ram_base, size: ram_size };
        let inside = |r: &Region| r.start >= ram.start && r.end() <= ram.end();
        prop_assert!(inside(&layout.kernel));
        prop_assert!(inside(&layout.dtb));
        prop_assert_eq!(layout.kernel_base % KERNEL_ALIGN, 0);
        prop_assert_eq!(layout.kernel.start, layout.kernel_base + text_offset);
        prop_assert_eq!(layout.dtb.start % 8, 0);
        prop_assert!(dtb_size <= MAX_DTB_SIZE);
        if dtb_size > 0 {
            prop_assert_eq!(layout.dtb.start / KERNEL_ALIGN, (layout.dtb.end() - 1) / KERNEL_ALIGN);
        }
        prop_assert!(!layout.kernel.overlaps(&layout.dtb));
        if let Some(initrd) = layout.initrd {
            prop_assert!(inside(&initrd));
            prop_assert_eq!(initrd.size, initrd_size);
            prop_assert!(!initrd.overlaps(&layout.kernel));
            prop_assert!(!initrd.overlaps(&layout.dtb));
            prop_assert_eq!(initrd.start % header.page_size().bytes(), 0);
        } else {
            prop_assert_eq!(initrd_size, 0);
        }
    }
}
