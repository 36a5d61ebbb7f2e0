// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The arm64 Linux `Image` header and where the kernel, initrd and device tree go in RAM.
//!
//! The arm64 boot protocol (Linux's `Documentation/arch/arm64/booting.rst`) puts a 64-byte
//! header at the start of every `Image`: two instruction words, then `text_offset` (0x08),
//! `image_size` (0x10), `flags` (0x18), three reserved words, the magic `ARM\x64` (0x38) and
//! the offset of a PE header for the EFI stub (0x3c). Every field is little-endian.
//! [`ImageHeader::parse`] reads it and refuses what a monitor cannot boot; [`placement`]
//! decides where the three files go in the guest's RAM, following the protocol's rules:
//!
//! - The kernel: `text_offset` bytes above a 2 MiB-aligned base, with `image_size` bytes
//!   free from the start of the image (this covers its .bss). We take the lowest 2 MiB
//!   boundary in RAM: the protocol recommends the start of RAM for kernels before v4.6, which
//!   cannot use memory below the image, and flag bit 3 clear asks for "as close as possible
//!   to the base of DRAM".
//! - The device tree: 8-byte aligned, at most 2 MiB, and never crossing a 2 MiB boundary
//!   (the kernel maps it with blocks of up to 2 MiB). We put it as high as possible.
//! - The initrd: just below the device tree, aligned down to the kernel's page size (4 KiB
//!   when the header does not say). Keeping both at the top of RAM leaves the kernel the
//!   whole middle of RAM to grow into, which matters for old kernels whose header does not
//!   give their size. The initrd must also lie in the 1 GiB-aligned, 32 GiB window that holds
//!   the kernel, so on a guest with more than 32 GiB of RAM "the top" is the top of that
//!   window.
//!
//! Every overlap or overflow is an [`ImageError`] that names the file that does not fit and
//! how many bytes are missing. The device tree's size does not depend on the initrd's
//! address (see [`crate::fdt`]), so a monitor builds the tree, places everything, then writes
//! the tree again with the real initrd range.

use core::fmt;

/// Size of the arm64 Image header, in bytes.
pub const HEADER_SIZE: usize = 64;

/// The magic number at offset 0x38: `ARM\x64`, read as a little-endian `u32`.
pub const MAGIC: u32 = 0x644d_5241;

/// The `text_offset` assumed for kernels older than v3.17, whose `image_size` is 0.
pub const LEGACY_TEXT_OFFSET: u64 = 0x8_0000;

/// The alignment of the kernel's base address: 2 MiB.
pub const KERNEL_ALIGN: u64 = 2 << 20;

/// The largest device tree the kernel accepts: 2 MiB.
pub const MAX_DTB_SIZE: u64 = 2 << 20;

/// The device tree's alignment: 8 bytes.
pub const DTB_ALIGN: u64 = 8;

/// The initrd must lie, with the kernel, in a window of this size...
pub const INITRD_WINDOW_SIZE: u64 = 32 << 30;

/// ...aligned to this.
pub const INITRD_WINDOW_ALIGN: u64 = 1 << 30;

/// With flag bit 3 set, the image must lie below this physical address (48 bits).
pub const PLACEMENT_LIMIT_48BIT: u64 = 1 << 48;

const FLAG_BIG_ENDIAN: u64 = 1 << 0;
const FLAG_PAGE_SIZE_SHIFT: u32 = 1;
const FLAG_PAGE_SIZE_MASK: u64 = 0b11;
const FLAG_ANYWHERE: u64 = 1 << 3;

/// The page size a kernel was built for, from flag bits 1-2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageSize {
    /// The header does not say (0).
    Unspecified,
    /// 4 KiB pages (1).
    Size4K,
    /// 16 KiB pages (2).
    Size16K,
    /// 64 KiB pages (3).
    Size64K,
}

impl PageSize {
    /// The page size in bytes; 4 KiB when unspecified, the architecture's smallest.
    pub fn bytes(self) -> u64 {
        match self {
            Self::Unspecified | Self::Size4K => 4 << 10,
            Self::Size16K => 16 << 10,
            Self::Size64K => 64 << 10,
        }
    }
}

/// The fields of an arm64 `Image` header that placement needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageHeader {
    /// Offset of the image from its 2 MiB-aligned base (0x80000 assumed for legacy images).
    pub text_offset: u64,
    /// Bytes the kernel needs from the start of the image, .bss included. For a legacy image
    /// (header `image_size` 0) this is the length of the bytes given to [`ImageHeader::parse`]:
    /// the header does not say how large the kernel's .bss is.
    pub image_size: u64,
    /// The raw `flags` word.
    pub flags: u64,
    /// True when the header's `image_size` was 0 (kernels before v3.17).
    pub legacy: bool,
}

impl ImageHeader {
    /// Reads the header at the start of `image`, which should be the whole `Image` file (only
    /// a legacy image needs more than the first 64 bytes: its length stands in for the size
    /// its header does not give).
    ///
    /// # Errors
    ///
    /// [`ImageError::TooShort`] below 64 bytes, [`ImageError::BadMagic`] without `ARM\x64`
    /// at 0x38, [`ImageError::BigEndian`] when flag bit 0 says the kernel is big-endian.
    pub fn parse(image: &[u8]) -> Result<Self, ImageError> {
        let header = image.get(..HEADER_SIZE).ok_or(ImageError::TooShort {
            length: image.len(),
        })?;
        let magic = read_u32(header, 0x38);
        if magic != MAGIC {
            return Err(ImageError::BadMagic { found: magic });
        }
        let image_size = read_u64(header, 0x10);
        let (text_offset, flags, legacy) = if image_size == 0 {
            // Before v3.17 the header's fields were in the kernel's endianness and carried no
            // flags; the protocol says to assume text_offset 0x80000.
            (LEGACY_TEXT_OFFSET, 0, true)
        } else {
            (read_u64(header, 0x08), read_u64(header, 0x18), false)
        };
        if flags & FLAG_BIG_ENDIAN != 0 {
            return Err(ImageError::BigEndian);
        }
        let image_size = if legacy {
            image.len() as u64
        } else {
            image_size
        };
        Ok(Self {
            text_offset,
            image_size,
            flags,
            legacy,
        })
    }

    /// The page size from flag bits 1-2.
    pub fn page_size(&self) -> PageSize {
        match (self.flags >> FLAG_PAGE_SIZE_SHIFT) & FLAG_PAGE_SIZE_MASK {
            1 => PageSize::Size4K,
            2 => PageSize::Size16K,
            3 => PageSize::Size64K,
            _ => PageSize::Unspecified,
        }
    }

    /// Flag bit 3: the 2 MiB-aligned base may be anywhere in the 48-bit physical address
    /// space, rather than as close as possible to the start of RAM.
    pub fn may_be_placed_anywhere(&self) -> bool {
        self.flags & FLAG_ANYWHERE != 0
    }
}

fn read_u32(bytes: &[u8], offset: usize) -> u32 {
    let mut word = [0; 4];
    if let Some(field) = bytes.get(offset..offset + 4) {
        word.copy_from_slice(field);
    }
    u32::from_le_bytes(word)
}

fn read_u64(bytes: &[u8], offset: usize) -> u64 {
    let mut word = [0; 8];
    if let Some(field) = bytes.get(offset..offset + 8) {
        word.copy_from_slice(field);
    }
    u64::from_le_bytes(word)
}

/// A range of guest physical addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// First address.
    pub start: u64,
    /// Length in bytes.
    pub size: u64,
}

impl Region {
    /// One past the last address. Regions built by [`placement`] never overflow.
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.size)
    }

    /// True when the two regions share at least one byte.
    pub fn overlaps(&self, other: &Region) -> bool {
        self.size != 0 && other.size != 0 && self.start < other.end() && other.start < self.end()
    }
}

/// Where the three files go, and where the vCPU starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The 2 MiB-aligned base the image is offset from.
    pub kernel_base: u64,
    /// The memory the kernel owns: from the entry point, `image_size` bytes. Copy the Image
    /// file to its start and enter there with x0 = the device tree's address, x1..x3 = 0.
    pub kernel: Region,
    /// The initrd, when there is one.
    pub initrd: Option<Region>,
    /// The device tree.
    pub dtb: Region,
}

impl Layout {
    /// The kernel's entry point: the first byte of the image.
    pub fn entry(&self) -> u64 {
        self.kernel.start
    }
}

/// Which file a placement error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootFile {
    /// The kernel Image.
    Kernel,
    /// The initial RAM disk.
    Initrd,
    /// The device tree blob.
    DeviceTree,
}

impl fmt::Display for BootFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Kernel => "the kernel Image",
            Self::Initrd => "the initrd",
            Self::DeviceTree => "the device tree",
        })
    }
}

/// Why an Image cannot be read or its files cannot be placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageError {
    /// Fewer than 64 bytes.
    TooShort {
        /// How many bytes there were.
        length: usize,
    },
    /// No `ARM\x64` at offset 0x38: not an arm64 Image (perhaps compressed, or an ELF).
    BadMagic {
        /// The word found there.
        found: u32,
    },
    /// Flag bit 0 says the kernel is big-endian; guests run little-endian.
    BigEndian,
    /// The guest's RAM range wraps around the address space, or is empty.
    BadRam {
        /// Its base.
        base: u64,
        /// Its size.
        size: u64,
    },
    /// The device tree is larger than the 2 MiB the kernel accepts.
    DtbTooLarge {
        /// Its size.
        size: u64,
    },
    /// A file does not fit in RAM beside the others.
    DoesNotFit {
        /// Which file.
        file: BootFile,
        /// Its size.
        size: u64,
        /// The room left for it.
        available: u64,
    },
    /// The image would end above the 48-bit physical address limit.
    Above48Bits {
        /// One past its last byte.
        end: u64,
    },
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TooShort { length } => write!(
                f,
                "the kernel Image is {length} bytes, shorter than its {HEADER_SIZE}-byte header"
            ),
            Self::BadMagic { found } => write!(
                f,
                "the kernel is not an arm64 Image: expected the magic 0x{MAGIC:08x} (\"ARM\\x64\") \
                 at offset 0x38, found 0x{found:08x}"
            ),
            Self::BigEndian => {
                f.write_str("the kernel Image is big-endian; only little-endian guests run")
            }
            Self::BadRam { base, size } => {
                write!(
                    f,
                    "the guest's RAM (0x{base:x}, {size} bytes) is empty or wraps around"
                )
            }
            Self::DtbTooLarge { size } => write!(
                f,
                "the device tree is {size} bytes, more than the {MAX_DTB_SIZE} bytes Linux accepts"
            ),
            Self::DoesNotFit {
                file,
                size,
                available,
            } => write!(
                f,
                "{file} ({size} bytes) does not fit in the guest's RAM: {available} bytes are left \
                 for it, {} bytes are missing",
                size.saturating_sub(available)
            ),
            Self::Above48Bits { end } => write!(
                f,
                "the kernel Image would end at 0x{end:x}, above the 48-bit physical address limit"
            ),
        }
    }
}

impl core::error::Error for ImageError {}

fn align_up(value: u64, align: u64) -> Option<u64> {
    Some(value.checked_add(align - 1)? & !(align - 1))
}

fn align_down(value: u64, align: u64) -> u64 {
    value & !(align - 1)
}

/// The highest 8-byte aligned start for `size` bytes in `[low, top)` that does not cross a
/// 2 MiB boundary, or the largest room such a placement could have had.
fn place_in_block(low: u64, top: u64, size: u64) -> Result<u64, u64> {
    if top <= low {
        return Err(0);
    }
    // The block holding the last byte below `top`, and the one before it: with `size` at most
    // 2 MiB, one of the two holds the highest placement if any block does.
    let top_block = align_down(top - 1, KERNEL_ALIGN);
    let candidates = [
        (top_block, top),
        (top_block.saturating_sub(KERNEL_ALIGN), top_block),
    ];
    let mut largest = 0;
    for (block_start, block_end) in candidates {
        let floor = block_start.max(low);
        if block_end <= floor {
            continue;
        }
        if let Some(start) = block_end
            .checked_sub(size)
            .map(|s| align_down(s, DTB_ALIGN))
            && start >= floor
        {
            return Ok(start);
        }
        largest = largest.max(block_end - floor);
    }
    Err(largest.min(size.saturating_sub(1)))
}

/// Decides where the kernel, the initrd (`initrd_size` 0 for none) and the device tree go in
/// the guest's RAM `[ram_base, ram_base + ram_size)`. See the module documentation for the
/// rules and the choices made.
///
/// # Errors
///
/// [`ImageError::BadRam`] for an empty or wrapping RAM range, [`ImageError::DtbTooLarge`]
/// above 2 MiB, [`ImageError::DoesNotFit`] naming the file that does not fit and the room
/// left for it, [`ImageError::Above48Bits`] when flag bit 3 is set and the kernel would end
/// above 2^48.
pub fn placement(
    header: &ImageHeader,
    ram_base: u64,
    ram_size: u64,
    initrd_size: u64,
    dtb_size: u64,
) -> Result<Layout, ImageError> {
    let bad_ram = ImageError::BadRam {
        base: ram_base,
        size: ram_size,
    };
    let ram_end = ram_base
        .checked_add(ram_size)
        .filter(|_| ram_size != 0)
        .ok_or(bad_ram)?;
    if dtb_size > MAX_DTB_SIZE {
        return Err(ImageError::DtbTooLarge { size: dtb_size });
    }

    // The kernel: text_offset above the lowest 2 MiB boundary in RAM.
    let kernel_room = |available: u64| ImageError::DoesNotFit {
        file: BootFile::Kernel,
        size: header.image_size,
        available,
    };
    let kernel_base = align_up(ram_base, KERNEL_ALIGN).ok_or(kernel_room(0))?;
    let kernel_start = kernel_base
        .checked_add(header.text_offset)
        .ok_or(kernel_room(0))?;
    let kernel_available = ram_end.saturating_sub(kernel_start);
    if header.image_size > kernel_available {
        return Err(kernel_room(kernel_available));
    }
    let kernel = Region {
        start: kernel_start,
        size: header.image_size,
    };
    if header.may_be_placed_anywhere() && kernel.end() > PLACEMENT_LIMIT_48BIT {
        return Err(ImageError::Above48Bits { end: kernel.end() });
    }

    // The top of what the initrd and device tree may use: the end of RAM, or of the 32 GiB
    // window (1 GiB-aligned) that holds the kernel's start, whichever comes first.
    let window_end =
        align_down(kernel_start, INITRD_WINDOW_ALIGN).saturating_add(INITRD_WINDOW_SIZE);
    let top = ram_end.min(window_end);
    let page = header.page_size().bytes();
    // Room above the kernel, its end rounded up to a page.
    let low = align_up(kernel.end(), page).unwrap_or(u64::MAX);

    // The device tree: as high as possible, 8-byte aligned, within one 2 MiB block.
    let dtb_start =
        place_in_block(low, top, dtb_size).map_err(|available| ImageError::DoesNotFit {
            file: BootFile::DeviceTree,
            size: dtb_size,
            available,
        })?;
    let dtb = Region {
        start: dtb_start,
        size: dtb_size,
    };

    // The initrd: just below the device tree, page aligned.
    let initrd = if initrd_size == 0 {
        None
    } else {
        let available = dtb_start.saturating_sub(low);
        if initrd_size > available {
            return Err(ImageError::DoesNotFit {
                file: BootFile::Initrd,
                size: initrd_size,
                available,
            });
        }
        Some(Region {
            start: align_down(dtb_start - initrd_size, page),
            size: initrd_size,
        })
    };

    Ok(Layout {
        kernel_base,
        kernel,
        initrd,
        dtb,
    })
}

#[cfg(test)]
mod tests;
