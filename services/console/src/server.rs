// SPDX-License-Identifier: Apache-2.0 OR MIT
//! vCPU 0: serves the `log` endpoint. Writes are gathered per client into
//! lines; reads take bytes from the client's inbox (filled by vCPU 1).

use svc_rt::call::{self, Message, Received};
use svc_rt::console::{
    OP_READ, OP_WRITE, READ_MAX, STATUS_BAD_LENGTH, STATUS_OK, STATUS_UNKNOWN_CLIENT,
    STATUS_UNKNOWN_OP, WRITE_MAX, pack, unpack,
};
use svc_rt::hypercall::{CapSlot, MESSAGE_WORDS};
use svc_uart_pl011::Buffers;

use crate::input::{INBOXES, STARTED};
use crate::output::{self, Text, WhenFull};
use crate::table::{MAX_CLIENTS, Table};

/// The endpoint every client calls.
const LOG: CapSlot = svc_rt::cap!(LOG);

/// Bytes of text a client's line holds before it is printed in pieces.
pub(crate) const LINE_TEXT: usize = 200;

/// A client's unfinished line.
#[derive(Clone, Copy)]
struct Pending {
    bytes: [u8; LINE_TEXT],
    len: usize,
}

impl Pending {
    const EMPTY: Self = Self {
        bytes: [0; LINE_TEXT],
        len: 0,
    };
}

struct Server<'a> {
    buffers: &'a Buffers,
    clients: &'a Table,
    pending: [Pending; MAX_CLIENTS],
}

impl Server<'_> {
    fn print(&self, name: &str, text: &[u8]) {
        output::line(self.buffers, name, text, WhenFull::Sleep);
    }

    /// The banner: who answers to which number, and who has the focus.
    fn banner(&self) {
        let mut text = Text::new();
        text.push(b"Ctrl-A then a number gives a partition the keyboard:");
        for index in 0..self.clients.len() {
            if let (Some(client), Some(key)) = (self.clients.get(index), Table::key(index)) {
                text.push(b" ");
                text.push(&[key]);
                text.push(b" ");
                text.push(client.name.as_bytes());
            }
        }
        self.print("console", text.as_bytes());
        let focus = self.clients.initial_focus();
        if let (Some(client), Some(key)) = (self.clients.get(focus), Table::key(focus)) {
            let mut text = Text::new();
            text.push(b"focus: ");
            text.push(&[key]);
            text.push(b" ");
            text.push(client.name.as_bytes());
            self.print("console", text.as_bytes());
        }
    }

    /// Adds a client's bytes to its line, printing each line it completes
    /// (at a newline, or when the buffer is full).
    fn write(&mut self, index: usize, bytes: &[u8]) {
        let buffers = self.buffers;
        let (Some(client), Some(pending)) = (self.clients.get(index), self.pending.get_mut(index))
        else {
            return;
        };
        for &byte in bytes {
            if byte == b'\n' || pending.len == LINE_TEXT {
                output::line(
                    buffers,
                    client.name,
                    &pending.bytes[..pending.len],
                    WhenFull::Sleep,
                );
                pending.len = 0;
            }
            if byte != b'\n' {
                pending.bytes[pending.len] = byte;
                pending.len += 1;
            }
        }
    }

    /// The reply to one request.
    fn handle(&mut self, request: &Received) -> Message {
        let refuse = |status| Message::new(&[status]);
        let Some(index) = self.clients.by_badge(request.badge) else {
            return refuse(STATUS_UNKNOWN_CLIENT);
        };
        let words = request.message.payload();
        let Some(&word0) = words.first() else {
            return refuse(STATUS_UNKNOWN_OP);
        };
        if word0 & !0xff00 == OP_WRITE {
            let count = ((word0 >> 8) & 0xff) as usize;
            if count > WRITE_MAX || words.len() < 1 + count.div_ceil(8) {
                return refuse(STATUS_BAD_LENGTH);
            }
            let mut bytes = [0u8; WRITE_MAX];
            unpack(&words[1..], &mut bytes[..count]);
            self.write(index, &bytes[..count]);
            Message::new(&[STATUS_OK, count as u64])
        } else if word0 == OP_READ {
            let mut bytes = [0u8; READ_MAX];
            let count = INBOXES.get(index).map_or(0, |inbox| inbox.pop(&mut bytes));
            let mut words = [0u64; MESSAGE_WORDS];
            words[0] = STATUS_OK;
            words[1] = count as u64;
            pack(&bytes[..count], &mut words[2..]);
            Message::new(&words)
        } else {
            refuse(STATUS_UNKNOWN_OP)
        }
    }
}

/// Waits for the next request, whatever goes wrong.
fn receive() -> Received {
    loop {
        match call::recv(LOG) {
            Ok(request) => return request,
            Err(_) => call::yield_now(),
        }
    }
}

/// vCPU 0's loop: the banner, then requests forever.
pub(crate) fn run(buffers: &Buffers, clients: &Table) -> ! {
    let mut server = Server {
        buffers,
        clients,
        pending: [Pending::EMPTY; MAX_CLIENTS],
    };
    server.banner();
    STARTED.store(true, core::sync::atomic::Ordering::Release);
    let mut request = receive();
    loop {
        let reply = server.handle(&request);
        request = match call::reply_recv(LOG, &reply) {
            Ok(next) => next,
            Err(_) => receive(),
        };
    }
}
