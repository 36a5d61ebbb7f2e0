// SPDX-License-Identifier: Apache-2.0 OR MIT
//! bench: measures the kernel's fast paths from a partition.
//!
//! Under QEMU with `-icount shift=0` every instruction advances virtual time
//! by 1 ns and the virtual counter (CNTVCT_EL0, which partitions may read)
//! ticks every 16 ns, so counter ticks times 16 is instructions. Each
//! measurement runs [`ROUNDS`] times and subtracts an empty loop of the same
//! shape, so what is left is the cost of the operation: the `svc`, the
//! kernel's work and the `eret`, plus the wrapper's few register moves.
//!
//! What it measures depends on the capabilities its manifest gives it, so
//! that one program serves every bench system (`docs/benchmarks.md`):
//!
//! - always: the null hypercall;
//! - `ping` (an endpoint `pong` serves): the call + reply round trip;
//! - `bell` and `bell-back` (notifications; `bell` waits on the first and
//!   signals the second): signal/wait ping-pong, halved: one wake-up;
//! - `rtc0` with its interrupt on `bench-irq`: the PL031's level interrupt
//!   acknowledged, taken and collected, a full driver loop;
//! - `faulter` (a partition it controls), `faults` (its fault notification)
//!   and the shared region `stamp`: a fault reaching a health monitor, from
//!   the counter value `faulter` writes right before its faulting read to
//!   this partition's first instruction after its `Wait` returns.
//!
//! On a kernel built with `lock-count` (which answers
//! `BENCH_SHARED_LOCKS`; others refuse it as an unknown call) it also prints
//! how many shared locks its core took per operation.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use core::sync::atomic::Ordering;
use svc_rt::call::{self, Message};
use svc_rt::hypercall::{self, CapSlot, Status};

use svc_rt::mmio::Device;
use svc_rt::shared::{Region, Window};

svc_rt::entry!(main);

/// The endpoint `pong` serves (the channel is called `ping`, as in the demo).
const SERVER: Option<CapSlot> = svc_rt::optional_cap!(PING);
/// The notification `bell` waits on.
const BELL: Option<CapSlot> = svc_rt::optional_cap!(BELL);
/// The notification `bell` signals back.
const BELL_BACK: Option<CapSlot> = svc_rt::optional_cap!(BELL_BACK);
/// The PL031 RTC (a `Device` capability: `IrqAck` on its interrupt).
const RTC0: Option<CapSlot> = svc_rt::optional_cap!(RTC0);
/// Where the manifest mapped the RTC's registers (`svc_rt::device!`, for a
/// program that may run without it).
const RTC0_WINDOW: Option<Window> = match option_env!("BULKHEAD_DEVICE_RTC0") {
    Some(text) => Some(Window::parse(text)),
    None => None,
};
/// Where the RTC's interrupt arrives.
const BENCH_IRQ: Option<CapSlot> = svc_rt::optional_cap!(BENCH_IRQ);
/// The partition that faults (a `Partition` capability over it).
const FAULTER: Option<CapSlot> = svc_rt::optional_cap!(FAULTER);
/// The fault notification the kernel signals when it stops.
const FAULTS: Option<CapSlot> = svc_rt::optional_cap!(FAULTS);
/// The region the faulter writes its counter value into.
const STAMP_WINDOW: Option<Window> = match option_env!("BULKHEAD_SHARED_STAMP") {
    Some(text) => Some(Window::parse(text)),
    None => None,
};

/// Iterations per measurement: enough that the counter's 16-instruction
/// granularity and the kernel's timer ticks vanish in the average. The
/// setting `rounds` lowers it where each round is expensive (a system that
/// scrubs caches on every switch, `tests/qemu/bench-scrub.toml`).
const ROUNDS: u64 = match svc_rt::optional_setting!(ROUNDS) {
    Some(text) => svc_rt::parse_number(text),
    None => 1 << 14,
};

/// The setting `cross-core = true`: the partners run on another core, so
/// the IPC round trip is timed round by round and stalled rounds are left
/// out, as the wake-ups' are (see [`timed_rounds`]).
const CROSS_CORE: bool = match svc_rt::optional_setting!(CROSS_CORE) {
    Some(text) => text.len() == 4 && text.as_bytes()[0] == b't',
    None => false,
};

/// Instructions per counter tick at `-icount shift=0` with the 62.5 MHz counter.
const INSTRUCTIONS_PER_TICK: u64 = 16;

/// What one measurement took: instructions, and shared locks taken on this
/// core (on a `lock-count` kernel).
#[derive(Clone, Copy, Default)]
struct Cost {
    instructions: u64,
    locks: Option<u64>,
}

impl Cost {
    fn add(&mut self, other: Self) {
        self.instructions += other.instructions;
        self.locks = match (self.locks, other.locks) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
    }
}

/// Shared locks this core has taken so far, if the kernel counts them
/// (`BENCH_SHARED_LOCKS`: x0 = Success, x1 = the count). The call itself
/// takes no lock.
fn shared_locks() -> Option<u64> {
    let regs = call::raw([
        u64::from(hypercall::BENCH_SHARED_LOCKS),
        0,
        0,
        0,
        0,
        0,
        0,
        0,
    ]);
    (regs[0] == Status::Success.to_register()).then_some(regs[1])
}

fn measure(rounds: u64, mut operation: impl FnMut(u64)) -> Cost {
    let locks = shared_locks();
    let start = svc_rt::counter();
    for i in 0..rounds {
        operation(i);
    }
    let ticks = svc_rt::counter() - start;
    let after = shared_locks();
    Cost {
        instructions: ticks * INSTRUCTIONS_PER_TICK,
        locks: locks.zip(after).map(|(before, after)| after - before),
    }
}

/// Prints one figure: instructions per operation (less the empty loop),
/// rounded to the nearest, and shared locks per operation with three
/// decimals if counted. (Rounded, not cut: each reading of the counter is
/// known to 16 instructions only, so a figure of 22.0009 one day and
/// 21.9990 the next is the same figure, which cutting would print as 22 and
/// 21.)
fn report(what: &str, cost: Cost, empty: Cost, operations: u64) {
    let per = (cost.instructions.saturating_sub(empty.instructions) + operations / 2) / operations;
    svc_rt::println!("bench: {what} {per} instructions");
    if let Some(locks) = cost.locks {
        let milli = locks * 1000 / operations;
        svc_rt::println!(
            "bench: shared locks per {what} {}.{:03}",
            milli / 1000,
            milli % 1000
        );
    }
}

fn main(start: svc_rt::Start) -> ! {
    if let (Some(bell), Some(back)) = (BELL, BELL_BACK) {
        // One round first, so that `bell` has started and waits: while it
        // is still ready to run, the IPC round trip below pays for it.
        let _ = call::signal(bell);
        let _ = call::wait(back);
    }
    let empty = measure(ROUNDS, |i| {
        core::hint::black_box(i);
    });
    let null = measure(ROUNDS, |_| {
        core::hint::black_box(call::version());
    });
    report("null hypercall", null, empty, ROUNDS);
    if let Some(server) = SERVER {
        // Only the status is looked at: storing the reply's words would add
        // the bench's own work to the figure.
        let call = |i: u64| {
            let reply = call::call(server, &Message::new(&[i]));
            core::hint::black_box(reply.is_ok());
        };
        if CROSS_CORE {
            rounds_apart("call + reply round trip", 1, &call);
        } else {
            let round_trip = measure(ROUNDS, call);
            report("call + reply round trip", round_trip, empty, ROUNDS);
            // The same with no word each way and with four (`pong` answers
            // as many as it gets): seL4's figures are for these.
            for (what, message) in [
                ("call + reply round trip, empty", Message::new(&[])),
                ("call + reply round trip, 4 words", Message::new(&[7; 4])),
            ] {
                let cost = measure(ROUNDS, |_| {
                    let reply = call::call(server, core::hint::black_box(&message));
                    core::hint::black_box(reply.is_ok());
                });
                report(what, cost, empty, ROUNDS);
            }
        }
    }
    if let (Some(bell), Some(back)) = (BELL, BELL_BACK) {
        wake_ups(bell, back);
    }
    if let (Some(rtc), Some(window), Some(irq)) = (RTC0, RTC0_WINDOW, BENCH_IRQ) {
        device_interrupt(&start, rtc, window, irq);
    }
    if let (Some(faulter), Some(faults), Some(window)) = (FAULTER, FAULTS, STAMP_WINDOW) {
        fault_to_monitor(&start, faulter, faults, window);
    }
    svc_rt::println!("bench: done ({ROUNDS} rounds each)");
    loop {
        call::yield_now();
    }
}

/// A round slower than this (in counter ticks: 100,000 instructions, some
/// forty rounds' worth) stalled: see [`wake_ups`].
const STALL_TICKS: u64 = 100_000 / INSTRUCTIONS_PER_TICK;

/// Signal/wait ping-pong with `bell`: each round wakes `bell`, which wakes
/// this partition, two wake-ups. Each round is timed on its own (one
/// counter read per round, so the rounds' times add up exactly), and a
/// round that took over [`STALL_TICKS`] is left out and counted: across
/// cores, a wake-up now and then waits for the next timer tick (both cores
/// idle, QEMU's clock jumping to the tick: millions of instructions of
/// nothing, `docs/benchmarks.md`), which would otherwise swamp the figure
/// and move it with wherever the loop's rounds fall against the ticks.
fn wake_ups(bell: CapSlot, back: CapSlot) {
    rounds_apart("signal + wait wake-up", 2, &|_| {
        core::hint::black_box(call::signal(bell).is_ok());
        core::hint::black_box(call::wait(back).is_ok());
    });
}

/// What [`timed_rounds`] measured: the cost of the rounds kept, how many
/// stalled, and the instructions they took.
type Timed = (Cost, u64, u64);

/// Runs `operation` [`ROUNDS`] times, timing each round on its own (one
/// counter read per round, so that the rounds' times add up exactly), and
/// leaves out the rounds over [`STALL_TICKS`].
fn timed_rounds(operation: &dyn Fn(u64)) -> Timed {
    let locks = shared_locks();
    let (mut kept, mut stalls, mut stalled) = (0, 0, 0);
    let mut last = svc_rt::counter();
    for i in 0..ROUNDS {
        operation(i);
        let now = svc_rt::counter();
        let ticks = now - last;
        last = now;
        if ticks > STALL_TICKS {
            stalls += 1;
            stalled += ticks;
        } else {
            kept += ticks;
        }
    }
    let after = shared_locks();
    let cost = Cost {
        instructions: kept * INSTRUCTIONS_PER_TICK,
        locks: locks.zip(after).map(|(before, after)| after - before),
    };
    (cost, stalls, stalled * INSTRUCTIONS_PER_TICK)
}

/// Measures `operation` with [`timed_rounds`] against an empty loop timed
/// the same way, and reports it as `what`, `per_round` operations a round,
/// with the stalls.
fn rounds_apart(what: &str, per_round: u64, operation: &dyn Fn(u64)) {
    let (empty, _, _) = timed_rounds(&|i| {
        core::hint::black_box(i);
    });
    let (cost, stalls, stalled) = timed_rounds(operation);
    let kept = ROUNDS - stalls;
    // The empty loop's cost per round, for the rounds kept.
    let empty = Cost {
        instructions: empty.instructions * kept / ROUNDS,
        ..empty
    };
    report(what, cost, empty, per_round * kept.max(1));
    svc_rt::println!("bench: {what} rounds stalled {stalls} of {ROUNDS}, {stalled} instructions");
}

/// PL031 registers: data (the time), match, interrupt mask, raw status.
const DR: usize = 0x00;
const MR: usize = 0x04;
const IMSC: usize = 0x10;
const RIS: usize = 0x14;

/// Interrupts timed in a row, right after a tick: the kernel lets one
/// interrupt fire 20 times a tick (`IRQ_FIRES_PER_TICK`) and then holds it
/// until the next, and the first of the tick is the one that wakes us.
const IRQ_BATCH: u64 = 16;
/// Batches (ticks) measured.
const IRQ_BATCHES: u64 = 64;

/// The driver's loop on a level interrupt that stays raised: `IrqAck`
/// unmasks it, it is taken at once on the way back to the partition (the
/// kernel masks it and sets its bit on `irq`), and `Wait` returns the bit
/// without blocking. Timed [`IRQ_BATCH`] at a time right after a tick, since
/// the kernel's interrupt budget holds it for the rest of a tick after 20;
/// between batches the bench uses up the tick's budget and waits for the
/// next tick's release. A short spin of a different length before each
/// batch moves where the batch starts relative to the counter's 16-instruction
/// ticks, so that the counter's rounding averages out over the batches.
fn device_interrupt(start: &svc_rt::Start, ack: CapSlot, window: Window, irq: CapSlot) {
    let Ok(rtc) = Device::new(start, window.ipa as usize, window.size as usize) else {
        panic!("the RTC's window lies in RAM");
    };
    raise(&rtc);
    // The first delivery, which arrives whatever we do.
    let _ = call::wait(irq);
    let mut loops = Cost {
        locks: Some(0),
        ..Cost::default()
    };
    let mut empty = loops;
    for batch in 0..IRQ_BATCHES {
        // Use up this tick's budget: an acknowledgement over it leaves the
        // interrupt held, and nothing arrives.
        loop {
            let _ = call::irq_ack(ack);
            if call::poll(irq).map_or(true, |bits| bits == 0) {
                break;
            }
        }
        // Blocks until the next tick releases it and it fires.
        let _ = call::wait(irq);
        for _ in 0..batch % INSTRUCTIONS_PER_TICK {
            core::hint::black_box(batch);
        }
        loops.add(measure(IRQ_BATCH, |_| {
            let _ = call::irq_ack(ack);
            core::hint::black_box(call::wait(irq).is_ok());
        }));
        for _ in 0..batch % INSTRUCTIONS_PER_TICK {
            core::hint::black_box(batch);
        }
        empty.add(measure(IRQ_BATCH, |i| {
            core::hint::black_box(i);
        }));
    }
    if empty.locks.is_none() {
        loops.locks = None;
    }
    report("device interrupt", loops, empty, IRQ_BATCH * IRQ_BATCHES);
}

/// Raises the RTC's interrupt: unmasked, and the match register set to the
/// current time (QEMU's PL031 raises it at once when they are equal; the
/// time may move on between the read and the write, so until it is raised).
/// It is never cleared: the level stays up for the whole benchmark.
fn raise(rtc: &Device) {
    let _ = rtc.write32(IMSC, 1);
    for _ in 0..1000 {
        let now = rtc.read32(DR).unwrap_or(0);
        let _ = rtc.write32(MR, now);
        if rtc.read32(RIS).unwrap_or(0) & 1 != 0 {
            return;
        }
    }
    panic!("the RTC's interrupt could not be raised");
}

/// Rounds of the fault benchmark: each restarts the faulter, and restarts
/// in quick succession back off (up to about 10 s each, of idle time that
/// `sleep=off` skips), so few.
const FAULT_ROUNDS: u64 = 32;
/// In the stamp region: the round armed (0: none), then the faulter's
/// counter value.
const ARMED: usize = 0;
const STAMP: usize = 8;

/// A fault reaching its health monitor: each round arms the faulter,
/// restarts it and waits on the fault notification. The faulter, reloaded
/// at a tick and run, writes the counter into the stamp region and reads an
/// address it was not given; the kernel takes the stage-2 data abort,
/// reports it, stops the faulter and signals this partition's notification
/// in the same step, and switches here, where `Wait` returns. The figure is
/// from the faulter's counter read to the one here, less an empty round of
/// the same shape (a counter read, the store, a counter read), with the
/// faulter's spin of a different length each round (see `faulter`) so that
/// the counter's rounding averages out.
fn fault_to_monitor(start: &svc_rt::Start, faulter: CapSlot, faults: CapSlot, window: Window) {
    let Ok(region) = Region::new(start, window) else {
        panic!("the stamp region lies in RAM");
    };
    // The faulter faults once when the system starts, unarmed.
    let first = call::wait(faults);
    if first.map_or(true, |bits| bits == 0) {
        svc_rt::println!("bench: no fault signal from the faulter: {first:?}");
        return;
    }
    let (mut ticks, mut empty) = (0, 0);
    for round in 1..=FAULT_ROUNDS {
        region.store64(STAMP, 0, Ordering::Relaxed);
        region.store64(ARMED, round, Ordering::Release);
        if let Err(status) = call::partition_restart(faulter) {
            svc_rt::println!("bench: cannot restart the faulter: {status}");
            return;
        }
        let bits = call::wait(faults);
        let now = svc_rt::counter();
        let then = region.load64(STAMP, Ordering::Acquire).unwrap_or(0);
        if then == 0 || bits.map_or(true, |bits| bits == 0) {
            svc_rt::println!("bench: round {round}: woken ({bits:?}) without the faulter's stamp");
            return;
        }
        ticks += now - then;
        // The empty round: the same counter reads and store, no fault.
        for _ in 0..round % 16 {
            core::hint::black_box(round);
        }
        let before = svc_rt::counter();
        region.store64(STAMP, before, Ordering::Release);
        let after = svc_rt::counter();
        core::hint::black_box(region.load64(STAMP, Ordering::Acquire));
        empty += after - before;
    }
    let cost = Cost {
        instructions: ticks * INSTRUCTIONS_PER_TICK,
        locks: None,
    };
    let empty = Cost {
        instructions: empty * INSTRUCTIONS_PER_TICK,
        locks: None,
    };
    report("fault to health monitor", cost, empty, FAULT_ROUNDS);
}
