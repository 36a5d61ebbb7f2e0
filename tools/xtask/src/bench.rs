// SPDX-License-Identifier: Apache-2.0 OR MIT
//! `cargo xtask bench`: costs measured in exact instruction counts.
//!
//! Each benchmark boots a real image in QEMU with `-icount shift=0`, where
//! every instruction advances virtual time by 1 ns: the kernel's PMU cycle
//! counter then counts instructions exactly, and so does the virtual counter
//! a partition reads (one tick per 16 instructions, averaged over thousands
//! of rounds). Runs repeat bit for bit, so every benchmark runs twice:
//! different counts mean the measurement is broken, and fail. A count over
//! its budget fails too; the budget is a ceiling against regressions, the
//! goal (where there is one) what we are working towards. Wall-clock time is
//! never measured.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use crate::image::{self, Variant};
use crate::qemu::{self, Gic, Machine, RunSpec};
use crate::system::{Platform, System};
use crate::{Result, error, setup};

/// One measurement.
struct Bench {
    name: &'static str,
    /// `None`: the kernel alone; else a system in `tests/qemu/`.
    system: Option<&'static str>,
    cores: u32,
    /// The console line's prefix, up to the number.
    prefix: &'static str,
    /// What the console line says after the number.
    suffix: &'static str,
    budget: u64,
    goal: Option<u64>,
}

const BENCHES: [Bench; 4] = [
    Bench {
        name: "boot, 1 core",
        system: None,
        cores: 1,
        prefix: "boot: ",
        suffix: " PMU cycles from entry to all cores online",
        budget: 2_000_000,
        goal: None,
    },
    Bench {
        name: "boot, 4 cores",
        system: None,
        cores: 4,
        prefix: "boot: ",
        suffix: " PMU cycles from entry to all cores online",
        budget: 2_200_000,
        goal: None,
    },
    Bench {
        name: "null hypercall",
        system: Some("bench"),
        cores: 1,
        prefix: "[bench] bench: null hypercall ",
        suffix: " instructions",
        budget: 60,
        goal: Some(60),
    },
    Bench {
        name: "IPC call + reply round trip",
        system: Some("bench"),
        cores: 1,
        prefix: "[bench] bench: call + reply round trip ",
        suffix: " instructions",
        budget: 560,
        goal: Some(300),
    },
];

/// The largest kernel image, in bytes of memory once loaded (.bss and the
/// stacks included: 512 KiB of it is the boot core's stack).
const IMAGE_BUDGET: u64 = 1_310_720;

/// Runs every benchmark and prints a table.
pub(crate) fn main(args: &[String]) -> Result<ExitCode> {
    if let Some(extra) = args.first() {
        return Err(error!(
            "`cargo xtask bench` takes no arguments, not `{extra}`"
        ));
    }
    let tools = setup::ensure(setup::Needs { uboot: false })?;
    let platform = Platform::load("qemu-virt")?;
    let variant = Variant {
        release: true,
        fault_injection: false,
    };
    let kernel = image::build(&tools, &platform, variant)?;
    let bytes = std::fs::read(&kernel)?;
    let loaded = bytes
        .get(16..24)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_le_bytes);
    let mut failed = 0;
    println!(
        "{:<30} {:>10} {:>10} {:>8}  result",
        "benchmark", "measured", "budget", "goal"
    );
    let over = loaded > IMAGE_BUDGET;
    failed += usize::from(over);
    println!(
        "{:<30} {loaded:>10} {IMAGE_BUDGET:>10} {:>8}  {} (bytes loaded; file {} bytes)",
        "kernel image size",
        "-",
        if over { "OVER BUDGET" } else { "ok" },
        bytes.len()
    );
    let bench_image = {
        let system = System::load(&crate::root().join("tests/qemu/bench.toml"))?;
        image::build_system(&tools, &system, variant)?
    };
    for bench in &BENCHES {
        let image = if bench.system.is_some() {
            bench_image.clone()
        } else {
            kernel.clone()
        };
        let counts = [
            measure(&tools, &platform, &image, bench)?,
            measure(&tools, &platform, &image, bench)?,
        ];
        let verdict = if counts[0] != counts[1] {
            failed += 1;
            format!("NOT REPEATABLE ({} then {})", counts[0], counts[1])
        } else if counts[0] > bench.budget {
            failed += 1;
            "OVER BUDGET".to_string()
        } else {
            "ok".to_string()
        };
        let goal = bench
            .goal
            .map_or_else(|| "-".to_string(), |g| g.to_string());
        println!(
            "{:<30} {:>10} {:>10} {goal:>8}  {verdict} (instructions)",
            bench.name, counts[0], bench.budget
        );
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Boots `image` once under icount and reads the benchmark's number.
fn measure(tools: &setup::Tools, platform: &Platform, image: &Path, bench: &Bench) -> Result<u64> {
    let machine = Machine {
        kernel: Some(image.to_path_buf()),
        smp: bench.cores,
        gic: Gic::V3,
        memory: "1G".into(),
        // sleep=off: idle time warps straight to the next timer event instead
        // of passing in real time, so runs repeat exactly.
        extra: vec!["-icount".into(), "shift=0,sleep=off".into()],
        ..Machine::default_for(platform)
    };
    // The line is complete once its suffix has been printed.
    let until = match bench.system {
        Some(_) => "bench: done".to_string(),
        None => bench.suffix.to_string(),
    };
    let spec = RunSpec {
        timeout: Some(Duration::from_secs(120)),
        until: Some(until),
        ..RunSpec::default()
    };
    let outcome = qemu::run(tools, &machine, &spec)?;
    if let Some(line) = outcome.failure() {
        return Err(error!("{}: {line}", bench.name));
    }
    read_count(&outcome.console, bench.prefix, bench.suffix).ok_or_else(|| {
        error!(
            "{}: no `{}N{}` line on the console",
            bench.name, bench.prefix, bench.suffix
        )
    })
}

/// The number N in a console line `<prefix>N<suffix>`.
fn read_count(console: &str, prefix: &str, suffix: &str) -> Option<u64> {
    console
        .lines()
        .find_map(|l| l.strip_prefix(prefix)?.split_once(suffix)?.0.parse().ok())
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_are_read_from_the_console() {
        let console = "boot: cores online 1 of 1\r\nboot: 1612602 PMU cycles from entry to all cores online\r\n\
                       [bench] bench: null hypercall 27 instructions\r\n";
        assert_eq!(
            super::read_count(console, "boot: ", " PMU cycles from entry"),
            Some(1_612_602)
        );
        assert_eq!(
            super::read_count(console, "[bench] bench: null hypercall ", " instructions"),
            Some(27)
        );
        assert_eq!(super::read_count("boot: ready\n", "boot: ", " PMU"), None);
    }
}
