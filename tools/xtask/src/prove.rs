// SPDX-License-Identifier: Apache-2.0 OR MIT
//! `cargo xtask prove [--quick]`: every machine check of `proofs/`, as one
//! table: property, method, scope, states explored, result, time.
//!
//! The sources, each a program that prints one JSON object a line per check
//! (`property`, `method`, `scope`, `states` (an integer or null), `result`
//! (`"pass"` or `"fail"`), `seconds`, and optionally `detail`) and exits
//! non-zero when a check fails:
//! - `cargo run --release -p hv-proofs-refine -- --quick|--full`: bounded
//!   exhaustive checks of `hv-core`'s real code against a specification
//!   (stateright);
//! - the same built with each `mutant-*` feature, a deliberately broken
//!   rule, which must fail: its rows become "mutant … is caught" and pass
//!   when the checker fails with a counterexample, which is printed;
//! - `python3 proofs/model/prove.py --quick|--full` and `--mutants`: z3
//!   proofs about the design, in a virtual environment made in
//!   `target/tools/z3-venv` from `proofs/model/requirements.txt`;
//! - `python3 proofs/promela/check.py --quick|--full` and `--mutants`: spin
//!   models of the multicore protocols, with Debian's `spin`
//!   ([`tools::spin`]) and the host's C compiler;
//! - [`pagetables`], in this process: every shipped and test manifest's
//!   stage-2 tables, built with the kernel's code and walked entry by
//!   entry.
//!
//! A source whose files are missing is a failed row, never a silent pass;
//! the one row that may be skipped is W^X inside programs' RAM before any
//! program is built (`cargo xtask test` builds them first). `cargo xtask
//! test` runs the quick profile ([`rows`]), one tally entry per row.

pub(crate) mod pagetables;
mod tools;

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Instant;

use crate::args::{self, Long};
use crate::{Result, error};

/// What `cargo xtask prove` was asked.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Options {
    /// `--quick`: the profile `cargo xtask test` runs.
    pub(crate) quick: bool,
}

/// `cargo xtask prove [--quick]`.
pub(crate) fn parse<A: AsRef<OsStr>>(args: &[A]) -> Result<Options> {
    args::parse_for("prove", args, |parser| {
        let mut options = Options { quick: false };
        while let Some(arg) = parser.next()? {
            match arg {
                Long("quick") => options.quick = true,
                Long("full") => options.quick = false,
                other => return Err(other.unexpected()),
            }
        }
        Ok(options)
    })
}

/// A row's verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Pass,
    Fail,
    /// Not run, and why.
    Skipped(String),
}

/// One check: a row of the table.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Row {
    pub(crate) property: String,
    pub(crate) method: String,
    pub(crate) scope: String,
    pub(crate) states: Option<u64>,
    pub(crate) verdict: Verdict,
    pub(crate) seconds: f64,
    pub(crate) detail: Option<String>,
}

impl Row {
    fn skipped(property: &str, method: &str, why: &str) -> Self {
        Self {
            property: property.into(),
            method: method.into(),
            scope: "-".into(),
            states: None,
            verdict: Verdict::Skipped(why.into()),
            seconds: 0.0,
            detail: None,
        }
    }

    fn failed(property: &str, method: &str, seconds: f64, detail: String) -> Self {
        Self {
            property: property.into(),
            method: method.into(),
            scope: "-".into(),
            states: None,
            verdict: Verdict::Fail,
            seconds,
            detail: Some(detail),
        }
    }
}

/// Reads a source's output: one JSON object a line; other lines are
/// ignored (a source may print progress).
pub(crate) fn parse_rows(text: &str) -> std::result::Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| l.starts_with('{')) {
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("`{line}`: {e}"))?;
        let text = |key: &str| {
            value
                .get(key)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
                .ok_or_else(|| format!("`{line}`: no string `{key}`"))
        };
        let verdict = match text("result")?.as_str() {
            "pass" => Verdict::Pass,
            "fail" => Verdict::Fail,
            other => {
                return Err(format!(
                    "`{line}`: result `{other}` is neither pass nor fail"
                ));
            }
        };
        let states = match value.get("states") {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .ok_or_else(|| format!("`{line}`: `states` is not a count"))?,
            ),
        };
        rows.push(Row {
            property: text("property")?,
            method: text("method")?,
            scope: text("scope")?,
            states,
            verdict,
            seconds: value.get("seconds").and_then(|v| v.as_f64()).unwrap_or(0.0),
            detail: value
                .get("detail")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
        });
    }
    Ok(rows)
}

/// Runs a source: its rows, plus a failing row if it failed without saying
/// which check did, or printed nothing.
fn run_source(name: &str, method: &str, mut command: Command) -> Vec<Row> {
    let started = Instant::now();
    eprintln!("prove: {name}: {command:?}");
    let out = match command.output() {
        Ok(out) => out,
        Err(e) => {
            let why = format!("cannot run {command:?}: {e}");
            return vec![Row::failed(name, method, 0.0, why)];
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut rows = match parse_rows(&stdout) {
        Ok(rows) => rows,
        Err(e) => return vec![Row::failed(name, method, seconds, e)],
    };
    let any_failed = rows.iter().any(|r| r.verdict == Verdict::Fail);
    if !out.status.success() && !any_failed {
        rows.push(Row::failed(
            name,
            method,
            seconds,
            format!(
                "exited with {}:\n{}{}",
                out.status,
                tail(&stdout),
                tail(&stderr)
            ),
        ));
    } else if out.status.success() && any_failed {
        rows.push(Row::failed(
            name,
            method,
            seconds,
            "a check failed, but it exited with success".into(),
        ));
    } else if rows.is_empty() {
        rows.push(Row::failed(
            name,
            method,
            seconds,
            format!("printed no check\n{}", tail(&stderr)),
        ));
    }
    rows
}

/// The last lines of a program's output, for an error.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(30);
    lines[from..].iter().map(|l| format!("{l}\n")).collect()
}

/// Whether the workspace has the package in `folder` (its `Cargo.toml`, and
/// a `members` entry in the root manifest).
fn workspace_has(root: &Path, folder: &str) -> bool {
    let member = std::fs::read_to_string(root.join("Cargo.toml"))
        .is_ok_and(|text| text.contains(&format!("\"{folder}\"")));
    member && root.join(folder).join("Cargo.toml").is_file()
}

/// The deliberately broken rules `hv-proofs-refine` must catch.
const MUTANTS: [&str; 2] = ["mutant-derive-no-attenuate", "mutant-revoke-spares-one"];

const REFINE: &str = "hv-proofs-refine";
const REFINE_METHOD: &str = "stateright BFS over hv-core";

fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(crate::root());
    c
}

/// `hv-proofs-refine`'s rows, and its mutants'.
fn refine(quick: bool) -> Vec<Row> {
    let root = crate::root();
    if !workspace_has(&root, "proofs/refine") {
        return vec![Row::failed(
            "refinement and invariants of hv-core",
            REFINE_METHOD,
            0.0,
            "proofs/refine is not in the workspace".into(),
        )];
    }
    let profile = if quick { "--quick" } else { "--full" };
    let mut command = cargo();
    command.args(["run", "--quiet", "--release", "-p", REFINE, "--", profile]);
    let mut rows = run_source(REFINE, REFINE_METHOD, command);
    for mutant in MUTANTS {
        let mut command = cargo();
        command.args([
            "run",
            "--quiet",
            "--release",
            "-p",
            REFINE,
            "--features",
            mutant,
            "--",
            "--quick",
        ]);
        let started = Instant::now();
        let out = command.output();
        let seconds = started.elapsed().as_secs_f64();
        let property = format!("mutant {} is caught", mutant.trim_start_matches("mutant-"));
        rows.push(match out {
            Err(e) => Row::failed(&property, REFINE_METHOD, seconds, e.to_string()),
            Ok(out) => {
                let stdout = String::from_utf8_lossy(&out.stdout);
                let mut row = mutant_row(&property, out.status.success(), &stdout, seconds);
                if row.verdict == Verdict::Fail {
                    let stderr = String::from_utf8_lossy(&out.stderr);
                    let detail = row.detail.take().unwrap_or_default();
                    row.detail = Some(format!("{detail}{}", tail(&stderr)));
                }
                row
            }
        });
    }
    rows
}

/// The row of a mutant's run: it passes if the run failed, naming the
/// steps (a failing row with a `detail`).
pub(crate) fn mutant_row(property: &str, succeeded: bool, stdout: &str, seconds: f64) -> Row {
    let rows = parse_rows(stdout).unwrap_or_default();
    let caught: Vec<&Row> = rows
        .iter()
        .filter(|r| r.verdict == Verdict::Fail && r.detail.is_some())
        .collect();
    let states = rows.iter().filter_map(|r| r.states).max();
    if !succeeded && let Some(first) = caught.first() {
        let detail = caught
            .iter()
            .map(|r| format!("{}: {}", r.property, r.detail.as_deref().unwrap_or("")))
            .collect::<Vec<_>>()
            .join("\n");
        return Row {
            property: property.into(),
            method: first.method.clone(),
            scope: first.scope.clone(),
            states,
            verdict: Verdict::Pass,
            seconds,
            detail: Some(detail),
        };
    }
    let why = if succeeded {
        "the mutant passed every check: the checker does not catch it".to_owned()
    } else {
        format!(
            "the mutant's run failed without a counterexample:\n{}",
            tail(stdout)
        )
    };
    Row::failed(property, REFINE_METHOD, seconds, why)
}

/// The Python sources' rows: the model (z3) and the protocols (spin).
fn python(quick: bool) -> Vec<Row> {
    let root = crate::root();
    let profile = if quick { "--quick" } else { "--full" };
    let mut rows = Vec::new();
    let model = root.join("proofs/model/prove.py");
    if model.is_file() {
        match tools::z3_python() {
            Ok(python) => {
                for flag in [profile, "--mutants"] {
                    let mut command = Command::new(&python);
                    command.arg(&model).arg(flag).current_dir(&root);
                    rows.extend(run_source("proofs/model/prove.py", "z3", command));
                }
            }
            Err(e) => rows.push(Row::failed("z3 model proofs", "z3", 0.0, e.to_string())),
        }
    } else {
        rows.push(Row::failed(
            "design invariants (model)",
            "z3",
            0.0,
            "proofs/model/prove.py is missing".into(),
        ));
    }
    let promela = root.join("proofs/promela/check.py");
    if promela.is_file() {
        let ready = tools::python3().and_then(|python| Ok((python, tools::spin()?)));
        match ready {
            Ok((python, spin)) => {
                for flag in [profile, "--mutants"] {
                    let mut command = Command::new(&python);
                    command
                        .arg(&promela)
                        .arg(flag)
                        .current_dir(&root)
                        .env("SPIN", &spin)
                        .env("CC", std::env::var_os("CC").unwrap_or_else(|| "cc".into()));
                    rows.extend(run_source("proofs/promela/check.py", "spin", command));
                }
            }
            Err(e) => rows.push(Row::failed(
                "spin protocol models",
                "spin",
                0.0,
                e.to_string(),
            )),
        }
    } else {
        rows.push(Row::failed(
            "multicore protocols (Promela)",
            "spin",
            0.0,
            "proofs/promela/check.py is missing".into(),
        ));
    }
    rows
}

/// A row's property as a test name: lower case, words joined by `-`.
pub(crate) fn slug(property: &str) -> String {
    let mut out = String::new();
    for word in property
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push('-');
        }
        out.push_str(&word.to_ascii_lowercase());
    }
    out
}

/// Every check's rows, in the table's order.
pub(crate) fn rows(quick: bool) -> Vec<Row> {
    let mut rows = pagetable_rows();
    rows.extend(refine(quick));
    rows.extend(python(quick));
    rows
}

const PT_METHOD: &str = "translation validation";

/// The page-table validation's rows.
fn pagetable_rows() -> Vec<Row> {
    let started = Instant::now();
    match validate() {
        Ok(report) => report.rows(started.elapsed().as_secs_f64()),
        Err(e) => vec![Row::failed(
            "stage-2 tables of every manifest",
            PT_METHOD,
            started.elapsed().as_secs_f64(),
            e.to_string(),
        )],
    }
}

/// What the page-table validation found over every manifest.
#[derive(Default)]
struct Report {
    manifests: usize,
    configurations: usize,
    partitions: usize,
    mappings: usize,
    tables: usize,
    descriptors: usize,
    wx_allowed: u64,
    /// Configurations the kernel's boot checks refuse (no tables).
    refused: Vec<String>,
    /// Failures by property: exact, disjoint, kernel, W^X.
    failures: [Vec<String>; 4],
    /// The negative checks: a corrupted table must be caught.
    negatives: Vec<(String, bool)>,
    /// Configurations in which every property held.
    clean: usize,
    /// Programs' W^X: (partitions whose program's ELF was found, of which
    /// separable), the failures, the programs not found.
    programs: (usize, usize),
    program_failures: Vec<String>,
    programs_missing: std::collections::BTreeSet<String>,
    /// Programs whose segments put code and writable data in one page.
    inseparable: std::collections::BTreeSet<String>,
    /// Partitions whose separable program's code is mapped writable or
    /// data executable.
    program_pages: usize,
    /// The machines the systems were built for.
    machines: std::collections::BTreeSet<&'static str>,
    /// Builds laid out as their image in `target/bulkhead/` is (the
    /// others: the kernel's size bounded, stand-in programs).
    from_images: usize,
}

impl Report {
    fn rows(&self, seconds: f64) -> Vec<Row> {
        let machines: Vec<&str> = self.machines.iter().copied().collect();
        let scope = format!(
            "{} manifests on {} ({} builds, {} refused), {} partitions",
            self.manifests,
            machines.join(", "),
            self.configurations,
            self.refused.len(),
            self.partitions
        );
        let properties = [
            "each partition maps exactly its RAM, devices and shared regions, as declared",
            "partitions' memory disjoint except declared shared regions",
            "no kernel memory, GIC, kernel UART in any partition",
            "W^X except where declared (virtual machines' RAM, shared memory so declared)",
        ];
        let share = seconds / 6.0;
        let mut rows: Vec<Row> = properties
            .iter()
            .zip(&self.failures)
            .enumerate()
            .map(|(i, (property, failures))| {
                let mut detail = failures.iter().take(8).cloned().collect::<Vec<_>>();
                if i == 0 {
                    detail.push(format!(
                        "{} mappings, {} tables, {} descriptors walked; {} of {} configurations hold every property",
                        self.mappings, self.tables, self.descriptors, self.clean, self.configurations
                    ));
                    detail.push(format!(
                        "{} of {} builds laid out as their built image (target/bulkhead/), the others with the kernel's size bounded and each program's last build (an empty stand-in where there is none)",
                        self.from_images, self.configurations
                    ));
                    detail.push(format!(
                        "the six page-table rows are one run of {seconds:.1} s, shared out"
                    ));
                    detail.extend(self.refused.iter().map(|r| format!("refused at boot: {r}")));
                }
                if i == 3 {
                    detail.push(format!(
                        "{} pages writable and executable by declaration (virtual machines' RAM, programs' pages holding code and writable data, stand-in programs' RAM, shared memory declared so)",
                        self.wx_allowed
                    ));
                }
                Row {
                    property: (*property).into(),
                    method: PT_METHOD.into(),
                    scope: scope.clone(),
                    states: Some(if i == 0 {
                        self.descriptors as u64
                    } else {
                        self.mappings as u64
                    }),
                    verdict: if failures.is_empty() && self.configurations > 0 {
                        Verdict::Pass
                    } else {
                        Verdict::Fail
                    },
                    seconds: share,
                    detail: Some(detail.join("\n")),
                }
            })
            .collect();
        rows.push(self.program_row(share));
        let caught = self.negatives.iter().all(|(_, c)| *c) && !self.negatives.is_empty();
        rows.push(Row {
            property: "a corrupted table is caught (negative)".into(),
            method: PT_METHOD.into(),
            scope: format!("{} corruptions of systems/demo.toml", self.negatives.len()),
            states: Some(self.negatives.len() as u64),
            verdict: if caught { Verdict::Pass } else { Verdict::Fail },
            seconds: share,
            detail: Some(
                self.negatives
                    .iter()
                    .map(|(what, c)| format!("{what}: {}", if *c { "caught" } else { "MISSED" }))
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
        });
        rows
    }
}

impl Report {
    /// W^X inside a program's RAM, where its segments allow it.
    fn program_row(&self, seconds: f64) -> Row {
        let property = "W^X inside a program's RAM where its ELF segments allow";
        let (found, separable) = self.programs;
        if found == 0 {
            return Row {
                seconds,
                ..Row::skipped(
                    property,
                    PT_METHOD,
                    "programs not built (cargo xtask build)",
                )
            };
        }
        let mut detail = vec![format!(
            "{found} partitions' programs read; {separable} separate code from writable data at page granularity"
        )];
        if separable < found {
            let names: Vec<&str> = self.inseparable.iter().map(String::as_str).collect();
            detail.push(format!(
                "the others put code and writable data in one page, which stage 2 maps rwx: {}",
                names.join(", ")
            ));
        }
        if !self.programs_missing.is_empty() {
            let missing: Vec<&str> = self.programs_missing.iter().map(String::as_str).collect();
            detail.push(format!("not built, not read: {}", missing.join(", ")));
        }
        detail.extend(self.program_failures.iter().take(8).cloned());
        Row {
            property: property.into(),
            method: format!("{PT_METHOD} + ELF program headers"),
            scope: format!("{found} partitions' programs"),
            states: Some(found as u64),
            verdict: if self.program_failures.is_empty() {
                Verdict::Pass
            } else {
                detail.insert(
                    0,
                    format!(
                        "{} of {separable} separable programs' code writable or data executable",
                        self.program_pages
                    ),
                );
                Verdict::Fail
            },
            seconds,
            detail: Some(detail.join("\n")),
        }
    }
}

/// Where `cargo xtask build` leaves the programs' ELF files (the last
/// build of each).
fn programs_dir() -> std::path::PathBuf {
    crate::debian::target_dir().join(format!("services/{}/release", crate::setup::TARGET))
}

/// Whether `tests/qemu/<system>.expect` (or the Pi's own test, for the
/// demo) runs the system on the Raspberry Pi 4 too: a line `test NAME: rpi4`.
fn runs_on_rpi4(root: &Path, manifest: &Path) -> bool {
    if manifest.ends_with("systems/demo.toml") {
        return true;
    }
    let expect = manifest.with_extension("expect");
    let text = std::fs::read_to_string(expect).unwrap_or_default();
    text.lines().any(|line| {
        line.strip_prefix("test ")
            .and_then(|l| l.split_once(':'))
            .is_some_and(|(_, machine)| machine.trim().starts_with("rpi4"))
    }) && manifest.starts_with(root.join("tests/qemu"))
}

/// Builds and checks every manifest's tables on every machine it is built
/// for: its own platform's (QEMU virt, with each GIC), and the Raspberry Pi
/// 4 for the systems whose tests run there too.
fn validate() -> Result<Report> {
    let root = crate::root();
    let read = |name: &str| {
        let path = root.join("platforms").join(name).join("platform.toml");
        hv_manifest::platform::Platform::read(&path)
            .map_err(|e| error!("{}", e.to_string().trim_end()))
    };
    let virt = read("qemu-virt")?;
    let pi = read(crate::rpi4::PLATFORM)?;
    let mut report = Report::default();
    for path in pagetables::manifest_paths(&root) {
        let shown = path
            .strip_prefix(&root)
            .unwrap_or(&path)
            .display()
            .to_string();
        report.manifests += 1;
        let mut boards = vec![(None, &virt)];
        if runs_on_rpi4(&root, &path) {
            boards.push((Some(crate::rpi4::PLATFORM), &pi));
        }
        let mut built_any = false;
        for (board, platform) in boards {
            let loaded = crate::system::System::load_for(
                &path,
                &crate::system::GuestChoice::default(),
                board,
            );
            let system = match loaded {
                Ok(system) => system,
                Err(e) => {
                    let on = board.unwrap_or("its platform");
                    report.failures[0].push(format!("{shown} for {on}: cannot be compiled: {e}"));
                    built_any = true;
                    continue;
                }
            };
            if system.platform.name != platform.name {
                return Err(error!(
                    "{shown}: platform `{}`: only qemu-virt and rpi4 are modelled",
                    system.platform.name
                ));
            }
            let mut image_name = system.name.clone();
            if let Some(board) = board {
                image_name = format!("{image_name}-{board}");
            }
            let image = crate::system::output_dir().join(format!("{image_name}.img"));
            let built = pagetables::built_image(&image, &system.compiled.manifest);
            let programs = match built {
                Some(_) => Vec::new(),
                None => (system.compiled.programs.iter())
                    .map(|name| std::fs::read(programs_dir().join(name)).ok())
                    .collect(),
            };
            let manifest = pagetables::Manifest {
                path: shown.clone(),
                compiled: system.compiled,
                built,
                programs,
            };
            for (machine, dtb) in pagetables::machines(&platform.name).map_err(crate::Error)? {
                let dtb = dtb.as_slice();
                let built = match pagetables::build(&manifest, platform, dtb) {
                    Ok(built) => built,
                    Err(why) => {
                        report.refused.push(format!("{shown} on {machine}: {why}"));
                        continue;
                    }
                };
                built_any = true;
                report.configurations += 1;
                report.from_images += usize::from(manifest.built.is_some());
                report.partitions += built.partitions.len();
                let findings = pagetables::check(&built);
                let clean = findings.clean();
                report.mappings += findings.mappings;
                report.tables += findings.walked.tables;
                report.descriptors += findings.walked.descriptors;
                report.wx_allowed += findings.wx_allowed;
                let lists = [
                    findings.exact,
                    findings.disjoint,
                    findings.kernel,
                    findings.wx,
                ];
                for (into, from) in report.failures.iter_mut().zip(lists) {
                    into.extend(
                        from.into_iter()
                            .map(|f| format!("{shown} on {machine}: {f}")),
                    );
                }
                for (index, spec) in built.manifest.partitions.iter().enumerate() {
                    let Some(program) = spec.program() else {
                        continue;
                    };
                    let name = &manifest.compiled.programs[usize::from(program)];
                    // The program in the boot package the tables were built for.
                    let Some(elf) = &built.programs[index] else {
                        report.programs_missing.insert(name.clone());
                        continue;
                    };
                    report.programs.0 += 1;
                    let segments =
                        pagetables::segments(elf).map_err(|e| error!("program `{name}`: {e}"))?;
                    match pagetables::program_wx(&built, index, &segments) {
                        Some(failures) => {
                            report.programs.1 += 1;
                            report.program_pages += usize::from(!failures.is_empty());
                            report.program_failures.extend(
                                failures
                                    .into_iter()
                                    .map(|f| format!("{shown} on {machine}: {f}")),
                            );
                        }
                        None => {
                            report.inseparable.insert(name.clone());
                        }
                    }
                }
                if clean {
                    report.clean += 1;
                }
                if manifest.path == "systems/demo.toml" && machine == "virt-gicv3" {
                    report.negatives = pagetables::negatives(&built);
                }
                report.machines.insert(machine);
            }
        }
        if !built_any {
            report.failures[0].push(format!("{shown}: the kernel refuses it on every machine"));
        }
    }
    Ok(report)
}

/// `cargo xtask prove`.
pub(crate) fn main(options: &Options) -> Result<ExitCode> {
    let rows = rows(options.quick);
    print!("{}", table(&rows));
    let failed = rows.iter().filter(|r| r.verdict == Verdict::Fail).count();
    let skipped = rows
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Skipped(_)))
        .count();
    println!(
        "\n{} passed, {failed} failed, {skipped} skipped",
        rows.len() - failed - skipped
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The table, then each row's detail (a failure's reason, a mutant's
/// counterexample, the page tables' counts).
pub(crate) fn table(rows: &[Row]) -> String {
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.property.clone(),
                r.method.clone(),
                r.scope.clone(),
                r.states.map_or("-".into(), |s| s.to_string()),
                match &r.verdict {
                    Verdict::Pass => "pass".into(),
                    Verdict::Fail => "FAIL".into(),
                    Verdict::Skipped(why) => format!("skipped: {why}"),
                },
                format!("{:.1} s", r.seconds),
            ]
        })
        .collect();
    let header = ["property", "method", "scope", "states", "result", "time"];
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |row: &[String]| {
        let mut text = String::from("|");
        for (c, w) in row.iter().zip(widths) {
            text.push_str(&format!(" {c:<w$} |"));
        }
        text.push('\n');
        text
    };
    let mut out = line(&header.map(String::from));
    out.push('|');
    for w in widths {
        out.push_str(&format!("{}|", "-".repeat(w + 2)));
    }
    out.push('\n');
    for row in &cells {
        out.push_str(&line(row));
    }
    for r in rows.iter().filter(|r| r.detail.is_some()) {
        let detail = r.detail.as_deref().unwrap_or("");
        if detail.is_empty() {
            continue;
        }
        out.push_str(&format!("\n{}:\n", r.property));
        for l in detail.lines() {
            out.push_str(&format!("    {l}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests;
