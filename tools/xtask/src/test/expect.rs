// SPDX-License-Identifier: Apache-2.0 OR MIT
//! System tests as data: `tests/qemu/X.expect`, beside the system
//! `tests/qemu/X.toml`, says which machines to boot it on, when to stop, and
//! which console lines must and must not appear. The runner finds every such
//! pair, so adding a test of this kind needs no Rust.
//!
//! The format (also in `docs/testing.md`), one statement a line; `#` starts
//! a comment line, blank lines are ignored:
//!
//! ```text
//! test NAME: gicv3, 4 cores, 1G   a test: its name, GIC, cores, RAM (1G if left out);
//!                                 one line per machine, each a test of its own
//! timeout: 30 s                   stop the run after this long (30 s if left out)
//! until: NEEDLE                   stop once every `until` line is there; each must be
//! has: NEEDLE                     a line must match
//! not: NEEDLE                     no line may match
//! count N: NEEDLE                 exactly N lines match
//! nowhere: TEXT                   TEXT is nowhere on the console, not even mid-line
//! in order:                       the indented needles below match in this order
//! one of:                         at least one of the indented needles below matches
//! note: TEXT                      what the test reports when it passes
//! ```
//!
//! A needle is matched as every check matches (`crate::transcript`): at the
//! start of a line of the writer it names, `[name] text` for a partition's
//! line, the kernel's line as it is. A needle that ends in `$` asks for the
//! whole line (the `$` is not part of it). A needle between double quotes is
//! the text between them, for one that starts or ends with a space. `nowhere`
//! searches the whole console as plain text: for what no output at all may
//! contain (a partition can make such a check fail, never pass).
//!
//! Every run also fails on a kernel panic or refusal anywhere on the console
//! (`Outcome::failure`), and when a line it waited for (`until`) never came.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::qemu::{Gic, Outcome};

/// How long a run may take unless the file says otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// One machine to boot a system on: a test of its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct MachineSpec {
    /// The test's name.
    pub(super) name: String,
    /// The interrupt controller.
    pub(super) gic: Gic,
    /// Cores.
    pub(super) smp: u32,
    /// RAM, as QEMU's `-m` takes it.
    pub(super) memory: String,
}

/// What an expectation file says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Expect {
    /// The system's name: the file's stem, `tests/qemu/<system>.toml`.
    pub(super) system: String,
    /// The machines, each a test.
    pub(super) machines: Vec<MachineSpec>,
    /// How long a run may take.
    pub(super) timeout: Duration,
    /// The lines that end the run, once all are there; each must be.
    pub(super) until: Vec<String>,
    /// Lines that must match.
    pub(super) has: Vec<String>,
    /// Lines that must not match.
    pub(super) not: Vec<String>,
    /// Lines that must match exactly so many times.
    pub(super) count: Vec<(usize, String)>,
    /// Text that must be nowhere on the console.
    pub(super) nowhere: Vec<String>,
    /// Groups of lines that must match in order.
    pub(super) in_order: Vec<Vec<String>>,
    /// Groups of lines of which at least one must match.
    pub(super) one_of: Vec<Vec<String>>,
    /// What a pass reports.
    pub(super) note: String,
}

/// Which indented block is open.
enum Block {
    None,
    InOrder,
    OneOf,
}

/// A needle as the file writes it: `"..."` is the text between the quotes,
/// a final `$` asks for the whole line.
fn needle(text: &str) -> Result<String, String> {
    let text = text.trim();
    let (text, whole) = match text.strip_suffix('$') {
        Some(rest) => (rest, true),
        None => (text, false),
    };
    let text = match text.strip_prefix('"') {
        Some(rest) => rest
            .strip_suffix('"')
            .ok_or_else(|| format!("a needle that opens a quote must end with one: {text:?}"))?,
        None => text,
    };
    if text.is_empty() {
        return Err("an empty needle".to_owned());
    }
    Ok(if whole {
        format!("{text}\n")
    } else {
        text.to_owned()
    })
}

/// `gicv3, 4 cores, 1G` after a test's name.
fn machine(name: &str, rest: &str) -> Result<MachineSpec, String> {
    let parts: Vec<&str> = rest.split(',').map(str::trim).collect();
    let gic = match parts.first().copied() {
        Some("gicv2") => Gic::V2,
        Some("gicv3") => Gic::V3,
        other => {
            return Err(format!(
                "`{}`: the GIC is gicv2 or gicv3",
                other.unwrap_or("")
            ));
        }
    };
    let smp = parts
        .get(1)
        .and_then(|p| p.strip_suffix(" cores").or_else(|| p.strip_suffix(" core")))
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|n| (1..=8).contains(n))
        .ok_or_else(|| format!("`{rest}`: the cores are `1 core` to `8 cores`"))?;
    let memory = match parts.get(2) {
        Some(memory) => {
            crate::qemu::parse_memory(memory).map_err(|e| format!("`{memory}`: {e}"))?;
            (*memory).to_owned()
        }
        None => "1G".to_owned(),
    };
    if parts.len() > 3 {
        return Err(format!("`{rest}`: a GIC, cores and memory, no more"));
    }
    Ok(MachineSpec {
        name: name.to_owned(),
        gic,
        smp,
        memory,
    })
}

/// Reads an expectation file's text for system `system`.
pub(super) fn parse(system: &str, text: &str) -> Result<Expect, String> {
    let mut expect = Expect {
        system: system.to_owned(),
        machines: Vec::new(),
        timeout: DEFAULT_TIMEOUT,
        until: Vec::new(),
        has: Vec::new(),
        not: Vec::new(),
        count: Vec::new(),
        nowhere: Vec::new(),
        in_order: Vec::new(),
        one_of: Vec::new(),
        note: String::new(),
    };
    let mut block = Block::None;
    for (number, line) in text.lines().enumerate() {
        let at = |why: String| format!("line {}: {why}", number + 1);
        // A comment starts its line: an indented `#` is a needle's.
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            let group = match block {
                Block::InOrder => expect.in_order.last_mut(),
                Block::OneOf => expect.one_of.last_mut(),
                Block::None => None,
            }
            .ok_or_else(|| at("an indented line outside `in order:` or `one of:`".into()))?;
            group.push(needle(line).map_err(at)?);
            continue;
        }
        block = Block::None;
        let (key, value) = line
            .split_once(':')
            .ok_or_else(|| at(format!("`{line}` is not `key: value`")))?;
        let value = value.strip_prefix(' ').unwrap_or(value);
        match key.split_once(' ') {
            Some(("test", name)) => {
                let name = name.trim();
                if name.is_empty() || name.contains(char::is_whitespace) {
                    return Err(at(format!("`{name}` is not a test name")));
                }
                expect.machines.push(machine(name, value).map_err(at)?);
            }
            Some(("count", n)) => {
                let n = n
                    .trim()
                    .parse()
                    .map_err(|_| at(format!("`{n}` is not a count")))?;
                expect.count.push((n, needle(value).map_err(at)?));
            }
            _ => match key {
                "timeout" => {
                    let seconds = value
                        .trim()
                        .strip_suffix(" s")
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| at(format!("`{value}`: a timeout is `N s`")))?;
                    expect.timeout = Duration::from_secs(seconds);
                }
                "until" => expect.until.push(needle(value).map_err(at)?),
                "has" => expect.has.push(needle(value).map_err(at)?),
                "not" => expect.not.push(needle(value).map_err(at)?),
                "nowhere" => {
                    let text = needle(value).map_err(at)?;
                    if text.ends_with('\n') {
                        // Console lines end in "\r\n": it could never fail.
                        return Err(at(
                            "`nowhere:` is plain text; `$` means nothing there".into()
                        ));
                    }
                    expect.nowhere.push(text);
                }
                "note" => expect.note = value.trim().to_owned(),
                "in order" | "one of" if value.trim().is_empty() => {
                    if key == "in order" {
                        expect.in_order.push(Vec::new());
                        block = Block::InOrder;
                    } else {
                        expect.one_of.push(Vec::new());
                        block = Block::OneOf;
                    }
                }
                _ => return Err(at(format!("unknown statement `{key}:`"))),
            },
        }
    }
    if expect.machines.is_empty() {
        return Err("no `test NAME: ...` line: the file runs nothing".into());
    }
    if let Some(empty) = expect
        .in_order
        .iter()
        .chain(&expect.one_of)
        .find(|group| group.len() < 2)
    {
        return Err(format!(
            "a block of {} needle(s): `in order:` and `one of:` need two or more",
            empty.len()
        ));
    }
    if expect.until.is_empty()
        && expect.has.is_empty()
        && expect.count.is_empty()
        && expect.in_order.is_empty()
        && expect.one_of.is_empty()
    {
        // Only absences: a kernel that never booted would pass.
        return Err("no `until:`, `has:`, `count N:` or block: nothing must appear".into());
    }
    Ok(expect)
}

/// Every expectation file in `dir` (`X.expect` beside `X.toml`), sorted by
/// name.
pub(super) fn discover(dir: &Path) -> Result<Vec<Expect>, String> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "expect"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| {
            let system = path
                .file_stem()
                .and_then(|s| s.to_str())
                .ok_or_else(|| format!("{}: not a system's name", path.display()))?;
            if !path.with_extension("toml").is_file() {
                return Err(format!(
                    "{}: there is no {system}.toml beside it",
                    path.display()
                ));
            }
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            parse(system, &text).map_err(|why| format!("{}: {why}", path.display()))
        })
        .collect()
}

impl Expect {
    /// Judges a run: fails with the console attached on the first check
    /// that does not hold.
    pub(super) fn judge(&self, outcome: &Outcome) -> Result<(), String> {
        let fail = |why: String| {
            Err(format!(
                "{why}\n--- console ---\n{}--- QEMU stderr ---\n{}",
                outcome.console, outcome.stderr
            ))
        };
        if let Some(line) = outcome.failure() {
            return fail(format!("the kernel reported: {line}"));
        }
        let transcript = outcome.transcript();
        if let Some(missing) = self.until.iter().find(|u| !transcript.has(u)) {
            return fail(format!(
                "no `{}` within {} s",
                missing.trim_end(),
                self.timeout.as_secs()
            ));
        }
        let missing: Vec<&str> = self
            .has
            .iter()
            .filter(|n| !transcript.has(n))
            .map(|n| n.trim_end())
            .collect();
        if !missing.is_empty() {
            return fail(format!(
                "the console lacks {missing:?} (each at the start of a line of its writer)"
            ));
        }
        let found: Vec<&str> = self
            .not
            .iter()
            .filter(|n| transcript.has(n))
            .map(|n| n.trim_end())
            .collect();
        if !found.is_empty() {
            return fail(format!("the console has {found:?}"));
        }
        for (expected, needle) in &self.count {
            let got = transcript.count(needle);
            if got != *expected {
                return fail(format!(
                    "`{}` {got} times, not {expected}",
                    needle.trim_end()
                ));
            }
        }
        if let Some(text) = self.nowhere.iter().find(|t| outcome.console.contains(*t)) {
            return fail(format!("`{text}` is on the console"));
        }
        for group in &self.in_order {
            let mut from = 0;
            for needle in group {
                match transcript.find(needle, from) {
                    Some(at) => from = at + 1,
                    None => {
                        return fail(format!("`{}` missing or out of order", needle.trim_end()));
                    }
                }
            }
        }
        for group in &self.one_of {
            if !group.iter().any(|n| transcript.has(n)) {
                return fail(format!("none of {group:?}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Expect, MachineSpec, discover, parse};
    use crate::qemu::{Gic, Outcome};

    const FILE: &str = "# A comment.\n\
        test pair-gicv3-4-cores: gicv3, 4 cores\n\
        test pair-gicv2-1-core: gicv2, 1 core, 512M\n\
        timeout: 60 s\n\
        until: [ping] ping: done\n\
        \n\
        has: [pong] serving$\n\
        has: \"bulkhead: fault: partition `x` vCPU 2: \"\n\
        not: [x] the write went through\n\
        count 1: [ping] ping:\n\
        nowhere: isolation is broken\n\
        in order:\n\
        \x20   [ping] 1000 calls\n\
        \x20   [ping] ping: done$\n\
        one of:\n\
        \x20   [x] read 0x0\n\
        \x20   [x] undefined\n\
        note: two lines\n";

    fn outcome(console: &str) -> Outcome {
        Outcome {
            console: console.to_owned(),
            stderr: String::new(),
            exit: None,
            timed_out: false,
            stopped_when_ready: true,
            elapsed: Duration::from_secs(1),
        }
    }

    #[test]
    fn a_file_reads_as_its_statements() {
        let expect = parse("pair", FILE).unwrap();
        assert_eq!(
            expect.machines,
            [
                MachineSpec {
                    name: "pair-gicv3-4-cores".into(),
                    gic: Gic::V3,
                    smp: 4,
                    memory: "1G".into()
                },
                MachineSpec {
                    name: "pair-gicv2-1-core".into(),
                    gic: Gic::V2,
                    smp: 1,
                    memory: "512M".into()
                }
            ]
        );
        assert_eq!(expect.timeout, Duration::from_secs(60));
        assert_eq!(expect.until, ["[ping] ping: done"]);
        assert_eq!(
            expect.has,
            [
                "[pong] serving\n",
                "bulkhead: fault: partition `x` vCPU 2: "
            ]
        );
        assert_eq!(expect.count, [(1, "[ping] ping:".to_owned())]);
        assert_eq!(
            expect.in_order,
            [["[ping] 1000 calls", "[ping] ping: done\n"]]
        );
        assert_eq!(expect.one_of, [["[x] read 0x0", "[x] undefined"]]);
        assert_eq!(expect.note, "two lines");
    }

    #[test]
    fn mistakes_are_refused_with_their_line() {
        for (text, why) in [
            ("has: x\n", "no `test NAME"),
            ("test a: gicv4, 1 core\n", "line 1: `gicv4`"),
            ("test a: gicv3, 9 cores\n", "line 1: `gicv3, 9 cores`"),
            ("test a: gicv3, 1 core, lots\n", "line 1: `lots`"),
            (
                "test a: gicv3, 1 core\nexpect: x\n",
                "line 2: unknown statement",
            ),
            ("test a: gicv3, 1 core\n    x\n", "line 2: an indented line"),
            (
                "test a: gicv3, 1 core\nhas: \"x\n",
                "line 2: a needle that opens",
            ),
            ("test a: gicv3, 1 core\nhas: $\n", "line 2: an empty needle"),
            ("test a: gicv3, 1 core\nin order:\n    x\n", "a block of 1"),
            ("test a: gicv3, 1 core\ncount two: x\n", "line 2: `two`"),
            ("test a: gicv3, 1 core\ntimeout: 5\n", "line 2: `5`"),
        ] {
            let error = parse("s", text).unwrap_err();
            assert!(error.starts_with(why), "{text:?}: {error}");
        }
    }

    fn judged(console: &str) -> Result<(), String> {
        parse("pair", FILE).unwrap().judge(&outcome(console))
    }

    const GOOD: &str = "bulkhead: system ready\r\n\
        [pong] serving\r\n\
        bulkhead: fault: partition `x` vCPU 2: data abort\r\n\
        [x] undefined, no activity monitors\r\n\
        [ping] 1000 calls answered\r\n\
        [ping] ping: done\r\n";

    #[test]
    fn a_console_with_every_line_passes() {
        judged(GOOD).unwrap();
    }

    #[test]
    fn each_check_can_fail() {
        for (change, why) in [
            (("[ping] ping: done\r\n", ""), "no `[ping] ping: done`"),
            (
                ("[pong] serving\r\n", "[pong] serving twice\r\n"),
                "the console lacks",
            ),
            (
                ("\r\n[x] undefined", "\r\n[x] the write went through"),
                "the console has",
            ),
            (
                ("[ping] 1000", "[ping] ping: 1000"),
                "`[ping] ping:` 2 times, not 1",
            ),
            (
                ("calls answered", "isolation is broken"),
                "`isolation is broken` is",
            ),
            (
                (
                    "[ping] 1000 calls answered\r\n[ping] ping: done\r\n",
                    "[ping] ping: done\r\n[ping] 1000 calls answered\r\n",
                ),
                "`[ping] ping: done` missing or out of order",
            ),
            (("[x] undefined", "[x] defined"), "none of"),
            (
                ("[pong] serving", "!!! BULKHEAD PANIC: x\r\n[pong] serving"),
                "the kernel reported",
            ),
        ] {
            let console = GOOD.replace(change.0, change.1);
            assert_ne!(console, GOOD);
            let error = judged(&console).unwrap_err();
            assert!(error.starts_with(why), "{change:?}: {error}");
        }
    }

    #[test]
    fn an_imitation_does_not_pass() {
        let console = GOOD.replace("[pong] serving", "[x] [pong] serving");
        assert!(judged(&console).is_err());
    }

    #[test]
    fn files_that_could_not_fail_are_refused() {
        let only_absences = "test t: gicv3, 1 core\nnot: [x] boom\n";
        assert!(
            parse("s", only_absences)
                .unwrap_err()
                .contains("nothing must appear")
        );
        let whole_line_nowhere = "test t: gicv3, 1 core\nhas: a\nnowhere: b$\n";
        assert!(
            parse("s", whole_line_nowhere)
                .unwrap_err()
                .contains("plain text")
        );
        // An indented `#` is a needle, not a comment.
        let hashes = "test t: gicv3, 1 core\nhas: a\nin order:\n    [x] # 1\n    [x] # 2\n";
        assert_eq!(
            parse("s", hashes).unwrap().in_order,
            [["[x] # 1", "[x] # 2"]]
        );
    }

    /// Every expectation file in `tests/qemu/` reads, beside its system.
    #[test]
    fn every_expectation_file_reads() {
        let all: Vec<Expect> = discover(&crate::root().join("tests/qemu")).unwrap();
        assert!(!all.is_empty());
    }
}
