// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Running a machine in QEMU and reading what its console says.
//!
//! [`Machine`] describes one QEMU invocation; [`run`] starts it, copies the
//! console to the terminal if asked, answers a script of expected prompts
//! (for U-Boot), and stops it on a timeout or once the system is ready.
//! [`Outcome::verdict`] then applies the console protocol of
//! `hv_abi::console`: a panic or refusal line is a failure, the ready line
//! without either is health.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hv_abi::console::{READY, is_failure};

use crate::setup::Tools;
use crate::system::Platform;
use crate::transcript::{Transcript, Writer, may_have};
use crate::{Result, error};

/// The interrupt controller QEMU gives the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Gic {
    /// GICv2.
    V2,
    /// GICv3.
    V3,
}

/// One QEMU machine.
#[derive(Clone, Debug)]
pub(crate) struct Machine<'p> {
    /// The board, for QEMU's machine and CPU.
    pub(crate) platform: &'p Platform,
    /// GICv2 or GICv3.
    pub(crate) gic: Gic,
    /// Cores.
    pub(crate) smp: u32,
    /// RAM, as `-m` takes it.
    pub(crate) memory: String,
    /// Whether the machine starts software at EL2 (`virtualization=on`).
    pub(crate) virtualization: bool,
    /// `-kernel`.
    pub(crate) kernel: Option<PathBuf>,
    /// `-append`.
    pub(crate) append: Option<String>,
    /// `-bios` (U-Boot).
    pub(crate) bios: Option<PathBuf>,
    /// Files QEMU puts in RAM before starting: `-device loader,file=..,addr=..`.
    pub(crate) loader: Vec<(PathBuf, u64)>,
    /// Extra arguments, last on the command line.
    pub(crate) extra: Vec<String>,
    /// `-dtb`: the device tree, for machines QEMU makes none for (raspi4b).
    pub(crate) dtb: Option<PathBuf>,
    /// `-cpu`, if not the platform's.
    pub(crate) cpu: Option<&'static str>,
}

impl<'p> Machine<'p> {
    /// The platform's machine with the defaults `cargo xtask run` uses.
    pub(crate) fn default_for(platform: &'p Platform) -> Self {
        Self {
            platform,
            gic: Gic::V3,
            smp: 4,
            memory: "1G".into(),
            virtualization: true,
            kernel: None,
            append: None,
            bios: None,
            loader: Vec::new(),
            extra: Vec::new(),
            dtb: None,
            cpu: None,
        }
    }

    /// Whether the board is QEMU's `virt`, whose machine takes the GIC
    /// version and `virtualization=` options and any core count and RAM
    /// size; other machines (raspi4b) are fixed boards.
    fn is_virt(&self) -> bool {
        self.platform.qemu_machine.split(',').next() == Some("virt")
    }

    /// A one-line summary for messages.
    pub(crate) fn describe(&self) -> String {
        if !self.is_virt() {
            return format!(
                "{} ({}, {} cores)",
                self.platform.name, self.platform.qemu_machine, self.smp
            );
        }
        let gic = match self.gic {
            Gic::V2 => "GICv2",
            Gic::V3 => "GICv3",
        };
        format!(
            "{} with {gic}, {} cores, {} RAM",
            self.platform.name, self.smp, self.memory
        )
    }

    fn machine_argument(&self) -> String {
        if !self.is_virt() {
            return self.platform.qemu_machine.clone();
        }
        let base = if self.virtualization {
            self.platform.qemu_machine.clone()
        } else {
            self.platform
                .qemu_machine
                .replace("virtualization=on", "virtualization=off")
        };
        let version = match self.gic {
            Gic::V2 => 2,
            Gic::V3 => 3,
        };
        format!("{base},gic-version={version}")
    }

    fn command(&self, tools: &Tools) -> Command {
        let mut c = tools.qemu_command();
        c.args([
            "-M",
            &self.machine_argument(),
            "-cpu",
            self.cpu.unwrap_or(&self.platform.qemu_cpu),
        ])
        .args(["-smp", &self.smp.to_string()]);
        if self.is_virt() {
            c.args(["-m", &self.memory]);
        }
        if let Some(dtb) = &self.dtb {
            c.arg("-dtb").arg(dtb);
        }
        // -nographic: the serial port on stdio, Ctrl-A X to quit. No
        // network: the default NIC wants an option ROM we do not need. No
        // sound: QEMU would look for audio modules, and has none of its own
        // (setup::Tools::qemu_command).
        c.args(["-nographic", "-nic", "none", "-audio", "none", "-no-reboot"]);
        if let Some(bios) = &self.bios {
            c.arg("-bios").arg(bios);
        }
        if let Some(kernel) = &self.kernel {
            c.arg("-kernel").arg(kernel);
        }
        if let Some(append) = &self.append {
            c.args(["-append", append]);
        }
        for (file, addr) in &self.loader {
            c.args([
                "-device",
                &format!("loader,file={},addr={addr:#x},force-raw=on", file.display()),
            ]);
        }
        c.args(&self.extra);
        c
    }
}

/// How to run a machine.
#[derive(Default)]
pub(crate) struct RunSpec {
    /// Stop it after this long.
    pub(crate) timeout: Option<Duration>,
    /// Give it this terminal: console shown, keyboard passed through.
    pub(crate) interactive: bool,
    /// Stop it as soon as the system reports ready.
    pub(crate) stop_when_ready: bool,
    /// Pairs of (text to wait for, text to type then), in order. (Where to
    /// type, not a check: searched as plain text, anywhere.)
    pub(crate) script: Vec<(String, String)>,
    /// Stop it as soon as the console shows this line (a needle, matched
    /// as [`Transcript`] matches it: at the start of a line of its writer).
    pub(crate) until: Option<String>,
    /// Stop it as soon as the console shows every one of these lines.
    pub(crate) until_all: Vec<String>,
}

/// What happened.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// Everything the console printed.
    pub(crate) console: String,
    /// What QEMU printed on its own stderr.
    pub(crate) stderr: String,
    /// QEMU's exit status.
    pub(crate) exit: Option<ExitStatus>,
    /// The timeout stopped it.
    pub(crate) timed_out: bool,
    /// It was stopped because the system was ready, or showed `until`.
    pub(crate) stopped_when_ready: bool,
    /// How long it ran.
    pub(crate) elapsed: Duration,
}

/// Whether a run was healthy.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The system reported ready and nothing failed.
    Healthy,
    /// Why not.
    Failed(String),
}

impl Outcome {
    /// Whether the console printed the ready line.
    pub(crate) fn ready(&self) -> bool {
        is_ready(&self.console)
    }

    /// The console's lines, each with its writer: what checks read.
    pub(crate) fn transcript(&self) -> Transcript<'_> {
        Transcript::new(&self.console)
    }

    /// The first failure line, if any.
    pub(crate) fn failure(&self) -> Option<&str> {
        self.console
            .lines()
            .find(|l| is_failure(l))
            .map(str::trim_end)
    }

    /// Judges the run by the console protocol.
    pub(crate) fn verdict(&self) -> Verdict {
        if let Some(line) = self.failure() {
            return Verdict::Failed(format!("the kernel reported: {line}"));
        }
        if self.ready() {
            return Verdict::Healthy;
        }
        if self.timed_out {
            return Verdict::Failed(format!("no `{READY}` within {} s", self.elapsed.as_secs()));
        }
        match self.exit {
            Some(status) if !status.success() => {
                Verdict::Failed(format!("QEMU exited with {status}: {}", self.stderr.trim()))
            }
            _ => Verdict::Failed(format!("the machine stopped before `{READY}`")),
        }
    }
}

/// Whether `console` has the kernel's ready line (a line of its own, not a
/// partition's imitation of it).
fn is_ready(console: &str) -> bool {
    may_have(console, READY)
        && Transcript::new(console)
            .lines()
            .iter()
            .any(|l| l.writer == Writer::Kernel && l.text.trim_end() == READY)
}

/// Runs `machine` as `spec` says.
pub(crate) fn run(tools: &Tools, machine: &Machine<'_>, spec: &RunSpec) -> Result<Outcome> {
    let mut command = machine.command(tools);
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    command.stdin(if spec.interactive {
        Stdio::inherit()
    } else if spec.script.is_empty() {
        Stdio::null()
    } else {
        Stdio::piped()
    });
    let start = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|e| error!("cannot start {}: {e}", tools.qemu.display()))?;
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| error!("QEMU has no stdout"))?;
    let echo = spec.interactive;
    let reader = std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buffer) {
            if n == 0 {
                break;
            }
            if echo {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(&buffer[..n]);
                let _ = out.flush();
            }
            if tx.send(buffer[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut stderr_pipe = child
        .stderr
        .take()
        .ok_or_else(|| error!("QEMU has no stderr"))?;
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr_pipe.read_to_string(&mut text);
        text
    });

    let mut console = Vec::new();
    let mut script = spec.script.iter();
    let mut step = script.next();
    let mut searched_from = 0;
    let mut timed_out = false;
    let mut stopped_when_ready = false;
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(chunk) => console.extend_from_slice(&chunk),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        // Everything that has arrived, so the console is read once per
        // batch, not once per (often one-byte) chunk.
        while let Ok(chunk) = rx.try_recv() {
            console.extend_from_slice(&chunk);
        }
        let text = String::from_utf8_lossy(&console);
        if let Some((expect, send)) = step
            && let Some(at) = text[searched_from.min(text.len())..].find(expect.as_str())
        {
            searched_from += at + expect.len();
            if let Some(stdin) = child.stdin.as_mut() {
                let _ = stdin.write_all(send.as_bytes());
                let _ = stdin.flush();
            }
            step = script.next();
        }
        if spec.stop_when_ready && is_ready(&text) {
            stopped_when_ready = true;
            stop(&mut child);
            break;
        }
        // Its lines are read only once the text waited for is there, and
        // only whole lines: a line cut by the stop would fail the checks that
        // ask for it whole.
        let whole_lines = &text[..text.rfind('\n').map_or(0, |end| end + 1)];
        let found = |needles: &[String]| {
            needles.iter().all(|u| may_have(whole_lines, u)) && {
                let transcript = Transcript::new(whole_lines);
                needles.iter().all(|u| transcript.has(u))
            }
        };
        if spec
            .until
            .as_ref()
            .is_some_and(|u| found(std::slice::from_ref(u)))
        {
            stopped_when_ready = true;
            stop(&mut child);
            break;
        }
        if !spec.until_all.is_empty() && found(&spec.until_all) {
            stopped_when_ready = true;
            stop(&mut child);
            break;
        }
        if spec.timeout.is_some_and(|t| start.elapsed() >= t) {
            timed_out = true;
            stop(&mut child);
            break;
        }
    }
    let exit = child.wait().ok();
    // Drain what QEMU printed before it stopped.
    let _ = reader.join();
    while let Ok(chunk) = rx.try_recv() {
        console.extend_from_slice(&chunk);
    }
    let stderr = stderr_reader.join().unwrap_or_default();
    if spec.interactive && !stderr.is_empty() {
        eprint!("{stderr}");
    }
    Ok(Outcome {
        console: String::from_utf8_lossy(&console).into_owned(),
        stderr,
        exit,
        timed_out,
        stopped_when_ready,
        elapsed: start.elapsed(),
    })
}

/// Stops QEMU with SIGTERM (so it restores the terminal), then SIGKILL.
fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .arg(child.id().to_string())
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
}

/// Bytes in a QEMU `-m` size: a number with an optional K, M, G or T suffix;
/// a bare number is MiB, as QEMU takes it.
pub(crate) fn parse_memory(text: &str) -> Result<u64> {
    let bad = || error!("`{text}` is not a memory size (examples: 512M, 1G)");
    let (number, shift) = match text.char_indices().last() {
        Some((i, 'K' | 'k')) => (&text[..i], 10),
        Some((i, 'M' | 'm')) => (&text[..i], 20),
        Some((i, 'G' | 'g')) => (&text[..i], 30),
        Some((i, 'T' | 't')) => (&text[..i], 40),
        _ => (text, 20),
    };
    let n: u64 = number.parse().map_err(|_| bad())?;
    n.checked_mul(1 << shift).filter(|&b| b > 0).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Outcome, Verdict, parse_memory};

    fn outcome(console: &str, timed_out: bool) -> Outcome {
        Outcome {
            console: console.into(),
            stderr: String::new(),
            exit: None,
            timed_out,
            stopped_when_ready: false,
            elapsed: Duration::from_secs(3),
        }
    }

    #[test]
    fn verdicts_follow_the_console_protocol() {
        assert_eq!(
            outcome("Bulkhead\r\nbulkhead: system ready\r\n", true).verdict(),
            Verdict::Healthy
        );
        let panicked = outcome(
            "bulkhead: system ready\n!!! BULKHEAD PANIC: boom at a.rs:1:1 on core 1\n",
            true,
        );
        assert!(matches!(panicked.verdict(), Verdict::Failed(why) if why.contains("boom")));
        assert!(
            matches!(outcome("Bulkhead\n", true).verdict(), Verdict::Failed(why) if why.contains("within 3 s"))
        );
        assert!(
            matches!(outcome("", false).verdict(), Verdict::Failed(why) if why.contains("stopped before"))
        );
    }

    #[test]
    fn a_partitions_imitation_of_the_ready_line_is_not_ready() {
        let forged = outcome("Bulkhead\r\n[mimic] bulkhead: system ready\r\n", true);
        assert!(!forged.ready());
        assert!(matches!(forged.verdict(), Verdict::Failed(_)));
        // A panic marker is a failure wherever it is, even in a partition's
        // line: it may have been printed in the middle of one.
        let panicked = outcome(
            "bulkhead: system ready\r\n[ping] 1000 ca!!! BULKHEAD PANIC: boom\r\n",
            true,
        );
        assert!(matches!(panicked.verdict(), Verdict::Failed(why) if why.contains("boom")));
    }

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("512M").unwrap(), 512 << 20);
        assert_eq!(parse_memory("1G").unwrap(), 1 << 30);
        assert_eq!(parse_memory("256").unwrap(), 256 << 20);
        assert!(parse_memory("lots").is_err());
        assert!(parse_memory("0").is_err());
        assert!(parse_memory("99999999999T").is_err());
    }
}
