// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Loading the guest and starting it, as the arm64 boot protocol says: its
//! kernel `Image` where its header asks (`vmm_devices::image`), its
//! initramfs and a device tree describing the machine the manifest gave it
//! (`vmm_devices::fdt`) near the top of its RAM, then its first vCPU at the
//! kernel's first byte with x0 = the device tree's address.
//!
//! The device tree also describes the platform devices the manifest passes
//! through to the guest ([`config::DEVICES`], `vmm_devices::passthrough`;
//! the kernel maps them and forwards their interrupts, the monitor only
//! says they are there). On the first boot each is reported, `vmm: device
//! <name> (<compatible>) at <base>..<end>, INTID <n> passed through to
//! <guest>`; an entry the monitor cannot read, `vmm: device entry
//! "<entry>": <why>; ignored`, or one that clashes with the machine, `vmm:
//! device <name> clashes with <what>; left out of <guest>'s device tree`:
//! the guest boots without it.

use alloc::string::String;
use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};

use svc_rt::guest::{File, GuestRam, OutOfRange};
use svc_rt::shared::Window;
use vmm_devices::fdt::{FdtError, GuestMachine};
use vmm_devices::image::{ImageError, ImageHeader, Layout, Region};

use crate::{config, console};

/// Why the guest could not be booted.
pub(crate) enum BootError {
    /// The manifest's windows onto the guest's RAM or files overlap this
    /// monitor's RAM (a build problem).
    Window(&'static str),
    /// The kernel is not an arm64 Image, or it and its files do not fit.
    Image(ImageError),
    /// The device tree could not be built.
    DeviceTree(FdtError),
    /// A copy fell outside the guest's RAM.
    Ram(OutOfRange),
    /// The kernel refused to start the vCPU.
    Start(svc_rt::hypercall::Status),
}

impl fmt::Display for BootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Window(what) => write!(f, "the {what} window overlaps the monitor's RAM"),
            Self::Image(e) => write!(f, "{e}"),
            Self::DeviceTree(e) => write!(f, "building the device tree: {e:?}"),
            Self::Ram(e) => write!(
                f,
                "{} bytes at {:#x} fall outside the guest's RAM",
                e.length, e.address
            ),
            Self::Start(status) => write!(f, "the kernel refused to start vCPU 0: {status}"),
        }
    }
}

/// Where each file went, for the report.
pub(crate) struct Booted {
    pub(crate) layout: Layout,
}

/// Stops every vCPU of the guest (whatever an earlier run of this monitor
/// left running), loads the guest and starts its vCPU 0.
pub(crate) fn boot(start: &svc_rt::Start) -> Result<Booted, BootError> {
    stop_all();
    let ram =
        GuestRam::new(start, config::RAM, config::RAM_BASE).ok_or(BootError::Window("RAM"))?;
    let kernel = file(start, config::KERNEL).ok_or(BootError::Window("kernel"))?;
    let initrd = match config::INITRD {
        Some(window) => Some(file(start, window).ok_or(BootError::Window("initramfs"))?),
        None => None,
    };
    let header = ImageHeader::parse(kernel.bytes()).map_err(BootError::Image)?;
    let initrd_size = initrd.map_or(0, |f| f.bytes().len() as u64);
    let mut machine = GuestMachine::qemu_virt(config::VCPUS, ram.size(), gic(start));
    machine.ram_base = config::RAM_BASE;
    machine.bootargs = String::from(config::BOOTARGS);
    add_devices(&mut machine);
    // The device tree's size does not depend on where the initramfs is:
    // build it once to learn its size, place everything, build it again.
    machine.initrd = initrd.map(|_| Region {
        start: config::RAM_BASE,
        size: initrd_size,
    });
    let size = vmm_devices::fdt::build(&machine)
        .map_err(BootError::DeviceTree)?
        .len() as u64;
    let layout =
        vmm_devices::image::placement(&header, config::RAM_BASE, ram.size(), initrd_size, size)
            .map_err(BootError::Image)?;
    machine.initrd = layout.initrd;
    let dtb = vmm_devices::fdt::build(&machine).map_err(BootError::DeviceTree)?;
    ram.write(layout.kernel.start, kernel.bytes())
        .map_err(BootError::Ram)?;
    if let (Some(initrd), Some(place)) = (initrd, layout.initrd) {
        ram.write(place.start, initrd.bytes())
            .map_err(BootError::Ram)?;
    }
    ram.write(layout.dtb.start, &dtb).map_err(BootError::Ram)?;
    let first = config::vcpu(0).ok_or(BootError::Start(
        svc_rt::hypercall::Status::InvalidCapability,
    ))?;
    svc_rt::call::vcpu_start(first, layout.entry(), layout.dtb.start).map_err(BootError::Start)?;
    Ok(Booted { layout })
}

/// The devices have been reported (on the first boot; later boots find the
/// same).
static DEVICES_REPORTED: AtomicBool = AtomicBool::new(false);

/// Adds the devices passed through to the guest's machine, leaving out (and
/// reporting, the first time) any entry that is malformed or clashes.
fn add_devices(machine: &mut GuestMachine) {
    let report = !DEVICES_REPORTED.swap(true, Ordering::Relaxed);
    let parsed = vmm_devices::passthrough::parse(config::DEVICES);
    for error in &parsed.errors {
        if report {
            console::say(format_args!("vmm: device entry {error}; ignored"));
        }
    }
    for device in parsed.devices {
        let described = alloc::format!("{device}");
        let admitted = machine.admit(device);
        if !report {
            continue;
        }
        match admitted {
            Ok(()) => console::say(format_args!(
                "vmm: device {described} passed through to {}",
                config::NAME
            )),
            Err(e) => console::say(format_args!(
                "vmm: {e}; left out of {}'s device tree",
                config::NAME
            )),
        }
    }
}

/// Turns every vCPU of the guest off.
pub(crate) fn stop_all() {
    for index in 0..config::VCPUS {
        if let Some(vcpu) = config::vcpu(index) {
            let _ = svc_rt::call::vcpu_stop(vcpu);
        }
    }
}

/// The file whose exact length is `window.size`, mapped at `window.ipa`
/// (the mapping itself is rounded up to a page).
fn file(start: &svc_rt::Start, window: Window) -> Option<File> {
    let mapping = Window {
        ipa: window.ipa,
        size: window.size.next_multiple_of(4096),
    };
    File::new(start, mapping, window.size)
}

/// The GIC the guest gets: the machine's own version.
pub(crate) fn gic(start: &svc_rt::Start) -> vmm_devices::fdt::GicVersion {
    if start.gic_version == 2 {
        vmm_devices::fdt::GicVersion::V2
    } else {
        vmm_devices::fdt::GicVersion::V3
    }
}
