// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The card checked with tools that share no code with the crates that wrote
//! it: `sfdisk` (the partition table), mtools' `mdir` and `mcopy` (the files,
//! byte for byte), `fsck.fat` (the file system) and `dumpimage` (the boot
//! script's header and CRCs). `cargo xtask test` (and `cargo xtask setup`)
//! install them as root; without them these tests fail and say how.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::disk::{FAT32_LBA, PARTITION_START, SECTOR};
use super::{
    IMAGE_FILE, Inputs, Loader, check_output, config, contents, disk, firmware, write_output,
};

/// A scratch folder of this test's own.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xtask-sdcard-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The host tool `name` (also looked for in the sbin folders, which a user's
/// PATH may lack).
fn tool(name: &str, package: &str) -> PathBuf {
    let found = crate::setup::which(name).or_else(|| {
        ["/usr/sbin", "/sbin"]
            .iter()
            .map(|d| Path::new(d).join(name))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "the SD card test checks the card with `{name}` (Debian package {package}), which is \
             not installed. `cargo xtask setup` installs it as root; or run: sudo apt-get \
             install -y --no-install-recommends {}",
            crate::setup::CARD_TOOLS.join(" ")
        )
    })
}

/// Runs a tool; its standard output, or a panic with everything it said.
fn run(command: &mut Command) -> String {
    let out = command.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{command:?} failed ({}):\n{text}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// Small stand-ins for Debian's files and the image, each different.
fn fixtures(loader: Loader) -> Vec<(&'static str, Vec<u8>)> {
    let mut files = vec![
        ("start4.elf", pattern(3 << 20, 1)),
        ("fixup4.dat", pattern(5_000, 2)),
        (
            firmware::FIRMWARE_LICENCE,
            b"Copyright: Broadcom\n".to_vec(),
        ),
        ("bcm2711-rpi-4-b.dtb", tree(50_000, 3)),
        ("bcm2711-rpi-400.dtb", tree(50_001, 4)),
        ("bcm2711-rpi-cm4-io.dtb", tree(49_999, 5)),
        (IMAGE_FILE, pattern(2 << 20 | 123, 6)),
    ];
    if loader == Loader::UBoot {
        files.push((firmware::UBOOT_FILE, pattern(600_000, 7)));
    }
    files
}

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        })
        .collect()
}

fn tree(len: usize, seed: u32) -> Vec<u8> {
    let mut bytes = pattern(len, seed);
    bytes[..4].copy_from_slice(&[0xd0, 0x0d, 0xfe, 0xed]);
    bytes
}

/// Writes a card from the fixtures and returns its path and its files.
fn card(dir: &Path, loader: Loader) -> (PathBuf, Vec<disk::File>) {
    let mut inputs = Inputs::default();
    for (name, data) in fixtures(loader) {
        inputs.push(name, data);
    }
    let files = contents(inputs, loader).unwrap();
    let path = dir.join("card.img");
    write_output(&path, &disk::card(&files).unwrap(), false).unwrap();
    (path, files)
}

/// sfdisk's dump: `label: dos` and one line per partition.
struct Table {
    label: String,
    partitions: Vec<String>,
}

fn sfdisk(path: &Path) -> Table {
    let text = run(Command::new(tool("sfdisk", "fdisk"))
        .arg("--dump")
        .arg(path));
    let label = text
        .lines()
        .find_map(|l| l.strip_prefix("label:"))
        .unwrap_or_default()
        .trim()
        .to_string();
    let partitions = text
        .lines()
        .filter(|l| l.contains(" : start="))
        .map(String::from)
        .collect();
    Table { label, partitions }
}

/// A `key=value` field of an sfdisk dump line.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split(':')
        .nth(1)?
        .split(',')
        .map(str::trim)
        .find_map(|f| {
            f.strip_prefix(key)?
                .trim_start()
                .strip_prefix('=')
                .map(str::trim)
        })
}

/// Checks everything about a card with the independent tools.
fn check_card(path: &Path, files: &[disk::File]) {
    let dir = path.parent().unwrap();
    let image = std::fs::read(path).unwrap();

    // The partition table: DOS, one partition, 1 MiB aligned, type 0x0c,
    // bootable, filling the image.
    let table = sfdisk(path);
    assert_eq!(table.label, "dos");
    let [line] = table.partitions.as_slice() else {
        panic!("one partition expected: {:?}", table.partitions)
    };
    let start: u64 = field(line, "start").unwrap().parse().unwrap();
    let size: u64 = field(line, "size").unwrap().parse().unwrap();
    assert_eq!(start * SECTOR, PARTITION_START, "{line}");
    assert_eq!(start % 2048, 0, "1 MiB aligned: {line}");
    assert_eq!(
        field(line, "type").unwrap(),
        format!("{FAT32_LBA:x}"),
        "{line}"
    );
    assert!(line.trim_end().ends_with("bootable"), "{line}");
    assert_eq!((start + size) * SECTOR, image.len() as u64, "{line}");

    // The file system, on its own, as fsck.fat reads it.
    let partition = dir.join("partition.img");
    std::fs::write(
        &partition,
        &image[usize::try_from(start * SECTOR).unwrap()..],
    )
    .unwrap();
    let fsck = run(Command::new(tool("fsck.fat", "dosfstools"))
        .args(["-n", "-v"])
        .arg(&partition));
    assert!(fsck.contains("32 bit entries"), "not FAT32:\n{fsck}");
    assert!(
        !fsck.to_lowercase().contains("differ") && !fsck.contains("Free cluster summary"),
        "{fsck}"
    );

    // Every file, by name, byte for byte, through mtools at the partition's
    // offset; nothing else in the root folder.
    let at = format!("{}@@{}", path.display(), start * SECTOR);
    let listing = run(Command::new(tool("mdir", "mtools"))
        .env("MTOOLS_SKIP_CHECK", "1")
        .args(["-b", "-i", &at, "::/"]));
    let mut listed: Vec<String> = listing
        .lines()
        .map(|l| l.trim().trim_start_matches("::/").to_string())
        .filter(|l| !l.is_empty())
        .collect();
    listed.sort();
    let mut expected: Vec<String> = files.iter().map(|f| f.name.clone()).collect();
    expected.sort();
    assert_eq!(listed, expected);
    let copied = dir.join("copied");
    for file in files {
        let _ = std::fs::remove_file(&copied);
        run(Command::new(tool("mcopy", "mtools"))
            .env("MTOOLS_SKIP_CHECK", "1")
            .args(["-n", "-i", &at])
            .arg(format!("::/{}", file.name))
            .arg(&copied));
        assert!(
            std::fs::read(&copied).unwrap() == file.data,
            "{} differs on the card",
            file.name
        );
    }
}

#[test]
fn firmware_card_checks_out_with_independent_tools() {
    let dir = scratch("firmware");
    let (path, files) = card(&dir, Loader::Firmware);
    check_card(&path, &files);
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    for name in [
        "start4.elf",
        "fixup4.dat",
        "bcm2711-rpi-4-b.dtb",
        "bcm2711-rpi-400.dtb",
        "bcm2711-rpi-cm4-io.dtb",
        "config.txt",
        IMAGE_FILE,
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    assert!(!names.contains(&"boot.scr") && !names.contains(&"u-boot.bin"));
    let config = &files.iter().find(|f| f.name == "config.txt").unwrap().data;
    let config = String::from_utf8(config.clone()).unwrap();
    let settings = settings(&config);
    for wanted in [
        "[all]",
        "arm_64bit=1",
        "kernel=bulkhead.img",
        "enable_uart=1",
        "init_uart_clock=48000000",
        "enable_gic=1",
        "[cm4]",
        "device_tree=bcm2711-rpi-cm4-io.dtb",
    ] {
        assert!(
            settings.contains(&wanted),
            "{wanted} not in config.txt:\n{config}"
        );
    }
    // No overlay: the card has none to load.
    assert!(
        !settings.iter().any(|s| s.starts_with("dtoverlay")),
        "{config}"
    );
    // The same inputs make the same card.
    let again = dir.join("again.img");
    let mut inputs = Inputs::default();
    for (name, data) in fixtures(Loader::Firmware) {
        inputs.push(name, data);
    }
    write_output(
        &again,
        &disk::card(&contents(inputs, Loader::Firmware).unwrap()).unwrap(),
        false,
    )
    .unwrap();
    assert!(
        std::fs::read(&again).unwrap() == std::fs::read(&path).unwrap(),
        "reproducible"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// config.txt's settings and section filters, comments and blank lines left out.
fn settings(config: &str) -> Vec<&str> {
    config
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

#[test]
fn u_boot_card_checks_out_and_its_script_is_a_valid_image() {
    let dir = scratch("u-boot");
    let (path, files) = card(&dir, Loader::UBoot);
    check_card(&path, &files);
    let file = |name: &str| &files.iter().find(|f| f.name == name).unwrap().data;
    let config = String::from_utf8(file("config.txt").clone()).unwrap();
    assert!(settings(&config).contains(&"kernel=u-boot.bin"), "{config}");
    assert!(!config.contains("kernel=bulkhead.img"), "{config}");
    // dumpimage (u-boot-tools) checks the header's and the data's CRC-32 and
    // reads the type; extracting the script gives the text back.
    let script = dir.join("boot.scr");
    std::fs::write(&script, file("boot.scr")).unwrap();
    let dumpimage = tool("dumpimage", "u-boot-tools");
    let listing = run(Command::new(&dumpimage).arg("-l").arg(&script));
    assert!(listing.contains("Script"), "{listing}");
    assert!(listing.contains("AArch64"), "{listing}");
    let text = dir.join("boot.cmd");
    run(Command::new(&dumpimage)
        .args(["-T", "script", "-p", "0", "-o"])
        .arg(&text)
        .arg(&script));
    let text = std::fs::read_to_string(&text).unwrap();
    assert!(
        text.contains("load ${devtype} ${devnum}:${distro_bootpart} ${kernel_addr_r} bulkhead.img"),
        "{text}"
    );
    assert!(
        text.contains("booti ${kernel_addr_r} - ${fdt_addr}"),
        "{text}"
    );
    // A damaged script is refused by the same tool, so the check above means something.
    let mut damaged = file("boot.scr").clone();
    let last = damaged.len() - 2;
    damaged[last] ^= 1;
    std::fs::write(&script, &damaged).unwrap();
    let out = Command::new(&dumpimage)
        .arg("-l")
        .arg(&script)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // (dumpimage then tries other formats, one of which takes anything.)
    assert!(!said.contains("Script"), "a damaged script passed: {said}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn config_names_the_kernel() {
    let firmware = config("bulkhead.img", Loader::Firmware);
    assert!(settings(&firmware).contains(&"kernel=bulkhead.img"));
    assert!(!firmware.contains("U-Boot"));
    let uboot = config("u-boot.bin", Loader::UBoot);
    assert!(settings(&uboot).contains(&"kernel=u-boot.bin"));
    // The last section applies to every board, so lines appended by a user
    // are not limited to the CM4.
    assert_eq!(settings(&uboot).last(), Some(&"[all]"));
}

#[test]
fn a_missing_input_is_named() {
    let mut inputs = Inputs::default();
    for (name, data) in fixtures(Loader::Firmware) {
        if name != "fixup4.dat" {
            inputs.push(name, data);
        }
    }
    let e = contents(inputs, Loader::Firmware)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("fixup4.dat"), "{e}");
    let mut inputs = Inputs::default();
    for (name, data) in fixtures(Loader::Firmware) {
        inputs.push(name, data);
    }
    let e = contents(inputs, Loader::UBoot).err().unwrap().to_string();
    assert!(e.contains("u-boot.bin"), "{e}");
}

#[test]
fn bad_outputs_are_refused_and_nothing_is_lost() {
    let dir = scratch("outputs");
    // A folder that does not exist.
    let missing = dir.join("no-such-folder/card.img");
    let e = check_output(&missing, false).unwrap_err().to_string();
    assert!(e.contains("does not exist"), "{e}");
    assert!(write_output(&missing, b"x", true).is_err());
    assert!(!dir.join("no-such-folder").exists());
    // A folder.
    let e = check_output(&dir, true).unwrap_err().to_string();
    assert!(e.contains("is a folder"), "{e}");
    // An existing file: kept without --force, replaced whole with it.
    let existing = dir.join("card.img");
    std::fs::write(&existing, b"precious").unwrap();
    let e = write_output(&existing, b"new card", false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("--force"), "{e}");
    assert_eq!(std::fs::read(&existing).unwrap(), b"precious");
    write_output(&existing, b"new card", true).unwrap();
    assert_eq!(std::fs::read(&existing).unwrap(), b"new card");
    // Not a regular file, even with --force.
    let e = check_output(Path::new("/dev/null"), true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a regular file"), "{e}");
    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec!["card.img".to_string()]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn options_and_images() {
    let args = |list: &[&str]| -> Vec<String> { list.iter().map(|s| (*s).to_string()).collect() };
    let options = super::parse(&args(&[
        "--board", "rpi4", "-o", "x.img", "--loader", "u-boot",
    ]))
    .unwrap();
    assert_eq!(options.loader, Loader::UBoot);
    assert_eq!(options.output.as_deref(), Some(Path::new("x.img")));
    let e = super::parse(&args(&["--board", "virt"]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no SD card"), "{e}");
    let e = super::parse(&args(&["--loader", "grub"]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("firmware or u-boot"), "{e}");
    let e = super::parse(&args(&["a.toml", "--image", "b.img"]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not both"), "{e}");
    assert!(super::check_arm64_image(b"#!/bin/sh\n").is_err());
    let mut header = vec![0u8; 64];
    header[0x38..0x3c].copy_from_slice(b"ARM\x64");
    assert!(super::check_arm64_image(&header).is_ok());
}

#[test]
fn boot_script_is_what_mkimage_writes() {
    let dir = scratch("mkimage");
    let text = super::script::text(IMAGE_FILE);
    let source = dir.join("boot.cmd");
    std::fs::write(&source, &text).unwrap();
    let made = dir.join("boot.scr");
    // SOURCE_DATE_EPOCH=0: mkimage stamps the time 0, as the card's script has.
    run(Command::new(tool("mkimage", "u-boot-tools"))
        .env("SOURCE_DATE_EPOCH", "0")
        .args(["-A", "arm64", "-O", "linux", "-T", "script", "-C", "none"])
        .args(["-n", "Bulkhead boot script", "-d"])
        .arg(&source)
        .arg(&made));
    assert!(
        std::fs::read(&made).unwrap() == super::script::image("Bulkhead boot script", &text),
        "boot.scr differs from mkimage's"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
