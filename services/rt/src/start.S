// SPDX-License-Identifier: Apache-2.0 OR MIT
// A service's first instructions, at EL0.
//
// The kernel enters here with x0 = the partition's index, x1 = the IPA of
// its RAM (where this program was loaded), x2 = the RAM's size, x3 = this
// vCPU's index in the partition, x4 = the GIC's version (2 or 3), sp = the
// top of this vCPU's stack. The program is linked at 0 as a position-independent
// executable: apply its R_AARCH64_RELATIVE relocations for the load address,
// then call the service's main through the bulkhead_service_main trampoline
// that svc_rt::entry! defines. The loop is the same as the kernel's in
// kernel/arch/src/boot.S.

.section .text.start, "ax"
.global _start
_start:
    mov     x19, x0
    mov     x20, x1
    mov     x21, x2
    mov     x22, x3
    mov     x23, x4
    adr     x9, _start
    adrp    x10, __rela_start
    add     x10, x10, :lo12:__rela_start
    adrp    x11, __rela_end
    add     x11, x11, :lo12:__rela_end
1:  cmp     x10, x11
    b.hs    3f
    ldp     x12, x13, [x10], #16        // r_offset, r_info
    ldr     x14, [x10], #8              // r_addend
    cmp     x13, #1027                  // R_AARCH64_RELATIVE
    b.ne    2f
    add     x14, x14, x9
    str     x14, [x9, x12]
    b       1b
2:  mov     x2, #{bad_relocation}       // another relocation: report and stop
    b       4f
3:  mov     x0, x19
    mov     x1, x20
    mov     x2, x21
    mov     x3, x22
    mov     x4, x23
    mov     x29, xzr
    mov     x30, xzr
    bl      bulkhead_service_main
    mov     x2, #{main_returned}
4:  mov     x0, #{fault_low}            // Fault hypercall, forever
    movk    x0, #{fault_high}, lsl #16
    svc     #0
    b       4b
