// SPDX-License-Identifier: Apache-2.0 OR MIT
//! accomplice: jammer's (`tests/partitions/jammer`). Once jammer has jammed the
//! console UART and signals `go`, writes to the UART, which it was not
//! given: the write faults, and the kernel has a fault to report while the
//! UART is jammed.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use svc_rt::call;
use svc_rt::hypercall::CapSlot;
use svc_rt::mmio::Device;

svc_rt::entry!(main);

/// Signalled by jammer once the UART is jammed.
const GO: CapSlot = svc_rt::cap!(GO);
/// The board's console PL011 (its platform.toml's `[console]`), tried at
/// its physical address.
const UART: usize = svc_rt::board_console!().ipa as usize;

fn main(start: svc_rt::Start) -> ! {
    let _ = call::wait(GO);
    svc_rt::println!("writing to the UART at {UART:#x}, which I was not given");
    if let Ok(uart) = Device::new(&start, UART, 0x1000) {
        uart.write32(0, u32::from(b'!'));
    }
    svc_rt::println!("the write went through: isolation is broken");
    call::fault(0xba, &[])
}
