// SPDX-License-Identifier: Apache-2.0 OR MIT
// Turning a core's MMU and caches on (mmu.rs).
//
// bulkhead_mmu_on(x0 = &MmuConfig: mair, tcr, ttbr0, sctlr bits) loads
// the translation registers, drops every stale translation and instruction,
// and sets the SCTLR_EL2 bits. It uses no stack and clobbers x9-x12 only, so
// boot.S calls it on a secondary core before that core touches memory
// through its caches. The instruction after the last isb carries the label
// bulkhead_mmu_on_done: the system test no-exclusives-before-mmu-* watches
// each core execute it, as the point from which its caches are on.

.section .text, "ax"
.global bulkhead_mmu_on
.balign 4
bulkhead_mmu_on:
    ldp     x9, x10, [x0]               // mair, tcr
    ldp     x11, x12, [x0, #16]         // ttbr0, sctlr bits
    msr     mair_el2, x9
    msr     tcr_el2, x10
    msr     ttbr0_el2, x11
    dsb     ish                         // table writes reach memory first
    tlbi    alle2                       // no stale translation survives
    ic      iallu
    dsb     ish
    isb
    mrs     x9, sctlr_el2
    orr     x9, x9, x12
    msr     sctlr_el2, x9
    isb
.global bulkhead_mmu_on_done
bulkhead_mmu_on_done:
    ret
