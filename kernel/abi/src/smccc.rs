// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Arm SMC Calling Convention (SMCCC, Arm DEN 0028) and PSCI (Arm DEN 0022).
//!
//! The kernel calls firmware through SMC (or HVC, as the device tree says) to
//! start cores and power the machine off. The function IDs and return codes
//! are fixed by Arm; they live here so that the kernel and, later, the virtual
//! machine monitors that emulate PSCI for guests share one definition.

/// PSCI and SMCCC function IDs, SMC32 forms (`| SMC64` gives the 64-bit
/// form where there is one): the kernel's calls to firmware, the monitors'
/// PSCI emulation and the tests that make the calls all read them here.
pub mod function {
    /// Bit 30 of a function ID: the SMC64 calling convention.
    pub const SMC64: u32 = 1 << 30;
    /// PSCI_VERSION.
    pub const PSCI_VERSION: u32 = 0x8400_0000;
    /// CPU_SUSPEND (also SMC64).
    pub const CPU_SUSPEND: u32 = 0x8400_0001;
    /// CPU_OFF.
    pub const CPU_OFF: u32 = 0x8400_0002;
    /// CPU_ON (also SMC64).
    pub const CPU_ON: u32 = 0x8400_0003;
    /// AFFINITY_INFO (also SMC64).
    pub const AFFINITY_INFO: u32 = 0x8400_0004;
    /// MIGRATE (also SMC64).
    pub const MIGRATE: u32 = 0x8400_0005;
    /// MIGRATE_INFO_TYPE.
    pub const MIGRATE_INFO_TYPE: u32 = 0x8400_0006;
    /// MIGRATE_INFO_UP_CPU (also SMC64).
    pub const MIGRATE_INFO_UP_CPU: u32 = 0x8400_0007;
    /// SYSTEM_OFF.
    pub const SYSTEM_OFF: u32 = 0x8400_0008;
    /// SYSTEM_RESET.
    pub const SYSTEM_RESET: u32 = 0x8400_0009;
    /// PSCI_FEATURES.
    pub const PSCI_FEATURES: u32 = 0x8400_000a;
    /// SYSTEM_SUSPEND (also SMC64).
    pub const SYSTEM_SUSPEND: u32 = 0x8400_000e;
    /// SYSTEM_RESET2 (also SMC64).
    pub const SYSTEM_RESET2: u32 = 0x8400_0012;
    /// SMCCC_VERSION (SMCCC 1.1): returns major << 16 | minor. Call it only
    /// if PSCI_FEATURES says it is implemented (older firmware treats an
    /// unknown ID as an undefined instruction). Linux asks PSCI_FEATURES
    /// about it.
    pub const SMCCC_VERSION: u32 = 0x8000_0000;
    /// SMCCC_ARCH_FEATURES (SMCCC 1.1): x1 = an architecture function ID; 0
    /// if implemented (for the workarounds: and needed on this core), 1 for
    /// a workaround this core does not need, negative if not implemented.
    pub const SMCCC_ARCH_FEATURES: u32 = 0x8000_0001;
    /// SMCCC_ARCH_WORKAROUND_1: invalidates the branch predictor
    /// (Spectre-v2, CVE-2017-5715).
    pub const SMCCC_ARCH_WORKAROUND_1: u32 = 0x8000_8000;
    /// SMCCC_ARCH_WORKAROUND_3: invalidates the branch predictor and clears
    /// the branch history (Spectre-v2 and Spectre-BHB, CVE-2022-23960).
    pub const SMCCC_ARCH_WORKAROUND_3: u32 = 0x8000_3FFF;
}

/// A PSCI function, by its SMCCC function ID (SMC64 IDs where one exists).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsciFunction {
    /// `PSCI_VERSION`: returns major << 16 | minor.
    Version = function::PSCI_VERSION,
    /// `CPU_OFF`: powers the calling core down.
    CpuOff = function::CPU_OFF,
    /// `CPU_ON` (SMC64): x1 = target MPIDR, x2 = entry point, x3 = context ID.
    CpuOn = function::CPU_ON | function::SMC64,
    /// `SYSTEM_OFF`: powers the machine off. Does not return.
    SystemOff = function::SYSTEM_OFF,
    /// `SYSTEM_RESET`: resets the machine. Does not return.
    SystemReset = function::SYSTEM_RESET,
    /// `PSCI_FEATURES` (PSCI 1.0): x1 = a function ID; 0 or more if
    /// implemented. The way to learn whether `SMCCC_VERSION` may be called.
    Features = function::PSCI_FEATURES,
}

pub use function::{
    SMCCC_ARCH_FEATURES, SMCCC_ARCH_WORKAROUND_1, SMCCC_ARCH_WORKAROUND_3, SMCCC_VERSION,
};

impl TryFrom<u32> for PsciFunction {
    type Error = u32;

    /// Decodes a function ID. Written out by hand, not derived, so that an
    /// unknown ID is an ordinary error value and never a panic.
    fn try_from(id: u32) -> Result<Self, u32> {
        const CPU_ON_64: u32 = function::CPU_ON | function::SMC64;
        match id {
            function::PSCI_VERSION => Ok(Self::Version),
            function::CPU_OFF => Ok(Self::CpuOff),
            CPU_ON_64 => Ok(Self::CpuOn),
            function::SYSTEM_OFF => Ok(Self::SystemOff),
            function::SYSTEM_RESET => Ok(Self::SystemReset),
            function::PSCI_FEATURES => Ok(Self::Features),
            other => Err(other),
        }
    }
}

/// A PSCI return code (negative values are errors).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsciError {
    /// -1: the function is not supported.
    NotSupported,
    /// -2: a parameter was invalid.
    InvalidParameters,
    /// -3: the caller may not do this.
    Denied,
    /// -4: the target core is already on.
    AlreadyOn,
    /// -5: the target core is being turned on.
    OnPending,
    /// -6: an internal firmware failure.
    InternalFailure,
    /// -7: the target is not present.
    NotPresent,
    /// -8: the target is disabled.
    Disabled,
    /// -9: the address is not valid.
    InvalidAddress,
    /// Any other negative value.
    Unknown(i64),
}

impl PsciError {
    /// The value a PSCI implementation leaves in x0 for this error (an
    /// [`Self::Unknown`] carries its own).
    #[must_use]
    pub const fn to_register(self) -> u64 {
        let code: i64 = match self {
            Self::NotSupported => -1,
            Self::InvalidParameters => -2,
            Self::Denied => -3,
            Self::AlreadyOn => -4,
            Self::OnPending => -5,
            Self::InternalFailure => -6,
            Self::NotPresent => -7,
            Self::Disabled => -8,
            Self::InvalidAddress => -9,
            Self::Unknown(code) => code,
        };
        code.cast_unsigned()
    }

    /// Decodes the value a PSCI call left in x0: `Ok` for 0 or any positive
    /// value, the error otherwise.
    pub fn check(x0: u64) -> Result<u64, Self> {
        // PSCI return values are signed 32-bit or 64-bit integers in x0.
        let value = x0.cast_signed();
        let value = if value > i64::from(i32::MAX) && value <= i64::from(u32::MAX) {
            i64::from((x0 as u32).cast_signed())
        } else {
            value
        };
        match value {
            0.. => Ok(x0),
            -1 => Err(Self::NotSupported),
            -2 => Err(Self::InvalidParameters),
            -3 => Err(Self::Denied),
            -4 => Err(Self::AlreadyOn),
            -5 => Err(Self::OnPending),
            -6 => Err(Self::InternalFailure),
            -7 => Err(Self::NotPresent),
            -8 => Err(Self::Disabled),
            -9 => Err(Self::InvalidAddress),
            other => Err(Self::Unknown(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{PsciError, PsciFunction};

    #[test]
    fn errors_round_trip_through_x0() {
        for e in [
            PsciError::NotSupported,
            PsciError::InvalidParameters,
            PsciError::Denied,
            PsciError::AlreadyOn,
            PsciError::OnPending,
            PsciError::InternalFailure,
            PsciError::NotPresent,
            PsciError::Disabled,
            PsciError::InvalidAddress,
            PsciError::Unknown(-42),
        ] {
            assert_eq!(PsciError::check(e.to_register()), Err(e));
        }
    }

    #[test]
    fn function_ids_round_trip() {
        for f in [
            PsciFunction::Version,
            PsciFunction::CpuOff,
            PsciFunction::CpuOn,
            PsciFunction::SystemOff,
            PsciFunction::SystemReset,
            PsciFunction::Features,
        ] {
            assert_eq!(PsciFunction::try_from(f as u32), Ok(f));
        }
        assert_eq!(PsciFunction::try_from(0x1234), Err(0x1234));
    }

    #[test]
    fn return_codes_decode_in_32_and_64_bit_form() {
        assert_eq!(PsciError::check(0), Ok(0));
        assert_eq!(PsciError::check(0x1_0001), Ok(0x1_0001));
        assert_eq!(PsciError::check(u64::MAX), Err(PsciError::NotSupported));
        assert_eq!(PsciError::check(0xFFFF_FFFC), Err(PsciError::AlreadyOn));
        assert_eq!(
            PsciError::check((-9i64).cast_unsigned()),
            Err(PsciError::InvalidAddress)
        );
        assert_eq!(
            PsciError::check((-42i64).cast_unsigned()),
            Err(PsciError::Unknown(-42))
        );
    }
}
