// SPDX-License-Identifier: Apache-2.0 OR MIT
//! rearm: a driver that crashes between taking its interrupt and
//! acknowledging it, and must get the interrupt back when restarted.
//!
//! It owns the PL031 real-time clock, whose interrupt is a level one, and
//! restarts on a fault. Its first self raises the interrupt, takes it (the
//! kernel masks it until it is acknowledged) and panics without
//! acknowledging it or clearing the device. The device keeps its state, so
//! its restarted self finds the interrupt still raised and waits for it: it
//! arrives only if the kernel unmasked it when the partition was restarted,
//! since nothing the new self knows would acknowledge it. It then clears
//! the device, acknowledges, and says so.
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
const REARM_IRQ: CapSlot = svc_rt::cap!(REARM_IRQ);

/// PL031 registers: data (the time), match, interrupt mask, raw status,
/// interrupt clear.
const DR: usize = 0x00;
const MR: usize = 0x04;
const IMSC: usize = 0x10;
const RIS: usize = 0x14;
const ICR: usize = 0x1c;

/// How long the restarted self waits for the interrupt, in seconds.
const PATIENCE: u64 = 2;

fn main(start: svc_rt::Start) -> ! {
    let window = svc_rt::device!(RTC0);
    let Ok(rtc) = Device::new(&start, window.ipa as usize, window.size as usize) else {
        panic!("the RTC's window lies in RAM");
    };
    if rtc.read32(RIS).unwrap_or(0) & 1 == 0 {
        raise(&rtc);
        let bits = call::wait(REARM_IRQ).unwrap_or(0);
        svc_rt::println!(
            "rearm: took the interrupt (bits {bits:#x}); crashing before acknowledging it"
        );
        panic!("crashing with the interrupt taken and not acknowledged");
    }
    svc_rt::println!("rearm: restarted with the RTC's interrupt still raised; waiting for it");
    let until = svc_rt::counter() + PATIENCE * svc_rt::counter_frequency();
    loop {
        if call::poll(REARM_IRQ).is_ok_and(|bits| bits != 0) {
            let _ = rtc.write32(ICR, 1);
            let _ = call::irq_ack(RTC0);
            svc_rt::println!("rearm: the interrupt arrived after the restart");
            break;
        }
        if svc_rt::counter() > until {
            svc_rt::println!("rearm: no interrupt in {PATIENCE} s: it stayed masked");
            break;
        }
        call::yield_now();
    }
    loop {
        let _ = call::wait(REARM_IRQ);
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
            svc_rt::println!("rearm: the RTC's interrupt is raised");
            return;
        }
    }
    panic!("the RTC's interrupt could not be raised");
}
