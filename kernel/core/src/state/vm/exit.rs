// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Describing a virtual machine's exit for its monitor, from the syndrome
//! the glue read, and decoding the SGIs a guest sends.

use hv_abi::vm::{
    EXIT_ABORT, EXIT_HVC, EXIT_SMC, EXIT_SYSREG, EXIT_WORDS, WRITE, mmio_word, sysreg_encoding,
};

/// How the register of a load the monitor completes is written: which one,
/// and how the value is narrowed and extended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Access {
    /// The general register (31: the zero register, written to nothing).
    pub register: u8,
    /// log2 of the access size in bytes.
    pub size_log2: u8,
    /// The load sign-extends (`ldrsb`, `ldrsh`, `ldrsw`).
    pub sign_extend: bool,
    /// The register is 64 bits wide (`x`, not `w`).
    pub sixty_four: bool,
}

impl Access {
    /// `value` as the load leaves it in the register.
    #[must_use]
    pub const fn complete(self, value: u64) -> u64 {
        let bits = 8u32 << self.size_log2;
        let narrowed = if bits >= 64 {
            value
        } else {
            value & ((1 << bits) - 1)
        };
        let extended = if self.sign_extend && bits < 64 {
            let shift = 64 - bits;
            (((narrowed << shift) as i64) >> shift) as u64
        } else {
            narrowed
        };
        if self.sixty_four {
            extended
        } else {
            extended & 0xffff_ffff
        }
    }
}

/// An exit described for the monitor: the message words (`hv_abi::vm`'s
/// layout) and, for a load or `mrs`, how the answer completes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VmExit {
    /// The message words (x3..x7 of what the monitor receives).
    pub words: [u64; EXIT_WORDS],
    /// Where the answer's value goes, for a read.
    pub access: Option<Access>,
    /// Whether the glue stepped over the trapped instruction (it has, for
    /// every exit but [`EXIT_ABORT`] and `hvc`, whose return address is
    /// already past it).
    pub stepped: bool,
}

/// Exception classes the description decodes.
const EC_SMC: u64 = 0x17;
const EC_SYSREG: u64 = 0x18;
const EC_DATA_ABORT_LOWER: u64 = 0x24;

/// ICC_SGI1R_EL1's encoding, as [`sysreg_encoding`] packs it.
pub const ICC_SGI1R_EL1: u64 = sysreg_encoding(3, 0, 12, 11, 5);

impl VmExit {
    /// The register, if any, whose value the glue must pass to
    /// [`VmExit::describe`] for this syndrome: the source of a store or of
    /// an `msr`.
    #[must_use]
    pub const fn source_register(esr: u64) -> Option<u8> {
        let iss = esr & 0x1ff_ffff;
        match esr >> 26 & 0x3f {
            EC_DATA_ABORT_LOWER if iss & (1 << 24) != 0 && iss & (1 << 6) != 0 => {
                Some(((iss >> 16) & 0x1f) as u8)
            }
            EC_SYSREG if iss & 1 == 0 => Some(((iss >> 5) & 0x1f) as u8),
            _ => None,
        }
    }

    /// Describes a synchronous exception of a virtual machine's vCPU that
    /// the kernel does not handle itself: `esr` (ESR_EL2), `far` (FAR_EL2),
    /// `ipa` (the faulting IPA, from HPFAR_EL2 and FAR), `pc` (where it
    /// trapped) and `source` (the value of [`VmExit::source_register`], 0
    /// for the zero register). MMIO loads and stores, system register
    /// accesses and SMCs become exits the monitor completes (the glue steps
    /// over the instruction: `stepped`); anything else (an instruction
    /// abort, a data abort without a valid syndrome) an [`EXIT_ABORT`].
    #[must_use]
    pub const fn describe(esr: u64, far: u64, ipa: u64, pc: u64, source: u64) -> Self {
        let iss = esr & 0x1ff_ffff;
        let ec = esr >> 26 & 0x3f;
        match ec {
            EC_DATA_ABORT_LOWER if iss & (1 << 24) != 0 && iss & (1 << 7) == 0 => {
                let write = iss & (1 << 6) != 0;
                let size_log2 = ((iss >> 22) & 0b11) as u8;
                let register = ((iss >> 16) & 0x1f) as u8;
                let access = Access {
                    register,
                    size_log2,
                    sign_extend: iss & (1 << 21) != 0,
                    sixty_four: iss & (1 << 15) != 0,
                };
                let value = if write {
                    Access {
                        sign_extend: false,
                        sixty_four: true,
                        ..access
                    }
                    .complete(source)
                } else {
                    0
                };
                Self {
                    words: [mmio_word(write, size_log2, register), ipa, value, pc, esr],
                    access: if write { None } else { Some(access) },
                    stepped: true,
                }
            }
            EC_SYSREG => {
                let read = iss & 1 != 0;
                let register = ((iss >> 5) & 0x1f) as u8;
                let encoding = sysreg_encoding(
                    ((iss >> 20) & 0b11) as u8,
                    ((iss >> 14) & 0b111) as u8,
                    ((iss >> 10) & 0xf) as u8,
                    ((iss >> 1) & 0xf) as u8,
                    ((iss >> 17) & 0b111) as u8,
                );
                let word = EXIT_SYSREG | if read { 0 } else { WRITE } | (register as u64) << 16;
                Self {
                    words: [word, encoding, if read { 0 } else { source }, pc, esr],
                    access: if read {
                        Some(Access {
                            register,
                            size_log2: 3,
                            sign_extend: false,
                            sixty_four: true,
                        })
                    } else {
                        None
                    },
                    stepped: true,
                }
            }
            EC_SMC => Self {
                words: [EXIT_SMC, 0, 0, 0, 0],
                access: None,
                stepped: true,
            },
            _ => Self {
                words: [EXIT_ABORT, ipa, far, pc, esr],
                access: None,
                stepped: false,
            },
        }
    }

    /// An `hvc` (or a trapped `smc`, `kind` [`EXIT_SMC`]) whose x0..x3 are
    /// `regs`'s: the monitor gets the function ID and three arguments.
    #[must_use]
    pub const fn call(kind: u64, regs: &[u64; 8]) -> Self {
        Self {
            words: [kind, regs[0], regs[1], regs[2], regs[3]],
            access: None,
            stepped: kind != EXIT_HVC,
        }
    }

    /// Whether this is an SMC exit still waiting for its arguments
    /// ([`VmExit::describe`] cannot see x0..x3; the step fills them in).
    pub(in crate::state) const fn is_bare_smc(&self) -> bool {
        self.words[0] == EXIT_SMC
    }
}

/// The vCPUs (bit n: index n in the guest) an ICC_SGI1R_EL1 write by vCPU
/// `me` names, in a guest of `count` vCPUs whose MPIDRs are Aff0 = index.
#[must_use]
pub fn sgi_targets(value: u64, count: u8, me: u8) -> u32 {
    let all = if count >= 32 {
        u32::MAX
    } else {
        (1u32 << count) - 1
    };
    if value & (1 << 40) != 0 {
        return all & !(1 << (me % 32));
    }
    let aff1 = (value >> 16) & 0xff;
    let aff2 = (value >> 32) & 0xff;
    let aff3 = (value >> 48) & 0xff;
    let range_selector = (value >> 44) & 0xf;
    if aff1 != 0 || aff2 != 0 || aff3 != 0 || range_selector != 0 {
        return 0;
    }
    (value & 0xffff) as u32 & all
}
