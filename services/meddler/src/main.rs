// SPDX-License-Identifier: Apache-2.0 OR MIT
//! meddler: holds no capability over any partition (its one capability is
//! the `ping` endpoint), yet tries to stop, restart and inspect partitions:
//! `PartitionStop`, `PartitionRestart` and `PartitionStatus` on every slot
//! of its table and past it. Every call must be refused (the endpoint is the
//! wrong kind of object, every other slot is empty) and nothing may stop or
//! restart; the system test checks both.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use svc_rt::call;
use svc_rt::hypercall::{CapSlot, Status};

svc_rt::entry!(main);

/// Its one capability: a client end of the `ping` endpoint.
const PING: CapSlot = svc_rt::cap!(PING);

/// The slots it tries: its whole table, the first slot past it, the last.
fn slots() -> impl Iterator<Item = u32> {
    (0..=64).chain([u32::MAX])
}

fn main(_start: svc_rt::Start) -> ! {
    svc_rt::println!("trying to stop, restart and inspect partitions without a capability");
    for (what, result) in [
        ("its `ping` endpoint", call::partition_stop(PING)),
        ("an empty slot", call::partition_stop(CapSlot(PING.0 + 1))),
    ] {
        svc_rt::println!(
            "PartitionStop on {what}: {}",
            result.err().map_or("it worked", refusal)
        );
    }
    let (mut wrong_type, mut empty, mut other) = (0, 0, 0);
    for slot in slots().map(CapSlot) {
        let results = [
            call::partition_stop(slot),
            call::partition_restart(slot),
            call::partition_status(slot).map(|_| ()),
        ];
        for result in results {
            match result {
                Ok(()) => {
                    svc_rt::println!("slot {}: a call went through: isolation is broken", slot.0);
                    call::fault(0xbad, &[u64::from(slot.0)]);
                }
                Err(Status::WrongType) => wrong_type += 1,
                Err(Status::InvalidCapability) => empty += 1,
                Err(_) => other += 1,
            }
        }
    }
    svc_rt::println!(
        "all {} calls refused: {wrong_type} wrong kind of object, {empty} no capability, {other} other",
        wrong_type + empty + other
    );
    svc_rt::println!("meddler: done");
    loop {
        call::yield_now();
    }
}

/// How a refusal reads.
fn refusal(status: Status) -> &'static str {
    match status {
        Status::WrongType => "refused, the capability names the wrong kind of object",
        Status::InvalidCapability => "refused, no capability in that slot",
        _ => "refused, but not for the expected reason",
    }
}
