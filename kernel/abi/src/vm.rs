// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Virtual machines: what crosses the kernel's boundary besides hypercalls.
//!
//! A virtual machine partition runs a guest kernel at EL1 under its own
//! stage-2 tables. The kernel handles what it must itself (Bulkhead's own
//! hypercalls, its timer, the GIC's list registers, SGIs between its vCPUs,
//! WFI) and turns every other exit into an **exit message** on the endpoint
//! the guest's monitor serves. The monitor receives it as an ordinary call
//! (`Recv` or `ReplyRecv`), with x1 = the badge (the exiting vCPU's index in
//! the guest), x2 = message info of [`EXIT_WORDS`] words and x3..x7 = the
//! words below, and answers it with `Reply` (or `ReplyRecv`): the vCPU then
//! resumes with the answer applied. Until then it waits.
//!
//! | word | [`EXIT_MMIO`] | [`EXIT_HVC`], [`EXIT_SMC`] | [`EXIT_SYSREG`] | [`EXIT_ABORT`] |
//! |---|---|---|---|---|
//! | 0 (x3) | kind, [`WRITE`], size, register | kind, immediate (bits 31:16) | kind, [`WRITE`], register | kind |
//! | 1 (x4) | the IPA | guest x0 | the register's encoding ([`sysreg_encoding`]) | the IPA, or FAR |
//! | 2 (x5) | the value written (writes) | guest x1 | the value written (writes) | FAR |
//! | 3 (x6) | guest PC | guest x2 | guest PC | guest PC |
//! | 4 (x7) | ESR_EL2 | guest x3 | ESR_EL2 | ESR_EL2 |
//!
//! Word 0: bits 7:0 the kind; bit 8 [`WRITE`]; bits 10:9 log2 of the access
//! size in bytes (MMIO); bits 20:16 the general register of the access (31
//! is the zero register); for HVC and SMC, bits 31:16 the immediate.
//!
//! An MMIO access, a trapped system register and an SMC have been stepped
//! over when the monitor hears of them (an HVC's return address is already
//! past it): the answer completes the instruction. The answer's word 0 says
//! how ([`RESUME_WRITE_REGISTER`]: word 1 goes into the access's register,
//! narrowed to the access size and extended as the load instruction says;
//! [`RESUME_SET_RESULT`]: words 1..4 go into x0..x3, an SMCCC call's
//! results); 0 resumes the vCPU as it is. An [`EXIT_ABORT`] (an access the
//! kernel cannot decode, an instruction fetch outside RAM) is not stepped
//! over: a monitor normally stops the vCPU (`VcpuStop`) rather than answer.

/// Words in an exit message.
pub const EXIT_WORDS: usize = 5;

/// A load or store to an address outside the guest's RAM.
pub const EXIT_MMIO: u64 = 1;
/// An `hvc` whose function ID is not one of Bulkhead's hypercalls (PSCI, say).
pub const EXIT_HVC: u64 = 2;
/// An `smc`.
pub const EXIT_SMC: u64 = 3;
/// A trapped system register access (debug, PMU, implementation defined...).
pub const EXIT_SYSREG: u64 = 4;
/// An exit the kernel cannot describe further: an instruction abort, a data
/// abort without a syndrome, anything else unexpected.
pub const EXIT_ABORT: u64 = 5;

/// Word 0: the access writes (stores, `msr`).
pub const WRITE: u64 = 1 << 8;

/// The kind in word 0.
#[must_use]
pub const fn exit_kind(word0: u64) -> u64 {
    word0 & 0xff
}

/// The access size in bytes in word 0 of an [`EXIT_MMIO`] (1, 2, 4 or 8).
#[must_use]
pub const fn exit_size(word0: u64) -> u64 {
    1 << ((word0 >> 9) & 0b11)
}

/// The general register in word 0 of an [`EXIT_MMIO`] or [`EXIT_SYSREG`]
/// (31: the zero register).
#[must_use]
pub const fn exit_register(word0: u64) -> u8 {
    ((word0 >> 16) & 0x1f) as u8
}

/// The immediate of an [`EXIT_HVC`] or [`EXIT_SMC`].
#[must_use]
pub const fn exit_immediate(word0: u64) -> u16 {
    (word0 >> 16) as u16
}

/// Word 0 of an [`EXIT_MMIO`].
#[must_use]
pub const fn mmio_word(write: bool, size_log2: u8, register: u8) -> u64 {
    EXIT_MMIO
        | if write { WRITE } else { 0 }
        | ((size_log2 as u64 & 0b11) << 9)
        | ((register as u64 & 0x1f) << 16)
}

/// A system register's encoding as word 1 of an [`EXIT_SYSREG`] carries it:
/// op0 in bits 15:14, op1 13:11, CRn 10:7, CRm 6:3, op2 2:0 (the layout of
/// the `S<op0>_<op1>_C<n>_C<m>_<op2>` name).
#[must_use]
pub const fn sysreg_encoding(op0: u8, op1: u8, crn: u8, crm: u8, op2: u8) -> u64 {
    ((op0 as u64 & 0b11) << 14)
        | ((op1 as u64 & 0b111) << 11)
        | ((crn as u64 & 0xf) << 7)
        | ((crm as u64 & 0xf) << 3)
        | (op2 as u64 & 0b111)
}

/// Answer word 0: write word 1 into the access's register.
pub const RESUME_WRITE_REGISTER: u64 = 1 << 0;
/// Answer word 0: words 1..4 become x0..x3.
pub const RESUME_SET_RESULT: u64 = 1 << 1;

/// The machine a guest sees, as the kernel maps it and its monitor
/// describes it in the guest's device tree: QEMU `virt`'s layout, so that
/// a guest kernel built for it needs nothing else. Its RAM is at
/// [`GUEST_RAM_BASE`] (the manifest compiler's `RAM_IPA`).
pub const GUEST_RAM_BASE: u64 = 0x4000_0000;
/// The guest's GIC distributor (emulated by its monitor).
pub const GUEST_GICD: u64 = 0x0800_0000;
/// The distributor's size.
pub const GUEST_GICD_SIZE: u64 = 0x1_0000;
/// GICv2: the guest's CPU interface, where the kernel maps the GIC's virtual
/// CPU interface (GICV).
pub const GUEST_GICC: u64 = 0x0801_0000;
/// The CPU interface's size (two pages: GICC_DIR is in the second).
pub const GUEST_GICC_SIZE: u64 = 0x2000;
/// GICv3: the guest's redistributors (emulated by its monitor), one
/// [`GUEST_GICR_STRIDE`] each.
pub const GUEST_GICR: u64 = 0x080a_0000;
/// One GICv3 redistributor's size.
pub const GUEST_GICR_STRIDE: u64 = 0x2_0000;
/// The guest's PL011 UART (emulated by its monitor).
pub const GUEST_UART: u64 = 0x0900_0000;
/// The UART's interrupt (SPI 1).
pub const GUEST_UART_INTID: u32 = 33;
/// The UART's size.
pub const GUEST_UART_SIZE: u64 = 0x1000;

/// Where the guest's emulated devices are, as (base, size): the GIC
/// (distributor, CPU interface, redistributors, up to where QEMU `virt`'s
/// redistributor region ends) and the PL011. A device passed through to a
/// guest (mapped at its physical address) may not overlap them.
pub const GUEST_EMULATED: [(u64, u64); 2] = [
    (GUEST_GICD, GUEST_UART - GUEST_GICD),
    (GUEST_UART, GUEST_UART_SIZE),
];

/// Whether the guest-physical range (`base`, `size`) overlaps the guest's
/// emulated devices ([`GUEST_EMULATED`]).
#[must_use]
pub const fn overlaps_emulated(base: u64, size: u64) -> bool {
    let end = base.saturating_add(size);
    let mut i = 0;
    while i < GUEST_EMULATED.len() {
        let (b, s) = GUEST_EMULATED[i];
        if base < b + s && b < end {
            return true;
        }
        i += 1;
    }
    false
}

/// Virtual interrupt IDs a guest may be given: SGIs 0..16, PPIs 16..32, and
/// SPIs 32..256 (a guest's distributor reports 224 SPIs at most).
pub const VIRTUAL_INTIDS: u32 = 256;

/// The virtual timer's interrupt (PPI 11), which the kernel delivers itself.
pub const VIRTUAL_TIMER_INTID: u32 = 27;

/// A guest vCPU's MPIDR affinity: Aff0 = its index in the guest, the other
/// levels 0. (Bit 31 of the MPIDR reads as one, as the architecture says.)
#[must_use]
pub const fn guest_mpidr(index: u8) -> u64 {
    (1 << 31) | index as u64
}

/// A register of a guest vCPU, as `VcpuRead` and `VcpuWrite` name it in x2:
/// 0 to 30 are x0 to x30; then the PC and PSTATE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Register {
    /// General register x0 to x30.
    X(u8),
    /// Where the vCPU resumes.
    Pc,
    /// Its PSTATE (as SPSR_EL2 holds it).
    Pstate,
}

/// `VcpuRead`/`VcpuWrite`'s x2 for the PC.
pub const REGISTER_PC: u64 = 32;
/// `VcpuRead`/`VcpuWrite`'s x2 for PSTATE.
pub const REGISTER_PSTATE: u64 = 33;

impl Register {
    /// Decodes x2; anything else is `None`.
    #[must_use]
    pub const fn from_register(x2: u64) -> Option<Self> {
        match x2 {
            0..=30 => Some(Self::X(x2 as u8)),
            REGISTER_PC => Some(Self::Pc),
            REGISTER_PSTATE => Some(Self::Pstate),
            _ => None,
        }
    }

    /// The value in x2.
    #[must_use]
    pub const fn to_register(self) -> u64 {
        match self {
            Self::X(n) => n as u64,
            Self::Pc => REGISTER_PC,
            Self::Pstate => REGISTER_PSTATE,
        }
    }
}

/// Where a guest vCPU is, as `VcpuStatus` returns it in x1.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VcpuRunState {
    /// Not started, stopped (`VcpuStop`, PSCI `CPU_OFF`), or its partition
    /// is stopped.
    Off = 0,
    /// It runs, or is ready to, or waits in the kernel on an IPC object.
    Running = 1,
    /// It waits for an interrupt (WFI).
    Halted = 2,
    /// It waits for its monitor's answer to an exit.
    Exit = 3,
}

impl VcpuRunState {
    /// Every state, in code order.
    pub const ALL: [Self; 4] = [Self::Off, Self::Running, Self::Halted, Self::Exit];

    /// Decodes x1; an unknown value is `None`.
    #[must_use]
    pub fn from_register(x1: u64) -> Option<Self> {
        Self::ALL.into_iter().find(|s| *s as u64 == x1)
    }
}

#[cfg(test)]
mod tests {
    use super::{
        EXIT_MMIO, Register, VcpuRunState, exit_kind, exit_register, exit_size, guest_mpidr,
        mmio_word, sysreg_encoding,
    };

    #[test]
    fn mmio_word_round_trips() {
        for write in [false, true] {
            for size in 0..4u8 {
                for register in [0u8, 7, 8, 30, 31] {
                    let word = mmio_word(write, size, register);
                    assert_eq!(exit_kind(word), EXIT_MMIO);
                    assert_eq!(word & super::WRITE != 0, write);
                    assert_eq!(exit_size(word), 1 << size);
                    assert_eq!(exit_register(word), register);
                }
            }
        }
    }

    #[test]
    fn registers_round_trip() {
        for x2 in 0..40 {
            if let Some(r) = Register::from_register(x2) {
                assert_eq!(r.to_register(), x2);
            } else {
                assert!(x2 == 31 || x2 > 33);
            }
        }
    }

    #[test]
    fn states_round_trip() {
        for s in VcpuRunState::ALL {
            assert_eq!(VcpuRunState::from_register(s as u64), Some(s));
        }
        assert_eq!(VcpuRunState::from_register(4), None);
    }

    #[test]
    fn encodings() {
        // ICC_SGI1R_EL1 is S3_0_C12_C11_5.
        assert_eq!(sysreg_encoding(3, 0, 12, 11, 5), 0xc65d);
        assert_eq!(guest_mpidr(3), 0x8000_0003);
    }
}
