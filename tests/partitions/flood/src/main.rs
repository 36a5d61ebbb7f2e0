// SPDX-License-Identifier: Apache-2.0 OR MIT
//! flood: holds no capability at all and prints as fast as it can, for ever.
//! With no console channel its lines go through the kernel's `Log`
//! hypercall, which needs no capability: the attack the kernel's per-partition
//! log quota bounds. The tests check that the others' lines still come out,
//! whole, and that the kernel reports what it dropped.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

svc_rt::entry!(main);

fn main(_start: svc_rt::Start) -> ! {
    let mut n: u64 = 0;
    loop {
        n = n.wrapping_add(1);
        svc_rt::println!("flooding the log, line {n}: the quick brown fox jumps over the lazy dog");
    }
}
