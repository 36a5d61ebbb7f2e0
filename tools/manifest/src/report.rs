// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The report for review: the memory map, the schedule (`report/schedule.rs`),
//! every partition's settings, address space and capabilities by slot, and
//! the channel graph, as plain text.
//!
//! Written from the checked system and the manifest lowered from it, so what
//! it shows is exactly what the kernel will be told. Addresses are printed
//! with 10 hex digits, enough for the 39-bit IPA space.

use std::fmt::Write;

use hv_abi::hypercall::Rights;
use hv_image::{BootManifest, FaultPolicy, MappingKind, Object, RAM_IPA};

mod schedule;

use crate::lower::Slots;
use crate::model::{ChannelKind, FileSource, Guest, GuestFile, Partition, System};
use crate::size::{approximate, human};

/// "1 channel", "2 channels".
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// An address as the report prints it.
fn address(value: u64) -> String {
    format!("{value:#012x}")
}

/// A range as the report prints it.
fn range(base: u64, size: u64) -> String {
    format!("{}..{}", address(base), address(base.saturating_add(size)))
}

/// Rights as words: `read, write, grant`.
fn rights_words(rights: Rights) -> String {
    let words: Vec<&str> = [
        (Rights::READ, "read"),
        (Rights::WRITE, "write"),
        (Rights::EXECUTE, "execute"),
        (Rights::GRANT, "grant"),
        (Rights::DERIVE, "derive"),
        (Rights::CONTROL, "control"),
    ]
    .iter()
    .filter(|(right, _)| rights.contains(*right))
    .map(|(_, word)| *word)
    .collect();
    words.join(",")
}

/// Memory rights as letters: `rw-`, `r--`, `rwx`.
fn rights_letters(rights: Rights) -> String {
    [
        (Rights::READ, 'r'),
        (Rights::WRITE, 'w'),
        (Rights::EXECUTE, 'x'),
    ]
    .iter()
    .map(|(right, letter)| {
        if rights.contains(*right) {
            *letter
        } else {
            '-'
        }
    })
    .collect()
}

/// Lays out rows as columns separated by two spaces, each line indented.
fn table(out: &mut String, indent: &str, rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|row| row.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = indent.to_owned();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                let width = widths.get(c).copied().unwrap_or(0);
                let _ = write!(line, "{cell:<width$}  ");
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

/// The report; `guests` are the system's virtual machines as their
/// monitors' builds see them.
pub(crate) fn report(
    system: &System,
    manifest: &BootManifest,
    slots: &Slots,
    guests: &[crate::Guest],
) -> String {
    let mut out = String::new();
    let platform = &system.platform;
    let vms = system
        .partitions
        .iter()
        .filter(|p| p.guest().is_some())
        .count();
    let _ = writeln!(
        out,
        "system {} on {}: {}{}, {}, {}",
        system.name,
        platform.name,
        count(system.partitions.len(), "partition"),
        if vms == 0 {
            String::new()
        } else {
            format!(" ({})", count(vms, "virtual machine"))
        },
        count(system.channels.len(), "channel"),
        count(system.programs.len(), "program"),
    );
    if let Some(description) = &system.description {
        let _ = writeln!(out, "  {description}");
    }
    if system.scrub_on_switch {
        let _ = writeln!(
            out,
            "  scrub on-switch: caches, TLBs and branch predictors scrubbed on every switch \
             between partitions"
        );
    }

    let _ = writeln!(out, "\nmemory");
    let mut rows = Vec::new();
    for bank in &platform.memory {
        rows.push(vec![
            "RAM".to_owned(),
            range(bank.base, bank.size),
            human(bank.size),
            String::new(),
        ]);
    }
    for reserved in &platform.reserved {
        rows.push(vec![
            "reserved".to_owned(),
            range(reserved.span.base, reserved.span.size),
            human(reserved.span.size),
            reserved.what.clone(),
        ]);
    }
    for partition in &system.partitions {
        let placement = match partition.base {
            Some(base) => range(base, partition.memory),
            None => "allocated at boot".to_owned(),
        };
        rows.push(vec![
            format!("partition {}", partition.name),
            placement,
            human(partition.memory),
            String::new(),
        ]);
    }
    for region in &manifest.shared_regions {
        rows.push(vec![
            format!("shared {}", region.name),
            "allocated at boot".to_owned(),
            human(region.size),
            String::new(),
        ]);
    }
    for file in &manifest.files {
        rows.push(vec![
            format!("file {}", file.name),
            "in the boot package".to_owned(),
            exact(file.size),
            String::new(),
        ]);
    }
    table(&mut out, "  ", &rows);
    let free: u64 = platform.free_memory().iter().map(|span| span.size).sum();
    let used: u64 = system
        .partitions
        .iter()
        .map(|p| p.memory)
        .chain(manifest.shared_regions.iter().map(|r| r.size))
        .sum();
    let _ = writeln!(
        out,
        "  partitions and shared memory use {} of the {} free",
        human(used),
        human(free)
    );

    let _ = writeln!(out, "\ndevices ({})", platform.file);
    let mut rows = Vec::new();
    for device in &platform.devices {
        let owner = manifest
            .devices
            .iter()
            .find(|d| d.name.as_str() == device.name)
            .and_then(|d| system.partitions.get(usize::from(d.owner)))
            .map_or_else(
                || "not given to any partition".to_owned(),
                |p| {
                    if p.guest().is_some() {
                        format!("owned by {}, passed through to its guest", p.name)
                    } else {
                        format!("owned by {}", p.name)
                    }
                },
            );
        let irqs: Vec<String> = device.irqs.iter().map(u32::to_string).collect();
        rows.push(vec![
            device.name.clone(),
            device.compatible.clone(),
            range(device.span.base, device.span.size),
            format!(
                "INTID {}",
                if irqs.is_empty() {
                    "none".to_owned()
                } else {
                    irqs.join(",")
                }
            ),
            owner,
        ]);
    }
    if rows.is_empty() {
        let _ = writeln!(out, "  none");
    }
    table(&mut out, "  ", &rows);

    let _ = writeln!(out, "\nprograms");
    if system.programs.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for (index, program) in system.programs.iter().enumerate() {
        let users: Vec<String> = system
            .partitions
            .iter()
            .enumerate()
            .filter(|(_, p)| p.program() == Some(index))
            .map(
                |(i, p)| match (monitored(system, i), p.settings.is_empty()) {
                    (Some(vm), true) => format!("{} (monitor of {})", p.name, vm.name),
                    (Some(vm), false) => {
                        format!("{} (monitor of {}, with its settings)", p.name, vm.name)
                    }
                    (None, false) => format!("{} (with its settings)", p.name),
                    (None, true) => p.name.clone(),
                },
            )
            .collect();
        let _ = writeln!(
            out,
            "  {index}  {program} ({}): {}",
            system.program_folders[index],
            users.join(", ")
        );
    }

    schedule::schedule(&mut out, system);
    partitions(&mut out, system, manifest, slots, guests);
    channels(&mut out, system);
    control(&mut out, system);
    out
}

/// Who controls whom, if anyone does.
fn control(out: &mut String, system: &System) {
    if system.partitions.iter().all(|p| p.controls.is_empty()) {
        return;
    }
    let _ = writeln!(out, "\ncontrol");
    for partition in &system.partitions {
        for (i, &target) in partition.controls.iter().enumerate() {
            let name = system
                .partitions
                .get(target)
                .map_or("?", |p| p.name.as_str());
            let told = partition
                .fault_notification
                .as_ref()
                .and_then(|(channel, bits)| {
                    Some((system.channels.get(*channel)?.name.as_str(), *bits.get(i)?))
                })
                .map(|(channel, bit)| {
                    format!(
                        "; the kernel tells it of its stops and restarts on `{channel}`, bit {bit}"
                    )
                })
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {} controls {name}: it may see its status, stop it and restart it{told}",
                partition.name
            );
        }
    }
}

/// Each partition: scheduling, address space, capabilities.
fn partitions(
    out: &mut String,
    system: &System,
    manifest: &BootManifest,
    slots: &Slots,
    guests: &[crate::Guest],
) {
    for (index, ((partition, spec), (_, names))) in system
        .partitions
        .iter()
        .zip(&manifest.partitions)
        .zip(slots)
        .enumerate()
    {
        let cores: Vec<String> = (0..8)
            .filter(|core| partition.cores & 1 << core != 0)
            .map(|core: u8| core.to_string())
            .collect();
        let fault = match partition.fault {
            FaultPolicy::Stop => "stop",
            FaultPolicy::Restart => "restart",
        };
        let what = match (partition.program(), partition.guest()) {
            (Some(program), _) => format!(
                "program {}",
                system.programs.get(program).map_or("?", String::as_str)
            ),
            (None, Some(guest)) => format!(
                "virtual machine monitored by {}",
                system
                    .partitions
                    .get(guest.monitor)
                    .map_or("?", |m| m.name.as_str())
            ),
            (None, None) => "?".to_owned(),
        };
        let budget = budgets(&partition.budgets);
        let _ = writeln!(
            out,
            "\npartition {}: {what}, {} on {} {}, priority {}{budget}, on fault {fault}",
            partition.name,
            count(usize::from(partition.vcpus), "vCPU"),
            if cores.len() == 1 { "core" } else { "cores" },
            cores.join(","),
            partition.priority,
        );
        if let Some(guest) = partition.guest() {
            guest_block(out, system, manifest, index, guest, guests);
        }
        if !partition.settings.is_empty() {
            let _ = writeln!(out, "  settings");
            let rows: Vec<Vec<String>> = partition
                .settings
                .iter()
                .map(|setting| {
                    vec![
                        setting.key.clone(),
                        setting.value.shown(),
                        format!(
                            "BULKHEAD_SETTING_{}",
                            setting.key.to_uppercase().replace('-', "_")
                        ),
                    ]
                })
                .collect();
            table(out, "    ", &rows);
        }
        let _ = writeln!(out, "  address space");
        let mut regions: Vec<(u64, Vec<String>)> = vec![(
            RAM_IPA,
            vec![
                range(RAM_IPA, spec.memory_size),
                human(spec.memory_size),
                "RAM".to_owned(),
                "rwx".to_owned(),
            ],
        )];
        for mapping in &spec.mappings {
            let what = match mapping.kind {
                MappingKind::Device { device } => manifest
                    .devices
                    .get(usize::from(device))
                    .map_or_else(String::new, |d| format!("device {}", d.name)),
                MappingKind::Shared { region } => manifest
                    .shared_regions
                    .get(usize::from(region))
                    .map_or_else(String::new, |r| format!("shared {}", r.name)),
                MappingKind::GuestRam { partition } => manifest
                    .partitions
                    .get(usize::from(partition))
                    .map_or_else(String::new, |p| {
                        format!("RAM of virtual machine {}", p.name)
                    }),
                MappingKind::File { file } => manifest
                    .files
                    .get(usize::from(file))
                    .map_or_else(String::new, |f| format!("file {}", f.name)),
            };
            regions.push((
                mapping.ipa,
                vec![
                    range(mapping.ipa, mapping.size),
                    human(mapping.size),
                    what,
                    rights_letters(mapping.rights),
                ],
            ));
        }
        regions.sort_by_key(|(ipa, _)| *ipa);
        let rows: Vec<Vec<String>> = regions.into_iter().map(|(_, row)| row).collect();
        table(out, "    ", &rows);
        if spec.caps.is_empty() {
            let _ = writeln!(out, "  capabilities: none");
            continue;
        }
        let _ = writeln!(out, "  capabilities");
        let mut rows = vec![vec![
            "slot".to_owned(),
            "name".to_owned(),
            "object".to_owned(),
            "rights".to_owned(),
            "badge".to_owned(),
        ]];
        for ((name, slot), cap) in names.iter().zip(&spec.caps) {
            let object = match cap.object {
                Object::Endpoint(n) => format!("endpoint {n}"),
                Object::Notification(n) => format!("notification {n}"),
                Object::Memory(n) => format!("memory {n}"),
                Object::Device(n) => format!("device {n}"),
                Object::Irq(n) => format!("interrupt {n}"),
                Object::Partition(n) => format!("partition {n}"),
                Object::KernelLog => "kernel log".to_owned(),
                Object::Reply(n) => format!("reply object {n}"),
                Object::Vcpu { partition, vcpu } => format!("vCPU {vcpu} of partition {partition}"),
            };
            rows.push(vec![
                slot.to_string(),
                name.clone(),
                object,
                rights_words(cap.rights),
                format!("{:#x}", cap.badge.0),
            ]);
        }
        table(out, "    ", &rows);
    }
}

/// A partition's budgets for its line: `, budget 1 ms every 2 ms` (one
/// vCPU), `, budget 1 ms every 2 ms per vCPU` (several, the same), or
/// `, budgets 1 ms every 2 ms, 3 ms every 10 ms` (each vCPU's, in order);
/// nothing without.
fn budgets(budgets: &[crate::model::Budget]) -> String {
    let show = |b: &crate::model::Budget| {
        format!(
            "{} every {}",
            crate::time::human(b.time_us),
            crate::time::human(b.period_us)
        )
    };
    match budgets {
        [] => String::new(),
        [one] => format!(", budget {}", show(one)),
        [first, rest @ ..] if rest.iter().all(|b| b == first) => {
            format!(", budget {} per vCPU", show(first))
        }
        all => format!(
            ", budgets {}",
            all.iter().map(show).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// The virtual machine partition `index` monitors, if any.
fn monitored(system: &System, index: usize) -> Option<&Partition> {
    system
        .partitions
        .iter()
        .find(|p| p.guest().is_some_and(|g| g.monitor == index))
}

/// A file's exact size, and roughly for large ones: `4100 bytes (4.0 KiB)`.
fn exact(bytes: u64) -> String {
    if bytes < 1024 {
        format!("{bytes} bytes")
    } else {
        format!("{bytes} bytes ({})", approximate(bytes))
    }
}

/// What a virtual machine (partition `index`) boots, where its exits go,
/// and the devices passed through to it.
fn guest_block(
    out: &mut String,
    system: &System,
    manifest: &BootManifest,
    index: usize,
    guest: &Guest,
    guests: &[crate::Guest],
) {
    let Some(spec) = manifest.partitions.get(index) else {
        return;
    };
    let monitor = system
        .partitions
        .get(guest.monitor)
        .map_or("?", |m| m.name.as_str());
    let file_row = |key: &str, file: &GuestFile, index: Option<usize>| {
        let name = index
            .and_then(|i| manifest.files.get(i))
            .map_or("?", |f| f.name.as_str());
        let source = match &file.source {
            FileSource::Debian => "\"debian\" (the default guest's)".to_owned(),
            FileSource::Path(path) => format!("{path:?}"),
            FileSource::Program(name) => {
                format!("\"guest:{name}\" (the guest program guests/{name})")
            }
        };
        vec![
            key.to_owned(),
            format!(
                "file {} {name}: {source}, {}",
                index.map_or_else(|| "?".to_owned(), |i| i.to_string()),
                exact(file.size)
            ),
        ]
    };
    let index_of = |suffix: &str| {
        let wanted = format!("{}-{suffix}", spec.name);
        manifest
            .files
            .iter()
            .position(|f| f.name.as_str() == wanted)
    };
    let mut rows = vec![file_row("kernel", &guest.kernel, index_of("kernel"))];
    match &guest.initrd {
        Some(initrd) => rows.push(file_row("initrd", initrd, index_of("initrd"))),
        None => rows.push(vec!["initrd".to_owned(), "none".to_owned()]),
    }
    rows.push(vec!["bootargs".to_owned(), guest.bootargs.clone()]);
    let exits = spec
        .vm()
        .map_or_else(|| "?".to_owned(), |vm| vm.exit_endpoint.to_string());
    rows.push(vec![
        "exits".to_owned(),
        format!("endpoint {exits}, from the kernel to {monitor} (its capability `exits`)"),
    ]);
    rows.extend(passthrough_rows(system, manifest, index, guests));
    let _ = writeln!(out, "  guest");
    table(out, "    ", &rows);
}

/// The devices passed through to virtual machine `index`, each with its
/// interrupts, then the line its monitor is built with that describes them;
/// nothing if it owns none.
fn passthrough_rows(
    system: &System,
    manifest: &BootManifest,
    index: usize,
    guests: &[crate::Guest],
) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let owned = manifest
        .devices
        .iter()
        .enumerate()
        .filter(|(_, d)| usize::from(d.owner) == index);
    for (number, device) in owned {
        let compatible = system
            .platform
            .device(device.name.as_str())
            .map_or("?", |(_, d)| d.compatible.as_str());
        let passed: Vec<String> = manifest
            .passthrough
            .iter()
            .enumerate()
            .filter(|(_, irq)| usize::from(irq.device) == number)
            .map(|(k, irq)| format!("INTID {} (passthrough {k})", irq.intid))
            .collect();
        let irqs = if passed.is_empty() {
            "no interrupts".to_owned()
        } else {
            format!("{} passed through to vCPU 0", passed.join(", "))
        };
        rows.push(vec![
            "device".to_owned(),
            format!(
                "{} ({compatible}): device {number} at {} (IPA = PA); {irqs}",
                device.name,
                range(device.pa, device.size)
            ),
        ]);
    }
    let described = guests
        .iter()
        .find(|g| g.partition == index)
        .map(crate::Guest::devices_value)
        .filter(|value| !value.is_empty());
    if let Some(value) = described {
        rows.push(vec![
            "monitor".to_owned(),
            format!("built with {}={value}", crate::GUEST_DEVICES_VARIABLE),
        ]);
    }
    rows
}

/// The channel graph.
fn channels(out: &mut String, system: &System) {
    let _ = writeln!(out, "\nchannels");
    if system.channels.is_empty() {
        let _ = writeln!(out, "  none");
        return;
    }
    let name = |p: usize| system.partitions.get(p).map_or("?", |p| p.name.as_str());
    let (mut endpoint, mut notification) = (0, 0);
    for (index, channel) in system.channels.iter().enumerate() {
        match &channel.kind {
            ChannelKind::Endpoint {
                server,
                clients,
                grant,
            } => {
                let _ = writeln!(
                    out,
                    "  {}: endpoint {endpoint}, served by {}{}",
                    channel.name,
                    name(*server),
                    if *grant {
                        ", clients may pass capabilities"
                    } else {
                        ""
                    }
                );
                endpoint += 1;
                for (client, badge) in clients {
                    let _ = writeln!(
                        out,
                        "    {} calls {} with badge {badge:#x}",
                        name(*client),
                        name(*server)
                    );
                }
            }
            ChannelKind::Notification { waiter, signallers } => {
                let _ = writeln!(
                    out,
                    "  {}: notification {notification}, waited on by {}",
                    channel.name,
                    name(*waiter)
                );
                notification += 1;
                for (signaller, bit) in signallers {
                    let _ = writeln!(
                        out,
                        "    {} signals {} with bit {bit}",
                        name(*signaller),
                        name(*waiter)
                    );
                }
                for irq in system.irqs.iter().filter(|irq| irq.channel == index) {
                    let device = system
                        .platform
                        .devices
                        .get(irq.device)
                        .map_or("?", |d| d.name.as_str());
                    let _ = writeln!(
                        out,
                        "    interrupt {} of {device} signals {} with bit {}",
                        irq.intid,
                        name(*waiter),
                        irq.bit
                    );
                }
            }
            ChannelKind::SharedMemory { size, ipa, ends } => {
                let _ = writeln!(
                    out,
                    "  {}: shared memory, {} at IPA {}",
                    channel.name,
                    human(*size),
                    range(*ipa, *size)
                );
                for (end, rights) in ends {
                    let _ = writeln!(out, "    {} {}", name(*end), rights_letters(*rights));
                }
            }
        }
    }
}
