// SPDX-License-Identifier: Apache-2.0 OR MIT
// Entering and leaving partitions.
//
// TPIDR_EL2 points at this core's PerCpu, whose first field is the Context of
// the vCPU running on it. A vector entry for a lower exception level pushes
// x0/x1 on the kernel stack, puts the vector index in x0 and comes to
// hv_lower_common, which saves the partition's registers straight into that
// Context and calls the kernel's vcpu::lower_entry(&mut PerCpu, index),
// by its name hv_exit_entry (which `install_exits!` defines). That ends in
// hv_enter_current (or, after the IPC fast path, hv_enter_message), which
// resets the kernel stack and erets into whatever
// Context is current now: the same vCPU, or another one the kernel switched to.
//
// The synchronous vector comes through hv_lower_sync first: it answers the
// null hypercall without saving anything, and gives other hypercalls their
// own index (`hypercall`), so the kernel need not decode ESR_EL2 for them.
//
// `Call` and `ReplyRecv` with a plain message info (x2 no more than
// MESSAGE_WORDS) are the IPC fast path's candidates: hv_lower_sync sends
// them to hv_lower_ipc, which saves the same way and calls the kernel's
// vcpu::ipc_entry (as hv_ipc_entry) with 0 for `Call`, 1 for `ReplyRecv`.
//
// Operands (from vcpu.rs): current, stack_top (PerCpu offsets), sp_el0,
// spsr (Context offsets; elr follows sp_el0 and tpidr_el0 follows spsr),
// hypercall and synchronous (the indices), and the null hypercall's function ID
// (version_high: its low 16 bits are zero) and answer (abi_version), `Call`'s
// distance from it (call_offset: `ReplyRecv` is the next) and
// message_words, from hv-abi.

// Saves x8..x30, SP_EL0, ELR_EL2, SPSR_EL2 and TPIDR_EL0 into the Context at
// x1, then calls the function \fn with this core's
// PerCpu and x0 as it came in (an index or argument). Never returns.
.macro SAVE_REST_AND_CALL fn
    stp     x8, x9, [x1, #64]
    stp     x10, x11, [x1, #80]
    stp     x12, x13, [x1, #96]
    stp     x14, x15, [x1, #112]
    stp     x16, x17, [x1, #128]
    stp     x18, x19, [x1, #144]
    stp     x20, x21, [x1, #160]
    stp     x22, x23, [x1, #176]
    stp     x24, x25, [x1, #192]
    stp     x26, x27, [x1, #208]
    stp     x28, x29, [x1, #224]
    str     x30, [x1, #240]
    mrs     x2, sp_el0
    mrs     x3, elr_el2
    stp     x2, x3, [x1, #{sp_el0}]
    mrs     x2, spsr_el2
    mrs     x3, tpidr_el0
    stp     x2, x3, [x1, #{spsr}]
    mov     x1, x0
    mrs     x0, tpidr_el2
    bl      \fn                         // never returns
.endm

// Resets the kernel stack, puts this core's PerCpu in x9 and its current
// Context in x8, and loads SP_EL0, ELR_EL2, SPSR_EL2, TPIDR_EL0 and x10..x30
// from that Context (x2 and x3 are used on the way).
.macro RESTORE_REST
    mrs     x9, tpidr_el2
    ldr     x10, [x9, #{stack_top}]
    mov     sp, x10
    ldr     x8, [x9, #{current}]
    ldp     x2, x3, [x8, #{sp_el0}]
    msr     sp_el0, x2
    msr     elr_el2, x3
    ldp     x2, x3, [x8, #{spsr}]
    msr     spsr_el2, x2
    msr     tpidr_el0, x3
    ldp     x10, x11, [x8, #80]
    ldp     x12, x13, [x8, #96]
    ldp     x14, x15, [x8, #112]
    ldp     x16, x17, [x8, #128]
    ldp     x18, x19, [x8, #144]
    ldp     x20, x21, [x8, #160]
    ldp     x22, x23, [x8, #176]
    ldp     x24, x25, [x8, #192]
    ldp     x26, x27, [x8, #208]
    ldp     x28, x29, [x8, #224]
    ldr     x30, [x8, #240]
.endm

.section .text, "ax"
.global hv_lower_sync
.balign 4
hv_lower_sync:
    // The caller's x0/x1 are on the stack and still in x0/x1. A hypercall
    // is an SVC #0 (from EL0) or an HVC #0 (from EL1). Rotated right by
    // 25, ESR_EL2 puts IL in bit 0 and the class in bits 6:1, and the
    // immediate (ISS bits 15:0, the rest of the ISS and ISS2 being zero for
    // these classes) above them: one test checks class and immediate at
    // once, so an `svc #n` or `hvc #n` with n != 0 is not a hypercall
    // (it goes the general way, as index 8, and is refused there).
    mrs     x1, esr_el2
    ror     x1, x1, #25
    sub     x1, x1, #{svc_zero}         // 0 for SVC #0, 2 for HVC #0
    tst     x1, #0xfffffffffffffffd
    b.ne    2f
    // The null hypercall (Version) reads no kernel state, so it is answered
    // here, before any register is saved: x0 = Success, x1 = the ABI
    // version, everything else untouched.
    movz    x1, #{version_high}, lsl #16
    cmp     x0, x1
    b.ne    3f
    add     sp, sp, #16
    mov     x0, xzr
    mov     x1, #{abi_version}
    eret
    // `Call` (x1 = 0 below) or `ReplyRecv` (1) with x2 <= message_words:
    // the fast path's. The `ccmp` makes any other x1 look like a long
    // message.
3:  sub     x1, x0, x1
    sub     x1, x1, #{call_offset}
    cmp     x1, #1
    ccmp    x2, #{message_words}, #2, ls
    b.hi    4f
    mov     x0, x1
    b       hv_lower_ipc
2:  mov     x0, #{synchronous}
    b       hv_lower_common
4:  mov     x0, #{hypercall}

.global hv_lower_common
hv_lower_common:
    mrs     x1, tpidr_el2
    ldr     x1, [x1, #{current}]
    stp     x2, x3, [x1, #16]
    stp     x4, x5, [x1, #32]
    stp     x6, x7, [x1, #48]
    ldp     x2, x3, [sp], #16
    stp     x2, x3, [x1, #0]
    SAVE_REST_AND_CALL hv_exit_entry

// The IPC fast path's candidates: x0..x7 (the message) go to this core's
// message (the 64 bytes before its PerCpu), not the Context, so that the
// kernel can hand them on without a copy; the rest as above.
hv_lower_ipc:
    mrs     x1, tpidr_el2
    stp     x2, x3, [x1, #{message_2}]
    stp     x4, x5, [x1, #{message_4}]
    stp     x6, x7, [x1, #{message_6}]
    ldp     x2, x3, [sp], #16
    stp     x2, x3, [x1, #{message}]
    ldr     x1, [x1, #{current}]
    SAVE_REST_AND_CALL hv_ipc_entry

.global hv_enter_current
hv_enter_current:
    RESTORE_REST
    ldp     x0, x1, [x8, #0]
    ldp     x2, x3, [x8, #16]
    ldp     x4, x5, [x8, #32]
    ldp     x6, x7, [x8, #48]
    ldp     x8, x9, [x8, #64]
    eret

// As hv_enter_current, but x0..x7 come from this core's message (the IPC
// fast path's answer), not the Context.
.global hv_enter_message
hv_enter_message:
    RESTORE_REST
    ldp     x0, x1, [x9, #{message}]
    ldp     x2, x3, [x9, #{message_2}]
    ldp     x4, x5, [x9, #{message_4}]
    ldp     x6, x7, [x9, #{message_6}]
    ldp     x8, x9, [x8, #64]
    eret
