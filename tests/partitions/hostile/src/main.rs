// SPDX-License-Identifier: Apache-2.0 OR MIT
//! hostile: a partition that attacks the kernel (`../shared/reference/
//! attack-catalogue.md`: hypercall decoding, forged and mistyped
//! capabilities, rights it lacks, IPC protocol abuse, `svc` with a reserved
//! immediate). It holds one
//! capability, a client end of `ping` (write, no grant, no derive), and
//! hands the kernel register sets built to be wrong. Each must come back
//! with exactly the documented error (`docs/abi.md`) and change nothing; it
//! prints any surprise, then a summary. Last, it executes `smc` with PSCI's
//! SYSTEM_OFF: the kernel must stop this partition, not the machine.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

use svc_rt::call;
use svc_rt::hypercall::{FUNCTION_BASE, Hypercall, MessageInfo, Status};
use svc_rt::probe::Reserved;

svc_rt::entry!(main);

/// Its one capability: `ping`, write only.
const PING: u64 = svc_rt::cap!(PING).0 as u64;

/// PSCI 0.2 SYSTEM_OFF and CPU_ON (SMC64): firmware calls, not hypercalls.
const PSCI_SYSTEM_OFF: u64 = hv_abi::smccc::function::SYSTEM_OFF as u64;
const PSCI_CPU_ON: u64 = hv_abi::smccc::PsciFunction::CpuOn as u64;

fn id(call: Hypercall) -> u64 {
    u64::from(call.function_id())
}

/// An attack: what it is, x0..x7, the status it must get, and the `svc`
/// immediate it uses if not 0.
struct Attack {
    what: &'static str,
    regs: [u64; 8],
    expect: Status,
    immediate: Option<Reserved>,
}

fn attack(what: &'static str, regs: [u64; 8], expect: Status) -> Attack {
    Attack {
        what,
        regs,
        expect,
        immediate: None,
    }
}

/// An attack through `svc` with a reserved immediate: refused with
/// `NotSupported` whatever x0 asks for.
fn reserved(what: &'static str, immediate: Reserved, regs: [u64; 8]) -> Attack {
    Attack {
        what,
        regs,
        expect: Status::NotSupported,
        immediate: Some(immediate),
    }
}

/// `call` on `slot` with x2.. = `rest`, the others zero.
fn on(call: Hypercall, slot: u64, rest: &[u64]) -> [u64; 8] {
    let mut regs = [id(call), slot, 0, 0, 0, 0, 0, 0];
    for (r, v) in regs.iter_mut().skip(2).zip(rest) {
        *r = *v;
    }
    regs
}

fn attacks() -> [Attack; 32] {
    use Hypercall as H;
    use Status as S;
    let base = u64::from(FUNCTION_BASE);
    let words = |n| MessageInfo::words(n).0;
    let transfer = MessageInfo::words(0)
        .with_capability(svc_rt::hypercall::CapSlot(0))
        .0;
    [
        attack(
            "the first unassigned number",
            [base + H::ALL.len() as u64, 0, 0, 0, 0, 0, 0, 0],
            S::NotSupported,
        ),
        attack(
            "the last number of the range",
            [base + 0xffff, 0, 0, 0, 0, 0, 0, 0],
            S::NotSupported,
        ),
        attack(
            "x0 = all ones",
            [u64::MAX, 0, 0, 0, 0, 0, 0, 0],
            S::NotSupported,
        ),
        attack(
            "Call with x0's upper half set",
            [id(H::Call) | 1 << 32, PING, 0, 0, 0, 0, 0, 0],
            S::NotSupported,
        ),
        attack(
            "PSCI SYSTEM_OFF as a hypercall",
            [PSCI_SYSTEM_OFF, 0, 0, 0, 0, 0, 0, 0],
            S::NotSupported,
        ),
        attack(
            "PSCI CPU_ON as a hypercall",
            [PSCI_CPU_ON, 1, 0x4000_0000, 0, 0, 0, 0, 0],
            S::NotSupported,
        ),
        attack(
            "Call on slot 64",
            on(H::Call, 64, &[words(0)]),
            S::InvalidCapability,
        ),
        attack(
            "Call on slot 2^64 - 1",
            on(H::Call, u64::MAX, &[words(0)]),
            S::InvalidCapability,
        ),
        attack(
            "Call on an empty slot",
            on(H::Call, 5, &[words(0)]),
            S::InvalidCapability,
        ),
        attack(
            "Recv on a write-only endpoint",
            on(H::Recv, PING, &[]),
            S::NoRights,
        ),
        attack(
            "ReplyRecv on a write-only endpoint",
            on(H::ReplyRecv, PING, &[words(0)]),
            S::NoRights,
        ),
        attack(
            "Signal on an endpoint",
            on(H::Signal, PING, &[]),
            S::WrongType,
        ),
        attack("Wait on an endpoint", on(H::Wait, PING, &[]), S::WrongType),
        attack("Poll on an endpoint", on(H::Poll, PING, &[]), S::WrongType),
        attack(
            "IrqAck on an endpoint",
            on(H::IrqAck, PING, &[]),
            S::WrongType,
        ),
        attack(
            "LogRead on an endpoint",
            on(H::LogRead, PING, &[]),
            S::WrongType,
        ),
        attack(
            "PartitionStop on an endpoint",
            on(H::PartitionStop, PING, &[]),
            S::WrongType,
        ),
        attack(
            "PartitionRestart on an endpoint",
            on(H::PartitionRestart, PING, &[]),
            S::WrongType,
        ),
        attack(
            "SaveReply on an endpoint",
            on(H::SaveReply, PING, &[]),
            S::WrongType,
        ),
        attack(
            "ReplySaved on an endpoint",
            on(H::ReplySaved, PING, &[words(0)]),
            S::WrongType,
        ),
        attack(
            "Reply with no call in hand",
            on(H::Reply, 0, &[words(1), 7]),
            S::NoCaller,
        ),
        attack(
            "Call with 6 message words",
            on(H::Call, PING, &[words(6)]),
            S::InvalidArgument,
        ),
        attack(
            "Call with a reserved info bit",
            on(H::Call, PING, &[1 << 4]),
            S::InvalidArgument,
        ),
        attack(
            "Call moving a capability without grant",
            on(H::Call, PING, &[transfer]),
            S::NotGrantable,
        ),
        attack(
            "Derive without the derive right, widening rights",
            on(H::Derive, PING, &[0x3f, 3]),
            S::NoRights,
        ),
        attack(
            "Revoke an empty slot",
            on(H::Revoke, 9, &[]),
            S::InvalidCapability,
        ),
        attack(
            "Delete slot 2^64 - 1",
            on(H::Delete, u64::MAX, &[]),
            S::InvalidCapability,
        ),
        attack("Log 41 bytes", on(H::Log, 0, &[41]), S::InvalidArgument),
        attack(
            "Send with 7 message words",
            on(H::Send, PING, &[words(7)]),
            S::InvalidArgument,
        ),
        // Were the immediate ignored, these would be answered (the version),
        // reach pong (a call with one word) or give the core away.
        reserved(
            "svc #1 asking the version",
            Reserved::One,
            [id(H::Version), 0, 0, 0, 0, 0, 0, 0],
        ),
        reserved(
            "svc #1 calling ping",
            Reserved::One,
            on(H::Call, PING, &[words(1), 7]),
        ),
        reserved(
            "svc #0xffff yielding",
            Reserved::Max,
            [id(H::Yield), 0, 0, 0, 0, 0, 0, 0],
        ),
    ]
}

fn main(_start: svc_rt::Start) -> ! {
    let attacks = attacks();
    let mut surprises = 0;
    for a in &attacks {
        let out = match a.immediate {
            None => call::raw(a.regs),
            Some(immediate) => svc_rt::probe::svc_reserved(immediate, a.regs),
        };
        let got = Status::from_register(out[0]);
        // A refused call changes nothing but x0.
        if got != Some(a.expect) || out[1..] != a.regs[1..] {
            surprises += 1;
            svc_rt::println!(
                "hostile: SURPRISE: {}: expected {:?}, got x0 = {:#x} ({got:?}), x1..x7 = {:x?}",
                a.what,
                a.expect,
                out[0],
                &out[1..]
            );
        }
    }
    svc_rt::println!(
        "hostile: {} attacks refused as expected, {surprises} surprises",
        attacks.len() - surprises
    );
    svc_rt::println!("hostile: smc with PSCI SYSTEM_OFF");
    svc_rt::probe::smc(PSCI_SYSTEM_OFF);
    svc_rt::println!("hostile: the smc came back: firmware was reached");
    call::fault(0xba, &[])
}
