// SPDX-License-Identifier: Apache-2.0 OR MIT
//! What an exception syndrome (ESR_ELx) says, in words.
//!
//! When the kernel takes an exception it did not expect, it prints the raw
//! registers and this decoding of them, so that the report can be read
//! without the Arm ARM at hand. [`Syndrome::decode`] covers the exception
//! classes the kernel can meet at EL2; anything else is shown as its number.

use core::fmt;

/// ESR_EL2 of an `svc #0` from AArch64 (class 0x15, IL set, immediate 0)
/// rotated right by 25 bits, as the kernel's entry code compares it: IL in
/// bit 0, the class in bits 6:1, the immediate and the rest of the ISS
/// above. See [`is_hypercall`].
pub const SVC_ZERO_ROTATED: u64 = (0x15 << 1) | 1;
/// The same for an `hvc #0` (class 0x16).
pub const HVC_ZERO_ROTATED: u64 = (0x16 << 1) | 1;

/// Whether `esr` is an `svc #0` or `hvc #0`, computed as the entry code
/// (`vcpu.S`) does: rotate right by 25, subtract [`SVC_ZERO_ROTATED`], and
/// all bits but bit 1 must be clear. `svc #n` and `hvc #n` with n != 0 are
/// reserved (`docs/abi.md` §1.1) and are not hypercalls.
#[must_use]
pub const fn is_hypercall(esr: u64) -> bool {
    esr.rotate_right(25).wrapping_sub(SVC_ZERO_ROTATED) & !2 == 0
}

/// An exception class (ESR bits \[31:26\]) and the parts of its ISS that the
/// kernel decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syndrome {
    /// EC 0x00: an instruction that does not exist or is not allowed here.
    Unknown,
    /// EC 0x01: a trapped WFI or WFE.
    WfiWfe,
    /// EC 0x07: floating point or SIMD access while trapped.
    FpAccess,
    /// EC 0x0E: an illegal exception return (bad PSTATE).
    IllegalState,
    /// EC 0x15: an SVC instruction.
    Svc {
        /// The instruction's immediate.
        imm: u16,
    },
    /// EC 0x16: an HVC instruction.
    Hvc {
        /// The instruction's immediate.
        imm: u16,
    },
    /// EC 0x17: a trapped SMC instruction.
    Smc {
        /// The instruction's immediate.
        imm: u16,
    },
    /// EC 0x18: a trapped system register access.
    SystemRegister {
        /// The ISS, which encodes the register and direction.
        iss: u32,
    },
    /// EC 0x20/0x21: an instruction fetch aborted.
    InstructionAbort {
        /// Taken from a lower exception level (0x20) or the same one (0x21).
        lower_el: bool,
        /// The fault status code.
        fault: Fault,
    },
    /// EC 0x22: the PC was not aligned.
    PcAlignment,
    /// EC 0x24/0x25: a data access aborted.
    DataAbort {
        /// Taken from a lower exception level (0x24) or the same one (0x25).
        lower_el: bool,
        /// The fault status code.
        fault: Fault,
        /// The access was a write.
        write: bool,
        /// FAR holds a valid address (the FnV bit was clear).
        far_valid: bool,
    },
    /// EC 0x26: the stack pointer was not aligned.
    SpAlignment,
    /// EC 0x2F: an SError interrupt.
    SError,
    /// EC 0x3C: a BRK instruction.
    Brk {
        /// The instruction's immediate.
        imm: u16,
    },
    /// Any other class, by number.
    Other {
        /// The exception class.
        class: u8,
    },
}

/// A data or instruction fault status code (DFSC/IFSC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The address is larger than the configured size.
    AddressSize {
        /// The translation level.
        level: u8,
    },
    /// Nothing is mapped at the address.
    Translation {
        /// The translation level.
        level: u8,
    },
    /// The access flag was clear.
    AccessFlag {
        /// The translation level.
        level: u8,
    },
    /// The mapping forbids this access.
    Permission {
        /// The translation level.
        level: u8,
    },
    /// The memory system reported an error.
    External,
    /// The access was not aligned for its memory type.
    Alignment,
    /// Another code, by number.
    Other(u8),
}

impl Fault {
    fn decode(code: u8) -> Self {
        let level = code & 0b11;
        match code >> 2 {
            0b0000 => Self::AddressSize { level },
            0b0001 => Self::Translation { level },
            0b0010 => Self::AccessFlag { level },
            0b0011 => Self::Permission { level },
            _ if code == 0b01_0000 => Self::External,
            _ if code == 0b10_0001 => Self::Alignment,
            _ => Self::Other(code),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AddressSize { level } => write!(f, "address size fault, level {level}"),
            Self::Translation { level } => {
                write!(f, "translation fault (not mapped), level {level}")
            }
            Self::AccessFlag { level } => write!(f, "access flag fault, level {level}"),
            Self::Permission { level } => write!(f, "permission fault, level {level}"),
            Self::External => f.write_str("synchronous external abort"),
            Self::Alignment => f.write_str("alignment fault"),
            Self::Other(code) => write!(f, "fault status {code:#04x}"),
        }
    }
}

impl Syndrome {
    /// Decodes an ESR_ELx value.
    #[must_use]
    pub fn decode(esr: u64) -> Self {
        let class = ((esr >> 26) & 0x3f) as u8;
        let iss = (esr & 0x01ff_ffff) as u32;
        let imm = iss as u16;
        let fault = Fault::decode((iss & 0x3f) as u8);
        match class {
            0x00 => Self::Unknown,
            0x01 => Self::WfiWfe,
            0x07 => Self::FpAccess,
            0x0e => Self::IllegalState,
            0x15 => Self::Svc { imm },
            0x16 => Self::Hvc { imm },
            0x17 => Self::Smc { imm },
            0x18 => Self::SystemRegister { iss },
            0x20 | 0x21 => Self::InstructionAbort {
                lower_el: class == 0x20,
                fault,
            },
            0x22 => Self::PcAlignment,
            0x24 | 0x25 => Self::DataAbort {
                lower_el: class == 0x24,
                fault,
                write: iss & (1 << 6) != 0,
                far_valid: iss & (1 << 10) == 0,
            },
            0x26 => Self::SpAlignment,
            0x2f => Self::SError,
            0x3c => Self::Brk { imm },
            class => Self::Other { class },
        }
    }

    /// Whether FAR_ELx holds the faulting address for this syndrome.
    #[must_use]
    pub fn far_valid(&self) -> bool {
        match self {
            Self::InstructionAbort { .. } | Self::PcAlignment => true,
            Self::DataAbort { far_valid, .. } => *far_valid,
            _ => false,
        }
    }
}

fn from(lower_el: bool) -> &'static str {
    if lower_el {
        "from a lower EL"
    } else {
        "in the kernel"
    }
}

impl fmt::Display for Syndrome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown => f.write_str("undefined instruction"),
            Self::WfiWfe => f.write_str("trapped WFI/WFE"),
            Self::FpAccess => f.write_str("trapped floating-point access"),
            Self::IllegalState => f.write_str("illegal execution state"),
            Self::Svc { imm } => write!(f, "SVC #{imm:#x}"),
            Self::Hvc { imm } => write!(f, "HVC #{imm:#x}"),
            Self::Smc { imm } => write!(f, "SMC #{imm:#x}"),
            Self::SystemRegister { iss } => {
                write!(f, "trapped system register access, ISS {iss:#x}")
            }
            Self::InstructionAbort { lower_el, fault } => {
                write!(f, "instruction abort {}: {fault}", from(*lower_el))
            }
            Self::PcAlignment => f.write_str("PC alignment fault"),
            Self::DataAbort {
                lower_el,
                fault,
                write,
                ..
            } => {
                let access = if *write { "write" } else { "read" };
                write!(f, "data abort {} on a {access}: {fault}", from(*lower_el))
            }
            Self::SpAlignment => f.write_str("SP alignment fault"),
            Self::SError => f.write_str("SError interrupt"),
            Self::Brk { imm } => write!(f, "BRK #{imm:#x}"),
            Self::Other { class } => write!(f, "exception class {class:#04x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Fault, Syndrome};

    #[test]
    fn data_abort_in_the_kernel() {
        // EC 0x25, IL, WnR, DFSC = translation fault level 2.
        let esr = (0x25 << 26) | (1 << 25) | (1 << 6) | 0b000110;
        let s = Syndrome::decode(esr);
        assert_eq!(
            s,
            Syndrome::DataAbort {
                lower_el: false,
                fault: Fault::Translation { level: 2 },
                write: true,
                far_valid: true
            }
        );
        assert_eq!(
            s.to_string(),
            "data abort in the kernel on a write: translation fault (not mapped), level 2"
        );
        assert!(s.far_valid());
    }

    #[test]
    fn hypercalls_are_svc_or_hvc_with_immediate_zero() {
        use super::is_hypercall;
        let il = 1 << 25;
        assert!(is_hypercall(0x15 << 26 | il));
        assert!(is_hypercall(0x16 << 26 | il));
        // A reserved immediate, any of its bits.
        for bit in 0..16 {
            assert!(!is_hypercall(0x15 << 26 | il | 1 << bit));
            assert!(!is_hypercall(0x16 << 26 | il | 1 << bit));
        }
        assert!(!is_hypercall(0x15 << 26 | il | 0xffff));
        // Other classes, AArch32's SVC and HVC among them, SMC, and a
        // 16-bit instruction's syndrome (IL clear).
        for class in (0..0x40u64).filter(|&c| c != 0x15 && c != 0x16) {
            assert!(!is_hypercall(class << 26 | il), "class {class:#x}");
        }
        assert!(!is_hypercall(0x15 << 26));
        // ISS2 (bits 36:32) is zero for these classes; anything there is not
        // a hypercall either.
        assert!(!is_hypercall(1 << 32 | 0x15 << 26 | il));
        assert_eq!(
            Syndrome::decode(0x15 << 26 | il | 1),
            Syndrome::Svc { imm: 1 }
        );
    }

    #[test]
    fn other_classes() {
        assert_eq!(
            Syndrome::decode(0x16 << 26 | 0x1234),
            Syndrome::Hvc { imm: 0x1234 }
        );
        assert_eq!(Syndrome::decode(0xf2000000).to_string(), "BRK #0x0");
        assert_eq!(
            Syndrome::decode(0x3f << 26).to_string(),
            "exception class 0x3f"
        );
        assert_eq!(
            Syndrome::decode(0x21 << 26 | 0xf).to_string(),
            "instruction abort in the kernel: permission fault, level 3"
        );
        assert_eq!(Fault::decode(0b100001), Fault::Alignment);
        assert!(!Syndrome::decode(0x24 << 26 | 1 << 10).far_valid());
    }
}
