// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Guest programs: the project's own bare-metal guests, `guests/<name>`
//! (package `guest-<name>`, binary `<name>`), which a virtual machine boots
//! with `kernel = "guest:<name>"` in its manifest.
//!
//! Before a manifest is compiled ([`crate::system::System::load_with`]),
//! [`build_named`] finds the guest programs it names, builds each for the
//! bare-metal target (in release, whatever the kernel's variant: a test
//! guest's timings should not depend on it) with the same toolchain
//! handling as the kernel ([`crate::image`]), flattens the ELF into an arm64
//! `Image` (checking its header) and writes it to
//! `target/bulkhead/guests/<name>.img`; the compiler gets each one's path
//! through `hv_manifest::Environment::with_guest_program`. A name with no
//! `guests/<name>/` is left to the compiler, which reports it with the
//! names it knows.

use std::path::{Path, PathBuf};

use crate::image;
use crate::setup::{self, Tools};
use crate::system::output_dir;
use crate::{Result, error};

/// What a `kernel` that names a guest program starts with.
const PREFIX: &str = "guest:";

/// The guest programs the manifest text names: every `kernel =
/// "guest:<name>"` of a virtual machine, once each, in order. Text that does
/// not parse names none (the compiler reports it).
fn named_in(text: &str) -> Vec<String> {
    let Ok(document) = text.parse::<toml::Table>() else {
        return Vec::new();
    };
    let Some(partitions) = document.get("partitions").and_then(|p| p.as_table()) else {
        return Vec::new();
    };
    let mut names: Vec<String> = Vec::new();
    for partition in partitions.values().filter_map(|p| p.as_table()) {
        let name = partition
            .get("kernel")
            .and_then(|k| k.as_str())
            .and_then(|k| k.strip_prefix(PREFIX));
        if let Some(name) = name
            && !names.iter().any(|n| n == name)
        {
            names.push(name.to_owned());
        }
    }
    names
}

/// Whether `guests/<name>/` holds a guest program's crate.
fn exists(name: &str) -> bool {
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let dir = crate::root().join("guests").join(name);
    plain && dir.join("Cargo.toml").is_file() && dir.join("src/main.rs").is_file()
}

/// Builds guest program `name` and writes its `Image` to
/// `target/bulkhead/guests/<name>.img`; returns that path.
pub(crate) fn build(tools: &Tools, name: &str) -> Result<PathBuf> {
    let (mut cargo, out) = image::cargo(tools, "build", "guest-programs");
    cargo.args([
        "--package",
        &format!("guest-{name}"),
        "--bin",
        name,
        "--release",
    ]);
    image::run_cargo(cargo, &format!("the guest program `{name}`"))?;
    let elf_path = out.join("release").join(name);
    let elf =
        std::fs::read(&elf_path).map_err(|e| error!("cannot read {}: {e}", elf_path.display()))?;
    let flat = image::flatten(&elf).map_err(|e| error!("{}: {e}", elf_path.display()))?;
    let path = output_dir().join("guests").join(format!("{name}.img"));
    image::write_atomically(&path, &flat)?;
    Ok(path)
}

/// Builds every guest program the manifest at `path` names that exists
/// (the toolchain is checked first, only if there is one); returns each
/// one's name and image.
pub(crate) fn build_named(path: &Path) -> Result<Vec<(String, PathBuf)>> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let names: Vec<String> = named_in(&text).into_iter().filter(|n| exists(n)).collect();
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let tools = setup::ensure(setup::Needs { uboot: false })?;
    names
        .into_iter()
        .map(|name| {
            let image = build(&tools, &name)?;
            Ok((name, image))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{exists, named_in};

    #[test]
    fn kernels_that_name_guest_programs_are_found_once_each() {
        let text = "[system]\nname = \"t\"\n\
                    [partitions.a]\nkind = \"vm\"\nkernel = \"guest:probe\"\n\
                    [partitions.b]\nkind = \"vm\"\nkernel = \"guest:probe\"\n\
                    [partitions.c]\nkind = \"vm\"\nkernel = \"debian\"\ninitrd = \"guest:x\"\n\
                    [partitions.d]\nkind = \"vm\"\nkernel = \"guest:other\"\n";
        assert_eq!(named_in(text), ["probe", "other"]);
        assert!(named_in("not [toml").is_empty());
        assert!(named_in("[system]\nname = \"t\"\n").is_empty());
    }

    #[test]
    fn only_plain_names_with_a_crate_exist() {
        assert!(exists("probe"));
        assert!(!exists("nonexistent"));
        assert!(!exists("../services/vmm"));
        assert!(!exists(""));
    }
}
