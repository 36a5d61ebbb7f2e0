// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Reading ELF64 executables: the kernel loads partition programs with it,
//! and the host tool flattens the kernel with it.
//!
//! Only what loading needs: the header's checks (64-bit, little-endian,
//! AArch64), the entry point and the loadable (`PT_LOAD`) segments. Every
//! offset and size is checked against the file, so a corrupt or hostile
//! program is an error, never a panic or an out-of-bounds read.

/// Why a file is not a loadable program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// Not a 64-bit little-endian ELF file.
    NotElf64,
    /// An ELF file for another machine than AArch64.
    NotAarch64,
    /// A header, table or segment runs past the end of the file, or a size
    /// overflows.
    Truncated,
    /// A segment's size in memory is smaller than its size in the file.
    BadSegment,
}

impl core::fmt::Display for ElfError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::NotElf64 => "not a 64-bit little-endian ELF file",
            Self::NotAarch64 => "not an AArch64 ELF file",
            Self::Truncated => "truncated ELF file (a table or segment runs past its end)",
            Self::BadSegment => "an ELF segment is smaller in memory than in the file",
        })
    }
}

/// A checked ELF64 AArch64 file.
#[derive(Clone, Copy, Debug)]
pub struct Elf<'f> {
    file: &'f [u8],
    entry: u64,
    phoff: usize,
    phentsize: usize,
    phnum: usize,
}

/// One loadable segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment<'f> {
    /// Where it goes, relative to the address the program is linked at.
    pub address: u64,
    /// Its bytes in the file.
    pub data: &'f [u8],
    /// Its size in memory (the rest, past `data`, is zero).
    pub memory_size: u64,
    /// Whether the program may write it (`PF_W`).
    pub writable: bool,
    /// Whether the program may execute it (`PF_X`).
    pub executable: bool,
}

fn bytes<const N: usize>(b: &[u8], at: usize) -> Result<[u8; N], ElfError> {
    b.get(at..at.checked_add(N).ok_or(ElfError::Truncated)?)
        .and_then(|s| s.try_into().ok())
        .ok_or(ElfError::Truncated)
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, ElfError> {
    bytes(b, at).map(u16::from_le_bytes)
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, ElfError> {
    bytes(b, at).map(u32::from_le_bytes)
}

fn u64_at(b: &[u8], at: usize) -> Result<u64, ElfError> {
    bytes(b, at).map(u64::from_le_bytes)
}

fn to_usize(v: u64) -> Result<usize, ElfError> {
    usize::try_from(v).map_err(|_| ElfError::Truncated)
}

const PT_LOAD: u32 = 1;
const EM_AARCH64: u16 = 183;

impl<'f> Elf<'f> {
    /// Checks `file`'s header and program header table.
    pub fn parse(file: &'f [u8]) -> Result<Self, ElfError> {
        if file.get(..4) != Some(b"\x7fELF") || file.get(4) != Some(&2) || file.get(5) != Some(&1) {
            return Err(ElfError::NotElf64);
        }
        if u16_at(file, 18)? != EM_AARCH64 {
            return Err(ElfError::NotAarch64);
        }
        let elf = Self {
            file,
            entry: u64_at(file, 24)?,
            phoff: to_usize(u64_at(file, 32)?)?,
            phentsize: usize::from(u16_at(file, 54)?),
            phnum: usize::from(u16_at(file, 56)?),
        };
        if elf.phnum > 0 && elf.phentsize < 56 {
            return Err(ElfError::Truncated);
        }
        let table_end = elf
            .phentsize
            .checked_mul(elf.phnum)
            .and_then(|n| n.checked_add(elf.phoff));
        if table_end.is_none_or(|end| end > file.len()) {
            return Err(ElfError::Truncated);
        }
        // Check every segment now, so iteration cannot fail later.
        for i in 0..elf.phnum {
            elf.segment(i)?;
        }
        Ok(elf)
    }

    /// The entry point, relative to the link address.
    #[must_use]
    pub fn entry(&self) -> u64 {
        self.entry
    }

    fn segment(&self, i: usize) -> Result<Option<Segment<'f>>, ElfError> {
        let at = self.phoff + i * self.phentsize;
        if u32_at(self.file, at)? != PT_LOAD {
            return Ok(None);
        }
        let flags = u32_at(self.file, at + 4)?;
        let offset = to_usize(u64_at(self.file, at + 8)?)?;
        let address = u64_at(self.file, at + 16)?;
        let file_size = to_usize(u64_at(self.file, at + 32)?)?;
        let memory_size = u64_at(self.file, at + 40)?;
        let end = offset.checked_add(file_size).ok_or(ElfError::Truncated)?;
        let data = self.file.get(offset..end).ok_or(ElfError::Truncated)?;
        if memory_size < file_size as u64 || address.checked_add(memory_size).is_none() {
            return Err(ElfError::BadSegment);
        }
        Ok(Some(Segment {
            address,
            data,
            memory_size,
            writable: flags & 2 != 0,
            executable: flags & 1 != 0,
        }))
    }

    /// The loadable segments, in file order.
    pub fn segments(&self) -> impl Iterator<Item = Segment<'f>> + '_ {
        (0..self.phnum).filter_map(|i| self.segment(i).ok().flatten())
    }

    /// The lowest and highest address the loadable segments occupy in memory,
    /// or `None` if there are none.
    #[must_use]
    pub fn memory_span(&self) -> Option<(u64, u64)> {
        let low = self.segments().map(|s| s.address).min()?;
        let high = self.segments().map(|s| s.address + s.memory_size).max()?;
        Some((low, high))
    }
}

#[cfg(test)]
mod tests {
    use super::{Elf, ElfError};
    use crate::fixtures::elf;

    #[test]
    fn a_program_parses() {
        let file = elf(0, b"hello", 0x1000);
        let parsed = Elf::parse(&file).unwrap();
        assert_eq!(parsed.entry(), 4);
        let segments: Vec<_> = parsed.segments().collect();
        assert_eq!(segments.len(), 1);
        assert_eq!(segments[0].data, b"hello");
        assert_eq!(parsed.memory_span(), Some((0, 0x1000)));
    }

    #[test]
    fn bad_files_are_errors() {
        assert_eq!(Elf::parse(b"#!/bin/sh").unwrap_err(), ElfError::NotElf64);
        let mut other = elf(0, b"x", 1);
        other[18] = 62;
        assert_eq!(Elf::parse(&other).unwrap_err(), ElfError::NotAarch64);
        assert_eq!(
            Elf::parse(&elf(0, b"xy", 1)).unwrap_err(),
            ElfError::BadSegment
        );
        assert_eq!(
            Elf::parse(&elf(u64::MAX, b"x", 1)).unwrap_err(),
            ElfError::BadSegment
        );
    }

    #[test]
    fn every_truncation_and_corruption_is_handled() {
        let file = elf(0x1000, b"some code", 0x2000);
        for len in 0..file.len() {
            assert!(Elf::parse(&file[..len]).is_err(), "length {len}");
        }
        for i in 0..file.len() {
            for v in [0, 0xff, 0x7f] {
                let mut bad = file.clone();
                bad[i] = v;
                if let Ok(e) = Elf::parse(&bad) {
                    let _ = e.segments().count();
                    let _ = e.memory_span();
                }
            }
        }
    }
}
