// SPDX-License-Identifier: Apache-2.0 OR MIT
//! echo: proves that keyboard input reaches the focused partition. It sleeps
//! on `echo-input` (which the console signals when bytes for it arrive),
//! takes them with the console's non-blocking read, and prints each line it
//! completes as `echo: <line>`. Enter is `\r` or `\n`; empty lines are
//! skipped; backspace (DEL or BS) erases; what does not fit in a line is
//! dropped.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use svc_rt::call;
use svc_rt::console::{self, READ_MAX};
use svc_rt::hypercall::CapSlot;

svc_rt::entry!(main);

/// The console's endpoint.
const LOG: CapSlot = svc_rt::cap!(LOG);
/// Signalled by the console when input for this partition arrived.
const INPUT: CapSlot = svc_rt::cap!(ECHO_INPUT);

/// The longest line kept.
const LINE: usize = 120;

struct Line {
    bytes: [u8; LINE],
    len: usize,
}

impl Line {
    fn key(&mut self, byte: u8) {
        match byte {
            b'\r' | b'\n' => {
                if self.len > 0 {
                    let text =
                        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("(not UTF-8)");
                    svc_rt::println!("echo: {text}");
                    self.len = 0;
                }
            }
            0x7f | 0x08 => self.len = self.len.saturating_sub(1),
            _ => {
                if let Some(slot) = self.bytes.get_mut(self.len) {
                    *slot = byte;
                    self.len += 1;
                }
            }
        }
    }
}

fn main(_start: svc_rt::Start) -> ! {
    svc_rt::println!("echo: ready; give me the keyboard and type a line");
    let mut line = Line {
        bytes: [0; LINE],
        len: 0,
    };
    loop {
        let _ = call::wait(INPUT);
        loop {
            let mut chunk = [0u8; READ_MAX];
            match console::read(LOG, &mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(count) => {
                    for &byte in &chunk[..count] {
                        line.key(byte);
                    }
                }
            }
        }
    }
}
