// SPDX-License-Identifier: Apache-2.0 OR MIT
//! flooder: a hostile client (issue 8, finding 7). It derives a copy of its
//! own notification capability `trap` (signal and derive) and sends it with
//! each of [`FLOOD`] calls to `keeper`, which never asked for a capability.
//! Each call must be refused (`OutOfResources`, the message not delivered):
//! were the copies put in the keeper's free slots, they would fill its
//! table, and one would take the number of the slot keeper deleted, so that
//! keeper's signal through that number would reach `trap`. Then it tells
//! keeper it is done and checks that `trap` was never signalled; last it
//! sends one more copy, which keeper asks for, and keeper signals through it.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use svc_rt::call::{self, Message};
use svc_rt::hypercall::{Badge, CapSlot, MessageInfo, Rights, Status};

svc_rt::entry!(main);

/// The endpoint to keeper (write and grant).
const DROP: CapSlot = svc_rt::cap!(DROP);
/// Its own notification (read, write, derive).
const TRAP: CapSlot = svc_rt::cap!(TRAP);
/// An empty slot for the copy it sends.
const COPY: CapSlot = CapSlot(40);
/// How many capabilities it sends: more than a table has slots.
const FLOOD: usize = 100;
/// Word 0 of the message that ends the flood.
const DONE: u64 = 2;

fn main(_start: svc_rt::Start) -> ! {
    let rights = Rights::WRITE.union(Rights::DERIVE);
    if let Err(status) = call::derive(TRAP, rights, Badge(0), COPY) {
        panic!("derive failed: {status}");
    }
    let (mut taken, mut refused, mut other) = (0, 0, 0);
    for _ in 0..FLOOD {
        let mut flood = Message::new(&[1]);
        flood.info = MessageInfo::words(1).with_capability(COPY);
        match call::call(DROP, &flood) {
            Ok(_) => taken += 1,
            Err(Status::OutOfResources) => refused += 1,
            Err(status) => {
                other += 1;
                svc_rt::println!("flooder: a call failed otherwise: {status}");
            }
        }
    }
    svc_rt::println!(
        "flooder: {FLOOD} capabilities sent: {taken} taken, {refused} refused ({}), {other} other",
        Status::OutOfResources
    );
    if let Err(status) = call::call(DROP, &Message::new(&[DONE])) {
        panic!("the last call failed: {status}");
    }
    match call::poll(TRAP) {
        Ok(0) => svc_rt::println!("flooder: nothing reached its notification"),
        Ok(bits) => svc_rt::println!(
            "flooder: keeper signalled its notification through a capability it never asked for (bits {bits:#x})"
        ),
        Err(status) => panic!("poll failed: {status}"),
    }
    // keeper now asks for one: it is taken, and keeper signals through it.
    let mut asked = Message::new(&[3]);
    asked.info = MessageInfo::words(1).with_capability(COPY);
    if let Err(status) = call::call(DROP, &asked) {
        panic!("the capability keeper asked for was refused: {status}");
    }
    match call::poll(TRAP) {
        Ok(bits) => svc_rt::println!(
            "flooder: the capability keeper asked for reached its notification (bits {bits:#x})"
        ),
        Err(status) => panic!("poll failed: {status}"),
    }
    svc_rt::println!("flooder: done");
    loop {
        call::yield_now();
    }
}
