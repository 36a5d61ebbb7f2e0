// SPDX-License-Identifier: Apache-2.0 OR MIT
//! pong: answers every call on its endpoint with the words it was sent, as
//! many, the first plus one.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use svc_rt::call;
use svc_rt::hypercall::{CapSlot, MessageInfo};

svc_rt::entry!(main);

const ENDPOINT: CapSlot = svc_rt::cap!(PING);

fn main(_start: svc_rt::Start) -> ! {
    svc_rt::println!("serving");
    let mut request = match call::recv(ENDPOINT) {
        Ok(request) => request,
        Err(status) => panic!("recv failed: {status}"),
    };
    loop {
        // Its words as they came (a capability that came with them is not
        // passed back), the first plus one.
        let mut answer = request.message;
        answer.info = MessageInfo::words(answer.info.length().unwrap_or(0));
        answer.words[0] = answer.words[0].wrapping_add(1);
        request = match call::reply_recv(ENDPOINT, &answer) {
            Ok(next) => next,
            Err(status) => panic!("reply_recv failed: {status}"),
        };
    }
}
