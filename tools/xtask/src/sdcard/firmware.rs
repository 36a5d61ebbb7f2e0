// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The Raspberry Pi 4's boot files from Debian's archive, cached under
//! `target/rpi4-boot/` by [`crate::debian`].
//!
//! - `start4.elf`, `fixup4.dat`: the VideoCore firmware that reads
//!   `config.txt` and starts the Arm cores, from `raspi-firmware`
//!   (`/usr/lib/raspi-firmware/`, component **non-free-firmware**), with the
//!   package's copyright file, which its licence asks to be passed on.
//! - `bcm2711-rpi-4-b.dtb`, `bcm2711-rpi-400.dtb`, `bcm2711-rpi-cm4-io.dtb`:
//!   the device trees, from the arm64 kernel package that `linux-image-arm64`
//!   depends on (the same resolution as the guests' kernel, [`crate::guests`]),
//!   `/usr/lib/linux-image-<abi>/broadcom/`.
//! - `u-boot.bin`: U-Boot for the Pi in 64-bit mode, from `u-boot-rpi`
//!   (`/usr/lib/u-boot/rpi_arm64/`), for `--loader u-boot`.

use std::path::Path;

use crate::debian::{self, Archive, Entry, Fetched, Package, Recipe, Resolve};
use crate::guests::{KERNEL_METAPACKAGE, KERNEL_PREFIX};
use crate::{Result, error};

/// The firmware package.
const FIRMWARE: &str = "raspi-firmware";
/// Where it keeps its files.
const FIRMWARE_DIR: &str = "./usr/lib/raspi-firmware";
/// The firmware files the Pi 4 (BCM2711) needs: `start4.elf` and its memory
/// split `fixup4.dat` (the `4cd`/`4db`/`4x` variants are for other
/// `start_file` settings, which the card does not use).
pub(crate) const FIRMWARE_FILES: [&str; 2] = ["start4.elf", "fixup4.dat"];
/// The firmware's licence, as Debian ships it.
pub(crate) const FIRMWARE_LICENCE: &str = "LICENCE.raspi-firmware";
/// Device trees: the Pi 4 Model B, the Pi 400 and the Compute Module 4 on its
/// IO board.
pub(crate) const DEVICE_TREES: [&str; 3] = [
    "bcm2711-rpi-4-b.dtb",
    "bcm2711-rpi-400.dtb",
    "bcm2711-rpi-cm4-io.dtb",
];
/// U-Boot's package.
const UBOOT: &str = "u-boot-rpi";
/// U-Boot for the Pi (3 and 4) in 64-bit mode, inside the package.
const UBOOT_BIN: &str = "./usr/lib/u-boot/rpi_arm64/u-boot.bin";
/// Its name in the cache and on the card.
pub(crate) const UBOOT_FILE: &str = "u-boot.bin";

/// Every file of the cache entry.
const OUTPUTS: [&str; 7] = [
    FIRMWARE_FILES[0],
    FIRMWARE_FILES[1],
    FIRMWARE_LICENCE,
    DEVICE_TREES[0],
    DEVICE_TREES[1],
    DEVICE_TREES[2],
    UBOOT_FILE,
];

/// The cached files and the packages they came from.
#[derive(Clone, Debug)]
pub(crate) struct BootFiles {
    /// The cache entry.
    pub(crate) entry: Entry,
}

impl BootFiles {
    /// The path of `name` (one of the files listed above).
    pub(crate) fn path(&self, name: &str) -> std::path::PathBuf {
        self.entry.dir.join(name)
    }

    /// `raspi-firmware 1.2023...; linux-image-...; u-boot-rpi ...`.
    pub(crate) fn describe(&self) -> String {
        self.entry
            .manifest
            .packages
            .iter()
            .map(|p| format!("{} {}", p.name, p.version))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Makes sure the files are cached (fetching them if needed) and returns them.
pub(crate) fn ensure(resolve: Resolve) -> Result<BootFiles> {
    Ok(BootFiles {
        entry: debian::ensure(&Rpi4Boot, resolve)?,
    })
}

/// The recipe.
struct Rpi4Boot;

impl Recipe for Rpi4Boot {
    fn name(&self) -> &str {
        "rpi4-boot"
    }

    fn revision(&self) -> String {
        format!("rpi4-boot 1: {}", OUTPUTS.join(" "))
    }

    fn outputs(&self) -> &[&str] {
        &OUTPUTS
    }

    fn sources(&self) -> debian::Sources {
        debian::BOOKWORM_ARM64_FIRMWARE
    }

    fn offline_hint(&self) -> String {
        "rpi4-boot: the Pi's firmware, device trees and U-Boot come from Debian's archive the \
         first time (then from target/rpi4-boot/, with no network)"
            .to_string()
    }

    fn resolve(&self, archive: &Archive) -> Result<Vec<Package>> {
        let kernel = archive.dependency(KERNEL_METAPACKAGE, KERNEL_PREFIX)?;
        Ok(vec![
            // The firmware runs on the VideoCore, so the package is `all`.
            archive.package(FIRMWARE, "all")?,
            archive.package(&kernel, debian::ARCHITECTURE)?,
            archive.package(UBOOT, debian::ARCHITECTURE)?,
        ])
    }

    fn build(&self, fetched: &[Fetched], work: &Path, out: &Path) -> Result<()> {
        let [firmware, kernel, uboot] = fetched else {
            return Err(error!(
                "rpi4-boot: expected three packages, got {}",
                fetched.len()
            ));
        };
        let copyright = format!("./usr/share/doc/{FIRMWARE}/copyright");
        let mut members: Vec<String> = FIRMWARE_FILES
            .iter()
            .map(|f| format!("{FIRMWARE_DIR}/{f}"))
            .collect();
        members.push(copyright.clone());
        let members: Vec<&str> = members.iter().map(String::as_str).collect();
        debian::extract(&firmware.deb, &work.join("firmware"), &members)?;
        for file in FIRMWARE_FILES {
            move_file(
                &work.join("firmware").join(FIRMWARE_DIR).join(file),
                &out.join(file),
            )?;
        }
        move_file(
            &work.join("firmware").join(&copyright),
            &out.join(FIRMWARE_LICENCE),
        )?;

        let trees = format!("./usr/lib/{}/broadcom", kernel.package.name);
        let members: Vec<String> = DEVICE_TREES
            .iter()
            .map(|t| format!("{trees}/{t}"))
            .collect();
        let members: Vec<&str> = members.iter().map(String::as_str).collect();
        eprintln!(
            "rpi4-boot: extracting the Pi 4 device trees from {}",
            kernel.package.name
        );
        debian::extract(&kernel.deb, &work.join("kernel"), &members)?;
        for tree in DEVICE_TREES {
            let path = work.join("kernel").join(&trees).join(tree);
            check_device_tree(&path)?;
            move_file(&path, &out.join(tree))?;
        }

        debian::extract(&uboot.deb, &work.join("u-boot"), &[UBOOT_BIN])?;
        move_file(&work.join("u-boot").join(UBOOT_BIN), &out.join(UBOOT_FILE))
    }
}

fn move_file(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).map_err(|e| {
        error!(
            "rpi4-boot: cannot move {} into the cache: {e}",
            from.display()
        )
    })
}

/// Checks that `path` starts with the flattened device tree magic.
fn check_device_tree(path: &Path) -> Result<()> {
    let bytes = std::fs::read(path)?;
    if bytes.get(..4) != Some([0xd0, 0x0d, 0xfe, 0xed].as_slice()) {
        return Err(error!(
            "rpi4-boot: {} is not a flattened device tree",
            path.display()
        ));
    }
    Ok(())
}
