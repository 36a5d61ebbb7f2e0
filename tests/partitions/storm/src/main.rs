// SPDX-License-Identifier: Apache-2.0 OR MIT
//! storm: an interrupt storm from a device its driver never quiets.
//!
//! It owns the PL031 real-time clock, whose interrupt is a level one: it
//! sets the match register to the current time, which raises the interrupt,
//! never clears it, and acknowledges it as fast as it can, on the core the
//! interrupt is routed to, beside ping/pong: without a bound the interrupt
//! would fire again at once, for ever, at the expense of whoever runs there.
//! It counts the deliveries it sees (a bit in its notification after an
//! acknowledgement) and prints how many arrived in each second; the kernel's
//! interrupt budget keeps that to about its budget per tick.
//!
//! Interrupt, acknowledgements and count on one core: the seconds it counts
//! are that core's, and so are the ticks that refill the budget. (Counting
//! from another core, a loaded host that held one QEMU thread back could
//! put more of the interrupt core's ticks in one of the counting core's
//! seconds than a second has.)
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use svc_rt::call;
use svc_rt::hypercall::CapSlot;
use svc_rt::mmio::Device;

svc_rt::entry!(main);

/// The RTC (a `Device` capability: `IrqAck` on its first interrupt).
const RTC0: CapSlot = svc_rt::cap!(RTC0);
/// Where the RTC's interrupt arrives.
const STORM_IRQ: CapSlot = svc_rt::cap!(STORM_IRQ);
/// PL031 registers: data (the time), match, interrupt mask, raw status.
const DR: usize = 0x00;
const MR: usize = 0x04;
const IMSC: usize = 0x10;
const RIS: usize = 0x14;

/// The seconds it reports.
const SECONDS: u32 = 5;

fn main(start: svc_rt::Start) -> ! {
    let window = svc_rt::device!(RTC0);
    let Ok(rtc) = Device::new(&start, window.ipa as usize, window.size as usize) else {
        panic!("the RTC's window lies in RAM");
    };
    raise(&rtc);
    let second = svc_rt::counter_frequency();
    for n in 1..=SECONDS {
        let until = svc_rt::counter() + second;
        let mut delivered = 0u32;
        let _ = call::poll(STORM_IRQ);
        while svc_rt::counter() < until {
            let _ = call::irq_ack(RTC0);
            if call::poll(STORM_IRQ).is_ok_and(|bits| bits != 0) {
                delivered += 1;
            }
        }
        svc_rt::println!("storm: second {n}: {delivered} interrupts delivered");
    }
    svc_rt::println!("storm: done");
    loop {
        let _ = call::irq_ack(RTC0);
    }
}

/// Raises the RTC's interrupt: unmasked, and the match register set to the
/// current time (QEMU's PL031 raises it at once when they are equal; the
/// time may move on between the read and the write, so until it is raised).
fn raise(rtc: &Device) {
    let _ = rtc.write32(IMSC, 1);
    for _ in 0..1000 {
        let now = rtc.read32(DR).unwrap_or(0);
        let _ = rtc.write32(MR, now);
        if rtc.read32(RIS).unwrap_or(0) & 1 != 0 {
            svc_rt::println!("storm: the RTC's interrupt is raised, and never cleared");
            return;
        }
    }
    panic!("the RTC's interrupt could not be raised");
}
