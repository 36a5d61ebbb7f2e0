// SPDX-License-Identifier: Apache-2.0 OR MIT
// A guest vCPU's FP/SIMD registers: V0..V31, then FPCR and FPSR at the
// offsets vm.rs passes (fpcr, fpsr). The kernel is built without floating
// point, so these are the only FP/SIMD instructions it has; its callers open
// FP/SIMD at EL2 (CPTR_EL2.TFP clear) first.
//
// Then ICH_ELRSR_EL2 (GICv3's empty list registers), which `aarch64-cpu`
// does not name, for vm/vgic.rs.

.arch_extension fp
.arch_extension simd

.section .text, "ax"
.global hv_fp_save
.balign 4
hv_fp_save:
    stp     q0, q1, [x0, #0]
    stp     q2, q3, [x0, #32]
    stp     q4, q5, [x0, #64]
    stp     q6, q7, [x0, #96]
    stp     q8, q9, [x0, #128]
    stp     q10, q11, [x0, #160]
    stp     q12, q13, [x0, #192]
    stp     q14, q15, [x0, #224]
    stp     q16, q17, [x0, #256]
    stp     q18, q19, [x0, #288]
    stp     q20, q21, [x0, #320]
    stp     q22, q23, [x0, #352]
    stp     q24, q25, [x0, #384]
    stp     q26, q27, [x0, #416]
    stp     q28, q29, [x0, #448]
    stp     q30, q31, [x0, #480]
    mrs     x1, fpcr
    mrs     x2, fpsr
    str     x1, [x0, #{fpcr}]
    str     x2, [x0, #{fpsr}]
    ret

.global hv_fp_load
.balign 4
hv_fp_load:
    ldp     q0, q1, [x0, #0]
    ldp     q2, q3, [x0, #32]
    ldp     q4, q5, [x0, #64]
    ldp     q6, q7, [x0, #96]
    ldp     q8, q9, [x0, #128]
    ldp     q10, q11, [x0, #160]
    ldp     q12, q13, [x0, #192]
    ldp     q14, q15, [x0, #224]
    ldp     q16, q17, [x0, #256]
    ldp     q18, q19, [x0, #288]
    ldp     q20, q21, [x0, #320]
    ldp     q22, q23, [x0, #352]
    ldp     q24, q25, [x0, #384]
    ldp     q26, q27, [x0, #416]
    ldp     q28, q29, [x0, #448]
    ldp     q30, q31, [x0, #480]
    ldr     x1, [x0, #{fpcr}]
    ldr     x2, [x0, #{fpsr}]
    msr     fpcr, x1
    msr     fpsr, x2
    ret

.global hv_ich_elrsr
.balign 4
hv_ich_elrsr:
    mrs     x0, S3_4_C12_C11_5
    ret
