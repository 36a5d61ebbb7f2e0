// SPDX-License-Identifier: Apache-2.0 OR MIT
//! System tests of virtual machines with a real Debian Linux guest
//! (`cargo xtask guests`): `systems/linux.toml` (two vCPUs, beside ping and
//! pong), `tests/qemu/linux-small.toml` (one vCPU, `panic=-1`) and
//! `tests/qemu/linux-rtc.toml` (one vCPU owning the PL031 real-time clock).
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
    if outcome.transcript().has(PARTITION_FAULT) {
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
    let lines = outcome.transcript().partition_lines("linux");
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
    let lines = outcome.transcript().partition_lines("small");
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

/// The CPU columns' counts of `/proc/interrupts` line `line` (`  12:   1
/// GICv3  34 Level  rtc-pl031`), summed, and the hardware interrupt number
/// after the chip's name.
fn interrupt_counts(line: &str) -> Option<(u64, &str)> {
    let mut words = line.split_whitespace();
    words.next()?.strip_suffix(':')?;
    let mut total = 0;
    let mut columns = 0;
    let mut rest = words.peekable();
    while let Some(count) = rest.peek().and_then(|w| w.parse::<u64>().ok()) {
        total += count;
        columns += 1;
        rest.next();
    }
    let _chip = rest.next()?;
    let hwirq = rest.next()?;
    (columns > 0).then_some((total, hwirq))
}

/// `tests/qemu/linux-rtc.toml` on `gic` with `smp` cores: the guest owns
/// QEMU virt's PL031 real-time clock. Debian's kernel binds its built-in
/// `rtc-pl031` driver to the monitor's device tree node through the AMBA
/// bus (rtc0, read from the real device's PrimeCell IDs), and an alarm set
/// two seconds ahead through sysfs interrupts it: the driver's line in
/// `/proc/interrupts`, INTID 34, counts at least one more interrupt after
/// the alarm than before it.
pub(super) fn rtc_passthrough(c: &Context<'_>, gic: Gic, smp: u32) -> Result<String, String> {
    let machine = Machine {
        kernel: Some(c.system("linux-rtc")?),
        ..machine(c, gic, smp, "512M")
    };
    let commands = [
        "cat /sys/class/rtc/rtc0/name",
        "grep rtc-pl031 /proc/interrupts",
        "echo +2 > /sys/class/rtc/rtc0/wakealarm",
        "sleep 4; grep rtc-pl031 /proc/interrupts",
        "poweroff -f",
    ];
    let script = commands
        .iter()
        .map(|command| (format!("[rtc] {PROMPT}"), format!("{command}\r")))
        .collect();
    let outcome = start(
        c,
        &machine,
        RunSpec {
            timeout: Some(TIMEOUT),
            script,
            until: Some("[rtc] vmm: rtc powered off".into()),
            ..RunSpec::default()
        },
    )?;
    healthy_and_quiet(&outcome)?;
    let lines = outcome.transcript().partition_lines("rtc");
    let fail = |what: String| Err(format!("{what}{}", console(&outcome)));
    if !lines.contains(&MARKER) {
        return fail(format!("no `{MARKER}`"));
    }
    let device = "[rtc] vmm: device rtc0 (arm,pl031) at 0x9010000..0x9011000, INTID 34 passed through to rtc";
    if !outcome.transcript().has(&format!("{device}\n")) {
        return fail(format!("no `{device}`"));
    }
    let name = answer(&lines, commands[0]);
    if !name.iter().any(|l| l.contains("rtc-pl031")) {
        return fail(format!("rtc0 is not the rtc-pl031 driver's: {name:?}"));
    }
    let count = |command: &str| -> Result<(u64, String), String> {
        let answer = answer(&lines, command);
        match answer.as_slice() {
            [line] => match interrupt_counts(line) {
                Some((count, "34")) => {
                    Ok((count, line.split_whitespace().collect::<Vec<_>>().join(" ")))
                }
                Some((_, other)) => Err(format!(
                    "rtc-pl031's interrupt is hardware interrupt {other}, not 34: {line:?}"
                )),
                None => Err(format!("cannot read {line:?} as a /proc/interrupts line")),
            },
            other => Err(format!(
                "`{command}` did not answer one /proc/interrupts line: {other:?}"
            )),
        }
    };
    let (before, _) = match count(commands[1]) {
        Ok(counted) => counted,
        Err(why) => return fail(why),
    };
    let echoed = answer(&lines, commands[2]);
    if !echoed.is_empty() {
        return fail(format!("setting the alarm answered {echoed:?}"));
    }
    let (after, line) = match count(commands[3]) {
        Ok(counted) => counted,
        Err(why) => return fail(why),
    };
    if after <= before {
        return fail(format!(
            "no alarm interrupt: rtc-pl031 counted {before} before the alarm and {after} after"
        ));
    }
    if !outcome.transcript().has("[rtc] vmm: rtc powered off\n") {
        return fail("`poweroff -f` was not reported".into());
    }
    Ok(format!(
        "rtc0 is rtc-pl031; its alarm interrupted the guest ({before} -> {after}: `{line}`)"
    ))
}

#[cfg(test)]
mod tests {
    use super::interrupt_counts;

    #[test]
    fn proc_interrupts_lines_are_read() {
        assert_eq!(
            interrupt_counts(" 12:          1     GICv3  34 Level     rtc-pl031"),
            Some((1, "34"))
        );
        assert_eq!(
            interrupt_counts(" 12:  0  3  GIC-0  34 Level     rtc-pl031"),
            Some((3, "34"))
        );
        assert_eq!(interrupt_counts("Err:          0"), None);
        assert_eq!(interrupt_counts("rtc-pl031"), None);
        assert_eq!(interrupt_counts(""), None);
    }
}
