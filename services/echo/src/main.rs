// SPDX-License-Identifier: Apache-2.0 OR MIT
//! echo: proves that keyboard input reaches the focused partition, and shows
//! the console's open line. It prints a prompt, `echo> `, with no newline,
//! and echoes each key as a terminal would: printable ASCII is added to the
//! line and printed back, backspace (DEL or BS) erases the last character
//! with `\b \b`, Enter (`\r`, or `\n` not after `\r`) ends the line; other
//! keys, and what does not fit in a line, are dropped. After Enter it prints
//! `echo: <line>` if the line is not empty, and the prompt again.
//!
//! It sleeps on `echo-input` (which the console signals when bytes for it
//! arrive) and takes them with the console's non-blocking read. What it
//! echoes for one read goes out in one write; the answer and the next
//! prompt go out together too, so the console shows them in one piece.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use core::fmt::Write;

use svc_rt::call;
use svc_rt::console::{self, READ_MAX};
use svc_rt::hypercall::CapSlot;
use svc_rt::print::{self, LineBuffer};

svc_rt::entry!(main);

/// The console's endpoint.
const LOG: CapSlot = svc_rt::cap!(LOG);
/// Signalled by the console when input for this partition arrived.
const INPUT: CapSlot = svc_rt::cap!(ECHO_INPUT);

/// The prompt, printed without a newline.
const PROMPT: &str = "echo> ";

/// The longest line kept.
const LINE: usize = 120;

struct Line {
    bytes: [u8; LINE],
    len: usize,
    /// The last key was `\r` (so a `\n` right after it is the same Enter).
    after_return: bool,
}

impl Line {
    /// Takes one key; what it prints goes into `out`.
    fn key(&mut self, byte: u8, out: &mut LineBuffer) {
        let after_return = core::mem::replace(&mut self.after_return, byte == b'\r');
        match byte {
            b'\n' if after_return => {}
            b'\r' | b'\n' => self.enter(out),
            0x7f | 0x08 if self.len > 0 => {
                self.len -= 1;
                let _ = out.write_str("\u{8} \u{8}");
            }
            b' '..=b'~' => {
                if let Some(slot) = self.bytes.get_mut(self.len) {
                    *slot = byte;
                    self.len += 1;
                    let _ = out.write_char(char::from(byte));
                }
            }
            _ => {}
        }
    }

    /// Ends the line: the answer and the next prompt, in one write.
    fn enter(&mut self, out: &mut LineBuffer) {
        flush(out);
        // Only printable ASCII gets in, so this is always UTF-8.
        let text = core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("");
        if text.is_empty() {
            let _ = write!(out, "\n{PROMPT}");
        } else {
            let _ = write!(out, "\necho: {text}\n{PROMPT}");
        }
        flush(out);
        self.len = 0;
    }
}

/// Prints what `out` holds and empties it.
fn flush(out: &mut LineBuffer) {
    if !out.as_bytes().is_empty() {
        print::write(out.as_bytes());
        *out = LineBuffer::new();
    }
}

fn main(_start: svc_rt::Start) -> ! {
    svc_rt::println!("echo: ready; give me the keyboard and type a line");
    print::write(PROMPT.as_bytes());
    let mut line = Line {
        bytes: [0; LINE],
        len: 0,
        after_return: false,
    };
    let mut out = LineBuffer::new();
    loop {
        let _ = call::wait(INPUT);
        loop {
            let mut chunk = [0u8; READ_MAX];
            match console::read(LOG, &mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(count) => {
                    for &byte in &chunk[..count] {
                        line.key(byte, &mut out);
                    }
                    flush(&mut out);
                }
            }
        }
    }
}
