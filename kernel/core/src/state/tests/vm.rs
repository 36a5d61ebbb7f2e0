// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Virtual machines: exits to the monitor and its answers, the `Vcpu`
//! calls, virtual interrupts, WFI and SGIs, and what stopping either side
//! does to the other.

use hv_abi::hypercall::{Hypercall, Rights, Status};
use hv_abi::vm::{
    EXIT_ABORT, EXIT_HVC, EXIT_MMIO, EXIT_SMC, EXIT_SYSREG, RESUME_SET_RESULT,
    RESUME_WRITE_REGISTER, VcpuRunState, WRITE, exit_kind, exit_register, exit_size,
    sysreg_encoding,
};

use super::support::{Machine, Part, R, System, W, endpoint, fid, object, p, st, v};
use crate::cap::ReplyId;
use crate::state::{
    Access, Effect, EndpointSeed, ICC_SGI1R_EL1, Next, PartitionState, ReplySeed, VcpuState,
    VmEntry, VmExit, sgi_targets,
};
use hv_image::Object;

const C: Rights = Rights::CONTROL;

/// Core 0: the monitor (partition 0, vCPU 0, priority 10), which serves
/// endpoint 0, the guest's exits. Core 1: the guest (partition 1, vCPUs 1
/// and 2, priority 20) and a service (partition 2, vCPU 3, priority 10)
/// serving endpoint 1, which the guest may call.
///
/// The monitor's slots: 0 receives exits, 1 and 2 name the guest's vCPUs
/// with every right, 3 names vCPU 1 with READ only, 4 is a reply object.
fn system() -> System {
    // The guest's vCPUs 1 and 2 are its vCPUs 0 and 1.
    let vcpu = |i: u8, r: &[Rights]| {
        object(
            Object::Vcpu {
                partition: 1,
                vcpu: i - 1,
            },
            r,
        )
    };
    let monitor = Part::new(
        0b01,
        10,
        &[
            endpoint(0, &[R], 0),
            vcpu(1, &[R, W, C]),
            vcpu(2, &[R, W, C]),
            vcpu(1, &[R]),
            object(Object::Reply(ReplyId(0).number()), &[W]),
        ],
    );
    let guest = Part::new(0b10, 20, &[endpoint(1, &[W], 7)]).vcpus(2).vm(0);
    let service = Part::new(0b10, 10, &[endpoint(1, &[R], 0)]);
    let mut system = System::new(2, vec![monitor, guest, service], 2, 0);
    system.endpoints = vec![
        EndpointSeed { server: Some(p(0)) },
        EndpointSeed { server: Some(p(2)) },
    ];
    system.replies = vec![ReplySeed { owner: p(0) }];
    system
}

const ENTRY: u64 = 0x4020_0000;
const DTB: u64 = 0x4800_0000;

/// An ESR for a data abort from a lower level with a valid syndrome.
fn data_abort(write: bool, size_log2: u64, register: u64, sign: bool, wide: bool) -> u64 {
    (0x24 << 26)
        | (1 << 25)
        | (1 << 24)
        | (size_log2 << 22)
        | (u64::from(sign) << 21)
        | (register << 16)
        | (u64::from(wide) << 15)
        | (u64::from(write) << 6)
        | 0x07
}

/// An ESR for a trapped `msr` (write) or `mrs` of `encoding`'s register,
/// through general register `rt`.
fn sysreg(op0: u64, op1: u64, crn: u64, crm: u64, op2: u64, rt: u64, read: bool) -> u64 {
    (0x18 << 26)
        | (1 << 25)
        | (op0 << 20)
        | (op2 << 17)
        | (op1 << 14)
        | (crn << 10)
        | (rt << 5)
        | (crm << 1)
        | u64::from(read)
}

/// Boots, starts guest vCPU 1 at [`ENTRY`] with x0 = [`DTB`] and runs it
/// on core 1; the monitor runs on core 0.
fn started() -> Machine {
    let mut m = Machine::new(&system());
    assert_eq!(m.on(0), Some(v(0)));
    assert_eq!(m.on(1), Some(v(3)), "the guest's vCPUs start off");
    assert_eq!(m.state.vcpu_state(v(1)), Some(VcpuState::Off));
    let out = m.hvc(0, Hypercall::VcpuStart, &[1, ENTRY, DTB]);
    assert_eq!(m.status(0), Some(Status::Success));
    assert_eq!(out.kick, 0b10, "the guest outranks what core 1 runs");
    m.reschedule(1);
    assert_eq!(m.on(1), Some(v(1)));
    assert_eq!(m.regs[1], [DTB, 0, 0, 0, 0, 0, 0, 0]);
    let entry = m.state.take_vm_entry(v(1)).unwrap_or(VmEntry::NONE);
    assert_eq!(entry.start, Some(ENTRY));
    assert!(m.state.take_vm_entry(v(1)).is_none(), "taken once");
    m
}

/// The guest's vCPU on core 1 exits with `exit`; the monitor on core 0
/// takes the message (waiting for it already, or receiving it after it
/// queued), which is returned.
fn exit_to_monitor(m: &mut Machine, exit: VmExit) -> [u64; 8] {
    let guest = m.on(1).unwrap();
    let waiting = m.on(0).is_none();
    let out = m.step(1, |s, r| s.vm_exit(1, exit, r));
    assert_ne!(m.on(1), Some(guest), "the guest waits for its monitor");
    if waiting {
        assert_eq!(out.kick, 0b01);
        m.reschedule(0);
    } else {
        assert!(matches!(
            m.state.vcpu_state(guest),
            Some(VcpuState::ExitSending { .. })
        ));
        m.hvc(0, Hypercall::Recv, &[0]);
    }
    assert_eq!(
        m.state.vcpu_state(guest),
        Some(VcpuState::ExitReply { server: v(0) })
    );
    assert_eq!(m.on(0), Some(v(0)));
    m.regs[0]
}

#[test]
fn an_mmio_load_is_answered_into_its_register() {
    let mut m = started();
    m.regs[1] = [1, 2, 3, 4, 5, 6, 7, 8];
    // ldr w9, [x1] at an unmapped IPA.
    let esr = data_abort(false, 2, 9, false, false);
    assert_eq!(VmExit::source_register(esr), None);
    let exit = VmExit::describe(esr, 0x0900_0018, 0x0900_0018, 0x4020_1000, 0);
    assert!(exit.stepped);
    let msg = exit_to_monitor(&mut m, exit);
    assert_eq!(msg[..3], [0, 0, 5], "success, vCPU index 0, five words");
    assert_eq!(exit_kind(msg[3]), EXIT_MMIO);
    assert_eq!(msg[3] & WRITE, 0);
    assert_eq!(exit_size(msg[3]), 4);
    assert_eq!(exit_register(msg[3]), 9);
    assert_eq!(msg[4..], [0x0900_0018, 0, 0x4020_1000, esr]);
    // The monitor answers with a 64-bit value; a w register keeps 32 bits.
    m.hvc(
        0,
        Hypercall::ReplyRecv,
        &[0, 2, RESUME_WRITE_REGISTER, 0x1_2345_6789],
    );
    assert_eq!(m.on(0), None, "the monitor waits again");
    m.reschedule(1);
    assert_eq!(m.on(1), Some(v(1)));
    assert_eq!(m.regs[1], [1, 2, 3, 4, 5, 6, 7, 8], "x0..x7 untouched");
    let entry = m.state.take_vm_entry(v(1)).unwrap_or(VmEntry::NONE);
    assert_eq!(entry.write, Some((9, 0x2345_6789)));
}

#[test]
fn loads_into_low_registers_narrow_and_extend() {
    let mut m = started();
    // ldrsb x3, [x0]: a byte, sign-extended to 64 bits.
    let esr = data_abort(false, 0, 3, true, true);
    let exit = VmExit::describe(esr, 0, 0x0a00_0000, 0, 0);
    exit_to_monitor(&mut m, exit);
    m.hvc(0, Hypercall::Reply, &[0, 2, RESUME_WRITE_REGISTER, 0x1280]);
    assert_eq!(m.status(0), Some(Status::Success));
    m.reschedule(1);
    assert_eq!(m.regs[1][3], 0xffff_ffff_ffff_ff80);
    assert!(m.state.take_vm_entry(v(1)).is_none());
    for (access, value, expected) in [
        ((1, false, false), 0xffff_8001, 0x8001),
        ((1, true, false), 0x8001, 0xffff_8001),
        ((2, true, true), 0x8000_0000, 0xffff_ffff_8000_0000),
        ((3, false, true), u64::MAX, u64::MAX),
        ((3, false, false), u64::MAX, 0xffff_ffff),
    ] {
        let (size_log2, sign_extend, sixty_four) = access;
        let access = Access {
            register: 0,
            size_log2,
            sign_extend,
            sixty_four,
        };
        assert_eq!(access.complete(value), expected, "{access:?}");
    }
}

#[test]
fn an_mmio_store_carries_its_value_masked_to_its_size() {
    let mut m = started();
    // strh w2, [x1]
    let esr = data_abort(true, 1, 2, false, false);
    assert_eq!(VmExit::source_register(esr), Some(2));
    let exit = VmExit::describe(esr, 0, 0x0800_0004, 0x4000_0010, 0xdead_beef);
    assert_eq!(exit.access, None);
    let msg = exit_to_monitor(&mut m, exit);
    assert_eq!(msg[3] & WRITE, WRITE);
    assert_eq!(exit_size(msg[3]), 2);
    assert_eq!(msg[5], 0xbeef);
    // Answering a store with a value writes nothing.
    m.hvc(0, Hypercall::Reply, &[0, 2, RESUME_WRITE_REGISTER, 7]);
    m.reschedule(1);
    assert!(m.state.take_vm_entry(v(1)).is_none());
}

#[test]
fn system_registers_smc_and_aborts_are_described() {
    // mrs x20, PMCR_EL0 (S3_3_C9_C12_0): a read through x20.
    let esr = sysreg(3, 3, 9, 12, 0, 20, true);
    assert_eq!(VmExit::source_register(esr), None);
    let exit = VmExit::describe(esr, 0, 0, 0x4000_0000, 0);
    assert_eq!(exit.words[0], EXIT_SYSREG | 20 << 16);
    assert_eq!(exit.words[1], sysreg_encoding(3, 3, 9, 12, 0));
    assert_eq!(
        exit.access.map(|a| (a.register, a.size_log2)),
        Some((20, 3))
    );
    // msr OSLAR_EL1, x0 (S2_0_C1_C0_4): a write.
    let esr = sysreg(2, 0, 1, 0, 4, 0, false);
    assert_eq!(VmExit::source_register(esr), Some(0));
    let exit = VmExit::describe(esr, 0, 0, 0, 5);
    assert_eq!(
        exit.words[..3],
        [EXIT_SYSREG | WRITE, sysreg_encoding(2, 0, 1, 0, 4), 5]
    );
    assert_eq!(exit.access, None);
    // ICC_SGI1R_EL1 is recognised by its encoding.
    let esr = sysreg(3, 0, 12, 11, 5, 1, false);
    assert_eq!(VmExit::describe(esr, 0, 0, 0, 0).words[1], ICC_SGI1R_EL1);
    // An instruction abort is not stepped over.
    let esr = (0x20 << 26) | (1 << 25) | 0x06;
    let exit = VmExit::describe(esr, 0x1234, 0x9000_0000, 0x9000_0000, 0);
    assert_eq!(
        exit.words,
        [EXIT_ABORT, 0x9000_0000, 0x1234, 0x9000_0000, esr]
    );
    assert!(!exit.stepped);
    // A data abort without a syndrome, and one on a stage-1 walk, too.
    let esr = data_abort(false, 2, 1, false, false) & !(1 << 24);
    assert_eq!(VmExit::describe(esr, 0, 0, 0, 0).words[0], EXIT_ABORT);
    let esr = data_abort(false, 2, 1, false, false) | (1 << 7);
    assert_eq!(VmExit::describe(esr, 0, 0, 0, 0).words[0], EXIT_ABORT);
    // An SMC: its arguments are filled in from x0..x3 by the step.
    let mut m = started();
    m.regs[1] = [0x8400_0000, 1, 2, 3, 4, 5, 6, 7];
    let esr = (0x17 << 26) | (1 << 25);
    let msg = exit_to_monitor(&mut m, VmExit::describe(esr, 0, 0, 0, 0));
    assert_eq!(msg[3..], [EXIT_SMC, 0x8400_0000, 1, 2, 3]);
}

#[test]
fn a_reserved_hvc_immediate_reaches_no_monitor() {
    // `hvc #1` with PSCI CPU_ON in x0: refused, not an exit for the monitor.
    let mut m = started();
    m.hvc(0, Hypercall::Recv, &[0]);
    let regs = [0xC400_0003, 1, 0x4020_0100, 0x77, 0, 0, 0, 0];
    m.regs[1] = regs;
    m.step(1, |s, r| s.reserved_call(1, r));
    assert_eq!(m.status(1), Some(Status::NotSupported));
    assert_eq!(m.regs[1][1..], regs[1..]);
    assert_eq!(m.on(1), Some(v(1)));
    assert_eq!(
        m.state.vcpu_state(v(0)),
        Some(VcpuState::Receiving {
            endpoint: crate::cap::EndpointId(0),
            accept: crate::state::ReceiveSlot::NONE,
        })
    );
}

#[test]
fn psci_through_hvc_reaches_the_monitor_which_starts_another_vcpu() {
    let mut m = started();
    m.hvc(0, Hypercall::Recv, &[0]);
    // CPU_ON(target 1, entry, context).
    let out = m.hvc(1, Hypercall::Version, &[]);
    assert_eq!(
        out.next,
        Next::Continue,
        "Bulkhead's own calls are answered"
    );
    m.regs[1] = [0xC400_0003, 1, 0x4020_0100, 0x77, 0, 0, 0, 0];
    let regs = m.regs[1];
    m.raw(1, regs);
    assert_eq!(
        m.state.vcpu_state(v(1)),
        Some(VcpuState::ExitReply { server: v(0) })
    );
    m.reschedule(0);
    let msg = m.regs[0];
    assert_eq!(msg[3..], [EXIT_HVC, 0xC400_0003, 1, 0x4020_0100, 0x77]);
    m.hvc(0, Hypercall::VcpuStart, &[2, 0x4020_0100, 0x77]);
    assert_eq!(m.status(0), Some(Status::Success));
    assert_eq!(m.state.vcpu_state(v(2)), Some(VcpuState::Ready));
    m.hvc(0, Hypercall::Reply, &[0, 5, RESUME_SET_RESULT, 0, 9, 9, 9]);
    // Both guest vCPUs share core 1 at the guest's priority: the one started
    // first runs first.
    m.reschedule(1);
    assert_eq!(m.on(1), Some(v(2)));
    assert_eq!(m.regs[1][0], 0x77);
    assert_eq!(
        m.state.take_vm_entry(v(2)).unwrap_or(VmEntry::NONE).start,
        Some(0x4020_0100)
    );
    m.tick(1);
    assert_eq!(m.on(1), Some(v(1)));
    assert_eq!(m.regs[1][..4], [0, 9, 9, 9]);
}

#[test]
fn a_queued_exit_waits_for_the_monitor_to_receive_it() {
    let mut m = Machine::new(&system());
    m.hvc(0, Hypercall::VcpuStart, &[1, ENTRY, DTB]);
    m.reschedule(1);
    // The monitor does not wait yet: the exit queues.
    let exit = VmExit::describe(data_abort(false, 3, 0, false, true), 0, 0x0900_0000, 0, 0);
    m.step(1, |s, r| s.vm_exit(1, exit, r));
    assert_eq!(
        m.state.vcpu_state(v(1)),
        Some(VcpuState::ExitSending {
            endpoint: crate::cap::EndpointId(0)
        })
    );
    m.hvc(0, Hypercall::Recv, &[0]);
    assert_eq!(m.on(0), Some(v(0)), "the message was there");
    assert_eq!(m.regs[0][3], EXIT_MMIO | 3 << 9);
    assert_eq!(m.regs[0][4], 0x0900_0000);
    // A reply object cannot keep an exit.
    m.hvc(0, Hypercall::SaveReply, &[4]);
    assert_eq!(m.status(0), Some(Status::InvalidArgument));
    m.hvc(0, Hypercall::Reply, &[0, 2, RESUME_WRITE_REGISTER, 0x55]);
    m.reschedule(1);
    assert_eq!(m.regs[1][0], 0x55);
}

#[test]
fn wfi_halts_until_an_interrupt_and_injection_wakes() {
    let mut m = started();
    // Pending in the list registers: WFI does not halt.
    let out = m.step(1, |s, r| s.vm_halt(1, true, r));
    assert_eq!(out.next, Next::Continue);
    m.step(1, |s, r| s.vm_halt(1, false, r));
    assert_eq!(m.state.vcpu_state(v(1)), Some(VcpuState::Halted));
    assert_eq!(m.on(1), Some(v(3)));
    let out = m.hvc(0, Hypercall::VcpuStatus, &[1]);
    assert_eq!(out.next, Next::Continue);
    assert_eq!(m.regs[0][1], VcpuRunState::Halted as u64);
    // The monitor makes the UART's SPI pending: the vCPU wakes.
    let fresh = &mut m;
    let out = fresh.hvc(0, Hypercall::VcpuInject, &[1, 33]);
    assert_eq!(fresh.status(0), Some(Status::Success));
    assert_eq!(out.kick, 0b10);
    fresh.reschedule(1);
    assert_eq!(fresh.on(1), Some(v(1)));
    let entry = fresh.state.take_vm_entry(v(1)).unwrap_or(VmEntry::NONE);
    assert_eq!(entry.irqs[0], 1 << 33);
    // Injecting into a running vCPU on another core kicks that core, and a
    // WFI with an interrupt pending in the state does not halt.
    let out = fresh.hvc(0, Hypercall::VcpuInject, &[1, 40]);
    assert_eq!(out.kick, 0b10);
    let out = fresh.step(1, |s, r| s.vm_halt(1, false, r));
    assert_eq!(out.next, Next::Continue);
    assert_eq!(
        fresh
            .state
            .take_vm_entry(v(1))
            .unwrap_or(VmEntry::NONE)
            .irqs[0],
        1 << 40
    );
    // Bad interrupts are refused, and the virtual timer's is the kernel's.
    for bad in [256, 1023, 33 | 1 << 24, 27] {
        fresh.hvc(0, Hypercall::VcpuInject, &[1, bad]);
        assert_eq!(fresh.status(0), Some(Status::InvalidArgument), "{bad}");
    }
}

#[test]
fn the_virtual_timer_wakes_a_halted_vcpu() {
    let mut m = started();
    m.step(1, |s, r| s.vm_halt(1, false, r));
    assert_eq!(m.on(1), Some(v(3)));
    let out = m.step(1, |s, r| s.vm_timer(1, 1 << 1, r));
    assert!(matches!(out.next, Next::Switch { to, .. } if to == v(1)));
    // On a running vCPU it changes nothing.
    let out = m.step(1, |s, r| s.vm_timer(1, 1 << 1, r));
    assert_eq!(out.next, Next::Continue);
}

#[test]
fn sgis_reach_the_vcpus_the_guest_names() {
    assert_eq!(sgi_targets(0b10 | 3 << 24, 2, 0), 0b10);
    assert_eq!(sgi_targets(0b1111, 2, 0), 0b11, "only vCPUs that exist");
    assert_eq!(sgi_targets(1 << 40, 4, 2), 0b1011, "IRM: all but itself");
    assert_eq!(sgi_targets(0b1 | 1 << 16, 2, 0), 0, "Aff1 names nobody");
    assert_eq!(sgi_targets(0b1 | 1 << 44, 2, 0), 0, "RS names nobody");
    let mut m = started();
    m.hvc(0, Hypercall::VcpuStart, &[2, ENTRY, 0]);
    m.reschedule(1);
    assert_eq!(m.on(1), Some(v(1)));
    m.step(1, |s, r| s.vm_sgi(1, 0b10 | 5 << 24, r));
    let entry = m.state.take_vm_entry(v(2)).unwrap_or(VmEntry::NONE);
    assert_eq!(entry.irqs[0], 1 << 5);
    assert_eq!(entry.sgi_sources[5], 0b01, "from vCPU 0 of the guest");
    // A halted target wakes.
    m.tick(1);
    assert_eq!(m.on(1), Some(v(2)));
    m.step(1, |s, r| s.vm_halt(1, false, r));
    assert_eq!(m.on(1), Some(v(1)));
    m.step(1, |s, r| s.vm_sgi(1, 0b10 | 1 << 24, r));
    assert_eq!(m.state.vcpu_state(v(2)), Some(VcpuState::Ready));
}

#[test]
fn the_guest_talks_to_services_over_ipc() {
    let mut m = started();
    // The service waits on endpoint 1; the guest (priority 20) calls it.
    m.step(1, |s, r| s.vm_halt(1, false, r));
    m.hvc(1, Hypercall::Recv, &[0]);
    assert_eq!(m.on(1), None);
    m.hvc(0, Hypercall::VcpuInject, &[1, 1]);
    m.reschedule(1);
    assert_eq!(m.on(1), Some(v(1)));
    m.hvc(1, Hypercall::Call, &[0, 1, 42]);
    assert_eq!(m.on(1), Some(v(3)));
    assert_eq!(m.regs[1][..4], [0, 7, 1, 42]);
    m.hvc(1, Hypercall::ReplyRecv, &[0, 1, 43]);
    assert_eq!(m.on(1), Some(v(1)));
    assert_eq!(m.regs[1][..4], [0, 0, 1, 43], "an ordinary reply to a call");
}

#[test]
fn stopping_a_vcpu_withdraws_its_exit_and_its_interrupts() {
    let mut m = started();
    let exit = VmExit::describe(data_abort(false, 2, 0, false, false), 0, 0x0900_0000, 0, 0);
    exit_to_monitor(&mut m, exit);
    m.hvc(0, Hypercall::VcpuInject, &[1, 40]);
    m.hvc(0, Hypercall::VcpuStop, &[1]);
    assert_eq!(m.status(0), Some(Status::Success));
    assert_eq!(m.state.vcpu_state(v(1)), Some(VcpuState::Off));
    assert_eq!(m.state.caller_of(v(0)), None);
    assert!(m.state.take_vm_entry(v(1)).is_none());
    m.hvc(0, Hypercall::Reply, &[0, 0]);
    assert_eq!(m.status(0), Some(Status::NoCaller));
    // Stopping it again changes nothing; starting it works.
    m.hvc(0, Hypercall::VcpuStop, &[1]);
    assert_eq!(m.status(0), Some(Status::Success));
    m.hvc(0, Hypercall::VcpuStart, &[1, ENTRY, 5]);
    assert_eq!(m.status(0), Some(Status::Success));
    // A running vCPU on another core is taken off it.
    m.reschedule(1);
    assert_eq!(m.on(1), Some(v(1)));
    let out = m.hvc(0, Hypercall::VcpuStop, &[1]);
    assert_eq!(out.kick, 0b10);
    assert_eq!(m.state.current(1), None);
    m.reschedule(1);
    assert_eq!(m.on(1), Some(v(3)));
}

#[test]
fn vcpu_calls_check_rights_and_states() {
    let mut m = started();
    m.hvc(0, Hypercall::VcpuStart, &[3, ENTRY, 0]);
    assert_eq!(m.status(0), Some(Status::NoRights));
    m.hvc(0, Hypercall::VcpuInject, &[3, 33]);
    assert_eq!(m.status(0), Some(Status::NoRights));
    m.hvc(0, Hypercall::VcpuStart, &[1, ENTRY, 0]);
    assert_eq!(m.status(0), Some(Status::InvalidArgument), "it is not off");
    m.hvc(0, Hypercall::VcpuStatus, &[0]);
    assert_eq!(m.status(0), Some(Status::WrongType));
    m.hvc(0, Hypercall::VcpuStatus, &[3]);
    assert_eq!(m.regs[0][..2], [0, VcpuRunState::Running as u64]);
    // Registers only while it is off or in an exit.
    m.hvc(0, Hypercall::VcpuRead, &[1, 0]);
    assert_eq!(m.status(0), Some(Status::Busy));
    m.regs[1] = [10, 11, 12, 13, 14, 15, 16, 17];
    let exit = VmExit::describe(data_abort(false, 2, 0, false, false), 0, 0x0900_0000, 0, 0);
    exit_to_monitor(&mut m, exit);
    m.hvc(0, Hypercall::VcpuRead, &[1, 5]);
    assert_eq!(m.regs[0][..2], [0, 15]);
    m.hvc(0, Hypercall::VcpuWrite, &[1, 6, 99]);
    assert_eq!(m.status(0), Some(Status::Success));
    m.hvc(0, Hypercall::VcpuRead, &[1, 31]);
    assert_eq!(
        m.status(0),
        Some(Status::InvalidArgument),
        "x31 is no register"
    );
    m.hvc(0, Hypercall::VcpuWrite, &[3, 6, 1]);
    assert_eq!(m.status(0), Some(Status::NoRights));
    // Registers past x7 are the glue's.
    let out = m.hvc(0, Hypercall::VcpuRead, &[1, 30]);
    assert_eq!(
        out.effect,
        Some(Effect::VcpuRegister {
            vcpu: v(1),
            register: 30,
            write: None
        })
    );
    let out = m.hvc(0, Hypercall::VcpuWrite, &[1, 32, ENTRY]);
    assert_eq!(
        out.effect,
        Some(Effect::VcpuRegister {
            vcpu: v(1),
            register: 32,
            write: Some(ENTRY)
        })
    );
    m.hvc(0, Hypercall::Reply, &[0, 0]);
    m.reschedule(1);
    assert_eq!(m.regs[1][5..7], [15, 99]);
}

#[test]
fn a_monitor_that_stops_turns_its_guest_off_and_a_guest_restart_leaves_it_off() {
    let mut m = started();
    // vCPU 1 in an exit the monitor holds; vCPU 2 queued with its own exit.
    let exit = VmExit::describe(data_abort(false, 2, 0, false, false), 0, 0x0900_0000, 0, 0);
    exit_to_monitor(&mut m, exit);
    m.hvc(0, Hypercall::VcpuStart, &[2, ENTRY, 0]);
    m.reschedule(1);
    assert_eq!(m.on(1), Some(v(2)));
    m.step(1, |s, r| s.vm_exit(1, exit, r));
    assert!(matches!(
        m.state.vcpu_state(v(2)),
        Some(VcpuState::ExitSending { .. })
    ));
    // The monitor faults.
    m.step(0, |s, r| {
        s.fault(0, hv_abi::hypercall::StopReason::Exception, r)
    });
    assert_eq!(m.state.partition_state(p(0)), Some(PartitionState::Stopped));
    for guest in [v(1), v(2)] {
        assert_eq!(m.state.vcpu_state(guest), Some(VcpuState::Off), "{guest:?}");
    }
    // With its monitor down, a started vCPU's exit turns it off at once.
    let mut m = started();
    m.hvc(0, Hypercall::VcpuStart, &[2, ENTRY, 0]);
    let out = m.step(0, |s, r| {
        s.fault(0, hv_abi::hypercall::StopReason::Exception, r)
    });
    assert_eq!(out.next, Next::Idle { from: None });
    m.tick(1);
    let guest = m.on(1).unwrap();
    assert!(m.state.is_vm(guest));
    m.step(1, |s, r| s.vm_exit(1, exit, r));
    assert_eq!(m.state.vcpu_state(guest), Some(VcpuState::Off));

    // A guest partition restarted (by its policy or a controller) comes
    // back with its vCPUs off, for its monitor to start.
    let mut system = system();
    system.parts[1] = system.parts[1].clone().restart();
    let mut m = Machine::new(&system);
    m.hvc(0, Hypercall::VcpuStart, &[1, ENTRY, DTB]);
    m.hvc(0, Hypercall::VcpuInject, &[1, 33]);
    m.reschedule(1);
    let out = m.step(1, |s, r| {
        s.fault(1, hv_abi::hypercall::StopReason::Exception, r)
    });
    assert!(matches!(out.effect, Some(Effect::Restart { .. })));
    assert!(m.state.take_vm_entry(v(1)).is_none());
    m.state.restart_done(p(1));
    m.state.check_invariants().unwrap();
    assert_eq!(m.state.vcpu_state(v(1)), Some(VcpuState::Off));
    assert_eq!(m.state.vcpu_state(v(2)), Some(VcpuState::Off));
}

#[test]
fn only_virtual_machines_have_vcpu_capabilities_and_exits() {
    // A Vcpu capability naming a service's vCPU is refused at boot.
    let mut system = system();
    system.parts[0].caps.push(object(
        Object::Vcpu {
            partition: 2,
            vcpu: 0,
        },
        &[R],
    ));
    assert!(system.with_seed(crate::state::KernelState::new).is_err());
    // Two virtual machines cannot share an exit endpoint.
    let mut system = super::vm::system();
    let twin = system.parts[1].clone();
    system.parts.push(twin);
    assert!(system.with_seed(crate::state::KernelState::new).is_err());
    // A service's WFI and exits only reschedule.
    let mut m = Machine::new(&super::vm::system());
    let out = m.step(0, |s, r| s.vm_halt(0, false, r));
    assert_eq!(out.next, Next::Continue);
    let exit = VmExit::call(EXIT_HVC, &[0; 8]);
    m.step(0, |s, r| s.vm_exit(0, exit, r));
    assert_eq!(m.on(0), Some(v(0)));
    // A service's unknown hypercall is refused, not sent anywhere.
    m.raw(0, [0xC400_0003, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(m.regs[0][0], st(Status::NotSupported));
    assert_eq!(
        VmEntry::NONE,
        m.state.take_vm_entry(v(0)).unwrap_or(VmEntry::NONE)
    );
}

#[test]
fn a_monitor_on_its_guests_core_answers_exits_on_the_fast_path() {
    // One core: the monitor (vCPU 0, priority 10) and the guest (vCPU 1,
    // priority 20).
    let monitor = Part::new(
        0b1,
        10,
        &[
            endpoint(0, &[R], 0),
            object(
                Object::Vcpu {
                    partition: 1,
                    vcpu: 0,
                },
                &[R, W, C],
            ),
        ],
    );
    let guest = Part::new(0b1, 20, &[]).vm(0);
    let mut system = System::new(1, vec![monitor, guest], 1, 0);
    system.endpoints = vec![EndpointSeed { server: Some(p(0)) }];
    let mut m = Machine::new(&system);
    assert_eq!(m.on(0), Some(v(0)));
    m.hvc(0, Hypercall::VcpuStart, &[1, ENTRY, DTB]);
    assert_eq!(m.on(0), Some(v(1)), "the guest outranks its monitor");
    let read = VmExit::describe(
        data_abort(false, 2, 0, false, false),
        0x0900_0018,
        0x0900_0018,
        ENTRY,
        0,
    );
    // The first exit waits for the monitor to receive it.
    m.step(0, |s, r| s.vm_exit(0, read, r));
    assert_eq!(m.on(0), Some(v(0)));
    m.hvc(0, Hypercall::Recv, &[0]);
    for round in 0..2 {
        assert_eq!(
            m.state.vcpu_state(v(1)),
            Some(VcpuState::ExitReply { server: v(0) })
        );
        let answer = [
            fid(Hypercall::ReplyRecv),
            0,
            2,
            RESUME_WRITE_REGISTER,
            0x30 + round,
            0,
            0,
            0,
        ];
        let mut regs = answer;
        assert!(m.state.clone().fast_path(0, &mut regs).is_some(), "{round}");
        m.raw(0, answer);
        assert_eq!(m.on(0), Some(v(1)), "straight back to the guest");
        assert_eq!(m.regs[0][0], 0x30 + round, "the load's result in x0");
        // The next exit goes straight to the waiting monitor, on the fast
        // path, which does what the general path does.
        let mut regs = m.regs[0];
        assert!(m.state.clone().vm_exit_fast(0, &read, &mut regs).is_some());
        let mut general = m.state.clone();
        let mut general_regs = m.regs[0];
        let expected = general.vm_exit_general(0, read, &mut general_regs);
        let out = m.step(0, |s, r| s.vm_exit(0, read, r));
        assert_eq!((out, m.regs[0]), (expected, general_regs));
        assert!(*m.state == *general);
        assert_eq!(m.on(0), Some(v(0)));
        assert_eq!(exit_kind(m.regs[0][3]), EXIT_MMIO);
    }
}

#[test]
fn a_passed_through_interrupt_wakes_its_guest_or_waits_for_its_entry() {
    let mut m = started();
    m.state.pass_through(34);
    m.state.pass_through(35);
    m.step(1, |s, r| s.vm_halt(1, false, r));
    assert_eq!(m.state.vcpu_state(v(1)), Some(VcpuState::Halted));
    // Taken on core 0 (where the SPI was routed): the halted vCPU on core
    // 1 is made ready, and core 1 kicked.
    let mut regs = m.regs[0];
    let out = m.state.vm_interrupt(0, v(1), 34, &mut regs).unwrap();
    assert_eq!(out.kick, 0b10);
    m.reschedule(1);
    assert_eq!(m.on(1), Some(v(1)));
    let entry = m.state.take_vm_entry(v(1)).unwrap_or(VmEntry::NONE);
    assert_eq!(entry.irqs[0], 1 << 34);
    // Taken on the guest's own core while it runs: no kick, it carries on
    // and finds it at its next entry.
    let mut regs = m.regs[1];
    let out = m.state.vm_interrupt(1, v(1), 35, &mut regs).unwrap();
    assert_eq!((out.kick, out.next), (0, Next::Continue));
    let entry = m.state.take_vm_entry(v(1)).unwrap_or(VmEntry::NONE);
    assert_eq!(entry.irqs[0], 1 << 35);
    // Not passed through, not a guest's vCPU, or a vCPU that is off: nobody
    // takes it, and nothing changes.
    for (vcpu, intid) in [(1, 36), (3, 34), (2, 34)] {
        let before = m.state.clone();
        let mut regs = m.regs[1];
        assert!(m.state.vm_interrupt(1, v(vcpu), intid, &mut regs).is_none());
        assert!(*m.state == *before, "{vcpu} {intid}");
    }
    // A monitor may not inject it: only the kernel links it.
    m.hvc(0, Hypercall::VcpuInject, &[1, 34]);
    assert_eq!(m.status(0), Some(Status::InvalidArgument));
    m.state.check_invariants().unwrap();
}
