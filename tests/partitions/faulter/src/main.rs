// SPDX-License-Identifier: Apache-2.0 OR MIT
//! faulter: the benchmark's faulting partition. It reads the round `bench`
//! armed from the shared region `stamp` (word 0), and if there is one,
//! spins a little (the round's number modulo 16 times, so that where its
//! stamp falls against the counter's 16-instruction ticks varies from round
//! to round), writes the virtual counter into word 1 and at once reads an
//! address it was not given: a stage-2 data abort. The kernel stops it
//! (fault policy `stop`) and signals `bench`, its controller, which times
//! the path from that counter value to its own first instruction after its
//! `Wait` returns, and restarts it for the next round (`docs/benchmarks.md`).
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use core::sync::atomic::Ordering;

use svc_rt::mmio::Device;
use svc_rt::shared::Region;

svc_rt::entry!(main);

/// The round `bench` armed (0: none).
const ARMED: usize = 0;
/// Where the counter's value goes, right before the fault.
const STAMP: usize = 8;
/// An address no partition of the bench's system is given: the GIC
/// distributor's, on QEMU's `virt`, which the kernel keeps.
const UNMAPPED: usize = 0x0800_0000;

fn main(start: svc_rt::Start) -> ! {
    let Ok(region) = Region::new(&start, svc_rt::shared!(STAMP)) else {
        panic!("the stamp region lies in RAM");
    };
    let Ok(unmapped) = Device::new(&start, UNMAPPED, 0x1000) else {
        panic!("the unmapped address lies in RAM");
    };
    let round = region.load64(ARMED, Ordering::Acquire).unwrap_or(0);
    for _ in 0..round % 16 {
        core::hint::black_box(round);
    }
    if round != 0 {
        let now = svc_rt::counter();
        region.store64(STAMP, now, Ordering::Release);
    }
    let _ = core::hint::black_box(unmapped.read32(0));
    panic!("read an address it was not given: isolation is broken")
}
