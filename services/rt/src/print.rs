// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Formatted output: through the console service when the partition has a
//! console, through the kernel's log otherwise.
//!
//! A partition "has a console" when its manifest gives it a capability named
//! `log` (a client end of the console's endpoint): `cargo xtask` then passes
//! `BULKHEAD_CAP_LOG` to the build, and [`write`] speaks the console protocol
//! ([`crate::console`]) over it. Without one (or if the console refuses or is
//! gone), bytes go to the kernel with the `Log` hypercall, which prefixes and
//! prints whole lines itself. Either way a line is sent under a lock shared by
//! the partition's vCPUs, so two vCPUs' lines never mix.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};

use hv_abi::hypercall::CapSlot;

use crate::{call, console};

/// The console endpoint this partition prints through, if its manifest gives
/// it one.
pub const LOG: Option<CapSlot> = crate::optional_cap!(LOG);

/// Held while a vCPU sends a line, so the partition's vCPUs take turns.
static SENDING: AtomicBool = AtomicBool::new(false);

/// Attempts at the lock before a panicking vCPU prints regardless (a vCPU
/// that panicked while holding it would otherwise silence the partition).
const PANIC_ATTEMPTS: u32 = 1000;

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

/// Sends `bytes` (normally one whole line, newline included) to the console,
/// or to the kernel's log if there is no console or it refuses.
pub fn write(bytes: &[u8]) {
    send(bytes, None);
}

/// As [`write`], for the panic handler: takes the lock only if it can within
/// a bounded number of attempts.
pub(crate) fn write_panicking(bytes: &[u8]) {
    send(bytes, Some(PANIC_ATTEMPTS));
}

fn send(bytes: &[u8], attempts: Option<u32>) {
    let mut tries = 0u32;
    let locked = loop {
        if SENDING
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            break true;
        }
        tries = tries.saturating_add(1);
        if attempts.is_some_and(|limit| tries >= limit) {
            break false;
        }
        call::yield_now();
    };
    let through_console = LOG.is_some_and(|log| console::write(log, bytes).is_ok());
    if !through_console {
        call::log(bytes);
    }
    if locked {
        SENDING.store(false, Ordering::Release);
    }
}

/// Formats `args` and a newline, and prints them as one line.
pub fn print_line(args: fmt::Arguments<'_>) {
    let mut line = LineBuffer::new();
    let _ = writeln!(line, "{args}");
    if !line.as_bytes().ends_with(b"\n") {
        // Cut: keep the line a line.
        line.len -= 1;
        let _ = line.write_str("\n");
    }
    write(line.as_bytes());
}

/// Prints a formatted line: `svc_rt::println!("{} calls", n)`.
#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {
        $crate::print::print_line(format_args!($($arg)*))
    };
}
