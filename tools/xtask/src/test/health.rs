// SPDX-License-Identifier: Apache-2.0 OR MIT
//! System tests of the health monitor (`services/monitor`), which the
//! manifest configures: which partitions it watches (`controls`), how often
//! it restarts them and when it gives up (`settings`).
//!
//! - `tests/qemu/control.toml`: it stops `spin` first, then brings back
//!   `crasher` (fault policy `stop`) three times and leaves it stopped the
//!   fourth; a partition without the capability is refused everything.
//! - `tests/qemu/linux-health.toml`: a virtual machine's monitor crashes (a
//!   test hook makes it panic when its guest writes to an address); the
//!   kernel stops it and turns its guest off, the health monitor restarts
//!   it, the guest boots again to its shell, and ping/pong never notice.

use std::time::Duration;

use hv_abi::console::PARTITION_FAULT;
use hv_abi::hypercall::REASON_CONTROLLER;

use super::{BOOT_TIMEOUT, Context, expect_lines, expect_lines_with, in_order, machine, start};
use crate::guests::{MARKER, PROMPT};
use crate::qemu::{Gic, Machine, Outcome, RunSpec};

/// How long the Linux run may take: the guest boots twice, in about ten
/// seconds each here, several times that on a slow CI machine.
const LINUX_TIMEOUT: Duration = Duration::from_secs(300);

/// The console, for a failure's message.
fn console(outcome: &Outcome) -> String {
    format!(
        "\n--- console ---\n{}--- QEMU stderr ---\n{}",
        outcome.console, outcome.stderr
    )
}

/// Partition control (`tests/qemu/control.toml`): monitor stops spin
/// (`stop-first`), then restarts crasher (fault policy `stop`) each of the
/// three times it finds it stopped (`restarts = 3`) and leaves it stopped
/// the fourth time; crasher runs again after each restart (from fresh
/// memory: always start 1). meddler, which holds no capability over anyone,
/// tries `PartitionStop`, `PartitionRestart` and `PartitionStatus` on every
/// slot: every call is refused and nothing stops or restarts because of it.
/// It then calls `Fault` with the kernel's reasons (an exception's, every
/// controller's): each is refused, so no report blames the monitor (or
/// anyone) for a stop meddler asked for. Last it reads the activity
/// monitors, and the kernel stops it for that (reason 0x100). ping/pong
/// finish.
pub(super) fn partition_control(c: &Context<'_>, gic: Gic, smp: u32) -> Result<String, String> {
    let machine = Machine {
        kernel: Some(c.system("control")?),
        ..machine(c, gic, smp, "1G")
    };
    let spec = RunSpec {
        timeout: Some(BOOT_TIMEOUT),
        until_all: vec![
            "[ping] ping: done".into(),
            "[monitor] monitor: done".into(),
            "[meddler] meddler: done".into(),
            "bulkhead: fault: partition `meddler` stopped".into(),
        ],
        ..RunSpec::default()
    };
    let outcome = start(c, &machine, spec)?;
    let console = &outcome.console;
    let fail = |why: String| Err(format!("{why}\n--- console ---\n{console}"));
    if let Some(line) = outcome.failure() {
        return fail(line.to_owned());
    }
    // The monitor is partition 2.
    let by_monitor = format!(
        "(reason {:#x}, at the request of `monitor`)",
        REASON_CONTROLLER + 2
    );
    let mut needles = vec![
        "[monitor] stopping `spin` first".to_owned(),
        format!("bulkhead: fault: partition `spin` stopped {by_monitor}; the others carry on"),
        "[monitor] `spin` is stopped (reason 0x202: by this partition), after 0 faults".into(),
        "[monitor] watching crasher, spin: up to 3 restarts each, looking every 10 ms, counter at 62500000 Hz".into(),
    ];
    for n in 1..=3 {
        needles.push(format!(
            "[monitor] `crasher` stopped (fault {n}, reason 0x1); restarting it ({n} of 3)"
        ));
    }
    needles.extend([
        "[monitor] `crasher` stopped again (fault 4, reason 0x1); 3 restarts were enough: it \
         stays stopped"
            .to_owned(),
        "[monitor] monitor: done: everything it watches stays stopped".into(),
        "[crasher] panicked at tests/partitions/crasher/src/main.rs".into(),
        "[meddler] PartitionStop on its `ping` endpoint: refused, the capability names the wrong \
         kind of object"
            .into(),
        "[meddler] PartitionStop on an empty slot: refused, no capability in that slot".into(),
        "[meddler] all 198 calls refused: 3 wrong kind of object, 195 no capability, 0 other"
            .into(),
        "[meddler] Fault with the kernel's reasons (0x100, 0x200 to 0x2ff): 257 refused as \
         invalid arguments, 0 other"
            .into(),
        "[meddler] meddler: reading the activity monitors".into(),
        "bulkhead: fault: partition `meddler` stopped (reason 0x100); the others carry on".into(),
        "[ping] ping: done".into(),
    ]);
    expect_lines(&outcome, &needles)?;
    let transcript = outcome.transcript();
    let count = |needle: &str| transcript.count(needle);
    let starts = count("[crasher] crasher starting (start 1 since load)");
    let stops =
        count("bulkhead: fault: partition `crasher` stopped (reason 0x1); the others carry on");
    let restarts = count(&format!(
        "bulkhead: fault: partition `crasher` restarting {by_monitor}"
    ));
    if starts != 4
        || stops != 4
        || restarts != 3
        || transcript.has("[crasher] crasher starting (start 2")
    {
        return fail(format!(
            "crasher: {starts} starts, {stops} stops, {restarts} restarts by the monitor; \
             expected 4, 4 and 3, each from fresh memory"
        ));
    }
    // Nothing but the monitor's doing and crasher's own faults stops or
    // restarts anything: not meddler's calls. spin, stopped first, is never
    // restarted.
    // meddler's own stop (the activity monitors) is counted apart: exactly
    // one, for the exception.
    let reports =
        count("bulkhead: fault: partition `") - count("bulkhead: fault: partition `meddler`");
    let meddler_stops = count("bulkhead: fault: partition `meddler` stopped");
    if meddler_stops != 1
        || count("bulkhead: fault: partition `meddler` stopped (reason 0x100); the others carry on")
            != 1
        || transcript.has("bulkhead: fault: partition `meddler` restarting")
        || transcript.has("[meddler] meddler: read the activity monitors (")
    {
        return fail(format!(
            "meddler stopped {meddler_stops} times; expected once, for reading the activity \
             monitors (reason 0x100), never by a forged reason"
        ));
    }
    let expected_reports = 1 + stops + restarts;
    if reports != expected_reports
        || count("bulkhead: fault: partition `crasher` restarting") != restarts
        || count("bulkhead: fault: partition `spin` stopped") != 1
        || count("[monitor] `spin` stopped (fault") != 0
        || transcript
            .partition_lines("meddler")
            .iter()
            .any(|l| l.contains("isolation is broken"))
    {
        return fail(format!(
            "{reports} fault reports, expected {expected_reports}: spin's stop and crasher's"
        ));
    }
    in_order(
        &outcome,
        &[
            "[monitor] `spin` is stopped",
            "[monitor] watching crasher, spin",
            "[monitor] `crasher` stopped (fault 1,",
            "bulkhead: fault: partition `crasher` restarting (reason 0x202, at the request of `monitor`)",
            "[crasher] crasher starting",
            "[monitor] `crasher` stopped (fault 2,",
            "bulkhead: fault: partition `crasher` restarting (reason 0x202, at the request of `monitor`)",
            "[crasher] crasher starting",
            "[monitor] `crasher` stopped (fault 3,",
            "bulkhead: fault: partition `crasher` restarting (reason 0x202, at the request of `monitor`)",
            "[crasher] crasher starting",
            "[monitor] `crasher` stopped again (fault 4,",
            "[monitor] monitor: done",
        ],
    )?;
    Ok(format!(
        "{starts} starts of crasher, {restarts} restarts by the monitor"
    ))
}

/// `tests/qemu/linux-health.toml` on `gic` with `smp` cores: at the guest's
/// shell, `devmem` writes to the address of `small-vmm`'s test hook
/// (`panic-on-write`); the monitor panics, the kernel reports the fault and
/// stops it (its guest's vCPUs go off), the health monitor restarts it, and
/// the fresh monitor boots the guest again: its marker a second time, its
/// prompt, and it answers `echo back`. ping/pong finish and nothing else
/// faults.
pub(super) fn monitor_crash(c: &Context<'_>, gic: Gic, smp: u32) -> Result<String, String> {
    let machine = Machine {
        kernel: Some(c.system("linux-health")?),
        ..machine(c, gic, smp, "512M")
    };
    let prompt = format!("[small] {PROMPT}");
    let marker = format!("[small] {MARKER}");
    // small-vmm is partition 3, the health monitor 4.
    let stopped =
        "bulkhead: fault: partition `small-vmm` stopped (reason 0x1); the others carry on";
    let restarted = format!(
        "bulkhead: fault: partition `small-vmm` restarting (reason {:#x}, at the request of \
         `health`)",
        REASON_CONTROLLER + 4
    );
    let restarting =
        "[health] `small-vmm` stopped (fault 1, reason 0x1); restarting it (1 of 3 within 60 s)";
    let outcome = start(
        c,
        &machine,
        RunSpec {
            timeout: Some(LINUX_TIMEOUT),
            script: vec![
                (prompt.clone(), "devmem 0x0a000000 32 1\r".into()),
                (restarting.to_owned(), String::new()),
                (marker.clone(), String::new()),
                (prompt.clone(), "echo back\r".into()),
            ],
            until_all: vec!["[small] back".into(), "[ping] ping: done".into()],
            ..RunSpec::default()
        },
    )?;
    let fail = |what: String| Err(format!("{what}{}", console(&outcome)));
    if let Some(line) = outcome.failure() {
        return fail(format!("the kernel reported: {line}"));
    }
    if outcome.timed_out {
        return fail("timed out".into());
    }
    expect_lines(
        &outcome,
        &[
            "[health] watching small-vmm: up to 3 restarts each within 60 s, looking every 10 ms, counter at 62500000 Hz"
                .into(),
            stopped.into(),
            restarted.clone(),
            restarting.into(),
            "[ping] ping: done".into(),
        ],
    )?;
    expect_lines_with(
        &outcome,
        &[(
            "[small] panicked at services/vmm/src/exits.rs:",
            "small wrote to 0xa000000, where the setting `panic-on-write` makes the monitor panic",
        )],
    )?;
    let devmem = format!("[small] {PROMPT}devmem 0x0a000000 32 1");
    let echo = format!("[small] {PROMPT}echo back");
    in_order(
        &outcome,
        &[
            marker.as_str(),
            &devmem,
            "[small] panicked at",
            stopped,
            restarting,
            &restarted,
            "[small] vmm: booting small",
            marker.as_str(),
            &echo,
            "[small] back",
        ],
    )?;
    let transcript = outcome.transcript();
    let lines = transcript.partition_lines("small");
    let boots = lines.iter().filter(|l| **l == MARKER).count();
    if boots != 2 {
        return fail(format!("{boots} boots of the guest, not 2"));
    }
    // Only the monitor faulted, once, and was restarted once; the health
    // monitor did not give up.
    let reports: Vec<&str> = transcript
        .kernel_lines()
        .into_iter()
        .filter(|l| l.starts_with(PARTITION_FAULT))
        .collect();
    let expected = [stopped, restarted.as_str()];
    if reports != expected
        || transcript
            .partition_lines("health")
            .iter()
            .any(|l| l.contains("stays stopped"))
    {
        return fail(format!(
            "fault reports {reports:?}, expected only `small-vmm`'s stop and its restart"
        ));
    }
    Ok("the monitor crashed, was restarted and booted its guest again".into())
}
