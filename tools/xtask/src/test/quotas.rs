// SPDX-License-Identifier: Apache-2.0 OR MIT
//! System tests of what one partition may cost the others (issue 8,
//! findings 2 to 4): a log flood, a restart storm, an interrupt storm. Each
//! boots a system with the attacker beside ping/pong and checks that
//! ping/pong finish in their usual time and that the kernel reports what it
//! bounded. The machines, the lines to wait for and the fixed lines are in
//! `tests/qemu/{log-flood,restart,irq-storm}.expect`; what is counted or
//! timed is here, run after the file's checks.

use hv_abi::console::{PARTITION_FAULT, READY};

use super::Context;
use super::expect::Expect;
use crate::qemu::Outcome;
use crate::system::System;

/// The console's whole lines after the kernel's ready line (the last,
/// unfinished one left out), without their carriage returns.
fn lines_after_ready(outcome: &Outcome) -> Result<Vec<&str>, String> {
    let ready = format!("{READY}\r\n");
    let at = outcome
        .console
        .find(&ready)
        .ok_or_else(|| format!("no ready line\n--- console ---\n{}", outcome.console))?;
    let after = &outcome.console[at + ready.len()..];
    let whole = &after[..after.rfind('\n').map_or(0, |at| at + 1)];
    Ok(whole
        .lines()
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect())
}

/// Fails on a line that does not start with a partition's `[name] ` or the
/// kernel's `bulkhead: `, or that holds another such prefix past its start
/// (two lines spliced into one).
fn all_whole(lines: &[&str], partitions: &[String], console: &str) -> Result<(), String> {
    let prefixes: Vec<String> = partitions
        .iter()
        .map(|p| format!("[{p}] "))
        .chain(["bulkhead: ".to_owned()])
        .collect();
    for line in lines {
        let starts = prefixes.iter().any(|p| line.starts_with(p.as_str()));
        let spliced = prefixes
            .iter()
            .any(|p| line.get(1..).is_some_and(|rest| rest.contains(p.as_str())));
        if !starts || spliced {
            return Err(format!(
                "a line that is not one whole line of a partition or the kernel: {line:?}\n\
                 --- console ---\n{console}"
            ));
        }
    }
    Ok(())
}

/// `tests/qemu/log-flood.toml`, after `log-flood.expect`'s checks (ping
/// done in time, flood's drops reported, crasher's faults after them):
/// every console line after the ready line is whole, and flood's lines stay
/// within its quota.
pub(super) fn log_flood(_: &Context<'_>, _: &Expect, outcome: &Outcome) -> Result<String, String> {
    let system = System::load(&crate::root().join("tests/qemu/log-flood.toml"))
        .map_err(|e| e.to_string())?;
    let partitions = system.partition_names();
    let console = &outcome.console;
    let fail = |why: String| Err(format!("{why}\n--- console ---\n{console}"));
    let lines = lines_after_ready(outcome)?;
    all_whole(&lines, &partitions, console)?;
    let floods = lines.iter().filter(|l| l.starts_with("[flood] ")).count();
    let quota = hv_core::state::LOG_LINES_PER_WINDOW as usize;
    let seconds = outcome.elapsed.as_secs() as usize + 2;
    if floods == 0 || floods > quota * seconds {
        return fail(format!(
            "{floods} lines of flood's in {} s: none, or more than its quota",
            outcome.elapsed.as_secs_f32()
        ));
    }
    Ok(format!(
        "ping done in {:.1} s; {floods} flood lines shown",
        outcome.elapsed.as_secs_f32()
    ))
}

/// `tests/qemu/restart.toml`, after `restart.expect`'s checks (ping done,
/// the streak reported far enough, no start from stale memory): crasher
/// started at least three times; every restart after the second reports its
/// place in the streak and a back-off that doubles (exactly `hv_core`'s
/// `backoff_ticks`); and there are no more restarts than the back-off allows
/// in the time the run took.
pub(super) fn restart_storm(
    _: &Context<'_>,
    _: &Expect,
    outcome: &Outcome,
) -> Result<String, String> {
    use hv_core::state::{TICK_HZ, backoff_ticks};
    let console = &outcome.console;
    let fail = |why: String| Err(format!("{why}\n--- console ---\n{console}"));
    let starts = console
        .matches("[crasher] crasher starting (start 1 since load)")
        .count();
    if starts < 3 {
        return fail(format!("{starts} starts of crasher, not at least 3"));
    }
    let reports: Vec<&str> = console
        .lines()
        .filter(|l| l.starts_with(&format!("{PARTITION_FAULT}partition `crasher` restarting")))
        .collect();
    for (i, report) in reports.iter().enumerate() {
        let streak = i as u32 + 1;
        let ms = backoff_ticks(streak) * 1000 / TICK_HZ;
        let expected = if streak == 1 {
            "(reason 0x1)".to_owned()
        } else {
            format!("(reason 0x1); restart {streak} in a row, after a back-off of {ms} ms")
        };
        if !report.trim_end().ends_with(&expected) {
            return fail(format!(
                "restart {streak} was reported as {report:?}, not {expected:?}"
            ));
        }
    }
    // The most restarts the back-off lets through in the time the run took
    // (each waits out the back-off before it), counting as if each reload
    // took no time.
    let ticks = outcome.elapsed.as_millis() as u64 * TICK_HZ / 1000 + 1;
    let (mut allowed, mut spent) = (1u32, 0u64);
    while spent + backoff_ticks(allowed) <= ticks {
        spent += backoff_ticks(allowed);
        allowed += 1;
    }
    if reports.len() as u32 > allowed {
        return fail(format!(
            "{} restarts in {} ticks; the back-off allows {allowed}",
            reports.len(),
            ticks
        ));
    }
    Ok(format!(
        "{} restarts in {:.1} s, back-off up to {} ms",
        reports.len(),
        outcome.elapsed.as_secs_f32(),
        backoff_ticks(reports.len() as u32) * 1000 / TICK_HZ
    ))
}

/// `tests/qemu/irq-storm.toml`, after `irq-storm.expect`'s checks (ping
/// and storm done, the storm reported once): no second of storm's sees more
/// deliveries than the budget allows (`IRQ_FIRES_PER_TICK` a tick, a tick's
/// worth of slack for the second's edges), while it still sees some.
pub(super) fn irq_storm(_: &Context<'_>, _: &Expect, outcome: &Outcome) -> Result<String, String> {
    use hv_core::state::{IRQ_FIRES_PER_TICK, TICK_HZ};
    let console = &outcome.console;
    let fail = |why: String| Err(format!("{why}\n--- console ---\n{console}"));
    let budget = u64::from(IRQ_FIRES_PER_TICK) * (TICK_HZ + 1);
    let mut seconds = Vec::new();
    for line in console
        .lines()
        .filter(|l| l.starts_with("[storm] storm: second "))
    {
        let delivered: u64 = line
            .split(": ")
            .nth(2)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("malformed line {line:?}"))?;
        seconds.push(delivered);
    }
    if seconds.is_empty() || seconds.iter().any(|&n| n == 0 || n > budget) {
        return fail(format!(
            "storm's deliveries per second {seconds:?}: none, or over the budget of {budget}"
        ));
    }
    Ok(format!(
        "deliveries per second {seconds:?} (budget {budget}); ping done in {:.1} s",
        outcome.elapsed.as_secs_f32()
    ))
}
