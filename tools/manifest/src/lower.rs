// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Lowering a checked system to the [`BootManifest`] the kernel reads, and
//! the capability slot each partition's services will use by name.
//!
//! Numbering: devices in partition order (then each partition's `devices`
//! order); endpoints, notifications and shared regions each in channel order;
//! interrupts in partition order. A partition's capability table holds one
//! capability per channel it is an end of (in channel order, named after the
//! channel), then one per device it owns (named after the device), then the
//! kernel log's if it reads it (`kernel-log`), then one per partition it
//! controls (in `controls` order, named after that partition, with READ and
//! CONTROL), then one per reply object it owns (`reply-0`, `reply-1`, ...,
//! with WRITE; reply objects are numbered in partition order). Its mappings
//! are its devices (at IPA = PA), then its shared regions.

use hv_abi::hypercall::{Badge, Rights};
use hv_image::{
    BootManifest, CapSpec, DeviceSpec, IrqSpec, Mapping, MappingKind, Name, Object, PartitionSpec,
    RAM_IPA, SharedRegion,
};

use crate::model::{ChannelKind, System};

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

/// Lowers `system`; an error here is a compiler bug (the checks should have
/// refused the manifest), described in words.
pub(crate) fn lower(system: &System) -> Result<(BootManifest, Slots), String> {
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

    let mut slots = Vec::new();
    for (index, partition) in system.partitions.iter().enumerate() {
        let mut spec = PartitionSpec {
            name: name(&partition.name)?,
            program: u8::try_from(partition.program).map_err(|_| "program index")?,
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
                CapSpec {
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
            names.push((
                found.name.clone(),
                u16::try_from(spec.caps.len()).unwrap_or(u16::MAX),
            ));
            push(
                &mut spec.caps,
                CapSpec {
                    object: Object::Device(number),
                    rights: read_write,
                    badge: Badge(0),
                },
                "capabilities",
            )?;
        }
        for mapping in shared {
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
                CapSpec {
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
                CapSpec {
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
                CapSpec {
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
    Ok((manifest, slots))
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
