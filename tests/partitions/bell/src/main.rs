// SPDX-License-Identifier: Apache-2.0 OR MIT
//! bell: the bench's notification partner. It waits on `bell` and, each time
//! it is woken, signals `bell-back`, for ever: with `bench` signalling `bell`
//! and waiting on `bell-back` the two play signal/wait ping-pong, two
//! wake-ups a round (`tests/qemu/bench.toml` on one core,
//! `tests/qemu/bench-cross.toml` on two).
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use svc_rt::call;
use svc_rt::hypercall::CapSlot;

svc_rt::entry!(main);

/// What wakes it.
const BELL: CapSlot = svc_rt::cap!(BELL);
/// What it rings back.
const BELL_BACK: CapSlot = svc_rt::cap!(BELL_BACK);

fn main(_start: svc_rt::Start) -> ! {
    loop {
        if let Err(status) = call::wait(BELL) {
            panic!("wait failed: {status}");
        }
        if let Err(status) = call::signal(BELL_BACK) {
            panic!("signal failed: {status}");
        }
    }
}
