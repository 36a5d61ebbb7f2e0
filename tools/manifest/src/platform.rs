// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The platform description (`platforms/<name>/platform.toml`): the board's
//! cores, RAM, reserved ranges and devices, as the manifest compiler needs
//! them.
//!
//! The file also holds keys for the build and the runner (`name`, `binary`,
//! `[qemu]`, `[console]`); those are read elsewhere and only allowed here.
//! Everything this module reads is checked with the same care as a system
//! manifest, and its errors name the platform file.

use hv_image::{NAME_LENGTH, PAGE_SIZE, is_valid_name};

use crate::diag::{At, Place, Sink};
use crate::read::{FieldAt, TableReader};
use crate::size;

/// The first shared peripheral interrupt.
pub(crate) const SPI_FIRST: i128 = 32;
/// The last shared peripheral interrupt.
pub(crate) const SPI_LAST: i128 = 1019;
/// Cores a partition's core mask can name.
pub(crate) const MAX_CORES: u8 = 8;

/// A range of physical memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    /// First byte.
    pub(crate) base: u64,
    /// Bytes; `base + size` does not overflow.
    pub(crate) size: u64,
}

impl Span {
    /// One past the last byte.
    pub(crate) const fn end(self) -> u64 {
        self.base + self.size
    }

    /// Whether the two overlap.
    pub(crate) const fn overlaps(self, other: Self) -> bool {
        self.base < other.end() && other.base < self.end()
    }

    /// Whether `other` lies wholly inside this span.
    pub(crate) const fn contains(self, other: Self) -> bool {
        self.base <= other.base && other.end() <= self.end()
    }
}

/// A range set aside for the kernel and the loader.
#[derive(Clone, Debug)]
pub(crate) struct Reserved {
    /// The range.
    pub(crate) span: Span,
    /// What is there.
    pub(crate) what: String,
}

/// A device partitions may own.
#[derive(Clone, Debug)]
pub(crate) struct Device {
    /// Its name.
    pub(crate) name: String,
    /// Its device-tree compatible string.
    pub(crate) compatible: String,
    /// Its register block.
    pub(crate) span: Span,
    /// Its interrupts (GIC INTIDs).
    pub(crate) irqs: Vec<u32>,
}

/// A checked platform description.
#[derive(Clone, Debug)]
pub(crate) struct Platform {
    /// Its name, which is also its folder.
    pub(crate) name: String,
    /// The file, as shown in messages.
    pub(crate) file: String,
    /// Cores in the default configuration.
    pub(crate) cores: u8,
    /// RAM banks.
    pub(crate) memory: Vec<Span>,
    /// Ranges partitions never get.
    pub(crate) reserved: Vec<Reserved>,
    /// Devices, in file order.
    pub(crate) devices: Vec<Device>,
    /// The kernel's console UART (`[console]`), if the platform names one.
    pub(crate) console: Option<Span>,
}

impl Platform {
    /// The RAM left for partitions: every bank minus every reserved range.
    pub(crate) fn free_memory(&self) -> Vec<Span> {
        let mut free = self.memory.clone();
        for reserved in &self.reserved {
            let cut = reserved.span;
            free = free
                .into_iter()
                .flat_map(|bank| {
                    let mut pieces = Vec::new();
                    if !bank.overlaps(cut) {
                        pieces.push(bank);
                        return pieces;
                    }
                    if bank.base < cut.base {
                        pieces.push(Span {
                            base: bank.base,
                            size: cut.base - bank.base,
                        });
                    }
                    if cut.end() < bank.end() {
                        pieces.push(Span {
                            base: cut.end(),
                            size: bank.end() - cut.end(),
                        });
                    }
                    pieces
                })
                .collect();
        }
        free
    }

    /// A device by name.
    pub(crate) fn device(&self, name: &str) -> Option<(usize, &Device)> {
        self.devices
            .iter()
            .enumerate()
            .find(|(_, d)| d.name == name)
    }

    /// Reads and checks a platform description; `file` is how to show its
    /// path, `folder` the name it must carry.
    pub(crate) fn parse(
        file: &str,
        source: &str,
        folder: &str,
        sink: &mut Sink<'_>,
    ) -> Option<Self> {
        let document = match toml::de::DeTable::parse(source) {
            Ok(document) => document,
            Err(error) => {
                crate::read::syntax_error(sink, &error);
                return None;
            }
        };
        let mut root = TableReader::new(
            document.get_ref(),
            Place::default(),
            "a platform description",
        );
        let name = root
            .require(sink, "name", "add `name = \"<folder name>\"`")
            .and_then(|field| field.string(sink, "write the platform's name in quotes"));
        if let Some(name) = &name
            && name.value != folder
        {
            sink.error(
                &name.place,
                format!(
                    "the platform is named `{}`, but its folder is `{folder}`",
                    name.value
                ),
                format!("write `name = \"{folder}\"`"),
            );
        }
        // Read by the build and the runner, not here.
        for key in ["binary", "qemu"] {
            let _ = root.get(key);
        }
        let console = read_console(&mut root, sink);
        let cores = read_cores(&mut root, sink);
        let memory = read_memory(&mut root, sink);
        let reserved = read_reserved(&mut root, sink);
        let devices = read_devices(&mut root, sink, &memory);
        root.finish(
            sink,
            &[
                "name", "binary", "qemu", "console", "cores", "memory", "reserved", "devices",
            ],
        );
        if sink.has_errors() {
            return None;
        }
        Some(Self {
            name: folder.to_owned(),
            file: file.to_owned(),
            cores: cores?,
            memory,
            reserved,
            devices,
            console,
        })
    }
}

/// `[console]`: where the kernel prints. Only `base` and `size` matter
/// here (the build reads the rest).
fn read_console(root: &mut TableReader<'_, '_>, sink: &mut Sink<'_>) -> Option<Span> {
    let help = "`[console]` takes `compatible`, `base`, `size` and `intid`";
    let mut table = root
        .get("console")?
        .table(sink, "the `[console]` table", help)?;
    for key in ["compatible", "intid"] {
        let _ = table.get(key);
    }
    let span = read_span(&mut table, sink, "console");
    table.finish(sink, &["compatible", "base", "size", "intid"]);
    span
}

/// `[cores] count = N`.
fn read_cores(root: &mut TableReader<'_, '_>, sink: &mut Sink<'_>) -> Option<u8> {
    let help = "add `[cores]` with `count = <cores in the default configuration>`";
    let mut table = root
        .require(sink, "cores", help)?
        .table(sink, "the `[cores]` table", help)?;
    let count = table
        .require(sink, "count", "add `count = <cores>`")
        .and_then(|field| {
            field.integer_in(
                sink,
                1..=i128::from(MAX_CORES),
                "core count",
                "Bulkhead runs on 1 to 8 cores",
            )
        });
    table.finish(sink, &["count"]);
    count.and_then(|count| u8::try_from(count.value).ok())
}

/// A `base`/`size` pair of a table, checked to be whole pages that do not
/// overflow.
fn read_span(table: &mut TableReader<'_, '_>, sink: &mut Sink<'_>, what: &str) -> Option<Span> {
    let base = table
        .require(sink, "base", "add `base = <physical address>`")
        .and_then(|field| address(&field, sink));
    let size = table
        .require(sink, "size", "add `size = <bytes>`")
        .and_then(|field| size::read(&field, sink, &format!("{what} size")))
        .filter(|size| size::check_pages(size, sink, &format!("{what} size")));
    let (base, size) = (base?, size?);
    if !base.value.is_multiple_of(PAGE_SIZE) {
        sink.error(
            &base.place,
            format!("base {:#x} is not 4 KiB-aligned", base.value),
            "platform ranges start on a 4 KiB page boundary",
        );
        return None;
    }
    if base.value.checked_add(size.value.bytes).is_none() {
        sink.error(
            &size.place,
            format!(
                "{:#x} + {} overflows the address space",
                base.value, size.value.written
            ),
            "check the base and the size",
        );
        return None;
    }
    Some(Span {
        base: base.value,
        size: size.value.bytes,
    })
}

/// A physical address: an integer from 0 to 2^64 - 1.
pub(crate) fn address(field: &FieldAt<'_, '_>, sink: &mut Sink<'_>) -> Option<At<u64>> {
    let help = "write an address as an integer, e.g. `0x4000_0000`";
    let integer = field.integer(sink, help)?;
    if let Ok(value) = u64::try_from(integer.value) {
        Some(At::new(value, integer.place))
    } else {
        sink.error(
            &field.place,
            format!("{} is not an address", integer.value),
            help,
        );
        None
    }
}

/// `[[memory]]`: RAM banks.
fn read_memory(root: &mut TableReader<'_, '_>, sink: &mut Sink<'_>) -> Vec<Span> {
    let help = "add `[[memory]]` tables with the `base` and `size` of each RAM bank";
    let Some(items) = root
        .require(sink, "memory", help)
        .and_then(|field| field.array(sink, help))
    else {
        return Vec::new();
    };
    let mut banks: Vec<Span> = Vec::new();
    for item in &items {
        let Some(mut table) = item.table(sink, "a `[[memory]]` bank", help) else {
            continue;
        };
        if let Some(span) = read_span(&mut table, sink, "memory") {
            if banks.iter().any(|bank| bank.overlaps(span)) {
                sink.error(
                    &item.place,
                    format!(
                        "RAM bank {:#x}..{:#x} overlaps another",
                        span.base,
                        span.end()
                    ),
                    "list each RAM bank once",
                );
            }
            banks.push(span);
        }
        table.finish(sink, &["base", "size"]);
    }
    if items.is_empty() {
        sink.error(&root.place, "the platform has no `[[memory]]` bank", help);
    }
    banks
}

/// `[[reserved]]`: ranges for the kernel and the loader.
fn read_reserved(root: &mut TableReader<'_, '_>, sink: &mut Sink<'_>) -> Vec<Reserved> {
    let help = "`[[reserved]]` tables take `base`, `size` and `what`";
    let Some(items) = root
        .get("reserved")
        .and_then(|field| field.array(sink, help))
    else {
        return Vec::new();
    };
    let mut reserved = Vec::new();
    for item in &items {
        let Some(mut table) = item.table(sink, "a `[[reserved]]` range", help) else {
            continue;
        };
        let span = read_span(&mut table, sink, "reserved");
        let what = table
            .require(sink, "what", "add `what = \"...\"`: what lives there")
            .and_then(|field| field.string(sink, "describe the range in quotes"));
        table.finish(sink, &["base", "size", "what"]);
        if let (Some(span), Some(what)) = (span, what) {
            reserved.push(Reserved {
                span,
                what: what.value,
            });
        }
    }
    reserved
}

/// `[devices.<name>]`.
fn read_devices(
    root: &mut TableReader<'_, '_>,
    sink: &mut Sink<'_>,
    memory: &[Span],
) -> Vec<Device> {
    let help = "`[devices.<name>]` tables take `compatible`, `base`, `size` and `irqs`";
    let Some(mut table) = root
        .get("devices")
        .and_then(|field| field.table(sink, "the `[devices]` table", help))
    else {
        return Vec::new();
    };
    let mut devices: Vec<Device> = Vec::new();
    let mut intids: Vec<(u32, String)> = Vec::new();
    for (name, field) in table.entries() {
        check_name(&name, sink, "device");
        let Some(mut device) = field.table(sink, "a device", help) else {
            continue;
        };
        let compatible = device
            .require(
                sink,
                "compatible",
                "add `compatible = \"vendor,model\"` as in the device tree",
            )
            .and_then(|field| field.string(sink, "write the compatible string in quotes"));
        let span = read_span(&mut device, sink, "device");
        let mut irqs = Vec::new();
        let irq_help = "list the device's interrupts as GIC INTIDs, e.g. `irqs = [33]`";
        for item in device
            .get("irqs")
            .and_then(|field| field.array(sink, irq_help))
            .unwrap_or_default()
        {
            let Some(intid) = item.integer_in(
                sink,
                SPI_FIRST..=SPI_LAST,
                "INTID",
                "a device's interrupts are shared peripheral interrupts, INTIDs 32 to 1019",
            ) else {
                continue;
            };
            let Ok(value) = u32::try_from(intid.value) else {
                continue;
            };
            if let Some((_, other)) = intids.iter().find(|(id, _)| *id == value) {
                sink.error(
                    &intid.place,
                    format!("INTID {value} is also device `{other}`'s"),
                    "each interrupt belongs to one device",
                );
            }
            intids.push((value, name.value.clone()));
            irqs.push(value);
        }
        device.finish(sink, &["compatible", "base", "size", "irqs"]);
        let Some(span) = span else { continue };
        if let Some(other) = devices.iter().find(|d| d.span.overlaps(span)) {
            sink.error(
                &name.place,
                format!(
                    "registers {:#x}..{:#x} overlap device `{}`",
                    span.base,
                    span.end(),
                    other.name
                ),
                "each device has its own register block",
            );
        }
        if memory.iter().any(|bank| bank.overlaps(span)) {
            sink.error(
                &name.place,
                format!("registers {:#x}..{:#x} overlap RAM", span.base, span.end()),
                "check the device's base address",
            );
        }
        devices.push(Device {
            name: name.value,
            compatible: compatible.map(|c| c.value).unwrap_or_default(),
            span,
            irqs,
        });
    }
    devices
}

/// Checks that a name is an identifier of at most [`NAME_LENGTH`] bytes.
pub(crate) fn check_name(name: &At<String>, sink: &mut Sink<'_>, what: &str) -> bool {
    if name.value.len() > NAME_LENGTH {
        sink.error(
            &name.place,
            format!(
                "{what} name `{}` is {} bytes long, more than {NAME_LENGTH}",
                name.value,
                name.value.len()
            ),
            "use a shorter name",
        );
        return false;
    }
    if !is_valid_name(&name.value) {
        let suggestion: String = name
            .value
            .chars()
            .map(|c| match c {
                'A'..='Z' => c.to_ascii_lowercase(),
                'a'..='z' | '0'..='9' | '-' => c,
                _ => '-',
            })
            .collect();
        let suggestion = suggestion.trim_start_matches(|c: char| !c.is_ascii_lowercase());
        let help = if is_valid_name(suggestion) && suggestion.len() <= NAME_LENGTH {
            format!(
                "names are a lowercase letter, then lowercase letters, digits and `-`, e.g. `{suggestion}`"
            )
        } else {
            "names are a lowercase letter, then lowercase letters, digits and `-`".to_owned()
        };
        sink.error(
            &name.place,
            format!("`{}` is not a valid {what} name", name.value),
            help,
        );
        return false;
    }
    true
}
