// SPDX-License-Identifier: Apache-2.0 OR MIT
//! pong: answers every call on its endpoint with the number it was sent plus
//! one.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use svc_rt::call::{self, Message};
use svc_rt::hypercall::CapSlot;

svc_rt::entry!(main);

const ENDPOINT: CapSlot = svc_rt::cap!(PING);

fn main(_start: svc_rt::Start) -> ! {
    svc_rt::println!("serving");
    let mut request = match call::recv(ENDPOINT) {
        Ok(request) => request,
        Err(status) => panic!("recv failed: {status}"),
    };
    loop {
        let n = request.message.payload().first().copied().unwrap_or(0);
        request = match call::reply_recv(ENDPOINT, &Message::new(&[n.wrapping_add(1)])) {
            Ok(next) => next,
            Err(status) => panic!("reply_recv failed: {status}"),
        };
    }
}
