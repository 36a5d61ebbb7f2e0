// SPDX-License-Identifier: Apache-2.0 OR MIT
//! No core executes an exclusive load/store or an LSE atomic while its MMU
//! is off.
//!
//! A Cortex-A72 (the Raspberry Pi 4's) does not honour exclusives with its
//! MMU and caches off: a spin lock or `spin::Once` taken then spins for
//! ever. QEMU honours them whatever the MMU says, so a boot on QEMU cannot
//! show the hang; what it can show is which instructions ran. These tests
//! boot the kernel alone with QEMU's `-d in_asm,exec,nochain` log: `in_asm`
//! prints each translation block's instructions once, when it is
//! translated, and `exec` with `nochain` prints every block each core
//! executes. A core's MMU counts as off until it executes the instruction
//! at the kernel's symbol [`MARKER`] (the `ret` after `msr sctlr_el2` and
//! `isb` in `bulkhead_mmu_on`, through which every core turns its MMU on);
//! no block a core executes before that may hold an exclusive or atomic.
//!
//! The kernel is linked at 0 and runs wherever it was loaded: the load
//! address is the address of the first executed block that starts with the
//! kernel's first instruction word (QEMU runs a boot stub of its own
//! first), and the word at the marker must be the ELF's there.
//!
//! Only the kernel's image is logged (`-dfilter`): QEMU's boot stubs stand
//! in for firmware, and on `raspi4b` three cores spin in one for the whole
//! boot, which made the log ten times longer. QEMU puts an arm64 Image whose
//! header says `text_offset` 0 at the first 2 MiB boundary past the start of
//! RAM ([`LOAD_OFFSET`]); were that to change, the log would show no block
//! of the kernel and the test would fail, not pass.
//!
//! The log is deleted once read, unless the test fails: then it stays under
//! `target/exclusives/` and the failure names it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use hv_core::elf::Elf;

use super::{Context, expect_lines, start};
use crate::image::{self, Variant};
use crate::qemu::{Gic, Machine, RunSpec, Verdict};
use crate::system::Platform;

/// The kernel's global label on the first instruction a core runs with its
/// MMU on.
const MARKER: &str = "bulkhead_mmu_on_done";

/// Where QEMU loads the kernel, from the start of RAM (`text_offset` 0,
/// placed at a 2 MiB boundary; seen on `virt` and `raspi4b`).
const LOAD_OFFSET: u64 = 2 << 20;

/// Logging every block slows QEMU down a good deal.
const TIMEOUT: Duration = Duration::from_secs(60);

const RELEASE: Variant = Variant::plain(true);

/// `virt` with GICv2 and four cores, the kernel alone.
pub(super) fn virt(c: &Context<'_>) -> Result<String, String> {
    let machine = Machine {
        kernel: Some(c.normal.clone()),
        ..super::machine(c, Gic::V2, 4, "1G")
    };
    let elf = image::kernel_elf(c.tools, c.platform, RELEASE);
    run(c, "virt-4-cores", machine, &elf, 4)
}

/// QEMU's `raspi4b`, the kernel alone: three cores released from the spin
/// table.
pub(super) fn rpi4(c: &Context<'_>) -> Result<String, String> {
    let platform = Platform::load(crate::rpi4::PLATFORM).map_err(|e| e.to_string())?;
    let kernel = image::build(c.tools, &platform, RELEASE).map_err(|e| e.to_string())?;
    let elf = image::kernel_elf(c.tools, &platform, RELEASE);
    let machine = crate::rpi4::machine(&platform, kernel).map_err(|e| e.to_string())?;
    run(c, "rpi4", machine, &elf, 4)
}

/// Boots `machine` with QEMU's log on until every core is online, then
/// reads the log.
fn run(
    c: &Context<'_>,
    name: &str,
    mut machine: Machine<'_>,
    elf: &Path,
    cores: u32,
) -> Result<String, String> {
    let file = std::fs::read(elf).map_err(|e| format!("cannot read {}: {e}", elf.display()))?;
    let marker = Marker::from_elf(&file).map_err(|e| format!("{}: {e}", elf.display()))?;
    let folder = crate::root().join("target/exclusives");
    std::fs::create_dir_all(&folder)
        .map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
    let log = folder.join(format!("{name}.log"));
    // A log left by an earlier run must not be read as this one's.
    match std::fs::remove_file(&log) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot remove {}: {e}", log.display())),
    }
    let (_, size) = Elf::parse(&file)
        .ok()
        .and_then(|e| e.memory_span())
        .ok_or_else(|| format!("{}: no loadable segment", elf.display()))?;
    let logged = format!("{:#x}+{size:#x}", machine.platform.ram_base + LOAD_OFFSET);
    machine.extra.extend([
        "-d".to_owned(),
        "in_asm,exec,nochain".to_owned(),
        "-dfilter".to_owned(),
        logged.clone(),
        "-D".to_owned(),
        log.display().to_string(),
    ]);
    let spec = RunSpec {
        timeout: Some(TIMEOUT),
        stop_when_ready: true,
        ..RunSpec::default()
    };
    let outcome = start(c, &machine, spec)?;
    let kept = |why: String| format!("{why}\nQEMU's log: {}", log.display());
    if let Verdict::Failed(why) = outcome.verdict() {
        return Err(kept(format!("{why}\n--- console ---\n{}", outcome.console)));
    }
    expect_lines(
        &outcome,
        &[format!("boot: cores online {cores} of {cores}")],
    )
    .map_err(kept)?;
    let bytes = std::fs::read(&log).map_err(|e| kept(format!("cannot read QEMU's log: {e}")))?;
    let report = analyse(&String::from_utf8_lossy(&bytes), &marker);
    let verdict = judge(&report, &marker, cores)
        .map_err(|why| format!("{why}\n(the log shows only the kernel's image, {logged})"));
    match verdict {
        Ok(note) => {
            // Tens of megabytes: kept only when it shows something wrong.
            let _ = std::fs::remove_file(&log);
            Ok(note)
        }
        Err(why) => Err(kept(why)),
    }
}

/// What marks the moment a core's MMU is on.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Marker {
    /// The instruction at [`MARKER`]: its offset in the kernel and its word.
    Symbol {
        /// Offset from the kernel's first byte (it is linked at 0).
        offset: u64,
        /// The instruction word there.
        word: u32,
        /// The kernel's first instruction word, to find where it was loaded.
        first_word: u32,
    },
    /// A kernel without [`MARKER`]: the instruction after the `msr
    /// sctlr_el2` of a block that also read SCTLR_EL2 before it (a
    /// read-modify-write, as the Rust code that turned the MMU on before
    /// `bulkhead_mmu_on` compiles to). A guess, so the test still fails,
    /// but it says what the guess found.
    Guess,
}

impl Marker {
    /// The marker of the kernel ELF `file`.
    fn from_elf(file: &[u8]) -> Result<Self, String> {
        let elf = Elf::parse(file).map_err(|e| e.to_string())?;
        let word_at = |offset: u64| {
            elf.segments().find_map(|s| {
                let at = usize::try_from(offset.checked_sub(s.address)?).ok()?;
                let bytes = s.data.get(at..at.checked_add(4)?)?;
                Some(u32::from_le_bytes(bytes.try_into().ok()?))
            })
        };
        let Some(offset) = symbol(file, MARKER)? else {
            return Ok(Self::Guess);
        };
        let word = word_at(offset).ok_or(format!("no instruction at `{MARKER}` ({offset:#x})"))?;
        let first_word = word_at(0).ok_or("no instruction at offset 0")?;
        Ok(Self::Symbol {
            offset,
            word,
            first_word,
        })
    }
}

/// The value of the symbol `name` in the ELF64 little-endian `file`'s
/// symbol table, if it has it.
fn symbol(file: &[u8], name: &str) -> Result<Option<u64>, String> {
    let truncated = || "the ELF file is truncated".to_owned();
    let u16_at = |at: usize| -> Result<u16, String> {
        let b = file.get(at..at.saturating_add(2)).ok_or_else(truncated)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |at: usize| -> Result<u32, String> {
        let b = file.get(at..at.saturating_add(4)).ok_or_else(truncated)?;
        Ok(u32::from_le_bytes(b.try_into().map_err(|_| truncated())?))
    };
    let u64_at = |at: usize| -> Result<u64, String> {
        let b = file.get(at..at.saturating_add(8)).ok_or_else(truncated)?;
        Ok(u64::from_le_bytes(b.try_into().map_err(|_| truncated())?))
    };
    let offset_at = |at: usize| -> Result<usize, String> {
        usize::try_from(u64_at(at)?).map_err(|_| truncated())
    };
    const SHT_SYMTAB: u32 = 2;
    let table = offset_at(0x28)?;
    let entry_size = usize::from(u16_at(0x3a)?);
    let count = usize::from(u16_at(0x3c)?);
    let section = |i: usize| table.saturating_add(i.saturating_mul(entry_size));
    for i in 0..count {
        if u32_at(section(i).saturating_add(4))? != SHT_SYMTAB {
            continue;
        }
        let symbols = offset_at(section(i).saturating_add(24))?;
        let size = offset_at(section(i).saturating_add(32))?;
        let strings_section =
            usize::try_from(u32_at(section(i).saturating_add(40))?).map_err(|_| truncated())?;
        let strings = offset_at(section(strings_section).saturating_add(24))?;
        for at in (symbols..symbols.saturating_add(size)).step_by(24) {
            let start =
                strings.saturating_add(usize::try_from(u32_at(at)?).map_err(|_| truncated())?);
            let rest = file.get(start..).ok_or_else(truncated)?;
            let end = rest.iter().position(|&b| b == 0).ok_or_else(truncated)?;
            if &rest[..end] == name.as_bytes() {
                return Ok(Some(u64_at(at.saturating_add(8))?));
            }
        }
    }
    Ok(None)
}

/// One instruction of QEMU's `in_asm` log.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Instruction {
    address: u64,
    word: u32,
    /// Mnemonic and operands, as QEMU's disassembler prints them.
    text: String,
}

/// `0x4020bd2c:  085ffd0a  ldaxrb   w10, [x8]`.
fn instruction(line: &str) -> Option<Instruction> {
    let (address, rest) = line.strip_prefix("0x")?.split_once(':')?;
    let (word, text) = rest.trim_start().split_once(char::is_whitespace)?;
    Some(Instruction {
        address: u64::from_str_radix(address, 16).ok()?,
        word: u32::from_str_radix(word, 16).ok()?,
        text: text.trim().to_owned(),
    })
}

/// `Trace 3: 0x7f67da0000c0 [00000000/0000000040200170/00000461/ff028200] `:
/// the core and the block's guest address.
fn trace(line: &str) -> Option<(u32, u64)> {
    let (core, rest) = line.strip_prefix("Trace ")?.split_once(':')?;
    let fields = rest.split_once('[')?.1.split_once(']')?.0;
    let pc = fields.split('/').nth(1)?;
    Some((core.parse().ok()?, u64::from_str_radix(pc, 16).ok()?))
}

/// Whether `mnemonic` is an exclusive load/store (`LDXR`, `STLXP`, ...) or
/// an LSE atomic (`CAS*`, `SWP*`, `LD<op>*`, `ST<op>*`, and LSE128's
/// `LDCLRP`, `LDSETP`, `SWPP`).
fn is_exclusive_or_atomic(mnemonic: &str) -> bool {
    const EXCLUSIVE: [&str; 8] = [
        "ldxr", "ldxp", "ldaxr", "ldaxp", "stxr", "stxp", "stlxr", "stlxp",
    ];
    const OPERATIONS: [&str; 8] = ["add", "clr", "eor", "set", "smax", "smin", "umax", "umin"];
    let m = mnemonic.to_ascii_lowercase();
    EXCLUSIVE.iter().any(|p| m.starts_with(p))
        || m.starts_with("cas")
        || m.starts_with("swp")
        || OPERATIONS.iter().any(|op| {
            m.strip_prefix("ld")
                .or_else(|| m.strip_prefix("st"))
                .is_some_and(|rest| rest.starts_with(op))
        })
}

/// What one core did before its MMU was on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Core {
    /// It executed the marker.
    mmu_on: bool,
    /// Blocks executed before that.
    blocks: u64,
    /// Their instructions (a block cut short by QEMU counts whole).
    instructions: u64,
}

/// An exclusive or atomic a core executed with its MMU off.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Finding {
    core: u32,
    /// The block's address.
    block: u64,
    instruction: Instruction,
    /// How many times that core executed it so.
    times: u64,
}

/// What the log shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Report {
    /// By QEMU's core index.
    cores: BTreeMap<u32, Core>,
    findings: Vec<Finding>,
    /// Where the kernel was loaded ([`Marker::Symbol`] only).
    load: Option<u64>,
    /// Blocks executed, all cores, MMU on or off.
    blocks: u64,
    /// Blocks a core executed with its MMU off that `in_asm` never showed.
    unseen: Vec<(u32, u64)>,
    /// The marker's address held another word than the ELF's (core, word).
    wrong_marker: Option<(u32, u32)>,
    /// Where the guessed marker was found ([`Marker::Guess`] only).
    guessed: Vec<u64>,
}

/// Reads QEMU's `-d in_asm,exec,nochain` log.
fn analyse(log: &str, marker: &Marker) -> Report {
    let mut report = Report::default();
    // Each block's instructions by its address: the longest translation
    // seen so far (QEMU retranslates a block cut short by I/O as a shorter
    // one at the same address; the longer one is what runs otherwise).
    let mut blocks: BTreeMap<u64, Vec<Instruction>> = BTreeMap::new();
    let mut reading: Option<Vec<Instruction>> = None;
    let mut seen: BTreeMap<(u32, u64), usize> = BTreeMap::new();
    for line in log.lines() {
        if line.starts_with("IN:") {
            finish(&mut reading, &mut blocks);
            reading = Some(Vec::new());
            continue;
        }
        if let Some(block) = reading.as_mut()
            && let Some(instruction) = instruction(line)
        {
            block.push(instruction);
            continue;
        }
        finish(&mut reading, &mut blocks);
        let Some((core, pc)) = trace(line) else {
            continue;
        };
        report.blocks += 1;
        let state = report.cores.entry(core).or_default();
        if state.mmu_on {
            continue;
        }
        let Some(block) = blocks.get(&pc) else {
            state.blocks += 1;
            report.unseen.push((core, pc));
            continue;
        };
        // How much of the block runs with the MMU off.
        let mut before = block.len();
        match marker {
            Marker::Symbol {
                offset,
                word,
                first_word,
            } => {
                if report.load.is_none() && block.first().is_some_and(|i| i.word == *first_word) {
                    report.load = Some(pc);
                }
                let at = report.load.map(|load| load + offset);
                if let Some(i) = block.iter().position(|i| Some(i.address) == at) {
                    before = i;
                    state.mmu_on = true;
                    if block[i].word != *word {
                        report.wrong_marker.get_or_insert((core, block[i].word));
                    }
                }
            }
            Marker::Guess => {
                let read = block
                    .iter()
                    .position(|i| i.text.starts_with("mrs") && i.text.ends_with("sctlr_el2"));
                let write = block
                    .iter()
                    .rposition(|i| i.text.starts_with("msr") && i.text.contains("sctlr_el2,"));
                if let (Some(read), Some(write)) = (read, write)
                    && read < write
                {
                    before = write + 1;
                    state.mmu_on = true;
                    if !report.guessed.contains(&block[write].address) {
                        report.guessed.push(block[write].address);
                    }
                }
            }
        }
        if before > 0 {
            state.blocks += 1;
            state.instructions += before as u64;
        }
        for instruction in &block[..before] {
            let mnemonic = instruction.text.split_whitespace().next().unwrap_or("");
            if !is_exclusive_or_atomic(mnemonic) {
                continue;
            }
            match seen.get(&(core, instruction.address)) {
                Some(&i) => report.findings[i].times += 1,
                None => {
                    seen.insert((core, instruction.address), report.findings.len());
                    report.findings.push(Finding {
                        core,
                        block: pc,
                        instruction: instruction.clone(),
                        times: 1,
                    });
                }
            }
        }
    }
    report
}

/// Files the block being read, keeping the longer of two translations at
/// one address.
fn finish(reading: &mut Option<Vec<Instruction>>, blocks: &mut BTreeMap<u64, Vec<Instruction>>) {
    let Some(block) = reading.take() else {
        return;
    };
    let Some(first) = block.first() else {
        return;
    };
    let known = blocks.entry(first.address).or_default();
    if block.len() > known.len() {
        *known = block;
    }
}

/// Passes, with a count of what each core ran with its MMU off, only if the
/// log shows blocks, every one of `cores` cores reached the marker, and
/// none executed an exclusive or atomic before it.
fn judge(report: &Report, marker: &Marker, cores: u32) -> Result<String, String> {
    if report.blocks == 0 {
        return Err("QEMU's log shows no executed translation block: nothing was checked".into());
    }
    let mut problems = Vec::new();
    if let Marker::Symbol {
        offset, first_word, ..
    } = marker
    {
        match report.load {
            None => problems.push(format!(
                "no core executed a block starting with the kernel's first word \
                 {first_word:08x}: where it was loaded is unknown"
            )),
            Some(load) => {
                if let Some((core, word)) = report.wrong_marker {
                    problems.push(format!(
                        "core {core} ran {word:08x} at `{MARKER}` ({:#x}), not the ELF's word: \
                         the load address {load:#x} is wrong",
                        load + offset
                    ));
                }
            }
        }
    }
    let what = match marker {
        Marker::Symbol { .. } => format!("`{MARKER}`"),
        Marker::Guess => "a read-modify-write of SCTLR_EL2".to_owned(),
    };
    for core in 0..cores {
        match report.cores.get(&core) {
            None => problems.push(format!("core {core} executed nothing")),
            Some(state) if !state.mmu_on => {
                problems.push(format!("core {core} never executed {what}"));
            }
            Some(_) => {}
        }
    }
    for (core, pc) in report.unseen.iter().take(5) {
        problems.push(format!(
            "core {core} ran the block at {pc:#x} with its MMU off, and the log never showed \
             its instructions"
        ));
    }
    for f in &report.findings {
        problems.push(format!(
            "core {} ran `{}` at {:#x} (block {:#x}) with its MMU off{}",
            f.core,
            f.instruction.text,
            f.instruction.address,
            f.block,
            if f.times > 1 {
                format!(", {} times", f.times)
            } else {
                String::new()
            }
        ));
    }
    let counts = report
        .cores
        .iter()
        .map(|(core, s)| {
            format!(
                "core {core} {} blocks, {} instructions",
                s.blocks, s.instructions
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    if let Marker::Guess = marker {
        let found = report
            .guessed
            .iter()
            .map(|a| format!("{a:#x}"))
            .collect::<Vec<_>>()
            .join(", ");
        problems.insert(
            0,
            format!(
                "the kernel has no symbol `{MARKER}`; taking the MMU as on after a \
                 read-modify-write of SCTLR_EL2 (found at {found}) instead, the log shows:"
            ),
        );
    }
    if problems.is_empty() {
        let load = report.load.map(|l| format!("{l:#x}")).unwrap_or_default();
        Ok(format!(
            "kernel loaded at {load}; before its MMU was on: {counts}; no exclusive or atomic"
        ))
    } else {
        Err(format!(
            "{}\nbefore its MMU was on: {counts}",
            problems.join("\n")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::{Marker, analyse, instruction, is_exclusive_or_atomic, judge, symbol, trace};

    /// The kernel as the samples have it: loaded at 0x40200000 (QEMU's
    /// boot stub at 0x40000000 first), `bulkhead_mmu_on_done` at 0x100, a
    /// `ret`.
    const KERNEL: Marker = Marker::Symbol {
        offset: 0x100,
        word: 0xd65f03c0,
        first_word: 0x14000010,
    };

    /// Core 0: QEMU's stub, the kernel's first instruction, its MMU on at
    /// the marker, then a spin lock. Core 1: started at 0x40200170, its
    /// MMU on, then an LSE atomic.
    const GOOD: &str = "\
----------------
IN:
0x40000000:  580000c0  ldr      x0, #0x40000018
0x40000014:  d61f0080  br       x4

Trace 0: 0x7f67d4000100 [00000000/0000000040000000/00000461/ff028200]
----------------
IN:
0x40200000:  14000010  b        #0x40200040

Trace 0: 0x7f67d4000300 [00000000/0000000040200000/00000461/ff028200]
----------------
IN:
0x402000f8:  d51c1009  msr      sctlr_el2, x9
0x402000fc:  d5033fdf  isb

Trace 0: 0x7f67d4000440 [00000000/00000000402000f8/00000461/ff028200]
----------------
IN:
0x40200100:  d65f03c0  ret

Trace 0: 0x7f67d4000580 [00000000/0000000040200100/00000461/ff028200]
----------------
IN:
0x4020bd2c:  085ffd0a  ldaxrb   w10, [x8]
0x4020bd30:  080a7d09  stxrb    w10, w9, [x8]

Trace 0: 0x7f67d40006c0 [00000000/000000004020bd2c/00000461/ff028200]
cpu_io_recompile: rewound execution of TB to 000000004020bd2c
----------------
IN:
0x40200170:  d503201f  nop

Trace 1: 0x7f67da0000c0 [00000000/0000000040200170/00000461/ff028200]
Trace 1: 0x7f67d4000440 [00000000/00000000402000f8/00000461/ff028200]
Trace 1: 0x7f67d4000580 [00000000/0000000040200100/00000461/ff028200]
----------------
IN:
0x40210000:  b8e08020  swpal    w0, w0, [x1]

Trace 1: 0x7f67d4000800 [00000000/0000000040210000/00000461/ff028200]
";

    #[test]
    fn exclusives_after_the_mmu_is_on_pass() {
        let report = analyse(GOOD, &KERNEL);
        assert_eq!(report.load, Some(0x4020_0000));
        assert_eq!(report.blocks, 9);
        assert!(report.findings.is_empty(), "{:?}", report.findings);
        let note = judge(&report, &KERNEL, 2).unwrap();
        assert!(note.contains("core 0 3 blocks, 5 instructions"), "{note}");
        assert!(note.contains("core 1 2 blocks, 3 instructions"), "{note}");
        // A third core that never ran fails.
        let why = judge(&report, &KERNEL, 3).unwrap_err();
        assert!(why.contains("core 2 executed nothing"), "{why}");
    }

    /// The same spin lock before core 0's MMU is on fails, naming the core,
    /// the address and the instruction, and how often it ran.
    #[test]
    fn an_exclusive_before_the_mmu_is_on_fails() {
        let early = GOOD.replacen(
            "Trace 0: 0x7f67d4000440 [00000000/00000000402000f8/",
            "Trace 0: 0x7f67d40006c0 [00000000/000000004020bd2c/00000461/ff028200] \n\
             Trace 0: 0x7f67d40006c0 [00000000/000000004020bd2c/00000461/ff028200] \n\
             Trace 0: 0x7f67d4000440 [00000000/00000000402000f8/",
            1,
        );
        // The block is translated after its first use in GOOD: move its
        // translation ahead.
        let translation = "----------------\nIN: \n\
            0x4020bd2c:  085ffd0a  ldaxrb   w10, [x8]\n\
            0x4020bd30:  080a7d09  stxrb    w10, w9, [x8]\n\n";
        let early = format!("{translation}{early}");
        let report = analyse(&early, &KERNEL);
        let why = judge(&report, &KERNEL, 2).unwrap_err();
        assert!(
            why.contains("core 0 ran `ldaxrb   w10, [x8]` at 0x4020bd2c (block 0x4020bd2c) with its MMU off, 2 times"),
            "{why}"
        );
        assert!(
            why.contains("core 0 ran `stxrb    w10, w9, [x8]` at 0x4020bd30"),
            "{why}"
        );
        assert!(!why.contains("core 1 ran"), "{why}");
    }

    #[test]
    fn a_log_without_blocks_or_marker_fails() {
        let why = judge(&analyse("", &KERNEL), &KERNEL, 1).unwrap_err();
        assert!(why.contains("no executed translation block"), "{why}");
        // Core 1 stops before its marker.
        let cut = &GOOD[..GOOD.find("Trace 1: 0x7f67d4000580").unwrap()];
        let why = judge(&analyse(cut, &KERNEL), &KERNEL, 2).unwrap_err();
        assert!(
            why.contains("core 1 never executed `bulkhead_mmu_on_done`"),
            "{why}"
        );
        // The marker's address holds another word: the load address is wrong.
        let wrong = GOOD.replace("d65f03c0  ret", "d503201f  nop");
        let why = judge(&analyse(&wrong, &KERNEL), &KERNEL, 2).unwrap_err();
        assert!(
            why.contains("the load address 0x40200000 is wrong"),
            "{why}"
        );
        // A block whose instructions the log never showed.
        let unseen = GOOD.replace("0x40200170:  d503201f  nop", "");
        let why = judge(&analyse(&unseen, &KERNEL), &KERNEL, 2).unwrap_err();
        assert!(why.contains("core 1 ran the block at 0x40200170"), "{why}");
    }

    /// Without the symbol, a read-modify-write of SCTLR_EL2 stands in, and
    /// the test fails anyway.
    #[test]
    fn a_kernel_without_the_marker_fails_with_a_guess() {
        let old = GOOD.replace(
            "0x402000f8:  d51c1009  msr      sctlr_el2, x9",
            "0x402000f4:  d53c1009  mrs      x9, sctlr_el2\n0x402000f8:  d51c1009  msr      sctlr_el2, x9",
        );
        let old = old.replace("00000000402000f8/", "00000000402000f4/");
        let report = analyse(&old, &Marker::Guess);
        assert_eq!(report.guessed, vec![0x402000f8]);
        let why = judge(&report, &Marker::Guess, 2).unwrap_err();
        assert!(why.contains("no symbol `bulkhead_mmu_on_done`"), "{why}");
        assert!(why.contains("found at 0x402000f8"), "{why}");
    }

    /// QEMU's lines as it writes them, trailing spaces included (the
    /// samples above leave them out).
    #[test]
    fn lines_are_read_as_qemu_writes_them() {
        assert_eq!(
            trace("Trace 3: 0x7f67da0000c0 [00000000/0000000040200170/00000461/ff028200] "),
            Some((3, 0x4020_0170))
        );
        let isb = instruction("0x402000fc:  d5033fdf  isb      ").unwrap();
        assert_eq!((isb.address, isb.word), (0x4020_00fc, 0xd503_3fdf));
        assert_eq!(isb.text, "isb");
        assert_eq!(analyse("IN: \n", &KERNEL).blocks, 0);
        assert_eq!(
            trace("cpu_io_recompile: rewound execution of TB to 0000000040233694"),
            None
        );
        assert_eq!(
            instruction("Stopped execution of TB chain before 0x7f67d6000ac0"),
            None
        );
    }

    #[test]
    fn exclusives_and_atomics_are_recognised() {
        for m in [
            "ldxr", "ldxrb", "ldaxrh", "ldxp", "ldaxp", "stxr", "stlxrb", "stxp", "stlxp", "cas",
            "casal", "caspal", "casb", "swp", "swpal", "ldadd", "ldaddal", "ldclrl", "ldeorh",
            "ldset", "ldsmaxa", "ldumin", "stadd", "staddl", "stumaxb", "ldsetp", "swpp", "LDXR",
        ] {
            assert!(is_exclusive_or_atomic(m), "{m}");
        }
        for m in [
            "ldr", "ldar", "ldapr", "stlr", "str", "stp", "ldp", "clrex", "msr", "setp",
        ] {
            assert!(!is_exclusive_or_atomic(m), "{m}");
        }
    }

    /// A minimal ELF64 with a symbol table of two symbols.
    #[test]
    fn symbols_are_read_from_the_elf() {
        let mut file = vec![0u8; 64];
        file[..4].copy_from_slice(b"\x7fELF");
        let strings = b"\0_start\0bulkhead_mmu_on_done\0";
        let strings_at = file.len();
        file.extend_from_slice(strings);
        let symbols_at = file.len();
        for (name, value) in [(1u32, 0u64), (8, 0x1234)] {
            let mut entry = [0u8; 24];
            entry[..4].copy_from_slice(&name.to_le_bytes());
            entry[8..16].copy_from_slice(&value.to_le_bytes());
            file.extend_from_slice(&entry);
        }
        let sections_at = file.len();
        // Section 0: null; 1: the symbol table (linked to 2); 2: strings.
        for (kind, offset, size, link) in [
            (0u32, 0usize, 0usize, 0u32),
            (2, symbols_at, 48, 2),
            (3, strings_at, strings.len(), 0),
        ] {
            let mut header = [0u8; 64];
            header[4..8].copy_from_slice(&kind.to_le_bytes());
            header[24..32].copy_from_slice(&(offset as u64).to_le_bytes());
            header[32..40].copy_from_slice(&(size as u64).to_le_bytes());
            header[40..44].copy_from_slice(&link.to_le_bytes());
            file.extend_from_slice(&header);
        }
        file[0x28..0x30].copy_from_slice(&(sections_at as u64).to_le_bytes());
        file[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        file[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        assert_eq!(symbol(&file, "bulkhead_mmu_on_done"), Ok(Some(0x1234)));
        assert_eq!(symbol(&file, "_start"), Ok(Some(0)));
        assert_eq!(symbol(&file, "missing"), Ok(None));
        assert!(symbol(&file[..100], "bulkhead_mmu_on_done").is_err());
    }
}
