// SPDX-License-Identifier: Apache-2.0 OR MIT
//! `cargo xtask bench --peers`: Bulkhead side by side with Xen 4.17 in the
//! same QEMU, measured by the same guest.
//!
//! The guest is the project's own probe (`guests/probe`) in its bench mode,
//! the same binary under both hypervisors. Under Bulkhead it runs as in
//! `cargo xtask bench` (`tests/qemu/bench-vm.toml`: the probe, its monitor,
//! the UART driver and the console on one core). Under Xen it is the
//! hardware domain (dom0): QEMU's `guest-loader` device puts it in memory
//! and names it in the device tree's `/chosen` as Xen's boot module, Xen
//! builds it a device tree with a `/hypervisor` node, and from that node the
//! probe knows to print through Xen's console hypercall and to call Xen's
//! `xen_version` as its null hypercall (`hvc #0xEA1`, x16 = 17). Xen is
//! Debian 12's `xen-hypervisor-4.17-arm64`, fetched through
//! [`crate::debian`] like the guest kernel and U-Boot (verified against the
//! signed index, cached by version in `target/xen/`).
//!
//! Both machines are QEMU's `virt` with GICv3, one core, 1 GiB and `-icount
//! shift=0,sleep=off`. The probe reads its virtual counter (16 instructions
//! a tick) around 10,000 rounds of each operation less an empty loop of the
//! same shape. Each hypervisor runs twice; different counts fail, as in the
//! rest of the bench. What is compared:
//!
//! - `null hypercall`: Bulkhead's `Version` (`hvc #0`), answered by the
//!   kernel before it saves anything, against Xen's `xen_version`
//!   (`XENVER_version`), Xen's cheapest hypercall.
//! - `GIC distributor read`: `ldr` of GICD_TYPER. Under Xen its vGIC in the
//!   hypervisor answers; under Bulkhead the guest's GIC distributor is the
//!   monitor's, an unprivileged partition, so the read is a round trip to
//!   it and back. Same instruction, different designs: the table says so.
//! - Bulkhead's PL011 read (`mmio-read`, the figure `cargo xtask bench`
//!   reports) is printed too, with no Xen figure: Xen keeps the PL011 for
//!   its own console.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use crate::debian::{self, Archive, Fetched, Package, Recipe, Resolve};
use crate::image::{self, Variant};
use crate::qemu::{self, Gic, Machine, RunSpec};
use crate::system::{GuestChoice, Platform, System};
use crate::{Result, error, setup};

/// Debian's Xen hypervisor package for arm64.
const XEN_PACKAGE: &str = "xen-hypervisor-4.17-arm64";
/// The hypervisor's file in it.
const XEN_MEMBER: &str = "./boot/xen-4.17-arm64";
/// Its name in the cache entry.
const XEN_OUTPUT: &str = "xen";

/// Xen's command line: its console on QEMU's PL011, one vCPU and 128 MiB
/// for the hardware domain (the probe), and no scrubbing of free RAM in the
/// idle loop (`bootscrub=off`; by default Xen scrubs it there after boot,
/// still at it while the probe waits for its timer: 285 ticks a delivery
/// with the scrub, 264 without).
const XEN_BOOTARGS: &str =
    "console=dtuart dtuart=/pl011@9000000 dom0_mem=128M dom0_max_vcpus=1 bootscrub=off";
/// Where QEMU's `guest-loader` puts the probe (Xen moves it into dom0's
/// memory).
const GUEST_LOADER_ADDRESS: u64 = 0x4900_0000;
/// The probe's command line under Xen.
const PROBE_BOOTARGS: &str = "probe=bench probe=off";
/// The probe's line with the version Xen's `xen_version` gave.
const XEN_SAYS: &str = "probe: bench xen 4.17";
/// The line after the last figure.
const DONE: &str = "probe: bench done";

/// What one row compares.
struct Row {
    /// What is measured.
    operation: &'static str,
    /// The probe's name for Bulkhead's figure.
    bulkhead: &'static str,
    /// The probe's name for Xen's, if Xen has one.
    xen: Option<&'static str>,
    /// What the two figures are.
    note: &'static str,
}

const ROWS: [Row; 4] = [
    Row {
        operation: "null hypercall",
        bulkhead: "hvc-null",
        xen: Some("hvc-null"),
        note: "Bulkhead `Version` / Xen `xen_version`, both answered at EL2",
    },
    Row {
        operation: "GIC distributor read",
        bulkhead: "gicd-read",
        xen: Some("gicd-read"),
        note: "GICD_TYPER: Bulkhead's monitor at EL0 / Xen's vGIC at EL2",
    },
    Row {
        operation: "virtual timer IRQ",
        bulkhead: "vtimer",
        xen: Some("vtimer"),
        note: "from firing to the guest's handler, the guest waiting in WFI",
    },
    Row {
        operation: "PL011 read via monitor",
        bulkhead: "mmio-read",
        xen: None,
        note: "Bulkhead only (Xen keeps the PL011)",
    },
];

/// Runs the probe under Bulkhead and under Xen, twice each, and prints the
/// table.
pub(crate) fn main() -> Result<ExitCode> {
    let tools = setup::ensure(setup::Needs { uboot: false })?;
    let xen = debian::ensure(&Xen, Resolve::Cached)?;
    let xen_image = xen.dir.join(XEN_OUTPUT);
    let xen_version = xen
        .package(XEN_PACKAGE)
        .map_or_else(String::new, |p| p.version.clone());
    let platform = Platform::load("qemu-virt")?;
    let variant = Variant::plain(true);
    let path = crate::root().join("tests/qemu/bench-vm.toml");
    let system = System::load_with(&path, &GuestChoice::default())?;
    let bulkhead_image = image::build_system(&tools, &system, variant)?;
    let probe = crate::guest_programs::build(&tools, "probe")?;

    let mut failed = 0;
    let mut runs = |what: &str, run: &dyn Fn() -> Result<String>| -> Result<Vec<Option<u64>>> {
        let consoles = [run()?, run()?];
        let counts: Vec<[Option<u64>; 2]> = ROWS
            .iter()
            .map(|row| {
                let name = if what == "Xen" {
                    row.xen
                } else {
                    Some(row.bulkhead)
                };
                let read = |c: &str| name.and_then(|n| super::probe_instructions(c, n));
                [read(&consoles[0]), read(&consoles[1])]
            })
            .collect();
        for (row, [a, b]) in ROWS.iter().zip(&counts) {
            if a != b {
                failed += 1;
                eprintln!(
                    "bench --peers: {what}'s {} is NOT REPEATABLE ({a:?} then {b:?})",
                    row.operation
                );
            }
        }
        Ok(counts.into_iter().map(|[a, _]| a).collect())
    };
    let bulkhead = runs("Bulkhead", &|| {
        run_bulkhead(&tools, &platform, &bulkhead_image)
    })?;
    let xen_counts = runs("Xen", &|| run_xen(&tools, &platform, &xen_image, &probe))?;
    for (row, count) in ROWS.iter().zip(&bulkhead) {
        if count.is_none() {
            failed += 1;
            eprintln!("bench --peers: no Bulkhead figure for {}", row.operation);
        }
    }
    for (row, count) in ROWS.iter().zip(&xen_counts) {
        if row.xen.is_some() && count.is_none() {
            failed += 1;
            eprintln!("bench --peers: no Xen figure for {}", row.operation);
        }
    }
    println!(
        "{:<24} {:>10} {:>10} {:>12}  what",
        "operation", "Bulkhead", "Xen 4.17", "Xen/Bulkhead"
    );
    for ((row, b), x) in ROWS.iter().zip(&bulkhead).zip(&xen_counts) {
        println!(
            "{:<24} {:>10} {:>10} {:>12}  {}",
            row.operation,
            show(*b),
            show(*x),
            ratio(*b, *x).unwrap_or_else(|| "-".into()),
            row.note
        );
    }
    println!("instructions per operation (virtual counter x 16, -icount shift=0), each run twice");
    println!(
        "the GIC read is the closest like-for-like device read: Xen emulates the distributor \
         in the hypervisor, Bulkhead in the guest's unprivileged monitor (kernel, EL0 and back), \
         as it does the PL011"
    );
    println!("xen: Debian {XEN_PACKAGE} {xen_version}, as dom0: the probe");
    println!("qemu: {}", tools.describe_qemu());
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A count, or `-`.
fn show(count: Option<u64>) -> String {
    count.map_or_else(|| "-".into(), |c| c.to_string())
}

/// Xen's count over Bulkhead's, `12.34x`.
fn ratio(bulkhead: Option<u64>, xen: Option<u64>) -> Option<String> {
    let (b, x) = (bulkhead?, xen?);
    (b != 0).then(|| {
        let hundredths = (x * 100 + b / 2) / b;
        format!("{}.{:02}x", hundredths / 100, hundredths % 100)
    })
}

/// The machine both hypervisors run in: QEMU's `virt` with GICv3, one core,
/// 1 GiB, icount.
fn machine(platform: &Platform) -> Machine<'_> {
    Machine {
        smp: 1,
        gic: Gic::V3,
        memory: "1G".into(),
        extra: vec!["-icount".into(), "shift=0,sleep=off".into()],
        ..Machine::default_for(platform)
    }
}

/// Boots `machine` until `until` and returns its console.
fn boot(tools: &setup::Tools, machine: &Machine<'_>, until: &str, who: &str) -> Result<String> {
    let spec = RunSpec {
        timeout: Some(Duration::from_secs(300)),
        until: Some(until.to_string()),
        ..RunSpec::default()
    };
    let outcome = qemu::run(tools, machine, &spec)?;
    if !outcome.stopped_when_ready {
        return Err(error!(
            "bench --peers: {who} did not reach `{until}`:\n{}\n{}",
            outcome.console,
            outcome.stderr.trim()
        ));
    }
    Ok(outcome.console)
}

/// The probe under Bulkhead: `tests/qemu/bench-vm.toml`.
fn run_bulkhead(tools: &setup::Tools, platform: &Platform, image: &Path) -> Result<String> {
    let mut m = machine(platform);
    m.kernel = Some(image.to_path_buf());
    boot(tools, &m, &format!("[probe] {DONE}"), "Bulkhead")
}

/// The probe under Xen, as its hardware domain.
fn run_xen(tools: &setup::Tools, platform: &Platform, xen: &Path, probe: &Path) -> Result<String> {
    let mut m = machine(platform);
    m.kernel = Some(xen.to_path_buf());
    m.append = Some(XEN_BOOTARGS.into());
    m.extra.extend(["-device".into(), guest_loader(probe)]);
    let console = boot(tools, &m, DONE, "Xen")?;
    if !console.lines().any(|l| l.trim_end() == XEN_SAYS) {
        return Err(error!(
            "bench --peers: the probe under Xen did not print `{XEN_SAYS}`:\n{console}"
        ));
    }
    Ok(console)
}

/// QEMU's `guest-loader` device for the probe: Xen's first boot module,
/// the hardware domain's kernel.
fn guest_loader(probe: &Path) -> String {
    format!(
        "guest-loader,addr={GUEST_LOADER_ADDRESS:#x},kernel={},bootargs={PROBE_BOOTARGS}",
        probe.display()
    )
}

/// The recipe: `xen-hypervisor-4.17-arm64` in, the hypervisor's image out
/// (an arm64 `Image` QEMU's `-kernel` starts at EL2).
struct Xen;

impl Recipe for Xen {
    fn name(&self) -> &str {
        "xen"
    }

    fn revision(&self) -> String {
        format!("{XEN_MEMBER} as is")
    }

    fn outputs(&self) -> &[&str] {
        &[XEN_OUTPUT]
    }

    fn offline_hint(&self) -> String {
        format!(
            "xen: `cargo xtask bench --peers` fetches Xen ({XEN_PACKAGE}) from Debian's archive \
             the first time, then uses target/xen/ with no network"
        )
    }

    fn resolve(&self, archive: &Archive) -> Result<Vec<Package>> {
        Ok(vec![archive.package(XEN_PACKAGE, debian::ARCHITECTURE)?])
    }

    fn build(&self, fetched: &[Fetched], work: &Path, out: &Path) -> Result<()> {
        let [package] = fetched else {
            return Err(error!("xen: expected one package, got {}", fetched.len()));
        };
        debian::extract(&package.deb, work, &[XEN_MEMBER])?;
        std::fs::rename(work.join(XEN_MEMBER), out.join(XEN_OUTPUT))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ratios_have_two_decimals() {
        assert_eq!(super::ratio(Some(15), Some(417)).as_deref(), Some("27.80x"));
        assert_eq!(
            super::ratio(Some(1049), Some(611)).as_deref(),
            Some("0.58x")
        );
        assert_eq!(super::ratio(None, Some(611)), None);
        assert_eq!(super::ratio(Some(0), Some(611)), None);
    }

    #[test]
    fn xen_console_lines_are_read() {
        // Xen prints its hardware domain's console writes as they come.
        let console = "(XEN) Freed 348kB init memory.\r\n\
                       probe: bench counter 62500000 Hz, 10000 iterations\r\n\
                       probe: bench xen 4.17\r\n\
                       probe: bench hvc-null 26.062 ticks\r\n\
                       probe: bench vtimer 264.390 ticks\r\n\
                       probe: bench gicd-read 38.139 ticks\r\n";
        let read = |what| crate::bench::probe_instructions(console, what);
        assert_eq!(read("hvc-null"), Some(417));
        assert_eq!(read("gicd-read"), Some(610));
        assert_eq!(read("vtimer"), Some(4230));
        assert_eq!(read("mmio-read"), None);
    }

    #[test]
    fn the_guest_loader_names_the_probe() {
        let device = super::guest_loader(std::path::Path::new("/t/probe.img"));
        assert_eq!(
            device,
            "guest-loader,addr=0x49000000,kernel=/t/probe.img,bootargs=probe=bench probe=off"
        );
    }
}
