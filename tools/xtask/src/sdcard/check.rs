// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Checking a card with tools that share no code with the crates that wrote
//! it: `sfdisk` (the partition table), `fsck.fat` (the file system), mtools'
//! `mdir` and `mcopy` (every file, byte for byte) and, for U-Boot's script,
//! `dumpimage` (its header and CRCs). [`crate::setup::CARD_TOOLS`] are their
//! packages, which `cargo xtask test` and `cargo xtask setup` install as root;
//! without them a check fails and says how to install them.
//!
//! Used by the host tests (cards of small stand-in files) and by the system
//! test `sdcard-rpi4` (cards of Debian's real files and a built image).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::disk::{FAT32_LBA, File, PARTITION_START, SECTOR};

/// A failed check, for the test's report.
pub(crate) type Outcome<T> = std::result::Result<T, String>;

/// The host tool `name` (also looked for in the sbin folders, which a user's
/// PATH may lack).
pub(crate) fn tool(name: &str, package: &str) -> Outcome<PathBuf> {
    crate::setup::which(name)
        .or_else(|| {
            ["/usr/sbin", "/sbin"]
                .iter()
                .map(|d| Path::new(d).join(name))
                .find(|p| p.is_file())
        })
        .ok_or_else(|| {
            format!(
                "the SD card is checked with `{name}` (Debian package {package}), which is not \
                 installed. `cargo xtask setup` installs it as root; or run: sudo apt-get \
                 install -y --no-install-recommends {}",
                crate::setup::CARD_TOOLS.join(" ")
            )
        })
}

/// Runs a tool; its standard output, or everything it said as the error.
pub(crate) fn run(command: &mut Command) -> Outcome<String> {
    let out = command
        .output()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!(
            "{command:?} failed ({}):\n{text}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// A `key=value` field of an `sfdisk --dump` partition line.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split(':')
        .nth(1)?
        .split(',')
        .map(str::trim)
        .find_map(|f| {
            f.strip_prefix(key)?
                .trim_start()
                .strip_prefix('=')
                .map(str::trim)
        })
}

/// Fails with `what` unless `ok`.
fn ensure(ok: bool, what: impl FnOnce() -> String) -> Outcome<()> {
    if ok { Ok(()) } else { Err(what()) }
}

/// Checks the card image at `path` against `files`: a DOS partition table
/// with one bootable FAT32 (LBA) partition at 1 MiB filling the image, a
/// file system `fsck.fat` finds clean, and exactly `files` in its root
/// folder, byte for byte. Scratch files go beside `path`. Returns a summary.
pub(crate) fn card(path: &Path, files: &[File]) -> Outcome<String> {
    let dir = path.parent().ok_or("the card has no folder")?;
    let image = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;

    let dump = run(Command::new(tool("sfdisk", "fdisk")?)
        .arg("--dump")
        .arg(path))?;
    let label = dump
        .lines()
        .find_map(|l| l.strip_prefix("label:"))
        .unwrap_or_default()
        .trim();
    ensure(label == "dos", || {
        format!("not an MBR (label `{label}`):\n{dump}")
    })?;
    let partitions: Vec<&str> = dump.lines().filter(|l| l.contains(" : start=")).collect();
    let [line] = partitions.as_slice() else {
        return Err(format!("one partition expected:\n{dump}"));
    };
    let number = |key: &str| -> Outcome<u64> {
        field(line, key)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("no {key} in `{line}`"))
    };
    let (start, size) = (number("start")?, number("size")?);
    ensure(
        start * SECTOR == PARTITION_START && start % 2048 == 0,
        || format!("the partition does not start at 1 MiB: {line}"),
    )?;
    ensure(
        field(line, "type") == Some(&format!("{FAT32_LBA:x}")),
        || format!("the partition's type is not 0x0c: {line}"),
    )?;
    ensure(line.trim_end().ends_with("bootable"), || {
        format!("the partition is not bootable: {line}")
    })?;
    ensure((start + size) * SECTOR == image.len() as u64, || {
        format!("the partition does not fill the image: {line}")
    })?;

    // The file system on its own, as fsck.fat reads it (it takes no offset).
    let partition = dir.join("partition.img");
    let offset = usize::try_from(start * SECTOR).map_err(|e| e.to_string())?;
    std::fs::write(&partition, &image[offset..]).map_err(|e| e.to_string())?;
    let fsck = run(Command::new(tool("fsck.fat", "dosfstools")?)
        .args(["-n", "-v"])
        .arg(&partition));
    let _ = std::fs::remove_file(&partition);
    let fsck = fsck?;
    ensure(fsck.contains("32 bit entries"), || {
        format!("not FAT32:\n{fsck}")
    })?;
    ensure(fsck.contains(" 512 bytes per cluster"), || {
        format!("not one sector per cluster:\n{fsck}")
    })?;
    ensure(
        !fsck.to_lowercase().contains("differ") && !fsck.contains("Free cluster summary"),
        || format!("fsck.fat complains:\n{fsck}"),
    )?;

    // Every file, by name, byte for byte, through mtools at the partition's
    // offset; nothing else in the root folder.
    let at = format!("{}@@{}", path.display(), start * SECTOR);
    let listing = run(Command::new(tool("mdir", "mtools")?)
        .env("MTOOLS_SKIP_CHECK", "1")
        .args(["-b", "-i", &at, "::/"]))?;
    let mut listed: Vec<&str> = listing
        .lines()
        .map(|l| l.trim().trim_start_matches("::/"))
        .filter(|l| !l.is_empty())
        .collect();
    listed.sort_unstable();
    let mut expected: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    expected.sort_unstable();
    ensure(listed == expected, || {
        format!("the card holds {listed:?}, not {expected:?}")
    })?;
    let mcopy = tool("mcopy", "mtools")?;
    let copied = dir.join("copied");
    for file in files {
        let _ = std::fs::remove_file(&copied);
        run(Command::new(&mcopy)
            .env("MTOOLS_SKIP_CHECK", "1")
            .args(["-n", "-i", &at])
            .arg(format!("::/{}", file.name))
            .arg(&copied))?;
        let same = std::fs::read(&copied).map_err(|e| e.to_string())? == file.data;
        ensure(same, || format!("{} differs on the card", file.name))?;
    }
    let _ = std::fs::remove_file(&copied);
    Ok(format!(
        "{} MiB, FAT32 from 1 MiB, {} files intact",
        image.len() >> 20,
        expected.len()
    ))
}

/// Checks a boot script image with `dumpimage`: a valid legacy image (both
/// CRCs), an AArch64 script, whose text is `text`.
pub(crate) fn boot_script(script: &[u8], text: &str, scratch: &Path) -> Outcome<()> {
    let path = scratch.join("boot.scr");
    std::fs::write(&path, script).map_err(|e| e.to_string())?;
    let dumpimage = tool("dumpimage", "u-boot-tools")?;
    let listing = run(Command::new(&dumpimage).arg("-l").arg(&path))?;
    ensure(listing.contains("AArch64 Linux Script"), || {
        format!("dumpimage does not see an AArch64 script:\n{listing}")
    })?;
    let extracted = scratch.join("boot.cmd");
    run(Command::new(&dumpimage)
        .args(["-T", "script", "-p", "0", "-o"])
        .arg(&extracted)
        .arg(&path))?;
    let back = std::fs::read(&extracted).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(&extracted);
    let _ = std::fs::remove_file(&path);
    // dumpimage gives the data whole: the script's size (big-endian), the 0
    // that ends the size list, then the script.
    let mut expected = u32::try_from(text.len())
        .map_err(|e| e.to_string())?
        .to_be_bytes()
        .to_vec();
    expected.extend_from_slice(&[0; 4]);
    expected.extend_from_slice(text.as_bytes());
    ensure(back == expected, || {
        format!(
            "the script reads back as:\n{}",
            String::from_utf8_lossy(&back)
        )
    })
}
