// SPDX-License-Identifier: Apache-2.0 OR MIT
//! monitor: a health monitor. The manifest's `controls = ["crasher"]` gives
//! it a capability over the partition `crasher`, whose fault policy is
//! `stop`: the monitor, not the kernel, decides whether it comes back. It
//! polls the partition's status and each time it finds it stopped, restarts
//! it, at most [`RESTARTS`] times; after that it leaves it stopped.
//!
//! If it also controls a partition called `spin` (one that never yields), it
//! stops that one first, to show a stop from outside.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use svc_rt::call::{self, PartitionStatus};
use svc_rt::hypercall::{CapSlot, RunState, controller_of};

svc_rt::entry!(main);

/// The partition it keeps alive.
const WATCHED: CapSlot = svc_rt::cap!(CRASHER);

/// A partition it stops straight away, if the manifest gives it one.
const RUNAWAY: Option<CapSlot> = svc_rt::optional_cap!(SPIN);

/// How many times it restarts the watched partition before giving up.
const RESTARTS: u64 = 3;

/// Counter ticks it lets pass after giving up, before it says it is done,
/// so that the kernel's report of the last stop, printed by the core the
/// partition ran on, comes out first: about 70 ms at QEMU's 62.5 MHz.
const SETTLE_TICKS: u64 = 1 << 22;

fn main(start: svc_rt::Start) -> ! {
    if let Some(runaway) = RUNAWAY {
        stop(runaway, start.partition);
    }
    svc_rt::println!("watching `crasher`: it may be restarted {RESTARTS} times");
    let mut restarts = 0;
    loop {
        let status = wait_until_stopped(WATCHED);
        if restarts == RESTARTS {
            svc_rt::println!(
                "`crasher` stopped again (fault {}, reason {:#x}); {RESTARTS} restarts were \
                 enough: it stays stopped",
                status.faults,
                status.last_reason
            );
            break;
        }
        restarts += 1;
        svc_rt::println!(
            "`crasher` stopped (fault {}, reason {:#x}); restarting it ({restarts} of {RESTARTS})",
            status.faults,
            status.last_reason
        );
        if let Err(status) = call::partition_restart(WATCHED) {
            panic!("cannot restart `crasher`: {status}");
        }
    }
    let since = svc_rt::counter();
    while svc_rt::counter().wrapping_sub(since) < SETTLE_TICKS {
        call::yield_now();
    }
    svc_rt::println!("monitor: done");
    loop {
        call::yield_now();
    }
}

/// Polls the partition behind `slot` until it is stopped.
fn wait_until_stopped(slot: CapSlot) -> PartitionStatus {
    loop {
        match call::partition_status(slot) {
            Ok(status) if status.state == RunState::Stopped => return status,
            Ok(_) => call::yield_now(),
            Err(status) => panic!("cannot read `crasher`'s status: {status}"),
        }
    }
}

/// Stops the partition behind `slot` (`spin`) and says what its status
/// shows then; `me` is this partition's index.
fn stop(slot: CapSlot, me: u64) {
    svc_rt::println!("stopping `spin`, which never yields");
    if let Err(status) = call::partition_stop(slot) {
        panic!("cannot stop `spin`: {status}");
    }
    match call::partition_status(slot) {
        Ok(status) => {
            let by = match controller_of(status.last_reason) {
                Some(p) if p == me => "by this partition",
                Some(_) => "by another partition",
                None => "not by a controller",
            };
            svc_rt::println!(
                "`spin` is {} (reason {:#x}: {by}), after {} faults",
                status.state,
                status.last_reason,
                status.faults
            );
        }
        Err(status) => panic!("cannot read `spin`'s status: {status}"),
    }
}
