// SPDX-License-Identifier: Apache-2.0 OR MIT
//! `cargo xtask flash --board rpi4 --device /dev/sdX [SYSTEM.toml]`: builds
//! the card image `cargo xtask sdcard` would write and writes it to an SD
//! card, then reads it back and compares.
//!
//! Safety first: the device is looked at through sysfs and the mount table
//! ([`Facts`], gathered by [`gather`]) and the pure decision [`check`]
//! refuses, before anything is written, a device that is not a block device,
//! a partition rather than a whole disk, one that is not on an SD/MMC or USB
//! transport (a laptop's SD slot reports itself as not removable, so the
//! `removable` flag decides nothing), holds the running system, is mounted
//! or used by another block device, or whose size is implausible for a card.
//! Then the model and size are shown and the user confirms (`--yes` skips).
//!
//! **Test seam:** with `BULKHEAD_FLASH_ROOT=DIR`, sysfs, `/proc/self/mounts`
//! and `/dev` are read under `DIR`, a device counts as a block device when
//! `DIR/sys/class/block/NAME` exists, and a plain file `DIR/dev/NAME` plays
//! the card; if `DIR/dev/NAME.readback` exists, the read-back reads it
//! instead (a card that reads back wrong).

#[cfg(test)]
mod tests;

use std::ffi::OsStr;
use std::fs::File;
use std::io::{BufRead as _, Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::args::{self, Long, Short, Value};
use crate::{Result, error, sdcard};

/// The environment variable that names the fixture root (the test seam).
pub(crate) const ROOT_VARIABLE: &str = "BULKHEAD_FLASH_ROOT";

/// The smallest device taken for a card.
pub(crate) const MIN_SIZE: u64 = 64 << 20;
/// The largest device taken for a card.
pub(crate) const MAX_SIZE: u64 = 2 << 40;

/// Where the system's files are read: the real `/`, or a fixture root.
#[derive(Clone, Debug)]
pub(crate) struct Root {
    /// `None`: the real system.
    fixture: Option<PathBuf>,
}

impl Root {
    /// The real system.
    pub(crate) fn real() -> Self {
        Self { fixture: None }
    }

    /// A fixture tree standing in for `/`.
    pub(crate) fn fixture(dir: impl Into<PathBuf>) -> Self {
        Self {
            fixture: Some(dir.into()),
        }
    }

    /// `path` (absolute) under this root.
    fn at(&self, path: &str) -> PathBuf {
        match &self.fixture {
            None => PathBuf::from(path),
            Some(dir) => dir.join(path.trim_start_matches('/')),
        }
    }

    /// `path` as the system sees it (the fixture prefix taken off).
    fn shown(&self, path: &Path) -> String {
        match &self.fixture {
            Some(dir) => match path.strip_prefix(dir) {
                Ok(rest) => format!("/{}", rest.display()),
                Err(_) => path.display().to_string(),
            },
            None => path.display().to_string(),
        }
    }
}

/// One line of the mount table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Mount {
    /// The block name of the mounted device (`sdb1`), if it is one.
    pub(crate) device: String,
    /// Where it is mounted.
    pub(crate) point: String,
}

/// What the decision needs to know about a device, as plain data.
#[derive(Clone, Debug, Default)]
pub(crate) struct Facts {
    /// The path the user gave.
    pub(crate) given: String,
    /// The kernel's block name (`sdb`, `mmcblk0`).
    pub(crate) name: String,
    /// It is a block device.
    pub(crate) is_block: bool,
    /// It is a partition (sysfs has `partition` for it).
    pub(crate) is_partition: bool,
    /// The resolved path of `/sys/block/NAME/device`, if any.
    pub(crate) device_path: Option<String>,
    /// The size in bytes (`/sys/block/NAME/size` × 512).
    pub(crate) size: u64,
    /// The device's partitions' block names.
    pub(crate) partitions: Vec<String>,
    /// Block devices built on it or its partitions (device mapper, RAID).
    pub(crate) holders: Vec<String>,
    /// The mount table.
    pub(crate) mounts: Vec<Mount>,
    /// The disk or one of its partitions is the device `/` lives on (by
    /// device number).
    pub(crate) holds_root_by_number: bool,
    /// Vendor and model, as sysfs gives them.
    pub(crate) model: String,
}

/// Why a device is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Not a block device (a plain file, a character device, missing).
    NotBlock,
    /// A partition: the card is written whole.
    Partition,
    /// Not on an SD/MMC or USB transport.
    NotCardTransport(Option<String>),
    /// Smaller than [`MIN_SIZE`] or larger than [`MAX_SIZE`].
    Size(u64),
    /// The running system is on it.
    HoldsRoot(String),
    /// It or a partition of it is mounted.
    Mounted(Vec<(String, String)>),
    /// Another block device is built on it.
    Held(Vec<String>),
}

impl Refusal {
    /// The message for the user about the device `facts` describe.
    pub(crate) fn message(&self, facts: &Facts) -> String {
        let d = &facts.given;
        let tail = "; nothing was written";
        match self {
            Self::NotBlock => format!(
                "{d} is not a block device: flash writes only to an SD card or USB stick's \
                 whole device (like /dev/mmcblk0 or /dev/sdb); to make an image file use \
                 cargo xtask sdcard -o FILE{tail}"
            ),
            Self::Partition => format!(
                "{d} is a partition ({}); give the whole card's device instead{}{tail}",
                facts.name,
                parent_hint(&facts.name)
            ),
            Self::NotCardTransport(path) => format!(
                "{d} is not an SD/MMC or USB mass-storage device (its sysfs device is {}); \
                 flash refuses internal disks{tail}",
                path.as_deref().unwrap_or("unknown")
            ),
            Self::Size(size) => format!(
                "{d} holds {}, which is implausible for an SD card (flash takes 64 MiB to 2 TiB){tail}",
                human(*size)
            ),
            Self::HoldsRoot(part) => format!(
                "{d} holds the running system (/ is on {part}); flash will not overwrite it{tail}"
            ),
            Self::Mounted(mounts) => format!(
                "{d} is mounted ({}); unmount it first (e.g. `umount {}`){tail}",
                mounts
                    .iter()
                    .map(|(dev, point)| format!("/dev/{dev} on {point}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                mounts
                    .iter()
                    .map(|(_, point)| point.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            Self::Held(holders) => format!(
                "{d} is in use by {} (device mapper, RAID or encryption); release it first{tail}",
                holders.join(", ")
            ),
        }
    }
}

/// `sdb1` → ` (/dev/sdb?)`, `mmcblk0p1` → ` (/dev/mmcblk0?)`.
fn parent_hint(name: &str) -> String {
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit());
    let stem = if stem != name && (stem.starts_with("mmcblk") || stem.starts_with("nvme")) {
        stem.strip_suffix('p').unwrap_or(stem)
    } else {
        stem
    };
    if stem.is_empty() || stem == name {
        String::new()
    } else {
        format!(" (/dev/{stem}?)")
    }
}

/// The device is on an SD/MMC or USB transport.
pub(crate) fn card_transport(name: &str, device_path: Option<&str>) -> bool {
    name.starts_with("mmcblk")
        || device_path.is_some_and(|p| p.contains("/mmc") || p.contains("/usb"))
}

/// The decision: may a card image be written to the device `facts`
/// describe?
pub(crate) fn check(facts: &Facts) -> std::result::Result<(), Refusal> {
    if !facts.is_block {
        return Err(Refusal::NotBlock);
    }
    if facts.is_partition {
        return Err(Refusal::Partition);
    }
    if !card_transport(&facts.name, facts.device_path.as_deref()) {
        return Err(Refusal::NotCardTransport(facts.device_path.clone()));
    }
    if !(MIN_SIZE..=MAX_SIZE).contains(&facts.size) {
        return Err(Refusal::Size(facts.size));
    }
    let ours = |dev: &str| dev == facts.name || facts.partitions.iter().any(|p| p == dev);
    if let Some(root) = facts
        .mounts
        .iter()
        .find(|m| m.point == "/" && ours(&m.device))
    {
        return Err(Refusal::HoldsRoot(format!("/dev/{}", root.device)));
    }
    if facts.holds_root_by_number {
        return Err(Refusal::HoldsRoot(format!("/dev/{}", facts.name)));
    }
    let mounted: Vec<(String, String)> = facts
        .mounts
        .iter()
        .filter(|m| ours(&m.device))
        .map(|m| (m.device.clone(), m.point.clone()))
        .collect();
    if !mounted.is_empty() {
        return Err(Refusal::Mounted(mounted));
    }
    if !facts.holders.is_empty() {
        return Err(Refusal::Held(facts.holders.clone()));
    }
    Ok(())
}

/// `size` bytes for people: `29.7 GiB`.
pub(crate) fn human(size: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = size as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{size} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Undoes the mount table's octal escapes (`\040` for a space).
pub(crate) fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            out.push(
                (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0'),
            );
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// The block name of `path` under `root`, following symbolic links (as
/// `/dev/disk/by-id/...` are).
fn block_name(path: &Path) -> Option<String> {
    let resolved = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    resolved
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
}

/// The mount table under `root`, with each source reduced to a block name.
fn mounts(root: &Root) -> Result<Vec<Mount>> {
    let path = root.at("/proc/self/mounts");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| error!("cannot read {}: {e}", root.shown(&path)))?;
    let mut out = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let (Some(source), Some(point)) = (fields.next(), fields.next()) else {
            continue;
        };
        let source = unescape(source);
        let Some(dev) = source.strip_prefix("/dev/") else {
            continue;
        };
        let device = if dev == "root" {
            // The kernel's name for the root device; resolved by number.
            String::from("root")
        } else {
            block_name(&root.at(&source)).unwrap_or_else(|| dev.to_string())
        };
        out.push(Mount {
            device,
            point: unescape(point),
        });
    }
    Ok(out)
}

/// `major:minor` of a device number.
fn major_minor(dev: u64) -> String {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    format!("{major}:{minor}")
}

/// Looks at the device `given` under `root`.
pub(crate) fn gather(root: &Root, given: &Path) -> Result<Facts> {
    let mut facts = Facts {
        given: given.display().to_string(),
        ..Facts::default()
    };
    let path = if given.is_absolute() {
        root.at(&given.to_string_lossy())
    } else {
        given.to_path_buf()
    };
    let Some(name) = block_name(&path) else {
        return Ok(facts);
    };
    facts.name = name.clone();
    let class = root.at(&format!("/sys/class/block/{name}"));
    facts.is_block = match root.fixture {
        None => std::fs::metadata(&path).is_ok_and(|m| m.file_type().is_block_device()),
        Some(_) => class.exists(),
    };
    if !facts.is_block {
        return Ok(facts);
    }
    facts.is_partition = class.join("partition").exists();
    if facts.is_partition {
        return Ok(facts);
    }
    let sys = root.at(&format!("/sys/block/{name}"));
    facts.device_path = std::fs::canonicalize(sys.join("device"))
        .ok()
        .map(|p| root.shown(&p));
    facts.size = read_trimmed(&sys.join("size"))
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0)
        .saturating_mul(512);
    let vendor = read_trimmed(&sys.join("device/vendor")).unwrap_or_default();
    let model = read_trimmed(&sys.join("device/model"))
        .or_else(|| read_trimmed(&sys.join("device/name")))
        .unwrap_or_default();
    facts.model = format!("{vendor} {model}").trim().to_string();
    if facts.model.is_empty() {
        facts.model = String::from("(no model given)");
    }
    let mut devs = Vec::new();
    if let Some(d) = read_trimmed(&sys.join("dev")) {
        devs.push(d);
    }
    let mut holder_dirs = vec![sys.join("holders")];
    if let Ok(entries) = std::fs::read_dir(&sys) {
        for entry in entries.flatten() {
            let part = entry.file_name().to_string_lossy().into_owned();
            if part.starts_with(&name) && entry.path().join("partition").exists() {
                if let Some(d) = read_trimmed(&entry.path().join("dev")) {
                    devs.push(d);
                }
                holder_dirs.push(entry.path().join("holders"));
                facts.partitions.push(part);
            }
        }
    }
    facts.partitions.sort();
    for dir in holder_dirs {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                facts
                    .holders
                    .push(entry.file_name().to_string_lossy().into_owned());
            }
        }
    }
    facts.holders.sort();
    facts.mounts = mounts(root)?;
    if root.fixture.is_none()
        && let Ok(meta) = std::fs::metadata("/")
    {
        let root_dev = major_minor(meta.dev());
        facts.holds_root_by_number = devs.contains(&root_dev);
    }
    Ok(facts)
}

/// Asks on stdin; true for `y` or `yes`.
fn confirm(question: &str) -> bool {
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// How a write went.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Written and read back identical.
    Verified,
    /// The user said no; nothing was written.
    Declined,
}

/// Checks the device `given` under `root` and, if `ask` agrees, writes
/// `image` to it, syncs, reads it back and compares. Every refusal is an
/// error whose message says why, and nothing is written.
pub(crate) fn flash(
    root: &Root,
    given: &Path,
    image: &[u8],
    ask: &mut dyn FnMut(&str) -> bool,
) -> Result<Outcome> {
    let facts = gather(root, given)?;
    check(&facts).map_err(|r| error!("{}", r.message(&facts)))?;
    if image.len() as u64 > facts.size {
        return Err(error!(
            "{} holds {}, less than the card image's {}; nothing was written",
            facts.given,
            human(facts.size),
            human(image.len() as u64)
        ));
    }
    let question = format!(
        "flash: write the {} card image to {} ({}, {}, {})? Everything on it is lost.",
        human(image.len() as u64),
        facts.given,
        facts.name,
        facts.model,
        human(facts.size)
    );
    if !ask(&question) {
        return Ok(Outcome::Declined);
    }
    let device = root.at(&format!("/dev/{}", facts.name));
    write(root, &device, image)?;
    verify(root, &device, image)?;
    Ok(Outcome::Verified)
}

const CHUNK: usize = 4 << 20;

fn progress(what: &str, done: usize, total: usize) {
    let percent = (done * 100).checked_div(total).unwrap_or(100);
    eprint!(
        "\rflash: {what} {percent:3}% ({} of {} MiB)",
        done >> 20,
        total.div_ceil(1 << 20)
    );
    let _ = std::io::stderr().flush();
}

fn write(root: &Root, device: &Path, image: &[u8]) -> Result<()> {
    let shown = root.shown(device);
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if root.fixture.is_none() {
        // O_EXCL on a block device: fails if anything has it mounted.
        options.custom_flags(0o200);
    }
    let mut file = options
        .open(device)
        .map_err(|e| error!("cannot open {shown} for writing: {e}; nothing was written"))?;
    let mut done = 0;
    for chunk in image.chunks(CHUNK) {
        file.write_all(chunk)
            .map_err(|e| error!("writing {shown} failed after {done} bytes: {e}"))?;
        done += chunk.len();
        progress("writing", done, image.len());
    }
    eprintln!();
    eprintln!("flash: syncing {shown}");
    file.sync_all()
        .map_err(|e| error!("syncing {shown} failed: {e}; the card may be incomplete"))?;
    Ok(())
}

/// `O_DIRECT`, so the read-back comes from the card, not the page cache.
#[cfg(target_arch = "x86_64")]
const O_DIRECT: i32 = 0o40000;
#[cfg(not(target_arch = "x86_64"))]
const O_DIRECT: i32 = 0o200000;

/// Opens the device for reading back: with `O_DIRECT` on a real device.
fn open_readback(root: &Root, device: &Path) -> std::io::Result<(File, bool)> {
    match &root.fixture {
        Some(_) => {
            let other = PathBuf::from(format!("{}.readback", device.display()));
            let path = if other.exists() {
                other
            } else {
                device.to_path_buf()
            };
            Ok((File::open(path)?, false))
        }
        None => match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(O_DIRECT)
            .open(device)
        {
            Ok(f) => Ok((f, true)),
            Err(_) => Ok((File::open(device)?, false)),
        },
    }
}

fn verify(root: &Root, device: &Path, image: &[u8]) -> Result<()> {
    let shown = root.shown(device);
    let (mut file, direct) = open_readback(root, device)
        .map_err(|e| error!("cannot open {shown} to read it back: {e}"))?;
    file.seek(SeekFrom::Start(0))?;
    // A buffer aligned to 4 KiB, as O_DIRECT needs.
    let mut storage = vec![0u8; CHUNK + 4096];
    let offset = (4096 - storage.as_ptr() as usize % 4096) % 4096;
    let buffer = &mut storage[offset..offset + CHUNK];
    let mut done = 0;
    while done < image.len() {
        let want = (image.len() - done).min(CHUNK);
        // O_DIRECT reads whole blocks: round up, compare only the image's part.
        let len = if direct {
            want.div_ceil(4096) * 4096
        } else {
            want
        };
        let mut got = 0;
        while got < len {
            match file.read(&mut buffer[got..len]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) => {
                    return Err(error!(
                        "reading {shown} back failed at byte {}: {e}",
                        done + got
                    ));
                }
            }
        }
        if got < want {
            return Err(error!(
                "verification failed: {shown} ended after {} bytes, the image has {}; the card is not good",
                done + got,
                image.len()
            ));
        }
        if buffer[..want] != image[done..done + want] {
            let first = buffer[..want]
                .iter()
                .zip(&image[done..done + want])
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            eprintln!();
            return Err(error!(
                "verification failed: {shown} reads back differently from the image at byte {} \
                 (0x{:x}); the card is not good: try again or use another card",
                done + first,
                done + first
            ));
        }
        done += want;
        progress("verifying", done, image.len());
    }
    eprintln!();
    if !direct && root.fixture.is_none() {
        eprintln!("flash: note: read back through the page cache (O_DIRECT was refused)");
    }
    Ok(())
}

/// `flash`'s options.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Options {
    /// `--device`: the card's block device.
    device: PathBuf,
    /// `--yes`: do not ask.
    yes: bool,
    /// What goes on the card, as for `cargo xtask sdcard`.
    card: sdcard::Card,
}

/// `cargo xtask flash --board rpi4 --device /dev/sdX [SYSTEM.toml] [OPTIONS]`.
pub(crate) fn parse<A: AsRef<OsStr>>(args: &[A]) -> Result<Options> {
    args::parse_for("flash", args, |parser| {
        let mut card = sdcard::Card::default();
        let mut device = None;
        let mut yes = false;
        while let Some(arg) = parser.next()? {
            match arg {
                Long("device") => {
                    device = Some(args::path(parser, "--device").map_err(|_| {
                        args::bad("--device needs a value: the card's device, like /dev/sdb")
                    })?);
                }
                Long("yes") | Short('y') => yes = true,
                Short('o') | Long("output" | "force") => {
                    return Err(args::bad(
                        "flash writes a card, not a file: to write an image file use cargo \
                         xtask sdcard -o FILE",
                    ));
                }
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
            device: device.ok_or_else(|| {
                args::bad("needs the card's device: --device /dev/sdX (lsblk lists them)")
            })?,
            yes,
            card: card.finish()?,
        })
    })
}

/// `cargo xtask flash`.
pub(crate) fn main(options: &Options) -> Result<ExitCode> {
    let device = &options.device;
    let root = match std::env::var_os(ROOT_VARIABLE) {
        Some(dir) if !dir.is_empty() => Root::fixture(dir),
        _ => Root::real(),
    };
    // Refuse a bad device before building or fetching anything.
    let facts = gather(&root, device)?;
    check(&facts).map_err(|r| error!("{}", r.message(&facts)))?;
    let (image, what) = sdcard::card_image(&options.card)?;
    eprintln!("flash: card image of {}: {what}", human(image.len() as u64));
    let yes = options.yes;
    let outcome = flash(&root, device, &image, &mut |question| {
        if yes {
            eprintln!("{question} --yes: writing");
            true
        } else {
            confirm(question)
        }
    })?;
    match outcome {
        Outcome::Declined => {
            eprintln!("flash: nothing was written");
            Ok(ExitCode::from(1))
        }
        Outcome::Verified => {
            eprintln!(
                "flash: {} written and verified; it is safe to remove the card",
                device.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
