// SPDX-License-Identifier: Apache-2.0 OR MIT
//! `cargo xtask bench`: costs measured in exact instruction counts.
//!
//! Each benchmark boots the real image in QEMU with `-icount shift=0`, where
//! the PMU cycle counter counts retired instructions exactly and runs repeat
//! bit for bit (docs/benchmarks.md). Every benchmark runs twice: different
//! counts mean the measurement is broken, and fail. A benchmark over its
//! budget fails too. Wall-clock time is never measured.

use std::process::ExitCode;

use crate::image::{self, Variant};
use crate::qemu::{self, Gic, Machine, RunSpec, Verdict};
use crate::system::Platform;
use crate::{Result, error, setup};

/// One measurement: a name, the machine's core count, and the budget.
struct Bench {
    name: &'static str,
    cores: u32,
    /// The most instructions allowed.
    budget: u64,
}

const BENCHES: [Bench; 2] = [
    Bench {
        name: "boot to all cores online, 1 core",
        cores: 1,
        budget: 2_000_000,
    },
    Bench {
        name: "boot to all cores online, 4 cores",
        cores: 4,
        budget: 2_200_000,
    },
];

/// The largest image, in bytes of memory once loaded (.bss included).
const IMAGE_BUDGET: u64 = 1 << 20;

/// Runs every benchmark and prints a table.
pub(crate) fn main(args: &[String]) -> Result<ExitCode> {
    if let Some(extra) = args.first() {
        return Err(error!(
            "`cargo xtask bench` takes no arguments, not `{extra}`"
        ));
    }
    let tools = setup::ensure(setup::Needs { uboot: false })?;
    let platform = Platform::load("qemu-virt")?;
    let image = image::build(
        &tools,
        &platform,
        Variant {
            release: true,
            fault_injection: false,
        },
    )?;
    let bytes = std::fs::read(&image)?;
    let loaded = u64::from_le_bytes(
        bytes
            .get(16..24)
            .and_then(|b| b.try_into().ok())
            .unwrap_or([0; 8]),
    );
    let mut failed = 0;
    println!(
        "{:<32} {:>12} {:>12}  result",
        "benchmark", "measured", "budget"
    );
    let verdict = if loaded <= IMAGE_BUDGET {
        "ok"
    } else {
        "OVER BUDGET"
    };
    failed += usize::from(loaded > IMAGE_BUDGET);
    println!(
        "{:<32} {:>12} {:>12}  {verdict} (bytes loaded; file {} bytes)",
        "kernel image size",
        loaded,
        IMAGE_BUDGET,
        bytes.len()
    );
    for bench in &BENCHES {
        let machine = Machine {
            kernel: Some(image.clone()),
            smp: bench.cores,
            gic: Gic::V3,
            memory: "512M".into(),
            extra: vec!["-icount".into(), "shift=0".into()],
            ..Machine::default_for(&platform)
        };
        let mut counts = Vec::new();
        for _ in 0..2 {
            let spec = RunSpec {
                timeout: Some(std::time::Duration::from_secs(60)),
                stop_when_ready: true,
                ..RunSpec::default()
            };
            let outcome = qemu::run(&tools, &machine, &spec)?;
            if let Verdict::Failed(why) = outcome.verdict() {
                return Err(error!("{}: {why}", bench.name));
            }
            counts.push(
                boot_cycles(&outcome.console).ok_or_else(|| {
                    error!("{}: no PMU cycle count in the boot report", bench.name)
                })?,
            );
        }
        let verdict = if counts[0] != counts[1] {
            failed += 1;
            format!("NOT REPEATABLE ({} then {})", counts[0], counts[1])
        } else if counts[0] > bench.budget {
            failed += 1;
            "OVER BUDGET".to_string()
        } else {
            "ok".to_string()
        };
        println!(
            "{:<32} {:>12} {:>12}  {verdict} (instructions)",
            bench.name, counts[0], bench.budget
        );
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The count in the report line `boot: N PMU cycles from entry to all cores online`.
fn boot_cycles(console: &str) -> Option<u64> {
    console.lines().find_map(|l| {
        l.strip_prefix("boot: ")?
            .split_once(" PMU cycles from entry to all cores online")?
            .0
            .parse()
            .ok()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_count_is_read_from_the_report() {
        let console = "boot: cores online 1 of 1\r\nboot: 1612602 PMU cycles from entry to all cores online\r\n";
        assert_eq!(super::boot_cycles(console), Some(1_612_602));
        assert_eq!(super::boot_cycles("boot: ready\n"), None);
    }
}
