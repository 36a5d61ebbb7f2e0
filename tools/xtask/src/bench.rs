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

mod baseline;
mod lines;

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Duration;

use baseline::{Figure, Figures, Versions};

use crate::args::{self, Long, Value};
use crate::debian::Resolve;
use crate::guests::{self, GuestAssets};
use crate::image::{self, Variant};
use crate::qemu::{self, Gic, Machine, RunSpec};
use crate::setup::Toolchain;
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
    /// `tests/qemu/<system>.toml`: the `bench` service's line
    /// `[bench] bench: <what> N instructions`.
    Service {
        system: BenchSystem,
        what: &'static str,
    },
    /// The same, on QEMU's `cpu` instead of the platform's.
    ServiceOn {
        system: BenchSystem,
        what: &'static str,
        cpu: &'static str,
    },
    /// The same system on a `lock-count` kernel: the `bench` service's line
    /// `[bench] bench: shared locks per <what> N.NNN`, in thousandths (never
    /// an instruction count: that kernel's are not the kernel's).
    SharedLocks {
        system: BenchSystem,
        what: &'static str,
    },
    /// `tests/qemu/bench-vm.toml`: the probe guest's line `probe: bench
    /// <what> <ticks> ticks`, in counter ticks with three decimals, turned
    /// into instructions with its line `bench counter <Hz> Hz`.
    Probe { what: &'static str },
    /// `tests/qemu/bench-linux.toml` against QEMU booting the same kernel and
    /// initramfs itself: instructions to the guest's userspace marker.
    LinuxBoot(LinuxBoot),
}

/// The systems the `bench` service runs in (`tests/qemu/<name>.toml`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum BenchSystem {
    /// `bench`: the null hypercall, the IPC round trip and a notification
    /// wake-up on one core.
    Bench,
    /// `bench-scrub`: the same with every switch scrubbed.
    Scrub,
    /// `bench-cross`: a notification wake-up and an IPC round trip across
    /// two cores.
    Cross,
    /// `bench-irq`: a device interrupt delivered to its driver.
    Irq,
    /// `bench-fault`: a fault reaching its health monitor.
    Fault,
    /// `bench-windows`: a time window's switch and lateness (the `bench`
    /// partition runs `tests/partitions/worker` there, which prints the
    /// same kind of lines).
    Windows,
}

impl BenchSystem {
    const ALL: [Self; 6] = [
        Self::Bench,
        Self::Scrub,
        Self::Cross,
        Self::Irq,
        Self::Fault,
        Self::Windows,
    ];

    /// Its manifest's name under `tests/qemu/`.
    const fn name(self) -> &'static str {
        match self {
            Self::Bench => "bench",
            Self::Scrub => "bench-scrub",
            Self::Cross => "bench-cross",
            Self::Irq => "bench-irq",
            Self::Fault => "bench-fault",
            Self::Windows => "bench-windows",
        }
    }
}

/// Which Linux boot.
#[derive(Clone, Copy)]
enum LinuxBoot {
    Bulkhead,
    Direct,
}

/// One measurement.
struct Bench {
    /// Its figure's stable key (in the JSON and the baseline).
    key: &'static str,
    name: &'static str,
    source: Source,
    cores: u32,
    /// In [`Bench::unit`]s.
    budget: u64,
    goal: Option<u64>,
}

impl Bench {
    /// What its count is in: instructions, or shared locks in thousandths.
    fn unit(&self) -> &'static str {
        match self.source {
            Source::SharedLocks { .. } => "locks",
            _ => "instructions",
        }
    }
}

/// The probe guest's line with the counter's frequency.
const PROBE_COUNTER: &str = "probe: bench counter ";

/// The largest ratio of the two Linux boots, in thousandths: the goal, 1.15x.
const BOOT_RATIO_GOAL: u64 = 1150;

const BENCHES: [Bench; 27] = [
    Bench {
        key: "boot-1-core",
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
        key: "boot-4-cores",
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
        key: "null-hypercall",
        name: "null hypercall",
        source: Source::Service {
            system: BenchSystem::Bench,
            what: "null hypercall",
        },
        cores: 1,
        budget: 60,
        goal: Some(60),
    },
    Bench {
        key: "ipc-round-trip",
        name: "IPC round trip, 1 word",
        source: Source::Service {
            system: BenchSystem::Bench,
            what: "call + reply round trip",
        },
        cores: 1,
        // 551 before the Spectre-BHB loop on every switch between partitions
        // (two switches a round trip on QEMU's Cortex-A57: 8 branches each);
        // 622 before lock domains, whose per-core lookup of the domain's
        // state costs 14 a direction; 656 before the IPC entry of its own.
        budget: 620,
        // The goals are for no word and for four (below): seL4's.
        goal: None,
    },
    Bench {
        key: "ipc-round-trip-empty",
        name: "IPC round trip, empty",
        source: Source::Service {
            system: BenchSystem::Bench,
            what: "call + reply round trip, empty",
        },
        cores: 1,
        budget: 620,
        goal: Some(300),
    },
    Bench {
        key: "ipc-round-trip-4-words",
        name: "IPC round trip, 4 words",
        source: Source::Service {
            system: BenchSystem::Bench,
            what: "call + reply round trip, 4 words",
        },
        cores: 1,
        budget: 620,
        goal: Some(340),
    },
    Bench {
        key: "ipc-round-trip-a53",
        name: "IPC round trip, 1 word, A53",
        // The same image on a core that needs no branch-history loop
        // (nor any other switch barrier): what the round trip costs
        // without the Spectre-BHB mitigation, as seL4's 440 (which runs
        // none) was measured.
        source: Source::ServiceOn {
            system: BenchSystem::Bench,
            what: "call + reply round trip",
            cpu: "cortex-a53",
        },
        cores: 1,
        budget: 570,
        goal: None,
    },
    Bench {
        key: "ipc-round-trip-empty-a53",
        name: "IPC round trip, empty, A53",
        // seL4's 440 in the same QEMU.
        source: Source::ServiceOn {
            system: BenchSystem::Bench,
            what: "call + reply round trip, empty",
            cpu: "cortex-a53",
        },
        cores: 1,
        budget: 570,
        goal: Some(300),
    },
    Bench {
        key: "ipc-round-trip-4-words-a53",
        name: "IPC round trip, 4 words, A53",
        // seL4's 488 in the same QEMU.
        source: Source::ServiceOn {
            system: BenchSystem::Bench,
            what: "call + reply round trip, 4 words",
            cpu: "cortex-a53",
        },
        cores: 1,
        budget: 570,
        goal: Some(340),
    },
    Bench {
        key: "ipc-round-trip-scrub",
        name: "IPC round trip, scrub on",
        source: Source::Service {
            system: BenchSystem::Scrub,
            what: "call + reply round trip",
        },
        cores: 1,
        budget: 700_000,
        goal: None,
    },
    Bench {
        key: "notify-wake",
        name: "notification wake-up, 1 core",
        source: Source::Service {
            system: BenchSystem::Bench,
            what: "signal + wait wake-up",
        },
        cores: 1,
        // Half a signal/wait ping-pong between two partitions on core 0:
        // a `Signal`, a `Wait` that blocks and the switch to the woken.
        budget: 1_100,
        goal: None,
    },
    Bench {
        key: "notify-wake-cross",
        name: "notification wake-up, 2 cores",
        source: Source::Service {
            system: BenchSystem::Cross,
            what: "signal + wait wake-up",
        },
        cores: 2,
        // The same with the partner on core 1: every instruction of both
        // cores (QEMU runs them in turn under icount), SGI and idle included;
        // rounds that stall until a timer tick are left out (and counted).
        budget: 1_400,
        goal: None,
    },
    Bench {
        key: "ipc-round-trip-cross",
        name: "IPC round trip, 2 cores",
        source: Source::Service {
            system: BenchSystem::Cross,
            what: "call + reply round trip",
        },
        cores: 2,
        // The server on core 1: every instruction of both cores (QEMU runs
        // them in turn under icount), the general path both ways, two SGIs
        // and two wake-ups from idle; rounds that stall until a timer tick
        // are left out (and counted).
        budget: 3_000,
        goal: None,
    },
    Bench {
        key: "fault-to-monitor",
        name: "fault to health monitor",
        source: Source::Service {
            system: BenchSystem::Fault,
            what: "fault to health monitor",
        },
        cores: 1,
        // From the faulting partition's last counter read to its monitor's
        // first instruction after `Wait` returns: the data abort, the
        // kernel's two report lines (to the UART: this system has no
        // kernel-log reader), the stop, the fault signal and the switch.
        budget: 30_000,
        goal: None,
    },
    Bench {
        key: "device-irq",
        name: "device interrupt to driver",
        source: Source::Service {
            system: BenchSystem::Irq,
            what: "device interrupt",
        },
        cores: 1,
        // A full driver loop on a level interrupt that stays raised: `IrqAck`,
        // the interrupt taken and its bit set, `Wait` collecting it.
        budget: 1_350,
        goal: None,
    },
    Bench {
        key: "shared-locks-ipc",
        name: "shared locks, IPC round trip",
        source: Source::SharedLocks {
            system: BenchSystem::Bench,
            what: "call + reply round trip",
        },
        // Four cores, the pair pinned to core 0 and the others idle: the
        // pair is a lock domain of its own, so its lock is no other core's.
        cores: 4,
        // 2.000 (the fast path took the kernel-wide lock once per call and
        // once per reply) until lock domains.
        budget: 2_000,
        goal: Some(0),
    },
    Bench {
        key: "shared-locks-notify",
        name: "shared locks, wake-up",
        source: Source::SharedLocks {
            system: BenchSystem::Bench,
            what: "signal + wait wake-up",
        },
        cores: 4,
        // 4.000 until lock domains: `Signal` and `Wait` each took the
        // kernel-wide lock twice (the fast path's, which declines, then the
        // general path's).
        budget: 4_000,
        goal: Some(0),
    },
    Bench {
        key: "shared-locks-notify-cross",
        name: "shared locks, wake-up, 2 cores",
        source: Source::SharedLocks {
            system: BenchSystem::Cross,
            what: "signal + wait wake-up",
        },
        cores: 2,
        // The pair spans two cores, so its lock domain does too, and every
        // acquisition counts: the figure that shows the count counts
        // (`Signal` and `Wait` each take their domain's lock twice: the fast
        // path's, which declines, then the general path's).
        budget: 4_000,
        goal: None,
    },
    Bench {
        key: "shared-locks-ipc-cross",
        name: "shared locks, IPC, 2 cores",
        source: Source::SharedLocks {
            system: BenchSystem::Cross,
            what: "call + reply round trip",
        },
        cores: 2,
        // The pair spans two cores, so its lock is shared; the measuring
        // core takes it three times a round trip: the call's fast path
        // (which declines: the server is on the other core), its general
        // path, and the reschedule when the reply's kick arrives.
        budget: 6_000,
        goal: None,
    },
    Bench {
        key: "shared-locks-irq",
        name: "shared locks, device interrupt",
        source: Source::SharedLocks {
            system: BenchSystem::Irq,
            what: "device interrupt",
        },
        cores: 4,
        // 5.000 until lock domains: `IrqAck` and `Wait` twice each, the
        // interrupt once.
        budget: 5_000,
        goal: Some(0),
    },
    Bench {
        key: "window-switch",
        name: "window switch",
        source: Source::Service {
            system: BenchSystem::Windows,
            what: "window switch",
        },
        cores: 1,
        // From the previous window's last instruction (the boundary's timer
        // interrupt follows it) to the next window's partition's first, on
        // average over 1,000 frames of two 500 us windows on one core.
        budget: 2_000,
        goal: Some(1_000),
    },
    Bench {
        key: "window-lateness",
        name: "window lateness, worst",
        source: Source::Service {
            system: BenchSystem::Windows,
            what: "window lateness",
        },
        cores: 1,
        // The latest any of those 1,000 windows started after its nominal
        // boundary; issue 11 asks for at most 2,000, so that is the budget
        // (and `tests/qemu/bench-windows.expect` the test that holds it).
        budget: crate::test::LATENESS_LIMIT,
        goal: Some(crate::test::LATENESS_LIMIT),
    },
    Bench {
        key: "guest-hvc-null",
        name: "guest null hypercall (HVC)",
        source: Source::Probe { what: "hvc-null" },
        cores: 1,
        budget: 40,
        goal: Some(40),
    },
    Bench {
        key: "guest-mmio-read",
        name: "guest MMIO read via monitor",
        source: Source::Probe { what: "mmio-read" },
        cores: 1,
        // 970 before the Spectre-BHB loop on the two switches between the
        // guest and its monitor; 1,049 before lock domains (each of the
        // round trip's seven acquisitions of the domain's lock looks up the
        // core's domain: 14 instructions).
        budget: 1_160,
        goal: Some(1_000),
    },
    Bench {
        key: "guest-vtimer-irq",
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
        key: "linux-boot-bulkhead",
        name: "Linux boot, under Bulkhead",
        source: Source::LinuxBoot(LinuxBoot::Bulkhead),
        cores: 1,
        budget: 2_000_000_000,
        goal: None,
    },
    Bench {
        key: "linux-boot-qemu",
        name: "Linux boot, by QEMU itself",
        source: Source::LinuxBoot(LinuxBoot::Direct),
        cores: 1,
        budget: 2_000_000_000,
        goal: None,
    },
];

/// The systems also booted on a `lock-count` kernel, for the shared-lock
/// figures.
const COUNTED: [BenchSystem; 3] = [BenchSystem::Bench, BenchSystem::Cross, BenchSystem::Irq];

/// The image of `system` among `images`, built for `systems` in that order.
fn service_image(
    images: &[PathBuf],
    systems: impl IntoIterator<Item = BenchSystem>,
    system: BenchSystem,
) -> Result<PathBuf> {
    systems
        .into_iter()
        .zip(images)
        .find(|(s, _)| *s == system)
        .map(|(_, image)| image.clone())
        .ok_or_else(|| error!("no image of tests/qemu/{}.toml was built", system.name()))
}

/// The largest kernel image, in bytes of memory once loaded (.bss and the
/// stacks included: 512 KiB of it is the boot core's stack). 1.25 MiB
/// until lock domains (their computation, and a second copy of boot's
/// vCPU placement, took 16 KiB more); 1,327,104 until fault signals (each
/// lock domain's state holds their table, and .bss crossed a page);
/// 1,331,200 until the kernel ran schedules and budgets (issue 11: the
/// manifest's schedule table and its checks already took the image to
/// 1,335,296; windows, budgets and their timer took it to 1,343,488, some
/// 10 KiB of code and 2 KiB of tables in every lock domain's state; a page
/// of room is left).
const IMAGE_BUDGET: u64 = 1_351_680;

/// The most lines of code the kernel may have ([`lines`]' rule): 13,948
/// when first counted, virtual machines included; 15,000 until the kernel
/// ran schedules and budgets (issue 11: 14,844 with the manifest's schedule
/// table, 15,599 with `hv-core`'s `state/timing.rs` and its glue).
const LINES_BUDGET: u64 = 16_000;
/// What it should come down to (issue 10's goal: at most 10,000 with
/// virtual machines included).
const LINES_GOAL: u64 = 10_000;

/// The images the benchmarks boot.
struct Images {
    kernel: PathBuf,
    /// The `bench` service's systems, by [`BenchSystem::ALL`]'s order.
    services: Vec<PathBuf>,
    /// The same on a `lock-count` kernel.
    counting: Vec<PathBuf>,
    vm: PathBuf,
    linux: PathBuf,
    /// The Linux guest's files and what they are.
    guest: GuestAssets,
}

/// What `cargo xtask bench` was asked to do.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Options {
    /// Only the benchmarks whose name contains this.
    filter: Option<String>,
    /// `--check`: compare the figures with the baseline.
    check: bool,
    /// `--update-baseline`: write them into the baseline.
    update: bool,
    /// `--peers`: the probe guest under Bulkhead and under Xen, side by
    /// side ([`peers`]), instead.
    peers: bool,
}

/// `cargo xtask bench [FILTER] [--check] [--update-baseline] [--peers]`.
pub(crate) fn parse<A: AsRef<OsStr>>(args: &[A]) -> Result<Options> {
    args::parse_for("bench", args, |parser| {
        let mut options = Options::default();
        while let Some(arg) = parser.next()? {
            match arg {
                Long("check") => options.check = true,
                Long("update-baseline") => options.update = true,
                Long("peers") => options.peers = true,
                Value(filter) => {
                    let filter = args::text(filter)?;
                    if let Some(first) = &options.filter {
                        return Err(args::bad(format!(
                            "takes at most one filter, not `{first}` and `{filter}`"
                        )));
                    }
                    options.filter = Some(filter);
                }
                other => return Err(other.unexpected()),
            }
        }
        Ok(options)
    })
}

/// Runs every benchmark (or, given a filter, those whose name contains it),
/// prints a table, writes the figures to [`baseline::FIGURES`] and, if
/// asked, checks them against the baseline or updates it.
pub(crate) fn main(options: &Options) -> Result<ExitCode> {
    if options.peers {
        return peers::main();
    }
    let tools = setup::ensure(setup::Needs { uboot: false })?;
    let run = run(&tools, options.filter.as_deref(), true)?;
    let mut failed = run.failures.len();
    if options.check {
        let base = Figures::read(&baseline::baseline_path())?;
        let report = baseline::check(&base.figures, &run.figures, options.filter.is_none());
        println!("\nagainst the baseline ({}):", baseline::BASELINE);
        for line in &report.lines {
            println!("  {line}");
        }
        println!(
            "{} figures compared, {} skipped (measured with other versions), {} grew more than {}%",
            report.compared,
            report.skipped,
            report.failures.len(),
            baseline::TOLERANCE_PERCENT
        );
        failed += report.failures.len();
    }
    if options.update {
        if !run.failures.is_empty() {
            return Err(error!(
                "the baseline is left as it was: {}",
                run.failures.join("; ")
            ));
        }
        let path = baseline::baseline_path();
        let base = if path.exists() {
            Figures::read(&path)?
        } else {
            Figures::new(Vec::new())
        };
        base.updated_with(&run.figures).write(&path)?;
        println!(
            "baseline: {} figures written to {}",
            run.figures.len(),
            baseline::BASELINE
        );
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `cargo xtask test`'s `bench::check`: every figure measured (twice, alike,
/// within budget) and none more than 2% over the baseline. The table and the
/// comparison are the failure's text; the note says what was compared.
pub(crate) fn check_test(tools: &setup::Tools) -> std::result::Result<String, String> {
    let run = run(tools, None, false).map_err(|e| e.to_string())?;
    let base = Figures::read(&baseline::baseline_path()).map_err(|e| e.to_string())?;
    let report = baseline::check(&base.figures, &run.figures, true);
    if run.failures.is_empty() && report.failures.is_empty() {
        let skipped: Vec<&String> = report
            .lines
            .iter()
            .filter(|l| l.contains(": skipped") || l.contains("not in the baseline"))
            .collect();
        let mut note = format!(
            "{} figures within {}% of {}",
            report.compared,
            baseline::TOLERANCE_PERCENT,
            baseline::BASELINE
        );
        for line in skipped {
            note.push_str("; ");
            note.push_str(line);
        }
        Ok(note)
    } else {
        let mut why = run.table.join("\n");
        why.push_str("\n\n");
        why.push_str(&report.lines.join("\n"));
        for failure in run.failures.iter().chain(&report.failures) {
            why.push_str("\nFAILED: ");
            why.push_str(failure);
        }
        Err(why)
    }
}

/// What a run measured.
struct Run {
    /// Every figure, in the table's order.
    figures: Vec<Figure>,
    /// Each benchmark that did not repeat or went over its budget.
    failures: Vec<String>,
    /// The table's lines.
    table: Vec<String>,
}

/// `rustc -V` of the toolchain that builds the kernel.
fn compiler_version(tools: &setup::Tools) -> Result<String> {
    let mut rustc = match tools.toolchain {
        Toolchain::Rustup => Command::new("rustc"),
        Toolchain::Debian { .. } => Command::new("/usr/bin/rustc"),
    };
    let out = rustc
        .arg("-V")
        .current_dir(crate::root())
        .output()
        .map_err(|e| error!("cannot run rustc -V: {e}"))?;
    if !out.status.success() {
        return Err(error!("rustc -V failed"));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Measures the figures (the benchmarks whose name contains `filter`, the
/// kernel's size always), printing the table as it goes if `echo`, and
/// writes them to [`baseline::FIGURES`].
fn run(tools: &setup::Tools, filter: Option<&str>, echo: bool) -> Result<Run> {
    let platform = Platform::load("qemu-virt")?;
    let variant = Variant::plain(true);
    let guest = guests::ensure(Resolve::Cached)?;
    let built = |name: &str, variant: Variant| -> Result<PathBuf> {
        let choice = GuestChoice {
            kernel: Some(guest.kernel.clone()),
            initrd: Some(guest.initrd.clone()),
        };
        let path = crate::root().join(format!("tests/qemu/{name}.toml"));
        image::build_system(tools, &System::load_with(&path, &choice)?, variant)
    };
    let system = |name: &str| built(name, variant);
    // The shared-lock counts come from the same systems on a kernel that
    // counts them; its instruction counts are never used.
    let counting = Variant {
        lock_count: true,
        ..variant
    };
    let images = Images {
        kernel: image::build(tools, &platform, variant)?,
        services: BenchSystem::ALL
            .iter()
            .map(|s| system(s.name()))
            .collect::<Result<_>>()?,
        counting: COUNTED
            .iter()
            .map(|s| built(s.name(), counting))
            .collect::<Result<_>>()?,
        vm: system("bench-vm")?,
        linux: system("bench-linux")?,
        guest: guest.clone(),
    };
    let versions = |which: &[&str]| -> Result<Versions> {
        let mut versions = Versions::new();
        for &what in which {
            let version = match what {
                "rustc" => compiler_version(tools)?,
                "qemu" => tools.describe_qemu(),
                _ => images.guest.to_string(),
            };
            versions.insert(what.to_string(), version);
        }
        Ok(versions)
    };
    let mut run = Run {
        figures: Vec::new(),
        failures: Vec::new(),
        table: Vec::new(),
    };
    let row = |run: &mut Run, line: String| {
        if echo {
            println!("{line}");
        }
        run.table.push(line);
    };
    row(
        &mut run,
        format!(
            "{:<30} {:>14} {:>14} {:>8}  result",
            "benchmark", "measured", "budget", "goal"
        ),
    );
    let bytes = std::fs::read(&images.kernel)?;
    let loaded = bytes
        .get(16..24)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_le_bytes);
    let lines = lines::count_tree(&crate::root())?;
    for (key, name, count, budget, goal, unit, note, depends) in [
        (
            "kernel-image-bytes",
            "kernel image size",
            loaded,
            IMAGE_BUDGET,
            None,
            "bytes",
            format!("bytes loaded; file {} bytes", bytes.len()),
            &["rustc"][..],
        ),
        (
            "kernel-lines",
            "kernel lines of code",
            lines,
            LINES_BUDGET,
            Some(LINES_GOAL),
            "lines",
            "lines of .rs and .S in kernel/ and platforms/, tests left out".to_string(),
            &[][..],
        ),
    ] {
        let over = count > budget;
        if over {
            run.failures.push(format!(
                "{key} ({name}): {count} {unit}, over its budget of {budget}"
            ));
        }
        let goal_text = goal.map_or_else(|| "-".to_string(), |g: u64| g.to_string());
        row(
            &mut run,
            format!(
                "{name:<30} {count:>14} {budget:>14} {goal_text:>8}  {} ({note})",
                if over { "OVER BUDGET" } else { "ok" },
            ),
        );
        run.figures.push(Figure {
            key: key.into(),
            name: name.into(),
            count,
            unit: unit.into(),
            budget,
            goal,
            versions: versions(depends)?,
        });
    }
    let mut boots = [0u64; 2];
    for bench in BENCHES
        .iter()
        .filter(|b| filter.is_none_or(|f| b.name.contains(f)))
    {
        let counts = [
            measure(tools, &platform, &images, bench)?,
            measure(tools, &platform, &images, bench)?,
        ];
        let unit = bench.unit();
        let shown = |count: u64| InUnit(count, unit).to_string();
        let verdict = if counts[0] != counts[1] {
            run.failures.push(format!(
                "{} ({}): not repeatable, {} then {}",
                bench.key,
                bench.name,
                shown(counts[0]),
                shown(counts[1])
            ));
            format!(
                "NOT REPEATABLE ({} then {})",
                shown(counts[0]),
                shown(counts[1])
            )
        } else if counts[0] > bench.budget {
            run.failures.push(format!(
                "{} ({}): {} {unit}, over its budget of {}",
                bench.key,
                bench.name,
                shown(counts[0]),
                shown(bench.budget)
            ));
            "OVER BUDGET".to_string()
        } else {
            "ok".to_string()
        };
        if let Source::LinuxBoot(which) = bench.source {
            boots[which as usize] = counts[0];
        }
        let goal = bench.goal.map_or_else(|| "-".to_string(), shown);
        let what = match bench.source {
            Source::SharedLocks { .. } => "shared locks per operation, on a lock-count kernel",
            _ => "instructions",
        };
        row(
            &mut run,
            format!(
                "{:<30} {:>14} {:>14} {goal:>8}  {verdict} ({what})",
                bench.name,
                shown(counts[0]),
                shown(bench.budget)
            ),
        );
        // QEMU booting Linux itself runs none of Bulkhead's code.
        let depends: &[&str] = match bench.source {
            Source::LinuxBoot(LinuxBoot::Direct) => &["qemu", "guest"],
            Source::LinuxBoot(LinuxBoot::Bulkhead) => &["rustc", "qemu", "guest"],
            _ => &["rustc", "qemu"],
        };
        run.figures.push(Figure {
            key: bench.key.into(),
            name: bench.name.into(),
            count: counts[0],
            unit: unit.into(),
            budget: bench.budget,
            goal: bench.goal,
            versions: versions(depends)?,
        });
    }
    // The ratio's goal is its budget: Bulkhead's boot may cost at most 15%
    // more than QEMU's own. (Not when a filter left out either boot.)
    if boots.iter().all(|&b| b > 0) {
        let ratio = boots[0].saturating_mul(1000) / boots[1].max(1);
        let over = ratio > BOOT_RATIO_GOAL;
        if over {
            run.failures.push(format!(
                "linux-boot-ratio: {}, over its budget of {}",
                Thousandths(ratio),
                Thousandths(BOOT_RATIO_GOAL)
            ));
        }
        row(
            &mut run,
            format!(
                "{:<30} {:>14} {:>14} {:>8}  {} (Bulkhead / QEMU itself)",
                "Linux boot ratio",
                Thousandths(ratio),
                Thousandths(BOOT_RATIO_GOAL),
                Thousandths(BOOT_RATIO_GOAL),
                if over { "OVER BUDGET" } else { "ok" },
            ),
        );
        run.figures.push(Figure {
            key: "linux-boot-ratio".into(),
            name: "Linux boot ratio".into(),
            count: ratio,
            unit: "thousandths".into(),
            budget: BOOT_RATIO_GOAL,
            goal: Some(BOOT_RATIO_GOAL),
            versions: versions(&["rustc", "qemu", "guest"])?,
        });
    }
    row(&mut run, format!("rustc: {}", compiler_version(tools)?));
    row(&mut run, format!("guest: {}", images.guest));
    row(&mut run, format!("qemu: {}", tools.describe_qemu()));
    Figures::new(run.figures.clone()).write(&baseline::figures_path())?;
    row(&mut run, format!("figures: {}", baseline::FIGURES));
    Ok(run)
}

/// A ratio in thousandths, shown as `1.234x`.
struct Thousandths(u64);

impl std::fmt::Display for Thousandths {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = format!("{}.{:03}x", self.0 / 1000, self.0 % 1000);
        f.pad(&text)
    }
}

/// A count in its unit as the table shows it: shared locks (counted in
/// thousandths) with three decimals, anything else as it is.
struct InUnit(u64, &'static str);

impl std::fmt::Display for InUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = if self.1 == "locks" {
            format!("{}.{:03}", self.0 / 1000, self.0 % 1000)
        } else {
            self.0.to_string()
        };
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
        Source::Service { system, .. } => {
            machine.kernel = Some(service_image(&images.services, BenchSystem::ALL, *system)?);
            "[bench] bench: done".to_string()
        }
        Source::ServiceOn { system, cpu, .. } => {
            machine.kernel = Some(service_image(&images.services, BenchSystem::ALL, *system)?);
            machine.cpu = Some(cpu);
            "[bench] bench: done".to_string()
        }
        Source::SharedLocks { system, .. } => {
            machine.kernel = Some(service_image(&images.counting, COUNTED, *system)?);
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
        Source::Kernel { prefix, suffix } => read_count(console, prefix, suffix),
        Source::Service { what, .. } | Source::ServiceOn { what, .. } => {
            read_count(console, &format!("[bench] bench: {what} "), " instructions")
        }
        Source::SharedLocks { what, .. } => read_locks(console, what),
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

/// The `bench` service's shared locks per `what`, in thousandths, from its
/// line `[bench] bench: shared locks per <what> N.NNN`.
fn read_locks(console: &str, what: &str) -> Option<u64> {
    let prefix = format!("[bench] bench: shared locks per {what} ");
    console
        .lines()
        .find_map(|l| thousandths(l.strip_prefix(prefix.as_str())?.trim_end()))
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
    fn options_are_parsed() {
        use super::parse;
        let error = |args: &[&str]| parse(args).unwrap_err().to_string();
        assert_eq!(parse::<&str>(&[]).unwrap(), super::Options::default());
        let options = parse(&["--check", "IPC", "--update-baseline"]).unwrap();
        assert_eq!(options.filter.as_deref(), Some("IPC"));
        assert!(options.check && options.update && !options.peers);
        assert!(parse(&["--peers"]).unwrap().peers);
        assert_eq!(
            parse(&["virtual timer"]).unwrap().filter.as_deref(),
            Some("virtual timer")
        );
        assert_eq!(
            error(&["--chek"]),
            "cargo xtask bench: unknown option `--chek`; try `cargo xtask help`"
        );
        assert_eq!(
            error(&["-c"]),
            "cargo xtask bench: unknown option `-c`; try `cargo xtask help`"
        );
        assert_eq!(
            error(&["--check=yes"]),
            "cargo xtask bench: --check takes no value, not `yes`; try `cargo xtask help`"
        );
        assert_eq!(
            error(&["IPC", "boot"]),
            "cargo xtask bench: takes at most one filter, not `IPC` and `boot`"
        );
    }

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
    fn shared_locks_are_read_in_thousandths() {
        let console = "[bench] bench: call + reply round trip 622 instructions\r\n\
                       [bench] bench: shared locks per call + reply round trip 2.000\r\n\
                       [bench] bench: shared locks per device interrupt 4.5\r\n";
        assert_eq!(
            super::read_locks(console, "call + reply round trip"),
            Some(2000)
        );
        assert_eq!(super::read_locks(console, "device interrupt"), Some(4500));
        assert_eq!(super::read_locks(console, "signal + wait wake-up"), None);
        assert_eq!(
            super::read_count(
                console,
                "[bench] bench: call + reply round trip ",
                " instructions"
            ),
            Some(622)
        );
        assert_eq!(super::InUnit(2000, "locks").to_string(), "2.000");
        assert_eq!(format!("{:>6}", super::InUnit(12, "locks")), " 0.012");
        assert_eq!(super::InUnit(622, "instructions").to_string(), "622");
    }

    #[test]
    fn every_bench_system_has_its_image() {
        use super::{BenchSystem, COUNTED, service_image};
        let images: Vec<std::path::PathBuf> = BenchSystem::ALL
            .iter()
            .map(|s| std::path::PathBuf::from(s.name()))
            .collect();
        for system in BenchSystem::ALL {
            let image = service_image(&images, BenchSystem::ALL, system).unwrap();
            assert_eq!(image, std::path::PathBuf::from(system.name()));
        }
        let counting = &images[..COUNTED.len()];
        assert!(service_image(counting, COUNTED, BenchSystem::Scrub).is_err());
        // Every shared-lock figure reads a system booted on the counting
        // kernel.
        for bench in &super::BENCHES {
            if let super::Source::SharedLocks { system, .. } = bench.source {
                assert!(COUNTED.contains(&system), "{}", bench.key);
            }
        }
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
