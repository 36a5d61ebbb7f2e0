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
//! test NAME: gicv3, 4 cores, 1G   a test on QEMU's virt: its name, GIC, cores, RAM
//!                                 (1G if left out); one line per machine, each a
//!                                 test of its own
//! test NAME: rpi4                 a test on the Raspberry Pi 4 (QEMU's raspi4b: 4
//!                                 cores, GIC-400, 2 GiB), the system built for it
//! not on rpi4: REASON             why no test runs on that board (each board needs
//!                                 a test or this)
//! timeout: 30 s                   stop the run after this long (30 s if left out)
//! icount: shift=0,sleep=off       run QEMU with `-icount shift=0,sleep=off`: one
//!                                 instruction a nanosecond, runs that repeat
//! until: NEEDLE                   stop once every `until` line is there; each must be
//! has: NEEDLE                     a line must match
//! not: NEEDLE                     no line may match
//! count N: NEEDLE                 exactly N lines match
//! nowhere: TEXT                   TEXT is nowhere on the console, not even mid-line
//! in order:                       the indented needles below match in this order
//! one of:                         at least one of the indented needles below matches
//! note: TEXT                      what the test reports when it passes
//! rpi4: STATEMENT                 any statement but `test` and `not on`, for the
//!                                 runs on that board (`virt` or `rpi4`) alone
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

/// A board an expectation file's tests run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Board {
    /// QEMU's `virt` (platform `qemu-virt`): any GIC, cores and RAM.
    Virt,
    /// The Raspberry Pi 4 in QEMU 10's `raspi4b` (platform `rpi4`): a fixed
    /// board, four cores, the GIC-400, 2 GiB.
    Rpi4,
}

impl Board {
    /// Every board, in the order a file's checks are kept.
    pub(super) const ALL: [Board; 2] = [Board::Virt, Board::Rpi4];

    /// The board's name in a file.
    pub(super) fn name(self) -> &'static str {
        match self {
            Board::Virt => "virt",
            Board::Rpi4 => "rpi4",
        }
    }

    fn named(name: &str) -> Option<Board> {
        Board::ALL.into_iter().find(|b| b.name() == name)
    }

    fn index(self) -> usize {
        match self {
            Board::Virt => 0,
            Board::Rpi4 => 1,
        }
    }
}

/// The machine a test boots: a board and, on `virt`, its shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Shape {
    /// QEMU's `virt`.
    Virt {
        /// The interrupt controller.
        gic: Gic,
        /// Cores.
        smp: u32,
        /// RAM, as QEMU's `-m` takes it.
        memory: String,
    },
    /// QEMU's `raspi4b`, as `crate::rpi4::machine` makes it.
    Rpi4,
}

impl Shape {
    pub(super) fn board(&self) -> Board {
        match self {
            Shape::Virt { .. } => Board::Virt,
            Shape::Rpi4 => Board::Rpi4,
        }
    }
}

/// One machine to boot a system on: a test of its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct MachineSpec {
    /// The test's name.
    pub(super) name: String,
    /// The machine.
    pub(super) shape: Shape,
}

/// An expectation file: its tests, and what it expects on each board.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct ExpectFile {
    /// The system's name: the file's stem, `tests/qemu/<system>.toml`.
    pub(super) system: String,
    /// The machines, each a test.
    pub(super) machines: Vec<MachineSpec>,
    /// The boards it does not run on, each with the reason the file gives.
    pub(super) not_on: Vec<(Board, String)>,
    /// What it expects on each board of [`Board::ALL`], in that order.
    boards: Vec<Expect>,
}

impl ExpectFile {
    /// What the file expects of a run on `board`: its statements for every
    /// board and those for `board` alone.
    pub(super) fn on(&self, board: Board) -> &Expect {
        &self.boards[board.index()]
    }

    /// The boards the file neither runs on nor says why not (`not on`).
    fn unsaid(&self) -> Vec<Board> {
        Board::ALL
            .into_iter()
            .filter(|b| !self.machines.iter().any(|m| m.shape.board() == *b))
            .filter(|b| !self.not_on.iter().any(|(n, _)| n == b))
            .collect()
    }
}

/// What an expectation file expects of a run on one board.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Expect {
    /// The system's name: the file's stem, `tests/qemu/<system>.toml`.
    pub(super) system: String,
    /// The board.
    pub(super) board: Board,
    /// How long a run may take.
    pub(super) timeout: Duration,
    /// QEMU's `-icount` option, if the runs count instructions as time.
    pub(super) icount: Option<String>,
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

impl Expect {
    fn new(system: &str, board: Board) -> Self {
        Self {
            system: system.to_owned(),
            board,
            timeout: DEFAULT_TIMEOUT,
            icount: None,
            until: Vec::new(),
            has: Vec::new(),
            not: Vec::new(),
            count: Vec::new(),
            nowhere: Vec::new(),
            in_order: Vec::new(),
            one_of: Vec::new(),
            note: String::new(),
        }
    }

    /// Adds one statement to what this board expects.
    fn apply(&mut self, statement: &Statement) {
        match statement {
            Statement::Timeout(timeout) => self.timeout = *timeout,
            Statement::Icount(icount) => self.icount = Some(icount.clone()),
            Statement::Until(n) => self.until.push(n.clone()),
            Statement::Has(n) => self.has.push(n.clone()),
            Statement::Not(n) => self.not.push(n.clone()),
            Statement::Count(count, n) => self.count.push((*count, n.clone())),
            Statement::Nowhere(text) => self.nowhere.push(text.clone()),
            Statement::InOrder => self.in_order.push(Vec::new()),
            Statement::OneOf => self.one_of.push(Vec::new()),
            Statement::Note(note) => self.note = note.clone(),
        }
    }

    /// Adds an indented needle to the block opened last.
    fn extend_block(&mut self, block: Block, needle: &str) {
        let group = match block {
            Block::InOrder => self.in_order.last_mut(),
            Block::OneOf => self.one_of.last_mut(),
        };
        if let Some(group) = group {
            group.push(needle.to_owned());
        }
    }

    /// Refuses what could not fail, or would fail whatever the console.
    fn check(&self) -> Result<(), String> {
        if let Some(empty) = self
            .in_order
            .iter()
            .chain(&self.one_of)
            .find(|group| group.len() < 2)
        {
            return Err(format!(
                "a block of {} needle(s): `in order:` and `one of:` need two or more",
                empty.len()
            ));
        }
        if self.until.is_empty()
            && self.has.is_empty()
            && self.count.is_empty()
            && self.in_order.is_empty()
            && self.one_of.is_empty()
        {
            // Only absences: a kernel that never booted would pass.
            return Err("no `until:`, `has:`, `count N:` or block: nothing must appear".into());
        }
        Ok(())
    }
}

/// A statement that adds to what a board expects.
enum Statement {
    Timeout(Duration),
    Icount(String),
    Until(String),
    Has(String),
    Not(String),
    Count(usize, String),
    Nowhere(String),
    InOrder,
    OneOf,
    Note(String),
}

/// Which indented block is open.
#[derive(Clone, Copy)]
enum Block {
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

/// QEMU's `-icount` option as a file gives it: `shift=0,sleep=off`, a list
/// of `key=value` pairs (checked for form only: QEMU judges the rest).
fn icount(value: &str) -> Result<String, String> {
    let value = value.trim();
    let pair = |p: &str| {
        p.split_once('=').is_some_and(|(k, v)| {
            !k.is_empty()
                && !v.is_empty()
                && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'=')
        })
    };
    if value.is_empty() || !value.split(',').all(pair) {
        return Err(format!(
            "`{value}`: icount takes QEMU's `-icount` option, e.g. `shift=0,sleep=off`"
        ));
    }
    Ok(value.to_owned())
}

/// What follows a test's name: `gicv3, 4 cores, 1G` (QEMU's virt) or a
/// fixed board's name (`rpi4`).
fn machine(name: &str, rest: &str) -> Result<MachineSpec, String> {
    let parts: Vec<&str> = rest.split(',').map(str::trim).collect();
    let gic = match parts.first().copied() {
        Some("gicv2") => Gic::V2,
        Some("gicv3") => Gic::V3,
        Some("rpi4") if parts.len() == 1 => {
            return Ok(MachineSpec {
                name: name.to_owned(),
                shape: Shape::Rpi4,
            });
        }
        Some("rpi4") => {
            return Err(format!(
                "`{rest}`: the rpi4 is a fixed board (4 cores, GIC-400, 2 GiB): `rpi4` alone"
            ));
        }
        other => {
            return Err(format!(
                "`{}`: a machine is `gicv2` or `gicv3` (QEMU's virt), or `rpi4`",
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
        shape: Shape::Virt { gic, smp, memory },
    })
}

/// One statement that adds to what a board expects: `key` and `value` of
/// `key: value`.
fn statement(key: &str, value: &str) -> Result<Statement, String> {
    if let Some(n) = key.strip_prefix("count ") {
        let n = n
            .trim()
            .parse()
            .map_err(|_| format!("`{n}` is not a count"))?;
        return Ok(Statement::Count(n, needle(value)?));
    }
    Ok(match key {
        "timeout" => Statement::Timeout(Duration::from_secs(
            value
                .trim()
                .strip_suffix(" s")
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("`{value}`: a timeout is `N s`"))?,
        )),
        "icount" => Statement::Icount(icount(value)?),
        "until" => Statement::Until(needle(value)?),
        "has" => Statement::Has(needle(value)?),
        "not" => Statement::Not(needle(value)?),
        "nowhere" => {
            let text = needle(value)?;
            if text.ends_with('\n') {
                // Console lines end in "\r\n": it could never fail.
                return Err("`nowhere:` is plain text; `$` means nothing there".into());
            }
            Statement::Nowhere(text)
        }
        "note" => Statement::Note(value.trim().to_owned()),
        "in order" if value.trim().is_empty() => Statement::InOrder,
        "one of" if value.trim().is_empty() => Statement::OneOf,
        _ => return Err(format!("unknown statement `{key}:`")),
    })
}

/// Reads an expectation file's text for system `system`.
pub(super) fn parse(system: &str, text: &str) -> Result<ExpectFile, String> {
    let mut file = ExpectFile {
        system: system.to_owned(),
        machines: Vec::new(),
        not_on: Vec::new(),
        boards: Board::ALL.map(|b| Expect::new(system, b)).to_vec(),
    };
    // The boards named in a `BOARD:` prefix, each with its first line.
    let mut named: Vec<(Board, usize)> = Vec::new();
    // The block open, and the board it is for (every board if none).
    let mut block: Option<(Block, Option<Board>)> = None;
    for (number, line) in text.lines().enumerate() {
        let at = |why: String| format!("line {}: {why}", number + 1);
        // A comment starts its line: an indented `#` is a needle's.
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            let (open, only) = block
                .ok_or_else(|| at("an indented line outside `in order:` or `one of:`".into()))?;
            let needle = needle(line).map_err(at)?;
            for expect in &mut file.boards {
                if only.is_none_or(|b| b == expect.board) {
                    expect.extend_block(open, &needle);
                }
            }
            continue;
        }
        block = None;
        let (key, value) = line
            .split_once(':')
            .ok_or_else(|| at(format!("`{line}` is not `key: value`")))?;
        // `rpi4: has: ...`: a statement for that board's runs alone.
        let (only, key, value) = match Board::named(key) {
            Some(board) => {
                let (key, value) = value
                    .trim_start()
                    .split_once(':')
                    .ok_or_else(|| at(format!("`{line}` is not `{key}: key: value`")))?;
                if !named.iter().any(|(b, _)| *b == board) {
                    named.push((board, number + 1));
                }
                (Some(board), key, value)
            }
            None => (None, key, value),
        };
        let value = value.strip_prefix(' ').unwrap_or(value);
        if let Some(name) = key.strip_prefix("test ") {
            if only.is_some() {
                return Err(at("a `test` line names its machine itself".into()));
            }
            let name = name.trim();
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(at(format!("`{name}` is not a test name")));
            }
            file.machines.push(machine(name, value).map_err(at)?);
            continue;
        }
        if let Some(board) = key.strip_prefix("not on ") {
            if only.is_some() {
                return Err(at("a `not on` line names its board itself".into()));
            }
            let board =
                Board::named(board.trim()).ok_or_else(|| at(format!("`{key}:` names no board")))?;
            if value.trim().is_empty() {
                return Err(at(format!("`{key}:` says why: the reason is missing")));
            }
            file.not_on.push((board, value.trim().to_owned()));
            continue;
        }
        let statement = statement(key, value).map_err(at)?;
        block = match statement {
            Statement::InOrder => Some((Block::InOrder, only)),
            Statement::OneOf => Some((Block::OneOf, only)),
            _ => None,
        };
        for expect in &mut file.boards {
            if only.is_none_or(|b| b == expect.board) {
                expect.apply(&statement);
            }
        }
    }
    if file.machines.is_empty() {
        return Err("no `test NAME: ...` line: the file runs nothing".into());
    }
    let boards: Vec<Board> = Board::ALL
        .into_iter()
        .filter(|b| file.machines.iter().any(|m| m.shape.board() == *b))
        .collect();
    for (board, line) in &named {
        if !boards.contains(board) {
            return Err(format!(
                "line {line}: `{}:` statements, but no test runs on {}",
                board.name(),
                board.name()
            ));
        }
    }
    for (board, _) in &file.not_on {
        if boards.contains(board) {
            return Err(format!(
                "`not on {}:`, but a test runs on {}",
                board.name(),
                board.name()
            ));
        }
    }
    for board in &boards {
        file.on(*board).check().map_err(|why| {
            if boards.len() > 1 {
                format!("on {}: {why}", board.name())
            } else {
                why
            }
        })?;
    }
    Ok(file)
}

/// Every expectation file in `dir` (`X.expect` beside `X.toml`), sorted by
/// name.
pub(super) fn discover(dir: &Path) -> Result<Vec<ExpectFile>, String> {
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
            let file = parse(system, &text).map_err(|why| format!("{}: {why}", path.display()))?;
            if let Some(board) = file.unsaid().first() {
                return Err(format!(
                    "{}: no test runs on {board} and no `not on {board}: REASON` says why: \
                     a file says where its system runs",
                    path.display(),
                    board = board.name()
                ));
            }
            Ok(file)
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

    use super::{Board, ExpectFile, MachineSpec, Shape, discover, parse};
    use crate::qemu::{Gic, Outcome};

    const FILE: &str = "# A comment.\n\
        test pair-gicv3-4-cores: gicv3, 4 cores\n\
        test pair-gicv2-1-core: gicv2, 1 core, 512M\n\
        timeout: 60 s\n\
        icount: shift=0,sleep=off\n\
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
        let file = parse("pair", FILE).unwrap();
        assert_eq!(
            file.machines,
            [
                MachineSpec {
                    name: "pair-gicv3-4-cores".into(),
                    shape: Shape::Virt {
                        gic: Gic::V3,
                        smp: 4,
                        memory: "1G".into()
                    }
                },
                MachineSpec {
                    name: "pair-gicv2-1-core".into(),
                    shape: Shape::Virt {
                        gic: Gic::V2,
                        smp: 1,
                        memory: "512M".into()
                    }
                }
            ]
        );
        let expect = file.on(Board::Virt);
        assert_eq!(expect.timeout, Duration::from_secs(60));
        assert_eq!(expect.icount.as_deref(), Some("shift=0,sleep=off"));
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
            (
                "test a: gicv3, 1 core\nicount: on\n",
                "line 2: `on`: icount takes",
            ),
            (
                "test a: gicv3, 1 core\nicount: shift=0,\n",
                "line 2: `shift=0,`",
            ),
            (
                "test a: rpi4, 2 cores\n",
                "line 1: `rpi4, 2 cores`: the rpi4 is a fixed",
            ),
            ("test a: pi4\n", "line 1: `pi4`: a machine is"),
            (
                "test a: gicv3, 1 core\nrpi4: has: x\nhas: y\n",
                "line 2: `rpi4:` statements, but no test runs on rpi4",
            ),
            (
                "test a: rpi4\nrpi4: test b: rpi4\n",
                "line 2: a `test` line names",
            ),
            ("test a: rpi4\nrpi4 has: x\n", "line 2: unknown statement"),
            ("test a: rpi4\nrpi4: x\n", "line 2: `rpi4: x` is not"),
            (
                "test a: gicv3, 1 core\nhas: x\nnot on rpi5: why\n",
                "line 3: `not on rpi5:` names no board",
            ),
            (
                "test a: gicv3, 1 core\nhas: x\nnot on rpi4:\n",
                "line 3: `not on rpi4:` says why",
            ),
            (
                "test a: rpi4\nhas: x\nnot on rpi4: no RTC\n",
                "`not on rpi4:`, but a test runs on rpi4",
            ),
            // Each board must ask for something to appear.
            (
                "test a: gicv3, 1 core\ntest b: rpi4\nvirt: has: x\n",
                "on rpi4: no `until:`",
            ),
            (
                "test a: gicv3, 1 core\ntest b: rpi4\nhas: x\nrpi4: in order:\n    y\n",
                "on rpi4: a block of 1",
            ),
        ] {
            let error = parse("s", text).unwrap_err();
            assert!(error.starts_with(why), "{text:?}: {error}");
        }
    }

    fn judged(console: &str) -> Result<(), String> {
        parse("pair", FILE)
            .unwrap()
            .on(Board::Virt)
            .judge(&outcome(console))
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
            parse("s", hashes).unwrap().on(Board::Virt).in_order,
            [["[x] # 1", "[x] # 2"]]
        );
    }

    /// Statements for one board go to that board's runs alone; the others
    /// go to every board's.
    #[test]
    fn a_board_prefix_is_for_that_board_alone() {
        let text = "test t-virt: gicv2, 2 cores\n\
            test t-rpi4: rpi4\n\
            until: [ping] ping: done\n\
            virt: has: [x] at 0x9000000$\n\
            rpi4: has: [x] at 0xfe201000$\n\
            rpi4:timeout: 60 s\n\
            rpi4: in order:\n\
            \x20   [a] 1\n\
            \x20   [a] 2\n\
            in order:\n\
            \x20   [b] 1\n\
            \x20   [b] 2\n\
            note: n\n\
            not on nothing: x\n";
        assert!(parse("t", text).unwrap_err().contains("names no board"));
        let file = parse("t", text.trim_end_matches("not on nothing: x\n")).unwrap();
        assert_eq!(
            file.machines[1],
            MachineSpec {
                name: "t-rpi4".into(),
                shape: Shape::Rpi4
            }
        );
        let (virt, pi) = (file.on(Board::Virt), file.on(Board::Rpi4));
        assert_eq!(virt.until, pi.until);
        assert_eq!(virt.has, ["[x] at 0x9000000\n"]);
        assert_eq!(pi.has, ["[x] at 0xfe201000\n"]);
        assert_eq!(virt.timeout, Duration::from_secs(30));
        assert_eq!(pi.timeout, Duration::from_secs(60));
        assert_eq!(virt.in_order, [["[b] 1", "[b] 2"]]);
        assert_eq!(pi.in_order, [["[a] 1", "[a] 2"], ["[b] 1", "[b] 2"]]);
        assert_eq!((virt.note.as_str(), pi.note.as_str()), ("n", "n"));
        assert!(file.not_on.is_empty());

        let virt_only = "test t: gicv3, 1 core\nhas: x\nnot on rpi4: the PL031 RTC (rtc0)\n";
        let virt_only = parse("t", virt_only).unwrap();
        assert_eq!(
            virt_only.not_on,
            [(Board::Rpi4, "the PL031 RTC (rtc0)".to_owned())]
        );
        assert!(virt_only.unsaid().is_empty());
        // Silent about the Pi: `discover` refuses it.
        assert_eq!(
            parse("t", "test t: gicv3, 1 core\nhas: x\n")
                .unwrap()
                .unsaid(),
            [Board::Rpi4]
        );
        assert_eq!(file.unsaid(), []);
    }

    /// Every expectation file in `tests/qemu/` reads, beside its system.
    #[test]
    fn every_expectation_file_reads() {
        let all: Vec<ExpectFile> = discover(&crate::root().join("tests/qemu")).unwrap();
        assert!(!all.is_empty());
    }
}
