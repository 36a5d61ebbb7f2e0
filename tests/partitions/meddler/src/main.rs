// SPDX-License-Identifier: Apache-2.0 OR MIT
//! meddler: holds no capability over any partition (its one capability is
//! the `ping` endpoint), yet tries to stop, restart and inspect partitions:
//! `PartitionStop`, `PartitionRestart` and `PartitionStatus` on every slot
//! of its table and past it. Every call must be refused (the endpoint is the
//! wrong kind of object, every other slot is empty) and nothing may stop or
//! restart; the system test checks both. Then it tries to forge a stop in
//! its own name that a report would blame on someone else: `Fault` with the
//! kernel's reasons (an exception's, 0x100, and a controller's, 0x200 plus
//! any partition index), each of which must be refused as an invalid
//! argument. Last, it reads the activity monitors (AMCNTENSET0_EL0), which
//! must stop it (the kernel traps them; QEMU's CPUs have none, so there the
//! instruction is undefined).
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use svc_rt::call;
use svc_rt::hypercall::{CapSlot, Hypercall, REASON_CONTROLLER, REASON_EXCEPTION, Status};

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
                    call::fault(0xba, &[u64::from(slot.0)]);
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
    forge_reasons();
    svc_rt::println!("meddler: done");
    svc_rt::println!("meddler: reading the activity monitors");
    let value = svc_rt::probe::read_activity_monitors();
    svc_rt::println!("meddler: read the activity monitors ({value:#x}): isolation is broken");
    loop {
        call::yield_now();
    }
}

/// `Fault` with each of the kernel's reasons: were one accepted, this
/// partition would stop with a report that an exception, or a controller
/// (named), stopped it.
fn forge_reasons() {
    let fault = u64::from(Hypercall::Fault.function_id());
    // The monitor's first (it is partition 2 in tests/qemu/control.toml:
    // "at the request of `monitor`"), then every other controller's, then
    // an exception's.
    let reasons = core::iter::once(REASON_CONTROLLER + 2)
        .chain(
            (0..=0xff)
                .filter(|&i| i != 2)
                .map(|i| REASON_CONTROLLER + i),
        )
        .chain(core::iter::once(REASON_EXCEPTION));
    let (mut refused, mut other) = (0, 0);
    for reason in reasons {
        let out = call::raw([fault, 0, reason, 0, 0, 0, 0, 0]);
        match Status::from_register(out[0]) {
            Some(Status::InvalidArgument) => refused += 1,
            status => {
                other += 1;
                svc_rt::println!("Fault with reason {reason:#x}: {status:?}");
            }
        }
    }
    svc_rt::println!(
        "Fault with the kernel's reasons (0x100, 0x200 to 0x2ff): {refused} refused as invalid arguments, {other} other"
    );
}

/// How a refusal reads.
fn refusal(status: Status) -> &'static str {
    match status {
        Status::WrongType => "refused, the capability names the wrong kind of object",
        Status::InvalidCapability => "refused, no capability in that slot",
        _ => "refused, but not for the expected reason",
    }
}
