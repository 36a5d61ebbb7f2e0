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

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::debian::Resolve;
use crate::guests::{self, GuestAssets};
use crate::image::{self, Variant};
use crate::qemu::{self, Gic, Machine, RunSpec};
use crate::system::{GuestChoice, Platform, System};
use crate::{Result, error, setup};

mod peers;

/// Where a benchmark's number comes from.
enum Source {
    /// The kernel alone; its console line `<prefix>N<suffix>`.
    Kernel {
        prefix: &'static str,
        suffix: &'static str,
    },
    /// `tests/qemu/bench.toml`: the `bench` service's line
    /// `<prefix>N<suffix>`.
    Service {
        prefix: &'static str,
        suffix: &'static str,
    },
    /// The same from `tests/qemu/bench-scrub.toml` (`scrub = "on-switch"`).
    ScrubService {
        prefix: &'static str,
        suffix: &'static str,
    },
    /// `tests/qemu/bench-vm.toml`: the probe guest's line `probe: bench
    /// <what> <ticks> ticks`, in counter ticks with three decimals, turned
    /// into instructions with its line `bench counter <Hz> Hz`.
    Probe { what: &'static str },
    /// `tests/qemu/bench-linux.toml` against QEMU booting the same kernel and
    /// initramfs itself: instructions to the guest's userspace marker.
    LinuxBoot(LinuxBoot),
}

/// Which Linux boot.
#[derive(Clone, Copy)]
enum LinuxBoot {
    Bulkhead,
    Direct,
}

/// One measurement.
struct Bench {
    name: &'static str,
    source: Source,
    cores: u32,
    budget: u64,
    goal: Option<u64>,
}

/// The probe guest's line with the counter's frequency.
const PROBE_COUNTER: &str = "probe: bench counter ";

/// The largest ratio of the two Linux boots, in thousandths: the goal, 1.15x.
const BOOT_RATIO_GOAL: u64 = 1150;

const BENCHES: [Bench; 10] = [
    Bench {
        name: "boot, 1 core",
        source: Source::Kernel {
            prefix: "boot: ",
            suffix: " PMU cycles from entry to all cores online",
        },
        cores: 1,
        budget: 2_000_000,
        goal: None,
    },
    Bench {
        name: "boot, 4 cores",
        source: Source::Kernel {
            prefix: "boot: ",
            suffix: " PMU cycles from entry to all cores online",
        },
        cores: 4,
        budget: 2_200_000,
        goal: None,
    },
    Bench {
        name: "null hypercall",
        source: Source::Service {
            prefix: "[bench] bench: null hypercall ",
            suffix: " instructions",
        },
        cores: 1,
        budget: 60,
        goal: Some(60),
    },
    Bench {
        name: "IPC call + reply round trip",
        source: Source::Service {
            prefix: "[bench] bench: call + reply round trip ",
            suffix: " instructions",
        },
        cores: 1,
        // 551 before the Spectre-BHB loop on every switch between partitions
        // (two switches a round trip on QEMU's Cortex-A57: 8 branches each).
        budget: 640,
        goal: Some(300),
    },
    Bench {
        name: "IPC round trip, scrub on",
        source: Source::ScrubService {
            prefix: "[bench] bench: call + reply round trip ",
            suffix: " instructions",
        },
        cores: 1,
        budget: 700_000,
        goal: None,
    },
    Bench {
        name: "guest null hypercall (HVC)",
        source: Source::Probe { what: "hvc-null" },
        cores: 1,
        budget: 40,
        goal: Some(40),
    },
    Bench {
        name: "guest MMIO read via monitor",
        source: Source::Probe { what: "mmio-read" },
        cores: 1,
        // 970 before the Spectre-BHB loop on the two switches between the
        // guest and its monitor.
        budget: 1_100,
        goal: Some(1_000),
    },
    Bench {
        name: "guest virtual timer IRQ",
        source: Source::Probe { what: "vtimer" },
        cores: 1,
        budget: 850,
        // One exception into an idle core, one state step and one guest
        // entry: it should cost well under an MMIO round trip (two exits,
        // two entries and the monitor's work).
        goal: Some(600),
    },
    Bench {
        name: "Linux boot, under Bulkhead",
        source: Source::LinuxBoot(LinuxBoot::Bulkhead),
        cores: 1,
        budget: 2_000_000_000,
        goal: None,
    },
    Bench {
        name: "Linux boot, by QEMU itself",
        source: Source::LinuxBoot(LinuxBoot::Direct),
        cores: 1,
        budget: 2_000_000_000,
        goal: None,
    },
];

/// The largest kernel image, in bytes of memory once loaded (.bss and the
/// stacks included: 512 KiB of it is the boot core's stack).
const IMAGE_BUDGET: u64 = 1_310_720;

/// The images the benchmarks boot.
struct Images {
    kernel: PathBuf,
    bench: PathBuf,
    scrub: PathBuf,
    vm: PathBuf,
    linux: PathBuf,
    /// The Linux guest's files and what they are.
    guest: GuestAssets,
}

/// Runs every benchmark (or, given an argument, those whose name contains
/// it) and prints a table.
pub(crate) fn main(args: &[String]) -> Result<ExitCode> {
    // `--peers`: the probe guest under Bulkhead and under Xen, side by side.
    if args.iter().any(|a| a == "--peers") {
        return peers::main();
    }
    if let Some(extra) = args.get(1) {
        return Err(error!(
            "`cargo xtask bench` takes at most one argument (a filter), not also `{extra}`"
        ));
    }
    let filter = args.first().map(String::as_str);
    let tools = setup::ensure(setup::Needs { uboot: false })?;
    let platform = Platform::load("qemu-virt")?;
    let variant = Variant {
        release: true,
        fault_injection: false,
    };
    let guest = guests::ensure(Resolve::Cached)?;
    let system = |name: &str| -> Result<PathBuf> {
        let choice = GuestChoice {
            kernel: Some(guest.kernel.clone()),
            initrd: Some(guest.initrd.clone()),
        };
        let path = crate::root().join(format!("tests/qemu/{name}.toml"));
        image::build_system(&tools, &System::load_with(&path, &choice)?, variant)
    };
    let images = Images {
        kernel: image::build(&tools, &platform, variant)?,
        bench: system("bench")?,
        scrub: system("bench-scrub")?,
        vm: system("bench-vm")?,
        linux: system("bench-linux")?,
        guest: guest.clone(),
    };
    let bytes = std::fs::read(&images.kernel)?;
    let loaded = bytes
        .get(16..24)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_le_bytes);
    let mut failed = 0;
    println!(
        "{:<30} {:>14} {:>14} {:>8}  result",
        "benchmark", "measured", "budget", "goal"
    );
    let over = loaded > IMAGE_BUDGET;
    failed += usize::from(over);
    println!(
        "{:<30} {loaded:>14} {IMAGE_BUDGET:>14} {:>8}  {} (bytes loaded; file {} bytes)",
        "kernel image size",
        "-",
        if over { "OVER BUDGET" } else { "ok" },
        bytes.len()
    );
    let mut boots = [0u64; 2];
    for bench in BENCHES
        .iter()
        .filter(|b| filter.is_none_or(|f| b.name.contains(f)))
    {
        let counts = [
            measure(&tools, &platform, &images, bench)?,
            measure(&tools, &platform, &images, bench)?,
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
        if let Source::LinuxBoot(which) = bench.source {
            boots[which as usize] = counts[0];
        }
        let goal = bench
            .goal
            .map_or_else(|| "-".to_string(), |g| g.to_string());
        println!(
            "{:<30} {:>14} {:>14} {goal:>8}  {verdict} (instructions)",
            bench.name, counts[0], bench.budget
        );
    }
    // The ratio's goal is its budget: Bulkhead's boot may cost at most 15%
    // more than QEMU's own. (Not when a filter left out either boot.)
    if boots.iter().all(|&b| b > 0) {
        let ratio = boots[0].saturating_mul(1000) / boots[1].max(1);
        let over = ratio > BOOT_RATIO_GOAL;
        failed += usize::from(over);
        println!(
            "{:<30} {:>14} {:>14} {:>8}  {} (Bulkhead / QEMU itself)",
            "Linux boot ratio",
            Thousandths(ratio),
            Thousandths(BOOT_RATIO_GOAL),
            Thousandths(BOOT_RATIO_GOAL),
            if over { "OVER BUDGET" } else { "ok" },
        );
    }
    println!("guest: {}", images.guest);
    println!("qemu: {}", tools.describe_qemu());
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A ratio in thousandths, shown as `1.234x`.
struct Thousandths(u64);

impl std::fmt::Display for Thousandths {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = format!("{}.{:03}x", self.0 / 1000, self.0 % 1000);
        f.pad(&text)
    }
}

/// Boots the benchmark's image once under icount and reads its number.
fn measure(
    tools: &setup::Tools,
    platform: &Platform,
    images: &Images,
    bench: &Bench,
) -> Result<u64> {
    let mut machine = Machine {
        smp: bench.cores,
        gic: Gic::V3,
        memory: "1G".into(),
        // sleep=off: idle time warps straight to the next timer event instead
        // of passing in real time, so runs repeat exactly.
        extra: vec!["-icount".into(), "shift=0,sleep=off".into()],
        ..Machine::default_for(platform)
    };
    let until = match &bench.source {
        Source::Kernel { .. } => {
            machine.kernel = Some(images.kernel.clone());
            // The boot line it reads comes before this one.
            "bulkhead: system ready".to_string()
        }
        Source::Service { .. } => {
            machine.kernel = Some(images.bench.clone());
            "[bench] bench: done".to_string()
        }
        Source::ScrubService { .. } => {
            machine.kernel = Some(images.scrub.clone());
            "[bench] bench: done".to_string()
        }
        Source::Probe { .. } => {
            machine.kernel = Some(images.vm.clone());
            "[probe] probe: bench done".to_string()
        }
        Source::LinuxBoot(LinuxBoot::Bulkhead) => {
            machine.kernel = Some(images.linux.clone());
            // The guest's console lines are its partition's.
            format!("[linux] {}", guests::MARKER)
        }
        Source::LinuxBoot(LinuxBoot::Direct) => {
            // The machine a guest of tests/qemu/bench-linux.toml sees: one
            // core, its RAM, started at EL1 with the same command line.
            machine.virtualization = false;
            machine.memory = LINUX_MEMORY.into();
            machine.kernel = Some(images.guest.kernel.clone());
            machine.append = Some(LINUX_BOOTARGS.into());
            machine.extra.extend([
                "-initrd".into(),
                images.guest.initrd.display().to_string(),
                // So that runs repeat: no random seeds in the device tree
                // QEMU writes for the guest (KASLR would move the kernel),
                // and the RTC (which the guest under Bulkhead does not have)
                // on virtual time, not the host's clock. QEMU merges the
                // second -machine into the first.
                "-machine".into(),
                "dtb-randomness=off".into(),
                "-rtc".into(),
                "base=2026-01-01T00:00:00,clock=vm".into(),
            ]);
            guests::MARKER.to_string()
        }
    };
    let spec = RunSpec {
        timeout: Some(Duration::from_secs(300)),
        until: Some(until),
        ..RunSpec::default()
    };
    let outcome = qemu::run(tools, &machine, &spec)?;
    if let Some(line) = outcome.failure() {
        return Err(error!("{}: {line}", bench.name));
    }
    let console = &outcome.console;
    let count = match &bench.source {
        Source::Kernel { prefix, suffix }
        | Source::Service { prefix, suffix }
        | Source::ScrubService { prefix, suffix } => read_count(console, prefix, suffix),
        Source::Probe { what } => probe_instructions(console, what),
        Source::LinuxBoot(_) => marker_instructions(console),
    };
    count.ok_or_else(|| {
        error!(
            "{}: its line is not on the console:\n{}",
            bench.name, outcome.console
        )
    })
}

/// The guest's RAM in `tests/qemu/bench-linux.toml`, for the direct boot.
const LINUX_MEMORY: &str = "256M";
/// Its command line there.
const LINUX_BOOTARGS: &str = "console=ttyAMA0 rdinit=/init";

/// The number N in a console line `<prefix>N<suffix>`.
fn read_count(console: &str, prefix: &str, suffix: &str) -> Option<u64> {
    console
        .lines()
        .find_map(|l| l.strip_prefix(prefix)?.split_once(suffix)?.0.parse().ok())
}

/// A fixed-point number with up to three decimals, in thousandths.
fn thousandths(text: &str) -> Option<u64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let fraction: u64 = format!("{fraction:0<3}").parse().ok()?;
    Some(whole.parse::<u64>().ok()? * 1000 + fraction)
}

/// The probe guest's measurement `what`, in instructions: under `-icount
/// shift=0` an instruction takes 1 ns, so a counter tick at `Hz` is
/// 10^9 / `Hz` of them.
fn probe_instructions(console: &str, what: &str) -> Option<u64> {
    let line = |prefix: &str| {
        console.lines().find_map(|l| {
            let at = l.find(prefix)?;
            Some(l[at + prefix.len()..].trim_end().to_string())
        })
    };
    let hz: u64 = line(PROBE_COUNTER)?.split_once(" Hz")?.0.parse().ok()?;
    let ticks = line(&format!("probe: bench {what} "))?;
    let milli = thousandths(ticks.strip_suffix(" ticks")?)?;
    // Rounded to the nearest instruction.
    (hz != 0).then(|| (milli * 1_000_000_000 / hz + 500) / 1000)
}

/// Instructions from power-on to the guest's marker, from the timestamp of
/// its line in the kernel's log (`/init` writes the marker to /dev/kmsg
/// first): the guest's virtual counter is the physical one (no offset, in
/// Bulkhead as in QEMU), which under `-icount shift=0` counts nanoseconds,
/// one per instruction, from power-on; idle time warps to the next timer
/// (`sleep=off`) and counts, in both boots alike.
fn marker_instructions(console: &str) -> Option<u64> {
    console.lines().find_map(|l| {
        let before = l
            .strip_suffix(guests::MARKER)
            .or_else(|| l.trim_end_matches('\r').strip_suffix(guests::MARKER))?;
        let stamp = before.trim_end().strip_suffix(']')?;
        let (_, seconds) = stamp.rsplit_once('[')?;
        let (whole, micros) = seconds.trim().split_once('.')?;
        if micros.len() != 6 {
            return None;
        }
        Some(whole.parse::<u64>().ok()? * 1_000_000_000 + micros.parse::<u64>().ok()? * 1000)
    })
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

    #[test]
    fn probe_ticks_become_instructions() {
        let console = "[probe] probe: bench counter 62500000 Hz, 10000 iterations\r\n\
                       [probe] probe: bench hvc-null 0.937 ticks\r\n\
                       [probe] probe: bench mmio-read 128.4 ticks\r\n";
        // 0.937 ticks of 16 instructions: 14.992.
        assert_eq!(super::probe_instructions(console, "hvc-null"), Some(15));
        assert_eq!(super::probe_instructions(console, "mmio-read"), Some(2054));
        assert_eq!(super::probe_instructions(console, "vtimer"), None);
        assert_eq!(
            super::probe_instructions("[probe] probe: bench hvc-null 1 ticks", "hvc-null"),
            None
        );
        assert_eq!(super::thousandths("1.2345"), None);
        assert_eq!(super::thousandths("12"), Some(12_000));
    }

    #[test]
    fn the_marker_timestamp_counts_nanoseconds() {
        let direct =
            "[    1.612602] bulkhead-guest: userspace up\r\nbulkhead-guest: userspace up\r\n";
        assert_eq!(super::marker_instructions(direct), Some(1_612_602_000));
        let bulkhead = "[linux] bulkhead-guest: userspace up\r\n[linux] [   12.000001] bulkhead-guest: userspace up\r\n";
        assert_eq!(super::marker_instructions(bulkhead), Some(12_000_001_000));
        assert_eq!(
            super::marker_instructions("[ 1.5] bulkhead-guest: userspace up"),
            None
        );
    }
}
