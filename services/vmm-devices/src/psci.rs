// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The guest's PSCI 1.1 calls: decoding, the answers that need no state, and what the monitor
//! must do for the rest.
//!
//! The guest's device tree says `method = "hvc"`, so Linux makes its PSCI calls with HVC:
//! function ID in w0, arguments in x1..x3, result in x0 (Arm DEN 0022, PSCI 1.1, and the SMC
//! Calling Convention DEN 0028). The kernel traps the HVC and hands the registers to the
//! monitor, which calls [`PsciCall::decode`] and carries out the call as each variant's
//! documentation says, answering with the listed values. Functions come in an SMC32 form
//! (`0x84..`) and, when they take addresses, an SMC64 form (`0xC4..`); both decode to the same
//! variant, with SMC32 arguments cut to 32 bits as the convention says.
//!
//! vCPU affinity: vCPU *i* has MPIDR affinity Aff0 = *i*, Aff1 = Aff2 = Aff3 = 0, which is also
//! the `reg` of its `cpu@i` node in the device tree; [`mpidr_to_vcpu`] maps back.
//!
//! What Linux 6.1 asks, in order (`drivers/firmware/psci/psci.c`, `psci_probe`): PSCI_VERSION,
//! then for 1.0 and later PSCI_FEATURES of SMCCC_VERSION (we answer NOT_SUPPORTED, so it
//! assumes SMCCC 1.0 and asks nothing about Spectre workarounds), of CPU_SUSPEND (idle states:
//! not supported), of SYSTEM_SUSPEND and SYSTEM_RESET2 (not supported: it falls back to
//! SYSTEM_RESET), then MIGRATE_INFO_TYPE. Secondary CPUs come up with CPU_ON (SMC64),
//! `poweroff` is SYSTEM_OFF, `reboot` SYSTEM_RESET, CPU hot-unplug CPU_OFF then AFFINITY_INFO
//! from another CPU until it reads OFF.

use hv_abi::smccc::PsciError;

/// Return code: success.
pub const SUCCESS: u64 = 0;
/// Return code: the function is not implemented (-1).
pub const NOT_SUPPORTED: u64 = PsciError::NotSupported.to_register();
/// Return code: an argument is invalid (-2).
pub const INVALID_PARAMETERS: u64 = PsciError::InvalidParameters.to_register();
/// Return code: the call is not allowed now (-3).
pub const DENIED: u64 = PsciError::Denied.to_register();
/// Return code: CPU_ON of a CPU that is already on (-4).
pub const ALREADY_ON: u64 = PsciError::AlreadyOn.to_register();
/// Return code: CPU_ON of a CPU whose earlier CPU_ON is still under way (-5).
pub const ON_PENDING: u64 = PsciError::OnPending.to_register();
/// Return code: the implementation failed (-6).
pub const INTERNAL_FAILURE: u64 = PsciError::InternalFailure.to_register();
/// Return code: the target does not exist (-7).
pub const NOT_PRESENT: u64 = PsciError::NotPresent.to_register();
/// Return code: the target is disabled (-8).
pub const DISABLED: u64 = PsciError::Disabled.to_register();

/// AFFINITY_INFO answer: the CPU is on.
pub const AFFINITY_ON: u64 = 0;
/// AFFINITY_INFO answer: the CPU is off.
pub const AFFINITY_OFF: u64 = 1;
/// AFFINITY_INFO answer: a CPU_ON for it is under way.
pub const AFFINITY_ON_PENDING: u64 = 2;

/// MIGRATE_INFO_TYPE answer: no Trusted OS, or one that needs no migration.
pub const MIGRATE_INFO_NOT_REQUIRED: u64 = 2;

/// The version we implement: 1.1 (major in bits 31:16, minor in 15:0).
pub const VERSION_1_1: u64 = 0x0001_0001;

/// Function IDs (SMC32 forms; `| SMC64` gives the 64-bit form where there is one), as the
/// kernel's ABI crate defines them.
pub use hv_abi::smccc::function;

/// One PSCI call, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsciCall {
    /// PSCI_VERSION. Answer [`version`].
    Version,
    /// CPU_SUSPEND. Not advertised ([`features`] says NOT_SUPPORTED, so Linux never uses it
    /// for idle), but the specification makes it mandatory: a monitor may treat it as a
    /// standby request, letting the vCPU wait for an interrupt and answering [`SUCCESS`]
    /// when it resumes (as after WFI), or answer [`NOT_SUPPORTED`].
    CpuSuspend {
        /// The requested power state.
        power_state: u64,
        /// Where a powerdown state would resume.
        entry: u64,
        /// x0 at that resume.
        context_id: u64,
    },
    /// CPU_OFF. Stop the calling vCPU for good (mark it off, so that AFFINITY_INFO reads
    /// [`AFFINITY_OFF`] and a later CPU_ON may start it again); the call does not return, so
    /// there is no answer. Answer [`DENIED`] only if the vCPU must not stop.
    CpuOff,
    /// CPU_ON. Map `target_mpidr` with [`mpidr_to_vcpu`]: no such vCPU is
    /// [`INVALID_PARAMETERS`]; one already running is [`ALREADY_ON`]; one being started is
    /// [`ON_PENDING`]. Otherwise reset the target vCPU to its architectural entry state (EL1h,
    /// MMU and caches off, DAIF masked, the same register width as the caller) with PC =
    /// `entry` and x0 = `context_id`, start it, and answer [`SUCCESS`]. An `entry` outside the
    /// guest's RAM may be refused with [`INVALID_PARAMETERS`].
    CpuOn {
        /// MPIDR of the vCPU to start.
        target_mpidr: u64,
        /// Its first instruction's address.
        entry: u64,
        /// Its x0.
        context_id: u64,
    },
    /// AFFINITY_INFO. For `level` 0, answer [`AFFINITY_ON`], [`AFFINITY_OFF`] or
    /// [`AFFINITY_ON_PENDING`] for the vCPU `target` names ([`INVALID_PARAMETERS`] if none);
    /// levels above 0 (clusters) are [`INVALID_PARAMETERS`] as PSCI 1.0 allows.
    AffinityInfo {
        /// MPIDR of the vCPU asked about.
        target: u64,
        /// The affinity level (0 for a single CPU).
        level: u64,
    },
    /// MIGRATE_INFO_TYPE. Answer [`MIGRATE_INFO_NOT_REQUIRED`].
    MigrateInfoType,
    /// SYSTEM_OFF. Stop every vCPU of the guest and report it as powered off; no answer.
    SystemOff,
    /// SYSTEM_RESET. Stop every vCPU, reload the guest (kernel, initrd, device tree, fresh
    /// device models) and start vCPU 0 again; no answer.
    SystemReset,
    /// PSCI_FEATURES. Answer [`features`] of `function`.
    Features {
        /// The function ID asked about.
        function: u32,
    },
    /// Anything else, PSCI or not. Answer [`NOT_SUPPORTED`].
    Unknown {
        /// The function ID (w0).
        function_id: u32,
    },
}

impl PsciCall {
    /// Decodes the call in x0..x3. Only w0 names the function (the SMC Calling Convention
    /// ignores x0's upper half); SMC32 forms use only the low 32 bits of their arguments.
    pub fn decode(function_id: u64, x1: u64, x2: u64, x3: u64) -> Self {
        let id = function_id as u32;
        let smc64 = id & function::SMC64 != 0;
        let arg = |x: u64| if smc64 { x } else { u64::from(x as u32) };
        let (x1, x2, x3) = (arg(x1), arg(x2), arg(x3));
        let has_smc64_form = matches!(
            id & !function::SMC64,
            function::CPU_SUSPEND | function::CPU_ON | function::AFFINITY_INFO
        );
        if smc64 && !has_smc64_form {
            return Self::Unknown { function_id: id };
        }
        match id & !function::SMC64 {
            function::PSCI_VERSION => Self::Version,
            function::CPU_SUSPEND => Self::CpuSuspend {
                power_state: x1,
                entry: x2,
                context_id: x3,
            },
            function::CPU_OFF => Self::CpuOff,
            function::CPU_ON => Self::CpuOn {
                target_mpidr: x1,
                entry: x2,
                context_id: x3,
            },
            function::AFFINITY_INFO => Self::AffinityInfo {
                target: x1,
                level: x2,
            },
            function::MIGRATE_INFO_TYPE => Self::MigrateInfoType,
            function::SYSTEM_OFF => Self::SystemOff,
            function::SYSTEM_RESET => Self::SystemReset,
            function::PSCI_FEATURES => Self::Features {
                function: x1 as u32,
            },
            _ => Self::Unknown { function_id: id },
        }
    }
}

/// The answer to PSCI_VERSION: 1.1.
pub fn version() -> u64 {
    VERSION_1_1
}

/// The answer to PSCI_FEATURES: [`SUCCESS`] for the functions the monitor implements
/// (PSCI_VERSION, CPU_ON in both forms, CPU_OFF, AFFINITY_INFO in both forms,
/// MIGRATE_INFO_TYPE, SYSTEM_OFF, SYSTEM_RESET, PSCI_FEATURES), [`NOT_SUPPORTED`] for
/// everything else, SMCCC_VERSION included.
pub fn features(function: u32) -> u64 {
    use function::{
        AFFINITY_INFO, CPU_OFF, CPU_ON, MIGRATE_INFO_TYPE, PSCI_FEATURES, PSCI_VERSION, SMC64,
        SYSTEM_OFF, SYSTEM_RESET,
    };
    match function {
        PSCI_VERSION | CPU_OFF | CPU_ON | AFFINITY_INFO | MIGRATE_INFO_TYPE | SYSTEM_OFF
        | SYSTEM_RESET | PSCI_FEATURES => SUCCESS,
        f if f == CPU_ON | SMC64 || f == AFFINITY_INFO | SMC64 => SUCCESS,
        _ => NOT_SUPPORTED,
    }
}

/// Affinity fields of an MPIDR: Aff0 (7:0), Aff1 (15:8), Aff2 (23:16), Aff3 (39:32).
pub const MPIDR_AFFINITY_MASK: u64 = 0xff_00ff_ffff;

/// The vCPU an MPIDR names, under the scheme Aff0 = vCPU index and Aff1..3 = 0, or `None`
/// if it names none of the `vcpus` vCPUs. Bits outside the affinity fields (U, MT, RES1)
/// are ignored.
pub fn mpidr_to_vcpu(mpidr: u64, vcpus: u8) -> Option<u8> {
    let affinity = mpidr & MPIDR_AFFINITY_MASK;
    u8::try_from(affinity).ok().filter(|&index| index < vcpus)
}

/// The MPIDR affinity of vCPU `index` (Aff0 = index): its `cpu@index` node's `reg`, and
/// the affinity bits the kernel puts in its VMPIDR_EL2 (which also sets RES1 bit 31).
pub fn vcpu_mpidr(index: u8) -> u64 {
    u64::from(index)
}

#[cfg(test)]
mod tests {
    use super::{
        ALREADY_ON, DENIED, DISABLED, INTERNAL_FAILURE, INVALID_PARAMETERS, NOT_PRESENT,
        NOT_SUPPORTED, ON_PENDING, PsciCall, SUCCESS, features, function, mpidr_to_vcpu,
        vcpu_mpidr, version,
    };

    #[test]
    fn return_codes_are_twos_complement() {
        let codes = [
            SUCCESS,
            NOT_SUPPORTED,
            INVALID_PARAMETERS,
            DENIED,
            ALREADY_ON,
            ON_PENDING,
            INTERNAL_FAILURE,
            NOT_PRESENT,
            DISABLED,
        ];
        for (value, code) in codes.into_iter().enumerate() {
            assert_eq!(code as i64, -(value as i64));
        }
        assert_eq!(NOT_SUPPORTED, 0xffff_ffff_ffff_ffff);
        // An SMC32 caller reads w0: still -1.
        assert_eq!(NOT_SUPPORTED as u32 as i32, -1);
    }

    #[test]
    fn version_is_1_1() {
        assert_eq!(version(), 0x1_0001);
        assert_eq!(PsciCall::decode(0x8400_0000, 9, 9, 9), PsciCall::Version);
    }

    #[test]
    fn decodes_cpu_on_in_both_conventions() {
        assert_eq!(
            PsciCall::decode(0xc400_0003, 0x1, 0x4020_0000, 0xdead_beef_0000),
            PsciCall::CpuOn {
                target_mpidr: 1,
                entry: 0x4020_0000,
                context_id: 0xdead_beef_0000
            }
        );
        // SMC32: arguments are cut to 32 bits.
        assert_eq!(
            PsciCall::decode(
                0x8400_0003,
                0xffff_ffff_0000_0002,
                0x1_4020_0000,
                0x1_0000_0007
            ),
            PsciCall::CpuOn {
                target_mpidr: 2,
                entry: 0x4020_0000,
                context_id: 7
            }
        );
    }

    #[test]
    fn only_w0_names_the_function() {
        assert_eq!(
            PsciCall::decode(0xffff_ffff_8400_0008, 0, 0, 0),
            PsciCall::SystemOff
        );
    }

    #[test]
    fn decodes_every_call() {
        let cases = [
            (
                0x8400_0001,
                PsciCall::CpuSuspend {
                    power_state: 1,
                    entry: 2,
                    context_id: 3,
                },
            ),
            (
                0xc400_0001,
                PsciCall::CpuSuspend {
                    power_state: 1,
                    entry: 2,
                    context_id: 3,
                },
            ),
            (0x8400_0002, PsciCall::CpuOff),
            (
                0x8400_0004,
                PsciCall::AffinityInfo {
                    target: 1,
                    level: 2,
                },
            ),
            (
                0xc400_0004,
                PsciCall::AffinityInfo {
                    target: 1,
                    level: 2,
                },
            ),
            (0x8400_0006, PsciCall::MigrateInfoType),
            (0x8400_0008, PsciCall::SystemOff),
            (0x8400_0009, PsciCall::SystemReset),
            (0x8400_000a, PsciCall::Features { function: 1 }),
            (
                0x8400_0005,
                PsciCall::Unknown {
                    function_id: 0x8400_0005,
                },
            ),
            (
                0x8400_0012,
                PsciCall::Unknown {
                    function_id: 0x8400_0012,
                },
            ),
            (
                0x8000_0000,
                PsciCall::Unknown {
                    function_id: 0x8000_0000,
                },
            ),
            (0, PsciCall::Unknown { function_id: 0 }),
        ];
        for (id, call) in cases {
            assert_eq!(PsciCall::decode(id, 1, 2, 3), call, "{id:#x}");
        }
    }

    #[test]
    fn smc64_forms_exist_only_for_calls_that_take_addresses() {
        for id in [
            0xc400_0000,
            0xc400_0002,
            0xc400_0008,
            0xc400_0009,
            0xc400_000a,
        ] {
            assert_eq!(
                PsciCall::decode(id, 0, 0, 0),
                PsciCall::Unknown {
                    function_id: id as u32
                }
            );
        }
    }

    #[test]
    fn features_lists_what_we_implement() {
        for id in [
            0x8400_0000,
            0x8400_0002,
            0x8400_0003,
            0xc400_0003,
            0x8400_0004,
            0xc400_0004,
            0x8400_0006,
            0x8400_0008,
            0x8400_0009,
            0x8400_000a,
        ] {
            assert_eq!(features(id), SUCCESS, "{id:#x}");
        }
        for id in [
            function::SMCCC_VERSION,
            function::CPU_SUSPEND,
            function::CPU_SUSPEND | function::SMC64,
            function::MIGRATE,
            function::MIGRATE_INFO_UP_CPU,
            function::SYSTEM_SUSPEND,
            function::SYSTEM_RESET2,
            function::SYSTEM_RESET2 | function::SMC64,
            0xc400_0000,
            0,
            u32::MAX,
        ] {
            assert_eq!(features(id), NOT_SUPPORTED, "{id:#x}");
        }
    }

    #[test]
    fn mpidrs_map_to_vcpus_by_aff0() {
        assert_eq!(mpidr_to_vcpu(0, 1), Some(0));
        assert_eq!(mpidr_to_vcpu(3, 4), Some(3));
        assert_eq!(mpidr_to_vcpu(4, 4), None);
        // RES1 bit 31, U (30) and MT (24) do not matter.
        assert_eq!(mpidr_to_vcpu(0x8000_0002, 4), Some(2));
        assert_eq!(mpidr_to_vcpu(0xc100_0001, 4), Some(1));
        // Any other affinity level does.
        assert_eq!(mpidr_to_vcpu(0x100, 4), None);
        assert_eq!(mpidr_to_vcpu(0x1_0000, 4), None);
        assert_eq!(mpidr_to_vcpu(0x1_0000_0000, 4), None);
        assert_eq!(mpidr_to_vcpu(u64::MAX, 255), None);
        for index in 0..8 {
            assert_eq!(mpidr_to_vcpu(vcpu_mpidr(index), 8), Some(index));
        }
    }
}
