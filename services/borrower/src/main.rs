// SPDX-License-Identifier: Apache-2.0 OR MIT
//! borrower: the other half of `lender`'s demonstration. It serves the
//! `handoff` endpoint: the first message brings a capability (the kernel
//! puts it in its first free slot and says which in the message info), and
//! it signals through it; after the second message, sent once the lender has
//! revoked it, the same slot must be empty.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use svc_rt::call::{self, Message};
use svc_rt::hypercall::CapSlot;

svc_rt::entry!(main);

/// The endpoint the lender calls (read).
const HANDOFF: CapSlot = svc_rt::cap!(HANDOFF);

fn main(_start: svc_rt::Start) -> ! {
    let first = match call::recv(HANDOFF) {
        Ok(request) => request,
        Err(status) => panic!("recv failed: {status}"),
    };
    let Some(lent) = first.message.info.capability() else {
        panic!("the first message brought no capability");
    };
    match call::signal(lent) {
        Ok(()) => svc_rt::println!(
            "signalled through the capability it was lent (slot {})",
            lent.0
        ),
        Err(status) => panic!("signal through the lent capability failed: {status}"),
    }
    let second = match call::reply_recv(HANDOFF, &Message::new(&[])) {
        Ok(request) => request,
        Err(status) => panic!("reply_recv failed: {status}"),
    };
    match call::signal(lent) {
        Err(status) => svc_rt::println!("after the revoke, signalling through it fails: {status}"),
        Ok(()) => panic!("signalled through a revoked capability"),
    }
    let _ = second;
    if let Err(status) = call::reply(&Message::new(&[])) {
        panic!("reply failed: {status}");
    }
    loop {
        call::yield_now();
    }
}
