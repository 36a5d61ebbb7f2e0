// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Building the bootable image: the kernel ELF, flattened into an arm64 Image.
//!
//! Cargo links the kernel as an ELF position-independent executable at
//! address 0. The image is that ELF's loadable segments laid out as they sit
//! in memory, starting with the Linux arm64 Image header that `boot.S` writes,
//! so QEMU's `-kernel` and U-Boot's `booti` load it as is. The header is
//! checked after flattening: a wrong magic or an `image_size` smaller than the
//! loaded size (which would let a loader put the device tree on top of .bss)
//! fails the build.

use std::path::{Path, PathBuf};
use std::process::Command;

use hv_core::elf::Elf;

use crate::setup::{TARGET, Toolchain, Tools};
use crate::system::{Platform, System, output_dir};
use crate::{Result, error};

/// Which kernel to build.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Variant {
    /// Optimised (the default) or not.
    pub(crate) release: bool,
    /// With the `fault-injection` feature, for the tests that make the kernel fail.
    pub(crate) fault_injection: bool,
    /// With the `lock-count` feature, for the bench's shared-lock figures.
    pub(crate) lock_count: bool,
}

impl Variant {
    /// The plain kernel, optimised or not: no feature.
    pub(crate) const fn plain(release: bool) -> Self {
        Self {
            release,
            fault_injection: false,
            lock_count: false,
        }
    }

    /// The kernel feature this variant builds with, if any: also the suffix
    /// of its build folder and its images' names.
    fn feature(self) -> Option<&'static str> {
        if self.fault_injection {
            Some("fault-injection")
        } else if self.lock_count {
            Some("lock-count")
        } else {
            None
        }
    }

    /// `-<feature>` (if any) and `-debug` (unless optimised): what an image
    /// of this variant adds to its name.
    fn suffix(self) -> String {
        let mut suffix = self.feature().map(|f| format!("-{f}")).unwrap_or_default();
        if !self.release {
            suffix.push_str("-debug");
        }
        suffix
    }
}

/// A `cargo` command for the bare-metal target with `toolchain`, building into
/// `target/<folder>` (with `-debian` appended on the fallback toolchain).
pub(crate) fn cargo(tools: &Tools, subcommand: &str, folder: &str) -> (Command, PathBuf) {
    let (mut command, folder) = match &tools.toolchain {
        Toolchain::Rustup => {
            let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
            c.arg(subcommand);
            (c, folder.to_string())
        }
        Toolchain::Debian { linker } => {
            let mut c = Command::new("/usr/bin/cargo");
            c.arg(subcommand)
                .args([
                    "-Zbuild-std=core,alloc,compiler_builtins",
                    "-Zbuild-std-features=compiler-builtins-mem",
                ])
                .env("RUSTC", "/usr/bin/rustc")
                .env("RUSTC_BOOTSTRAP", "1")
                .env(
                    format!(
                        "CARGO_TARGET_{}_LINKER",
                        TARGET.to_uppercase().replace('-', "_")
                    ),
                    linker,
                )
                .env_remove("RUSTUP_TOOLCHAIN")
                .env_remove("RUSTC_WRAPPER");
            (c, format!("{folder}-debian"))
        }
    };
    let target_dir = crate::root().join("target").join(folder);
    command
        .current_dir(crate::root())
        .args(["--target", TARGET])
        .arg("--target-dir")
        .arg(&target_dir);
    (command, target_dir.join(TARGET))
}

pub(crate) fn run_cargo(mut command: Command, what: &str) -> Result<()> {
    let status = command
        .status()
        .map_err(|e| error!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(error!("building {what} failed (see cargo's output above)"))
    }
}

/// Builds the kernel for `platform` and returns its image, without a boot package.
pub(crate) fn build_kernel(
    tools: &Tools,
    platform: &Platform,
    variant: Variant,
) -> Result<Vec<u8>> {
    let (mut cargo, _) = cargo(tools, "build", &kernel_folder(variant));
    cargo.args(["--package", &platform.package, "--bin", &platform.binary]);
    if variant.release {
        cargo.arg("--release");
    }
    if let Some(feature) = variant.feature() {
        cargo.args(["--features", feature]);
    }
    run_cargo(cargo, "the kernel")?;
    let elf_path = kernel_elf(tools, platform, variant);
    let elf =
        std::fs::read(&elf_path).map_err(|e| error!("cannot read {}: {e}", elf_path.display()))?;
    flatten(&elf).map_err(|e| error!("{}: {e}", elf_path.display()))
}

/// Where [`build_kernel`] leaves the kernel's ELF file (linked at 0, with
/// its symbols) before flattening it: for tests that need a symbol's offset.
pub(crate) fn kernel_elf(tools: &Tools, platform: &Platform, variant: Variant) -> PathBuf {
    let (_, out) = cargo(tools, "build", &kernel_folder(variant));
    out.join(profile(variant)).join(&platform.binary)
}

fn kernel_folder(variant: Variant) -> String {
    variant
        .feature()
        .map_or_else(|| "kernel".to_owned(), |f| format!("kernel-{f}"))
}

fn profile(variant: Variant) -> &'static str {
    if variant.release { "release" } else { "debug" }
}

/// Builds the program `name` (package `svc-<name>`, binary `<name>`, linked
/// with `services/rt/link.x`) and returns its ELF file. Its crate is
/// `services/<name>` or `tests/partitions/<name>`
/// ([`hv_manifest::PROGRAM_FOLDERS`]); both are workspace members, so cargo
/// finds it by its package name in either.
pub(crate) fn build_program(
    tools: &Tools,
    name: &str,
    variant: Variant,
    environment: &[(String, String)],
) -> Result<Vec<u8>> {
    let (mut cargo, out) = cargo(tools, "rustc", "services");
    cargo.envs(environment.iter().map(|(k, v)| (k, v)));
    cargo.args(["--package", &format!("svc-{name}"), "--bin", name]);
    if variant.release {
        cargo.arg("--release");
    }
    cargo.arg("--").arg(format!(
        "-Clink-arg=-T{}",
        crate::root().join("services/rt/link.x").display()
    ));
    run_cargo(cargo, &format!("the program `{name}`"))?;
    let path = out.join(profile(variant)).join(name);
    std::fs::read(&path).map_err(|e| error!("cannot read {}: {e}", path.display()))
}

/// Builds the kernel for `platform` and writes its image (no boot package) to
/// `target/bulkhead/`; returns the path.
pub(crate) fn build(tools: &Tools, platform: &Platform, variant: Variant) -> Result<PathBuf> {
    let image = build_kernel(tools, platform, variant)?;
    let name = format!("{}{}", platform.binary, variant.suffix());
    let out = output_dir().join(format!("{name}.img"));
    write_atomically(&out, &image)?;
    Ok(out)
}

/// Builds a whole system: the kernel, every program its manifest names (each
/// with its capability slots in its environment), the boot package, and the
/// image with the package appended. Returns the image's path,
/// `target/bulkhead/<system>.img`.
pub(crate) fn build_system(tools: &Tools, system: &System, variant: Variant) -> Result<PathBuf> {
    let kernel = build_kernel(tools, &system.platform, variant)?;
    let mut programs = Vec::new();
    for (index, name) in system.compiled.programs.iter().enumerate() {
        let environment = system.program_environment(index)?;
        programs.push(build_program(tools, name, variant, &environment)?);
    }
    let programs: Vec<&[u8]> = programs.iter().map(Vec::as_slice).collect();
    // Guests' kernels and initramfs, as the manifest was compiled with them.
    let mut files = Vec::new();
    for path in &system.compiled.files {
        files.push(std::fs::read(path).map_err(|e| error!("cannot read {}: {e}", path.display()))?);
    }
    let files: Vec<&[u8]> = files.iter().map(Vec::as_slice).collect();
    let package = system
        .compiled
        .package(&programs, &files)
        .map_err(|e| error!("cannot pack system `{}`: {e}", system.name))?;
    let image = append_package(&kernel, &package).map_err(|e| error!("{e}"))?;
    let mut name = system.name.clone();
    // The same system built for another board: an image of its own.
    if system.platform.name != "qemu-virt" {
        name = format!("{name}-{}", system.platform.name);
    }
    name.push_str(&variant.suffix());
    let out = output_dir().join(format!("{name}.img"));
    write_atomically(&out, &image)?;
    Ok(out)
}

/// Appends a boot package to a kernel image: the package starts where the
/// kernel's .bss ends (the header's image_size), and the header's image_size
/// grows to cover it, so loaders keep their hands off it and the kernel finds
/// it at `__image_end`.
pub(crate) fn append_package(
    kernel: &[u8],
    package: &[u8],
) -> std::result::Result<Vec<u8>, String> {
    let kernel_size = kernel
        .get(16..24)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .ok_or("no image header")?;
    let kernel_size = usize::try_from(kernel_size).map_err(|e| e.to_string())?;
    if kernel_size < kernel.len() || kernel_size % 4096 != 0 {
        return Err(format!(
            "the kernel's image_size {kernel_size:#x} is not a page multiple covering its file"
        ));
    }
    let mut image = kernel.to_vec();
    image.resize(kernel_size, 0);
    image.extend_from_slice(package);
    image.resize(image.len().next_multiple_of(4096), 0);
    let total = image.len() as u64;
    image[16..24].copy_from_slice(&total.to_le_bytes());
    Ok(image)
}

/// Writes `bytes` to `path` through a temporary file and a rename, so that a
/// failure never leaves a half-written image behind.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| error!("{} has no parent folder", path.display()))?;
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, bytes).map_err(|e| error!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .map_err(|e| error!("cannot rename {} into place: {e}", tmp.display()))?;
    Ok(())
}

/// The arm64 Image header's magic, at offset 56.
const IMAGE_MAGIC: &[u8; 4] = b"ARM\x64";

/// Lays out an ELF64 AArch64 executable's loadable segments as a flat image
/// starting at address 0, and checks the arm64 Image header at its start.
pub(crate) fn flatten(file: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let elf = Elf::parse(file).map_err(|e| e.to_string())?;
    let (low, memory_end) = elf
        .memory_span()
        .ok_or("the kernel has no loadable segments")?;
    if low != 0 {
        return Err("the kernel must be linked at address 0 (see link.x)".into());
    }
    let file_end = elf
        .segments()
        .map(|s| s.address + s.data.len() as u64)
        .max()
        .unwrap_or(0);
    let mut image = vec![0u8; usize::try_from(file_end).map_err(|e| e.to_string())?];
    for segment in elf.segments() {
        let at = segment.address as usize;
        image[at..at + segment.data.len()].copy_from_slice(segment.data);
    }
    if image.get(56..60) != Some(IMAGE_MAGIC) {
        return Err(
            "the image does not start with an arm64 Image header (magic at offset 56)".into(),
        );
    }
    let image_size = image
        .get(16..24)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_le_bytes);
    if image_size < memory_end {
        return Err(format!(
            "the Image header says image_size {image_size:#x}, but the kernel occupies {memory_end:#x} bytes once loaded"
        ));
    }
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::flatten;

    /// A minimal ELF with one PT_LOAD segment holding `payload` at `vaddr`.
    fn elf(vaddr: u64, payload: &[u8], memsz: u64) -> Vec<u8> {
        let mut e = vec![0u8; 64 + 56];
        e[..6].copy_from_slice(b"\x7fELF\x02\x01");
        e[18..20].copy_from_slice(&183u16.to_le_bytes());
        e[32..40].copy_from_slice(&64u64.to_le_bytes());
        e[54..56].copy_from_slice(&56u16.to_le_bytes());
        e[56..58].copy_from_slice(&1u16.to_le_bytes());
        let ph = 64;
        e[ph..ph + 4].copy_from_slice(&1u32.to_le_bytes());
        e[ph + 8..ph + 16].copy_from_slice(&120u64.to_le_bytes());
        e[ph + 16..ph + 24].copy_from_slice(&vaddr.to_le_bytes());
        e[ph + 32..ph + 40].copy_from_slice(&(payload.len() as u64).to_le_bytes());
        e[ph + 40..ph + 48].copy_from_slice(&memsz.to_le_bytes());
        e.extend_from_slice(payload);
        e
    }

    fn header(image_size: u64) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[16..24].copy_from_slice(&image_size.to_le_bytes());
        h[56..60].copy_from_slice(b"ARM\x64");
        h
    }

    #[test]
    fn a_good_kernel_flattens() {
        let image = flatten(&elf(0, &header(0x1000), 0x1000)).unwrap();
        assert_eq!(image.len(), 64);
    }

    #[test]
    fn a_header_that_hides_bss_is_refused() {
        let e = flatten(&elf(0, &header(0x100), 0x1000)).unwrap_err();
        assert!(e.contains("image_size 0x100"), "{e}");
    }

    #[test]
    fn other_files_are_refused() {
        assert!(
            flatten(b"#!/bin/sh\n")
                .unwrap_err()
                .contains("not a 64-bit")
        );
        let mut no_magic = header(0x1000);
        no_magic[56] = 0;
        assert!(
            flatten(&elf(0, &no_magic, 0x1000))
                .unwrap_err()
                .contains("arm64 Image header")
        );
        assert!(
            flatten(&elf(0x1000, &header(0x1000), 0x1000))
                .unwrap_err()
                .contains("address 0")
        );
        let mut cut = elf(0, &header(0x1000), 0x1000);
        cut.truncate(100);
        assert!(flatten(&cut).unwrap_err().contains("truncated"));
    }
}
