// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Memory and address spaces: each partition's RAM fits its window and the
//! platform's free RAM, fixed bases are apart and outside reserved ranges,
//! and devices (mapped at IPA = PA) land clear of everything else a
//! partition maps (and, for a virtual machine, of the devices its monitor
//! emulates: `check/passthrough.rs`). Part of the semantic checks
//! (`check.rs`).

use hv_image::RAM_IPA;

use crate::diag::Sink;
use crate::model::{ChannelKind, Guest, SHARED_IPA};
use crate::platform::{Platform, Span};
use crate::size::{human, short};
use crate::system::SystemDecl;

/// Memory: each partition's RAM fits its window, fixed bases are in free
/// RAM and apart, and everything fits the platform's free RAM.
pub(super) fn check_memory(decl: &SystemDecl, platform: &Platform, sink: &mut Sink<'_>) {
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

/// Each partition's address space: devices (at IPA = PA) clear of its RAM,
/// its shared regions and (for a monitor) its guest's RAM and files,
/// everything inside the IPA space.
pub(super) fn check_address_spaces(
    decl: &SystemDecl,
    platform: &Platform,
    channels: &[crate::model::Channel],
    guests: &[Option<Guest>],
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
        for (vm, guest) in decl.partitions.iter().zip(guests) {
            let Some(guest) = guest.as_ref().filter(|g| g.monitor == index) else {
                continue;
            };
            let guest_name = &vm.name.value;
            if let Some(memory) = &vm.memory {
                taken.push((
                    Span {
                        base: guest.window,
                        size: memory.value.bytes,
                    },
                    format!("the RAM of virtual machine `{guest_name}`"),
                ));
            }
            for (file, what) in [
                (Some(&guest.kernel), "kernel"),
                (guest.initrd.as_ref(), "initrd"),
            ] {
                if let Some(file) = file {
                    taken.push((
                        Span {
                            base: file.ipa,
                            size: file.size.next_multiple_of(hv_image::PAGE_SIZE),
                        },
                        format!("the {what} of virtual machine `{guest_name}`"),
                    ));
                }
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
            } else if partition.is_vm()
                && super::passthrough::check_guest_layout(partition, device, found, sink)
            {
                // Reported: it lands on the guest's RAM or emulated devices.
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
