// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The guest's console output, and the monitor's own messages, through the
//! console service (the `log` endpoint) when the manifest gives the monitor
//! one, else through the kernel's log.

use core::fmt::Write as _;

use crate::config;

/// Writes the guest's bytes.
pub(crate) fn write(bytes: &[u8]) {
    match config::LOG {
        Some(log) => {
            let _ = svc_rt::console::write(log, bytes);
        }
        None => {
            for chunk in bytes.chunks(svc_rt::hypercall::LOG_BYTES) {
                svc_rt::call::log(chunk);
            }
        }
    }
}

/// A line of the monitor's own.
pub(crate) fn say(args: core::fmt::Arguments<'_>) {
    let mut line = Line::default();
    let _ = line.write_fmt(args);
    let _ = line.write_str("\n");
    write(line.as_bytes());
}

/// A line being formatted, cut at its capacity.
#[derive(Default)]
struct Line {
    bytes: alloc::vec::Vec<u8>,
}

impl Line {
    fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl core::fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.bytes.extend_from_slice(s.as_bytes());
        Ok(())
    }
}
