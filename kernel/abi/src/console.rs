// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The console protocol between the kernel and the host runner.
//!
//! The kernel writes human-readable text to its console. A few lines have a
//! fixed shape so that `cargo xtask run` and `cargo xtask test` can tell how
//! a boot went without guessing: each starts with one of the markers below.
//! The markers are plain ASCII so that they survive any serial line.

/// Starts the first line of the boot report: `Bulkhead <version>`.
pub const BANNER: &str = "Bulkhead ";

/// Starts every line of the boot report after the banner.
pub const REPORT_PREFIX: &str = "boot: ";

/// The line the kernel prints once every core is up and the system is running.
/// Until this line has been seen, a boot is not healthy.
pub const READY: &str = "bulkhead: system ready";

/// Starts the line that reports a kernel panic. Whatever follows on the line
/// is the panic message and its source location.
pub const PANIC: &str = "!!! BULKHEAD PANIC: ";

/// Starts the lines that describe an exception the kernel did not expect,
/// printed just before it panics.
pub const EXCEPTION: &str = "!!! exception: ";

/// Starts the lines that report a partition's fault: which partition, what
/// it did, and what the kernel did about it (its fault policy). A partition's
/// fault is not a failure of the system: the others carry on.
pub const PARTITION_FAULT: &str = "bulkhead: fault: ";

/// Starts the line printed when the kernel refuses to run (for example, it was
/// not entered at EL2). The machine is then powered off.
pub const FATAL: &str = "!!! BULKHEAD CANNOT BOOT: ";

/// A partition's byte as the console shows it: a carriage return dropped,
/// another control character (but tab) shown as `.`, anything else as it is.
///
/// Both the kernel (for a partition that logs through it) and the console
/// service (for its clients) show a partition's text this way, after the
/// partition's `[name] ` prefix. So a partition's text can neither end its
/// line early nor move a terminal's cursor back over its prefix (`\r`,
/// backspace, escape sequences): every line a partition prints starts with
/// its name, and a line without one is the kernel's. (A newline, which ends
/// the line, is the caller's business: it never reaches this.)
#[must_use]
pub const fn shown(byte: u8) -> Option<u8> {
    match byte {
        b'\r' => None,
        b'\t' => Some(byte),
        0..=0x1f | 0x7f => Some(b'.'),
        _ => Some(byte),
    }
}

/// Whether a console line reports a failure: a panic or a refusal to boot.
#[must_use]
pub fn is_failure(line: &str) -> bool {
    line.contains(PANIC) || line.contains(FATAL)
}

#[cfg(test)]
mod tests {
    use super::{PANIC, READY, is_failure, shown};

    #[test]
    fn a_partitions_control_characters_are_shown_harmlessly() {
        assert_eq!(shown(b'\r'), None);
        for byte in [0x08, 0x1b, 0x00, 0x0b, 0x0c, 0x7f] {
            assert_eq!(shown(byte), Some(b'.'), "{byte:#x}");
        }
        for byte in [b'\t', b' ', b'a', b'[', b'~', 0x80, 0xc3, 0xff] {
            assert_eq!(shown(byte), Some(byte), "{byte:#x}");
        }
    }

    #[test]
    fn failure_lines_are_recognised_anywhere_on_the_line() {
        assert!(is_failure("\u{1b}[0m!!! BULKHEAD PANIC: oops at a.rs:1:1"));
        assert!(is_failure("!!! BULKHEAD CANNOT BOOT: entered at EL1"));
        assert!(!is_failure(READY));
        assert!(!is_failure("boot: cores 4"));
    }

    #[test]
    fn markers_do_not_contain_each_other() {
        assert!(!READY.contains(PANIC) && !PANIC.contains(READY));
    }
}
