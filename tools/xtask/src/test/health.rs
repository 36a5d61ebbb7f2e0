// SPDX-License-Identifier: Apache-2.0 OR MIT
//! System tests of the health monitor (`services/monitor`), which the
//! manifest configures: which partitions it watches (`controls`), how often
//! it restarts them and when it gives up (`settings`).
//!
//! - `tests/qemu/control.toml`: it stops `spin` first, then brings back
//!   `crasher` (fault policy `stop`) three times and leaves it stopped the
//!   fourth; a partition without the capability is refused everything. Its
//!   test is data: `tests/qemu/control.expect`.
//! - `tests/qemu/linux-health.toml`: a virtual machine's monitor crashes (a
//!   test hook makes it panic when its guest writes to an address); the
//!   kernel stops it and turns its guest off, the health monitor restarts
//!   it, the guest boots again to its shell, and ping/pong never notice.

use std::time::Duration;

use hv_abi::console::PARTITION_FAULT;
use hv_abi::hypercall::REASON_CONTROLLER;

use super::{Context, expect_lines, expect_lines_with, in_order, machine, start};
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
