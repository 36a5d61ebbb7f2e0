// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The card's bytes: an MBR partition table (`mbrman`) with one bootable
//! FAT32 partition (`fatfs`) holding files in its root folder.
//!
//! Layout: sector 0 is the MBR; the partition starts at 1 MiB (sector 2048,
//! the alignment every partitioning tool uses, which keeps the file system's
//! clusters on the card's erase blocks); it has type `0x0c` (FAT32 with LBA
//! addressing, what the Pi's boot ROM and firmware look for) and the boot
//! flag. It is FAT32 with one sector per cluster ([`CLUSTER`]), and its size
//! is a power of two from 64 MiB up (at least 65,525 clusters, which FAT32
//! needs), the smallest that holds the files with half as much again free (a
//! Pi 4 bootloader failed on a full FAT partition). Nothing depends on the time: the same files make the same card
//! (FAT timestamps are 1980-01-01 without `fatfs`'s `chrono` feature, the
//! volume ID and disk signature are fixed).

use std::io::{Cursor, Seek as _, SeekFrom, Write as _};

use crate::{Result, error};

/// Bytes per sector.
pub(crate) const SECTOR: u64 = 512;
/// Where the partition starts, in bytes.
pub(crate) const PARTITION_START: u64 = 1 << 20;
/// The smallest partition.
const MIN_PARTITION: u64 = 64 << 20;
/// The largest partition this writes (FAT32 and MBR could go further; a boot
/// partition this large means something is wrong).
const MAX_PARTITION: u64 = 4 << 30;
/// The cluster size: one sector, as Raspberry Pi OS's FAT32 boot partitions
/// have (they use 1 or 4 sectors per cluster, which Raspberry Pi's engineers
/// advise for the widest compatibility with the boot ROMs).
const CLUSTER: u32 = 512;
/// The partition type: FAT32, LBA.
pub(crate) const FAT32_LBA: u8 = 0x0c;
/// The MBR's disk signature (`BKHD`).
const DISK_SIGNATURE: [u8; 4] = *b"BKHD";
/// The file system's volume ID.
const VOLUME_ID: u32 = 0xb01c_4ead;
/// The volume label, space-padded to 11 bytes as FAT stores it.
pub(crate) const LABEL: &[u8; 11] = b"BULKHEAD   ";

/// A file for the card's root folder.
pub(crate) struct File {
    /// Its name: 8.3 or long (FAT keeps both).
    pub(crate) name: String,
    /// Its bytes.
    pub(crate) data: Vec<u8>,
}

/// The partition size for files of `total` bytes in `count` files: room for
/// each file rounded up to 4 KiB, the FATs, and half as much again free.
pub(crate) fn partition_size(total: u64, count: u64) -> Result<u64> {
    let needed = total + count * 4096;
    let wanted = needed + needed / 2 + (4 << 20);
    let size = wanted.next_power_of_two().max(MIN_PARTITION);
    if size > MAX_PARTITION {
        return Err(error!(
            "the card's files take {} MiB; a boot partition of more than {} MiB is not written",
            total >> 20,
            MAX_PARTITION >> 20
        ));
    }
    Ok(size)
}

/// The whole card image holding `files`.
pub(crate) fn card(files: &[File]) -> Result<Vec<u8>> {
    let total: u64 = files.iter().map(|f| f.data.len() as u64).sum();
    let size = partition_size(total, files.len() as u64)?;
    let mut disk = Cursor::new(vec![
        0u8;
        usize::try_from(PARTITION_START + size)
            .map_err(|e| error!("{e}"))?
    ]);
    partition_table(&mut disk, size)?;
    let partition = fat32(files, size)?;
    disk.seek(SeekFrom::Start(PARTITION_START))?;
    disk.write_all(&partition)?;
    Ok(disk.into_inner())
}

/// Writes the MBR: one bootable FAT32 (LBA) partition from 1 MiB.
fn partition_table(disk: &mut Cursor<Vec<u8>>, size: u64) -> Result<()> {
    let sectors = |bytes: u64| u32::try_from(bytes / SECTOR).map_err(|e| error!("{e}"));
    let sector_size = u32::try_from(SECTOR).map_err(|e| error!("{e}"))?;
    let mut mbr = mbrman::MBR::new_from(disk, sector_size, DISK_SIGNATURE)
        .map_err(|e| error!("cannot make the partition table: {e}"))?;
    let first = sectors(PARTITION_START)?;
    let count = sectors(size)?;
    mbr[1] = mbrman::MBRPartitionEntry {
        boot: mbrman::BOOT_ACTIVE,
        first_chs: chs(first),
        sys: FAT32_LBA,
        last_chs: chs(first + count - 1),
        starting_lba: first,
        sectors: count,
    };
    disk.seek(SeekFrom::Start(0))?;
    mbr.write_into(disk)
        .map_err(|e| error!("cannot write the partition table: {e}"))
}

/// The CHS address of `lba` in the usual translation (255 heads, 63 sectors
/// per track), or the largest address for a sector beyond it, as partitioning
/// tools write it. Only LBA is read (type 0x0c says so), but tools check CHS.
fn chs(lba: u32) -> mbrman::CHS {
    mbrman::CHS::from_lba_exact(lba, 1024, 255, 63).unwrap_or(mbrman::CHS::new(1023, 254, 63))
}

/// A FAT32 file system of `size` bytes with `files` in its root folder.
fn fat32(files: &[File], size: u64) -> Result<Vec<u8>> {
    let mut volume = Cursor::new(vec![0u8; usize::try_from(size).map_err(|e| error!("{e}"))?]);
    let options = fatfs::FormatVolumeOptions::new()
        .fat_type(fatfs::FatType::Fat32)
        .bytes_per_cluster(CLUSTER)
        .volume_id(VOLUME_ID)
        .volume_label(*LABEL);
    fatfs::format_volume(&mut volume, options)
        .map_err(|e| error!("cannot make the FAT32 file system: {e}"))?;
    volume.seek(SeekFrom::Start(0))?;
    {
        let fs = fatfs::FileSystem::new(&mut volume, fatfs::FsOptions::new())
            .map_err(|e| error!("cannot open the new FAT32 file system: {e}"))?;
        if fs.fat_type() != fatfs::FatType::Fat32 {
            return Err(error!(
                "the boot partition came out {:?}, not FAT32",
                fs.fat_type()
            ));
        }
        for file in files {
            let root = fs.root_dir();
            let mut out = root
                .create_file(&file.name)
                .map_err(|e| error!("cannot create {} on the card: {e}", file.name))?;
            out.truncate()
                .and_then(|()| out.write_all(&file.data))
                .and_then(|()| out.flush())
                .map_err(|e| error!("cannot write {} on the card: {e}", file.name))?;
        }
        // Counting the free clusters makes unmount record the count in the
        // FSInfo sector (else "unknown", which fsck.fat reports).
        fs.stats()
            .map_err(|e| error!("cannot count the free space on the card: {e}"))?;
        fs.unmount()
            .map_err(|e| error!("cannot finish the FAT32 file system: {e}"))?;
    }
    Ok(volume.into_inner())
}

#[cfg(test)]
mod tests {
    use super::{MIN_PARTITION, partition_size};

    #[test]
    fn partitions_grow_in_powers_of_two() {
        assert_eq!(partition_size(0, 0).unwrap(), MIN_PARTITION);
        assert_eq!(partition_size(3 << 20, 8).unwrap(), MIN_PARTITION);
        assert_eq!(partition_size(50 << 20, 8).unwrap(), 128 << 20);
        assert_eq!(partition_size(100 << 20, 8).unwrap(), 256 << 20);
        let e = partition_size(4 << 30, 1).unwrap_err().to_string();
        assert!(e.contains("4096 MiB"), "{e}");
    }
}
