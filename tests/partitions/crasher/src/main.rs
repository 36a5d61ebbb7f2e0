// SPDX-License-Identifier: Apache-2.0 OR MIT
//! crasher: says it started and panics. Under
//! `fault = "restart"` the kernel reloads it and it starts again, from fresh
//! memory, while the other partitions carry on.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

svc_rt::entry!(main);

/// Counts starts within one run of the program; the kernel's reload resets
/// it to zero, which is what the test checks.
static STARTS: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

fn main(_start: svc_rt::Start) -> ! {
    let starts = STARTS.fetch_add(1, core::sync::atomic::Ordering::Relaxed) + 1;
    svc_rt::println!("crasher starting (start {starts} since load)");
    // Straight away: the restarts must come as fast as the kernel's back-off
    // lets them, however slow the machine, for the test to see it grow.
    panic!("crashing on purpose");
}
