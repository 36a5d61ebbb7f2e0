// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Making sure what the build and the tests need is installed.
//!
//! - The bare-metal Rust target: `rustup target add aarch64-unknown-none-softfloat` (the
//!   target is deliberately not in rust-toolchain.toml: see docs/building.md).
//!   If rustup cannot install it, Debian's `rustc-web`, `cargo-web` and
//!   `rust-web-src` build the kernel with `RUSTC_BOOTSTRAP=1` and
//!   `-Zbuild-std`, linking with the host toolchain's `rust-lld` or Debian's
//!   `lld`.
//! - QEMU 10.0: `qemu-system-aarch64` of Debian's `qemu-system-arm` from
//!   bookworm-backports, for the host's architecture, fetched through
//!   [`crate::debian`] into `target/qemu/` (no root, the host's QEMU left
//!   alone and never used: bookworm's 7.2 has no `raspi4b`). The shared
//!   libraries it needs are the host packages its `Depends` names (every one
//!   in bookworm); those missing are installed with apt-get as root, or the
//!   exact command is printed and the command stops.
//! - For the tests, U-Boot: `usr/lib/u-boot/qemu_arm64/u-boot.bin` of
//!   Debian's `u-boot-qemu` (architecture `all`), fetched through
//!   [`crate::debian`] into `target/u-boot/`, which needs neither root nor a
//!   host install. If it cannot be fetched and the host has `u-boot-qemu`
//!   installed, the host's copy is used.
//! - For the SD card test, [`CARD_TOOLS`] (mtools, dosfstools, fdisk,
//!   u-boot-tools), installed with apt-get as root like QEMU.
//!
//! When everything is present this takes about a quarter of a second: one
//! `rustc --print sysroot`, one `dpkg-query`, reading QEMU's cache entry and
//! hashing its 34 MB binary (and, for U-Boot, the same for one 1 MB file).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::debian::{self, Archive, Fetched, HOST_ARCHITECTURE, Package, Recipe, Resolve};
use crate::debian::{Source, Sources};
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
    /// `qemu-system-aarch64` (QEMU 10.0, from `target/qemu/`); run it with
    /// [`Tools::qemu_command`].
    pub(crate) qemu: PathBuf,
    /// An empty folder for `QEMU_MODULE_DIR`.
    pub(crate) qemu_modules: PathBuf,
    /// The Debian version of `qemu-system-arm` it came from.
    pub(crate) qemu_version: String,
    /// U-Boot for QEMU, if asked for.
    pub(crate) uboot: Option<PathBuf>,
}

/// What a command needs beyond the toolchain and QEMU.
pub(crate) struct Needs {
    /// U-Boot, for the boot-loader test.
    pub(crate) uboot: bool,
}

impl Tools {
    /// A command that runs QEMU. QEMU looks for loadable modules in
    /// `QEMU_MODULE_DIR` first, here an empty folder: the host's
    /// `/usr/lib/x86_64-linux-gnu/qemu/` holds modules of the host's own QEMU
    /// (7.2 on bookworm), which QEMU 10 refuses with a complaint. (It still
    /// looks there after the empty folder: what keeps it from wanting any
    /// module is `-nographic -audio none`, [`crate::qemu`].)
    pub(crate) fn qemu_command(&self) -> Command {
        let mut command = Command::new(&self.qemu);
        command.env("QEMU_MODULE_DIR", &self.qemu_modules);
        command
    }

    /// `QEMU 10.0.2 (Debian qemu-system-arm 1:10.0.2+ds-2+deb13u1~bpo12+1,
    /// bookworm-backports)`.
    pub(crate) fn describe_qemu(&self) -> String {
        format!(
            "QEMU {} (Debian {QEMU_PACKAGE} {}, {})",
            upstream_version(&self.qemu_version),
            self.qemu_version,
            QEMU_SOURCES
                .lines
                .iter()
                .map(|l| l.suite)
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// Makes sure everything in `needs` is installed, installing what is missing.
pub(crate) fn ensure(needs: Needs) -> Result<Tools> {
    let qemu = debian::ensure(&Qemu, Resolve::Cached)?;
    let libraries = std::fs::read_to_string(qemu.dir.join("host-packages"))?;
    let libraries: Vec<Vec<&str>> = libraries
        .lines()
        .map(|line| line.split_whitespace().collect())
        .filter(|alternatives: &Vec<&str>| !alternatives.is_empty())
        .collect();
    install_dependencies(&libraries)
        .map_err(|e| error!("{e}\n(the shared libraries QEMU 10 needs, from its Depends)"))?;
    let qemu_modules = qemu.dir.join("no-modules");
    std::fs::create_dir_all(&qemu_modules)?;
    let qemu_version = qemu
        .package(QEMU_PACKAGE)
        .map(|p| p.version.clone())
        .unwrap_or_default();
    let uboot = if needs.uboot { Some(uboot()?) } else { None };
    Ok(Tools {
        toolchain: toolchain()?,
        qemu: qemu.dir.join("qemu-system-aarch64"),
        qemu_modules,
        qemu_version,
        uboot,
    })
}

/// The package QEMU for arm64 comes from.
const QEMU_PACKAGE: &str = "qemu-system-arm";

/// QEMU 10.0: Debian 13's, built for Debian 12 (bookworm-backports), for the
/// host's architecture.
const QEMU_SOURCES: Sources = Sources {
    state: "apt-host-backports",
    architecture: HOST_ARCHITECTURE,
    lines: &[Source {
        uri: "http://deb.debian.org/debian",
        suite: "bookworm-backports",
        components: "main",
    }],
};

/// The recipe: `qemu-system-arm` in; its `qemu-system-aarch64`, and the host
/// packages its `Depends` names (its shared libraries, each line a package
/// and its alternatives), out.
struct Qemu;

impl Recipe for Qemu {
    fn name(&self) -> &str {
        "qemu"
    }

    fn revision(&self) -> String {
        "/usr/bin/qemu-system-aarch64 as is; host-packages from Depends without qemu-*".into()
    }

    fn outputs(&self) -> &[&str] {
        &["qemu-system-aarch64", "host-packages"]
    }

    fn offline_hint(&self) -> String {
        "qemu: QEMU 10.0 (qemu-system-arm from Debian's bookworm-backports) is fetched the \
         first time, then runs from target/qemu/ with no network. No other QEMU is used in \
         its place: connect this machine to deb.debian.org once, or copy target/qemu/ from \
         a machine that has it"
            .to_string()
    }

    fn sources(&self) -> Sources {
        QEMU_SOURCES
    }

    fn resolve(&self, archive: &Archive) -> Result<Vec<Package>> {
        Ok(vec![archive.package(QEMU_PACKAGE, HOST_ARCHITECTURE)?])
    }

    fn build(&self, fetched: &[Fetched], work: &Path, out: &Path) -> Result<()> {
        let [package] = fetched else {
            return Err(error!("qemu: expected one package, got {}", fetched.len()));
        };
        let member = "./usr/bin/qemu-system-aarch64";
        debian::extract(&package.deb, work, &[member])?;
        std::fs::rename(work.join(member), out.join("qemu-system-aarch64"))?;
        let depends = debian::control_field(&package.deb, "Depends")?;
        std::fs::write(out.join("host-packages"), host_packages(&depends))?;
        std::fs::create_dir_all(out.join("no-modules"))?;
        Ok(())
    }
}

/// The upstream part of a Debian version: `1:10.0.2+ds-2~bpo12+1` gives
/// `10.0.2`.
fn upstream_version(debian: &str) -> &str {
    let without_epoch = debian.split_once(':').map_or(debian, |(_, rest)| rest);
    without_epoch
        .split(['+', '-', '~'])
        .next()
        .unwrap_or(without_epoch)
}

/// The host packages of a `Depends` field, one item a line (its alternatives
/// separated by spaces), without version constraints or architecture
/// qualifiers, leaving out QEMU's own packages: `qemu-system-common` and
/// `qemu-system-data` hold helpers, ROMs and keymaps that a machine with
/// `-nographic -nic none -audio none` does not load.
fn host_packages(depends: &str) -> String {
    let mut text = String::new();
    for item in depends.split(',') {
        let alternatives: Vec<String> = debian::dependencies(item)
            .into_iter()
            .filter(|name| !name.starts_with("qemu-"))
            .collect();
        if !alternatives.is_empty() {
            text.push_str(&alternatives.join(" "));
            text.push('\n');
        }
    }
    text
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

/// Installs, for each item of `dependencies` (a package and its
/// alternatives) none of which is installed, its first package. Asks
/// `dpkg-query` once.
fn install_dependencies(dependencies: &[Vec<&str>]) -> Result<()> {
    let names: Vec<&str> = dependencies.iter().flatten().copied().collect();
    let installed = installed_packages(&names);
    let missing: Vec<&str> = dependencies
        .iter()
        .filter(|item| !item.iter().any(|name| installed.contains(*name)))
        .filter_map(|item| item.first().copied())
        .collect();
    install_packages(&missing)
}

/// Which of `names` are installed, with one `dpkg-query`.
fn installed_packages(names: &[&str]) -> std::collections::BTreeSet<String> {
    if names.is_empty() {
        return std::collections::BTreeSet::new();
    }
    Command::new("dpkg-query")
        .args(["-W", "-f=${Package} ${Status}\\n", "--"])
        .args(names)
        .stderr(Stdio::null())
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| l.ends_with(" install ok installed"))
                .filter_map(|l| l.split_whitespace().next())
                .map(|name| name.split(':').next().unwrap_or(name).to_string())
                .collect()
        })
        .unwrap_or_default()
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

#[cfg(test)]
mod tests {
    use super::{host_packages, upstream_version};

    #[test]
    fn qemu_versions() {
        assert_eq!(upstream_version("1:10.0.2+ds-2+deb13u1~bpo12+1"), "10.0.2");
        assert_eq!(upstream_version("1:7.2+dfsg-7+deb12u18+b2"), "7.2");
        assert_eq!(upstream_version("2023.01"), "2023.01");
    }

    #[test]
    fn qemu_host_packages() {
        let depends = "libaio1 (>= 0.3.93), libc6 (>= 2.34), libfdt1 (>= 1.6.1), \
            qemu-system-common (= 1:10.0.2+ds-2+deb13u1~bpo12+1), \
            qemu-system-data (>> 1:10.0.2+ds~), libjpeg62-turbo | libjpeg8:any (>= 8)";
        assert_eq!(
            host_packages(depends),
            "libaio1\nlibc6\nlibfdt1\nlibjpeg62-turbo libjpeg8\n"
        );
        assert_eq!(host_packages(""), "");
    }
}
