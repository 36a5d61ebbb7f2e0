// SPDX-License-Identifier: Apache-2.0 OR MIT
//! vCPU 0: serves the `log` endpoint. Writes go to the client's line
//! ([`output::write`]); reads take bytes from the client's inbox (filled by
//! vCPU 1).

use svc_rt::call::{self, Message, Received};
use svc_rt::console::{
    OP_READ, OP_WRITE, READ_MAX, STATUS_BAD_LENGTH, STATUS_OK, STATUS_UNKNOWN_CLIENT,
    STATUS_UNKNOWN_OP, WRITE_MAX, pack, unpack,
};
use svc_rt::hypercall::{CapSlot, MESSAGE_WORDS};
use svc_uart_pl011::Buffers;

use crate::input::{INBOXES, STARTED};
use crate::output::{self, Text, WhenFull};
use crate::table::Table;

/// The endpoint every client calls.
const LOG: CapSlot = svc_rt::cap!(LOG);

struct Server<'a> {
    buffers: &'a Buffers,
    clients: &'a Table,
}

impl Server<'_> {
    fn print(&self, name: &str, text: &[u8]) {
        output::line(self.buffers, self.clients, name, text, WhenFull::Sleep);
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
        // Where the keyboard goes at start (vCPU 1 takes it from here).
        let focus = self.clients.initial_focus();
        if let Some(client) = self.clients.get(focus) {
            let mut text = Text::new();
            text.push(b"focus: ");
            if let Some(key) = Table::key(focus) {
                text.push(&[key, b' ']);
            }
            text.push(client.name.as_bytes());
            output::focus(
                self.buffers,
                self.clients,
                focus,
                text.as_bytes(),
                WhenFull::Sleep,
            );
        }
    }

    /// The reply to one request.
    fn handle(&self, request: &Received) -> Message {
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
            output::write(self.buffers, self.clients, index, &bytes[..count]);
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
    let server = Server { buffers, clients };
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
