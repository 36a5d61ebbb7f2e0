// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The Raspberry Pi 4 in QEMU: QEMU 10's `raspi4b` machine with Debian's
//! `bcm2711-rpi-4-b.dtb`.
//!
//! The QEMU is the set-up's (QEMU 10.0 from bookworm-backports, which has
//! the machine; `crate::setup`).

use std::path::PathBuf;

use crate::Result;
use crate::qemu::Machine;
use crate::system::Platform;

/// The platform's name (its folder under `platforms/`).
pub(crate) const PLATFORM: &str = "rpi4";

/// Debian's `bcm2711-rpi-4-b.dtb`, from the guest files' cache (fetched
/// from Debian's archive the first time).
pub(crate) fn dtb() -> Result<PathBuf> {
    let assets = crate::guests::ensure(crate::debian::Resolve::Cached)?;
    Ok(assets.dtbs.join(crate::guests::RPI4_DTB))
}

/// QEMU's `raspi4b` with Debian's device tree, booting `kernel`.
pub(crate) fn machine(platform: &Platform, kernel: PathBuf) -> Result<Machine<'_>> {
    Ok(Machine {
        smp: 4,
        kernel: Some(kernel),
        dtb: Some(dtb()?),
        ..Machine::default_for(platform)
    })
}
