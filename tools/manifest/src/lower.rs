// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Lowering a checked system to the [`BootManifest`] the kernel reads, and
//! the capability slot each partition's services will use by name.
//!
//! Numbering: devices in partition order (then each partition's `devices`
//! order); endpoints, notifications and shared regions each in channel order;
//! interrupts in partition order, and passed-through interrupts (those of
//! virtual machines' devices, in partition order, then `devices` order, then
//! the platform's order of each device's interrupts). A partition's
//! capability table holds one capability per channel it is an end of (in
//! channel order, named after the channel), then, for a service, one per
//! device it owns (named after the device; a virtual machine holds none for
//! its devices: its guest completes their interrupts itself), then the
//! kernel log's if it reads it (`kernel-log`), then one per partition it
//! controls (in `controls` order, named after that partition, with READ and
//! CONTROL), then one per reply object it owns (`reply-0`, `reply-1`, ...,
//! with WRITE; reply objects are numbered in partition order). Its mappings
//! are its devices (at IPA = PA), then its shared regions.
//!
//! Time: the schedule's windows go into one table, core 0's first; a
//! budget becomes one entry per vCPU (one table for all of a partition's
//! vCPUs is repeated for each).
//!
//! Virtual machines: each gets an endpoint for its exits, numbered after
//! the channels' endpoints in partition order, and its files
//! (`<name>-kernel`, then `<name>-initrd` unless it has none), numbered in
//! partition order. Its monitor's table holds, right after its channel
//! capabilities, `exits` (READ on that endpoint) and `vcpu-0` to
//! `vcpu-<n-1>` (READ, WRITE and CONTROL on each vCPU); its mappings end with
//! the guest's RAM (read-write) and files (read-only), where `vm.rs` placed
//! them.

use std::path::PathBuf;

use hv_abi::hypercall::{Badge, Rights};
use hv_image::{
    BootManifest, BudgetSpec, Capability, DeviceSpec, FileSpec, IrqSpec, Mapping, MappingKind,
    Name, Object, Owners, PAGE_SIZE, PartitionKind, PartitionSpec, PassthroughIrq, RAM_IPA,
    ScheduleSpec, SharedRegion, VmSpec, Window,
};

use crate::model::{ChannelKind, Guest, GuestFile, Kind, System};
use crate::vm::monitor_capability_names;

/// A capability slot list: for each partition, each capability's name and
/// slot.
pub(crate) type Slots = Vec<(String, Vec<(String, u32)>)>;

/// A name for the manifest; the checks made sure it fits.
fn name(text: &str) -> Result<Name, String> {
    Name::try_from(text).map_err(|_| format!("name `{text}` does not fit"))
}

/// Pushes onto a fixed-capacity vector; the checks made sure it fits.
fn push<T, const N: usize>(
    vec: &mut hv_image::heapless::Vec<T, N>,
    item: T,
    what: &str,
) -> Result<(), String> {
    vec.push(item).map_err(|_| format!("too many {what}"))
}

/// A table index as the manifest's `u16`.
fn number(index: usize) -> Result<u16, String> {
    u16::try_from(index).map_err(|_| format!("index {index} too large"))
}

/// What lowering produces.
pub(crate) struct Lowered {
    /// The manifest.
    pub(crate) manifest: BootManifest,
    /// Every partition's capability names and slots.
    pub(crate) slots: Slots,
    /// The files' absolute paths, in [`BootManifest::files`] order.
    pub(crate) files: Vec<PathBuf>,
}

/// What a virtual machine adds to the manifest's numbering.
struct VmNumbers {
    /// Its exit endpoint.
    exit_endpoint: u16,
    /// Its kernel's file.
    kernel: u16,
    /// Its initramfs's file, if any.
    initrd: Option<u16>,
}

/// Numbers every virtual machine's exit endpoint (after the endpoints
/// already counted: the channels') and files, adding both to the manifest;
/// returns, for each partition, its numbers if it is a virtual machine, and
/// the files' paths.
fn number_vms(
    system: &System,
    manifest: &mut BootManifest,
) -> Result<(Vec<Option<VmNumbers>>, Vec<PathBuf>), String> {
    let mut numbers = Vec::new();
    let mut paths = Vec::new();
    for partition in &system.partitions {
        let Some(guest) = partition.guest() else {
            numbers.push(None);
            continue;
        };
        let exit_endpoint = manifest.endpoint_count;
        manifest.endpoint_count = exit_endpoint.checked_add(1).ok_or("too many endpoints")?;
        let mut add = |file: &GuestFile, suffix: &str| -> Result<u16, String> {
            let index = number(manifest.files.len())?;
            push(
                &mut manifest.files,
                FileSpec {
                    name: name(&format!("{}-{suffix}", partition.name))?,
                    size: file.size,
                },
                "files",
            )?;
            paths.push(file.path.clone());
            Ok(index)
        };
        let kernel = add(&guest.kernel, "kernel")?;
        let initrd = guest
            .initrd
            .as_ref()
            .map(|initrd| add(initrd, "initrd"))
            .transpose()?;
        numbers.push(Some(VmNumbers {
            exit_endpoint,
            kernel,
            initrd,
        }));
    }
    Ok((numbers, paths))
}

/// A monitor's capabilities over its guest (partition number `partition`,
/// with `guest_vcpus` vCPUs), with their names: `exits`, then one per vCPU.
fn monitor_caps(guest_vcpus: u8, partition: u16, numbers: &VmNumbers) -> Vec<(String, Capability)> {
    let vcpu_rights = Rights::READ.union(Rights::WRITE).union(Rights::CONTROL);
    let objects = std::iter::once((Object::Endpoint(numbers.exit_endpoint), Rights::READ))
        .chain((0..guest_vcpus).map(|vcpu| (Object::Vcpu { partition, vcpu }, vcpu_rights)));
    monitor_capability_names(guest_vcpus)
        .into_iter()
        .zip(objects)
        .map(|(name, (object, rights))| {
            (
                name,
                Capability {
                    object,
                    rights,
                    badge: Badge(0),
                },
            )
        })
        .collect()
}

/// A monitor's mappings of its guest (partition number `partition`): its
/// RAM, then its files.
fn monitor_mappings(
    guest: &Guest,
    memory: u64,
    partition: u16,
    numbers: &VmNumbers,
) -> Vec<Mapping> {
    let mut mappings = vec![Mapping {
        kind: MappingKind::GuestRam { partition },
        ipa: guest.window,
        size: memory,
        rights: Rights::READ.union(Rights::WRITE),
    }];
    let files = [
        (Some(&guest.kernel), Some(numbers.kernel)),
        (guest.initrd.as_ref(), numbers.initrd),
    ];
    for (file, index) in files {
        if let (Some(file), Some(index)) = (file, index) {
            mappings.push(Mapping {
                kind: MappingKind::File { file: index },
                ipa: file.ipa,
                size: file.size.next_multiple_of(PAGE_SIZE),
                rights: Rights::READ,
            });
        }
    }
    mappings
}

/// Lowers `system`; an error here is a compiler bug (the checks should have
/// refused the manifest), described in words.
pub(crate) fn lower(system: &System) -> Result<Lowered, String> {
    let mut manifest = BootManifest::empty(name(&system.name)?, name(&system.platform.name)?);

    // Devices, and the platform index → manifest index map.
    let mut device_numbers = vec![None; system.platform.devices.len()];
    for (owner, partition) in system.partitions.iter().enumerate() {
        for &device in &partition.devices {
            let found = system
                .platform
                .devices
                .get(device)
                .ok_or("unknown device")?;
            if let Some(slot) = device_numbers.get_mut(device) {
                *slot = Some(number(manifest.devices.len())?);
            }
            push(
                &mut manifest.devices,
                DeviceSpec {
                    name: name(&found.name)?,
                    pa: found.span.base,
                    size: found.span.size,
                    owner: number(owner)?,
                },
                "devices",
            )?;
        }
    }

    // Channel objects, numbered per kind in channel order.
    let mut objects = Vec::new();
    for channel in &system.channels {
        let object = match &channel.kind {
            ChannelKind::Endpoint { .. } => {
                manifest.endpoint_count += 1;
                Object::Endpoint(manifest.endpoint_count - 1)
            }
            ChannelKind::Notification { .. } => {
                manifest.notification_count += 1;
                Object::Notification(manifest.notification_count - 1)
            }
            ChannelKind::SharedMemory { size, .. } => {
                let region = number(manifest.shared_regions.len())?;
                push(
                    &mut manifest.shared_regions,
                    SharedRegion {
                        name: name(&channel.name)?,
                        size: *size,
                    },
                    "shared regions",
                )?;
                Object::Memory(region)
            }
        };
        objects.push(object);
    }

    for irq in &system.irqs {
        let device = device_numbers
            .get(irq.device)
            .copied()
            .flatten()
            .ok_or("interrupt of an unowned device")?;
        let Some(Object::Notification(notification)) = objects.get(irq.channel).copied() else {
            return Err("interrupt bound to a channel that is not a notification".to_owned());
        };
        push(
            &mut manifest.irqs,
            IrqSpec {
                intid: irq.intid,
                device,
                notification,
                badge: Badge(1 << irq.bit),
            },
            "interrupts",
        )?;
    }

    // A virtual machine's devices' interrupts go to its guest, as the same
    // INTIDs.
    for partition in system.partitions.iter().filter(|p| p.guest().is_some()) {
        for &device in &partition.devices {
            let number = device_numbers
                .get(device)
                .copied()
                .flatten()
                .ok_or("unnumbered device")?;
            let found = system
                .platform
                .devices
                .get(device)
                .ok_or("unknown device")?;
            for &intid in &found.irqs {
                push(
                    &mut manifest.passthrough,
                    PassthroughIrq {
                        intid,
                        device: number,
                    },
                    "passed-through interrupts",
                )?;
            }
        }
    }

    manifest.scrub_on_switch = system.scrub_on_switch;
    if let Some(log) = &system.kernel_log {
        let Some(Object::Notification(notification)) = objects.get(log.channel).copied() else {
            return Err("the kernel log's channel is not a notification".to_owned());
        };
        manifest.kernel_log = Some(hv_image::KernelLogSpec {
            partition: number(log.partition)?,
            notification,
            badge: Badge(1 << log.bit),
        });
    }

    for (index, partition) in system.partitions.iter().enumerate() {
        let Some((channel, bits)) = &partition.fault_notification else {
            continue;
        };
        let Some(Object::Notification(notification)) = objects.get(*channel).copied() else {
            return Err("a fault notification's channel is not a notification".to_owned());
        };
        for (&target, &bit) in partition.controls.iter().zip(bits) {
            push(
                &mut manifest.fault_signals,
                hv_image::FaultSignal {
                    partition: number(target)?,
                    controller: number(index)?,
                    notification,
                    badge: Badge(1 << bit),
                },
                "fault signals",
            )?;
        }
    }

    let (vm_numbers, files) = number_vms(system, &mut manifest)?;
    // For each partition, the virtual machine it monitors (its number and
    // the partition).
    let monitored = |index: usize| {
        system
            .partitions
            .iter()
            .enumerate()
            .find(|(_, p)| p.guest().is_some_and(|g| g.monitor == index))
    };

    let mut slots = Vec::new();
    for (index, partition) in system.partitions.iter().enumerate() {
        let kind = match (&partition.kind, vm_numbers.get(index)) {
            (Kind::Service { program }, _) => PartitionKind::Service {
                program: u8::try_from(*program).map_err(|_| "program index")?,
            },
            (Kind::Vm(guest), Some(Some(numbers))) => PartitionKind::Vm(VmSpec {
                monitor: number(guest.monitor)?,
                exit_endpoint: numbers.exit_endpoint,
            }),
            (Kind::Vm(_), _) => return Err("an unnumbered virtual machine".to_owned()),
        };
        let mut spec = PartitionSpec {
            name: name(&partition.name)?,
            kind,
            memory_size: partition.memory,
            memory_base: partition.base,
            ram_ipa: RAM_IPA,
            vcpus: partition.vcpus,
            cores: partition.cores,
            priority: partition.priority,
            fault: partition.fault,
            mappings: hv_image::heapless::Vec::new(),
            caps: hv_image::heapless::Vec::new(),
        };
        let mut names = Vec::new();
        let mut shared = Vec::new();
        for (channel, object) in system.channels.iter().zip(&objects) {
            let Some((rights, badge)) = end_of(&channel.kind, index) else {
                continue;
            };
            if let (ChannelKind::SharedMemory { size, ipa, .. }, Object::Memory(region)) =
                (&channel.kind, object)
            {
                shared.push(Mapping {
                    kind: MappingKind::Shared { region: *region },
                    ipa: *ipa,
                    size: *size,
                    rights,
                });
            }
            names.push((channel.name.clone(), number(spec.caps.len())?));
            push(
                &mut spec.caps,
                Capability {
                    object: *object,
                    // `derive = true` lets every end copy its capability (and
                    // so, over a `grant` endpoint, hand a copy on).
                    rights: if channel.derive {
                        rights.union(Rights::DERIVE)
                    } else {
                        rights
                    },
                    badge: Badge(badge),
                },
                "capabilities",
            )?;
        }
        let mut guest_mappings = Vec::new();
        if let Some((vm, vm_partition)) = monitored(index) {
            let (guest, numbers) = vm_partition
                .guest()
                .zip(vm_numbers.get(vm).and_then(Option::as_ref))
                .ok_or("a monitored partition that is not a virtual machine")?;
            for (cap_name, cap) in monitor_caps(vm_partition.vcpus, number(vm)?, numbers) {
                names.push((cap_name, number(spec.caps.len())?));
                push(&mut spec.caps, cap, "capabilities")?;
            }
            guest_mappings = monitor_mappings(guest, vm_partition.memory, number(vm)?, numbers);
        }
        for &device in &partition.devices {
            let number = device_numbers
                .get(device)
                .copied()
                .flatten()
                .ok_or("unnumbered device")?;
            let found = system
                .platform
                .devices
                .get(device)
                .ok_or("unknown device")?;
            let read_write = Rights::READ.union(Rights::WRITE);
            push(
                &mut spec.mappings,
                Mapping {
                    kind: MappingKind::Device { device: number },
                    ipa: found.span.base,
                    size: found.span.size,
                    rights: read_write,
                },
                "mappings",
            )?;
            if partition.guest().is_some() {
                continue;
            }
            names.push((
                found.name.clone(),
                u16::try_from(spec.caps.len()).unwrap_or(u16::MAX),
            ));
            push(
                &mut spec.caps,
                Capability {
                    object: Object::Device(number),
                    rights: read_write,
                    badge: Badge(0),
                },
                "capabilities",
            )?;
        }
        for mapping in shared.into_iter().chain(guest_mappings) {
            push(&mut spec.mappings, mapping, "mappings")?;
        }
        if system
            .kernel_log
            .as_ref()
            .is_some_and(|log| log.partition == index)
        {
            names.push(("kernel-log".to_owned(), number(spec.caps.len())?));
            push(
                &mut spec.caps,
                Capability {
                    object: Object::KernelLog,
                    rights: Rights::READ,
                    badge: Badge(0),
                },
                "capabilities",
            )?;
        }
        for &target in &partition.controls {
            let controlled = system
                .partitions
                .get(target)
                .ok_or("control of an unknown partition")?;
            names.push((controlled.name.clone(), number(spec.caps.len())?));
            push(
                &mut spec.caps,
                Capability {
                    object: Object::Partition(number(target)?),
                    rights: Rights::READ.union(Rights::CONTROL),
                    badge: Badge(0),
                },
                "capabilities",
            )?;
        }
        for k in 0..partition.replies {
            let reply = number(manifest.replies.len())?;
            push(&mut manifest.replies, number(index)?, "reply objects")?;
            names.push((format!("reply-{k}"), number(spec.caps.len())?));
            push(
                &mut spec.caps,
                Capability {
                    object: Object::Reply(reply),
                    rights: Rights::WRITE,
                    badge: Badge(0),
                },
                "capabilities",
            )?;
        }
        slots.push((
            partition.name.clone(),
            names
                .into_iter()
                .map(|(name, slot)| (name, u32::from(slot)))
                .collect(),
        ));
        push(&mut manifest.partitions, spec, "partitions")?;
    }
    lower_time(system, &mut manifest)?;
    Ok(Lowered {
        manifest,
        slots,
        files,
    })
}

/// The schedule, core after core in one window table, and the budgets, one
/// entry per budgeted vCPU, in partition and then vCPU order.
fn lower_time(system: &System, manifest: &mut BootManifest) -> Result<(), String> {
    let micros = |us: u64| u32::try_from(us).map_err(|_| format!("{us} us does not fit"));
    if let Some(schedule) = &system.schedule {
        let mut spec = ScheduleSpec {
            major_frame_us: micros(schedule.major_frame_us)?,
            cores: hv_image::heapless::Vec::new(),
            windows: hv_image::heapless::Vec::new(),
        };
        for windows in &schedule.cores {
            let count = u8::try_from(windows.len()).map_err(|_| "too many windows")?;
            push(&mut spec.cores, count, "cores")?;
            for window in windows {
                let owners = if window.is_background() {
                    Owners::Background
                } else {
                    Owners::Partitions(window.owners.iter().fold(0u16, |mask, &p| mask | 1 << p))
                };
                let window = Window {
                    length_us: micros(window.length_us)?,
                    owners,
                };
                push(&mut spec.windows, window, "windows")?;
            }
        }
        manifest.schedule = Some(spec);
    }
    for (index, partition) in system.partitions.iter().enumerate() {
        for (vcpu, budget) in partition.budgets.iter().enumerate() {
            let spec = BudgetSpec {
                partition: number(index)?,
                vcpu: u8::try_from(vcpu).map_err(|_| "vCPU index")?,
                budget_us: micros(budget.time_us)?,
                period_us: micros(budget.period_us)?,
            };
            push(&mut manifest.budgets, spec, "budgets")?;
        }
    }
    Ok(())
}

/// Partition `p`'s rights and badge on a channel, if it is an end of it.
pub(crate) fn end_of(kind: &ChannelKind, p: usize) -> Option<(Rights, u64)> {
    match kind {
        ChannelKind::Endpoint {
            server,
            clients,
            grant,
        } => {
            if *server == p {
                return Some((Rights::READ, 0));
            }
            let (_, badge) = clients.iter().find(|(c, _)| *c == p)?;
            let rights = if *grant {
                Rights::WRITE.union(Rights::GRANT)
            } else {
                Rights::WRITE
            };
            Some((rights, *badge))
        }
        ChannelKind::Notification { waiter, signallers } => {
            let signal = signallers.iter().find(|(s, _)| *s == p);
            match (*waiter == p, signal) {
                (true, None) => Some((Rights::READ, 0)),
                (true, Some((_, bit))) => Some((Rights::READ.union(Rights::WRITE), 1 << bit)),
                (false, Some((_, bit))) => Some((Rights::WRITE, 1 << bit)),
                (false, None) => None,
            }
        }
        ChannelKind::SharedMemory { ends, .. } => ends
            .iter()
            .find(|(e, _)| *e == p)
            .map(|(_, rights)| (*rights, 0)),
    }
}
