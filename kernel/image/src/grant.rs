// SPDX-License-Identifier: Apache-2.0 OR MIT
//! What may be given to a partition: one rule, which the manifest compiler
//! applies to the platform's devices and the kernel applies at boot to the
//! device tree node at each device's address.
//!
//! A device is refused if its model (a device-tree `compatible` string) is
//! one the kernel drives (the interrupt controller, the timer), one that
//! can master the bus (DMA: virtio-mmio, PCIe hosts, the SMMU, which no
//! SMMU confines on the supported machines), firmware's (flash, fw-cfg) or
//! memory; or if its registers overlap a range the kernel keeps: the
//! interrupt controller's frames, RAM and reserved memory, and the console
//! UART while the kernel prints to it (no partition reads the kernel log).
//! [`MODELS`] is the one list of models; the caller says what the kernel
//! keeps ([`Kept`]), since the compiler knows it from `platform.toml` and
//! the kernel from the device tree.
//!
//! Beyond this rule a device must also be one of the platform's
//! (`platform.toml` `[devices]`, which the kernel is built with): a model
//! missing from [`MODELS`] is therefore still only given where a platform
//! names it.

use core::fmt;

/// Why a device may not be given to a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The kernel drives it: the interrupt controller or the timer.
    Kernel,
    /// It can read and write memory on its own (DMA), and nothing confines
    /// what it reaches.
    Dma,
    /// Firmware's: flash, the firmware configuration interface.
    Firmware,
    /// Memory (RAM, reserved memory), not a device.
    Memory,
    /// The kernel's console UART, while the kernel prints to it: no
    /// partition reads the kernel log.
    Console,
}

impl Refusal {
    /// What to do instead, for the compiler's help line.
    #[must_use]
    pub const fn help(self) -> &'static str {
        match self {
            Self::Kernel => "the kernel keeps its interrupt controller and timer to itself",
            Self::Dma => {
                "a device that can master the bus could reach any memory; give partitions \
                 only devices without DMA"
            }
            Self::Firmware => "firmware's devices stay with firmware",
            Self::Memory => "partitions get memory through `memory` and shared channels",
            Self::Console => {
                "add `kernel-log = { partition = \"<reader>\", notification = \"<channel>\" }` \
                 to `[system]`, so the kernel stops printing to the UART once the system runs"
            }
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Kernel => "the kernel's own (interrupt controller or timer)",
            Self::Dma => "capable of DMA",
            Self::Firmware => "firmware's",
            Self::Memory => "memory, not a device",
            Self::Console => {
                "the kernel's console UART, and no partition reads the kernel log, so the kernel \
                 prints to it"
            }
        })
    }
}

/// Device models by compatible string: `None` for a model a partition may
/// own, else why not.
pub const MODELS: &[(&str, Option<Refusal>)] = &[
    // Programmed I/O only.
    ("arm,pl011", None),
    ("arm,pl031", None),
    ("arm,pl061", None),
    // The interrupt controller, its translation service and MSI frames.
    ("arm,gic-v3", Some(Refusal::Kernel)),
    ("arm,gic-v3-its", Some(Refusal::Kernel)),
    ("arm,gic-400", Some(Refusal::Kernel)),
    ("arm,cortex-a15-gic", Some(Refusal::Kernel)),
    ("arm,cortex-a9-gic", Some(Refusal::Kernel)),
    ("arm,gic-v2m-frame", Some(Refusal::Kernel)),
    // The timer.
    ("arm,armv8-timer", Some(Refusal::Kernel)),
    ("arm,armv7-timer", Some(Refusal::Kernel)),
    ("arm,armv7-timer-mem", Some(Refusal::Kernel)),
    // Bus masters, and what would confine them.
    ("virtio,mmio", Some(Refusal::Dma)),
    ("pci-host-ecam-generic", Some(Refusal::Dma)),
    ("pci-host-cam-generic", Some(Refusal::Dma)),
    ("arm,smmu-v3", Some(Refusal::Dma)),
    ("arm,mmu-500", Some(Refusal::Dma)),
    ("arm,pl330", Some(Refusal::Dma)),
    ("qemu,platform", Some(Refusal::Dma)),
    // Firmware's.
    ("cfi-flash", Some(Refusal::Firmware)),
    ("qemu,fw-cfg-mmio", Some(Refusal::Firmware)),
    // Memory.
    ("shared-dma-pool", Some(Refusal::Memory)),
    ("restricted-dma-pool", Some(Refusal::Memory)),
];

/// Judges a device by its model: the first of `compatibles` (most specific
/// first, as in a device tree) that [`MODELS`] knows decides; a model it
/// does not know is left to the platform's list of devices.
///
/// # Errors
///
/// Why a model that [`MODELS`] refuses may not be given.
pub fn judge_model<'a>(compatibles: impl IntoIterator<Item = &'a str>) -> Result<(), Refusal> {
    for compatible in compatibles {
        if let Some((_, verdict)) = MODELS.iter().find(|(model, _)| *model == compatible) {
            return verdict.map_or(Ok(()), Err);
        }
    }
    Ok(())
}

/// A physical range the kernel keeps, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kept {
    /// First byte.
    pub base: u64,
    /// Bytes.
    pub size: u64,
    /// Why a partition may not have it.
    pub why: Refusal,
}

/// Whether `[a.0, a.0 + a.1)` and `[b.0, b.0 + b.1)` overlap; an empty
/// range overlaps nothing, and ends that overflow are clamped.
fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    let end = |r: (u64, u64)| r.0.saturating_add(r.1);
    a.1 != 0 && b.1 != 0 && a.0 < end(b) && b.0 < end(a)
}

/// The rule: may registers `[base, base + size)`, of a device whose
/// compatible strings are `compatibles`, be given to a partition while the
/// kernel keeps `kept`?
///
/// # Errors
///
/// The model's refusal ([`judge_model`]), else the first kept range the
/// registers overlap.
pub fn judge<'a>(
    base: u64,
    size: u64,
    compatibles: impl IntoIterator<Item = &'a str>,
    kept: &[Kept],
) -> Result<(), Refusal> {
    judge_model(compatibles)?;
    match kept
        .iter()
        .find(|k| overlaps((k.base, k.size), (base, size)))
    {
        Some(k) => Err(k.why),
        None => Ok(()),
    }
}

/// Splits a device tree `compatible` property (NUL-terminated strings) into
/// its strings; bytes that are not UTF-8 make a string no model matches.
pub fn compatibles(property: &[u8]) -> impl Iterator<Item = &str> {
    property
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| core::str::from_utf8(s).unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::{Kept, MODELS, Refusal, compatibles, judge, judge_model};

    #[test]
    fn qemu_virts_devices_are_judged_by_model() {
        let cases: &[(&[u8], Result<(), Refusal>)] = &[
            (b"arm,pl011\0arm,primecell\0", Ok(())),
            (b"arm,pl031\0arm,primecell\0", Ok(())),
            (b"arm,pl061\0arm,primecell\0", Ok(())),
            (b"arm,gic-v3\0", Err(Refusal::Kernel)),
            (b"arm,cortex-a15-gic\0", Err(Refusal::Kernel)),
            (b"arm,gic-v3-its\0", Err(Refusal::Kernel)),
            (b"arm,gic-v2m-frame\0", Err(Refusal::Kernel)),
            (b"arm,armv8-timer\0arm,armv7-timer\0", Err(Refusal::Kernel)),
            (b"virtio,mmio\0", Err(Refusal::Dma)),
            (b"pci-host-ecam-generic\0", Err(Refusal::Dma)),
            (b"qemu,platform\0simple-bus\0", Err(Refusal::Dma)),
            (b"cfi-flash\0", Err(Refusal::Firmware)),
            (b"qemu,fw-cfg-mmio\0", Err(Refusal::Firmware)),
            (b"shared-dma-pool\0", Err(Refusal::Memory)),
            // Unknown to the list: left to the platform's devices.
            (b"test,twin\0", Ok(())),
            (b"\xff\xfe\0", Ok(())),
        ];
        for (property, verdict) in cases {
            assert_eq!(judge_model(compatibles(property)), *verdict, "{property:?}");
        }
    }

    #[test]
    fn the_most_specific_known_model_decides() {
        assert_eq!(
            judge_model(["vendor,unknown", "virtio,mmio", "arm,pl011"]),
            Err(Refusal::Dma)
        );
        assert_eq!(judge_model(["arm,pl011", "virtio,mmio"]), Ok(()));
        assert_eq!(judge_model([]), Ok(()));
    }

    #[test]
    fn every_model_is_listed_once() {
        for (i, (model, _)) in MODELS.iter().enumerate() {
            assert!(MODELS[..i].iter().all(|(m, _)| m != model), "{model} twice");
        }
    }

    /// The kernel's ranges refuse whatever overlaps them, by a byte or
    /// wholly, whatever the model says.
    #[test]
    fn kept_ranges_refuse_what_overlaps_them() {
        let kept = [
            Kept {
                base: 0x0800_0000,
                size: 0x1_0000,
                why: Refusal::Kernel,
            },
            Kept {
                base: 0x0900_0000,
                size: 0x1000,
                why: Refusal::Console,
            },
            Kept {
                base: 0x4000_0000,
                size: 0x4000_0000,
                why: Refusal::Memory,
            },
        ];
        let pl011 = ["arm,pl011"];
        assert_eq!(
            judge(0x0900_0000, 0x1000, pl011, &kept),
            Err(Refusal::Console)
        );
        assert_eq!(
            judge(0x0800_f000, 0x1000, pl011, &kept),
            Err(Refusal::Kernel)
        );
        assert_eq!(
            judge(0x07ff_f000, 0x2000, pl011, &kept),
            Err(Refusal::Kernel)
        );
        assert_eq!(
            judge(0x7fff_f000, 0x1000, pl011, &kept),
            Err(Refusal::Memory)
        );
        assert_eq!(judge(0x0901_0000, 0x1000, ["arm,pl031"], &kept), Ok(()));
        assert_eq!(judge(0x0801_0000, 0x1000, pl011, &kept), Ok(()));
        assert_eq!(judge(0x0901_0000, 0, pl011, &kept), Ok(()));
        assert_eq!(
            judge(u64::MAX - 0xfff, 0x1000, pl011, &kept),
            Ok(()),
            "no overflow"
        );
        // The model is judged first.
        assert_eq!(
            judge(0x0a00_0000, 0x1000, ["virtio,mmio"], &[]),
            Err(Refusal::Dma)
        );
    }

    #[test]
    fn every_refusal_explains_itself() {
        for why in [
            Refusal::Kernel,
            Refusal::Dma,
            Refusal::Firmware,
            Refusal::Memory,
            Refusal::Console,
        ] {
            assert!(!why.to_string().is_empty() && !why.help().is_empty());
        }
    }
}
