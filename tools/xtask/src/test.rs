// SPDX-License-Identifier: Apache-2.0 OR MIT
//! `cargo xtask test`: everything CI runs, ending in `N passed, N failed`.
//!
//! In order: host unit tests of every host-testable crate (counted one by one
//! from cargo's own summaries), clippy with warnings as errors on the host and
//! bare-metal crates, rustfmt, the unsafe audit, then the QEMU system tests,
//! each of which boots a real image and reads its console: those written in
//! Rust ([`system_tests`]), then one per machine of every expectation file
//! `tests/qemu/<system>.expect` ([`expect`]), with an [`EXTRA_CHECKS`] entry
//! for what a file cannot say; last `bench::check`, the bench's figures
//! against the committed baseline (`cargo xtask bench --check`).

mod demo;
mod exclusives;
mod expect;
mod handmade;
mod health;
mod jammer;
mod linux;
mod oracle;
mod quotas;
mod rpi4;
mod vm;
mod windows;

pub(crate) use windows::LATENESS_LIMIT;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use crate::args::{self, Long, Value};
use crate::image::{self, Variant};
use crate::qemu::{self, Gic, Machine, Outcome, RunSpec, Verdict};
use crate::setup::{self, TARGET, Toolchain, Tools};
use crate::system::{Platform, System};
use crate::{Result, error};
use expect::{Board, Shape};

/// The bare-metal crates, which clippy checks for the target, not the host.
/// (A host test checks that this list and the workspace agree.)
const BARE_METAL: [&str; 39] = [
    "hv-arch-aarch64",
    "hv-kernel",
    "plat-pl011-console",
    "plat-qemu-virt",
    "plat-rpi4",
    "svc-rt",
    "svc-accomplice",
    "svc-batcher",
    "svc-bell",
    "svc-bench",
    "svc-borrower",
    "svc-console",
    "svc-consumer",
    "svc-crasher",
    "svc-faulter",
    "svc-echo",
    "svc-flood",
    "svc-flooder",
    "svc-hammer",
    "svc-hello",
    "svc-hostile",
    "svc-intruder",
    "svc-jammer",
    "svc-keeper",
    "svc-lender",
    "svc-meddler",
    "svc-mimic",
    "svc-monitor",
    "svc-ping",
    "svc-pong",
    "svc-producer",
    "svc-rearm",
    "svc-scribbler",
    "svc-spin",
    "svc-storm",
    "svc-uart-pl011",
    "svc-vmm",
    "svc-worker",
    "guest-probe",
];

/// The workspace folders whose crates are bare-metal.
#[cfg(test)]
const BARE_METAL_FOLDERS: [&str; 6] = [
    "kernel/arch",
    "kernel/kern",
    "platforms/",
    "services/",
    "tests/partitions/",
    "guests/",
];

/// Files that may contain `unsafe` (STYLE.md): the arch crate, each
/// platform's MMIO module, and the service runtime (its `svc` primitive and
/// its MMIO module).
fn unsafe_allowed(path: &str) -> bool {
    path.starts_with("kernel/arch/")
        || path.starts_with("services/rt/")
        || (path.starts_with("platforms/") && path.ends_with("/src/mmio.rs"))
        || path == "guests/probe/src/arch.rs"
}

/// The test that runs `cargo xtask bench --check`: every benchmark, twice,
/// each figure against the baseline.
const BENCH_CHECK: &str = "bench::check";

#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
    failures: Vec<String>,
}

impl Tally {
    fn record(&mut self, name: &str, result: std::result::Result<String, String>, took: Duration) {
        match result {
            Ok(note) => {
                self.passed += 1;
                let note = if note.is_empty() {
                    String::new()
                } else {
                    format!(": {note}")
                };
                println!("test {name} ... ok ({:.1} s){note}", took.as_secs_f64());
            }
            Err(why) => {
                self.failed += 1;
                println!(
                    "test {name} ... FAILED ({:.1} s)\n{}",
                    took.as_secs_f64(),
                    indent(&why)
                );
                self.failures.push(name.to_string());
            }
        }
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

/// What `cargo xtask test` was asked.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Options {
    /// Not `--no-lint`: clippy, rustfmt and the unsafe audit too.
    lint: bool,
    /// Only the system tests whose name contains one of these.
    filters: Vec<String>,
}

/// `cargo xtask test [--no-lint] [FILTER...]`.
pub(crate) fn parse<A: AsRef<OsStr>>(args: &[A]) -> Result<Options> {
    args::parse_for("test", args, |parser| {
        let mut options = Options {
            lint: true,
            filters: Vec::new(),
        };
        while let Some(arg) = parser.next()? {
            match arg {
                Long("no-lint") => options.lint = false,
                Value(filter) => options.filters.push(args::text(filter)?),
                other => return Err(other.unexpected()),
            }
        }
        Ok(options)
    })
}

/// Runs the suite.
pub(crate) fn main(options: &Options) -> Result<ExitCode> {
    let (lint, filters) = (options.lint, &options.filters);
    let tools = setup::ensure(setup::Needs { uboot: true })?;
    println!("qemu: {}", tools.describe_qemu());
    // The SD card's host test checks the card with these.
    setup::ensure_card_tools()?;
    let mut tally = Tally::default();

    if filters.is_empty() {
        host_tests(&mut tally);
        if lint {
            lints(&tools, &mut tally);
        }
    }

    let platform = Platform::load("qemu-virt")?;
    let started = Instant::now();
    let normal = image::build(&tools, &platform, Variant::plain(true));
    let faulty = image::build(
        &tools,
        &platform,
        Variant {
            release: true,
            fault_injection: true,
            lock_count: false,
        },
    );
    let system = |name: &str| -> Result<PathBuf> {
        let path = if name == "demo" || name == "linux" {
            crate::root().join("systems").join(format!("{name}.toml"))
        } else {
            crate::root()
                .join("tests/qemu")
                .join(format!("{name}.toml"))
        };
        let system = System::load(&path)?;
        image::build_system(&tools, &system, Variant::plain(true))
    };
    let wanted =
        |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()));
    // An expectation file's test runs if its name or its system's matches.
    let wanted_run = |file: &expect::ExpectFile, spec: &expect::MachineSpec| {
        wanted(&spec.name) || wanted(&file.system)
    };
    let pi = Platform::load(crate::rpi4::PLATFORM);
    let expected = expect::discover(&crate::root().join("tests/qemu")).map_err(|e| error!("{e}"));
    let images = normal.and_then(|n| {
        let expected = expected?;
        let mut names: Vec<&str> = SYSTEMS.to_vec();
        names.extend(
            expected
                .iter()
                .filter(|e| e.machines.iter().any(|m| m.shape.board() == Board::Virt))
                .map(|e| e.system.as_str()),
        );
        names.sort_unstable();
        names.dedup();
        let systems = names
            .into_iter()
            .map(|name| Ok((name.to_owned(), system(name)?)))
            .collect::<Result<BTreeMap<_, _>>>()?;
        // The Pi's images: only those of the Pi runs that will run.
        let pi_systems = expected
            .iter()
            .filter(|e| {
                e.machines
                    .iter()
                    .any(|m| m.shape.board() == Board::Rpi4 && wanted_run(e, m))
            })
            .map(|e| Ok((e.system.clone(), rpi4::system_image(&tools, &e.system)?)))
            .collect::<Result<BTreeMap<_, _>>>()?;
        Ok((n, faulty?, systems, pi_systems, pi?, expected))
    });
    match images {
        Ok((normal, faulty, systems, pi_systems, pi, expected)) => {
            tally.record("build::kernel-images", Ok(String::new()), started.elapsed());
            let context = Context {
                tools: &tools,
                platform: &platform,
                pi: &pi,
                normal,
                faulty,
                systems,
                pi_systems,
            };
            for test in system_tests() {
                if !wanted(test.name) {
                    continue;
                }
                let started = Instant::now();
                let result = (test.run)(&context);
                tally.record(&format!("system::{}", test.name), result, started.elapsed());
            }
            for file in &expected {
                for spec in &file.machines {
                    if !wanted_run(file, spec) {
                        continue;
                    }
                    let started = Instant::now();
                    let result = run_expected(&context, file.on(spec.shape.board()), spec);
                    tally.record(&format!("system::{}", spec.name), result, started.elapsed());
                }
            }
        }
        Err(e) => tally.record(
            "build::kernel-images",
            Err(e.to_string()),
            started.elapsed(),
        ),
    }

    // The quick profile of `cargo xtask prove`: a change that breaks a
    // property fails here. After the images are built, so that the page
    // tables are validated with each system's image as it was just built.
    if filters.is_empty() || filters.iter().any(|f| "prove".contains(f.as_str())) {
        prove_checks(&mut tally);
    }

    // The bench's figures against the committed baseline (docs/benchmarks.md).
    if wanted(BENCH_CHECK) {
        let started = Instant::now();
        tally.record(
            BENCH_CHECK,
            crate::bench::check_test(&tools),
            started.elapsed(),
        );
    }

    if !tally.failures.is_empty() {
        println!("\nfailed: {}", tally.failures.join(", "));
    }
    println!("\n{} passed, {} failed", tally.passed, tally.failed);
    Ok(if tally.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `cargo xtask prove --quick`, one tally entry per row; a skipped row is
/// shown but not counted.
fn prove_checks(tally: &mut Tally) {
    for row in crate::prove::rows(true) {
        let name = format!("prove::{}", crate::prove::slug(&row.property));
        let took = Duration::from_secs_f64(row.seconds.max(0.0));
        let scope = format!(
            "{}, {} states",
            row.scope,
            row.states.map_or("-".into(), |s| s.to_string())
        );
        match row.verdict {
            crate::prove::Verdict::Pass => tally.record(&name, Ok(scope), took),
            crate::prove::Verdict::Fail => {
                let detail = row.detail.unwrap_or_default();
                tally.record(&name, Err(format!("{scope}\n{detail}")), took);
            }
            crate::prove::Verdict::Skipped(why) => println!("test {name} ... skipped: {why}"),
        }
    }
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(crate::root());
    c
}

/// Runs a command, returning its combined output, or the output as the error
/// if it failed.
fn output(mut command: Command) -> std::result::Result<String, String> {
    let out = command
        .output()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

/// Host unit tests, counted from each test binary's `test result:` line.
fn host_tests(tally: &mut Tally) {
    let started = Instant::now();
    let mut command = cargo();
    command.args(["test", "--workspace"]);
    for package in BARE_METAL {
        command.args(["--exclude", package]);
    }
    let (ok, text) = match output(command) {
        Ok(text) => (true, text),
        Err(text) => (false, text),
    };
    let mut passed = 0;
    let mut failed = 0;
    for line in text.lines().filter(|l| l.starts_with("test result:")) {
        let count = |word: &str| {
            line.split(';')
                .find_map(|part| {
                    part.trim()
                        .trim_start_matches("test result: ok.")
                        .trim_start_matches("test result: FAILED.")
                        .trim()
                        .strip_suffix(word)?
                        .trim()
                        .parse::<usize>()
                        .ok()
                })
                .unwrap_or(0)
        };
        passed += count("passed");
        failed += count("failed");
    }
    println!(
        "host unit tests: {passed} passed, {failed} failed ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    tally.passed += passed;
    tally.failed += failed;
    if !ok && failed == 0 {
        // It did not even build: one failure, with cargo's words.
        tally.record("host::build", Err(text), started.elapsed());
    } else if !ok {
        for line in text
            .lines()
            .filter(|l| l.starts_with("test ") && l.ends_with("FAILED"))
        {
            println!("{line}");
        }
        tally.failures.push("host unit tests".into());
    }
}

fn lints(tools: &Tools, tally: &mut Tally) {
    let started = Instant::now();
    let mut host = cargo();
    host.args(["clippy", "--workspace", "--all-targets"]);
    for package in BARE_METAL {
        host.args(["--exclude", package]);
    }
    host.args(["--", "-D", "warnings"]);
    tally.record(
        "lint::clippy-host",
        output(host).map(|_| String::new()),
        started.elapsed(),
    );

    let started = Instant::now();
    match tools.toolchain {
        Toolchain::Rustup => {
            let mut bare = cargo();
            bare.args(["clippy", "--target", TARGET, "--target-dir"])
                .arg(crate::root().join("target/clippy"))
                .args(["--features", "plat-qemu-virt/fault-injection"]);
            for package in BARE_METAL {
                bare.args(["--package", package]);
            }
            // Services name what the manifest gave them with svc_rt's
            // `cap!(NAME)`, `shared!(NAME)`, `device!(NAME)` and
            // `clients!(NAME)`, which read BULKHEAD_<KIND>_NAME at compile
            // time; any well-formed value will do for lints.
            for (variable, value) in placeholder_environment() {
                bare.env(variable, value);
            }
            bare.args(["--", "-D", "warnings"]);
            tally.record(
                "lint::clippy-bare-metal",
                output(bare).map(|_| String::new()),
                started.elapsed(),
            );
        }
        Toolchain::Debian { .. } => {
            println!(
                "test lint::clippy-bare-metal ... skipped: Debian's rustc-web has no clippy for {TARGET}"
            );
        }
    }

    let started = Instant::now();
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--check"]);
    tally.record(
        "lint::rustfmt",
        output(fmt).map(|_| String::new()),
        started.elapsed(),
    );

    let started = Instant::now();
    tally.record("lint::unsafe-audit", unsafe_audit(), started.elapsed());
}

/// A placeholder for every variable svc_rt's manifest macros read in the
/// services' sources: `BULKHEAD_CAP_<NAME>` for each `cap!(NAME)`, and so on.
fn placeholder_environment() -> Vec<(String, &'static str)> {
    let mut files = Vec::new();
    for folder in hv_manifest::PROGRAM_FOLDERS {
        collect_rust_files(&crate::root().join(folder), &mut files);
    }
    let texts: Vec<String> = files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .collect();
    // A virtual machine monitor's guest (services/vmm), as the compiler
    // describes one.
    let mut environment: Vec<(String, &'static str)> = [
        ("BULKHEAD_GUEST_NAME", "guest"),
        ("BULKHEAD_GUEST_VCPUS", "1"),
        ("BULKHEAD_GUEST_RAM_BASE", "1073741824"),
        ("BULKHEAD_GUEST_RAM_WINDOW", "4294967296:134217728"),
        ("BULKHEAD_GUEST_KERNEL", "4429185024:4096"),
        ("BULKHEAD_GUEST_INITRD", "4431282176:4096"),
        ("BULKHEAD_GUEST_BOOTARGS", "console=ttyAMA0"),
        (
            "BULKHEAD_GUEST_DEVICES",
            "rtc0 arm,pl031 0x9010000 0x1000 34",
        ),
        ("BULKHEAD_WAITS", "1"),
        // A health monitor's partitions (services/monitor).
        ("BULKHEAD_CONTROLS", "partition:0:1"),
        ("BULKHEAD_FAULT_NOTIFICATION", "1"),
        // The board's console UART (`board_console!()`).
        ("BULKHEAD_BOARD_CONSOLE", "150994944:4096"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (macro_name, prefix, value) in [
        ("cap!(", "CAP", "0"),
        ("shared!(", "SHARED", "4294967296:4096"),
        ("device!(", "DEVICE", "150994944:4096"),
        ("clients!(", "CLIENTS", "1=client"),
    ] {
        for name in macro_arguments(&texts, macro_name) {
            environment.push((format!("BULKHEAD_{prefix}_{name}"), value));
        }
    }
    // A setting's value depends on what the program makes of it: those it
    // can do without (`optional_setting!`) are left out, the others are 0.
    let optional = macro_arguments(&texts, "optional_setting!(");
    for name in macro_arguments(&texts, "setting!(") {
        if !optional.contains(&name) {
            environment.push((format!("BULKHEAD_SETTING_{name}"), "0"));
        }
    }
    environment
}

/// Every `NAME` in a `<macro_name>NAME)` in `texts`, sorted, once each.
fn macro_arguments(texts: &[String], macro_name: &str) -> Vec<String> {
    let mut names: Vec<String> = texts
        .iter()
        .flat_map(|text| {
            text.match_indices(macro_name)
                .filter_map(|(i, _)| {
                    let rest = &text[i + macro_name.len()..];
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    (!name.is_empty() && rest[name.len()..].starts_with(')')).then_some(name)
                })
                .collect::<Vec<_>>()
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Fails if `unsafe` appears in code outside the files allowed to hold it.
fn unsafe_audit() -> std::result::Result<String, String> {
    let root = crate::root();
    let mut files = Vec::new();
    for dir in [
        "kernel",
        "drivers",
        "platforms",
        "services",
        "tests/partitions",
        "guests",
    ] {
        collect_rust_files(&root.join(dir), &mut files);
    }
    let mut offending = Vec::new();
    let mut allowed_count = 0;
    for file in &files {
        let relative = file
            .strip_prefix(&root)
            .unwrap_or(file)
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let uses = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim_start().starts_with("//"))
            .filter(|(_, l)| has_word(l, "unsafe"))
            .map(|(i, _)| i + 1)
            .collect::<Vec<_>>();
        if uses.is_empty() {
            continue;
        }
        if unsafe_allowed(&relative) {
            allowed_count += uses.len();
        } else {
            offending.extend(uses.iter().map(|line| format!("{relative}:{line}")));
        }
    }
    if offending.is_empty() {
        Ok(format!(
            "{allowed_count} uses of unsafe, all in kernel/arch, platform MMIO modules, services/rt and the probe guest's arch module"
        ))
    } else {
        Err(format!(
            "unsafe outside kernel/arch, platforms/*/src/mmio.rs and services/rt:\n{}",
            offending.join("\n")
        ))
    }
}

fn has_word(line: &str, word: &str) -> bool {
    line.match_indices(word).any(|(i, _)| {
        let before = line[..i].chars().next_back();
        let after = line[i + word.len()..].chars().next();
        let is_word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !is_word(before) && !is_word(after)
    })
}

fn collect_rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

struct Context<'a> {
    tools: &'a Tools,
    platform: &'a Platform,
    /// The Raspberry Pi 4's platform (`crate::rpi4`).
    pi: &'a Platform,
    /// The kernel alone.
    normal: PathBuf,
    /// The kernel alone, with fault injection.
    faulty: PathBuf,
    /// The image of each of [`SYSTEMS`] and of each system with an
    /// expectation file, by name.
    systems: BTreeMap<String, PathBuf>,
    /// The image built for the Pi of each system with an expectation file
    /// whose Pi runs were asked for, by name.
    pi_systems: BTreeMap<String, PathBuf>,
}

impl Context<'_> {
    /// The image of system `name` (one of [`SYSTEMS`], or one with an
    /// expectation file).
    fn system(&self, name: &str) -> std::result::Result<PathBuf, String> {
        self.systems
            .get(name)
            .cloned()
            .ok_or_else(|| format!("no image of system `{name}` was built"))
    }

    /// The image of system `name` built for `board`.
    fn system_on(&self, name: &str, board: Board) -> std::result::Result<PathBuf, String> {
        match board {
            Board::Virt => self.system(name),
            Board::Rpi4 => self
                .pi_systems
                .get(name)
                .cloned()
                .ok_or_else(|| format!("no image of system `{name}` was built for the rpi4")),
        }
    }
}

/// The systems the tests written in Rust boot, besides those with an
/// expectation file (`tests/qemu/<name>.expect`, [`expect`]), whose images
/// are built too: `demo` and `linux` are `systems/<name>.toml`, the others
/// `tests/qemu/<name>.toml`. pingpong: IPC between two partitions, and a
/// third (corrupted on purpose); linux-small: a small Debian guest;
/// linux-health: a guest whose monitor crashes and a health monitor;
/// linux-rtc: Linux owning the PL031 real-time clock. (The tests that build
/// their own image when they run: restart, log-flood, irq-storm, oracle,
/// oracle-console.)
const SYSTEMS: [&str; 6] = [
    "pingpong",
    "demo",
    "linux",
    "linux-small",
    "linux-health",
    "linux-rtc",
];

struct SystemTest {
    name: &'static str,
    run: fn(&Context<'_>) -> std::result::Result<String, String>,
}

fn system_tests() -> Vec<SystemTest> {
    vec![
        SystemTest {
            name: "boot-gicv3-1-core",
            run: |c| boot(c, Gic::V3, 1, "512M"),
        },
        SystemTest {
            name: "boot-gicv3-4-cores",
            run: |c| boot(c, Gic::V3, 4, "1G"),
        },
        SystemTest {
            name: "boot-gicv2-1-core",
            run: |c| boot(c, Gic::V2, 1, "256M"),
        },
        SystemTest {
            name: "boot-gicv2-4-cores",
            run: |c| boot(c, Gic::V2, 4, "2G"),
        },
        SystemTest {
            name: "panic-is-reported-as-failure",
            run: panic_is_failure,
        },
        SystemTest {
            name: "data-abort-is-reported",
            run: data_abort_is_reported,
        },
        SystemTest {
            name: "undefined-instruction-is-reported",
            run: undefined_is_reported,
        },
        SystemTest {
            name: "refuses-to-run-at-el1",
            run: refuses_el1,
        },
        SystemTest {
            name: "u-boot-booti",
            run: uboot_booti,
        },
        SystemTest {
            name: "sdcard-rpi4",
            // The card's kernel is the image demo-rpi4 boots.
            run: |c| crate::sdcard::system_test(&rpi4::demo_image(c)?.1),
        },
        SystemTest {
            name: "sdcard-u-boot-rpi4",
            // The same demo image, on the U-Boot card, booted by U-Boot.
            run: |c| {
                let (system, image) = rpi4::demo_image(c)?;
                crate::sdcard::u_boot_system_test(c.tools, &system.platform, &image)
            },
        },
        SystemTest {
            name: "corrupt-package-is-refused",
            run: corrupt_package,
        },
        SystemTest {
            name: "hand-made-packages-are-refused",
            run: handmade::hand_made,
        },
        SystemTest {
            name: "demo-output-gicv3-4-cores",
            run: |c| demo::output(c, &virt(Gic::V3, 4, "1G")),
        },
        SystemTest {
            name: "demo-output-gicv2-1-core",
            run: |c| demo::output(c, &virt(Gic::V2, 1, "1G")),
        },
        SystemTest {
            name: "demo-input-gicv3-4-cores",
            run: |c| demo::input(c, &virt(Gic::V3, 4, "1G")),
        },
        SystemTest {
            name: "demo-input-gicv2-1-core",
            run: |c| demo::input(c, &virt(Gic::V2, 1, "1G")),
        },
        SystemTest {
            name: "demo-prompt-gicv3-4-cores",
            run: |c| demo::prompt(c, &virt(Gic::V3, 4, "1G")),
        },
        SystemTest {
            name: "demo-prompt-gicv2-1-core",
            run: |c| demo::prompt(c, &virt(Gic::V2, 1, "1G")),
        },
        SystemTest {
            name: "linux-shell-gicv3-4-cores",
            run: |c| linux::shell(c, Gic::V3, 4),
        },
        SystemTest {
            name: "linux-shell-gicv2-1-core",
            run: |c| linux::shell(c, Gic::V2, 1),
        },
        SystemTest {
            name: "linux-reboot-and-panic-1-vcpu",
            run: |c| linux::reboot_and_panic(c, Gic::V3, 2),
        },
        SystemTest {
            name: "linux-monitor-crash-contained",
            run: |c| health::monitor_crash(c, Gic::V3, 2),
        },
        SystemTest {
            name: "boot-rpi4",
            run: rpi4::boot,
        },
        SystemTest {
            name: "demo-rpi4",
            run: rpi4::demo,
        },
        SystemTest {
            name: "no-exclusives-before-mmu-virt-4-cores",
            run: exclusives::virt,
        },
        SystemTest {
            name: "no-exclusives-before-mmu-rpi4",
            run: exclusives::rpi4,
        },
        SystemTest {
            name: "demo-input-rpi4",
            run: |c| demo::input(c, &Shape::Rpi4),
        },
        SystemTest {
            name: "linux-rtc-passthrough",
            run: |c| linux::rtc_passthrough(c, Gic::V3, 2),
        },
    ]
}

const BOOT_TIMEOUT: Duration = Duration::from_secs(30);

fn machine<'a>(c: &'a Context<'_>, gic: Gic, smp: u32, memory: &str) -> Machine<'a> {
    Machine {
        gic,
        smp,
        memory: memory.into(),
        ..Machine::default_for(c.platform)
    }
}

/// QEMU's virt of that shape, as an expectation file's `test` line says it.
fn virt(gic: Gic, smp: u32, memory: &str) -> Shape {
    Shape::Virt {
        gic,
        smp,
        memory: memory.to_owned(),
    }
}

/// The machine `shape` describes, booting `kernel`: QEMU's virt of that
/// shape, or the board as `crate::rpi4` makes it.
fn board_machine<'a>(
    c: &'a Context<'_>,
    shape: &Shape,
    kernel: PathBuf,
) -> std::result::Result<Machine<'a>, String> {
    Ok(match shape {
        Shape::Virt { gic, smp, memory } => Machine {
            kernel: Some(kernel),
            ..machine(c, *gic, *smp, memory)
        },
        Shape::Rpi4 => crate::rpi4::machine(c.pi, kernel).map_err(|e| format!("FAILED: {e}"))?,
    })
}

fn start(
    c: &Context<'_>,
    machine: &Machine<'_>,
    spec: RunSpec,
) -> std::result::Result<Outcome, String> {
    qemu::run(c.tools, machine, &spec).map_err(|e| e.to_string())
}

fn healthy() -> RunSpec {
    RunSpec {
        timeout: Some(BOOT_TIMEOUT),
        stop_when_ready: true,
        ..RunSpec::default()
    }
}

/// Fails with the console attached if the kernel reported a failure, a
/// partition faulted, or the run stopped at its timeout rather than at what
/// it waited for: what every run that should finish cleanly checks first.
fn ran_clean(outcome: &Outcome) -> std::result::Result<(), String> {
    let why = if let Some(line) = outcome.failure() {
        line.to_owned()
    } else if outcome.timed_out {
        "timed out before every line it waited for came".to_owned()
    } else if outcome.transcript().has(hv_abi::console::PARTITION_FAULT) {
        "a partition faulted".to_owned()
    } else {
        return Ok(());
    };
    Err(format!("{why}\n--- console ---\n{}", outcome.console))
}

/// Fails with the console attached unless every needle matches a line: at
/// its start, and a line of the writer it names (`[name] ` for a
/// partition's, none for the kernel's; `crate::transcript`), so a partition
/// cannot print its way to a pass.
fn expect_lines(outcome: &Outcome, needles: &[String]) -> std::result::Result<(), String> {
    let transcript = outcome.transcript();
    let missing: Vec<&String> = needles.iter().filter(|n| !transcript.has(n)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "the console lacks {missing:?} (each at the start of a line of its writer)\n\
         --- console ---\n{}--- QEMU stderr ---\n{}",
        outcome.console, outcome.stderr
    ))
}

/// Fails with the console attached unless, for each pair, a line matches the
/// first (as [`expect_lines`] matches it) and has the second after it: for
/// lines whose middle varies.
fn expect_lines_with(outcome: &Outcome, pairs: &[(&str, &str)]) -> std::result::Result<(), String> {
    let transcript = outcome.transcript();
    let missing: Vec<&(&str, &str)> = pairs
        .iter()
        .filter(|(start, rest)| !transcript.has_with(start, rest))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "the console lacks a line starting with and then having {missing:?}\n\
         --- console ---\n{}",
        outcome.console
    ))
}

fn boot(c: &Context<'_>, gic: Gic, smp: u32, memory: &str) -> std::result::Result<String, String> {
    let machine = Machine {
        kernel: Some(c.normal.clone()),
        ..machine(c, gic, smp, memory)
    };
    let outcome = start(c, &machine, healthy())?;
    if let Verdict::Failed(why) = outcome.verdict() {
        return Err(format!("{why}\n--- console ---\n{}", outcome.console));
    }
    let bytes = qemu::parse_memory(memory).map_err(|e| e.to_string())?;
    let base = c.platform.ram_base;
    let version = if gic == Gic::V2 {
        "GICv2 (arm,cortex-a15-gic)"
    } else {
        "GICv3 (arm,gic-v3)"
    };
    let second = if gic == Gic::V2 {
        "CPU interface 0x008010000"
    } else {
        "redistributors 0x0080a0000"
    };
    expect_lines(
        &outcome,
        &[
            format!("Bulkhead {}", env!("CARGO_PKG_VERSION")),
            "boot: exception level EL2".into(),
            format!(
                "boot: memory {:#011x}..{:#011x} {}",
                base,
                base + bytes,
                size_text(bytes)
            ),
            format!("boot: {version} distributor 0x008000000..0x008010000, {second}"),
            "boot: console PL011 at 0x009000000..0x009001000, INTID 33 (the device tree agrees)"
                .into(),
            "boot: timer 62500000 Hz, hypervisor INTID 26, virtual INTID 27".into(),
            "boot: PSCI 1.1 via SMC".into(),
            format!("boot: cores {smp} in device tree"),
            format!("boot: cores online {smp} of {smp}"),
            format!("boot: timer ticking at 100 Hz on {smp} of {smp} cores"),
            "boot: interrupt controller up, ".into(),
        ],
    )?;
    expect_lines_with(
        &outcome,
        &[
            (
                "boot: MMU on: 4 KiB granule, ",
                "text read-only, data never executable",
            ),
            ("boot: kernel heap ", "allocator self-test passed"),
        ],
    )?;
    Ok(String::new())
}

fn size_text(bytes: u64) -> String {
    if bytes.is_multiple_of(1 << 30) {
        format!("{} GiB", bytes >> 30)
    } else {
        format!("{} MiB", bytes >> 20)
    }
}

/// Boots the fault-injection image with `bulkhead.inject=WHAT` and checks the
/// run is judged a failure, the machine powered itself off, and the console
/// holds every needle.
fn injected(
    c: &Context<'_>,
    what: &str,
    needles: &[String],
    with: &[(&str, &str)],
) -> std::result::Result<String, String> {
    let machine = Machine {
        kernel: Some(c.faulty.clone()),
        append: Some(format!("bulkhead.inject={what}")),
        ..machine(c, Gic::V3, 2, "512M")
    };
    let outcome = start(c, &machine, healthy())?;
    if outcome.verdict() == Verdict::Healthy || outcome.ready() {
        return Err(format!(
            "the run was judged healthy\n--- console ---\n{}",
            outcome.console
        ));
    }
    if outcome.timed_out || outcome.stopped_when_ready {
        return Err(format!(
            "the machine did not power itself off\n--- console ---\n{}",
            outcome.console
        ));
    }
    expect_lines(&outcome, needles)?;
    expect_lines_with(&outcome, with)?;
    Ok(String::new())
}

fn panic_is_failure(c: &Context<'_>) -> std::result::Result<String, String> {
    injected(c, "panic", &["!!! BULKHEAD PANIC: fault injection: bulkhead.inject=panic at kernel/kern/src/exception.rs:".into()], &[])
}

fn data_abort_is_reported(c: &Context<'_>) -> std::result::Result<String, String> {
    injected(
        c,
        "data-abort",
        &[
            "!!! exception: Synchronous from CurrentElSpx on core 0".into(),
            "!!! exception: FAR_EL2 0x0000deadbeef0000\r".into(),
            "!!! BULKHEAD PANIC: unexpected exception: data abort in the kernel".into(),
        ],
        &[(
            "!!! exception: ESR_EL2 0x9",
            ": data abort in the kernel on a read: translation fault (not mapped), level 0",
        )],
    )
}

fn undefined_is_reported(c: &Context<'_>) -> std::result::Result<String, String> {
    injected(
        c,
        "undefined",
        &[
            "!!! exception: ESR_EL2 0x02000000: undefined instruction".into(),
            "!!! BULKHEAD PANIC: unexpected exception: undefined instruction (ELR 0x".into(),
        ],
        &[(
            "!!! exception: FAR_EL2 0x",
            "(not valid for this exception)",
        )],
    )
}

fn refuses_el1(c: &Context<'_>) -> std::result::Result<String, String> {
    let machine = Machine {
        kernel: Some(c.normal.clone()),
        virtualization: false,
        ..machine(c, Gic::V3, 1, "256M")
    };
    refused(
        c,
        &machine,
        &["!!! BULKHEAD CANNOT BOOT: entered at EL1, but Bulkhead runs at EL2 (on QEMU: -M virt,virtualization=on)".into()],
    )
}

/// Boots `machine` and fails unless the kernel refused to boot, powered the
/// machine off (no timeout), and printed every needle.
fn refused(
    c: &Context<'_>,
    machine: &Machine<'_>,
    needles: &[String],
) -> std::result::Result<String, String> {
    let outcome = start(c, machine, healthy())?;
    if outcome.timed_out || outcome.ready() {
        return Err(format!(
            "the kernel did not refuse and power off\n--- console ---\n{}",
            outcome.console
        ));
    }
    expect_lines(&outcome, needles)?;
    Ok(String::new())
}

/// Real U-Boot (Debian's u-boot-qemu) loads nothing itself here: QEMU puts the
/// image in RAM, U-Boot's autoboot is interrupted and `booti` starts it, the
/// way a board's boot script would.
fn uboot_booti(c: &Context<'_>) -> std::result::Result<String, String> {
    let uboot = c.tools.uboot.clone().ok_or("U-Boot is not installed")?;
    let load = c.platform.ram_base + (4 << 20);
    let machine = Machine {
        bios: Some(uboot),
        loader: vec![(c.normal.clone(), load)],
        ..machine(c, Gic::V3, 2, "1G")
    };
    let spec = RunSpec {
        script: vec![
            ("Hit any key to stop autoboot".into(), "\n".into()),
            (
                "=> ".into(),
                format!("booti {load:#x} - ${{fdtcontroladdr}}\n"),
            ),
        ],
        ..healthy()
    };
    let outcome = start(c, &machine, spec)?;
    if let Verdict::Failed(why) = outcome.verdict() {
        return Err(format!("{why}\n--- console ---\n{}", outcome.console));
    }
    expect_lines(
        &outcome,
        &[
            "U-Boot 20".into(),
            "Starting kernel".into(),
            "boot: exception level EL2".into(),
            "boot: cores online 2 of 2".into(),
        ],
    )?;
    let version = outcome
        .console
        .lines()
        .find(|l| l.starts_with("U-Boot 20"))
        .unwrap_or("U-Boot")
        .trim();
    Ok(version.to_string())
}

/// A boot package with one byte changed is refused before anything loads,
/// with a message, and the machine powers off instead of crashing.
fn corrupt_package(c: &Context<'_>) -> std::result::Result<String, String> {
    let mut image = std::fs::read(c.system("pingpong")?).map_err(|e| e.to_string())?;
    let kernel = std::fs::read(&c.normal).map_err(|e| e.to_string())?;
    let kernel_size = kernel
        .get(16..24)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .ok_or("no header")?;
    // A byte of the compiled manifest, just past the package's header.
    let header = hv_image::package::HEADER_SIZE as usize;
    let at = usize::try_from(kernel_size).map_err(|e| e.to_string())? + header + 7;
    let byte = image.get_mut(at).ok_or("the image has no package")?;
    *byte ^= 0x20;
    let path = crate::system::output_dir().join("pingpong-corrupt.img");
    image::write_atomically(&path, &image).map_err(|e| e.to_string())?;
    let machine = Machine {
        kernel: Some(path),
        ..machine(c, Gic::V3, 2, "1G")
    };
    refused(
        c,
        &machine,
        &[
            "!!! BULKHEAD CANNOT BOOT: cannot load the system: the boot package is unusable: \
           boot package corrupt: CRC-32 is 0x"
                .into(),
        ],
    )
}

/// A check an expectation file cannot state (the console between two
/// lines, a number that must parse), run after the file's own checks on the
/// system of that name; what it returns joins the test's note.
type ExtraCheck =
    fn(&Context<'_>, &expect::Expect, &Outcome) -> std::result::Result<String, String>;

/// The systems with an expectation file that also need a check in Rust.
const EXTRA_CHECKS: [(&str, ExtraCheck); 14] = [
    ("jammer", jammer::quiet_while_jammed),
    ("passthrough", vm::rtc_time),
    ("restart", quotas::restart_storm),
    ("log-flood", quotas::log_flood),
    ("irq-storm", quotas::irq_storm),
    ("oracle", oracle::spoof),
    ("oracle-console", oracle::spoof),
    ("windows", windows::shares),
    ("windows-spin", windows::spin),
    ("windows-crash", windows::others),
    ("windows-flood", windows::others),
    ("windows-smp", windows::smp),
    ("budget", windows::budget),
    ("bench-windows", windows::lateness),
];

/// Boots system `expect.system` on the machine `spec` until the lines the
/// file waits for are there, then judges the run by the file (and by the
/// system's [`EXTRA_CHECKS`]).
fn run_expected(
    c: &Context<'_>,
    expect: &expect::Expect,
    spec: &expect::MachineSpec,
) -> std::result::Result<String, String> {
    let kernel = c.system_on(&expect.system, spec.shape.board())?;
    let mut machine = board_machine(c, &spec.shape, kernel)?;
    if let Some(icount) = &expect.icount {
        machine.extra.extend(["-icount".to_owned(), icount.clone()]);
    }
    let run = RunSpec {
        timeout: Some(expect.timeout),
        until_all: expect.until.clone(),
        ..RunSpec::default()
    };
    let outcome = start(c, &machine, run)?;
    expect.judge(&outcome)?;
    let mut note = expect.note.clone();
    if let Some((_, check)) = EXTRA_CHECKS.iter().find(|(s, _)| *s == expect.system) {
        let more = check(c, expect, &outcome)?;
        if !more.is_empty() {
            if !note.is_empty() {
                note.push_str("; ");
            }
            note.push_str(&more);
        }
    }
    Ok(note)
}

/// Fails unless each needle matches a line (as [`expect_lines`] matches
/// them) after the line the one before it matched.
fn in_order(outcome: &Outcome, needles: &[&str]) -> std::result::Result<(), String> {
    let transcript = outcome.transcript();
    let mut from = 0;
    for needle in needles {
        match transcript.find(needle, from) {
            Some(at) => from = at + 1,
            None => {
                return Err(format!(
                    "`{needle}` missing or out of order\n--- console ---\n{}",
                    outcome.console
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{BARE_METAL, BARE_METAL_FOLDERS, EXTRA_CHECKS, expect, system_tests};

    /// Every system test has a name of its own, whether Rust or an
    /// expectation file gives it, and every extra check has its file.
    #[test]
    fn system_test_names_are_unique() {
        let expected = expect::discover(&crate::root().join("tests/qemu")).unwrap();
        let mut names: Vec<String> = system_tests()
            .iter()
            .map(|t| t.name.to_owned())
            .chain(
                expected
                    .iter()
                    .flat_map(|e| e.machines.iter().map(|m| m.name.clone())),
            )
            .collect();
        let count = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), count, "a test name is used twice");
        for (system, _) in EXTRA_CHECKS {
            assert!(expected.iter().any(|e| e.system == system), "{system}");
        }
    }

    /// Every workspace member under a bare-metal folder is in `BARE_METAL`,
    /// and nothing else is, so host tests and clippy never build kernel code
    /// for the host.
    #[test]
    fn the_bare_metal_list_matches_the_workspace() {
        let root = crate::root();
        let manifest: toml::Table = std::fs::read_to_string(root.join("Cargo.toml"))
            .unwrap()
            .parse()
            .unwrap();
        let members = manifest["workspace"]["members"].as_array().unwrap();
        let mut bare = Vec::new();
        for member in members {
            let folder = member.as_str().unwrap();
            let package: toml::Table =
                std::fs::read_to_string(root.join(folder).join("Cargo.toml"))
                    .unwrap()
                    .parse()
                    .unwrap();
            let name = package["package"]["name"].as_str().unwrap().to_string();
            // A host-tested library under a bare-metal folder (the monitor's
            // device models) is a default member, built for the host.
            let host = manifest["workspace"]["default-members"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m.as_str() == Some(folder));
            if !host && BARE_METAL_FOLDERS.iter().any(|f| folder.starts_with(f)) {
                bare.push(name);
            }
        }
        bare.sort();
        let mut listed: Vec<String> = BARE_METAL.iter().map(|s| s.to_string()).collect();
        listed.sort();
        assert_eq!(bare, listed);
    }

    #[test]
    fn options_are_parsed() {
        use super::{Options, parse};
        let error = |args: &[&str]| parse(args).unwrap_err().to_string();
        assert_eq!(
            parse::<&str>(&[]).unwrap(),
            Options {
                lint: true,
                filters: Vec::new()
            }
        );
        assert_eq!(
            parse(&["--no-lint", "sdcard", "rpi4"]).unwrap(),
            Options {
                lint: false,
                filters: vec!["sdcard".into(), "rpi4".into()]
            }
        );
        assert_eq!(parse(&["pingpong"]).unwrap().filters, ["pingpong"]);
        assert_eq!(
            error(&["--nolint"]),
            "cargo xtask test: unknown option `--nolint`; try `cargo xtask help`"
        );
        assert_eq!(
            error(&["--no-lint=1"]),
            "cargo xtask test: --no-lint takes no value, not `1`; try `cargo xtask help`"
        );
    }
}
