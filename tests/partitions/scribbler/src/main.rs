// SPDX-License-Identifier: Apache-2.0 OR MIT
//! scribbler: writes to its own code (setting `try = "code"`) or branches
//! into its own writable data (`try = "data"`). Stage 2 maps a service's
//! code read-only and its data never executable, from its program's ELF
//! segments, so either faults; the kernel stops it and reports the fault,
//! and the others carry on.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

svc_rt::entry!(main);

const TRY: &str = svc_rt::setting!(TRY);

fn main(_start: svc_rt::Start) -> ! {
    if TRY.as_bytes() == b"code" {
        svc_rt::println!("writing to my own code");
        svc_rt::probe::write_own_code();
        svc_rt::println!("the write went through: code is writable");
    } else {
        svc_rt::println!("executing my own data");
        svc_rt::probe::execute_own_data();
        svc_rt::println!("the data ran: data is executable");
    }
    svc_rt::call::fault(0xba, &[])
}
