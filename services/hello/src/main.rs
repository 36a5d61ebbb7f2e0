// SPDX-License-Identifier: Apache-2.0 OR MIT
//! hello: the smallest service. It checks the kernel's ABI version, says
//! hello through the kernel log and then yields forever.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use core::fmt::Write;

use svc_rt::call;

svc_rt::entry!(main);

/// Formats into a small stack buffer and logs it.
struct Line {
    bytes: [u8; 120],
    len: usize,
}

impl Write for Line {
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

fn main(start: svc_rt::Start) -> ! {
    if !call::abi_compatible() {
        call::fault(0x10, &[u64::from(call::version())]);
    }
    let mut line = Line {
        bytes: [0; 120],
        len: 0,
    };
    let _ = writeln!(
        line,
        "hello from partition {} ({} KiB of RAM at {:#x})",
        start.partition,
        start.ram_size / 1024,
        start.ram_base
    );
    call::log(&line.bytes[..line.len]);
    loop {
        call::yield_now();
    }
}
