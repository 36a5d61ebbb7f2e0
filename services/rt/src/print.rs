// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Formatted output, through the kernel log (or, once a partition has a
//! console channel, the console service).

use core::fmt::{self, Write};

use crate::call;

/// A line being formatted: fixed capacity, what does not fit is cut.
pub struct LineBuffer {
    bytes: [u8; 200],
    len: usize,
}

impl LineBuffer {
    /// An empty line.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            bytes: [0; 200],
            len: 0,
        }
    }

    /// What was written.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl Default for LineBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl Write for LineBuffer {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if let Some(slot) = self.bytes.get_mut(self.len) {
                *slot = b;
                self.len += 1;
            }
        }
        Ok(())
    }
}

/// Formats `args` and a newline, and logs them as one line.
pub fn print_line(args: fmt::Arguments<'_>) {
    let mut line = LineBuffer::new();
    let _ = writeln!(line, "{args}");
    call::log(line.as_bytes());
}

/// Prints a formatted line: `svc_rt::println!("{} calls", n)`.
#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {
        $crate::print::print_line(format_args!($($arg)*))
    };
}
