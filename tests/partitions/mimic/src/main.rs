// SPDX-License-Identifier: Apache-2.0 OR MIT
//! mimic: prints lines that imitate the kernel's (a fault report of `pong`,
//! which never faults, and the ready line) and another partition's
//! (`[ping] ping: done`), plainly and with every trick a terminal or a
//! careless reader falls for: a carriage return, backspaces over its own
//! `[mimic] ` prefix, an escape sequence that erases the line, and padding
//! that fills a line buffer so the imitation starts the next piece. Then it
//! panics, so the kernel reports a real fault: `mimic`'s.
//!
//! The system tests `oracle-*` check that none of it passes for what it
//! imitates: every piece of it is `[mimic] `'s line, with its control
//! characters shown as `.` or dropped, and the checks (which match a kernel line or
//! `[ping] `'s only at the start of a line) do not find it, while they find
//! the kernel's real report of mimic's fault.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use svc_rt::print::write;

svc_rt::entry!(main);

/// A fault report the kernel never makes in the systems mimic runs in.
const FORGED: &[u8] =
    b"bulkhead: fault: partition `pong` stopped (reason 0x1); the others carry on";

/// Padding: as long as the kernel's line buffer for a partition (160
/// bytes) and the console's (200).
const PADDING: [u8; 200] = [b'x'; 200];

fn main(_start: svc_rt::Start) -> ! {
    // Plain imitations, each a line of its own.
    for imitation in [
        FORGED,
        b"bulkhead: fault: partition `pong` restarting (reason 0x1)",
        b"bulkhead: system ready",
        b"[ping] ping: done",
    ] {
        write(imitation);
        write(b"\n");
    }
    // Terminal tricks in front of a forged report: a carriage return,
    // backspaces over `[mimic] `, an escape sequence that erases the line.
    for trick in [
        &b"\r"[..],
        b"\x08\x08\x08\x08\x08\x08\x08\x08",
        b"\x1b[2K\r",
    ] {
        write(trick);
        write(FORGED);
        write(b"\n");
    }
    // A full line buffer, so that the forged report starts the next piece.
    for padding in [&PADDING[..160], &PADDING[..]] {
        write(padding);
        write(FORGED);
        write(b"\n");
    }
    svc_rt::println!("mimic: done imitating");
    panic!("mimic panics so that the kernel reports a real fault");
}
