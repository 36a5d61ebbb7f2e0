// SPDX-License-Identifier: Apache-2.0 OR MIT
//! lender: shows capability transfer and revocation. It derives a
//! signal-only (and copyable) copy of its `wake` notification capability (the manifest's
//! `derive = true` lets it), sends that copy to `borrower` over the
//! `handoff` endpoint (the manifest's `grant = true` lets it), and waits on
//! `wake` until the borrower signals through the copy. Then it revokes its
//! copy, which takes the borrower's with it, and checks that nothing more
//! arrives.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use svc_rt::call::{self, Message};
use svc_rt::hypercall::{Badge, CapSlot, MessageInfo, Rights};

svc_rt::entry!(main);

/// The endpoint to the borrower (write and grant).
const HANDOFF: CapSlot = svc_rt::cap!(HANDOFF);
/// Its own notification (read, write, derive).
const WAKE: CapSlot = svc_rt::cap!(WAKE);
/// An empty slot for the copy it lends.
const LENT: CapSlot = CapSlot(40);

fn main(_start: svc_rt::Start) -> ! {
    // Write to signal; derive, because sending a capability hands on a copy.
    let rights = Rights::WRITE.union(Rights::DERIVE);
    if let Err(status) = call::derive(WAKE, rights, Badge(0), LENT) {
        panic!("derive failed: {status}");
    }
    let mut lend = Message::new(&[1]);
    lend.info = MessageInfo::words(1).with_capability(LENT);
    if let Err(status) = call::call(HANDOFF, &lend) {
        panic!("lending failed: {status}");
    }
    match call::wait(WAKE) {
        Ok(bits) => svc_rt::println!("woken through the capability it lent (bits {bits:#x})"),
        Err(status) => panic!("wait failed: {status}"),
    }
    if let Err(status) = call::revoke(LENT) {
        panic!("revoke failed: {status}");
    }
    if let Err(status) = call::call(HANDOFF, &Message::new(&[2])) {
        panic!("the second call failed: {status}");
    }
    match call::poll(WAKE) {
        Ok(0) => svc_rt::println!("revoked: nothing signalled since"),
        Ok(bits) => panic!("signalled through a revoked capability (bits {bits:#x})"),
        Err(status) => panic!("poll failed: {status}"),
    }
    svc_rt::println!("lender: done");
    loop {
        call::yield_now();
    }
}
