// SPDX-License-Identifier: Apache-2.0 OR MIT
//! `cargo xtask guests`: the files a Linux guest boots from, made from Debian
//! packages ([`crate::debian`]) and cached under `target/guests/`.
//!
//! - `Image`: Debian's arm64 kernel, `boot/vmlinuz-<abi>` of the package that
//!   `linux-image-arm64` currently depends on, copied as is (it is already an
//!   uncompressed arm64 Image with an EFI stub).
//! - `initrd.gz`: a gzip'd newc cpio initramfs holding busybox-static's
//!   `/bin/busybox` and an `/init` ([`INIT`]) that prints
//!   `bulkhead-guest: userspace up` and gives the console a shell whose
//!   prompt is `guest# `.
//!
//! - `bcm2711-rpi-4-b.dtb`, `bcm2711-rpi-400.dtb`, `bcm2711-rpi-cm4-io.dtb`:
//!   the Raspberry Pi 4 family's device trees from the same kernel package
//!   (`usr/lib/linux-image-<abi>/broadcom/`), which `cargo xtask run --board
//!   rpi4` passes to QEMU's `raspi4b` ([`RPI4_DTB`]).
//!
//! The initramfs is written here (the cpio writer is [`cpio`]; gzip is the
//! `flate2` crate), not with a host `cpio`, and is reproducible: every
//! timestamp is 0.

use std::ffi::OsStr;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use crate::args::{self, Long};
use crate::debian::{self, Archive, Entry, Fetched, Package, Recipe, Resolve};
use crate::{Result, error};

/// The metapackage whose dependency is the current kernel package.
pub(crate) const KERNEL_METAPACKAGE: &str = "linux-image-arm64";
/// What the kernel package's name starts with.
pub(crate) const KERNEL_PREFIX: &str = "linux-image-";
/// The statically linked busybox.
const BUSYBOX: &str = "busybox-static";

/// The Raspberry Pi 4 family's device trees kept from the kernel package.
const BROADCOM_DTBS: [&str; 3] = [
    "bcm2711-rpi-4-b.dtb",
    "bcm2711-rpi-400.dtb",
    "bcm2711-rpi-cm4-io.dtb",
];
/// The Raspberry Pi 4 Model B's device tree, one of [`BROADCOM_DTBS`].
pub(crate) const RPI4_DTB: &str = BROADCOM_DTBS[0];

/// The line `/init` prints once userspace runs; tests wait for it.
pub(crate) const MARKER: &str = "bulkhead-guest: userspace up";
/// The shell's prompt; tests wait for it before typing.
pub(crate) const PROMPT: &str = "guest# ";

/// The initramfs's `/init`. Changing it changes the cache key (the recipe's
/// revision includes it), so the next run builds a new initramfs.
const INIT: &str = r#"#!/bin/sh
# /init of Bulkhead's guest initramfs, written by `cargo xtask guests`.
/bin/busybox --install -s /bin
export PATH=/bin HOME=/root PS1='guest# '
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# The kernel's log stamps the marker with its time since power-on, which the
# boot benchmark reads.
echo 'bulkhead-guest: userspace up' > /dev/kmsg
echo 'bulkhead-guest: userspace up'
uname -r
cd /root
# Job control needs a controlling terminal: setsid starts a new session and
# cttyhack opens the console's real tty (ttyAMA0, not /dev/console) for it.
setsid cttyhack sh -l
echo 'bulkhead-guest: the shell exited; powering off'
poweroff -f
"#;

/// The guest files and what they were made from.
#[derive(Clone, Debug)]
pub(crate) struct GuestAssets {
    /// The raw arm64 kernel Image.
    pub kernel: PathBuf,
    /// The gzip'd cpio initramfs.
    pub initrd: PathBuf,
    /// The folder holding Debian's Raspberry Pi 4 device trees ([`RPI4_DTB`]).
    pub dtbs: PathBuf,
    /// The kernel's Debian package, e.g. `linux-image-6.1.0-56-arm64`.
    pub kernel_package: String,
    /// Its Debian version, e.g. `6.1.192-2`.
    pub kernel_version: String,
    /// busybox-static's Debian version, e.g. `1:1.35.0-4+deb12u1+b1`.
    pub busybox_version: String,
}

impl fmt::Display for GuestAssets {
    /// One line for logs and benchmark records: `Debian
    /// linux-image-6.1.0-56-arm64 6.1.192-2, busybox-static 1:1.35.0-4+deb12u1+b1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Debian {} {}, {BUSYBOX} {}",
            self.kernel_package, self.kernel_version, self.busybox_version
        )
    }
}

/// Makes sure the guest files are in the cache (fetching and building them if
/// needed) and returns them. With [`Resolve::Cached`] and a valid cache entry
/// this needs no network and takes a fraction of a second.
pub(crate) fn ensure(resolve: Resolve) -> Result<GuestAssets> {
    assets(&debian::ensure(&Guests, resolve)?)
}

fn assets(entry: &Entry) -> Result<GuestAssets> {
    let kernel = entry
        .manifest
        .packages
        .iter()
        .find(|p| p.name.starts_with(KERNEL_PREFIX))
        .ok_or_else(|| error!("guests: the cache entry names no kernel package"))?;
    let busybox = entry
        .package(BUSYBOX)
        .ok_or_else(|| error!("guests: the cache entry names no {BUSYBOX}"))?;
    Ok(GuestAssets {
        kernel: entry.dir.join("Image"),
        initrd: entry.dir.join("initrd.gz"),
        dtbs: entry.dir.clone(),
        kernel_package: kernel.name.clone(),
        kernel_version: kernel.version.clone(),
        busybox_version: busybox.version.clone(),
    })
}

/// `cargo xtask guests [--refresh]`: whether to look for newer packages.
pub(crate) fn parse<A: AsRef<OsStr>>(args: &[A]) -> Result<Resolve> {
    args::parse_for("guests", args, |parser| {
        let mut resolve = Resolve::Cached;
        while let Some(arg) = parser.next()? {
            match arg {
                Long("refresh") => resolve = Resolve::Refresh,
                other => return Err(other.unexpected()),
            }
        }
        Ok(resolve)
    })
}

/// `cargo xtask guests [--refresh]`.
pub(crate) fn main(resolve: Resolve) -> Result<ExitCode> {
    let started = Instant::now();
    let assets = ensure(resolve)?;
    let took = started.elapsed();
    println!("{assets}");
    if let Some(resolved) = debian::resolved(&Guests) {
        println!(
            "  resolved {} (cargo xtask guests --refresh looks for updates)",
            debian::utc(resolved)
        );
    }
    for (what, path) in [("kernel", &assets.kernel), ("initrd", &assets.initrd)] {
        let size = std::fs::metadata(path)?.len();
        println!(
            "  {what}  {}  {size} bytes ({})",
            path.display(),
            debian::human_size(size)
        );
    }
    println!("  ready in {:.2} s", took.as_secs_f64());
    Ok(ExitCode::SUCCESS)
}

/// The recipe: kernel and busybox packages in, `Image`, `initrd.gz` and the
/// Raspberry Pi 4 device trees out.
struct Guests;

impl Recipe for Guests {
    fn name(&self) -> &str {
        "guests"
    }

    fn revision(&self) -> String {
        format!(
            "Image as is; initrd.gz newc+gzip 1; broadcom dtbs {BROADCOM_DTBS:?}; init:\n{INIT}"
        )
    }

    fn outputs(&self) -> &[&str] {
        &[
            "Image",
            "initrd.gz",
            BROADCOM_DTBS[0],
            BROADCOM_DTBS[1],
            BROADCOM_DTBS[2],
        ]
    }

    fn offline_hint(&self) -> String {
        "guests: the guest kernel and initramfs come from Debian's archive the first time \
         (then from target/guests/, with no network). Without the network, give your own \
         files: cargo xtask run SYSTEM.toml --kernel PATH --initrd PATH"
            .to_string()
    }

    fn resolve(&self, archive: &Archive) -> Result<Vec<Package>> {
        let kernel = archive.dependency(KERNEL_METAPACKAGE, KERNEL_PREFIX)?;
        Ok(vec![
            archive.package(&kernel, debian::ARCHITECTURE)?,
            archive.package(BUSYBOX, debian::ARCHITECTURE)?,
        ])
    }

    fn build(&self, fetched: &[Fetched], work: &Path, out: &Path) -> Result<()> {
        let [kernel, busybox] = fetched else {
            return Err(error!(
                "guests: expected two packages, got {}",
                fetched.len()
            ));
        };
        let abi = kernel
            .package
            .name
            .strip_prefix(KERNEL_PREFIX)
            .unwrap_or(&kernel.package.name);
        let vmlinuz = format!("./boot/vmlinuz-{abi}");
        eprintln!("guests: extracting {vmlinuz} from {}", kernel.package.name);
        debian::extract(&kernel.deb, work, &[&vmlinuz])?;
        let image = work.join(&vmlinuz);
        check_image(&image)?;
        std::fs::rename(&image, out.join("Image"))?;
        let dtbs: Vec<String> = BROADCOM_DTBS
            .iter()
            .map(|name| format!("./usr/lib/linux-image-{abi}/broadcom/{name}"))
            .collect();
        let members: Vec<&str> = dtbs.iter().map(String::as_str).collect();
        debian::extract(&kernel.deb, work, &members)?;
        for (path, name) in dtbs.iter().zip(BROADCOM_DTBS) {
            std::fs::rename(work.join(path), out.join(name))?;
        }

        debian::extract(&busybox.deb, work, &["./bin/busybox"])?;
        let busybox = std::fs::read(work.join("bin/busybox"))?;
        std::fs::write(out.join("initrd.gz"), initramfs(&busybox)?)?;
        Ok(())
    }
}

/// Checks that `path` is a raw arm64 Linux Image: magic `ARM\x64` at 0x38.
fn check_image(path: &Path) -> Result<()> {
    let bytes = std::fs::read(path)?;
    if bytes.get(0x38..0x3c) != Some(b"ARM\x64".as_slice()) {
        return Err(error!(
            "guests: {} is not a raw arm64 Image (no ARM\\x64 magic at 0x38)",
            path.display()
        ));
    }
    Ok(())
}

/// The gzip'd initramfs around `busybox`.
fn initramfs(busybox: &[u8]) -> Result<Vec<u8>> {
    let mut archive = cpio::Writer::default();
    for (dir, mode) in [
        ("bin", 0o755),
        ("dev", 0o755),
        ("proc", 0o555),
        ("sys", 0o555),
        ("tmp", 0o1777),
        ("root", 0o700),
    ] {
        archive.directory(dir, mode);
    }
    // The kernel opens /dev/console for init before anything is mounted.
    archive.char_device("dev/console", 0o600, 5, 1);
    archive.file("bin/busybox", 0o755, busybox);
    archive.symlink("bin/sh", "busybox");
    archive.file("init", 0o755, INIT.as_bytes());
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gzip.write_all(&archive.finish())?;
    Ok(gzip.finish()?)
}

/// The "new" (SVR4, `070701`) cpio format, as the Linux kernel unpacks an
/// initramfs: each entry is a 110-byte header of ASCII hex fields, the
/// NUL-terminated name padded to 4 bytes, then the data padded to 4 bytes; the
/// archive ends with an entry named `TRAILER!!!`.
mod cpio {
    /// The magic that starts every header.
    pub(super) const MAGIC: &[u8; 6] = b"070701";
    /// The last entry's name.
    pub(super) const TRAILER: &str = "TRAILER!!!";
    /// Header length: the magic and 13 eight-digit fields.
    #[cfg(test)]
    pub(super) const HEADER: usize = 110;

    const S_IFDIR: u32 = 0o040_000;
    const S_IFREG: u32 = 0o100_000;
    const S_IFLNK: u32 = 0o120_000;
    const S_IFCHR: u32 = 0o020_000;

    /// Writes an archive in memory; owner root, every timestamp 0.
    #[derive(Default)]
    pub(super) struct Writer {
        out: Vec<u8>,
        inode: u32,
    }

    impl Writer {
        /// A directory (its parent must come first).
        pub(super) fn directory(&mut self, path: &str, permissions: u32) {
            self.entry(path, S_IFDIR | permissions, 2, (0, 0), &[]);
        }

        /// A regular file.
        pub(super) fn file(&mut self, path: &str, permissions: u32, data: &[u8]) {
            self.entry(path, S_IFREG | permissions, 1, (0, 0), data);
        }

        /// A symbolic link to `target`.
        pub(super) fn symlink(&mut self, path: &str, target: &str) {
            self.entry(path, S_IFLNK | 0o777, 1, (0, 0), target.as_bytes());
        }

        /// A character device node.
        pub(super) fn char_device(&mut self, path: &str, permissions: u32, major: u32, minor: u32) {
            self.entry(path, S_IFCHR | permissions, 1, (major, minor), &[]);
        }

        /// The archive, with its trailer.
        pub(super) fn finish(mut self) -> Vec<u8> {
            self.inode = 0;
            self.header(TRAILER, 0, 1, (0, 0), 0);
            self.out
        }

        fn entry(&mut self, path: &str, mode: u32, links: u32, device: (u32, u32), data: &[u8]) {
            self.inode += 1;
            let size = u32::try_from(data.len()).expect("a cpio entry holds less than 4 GiB");
            self.header(path, mode, links, device, size);
            self.out.extend_from_slice(data);
            self.pad();
        }

        fn header(&mut self, name: &str, mode: u32, links: u32, device: (u32, u32), size: u32) {
            let name_size = u32::try_from(name.len() + 1).expect("a short name");
            self.out.extend_from_slice(MAGIC);
            let fields = [
                self.inode, // ino
                mode, 0,     // uid
                0,     // gid
                links, // nlink
                0,     // mtime
                size,  // filesize
                0,     // devmajor
                0,     // devminor
                device.0, device.1, name_size, 0, // check (unused in 070701)
            ];
            for field in fields {
                self.out
                    .extend_from_slice(format!("{field:08x}").as_bytes());
            }
            self.out.extend_from_slice(name.as_bytes());
            self.out.push(0);
            self.pad();
        }

        fn pad(&mut self) {
            while !self.out.len().is_multiple_of(4) {
                self.out.push(0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::{INIT, MARKER, PROMPT, cpio, initramfs};

    /// One entry as read back: name, the 13 header fields, data.
    #[derive(Debug)]
    struct Read {
        name: String,
        fields: [u32; 13],
        data: Vec<u8>,
    }

    const MODE: usize = 1;
    const NLINK: usize = 4;
    const MTIME: usize = 5;
    const RDEVMAJOR: usize = 9;
    const RDEVMINOR: usize = 10;

    /// Parses a newc archive strictly: magic, hex fields, alignment, trailer,
    /// and nothing after the trailer.
    fn parse(bytes: &[u8]) -> Vec<Read> {
        let mut entries = Vec::new();
        let mut at = 0;
        loop {
            assert_eq!(at % 4, 0, "entry at {at} is not 4-byte aligned");
            let header = &bytes[at..at + cpio::HEADER];
            assert_eq!(&header[..6], cpio::MAGIC);
            let mut fields = [0u32; 13];
            for (i, field) in fields.iter_mut().enumerate() {
                let hex = std::str::from_utf8(&header[6 + 8 * i..14 + 8 * i]).unwrap();
                assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
                *field = u32::from_str_radix(hex, 16).unwrap();
            }
            let name_size = fields[11] as usize;
            let name_start = at + cpio::HEADER;
            let name = &bytes[name_start..name_start + name_size];
            assert_eq!(name.last(), Some(&0), "name is NUL-terminated");
            let name = std::str::from_utf8(&name[..name_size - 1])
                .unwrap()
                .to_string();
            let data_start = (name_start + name_size).next_multiple_of(4);
            assert!(
                bytes[name_start + name_size..data_start]
                    .iter()
                    .all(|&b| b == 0)
            );
            let size = fields[6] as usize;
            let data = bytes[data_start..data_start + size].to_vec();
            at = (data_start + size).next_multiple_of(4);
            assert!(bytes[data_start + size..at].iter().all(|&b| b == 0));
            let done = name == cpio::TRAILER;
            entries.push(Read { name, fields, data });
            if done {
                assert_eq!(at, bytes.len(), "nothing follows the trailer");
                return entries;
            }
        }
    }

    #[test]
    fn cpio_round_trip() {
        let mut writer = cpio::Writer::default();
        writer.directory("bin", 0o755);
        // Names and data of every length modulo 4 exercise the padding.
        writer.file("bin/a", 0o644, b"");
        writer.file("bin/ab", 0o600, b"x");
        writer.file("bin/abc", 0o755, b"xy");
        writer.file("bin/abcd", 0o755, b"xyz");
        writer.file("bin/abcde", 0o755, b"wxyz");
        writer.symlink("bin/sh", "busybox");
        writer.char_device("console", 0o600, 5, 1);
        let bytes = writer.finish();
        let entries = parse(&bytes);
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "bin",
                "bin/a",
                "bin/ab",
                "bin/abc",
                "bin/abcd",
                "bin/abcde",
                "bin/sh",
                "console",
                "TRAILER!!!"
            ]
        );
        assert_eq!(entries[0].fields[MODE], 0o040_755);
        assert_eq!(entries[0].fields[NLINK], 2);
        assert_eq!(entries[3].fields[MODE], 0o100_755);
        assert_eq!(entries[3].data, b"xy");
        assert_eq!(entries[5].data, b"wxyz");
        assert_eq!(entries[6].fields[MODE], 0o120_777);
        assert_eq!(entries[6].data, b"busybox");
        assert_eq!(entries[7].fields[MODE], 0o020_600);
        assert_eq!(
            (entries[7].fields[RDEVMAJOR], entries[7].fields[RDEVMINOR]),
            (5, 1)
        );
        let trailer = entries.last().unwrap();
        assert_eq!((trailer.fields[0], trailer.fields[MODE]), (0, 0));
        // Every inode is different; every timestamp is 0.
        let mut inodes: Vec<u32> = entries[..8].iter().map(|e| e.fields[0]).collect();
        inodes.dedup();
        assert_eq!(inodes.len(), 8);
        assert!(entries.iter().all(|e| e.fields[MTIME] == 0));
    }

    #[test]
    fn initramfs_holds_init_and_busybox() {
        let gz = initramfs(b"not really busybox").unwrap();
        assert_eq!(
            gz,
            initramfs(b"not really busybox").unwrap(),
            "reproducible"
        );
        let mut cpio = Vec::new();
        flate2::read::GzDecoder::new(gz.as_slice())
            .read_to_end(&mut cpio)
            .unwrap();
        let entries = parse(&cpio);
        let find = |name: &str| entries.iter().find(|e| e.name == name).unwrap();
        assert_eq!(find("init").fields[MODE], 0o100_755);
        assert_eq!(find("init").data, INIT.as_bytes());
        assert_eq!(find("bin/busybox").data, b"not really busybox");
        assert_eq!(find("bin/sh").data, b"busybox");
        for dir in ["proc", "sys", "dev", "tmp", "root"] {
            assert_eq!(find(dir).fields[MODE] & 0o170_000, 0o040_000, "{dir}");
        }
        // Parents come before children.
        let position = |name: &str| entries.iter().position(|e| e.name == name).unwrap();
        assert!(position("bin") < position("bin/busybox"));
        assert!(position("dev") < position("dev/console"));
        // The script prints what the tests wait for.
        assert!(INIT.contains(&format!("echo '{MARKER}'")));
        assert!(INIT.contains(&format!("PS1='{PROMPT}'")));
    }

    #[test]
    fn options_are_parsed() {
        use super::parse;
        use crate::debian::Resolve;
        let error = |args: &[&str]| parse(args).unwrap_err().to_string();
        assert_eq!(parse::<&str>(&[]).unwrap(), Resolve::Cached);
        assert_eq!(parse(&["--refresh"]).unwrap(), Resolve::Refresh);
        assert_eq!(
            error(&["--refersh"]),
            "cargo xtask guests: unknown option `--refersh`; try `cargo xtask help`"
        );
        assert_eq!(
            error(&["linux"]),
            "cargo xtask guests: unexpected argument `linux`; try `cargo xtask help`"
        );
        assert_eq!(
            error(&["--refresh=now"]),
            "cargo xtask guests: --refresh takes no value, not `now`; try `cargo xtask help`"
        );
    }
}
