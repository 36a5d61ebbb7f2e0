// SPDX-License-Identifier: Apache-2.0 OR MIT
//! hammer: polls its own notification as fast as it can, for ever, and
//! says how many polls it has made every million. `Poll` is answered under
//! its lock domain's lock (unlike `Version`, which the kernel answers before
//! it takes any), so a pair in another domain on another core must carry on
//! unslowed and unharmed (`tests/qemu/hammer.toml`).
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use svc_rt::call;

svc_rt::entry!(main);

/// The notification it polls (its own).
const TARGET: svc_rt::hypercall::CapSlot = svc_rt::cap!(ANVIL);

fn main(_start: svc_rt::Start) -> ! {
    let mut polls: u64 = 0;
    loop {
        if let Err(status) = call::poll(TARGET) {
            panic!("poll failed: {status}");
        }
        polls += 1;
        if polls.is_multiple_of(1_000_000) {
            svc_rt::println!("hammer: {polls} polls");
        }
    }
}
