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
//! | 40 | 4 | CRC-32 ([`crate::crc32`]) of bytes `[0, checked)` with this field as 0 |
//! | 44 | 4 | file count (at most [`MAX_FILES`]) |
//! | 48 | 4 | file table offset: `count` pairs of (offset u64, length u64) |
//! | 52 | 4 | zero |
//! | 56 | 8 | checked: the bytes the CRC covers (header, manifest, tables, programs) |
//!
//! The manifest, the tables and each program start at a multiple of 8 and
//! lie inside `[HEADER_SIZE, checked)`. Files (guest kernels, initramfs
//! images) follow, each at a multiple of [`FILE_ALIGN`] (a page, so that the
//! kernel can map them into a monitor's address space as they lie), inside
//! `[checked, total)`. The CRC does not cover them: the kernel never reads
//! them, and checking tens of megabytes at every boot would cost more than
//! the guest's own boot; what a corrupt file can harm is the one virtual
//! machine that loads it. [`Package::parse`] checks all of it with checked
//! arithmetic before anything is read through an offset, so a corrupt or
//! hostile package is an error, never a panic or a stray read.

use core::fmt;

use crate::crc;
use crate::error::ManifestError;
use crate::manifest::{BootManifest, MAX_FILES, MAX_PROGRAMS};

/// The first eight bytes of every package.
pub const MAGIC: [u8; 8] = *b"BULKHEAD";
/// The package format this crate reads and writes. Any change to the header
/// or to [`BootManifest`]'s encoding must increase it.
pub const FORMAT_VERSION: u32 = 7;
/// Bytes of header.
pub const HEADER_SIZE: u32 = 64;
/// Where the CRC field is.
const CRC_OFFSET: usize = 40;
/// Bytes of one program table entry.
const TABLE_ENTRY_SIZE: u64 = 16;
/// Alignment of the manifest, the table and every program.
const ALIGN: u64 = 8;
/// Alignment of every file, within the package (which itself starts on a
/// page boundary, after the kernel).
pub const FILE_ALIGN: u64 = 4096;

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
    /// More files than [`MAX_FILES`], or the file table is outside the
    /// package or misaligned.
    BadFileTable,
    /// A file's offset or length is outside the package's unchecked part or
    /// not page-aligned.
    BadFile {
        /// The file's index.
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
            Self::BadFileTable => f.write_str(
                "boot package malformed: too many files, or the file table lies outside it",
            ),
            Self::BadFile { index } => write!(
                f,
                "boot package malformed: file {index} lies outside it or is not page-aligned"
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
    /// The file table: `count` entries of 16 bytes.
    files: &'a [u8],
    /// Where the files may lie: `[checked, total)`.
    checked: usize,
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
            .get(52..56)
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
        let checked = read_u64(header, 56)
            .and_then(|c| usize::try_from(c).ok())
            .filter(|&c| c >= header_size && c <= total_bytes)
            .ok_or(bad_size)?;
        let covered = bytes.get(..checked).ok_or(bad_size)?;

        let stored = field32(CRC_OFFSET)?;
        let computed = checksum(covered);
        if stored != computed {
            return Err(PackageError::Checksum { stored, computed });
        }

        let manifest = range(covered, u64::from(field32(24)?), u64::from(field32(28)?))
            .ok_or(PackageError::BadManifestRange)?;
        let count = field32(32)?;
        if usize::try_from(count).map_or(true, |c| c > MAX_PROGRAMS) {
            return Err(PackageError::TooManyPrograms { count });
        }
        let table = range(
            covered,
            u64::from(field32(36)?),
            u64::from(count) * TABLE_ENTRY_SIZE,
        )
        .ok_or(PackageError::BadProgramTable)?;
        let file_count = field32(44)?;
        if usize::try_from(file_count).map_or(true, |c| c > MAX_FILES) {
            return Err(PackageError::BadFileTable);
        }
        let files = range(
            covered,
            u64::from(field32(48)?),
            u64::from(file_count) * TABLE_ENTRY_SIZE,
        )
        .ok_or(PackageError::BadFileTable)?;
        let package = Self {
            bytes: covered,
            manifest,
            table,
            files,
            checked,
        };
        for index in 0..count {
            if package.program_at(index).is_none() {
                return Err(PackageError::BadProgram { index });
            }
        }
        let package = Self { bytes, ..package };
        for index in 0..file_count {
            if package.file_at(index).is_none() {
                return Err(PackageError::BadFile { index });
            }
        }
        Ok(package)
    }

    /// File `index`'s bytes, from the table: page-aligned, in the unchecked
    /// part.
    fn file_at(&self, index: u32) -> Option<&'a [u8]> {
        let entry = usize::try_from(u64::from(index) * TABLE_ENTRY_SIZE).ok()?;
        let offset = read_u64(self.files, entry)?;
        let length = read_u64(self.files, entry.checked_add(8)?)?;
        if !offset.is_multiple_of(FILE_ALIGN) || usize::try_from(offset).ok()? < self.checked {
            return None;
        }
        range(self.bytes, offset, length)
    }

    /// How many files the package carries.
    #[must_use]
    pub const fn file_count(&self) -> usize {
        self.files.len() / TABLE_ENTRY_SIZE as usize
    }

    /// File `index` (see [`BootManifest::files`]), or `None` past the end.
    /// It starts on a page boundary of the package.
    #[must_use]
    pub fn file(&self, index: usize) -> Option<&'a [u8]> {
        if index >= self.file_count() {
            return None;
        }
        self.file_at(u32::try_from(index).ok()?)
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
        check_files(&manifest, |i| self.file(i).map(<[u8]>::len))?;
        Ok(manifest)
    }
}

/// Checks that every partition's program index is below `count`.
fn check_programs(manifest: &BootManifest, count: usize) -> Result<(), ManifestError> {
    for (i, partition) in manifest.partitions.iter().enumerate() {
        if partition
            .program()
            .is_some_and(|program| usize::from(program) >= count)
        {
            return Err(ManifestError::MissingProgram {
                partition: u16::try_from(i).unwrap_or(u16::MAX),
            });
        }
    }
    Ok(())
}

/// Checks that the package has every file the manifest lists, each of the
/// listed length (`length(i)`: file `i`'s, if the package has it).
fn check_files(
    manifest: &BootManifest,
    length: impl Fn(usize) -> Option<usize>,
) -> Result<(), ManifestError> {
    for (i, file) in manifest.files.iter().enumerate() {
        if length(i).and_then(|l| u64::try_from(l).ok()) != Some(file.size) {
            return Err(ManifestError::MissingFile {
                file: u16::try_from(i).unwrap_or(u16::MAX),
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
pub use build::{BuildError, build, forge};

/// The encoder, for the host tool.
#[cfg(any(test, feature = "std"))]
mod build {
    use core::fmt;

    use super::{
        ALIGN, CRC_OFFSET, FILE_ALIGN, FORMAT_VERSION, HEADER_SIZE, MAGIC, TABLE_ENTRY_SIZE,
    };
    use crate::error::ManifestError;
    use crate::manifest::{BootManifest, MAX_FILES, MAX_PROGRAMS};

    /// Why a package could not be built.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum BuildError {
        /// The manifest breaks a rule the kernel checks, or names a program
        /// that was not supplied.
        Manifest(ManifestError),
        /// More programs than [`MAX_PROGRAMS`].
        TooManyPrograms,
        /// More files than [`MAX_FILES`].
        TooManyFiles,
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
                Self::TooManyFiles => write!(f, "more than {MAX_FILES} files"),
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

    /// Writes a table of (offset, length) pairs at `table_start`.
    fn write_entry(bytes: &mut [u8], table_start: usize, i: usize, offset: u64, length: u64) {
        let entry = table_start + i * TABLE_ENTRY_SIZE as usize;
        bytes[entry..entry + 8].copy_from_slice(&offset.to_le_bytes());
        bytes[entry + 8..entry + 16].copy_from_slice(&length.to_le_bytes());
    }

    /// Packs a manifest (validated first), the programs its partitions name
    /// by index and the files it lists into a package.
    ///
    /// # Errors
    ///
    /// See [`BuildError`].
    pub fn build(
        manifest: &BootManifest,
        programs: &[&[u8]],
        files: &[&[u8]],
    ) -> Result<Vec<u8>, BuildError> {
        manifest.validate().map_err(BuildError::Manifest)?;
        pack(manifest, programs, files)
    }

    /// A package like `package` (its programs and files) carrying `manifest`
    /// instead, which is **not** validated, with the CRC made right: what a
    /// hand-made boot package looks like, for tests that check the kernel
    /// refuses one (`cargo xtask test hand-made`).
    ///
    /// # Errors
    ///
    /// See [`BuildError`]; never [`BuildError::Manifest`] for the
    /// manifest's own rules.
    pub fn forge(
        package: &super::Package<'_>,
        manifest: &BootManifest,
    ) -> Result<Vec<u8>, BuildError> {
        let programs: Vec<&[u8]> = (0..package.program_count())
            .filter_map(|i| package.program(i))
            .collect();
        let files: Vec<&[u8]> = (0..package.file_count())
            .filter_map(|i| package.file(i))
            .collect();
        pack(manifest, &programs, &files)
    }

    /// Packs without validating the manifest.
    fn pack(
        manifest: &BootManifest,
        programs: &[&[u8]],
        files: &[&[u8]],
    ) -> Result<Vec<u8>, BuildError> {
        if programs.len() > MAX_PROGRAMS {
            return Err(BuildError::TooManyPrograms);
        }
        if files.len() > MAX_FILES {
            return Err(BuildError::TooManyFiles);
        }
        super::check_programs(manifest, programs.len()).map_err(BuildError::Manifest)?;
        super::check_files(manifest, |i| files.get(i).map(|f| f.len()))
            .map_err(BuildError::Manifest)?;
        let blob = postcard::to_allocvec(manifest).map_err(|_| BuildError::Encode)?;
        let too_large = |_| BuildError::TooLarge;

        let mut bytes = vec![0u8; HEADER_SIZE as usize];
        let manifest_offset = u32::try_from(bytes.len()).map_err(too_large)?;
        bytes.extend_from_slice(&blob);
        pad(&mut bytes);
        let table_offset = u32::try_from(bytes.len()).map_err(too_large)?;
        let table_start = bytes.len();
        bytes.resize(table_start + programs.len() * TABLE_ENTRY_SIZE as usize, 0);
        let file_table_offset = u32::try_from(bytes.len()).map_err(too_large)?;
        let file_table_start = bytes.len();
        bytes.resize(
            file_table_start + files.len() * TABLE_ENTRY_SIZE as usize,
            0,
        );
        for (i, program) in programs.iter().enumerate() {
            pad(&mut bytes);
            let offset = bytes.len() as u64;
            write_entry(&mut bytes, table_start, i, offset, program.len() as u64);
            bytes.extend_from_slice(program);
        }
        pad(&mut bytes);
        let checked = bytes.len() as u64;
        for (i, file) in files.iter().enumerate() {
            let offset = (bytes.len() as u64).next_multiple_of(FILE_ALIGN);
            bytes.resize(offset as usize, 0);
            write_entry(&mut bytes, file_table_start, i, offset, file.len() as u64);
            bytes.extend_from_slice(file);
        }
        pad(&mut bytes);

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
        let file_count = u32::try_from(files.len()).map_err(too_large)?;
        bytes[44..48].copy_from_slice(&file_count.to_le_bytes());
        bytes[48..52].copy_from_slice(&file_table_offset.to_le_bytes());
        bytes[56..64].copy_from_slice(&checked.to_le_bytes());
        let crc = super::checksum(&bytes[..checked as usize]);
        bytes[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_le_bytes());
        Ok(bytes)
    }
}
