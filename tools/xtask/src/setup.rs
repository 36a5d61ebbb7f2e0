// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Making sure what the build and the tests need is installed.
//!
//! - The bare-metal Rust target: `rustup target add aarch64-unknown-none-softfloat` (the
//!   target is deliberately not in rust-toolchain.toml: see docs/building.md).
//!   If rustup cannot install it, Debian's `rustc-web`, `cargo-web` and
//!   `rust-web-src` build the kernel with `RUSTC_BOOTSTRAP=1` and
//!   `-Zbuild-std`, linking with the host toolchain's `rust-lld` or Debian's
//!   `lld`.
//! - QEMU (`qemu-system-arm`), from Debian. As root it is installed with
//!   apt-get; otherwise the exact command is printed and the command stops.
//! - For the tests, U-Boot: `usr/lib/u-boot/qemu_arm64/u-boot.bin` of
//!   Debian's `u-boot-qemu` (architecture `all`), fetched through
//!   [`crate::debian`] into `target/u-boot/`, which needs neither root nor a
//!   host install. If it cannot be fetched and the host has `u-boot-qemu`
//!   installed, the host's copy is used.
//! - For the SD card test, [`CARD_TOOLS`] (mtools, dosfstools, fdisk,
//!   u-boot-tools), installed with apt-get as root like QEMU.
//!
//! When everything is present this takes a few tens of milliseconds: one
//! `rustc --print sysroot` and one `dpkg-query` (and, for U-Boot, reading its
//! cache entry and hashing one 1 MB file).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::debian::{self, Archive, Fetched, Package, Recipe, Resolve};
use crate::{Result, error};

/// The bare-metal target the kernel is built for.
/// The kernel and services are built without floating point: the FP/SIMD
/// registers belong to partitions, and a kernel that never touches them need
/// not save them on every trap (docs/building.md).
pub(crate) const TARGET: &str = "aarch64-unknown-none-softfloat";

/// Where Debian's u-boot-qemu puts the 64-bit QEMU build (in the package,
/// and on a host that has it installed).
pub(crate) const UBOOT_BIN: &str = "/usr/lib/u-boot/qemu_arm64/u-boot.bin";

/// How the kernel is compiled.
#[derive(Clone, Debug)]
pub(crate) enum Toolchain {
    /// The rustup toolchain with its bare-metal target.
    Rustup,
    /// Debian's rustc-web building core and alloc from source.
    Debian {
        /// The linker: rust-lld from the host toolchain, or Debian's ld.lld.
        linker: PathBuf,
    },
}

/// What is installed.
#[derive(Clone, Debug)]
pub(crate) struct Tools {
    /// How to build the kernel.
    pub(crate) toolchain: Toolchain,
    /// `qemu-system-aarch64`.
    pub(crate) qemu: PathBuf,
    /// U-Boot for QEMU, if asked for.
    pub(crate) uboot: Option<PathBuf>,
}

/// What a command needs beyond the toolchain and QEMU.
pub(crate) struct Needs {
    /// U-Boot, for the boot-loader test.
    pub(crate) uboot: bool,
}

/// Makes sure everything in `needs` is installed, installing what is missing.
pub(crate) fn ensure(needs: Needs) -> Result<Tools> {
    install_packages(&["qemu-system-arm"])?;
    let qemu = which("qemu-system-aarch64").ok_or_else(|| {
        error!("qemu-system-arm is installed but qemu-system-aarch64 is not on PATH")
    })?;
    let uboot = if needs.uboot { Some(uboot()?) } else { None };
    Ok(Tools {
        toolchain: toolchain()?,
        qemu,
        uboot,
    })
}

/// U-Boot for QEMU's arm64 `virt` machine, from the cache (fetched from
/// Debian if it is not there), or the host's copy if fetching fails.
fn uboot() -> Result<PathBuf> {
    match debian::ensure(&UBoot, Resolve::Cached) {
        Ok(entry) => Ok(entry.dir.join("u-boot.bin")),
        Err(e) if Path::new(UBOOT_BIN).is_file() => {
            eprintln!("{e}\nu-boot: using the host's {UBOOT_BIN} instead");
            Ok(PathBuf::from(UBOOT_BIN))
        }
        Err(e) => Err(e),
    }
}

/// The recipe: `u-boot-qemu` in, its arm64 `u-boot.bin` out.
struct UBoot;

impl Recipe for UBoot {
    fn name(&self) -> &str {
        "u-boot"
    }

    fn revision(&self) -> String {
        format!("{UBOOT_BIN} as is")
    }

    fn outputs(&self) -> &[&str] {
        &["u-boot.bin"]
    }

    fn offline_hint(&self) -> String {
        "u-boot: U-Boot (for the test system::u-boot-booti) comes from Debian's archive the \
         first time, then from target/u-boot/ with no network; or install the host package: \
         apt-get install u-boot-qemu"
            .to_string()
    }

    fn resolve(&self, archive: &Archive) -> Result<Vec<Package>> {
        Ok(vec![archive.package("u-boot-qemu", "all")?])
    }

    fn build(&self, fetched: &[Fetched], work: &Path, out: &Path) -> Result<()> {
        let [package] = fetched else {
            return Err(error!(
                "u-boot: expected one package, got {}",
                fetched.len()
            ));
        };
        let member = format!(".{UBOOT_BIN}");
        debian::extract(&package.deb, work, &[&member])?;
        std::fs::rename(work.join(&member), out.join("u-boot.bin"))?;
        Ok(())
    }
}

fn toolchain() -> Result<Toolchain> {
    let forced = std::env::var("BULKHEAD_TOOLCHAIN").ok();
    match forced.as_deref() {
        None | Some("") | Some("rustup") => {
            if rustup_target_installed() {
                return Ok(Toolchain::Rustup);
            }
            eprintln!("setup: adding the {TARGET} target: rustup target add {TARGET}");
            let added = Command::new("rustup")
                .args(["target", "add", TARGET])
                .current_dir(crate::root())
                .status()
                .is_ok_and(|s| s.success());
            if added && rustup_target_installed() {
                return Ok(Toolchain::Rustup);
            }
            if forced.as_deref() == Some("rustup") {
                return Err(error!(
                    "rustup could not install {TARGET}, and BULKHEAD_TOOLCHAIN=rustup forbids the Debian fallback"
                ));
            }
            eprintln!(
                "setup: rustup could not install {TARGET}; falling back to Debian's rustc-web with -Zbuild-std"
            );
            debian_toolchain()
        }
        Some("debian") => debian_toolchain(),
        Some(other) => Err(error!(
            "BULKHEAD_TOOLCHAIN must be `rustup` or `debian`, not `{other}`"
        )),
    }
}

/// Whether the active rustup toolchain has the bare-metal target's library.
fn rustup_target_installed() -> bool {
    let Ok(out) = Command::new("rustc")
        .args(["--print", "sysroot"])
        .current_dir(crate::root())
        .output()
    else {
        return false;
    };
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
    out.status.success()
        && Path::new(&sysroot)
            .join("lib/rustlib")
            .join(TARGET)
            .join("lib")
            .is_dir()
}

fn debian_toolchain() -> Result<Toolchain> {
    install_packages(&["rustc-web", "cargo-web", "rust-web-src"])?;
    if let Some(lld) = host_rust_lld() {
        return Ok(Toolchain::Debian { linker: lld });
    }
    install_packages(&["lld"])?;
    let lld = which("ld.lld")
        .ok_or_else(|| error!("Debian's lld is installed but ld.lld is not on PATH"))?;
    Ok(Toolchain::Debian { linker: lld })
}

/// The rust-lld that ships with the rustup host toolchain, if it runs.
fn host_rust_lld() -> Option<PathBuf> {
    let out = Command::new("rustc")
        .args(["--print", "sysroot"])
        .current_dir(crate::root())
        .output()
        .ok()?;
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let host = Command::new("rustc")
        .args(["--print", "host-tuple"])
        .output()
        .ok()?;
    let host = String::from_utf8_lossy(&host.stdout).trim().to_string();
    let lld = Path::new(&sysroot)
        .join("lib/rustlib")
        .join(host)
        .join("bin/rust-lld");
    let runs = Command::new(&lld)
        .arg("-flavor")
        .arg("gnu")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    runs.is_ok_and(|s| s.success()).then_some(lld)
}

/// The host tools the SD card test checks a card with, none of them built on
/// the crates that write it: mtools (`mdir`, `mcopy`), dosfstools
/// (`fsck.fat`), fdisk (`sfdisk`) and u-boot-tools (`dumpimage`).
pub(crate) const CARD_TOOLS: [&str; 4] = ["mtools", "dosfstools", "fdisk", "u-boot-tools"];

/// Installs [`CARD_TOOLS`] if they are missing (as root; otherwise the error
/// gives the command).
pub(crate) fn ensure_card_tools() -> Result<()> {
    install_packages(&CARD_TOOLS)
}

/// Installs the Debian packages in `names` that are not installed yet.
fn install_packages(names: &[&str]) -> Result<()> {
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !package_installed(n))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing.join(" ");
    if !is_root() {
        return Err(error!(
            "missing Debian packages: {list}. Install them with:\n    sudo apt-get update && sudo apt-get install -y --no-install-recommends {list}"
        ));
    }
    eprintln!("setup: installing {list} with apt-get");
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    if install() {
        return Ok(());
    }
    // Package lists may be missing or stale on a fresh machine.
    eprintln!("setup: apt-get install failed; running apt-get update and trying again");
    let updated = Command::new("apt-get")
        .args(["update", "-q"])
        .status()
        .is_ok_and(|s| s.success());
    if updated && install() && missing.iter().all(|n| package_installed(n)) {
        return Ok(());
    }
    Err(error!(
        "could not install {list} with apt-get (see its output above)"
    ))
}

fn package_installed(name: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", name])
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| {
            o.status.success()
                && String::from_utf8_lossy(&o.stdout).ends_with("install ok installed")
        })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The first `name` on PATH.
pub(crate) fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}
