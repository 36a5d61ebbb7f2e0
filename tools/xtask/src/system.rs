// SPDX-License-Identifier: Apache-2.0 OR MIT
//! System manifests (`systems/*.toml`) and platform descriptions
//! (`platforms/<name>/platform.toml`), as far as building and running need them.
//!
//! Today a system names its platform; partitions, channels and the rest of the
//! manifest arrive with the manifest compiler. Unknown keys are errors, so a
//! manifest never silently means less than its author wrote.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{Result, error};

/// A system manifest.
#[derive(Debug)]
pub(crate) struct System {
    /// The system's name.
    pub(crate) name: String,
    /// The platform it runs on.
    pub(crate) platform: Platform,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SystemFile {
    system: SystemTable,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SystemTable {
    name: String,
    platform: String,
    #[serde(default)]
    #[expect(dead_code, reason = "documentation for people; nothing reads it yet")]
    description: Option<String>,
}

impl System {
    /// Reads and checks a system manifest.
    pub(crate) fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| error!("cannot read {}: {e}", path.display()))?;
        let file: SystemFile = toml::from_str(&text)
            .map_err(|e| error!("{}: {}", path.display(), e.to_string().trim_end()))?;
        let platform = Platform::load(&file.system.platform)
            .map_err(|e| error!("{}: [system] platform: {e}", path.display()))?;
        Ok(Self {
            name: file.system.name,
            platform,
        })
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
    fn errors_name_the_file_line_and_key() {
        let path = write(
            "unknown-key.toml",
            "[system]\nname = \"x\"\nplatform = \"qemu-virt\"\ncolour = 3\n",
        );
        let e = System::load(&path).unwrap_err().to_string();
        assert!(
            e.contains("unknown-key.toml") && e.contains("line 4") && e.contains("colour"),
            "{e}"
        );

        let path = write(
            "bad-platform.toml",
            "[system]\nname = \"x\"\nplatform = \"amiga\"\n",
        );
        let e = System::load(&path).unwrap_err().to_string();
        assert!(
            e.contains("[system] platform: unknown platform `amiga`") && e.contains("qemu-virt"),
            "{e}"
        );

        let e = System::load(std::path::Path::new("/nonexistent.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("cannot read /nonexistent.toml"), "{e}");
    }
}
