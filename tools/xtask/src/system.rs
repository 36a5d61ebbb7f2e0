// SPDX-License-Identifier: Apache-2.0 OR MIT
//! System manifests (`systems/*.toml`), compiled by `hv-manifest`, and
//! platform descriptions (`platforms/<name>/platform.toml`), as far as
//! building and running need them.

use std::path::{Path, PathBuf};

use hv_abi::hypercall::Rights;
use hv_image::{MappingKind, Object};

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
    /// The default guest's files, described (Debian's packages and versions,
    /// or the paths given), if a virtual machine uses them.
    pub(crate) guest: Option<String>,
}

/// Where a virtual machine's kernel and initramfs come from when its
/// manifest says `"debian"` (or nothing).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct GuestChoice {
    /// `--kernel PATH`: this Image instead of Debian's.
    pub(crate) kernel: Option<PathBuf>,
    /// `--initrd PATH`: this initramfs instead of the busybox one.
    pub(crate) initrd: Option<PathBuf>,
}

/// Whether the manifest at `path` has a virtual machine that takes the
/// default guest (`kernel` or `initrd` absent or `"debian"`). A manifest that
/// does not parse needs nothing: the compiler reports it.
fn needs_default_guest(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    let Ok(document) = text.parse::<toml::Table>() else {
        return false;
    };
    let Some(partitions) = document.get("partitions").and_then(|p| p.as_table()) else {
        return false;
    };
    partitions.values().filter_map(|p| p.as_table()).any(|p| {
        p.get("kind").and_then(|k| k.as_str()) == Some("vm")
            && ["kernel", "initrd"].iter().any(|key| {
                p.get(*key)
                    .and_then(|v| v.as_str())
                    .is_none_or(|v| v == "debian")
            })
    })
}

impl System {
    /// Its partitions' names, in the manifest's order (partition n is
    /// entry n).
    pub(crate) fn partition_names(&self) -> Vec<String> {
        self.compiled
            .manifest
            .partitions
            .iter()
            .map(|p| p.name.to_string())
            .collect()
    }

    /// Compiles and checks a system manifest, with Debian's guest files for
    /// virtual machines that take them. The error lists every problem, each
    /// with file, line, column and key.
    pub(crate) fn load(path: &Path) -> Result<Self> {
        Self::load_with(path, &GuestChoice::default())
    }

    /// [`Self::load`], with `guest` for the default guest's files: given on
    /// the command line, or else fetched from Debian (`cargo xtask guests`)
    /// if the manifest needs them.
    pub(crate) fn load_with(path: &Path, guest: &GuestChoice) -> Result<Self> {
        Self::load_for(path, guest, None)
    }

    /// [`Self::load_with`], built for `board`'s platform (a folder under
    /// `platforms/`) instead of the manifest's, if given.
    pub(crate) fn load_for(path: &Path, guest: &GuestChoice, board: Option<&str>) -> Result<Self> {
        let mut environment = hv_manifest::Environment::from_workspace(&crate::root());
        if let Some(board) = board {
            environment = environment.with_board(board);
        }
        let mut description = None;
        if needs_default_guest(path) {
            let (kernel, initrd) = match (&guest.kernel, &guest.initrd) {
                (Some(kernel), Some(initrd)) => {
                    description = Some(format!(
                        "kernel {}, initramfs {}",
                        kernel.display(),
                        initrd.display()
                    ));
                    (kernel.clone(), initrd.clone())
                }
                (given_kernel, given_initrd) => {
                    let assets = crate::guests::ensure(crate::debian::Resolve::Cached)?;
                    description = Some(assets.to_string());
                    (
                        given_kernel.clone().unwrap_or(assets.kernel),
                        given_initrd.clone().unwrap_or(assets.initrd),
                    )
                }
            };
            environment = environment.with_default_guest(kernel, initrd);
        }
        // `kernel = "guest:<name>"`: the guest programs, built first.
        for (name, image) in crate::guest_programs::build_named(path)? {
            environment = environment.with_guest_program(&name, image);
        }
        let compiled = hv_manifest::compile_with(path, &environment).map_err(|d| {
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
            guest: description,
        })
    }

    /// The environment a program's build gets, from the partitions that run
    /// it (which must all get the same; see [`Self::partition_environment`]).
    pub(crate) fn program_environment(&self, program: usize) -> Result<Vec<(String, String)>> {
        let manifest = &self.compiled.manifest;
        let mut layout: Option<(&str, Vec<(String, String)>)> = None;
        for (index, spec) in manifest.partitions.iter().enumerate() {
            if spec.program().map(usize::from) != Some(program) {
                continue;
            }
            let environment = self.partition_environment(index);
            match &layout {
                None => layout = Some((spec.name.as_str(), environment)),
                Some((first, first_environment)) if *first_environment != environment => {
                    return Err(error!(
                        "partitions `{first}` and `{}` run the same program with different \
                         capabilities, shared regions, clients or partitions they control; give \
                         one of them its own program",
                        spec.name
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(layout
            .map(|(_, environment)| environment)
            .unwrap_or_default())
    }

    /// What partition `index`'s program is built with (names upper-cased,
    /// `-` as `_`):
    /// - `BULKHEAD_CAP_<NAME>=<slot>` for each capability it holds, which
    ///   `svc_rt::cap!` reads;
    /// - `BULKHEAD_SHARED_<NAME>=<ipa>:<size>` (decimal) for each shared
    ///   region it maps, which `svc_rt::shared!` reads, and
    ///   `BULKHEAD_DEVICE_<NAME>=<ipa>:<size>` for each device it owns
    ///   (`svc_rt::device!`);
    /// - `BULKHEAD_CLIENTS_<NAME>=<badge>=<partition>[:<slot>],...` for each
    ///   endpoint it serves, which `svc_rt::clients!` reads: every partition
    ///   holding a write capability to the endpoint, in badge order, with the
    ///   slot of the first notification this partition may signal that the
    ///   client waits on (how the server wakes it), if there is one;
    /// - for the monitor of a virtual machine ([`Self::guest_environment`]):
    ///   `BULKHEAD_GUEST_*`, where it sees the guest's RAM and files and how
    ///   the guest boots; its capabilities `exits` and `vcpu-<n>` come out
    ///   as `BULKHEAD_CAP_EXITS` and `BULKHEAD_CAP_VCPU_<n>` like any other;
    /// - `BULKHEAD_WAITS=<slot>,...`: the notifications it waits on;
    /// - `BULKHEAD_CONTROLS=<partition>:<slot>[:<bit>],...` if it `controls`
    ///   others: each partition it controls, by name, with the slot of its
    ///   capability over it and, with a `fault-notification`, the bit the
    ///   kernel sets there when that partition stops or restarts, in
    ///   `controls` order (a health monitor learns whom it watches without
    ///   knowing their names in its source);
    /// - `BULKHEAD_FAULT_NOTIFICATION=<slot>`: with a `fault-notification`,
    ///   the slot of the notification it waits on for them;
    /// - `BULKHEAD_SETTING_<KEY>=<value>` for each of its `settings`, which
    ///   `svc_rt::setting!` reads (a partition with settings has a program of
    ///   its own);
    /// - `BULKHEAD_BOARD_CONSOLE=<address>:<size>`: where the board's console
    ///   UART is (the platform's, the same for every partition), which
    ///   `svc_rt::board_console!` reads: for the test programs that touch it
    ///   without having been given it, on whichever board they run.
    pub(crate) fn partition_environment(&self, index: usize) -> Vec<(String, String)> {
        let manifest = &self.compiled.manifest;
        let variable = |prefix: &str, name: &str| {
            format!(
                "BULKHEAD_{prefix}_{}",
                name.to_uppercase().replace('-', "_")
            )
        };
        let (Some(spec), Some((_, slots))) = (
            manifest.partitions.get(index),
            self.compiled.slots.get(index),
        ) else {
            return Vec::new();
        };
        let mut environment: Vec<(String, String)> = slots
            .iter()
            .map(|(name, slot)| (variable("CAP", name), slot.to_string()))
            .collect();
        for mapping in &spec.mappings {
            let (prefix, name) = match mapping.kind {
                MappingKind::Shared { region } => (
                    "SHARED",
                    manifest
                        .shared_regions
                        .get(usize::from(region))
                        .map(|r| r.name.as_str()),
                ),
                MappingKind::Device { device } => (
                    "DEVICE",
                    manifest
                        .devices
                        .get(usize::from(device))
                        .map(|d| d.name.as_str()),
                ),
                // A monitor's view of its guest: `guest_environment`.
                MappingKind::GuestRam { .. } | MappingKind::File { .. } => continue,
            };
            if let Some(name) = name {
                environment.push((
                    variable(prefix, name),
                    format!("{}:{}", mapping.ipa, mapping.size),
                ));
            }
        }
        for (slot, cap) in spec.caps.iter().enumerate() {
            let Object::Endpoint(endpoint) = cap.object else {
                continue;
            };
            // A guest's exits come from the kernel alone: no client list.
            let exits = manifest
                .partitions
                .iter()
                .any(|p| p.vm().is_some_and(|vm| vm.exit_endpoint == endpoint));
            if !cap.rights.contains(Rights::READ) || exits {
                continue;
            }
            let Some((name, _)) = slots.iter().find(|(_, s)| *s as usize == slot) else {
                continue;
            };
            let mut clients: Vec<(u64, String)> = Vec::new();
            for (other_index, other) in manifest.partitions.iter().enumerate() {
                for client_cap in &other.caps {
                    if client_cap.object != Object::Endpoint(endpoint)
                        || !client_cap.rights.contains(Rights::WRITE)
                    {
                        continue;
                    }
                    let wake = self.wake_slot(index, other_index);
                    // A monitor speaks for its guest: the console shows the
                    // guest's name.
                    let shown = self
                        .compiled
                        .guests
                        .iter()
                        .find(|g| g.monitor == other_index)
                        .and_then(|g| manifest.partitions.get(g.partition))
                        .map_or(other.name.as_str(), |vm| vm.name.as_str());
                    let entry = match wake {
                        Some(wake) => format!("{shown}:{wake}"),
                        None => shown.to_owned(),
                    };
                    clients.push((client_cap.badge.0, entry));
                }
            }
            clients.sort();
            let list: Vec<String> = clients
                .iter()
                .map(|(badge, entry)| format!("{badge}={entry}"))
                .collect();
            environment.push((variable("CLIENTS", name), list.join(",")));
        }
        if let Some(guest) = self.compiled.guests.iter().find(|g| g.monitor == index) {
            environment.extend(self.guest_environment(guest));
        }
        // The notifications it waits on (holds with READ), in slot order:
        // a monitor learns which one the console signals for its guest's
        // keyboard input.
        let waits: Vec<String> = spec
            .caps
            .iter()
            .enumerate()
            .filter(|(_, cap)| {
                matches!(cap.object, Object::Notification(_)) && cap.rights.contains(Rights::READ)
            })
            .map(|(slot, _)| slot.to_string())
            .collect();
        if !waits.is_empty() {
            environment.push(("BULKHEAD_WAITS".to_owned(), waits.join(",")));
        }
        // This partition's fault signals (`fault-notification`).
        let fault_signals = manifest
            .fault_signals
            .iter()
            .filter(|s| usize::from(s.controller) == index);
        let controls: Vec<String> = spec
            .caps
            .iter()
            .enumerate()
            .filter_map(|(slot, cap)| {
                let Object::Partition(target) = cap.object else {
                    return None;
                };
                let name = &manifest.partitions.get(usize::from(target))?.name;
                // The bit the kernel sets on its fault notification.
                Some(
                    match fault_signals.clone().find(|s| s.partition == target) {
                        Some(signal) => {
                            format!("{name}:{slot}:{}", signal.badge.0.trailing_zeros())
                        }
                        None => format!("{name}:{slot}"),
                    },
                )
            })
            .collect();
        if !controls.is_empty() {
            environment.push(("BULKHEAD_CONTROLS".to_owned(), controls.join(",")));
        }
        let notification = fault_signals.clone().next().and_then(|signal| {
            spec.caps.iter().position(|cap| {
                cap.object == Object::Notification(signal.notification)
                    && cap.rights.contains(Rights::READ)
            })
        });
        if let Some(slot) = notification {
            environment.push(("BULKHEAD_FAULT_NOTIFICATION".to_owned(), slot.to_string()));
        }
        for (key, value) in self.compiled.settings.get(index).into_iter().flatten() {
            environment.push((variable("SETTING", key), value.clone()));
        }
        if let Some((base, size)) = self.platform.console {
            environment.push((
                "BULKHEAD_BOARD_CONSOLE".to_owned(),
                format!("{base}:{size}"),
            ));
        }
        environment
    }

    /// What the monitor of `guest` is built with besides its capabilities
    /// (numbers in decimal):
    /// - `BULKHEAD_GUEST_NAME=<name>`, `BULKHEAD_GUEST_VCPUS=<n>`;
    /// - `BULKHEAD_GUEST_RAM_BASE=<ipa>`: where the guest's RAM starts in
    ///   the guest's own address space;
    /// - `BULKHEAD_GUEST_RAM_WINDOW=<ipa>:<size>`: where the monitor sees it;
    /// - `BULKHEAD_GUEST_KERNEL=<ipa>:<length>` and (if it has one)
    ///   `BULKHEAD_GUEST_INITRD=<ipa>:<length>`: where the monitor sees the
    ///   files, with their exact lengths (the mappings are whole pages);
    /// - `BULKHEAD_GUEST_BOOTARGS=<command line>`.
    /// - `BULKHEAD_GUEST_DEVICES=<entries>`: the devices passed through to
    ///   the guest (`docs/manifest.md`), empty if none.
    fn guest_environment(&self, guest: &hv_manifest::Guest) -> Vec<(String, String)> {
        let manifest = &self.compiled.manifest;
        let (Some(vm), Some(monitor)) = (
            manifest.partitions.get(guest.partition),
            manifest.partitions.get(guest.monitor),
        ) else {
            return Vec::new();
        };
        let seen = |kind: MappingKind| monitor.mappings.iter().find(|m| m.kind == kind);
        let mut environment = vec![
            ("BULKHEAD_GUEST_NAME".to_owned(), vm.name.to_string()),
            ("BULKHEAD_GUEST_VCPUS".to_owned(), vm.vcpus.to_string()),
            ("BULKHEAD_GUEST_RAM_BASE".to_owned(), vm.ram_ipa.to_string()),
        ];
        let partition = u16::try_from(guest.partition).unwrap_or(u16::MAX);
        if let Some(window) = seen(MappingKind::GuestRam { partition }) {
            environment.push((
                "BULKHEAD_GUEST_RAM_WINDOW".to_owned(),
                format!("{}:{}", window.ipa, window.size),
            ));
        }
        for (variable, file) in [
            ("BULKHEAD_GUEST_KERNEL", Some(guest.kernel)),
            ("BULKHEAD_GUEST_INITRD", guest.initrd),
        ] {
            let Some(file) = file else { continue };
            let index = u16::try_from(file).unwrap_or(u16::MAX);
            if let (Some(mapping), Some(spec)) = (
                seen(MappingKind::File { file: index }),
                manifest.files.get(file),
            ) {
                environment.push((
                    variable.to_owned(),
                    format!("{}:{}", mapping.ipa, spec.size),
                ));
            }
        }
        environment.push(("BULKHEAD_GUEST_BOOTARGS".to_owned(), guest.bootargs.clone()));
        environment.push(guest.devices_environment());
        environment
    }

    /// The first slot of `server` holding a notification it may signal and
    /// that `client` waits on.
    fn wake_slot(&self, server: usize, client: usize) -> Option<usize> {
        let partitions = &self.compiled.manifest.partitions;
        let waited = &partitions.get(client)?.caps;
        partitions.get(server)?.caps.iter().position(|cap| {
            matches!(cap.object, Object::Notification(_))
                && cap.rights.contains(Rights::WRITE)
                && waited
                    .iter()
                    .any(|w| w.object == cap.object && w.rights.contains(Rights::READ))
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
    /// The kernel's console UART: its physical address and size, if the
    /// board has one.
    pub(crate) console: Option<(u64, u64)>,
}

impl Platform {
    /// Reads `platforms/<name>/platform.toml` with `hv-manifest`'s reader
    /// (the one every user of the file shares), for a board that builds a
    /// kernel binary and runs under QEMU.
    pub(crate) fn load(name: &str) -> Result<Self> {
        let path = crate::root()
            .join("platforms")
            .join(name)
            .join("platform.toml");
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') || !path.is_file() {
            return Err(error!(
                "unknown platform `{name}`; known platforms: {}",
                known_platforms().join(", ")
            ));
        }
        let file = hv_manifest::platform::Platform::read(&path)
            .map_err(|errors| error!("{}", errors.to_string().trim_end()))?;
        let shown = path.display();
        let binary = file
            .binary
            .ok_or_else(|| error!("{shown}: no `binary`: the platform builds no kernel"))?;
        let qemu = file
            .qemu
            .ok_or_else(|| error!("{shown}: no `[qemu]` table: QEMU cannot run this platform"))?;
        Ok(Self {
            name: file.name,
            package: format!("plat-{name}"),
            binary,
            qemu_machine: qemu.machine,
            qemu_cpu: qemu.cpu,
            ram_base: qemu.ram_base,
            console: file.console.map(|c| (c.span.base, c.span.size)),
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
    fn programs_get_their_slots_regions_devices_and_clients() {
        let system = System::load(&crate::root().join("systems/demo.toml")).unwrap();
        let environment = |name: &str| {
            let index = system
                .compiled
                .manifest
                .partitions
                .iter()
                .position(|p| p.name.as_str() == name)
                .unwrap();
            system.partition_environment(index)
        };
        let has = |environment: &[(String, String)], key: &str, value: &str| {
            assert!(
                environment.iter().any(|(k, v)| k == key && v == value),
                "no {key}={value} in {environment:?}"
            );
        };
        let uart = environment("uart");
        has(&uart, "BULKHEAD_CAP_UART0", "4");
        has(&uart, "BULKHEAD_DEVICE_UART0", "150994944:4096");
        has(&uart, "BULKHEAD_SHARED_UART_BUFFERS", "4294967296:8192");
        // The console serves `log`; it can wake echo through `echo-input`
        // (its slot 5), and nobody else.
        let console = environment("console");
        has(
            &console,
            "BULKHEAD_CLIENTS_LOG",
            "1=ping,2=pong,3=producer,4=consumer,5=echo:5",
        );
        has(&console, "BULKHEAD_CAP_ECHO_INPUT", "5");
        // Clients get no client list; ping serves nothing.
        assert!(
            !environment("ping")
                .iter()
                .any(|(k, _)| k.starts_with("BULKHEAD_CLIENTS_"))
        );
        has(&environment("pong"), "BULKHEAD_CLIENTS_PING", "1=ping");
        let program = system.compiled.manifest.partitions[1].program().unwrap();
        assert_eq!(
            system.program_environment(usize::from(program)).unwrap(),
            console
        );
        assert!(
            !console
                .iter()
                .any(|(k, _)| k.starts_with("BULKHEAD_GUEST_"))
        );
    }

    #[test]
    fn monitors_get_their_guests_layout_and_a_build_each() {
        let image = crate::root().join("tests/manifests/guest/Image");
        let initrd = crate::root().join("tests/manifests/guest/initrd");
        let guest = |name: &str, initrd: &str| {
            format!(
                "[partitions.{name}]\nkind = \"vm\"\nmonitor = \"{name}-vmm\"\nmemory = \"64M\"\n\
                 vcpus = 2\nkernel = \"{}\"\ninitrd = \"{initrd}\"\n\n\
                 [partitions.{name}-vmm]\nprogram = \"hello\"\nmemory = \"1M\"\n\n",
                image.display()
            )
        };
        let text = format!(
            "[system]\nname = \"guests\"\nplatform = \"qemu-virt\"\n\n{}{}\
             [partitions.other]\nprogram = \"hello\"\nmemory = \"64K\"\n",
            guest("linux", &initrd.display().to_string()),
            guest("bare", "none"),
        );
        let path = write("guests.toml", &text);
        let system = System::load(&path).unwrap();
        let manifest = &system.compiled.manifest;
        // Two monitors running one program are two builds; the other
        // partition running it shares one of its own.
        assert_eq!(system.compiled.programs, ["hello", "hello", "hello"]);
        let environment = system.partition_environment(1);
        let has = |key: &str, value: &str| {
            assert!(
                environment.iter().any(|(k, v)| k == key && v == value),
                "no {key}={value} in {environment:?}"
            );
        };
        let window = manifest.partitions[1].mappings[0].ipa;
        has("BULKHEAD_CAP_EXITS", "0");
        has("BULKHEAD_CAP_VCPU_0", "1");
        has("BULKHEAD_CAP_VCPU_1", "2");
        has("BULKHEAD_GUEST_NAME", "linux");
        has("BULKHEAD_GUEST_VCPUS", "2");
        has("BULKHEAD_GUEST_RAM_BASE", &hv_image::RAM_IPA.to_string());
        has(
            "BULKHEAD_GUEST_RAM_WINDOW",
            &format!("{window}:{}", 64 << 20),
        );
        let kernel_length = std::fs::metadata(&image).unwrap().len();
        let initrd_length = std::fs::metadata(&initrd).unwrap().len();
        has(
            "BULKHEAD_GUEST_KERNEL",
            &format!("{}:{kernel_length}", window + (64 << 20)),
        );
        has(
            "BULKHEAD_GUEST_INITRD",
            &format!("{}:{initrd_length}", window + (66 << 20)),
        );
        has("BULKHEAD_GUEST_BOOTARGS", "console=ttyAMA0 rdinit=/init");
        has("BULKHEAD_GUEST_DEVICES", "");
        assert!(
            !environment
                .iter()
                .any(|(k, _)| k.starts_with("BULKHEAD_CLIENTS_"))
        );
        let program = usize::from(manifest.partitions[1].program().unwrap());
        assert_eq!(system.program_environment(program).unwrap(), environment);
        // The second monitor gets its own guest, without an initramfs.
        let bare = system.partition_environment(3);
        assert!(
            bare.iter()
                .any(|(k, v)| k == "BULKHEAD_GUEST_NAME" && v == "bare")
        );
        assert!(!bare.iter().any(|(k, _)| k == "BULKHEAD_GUEST_INITRD"));
        // The guests themselves and the other service get none of it.
        for index in [0, 2, 4] {
            assert!(
                !system
                    .partition_environment(index)
                    .iter()
                    .any(|(k, _)| k.starts_with("BULKHEAD_GUEST_"))
            );
        }
        assert_eq!(system.compiled.files, [image.clone(), initrd, image]);
    }

    #[test]
    fn settings_and_controls_reach_the_build() {
        let text = "[system]\nname = \"health\"\nplatform = \"qemu-virt\"\n\n\
                    [partitions.first]\nprogram = \"monitor\"\nmemory = \"64K\"\n\
                    controls = [\"crasher\", \"spin\"]\n\
                    settings = { restarts = 2, stop-first = \"spin\", quiet = true }\n\n\
                    [partitions.second]\nprogram = \"monitor\"\nmemory = \"64K\"\n\
                    controls = [\"crasher\", \"spin\"]\nsettings = { restarts = 0 }\n\
                    fault-notification = \"health\"\n\n\
                    [partitions.crasher]\nprogram = \"crasher\"\nmemory = \"64K\"\n\n\
                    [partitions.spin]\nprogram = \"spin\"\nmemory = \"64K\"\n\n\
                    [[channels]]\nname = \"health\"\nkind = \"notification\"\n\
                    waiter = \"second\"\nsignallers = [\"spin\"]\n";
        let system = System::load(&write("settings.toml", text)).unwrap();
        // The same program with different settings: two builds.
        assert_eq!(
            system.compiled.programs,
            ["monitor", "monitor", "crasher", "spin"]
        );
        let first = system.partition_environment(0);
        for (key, value) in [
            ("BULKHEAD_CONTROLS", "crasher:0,spin:1"),
            ("BULKHEAD_SETTING_RESTARTS", "2"),
            ("BULKHEAD_SETTING_STOP_FIRST", "spin"),
            ("BULKHEAD_SETTING_QUIET", "true"),
        ] {
            assert!(
                first.iter().any(|(k, v)| k == key && v == value),
                "no {key}={value} in {first:?}"
            );
        }
        assert_eq!(system.program_environment(0).unwrap(), first);
        let second = system.program_environment(1).unwrap();
        assert!(
            second
                .iter()
                .any(|(k, v)| k == "BULKHEAD_SETTING_RESTARTS" && v == "0")
        );
        assert!(!second.iter().any(|(k, _)| k == "BULKHEAD_SETTING_QUIET"));
        // With a fault notification (slot 0; spin signals bit 0): its slot,
        // and each controlled partition's bit after its capability's slot.
        for (key, value) in [
            ("BULKHEAD_CONTROLS", "crasher:1:1,spin:2:2"),
            ("BULKHEAD_FAULT_NOTIFICATION", "0"),
        ] {
            assert!(
                second.iter().any(|(k, v)| k == key && v == value),
                "no {key}={value} in {second:?}"
            );
        }
        assert!(
            !first
                .iter()
                .any(|(k, _)| k == "BULKHEAD_FAULT_NOTIFICATION")
        );
        // Nobody else controls anything or has settings.
        assert!(
            !system
                .partition_environment(2)
                .iter()
                .any(|(k, _)| k == "BULKHEAD_CONTROLS" || k.starts_with("BULKHEAD_SETTING_"))
        );
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
