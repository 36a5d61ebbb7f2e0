// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The semantic checks: names resolve, devices and memory fit the platform
//! and are owned once, limits hold. Produces the checked [`System`] when
//! nothing is wrong.
//!
//! Every check runs, whatever failed before it, as long as the values it
//! needs were readable; checks that need the platform are skipped when the
//! platform could not be read (its own errors are reported instead).
//! Channels (ends, badges, bits, interrupts) are `channels.rs`'s part.
//! A partition's `controls` must name other partitions, each once: a
//! partition controlling itself would be pointless (once stopped, it could
//! not restart itself) and is most likely a slip of the pen, so it is an
//! error.

use hv_image::{
    MAX_CAPS, MAX_DEVICES, MAX_MAPPINGS, MAX_PARTITIONS, MAX_PROGRAMS, MAX_REPLIES,
    MAX_SYSTEM_VCPUS, RAM_IPA,
};

use crate::channels;
use crate::diag::{At, Sink};
use crate::model::{ChannelKind, KernelLog, Partition, SHARED_IPA, System};
use crate::platform::{Platform, Span};
use crate::read::{closest, list};
use crate::size::{human, short};
use crate::system::{KernelLogDecl, SystemDecl};

/// Checks a read manifest against the platform and the known programs.
/// Returns the checked system only if nothing at all is wrong (and the
/// platform was readable).
pub(crate) fn check(
    decl: &SystemDecl,
    platform: Option<&Platform>,
    programs: &[String],
    sink: &mut Sink<'_>,
) -> Option<System> {
    let names: Vec<&str> = decl
        .partitions
        .iter()
        .map(|p| p.name.value.as_str())
        .collect();
    if let Some(extra) = decl.partitions.get(MAX_PARTITIONS) {
        sink.error(
            &extra.name.place,
            format!(
                "more than {MAX_PARTITIONS} partitions ({} declared)",
                decl.partitions.len()
            ),
            format!("a system has at most {MAX_PARTITIONS} partitions; merge some services"),
        );
    }
    let program_table = check_programs(decl, programs, sink);
    let mut partitions = Vec::new();
    for (i, declared) in decl.partitions.iter().enumerate() {
        let cores = platform.and_then(|platform| check_cores(declared, platform, sink));
        let devices = platform
            .map(|platform| check_devices(decl, i, platform, sink))
            .unwrap_or_default();
        let controls = check_controls(declared, i, &names, sink);
        if let (Some(program), Some(memory), Some(cores)) = (
            program_table.get(i).copied().flatten(),
            &declared.memory,
            cores,
        ) {
            partitions.push(Partition {
                name: declared.name.value.clone(),
                program,
                memory: memory.value.bytes,
                base: declared.base.as_ref().map(|base| base.value),
                vcpus: declared.vcpus,
                cores,
                priority: declared.priority,
                fault: declared.fault,
                devices,
                controls,
                replies: declared.replies.as_ref().map_or(0, |r| r.value),
            });
        }
    }
    let checked = channels::check(decl, &names, platform, sink);
    if let Some(platform) = platform {
        check_memory(decl, platform, sink);
        if let Some(checked) = &checked {
            check_address_spaces(decl, platform, &checked.channels, sink);
        }
    }
    if let Some(checked) = &checked {
        check_capability_counts(decl, &checked.channels, sink);
    }
    let kernel_log = match (&decl.kernel_log, &checked) {
        (Some(log), Some(checked)) => check_kernel_log(log, &names, checked, sink),
        _ => None,
    };
    let (platform, checked) = (platform?, checked?);
    if sink.has_errors() || partitions.len() != decl.partitions.len() {
        return None;
    }
    Some(System {
        name: decl.name.as_ref()?.value.clone(),
        description: decl.description.clone(),
        platform: platform.clone(),
        programs: program_table_names(decl, &program_table),
        partitions,
        channels: checked.channels,
        irqs: checked.irqs,
        kernel_log,
    })
}

/// Resolves `[system] kernel-log`: the partition must exist and wait on the
/// notification channel; the kernel gets the lowest bit nobody else sets
/// there.
fn check_kernel_log(
    log: &KernelLogDecl,
    names: &[&str],
    checked: &channels::Checked,
    sink: &mut Sink<'_>,
) -> Option<KernelLog> {
    let Some(partition) = names.iter().position(|n| *n == log.partition.value) else {
        sink.error(
            &log.partition.place,
            format!("no partition is called `{}`", log.partition.value),
            format!("name one of the partitions: {}", names.join(", ")),
        );
        return None;
    };
    let found = checked
        .channels
        .iter()
        .enumerate()
        .find(|(_, c)| c.name == log.notification.value);
    let Some((channel, ChannelKind::Notification { waiter, signallers })) =
        found.map(|(i, c)| (i, &c.kind))
    else {
        sink.error(
            &log.notification.place,
            format!("no notification channel is called `{}`", log.notification.value),
            format!(
                "declare a `kind = \"notification\"` channel with `waiter = \"{}\"` and name it here",
                log.partition.value
            ),
        );
        return None;
    };
    if *waiter != partition {
        sink.error(
            &log.notification.place,
            format!(
                "`{}` waits on `{}`, not `{}`",
                names.get(*waiter).copied().unwrap_or("?"),
                log.notification.value,
                log.partition.value
            ),
            "the kernel log's reader must be the notification's waiter".to_owned(),
        );
        return None;
    }
    let mut used: u64 = signallers.iter().fold(0, |bits, (_, bit)| bits | 1 << bit);
    used |= checked
        .irqs
        .iter()
        .filter(|irq| irq.channel == channel)
        .fold(0, |bits, irq| bits | 1 << irq.bit);
    let Some(bit) = (0..64u8).find(|bit| used & (1 << bit) == 0) else {
        sink.error(
            &log.notification.place,
            format!("every bit of `{}` is taken", log.notification.value),
            "give the kernel log a notification with a free bit".to_owned(),
        );
        return None;
    };
    Some(KernelLog {
        partition,
        channel,
        bit,
    })
}

/// Resolves partition `index`'s `controls`: each names another partition,
/// once.
fn check_controls(
    partition: &crate::system::PartitionDecl,
    index: usize,
    names: &[&str],
    sink: &mut Sink<'_>,
) -> Vec<usize> {
    let mut controlled = Vec::new();
    for target in &partition.controls {
        let Some(found) = channels::resolve_partition(target, names, sink) else {
            continue;
        };
        if found == index {
            sink.error(
                &target.place,
                format!("partition `{}` cannot control itself", target.value),
                "leave it out of `controls`: once stopped, a partition cannot bring itself \
                 back; its `fault` policy says what happens when it fails",
            );
            continue;
        }
        if controlled.contains(&found) {
            sink.error(
                &target.place,
                format!("partition `{}` is listed twice in `controls`", target.value),
                "list each partition once",
            );
            continue;
        }
        controlled.push(found);
    }
    controlled
}

/// Resolves every partition's program; returns each partition's index into
/// the program table (distinct programs in order of first use).
fn check_programs(
    decl: &SystemDecl,
    programs: &[String],
    sink: &mut Sink<'_>,
) -> Vec<Option<usize>> {
    let mut table: Vec<&str> = Vec::new();
    let known: Vec<&str> = programs.iter().map(String::as_str).collect();
    let mut indices = Vec::new();
    for partition in &decl.partitions {
        let Some(program) = &partition.program else {
            indices.push(None);
            continue;
        };
        let name = program.value.as_str();
        if !known.contains(&name) {
            let available = if known.is_empty() {
                "services/ has no programs yet".to_owned()
            } else {
                format!("the programs in services/ are {}", list(&known))
            };
            let help = match closest(name, &known) {
                Some(near) => format!("did you mean `{near}`? {available}"),
                None => available,
            };
            sink.error(
                &program.place,
                format!("no program `{name}`: there is no services/{name}/ with a Cargo.toml and src/main.rs"),
                help,
            );
            indices.push(None);
            continue;
        }
        let index = table.iter().position(|p| *p == name).unwrap_or_else(|| {
            table.push(name);
            table.len() - 1
        });
        if index == MAX_PROGRAMS {
            sink.error(
                &program.place,
                format!("more than {MAX_PROGRAMS} distinct programs"),
                format!(
                    "an image carries at most {MAX_PROGRAMS} programs; let partitions share one"
                ),
            );
        }
        indices.push(Some(index));
    }
    indices
}

/// The program names in table order.
fn program_table_names(decl: &SystemDecl, indices: &[Option<usize>]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (partition, index) in decl.partitions.iter().zip(indices) {
        if let (Some(program), Some(index)) = (&partition.program, index)
            && *index == names.len()
        {
            names.push(program.value.clone());
        }
    }
    names
}

/// A partition's cores as a mask: the listed ones, or every core of the
/// platform.
fn check_cores(
    partition: &crate::system::PartitionDecl,
    platform: &Platform,
    sink: &mut Sink<'_>,
) -> Option<u8> {
    let all = u8::try_from((1u16 << platform.cores) - 1).unwrap_or(u8::MAX);
    let Some((cores, place)) = &partition.cores else {
        return Some(all);
    };
    if cores.is_empty() {
        sink.error(
            place,
            "no cores listed: the partition could never run",
            format!(
                "list at least one core from 0 to {}, or leave `cores` out for all of them",
                platform.cores - 1
            ),
        );
        return None;
    }
    let mut mask = 0u8;
    let mut ok = true;
    for core in cores {
        if core.value >= platform.cores {
            sink.error(
                &core.place,
                format!(
                    "core {} does not exist: {} has {} cores",
                    core.value, platform.name, platform.cores
                ),
                format!("use cores 0 to {}", platform.cores - 1),
            );
            ok = false;
        } else {
            mask |= 1 << core.value;
        }
    }
    ok.then_some(mask)
}

/// Resolves partition `index`'s devices against the platform and checks each
/// is owned once in the whole system.
fn check_devices(
    decl: &SystemDecl,
    index: usize,
    platform: &Platform,
    sink: &mut Sink<'_>,
) -> Vec<usize> {
    let Some(partition) = decl.partitions.get(index) else {
        return Vec::new();
    };
    let mut owned = Vec::new();
    for (position, device) in partition.devices.iter().enumerate() {
        let Some(found) = resolve_device(device, platform, sink) else {
            continue;
        };
        if partition.devices[..position]
            .iter()
            .any(|earlier| earlier.value == device.value)
        {
            sink.error(
                &device.place,
                format!("device `{}` is listed twice", device.value),
                "list each device once",
            );
            continue;
        }
        let earlier_owner = decl.partitions[..index]
            .iter()
            .find(|other| other.devices.iter().any(|d| d.value == device.value));
        if let Some(owner) = earlier_owner {
            sink.error(
                &device.place,
                format!(
                    "device `{}` is already owned by partition `{}`",
                    device.value, owner.name.value
                ),
                "a device belongs to one partition; others reach it through a channel to its owner",
            );
            continue;
        }
        let owned_before: usize = decl.partitions[..index]
            .iter()
            .map(|p| p.devices.len())
            .sum();
        if owned_before + owned.len() == MAX_DEVICES {
            sink.error(
                &device.place,
                format!("more than {MAX_DEVICES} devices given to partitions"),
                "the kernel maps at most 32 devices into partitions",
            );
        }
        owned.push(found);
    }
    owned
}

/// Finds a device of the platform by name, or reports it.
pub(crate) fn resolve_device(
    device: &At<String>,
    platform: &Platform,
    sink: &mut Sink<'_>,
) -> Option<usize> {
    if let Some((index, _)) = platform.device(&device.value) {
        return Some(index);
    }
    let names: Vec<&str> = platform.devices.iter().map(|d| d.name.as_str()).collect();
    let available = format!("{} has {}", platform.name, list(&names));
    let help = match closest(&device.value, &names) {
        Some(near) => format!("did you mean `{near}`? {available}"),
        None => available,
    };
    sink.error(
        &device.place,
        format!("no device `{}` on platform {}", device.value, platform.name),
        help,
    );
    None
}

/// Memory: each partition's RAM fits its window, fixed bases are in free
/// RAM and apart, and everything fits the platform's free RAM.
fn check_memory(decl: &SystemDecl, platform: &Platform, sink: &mut Sink<'_>) {
    let window = SHARED_IPA - RAM_IPA;
    let free = platform.free_memory();
    let free_total: u64 = free.iter().map(|span| span.size).sum();
    let mut fixed: Vec<(Span, &str)> = Vec::new();
    let mut total: u64 = 0;
    let mut over = false;
    let mut add = |bytes: u64, place: &crate::diag::Place, sink: &mut Sink<'_>| {
        total = total.saturating_add(bytes);
        if total > free_total && !over {
            over = true;
            sink.error(
                place,
                format!(
                    "partitions and shared memory need {} up to here, more than the {} of RAM {} leaves free",
                    human_or_huge(total),
                    human(free_total),
                    platform.name
                ),
                format!(
                    "reduce memory sizes: the platform's RAM is {} less what `[[reserved]]` keeps for the kernel",
                    human(platform.memory.iter().map(|bank| bank.size).sum())
                ),
            );
        }
    };
    for partition in &decl.partitions {
        let Some(memory) = &partition.memory else {
            continue;
        };
        let bytes = memory.value.bytes;
        add(bytes, &memory.place, sink);
        if bytes > window {
            sink.error(
                &memory.place,
                format!(
                    "{} is more than the {} a partition's RAM window holds",
                    memory.value.written,
                    human(window)
                ),
                format!("give the partition at most {}", short(window)),
            );
        }
        let Some(base) = &partition.base else {
            continue;
        };
        let Some(end) = base.value.checked_add(bytes) else {
            sink.error(
                &base.place,
                format!(
                    "{:#x} + {} overflows the address space",
                    base.value, memory.value.written
                ),
                "fix the base inside the platform's RAM",
            );
            continue;
        };
        let span = Span {
            base: base.value,
            size: bytes,
        };
        let ram_text = platform
            .memory
            .iter()
            .map(|bank| format!("{:#x}..{:#x}", bank.base, bank.end()))
            .collect::<Vec<_>>()
            .join(", ");
        if !platform.memory.iter().any(|bank| bank.contains(span)) {
            sink.error(
                &base.place,
                format!(
                    "memory {:#x}..{end:#x} is not inside the platform's RAM ({ram_text})",
                    base.value
                ),
                "choose a base in RAM, or leave `base` out and let the kernel place it",
            );
        } else if let Some(reserved) = platform.reserved.iter().find(|r| r.span.overlaps(span)) {
            sink.error(
                &base.place,
                format!(
                    "memory {:#x}..{end:#x} overlaps {:#x}..{:#x}, reserved for the {}",
                    base.value,
                    reserved.span.base,
                    reserved.span.end(),
                    reserved.what
                ),
                format!(
                    "choose a base outside the reserved range, e.g. {:#x}, or leave `base` out",
                    reserved.span.end()
                ),
            );
        } else if let Some((other, name)) = fixed.iter().find(|(other, _)| other.overlaps(span)) {
            sink.error(
                &base.place,
                format!(
                    "memory {:#x}..{end:#x} overlaps partition `{name}`'s ({:#x}..{:#x})",
                    base.value,
                    other.base,
                    other.end()
                ),
                "partitions never share RAM; declare a shared-memory channel instead",
            );
        }
        fixed.push((span, &partition.name.value));
    }
    for channel in &decl.channels {
        if let crate::system::ChannelKind::SharedMemory {
            size: Some(size), ..
        } = &channel.kind
        {
            add(size.value.bytes, &size.place, sink);
        }
    }
}

/// A total that may have saturated, or be exact to no useful purpose.
fn human_or_huge(bytes: u64) -> String {
    if bytes == u64::MAX {
        "more than 2^64 bytes".to_owned()
    } else if bytes.is_multiple_of(crate::size::MIB) {
        human(bytes)
    } else {
        format!("about {}", crate::size::approximate(bytes))
    }
}

/// Each partition's address space: devices (at IPA = PA) clear of its RAM
/// and shared regions, everything inside the IPA space.
fn check_address_spaces(
    decl: &SystemDecl,
    platform: &Platform,
    channels: &[crate::model::Channel],
    sink: &mut Sink<'_>,
) {
    for (index, partition) in decl.partitions.iter().enumerate() {
        let mut taken: Vec<(Span, String)> = Vec::new();
        if let Some(memory) = &partition.memory {
            taken.push((
                Span {
                    base: RAM_IPA,
                    size: memory.value.bytes.min(SHARED_IPA - RAM_IPA),
                },
                "its RAM".to_owned(),
            ));
        }
        for channel in channels {
            if let ChannelKind::SharedMemory { size, ipa, ends } = &channel.kind
                && ends.iter().any(|(p, _)| *p == index)
            {
                taken.push((
                    Span {
                        base: *ipa,
                        size: *size,
                    },
                    format!("shared memory `{}`", channel.name),
                ));
            }
        }
        for device in &partition.devices {
            let Some((_, found)) = platform.device(&device.value) else {
                continue;
            };
            if found.span.end() > hv_image::IPA_LIMIT {
                sink.error(
                    &device.place,
                    format!(
                        "device `{}` at {:#x} is beyond the 39-bit IPA space it would be mapped at",
                        found.name, found.span.base
                    ),
                    "devices are mapped at IPA = PA; this one cannot be given to a partition",
                );
            } else if let Some((_, what)) = taken.iter().find(|(span, _)| span.overlaps(found.span))
            {
                sink.error(
                    &device.place,
                    format!(
                        "device `{}` ({:#x}..{:#x}, mapped at IPA = PA) would overlap {what} in the partition's address space",
                        found.name,
                        found.span.base,
                        found.span.end()
                    ),
                    "give the partition less memory, or leave the device out",
                );
            }
        }
    }
}

/// Capabilities and mappings per partition within the kernel's tables; and
/// no two capabilities of one partition with the same name (a channel, a
/// device it owns, the kernel log, a partition it controls).
fn check_capability_counts(
    decl: &SystemDecl,
    channels: &[crate::model::Channel],
    sink: &mut Sink<'_>,
) {
    for (index, partition) in decl.partitions.iter().enumerate() {
        let mut caps = partition.devices.len();
        let mut mappings = partition.devices.len();
        for channel in channels {
            if channels::involves(&channel.kind, index) {
                caps += 1;
                if matches!(channel.kind, ChannelKind::SharedMemory { .. }) {
                    mappings += 1;
                }
                if let Some(device) = partition.devices.iter().find(|d| d.value == channel.name) {
                    sink.error(
                        &device.place,
                        format!(
                            "partition `{}` would hold two capabilities named `{}`: the device and the channel",
                            partition.name.value, channel.name
                        ),
                        "rename the channel: a service names its capabilities by channel and device names",
                    );
                }
            }
        }
        let reads_kernel_log = decl
            .kernel_log
            .as_ref()
            .is_some_and(|log| log.partition.value == partition.name.value);
        caps += usize::from(reads_kernel_log) + partition.controls.len();
        for target in &partition.controls {
            let channel = channels
                .iter()
                .find(|c| c.name == target.value && channels::involves(&c.kind, index));
            let device = partition.devices.iter().find(|d| d.value == target.value);
            let clash = if channel.is_some() {
                Some(("channel", "rename the channel"))
            } else if device.is_some() {
                Some(("device", "rename the partition"))
            } else if reads_kernel_log && target.value == "kernel-log" {
                Some(("kernel log", "rename the partition"))
            } else {
                None
            };
            if let Some((what, fix)) = clash {
                sink.error(
                    &target.place,
                    format!(
                        "partition `{}` would hold two capabilities named `{}`: the {what} and the control of partition `{}`",
                        partition.name.value, target.value, target.value
                    ),
                    format!(
                        "{fix}: a service names its capabilities by channel, device and partition names"
                    ),
                );
            }
        }
        if let Some(replies) = &partition.replies {
            caps += usize::from(replies.value);
            for k in 0..replies.value {
                let reply = format!("reply-{k}");
                let channel = channels
                    .iter()
                    .any(|c| c.name == reply && channels::involves(&c.kind, index));
                let clash = if channel {
                    Some("channel")
                } else if partition.devices.iter().any(|d| d.value == reply) {
                    Some("device")
                } else if partition.controls.iter().any(|t| t.value == reply) {
                    Some("partition")
                } else {
                    None
                };
                if let Some(what) = clash {
                    sink.error(
                        &replies.place,
                        format!(
                            "partition `{}` would hold two capabilities named `{reply}`: a reply object and the {what}",
                            partition.name.value
                        ),
                        format!(
                            "rename the {what}: a partition's reply objects are named reply-0, reply-1 and so on"
                        ),
                    );
                }
            }
        }
        if caps > MAX_CAPS {
            sink.error(
                &partition.name.place,
                format!(
                    "partition `{}` would hold {caps} capabilities, more than {MAX_CAPS}",
                    partition.name.value
                ),
                "split its work across partitions, or share channels",
            );
        }
        if mappings > MAX_MAPPINGS {
            sink.error(
                &partition.name.place,
                format!(
                    "partition `{}` would have {mappings} device and shared-memory mappings, more than {MAX_MAPPINGS}",
                    partition.name.value
                ),
                "give it fewer devices or shared-memory channels",
            );
        }
    }
    let mut vcpus = 0usize;
    for partition in &decl.partitions {
        let before = vcpus;
        vcpus += usize::from(partition.vcpus);
        if before <= MAX_SYSTEM_VCPUS && vcpus > MAX_SYSTEM_VCPUS {
            sink.error(
                &partition.name.place,
                format!(
                    "the system would have {vcpus} vCPUs, more than the kernel's {MAX_SYSTEM_VCPUS}"
                ),
                "give partitions fewer vCPUs (`vcpus`), or merge some",
            );
        }
    }
    let mut replies = 0usize;
    for partition in &decl.partitions {
        let Some(own) = &partition.replies else {
            continue;
        };
        let before = replies;
        replies += usize::from(own.value);
        if before <= MAX_REPLIES && replies > MAX_REPLIES {
            sink.error(
                &own.place,
                format!("the system would have {replies} reply objects, more than {MAX_REPLIES}"),
                "give partitions fewer reply objects: each is one call kept in hand",
            );
        }
    }
}
