// SPDX-License-Identifier: Apache-2.0 OR MIT
//! vCPU 0: boots the guest, then answers its exits forever.
//!
//! Each exit is a call on the `exits` endpoint from one of the guest's
//! vCPUs (the badge is its index), described as `hv_abi::vm` says:
//! - an MMIO access: to the GIC distributor or redistributors, or the PL011
//!   ([`crate::machine`]); anything else reads as zero and ignores writes,
//!   and the first few are reported (unless the test hook
//!   [`config::PANIC_ON_WRITE`] names the address written: then the monitor
//!   panics);
//! - an HVC or SMC: PSCI ([`psci`]), or an SMCCC call nobody implements
//!   (`NOT_SUPPORTED`);
//! - a trapped system register (debug, PMU, implementation defined): reads
//!   as zero, writes ignored;
//! - an abort the kernel could not describe: the vCPU is stopped and the
//!   exit reported.
//!
//! PSCI `SYSTEM_OFF` stops the guest and says so; `SYSTEM_RESET` (a
//! `reboot`, or a kernel panic under `panic=-1`) boots it again.

use svc_rt::call::{self, Message, Received};
use svc_rt::vm::{
    EXIT_ABORT, EXIT_HVC, EXIT_MMIO, EXIT_SMC, EXIT_SYSREG, RESUME_SET_RESULT,
    RESUME_WRITE_REGISTER, VcpuRunState, WRITE, exit_kind, exit_size,
};
use vmm_devices::psci::{self, PsciCall};

use crate::machine::{Effects, MACHINE, Machine};
use crate::{boot, config, console};

/// The answer that resumes a vCPU as it is.
const RESUME: [u64; 1] = [0];

/// What to do with an exit's vCPU.
enum Answer {
    /// Resume it with this message.
    Reply(Message),
    /// Leave it waiting (it was stopped, or the guest powered off).
    None,
}

/// vCPU 0's loop: creates the devices, boots the guest, then answers exits.
pub(crate) fn run(start: &svc_rt::Start) -> ! {
    *MACHINE.lock() = Some(Machine::new(config::VCPUS, start.gic_version));
    boot_and_report(start);
    serve(start)
}

/// Answers exits forever (vCPU 0, and vCPU 1 when it has no keyboard input
/// to wait for: a vCPU that only yielded would keep every lower priority
/// off its core).
pub(crate) fn serve(start: &svc_rt::Start) -> ! {
    while MACHINE.lock().is_none() {
        call::yield_now();
    }
    let mut answer = Answer::None;
    loop {
        let received = match answer {
            Answer::Reply(message) => call::reply_recv(config::EXITS, &message),
            Answer::None => call::recv(config::EXITS),
        };
        answer = match received {
            Ok(exit) => handle(start, &exit),
            Err(_) => {
                call::yield_now();
                Answer::None
            }
        };
    }
}

fn boot_and_report(start: &svc_rt::Start) {
    match boot::boot(start) {
        Ok(booted) => {
            let l = booted.layout;
            console::say(format_args!(
                "vmm: booting {} ({} vCPU(s), {} MiB, GICv{}): kernel at {:#x}, {} at {:#x}, device tree at {:#x}",
                config::NAME,
                config::VCPUS,
                config::RAM.size >> 20,
                start.gic_version,
                l.kernel.start,
                if l.initrd.is_some() {
                    "initramfs"
                } else {
                    "no initramfs"
                },
                l.initrd.map_or(0, |r| r.start),
                l.dtb.start
            ));
        }
        Err(e) => console::say(format_args!("vmm: cannot boot {}: {e}", config::NAME)),
    }
}

fn handle(start: &svc_rt::Start, exit: &Received) -> Answer {
    let vcpu = exit.badge.0 as u8;
    let words = exit.message.words;
    match exit_kind(words[0]) {
        EXIT_MMIO => {
            let write = (words[0] & WRITE != 0).then_some(words[2]);
            if write.is_some() && config::PANIC_ON_WRITE == Some(words[1]) {
                panic!(
                    "{} wrote to {:#x}, where the setting `panic-on-write` makes the monitor panic",
                    config::NAME,
                    words[1]
                );
            }
            let size = exit_size(words[0]) as u8;
            let (value, effects) = with_machine(|m| m.access(vcpu, words[1], size, write));
            carry_out(effects);
            if write.is_some() {
                reply(&RESUME)
            } else {
                reply(&[RESUME_WRITE_REGISTER, value])
            }
        }
        EXIT_HVC | EXIT_SMC => psci(start, vcpu, [words[1], words[2], words[3], words[4]]),
        // Debug, PMU, activity monitor and implementation-defined registers
        // read as zero.
        EXIT_SYSREG => {
            if words[0] & WRITE != 0 {
                reply(&RESUME)
            } else {
                reply(&[RESUME_WRITE_REGISTER, 0])
            }
        }
        EXIT_ABORT => {
            console::say(format_args!(
                "vmm: {} vCPU {vcpu} stopped: an exit the monitor cannot handle at PC {:#x} (address {:#x}, ESR {:#x})",
                config::NAME,
                words[3],
                words[1],
                words[4]
            ));
            if let Some(cap) = config::vcpu(vcpu) {
                let _ = call::vcpu_stop(cap);
            }
            Answer::None
        }
        _ => reply(&RESUME),
    }
}

fn reply(words: &[u64]) -> Answer {
    Answer::Reply(Message::new(words))
}

/// PSCI's answer in x0 (the other result registers zero).
fn result(x0: u64) -> Answer {
    reply(&[RESUME_SET_RESULT, x0, 0, 0, 0])
}

fn psci(start: &svc_rt::Start, vcpu: u8, [function, x1, x2, x3]: [u64; 4]) -> Answer {
    match PsciCall::decode(function, x1, x2, x3) {
        PsciCall::Version => result(psci::version()),
        PsciCall::Features { function } => result(psci::features(function)),
        PsciCall::MigrateInfoType => result(psci::MIGRATE_INFO_NOT_REQUIRED),
        // No idle states are described: a suspend returns at once.
        PsciCall::CpuSuspend { .. } => result(psci::SUCCESS),
        PsciCall::CpuOn {
            target_mpidr,
            entry,
            context_id,
        } => {
            let Some(target) =
                psci::mpidr_to_vcpu(target_mpidr, config::VCPUS).and_then(config::vcpu)
            else {
                return result(psci::INVALID_PARAMETERS);
            };
            match call::vcpu_status(target) {
                Ok(VcpuRunState::Off) => match call::vcpu_start(target, entry, context_id) {
                    Ok(()) => result(psci::SUCCESS),
                    Err(_) => result(psci::INTERNAL_FAILURE),
                },
                Ok(_) => result(psci::ALREADY_ON),
                Err(_) => result(psci::INTERNAL_FAILURE),
            }
        }
        PsciCall::AffinityInfo { target, level } => {
            let target = psci::mpidr_to_vcpu(target, config::VCPUS).and_then(config::vcpu);
            match (target, level) {
                (Some(target), 0) => match call::vcpu_status(target) {
                    Ok(VcpuRunState::Off) => result(psci::AFFINITY_OFF),
                    Ok(_) => result(psci::AFFINITY_ON),
                    Err(_) => result(psci::INTERNAL_FAILURE),
                },
                _ => result(psci::INVALID_PARAMETERS),
            }
        }
        PsciCall::CpuOff => {
            if let Some(cap) = config::vcpu(vcpu) {
                let _ = call::vcpu_stop(cap);
            }
            Answer::None
        }
        PsciCall::SystemOff => {
            boot::stop_all();
            flush_output();
            console::say(format_args!("vmm: {} powered off", config::NAME));
            Answer::None
        }
        PsciCall::SystemReset => {
            boot::stop_all();
            flush_output();
            console::say(format_args!(
                "vmm: {} reset: booting it again",
                config::NAME
            ));
            with_machine(|m| m.reset(config::VCPUS, start.gic_version));
            boot_and_report(start);
            Answer::None
        }
        PsciCall::Unknown { .. } => result(psci::NOT_SUPPORTED),
    }
}

/// Prints what the guest wrote but has not finished a line of.
fn flush_output() {
    let (_, effects) = with_machine(|m| m.access(0, svc_rt::vm::GUEST_UART + 0x30, 4, None));
    carry_out(effects);
}

/// Runs `f` on the devices.
pub(crate) fn with_machine<T: Default>(f: impl FnOnce(&mut Machine) -> T) -> T {
    MACHINE.lock().as_mut().map(f).unwrap_or_default()
}

/// Delivers the interrupts and prints the bytes that the devices asked for.
pub(crate) fn carry_out(effects: Effects) {
    for injection in &effects.inject {
        if let Some(cap) = config::vcpu(injection.vcpu) {
            let _ = call::vcpu_inject(cap, injection.intid, injection.source.unwrap_or(0));
        }
    }
    if !effects.print.is_empty() {
        console::write(&effects.print);
    }
    if let Some((address, write)) = effects.stray {
        console::say(format_args!(
            "vmm: {} {} {address:#x}, where it has no device: {}",
            config::NAME,
            if write { "wrote to" } else { "read from" },
            if write { "ignored" } else { "read as zero" }
        ));
    }
}
