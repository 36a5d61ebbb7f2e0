// SPDX-License-Identifier: Apache-2.0 OR MIT
//! spin: says so, then spins forever without a hypercall. Only the kernel's
//! timer can take its core back; the tests check that the others carry on.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

svc_rt::entry!(main);

fn main(_start: svc_rt::Start) -> ! {
    svc_rt::println!("spinning forever");
    let mut n: u64 = 0;
    loop {
        n = core::hint::black_box(n.wrapping_add(1));
    }
}
