// SPDX-License-Identifier: Apache-2.0 OR MIT
//! System tests of virtual machines with a real Debian Linux guest
//! (`cargo xtask guests`): `systems/linux.toml` (two vCPUs, beside ping and
//! pong) and `tests/qemu/linux-small.toml` (one vCPU, `panic=-1`).
//!
//! Each boots the guest to its busybox shell, types into it through the
//! console (the guest has the keyboard focus from the start: it is the
//! console's first client it can wake) and reads its answers as `[name] `
//! lines: the prompt must appear before anything is typed (the console shows
//! a focused partition's unfinished line at once), the guest must see the
//! vCPUs, memory and interrupt controller the manifest and the machine gave
//! it, and what it does to itself (power off, reboot, panic) must be
//! reported by its monitor while the other partitions carry on.

use std::time::Duration;

use hv_abi::console::PARTITION_FAULT;

use super::{Context, machine, start};
use crate::guests::{MARKER, PROMPT};
use crate::qemu::{Gic, Machine, Outcome, RunSpec, Verdict};

/// How long a Linux run may take: the guest boots in about ten seconds on
/// one core here, several times that on a slow CI machine.
const TIMEOUT: Duration = Duration::from_secs(150);

/// The lines of partition `name` (`[name] text`), as text.
fn lines_of<'a>(outcome: &'a Outcome, name: &str) -> Vec<&'a str> {
    let prefix = format!("[{name}] ");
    outcome
        .console
        .lines()
        .filter_map(|l| l.trim_end_matches('\r').strip_prefix(prefix.as_str()))
        .collect()
}

/// The console, for a failure's message.
fn console(outcome: &Outcome) -> String {
    format!(
        "\n--- console ---\n{}--- QEMU stderr ---\n{}",
        outcome.console, outcome.stderr
    )
}

/// The run was healthy (ready, nothing panicked), and no partition faulted.
fn healthy_and_quiet(outcome: &Outcome) -> Result<(), String> {
    if let Verdict::Failed(why) = outcome.verdict()
        && !outcome.stopped_when_ready
    {
        return Err(format!("{why}{}", console(outcome)));
    }
    if outcome.console.contains(PARTITION_FAULT) {
        return Err(format!("a partition faulted{}", console(outcome)));
    }
    if outcome.timed_out {
        return Err(format!("timed out{}", console(outcome)));
    }
    Ok(())
}

/// The guest's answer lines after its command line `command` (the line that
/// echoes it after the prompt), up to the next prompt.
fn answer<'a>(lines: &[&'a str], command: &str) -> Vec<&'a str> {
    let Some(at) = lines
        .iter()
        .position(|l| l.starts_with(PROMPT) && l.ends_with(command))
    else {
        return Vec::new();
    };
    lines
        .iter()
        .skip(at + 1)
        .take_while(|l| !l.starts_with(PROMPT))
        .copied()
        .collect()
}

/// `systems/linux.toml` on `gic` with `smp` cores: the shell answers; the
/// guest has 2 vCPUs, about 256 MiB and the machine's GIC; `poweroff` is
/// reported and ping finishes regardless.
pub(super) fn shell(c: &Context<'_>, gic: Gic, smp: u32) -> Result<String, String> {
    let machine = Machine {
        kernel: Some(c.system("linux")?),
        ..machine(c, gic, smp, "1G")
    };
    let commands = [
        "uname -m",
        "grep -c ^processor /proc/cpuinfo",
        "grep MemTotal /proc/meminfo",
        "tr '\\0' '\\n' < /proc/device-tree/intc@8000000/compatible",
        "poweroff -f",
    ];
    let mut script = Vec::new();
    for command in commands {
        script.push((format!("[linux] {PROMPT}"), format!("{command}\r")));
    }
    let outcome = start(
        c,
        &machine,
        RunSpec {
            timeout: Some(TIMEOUT),
            script,
            until_all: vec![
                "[linux] vmm: linux powered off".into(),
                "[ping] ping: done".into(),
            ],
            ..RunSpec::default()
        },
    )?;
    healthy_and_quiet(&outcome)?;
    let lines = lines_of(&outcome, "linux");
    let fail = |what: String| Err(format!("{what}{}", console(&outcome)));
    if !lines.contains(&MARKER) {
        return fail(format!("no `{MARKER}`"));
    }
    // The shell asks the terminal for its cursor position (ESC [ 6 n): the
    // console drops escape sequences rather than show them.
    if lines.iter().any(|l| l.contains("[6n")) {
        return fail("a terminal escape sequence reached the screen".into());
    }
    if answer(&lines, commands[0]) != ["aarch64"] {
        return fail("`uname -m` did not answer aarch64".into());
    }
    if answer(&lines, commands[1]) != ["2"] {
        return fail("the guest does not see its 2 vCPUs".into());
    }
    let memory: Option<u64> = answer(&lines, commands[2]).first().and_then(|l| {
        l.strip_prefix("MemTotal:")?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()
    });
    if !memory.is_some_and(|kib| (200_000..=262_144).contains(&kib)) {
        return fail(format!("MemTotal {memory:?} kB is not about 256 MiB"));
    }
    let expected = match gic {
        Gic::V3 => "arm,gic-v3",
        Gic::V2 => "arm,cortex-a15-gic",
    };
    if !answer(&lines, commands[3]).contains(&expected) {
        return fail(format!(
            "the guest's interrupt controller is not {expected}"
        ));
    }
    Ok(format!(
        "shell answered; 2 vCPUs, {} kB, {expected}",
        memory.unwrap_or(0)
    ))
}

/// `tests/qemu/linux-small.toml` on `gic` with `smp` cores: `reboot` boots
/// the guest again, then a kernel panic (`panic=-1`: a PSCI reset) boots it
/// a third time, each time to its shell.
pub(super) fn reboot_and_panic(c: &Context<'_>, gic: Gic, smp: u32) -> Result<String, String> {
    let machine = Machine {
        kernel: Some(c.system("linux-small")?),
        ..machine(c, gic, smp, "512M")
    };
    let prompt = format!("[small] {PROMPT}");
    let outcome = start(
        c,
        &machine,
        RunSpec {
            timeout: Some(TIMEOUT * 2),
            script: vec![
                (prompt.clone(), "grep -c ^processor /proc/cpuinfo\r".into()),
                (prompt.clone(), "reboot -f\r".into()),
                ("[small] vmm: small reset".into(), String::new()),
                (prompt.clone(), "echo c > /proc/sysrq-trigger\r".into()),
                ("[small] vmm: small reset".into(), String::new()),
                (prompt.clone(), "echo third boot\r".into()),
            ],
            until: Some("[small] third boot".into()),
            ..RunSpec::default()
        },
    )?;
    healthy_and_quiet(&outcome)?;
    let lines = lines_of(&outcome, "small");
    let fail = |what: String| Err(format!("{what}{}", console(&outcome)));
    let boots = lines.iter().filter(|l| **l == MARKER).count();
    if boots != 3 {
        return fail(format!("{boots} boots, not 3"));
    }
    if answer(&lines, "grep -c ^processor /proc/cpuinfo") != ["1"] {
        return fail("the guest does not see its one vCPU".into());
    }
    if !lines.iter().any(|l| l.contains("Kernel panic")) {
        return fail("no kernel panic".into());
    }
    let resets = lines
        .iter()
        .filter(|l| l.starts_with("vmm: small reset"))
        .count();
    if resets != 2 {
        return fail(format!("{resets} resets reported, not 2"));
    }
    Ok("booted 3 times: after `reboot` and after a kernel panic".into())
}
