// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Host tests of `cargo xtask flash`: the pure decision on plain facts, and
//! the whole command on fixture trees standing in for sysfs, the mount
//! table and `/dev` (the test seam), a plain file playing the card.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use super::{
    Facts, MAX_SIZE, MIN_SIZE, Mount, Outcome, Refusal, Root, card_transport, check, flash, gather,
    human, parent_hint, unescape,
};

const USB: &str = "/sys/devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0";
const MMC: &str = "/sys/devices/pci0000:00/0000:00:1e.6/mmc_host/mmc0/mmc0:aaaa";
const SATA: &str = "/sys/devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0";

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xtask-flash-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn good() -> Facts {
    Facts {
        given: "/dev/sdb".into(),
        name: "sdb".into(),
        is_block: true,
        device_path: Some(USB.into()),
        size: 32 << 30,
        partitions: vec!["sdb1".into()],
        mounts: vec![Mount {
            device: "nvme0n1p2".into(),
            point: "/".into(),
        }],
        model: "Generic SD Reader".into(),
        ..Facts::default()
    }
}

#[test]
fn decision_accepts_a_usb_reader_and_an_mmc_slot() {
    assert_eq!(check(&good()), Ok(()));
    let mut laptop = good();
    laptop.name = "mmcblk0".into();
    laptop.device_path = Some(MMC.into());
    assert_eq!(check(&laptop), Ok(()));
    assert!(card_transport("mmcblk1", None));
    assert!(!card_transport("sda", Some(SATA)));
    assert!(!card_transport("nvme0n1", None));
}

#[test]
fn decision_refuses_each_unsafe_device() {
    let mut f = good();
    f.is_block = false;
    assert_eq!(check(&f), Err(Refusal::NotBlock));

    let mut f = good();
    f.is_partition = true;
    assert_eq!(check(&f), Err(Refusal::Partition));

    let mut f = good();
    f.device_path = Some(SATA.into());
    assert!(matches!(check(&f), Err(Refusal::NotCardTransport(_))));
    f.device_path = None;
    assert!(matches!(check(&f), Err(Refusal::NotCardTransport(None))));

    for size in [0, MIN_SIZE - 512, MAX_SIZE + 512] {
        let mut f = good();
        f.size = size;
        assert_eq!(check(&f), Err(Refusal::Size(size)));
    }
    for size in [MIN_SIZE, MAX_SIZE] {
        let mut f = good();
        f.size = size;
        assert_eq!(check(&f), Ok(()));
    }

    let mut f = good();
    f.mounts.push(Mount {
        device: "sdb1".into(),
        point: "/".into(),
    });
    assert_eq!(check(&f), Err(Refusal::HoldsRoot("/dev/sdb1".into())));

    let mut f = good();
    f.holds_root_by_number = true;
    assert!(matches!(check(&f), Err(Refusal::HoldsRoot(_))));

    let mut f = good();
    f.mounts.push(Mount {
        device: "sdb1".into(),
        point: "/media/me/boot".into(),
    });
    let refusal = check(&f).unwrap_err();
    assert_eq!(
        refusal,
        Refusal::Mounted(vec![("sdb1".into(), "/media/me/boot".into())])
    );
    assert!(refusal.message(&f).contains("umount /media/me/boot"));

    let mut f = good();
    f.mounts.push(Mount {
        device: "sdb".into(),
        point: "/mnt".into(),
    });
    assert!(matches!(check(&f), Err(Refusal::Mounted(_))));

    let mut f = good();
    f.holders = vec!["dm-0".into()];
    assert_eq!(check(&f), Err(Refusal::Held(vec!["dm-0".into()])));
}

#[test]
fn every_message_says_nothing_was_written() {
    let f = good();
    for r in [
        Refusal::NotBlock,
        Refusal::Partition,
        Refusal::NotCardTransport(None),
        Refusal::Size(1),
        Refusal::HoldsRoot("/dev/sdb1".into()),
        Refusal::Mounted(vec![("sdb1".into(), "/mnt".into())]),
        Refusal::Held(vec!["dm-0".into()]),
    ] {
        let m = r.message(&f);
        assert!(m.starts_with("/dev/sdb "), "{m}");
        assert!(m.ends_with("nothing was written"), "{m}");
    }
}

#[test]
fn small_helpers() {
    assert_eq!(unescape(r"/media/my\040card"), "/media/my card");
    assert_eq!(unescape(r"a\\b"), r"a\\b");
    assert_eq!(human(512), "512 bytes");
    assert_eq!(human(32 << 30), "32.0 GiB");
    assert_eq!(parent_hint("sdb1"), " (/dev/sdb?)");
    assert_eq!(parent_hint("mmcblk0p1"), " (/dev/mmcblk0?)");
    assert_eq!(parent_hint("sdb"), "");
}

/// A fixture root with a card `name` on `transport` of `sectors` × 512
/// bytes, with partition `name`+`part`1, and a mount table `mounts`.
struct Fixture {
    root: PathBuf,
}

impl Fixture {
    fn new(test: &str, name: &str, transport: &str, sectors: u64, mounts: &str) -> Self {
        let root = scratch(test);
        let w = |path: &str, text: &str| {
            let p = root.join(path.trim_start_matches('/'));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        // The real device's folder, which /sys/block/NAME/device points to.
        let device = root.join(transport.trim_start_matches('/'));
        std::fs::create_dir_all(&device).unwrap();
        w(&format!("{transport}/vendor"), "Generic \n");
        w(&format!("{transport}/model"), "SD/MMC Reader\n");
        let sys = format!("/sys/block/{name}");
        w(&format!("{sys}/size"), &format!("{sectors}\n"));
        w(&format!("{sys}/dev"), "8:16\n");
        symlink(&device, root.join(&sys[1..]).join("device")).unwrap();
        let part = if name.starts_with("mmcblk") {
            format!("{name}p1")
        } else {
            format!("{name}1")
        };
        w(&format!("{sys}/{part}/partition"), "1\n");
        w(&format!("{sys}/{part}/dev"), "8:17\n");
        // The class entries: the seam's marker for "is a block device".
        std::fs::create_dir_all(root.join("sys/class/block")).unwrap();
        symlink(
            root.join(&sys[1..]),
            root.join(format!("sys/class/block/{name}")),
        )
        .unwrap();
        symlink(
            root.join(format!("{}/{part}", &sys[1..])),
            root.join(format!("sys/class/block/{part}")),
        )
        .unwrap();
        w("/proc/self/mounts", mounts);
        // The card: a plain file, with old contents.
        w(&format!("/dev/{name}"), &"old".repeat(1000));
        w(&format!("/dev/{part}"), "");
        Self { root }
    }

    fn flash(&self, device: &str, image: &[u8]) -> Result<Outcome, String> {
        flash(
            &Root::fixture(&self.root),
            Path::new(device),
            image,
            &mut |_| true,
        )
        .map_err(|e| e.to_string())
    }

    fn card(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.root.join("dev").join(name)).unwrap()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

const ROOT_ON_NVME: &str = "/dev/nvme0n1p2 / ext4 rw,relatime 0 0\nproc /proc proc rw 0 0\n";
const CARD_SECTORS: u64 = 1 << 21; // 1 GiB

fn image() -> Vec<u8> {
    (0..(5 << 20) + 123).map(|i: u32| (i % 251) as u8).collect()
}

/// Asserts `result` is a refusal containing `words` and the card is as it was.
fn refused(fixture: &Fixture, name: &str, result: Result<Outcome, String>, words: &str) {
    let message = result.expect_err("refused");
    assert!(message.contains(words), "{message}");
    assert!(message.contains("nothing was written"), "{message}");
    assert_eq!(fixture.card(name), "old".repeat(1000).into_bytes());
}

#[test]
fn writes_and_verifies_a_card_through_the_seam() {
    let f = Fixture::new("ok", "sdb", USB, CARD_SECTORS, ROOT_ON_NVME);
    let facts = gather(&Root::fixture(&f.root), Path::new("/dev/sdb")).unwrap();
    assert_eq!(facts.model, "Generic SD/MMC Reader");
    assert_eq!(facts.size, 1 << 30);
    assert_eq!(facts.partitions, vec!["sdb1".to_string()]);
    assert_eq!(facts.device_path.as_deref(), Some(USB));
    let mut asked = String::new();
    let out = flash(
        &Root::fixture(&f.root),
        Path::new("/dev/sdb"),
        &image(),
        &mut |q| {
            asked = q.to_string();
            true
        },
    )
    .unwrap();
    assert_eq!(out, Outcome::Verified);
    assert!(asked.contains("Generic SD/MMC Reader"), "{asked}");
    assert!(asked.contains("1.0 GiB"), "{asked}");
    let card = f.card("sdb");
    assert_eq!(&card[..image().len()], &image()[..]);
}

#[test]
fn an_mmc_slot_is_accepted_and_a_no_writes_nothing() {
    let f = Fixture::new("mmc", "mmcblk0", MMC, CARD_SECTORS, ROOT_ON_NVME);
    let out = flash(
        &Root::fixture(&f.root),
        Path::new("/dev/mmcblk0"),
        &image(),
        &mut |_| false,
    )
    .unwrap();
    assert_eq!(out, Outcome::Declined);
    assert_eq!(f.card("mmcblk0"), "old".repeat(1000).into_bytes());
    assert_eq!(f.flash("/dev/mmcblk0", &image()), Ok(Outcome::Verified));
}

#[test]
fn a_card_that_reads_back_wrong_is_reported() {
    let f = Fixture::new("bad", "sdb", USB, CARD_SECTORS, ROOT_ON_NVME);
    let mut wrong = image();
    wrong[3 << 20] ^= 0x40;
    std::fs::write(f.root.join("dev/sdb.readback"), &wrong).unwrap();
    let message = f.flash("/dev/sdb", &image()).unwrap_err();
    assert!(message.contains("verification failed"), "{message}");
    assert!(message.contains(&format!("byte {}", 3 << 20)), "{message}");
    // A card that reads back short.
    std::fs::write(f.root.join("dev/sdb.readback"), &image()[..1000]).unwrap();
    let message = f.flash("/dev/sdb", &image()).unwrap_err();
    assert!(message.contains("ended after 1000 bytes"), "{message}");
}

#[test]
fn refusals_through_the_seam() {
    // Not a block device: no sysfs entry for it.
    let f = Fixture::new("notblock", "sdb", USB, CARD_SECTORS, ROOT_ON_NVME);
    std::fs::write(f.root.join("dev/sdc"), "old".repeat(1000)).unwrap();
    refused(
        &f,
        "sdc",
        f.flash("/dev/sdc", &image()),
        "not a block device",
    );
    // A partition.
    std::fs::write(f.root.join("dev/sdb1"), "old".repeat(1000)).unwrap();
    refused(&f, "sdb1", f.flash("/dev/sdb1", &image()), "is a partition");
    assert_eq!(f.card("sdb"), "old".repeat(1000).into_bytes());

    // Not mmc/usb.
    let f = Fixture::new("sata", "sda", SATA, CARD_SECTORS, ROOT_ON_NVME);
    refused(
        &f,
        "sda",
        f.flash("/dev/sda", &image()),
        "not an SD/MMC or USB",
    );

    // Too small, too large.
    let f = Fixture::new("small", "sdb", USB, (MIN_SIZE / 512) - 1, ROOT_ON_NVME);
    refused(&f, "sdb", f.flash("/dev/sdb", &image()), "implausible");
    let f = Fixture::new("large", "sdb", USB, (MAX_SIZE / 512) + 1, ROOT_ON_NVME);
    refused(&f, "sdb", f.flash("/dev/sdb", &image()), "implausible");

    // Holds /.
    let f = Fixture::new(
        "root",
        "sdb",
        USB,
        CARD_SECTORS,
        "/dev/sdb1 / ext4 rw 0 0\nproc /proc proc rw 0 0\n",
    );
    refused(&f, "sdb", f.flash("/dev/sdb", &image()), "running system");

    // A partition mounted (with an escaped space in the mount point).
    let f = Fixture::new(
        "mounted",
        "mmcblk0",
        MMC,
        CARD_SECTORS,
        "/dev/nvme0n1p2 / ext4 rw 0 0\n/dev/mmcblk0p1 /media/me/my\\040card vfat rw 0 0\n",
    );
    refused(
        &f,
        "mmcblk0",
        f.flash("/dev/mmcblk0", &image()),
        "is mounted (/dev/mmcblk0p1 on /media/me/my card)",
    );

    // Held by device mapper.
    let f = Fixture::new("held", "sdb", USB, CARD_SECTORS, ROOT_ON_NVME);
    std::fs::create_dir_all(f.root.join("sys/block/sdb/sdb1/holders/dm-0")).unwrap();
    refused(&f, "sdb", f.flash("/dev/sdb", &image()), "in use by dm-0");
}

#[test]
fn without_the_seam_a_plain_file_is_refused() {
    let dir = scratch("plain");
    let card = dir.join("card.img");
    std::fs::write(&card, "old").unwrap();
    let message = flash(&Root::real(), &card, &image(), &mut |_| true)
        .unwrap_err()
        .to_string();
    assert!(message.contains("not a block device"), "{message}");
    assert_eq!(std::fs::read(&card).unwrap(), b"old");
    // A missing path too.
    let message = flash(&Root::real(), &dir.join("nothing"), &image(), &mut |_| true)
        .unwrap_err()
        .to_string();
    assert!(message.contains("not a block device"), "{message}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_image_larger_than_the_card_is_refused() {
    let f = Fixture::new("toobig", "sdb", USB, MIN_SIZE / 512, ROOT_ON_NVME);
    let big = vec![0u8; MIN_SIZE as usize + 1];
    refused(
        &f,
        "sdb",
        f.flash("/dev/sdb", &big),
        "less than the card image",
    );
}

#[test]
fn options() {
    use crate::sdcard::Card;
    let error = |args: &[&str]| super::parse(args).unwrap_err().to_string();
    // The documented invocations.
    let o = super::parse(&["--board", "rpi4", "--device", "/dev/sdb"]).unwrap();
    assert_eq!(
        o,
        super::Options {
            device: "/dev/sdb".into(),
            yes: false,
            card: Card::default(),
        }
    );
    let o = super::parse(&[
        "--board",
        "rpi4",
        "--device",
        "/dev/sdb",
        "--yes",
        "systems/demo.toml",
    ])
    .unwrap();
    assert_eq!(o.device, Path::new("/dev/sdb"));
    assert!(o.yes);
    let mut card = Card::default();
    let mut parser = crate::args::parser(&["systems/demo.toml"]);
    let Some(crate::args::Value(system)) = parser.next().unwrap() else {
        panic!("no value")
    };
    card.positional(system).unwrap();
    assert_eq!(o.card, card);
    // sdcard's options, and -y.
    let o = super::parse(&[
        "-y",
        "--device=/dev/mmcblk0",
        "--loader",
        "u-boot",
        "--refresh",
        "--debug",
        "--image",
        "x.img",
    ])
    .unwrap();
    assert!(o.yes);
    assert_eq!(o.device, Path::new("/dev/mmcblk0"));
    assert!(super::parse(&["--device", "/dev/sdb", "a.toml", "--image", "b.img"]).is_err());
    // Bad input.
    for wrong in ["-o", "--output", "--force"] {
        let e = error(&["--device", "/dev/sdb", wrong, "x.img"]);
        assert!(e.contains("cargo xtask sdcard -o FILE"), "{e}");
    }
    assert_eq!(
        error(&["--device"]),
        "cargo xtask flash: --device needs a value: the card's device, like /dev/sdb"
    );
    assert_eq!(
        error(&["--device", "--yes"]),
        "cargo xtask flash: --device needs a value: the card's device, like /dev/sdb"
    );
    assert_eq!(
        error(&["--board", "rpi4"]),
        "cargo xtask flash: needs the card's device: --device /dev/sdX (lsblk lists them)"
    );
    assert_eq!(
        error(&["--device", "/dev/sdb", "--board", "virt3"]),
        "cargo xtask flash: unknown board `virt3`; --board takes rpi4"
    );
    assert_eq!(
        error(&["--device", "/dev/sdb", "--yes=no"]),
        "cargo xtask flash: --yes takes no value, not `no`; try `cargo xtask help`"
    );
    assert_eq!(
        error(&["--device", "/dev/sdb", "--wipe"]),
        "cargo xtask flash: unknown option `--wipe`; try `cargo xtask help`"
    );
    assert_eq!(
        error(&["--device", "/dev/sdb", "a.toml", "b.toml"]),
        "cargo xtask flash: takes one system manifest, not both `a.toml` and `b.toml`"
    );
}
