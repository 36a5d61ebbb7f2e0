// SPDX-License-Identifier: Apache-2.0 OR MIT
//! PSCI: starting cores and powering the machine off through firmware.
//!
//! The conduit (SMC or HVC) comes from the device tree and is set once at
//! boot with [`set_conduit`]; until then, and when the device tree names
//! none, calls fail with `NotSupported`.

use core::sync::atomic::{AtomicU8, Ordering};

use hv_abi::smccc::{
    PsciError, PsciFunction, SMCCC_ARCH_FEATURES, SMCCC_ARCH_WORKAROUND_1, SMCCC_ARCH_WORKAROUND_3,
    SMCCC_VERSION,
};
use hv_core::platform::Conduit;
use hv_core::speculation::Firmware;

use crate::insn;

const NONE: u8 = 0;
const SMC: u8 = 1;
const HVC: u8 = 2;

static CONDUIT: AtomicU8 = AtomicU8::new(NONE);

/// Sets how PSCI is called, as the device tree says.
pub fn set_conduit(conduit: Option<Conduit>) {
    let value = match conduit {
        None => NONE,
        Some(Conduit::Smc) => SMC,
        Some(Conduit::Hvc) => HVC,
    };
    CONDUIT.store(value, Ordering::Relaxed);
}

/// Makes a PSCI call and decodes its result.
pub fn call(function: PsciFunction, x1: u64, x2: u64, x3: u64) -> Result<u64, PsciError> {
    smccc(function as u32, x1, x2, x3)
}

/// Makes any SMCCC call through the conduit and decodes its result. Only
/// for IDs firmware is known to implement: older firmware may treat an
/// unknown one as an undefined instruction.
fn smccc(function: u32, x1: u64, x2: u64, x3: u64) -> Result<u64, PsciError> {
    let x0 = match CONDUIT.load(Ordering::Relaxed) {
        SMC => insn::smc(function, x1, x2, x3),
        HVC => insn::hvc(function, x1, x2, x3),
        _ => return Err(PsciError::NotSupported),
    };
    PsciError::check(x0)
}

/// Which Spectre workarounds firmware offers this core, found as SMCCC 1.1
/// says (and Linux does): PSCI 1.0 or later, whose `PSCI_FEATURES` says
/// `SMCCC_VERSION` exists, which says 1.1 or later; then
/// `SMCCC_ARCH_FEATURES` for each workaround (0: implemented and needed
/// here). Each step is taken only if the one before allows it, so no call
/// reaches firmware that might not know it. QEMU's built-in PSCI stops at
/// the first or second step.
pub fn spectre_workarounds() -> Firmware {
    let none = Firmware::default();
    let Ok((major, _)) = version() else {
        return none;
    };
    if major < 1 || call(PsciFunction::Features, u64::from(SMCCC_VERSION), 0, 0).is_err() {
        return none;
    }
    // 1.1 or later: ARCH_FEATURES exists.
    if !smccc(SMCCC_VERSION, 0, 0, 0).is_ok_and(|version| version >= 0x1_0001) {
        return none;
    }
    let needed = |id: u32| smccc(SMCCC_ARCH_FEATURES, u64::from(id), 0, 0) == Ok(0);
    Firmware {
        workaround_1: needed(SMCCC_ARCH_WORKAROUND_1),
        workaround_3: needed(SMCCC_ARCH_WORKAROUND_3),
    }
}

/// Calls firmware's `SMCCC_ARCH_WORKAROUND_1` or `_3` (`which`), found by
/// [`spectre_workarounds`]; it returns nothing.
pub(crate) fn workaround(which: u32) {
    let _ = smccc(which, 0, 0, 0);
}

/// The PSCI version as (major, minor).
pub fn version() -> Result<(u16, u16), PsciError> {
    let v = call(PsciFunction::Version, 0, 0, 0)?;
    Ok(((v >> 16) as u16, v as u16))
}

/// Powers the machine off. Returns only if firmware refused.
pub fn system_off() -> PsciError {
    match call(PsciFunction::SystemOff, 0, 0, 0) {
        Ok(_) => PsciError::InternalFailure,
        Err(e) => e,
    }
}
