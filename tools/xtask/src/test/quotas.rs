// SPDX-License-Identifier: Apache-2.0 OR MIT
//! System tests of what one partition may cost the others (issue 8,
//! findings 2 to 4): a log flood, a restart storm, an interrupt storm. Each
//! boots a system with the attacker beside ping/pong and checks that
//! ping/pong finish in their usual time and that the kernel reports what it
//! bounded.

use hv_abi::console::{PARTITION_FAULT, READY};

use super::{BOOT_TIMEOUT, Context, machine, start};
use crate::qemu::{Gic, Machine, Outcome, RunSpec};

/// Builds `tests/qemu/<name>.toml` and runs it on `smp` cores until ping is
/// done (or [`BOOT_TIMEOUT`]); returns the outcome and the partitions' names.
fn run(c: &Context<'_>, name: &str, smp: u32) -> Result<(Outcome, Vec<String>), String> {
    run_until(c, name, smp, &["[ping] ping: done"])
}

/// As [`run`], until the console shows every one of `until` (ping's done
/// line among them).
fn run_until(
    c: &Context<'_>,
    name: &str,
    smp: u32,
    until: &[&str],
) -> Result<(Outcome, Vec<String>), String> {
    let (system, image) = super::test_system(c, name)?;
    let partitions = system
        .compiled
        .manifest
        .partitions
        .iter()
        .map(|p| p.name.to_string())
        .collect();
    let machine = Machine {
        kernel: Some(image),
        ..machine(c, Gic::V3, smp, "1G")
    };
    let spec = RunSpec {
        timeout: Some(BOOT_TIMEOUT),
        until_all: until.iter().map(|u| (*u).to_owned()).collect(),
        ..RunSpec::default()
    };
    let outcome = start(c, &machine, spec)?;
    if let Some(line) = outcome.failure() {
        return Err(format!("{line}\n--- console ---\n{}", outcome.console));
    }
    let transcript = outcome.transcript();
    if let Some(missing) = until.iter().find(|u| !transcript.has(u)) {
        return Err(format!(
            "no `{missing}` within {} s\n--- console ---\n{}",
            BOOT_TIMEOUT.as_secs(),
            outcome.console
        ));
    }
    Ok((outcome, partitions))
}

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

/// flood holds no capability and prints through the kernel's `Log` as fast
/// as it can, on ping's core and at its priority, while crasher keeps
/// crashing: ping/pong finish in their usual time, every console line is
/// whole, the kernel reports flood's dropped lines and crasher's faults
/// still get through, and flood's lines stay within its quota.
pub(super) fn log_flood(c: &Context<'_>) -> Result<String, String> {
    let (outcome, partitions) = run(c, "log-flood", 2)?;
    let console = &outcome.console;
    let fail = |why: String| Err(format!("{why}\n--- console ---\n{console}"));
    let lines = lines_after_ready(&outcome)?;
    all_whole(&lines, &partitions, console)?;
    let floods = lines.iter().filter(|l| l.starts_with("[flood] ")).count();
    let drops = lines
        .iter()
        .position(|l| l.starts_with("bulkhead: log: `flood` dropped "));
    let Some(first_drop) = drops else {
        return fail("no report of flood's dropped lines".into());
    };
    let fault = format!("{PARTITION_FAULT}partition `crasher` restarting");
    if !lines[first_drop..].iter().any(|l| l.starts_with(&fault)) {
        return fail("no fault report of crasher's once the flood was on".into());
    }
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

/// The restart of `crasher` that must be reported before the restart test
/// stops: far enough into its streak to show the back-off growing (20, 40,
/// then 80 ms). Not further: each restart reloads 16 MiB a tenth of a tick
/// at a time, which takes seconds of a loaded host's time.
const STREAK_SHOWN: u32 = 5;

/// crasher (16 MiB of RAM, fault policy `restart`) panics as soon as it
/// starts, on the core ping and pong share: ping/pong finish their 3000
/// calls; crasher always starts from fresh memory; every restart after the
/// second reports its place in the streak and a back-off that doubles
/// (exactly `hv_core`'s); and there are no more restarts than the back-off
/// allows in the time the run took.
pub(super) fn restart_storm(c: &Context<'_>) -> Result<String, String> {
    use hv_core::state::{TICK_HZ, backoff_ticks};
    let streak_line = format!(
        "{PARTITION_FAULT}partition `crasher` restarting (reason 0x1); restart {STREAK_SHOWN} in a row"
    );
    let (outcome, _) = run_until(c, "restart", 2, &["[ping] ping: done", &streak_line])?;
    let console = &outcome.console;
    let fail = |why: String| Err(format!("{why}\n--- console ---\n{console}"));
    let starts = console
        .matches("[crasher] crasher starting (start 1 since load)")
        .count();
    if starts < 3 || console.contains("(start 2") {
        return fail(format!("{starts} starts, or one not from fresh memory"));
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
    if console.contains("[ping] panicked") || console.contains("cannot restart") {
        return fail("a restart disturbed the others".into());
    }
    Ok(format!(
        "{} restarts in {:.1} s, back-off up to {} ms",
        reports.len(),
        outcome.elapsed.as_secs_f32(),
        backoff_ticks(reports.len() as u32) * 1000 / TICK_HZ
    ))
}

/// storm raises the RTC's level interrupt, never clears it, and acknowledges
/// it as fast as it can from core 1 while it is routed to core 0, where
/// ping and pong run: ping/pong finish, the kernel reports the storm once,
/// and no second of storm's sees more deliveries than the budget allows
/// (`IRQ_FIRES_PER_TICK` a tick, a tick's worth of slack for the second's
/// edges), while it still sees some.
pub(super) fn irq_storm(c: &Context<'_>) -> Result<String, String> {
    use hv_core::state::{IRQ_FIRES_PER_TICK, TICK_HZ};
    let (outcome, _) = run_until(
        c,
        "irq-storm",
        2,
        &["[ping] ping: done", "[storm] storm: done"],
    )?;
    let console = &outcome.console;
    let fail = |why: String| Err(format!("{why}\n--- console ---\n{console}"));
    let reports = console
        .lines()
        .filter(|l| l.starts_with("bulkhead: irq: interrupt 34 of `storm` fired more than "))
        .count();
    if reports != 1 {
        return fail(format!("{reports} reports of the storm, not one"));
    }
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

/// A driver that crashes between taking its interrupt and acknowledging it
/// gets the interrupt back when restarted (`tests/qemu/irq-restart.toml`):
/// without that, its level interrupt would stay masked for ever.
pub(super) fn irq_after_restart(c: &Context<'_>) -> Result<String, String> {
    let arrived = "[rearm] rearm: the interrupt arrived after the restart";
    let (outcome, _) = run_until(c, "irq-restart", 2, &["[ping] ping: done", arrived])?;
    super::expect_lines(
        &outcome,
        &[
            "[rearm] rearm: took the interrupt (bits 0x".into(),
            "bulkhead: fault: partition `rearm` restarting (".into(),
            "[rearm] rearm: restarted with the RTC's interrupt still raised; waiting for it".into(),
        ],
    )?;
    super::in_order(
        &outcome,
        &[
            "[rearm] rearm: took the interrupt",
            "bulkhead: fault: partition `rearm` restarting",
            arrived,
        ],
    )?;
    Ok(String::new())
}
