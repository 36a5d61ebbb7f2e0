// SPDX-License-Identifier: Apache-2.0 OR MIT
//! console: the UART driver's only client, and every other partition's
//! terminal.
//!
//! **Output.** Partitions print by calling the `log` endpoint with the
//! protocol of [`svc_rt::console`] (`svc_rt::println!` does this when the
//! partition has a `log` capability). The console keeps one line buffer per
//! client, found by the badge of the call. A client without the focus has
//! its lines printed whole: when its newline arrives the console queues
//! `[name] text\r\n` to the UART driver in one piece. The focused client's
//! bytes show as they arrive (a shell's prompt, the keys it echoes): its line
//! is *open* on the terminal, `[name] ` and the text so far, and its newline
//! ends it. Any other line printed meanwhile first ends the open line with
//! `\r\n`, and the open line, prefix and text so far, is printed again right
//! after it; so two partitions' bytes never share a line, and nothing is
//! lost. When the focus moves, the open line is ended and its text stays in
//! the buffer: it is printed whole at its newline, or open again if the
//! focus comes back; the new focus's unfinished text, if any, is printed as
//! its open line. A line longer than the buffer ([`lines::LINE_TEXT`] bytes)
//! goes out in pieces, each with its prefix. Names come from the manifest,
//! through `svc_rt::clients!(LOG)`.
//!
//! **Input.** Bytes typed on the UART go to the partition with the focus.
//! Ctrl-A then a digit N gives the focus to client N (numbered from 1 in
//! badge order, `0` for the tenth; the banner at start lists them) and the
//! console prints `[console] focus: N name`; Ctrl-A Ctrl-A types a Ctrl-A;
//! Ctrl-A then anything else prints a reminder. (In QEMU's `-nographic`
//! terminal, Ctrl-A is QEMU's own escape key: type it twice, so Ctrl-A
//! Ctrl-A N.) At start the focus is on the first client the console can wake
//! (see below), or else the first client. Each client has an inbox of
//! [`input::INBOX`] bytes; what does not fit is dropped. A client takes its
//! bytes with the non-blocking `OP_READ` request; to sleep until some arrive,
//! it waits on a notification whose waiter it is and whose signaller is the
//! console (`echo-input` in `systems/demo.toml`): the console signals it
//! whenever it adds bytes to that client's inbox. Keystrokes are not echoed:
//! the focused partition decides what to print.
//!
//! **The kernel's messages.** When the manifest makes the console the
//! kernel-log reader (`[system] kernel-log = { partition = "console",
//! notification = "uart-input" }`), the kernel stops writing to the UART once
//! it has booted, and the console prints its lines (fault reports, and the
//! lines of partitions that print through the kernel, such as the driver) as
//! they come, whole and unprefixed: they already say whose they are. If the
//! kernel had to drop some, the console says how many bytes.
//!
//! **Structure.** A partition cannot wait on an endpoint and a notification
//! at once, so the console runs two vCPUs (`vcpus = 2` in the manifest):
//! vCPU 0 serves the `log` endpoint ([`server`]); vCPU 1 waits on the
//! driver's `uart-input` notification, routes keystrokes and drains the
//! kernel's log ([`input`]).
//! They share the inboxes (single-producer, single-consumer rings of atomics
//! in RAM) and the terminal ([`output`]: the focus, the open line and every
//! client's unfinished line, changed only under a lock that is held while
//! the bytes that go with a change are copied into the driver's transmit
//! ring, and only if they all fit). The driver's interface is
//! `svc_uart_pl011` (shared rings plus notifications).
//!
//! **Robustness.** Nothing a client sends can make the console panic: a
//! malformed request gets an error status, an unknown badge too.
//! Control characters in output are shown as `.` and carriage returns are
//! dropped, so no partition can overwrite another's line on the terminal.
//! The one exception is backspace: it erases the last character of the
//! client's own unfinished line if that character is printable ASCII (on
//! the open line the terminal gets the backspace, so a shell's `\b \b`
//! works), and is shown as `.` otherwise; so a client can erase its own
//! text, never its `[name] ` prefix or anything before it ([`lines`]).
#![no_std]
#![no_main]
#![deny(unsafe_code)]

mod input;
mod lines;
mod output;
mod server;
mod table;

use svc_rt::shared::Region;
use svc_uart_pl011::Buffers;

svc_rt::entry!(main);

fn main(start: svc_rt::Start) -> ! {
    let window = svc_rt::shared!(UART_BUFFERS);
    let buffers = Region::new(&start, window)
        .ok()
        .and_then(Buffers::new)
        .unwrap_or_else(|| {
            panic!(
                "the uart-buffers region ({} bytes at {:#x}) is unusable: it needs {} bytes outside RAM",
                window.size,
                window.ipa,
                svc_uart_pl011::REGION_SIZE
            )
        });
    let clients = table::Table::from_manifest();
    match start.vcpu {
        0 => server::run(&buffers, &clients),
        1 => input::run(&buffers, &clients),
        // A third vCPU has nothing to do; it gives its time away.
        _ => loop {
            svc_rt::call::yield_now();
        },
    }
}
