// SPDX-License-Identifier: Apache-2.0 OR MIT
//! What the manifest decided about this monitor's guest, at compile time:
//! `cargo xtask` builds each monitor with `BULKHEAD_GUEST_*` (its guest's
//! name, vCPUs, RAM, files, command line and devices passed through;
//! `docs/manifest.md`), the slots of its `exits` and `vcpu-N` capabilities,
//! and `BULKHEAD_WAITS`, the notifications it waits on (the first is the
//! console's signal that keyboard input arrived for the guest), and its
//! `settings`: today one test hook, `panic-on-write`.

use svc_rt::hypercall::CapSlot;
use svc_rt::shared::Window;

/// The guest's name.
pub(crate) const NAME: &str = env!("BULKHEAD_GUEST_NAME");
/// The guest's vCPUs.
pub(crate) const VCPUS: u8 = number(env!("BULKHEAD_GUEST_VCPUS")) as u8;
/// Where the guest sees its RAM.
pub(crate) const RAM_BASE: u64 = number(env!("BULKHEAD_GUEST_RAM_BASE"));
/// Where this monitor sees the guest's RAM.
pub(crate) const RAM: Window = Window::parse(env!("BULKHEAD_GUEST_RAM_WINDOW"));
/// Where this monitor sees the guest's kernel, and its exact length.
pub(crate) const KERNEL: Window = Window::parse(env!("BULKHEAD_GUEST_KERNEL"));
/// Where this monitor sees the guest's initramfs, and its exact length.
pub(crate) const INITRD: Option<Window> = match option_env!("BULKHEAD_GUEST_INITRD") {
    Some(text) => Some(Window::parse(text)),
    None => None,
};
/// The guest kernel's command line.
pub(crate) const BOOTARGS: &str = env!("BULKHEAD_GUEST_BOOTARGS");
/// The platform devices passed through to the guest, as the manifest
/// compiler writes them (`name compatible base size irqs` entries separated
/// by `;`, read by `vmm_devices::passthrough::parse`); empty, or absent
/// (a compiler that predates device passthrough), if there are none.
pub(crate) const DEVICES: &str = match option_env!("BULKHEAD_GUEST_DEVICES") {
    Some(text) => text,
    None => "",
};

/// A test hook, the setting `panic-on-write = "<address>"`: a guest write
/// to that address makes this monitor panic, as a bug in it would (the
/// kernel stops it and reports the fault; its guest's vCPUs go off). The
/// tests use it to show that a monitor's crash is contained and that a
/// health monitor can bring it back. Without the setting (the default) the
/// address is like any other with no device: writes are ignored.
pub(crate) const PANIC_ON_WRITE: Option<u64> = match svc_rt::optional_setting!(PANIC_ON_WRITE) {
    Some(text) => Some(svc_rt::parse_number(text)),
    None => None,
};

/// The endpoint the guest's exits arrive on.
pub(crate) const EXITS: CapSlot = svc_rt::cap!(EXITS);
/// The console's endpoint.
pub(crate) const LOG: Option<CapSlot> = svc_rt::optional_cap!(LOG);
/// The notification the console signals when keyboard input for the guest
/// waits: the first this monitor waits on.
pub(crate) const INPUT: Option<CapSlot> = first_slot(option_env!("BULKHEAD_WAITS"));

/// The guest's vCPUs' capabilities, by index.
pub(crate) const VCPU_CAPS: [Option<CapSlot>; 8] = [
    svc_rt::optional_cap!(VCPU_0),
    svc_rt::optional_cap!(VCPU_1),
    svc_rt::optional_cap!(VCPU_2),
    svc_rt::optional_cap!(VCPU_3),
    svc_rt::optional_cap!(VCPU_4),
    svc_rt::optional_cap!(VCPU_5),
    svc_rt::optional_cap!(VCPU_6),
    svc_rt::optional_cap!(VCPU_7),
];

/// The capability of the guest's vCPU `index`.
pub(crate) fn vcpu(index: u8) -> Option<CapSlot> {
    VCPU_CAPS.get(usize::from(index)).copied().flatten()
}

/// A decimal number, at compile time.
const fn number(text: &str) -> u64 {
    let bytes = text.as_bytes();
    assert!(!bytes.is_empty(), "an empty number");
    let mut value = 0u64;
    let mut i = 0;
    while i < bytes.len() {
        assert!(bytes[i].is_ascii_digit(), "not a decimal number");
        value = value * 10 + (bytes[i] - b'0') as u64;
        i += 1;
    }
    value
}

/// The first slot of a comma-separated list, at compile time.
const fn first_slot(list: Option<&str>) -> Option<CapSlot> {
    let Some(text) = list else { return None };
    let bytes = text.as_bytes();
    let mut value = 0u32;
    let mut i = 0;
    while i < bytes.len() && bytes[i] != b',' {
        assert!(bytes[i].is_ascii_digit(), "BULKHEAD_WAITS lists slots");
        value = value * 10 + (bytes[i] - b'0') as u32;
        i += 1;
    }
    if i == 0 { None } else { Some(CapSlot(value)) }
}
