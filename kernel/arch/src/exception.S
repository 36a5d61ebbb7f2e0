// SPDX-License-Identifier: Apache-2.0 OR MIT
// The EL2 exception vector table.
//
// Sixteen entries of 0x80 bytes: current EL with SP_EL0, current EL with
// SP_ELx, lower EL AArch64, lower EL AArch32 x synchronous, IRQ, FIQ,
// SError. Each entry makes room for a Frame on the stack, saves x0/x1, puts
// its index in x0 and joins hv_exception_common, which saves the rest of the
// frame, calls exception::exception_entry(&mut Frame, index) and restores
// everything (the handler may have changed it) before ERET.
//
// Operands (from exception.rs): frame_size, elr, esr, sp byte
// offsets into Frame, and handler.

.macro HV_VECTOR index
.balign 0x80
    sub     sp, sp, #{frame_size}
    stp     x0, x1, [sp, #0]
    mov     x0, #\index
    b       hv_exception_common
.endm

.macro HV_LOWER_VECTOR index
.balign 0x80
    stp     x0, x1, [sp, #-16]!
    mov     x0, #\index
    b       hv_lower_common
.endm

// A synchronous exception from a partition: most are hypercalls, which
// hv_lower_sync tells apart before anything else is done.
.macro HV_LOWER_SYNC_VECTOR
.balign 0x80
    stp     x0, x1, [sp, #-16]!
    b       hv_lower_sync
.endm

.section .text.vectors, "ax"
.balign 0x800
.global hv_exception_vectors
hv_exception_vectors:
    HV_VECTOR 0
    HV_VECTOR 1
    HV_VECTOR 2
    HV_VECTOR 3
    HV_VECTOR 4
    HV_VECTOR 5
    HV_VECTOR 6
    HV_VECTOR 7
    HV_LOWER_SYNC_VECTOR
    HV_LOWER_VECTOR 9
    HV_LOWER_VECTOR 10
    HV_LOWER_VECTOR 11
    HV_VECTOR 12
    HV_VECTOR 13
    HV_VECTOR 14
    HV_VECTOR 15

.balign 4
hv_exception_common:
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    str     x30, [sp, #240]
    mrs     x2, elr_el2
    mrs     x3, spsr_el2
    stp     x2, x3, [sp, #{elr}]
    mrs     x2, esr_el2
    mrs     x3, far_el2
    stp     x2, x3, [sp, #{esr}]
    add     x2, sp, #{frame_size}
    str     x2, [sp, #{sp}]
    mov     x1, x0
    mov     x0, sp
    bl      {handler}
    ldp     x2, x3, [sp, #{elr}]
    msr     elr_el2, x2
    msr     spsr_el2, x3
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    ldr     x30, [sp, #240]
    ldp     x0, x1, [sp, #0]
    add     sp, sp, #{frame_size}
    eret
