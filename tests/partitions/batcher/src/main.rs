// SPDX-License-Identifier: Apache-2.0 OR MIT
//! batcher: shows reply objects. It serves the `ping` endpoint like `pong`
//! (each call is answered with the number it sent plus one) but never
//! answers a call at once: it keeps the first call of a pair in `reply-0`,
//! takes the next call and keeps it in `reply-1`, then answers the later
//! caller first. With the implicit reply alone it could not take a second
//! call before answering the first. It logs each thousand pairs, then
//! `batcher: done` after three thousand; it keeps serving after that.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use svc_rt::call::{self, Message, Received};
use svc_rt::hypercall::CapSlot;

svc_rt::entry!(main);

/// The endpoint the clients call.
const ENDPOINT: CapSlot = svc_rt::cap!(PING);
/// Where the first call of a pair waits.
const FIRST: CapSlot = svc_rt::cap!(REPLY_0);
/// Where the second call of a pair waits.
const SECOND: CapSlot = svc_rt::cap!(REPLY_1);

/// Pairs between two log lines.
const ROUNDS: u64 = 1000;

/// Takes the next call and keeps its reply in `keep`; returns its number.
fn take(keep: CapSlot) -> u64 {
    let request: Received = match call::recv(ENDPOINT) {
        Ok(request) => request,
        Err(status) => panic!("recv failed: {status}"),
    };
    if let Err(status) = call::save_reply(keep) {
        panic!("save_reply failed: {status}");
    }
    request.message.payload().first().copied().unwrap_or(0)
}

/// Answers the caller kept in `kept` with `n + 1`.
fn answer(kept: CapSlot, n: u64) {
    if let Err(status) = call::reply_saved(kept, &Message::new(&[n.wrapping_add(1)])) {
        panic!("reply_saved failed: {status}");
    }
}

fn main(_start: svc_rt::Start) -> ! {
    svc_rt::println!("serving in pairs");
    let mut pairs: u64 = 0;
    loop {
        let first = take(FIRST);
        let second = take(SECOND);
        answer(SECOND, second);
        answer(FIRST, first);
        pairs += 1;
        if pairs.is_multiple_of(ROUNDS) && pairs <= 3 * ROUNDS {
            svc_rt::println!("{pairs} pairs answered, the later call first");
            if pairs == 3 * ROUNDS {
                svc_rt::println!("batcher: done");
            }
        }
    }
}
