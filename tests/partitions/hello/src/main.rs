// SPDX-License-Identifier: Apache-2.0 OR MIT
//! hello: the smallest service. It checks the kernel's ABI version, says
//! hello through the kernel log, shows the runtime's optional heap (a
//! vector built on it, and a request larger than the heap refused without
//! harm), and then yields forever.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

extern crate alloc;

use alloc::vec::Vec;
use svc_rt::call;

svc_rt::entry!(main);
svc_rt::heap!(HEAP_BYTES);

/// The heap: 8 KiB of hello's RAM.
const HEAP_BYTES: usize = 8 * 1024;

fn main(start: svc_rt::Start) -> ! {
    if !call::abi_compatible() {
        call::fault(0x10, &[u64::from(call::version())]);
    }
    svc_rt::println!(
        "hello from partition {} ({} KiB of RAM at {:#x})",
        start.partition,
        start.ram_size / 1024,
        start.ram_base
    );
    let numbers: Vec<u64> = (1..=100).collect();
    let sum: u64 = numbers.iter().sum();
    let mut too_big: Vec<u8> = Vec::new();
    let refused = too_big.try_reserve_exact(2 * HEAP_BYTES).is_err();
    svc_rt::println!(
        "hello: {} numbers on the heap sum to {sum}; {} bytes {}",
        numbers.len(),
        2 * HEAP_BYTES,
        if refused {
            "were refused, as they should be"
        } else {
            "were granted by a heap too small to hold them"
        }
    );
    drop(numbers);
    loop {
        call::yield_now();
    }
}
