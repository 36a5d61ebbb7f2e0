// SPDX-License-Identifier: Apache-2.0 OR MIT
//! hello: the smallest service. It checks the kernel's ABI version, says
//! hello through the kernel log and then yields forever.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use svc_rt::call;

svc_rt::entry!(main);

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
    loop {
        call::yield_now();
    }
}
