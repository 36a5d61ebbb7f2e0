// SPDX-License-Identifier: Apache-2.0 OR MIT
//! System manifests (`systems/*.toml`), compiled by `hv-manifest`, and
//! platform descriptions (`platforms/<name>/platform.toml`), as far as
//! building and running need them.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{Result, error};

/// A system manifest, compiled by `hv-manifest`.
#[derive(Debug)]
pub(crate) struct System {
    /// The system's name.
    pub(crate) name: String,
    /// The platform it runs on.
    pub(crate) platform: Platform,
    /// The compiled manifest, capability slots and report.
    pub(crate) compiled: hv_manifest::Compiled,
}

impl System {
    /// Compiles and checks a system manifest. The error lists every problem,
    /// each with file, line, column and key.
    pub(crate) fn load(path: &Path) -> Result<Self> {
        let compiled = hv_manifest::compile(path, &crate::root()).map_err(|d| {
            let count = d.errors.len();
            let plural = if count == 1 { "" } else { "s" };
            error!(
                "{d}{count} error{plural} in {}; no image was built",
                path.display()
            )
        })?;
        let platform = Platform::load(compiled.manifest.platform.as_str())
            .map_err(|e| error!("{}: [system] platform: {e}", path.display()))?;
        Ok(Self {
            name: compiled.manifest.system.to_string(),
            platform,
            compiled,
        })
    }

    /// The environment a program's build gets: `BULKHEAD_CAP_<NAME>=<slot>`
    /// for each capability its partition holds (names upper-cased, `-` as
    /// `_`), which `svc_rt::cap!` reads. Every partition running the program
    /// must hold the same names in the same slots.
    pub(crate) fn program_environment(&self, program: usize) -> Result<Vec<(String, String)>> {
        let manifest = &self.compiled.manifest;
        let mut layout: Option<(&str, &Vec<(String, u32)>)> = None;
        for (spec, (partition, slots)) in manifest.partitions.iter().zip(&self.compiled.slots) {
            if usize::from(spec.program) != program {
                continue;
            }
            match layout {
                None => layout = Some((partition, slots)),
                Some((first, first_slots)) if first_slots != slots => {
                    return Err(error!(
                        "partitions `{first}` and `{partition}` run the same program with different \
                         capabilities; give one of them its own program"
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(layout
            .map(|(_, slots)| {
                slots
                    .iter()
                    .map(|(name, slot)| {
                        (
                            format!("BULKHEAD_CAP_{}", name.to_uppercase().replace('-', "_")),
                            slot.to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default())
    }
}

/// A board, from its platform crate's `platform.toml`.
#[derive(Clone, Debug)]
pub(crate) struct Platform {
    /// The platform's name, which is also its folder under `platforms/`.
    pub(crate) name: String,
    /// The Cargo package that builds it.
    pub(crate) package: String,
    /// The kernel binary that package builds.
    pub(crate) binary: String,
    /// QEMU's `-M` value, before the GIC version is added.
    pub(crate) qemu_machine: String,
    /// QEMU's `-cpu` value.
    pub(crate) qemu_cpu: String,
    /// Where RAM starts on this machine under QEMU.
    pub(crate) ram_base: u64,
}

#[derive(Deserialize)]
struct PlatformFile {
    name: String,
    binary: String,
    qemu: QemuTable,
}

#[derive(Deserialize)]
struct QemuTable {
    machine: String,
    cpu: String,
    ram_base: u64,
}

impl Platform {
    /// Reads `platforms/<name>/platform.toml`.
    pub(crate) fn load(name: &str) -> Result<Self> {
        let dir = crate::root().join("platforms").join(name);
        let path = dir.join("platform.toml");
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') || !path.is_file() {
            return Err(error!(
                "unknown platform `{name}`; known platforms: {}",
                known_platforms().join(", ")
            ));
        }
        let text = std::fs::read_to_string(&path)?;
        let file: PlatformFile = toml::from_str(&text)
            .map_err(|e| error!("{}: {}", path.display(), e.to_string().trim_end()))?;
        if file.name != name {
            return Err(error!(
                "{}: name is `{}`, but the folder is `{name}`",
                path.display(),
                file.name
            ));
        }
        Ok(Self {
            name: file.name,
            package: format!("plat-{name}"),
            binary: file.binary,
            qemu_machine: file.qemu.machine,
            qemu_cpu: file.qemu.cpu,
            ram_base: file.qemu.ram_base,
        })
    }
}

fn known_platforms() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(crate::root().join("platforms"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("platform.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Where built images go.
pub(crate) fn output_dir() -> PathBuf {
    crate::root().join("target/bulkhead")
}

#[cfg(test)]
mod tests {
    use super::System;

    fn write(name: &str, text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-system-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn the_demo_system_loads() {
        let system = System::load(&crate::root().join("systems/demo.toml")).unwrap();
        assert_eq!(system.platform.name, "qemu-virt");
        assert_eq!(system.platform.binary, "bulkhead-qemu-virt");
        assert_eq!(system.name, "demo");
    }

    #[test]
    fn errors_name_the_file_line_and_key_and_count() {
        let path = write(
            "unknown-key.toml",
            "[system]\nname = \"x\"\nplatform = \"qemu-virt\"\ncolour = 3\n",
        );
        let e = System::load(&path).unwrap_err().to_string();
        assert!(
            e.contains("unknown-key.toml:4:1") && e.contains("colour") && e.contains("1 error in"),
            "{e}"
        );
        let e = System::load(std::path::Path::new("/nonexistent.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/nonexistent.toml") && e.contains("cannot read"),
            "{e}"
        );
    }
}
