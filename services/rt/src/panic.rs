// SPDX-License-Identifier: Apache-2.0 OR MIT
//! A service's panic: logged, then reported to the kernel as a fault.

use core::fmt::Write;
use core::panic::PanicInfo;

use crate::{FAULT_PANIC, call};

/// A fixed buffer the panic message is formatted into; what does not fit is cut.
struct Buffer {
    bytes: [u8; 200],
    len: usize,
}

impl Write for Buffer {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for &b in s.as_bytes() {
            if let Some(slot) = self.bytes.get_mut(self.len) {
                *slot = b;
                self.len += 1;
            }
        }
        Ok(())
    }
}

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    let mut buffer = Buffer {
        bytes: [0; 200],
        len: 0,
    };
    let _ = match info.location() {
        Some(at) => write!(
            buffer,
            "panicked at {}:{}: {}\n",
            at.file(),
            at.line(),
            info.message()
        ),
        None => write!(buffer, "panicked: {}\n", info.message()),
    };
    call::log(&buffer.bytes[..buffer.len]);
    call::fault(FAULT_PANIC, &[])
}
