// SPDX-License-Identifier: Apache-2.0 OR MIT
//! System tests of virtual machines with the project's own probe guest
//! (`guests/probe`, booted by the same monitor as Linux): two guests whose
//! memories are sealed from each other, a guest that attacks what a guest
//! must never reach, and a guest that drives a device passed through to it.
//! The probe's lines are documented in its crate.

use super::{Context, machine, start};
use crate::qemu::{Gic, Machine, Outcome, RunSpec, Verdict};

/// How long a probe run may take.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// The console, for a failure's message.
fn console(outcome: &Outcome) -> String {
    format!(
        "\n--- console ---\n{}--- QEMU stderr ---\n{}",
        outcome.console, outcome.stderr
    )
}

/// The run reached every line it waited for, nothing panicked and no
/// partition faulted.
fn checked(outcome: &Outcome) -> Result<(), String> {
    if outcome.timed_out {
        return Err(format!("timed out{}", console(outcome)));
    }
    if let Verdict::Failed(why) = outcome.verdict()
        && !outcome.stopped_when_ready
    {
        return Err(format!("{why}{}", console(outcome)));
    }
    if outcome.transcript().has(hv_abi::console::PARTITION_FAULT) {
        return Err(format!("a partition faulted{}", console(outcome)));
    }
    Ok(())
}

/// Every line of `expected` is on the console, whole.
fn has_lines(outcome: &Outcome, expected: &[&str]) -> Result<(), String> {
    let transcript = outcome.transcript();
    let missing: Vec<&&str> = expected
        .iter()
        .filter(|line| !transcript.has(&format!("{line}\n")))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("missing lines {missing:?}{}", console(outcome)))
    }
}

/// `tests/qemu/two-guests.toml`: `writer` leaves a marker in its RAM and
/// finds it there; `reader`, scanning all of its own RAM twice afterwards,
/// does not; ping and pong finish beside them.
pub(super) fn two_guests(c: &Context<'_>, gic: Gic, smp: u32) -> Result<String, String> {
    let machine = Machine {
        kernel: Some(c.system("two-guests")?),
        ..machine(c, gic, smp, "1G")
    };
    let outcome = start(
        c,
        &machine,
        RunSpec {
            timeout: Some(TIMEOUT),
            until_all: vec![
                "[reader] probe: idle".into(),
                "[writer] probe: idle".into(),
                "[ping] ping: done".into(),
            ],
            ..RunSpec::default()
        },
    )?;
    checked(&outcome)?;
    has_lines(
        &outcome,
        &[
            "[writer] probe: marker 7e57 written at 0x42000000",
            "[writer] probe: scanned 64 MiB: marker 7e57 found at 0x42000000",
            "[reader] probe: scanned 64 MiB: marker 5ca1ab1e not found",
            "[ping] ping: done",
        ],
    )?;
    let transcript = outcome.transcript();
    let reader_scans =
        transcript.positions("[reader] probe: scanned 64 MiB: marker 7e57 not found\n");
    if reader_scans.len() != 2 {
        return Err(format!(
            "reader scanned for writer's marker {} times, not twice, without finding it{}",
            reader_scans.len(),
            console(&outcome)
        ));
    }
    if transcript.has("[reader] probe: scanned 64 MiB: marker 7e57 found") {
        return Err(format!("reader found writer's marker{}", console(&outcome)));
    }
    // The writer must have written before the reader's scans ended.
    let written = transcript.find("[writer] probe: marker 7e57 written", 0);
    if !matches!((written, reader_scans.last()), (Some(w), Some(&r)) if w < r) {
        return Err(format!(
            "reader's last scan ended before writer wrote its marker{}",
            console(&outcome)
        ));
    }
    Ok("writer's marker is in its RAM and nowhere in reader's".into())
}

/// `tests/qemu/probe.toml`: every hostile attempt comes back harmlessly
/// (accesses outside RAM read as zero and change nothing, the GIC's real
/// distributor is the monitor's emulation, SMC and unknown HVCs are
/// refused, debug, PMU and activity monitor registers read as zero, an
/// `hvc #1` is refused), the kernel reports no
/// fault, and the guest powers off cleanly.
pub(super) fn hostile(c: &Context<'_>, gic: Gic) -> Result<String, String> {
    let machine = Machine {
        kernel: Some(c.system("probe")?),
        ..machine(c, gic, 2, "512M")
    };
    let outcome = start(
        c,
        &machine,
        RunSpec {
            timeout: Some(TIMEOUT),
            until: Some("[probe] vmm: probe powered off".into()),
            ..RunSpec::default()
        },
    )?;
    checked(&outcome)?;
    let mut expected = Vec::new();
    for address in ["0x44000000", "0x4c000000", "0x100000000"] {
        expected.push(format!(
            "[probe] probe: read outside RAM at {address}: returned 0x0"
        ));
        expected.push(format!(
            "[probe] probe: write outside RAM at {address}: returned, reads back 0x0"
        ));
    }
    for line in [
        "[probe] probe: read GIC distributor IIDR at 0x8000008: returned 0x4200043b",
        "[probe] probe: write GIC distributor IIDR at 0x8000008: returned, reads back 0x4200043b",
        "[probe] probe: smc #0 with x0 0xc6000000: returned x0 -1",
        "[probe] probe: hvc #0 with unknown function 0xc600ffff: returned x0 -1",
        "[probe] probe: hvc #0 with PSCI MIGRATE 0x84000005: returned x0 -1",
        "[probe] probe: read MDSCR_EL1: returned 0x0",
        "[probe] probe: write MDSCR_EL1: returned, reads back 0x0",
        "[probe] probe: read PMCR_EL0: returned 0x0",
        "[probe] probe: hvc #1 with x0 0xc6000000: returned x0 -1",
        "[probe] probe: hostile done",
        "[probe] probe: done",
        "[probe] vmm: probe powered off",
    ] {
        expected.push(line.to_owned());
    }
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    has_lines(&outcome, &expected)?;
    // Activity monitors read as zero when the CPU has them (CPTR_EL2.TAM
    // traps them to the monitor); QEMU 7.2's CPUs have none, so there the
    // read is undefined whatever the kernel does.
    let amu = [
        "[probe] probe: read AMCNTENSET0_EL0: returned 0x0",
        "[probe] probe: read AMCNTENSET0_EL0: undefined, the CPU has no activity monitors",
    ];
    if !amu.iter().any(|line| outcome.transcript().has(line)) {
        return Err(format!(
            "the activity monitors read neither zero nor undefined{}",
            console(&outcome)
        ));
    }
    if outcome
        .transcript()
        .partition_lines("probe")
        .iter()
        .any(|l| l.contains("took an exception"))
    {
        return Err(format!(
            "an attempt ended in an exception{}",
            console(&outcome)
        ));
    }
    Ok(format!(
        "{} attempts, each refused or read as zero",
        expected.len() - 3
    ))
}

/// `tests/qemu/passthrough.toml` on `gic` with `smp` cores: the guest owns
/// QEMU virt's PL031 real-time clock (`devices = ["rtc0"]`). Its monitor
/// describes it in the device tree; the probe reaches the real device's
/// registers (its PrimeCell IDs, a time that is not zero) and its alarm's
/// interrupt arrives as INTID 34 (the device really raised it: RTCMIS 1),
/// which the probe clears and ends, after which nothing more comes; the
/// guest powers off cleanly and no partition faults.
pub(super) fn passthrough(c: &Context<'_>, gic: Gic, smp: u32) -> Result<String, String> {
    let machine = Machine {
        kernel: Some(c.system("passthrough")?),
        ..machine(c, gic, smp, "512M")
    };
    let outcome = start(
        c,
        &machine,
        RunSpec {
            timeout: Some(TIMEOUT),
            until: Some("[probe] vmm: probe powered off".into()),
            ..RunSpec::default()
        },
    )?;
    checked(&outcome)?;
    let at = "[probe] probe: passthrough at 0x9010000:";
    let expected: Vec<String> = [
        "[probe] vmm: device rtc0 (arm,pl031) at 0x9010000..0x9011000, INTID 34 passed through to probe",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain(
        [
            "device tree node pl031@9010000, compatible arm,pl031 arm,primecell, INTID 34",
            "periph id 0x31 0x10 0x14 0x00",
            "cell id 0x0d 0xf0 0x05 0xb1",
            "interrupt INTID 34 arrived, RTCMIS 0x1",
            "no further interrupt",
        ]
        .into_iter()
        .map(|line| format!("{at} {line}")),
    )
    .chain(
        [
            "[probe] probe: passthrough done",
            "[probe] probe: done",
            "[probe] vmm: probe powered off",
        ]
        .into_iter()
        .map(str::to_owned),
    )
    .collect();
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    has_lines(&outcome, &expected)?;
    let prefix = format!("{at} RTCDR ");
    let prefix = prefix.strip_prefix("[probe] ").unwrap_or(&prefix);
    let time: Option<u64> = outcome
        .transcript()
        .partition_lines("probe")
        .iter()
        .find_map(|l| l.trim_end().strip_prefix(prefix))
        .and_then(|t| t.parse().ok());
    let Some(time) = time.filter(|&t| t != 0) else {
        return Err(format!(
            "no non-zero RTCDR line ({time:?}){}",
            console(&outcome)
        ));
    };
    for bad in [
        "[probe] probe: unexpected exception",
        "[probe] probe: panic",
        "[probe] vmm: cannot boot",
    ] {
        if outcome.transcript().has(bad) {
            return Err(format!("the console has `{bad}`{}", console(&outcome)));
        }
    }
    Ok(format!(
        "PL031 IDs read, RTCDR {time}, its alarm arrived as INTID 34 once"
    ))
}
