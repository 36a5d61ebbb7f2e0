// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The Raspberry Pi 4 in QEMU: QEMU 10's `raspi4b` machine with Debian's
//! `bcm2711-rpi-4-b.dtb`.
//!
//! [`qemu`] is the one place that finds a QEMU with a `raspi4b` machine;
//! until the project's set-up installs QEMU 10 (issue 9), it takes the
//! set-up's QEMU if that has the machine, else the one
//! `BULKHEAD_RASPI4B_QEMU` names (`qemu-system-aarch64` of QEMU 10, e.g.
//! unpacked from bookworm-backports as `../shared/reference/boards.md`
//! shows), else it fails with the reason: a Pi test never passes without
//! running.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::qemu::Machine;
use crate::setup::Tools;
use crate::system::Platform;
use crate::{Result, error};

/// The platform's name (its folder under `platforms/`).
pub(crate) const PLATFORM: &str = "rpi4";

/// The environment variable naming a QEMU with a `raspi4b` machine.
const QEMU_VARIABLE: &str = "BULKHEAD_RASPI4B_QEMU";

/// Whether `qemu` lists a `raspi4b` machine.
fn has_raspi4b(qemu: &std::path::Path, modules: Option<&std::path::Path>) -> bool {
    let mut command = Command::new(qemu);
    if let Some(modules) = modules {
        command.env("QEMU_MODULE_DIR", modules);
    }
    command
        .args(["-M", "help"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|line| line.split_whitespace().next() == Some("raspi4b"))
        })
}

/// A QEMU with a `raspi4b` machine, and the module folder to give it
/// (`None`: the set-up's QEMU, used as it is).
pub(crate) fn qemu(tools: &Tools) -> Result<Option<(PathBuf, PathBuf)>> {
    if has_raspi4b(&tools.qemu, None) {
        return Ok(None);
    }
    let Some(given) = std::env::var_os(QEMU_VARIABLE).map(PathBuf::from) else {
        return Err(error!(
            "{} has no `raspi4b` machine (QEMU 10 has it) and {QEMU_VARIABLE} is not set: \
             set it to a QEMU 10 qemu-system-aarch64 (see ../shared/reference/boards.md)",
            tools.qemu.display()
        ));
    };
    // An empty module folder: QEMU 10 would otherwise load the system
    // QEMU's modules, which are another version's.
    let modules = crate::root().join("target/qemu-raspi4b-modules");
    std::fs::create_dir_all(&modules)
        .map_err(|e| error!("cannot create {}: {e}", modules.display()))?;
    if !has_raspi4b(&given, Some(&modules)) {
        return Err(error!(
            "{QEMU_VARIABLE}={} lists no `raspi4b` machine",
            given.display()
        ));
    }
    Ok(Some((given, modules)))
}

/// Debian's `bcm2711-rpi-4-b.dtb`, from the guest files' cache (fetched
/// from Debian's archive the first time).
pub(crate) fn dtb() -> Result<PathBuf> {
    let assets = crate::guests::ensure(crate::debian::Resolve::Cached)?;
    Ok(assets.dtbs.join(crate::guests::RPI4_DTB))
}

/// QEMU's `raspi4b` with Debian's device tree, booting `kernel`.
pub(crate) fn machine<'p>(
    tools: &Tools,
    platform: &'p Platform,
    kernel: PathBuf,
) -> Result<Machine<'p>> {
    Ok(Machine {
        smp: 4,
        kernel: Some(kernel),
        dtb: Some(dtb()?),
        qemu: qemu(tools)?,
        ..Machine::default_for(platform)
    })
}
