// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The devices a boot manifest gives partitions, checked against the machine
//! at boot.
//!
//! The kernel trusts no boot package: a hand-made one could name any
//! physical range as a device. [`check`] applies to each device what the
//! manifest compiler applied: the rule of [`hv_image::grant`] (by the
//! device tree node's model, and against what the kernel keeps: the GIC's
//! frames, RAM and reserved memory, its console UART while it prints to
//! it), and the platform's list of devices ([`Peripheral`], from
//! `platform.toml`, which the compiler resolves device names against). An
//! interrupt bound to a device must be one of that device's
//! ([`Peripheral::has_irq`]).

use core::fmt;

use fdt::Fdt;
use hv_image::grant::{self, Kept, Refusal};

use crate::platform::PlatformInfo;
use crate::range::PhysRange;

/// A device the platform lets partitions own (`platform.toml`
/// `[devices.<name>]`; a platform crate's build script makes the table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peripheral {
    /// Its registers' first byte.
    pub base: u64,
    /// Its registers' size.
    pub size: u64,
    /// Its interrupts (GIC INTIDs).
    pub irqs: &'static [u32],
}

impl Peripheral {
    /// Whether `intid` is one of the device's interrupts.
    #[must_use]
    pub fn has_irq(&self, intid: u32) -> bool {
        self.irqs.contains(&intid)
    }
}

/// Why a device may not be given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceError {
    /// The rule refuses it ([`hv_image::grant`]).
    Refused(Refusal),
    /// The device tree has no device whose registers start there and span
    /// the size.
    Missing,
    /// The platform lists no device with exactly these registers.
    NotOnPlatform,
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused(why) => write!(f, "it is {why}"),
            Self::Missing => f.write_str("the device tree has no device there"),
            Self::NotOnPlatform => f.write_str("the platform lists no such device"),
        }
    }
}

/// The most ranges the kernel keeps: RAM banks, reservations, four GIC
/// frames and the console.
const MAX_KEPT: usize = crate::platform::MAX_MEMORY_BANKS + crate::platform::MAX_RESERVED + 5;

/// What the kernel keeps on this machine: the GIC's frames, RAM, reserved
/// memory and, while it prints to it, `console`.
#[must_use]
pub fn kept(info: &PlatformInfo<'_>, console: Option<PhysRange>) -> heapless::Vec<Kept, MAX_KEPT> {
    let gic = &info.gic;
    let frames = [
        Some(gic.distributor),
        Some(gic.cpu_interface),
        gic.hyp_interface,
        gic.virtual_cpu_interface,
    ];
    let kernel = frames.into_iter().flatten().map(|r| (r, Refusal::Kernel));
    let memory = info
        .memory
        .iter()
        .chain(&info.reserved)
        .map(|r| (*r, Refusal::Memory));
    let console = console.map(|r| (r, Refusal::Console));
    kernel
        .chain(memory)
        .chain(console)
        .map(|(range, why)| Kept {
            base: range.start(),
            size: range.size(),
            why,
        })
        .collect()
}

/// Checks that `[base, base + size)` may be given to a partition on this
/// machine (`info`, read from `blob`), whose platform lists `platform`;
/// `console` is the kernel's console UART if the kernel prints to it.
/// Returns the platform's entry for the device.
///
/// # Errors
///
/// What the kernel keeps is refused first, then a range where the device
/// tree has no device, a model the rule refuses, a device smaller than
/// the range, and a device the platform does not list.
pub fn check<'p>(
    info: &PlatformInfo<'_>,
    blob: &[u8],
    platform: &'p [Peripheral],
    (base, size): (u64, u64),
    console: Option<PhysRange>,
) -> Result<&'p Peripheral, DeviceError> {
    let kept = kept(info, console);
    grant::judge(base, size, [], &kept).map_err(DeviceError::Refused)?;
    let fdt = Fdt::new(blob).map_err(|_| DeviceError::Missing)?;
    // The device tree node whose registers start at `base`, as a physical
    // address (translated through the buses above it).
    let (compatible, span) = crate::devicetree::translate::find(&fdt, |node, translation| {
        let compatible = node.property("compatible")?.value;
        let span = node.reg()?.find_map(|r| {
            let size = r.size.unwrap_or(0) as u64;
            let physical = translation.range(PhysRange::new(r.starting_address as u64, size)?)?;
            (physical.start() == base).then_some(size)
        })?;
        Some((compatible, span))
    })
    .ok_or(DeviceError::Missing)?;
    grant::judge(base, size, grant::compatibles(compatible), &kept)
        .map_err(DeviceError::Refused)?;
    if span < size {
        // Only the device's own page(s), which other devices may share.
        if span.checked_next_multiple_of(crate::memory::PAGE_SIZE) != Some(size) {
            return Err(DeviceError::Missing);
        }
        shared_page(&fdt, (base, size), &kept)?;
    }
    platform
        .iter()
        .find(|p| p.base == base && p.size == size)
        .ok_or(DeviceError::NotOnPlatform)
}

/// A range larger than the device at its start (its page), as page
/// granularity makes it where several devices share a page (the Raspberry Pi 4's UART0 and
/// UART2..5): allowed only if every device-tree node with registers in the
/// range lies wholly inside it and has a model the rule allows, so the
/// partition gets nothing the rule would refuse it on its own.
fn shared_page(fdt: &Fdt<'_>, (base, size): (u64, u64), kept: &[Kept]) -> Result<(), DeviceError> {
    let range = PhysRange::new(base, size).ok_or(DeviceError::Missing)?;
    let problem = crate::devicetree::translate::find(fdt, |node, translation| {
        for r in node.reg()? {
            let Some(physical) =
                PhysRange::new(r.starting_address as u64, r.size.unwrap_or(0) as u64)
                    .and_then(|bus| translation.range(bus))
            else {
                continue;
            };
            if physical.is_empty() || !physical.overlaps(range) {
                continue;
            }
            if !range.covers(physical) {
                return Some(DeviceError::Missing);
            }
            let compatible = node.property("compatible").map_or(&[][..], |p| p.value);
            if let Err(refusal) = grant::judge(
                physical.start(),
                physical.size(),
                grant::compatibles(compatible),
                kept,
            ) {
                return Some(DeviceError::Refused(refusal));
            }
        }
        None
    });
    problem.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::{DeviceError, check};
    use crate::platform::PlatformInfo;
    use crate::range::PhysRange;
    use hv_image::grant::Refusal;

    use crate::fixtures::{GICV2, GICV3, QEMU_VIRT};

    fn console() -> Option<PhysRange> {
        PhysRange::new(0x0900_0000, 0x1000)
    }

    fn verdict(blob: &[u8], base: u64, size: u64, printing: bool) -> Result<u64, DeviceError> {
        let info = PlatformInfo::parse(blob).unwrap();
        let console = if printing { console() } else { None };
        check(&info, blob, QEMU_VIRT, (base, size), console).map(|p| p.base)
    }

    #[test]
    fn the_pi_4s_uart0_is_found_at_its_physical_address() {
        let blob = crate::fixtures::rpi4b();
        let info = PlatformInfo::parse(&blob).unwrap();
        let uart0 = [super::Peripheral {
            base: 0xfe20_1000,
            size: 0x200,
            irqs: &[153],
        }];
        let found = check(&info, &blob, &uart0, (0xfe20_1000, 0x200), None);
        assert_eq!(found.map(|p| p.base), Ok(0xfe20_1000));
        // The whole page, which UART2..5 (PL011s too) share with it.
        let page = [super::Peripheral {
            base: 0xfe20_1000,
            size: 0x1000,
            irqs: &[153],
        }];
        let found = check(&info, &blob, &page, (0xfe20_1000, 0x1000), None);
        assert_eq!(found.map(|p| p.base), Ok(0xfe20_1000));
        // More than the device's own page: refused, as on any board.
        assert!(check(&info, &blob, &page, (0xfe20_0000, 0x2000), None).is_err());
        // Its bus address is no device's physical address.
        assert_eq!(
            check(&info, &blob, &uart0, (0x7e20_1000, 0x200), None),
            Err(DeviceError::Missing)
        );
    }

    #[test]
    fn the_platforms_devices_may_be_given() {
        for blob in [GICV3, GICV2] {
            assert_eq!(verdict(blob, 0x0901_0000, 0x1000, true), Ok(0x0901_0000));
            assert_eq!(verdict(blob, 0x0903_0000, 0x1000, true), Ok(0x0903_0000));
            // The console UART, once the kernel no longer prints to it.
            assert_eq!(verdict(blob, 0x0900_0000, 0x1000, false), Ok(0x0900_0000));
        }
    }

    #[test]
    fn the_console_is_refused_while_the_kernel_prints_to_it() {
        assert_eq!(
            verdict(GICV3, 0x0900_0000, 0x1000, true),
            Err(DeviceError::Refused(Refusal::Console))
        );
    }

    /// What a hand-made boot package could name, by the QEMU machine's
    /// real device trees.
    #[test]
    fn what_the_kernel_keeps_is_refused() {
        let kernel = Err(DeviceError::Refused(Refusal::Kernel));
        // GICv3: distributor, redistributors (anywhere in them), the ITS.
        assert_eq!(verdict(GICV3, 0x0800_0000, 0x1000, false), kernel);
        assert_eq!(verdict(GICV3, 0x080a_0000, 0x1000, false), kernel);
        assert_eq!(verdict(GICV3, 0x080c_0000, 0x1000, false), kernel);
        assert_eq!(verdict(GICV3, 0x0808_0000, 0x1000, false), kernel);
        // GICv2: distributor, CPU interface, GICH, GICV, the MSI frame.
        for base in [
            0x0800_0000,
            0x0801_0000,
            0x0803_0000,
            0x0804_0000,
            0x0802_0000,
        ] {
            assert_eq!(verdict(GICV2, base, 0x1000, false), kernel, "{base:#x}");
        }
        // RAM (the kernel's image and heap are in it).
        assert_eq!(
            verdict(GICV3, 0x4000_0000, 0x1000, false),
            Err(DeviceError::Refused(Refusal::Memory))
        );
        assert_eq!(
            verdict(GICV3, 0x5fff_f000, 0x2000, false),
            Err(DeviceError::Refused(Refusal::Memory))
        );
    }

    #[test]
    fn bus_masters_and_firmwares_devices_are_refused() {
        let dma = Err(DeviceError::Refused(Refusal::Dma));
        let firmware = Err(DeviceError::Refused(Refusal::Firmware));
        assert_eq!(verdict(GICV3, 0x0a00_0000, 0x1000, false), dma, "virtio");
        assert_eq!(verdict(GICV3, 0x0a00_3e00, 0x1000, false), dma, "virtio");
        // QEMU's platform bus has no registers of its own.
        assert_eq!(
            verdict(GICV3, 0x0c00_0000, 0x1000, false),
            Err(DeviceError::Missing)
        );
        assert_eq!(verdict(GICV3, 0x0, 0x1000, false), firmware, "flash");
        assert_eq!(verdict(GICV3, 0x0400_0000, 0x1000, false), firmware);
        assert_eq!(
            verdict(GICV3, 0x0902_0000, 0x1000, false),
            firmware,
            "fw-cfg"
        );
        // The PCIe host's ECAM and MMIO windows.
        assert_eq!(verdict(GICV3, 0x40_1000_0000, 0x1000, false), dma);
    }

    #[test]
    fn ranges_no_device_starts_at_are_refused() {
        assert_eq!(
            verdict(GICV3, 0x0901_1000, 0x1000, false),
            Err(DeviceError::Missing)
        );
        assert_eq!(
            verdict(GICV3, 0x0901_0000, 0x2000, false),
            Err(DeviceError::Missing),
            "larger than the device"
        );
        let info = PlatformInfo::parse(GICV3).unwrap();
        assert_eq!(
            check(&info, &[0u8; 8], QEMU_VIRT, (0x0901_0000, 0x1000), None),
            Err(DeviceError::Missing)
        );
    }

    /// A device the tree has and no rule refuses, that the platform does
    /// not list (the compiler could not have named it): refused.
    #[test]
    fn devices_the_platform_does_not_list_are_refused() {
        let info = PlatformInfo::parse(GICV3).unwrap();
        assert_eq!(
            check(&info, GICV3, &QEMU_VIRT[..1], (0x0901_0000, 0x1000), None),
            Err(DeviceError::NotOnPlatform)
        );
        assert!(QEMU_VIRT[1].has_irq(34) && !QEMU_VIRT[1].has_irq(33));
    }
}
