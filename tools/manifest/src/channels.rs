// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Channels: ends resolved to partitions, endpoint badges and notification
//! bits chosen, interrupts bound, shared regions placed.
//!
//! Badges: a client without one gets the smallest positive number no other
//! client of that endpoint has. Bits: bits given in the manifest are taken
//! first; then signallers, in the order listed, and interrupts, in partition
//! order, get the lowest free bits. Shared regions are placed one after the
//! other from [`SHARED_IPA`], each on a [`SHARED_ALIGN`] boundary, at the
//! same address in every partition that maps them.

use hv_image::{IPA_LIMIT, MAX_ENDPOINTS, MAX_IRQS, MAX_NOTIFICATIONS, MAX_SHARED_REGIONS};

use crate::check::resolve_device;
use crate::diag::{At, Sink};
use crate::model::{BoundIrq, Channel, ChannelKind, SHARED_ALIGN, SHARED_IPA};
use crate::platform::Platform;
use crate::read::{closest, list};
use crate::system::{self, ChannelDecl, End, SystemDecl};

/// The checked channels and the interrupts bound to them.
pub(crate) struct Checked {
    /// Channels, in file order.
    pub(crate) channels: Vec<Channel>,
    /// Interrupts, in partition order.
    pub(crate) irqs: Vec<BoundIrq>,
}

/// Whether partition `p` is an end of a channel.
pub(crate) fn involves(kind: &ChannelKind, p: usize) -> bool {
    match kind {
        ChannelKind::Endpoint {
            server, clients, ..
        } => *server == p || clients.iter().any(|(c, _)| *c == p),
        ChannelKind::Notification { waiter, signallers } => {
            *waiter == p || signallers.iter().any(|(s, _)| *s == p)
        }
        ChannelKind::SharedMemory { ends, .. } => ends.iter().any(|(e, _)| *e == p),
    }
}

/// Finds a partition by name, or reports it.
pub(crate) fn resolve_partition(
    name: &At<String>,
    names: &[&str],
    sink: &mut Sink<'_>,
) -> Option<usize> {
    if let Some(index) = names.iter().position(|n| *n == name.value) {
        return Some(index);
    }
    let available = if names.is_empty() {
        "the system declares no partitions".to_owned()
    } else {
        format!("the partitions are {}", list(names))
    };
    let help = match closest(&name.value, names) {
        Some(near) => format!("did you mean `{near}`? {available}"),
        None => available,
    };
    sink.error(
        &name.place,
        format!("no partition named `{}`", name.value),
        help,
    );
    None
}

/// Resolves ends, reporting unknown partitions and partitions listed twice.
/// `None` if any end failed.
fn resolve_ends<'e>(
    ends: impl Iterator<Item = &'e At<String>>,
    names: &[&str],
    channel: &str,
    sink: &mut Sink<'_>,
) -> Option<Vec<usize>> {
    let mut resolved = Vec::new();
    let mut ok = true;
    for end in ends {
        let Some(index) = resolve_partition(end, names, sink) else {
            ok = false;
            continue;
        };
        if resolved.contains(&index) {
            sink.error(
                &end.place,
                format!("partition `{}` is listed twice in `{channel}`", end.value),
                "list each partition once per channel",
            );
            ok = false;
            continue;
        }
        resolved.push(index);
    }
    ok.then_some(resolved)
}

/// A channel after resolution, before bits are chosen.
enum Partial {
    /// Done.
    Ready(ChannelKind),
    /// A notification: waiter, and signallers with the bits they asked for.
    Notification(usize, Vec<(usize, Option<At<u64>>)>),
    /// Could not be resolved.
    Failed,
}

/// Checks every channel and interrupt binding.
pub(crate) fn check(
    decl: &SystemDecl,
    names: &[&str],
    platform: Option<&Platform>,
    sink: &mut Sink<'_>,
) -> Option<Checked> {
    check_names_and_counts(&decl.channels, sink);
    let mut next_ipa = Some(SHARED_IPA);
    let partial: Vec<Partial> = decl
        .channels
        .iter()
        .map(|channel| resolve(channel, names, &mut next_ipa, sink))
        .collect();
    let irqs = platform.and_then(|platform| bind_irqs(decl, platform, sink));
    let mut channels = Vec::new();
    let mut irqs = irqs.unwrap_or_default();
    let mut ok = platform.is_some();
    for (index, (channel, partial)) in decl.channels.iter().zip(partial).enumerate() {
        let kind = match partial {
            Partial::Ready(kind) => Some(kind),
            Partial::Notification(waiter, signallers) => {
                let named_by_irqs = channel.name.as_ref().is_some_and(|name| {
                    decl.partitions
                        .iter()
                        .any(|p| p.irqs.iter().any(|irq| irq.channel.value == name.value))
                });
                // The kernel's log may be all that signals it.
                let named_by_kernel_log = channel.name.as_ref().is_some_and(|name| {
                    decl.kernel_log
                        .as_ref()
                        .is_some_and(|log| log.notification.value == name.value)
                });
                // Or the faults of the partitions its waiter controls.
                let named_by_faults = channel.name.as_ref().is_some_and(|name| {
                    decl.partitions.iter().any(|p| {
                        p.fault_notification
                            .as_ref()
                            .is_some_and(|n| n.value == name.value)
                    })
                });
                let bound_irqs = irqs
                    .iter()
                    .any(|(irq, _)| irq.as_ref().is_some_and(|irq| irq.channel == index));
                if signallers.is_empty() && (named_by_kernel_log || named_by_faults) && !bound_irqs
                {
                    Some(ChannelKind::Notification {
                        waiter,
                        signallers: Vec::new(),
                    })
                } else {
                    choose_bits(
                        channel,
                        index,
                        waiter,
                        &signallers,
                        names,
                        named_by_irqs,
                        &mut irqs,
                        sink,
                    )
                }
            }
            Partial::Failed => None,
        };
        match (kind, &channel.name) {
            (Some(kind), Some(name)) => channels.push(Channel {
                name: name.value.clone(),
                kind,
                derive: channel.derive,
            }),
            _ => ok = false,
        }
    }
    let bound: Vec<BoundIrq> = irqs.into_iter().filter_map(|(irq, _)| irq).collect();
    ok.then_some(Checked {
        channels,
        irqs: bound,
    })
}

/// Unique channel names; kernel limits on endpoints and notifications.
fn check_names_and_counts(channels: &[ChannelDecl], sink: &mut Sink<'_>) {
    let (mut endpoints, mut notifications, mut regions) = (0, 0, 0);
    for (i, channel) in channels.iter().enumerate() {
        let place = channel.name.as_ref().map_or(&channel.place, |n| &n.place);
        if let Some(name) = &channel.name
            && channels[..i]
                .iter()
                .any(|other| other.name.as_ref().is_some_and(|o| o.value == name.value))
        {
            sink.error(
                place,
                format!("another channel is already named `{}`", name.value),
                "channel names are unique: services find their capabilities by them",
            );
        }
        match channel.kind {
            system::ChannelKind::Endpoint { .. } => {
                endpoints += 1;
                if endpoints == MAX_ENDPOINTS + 1 {
                    sink.error(
                        place,
                        format!("more than {MAX_ENDPOINTS} endpoint channels"),
                        "the kernel holds at most 64 endpoints; let services share one with badges",
                    );
                }
            }
            system::ChannelKind::Notification { .. } => {
                notifications += 1;
                if notifications == MAX_NOTIFICATIONS + 1 {
                    sink.error(
                        place,
                        format!("more than {MAX_NOTIFICATIONS} notification channels"),
                        "the kernel holds at most 64 notifications; use more bits of fewer notifications",
                    );
                }
            }
            system::ChannelKind::SharedMemory { .. } => {
                regions += 1;
                if regions == MAX_SHARED_REGIONS + 1 {
                    sink.error(
                        place,
                        format!("more than {MAX_SHARED_REGIONS} shared-memory channels"),
                        "the kernel holds at most 32 shared regions; share larger regions",
                    );
                }
            }
            system::ChannelKind::Unknown => {}
        }
    }
}

/// Resolves one channel's ends and checks its shape.
fn resolve(
    channel: &ChannelDecl,
    names: &[&str],
    next_ipa: &mut Option<u64>,
    sink: &mut Sink<'_>,
) -> Partial {
    let label = channel.name.as_ref().map_or("?", |n| n.value.as_str());
    match &channel.kind {
        system::ChannelKind::Endpoint {
            server,
            clients,
            grant,
        } => {
            let server_index = server
                .as_ref()
                .and_then(|server| resolve_partition(server, names, sink));
            let resolved = resolve_ends(clients.iter().map(|c| &c.partition), names, label, sink);
            if clients.is_empty() && channel.complete {
                sink.error(
                    &channel.place,
                    format!("endpoint `{label}` has no clients"),
                    "list the partitions that call it in `clients`",
                );
            }
            let (Some(server_index), Some(resolved)) = (server_index, resolved) else {
                return Partial::Failed;
            };
            let mut failed = clients.is_empty();
            for (client, index) in clients.iter().zip(&resolved) {
                if *index == server_index {
                    sink.error(
                        &client.partition.place,
                        format!(
                            "partition `{}` is the server of `{label}`; it cannot also be its client",
                            client.partition.value
                        ),
                        "remove it from `clients`: a partition calling its own endpoint would wait for itself forever",
                    );
                    failed = true;
                }
            }
            let badges = choose_badges(clients, label, sink);
            match badges {
                Some(badges) if !failed => Partial::Ready(ChannelKind::Endpoint {
                    server: server_index,
                    clients: resolved.into_iter().zip(badges).collect(),
                    grant: grant.as_ref().is_some_and(|grant| grant.value),
                }),
                _ => Partial::Failed,
            }
        }
        system::ChannelKind::Notification { waiter, signallers } => {
            let waiter = waiter
                .as_ref()
                .and_then(|waiter| resolve_partition(waiter, names, sink));
            let resolved =
                resolve_ends(signallers.iter().map(|s| &s.partition), names, label, sink);
            match (waiter, resolved) {
                (Some(waiter), Some(resolved)) => Partial::Notification(
                    waiter,
                    resolved
                        .into_iter()
                        .zip(signallers.iter().map(|s| s.tag.clone()))
                        .collect(),
                ),
                _ => Partial::Failed,
            }
        }
        system::ChannelKind::SharedMemory { size, ends } => {
            let resolved = resolve_ends(ends.iter().map(|e| &e.partition), names, label, sink);
            let (Some(size), Some(resolved)) = (size, resolved) else {
                *next_ipa = None;
                return Partial::Failed;
            };
            if !channel.complete {
                return Partial::Failed;
            }
            if resolved.len() < 2 {
                let count = if resolved.is_empty() {
                    "no partitions"
                } else {
                    "only one partition"
                };
                sink.error(
                    &channel.place,
                    format!("shared memory `{label}` has {count}: nothing is shared"),
                    "list at least two partitions in `readers`, `writers` or `ends`",
                );
                return Partial::Failed;
            }
            if !ends
                .iter()
                .any(|e| e.rights.value.contains(hv_abi::hypercall::Rights::WRITE))
            {
                sink.error(
                    &channel.place,
                    format!("no partition can write to shared memory `{label}`"),
                    "list the producer in `writers`, or give it `rights = \"rw\"`",
                );
                return Partial::Failed;
            }
            let Some(ipa) = place_region(next_ipa, size.value.bytes) else {
                sink.error(
                    &size.place,
                    format!("shared memory `{label}` does not fit the 39-bit IPA space after the regions before it"),
                    "use smaller shared regions",
                );
                return Partial::Failed;
            };
            Partial::Ready(ChannelKind::SharedMemory {
                size: size.value.bytes,
                ipa,
                ends: resolved
                    .into_iter()
                    .zip(ends.iter().map(|e| e.rights.value))
                    .collect(),
            })
        }
        system::ChannelKind::Unknown => Partial::Failed,
    }
}

/// Places a region of `size` bytes at `next`, advancing it; `None` (for
/// good) once the IPA space is exhausted.
fn place_region(next: &mut Option<u64>, size: u64) -> Option<u64> {
    let ipa = (*next)?;
    let end = ipa.checked_add(size).filter(|end| *end <= IPA_LIMIT);
    *next = end.and_then(|end| end.checked_next_multiple_of(SHARED_ALIGN));
    end.map(|_| ipa)
}

/// Badges for an endpoint's clients: given ones distinct, the rest chosen.
fn choose_badges(clients: &[End], label: &str, sink: &mut Sink<'_>) -> Option<Vec<u64>> {
    let mut ok = true;
    let mut taken: Vec<u64> = Vec::new();
    for (i, client) in clients.iter().enumerate() {
        let Some(badge) = &client.tag else { continue };
        if let Some(other) = clients[..i]
            .iter()
            .find(|o| o.tag.as_ref().is_some_and(|t| t.value == badge.value))
        {
            sink.error(
                &badge.place,
                format!(
                    "badge {} of `{label}` is also client `{}`'s",
                    badge.value, other.partition.value
                ),
                "give each client its own badge, or leave badges out to have them chosen",
            );
            ok = false;
        }
        taken.push(badge.value);
    }
    let mut next = 1u64;
    let mut badges = Vec::new();
    for client in clients {
        if let Some(badge) = &client.tag {
            badges.push(badge.value);
            continue;
        }
        while taken.contains(&next) {
            next += 1;
        }
        taken.push(next);
        badges.push(next);
    }
    ok.then_some(badges)
}

/// One interrupt binding before its bit is known: the interrupt (or `None`
/// if it could not be bound) and the bit asked for.
type PendingIrq = (Option<BoundIrq>, Option<At<u64>>);

/// Resolves every partition's `irqs` entries to interrupts on notification
/// channels.
fn bind_irqs(
    decl: &SystemDecl,
    platform: &Platform,
    sink: &mut Sink<'_>,
) -> Option<Vec<PendingIrq>> {
    let mut bound = Vec::new();
    let mut count = 0usize;
    for (owner, partition) in decl.partitions.iter().enumerate() {
        for irq in &partition.irqs {
            let Some(device) = resolve_device(&irq.device, platform, sink) else {
                continue;
            };
            let Some(found) = platform.devices.get(device) else {
                continue;
            };
            let owns = partition
                .devices
                .iter()
                .any(|d| d.value == irq.device.value);
            if !owns {
                let holder = decl
                    .partitions
                    .iter()
                    .find(|p| p.devices.iter().any(|d| d.value == irq.device.value));
                let (message, help) = match holder {
                    Some(holder) if holder.is_vm() => (
                        format!(
                            "device `{}` belongs to virtual machine `{}`, whose guest takes its interrupts",
                            irq.device.value, holder.name.value
                        ),
                        "remove this entry: a virtual machine's devices' interrupts are passed \
                         through to its guest"
                            .to_owned(),
                    ),
                    Some(holder) => (
                        format!(
                            "device `{}` belongs to partition `{}`; only its owner can take its interrupts",
                            irq.device.value, holder.name.value
                        ),
                        "bind the interrupt in the owner's `irqs`".to_owned(),
                    ),
                    None => (
                        format!(
                            "partition `{}` does not own device `{}`",
                            partition.name.value, irq.device.value
                        ),
                        format!("add `\"{}\"` to its `devices`", irq.device.value),
                    ),
                };
                sink.error(&irq.device.place, message, help);
                continue;
            }
            if found.irqs.is_empty() {
                sink.error(
                    &irq.device.place,
                    format!("device `{}` has no interrupts", found.name),
                    "remove this entry; the platform lists no `irqs` for the device",
                );
                continue;
            }
            let Some(channel) = notification_of(decl, irq, owner, sink) else {
                continue;
            };
            for (k, intid) in found.irqs.iter().enumerate() {
                count += 1;
                if count == MAX_IRQS + 1 {
                    sink.error(
                        &irq.device.place,
                        format!("more than {MAX_IRQS} interrupts bound"),
                        "the kernel routes at most 32 interrupts to partitions",
                    );
                }
                let bit = irq
                    .bit
                    .as_ref()
                    .map(|bit| At::new(u64::from(bit.value) + k as u64, bit.place.clone()));
                bound.push((
                    Some(BoundIrq {
                        intid: *intid,
                        device,
                        channel,
                        bit: 0,
                    }),
                    bit,
                ));
            }
        }
    }
    Some(bound)
}

/// The notification channel an interrupt binding names, checked to be one
/// that `owner` waits on.
fn notification_of(
    decl: &SystemDecl,
    irq: &system::IrqDecl,
    owner: usize,
    sink: &mut Sink<'_>,
) -> Option<usize> {
    let name = &irq.channel;
    let Some(index) = decl
        .channels
        .iter()
        .position(|c| c.name.as_ref().is_some_and(|n| n.value == name.value))
    else {
        let notifications: Vec<&str> = decl
            .channels
            .iter()
            .filter(|c| matches!(c.kind, system::ChannelKind::Notification { .. }))
            .filter_map(|c| c.name.as_ref().map(|n| n.value.as_str()))
            .collect();
        let help = match closest(&name.value, &notifications) {
            Some(near) => format!("did you mean `{near}`?"),
            None => "declare it: `[[channels]]` with `kind = \"notification\"` and this partition as `waiter`".to_owned(),
        };
        sink.error(
            &name.place,
            format!("no channel named `{}`", name.value),
            help,
        );
        return None;
    };
    let channel = decl.channels.get(index)?;
    let system::ChannelKind::Notification { waiter, .. } = &channel.kind else {
        sink.error(
            &name.place,
            format!("channel `{}` is not a notification", name.value),
            "interrupts arrive as notification bits: bind them to a channel with `kind = \"notification\"`",
        );
        return None;
    };
    let partition_name = decl.partitions.get(owner).map(|p| p.name.value.as_str())?;
    if waiter.as_ref().is_some_and(|w| w.value != partition_name) {
        sink.error(
            &name.place,
            format!(
                "notification `{}` is waited on by `{}`, not by `{partition_name}`, which owns the device",
                name.value,
                waiter.as_ref().map_or("", |w| w.value.as_str())
            ),
            "a device's interrupts go to a notification its owner waits on",
        );
        return None;
    }
    Some(index)
}

/// Chooses every bit of notification `index`: signallers' and interrupts'.
/// `named_by_irqs` says whether some partition's `irqs` names the channel
/// (even in a binding that failed), so that an empty notification is not
/// reported twice.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site; the pieces are unrelated"
)]
fn choose_bits(
    channel: &ChannelDecl,
    index: usize,
    waiter: usize,
    signallers: &[(usize, Option<At<u64>>)],
    names: &[&str],
    named_by_irqs: bool,
    irqs: &mut [PendingIrq],
    sink: &mut Sink<'_>,
) -> Option<ChannelKind> {
    let label = channel.name.as_ref().map_or("?", |n| n.value.as_str());
    let mine: Vec<usize> = irqs
        .iter()
        .enumerate()
        .filter(|(_, (irq, _))| irq.as_ref().is_some_and(|irq| irq.channel == index))
        .map(|(i, _)| i)
        .collect();
    if signallers.is_empty() && mine.is_empty() {
        if channel.complete && !named_by_irqs {
            sink.error(
                &channel.place,
                format!("nothing signals notification `{label}`"),
                "list partitions in `signallers`, or bind an interrupt to it in its waiter's `irqs`",
            );
        }
        return None;
    }
    // Bits given in the manifest, with who asked for them.
    let mut requested: Vec<(&At<u64>, String)> = Vec::new();
    for (partition, bit) in signallers {
        if let Some(bit) = bit {
            let who = names.get(*partition).copied().unwrap_or("?");
            requested.push((bit, format!("signaller `{who}`")));
        }
    }
    for i in &mine {
        if let Some((Some(irq), Some(bit))) = irqs.get(*i) {
            requested.push((bit, format!("interrupt {}", irq.intid)));
        }
    }
    let mut used: u64 = 0;
    let mut owners: Vec<(u64, &str)> = Vec::new();
    let mut ok = true;
    for (bit, who) in &requested {
        if bit.value > 63 {
            sink.error(
                &bit.place,
                format!(
                    "{who} would take bit {}, past the 64 bits of notification `{label}`",
                    bit.value
                ),
                "a device's interrupts take consecutive bits from the one given; choose a lower one",
            );
            ok = false;
        } else if let Some((_, owner)) = owners.iter().find(|(b, _)| *b == bit.value) {
            sink.error(
                &bit.place,
                format!(
                    "bit {} of notification `{label}` is already taken by {owner}",
                    bit.value
                ),
                "give each signaller and interrupt its own bit, or leave bits out to have them chosen",
            );
            ok = false;
        } else {
            used |= 1 << bit.value;
            owners.push((bit.value, who));
        }
    }
    let mut full = false;
    let mut next_free = || -> u8 {
        let bit = (!used).trailing_zeros();
        if bit >= 64 {
            full = true;
            return 0;
        }
        used |= 1 << bit;
        u8::try_from(bit).unwrap_or(0)
    };
    let mut chosen = Vec::new();
    for (partition, bit) in signallers {
        let bit = match bit {
            Some(bit) => u8::try_from(bit.value).unwrap_or(0),
            None => next_free(),
        };
        chosen.push((*partition, bit));
    }
    for i in mine {
        if let Some((Some(irq), bit)) = irqs.get_mut(i) {
            irq.bit = match bit {
                Some(bit) => u8::try_from(bit.value).unwrap_or(0),
                None => next_free(),
            };
        }
    }
    if full {
        sink.error(
            &channel.place,
            format!("notification `{label}` needs more than 64 bits"),
            "split its signallers and interrupts across notifications",
        );
        return None;
    }
    ok.then_some(ChannelKind::Notification {
        waiter,
        signallers: chosen,
    })
}
