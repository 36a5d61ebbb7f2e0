// SPDX-License-Identifier: Apache-2.0 OR MIT
//! producer: writes [`svc_producer::TOTAL`] numbered, checksummed records
//! into the `records` shared-memory ring, signalling `records-ready` after
//! each batch and sleeping on `records-free` whenever the ring is full. The
//! format is in this crate's library, which `consumer` shares.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use svc_producer::{RECORD_SIZE, RING_CAPACITY, TOTAL, record, ring};
use svc_rt::call;
use svc_rt::hypercall::CapSlot;

svc_rt::entry!(main);

/// Signalled after each batch of records.
const READY: CapSlot = svc_rt::cap!(RECORDS_READY);
/// Signalled by the consumer when it made room.
const FREE: CapSlot = svc_rt::cap!(RECORDS_FREE);

fn main(start: svc_rt::Start) -> ! {
    let window = svc_rt::shared!(RECORDS);
    let ring = ring(&start, window);
    svc_rt::println!(
        "writing {TOTAL} records of {RECORD_SIZE} bytes through a {RING_CAPACITY}-byte ring at {:#x}",
        window.ipa
    );
    let mut sequence = 0;
    while sequence < TOTAL {
        let mut wrote = false;
        while sequence < TOTAL && ring.free() >= RECORD_SIZE {
            ring.push(&record(sequence));
            sequence += 1;
            wrote = true;
        }
        if wrote {
            let _ = call::signal(READY);
        }
        // The consumer signals after every batch it takes, so if the ring is
        // still full here, a signal is on its way (or already set).
        if sequence < TOTAL && ring.free() < RECORD_SIZE {
            let _ = call::wait(FREE);
        }
    }
    svc_rt::println!("done, {TOTAL} records written");
    loop {
        let _ = call::wait(FREE);
    }
}
