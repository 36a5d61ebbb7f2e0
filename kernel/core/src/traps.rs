// SPDX-License-Identifier: Apache-2.0 OR MIT
//! What partitions may not touch: the CPTR_EL2 values the kernel runs them
//! under.
//!
//! CPTR_EL2 (with HCR_EL2.E2H = 0, as the kernel runs) traps to EL2 what
//! EL1 and EL0 would otherwise reach directly: FP/SIMD (TFP, bit 10), SVE
//! (TZ, bit 8, which is set by writing the RES1 pattern), and the activity
//! monitors (TAM, bit 30). Activity monitors (FEAT_AMUv1, Armv8.4) count
//! cycles and instructions per core whoever runs, so a partition reading
//! them learns about the others (a timing channel) and, at EL1, could
//! reconfigure the auxiliary counters; they are trapped for every partition
//! and at boot. On a core without FEAT_AMUv1 bit 30 is RES0 and writing it
//! has no effect (Linux's KVM sets it unconditionally too), and AMU
//! registers are undefined instructions anyway.
//!
//! A trapped access from a service faults it (the kernel's exception
//! report, reason 0x100); from a guest it is a system register exit for its
//! monitor, which reads it as zero, as it does the PMU's. `hv-arch-aarch64`
//! writes these values (`boot.S` at entry, `vm.rs` on every switch between a
//! guest and a service); they are decided and tested here.

/// The bits that read as one and must be written as one: 13:12 and 9:0
/// (bit 8, TZ, among them: SVE traps).
pub const CPTR_EL2_RES1: u64 = 0x33ff;
/// TFP: FP/SIMD instructions and registers trap.
pub const CPTR_EL2_TFP: u64 = 1 << 10;
/// TAM: activity monitor registers trap.
pub const CPTR_EL2_TAM: u64 = 1 << 30;

/// While a guest runs: FP/SIMD open (guests have their own, switched by
/// the kernel), activity monitors trapped.
pub const CPTR_GUEST: u64 = CPTR_EL2_RES1 | CPTR_EL2_TAM;
/// While a service runs, and at boot (the kernel itself is built without
/// floating point, so an FP instruction at EL2 is a bug and is reported):
/// FP/SIMD and activity monitors trapped.
pub const CPTR_SERVICE: u64 = CPTR_EL2_RES1 | CPTR_EL2_TFP | CPTR_EL2_TAM;

#[cfg(test)]
mod tests {
    use super::{CPTR_GUEST, CPTR_SERVICE};

    #[test]
    fn every_partition_runs_with_the_activity_monitors_trapped() {
        // Bit 30 (TAM) in both; FP/SIMD (bit 10) trapped only for services;
        // SVE (bit 8) trapped for both; nothing else (TTA, bit 20, and
        // TCPAC, bit 31, stay clear).
        assert_eq!(CPTR_SERVICE, 0x4000_37ff);
        assert_eq!(CPTR_GUEST, 0x4000_33ff);
        for value in [CPTR_SERVICE, CPTR_GUEST] {
            assert_ne!(value & 1 << 30, 0);
            assert_ne!(value & 1 << 8, 0);
            assert_eq!(value & (1 << 31 | 1 << 20), 0);
        }
    }
}
