// SPDX-License-Identifier: Apache-2.0 OR MIT
//! vmm: a virtual machine monitor as an unprivileged service, one per guest.
//!
//! The kernel runs the guest's vCPUs at EL1 and handles what it must itself
//! (its own hypercalls, the virtual timer, the GIC's list registers, SGIs,
//! WFI); everything else the guest does that leaves it (an access to a
//! device, a PSCI call, a trapped register) arrives here as a call on the
//! `exits` endpoint, and this monitor answers it. What it emulates is a
//! QEMU `virt`-like machine: the GIC distributor (and redistributors on
//! GICv3; the CPU interface is the hardware's virtual one), a PL011 whose
//! output goes to the console service and which takes the keyboard when the
//! console gives the guest the focus, and PSCI 1.1. The device models are
//! `vmm-devices`, tested on the host; this program wires them to the kernel.
//!
//! Two vCPUs (the manifest's `vcpus = 2`): vCPU 0 boots the guest and
//! answers its exits ([`exits`]); vCPU 1 waits for keyboard input
//! ([`input`]), or, if the manifest gives the monitor no input channel,
//! answers exits too. One vCPU does without keyboard input. Everything about the guest (its name, RAM, files, command
//! line) is fixed at build time ([`config`]).
//!
//! A monitor that crashes takes down only its own guest: its guest's vCPUs
//! waiting on it are turned off by the kernel; restarted (by its fault
//! policy or a health monitor), it stops whatever the guest still ran and
//! boots it afresh.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

extern crate alloc;

mod boot;
mod config;
mod console;
mod exits;
mod input;
mod machine;

svc_rt::entry!(main);
svc_rt::heap!(HEAP_BYTES);

/// The heap: the device tree is built there, and the devices' state lives
/// there.
const HEAP_BYTES: usize = 256 * 1024;

fn main(start: svc_rt::Start) -> ! {
    match start.vcpu {
        0 => exits::run(&start),
        1 => input::run(&start),
        // More vCPUs answer exits too.
        _ => exits::serve(&start),
    }
}
