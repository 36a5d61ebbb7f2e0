// SPDX-License-Identifier: Apache-2.0 OR MIT
// The probe's image header, first instructions and EL1 vector table.
//
// The image begins with the 64-byte arm64 Image header, so Bulkhead's
// monitor (and QEMU's -kernel, U-Boot's booti) load it as a kernel: text
// offset 0, image_size covering .bss and the stack, flags 0xa (little-endian,
// 4 KiB pages, anywhere in RAM). The monitor enters it at its first byte at
// EL1 with the MMU off, interrupts masked and x0 = the device tree. Linked at
// 0 as a position-independent executable, it applies its own
// R_AARCH64_RELATIVE relocations for wherever it was loaded (the loop of
// kernel/arch/src/boot.S), clears .bss, takes the stack at the end of the
// image, installs the vector table and calls Rust with x0 = the device tree.
//
// Vectors: sixteen entries of 0x80 bytes. Each makes room for a frame of
// {frame} bytes, saves x0/x1, puts its index in x0 and joins
// probe_exception_common, which saves the caller-saved registers, ELR and
// SPSR, calls the handler with x0 = the index and x1 = ELR_EL1, returns to
// the address the handler gives back, and restores everything else.

.section .text.head, "ax"
.global _start
_start:
    b       probe_entry                 // code0
    .long   0                           // code1
    .quad   0                           // text_offset
    .quad   __image_size                // image_size, .bss and stack included
    .quad   0xa                         // flags: little-endian, 4 KiB pages, anywhere
    .quad   0                           // res2
    .quad   0                           // res3
    .quad   0                           // res4
    .ascii  "ARM\x64"                   // magic
    .long   0                           // res5: no PE/COFF header

.section .text.entry, "ax"
.balign 4
probe_entry:
    msr     daifset, #0xf
    msr     spsel, #1
    mov     x19, x0                     // x19 = device tree address
    adr     x20, _start                 // x20 = where the image was loaded
    adrp    x9, __rela_start
    add     x9, x9, :lo12:__rela_start
    adrp    x10, __rela_end
    add     x10, x10, :lo12:__rela_end
1:  cmp     x9, x10
    b.hs    3f
    ldp     x11, x12, [x9], #16         // r_offset, r_info
    ldr     x13, [x9], #8               // r_addend
    cmp     x12, #1027                  // R_AARCH64_RELATIVE
    b.ne    2f
    add     x13, x13, x20
    str     x13, [x20, x11]
    b       1b
2:  wfi                                 // another relocation: cannot run
    b       2b
3:  adrp    x9, __bss_start             // clear .bss (a reboot reuses RAM)
    add     x9, x9, :lo12:__bss_start
    adrp    x10, __bss_end
    add     x10, x10, :lo12:__bss_end
4:  cmp     x9, x10
    b.hs    5f
    stp     xzr, xzr, [x9], #16
    b       4b
5:  adrp    x9, __stack_end
    add     x9, x9, :lo12:__stack_end
    mov     sp, x9
    adrp    x9, probe_vectors
    add     x9, x9, :lo12:probe_vectors
    msr     vbar_el1, x9
    isb
    mov     x29, xzr
    mov     x30, xzr
    mov     x0, x19
    bl      {main}
6:  wfi
    b       6b

.macro PROBE_VECTOR index
.balign 0x80
    sub     sp, sp, #{frame}
    stp     x0, x1, [sp, #0]
    mov     x0, #\index
    b       probe_exception_common
.endm

.section .text.vectors, "ax"
.balign 0x800
probe_vectors:
    PROBE_VECTOR 0
    PROBE_VECTOR 1
    PROBE_VECTOR 2
    PROBE_VECTOR 3
    PROBE_VECTOR 4
    PROBE_VECTOR 5
    PROBE_VECTOR 6
    PROBE_VECTOR 7
    PROBE_VECTOR 8
    PROBE_VECTOR 9
    PROBE_VECTOR 10
    PROBE_VECTOR 11
    PROBE_VECTOR 12
    PROBE_VECTOR 13
    PROBE_VECTOR 14
    PROBE_VECTOR 15

.balign 4
probe_exception_common:
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x29, [sp, #144]
    str     x30, [sp, #160]
    mrs     x1, elr_el1
    mrs     x2, spsr_el1
    stp     x1, x2, [sp, #176]
    bl      {handler}                   // x0 = where to return
    ldr     x2, [sp, #184]
    msr     elr_el1, x0
    msr     spsr_el1, x2
    ldp     x0, x1, [sp, #0]
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x29, [sp, #144]
    ldr     x30, [sp, #160]
    add     sp, sp, #{frame}
    eret
