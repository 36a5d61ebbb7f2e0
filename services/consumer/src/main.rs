// SPDX-License-Identifier: Apache-2.0 OR MIT
//! consumer: sleeps on `records-ready`, takes every whole record from the
//! `records` ring, checks its sequence number, contents and checksum
//! (`svc_producer::check`), signals `records-free`, and prints a progress
//! line every [`svc_producer::PROGRESS_EVERY`] records. A record out of order
//! or corrupt is a bug in the system, so it panics: the kernel reports the
//! fault and the partition stops.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use svc_producer::{PROGRESS_EVERY, RECORD_SIZE, TOTAL, check, ring};
use svc_rt::call;
use svc_rt::hypercall::CapSlot;

svc_rt::entry!(main);

/// Signalled by the producer after each batch.
const READY: CapSlot = svc_rt::cap!(RECORDS_READY);
/// Signalled after taking records, so the producer can go on.
const FREE: CapSlot = svc_rt::cap!(RECORDS_FREE);

fn main(start: svc_rt::Start) -> ! {
    let ring = ring(&start, svc_rt::shared!(RECORDS));
    svc_rt::println!("checking records as they arrive");
    let mut expected: u64 = 0;
    loop {
        let mut took = false;
        while ring.available() >= RECORD_SIZE {
            let mut bytes = [0u8; RECORD_SIZE];
            if ring.pop(&mut bytes) != RECORD_SIZE {
                panic!("record {expected} arrived torn");
            }
            if let Err(problem) = check(&bytes, expected) {
                panic!("record {expected} is wrong: {problem:?}");
            }
            expected += 1;
            took = true;
            if expected.is_multiple_of(PROGRESS_EVERY) {
                svc_rt::println!("{expected} records checked, in order and intact");
            }
            if expected == TOTAL {
                svc_rt::println!("done, all {TOTAL} records arrived in order and intact");
            }
        }
        if took {
            let _ = call::signal(FREE);
        }
        if ring.available() < RECORD_SIZE {
            let _ = call::wait(READY);
        }
    }
}
