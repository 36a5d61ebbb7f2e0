// SPDX-License-Identifier: Apache-2.0 OR MIT
// Image header and the first instructions of every core.
//
// The image begins with the 64-byte Linux arm64 Image header, so QEMU's
// -kernel, U-Boot's booti and the Raspberry Pi firmware all load it as a
// kernel and enter it at its first byte with x0 = device tree address and the
// MMU off. The kernel is linked at address 0 as a position-independent
// executable: before any Rust runs, this code applies its own
// R_AARCH64_RELATIVE relocations for wherever it was loaded, clears .bss,
// points sp at core 0's boot stack and calls boot::primary_rust_entry.
//
// Secondary cores arrive at bulkhead_secondary_entry from PSCI CPU_ON with
// x0 = their core index; the image is already relocated. Each turns its MMU
// and caches on (mmu.S, with the configuration core 0 cleaned to the point
// of coherency) before it touches its stack. Cores released from
// a spin table arrive at bulkhead_spin_entry with x0 = 0, MMU and caches off,
// and find their index by their MPIDR in spin_mpidrs (smp.rs, cleaned to the
// point of coherency before the release).
//
// Operands (from boot.rs): boot_stack and boot_stack_size core 0's stack,
// stacks the other cores' stacks, stack_size one stack's
// size, sctlr and cptr_low/cptr_high the EL2 reset values, primary and secondary the
// Rust entry points.

.section .text.head, "ax"
.global _start
_start:
    b       hv_boot_primary             // code0
    .long   0                           // code1
    .quad   0                           // text_offset: load at a 2 MiB boundary
    .quad   __image_size                // image_size, .bss included
    .quad   0xa                         // flags: little-endian, 4 KiB pages, anywhere in RAM
    .quad   0                           // res2
    .quad   0                           // res3
    .quad   0                           // res4
    .ascii  "ARM\x64"                   // magic
    .long   0                           // res5: no PE/COFF header

.section .text.boot, "ax"
.balign 4
hv_boot_primary:
    msr     daifset, #0xf
    msr     spsel, #1                   // the kernel runs on SP_ELx, whatever the loader chose
    mov     x19, x0                     // x19 = device tree address
    mrs     x20, CurrentEL
    ubfx    x20, x20, #2, #2            // x20 = exception level
    cmp     x20, #2
    b.ne    1f
    msr     tpidr_el2, xzr              // no PerCpu yet (vcpu.rs)
    mrs     x9, mdcr_el2                // Count instructions from here on: the PMU
    bic     x9, x9, #(1 << 17)          // cycle counter, counting at EL2
    msr     mdcr_el2, x9                // (MDCR_EL2.HPMD = 0, PMCCFILTR_EL0.NSH = 1),
    mov     x9, #(1 << 27)              // reset and started. Under QEMU -icount
    msr     pmccfiltr_el0, x9           // shift=0 it counts instructions exactly
    mov     x9, #(1 << 31)              // (docs/benchmarks.md).
    msr     pmcntenset_el0, x9
    mrs     x9, pmcr_el0
    mov     x10, #0x45                  // LC (64-bit), C (reset), E (enable)
    orr     x9, x9, x10
    msr     pmcr_el0, x9
    ic      iallu                       // nothing the loader left behind
    dsb     nsh
    isb
    ldr     x9, ={sctlr}                // EL2: MMU and data cache off, known state,
    msr     sctlr_el2, x9               // instruction cache on
    movz    x9, #{cptr_low}             // FP/SIMD trapped: the kernel never uses them;
    movk    x9, #{cptr_high}, lsl #16   // activity monitors trapped
    msr     cptr_el2, x9
    isb
    b       2f
1:                                      // EL1 (wrong, but say so)

    // Apply R_AARCH64_RELATIVE relocations: *(base + offset) = base + addend.
2:  adr     x21, _start
    adrp    x9, __rela_start
    add     x9, x9, :lo12:__rela_start
    adrp    x10, __rela_end
    add     x10, x10, :lo12:__rela_end
3:  cmp     x9, x10
    b.hs    5f
    ldp     x11, x12, [x9], #16         // r_offset, r_info
    ldr     x13, [x9], #8               // r_addend
    cmp     x12, #1027                  // R_AARCH64_RELATIVE
    b.ne    4f
    add     x13, x13, x21
    str     x13, [x21, x11]
    b       3b
4:  wfe                                 // any other relocation: cannot run, cannot report
    b       4b

    // Clear .bss (16-byte aligned by the linker script).
5:  adrp    x9, __bss_start
    add     x9, x9, :lo12:__bss_start
    adrp    x10, __bss_end
    add     x10, x10, :lo12:__bss_end
6:  cmp     x9, x10
    b.hs    7f
    stp     xzr, xzr, [x9], #16
    b       6b

7:  adrp    x9, {boot_stack}
    add     x9, x9, :lo12:{boot_stack}
    mov     x10, #{boot_stack_size}
    add     sp, x9, x10                 // top of core 0's stack
    mov     x29, xzr
    mov     x30, xzr
    mov     x0, x19
    mov     x1, x20
    bl      {primary}
8:  wfe
    b       8b

.global bulkhead_spin_entry
.balign 4
bulkhead_spin_entry:
    msr     daifset, #0xf
    mrs     x9, mpidr_el1
    ldr     x10, =0xff00ffffff          // Aff3, Aff2, Aff1, Aff0 (cpu.rs mpidr_affinity)
    and     x9, x9, x10
    adrp    x10, {spin_mpidrs}
    add     x10, x10, :lo12:{spin_mpidrs}
    mov     x0, #1                      // slot 0 is the boot core's
10: ldr     x11, [x10, x0, lsl #3]
    cmp     x11, x9
    b.eq    bulkhead_secondary_entry    // x0 = this core's index
    add     x0, x0, #1
    cmp     x0, #{max_cpus}
    b.lo    10b
11: wfe                                 // released but not listed: cannot run
    b       11b

.global bulkhead_secondary_entry
.balign 4
bulkhead_secondary_entry:
    msr     daifset, #0xf
    msr     spsel, #1
    mov     x19, x0                     // x19 = core index
    ic      iallu
    dsb     nsh
    isb
    ldr     x9, ={sctlr}
    msr     sctlr_el2, x9
    movz    x9, #{cptr_low}
    movk    x9, #{cptr_high}, lsl #16
    msr     cptr_el2, x9
    isb
    adrp    x0, {mmu_config}            // the MMU and caches on before the stack:
    add     x0, x0, :lo12:{mmu_config}  // core 0 may hold lines of it in its caches
    bl      bulkhead_mmu_on             // (mmu.S: no stack, x9-x12 only)
    adrp    x9, {stacks}
    add     x9, x9, :lo12:{stacks}
    mov     x11, #{stack_size}
    madd    x9, x19, x11, x9
    mov     sp, x9                      // top of slot index - 1: this core's stack
    mov     x29, xzr
    mov     x30, xzr
    mov     x0, x19
    bl      {secondary}
9:  wfe
    b       9b
.ltorg
