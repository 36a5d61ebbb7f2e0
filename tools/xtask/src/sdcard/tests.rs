// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Host tests of the card, made of small stand-in files and checked with the
//! independent tools of [`super::check`] (and `mkimage`); without the tools
//! these tests fail and say how to install them.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{
    IMAGE_FILE, Inputs, Loader, check, check_output, config, contents, disk, firmware, write_output,
};

/// A scratch folder of this test's own.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xtask-sdcard-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
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

fn tool(name: &str, package: &str) -> PathBuf {
    check::tool(name, package).unwrap_or_else(|e| panic!("{e}"))
}

fn run(command: &mut Command) -> String {
    check::run(command).unwrap_or_else(|e| panic!("{e}"))
}

fn check_card(path: &Path, files: &[disk::File]) {
    if let Err(e) = check::card(path, files) {
        panic!("{e}");
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
    check::boot_script(file("boot.scr"), &super::script::text(IMAGE_FILE), &dir)
        .unwrap_or_else(|e| panic!("{e}"));
    let text = super::script::text(IMAGE_FILE);
    assert!(
        text.contains("load ${devtype} ${devnum}:${distro_bootpart} ${kernel_addr_r} bulkhead.img"),
        "{text}"
    );
    assert!(
        text.contains("booti ${kernel_addr_r} - ${fdt_addr}"),
        "{text}"
    );
    let script = dir.join("damaged.scr");
    let dumpimage = tool("dumpimage", "u-boot-tools");
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
fn options() {
    use super::{Board, Card, Options, parse};
    let error = |args: &[&str]| parse(args).unwrap_err().to_string();
    // The documented invocations.
    let o = parse(&["--board", "rpi4", "-o", "bulkhead-rpi4.img"]).unwrap();
    assert_eq!(
        o,
        Options {
            card: Card::default(),
            output: "bulkhead-rpi4.img".into(),
            force: false,
        }
    );
    let o = parse(&["--board", "rpi4", "--loader", "u-boot", "-o", "x.img"]).unwrap();
    assert_eq!(o.card.loader, Loader::UBoot);
    assert_eq!(o.output, Path::new("x.img"));
    let o = parse(&["systems/linux.toml", "--board", "rpi4", "-o", "l.img"]).unwrap();
    assert_eq!(o.card.system, Path::new("systems/linux.toml"));
    let o = parse(&["--board", "rpi4", "--image", "demo.img", "-o", "card.img"]).unwrap();
    assert_eq!(o.card.image.as_deref(), Some(Path::new("demo.img")));
    // Every option, in both spellings lexopt reads.
    let o = parse(&[
        "a.toml",
        "--board=rpi4",
        "--output=c.img",
        "--loader=uboot",
        "--force",
        "--debug",
        "--refresh",
        "--kernel",
        "Image",
        "--initrd=initrd.gz",
    ])
    .unwrap();
    assert_eq!(o.card.board, Board::Rpi4);
    assert_eq!(o.output, Path::new("c.img"));
    assert!(o.force && !o.card.release);
    assert_eq!(o.card.resolve, crate::debian::Resolve::Refresh);
    assert_eq!(o.card.guest.kernel.as_deref(), Some(Path::new("Image")));
    assert_eq!(o.card.guest.initrd.as_deref(), Some(Path::new("initrd.gz")));
    // Bad input.
    assert!(error(&["--board", "virt", "-o", "x"]).contains("no SD card"));
    assert_eq!(
        error(&["--board", "pi5", "-o", "x"]),
        "cargo xtask sdcard: unknown board `pi5`; --board takes rpi4"
    );
    assert!(error(&["--loader", "grub", "-o", "x"]).contains("firmware or u-boot"));
    assert!(error(&["a.toml", "--image", "b.img", "-o", "x"]).contains("not both"));
    assert!(error(&["--kernel", "K", "--image", "b.img", "-o", "x"]).contains("not both"));
    assert_eq!(
        error(&["--board", "rpi4"]),
        "cargo xtask sdcard: needs the image file to write: -o FILE"
    );
    assert_eq!(
        error(&["-o"]),
        "cargo xtask sdcard: -o needs a value; try `cargo xtask help`"
    );
    assert_eq!(
        error(&["-o", "--force"]),
        "cargo xtask sdcard: -o needs a value; try `cargo xtask help`"
    );
    assert_eq!(
        error(&["--force=yes", "-o", "x"]),
        "cargo xtask sdcard: --force takes no value, not `yes`; try `cargo xtask help`"
    );
    assert_eq!(
        error(&["-o", "x", "--yes"]),
        "cargo xtask sdcard: unknown option `--yes`; try `cargo xtask help`"
    );
    assert_eq!(
        error(&["-o", "x", "-q"]),
        "cargo xtask sdcard: unknown option `-q`; try `cargo xtask help`"
    );
    assert_eq!(
        error(&["a.toml", "b.toml", "-o", "x"]),
        "cargo xtask sdcard: takes one system manifest, not both `a.toml` and `b.toml`"
    );
}

#[test]
fn images() {
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

#[test]
fn a_missing_tool_fails_and_says_how_to_install_it() {
    let e = check::tool("no-such-card-tool", "nothing").unwrap_err();
    assert!(e.contains("no-such-card-tool"), "{e}");
    assert!(e.contains("cargo xtask setup"), "{e}");
    assert!(
        e.contains(
            "apt-get install -y --no-install-recommends mtools dosfstools fdisk u-boot-tools"
        ),
        "{e}"
    );
}
