// SPDX-License-Identifier: Apache-2.0 OR MIT
//! intruder: has no channel to the console and no device, yet writes to the
//! UART's data register. Its stage-2 tables do not map the UART, so the write
//! faults; the kernel stops it and reports the fault, and the others carry on.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use svc_rt::mmio::Device;

svc_rt::entry!(main);

/// The board's console PL011 (its platform.toml's `[console]`), tried at
/// its physical address.
const UART: usize = svc_rt::board_console!().ipa as usize;

fn main(start: svc_rt::Start) -> ! {
    svc_rt::println!("writing to the UART at {UART:#x} without a capability");
    if let Ok(uart) = Device::new(&start, UART, 0x1000) {
        uart.write32(0, u32::from(b'!'));
    }
    svc_rt::println!("the write went through: isolation is broken");
    svc_rt::call::fault(0xba, &[])
}
