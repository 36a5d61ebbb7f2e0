// SPDX-License-Identifier: Apache-2.0 OR MIT
//! keeper: the server `flooder` attacks (issue 8, finding 7). It deletes its
//! notification capability `bell`, counts the slots of its table in use, and
//! serves `drop` without naming a slot a capability may land in (plain
//! `recv` and `reply_recv`), until flooder says it is done. Then it checks
//! what a server relies on: no capability arrived, its table holds what it
//! held, and the number `bell` had still names nothing, so signalling
//! through it fails with `InvalidCapability` rather than reaching whatever a
//! client sent. Last it names that slot as its receive slot for one more
//! message, and the capability flooder sends with it lands there.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use svc_rt::call::{self, Message};
use svc_rt::hypercall::{CapSlot, Status};

svc_rt::entry!(main);

/// The endpoint flooder calls (read).
const DROP: CapSlot = svc_rt::cap!(DROP);
/// Its notification, which it deletes first.
const BELL: CapSlot = svc_rt::cap!(BELL);
/// Word 0 of the message that ends the flood.
const DONE: u64 = 2;
/// Slots in a capability table (`docs/abi.md`: slot 64 is out of range).
const SLOTS: u32 = 64;

/// How many slots of its table hold a capability. `PartitionStatus` reads
/// nothing but the slot here: an empty one is `InvalidCapability`, any other
/// capability `WrongType`.
fn slots_in_use() -> u32 {
    (0..SLOTS)
        .filter(|&s| call::partition_status(CapSlot(s)) != Err(Status::InvalidCapability))
        .count() as u32
}

fn main(_start: svc_rt::Start) -> ! {
    if let Err(status) = call::delete(BELL) {
        panic!("delete failed: {status}");
    }
    let before = slots_in_use();
    svc_rt::println!(
        "keeper: deleted slot {}; {before} slots in use; serving without a receive slot",
        BELL.0
    );
    let mut request = match call::recv(DROP) {
        Ok(request) => request,
        Err(status) => panic!("recv failed: {status}"),
    };
    let mut unasked = 0;
    while request.message.words[0] != DONE {
        if let Some(slot) = request.message.info.capability() {
            unasked += 1;
            if unasked == 1 {
                svc_rt::println!(
                    "keeper: a capability it did not ask for arrived in slot {}",
                    slot.0
                );
            }
        }
        request = match call::reply_recv(DROP, &Message::new(&[])) {
            Ok(request) => request,
            Err(status) => panic!("reply_recv failed: {status}"),
        };
    }
    let after = slots_in_use();
    svc_rt::println!("keeper: {unasked} capabilities arrived unasked; {after} slots in use");
    match call::signal(BELL) {
        Err(status) => svc_rt::println!(
            "keeper: signalling through deleted slot {} fails: {status}",
            BELL.0
        ),
        Ok(()) => svc_rt::println!(
            "keeper: signalling through deleted slot {} reached someone else's notification",
            BELL.0
        ),
    }
    // Now it asks for one, in the slot it deleted: the number is reused
    // because it chose so, and only then.
    let asked = match call::reply_recv_accepting(DROP, &Message::new(&[]), BELL) {
        Ok(request) => request,
        Err(status) => panic!("reply_recv_accepting failed: {status}"),
    };
    match (asked.message.info.capability(), call::signal(BELL)) {
        (Some(slot), Ok(())) if slot == BELL => svc_rt::println!(
            "keeper: asked for a capability in slot {}: it landed there, and signalling through it works",
            BELL.0
        ),
        (slot, signalled) => svc_rt::println!(
            "keeper: asked for a capability in slot {}, got {slot:?} (signal: {signalled:?})",
            BELL.0
        ),
    }
    if let Err(status) = call::reply(&Message::new(&[])) {
        panic!("reply failed: {status}");
    }
    svc_rt::println!("keeper: done");
    loop {
        call::yield_now();
    }
}
