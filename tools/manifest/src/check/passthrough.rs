// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Device passthrough: what a virtual machine's `devices` must be. Part of
//! the semantic checks (`check.rs`).
//!
//! A device a virtual machine owns is mapped into the guest at its physical
//! address (IPA = PA), and each of its interrupts is passed through as the
//! same virtual INTID (`BootManifest::passthrough`). So the device may not
//! lie on the guest's RAM (at [`RAM_IPA`]) or on the devices its monitor
//! emulates there (`hv_abi::vm::GUEST_EMULATED`: QEMU `virt`'s GIC and
//! PL011); its interrupts must be SPIs a guest's distributor offers (32 to
//! 255), other than the emulated PL011's (33); and its compatible string must fit the line its monitor is built
//! with (`BULKHEAD_GUEST_DEVICES`). The kernel passes through at most
//! [`MAX_IRQS`] interrupts. Ownership (one owner per device) is checked for
//! every partition alike, in `check.rs`.

use hv_abi::vm::{
    GUEST_EMULATED, GUEST_GICD, GUEST_UART, GUEST_UART_INTID, VIRTUAL_INTIDS, overlaps_emulated,
};
use hv_image::{MAX_IRQS, RAM_IPA};

use crate::diag::{At, Sink};
use crate::platform::{Device, Platform, Span};
use crate::size::{human, short};
use crate::system::{PartitionDecl, SystemDecl, VM_MEMORY_ALIGN, VM_MIN_MEMORY};

/// Checks the interrupts and compatible strings of every virtual machine's
/// devices, and how many interrupts are passed through in all.
pub(super) fn check_passthrough(decl: &SystemDecl, platform: &Platform, sink: &mut Sink<'_>) {
    let mut passed = 0usize;
    for partition in decl.partitions.iter().filter(|p| p.is_vm()) {
        for (position, device) in partition.devices.iter().enumerate() {
            // A device listed twice is reported where it is resolved.
            if partition.devices[..position]
                .iter()
                .any(|earlier| earlier.value == device.value)
            {
                continue;
            }
            let Some((_, found)) = platform.device(&device.value) else {
                continue;
            };
            check_intids(device, found, sink);
            check_compatible(device, found, platform, sink);
            let before = passed;
            passed += found.irqs.len();
            if before <= MAX_IRQS && passed > MAX_IRQS {
                sink.error(
                    &device.place,
                    format!(
                        "more than {MAX_IRQS} interrupts passed through to virtual machines \
                         ({passed} up to here)"
                    ),
                    format!(
                        "the kernel passes through at most {MAX_IRQS} interrupts; give virtual \
                         machines fewer devices"
                    ),
                );
            }
        }
    }
}

/// A virtual machine's device's interrupts are SPIs its distributor offers,
/// and not the one its monitor raises for the emulated PL011.
fn check_intids(device: &At<String>, found: &Device, sink: &mut Sink<'_>) {
    let beyond: Vec<String> = found
        .irqs
        .iter()
        .filter(|intid| **intid >= VIRTUAL_INTIDS)
        .map(u32::to_string)
        .collect();
    if found.irqs.contains(&GUEST_UART_INTID) {
        sink.error(
            &device.place,
            format!(
                "device `{}` has interrupt {GUEST_UART_INTID}, which in a guest is its emulated \
                 PL011 UART's",
                found.name
            ),
            "a passed-through interrupt keeps its INTID in the guest, and the guest's monitor \
             raises that one for the console it emulates; give the device to a service \
             partition instead, which takes its interrupts as notification bits (`irqs`)",
        );
    }
    let Some((last, rest)) = beyond.split_last() else {
        return;
    };
    let which = if rest.is_empty() {
        format!("interrupt {last}")
    } else {
        format!("interrupts {} and {last}", rest.join(", "))
    };
    sink.error(
        &device.place,
        format!(
            "device `{}` has {which}, which a guest cannot be given: a guest's distributor \
             offers SPIs 32 to {}",
            found.name,
            VIRTUAL_INTIDS - 1
        ),
        "a passed-through interrupt keeps its INTID in the guest; give the device to a service \
         partition instead, which takes its interrupts as notification bits (`irqs`)",
    );
}

/// A virtual machine's device's compatible string fits its monitor's
/// `BULKHEAD_GUEST_DEVICES`: printable ASCII, no spaces or `;`, not empty.
fn check_compatible(device: &At<String>, found: &Device, platform: &Platform, sink: &mut Sink<'_>) {
    let fits = !found.compatible.is_empty()
        && found
            .compatible
            .chars()
            .all(|c| ('!'..='~').contains(&c) && c != ';');
    if fits {
        return;
    }
    sink.error(
        &device.place,
        format!(
            "device `{}`'s compatible string {:?} cannot be passed to the guest's monitor: it \
             must be printable ASCII, without spaces or `;`, and not empty",
            found.name, found.compatible
        ),
        format!(
            "the monitor puts the device in the guest's device tree from the line it is built \
             with (`BULKHEAD_GUEST_DEVICES`, fields separated by spaces); fix `compatible` in \
             {}, or give the device to a service partition",
            platform.file
        ),
    );
}

/// Checks where a virtual machine's device lands in the guest (at IPA = PA):
/// not on its RAM, not on the devices its monitor emulates. Returns whether
/// it reported an error.
pub(super) fn check_guest_layout(
    partition: &PartitionDecl,
    device: &At<String>,
    found: &Device,
    sink: &mut Sink<'_>,
) -> bool {
    let span = found.span;
    let shown = format!("{:#x}..{:#x}", span.base, span.end());
    let ram = partition.memory.as_ref().map(|memory| Span {
        base: RAM_IPA,
        size: memory.value.bytes,
    });
    if let Some(ram) = ram.filter(|ram| ram.overlaps(span)) {
        let help = match RAM_IPA.checked_add(VM_MIN_MEMORY) {
            Some(least) if span.base >= least => format!(
                "give the virtual machine at most `{}` of memory, or leave the device out",
                short((span.base - RAM_IPA) / VM_MEMORY_ALIGN * VM_MEMORY_ALIGN)
            ),
            _ => format!(
                "leave the device out: a guest's RAM starts at {RAM_IPA:#x} and is at least {}, \
                 so no virtual machine can own a device there",
                human(VM_MIN_MEMORY)
            ),
        };
        sink.error(
            &device.place,
            format!(
                "device `{}` ({shown}) would overlap the guest's RAM ({:#x}..{:#x}): a virtual \
                 machine's devices are mapped at IPA = PA",
                found.name,
                ram.base,
                ram.end()
            ),
            help,
        );
        return true;
    }
    if !overlaps_emulated(span.base, span.size) {
        return false;
    }
    let emulated: Vec<String> = GUEST_EMULATED
        .iter()
        .map(|&(base, size)| Span { base, size })
        .filter(|emulated| emulated.overlaps(span))
        .map(|emulated| {
            let what = match emulated.base {
                GUEST_GICD => "GIC",
                GUEST_UART => "PL011 UART",
                _ => "devices",
            };
            format!(
                "emulated {what} ({:#x}..{:#x})",
                emulated.base,
                emulated.end()
            )
        })
        .collect();
    sink.error(
        &device.place,
        format!(
            "device `{}` ({shown}) would overlap the guest's {}: a virtual machine's devices are \
             mapped at IPA = PA, and its monitor emulates QEMU virt's GIC and PL011 there",
            found.name,
            emulated.join(" and ")
        ),
        "leave the device out, or give it to a service partition: the guest's interrupt \
         controller and console UART are its monitor's (the guest's console reaches the real \
         UART through the monitor)",
    );
    true
}
