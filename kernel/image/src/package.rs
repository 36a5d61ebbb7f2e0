// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The boot package: the compiled manifest and every program, packed after
//! the kernel in the image.
//!
//! All integers are little-endian; offsets count from the package's first
//! byte.
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `b"BULKHEAD"` |
//! | 8 | 4 | format version, [`FORMAT_VERSION`] |
//! | 12 | 4 | header size, [`HEADER_SIZE`] (64) |
//! | 16 | 8 | total size in bytes, header included |
//! | 24 | 4 | manifest offset |
//! | 28 | 4 | manifest length |
//! | 32 | 4 | program count (at most [`MAX_PROGRAMS`]) |
//! | 36 | 4 | program table offset: `count` pairs of (offset u64, length u64) |
//! | 40 | 4 | CRC-32 ([`crate::crc32`]) of bytes `[0, total)` with this field as 0 |
//! | 44 | 20 | zero |
//!
//! The manifest, the table and each program start at a multiple of 8 and lie
//! inside `[HEADER_SIZE, total)`. [`Package::parse`] checks all of it with
//! checked arithmetic before anything is read through an offset, so a
//! corrupt or hostile package is an error, never a panic or a stray read.

use core::fmt;

use crate::crc;
use crate::error::ManifestError;
use crate::manifest::{BootManifest, MAX_PROGRAMS};

/// The first eight bytes of every package.
pub const MAGIC: [u8; 8] = *b"BULKHEAD";
/// The package format this crate reads and writes. Any change to the header
/// or to [`BootManifest`]'s encoding must increase it.
pub const FORMAT_VERSION: u32 = 3;
/// Bytes of header.
pub const HEADER_SIZE: u32 = 64;
/// Where the CRC field is.
const CRC_OFFSET: usize = 40;
/// Bytes of one program table entry.
const TABLE_ENTRY_SIZE: u64 = 16;
/// Alignment of the manifest, the table and every program.
const ALIGN: u64 = 8;

/// Why a package was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PackageError {
    /// Fewer bytes than a header.
    TooShort {
        /// Bytes available.
        length: usize,
    },
    /// The magic is not `BULKHEAD`: there is no package here.
    BadMagic,
    /// The package was written for another format version.
    Version {
        /// The version in the package.
        found: u32,
        /// The version this kernel reads.
        expected: u32,
    },
    /// The header size is not 64 or its reserved bytes are not zero.
    BadHeader,
    /// The total size is smaller than the header or larger than the bytes
    /// available.
    BadSize {
        /// The total size in the header.
        total: u64,
        /// Bytes available.
        available: usize,
    },
    /// The checksum does not match: the package is corrupt.
    Checksum {
        /// The CRC in the header.
        stored: u32,
        /// The CRC of the bytes.
        computed: u32,
    },
    /// The manifest's offset or length is outside the package or misaligned.
    BadManifestRange,
    /// More programs than [`MAX_PROGRAMS`].
    TooManyPrograms {
        /// The count in the header.
        count: u32,
    },
    /// The program table is outside the package or misaligned.
    BadProgramTable,
    /// A program's offset or length is outside the package or misaligned.
    BadProgram {
        /// The program's index.
        index: u32,
    },
}

impl fmt::Display for PackageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TooShort { length } => write!(
                f,
                "boot package truncated: {length} bytes, less than its {HEADER_SIZE}-byte header"
            ),
            Self::BadMagic => f.write_str("no boot package: the magic is not `BULKHEAD`"),
            Self::Version { found, expected } => write!(
                f,
                "boot package format version {found}, but this kernel reads version {expected}: rebuild the image with this kernel's tools"
            ),
            Self::BadHeader => f.write_str(
                "boot package header malformed: header size is not 64 or reserved bytes are not zero",
            ),
            Self::BadSize { total, available } => write!(
                f,
                "boot package size {total} bytes is below the header's or past the {available} bytes available (truncated image?)"
            ),
            Self::Checksum { stored, computed } => write!(
                f,
                "boot package corrupt: CRC-32 is {computed:#010x}, the header says {stored:#010x}"
            ),
            Self::BadManifestRange => {
                f.write_str("boot package malformed: the manifest lies outside it or is misaligned")
            }
            Self::TooManyPrograms { count } => write!(
                f,
                "boot package has {count} programs, more than the {MAX_PROGRAMS} allowed"
            ),
            Self::BadProgramTable => f.write_str(
                "boot package malformed: the program table lies outside it or is misaligned",
            ),
            Self::BadProgram { index } => write!(
                f,
                "boot package malformed: program {index} lies outside it or is misaligned"
            ),
        }
    }
}

/// A parsed, checked boot package, borrowing the bytes it was parsed from.
///
/// # Invariants
///
/// `bytes` is exactly the package (`total` bytes); the manifest range, the
/// program table and every program range lie inside it (checked by
/// [`Package::parse`]).
#[derive(Clone, Copy, Debug)]
pub struct Package<'a> {
    /// The whole package.
    bytes: &'a [u8],
    /// The manifest blob.
    manifest: &'a [u8],
    /// The program table: `count` entries of 16 bytes.
    table: &'a [u8],
}

/// Reads a little-endian `u32` at `offset`; `None` past the end.
fn read_u32(bytes: &[u8], offset: usize) -> Option<u32> {
    let end = offset.checked_add(4)?;
    let field = bytes.get(offset..end)?;
    Some(u32::from_le_bytes(field.try_into().ok()?))
}

/// Reads a little-endian `u64` at `offset`; `None` past the end.
fn read_u64(bytes: &[u8], offset: usize) -> Option<u64> {
    let end = offset.checked_add(8)?;
    let field = bytes.get(offset..end)?;
    Some(u64::from_le_bytes(field.try_into().ok()?))
}

/// The sub-slice `[offset, offset + length)` of a package of `bytes`, if it
/// is aligned and lies after the header and inside the package.
fn range(bytes: &[u8], offset: u64, length: u64) -> Option<&[u8]> {
    if offset < u64::from(HEADER_SIZE) || !offset.is_multiple_of(ALIGN) {
        return None;
    }
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(usize::try_from(length).ok()?)?;
    bytes.get(start..end)
}

impl<'a> Package<'a> {
    /// Parses and checks a package at the start of `bytes`. Bytes past the
    /// package's total size are ignored (an image may be padded).
    ///
    /// # Errors
    ///
    /// The first problem found, in header order: size, magic, version,
    /// header, total size, checksum, then the manifest, table and programs.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, PackageError> {
        let header_size = HEADER_SIZE as usize;
        let header = bytes.get(..header_size).ok_or(PackageError::TooShort {
            length: bytes.len(),
        })?;
        // The header is in hand, so every read below is inside it; the
        // `BadHeader` fallbacks are never taken.
        let field32 = |offset| read_u32(header, offset).ok_or(PackageError::BadHeader);
        if header.get(..8) != Some(&MAGIC[..]) {
            return Err(PackageError::BadMagic);
        }
        let version = field32(8)?;
        if version != FORMAT_VERSION {
            return Err(PackageError::Version {
                found: version,
                expected: FORMAT_VERSION,
            });
        }
        let reserved_clear = header
            .get(CRC_OFFSET + 4..)
            .is_some_and(|reserved| reserved.iter().all(|&b| b == 0));
        if field32(12)? != HEADER_SIZE || !reserved_clear {
            return Err(PackageError::BadHeader);
        }
        let total = read_u64(header, 16).ok_or(PackageError::BadHeader)?;
        let bad_size = PackageError::BadSize {
            total,
            available: bytes.len(),
        };
        let total_bytes = usize::try_from(total).map_err(|_| bad_size)?;
        if total_bytes < header_size {
            return Err(bad_size);
        }
        let bytes = bytes.get(..total_bytes).ok_or(bad_size)?;

        let stored = field32(CRC_OFFSET)?;
        let computed = checksum(bytes);
        if stored != computed {
            return Err(PackageError::Checksum { stored, computed });
        }

        let manifest = range(bytes, u64::from(field32(24)?), u64::from(field32(28)?))
            .ok_or(PackageError::BadManifestRange)?;
        let count = field32(32)?;
        if usize::try_from(count).map_or(true, |c| c > MAX_PROGRAMS) {
            return Err(PackageError::TooManyPrograms { count });
        }
        let table = range(
            bytes,
            u64::from(field32(36)?),
            u64::from(count) * TABLE_ENTRY_SIZE,
        )
        .ok_or(PackageError::BadProgramTable)?;
        let package = Self {
            bytes,
            manifest,
            table,
        };
        for index in 0..count {
            if package.program_at(index).is_none() {
                return Err(PackageError::BadProgram { index });
            }
        }
        Ok(package)
    }

    /// Program `index`'s bytes, from the table.
    fn program_at(&self, index: u32) -> Option<&'a [u8]> {
        let entry = usize::try_from(u64::from(index) * TABLE_ENTRY_SIZE).ok()?;
        let offset = read_u64(self.table, entry)?;
        let length = read_u64(self.table, entry.checked_add(8)?)?;
        range(self.bytes, offset, length)
    }

    /// The whole package, exactly its total size.
    #[must_use]
    pub const fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The postcard-encoded [`BootManifest`].
    #[must_use]
    pub const fn manifest_blob(&self) -> &'a [u8] {
        self.manifest
    }

    /// How many programs the package carries.
    #[must_use]
    pub const fn program_count(&self) -> usize {
        self.table.len() / TABLE_ENTRY_SIZE as usize
    }

    /// Program `index` (a partition's `program`), or `None` past the end.
    #[must_use]
    pub fn program(&self, index: usize) -> Option<&'a [u8]> {
        if index >= self.program_count() {
            return None;
        }
        self.program_at(u32::try_from(index).ok()?)
    }

    /// Decodes and validates the manifest, and checks that every partition's
    /// program is in this package.
    ///
    /// # Errors
    ///
    /// What [`BootManifest::decode`] refuses, or
    /// [`ManifestError::MissingProgram`].
    pub fn manifest(&self) -> Result<BootManifest, ManifestError> {
        let manifest = BootManifest::decode(self.manifest)?;
        check_programs(&manifest, self.program_count())?;
        Ok(manifest)
    }
}

/// Checks that every partition's program index is below `count`.
fn check_programs(manifest: &BootManifest, count: usize) -> Result<(), ManifestError> {
    for (i, partition) in manifest.partitions.iter().enumerate() {
        if usize::from(partition.program) >= count {
            return Err(ManifestError::MissingProgram {
                partition: u16::try_from(i).unwrap_or(u16::MAX),
            });
        }
    }
    Ok(())
}

/// The CRC-32 of a whole package with its CRC field taken as zero.
fn checksum(package: &[u8]) -> u32 {
    let before = package.get(..CRC_OFFSET).unwrap_or_default();
    let after = package.get(CRC_OFFSET + 4..).unwrap_or_default();
    !crc::update(crc::update(crc::update(!0, before), &[0; 4]), after)
}

#[cfg(any(test, feature = "std"))]
pub use build::{BuildError, build};

/// The encoder, for the host tool.
#[cfg(any(test, feature = "std"))]
mod build {
    use core::fmt;

    use super::{ALIGN, CRC_OFFSET, FORMAT_VERSION, HEADER_SIZE, MAGIC, TABLE_ENTRY_SIZE};
    use crate::error::ManifestError;
    use crate::manifest::{BootManifest, MAX_PROGRAMS};

    /// Why a package could not be built.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum BuildError {
        /// The manifest breaks a rule the kernel checks, or names a program
        /// that was not supplied.
        Manifest(ManifestError),
        /// More programs than [`MAX_PROGRAMS`].
        TooManyPrograms,
        /// The manifest or a program table offset does not fit 32 bits.
        TooLarge,
        /// postcard could not encode the manifest.
        Encode,
    }

    impl fmt::Display for BuildError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                Self::Manifest(error) => write!(f, "invalid manifest: {error}"),
                Self::TooManyPrograms => write!(f, "more than {MAX_PROGRAMS} programs"),
                Self::TooLarge => f.write_str("the package's offsets do not fit 32 bits"),
                Self::Encode => f.write_str("the manifest could not be encoded"),
            }
        }
    }

    impl std::error::Error for BuildError {}

    /// Pads `bytes` with zeros to a multiple of [`ALIGN`].
    fn pad(bytes: &mut Vec<u8>) {
        while !(bytes.len() as u64).is_multiple_of(ALIGN) {
            bytes.push(0);
        }
    }

    /// Packs a manifest (validated first) and the programs its partitions
    /// name by index into a package.
    ///
    /// # Errors
    ///
    /// See [`BuildError`].
    pub fn build(manifest: &BootManifest, programs: &[&[u8]]) -> Result<Vec<u8>, BuildError> {
        manifest.validate().map_err(BuildError::Manifest)?;
        if programs.len() > MAX_PROGRAMS {
            return Err(BuildError::TooManyPrograms);
        }
        super::check_programs(manifest, programs.len()).map_err(BuildError::Manifest)?;
        let blob = postcard::to_allocvec(manifest).map_err(|_| BuildError::Encode)?;
        let too_large = |_| BuildError::TooLarge;

        let mut bytes = vec![0u8; HEADER_SIZE as usize];
        let manifest_offset = u32::try_from(bytes.len()).map_err(too_large)?;
        bytes.extend_from_slice(&blob);
        pad(&mut bytes);
        let table_offset = u32::try_from(bytes.len()).map_err(too_large)?;
        let table_start = bytes.len();
        let table_size = programs.len() * TABLE_ENTRY_SIZE as usize;
        bytes.resize(table_start + table_size, 0);
        for (i, program) in programs.iter().enumerate() {
            pad(&mut bytes);
            let entry = table_start + i * TABLE_ENTRY_SIZE as usize;
            let offset = bytes.len() as u64;
            bytes[entry..entry + 8].copy_from_slice(&offset.to_le_bytes());
            bytes[entry + 8..entry + 16].copy_from_slice(&(program.len() as u64).to_le_bytes());
            bytes.extend_from_slice(program);
        }

        let total = bytes.len() as u64;
        let blob_length = u32::try_from(blob.len()).map_err(too_large)?;
        let count = u32::try_from(programs.len()).map_err(too_large)?;
        bytes[..8].copy_from_slice(&MAGIC);
        bytes[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes[12..16].copy_from_slice(&HEADER_SIZE.to_le_bytes());
        bytes[16..24].copy_from_slice(&total.to_le_bytes());
        bytes[24..28].copy_from_slice(&manifest_offset.to_le_bytes());
        bytes[28..32].copy_from_slice(&blob_length.to_le_bytes());
        bytes[32..36].copy_from_slice(&count.to_le_bytes());
        bytes[36..40].copy_from_slice(&table_offset.to_le_bytes());
        let crc = super::checksum(&bytes);
        bytes[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_le_bytes());
        Ok(bytes)
    }
}
