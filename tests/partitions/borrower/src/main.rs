// SPDX-License-Identifier: Apache-2.0 OR MIT
//! borrower: the other half of `lender`'s demonstration. It serves the
//! `handoff` endpoint: it receives the first message naming slot
//! [`BORROWED`] as where a capability may land (the kernel puts one nowhere
//! else, and says so in the message info), and signals through what
//! arrived; after the second message, sent once the lender has revoked it,
//! the same slot must be empty.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use svc_rt::call::{self, Message};
use svc_rt::hypercall::CapSlot;

svc_rt::entry!(main);

/// The endpoint the lender calls (read).
const HANDOFF: CapSlot = svc_rt::cap!(HANDOFF);

/// The empty slot it offers for the capability it is lent.
const BORROWED: CapSlot = CapSlot(40);

fn main(_start: svc_rt::Start) -> ! {
    let first = match call::recv_accepting(HANDOFF, BORROWED) {
        Ok(request) => request,
        Err(status) => panic!("recv failed: {status}"),
    };
    let Some(lent) = first.message.info.capability() else {
        panic!("the first message brought no capability");
    };
    if lent != BORROWED {
        panic!(
            "the capability landed in slot {}, not {}",
            lent.0, BORROWED.0
        );
    }
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
