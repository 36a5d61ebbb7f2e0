// SPDX-License-Identifier: Apache-2.0 OR MIT
//! A service's panic: printed (through the console if the partition has one),
//! then reported to the kernel as a fault.

use core::fmt::Write;
use core::panic::PanicInfo;

use crate::print::{self, LineBuffer};
use crate::{FAULT_PANIC, call};

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    let mut buffer = LineBuffer::new();
    let _ = match info.location() {
        Some(at) => writeln!(
            buffer,
            "panicked at {}:{}: {}",
            at.file(),
            at.line(),
            info.message()
        ),
        None => writeln!(buffer, "panicked: {}", info.message()),
    };
    print::write_panicking(buffer.as_bytes());
    call::fault(FAULT_PANIC, &[])
}
