// SPDX-License-Identifier: Apache-2.0 OR MIT
//! System tests of the demo, `systems/demo.toml`: the UART driver and the
//! console carry every partition's output as whole lines, each prefixed with
//! its partition's name and in order per partition; keyboard input reaches
//! the focused partition and no other.
//!
//! The checks are exact: after the kernel's ready line, every line on the
//! console must be a partition's (`[name] ` and a name from the manifest) or
//! the kernel's (`bulkhead: `), and each partition's lines must be exactly
//! the ones its program prints, in its order. The driver's line reaches the
//! UART through the kernel's log and the console, which reads it. A line torn by another
//! partition's bytes, a lost or repeated line, or a line out of order fails.

use std::collections::BTreeMap;
use std::time::Duration;

use hv_abi::console::{PARTITION_FAULT, READY};

use super::{Context, machine, start};
use crate::qemu::{Gic, Machine, Outcome, RunSpec};
use crate::system::System;

/// How long a demo run may take (the 1-core runs are the slow ones).
const TIMEOUT: Duration = Duration::from_secs(60);

/// QEMU's `-nographic` terminal takes Ctrl-A as its own escape key; Ctrl-A
/// twice passes one Ctrl-A to the machine.
const CTRL_A: &str = "\u{1}\u{1}";

/// The records `producer` writes and `consumer` checks
/// (`svc_producer::TOTAL`, `PROGRESS_EVERY`).
const RECORDS: u64 = 100_000;
const PROGRESS_EVERY: u64 = 10_000;

/// The demo's facts the tests need, from its compiled manifest.
struct Demo {
    /// Every partition's name.
    partitions: Vec<String>,
    /// The console's clients in order: (the key after Ctrl-A, name).
    clients: Vec<(char, String)>,
    /// The IPA of the `records` region (producer prints it).
    records_ipa: u64,
}

impl Demo {
    fn load() -> Result<Self, String> {
        let system =
            System::load(&crate::root().join("systems/demo.toml")).map_err(|e| e.to_string())?;
        let partitions: Vec<String> = system
            .compiled
            .manifest
            .partitions
            .iter()
            .map(|p| p.name.to_string())
            .collect();
        let index = |name: &str| {
            partitions
                .iter()
                .position(|p| p == name)
                .ok_or(format!("the demo has no `{name}` partition"))
        };
        let variable = |partition: usize, key: &str| {
            system
                .partition_environment(partition)
                .into_iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
                .ok_or(format!("partition {partition} has no {key}"))
        };
        let list = variable(index("console")?, "BULKHEAD_CLIENTS_LOG")?;
        let mut clients = Vec::new();
        for (i, entry) in list.split(',').enumerate() {
            let name = entry
                .split_once('=')
                .and_then(|(_, rest)| rest.split(':').next())
                .ok_or(format!("malformed client `{entry}` in `{list}`"))?;
            let key = match i {
                0..=8 => char::from(b'1' + i as u8),
                9 => '0',
                _ => break,
            };
            clients.push((key, name.to_string()));
        }
        let records = variable(index("producer")?, "BULKHEAD_SHARED_RECORDS")?;
        let records_ipa = records
            .split(':')
            .next()
            .and_then(|ipa| ipa.parse().ok())
            .ok_or(format!("malformed window `{records}`"))?;
        Ok(Self {
            partitions,
            clients,
            records_ipa,
        })
    }

    fn key(&self, name: &str) -> Result<char, String> {
        self.clients
            .iter()
            .find(|(_, n)| n == name)
            .map(|(key, _)| *key)
            .ok_or(format!("`{name}` is not a console client"))
    }

    /// The console's banner and its first focus line.
    fn console_start(&self) -> Vec<String> {
        let mut banner = String::from("Ctrl-A then a number gives a partition the keyboard:");
        for (key, name) in &self.clients {
            banner.push_str(&format!(" {key} {name}"));
        }
        let echo = self.clients.iter().find(|(_, n)| n == "echo");
        let mut lines = vec![banner];
        if let Some((key, name)) = echo {
            lines.push(format!("focus: {key} {name}"));
        }
        lines
    }
}

fn boot(c: &Context<'_>, gic: Gic, smp: u32, spec: RunSpec) -> Result<Outcome, String> {
    let machine = Machine {
        kernel: Some(c.system("demo")?),
        ..machine(c, gic, smp, "1G")
    };
    let outcome = start(c, &machine, spec)?;
    let show = || format!("--- console ---\n{}", outcome.console);
    if let Some(line) = outcome.failure() {
        return Err(format!("{line}\n{}", show()));
    }
    if outcome.timed_out {
        return Err(format!(
            "not finished within {} s\n{}",
            TIMEOUT.as_secs(),
            show()
        ));
    }
    if outcome.console.contains(PARTITION_FAULT) || outcome.console.contains("panicked") {
        return Err(format!("a partition failed\n{}", show()));
    }
    Ok(outcome)
}

/// The whole lines after the ready line, by partition. Fails on a line that
/// is neither a partition's nor the kernel's. The last line is left out if
/// the run was stopped before its end.
fn lines_by_partition(
    outcome: &Outcome,
    demo: &Demo,
) -> Result<BTreeMap<String, Vec<String>>, String> {
    let ready = format!("{READY}\r\n");
    let after = outcome
        .console
        .find(&ready)
        .map(|at| &outcome.console[at + ready.len()..])
        .ok_or("no ready line")?;
    let whole = &after[..after.rfind('\n').map_or(0, |at| at + 1)];
    let mut lines: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in whole.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with("bulkhead: ") && !line.contains('\r') {
            continue;
        }
        let owner = line
            .strip_prefix('[')
            .and_then(|rest| rest.split_once("] "))
            .filter(|(name, text)| {
                demo.partitions.iter().any(|p| p == name) && !text.contains('\r')
            });
        match owner {
            Some((name, text)) => lines
                .entry(name.to_string())
                .or_default()
                .push(text.to_string()),
            None => {
                return Err(format!(
                    "a line that is no partition's and not the kernel's: {line:?}\n--- console ---\n{}",
                    outcome.console
                ));
            }
        }
    }
    Ok(lines)
}

/// Fails unless `partition` printed exactly `expected`, in that order.
fn exactly(
    lines: &BTreeMap<String, Vec<String>>,
    partition: &str,
    expected: &[String],
) -> Result<(), String> {
    let got = lines.get(partition).map_or(&[][..], Vec::as_slice);
    if got == expected {
        return Ok(());
    }
    Err(format!(
        "`{partition}` printed:\n{}\nbut should have printed:\n{}",
        got.join("\n"),
        expected.join("\n")
    ))
}

/// ping's lines: 1000 calls per batch, "ping: done" after the third, and
/// on (it keeps calling).
fn ping_lines(count: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut batch = 1;
    while lines.len() < count {
        lines.push(format!(
            "{} calls answered correctly (batch {batch})",
            batch * 1000
        ));
        if batch == 3 {
            lines.push("ping: done".into());
        }
        batch += 1;
    }
    lines.truncate(count);
    lines
}

/// The demo until ping, producer and consumer are done: every partition's
/// lines arrive whole, prefixed and in order.
pub(super) fn output(c: &Context<'_>, gic: Gic, smp: u32) -> Result<String, String> {
    let demo = Demo::load()?;
    let consumer_done = format!("done, all {RECORDS} records arrived in order and intact");
    let producer_done = format!("done, {RECORDS} records written");
    let spec = RunSpec {
        timeout: Some(TIMEOUT),
        until_all: vec![
            "[ping] ping: done\r\n".into(),
            format!("[consumer] {consumer_done}\r\n"),
            format!("[producer] {producer_done}\r\n"),
        ],
        ..RunSpec::default()
    };
    let outcome = boot(c, gic, smp, spec)?;
    let lines = lines_by_partition(&outcome, &demo)?;
    exactly(&lines, "console", &demo.console_start())?;
    let ping_count = lines.get("ping").map_or(0, Vec::len);
    if ping_count < 4 {
        return Err(format!(
            "ping printed {ping_count} lines, not the 4 up to `ping: done`"
        ));
    }
    exactly(&lines, "ping", &ping_lines(ping_count))?;
    exactly(&lines, "pong", &["serving".into()])?;
    exactly(
        &lines,
        "echo",
        &["echo: ready; give me the keyboard and type a line".into()],
    )?;
    exactly(
        &lines,
        "producer",
        &[
            format!(
                "writing {RECORDS} records of 32 bytes through a 8192-byte ring at {:#x}",
                demo.records_ipa
            ),
            producer_done,
        ],
    )?;
    let mut consumer = vec!["checking records as they arrive".to_string()];
    for n in (PROGRESS_EVERY..=RECORDS).step_by(PROGRESS_EVERY as usize) {
        consumer.push(format!("{n} records checked, in order and intact"));
    }
    consumer.push(consumer_done);
    exactly(&lines, "consumer", &consumer)?;
    // The driver has no console channel: its line goes through the kernel,
    // whose log the console reads and prints.
    exactly(
        &lines,
        "uart",
        &["driving the PL011 at 0x9000000, interrupt-driven; \
           output and input through shared rings"
            .into()],
    )?;
    let total: usize = lines.values().map(Vec::len).sum();
    Ok(format!(
        "{total} lines from {} partitions, all whole and in order",
        lines.len()
    ))
}

/// Ctrl-A gives ping the focus and a line is typed, which echo must never
/// see; then echo gets the focus and a line typed to it comes back.
pub(super) fn input(c: &Context<'_>, gic: Gic, smp: u32) -> Result<String, String> {
    let demo = Demo::load()?;
    let ping = demo.key("ping")?;
    let echo = demo.key("echo")?;
    let spec = RunSpec {
        timeout: Some(TIMEOUT),
        script: vec![
            ("[echo] echo: ready".into(), format!("{CTRL_A}{ping}")),
            (
                format!("[console] focus: {ping} ping\r\n"),
                format!("not for echo\r{CTRL_A}{echo}"),
            ),
            (
                format!("[console] focus: {echo} echo\r\n"),
                "hello bulkhead\r".into(),
            ),
        ],
        until: Some("[echo] echo: hello bulkhead\r\n".into()),
        ..RunSpec::default()
    };
    let outcome = boot(c, gic, smp, spec)?;
    let lines = lines_by_partition(&outcome, &demo)?;
    let mut console = demo.console_start();
    console.push(format!("focus: {ping} ping"));
    console.push(format!("focus: {echo} echo"));
    exactly(&lines, "console", &console)?;
    exactly(
        &lines,
        "echo",
        &[
            "echo: ready; give me the keyboard and type a line".into(),
            "echo: hello bulkhead".into(),
        ],
    )?;
    if outcome.console.contains("not for echo") {
        return Err(format!(
            "input typed to ping reached the console's output\n--- console ---\n{}",
            outcome.console
        ));
    }
    Ok(String::new())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Demo, lines_by_partition, ping_lines};
    use crate::qemu::Outcome;

    fn outcome(console: &str) -> Outcome {
        Outcome {
            console: console.into(),
            stderr: String::new(),
            exit: None,
            timed_out: false,
            stopped_when_ready: true,
            elapsed: Duration::from_secs(1),
        }
    }

    fn demo() -> Demo {
        Demo {
            partitions: vec!["ping".into(), "echo".into()],
            clients: vec![('1', "ping".into()), ('2', "echo".into())],
            records_ipa: 0,
        }
    }

    #[test]
    fn whole_lines_are_sorted_by_partition() {
        let lines = lines_by_partition(
            &outcome(
                "boot: x\r\nbulkhead: system ready\r\n[ping] a\r\nbulkhead: fault: y\r\n\
                 [echo] b\r\n[ping] c\r\n[ping] cut sho",
            ),
            &demo(),
        )
        .unwrap();
        assert_eq!(lines["ping"], ["a", "c"]);
        assert_eq!(lines["echo"], ["b"]);
    }

    #[test]
    fn torn_and_foreign_lines_fail() {
        for console in [
            "bulkhead: system ready\r\n[ping] a\r\n\r\n",
            "bulkhead: system ready\r\n[ping] half\r[echo] b\r\n",
            "bulkhead: system ready\r\n[pong] who\r\n",
            "bulkhead: system ready\r\nstray text\r\n",
        ] {
            assert!(
                lines_by_partition(&outcome(console), &demo()).is_err(),
                "{console:?}"
            );
        }
    }

    #[test]
    fn a_line_with_another_partitions_bytes_fails_the_exact_check() {
        let lines = lines_by_partition(
            &outcome("bulkhead: system ready\r\n[ping] 1000 calls[echo] b\r\n"),
            &demo(),
        )
        .unwrap();
        assert!(super::exactly(&lines, "ping", &ping_lines(1)).is_err());
        assert!(super::exactly(&lines, "echo", &[]).is_ok());
    }

    #[test]
    fn ping_says_done_after_the_third_batch() {
        assert_eq!(
            ping_lines(5),
            [
                "1000 calls answered correctly (batch 1)",
                "2000 calls answered correctly (batch 2)",
                "3000 calls answered correctly (batch 3)",
                "ping: done",
                "4000 calls answered correctly (batch 4)",
            ]
        );
    }

    #[test]
    fn the_demo_numbers_its_console_clients() {
        let demo = Demo::load().unwrap();
        assert_eq!(demo.key("ping"), Ok('1'));
        assert_eq!(demo.key("echo"), Ok('5'));
        assert_eq!(
            demo.console_start(),
            [
                "Ctrl-A then a number gives a partition the keyboard: \
                 1 ping 2 pong 3 producer 4 consumer 5 echo",
                "focus: 5 echo",
            ]
        );
    }
}
