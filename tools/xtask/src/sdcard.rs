// SPDX-License-Identifier: Apache-2.0 OR MIT
//! `cargo xtask sdcard [SYSTEM.toml] --board rpi4 -o FILE`: a bootable SD
//! card image for the Raspberry Pi 4 (and the Pi 400 and CM4), made without
//! root, loop devices or mounting.
//!
//! The card ([`disk`]): an MBR with one bootable FAT32 (LBA, type `0x0c`)
//! partition from 1 MiB, holding in its root folder
//!
//! - `start4.elf`, `fixup4.dat`: the VideoCore firmware, which reads
//!   `config.txt` (Debian's `raspi-firmware`, with its licence);
//! - `bcm2711-rpi-4-b.dtb`, `bcm2711-rpi-400.dtb`, `bcm2711-rpi-cm4-io.dtb`:
//!   the device trees from Debian's arm64 kernel package, which the firmware
//!   picks by board and passes to the kernel in x0;
//! - `config.txt` ([`config`]): 64-bit, EL2, the kernel's file name, the
//!   PL011 console on GPIO 14/15;
//! - `bulkhead.img`: the Bulkhead image;
//! - with `--loader u-boot`, also `u-boot.bin` (Debian's `u-boot-rpi`),
//!   which `config.txt` names as the kernel, and `boot.scr` ([`script`]),
//!   which U-Boot runs to load `bulkhead.img` and `booti` it.
//!
//! Debian's files come through [`firmware`] (cached in `target/rpi4-boot/`).
//! The image comes from [`bulkhead_image`], which takes the board.
//!
//! The output is written to a temporary file beside it and renamed into
//! place, so a failure leaves nothing and an existing file is replaced whole
//! or not at all; an existing file is replaced only with `--force`, and never
//! anything but a regular file (a card is written with `cargo xtask flash`).

mod check;
mod disk;
mod firmware;
mod script;
#[cfg(test)]
mod tests;

use std::ffi::{OsStr, OsString};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::args::{self, Long, Parsed, Short, Value};
use crate::debian::Resolve;
use crate::{Result, error, image, setup, system};

/// The Bulkhead image's name on the card.
pub(crate) const IMAGE_FILE: &str = "bulkhead.img";
/// U-Boot's boot script's name on the card (distro boot looks for it).
const SCRIPT_FILE: &str = "boot.scr";
/// The firmware's configuration file.
const CONFIG_FILE: &str = "config.txt";

/// A board that boots from an SD card.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Board {
    /// The Raspberry Pi 4 Model B, the Pi 400 and the Compute Module 4 (BCM2711).
    Rpi4,
}

impl Board {
    /// The board named on the command line.
    fn parse(name: &str) -> Parsed<Self> {
        match name {
            "rpi4" => Ok(Self::Rpi4),
            "virt" | "qemu-virt" => Err(args::bad(
                "QEMU's virt machine boots from -kernel and has no SD card: `cargo xtask run`. \
                 --board takes rpi4",
            )),
            other => Err(args::bad(format!(
                "unknown board `{other}`; --board takes rpi4"
            ))),
        }
    }

    /// The platform (folder under `platforms/`) whose kernel boots on it.
    pub(crate) fn platform(self) -> &'static str {
        match self {
            Self::Rpi4 => "rpi4",
        }
    }
}

/// What starts the Bulkhead image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Loader {
    /// The Pi's firmware loads it directly (`kernel=bulkhead.img`).
    Firmware,
    /// The firmware starts U-Boot, whose boot script loads it and `booti`s it.
    UBoot,
}

/// What goes on the card: the options `sdcard` and `flash` share.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Card {
    /// The system manifest (default: `systems/demo.toml`).
    system: PathBuf,
    /// Whether it was given.
    system_given: bool,
    board: Board,
    loader: Loader,
    /// `--image FILE`: this image as is instead of building the system.
    image: Option<PathBuf>,
    /// Not `--debug`.
    release: bool,
    resolve: Resolve,
    guest: system::GuestChoice,
}

impl Default for Card {
    fn default() -> Self {
        Self {
            system: crate::root().join("systems/demo.toml"),
            system_given: false,
            board: Board::Rpi4,
            loader: Loader::Firmware,
            image: None,
            release: true,
            resolve: Resolve::Cached,
            guest: system::GuestChoice::default(),
        }
    }
}

impl Card {
    /// Reads `option` if it is one of the card's (`--board`, `--loader`,
    /// `--image`, `--debug`, `--refresh`, `--kernel`, `--initrd`); `false`
    /// if it is not.
    pub(crate) fn option(&mut self, option: &str, parser: &mut args::Parser) -> Parsed<bool> {
        match option {
            "--board" => self.board = Board::parse(&args::string(parser, option)?)?,
            "--loader" => {
                self.loader = match args::string(parser, option)?.as_str() {
                    "firmware" => Loader::Firmware,
                    "u-boot" | "uboot" => Loader::UBoot,
                    other => {
                        return Err(args::bad(format!(
                            "--loader takes firmware or u-boot, not `{other}`"
                        )));
                    }
                }
            }
            "--image" => self.image = Some(args::path(parser, option)?),
            "--debug" => self.release = false,
            "--refresh" => self.resolve = Resolve::Refresh,
            "--kernel" => self.guest.kernel = Some(args::path(parser, option)?),
            "--initrd" => self.guest.initrd = Some(args::path(parser, option)?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Takes the positional argument `value`: the system manifest.
    pub(crate) fn positional(&mut self, value: OsString) -> Parsed<()> {
        args::manifest(&mut self.system, &mut self.system_given, value)
    }

    /// Checks what the options say together, once all are read.
    pub(crate) fn finish(self) -> Parsed<Self> {
        if self.image.is_some()
            && (self.system_given || self.guest.kernel.is_some() || self.guest.initrd.is_some())
        {
            return Err(args::bad(
                "--image FILE puts that image on the card as is: give either it or a system \
                 manifest (with --kernel/--initrd), not both",
            ));
        }
        Ok(self)
    }
}

/// `sdcard`'s options.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Options {
    card: Card,
    /// `-o FILE`.
    output: PathBuf,
    /// `--force`: replace `output` if it exists.
    force: bool,
}

/// `cargo xtask sdcard [SYSTEM.toml] --board rpi4 -o FILE [OPTIONS]`.
pub(crate) fn parse<A: AsRef<OsStr>>(args: &[A]) -> Result<Options> {
    args::parse_for("sdcard", args, |parser| {
        let mut card = Card::default();
        let mut output = None;
        let mut force = false;
        while let Some(arg) = parser.next()? {
            match arg {
                Short('o') | Long("output") => output = Some(args::path(parser, "-o")?),
                Long("force") => force = true,
                Long(name) => {
                    let name = format!("--{name}");
                    if !card.option(&name, parser)? {
                        return Err(args::ArgError::UnexpectedOption(name));
                    }
                }
                Value(value) => card.positional(value)?,
                other @ Short(_) => return Err(other.unexpected()),
            }
        }
        Ok(Options {
            card: card.finish()?,
            output: output.ok_or_else(|| args::bad("needs the image file to write: -o FILE"))?,
            force,
        })
    })
}

/// `cargo xtask sdcard`.
pub(crate) fn main(options: &Options) -> Result<ExitCode> {
    let output = &options.output;
    // Refuse a bad output before building or fetching anything.
    check_output(output, options.force)?;
    let (card, files, source, boot) = build_card(&options.card)?;
    write_output(output, &card, options.force)?;
    println!("{}", output.display());
    eprintln!(
        "sdcard: {} ({} MiB) for the Raspberry Pi 4, Pi 400 and CM4, {}: {}",
        output.display(),
        card.len() >> 20,
        match options.card.loader {
            Loader::Firmware => "the firmware starts Bulkhead",
            Loader::UBoot => "the firmware starts U-Boot, which starts Bulkhead",
        },
        files
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    );
    eprintln!("sdcard: {IMAGE_FILE} is {source}");
    eprintln!("sdcard: from Debian: {}", boot.describe());
    Ok(ExitCode::SUCCESS)
}

/// The card image `options` describe, the files on it, where the Bulkhead
/// image came from, and Debian's files.
fn build_card(options: &Card) -> Result<(Vec<u8>, Vec<disk::File>, String, firmware::BootFiles)> {
    let (image, source) = bulkhead_image(options.board, options)?;
    let boot = firmware::ensure(options.resolve)?;
    let mut inputs = debian_inputs(&boot, options.loader)?;
    inputs.push(IMAGE_FILE, image);
    let files = contents(inputs, options.loader)?;
    let card = disk::card(&files)?;
    Ok((card, files, source, boot))
}

/// The card image `cargo xtask sdcard` would write for `card`, for `cargo
/// xtask flash`: the image's bytes and a one-line description of what is on
/// it.
pub(crate) fn card_image(card: &Card) -> Result<(Vec<u8>, String)> {
    let (card, files, source, _) = build_card(card)?;
    let names = files
        .iter()
        .map(|f| f.name.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    Ok((card, format!("{names}; {IMAGE_FILE} is {source}")))
}

/// Debian's files that `loader` needs on the card.
fn debian_inputs(boot: &firmware::BootFiles, loader: Loader) -> Result<Inputs> {
    let mut names: Vec<&str> = firmware::FIRMWARE_FILES.to_vec();
    names.push(firmware::FIRMWARE_LICENCE);
    names.extend(firmware::DEVICE_TREES);
    if loader == Loader::UBoot {
        names.push(firmware::UBOOT_FILE);
    }
    let mut inputs = Inputs::default();
    for name in names {
        inputs.push(name, read(&boot.path(name))?);
    }
    Ok(inputs)
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| error!("cannot read {}: {e}", path.display()))
}

/// The Bulkhead image for `board`, and a description of where it came from.
///
/// `--image FILE` gives it as is. Otherwise the system is built as `cargo
/// xtask build` builds it, for the platform its manifest names. Until
/// `platforms/rpi4` exists that is QEMU's `virt`, whose image does not boot
/// on a Pi: the card is still made (its layout can be tested), with a
/// warning. When the Pi's platform lands, this is the one place that picks
/// the board's kernel.
fn bulkhead_image(board: Board, options: &Card) -> Result<(Vec<u8>, String)> {
    if let Some(path) = &options.image {
        let bytes = read(path)?;
        check_arm64_image(&bytes).map_err(|why| error!("{}: {why}", path.display()))?;
        return Ok((bytes, format!("{} as given", path.display())));
    }
    let tools = setup::ensure(setup::Needs { uboot: false })?;
    // Built for the board's platform whatever the manifest names, as
    // `cargo xtask build --board` does.
    let system = system::System::load_for(&options.system, &options.guest, Some(board.platform()))?;
    let path = image::build_system(&tools, &system, image::Variant::plain(options.release))?;
    Ok((
        read(&path)?,
        format!(
            "system `{}` ({}) for platform `{}`, {}",
            system.name,
            options.system.display(),
            system.platform.name,
            path.display()
        ),
    ))
}

/// Checks that `bytes` start with an arm64 Image header, which the firmware
/// and `booti` both need (magic `ARM\x64` at 0x38).
fn check_arm64_image(bytes: &[u8]) -> std::result::Result<(), String> {
    if bytes.get(0x38..0x3c) == Some(b"ARM\x64".as_slice()) {
        Ok(())
    } else {
        Err("not an arm64 Image (no ARM\\x64 magic at 0x38): give the .img that `cargo xtask build` prints".into())
    }
}

/// The card's input files by name, before `config.txt` and the boot script.
#[derive(Default)]
pub(crate) struct Inputs {
    files: Vec<disk::File>,
}

impl Inputs {
    /// Adds a file.
    pub(crate) fn push(&mut self, name: &str, data: Vec<u8>) {
        self.files.push(disk::File {
            name: name.to_string(),
            data,
        });
    }

    fn has(&self, name: &str) -> bool {
        self.files.iter().any(|f| f.name == name)
    }
}

/// Every file of the card: the inputs (firmware, device trees, the image,
/// U-Boot for [`Loader::UBoot`]), `config.txt` and, for U-Boot, `boot.scr`.
pub(crate) fn contents(inputs: Inputs, loader: Loader) -> Result<Vec<disk::File>> {
    let mut needed: Vec<&str> = firmware::FIRMWARE_FILES.to_vec();
    needed.extend(firmware::DEVICE_TREES);
    needed.push(IMAGE_FILE);
    if loader == Loader::UBoot {
        needed.push(firmware::UBOOT_FILE);
    }
    for name in needed {
        if !inputs.has(name) {
            return Err(error!("sdcard: the card needs {name}, which is missing"));
        }
    }
    let mut files = inputs.files;
    let kernel = match loader {
        Loader::Firmware => IMAGE_FILE,
        Loader::UBoot => {
            let text = script::text(IMAGE_FILE);
            files.push(disk::File {
                name: SCRIPT_FILE.into(),
                data: script::image("Bulkhead boot script", &text),
            });
            firmware::UBOOT_FILE
        }
    };
    files.push(disk::File {
        name: CONFIG_FILE.into(),
        data: config(kernel, loader).into_bytes(),
    });
    Ok(files)
}

/// `config.txt`, which the firmware reads: start `kernel` in 64-bit mode at
/// EL2 with the PL011 console on GPIO 14/15.
pub(crate) fn config(kernel: &str, loader: Loader) -> String {
    let cm4_tree = firmware::DEVICE_TREES[2];
    let mut text = format!(
        "\
# Bulkhead on the Raspberry Pi 4, Pi 400 and Compute Module 4.
# Written by `cargo xtask sdcard`; docs/boards.md, section \"SD card image\".
# The firmware (start4.elf) reads this file, loads the device tree for the
# board it runs on (bcm2711-rpi-4-b.dtb, bcm2711-rpi-400.dtb) and the kernel
# named below, and starts the Arm cores through its built-in stub: core 0
# enters the kernel at EL2 with the device tree's address in x0, the other
# cores wait in a spin table.

[all]
# 64-bit mode: the kernel is an arm64 Image (Bulkhead runs wherever it is
# loaded; recent firmware honours the image header and loads it at 0x200000).
arm_64bit=1
kernel={kernel}
# The GIC-400, which Bulkhead drives (the Pi 4's default, said anyway).
enable_gic=1

# The console: the PL011 (UART0) on GPIO 14 (TXD) and 15 (RXD), header pins 8
# and 10, 115200 baud 8N1.
# enable_uart=1 puts a UART on GPIO 14/15 and holds the core clock steady.
enable_uart=1
# The PL011's reference clock: 48 MHz, which Bulkhead divides for 115200.
init_uart_clock=48000000
# Bluetooth: by default the PL011 serves the Bluetooth chip and GPIO 14/15
# carry the mini UART. Linux swaps them with dtoverlay=disable-bt (or
# miniuart-bt), but overlays are files in overlays/, which Debian's
# raspi-firmware does not ship, and they only change the device tree for
# Linux's pin control. Bulkhead does what bare-metal Pi 4 kernels do: it sets
# GPIO 14 and 15 to function ALT0 (the PL011) itself, so no overlay is
# needed, and Bluetooth is not used.
# If nothing appears on the console, uncomment this to see the firmware's
# own messages on GPIO 14/15 (mini UART, 115200) before the kernel starts:
#uart_2ndstage=1
"
    );
    if loader == Loader::UBoot {
        text.push_str(
            "
# U-Boot (Debian's u-boot-rpi, rpi_arm64) prints on GPIO 14/15 through the
# mini UART at 115200 (the device tree's stdout-path), then runs boot.scr,
# which loads bulkhead.img and starts it with booti and the firmware's
# device tree; Bulkhead then moves GPIO 14/15 to the PL011.
",
        );
    }
    text.push_str(&format!(
        "
[cm4]
# The firmware looks for bcm2711-rpi-cm4.dtb (Raspberry Pi's name); Debian's
# kernel ships the mainline tree for the CM4 on its IO board.
device_tree={cm4_tree}

[all]
"
    ));
    text
}

/// Refuses an output that cannot or must not be written: a missing folder, a
/// folder, an existing file without `--force`, anything but a regular file.
fn check_output(path: &Path, force: bool) -> Result<()> {
    let shown = path.display();
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if path.file_name().is_none() {
        return Err(error!("-o {shown}: give a file name, not a folder"));
    }
    if !parent.is_dir() {
        return Err(error!(
            "-o {shown}: the folder {} does not exist; create it first",
            parent.display()
        ));
    }
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(error!("-o {shown}: {e}")),
        Ok(meta) if meta.is_dir() => Err(error!("-o {shown} is a folder; give a file name")),
        Ok(meta) if !meta.is_file() => Err(error!(
            "-o {shown} exists and is not a regular file (a device?); sdcard writes only image \
             files: to write a card, use cargo xtask flash"
        )),
        Ok(_) if !force => Err(error!(
            "-o {shown} exists; --force replaces it (whole, once the new image is complete)"
        )),
        Ok(_) => Ok(()),
    }
}

/// Writes `bytes` to a temporary file beside `path`, syncs it and renames it
/// into place; on any failure the temporary file is removed and `path` is as
/// it was.
fn write_output(path: &Path, bytes: &[u8], force: bool) -> Result<()> {
    check_output(path, force)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".{name}.partial-{}", std::process::id()));
    let written = std::fs::File::create(&temporary)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .and_then(|()| {
            if force {
                std::fs::rename(&temporary, path)
            } else {
                // A link fails if the name was taken since it was checked.
                std::fs::hard_link(&temporary, path).and_then(|()| std::fs::remove_file(&temporary))
            }
        });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(error!("cannot write {}: {e}", path.display()));
    }
    Ok(())
}

/// The system test `sdcard-rpi4`: cards for both loaders made of Debian's
/// real files (fetched like `cargo xtask sdcard` fetches them) and `image`,
/// written through the command's own output path and checked with the
/// independent tools of [`check`]; `bulkhead.img` on the card is `image`
/// byte for byte.
pub(crate) fn system_test(image: &Path) -> std::result::Result<String, String> {
    let boot = firmware::ensure(Resolve::Cached).map_err(|e| e.to_string())?;
    let dir = std::env::temp_dir().join(format!("xtask-sdcard-system-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut report = Vec::new();
    let result = (|| {
        for (loader, name) in [(Loader::Firmware, "firmware"), (Loader::UBoot, "u-boot")] {
            let mut inputs = debian_inputs(&boot, loader).map_err(|e| e.to_string())?;
            inputs.push(IMAGE_FILE, read(image).map_err(|e| e.to_string())?);
            let files = contents(inputs, loader).map_err(|e| e.to_string())?;
            let path = dir.join(format!("{name}.img"));
            let card = disk::card(&files).map_err(|e| e.to_string())?;
            write_output(&path, &card, false).map_err(|e| e.to_string())?;
            let summary = check::card(&path, &files)?;
            if let Some(script) = files.iter().find(|f| f.name == SCRIPT_FILE) {
                check::boot_script(&script.data, &script::text(IMAGE_FILE), &dir)?;
            }
            report.push(format!("{name}: {summary}"));
        }
        Ok(format!("{}; {}", boot.describe(), report.join("; ")))
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// How long the U-Boot card may take in QEMU: U-Boot's two-second
/// autoboot delay, then reading `bulkhead.img` through QEMU's emulated SD
/// controller at about 1 MiB/s, then the demo.
const U_BOOT_CARD_TIMEOUT: Duration = Duration::from_secs(90);

/// The system test `sdcard-u-boot-rpi4`: the `--loader u-boot` card for
/// `image` (the demo, built for the Pi), booted in QEMU's `raspi4b` as far
/// as QEMU goes, which is all of it but the VideoCore's part.
///
/// On a board, the VideoCore firmware (`start4.elf`) reads `config.txt` and
/// starts `u-boot.bin` with the device tree; QEMU emulates no VideoCore, so
/// the test starts the card's own `u-boot.bin` with the card's own
/// `bcm2711-rpi-4-b.dtb` instead (`-kernel`, `-dtb`), and gives QEMU the
/// card as its SD card. From there everything is the card's: U-Boot finds
/// the FAT partition, runs `boot.scr`, which loads `bulkhead.img` from the
/// card and `booti`s it, and the demo runs. U-Boot prints on the mini UART
/// (QEMU's second serial port, kept in a file), Bulkhead on the PL011.
pub(crate) fn u_boot_system_test(
    tools: &setup::Tools,
    platform: &system::Platform,
    image: &Path,
) -> std::result::Result<String, String> {
    let boot = firmware::ensure(Resolve::Cached).map_err(|e| e.to_string())?;
    let dir = std::env::temp_dir().join(format!("xtask-sdcard-u-boot-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let result = boot_u_boot_card(tools, platform, &boot, image, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn boot_u_boot_card(
    tools: &setup::Tools,
    platform: &system::Platform,
    boot: &firmware::BootFiles,
    image: &Path,
    dir: &Path,
) -> std::result::Result<String, String> {
    let mut inputs = debian_inputs(boot, Loader::UBoot).map_err(|e| e.to_string())?;
    inputs.push(IMAGE_FILE, read(image).map_err(|e| e.to_string())?);
    let files = contents(inputs, Loader::UBoot).map_err(|e| e.to_string())?;
    let mut card = disk::card(&files).map_err(|e| e.to_string())?;
    // QEMU's SD card takes only sizes that are powers of two; a real card
    // is bigger than the image anyway, and the partition table covers only
    // the image's own bytes.
    card.resize(card.len().next_power_of_two(), 0);
    let file = |name: &str| -> std::result::Result<PathBuf, String> {
        let data = &files
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| format!("the card has no {name}"))?
            .data;
        let path = dir.join(name);
        std::fs::write(&path, data).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    };
    let u_boot = file(firmware::UBOOT_FILE)?;
    let dtb = file(firmware::DEVICE_TREES[0])?;
    let card_path = dir.join("card.img");
    std::fs::write(&card_path, &card).map_err(|e| format!("{}: {e}", card_path.display()))?;
    let u_boot_log = dir.join("mini-uart.txt");
    let machine = crate::qemu::Machine {
        smp: 4,
        kernel: Some(u_boot),
        dtb: Some(dtb),
        extra: vec![
            "-drive".into(),
            format!("file={},if=sd,format=raw", card_path.display()),
            // The PL011 (Bulkhead's console) on stdio as always; the mini
            // UART (U-Boot's) into a file.
            "-serial".into(),
            "mon:stdio".into(),
            "-serial".into(),
            format!("file:{}", u_boot_log.display()),
        ],
        ..crate::qemu::Machine::default_for(platform)
    };
    let spec = crate::qemu::RunSpec {
        timeout: Some(U_BOOT_CARD_TIMEOUT),
        until: Some("[ping] ping: done\r\n".into()),
        ..crate::qemu::RunSpec::default()
    };
    let outcome = crate::qemu::run(tools, &machine, &spec).map_err(|e| e.to_string())?;
    let u_boot_text = std::fs::read_to_string(&u_boot_log).unwrap_or_default();
    let show = || {
        format!(
            "--- U-Boot (mini UART) ---\n{u_boot_text}\n--- Bulkhead (PL011) ---\n{}",
            outcome.console
        )
    };
    // U-Boot's distro boot found the card's script, which loaded the
    // image from the card and started it.
    for needle in [
        "Found U-Boot script /boot.scr",
        "Bulkhead: loading bulkhead.img",
        "Starting kernel ...",
    ] {
        if !u_boot_text.contains(needle) {
            return Err(format!("U-Boot never printed `{needle}`\n{}", show()));
        }
    }
    if let Some(line) = outcome.failure() {
        return Err(format!("the kernel reported: {line}\n{}", show()));
    }
    let transcript = outcome.transcript();
    for needle in [
        // booti moved the image to a 2 MiB boundary.
        "boot:   kernel image      0x000200000..",
        "boot: system `demo`: 7 partitions",
        "bulkhead: system ready",
        "[ping] ping: done",
    ] {
        if !transcript.has(needle) {
            return Err(format!("Bulkhead never printed `{needle}`\n{}", show()));
        }
    }
    Ok(format!(
        "U-Boot ran boot.scr from the card, which booted bulkhead.img; the demo ran ({:.1} s)",
        outcome.elapsed.as_secs_f64()
    ))
}
