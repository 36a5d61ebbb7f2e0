// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The semantic checks: names resolve, devices and memory fit the platform
//! and are owned once, limits hold. Produces the checked [`System`] when
//! nothing is wrong.
//!
//! Every check runs, whatever failed before it, as long as the values it
//! needs were readable; checks that need the platform are skipped when the
//! platform could not be read (its own errors are reported instead).
//! Channels (ends, badges, bits, interrupts) are `channels.rs`'s part,
//! virtual machines (monitors, files, their layout) `vm.rs`'s; memory and
//! address spaces are in `check/memory.rs`, what a virtual machine's devices
//! must be in `check/passthrough.rs`, the kernel's table limits in
//! `check/counts.rs`, the schedule and budgets in `check/schedule.rs`,
//! grant-transitivity (chains of grant endpoints) in `check/grants.rs`.
//! A partition's `controls` must name other partitions, each once: a
//! partition controlling itself would be pointless (once stopped, it could
//! not restart itself) and is most likely a slip of the pen, so it is an
//! error. Its `fault-notification` names a notification channel it waits
//! on; each partition it controls gets the lowest bit there that nothing
//! else sets (signallers, interrupts, the kernel log), in `controls` order.

use hv_image::grant::{self, Kept, Refusal};
use hv_image::{MAX_DEVICES, MAX_FAULT_SIGNALS, MAX_PARTITIONS, MAX_PROGRAMS};

use crate::channels;
use crate::diag::{At, Sink};
use crate::environment::{Environment, PROGRAM_PLACES};
use crate::model::{Budget, ChannelKind, KernelLog, Kind, Partition, System};
use crate::platform::Platform;
use crate::read::{closest, list};
use crate::system::{KernelLogDecl, KindDecl, PartitionDecl, SystemDecl};
use crate::vm::{self, Folder};

mod counts;
mod grants;
mod memory;
mod passthrough;
mod schedule;

use counts::check_capability_counts;
use memory::{check_address_spaces, check_memory};
use passthrough::check_passthrough;

/// Checks a read manifest against the platform, the known programs and the
/// default guest. Returns the checked system only if nothing at all is wrong
/// (and the platform was readable).
pub(crate) fn check(
    decl: &SystemDecl,
    platform: Option<&Platform>,
    environment: &Environment,
    folder: &Folder,
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
    let (program_indices, program_names) = check_programs(decl, environment, sink);
    let mut pieces = Vec::new();
    for (i, declared) in decl.partitions.iter().enumerate() {
        let cores = platform.and_then(|platform| check_cores(declared, platform, sink));
        let devices = platform
            .map(|platform| check_devices(decl, i, platform, sink))
            .unwrap_or_default();
        let controls = check_controls(declared, i, &names, sink);
        pieces.push((cores, devices, controls));
    }
    let checked = channels::check(decl, &names, platform, sink);
    let guests = vm::check(
        decl,
        &names,
        checked.as_ref().map(|c| c.channels.as_slice()),
        environment,
        folder,
        sink,
    );
    if let Some(platform) = platform {
        check_memory(decl, platform, sink);
        check_passthrough(decl, platform, sink);
        if let Some(checked) = &checked {
            check_address_spaces(decl, platform, &checked.channels, &guests, sink);
        }
    }
    if let Some(checked) = &checked {
        check_capability_counts(decl, &checked.channels, sink);
    }
    let masks: Vec<Option<u8>> = pieces.iter().map(|(cores, _, _)| *cores).collect();
    let schedule = match (&decl.schedule, platform) {
        (Some(schedule), Some(platform)) => {
            schedule::check_schedule(decl, schedule, &names, &masks, platform, sink)
        }
        _ => None,
    };
    let budgets: Vec<Option<Vec<Budget>>> = decl
        .partitions
        .iter()
        .map(|p| schedule::check_budgets(p, platform?, sink))
        .collect();
    let kernel_log = match (&decl.kernel_log, &checked) {
        (Some(log), Some(checked)) => check_kernel_log(log, &names, checked, sink),
        _ => None,
    };
    let mut fault_notifications = Vec::new();
    let mut signals = 0;
    if let Some(checked) = &checked {
        for (i, (declared, (_, _, controls))) in decl.partitions.iter().zip(&pieces).enumerate() {
            let found = declared.fault_notification.as_ref().and_then(|channel| {
                check_fault_notification(
                    (declared, i, channel),
                    controls,
                    &names,
                    checked,
                    kernel_log.as_ref(),
                    sink,
                )
            });
            if let (Some((_, bits)), Some(channel)) = (&found, &declared.fault_notification) {
                signals += bits.len();
                if signals > MAX_FAULT_SIGNALS && signals - bits.len() <= MAX_FAULT_SIGNALS {
                    sink.error(
                        &channel.place,
                        format!(
                            "more than {MAX_FAULT_SIGNALS} partitions are watched through a \
                             `fault-notification`"
                        ),
                        format!(
                            "the kernel keeps at most {MAX_FAULT_SIGNALS} fault signals; let \
                             fewer monitors watch, or watch fewer partitions"
                        ),
                    );
                }
            }
            fault_notifications.push(found);
        }
    }
    if let Some(checked) = &checked {
        let controls: Vec<Vec<usize>> = pieces.iter().map(|(_, _, c)| c.clone()).collect();
        let monitors: Vec<(usize, usize)> = (0..decl.partitions.len())
            .filter_map(|monitor| {
                let vm = vm::monitored_by(decl, monitor)?;
                let vm = names.iter().position(|n| *n == vm.name.value)?;
                Some((monitor, vm))
            })
            .collect();
        let others = grants::Others {
            controls: &controls,
            monitors: &monitors,
            log_reader: kernel_log.as_ref().map(|log| log.partition),
        };
        grants::check_grant_chains(decl, &checked.channels, &names, &others, sink);
    }
    let (platform, checked) = (platform?, checked?);
    if sink.has_errors() {
        return None;
    }
    let mut partitions = Vec::new();
    for (
        ((((declared, (cores, devices, controls)), program), guest), fault_notification),
        budget,
    ) in decl
        .partitions
        .iter()
        .zip(pieces)
        .zip(program_indices)
        .zip(guests)
        .zip(fault_notifications)
        .zip(budgets)
    {
        let kind = match (declared.kind?, program, guest) {
            (KindDecl::Service, Some(program), _) => Kind::Service { program },
            (KindDecl::Vm, _, Some(guest)) => Kind::Vm(Box::new(guest)),
            _ => return None,
        };
        partitions.push(Partition {
            name: declared.name.value.clone(),
            kind,
            memory: declared.memory.as_ref()?.value.bytes,
            base: declared.base.as_ref().map(|base| base.value),
            vcpus: declared.vcpus,
            cores: cores?,
            priority: declared.priority,
            fault: declared.fault,
            devices,
            controls,
            fault_notification,
            replies: declared.replies.as_ref().map_or(0, |r| r.value),
            settings: declared.settings.clone(),
            budgets: budget?,
        });
    }
    Some(System {
        name: decl.name.as_ref()?.value.clone(),
        description: decl.description.clone(),
        platform: platform.clone(),
        program_folders: program_names
            .iter()
            .map(|name| {
                environment
                    .program_folders(name)
                    .first()
                    .map_or_else(|| format!("services/{name}"), |f| f.display().to_string())
            })
            .collect(),
        programs: program_names,
        partitions,
        channels: checked.channels,
        irqs: checked.irqs,
        kernel_log,
        scrub_on_switch: decl.scrub_on_switch,
        schedule,
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

/// Resolves a partition's `fault-notification` (`partition`: its
/// declaration, index and the channel it names): a notification channel it
/// waits on, and it controls someone. Each partition it controls (`controls`,
/// resolved) gets the lowest bit of the notification nothing else sets.
fn check_fault_notification(
    (partition, index, channel): (&PartitionDecl, usize, &At<String>),
    controls: &[usize],
    names: &[&str],
    checked: &channels::Checked,
    kernel_log: Option<&KernelLog>,
    sink: &mut Sink<'_>,
) -> Option<(usize, Vec<u8>)> {
    let me = &partition.name.value;
    let found = checked
        .channels
        .iter()
        .enumerate()
        .find(|(_, c)| c.name == channel.value);
    let Some((number, ChannelKind::Notification { waiter, signallers })) =
        found.map(|(i, c)| (i, &c.kind))
    else {
        sink.error(
            &channel.place,
            format!("no notification channel is called `{}`", channel.value),
            format!(
                "declare a `kind = \"notification\"` channel with `waiter = \"{me}\"` and name it here"
            ),
        );
        return None;
    };
    if *waiter != index {
        sink.error(
            &channel.place,
            format!(
                "`{}` waits on `{}`, not `{me}`",
                names.get(*waiter).copied().unwrap_or("?"),
                channel.value,
            ),
            "a fault notification is one its partition waits on".to_owned(),
        );
        return None;
    }
    if partition.controls.is_empty() {
        sink.error(
            &channel.place,
            format!("`{me}` has a `fault-notification` but controls no partition"),
            "list the partitions it watches in `controls`: the kernel signals their faults"
                .to_owned(),
        );
        return None;
    }
    let mut used: u64 = signallers.iter().fold(0, |bits, (_, bit)| bits | 1 << bit);
    used |= checked
        .irqs
        .iter()
        .filter(|irq| irq.channel == number)
        .fold(0, |bits, irq| bits | 1 << irq.bit);
    if let Some(log) = kernel_log.filter(|log| log.channel == number) {
        used |= 1 << log.bit;
    }
    let mut bits = Vec::new();
    for _ in controls {
        let Some(bit) = (0..64u8).find(|bit| used & (1 << bit) == 0) else {
            sink.error(
                &channel.place,
                format!(
                    "`{}` has too few free bits for the {} partitions `{me}` controls",
                    channel.value,
                    controls.len()
                ),
                "give the fault notification a channel with a free bit for each".to_owned(),
            );
            return None;
        };
        used |= 1 << bit;
        bits.push(bit);
    }
    Some((number, bits))
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

/// Resolves every service's program. Returns each partition's index into
/// the program table (`None` for virtual machines and unknown programs) and
/// the table: distinct programs in order of first use, except that every
/// monitor of a virtual machine gets an entry of its own, since each is
/// built with its own guest's layout, and so does every partition with
/// settings, since each is built with its own.
fn check_programs(
    decl: &SystemDecl,
    environment: &Environment,
    sink: &mut Sink<'_>,
) -> (Vec<Option<usize>>, Vec<String>) {
    // Entries, each with whether it is one partition's own.
    let mut table: Vec<(&str, bool)> = Vec::new();
    let known = environment.programs();
    let mut indices = Vec::new();
    for (position, partition) in decl.partitions.iter().enumerate() {
        let Some(program) = partition.program.as_ref().filter(|_| !partition.is_vm()) else {
            indices.push(None);
            continue;
        };
        let name = program.value.as_str();
        if !known.contains(&name) {
            let available = if known.is_empty() {
                format!("{PROGRAM_PLACES} have no programs yet")
            } else {
                format!("the programs in {PROGRAM_PLACES} are {}", list(&known))
            };
            let help = match closest(name, &known) {
                Some(near) => format!("did you mean `{near}`? {available}"),
                None => available,
            };
            sink.error(
                &program.place,
                format!(
                    "no program `{name}`: there is no services/{name}/ or tests/partitions/{name}/ \
                     with a Cargo.toml and src/main.rs"
                ),
                help,
            );
            indices.push(None);
            continue;
        }
        let folders = environment.program_folders(name);
        if folders.len() > 1 {
            let places: Vec<String> = folders
                .iter()
                .map(|f| format!("{}/", f.display()))
                .collect();
            let places: Vec<&str> = places.iter().map(String::as_str).collect();
            sink.error(
                &program.place,
                format!("program `{name}` is in two places: {}", list(&places)),
                format!(
                    "a program is named by its folder, so the name must be unique across \
                     {PROGRAM_PLACES}: rename one (its folder and its package `svc-{name}`)"
                ),
            );
            indices.push(None);
            continue;
        }
        let own = vm::monitored_by(decl, position).is_some() || !partition.settings.is_empty();
        let shared = table
            .iter()
            .position(|(p, other_own)| *p == name && !other_own && !own);
        let index = shared.unwrap_or_else(|| {
            table.push((name, own));
            table.len() - 1
        });
        if index == MAX_PROGRAMS {
            sink.error(
                &program.place,
                format!("more than {MAX_PROGRAMS} programs"),
                format!(
                    "an image carries at most {MAX_PROGRAMS} programs (each virtual machine's \
                     monitor, and each partition with settings, has its own); let partitions \
                     share one"
                ),
            );
        }
        indices.push(Some(index));
    }
    let names = table.into_iter().map(|(name, _)| name.to_owned()).collect();
    (indices, names)
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
        if let Some(found) = platform.devices.get(found)
            && let Err(why) = judge_device(decl, platform, found)
        {
            sink.error(
                &device.place,
                format!(
                    "device `{}` may not be given to a partition: it is {why}",
                    device.value
                ),
                why.help(),
            );
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

/// The kernel's rule ([`hv_image::grant`]) for a platform's device: by its
/// model, and against what the kernel keeps: RAM, reserved ranges, and its
/// console while no partition reads the kernel log.
fn judge_device(
    decl: &SystemDecl,
    platform: &Platform,
    device: &crate::platform::Device,
) -> Result<(), Refusal> {
    let memory = platform.memory.iter().map(|span| (*span, Refusal::Memory));
    let reserved = platform.reserved.iter().map(|r| (r.span, Refusal::Memory));
    let console = platform
        .console
        .as_ref()
        .filter(|_| decl.kernel_log.is_none())
        .map(|console| (console.span, Refusal::Console));
    let kept: Vec<Kept> = memory
        .chain(reserved)
        .chain(console)
        .map(|(span, why)| Kept {
            base: span.base,
            size: span.size,
            why,
        })
        .collect();
    grant::judge(
        device.span.base,
        device.span.size,
        [device.compatible.as_str()],
        &kept,
    )
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
