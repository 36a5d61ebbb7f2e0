// SPDX-License-Identifier: Apache-2.0 OR MIT
//! `cargo xtask fuzz TARGET --time SECS`: runs one of `hv-fuzz`'s targets
//! under libFuzzer with cargo-fuzz on the nightly toolchain.
//!
//! cargo-fuzz is installed into `target/tools/cargo-fuzz` the first time
//! (from crates.io). An empty corpus is seeded from the workspace: the
//! system manifests (text for the compiler, their boot packages and boot
//! manifests for the decoder) and QEMU's device trees. New interesting
//! inputs go to `fuzz/corpus/TARGET/`, crashes to
//! `fuzz/regressions/TARGET/`; `cargo xtask test` replays both on stable
//! (`fuzz/tests/replay.rs`), so a crash fails the tests until it is fixed.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use crate::args::{self, Long, Value};
use crate::{Result, error};

/// What `fuzz` was asked.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Options {
    target: String,
    seconds: u64,
}

/// `cargo xtask fuzz TARGET [--time SECS]`.
pub(crate) fn parse<A: AsRef<OsStr>>(args: &[A]) -> Result<Options> {
    args::parse_for("fuzz", args, |parser| {
        let mut target = None;
        let mut seconds = 60;
        while let Some(arg) = parser.next()? {
            match arg {
                Long("time") => {
                    let v = args::string(parser, "--time")?;
                    seconds = v.parse().ok().filter(|&s| s > 0).ok_or_else(|| {
                        args::bad(format!("--time takes whole seconds, not `{v}`"))
                    })?;
                }
                Value(name) if target.is_none() => target = Some(args::text(name)?),
                other => return Err(other.unexpected()),
            }
        }
        let names: Vec<&str> = hv_fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
        let target = target
            .ok_or_else(|| args::bad(format!("needs a target: one of {}", names.join(", "))))?;
        if hv_fuzz::target(&target).is_none() {
            return Err(args::bad(format!(
                "no fuzz target `{target}`; the targets are {}",
                names.join(", ")
            )));
        }
        Ok(Options { target, seconds })
    })
}

/// `cargo xtask fuzz`.
pub(crate) fn main(options: &Options) -> Result<ExitCode> {
    let root = crate::root();
    let fuzz = root.join("fuzz");
    let corpus = fuzz.join("corpus").join(&options.target);
    let regressions = fuzz.join("regressions").join(&options.target);
    std::fs::create_dir_all(&corpus)?;
    std::fs::create_dir_all(&regressions)?;
    if std::fs::read_dir(&corpus)?.next().is_none() {
        let seeded = seed(&options.target, &corpus)?;
        println!("fuzz: seeded {} with {seeded} inputs", corpus.display());
    }
    let before = crashes(&regressions);
    let cargo_fuzz = ensure_cargo_fuzz(&root)?;
    let mut command = Command::new(&cargo_fuzz);
    command
        .current_dir(&root)
        .env("RUSTUP_TOOLCHAIN", "nightly")
        .args(["fuzz", "run", "--fuzz-dir"])
        .arg(fuzz.join("libfuzzer"))
        .arg(&options.target)
        .arg(&corpus)
        .arg("--")
        .arg(format!("-max_total_time={}", options.seconds))
        .arg(format!("-artifact_prefix={}/", regressions.display()))
        .arg("-print_final_stats=1")
        .stderr(Stdio::piped());
    println!(
        "fuzz: {} for {} s (cargo-fuzz, nightly)",
        options.target, options.seconds
    );
    let output = command
        .output()
        .map_err(|e| error!("cannot run {}: {e}", cargo_fuzz.display()))?;
    let log = String::from_utf8_lossy(&output.stderr);
    let runs = executions(&log);
    let found: Vec<PathBuf> = crashes(&regressions)
        .into_iter()
        .filter(|c| !before.contains(c))
        .collect();
    match runs {
        Some(runs) => println!(
            "fuzz: {}: {runs} executions, {} new crashes, corpus {} inputs",
            options.target,
            found.len(),
            std::fs::read_dir(&corpus)?.count()
        ),
        None => {
            eprintln!("{log}");
            return Err(error!(
                "fuzz: {} did not run (cargo-fuzz's output is above)",
                options.target
            ));
        }
    }
    minimize(&cargo_fuzz, &root, &options.target, &corpus);
    for crash in &found {
        println!("fuzz: crash kept as {}", crash.display());
    }
    Ok(if found.is_empty() && output.status.success() {
        ExitCode::SUCCESS
    } else {
        if found.is_empty() {
            eprintln!("{log}");
        }
        ExitCode::FAILURE
    })
}

/// Keeps only the inputs of `corpus` that add coverage (`cargo fuzz
/// cmin`), so that what is kept (and replayed by the tests) stays small. A
/// failure leaves the corpus as it was.
fn minimize(cargo_fuzz: &Path, root: &Path, target: &str, corpus: &Path) {
    let minimized = Command::new(cargo_fuzz)
        .current_dir(root)
        .env("RUSTUP_TOOLCHAIN", "nightly")
        .args(["fuzz", "cmin", "--fuzz-dir"])
        .arg(root.join("fuzz/libfuzzer"))
        .arg(target)
        .arg(corpus)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let count = std::fs::read_dir(corpus).map_or(0, Iterator::count);
    if minimized {
        println!("fuzz: corpus minimized to {count} inputs");
    } else {
        println!("fuzz: could not minimize the corpus; it keeps {count} inputs");
    }
}

/// The files in `folder`.
fn crashes(folder: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(folder)
        .map(|entries| entries.filter_map(|e| Some(e.ok()?.path())).collect())
        .unwrap_or_default()
}

/// How many inputs libFuzzer ran, from its final statistics.
fn executions(log: &str) -> Option<u64> {
    log.lines().rev().find_map(|line| {
        line.trim()
            .strip_prefix("stat::number_of_executed_units:")
            .and_then(|n| n.trim().parse().ok())
    })
}

/// cargo-fuzz: on `PATH` with the nightly toolchain, or installed into
/// `target/tools/cargo-fuzz` from crates.io.
fn ensure_cargo_fuzz(root: &Path) -> Result<PathBuf> {
    let nightly = Command::new("rustup")
        .args(["run", "nightly", "rustc", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !nightly {
        let status = Command::new("rustup")
            .args(["toolchain", "install", "nightly", "--profile", "minimal"])
            .status()
            .map_err(|e| error!("cannot run rustup: {e}"))?;
        if !status.success() {
            return Err(error!(
                "fuzzing needs the nightly toolchain, and `rustup toolchain install nightly` failed"
            ));
        }
    }
    let folder = root.join("target/tools/cargo-fuzz");
    let binary = folder.join("bin/cargo-fuzz");
    if binary.is_file() {
        return Ok(binary);
    }
    if let Some(found) = crate::setup::which("cargo-fuzz") {
        return Ok(found);
    }
    println!("fuzz: installing cargo-fuzz into {}", folder.display());
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["install", "cargo-fuzz", "--locked", "--root"])
        .arg(&folder)
        .status()
        .map_err(|e| error!("cannot run cargo install: {e}"))?;
    if !status.success() || !binary.is_file() {
        return Err(error!("`cargo install cargo-fuzz` failed (see above)"));
    }
    Ok(binary)
}

/// Seeds `corpus` for `target` from the workspace; returns how many inputs.
fn seed(target: &str, corpus: &Path) -> Result<usize> {
    let inputs = match target {
        "manifest" => manifests()
            .into_iter()
            .filter_map(|path| std::fs::read(path).ok())
            .collect(),
        "boot_package" => packages()
            .into_iter()
            .flat_map(|(package, blob)| {
                [
                    [&[0u8][..], &package].concat(),
                    [&[1u8][..], &blob].concat(),
                ]
            })
            .collect(),
        "device_tree" => device_trees()?,
        // The hypercall and state machine targets read choices, not
        // formats: a few short programs (every call with zero arguments;
        // a run of steps of each kind) start them.
        "hypercall" => (0u8..30).map(|call| vec![0, call]).collect(),
        _ => (0u8..16)
            .map(|step| (0..64u8).flat_map(|i| [i % 2, step, i, 0]).collect())
            .collect(),
    };
    let mut count = 0;
    for (i, input) in inputs.iter().enumerate() {
        std::fs::write(corpus.join(format!("seed-{i:03}")), input)?;
        count += 1;
    }
    Ok(count)
}

/// Every system manifest in the workspace: `systems/`, the QEMU tests' and
/// the compiler's good and bad examples.
fn manifests() -> Vec<PathBuf> {
    let root = crate::root();
    let mut paths = Vec::new();
    for folder in [
        "systems",
        "tests/qemu",
        "tests/manifests/ok",
        "tests/manifests/err",
    ] {
        if let Ok(entries) = std::fs::read_dir(root.join(folder)) {
            paths.extend(
                entries
                    .filter_map(|e| Some(e.ok()?.path()))
                    .filter(|p| p.extension().is_some_and(|e| e == "toml")),
            );
        }
    }
    paths.sort();
    paths
}

/// The boot package of every manifest that compiles without a guest's
/// files (with stand-ins for its programs), and its boot manifest blob.
fn packages() -> Vec<(Vec<u8>, Vec<u8>)> {
    let root = crate::root();
    let environment = hv_manifest::Environment::from_workspace(&root);
    manifests()
        .into_iter()
        .filter_map(|path| {
            let compiled = hv_manifest::compile_with(&path, &environment).ok()?;
            let programs: Vec<&[u8]> = compiled.programs.iter().map(|_| &b"\x7fELF"[..]).collect();
            let files: Vec<&[u8]> = compiled.files.iter().map(|_| &b"file"[..]).collect();
            let package = compiled.package(&programs, &files).ok()?;
            let start = u32::from_le_bytes(package.get(24..28)?.try_into().ok()?) as usize;
            let length = u32::from_le_bytes(package.get(28..32)?.try_into().ok()?) as usize;
            let blob = package.get(start..start.checked_add(length)?)?.to_vec();
            Some((package, blob))
        })
        .collect()
}

/// A device tree cut to its blocks' end (QEMU pads it to 1 MiB), its
/// `totalsize` to match, so that the fuzzer's inputs stay small.
fn compact(mut tree: Vec<u8>) -> Vec<u8> {
    let field = |tree: &[u8], at: usize| {
        tree.get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map_or(0, |b| u32::from_be_bytes(b) as usize)
    };
    let end = (field(&tree, 8) + field(&tree, 36)).max(field(&tree, 12) + field(&tree, 32));
    if end >= 40 && end <= tree.len() {
        tree.truncate(end);
        if let Ok(size) = u32::try_from(end) {
            tree[4..8].copy_from_slice(&size.to_be_bytes());
        }
    }
    tree
}

/// QEMU virt's device trees (GICv2 and GICv3, one and four cores).
fn device_trees() -> Result<Vec<Vec<u8>>> {
    let tools = crate::setup::ensure(crate::setup::Needs { uboot: false })?;
    let dir = crate::root().join("target/tmp");
    std::fs::create_dir_all(&dir)?;
    let mut trees = Vec::new();
    for (gic, smp) in [(3, 4), (2, 1), (3, 1)] {
        let path = dir.join(format!("fuzz-virt-gic{gic}-{smp}.dtb"));
        let status = tools
            .qemu_command()
            .arg("-M")
            .arg(format!(
                "virt,virtualization=on,gic-version={gic},dumpdtb={}",
                path.display()
            ))
            .args(["-cpu", "cortex-a57", "-m", "1G", "-smp", &smp.to_string()])
            .args(["-display", "none", "-nic", "none", "-audio", "none"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| error!("cannot run {}: {e}", tools.qemu.display()))?;
        if status.success() && path.is_file() {
            trees.push(compact(std::fs::read(&path)?));
        }
    }
    Ok(trees)
}

#[cfg(test)]
mod tests {
    use super::{Options, parse};

    #[test]
    fn options_are_parsed() {
        let error = |args: &[&str]| parse(args).unwrap_err().to_string();
        assert_eq!(
            parse(&["manifest"]).unwrap(),
            Options {
                target: "manifest".into(),
                seconds: 60
            }
        );
        assert_eq!(parse(&["hypercall", "--time", "5"]).unwrap().seconds, 5);
        assert_eq!(parse(&["--time=7", "hypercall"]).unwrap().seconds, 7);
        assert!(error(&[]).starts_with("cargo xtask fuzz: needs a target: one of "));
        assert!(error(&["nothing"]).starts_with("cargo xtask fuzz: no fuzz target `nothing`"));
        assert_eq!(
            error(&["hypercall", "--time", "0"]),
            "cargo xtask fuzz: --time takes whole seconds, not `0`"
        );
        assert_eq!(
            error(&["hypercall", "--time"]),
            "cargo xtask fuzz: --time needs a value; try `cargo xtask help`"
        );
        assert_eq!(
            error(&["hypercall", "manifest"]),
            "cargo xtask fuzz: unexpected argument `manifest`; try `cargo xtask help`"
        );
        assert_eq!(
            error(&["hypercall", "--jobs", "2"]),
            "cargo xtask fuzz: unknown option `--jobs`; try `cargo xtask help`"
        );
    }
}
