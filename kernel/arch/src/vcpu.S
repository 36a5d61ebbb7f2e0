// SPDX-License-Identifier: Apache-2.0 OR MIT
// Entering and leaving partitions.
//
// TPIDR_EL2 points at this core's PerCpu, whose first field is the Context of
// the vCPU running on it. A vector entry for a lower exception level pushes
// x0/x1 on the kernel stack, puts the vector index in x0 and comes to
// hv_lower_common, which saves the partition's registers straight into that
// Context and calls vcpu::lower_entry(&mut PerCpu, index). When that
// returns, hv_enter_current resets the kernel stack and erets into whatever
// Context is current now: the same vCPU, or another one the kernel switched to.
//
// Operands (from vcpu.rs): current, stack_top (PerCpu offsets), sp_el0,
// spsr (Context offsets; elr follows sp_el0 and tpidr_el0 follows spsr),
// lower_entry, and the null hypercall's function ID (version_low,
// version_high) and answer (abi_version), from hv-abi.

.section .text, "ax"
.global hv_lower_common
.balign 4
hv_lower_common:
    // Fast path: the null hypercall (Version) from a partition reads no
    // kernel state, so it is answered here, before any register is saved:
    // x0 = Success, x1 = the ABI version, everything else untouched.
    cmp     x0, #8                      // a synchronous exception...
    b.ne    1f
    mrs     x1, esr_el2
    lsr     x1, x1, #26
    cmp     x1, #0x15                   // ...that is an SVC (EL0)
    ccmp    x1, #0x16, #4, ne           // or an HVC (EL1)
    b.ne    1f
    ldr     x1, [sp]                    // the caller's x0
    mov     x0, #{version_low}
    movk    x0, #{version_high}, lsl #16
    cmp     x1, x0
    mov     x0, #8
    b.ne    1f
    add     sp, sp, #16
    mov     x0, xzr
    mov     x1, #{abi_version}
    eret

1:  mrs     x1, tpidr_el2
    ldr     x1, [x1, #{current}]
    stp     x2, x3, [x1, #16]
    stp     x4, x5, [x1, #32]
    stp     x6, x7, [x1, #48]
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
    ldp     x2, x3, [sp], #16
    stp     x2, x3, [x1, #0]
    mrs     x2, sp_el0
    mrs     x3, elr_el2
    stp     x2, x3, [x1, #{sp_el0}]
    mrs     x2, spsr_el2
    mrs     x3, tpidr_el0
    stp     x2, x3, [x1, #{spsr}]
    mov     x1, x0
    mrs     x0, tpidr_el2
    bl      {lower_entry}

.global hv_enter_current
hv_enter_current:
    mrs     x9, tpidr_el2
    ldr     x10, [x9, #{stack_top}]
    mov     sp, x10
    ldr     x0, [x9, #{current}]
    ldp     x2, x3, [x0, #{sp_el0}]
    msr     sp_el0, x2
    msr     elr_el2, x3
    ldp     x2, x3, [x0, #{spsr}]
    msr     spsr_el2, x2
    msr     tpidr_el0, x3
    ldp     x2, x3, [x0, #16]
    ldp     x4, x5, [x0, #32]
    ldp     x6, x7, [x0, #48]
    ldp     x8, x9, [x0, #64]
    ldp     x10, x11, [x0, #80]
    ldp     x12, x13, [x0, #96]
    ldp     x14, x15, [x0, #112]
    ldp     x16, x17, [x0, #128]
    ldp     x18, x19, [x0, #144]
    ldp     x20, x21, [x0, #160]
    ldp     x22, x23, [x0, #176]
    ldp     x24, x25, [x0, #192]
    ldp     x26, x27, [x0, #208]
    ldp     x28, x29, [x0, #224]
    ldr     x30, [x0, #240]
    ldp     x0, x1, [x0, #0]
    eret
