// SPDX-License-Identifier: Apache-2.0 OR MIT
//! ping: calls `pong` over the `ping` endpoint, checks each reply (the number
//! sent plus one), and logs a line for each of the first three thousand-call
//! batches, then `ping: done`; it keeps calling, quietly, after that.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use svc_rt::call::{self, Message};
use svc_rt::hypercall::CapSlot;

svc_rt::entry!(main);

const PONG: CapSlot = svc_rt::cap!(PING);

/// Calls made between two log lines.
const ROUNDS: u64 = 1000;

fn main(_start: svc_rt::Start) -> ! {
    let mut n: u64 = 0;
    let mut batch = 0;
    loop {
        for _ in 0..ROUNDS {
            match call::call(PONG, &Message::new(&[n])) {
                Ok(reply) if reply.payload() == [n + 1] => n += 1,
                Ok(reply) => panic!("pong answered {:?} to {n}", reply.payload()),
                Err(status) => panic!("call failed: {status}"),
            }
        }
        batch += 1;
        // Three batches prove the point; after that ping keeps calling (the
        // load stays) but stops talking, so the console stays readable.
        if batch <= 3 {
            svc_rt::println!("{} calls answered correctly (batch {batch})", n);
        }
        if batch == 3 {
            svc_rt::println!("ping: done");
        }
    }
}
