// SPDX-License-Identifier: Apache-2.0 OR MIT
//! System tests on the Raspberry Pi 4, in QEMU 10's `raspi4b` with Debian's
//! `bcm2711-rpi-4-b.dtb`: the kernel's boot report (memory, the GIC-400 and
//! UART0 read from the device tree through `/soc`'s ranges, four cores, three
//! of them released from the spin table), and the demo, built for the board
//! from the same `systems/demo.toml`.
//!
//! The QEMU is the set-up's QEMU 10.0, which has the `raspi4b` machine.

use std::time::Duration;

use super::{Context, expect_lines, ran_clean, start};
use crate::image::{self, Variant};
use crate::qemu::{Machine, RunSpec, Verdict};
use crate::setup::Tools;
use crate::system::{GuestChoice, Platform, System};

/// How long a run may take: the spin table, four cores and QEMU 10's
/// raspi4b are a little slower than `virt`.
const TIMEOUT: Duration = Duration::from_secs(60);

const RELEASE: Variant = Variant::plain(true);

/// The kernel alone on the Pi: its boot report.
pub(super) fn boot(c: &Context<'_>) -> Result<String, String> {
    let platform = Platform::load(crate::rpi4::PLATFORM).map_err(|e| e.to_string())?;
    let kernel = image::build(c.tools, &platform, RELEASE).map_err(|e| e.to_string())?;
    let machine = crate::rpi4::machine(&platform, kernel).map_err(|e| format!("FAILED: {e}"))?;
    let spec = RunSpec {
        timeout: Some(TIMEOUT),
        stop_when_ready: true,
        ..RunSpec::default()
    };
    let outcome = start(c, &machine, spec)?;
    if let Verdict::Failed(why) = outcome.verdict() {
        return Err(format!("{why}\n--- console ---\n{}", outcome.console));
    }
    expect_lines(
        &outcome,
        &[
            format!(
                "Bulkhead {} on Raspberry Pi 4 Model B (rpi4)",
                env!("CARGO_PKG_VERSION")
            ),
            "boot: exception level EL2".into(),
            // QEMU fills in the memory node: 960 MiB below the VideoCore's.
            "boot: memory 0x000000000..0x03c000000 960 MiB".into(),
            "boot:   firmware reserved 0x000000000..0x000001000 4 KiB".into(),
            // The GIC-400 at /soc 0x40041000, through ranges.
            "boot: GICv2 (arm,gic-400) distributor 0x0ff841000..0x0ff842000, \
             CPU interface 0x0ff842000..0x0ff844000, maintenance INTID 25"
                .into(),
            // UART0 at /soc 0x7e201000, through ranges.
            "boot: console PL011 at 0x0fe201000..0x0fe202000, INTID 153 (the device tree agrees)"
                .into(),
            "boot: timer 62500000 Hz, hypervisor INTID 26, virtual INTID 27".into(),
            "boot: cores 4 in device tree, MPIDR [0, 1, 2, 3]".into(),
            "boot: 3 cores released from the spin table".into(),
            "boot: cores online 4 of 4".into(),
            "boot: timer ticking at 100 Hz on 4 of 4 cores".into(),
            "boot: no boot package: the kernel runs alone".into(),
        ],
    )?;
    Ok(String::new())
}

/// `systems/demo.toml`, unchanged, built for the Pi, and the image file:
/// the one `demo-rpi4` boots and `sdcard-rpi4` puts on its cards.
pub(super) fn demo_image(c: &Context<'_>) -> Result<(System, std::path::PathBuf), String> {
    let path = crate::root().join("systems/demo.toml");
    let system = System::load_for(&path, &GuestChoice::default(), Some(crate::rpi4::PLATFORM))
        .map_err(|e| e.to_string())?;
    let kernel = image::build_system(c.tools, &system, RELEASE).map_err(|e| e.to_string())?;
    Ok((system, kernel))
}

/// `tests/qemu/<name>.toml`, unchanged, built for the Pi: for an
/// expectation file's runs on the rpi4 (`expect::Shape::Rpi4`). A manifest
/// names devices by the names the platforms give them, so one that uses a
/// device the Pi lacks fails here, with the manifest's error.
pub(super) fn system_image(tools: &Tools, name: &str) -> crate::Result<std::path::PathBuf> {
    let path = crate::root()
        .join("tests/qemu")
        .join(format!("{name}.toml"));
    let system = System::load_for(&path, &GuestChoice::default(), Some(crate::rpi4::PLATFORM))?;
    image::build_system(tools, &system, RELEASE)
}

/// `systems/demo.toml`, unchanged, built for the Pi: IPC, shared memory and
/// the UART driver owning UART0.
pub(super) fn demo(c: &Context<'_>) -> Result<String, String> {
    let (system, kernel) = demo_image(c)?;
    let machine = Machine {
        ..crate::rpi4::machine(&system.platform, kernel).map_err(|e| format!("FAILED: {e}"))?
    };
    let spec = RunSpec {
        timeout: Some(TIMEOUT),
        until_all: vec![
            "[ping] ping: done\r\n".into(),
            "[consumer] done, all 100000 records arrived in order and intact\r\n".into(),
            "[producer] done, 100000 records written\r\n".into(),
        ],
        ..RunSpec::default()
    };
    let outcome = start(c, &machine, spec)?;
    ran_clean(&outcome)?;
    expect_lines(
        &outcome,
        &[
            "boot: system `demo`: 7 partitions".into(),
            "boot: 3 cores released from the spin table".into(),
            "bulkhead: system ready".into(),
            "[uart] driving the PL011 at 0xfe201000, interrupt-driven; \
             output and input through shared rings"
                .into(),
            "[ping] 3000 calls answered correctly (batch 3)".into(),
            "[consumer] done, all 100000 records arrived in order and intact".into(),
        ],
    )?;
    Ok(String::new())
}
