// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The platform description (`platforms/<name>/platform.toml`), read once
//! for everyone: the board's cores, RAM, reserved ranges and devices for the
//! manifest compiler; its console UART and devices for the platform crate's
//! build script (`platforms/<name>/build.rs`, which has this crate as a
//! build-dependency); its kernel binary and QEMU settings for `cargo xtask`.
//!
//! This is the only reader of the file. Everything in it is checked with
//! the same care as a system manifest, and its errors name the platform
//! file, line, column and key ([`Platform::read`]).

use std::fmt::Write as _;
use std::path::Path;

use hv_image::{NAME_LENGTH, PAGE_SIZE, is_valid_name};

use crate::diag::{At, Diagnostic, Diagnostics, Place, Sink};
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
pub struct Span {
    /// First byte.
    pub base: u64,
    /// Bytes; `base + size` does not overflow.
    pub size: u64,
}

impl Span {
    /// One past the last byte.
    #[must_use]
    pub const fn end(self) -> u64 {
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reserved {
    /// The range.
    pub span: Span,
    /// What is there.
    pub what: String,
}

/// A device partitions may own (`[devices.<name>]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// Its name.
    pub name: String,
    /// Its device-tree compatible string.
    pub compatible: String,
    /// Its register block.
    pub span: Span,
    /// Its interrupts (GIC INTIDs, shared peripheral interrupts).
    pub irqs: Vec<u32>,
}

/// The UART the kernel prints through from its first line (`[console]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Console {
    /// Its device-tree compatible string.
    pub compatible: String,
    /// Its register block.
    pub span: Span,
    /// Its interrupt (a GIC INTID, a shared peripheral interrupt).
    pub intid: u32,
    /// Its reference clock in Hz (`clock-hz`), if the kernel must set its
    /// baud rate itself: on boards whose firmware leaves the console UART
    /// unprogrammed (the Pi 4's PL011). Without it the kernel keeps the
    /// loader's settings.
    pub clock_hz: Option<u32>,
}

/// How `cargo xtask` runs the board under QEMU (`[qemu]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Qemu {
    /// QEMU's `-M` value, before the runner adds the GIC version.
    pub machine: String,
    /// QEMU's `-cpu` value.
    pub cpu: String,
    /// Where RAM starts: the image is loaded at this address.
    pub ram_base: u64,
}

/// A checked platform description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    /// Its name, which is also its folder.
    pub name: String,
    /// The file, as shown in messages.
    pub file: String,
    /// The kernel binary the platform crate builds (`binary`), if it
    /// builds one (test boards do not).
    pub binary: Option<String>,
    /// How to run it under QEMU (`[qemu]`), if QEMU models it.
    pub qemu: Option<Qemu>,
    /// Cores in the default configuration.
    pub cores: u8,
    /// RAM banks.
    pub memory: Vec<Span>,
    /// Ranges partitions never get.
    pub reserved: Vec<Reserved>,
    /// Devices, in file order.
    pub devices: Vec<Device>,
    /// The kernel's console UART (`[console]`), if the platform names one.
    pub console: Option<Console>,
    /// The shortest window a schedule may have on this board, in
    /// microseconds (`[schedule] min-window`), if the platform gives one:
    /// a system with a `[schedule]` or budgets needs it.
    pub min_window_us: Option<u64>,
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

    /// What a platform crate's build script writes to `$OUT_DIR/platform.rs`
    /// for its kernel: the console UART (`CONSOLE_BASE`, `CONSOLE_SIZE`,
    /// `CONSOLE_INTID`) and the devices partitions may own (`DEVICES`), so
    /// each address is written down once, in `platform.toml`.
    ///
    /// # Errors
    ///
    /// The platform names no `[console]`: the kernel needs one to print.
    pub fn kernel_constants(&self) -> Result<String, String> {
        let Some(console) = &self.console else {
            return Err(format!(
                "{}: no `[console]`: the kernel needs a UART to print through",
                self.file
            ));
        };
        let mut out = format!(
            "/// The board's name (platform.toml `name`).\n\
             const NAME: &str = {:?};\n\
             /// The console UART's registers (platform.toml `[console]`).\n\
             const CONSOLE_BASE: u64 = {:#x};\n\
             /// The size of the console UART's register block.\n\
             const CONSOLE_SIZE: u64 = {:#x};\n\
             /// The console UART's interrupt.\n\
             const CONSOLE_INTID: u32 = {};\n\
             /// The console UART's reference clock in Hz, if the kernel sets\n\
             /// its baud rate (platform.toml `clock-hz`).\n\
             const CONSOLE_CLOCK_HZ: Option<u32> = {:?};\n\
             /// The console UART, as the kernel takes it.\n\
             const CONSOLE: hv_core::platform::Uart =\n    \
             match hv_core::range::PhysRange::new(CONSOLE_BASE, CONSOLE_SIZE) {{\n        \
             Some(registers) => hv_core::platform::Uart {{ registers, irq: Some(CONSOLE_INTID) }},\n        \
             None => panic!(\"platform.toml's console range overflows\"),\n    \
             }};\n",
            self.name, console.span.base, console.span.size, console.intid, console.clock_hz,
        );
        // The devices partitions may own: the kernel refuses a boot package
        // that gives any other (hv_core::devices).
        out.push_str(
            "/// The devices partitions may own (platform.toml `[devices]`).\n\
             const DEVICES: &[hv_core::devices::Peripheral] = &[\n",
        );
        for device in &self.devices {
            let irqs: Vec<String> = device.irqs.iter().map(u32::to_string).collect();
            let _ = writeln!(
                out,
                "    // {}\n    hv_core::devices::Peripheral {{ base: {:#x}, size: {:#x}, irqs: &[{}] }},",
                device.name,
                device.span.base,
                device.span.size,
                irqs.join(", ")
            );
        }
        out.push_str("];\n");
        Ok(out)
    }

    /// The whole of a platform crate's build script: links with the crate's
    /// `link.x` and writes [`Platform::kernel_constants`] of its
    /// `platform.toml` to `$OUT_DIR/platform.rs`; a mistake in the file
    /// fails the build with the file, line and key. Reads only the
    /// variables cargo sets for build scripts.
    pub fn build_script() {
        let var = |name: &str| {
            std::path::PathBuf::from(
                std::env::var_os(name).unwrap_or_else(|| panic!("cargo sets {name}")),
            )
        };
        let dir = var("CARGO_MANIFEST_DIR");
        println!("cargo:rerun-if-changed=link.x");
        println!("cargo:rerun-if-changed=platform.toml");
        println!(
            "cargo:rustc-link-arg-bins=-T{}",
            dir.join("link.x").display()
        );
        let constants = Self::read(&dir.join("platform.toml"))
            .map_err(|errors| errors.to_string())
            .and_then(|platform| platform.kernel_constants());
        match constants {
            Ok(out) => {
                std::fs::write(var("OUT_DIR").join("platform.rs"), out)
                    .expect("OUT_DIR is writable");
            }
            Err(why) => {
                eprint!("{why}");
                std::process::exit(1);
            }
        }
    }

    /// A device by name.
    pub(crate) fn device(&self, name: &str) -> Option<(usize, &Device)> {
        self.devices
            .iter()
            .enumerate()
            .find(|(_, d)| d.name == name)
    }

    /// Reads and checks the platform description at `path`
    /// (`platforms/<name>/platform.toml`), whose `name` must be its folder's.
    /// Errors show the path as given.
    ///
    /// # Errors
    ///
    /// Every error found, each with file, line, column and key; or that the
    /// file cannot be read.
    pub fn read(path: &Path) -> Result<Self, Diagnostics> {
        let file = path.display().to_string();
        let folder = path
            .parent()
            .and_then(Path::file_name)
            .and_then(|name| name.to_str())
            .unwrap_or_default();
        let source = std::fs::read_to_string(path).map_err(|error| Diagnostics {
            errors: vec![Diagnostic {
                file: file.clone(),
                position: None,
                key: String::new(),
                message: format!("cannot read the platform description: {error}"),
                help: "check the path".to_owned(),
            }],
        })?;
        let mut sink = Sink::new(&file, &source);
        let platform = Self::parse(&file, &source, folder, &mut sink);
        let errors = sink.into_diagnostics();
        match platform {
            Some(platform) if errors.is_empty() => Ok(platform),
            _ => Err(Diagnostics { errors }),
        }
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
        let binary = root
            .get("binary")
            .and_then(|field| field.string(sink, "write the kernel binary's name in quotes"))
            .map(|binary| binary.value);
        let qemu = read_qemu(&mut root, sink);
        let console = read_console(&mut root, sink);
        let cores = read_cores(&mut root, sink);
        let memory = read_memory(&mut root, sink);
        let reserved = read_reserved(&mut root, sink);
        let devices = read_devices(&mut root, sink, &memory);
        let min_window_us = read_schedule(&mut root, sink);
        root.finish(
            sink,
            &[
                "name", "binary", "qemu", "console", "cores", "memory", "reserved", "devices",
                "schedule",
            ],
        );
        if sink.has_errors() {
            return None;
        }
        Some(Self {
            name: folder.to_owned(),
            file: file.to_owned(),
            binary,
            qemu,
            cores: cores?,
            memory,
            reserved,
            devices,
            console,
            min_window_us,
        })
    }
}

/// What a board's shortest window may be: from a microsecond (no switch is
/// faster) to a second (no schedule wants windows that long as a minimum).
const MIN_WINDOW_RANGE: std::ops::RangeInclusive<u64> = 1..=1_000_000;

/// `[schedule]`: `min-window`, the shortest window (and budget) a system's
/// schedule may have on this board.
fn read_schedule(root: &mut TableReader<'_, '_>, sink: &mut Sink<'_>) -> Option<u64> {
    let help = "`[schedule]` takes `min-window = \"<duration>\"`: the shortest window a \
                schedule may have, derived from the measured cost of a window switch";
    let mut table = root
        .get("schedule")?
        .table(sink, "the `[schedule]` table", help)?;
    let min_window = table
        .require(sink, "min-window", help)
        .and_then(|field| crate::time::read(&field, sink, "shortest window"));
    table.finish(sink, &["min-window"]);
    let min_window = min_window?;
    if !MIN_WINDOW_RANGE.contains(&min_window.value.us) {
        sink.error(
            &min_window.place,
            format!(
                "shortest window `{}` is out of range: it must be 1us to 1s",
                min_window.value.written
            ),
            help,
        );
        return None;
    }
    Some(min_window.value.us)
}

/// `[qemu]`: how the runner starts QEMU for this board.
fn read_qemu(root: &mut TableReader<'_, '_>, sink: &mut Sink<'_>) -> Option<Qemu> {
    let help = "`[qemu]` takes `machine`, `cpu` and `ram_base`";
    let mut table = root.get("qemu")?.table(sink, "the `[qemu]` table", help)?;
    let machine = table
        .require(sink, "machine", "add `machine = \"<QEMU's -M value>\"`")
        .and_then(|field| field.string(sink, "write QEMU's machine in quotes"));
    let cpu = table
        .require(sink, "cpu", "add `cpu = \"<QEMU's -cpu value>\"`")
        .and_then(|field| field.string(sink, "write QEMU's CPU in quotes"));
    let ram_base = table
        .require(sink, "ram_base", "add `ram_base = <where RAM starts>`")
        .and_then(|field| address(&field, sink));
    table.finish(sink, &["machine", "cpu", "ram_base"]);
    Some(Qemu {
        machine: machine?.value,
        cpu: cpu?.value,
        ram_base: ram_base?.value,
    })
}

/// `[console]`: the UART the kernel prints through.
fn read_console(root: &mut TableReader<'_, '_>, sink: &mut Sink<'_>) -> Option<Console> {
    let help = "`[console]` takes `compatible`, `base`, `size`, `intid` and `clock-hz`";
    let mut table = root
        .get("console")?
        .table(sink, "the `[console]` table", help)?;
    let compatible = table
        .require(
            sink,
            "compatible",
            "add `compatible = \"vendor,model\"` as in the device tree",
        )
        .and_then(|field| field.string(sink, "write the compatible string in quotes"));
    let span = read_span(&mut table, sink, "console");
    let intid = table
        .require(sink, "intid", "add `intid = <the UART's GIC INTID>`")
        .and_then(|field| {
            field.integer_in(
                sink,
                SPI_FIRST..=SPI_LAST,
                "INTID",
                "the console's interrupt is a shared peripheral interrupt, INTIDs 32 to 1019",
            )
        })
        .and_then(|intid| u32::try_from(intid.value).ok());
    let clock_hz = match table.get("clock-hz") {
        None => Some(None),
        Some(field) => field
            .integer_in(
                sink,
                1_000_000..=1_000_000_000,
                "clock",
                "`clock-hz` is the UART's reference clock in Hz (the Pi 4's PL011: 48000000)",
            )
            .and_then(|clock| u32::try_from(clock.value).ok())
            .map(Some),
    };
    table.finish(sink, &["compatible", "base", "size", "intid", "clock-hz"]);
    Some(Console {
        compatible: compatible?.value,
        span: span?,
        intid: intid?,
        clock_hz: clock_hz?,
    })
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

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::{Console, Platform, Qemu, Span};

    /// The workspace root.
    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// Writes `text` as `<scratch>/<folder>/platform.toml`.
    fn board(test: &str, folder: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir()
            .join(format!(
                "hv-manifest-platform-{}-{test}",
                std::process::id()
            ))
            .join(folder);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("platform.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn qemu_virt_reads_with_everything_its_readers_need() {
        let path = root().join("platforms/qemu-virt/platform.toml");
        let platform = Platform::read(&path).unwrap();
        assert_eq!(platform.name, "qemu-virt");
        assert_eq!(platform.binary.as_deref(), Some("bulkhead-qemu-virt"));
        assert_eq!(
            platform.qemu,
            Some(Qemu {
                machine: "virt,virtualization=on".to_owned(),
                cpu: "cortex-a57".to_owned(),
                ram_base: 0x4000_0000,
            })
        );
        assert_eq!(
            platform.console,
            Some(Console {
                compatible: "arm,pl011".to_owned(),
                span: Span {
                    base: 0x0900_0000,
                    size: 0x1000
                },
                intid: 33,
                clock_hz: None,
            })
        );
        assert_eq!(platform.cores, 4);
        assert_eq!(platform.min_window_us, Some(40));
        let (_, uart) = platform.device("uart0").unwrap();
        assert_eq!(uart.irqs, [33]);
        assert_eq!(uart.span.base, 0x0900_0000);
    }

    #[test]
    fn a_board_without_binary_qemu_or_console_reads() {
        let path = board(
            "minimal",
            "tiny",
            "name = \"tiny\"\n[cores]\ncount = 1\n\
             [[memory]]\nbase = 0x4000_0000\nsize = \"1G\"\n",
        );
        let platform = Platform::read(&path).unwrap();
        assert_eq!(platform.binary, None);
        assert_eq!(platform.qemu, None);
        assert_eq!(platform.console, None);
        assert_eq!(platform.min_window_us, None);
        assert!(platform.devices.is_empty());
    }

    /// What the platform crates' build scripts write: each board's console
    /// and devices, from its file; a board without a console gets none.
    #[test]
    fn kernel_constants_come_from_the_file() {
        for (board, console, clock, uart0) in [
            (
                "qemu-virt",
                "0x9000000",
                "None",
                "base: 0x9000000, size: 0x1000, irqs: &[33]",
            ),
            (
                "rpi4",
                "0xfe201000",
                "Some(48000000)",
                "base: 0xfe201000, size: 0x1000, irqs: &[153]",
            ),
        ] {
            let path = root().join(format!("platforms/{board}/platform.toml"));
            let out = Platform::read(&path).unwrap().kernel_constants().unwrap();
            assert!(
                out.contains(&format!("const CONSOLE_BASE: u64 = {console};")),
                "{out}"
            );
            assert!(
                out.contains(&format!("const CONSOLE_CLOCK_HZ: Option<u32> = {clock};")),
                "{out}"
            );
            assert!(
                out.contains(&format!(
                    "// uart0\n    hv_core::devices::Peripheral {{ {uart0} }},"
                )),
                "{out}"
            );
        }
        let tiny = board(
            "console-less",
            "tiny",
            "name = \"tiny\"\n[cores]\ncount = 1\n\
             [[memory]]\nbase = 0x4000_0000\nsize = \"1G\"\n",
        );
        let why = Platform::read(&tiny)
            .unwrap()
            .kernel_constants()
            .unwrap_err();
        assert!(
            why.ends_with("no `[console]`: the kernel needs a UART to print through"),
            "{why}"
        );
    }

    #[test]
    fn errors_name_the_file_line_and_key() {
        let path = board(
            "bad",
            "shaky",
            "name = \"shaky\"\nbinary = 7\n\n[qemu]\nmachine = \"virt\"\nram_base = -1\n\n\
             [console]\ncompatible = \"arm,pl011\"\nbase = 0x0900_0000\nsize = 0x1000\n\
             intid = 7\nclock-hz = 300\n\n[cores]\ncount = 1\n\n[[memory]]\nbase = 0x4000_0000\nsize = \"1G\"\n\
             \n[schedule]\nmin-window = \"2s\"\n",
        );
        let file = path.display().to_string();
        let errors = Platform::read(&path).unwrap_err().to_string();
        let expected = [
            format!("error: {file}:2:10: binary: "),
            format!("error: {file}:4:1: qemu: the `[qemu]` table needs the key `cpu`"),
            format!("error: {file}:6:12: qemu.ram_base: -1 is not an address"),
            format!("error: {file}:12:9: console.intid: INTID 7 is out of range"),
            format!("error: {file}:13:12: console.clock-hz: clock 300 is out of range"),
            format!(
                "error: {file}:23:14: schedule.min-window: shortest window `2s` is out of range"
            ),
        ];
        for line in &expected {
            assert!(errors.contains(line.as_str()), "{line}\nnot in\n{errors}");
        }
        assert_eq!(
            errors.matches("error: ").count(),
            expected.len(),
            "{errors}"
        );
    }

    #[test]
    fn an_unreadable_file_is_an_error_naming_it() {
        let errors = Platform::read(Path::new("/nonexistent/board/platform.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            errors.starts_with(
                "error: /nonexistent/board/platform.toml: cannot read the platform description"
            ),
            "{errors}"
        );
    }
}
