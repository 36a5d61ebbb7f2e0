// SPDX-License-Identifier: Apache-2.0 OR MIT
//! System tests of the test oracle itself: a partition that prints lines
//! imitating the kernel's and another partition's cannot make a check pass.
//!
//! `mimic` (`tests/partitions/mimic`) prints a fault report of `pong`, which never
//! faults, the ready line and `[ping] ping: done`, plainly and behind a
//! carriage return, backspaces, an escape sequence and padding that fills a
//! line buffer; then it panics, so the kernel reports a real fault. The
//! imitations reach the console (a search of the whole console, the old
//! oracle, finds them), but as mimic's own lines, with its control
//! characters shown as `.` or dropped; the checks (`crate::transcript`, which every
//! system test uses) do not find them, and do find the kernel's real report
//! and ping's real line.
//!
//! - `tests/qemu/oracle.toml`: no console service; the kernel prints every
//!   partition's lines to the UART.
//! - `tests/qemu/oracle-console.toml`: the console and the UART driver;
//!   `mimic` prints through the console, `mimic-log` (no channel) through
//!   the kernel's log, which the console prints.
//!
//! The machines and the lines each run waits for are in their `.expect`
//! files; the judgement is here.

use hv_abi::console::{PARTITION_FAULT, READY};

use super::expect::Expect;
use super::{Context, expect_lines};
use crate::qemu::Outcome;
use crate::transcript::Writer;

/// The kernel's lines mimic imitates, as a check would look for them: none
/// of them happens in these systems.
const IMITATED: [&str; 3] = [
    "bulkhead: fault: partition `pong` stopped (reason 0x1); the others carry on",
    "bulkhead: fault: partition `pong`",
    "bulkhead: fault: partition `pong` restarting (reason 0x1)",
];

/// The kernel's report of mimic `name`'s real fault: its panic.
fn real_fault(name: &str) -> String {
    format!("{PARTITION_FAULT}partition `{name}` stopped (reason 0x1); the others carry on")
}

/// After the expectation file's checks (the run reached each mimic's real
/// fault report and ping's last line, nothing panicked): what the oracle
/// made of the imitations. The mimics are the partitions whose real fault
/// report the file waits for.
pub(super) fn spoof(_: &Context<'_>, expect: &Expect, outcome: &Outcome) -> Result<String, String> {
    let mimics: Vec<&str> = expect
        .until
        .iter()
        .filter_map(|line| {
            let name = line
                .strip_prefix(PARTITION_FAULT)?
                .strip_prefix("partition `")?
                .split('`')
                .next()?;
            (*line == real_fault(name)).then_some(name)
        })
        .collect();
    if mimics.is_empty() {
        return Err(format!(
            "{}.expect waits for no mimic's fault report",
            expect.system
        ));
    }
    judge(outcome, &mimics).map_err(|why| format!("{why}\n--- console ---\n{}", outcome.console))
}

/// What the oracle must make of a run in which `mimics` did their
/// imitations: the attack reached the console, and the checks are not
/// fooled by it.
fn judge(outcome: &Outcome, mimics: &[&str]) -> Result<String, String> {
    let transcript = outcome.transcript();
    for mimic in mimics {
        // The attack was made: every imitation is on the console, where a
        // search of the whole console (the old oracle) finds it.
        let lines = transcript.partition_lines(mimic);
        let imitations = lines
            .iter()
            .filter(|l| l.contains("bulkhead: fault: partition `pong`"))
            .count();
        if imitations < 7 || !lines.contains(&"mimic: done imitating") {
            return Err(format!(
                "`{mimic}` printed {imitations} of its 7 imitations of the kernel's report"
            ));
        }
        for imitation in ["bulkhead: system ready", "[ping] ping: done"] {
            if !lines.contains(&imitation) {
                return Err(format!("`{mimic}` did not print {imitation:?}"));
            }
        }
    }
    if !outcome
        .console
        .contains("bulkhead: fault: partition `pong` stopped")
    {
        return Err("the imitation is not on the console".into());
    }
    // None of mimic's tricks reached the terminal: after the kernel's ready
    // line, no line holds a carriage return, a backspace or an escape.
    let after = transcript
        .lines()
        .iter()
        .position(|l| l.writer == Writer::Kernel && l.text == READY)
        .ok_or("no ready line")?;
    if let Some(bad) = transcript.lines()[after..]
        .iter()
        .find(|l| l.text.contains(['\r', '\u{8}', '\u{1b}']))
    {
        return Err(format!(
            "a partition's control characters reached the console: {bad:?}"
        ));
    }
    // The oracle's verdict on every imitation: not found.
    for imitation in IMITATED {
        if expect_lines(outcome, &[imitation.to_owned()]).is_ok() {
            return Err(format!("the oracle took mimic's line for {imitation:?}"));
        }
    }
    let ready = transcript
        .kernel_lines()
        .iter()
        .filter(|l| **l == READY)
        .count();
    if ready != 1 {
        return Err(format!("{ready} ready lines of the kernel's, not 1"));
    }
    // Ping's one real `ping: done` is found, once, and the kernel's real
    // reports are found: exactly one per mimic, and no other.
    let mut real: Vec<String> = mimics.iter().map(|m| real_fault(m)).collect();
    real.push("[ping] ping: done\r\n".into());
    expect_lines(outcome, &real)?;
    let pings = transcript.count("[ping] ping: done\r\n");
    let reports = transcript.count(PARTITION_FAULT);
    if pings != 1 || reports != mimics.len() {
        return Err(format!(
            "{pings} lines of ping's `ping: done`, {reports} fault reports of the kernel's; \
             expected 1 and {}",
            mimics.len()
        ));
    }
    Ok(format!(
        "{} imitations of the kernel's lines and ping's, none taken for them",
        9 * mimics.len()
    ))
}
