// SPDX-License-Identifier: Apache-2.0 OR MIT
//! System tests of the demo, `systems/demo.toml`: the UART driver and the
//! console carry every partition's output as whole lines, each prefixed with
//! its partition's name and in order per partition; keyboard input reaches
//! the focused partition and no other; the focused partition's unfinished
//! line (echo's prompt, what is typed to it) shows at once.
//!
//! The checks are exact: after the kernel's ready line, every line on the
//! console must be a partition's (`[name] ` and a name from the manifest) or
//! the kernel's (`bulkhead: `), and each partition's lines must be exactly
//! the ones its program prints, in its order. The driver's line reaches the
//! UART through the kernel's log and the console, which reads it. A line torn by another
//! partition's bytes, a lost or repeated line, or a line out of order fails.
//!
//! Lines are read as a person sees them: backspaces applied (one that would
//! reach into the `[name] ` prefix fails), and a line of the focused
//! partition that another line interrupted (the console ends it, prints the
//! other, and prints it again with its text so far) joined to its rest.

use std::collections::BTreeMap;
use std::time::Duration;

use hv_abi::console::READY;

use super::expect::{Board, Shape};
use super::{Context, board_machine, ran_clean, rpi4, start};
use crate::qemu::{Outcome, RunSpec};
use crate::system::System;
use crate::transcript::{Line, Writer};

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
        let partitions = system.partition_names();
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

    /// What the console says to Ctrl-A and a key that names no client.
    fn reminder(&self) -> String {
        let last = self.clients.last().map_or('1', |(key, _)| *key);
        format!(
            "Ctrl-A then 1 to {last} gives a partition the keyboard; Ctrl-A Ctrl-A types Ctrl-A"
        )
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

fn boot(c: &Context<'_>, shape: &Shape, spec: RunSpec) -> Result<Outcome, String> {
    let kernel = match shape.board() {
        Board::Virt => c.system("demo")?,
        // The manifest's numbers are the board's too: one manifest.
        Board::Rpi4 => rpi4::demo_image(c)?.1,
    };
    let machine = board_machine(c, shape, kernel)?;
    let outcome = start(c, &machine, spec)?;
    ran_clean(&outcome)?;
    let show = || format!("--- console ---\n{}", outcome.console);
    let transcript = outcome.transcript();
    if transcript
        .lines()
        .iter()
        .any(|l| matches!(l.writer, Writer::Partition(_)) && l.text.starts_with("panicked"))
    {
        return Err(format!("a partition failed\n{}", show()));
    }
    Ok(outcome)
}

/// echo's prompt.
const PROMPT: &str = "echo> ";

/// The console after the kernel's ready line (a line of its own: a
/// partition's imitation of it does not count).
fn after_ready(outcome: &Outcome) -> Result<&str, String> {
    let mut at = 0;
    for line in outcome.console.split_inclusive('\n') {
        at += line.len();
        if line.ends_with('\n') && line.trim_end() == READY {
            return Ok(&outcome.console[at..]);
        }
    }
    Err("no ready line".into())
}

/// The partition whose line `line` is (`[name] text`, a name from the
/// manifest, no carriage return in it), and its text as written.
fn owner<'a>(line: &'a str, demo: &Demo) -> Option<(&'a str, &'a str)> {
    if line.contains('\r') {
        return None;
    }
    match Line::read(line, true) {
        Line {
            writer: Writer::Partition(name),
            text,
            ..
        } if demo.partitions.iter().any(|p| p == name) => Some((name, text)),
        _ => None,
    }
}

/// A line's text as a terminal shows it: a backspace moves the cursor one
/// column left, a character replaces the one under the cursor, and the
/// blanks past the cursor that erased characters leave are not shown.
/// Fails if a backspace would move into the `[name] ` prefix.
fn render(text: &str) -> Result<String, String> {
    let mut cells: Vec<char> = Vec::new();
    let mut cursor: usize = 0;
    for c in text.chars() {
        if c == '\u{8}' {
            cursor = cursor
                .checked_sub(1)
                .ok_or_else(|| format!("a backspace reaches into the prefix: {text:?}"))?;
        } else {
            match cells.get_mut(cursor) {
                Some(cell) => *cell = c,
                None => cells.push(c),
            }
            cursor += 1;
        }
    }
    while cells.len() > cursor && cells.last() == Some(&' ') {
        cells.pop();
    }
    Ok(cells.into_iter().collect())
}

/// Every partition's lines after the ready line.
#[derive(Debug, Default)]
struct Lines {
    /// Each partition's finished lines, in order.
    finished: BTreeMap<String, Vec<String>>,
    /// The line a partition had open when the run stopped: the focused
    /// one's, or one whose focus moved away before its newline.
    open: BTreeMap<String, String>,
}

impl Lines {
    /// A line `name` printed, as written and as shown; `focused` if it had
    /// the focus, when another line may have cut it, to be printed again
    /// (what it showed, then what came after, backspaces included).
    fn add(&mut self, name: &str, written: &str, text: String, focused: bool) {
        if let Some(before) = self.open.remove(name)
            && !written.starts_with(&before)
        {
            self.finished
                .entry(name.to_string())
                .or_default()
                .push(before);
        }
        if focused {
            self.open.insert(name.to_string(), text);
        } else {
            self.finished
                .entry(name.to_string())
                .or_default()
                .push(text);
        }
    }

    /// The focused partition's line that the end of the run cut anywhere.
    fn cut(&mut self, name: &str, written: &str, text: String) {
        if !self
            .open
            .get(name)
            .is_some_and(|open| open.starts_with(written))
        {
            self.add(name, written, text, true);
        }
    }

    fn total(&self) -> usize {
        self.finished.values().map(Vec::len).sum()
    }
}

/// The lines after the ready line, by partition. Fails on a line that is
/// neither a partition's nor the kernel's, and on a backspace into a prefix.
/// The focus is followed from the console's `focus: ` lines.
fn lines_by_partition(outcome: &Outcome, demo: &Demo) -> Result<Lines, String> {
    let after = after_ready(outcome)?;
    let cut_at = after.rfind('\n').map_or(0, |at| at + 1);
    let (whole, rest) = after.split_at(cut_at);
    let mut lines = Lines::default();
    let mut focus: Option<String> = None;
    for line in whole.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if Line::read(line, true).writer == Writer::Kernel
            && line.starts_with("bulkhead: ")
            && !line.contains(['\r', '\u{8}'])
        {
            continue;
        }
        let Some((name, written)) = owner(line, demo) else {
            return Err(format!(
                "a line that is no partition's and not the kernel's: {line:?}\n--- console ---\n{}",
                outcome.console
            ));
        };
        let text = render(written)?;
        if name == "console"
            && let Some(rest) = text.strip_prefix("focus: ")
        {
            focus = rest.split_once(' ').map(|(_, name)| name.to_string());
        }
        let focused = focus.as_deref() == Some(name);
        lines.add(name, written, text, focused);
    }
    if let Some((name, written)) = owner(rest, demo)
        && focus.as_deref() == Some(name)
    {
        lines.cut(name, written, render(written)?);
    }
    Ok(lines)
}

/// Fails unless `partition` finished exactly the lines `expected`, in that
/// order, and left open exactly `open`.
fn exactly(
    lines: &Lines,
    partition: &str,
    expected: &[String],
    open: Option<&str>,
) -> Result<(), String> {
    let got = lines.finished.get(partition).map_or(&[][..], Vec::as_slice);
    let got_open = lines.open.get(partition).map(String::as_str);
    if got == expected && got_open == open {
        return Ok(());
    }
    let show = |open: Option<&str>| open.map_or(String::new(), |o| format!("\n{o:?} (open)"));
    Err(format!(
        "`{partition}` printed:\n{}{}\nbut should have printed:\n{}{}",
        got.join("\n"),
        show(got_open),
        expected.join("\n"),
        show(open)
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
pub(super) fn output(c: &Context<'_>, shape: &Shape) -> Result<String, String> {
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
    let outcome = boot(c, shape, spec)?;
    let lines = lines_by_partition(&outcome, &demo)?;
    exactly(&lines, "console", &demo.console_start(), None)?;
    let ping_count = lines.finished.get("ping").map_or(0, Vec::len);
    if ping_count < 4 {
        return Err(format!(
            "ping printed {ping_count} lines, not the 4 up to `ping: done`"
        ));
    }
    exactly(&lines, "ping", &ping_lines(ping_count), None)?;
    exactly(&lines, "pong", &["serving".into()], None)?;
    // echo has the focus: its prompt stays open, and each other line ends
    // it and prints it again.
    exactly(
        &lines,
        "echo",
        &["echo: ready; give me the keyboard and type a line".into()],
        Some(PROMPT),
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
        None,
    )?;
    let mut consumer = vec!["checking records as they arrive".to_string()];
    for n in (PROGRESS_EVERY..=RECORDS).step_by(PROGRESS_EVERY as usize) {
        consumer.push(format!("{n} records checked, in order and intact"));
    }
    consumer.push(consumer_done);
    exactly(&lines, "consumer", &consumer, None)?;
    // The driver has no console channel: its line goes through the kernel,
    // whose log the console reads and prints.
    exactly(
        &lines,
        "uart",
        &["driving the PL011 at 0x9000000, interrupt-driven; \
           output and input through shared rings"
            .into()],
        None,
    )?;
    interruptions(&outcome, &demo)?;
    Ok(format!(
        "{} lines from {} partitions, all whole and in order",
        lines.total(),
        lines.finished.len()
    ))
}

/// Ctrl-A gives ping the focus and a line is typed, which echo must never
/// see; then echo gets the focus (its prompt shows again) and a line typed
/// to it is echoed as it is typed and comes back.
pub(super) fn input(c: &Context<'_>, shape: &Shape) -> Result<String, String> {
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
        // echo prints its answer and the next prompt in one piece.
        until: Some(format!("[echo] echo: hello bulkhead\r\n[echo] {PROMPT}")),
        ..RunSpec::default()
    };
    let outcome = boot(c, shape, spec)?;
    let lines = lines_by_partition(&outcome, &demo)?;
    let mut console = demo.console_start();
    console.push(format!("focus: {ping} ping"));
    console.push(format!("focus: {echo} echo"));
    exactly(&lines, "console", &console, None)?;
    exactly(
        &lines,
        "echo",
        &[
            "echo: ready; give me the keyboard and type a line".into(),
            format!("{PROMPT}hello bulkhead"),
            "echo: hello bulkhead".into(),
        ],
        Some(PROMPT),
    )?;
    // Anywhere on the console, whoever's line: nothing may show it.
    if outcome.console.contains("not for echo") {
        return Err(format!(
            "input typed to ping reached the console's output\n--- console ---\n{}",
            outcome.console
        ));
    }
    Ok(String::new())
}

/// echo's prompt shows before anything is typed, with no newline; what is
/// typed to it shows as it is typed, backspace included; and every other
/// line printed while the prompt is open (the console's answer to Ctrl-A
/// and a key that names no client, the partitions' lines) is printed whole
/// on its own line, with the prompt and what was typed so far printed again
/// after it.
pub(super) fn prompt(c: &Context<'_>, shape: &Shape) -> Result<String, String> {
    let demo = Demo::load()?;
    let reminder = demo.reminder();
    let consumer_done =
        format!("[consumer] done, all {RECORDS} records arrived in order and intact\r\n");
    let spec = RunSpec {
        timeout: Some(TIMEOUT),
        // Each step looks past the text the one before it matched.
        script: vec![
            (format!("[echo] {PROMPT}"), format!("{CTRL_A}?")),
            (
                format!("\r\n[console] {reminder}\r\n[echo] {PROMPT}"),
                "abc".into(),
            ),
            ("abc".into(), "\u{7f}".into()),
            ("\u{8} \u{8}".into(), "d\r".into()),
        ],
        until_all: vec![
            format!("[echo] echo: abd\r\n[echo] {PROMPT}"),
            "[ping] ping: done\r\n".into(),
            consumer_done,
        ],
        ..RunSpec::default()
    };
    let outcome = boot(c, shape, spec)?;
    let lines = lines_by_partition(&outcome, &demo)?;
    let mut console = demo.console_start();
    console.push(reminder);
    exactly(&lines, "console", &console, None)?;
    exactly(
        &lines,
        "echo",
        &[
            "echo: ready; give me the keyboard and type a line".into(),
            format!("{PROMPT}abd"),
            "echo: abd".into(),
        ],
        Some(PROMPT),
    )
    .map_err(|why| format!("{why}\n--- console ---\n{}", outcome.console))?;
    let (others, partitions) = interruptions(&outcome, &demo)?;
    if partitions == 0 {
        return Err(format!(
            "no partition's line arrived while echo's prompt was open\n--- console ---\n{}",
            outcome.console
        ));
    }
    Ok(format!(
        "{others} lines printed while the prompt was open ({partitions} of partitions), \
         each on its own line with the prompt printed again"
    ))
}

/// Checks that, from echo's first prompt on, every other line is printed on
/// its own terminal line right after echo's open line and right before it
/// is printed again (with the text it showed). Returns how many such
/// lines there were, and how many of them were partitions' (not the
/// console's).
fn interruptions(outcome: &Outcome, demo: &Demo) -> Result<(usize, usize), String> {
    let fail = |why: String| format!("{why}\n--- console ---\n{}", outcome.console);
    let after = after_ready(outcome)?;
    // The last piece is what follows the last newline: cut anywhere.
    let pieces: Vec<&str> = after.split('\n').collect();
    let ends = pieces.len() - 1;
    let echo_text = |piece: &str| -> Option<Result<String, String>> {
        let (name, text) = owner(piece.strip_suffix('\r').unwrap_or(piece), demo)?;
        (name == "echo").then(|| render(text))
    };
    let first = pieces
        .iter()
        .position(|p| p.starts_with(&format!("[echo] {PROMPT}")))
        .ok_or_else(|| fail("echo's prompt never showed".into()))?;
    let (mut others, mut partitions) = (0, 0);
    for at in first + 1..ends {
        let line = pieces[at];
        if echo_text(line).is_some() {
            continue;
        }
        others += 1;
        if !line.starts_with("[console] ") {
            partitions += 1;
        }
        let Some(Ok(before)) = echo_text(pieces[at - 1]) else {
            return Err(fail(format!(
                "{line:?} does not follow echo's open line, ended"
            )));
        };
        // Printed again: the prefix and what it showed, then what came
        // after (the last piece may be cut anywhere).
        let again = format!("[echo] {before}");
        let next = pieces[at + 1];
        if !(next.starts_with(&again) || at + 1 == ends && again.starts_with(next)) {
            return Err(fail(format!(
                "{line:?} is not followed by echo's open line {before:?} printed again"
            )));
        }
    }
    Ok((others, partitions))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Demo, interruptions, lines_by_partition, ping_lines, render};
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
            partitions: vec!["ping".into(), "echo".into(), "console".into()],
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
        assert_eq!(lines.finished["ping"], ["a", "c"]);
        assert_eq!(lines.finished["echo"], ["b"]);
        assert!(lines.open.is_empty());
    }

    #[test]
    fn a_partitions_imitation_of_the_ready_line_is_not_where_the_check_starts() {
        // Read from the imitation, ping's `x` would be a line after the
        // ready line, and echo's imitation of a kernel line would pass.
        let lines = lines_by_partition(
            &outcome(
                "[echo] bulkhead: system ready\r\n[ping] x\r\nbulkhead: system ready\r\n\
                 [ping] a\r\n",
            ),
            &demo(),
        )
        .unwrap();
        assert_eq!(lines.finished["ping"], ["a"]);
        assert!(!lines.finished.contains_key("echo"));
    }

    #[test]
    fn torn_and_foreign_lines_fail() {
        for console in [
            "bulkhead: system ready\r\n[ping] a\r\n\r\n",
            "bulkhead: system ready\r\n[ping] half\r[echo] b\r\n",
            "bulkhead: system ready\r\n[pong] who\r\n",
            "bulkhead: system ready\r\nstray text\r\n",
            "bulkhead: system ready\r\n[ping] a\u{8}\u{8}\u{8}x\r\n",
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
        assert!(super::exactly(&lines, "ping", &ping_lines(1), None).is_err());
        assert!(super::exactly(&lines, "echo", &[], None).is_ok());
    }

    #[test]
    fn backspaces_erase_as_on_a_terminal() {
        assert_eq!(render("echo> abc\u{8} \u{8}d").unwrap(), "echo> abd");
        assert_eq!(render("echo> ab\u{8} \u{8}").unwrap(), "echo> a");
        assert_eq!(render("echo> ").unwrap(), "echo> ");
        assert_eq!(render("ab\u{8}\u{8}").unwrap(), "ab");
        assert!(render("a\u{8}\u{8}").is_err());
    }

    #[test]
    fn the_focused_line_is_joined_to_its_rest_after_an_interruption() {
        let console = "bulkhead: system ready\r\n[console] focus: 2 echo\r\n\
             [echo] ready\r\n[echo] echo> \r\n[ping] a\r\n[echo] echo> \r\n[ping] b\r\n\
             [echo] echo> ab\u{8} \u{8}\r\n[ping] c\r\n[echo] echo> a\r\n\
             [echo] echo: a\r\n[echo] echo> \r\n[ping] d\r\n[echo] ec";
        let lines = lines_by_partition(&outcome(console), &demo()).unwrap();
        assert_eq!(lines.finished["echo"], ["ready", "echo> a", "echo: a"]);
        assert_eq!(lines.open["echo"], "echo> ");
        assert_eq!(lines.finished["ping"], ["a", "b", "c", "d"]);
        assert_eq!(interruptions(&outcome(console), &demo()), Ok((4, 4)));
    }

    #[test]
    fn what_is_erased_after_an_interruption_is_gone_from_the_line() {
        let console = "bulkhead: system ready\r\n[console] focus: 2 echo\r\n\
             [echo] echo> abc\r\n[ping] a\r\n[echo] echo> abc\u{8} \u{8}d\r\n";
        let lines = lines_by_partition(&outcome(console), &demo()).unwrap();
        assert_eq!(lines.open["echo"], "echo> abd");
        assert!(!lines.finished.contains_key("echo"));
        assert_eq!(interruptions(&outcome(console), &demo()), Ok((1, 1)));
    }

    #[test]
    fn an_open_line_ended_by_a_focus_change_finishes_later() {
        let console = "bulkhead: system ready\r\n[console] focus: 2 echo\r\n\
             [echo] echo> \r\n[console] focus: 1 ping\r\n[ping] half\r\n\
             [console] focus: 2 echo\r\n[echo] echo> \r\n[ping] half and whole\r\n\
             [echo] echo> hi\r\n[echo] echo: hi\r\n[echo] echo> ";
        let lines = lines_by_partition(&outcome(console), &demo()).unwrap();
        assert_eq!(lines.finished["ping"], ["half and whole"]);
        assert_eq!(lines.finished["echo"], ["echo> hi", "echo: hi"]);
        assert_eq!(lines.open["echo"], "echo> ");
        assert!(!lines.open.contains_key("ping"));
    }

    #[test]
    fn a_line_that_does_not_put_the_prompt_back_fails() {
        for console in [
            // Not printed again.
            "bulkhead: system ready\r\n[echo] echo> ab\r\n[ping] a\r\n[ping] b\r\n",
            // Printed again without what was typed.
            "bulkhead: system ready\r\n[echo] echo> ab\r\n[ping] a\r\n[echo] echo> \r\n",
        ] {
            assert!(
                interruptions(&outcome(console), &demo()).is_err(),
                "{console:?}"
            );
        }
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
        assert_eq!(
            demo.reminder(),
            "Ctrl-A then 1 to 5 gives a partition the keyboard; Ctrl-A Ctrl-A types Ctrl-A"
        );
    }
}
