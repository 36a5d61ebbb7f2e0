// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Platform devices passed through to the guest: what the manifest gave it, as the monitor
//! learns it at build time, and how the device tree describes each one.
//!
//! A VM partition may own platform devices (`devices = ["rtc0"]`). The kernel maps each into
//! the guest at IPA = PA and passes its interrupts through (a physical SPI makes the same
//! virtual INTID pending, with a hardware-linked list register); the monitor only tells the
//! guest they are there, with a device tree node each ([`crate::fdt`]). The manifest compiler
//! builds the monitor with `BULKHEAD_GUEST_DEVICES`, which [`parse`] reads:
//!
//! ```text
//! entries separated by `;`, each five fields separated by single spaces:
//!   <name> <compatible> <base> <size> <irqs>
//! base and size: hexadecimal with a `0x` prefix; irqs: decimal INTIDs joined by `+`, or `-`
//! e.g. "rtc0 arm,pl031 0x9010000 0x1000 34"; empty: no devices
//! ```
//!
//! A malformed entry is not fatal: [`parse`] returns the entries it understood and, for each
//! one it did not, an [`EntryError`] saying which and why, so that the monitor reports it and
//! boots the guest without it. An entry that conflicts with the machine (overlaps its RAM, its
//! emulated devices or another device) is refused by [`crate::fdt::GuestMachine::admit`].
//!
//! Each device's node ([`Device::node_name`] at the root):
//!
//! ```text
//! pl031@9010000 { compatible = "arm,pl031", "arm,primecell"; reg = <base size>;
//!   interrupts = <0 SPI 4>...; clocks = <&apb_pclk>; clock-names = "apb_pclk"; };
//! ```
//!
//! The node is named after the part of the compatible string after its comma. An Arm PrimeCell
//! ([`Device::is_primecell`]: `arm,pl` or `arm,sp8` and three digits, e.g. `arm,pl031`,
//! `arm,pl061`, `arm,sp805`) also gets `"arm,primecell"` and the `apb_pclk` clock: Linux binds
//! PrimeCell drivers (`rtc-pl031`, `pl061_gpio`, ...) only through the AMBA bus, which creates
//! a device only for nodes compatible with `arm,primecell` and enables `apb_pclk` before it
//! reads the cell's ID registers. Every interrupt is an SPI, level-high (the manifest does not
//! say otherwise; QEMU `virt`'s devices are all level-sensitive); its interrupt parent is the
//! root's, the GIC, as for the PL011.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::layout::SPI_BASE_INTID;

/// The first INTID that is not an SPI's (1020 to 1023 are special).
const SPECIAL_INTIDS: u32 = 1020;

/// One device passed through to the guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// The manifest's name for it (`rtc0`), for messages.
    pub name: String,
    /// Its device tree `compatible` string (`arm,pl031`).
    pub compatible: String,
    /// Its register frame's base, in the guest as on the machine.
    pub base: u64,
    /// The frame's size.
    pub size: u64,
    /// Its interrupts' INTIDs, all SPIs (32 to 1019).
    pub irqs: Vec<u32>,
}

impl Device {
    /// Its node's name: the part of the compatible string after the comma (all of it if it
    /// has none), `@`, the base in lowercase hexadecimal: `pl031@9010000`.
    pub fn node_name(&self) -> String {
        let model = self
            .compatible
            .split_once(',')
            .map_or(self.compatible.as_str(), |(_, model)| model);
        format!("{model}@{:x}", self.base)
    }

    /// Whether it is an Arm PrimeCell, which Linux finds only on the AMBA bus: a compatible
    /// string of `arm,pl` or `arm,sp8` followed by exactly three digits (`arm,pl031`,
    /// `arm,sp805`; not `arm,pl310-cache`, an L2 cache controller).
    pub fn is_primecell(&self) -> bool {
        let digits =
            |rest: &str, n: usize| rest.len() == n && rest.bytes().all(|b| b.is_ascii_digit());
        self.compatible
            .strip_prefix("arm,pl")
            .is_some_and(|rest| digits(rest, 3))
            || self
                .compatible
                .strip_prefix("arm,sp8")
                .is_some_and(|rest| digits(rest, 2))
    }

    /// One past its frame's last byte (never wraps: [`parse`] checks).
    pub fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }
}

impl fmt::Display for Device {
    /// `rtc0 (arm,pl031) at 0x9010000..0x9011000, INTID 34` (`INTIDs 34, 35`; `no interrupt`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}) at {:#x}..{:#x}, ",
            self.name,
            self.compatible,
            self.base,
            self.end()
        )?;
        match self.irqs.as_slice() {
            [] => f.write_str("no interrupt"),
            [one] => write!(f, "INTID {one}"),
            [first, rest @ ..] => {
                write!(f, "INTIDs {first}")?;
                rest.iter().try_for_each(|irq| write!(f, ", {irq}"))
            }
        }
    }
}

/// What is wrong with an entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// Not five fields separated by single spaces.
    Fields(usize),
    /// A name or compatible string with a character a device tree node name or string may
    /// not hold (`compatible` and the part of it that names the node: letters, digits and
    /// `,._+-`; the name: also no control characters).
    BadText(&'static str),
    /// The base is not `0x` and hexadecimal digits of a 64-bit number.
    BadBase,
    /// The size is not `0x` and hexadecimal digits of a 64-bit number.
    BadSize,
    /// The size is zero.
    EmptyFrame,
    /// Base plus size wraps around the address space.
    Wraps,
    /// The interrupts are not `-` or decimal numbers joined by `+`.
    BadIrqs,
    /// An interrupt that is not an SPI (INTID 32 to 1019).
    NotSpi(u32),
    /// The same interrupt twice.
    DuplicateIrq(u32),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fields(n) => write!(
                f,
                "{n} field(s), not 5 separated by single spaces (name compatible base size irqs)"
            ),
            Self::BadText(what) => write!(f, "the {what} has a character a device tree refuses"),
            Self::BadBase => f.write_str("the base is not a 0x-prefixed 64-bit hex number"),
            Self::BadSize => f.write_str("the size is not a 0x-prefixed 64-bit hex number"),
            Self::EmptyFrame => f.write_str("the size is zero"),
            Self::Wraps => f.write_str("base + size wraps around the address space"),
            Self::BadIrqs => f.write_str("the irqs are not `-` or decimal INTIDs joined by `+`"),
            Self::NotSpi(intid) => write!(f, "INTID {intid} is not an SPI (32 to 1019)"),
            Self::DuplicateIrq(intid) => write!(f, "INTID {intid} is listed twice"),
        }
    }
}

/// An entry [`parse`] did not understand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryError {
    /// The entry, as given.
    pub entry: String,
    /// What is wrong with it.
    pub problem: Problem,
}

impl fmt::Display for EntryError {
    /// `"rtc0 arm,pl031 0x9010000": 3 field(s), not 5 ...`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.entry, self.problem)
    }
}

impl core::error::Error for EntryError {}

/// What [`parse`] made of the text: the devices it understood, in order, and an error for
/// each entry it did not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    /// The well-formed entries.
    pub devices: Vec<Device>,
    /// The others.
    pub errors: Vec<EntryError>,
}

/// Reads `BULKHEAD_GUEST_DEVICES` (see the module's documentation). Empty entries (an empty
/// text, or a stray `;`) are skipped; anything else either becomes a [`Device`] or an
/// [`EntryError`]. Never panics.
pub fn parse(text: &str) -> Parsed {
    let mut parsed = Parsed::default();
    for entry in text.split(';') {
        if entry.trim().is_empty() {
            continue;
        }
        match parse_entry(entry) {
            Ok(device) => parsed.devices.push(device),
            Err(problem) => parsed.errors.push(EntryError {
                entry: String::from(entry),
                problem,
            }),
        }
    }
    parsed
}

fn parse_entry(entry: &str) -> Result<Device, Problem> {
    let fields: Vec<&str> = entry.split(' ').collect();
    let [name, compatible, base, size, irqs] = fields.as_slice() else {
        return Err(Problem::Fields(fields.len()));
    };
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Problem::BadText("name"));
    }
    if compatible.is_empty() || !compatible.bytes().all(node_name_byte) {
        return Err(Problem::BadText("compatible string"));
    }
    let model = compatible.split_once(',').map_or(*compatible, |(_, m)| m);
    if model.is_empty() || model.contains(',') {
        return Err(Problem::BadText("compatible string"));
    }
    let base = hex(base).ok_or(Problem::BadBase)?;
    let size = hex(size).ok_or(Problem::BadSize)?;
    if size == 0 {
        return Err(Problem::EmptyFrame);
    }
    if base.checked_add(size).is_none() {
        return Err(Problem::Wraps);
    }
    let irqs = interrupts(irqs)?;
    Ok(Device {
        name: String::from(*name),
        compatible: String::from(*compatible),
        base,
        size,
        irqs,
    })
}

/// A byte a node name (before its `@`) may hold: letters, digits, `,._+-`.
fn node_name_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b",._+-".contains(&byte)
}

/// `0x` and 1 to 16 hex digits (either case).
fn hex(text: &str) -> Option<u64> {
    let digits = text.strip_prefix("0x")?;
    if digits.is_empty() || digits.len() > 16 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

/// `-`, or decimal SPI INTIDs joined by `+`.
fn interrupts(text: &str) -> Result<Vec<u32>, Problem> {
    if text == "-" {
        return Ok(Vec::new());
    }
    let mut irqs: Vec<u32> = Vec::new();
    for part in text.split('+') {
        if part.is_empty() || part.len() > 10 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Problem::BadIrqs);
        }
        let intid: u32 = part.parse().map_err(|_| Problem::BadIrqs)?;
        if !(SPI_BASE_INTID..SPECIAL_INTIDS).contains(&intid) {
            return Err(Problem::NotSpi(intid));
        }
        if irqs.contains(&intid) {
            return Err(Problem::DuplicateIrq(intid));
        }
        irqs.push(intid);
    }
    Ok(irqs)
}

#[cfg(test)]
mod tests;
