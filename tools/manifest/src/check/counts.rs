// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The kernel's tables: capabilities and mappings per partition, vCPUs and
//! reply objects per system, and capability names unique in each
//! partition. Part of the semantic checks (`check.rs`).

use hv_image::{MAX_CAPS, MAX_MAPPINGS, MAX_REPLIES, MAX_SYSTEM_VCPUS};

use crate::channels;
use crate::diag::Sink;
use crate::model::ChannelKind;
use crate::system::SystemDecl;
use crate::vm;

/// Capabilities and mappings per partition within the kernel's tables; and
/// no two capabilities of one partition with the same name (a channel, a
/// device a service owns, the kernel log, a partition it controls).
pub(super) fn check_capability_counts(
    decl: &SystemDecl,
    channels: &[crate::model::Channel],
    sink: &mut Sink<'_>,
) {
    for (index, partition) in decl.partitions.iter().enumerate() {
        let (guest_caps, guest_mappings) = vm::monitor_load(decl, index);
        // A service holds a capability for each device it owns; a virtual
        // machine holds none (its guest completes its interrupts itself).
        let device_caps = if partition.is_vm() {
            &[][..]
        } else {
            partition.devices.as_slice()
        };
        let mut caps = device_caps.len() + guest_caps;
        let mut mappings = partition.devices.len() + guest_mappings;
        for channel in channels {
            if channels::involves(&channel.kind, index) {
                caps += 1;
                if matches!(channel.kind, ChannelKind::SharedMemory { .. }) {
                    mappings += 1;
                }
                if let Some(device) = device_caps.iter().find(|d| d.value == channel.name) {
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
            let device = device_caps.iter().find(|d| d.value == target.value);
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
                } else if device_caps.iter().any(|d| d.value == reply) {
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
                if guest_caps == 0 {
                    "split its work across partitions, or share channels".to_owned()
                } else {
                    format!(
                        "split its work across partitions, or share channels (its guest's exits \
                         and vCPUs take {guest_caps})"
                    )
                },
            );
        }
        if mappings > MAX_MAPPINGS {
            let (what, fewer) = if guest_mappings == 0 {
                (
                    "device and shared-memory",
                    "devices or shared-memory channels",
                )
            } else {
                (
                    "device, shared-memory and guest (RAM, kernel, initrd)",
                    "devices or shared-memory channels (its guest's RAM and files take \
                     two or three)",
                )
            };
            sink.error(
                &partition.name.place,
                format!(
                    "partition `{}` would have {mappings} {what} mappings, more than {MAX_MAPPINGS}",
                    partition.name.value
                ),
                format!("give it fewer {fewer}"),
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
