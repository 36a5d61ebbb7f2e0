// SPDX-License-Identifier: Apache-2.0 OR MIT
//! bench: measures the kernel's fast paths from a partition.
//!
//! Under QEMU with `-icount shift=0` every instruction advances virtual time
//! by 1 ns and the virtual counter (CNTVCT_EL0, which partitions may read)
//! ticks every 16 ns, so counter ticks times 16 is instructions. Each
//! measurement runs [`ROUNDS`] times and subtracts an empty loop of the same
//! shape, so what is left is the cost of the operation: the `svc`, the
//! kernel's work and the `eret`, plus the wrapper's few register moves.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use svc_rt::call::{self, Message};
use svc_rt::hypercall::CapSlot;

svc_rt::entry!(main);

/// The endpoint `pong` serves (the channel is called `ping`, as in the demo).
const SERVER: CapSlot = svc_rt::cap!(PING);

/// Iterations per measurement: enough that the counter's 16-instruction
/// granularity and the kernel's timer ticks vanish in the average. The
/// setting `rounds` lowers it where each round is expensive (a system that
/// scrubs caches on every switch, `tests/qemu/bench-scrub.toml`).
const ROUNDS: u64 = match svc_rt::optional_setting!(ROUNDS) {
    Some(text) => svc_rt::parse_number(text),
    None => 1 << 14,
};

/// Instructions per counter tick at `-icount shift=0` with the 62.5 MHz counter.
const INSTRUCTIONS_PER_TICK: u64 = 16;

fn measure(mut operation: impl FnMut(u64)) -> u64 {
    let start = svc_rt::counter();
    for i in 0..ROUNDS {
        operation(i);
    }
    let ticks = svc_rt::counter() - start;
    ticks * INSTRUCTIONS_PER_TICK
}

fn main(_start: svc_rt::Start) -> ! {
    let empty = measure(|i| {
        core::hint::black_box(i);
    });
    let null = measure(|_| {
        core::hint::black_box(call::version());
    });
    let round_trip = measure(|i| {
        // Only the status is looked at: storing the reply's words would add
        // the bench's own work to the figure.
        let reply = call::call(SERVER, &Message::new(&[i]));
        core::hint::black_box(reply.is_ok());
    });
    let per = |total: u64| total.saturating_sub(empty) / ROUNDS;
    svc_rt::println!("bench: null hypercall {} instructions", per(null));
    svc_rt::println!(
        "bench: call + reply round trip {} instructions",
        per(round_trip)
    );
    svc_rt::println!("bench: done ({ROUNDS} rounds each)");
    loop {
        call::yield_now();
    }
}
