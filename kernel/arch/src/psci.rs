// SPDX-License-Identifier: Apache-2.0 OR MIT
//! PSCI: starting cores and powering the machine off through firmware.
//!
//! The conduit (SMC or HVC) comes from the device tree and is set once at
//! boot with [`set_conduit`]; until then, and when the device tree names
//! none, calls fail with `NotSupported`.

use core::sync::atomic::{AtomicU8, Ordering};

use hv_abi::smccc::{PsciError, PsciFunction};
use hv_core::platform::Conduit;

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
    let x0 = match CONDUIT.load(Ordering::Relaxed) {
        SMC => insn::smc(function as u32, x1, x2, x3),
        HVC => insn::hvc(function as u32, x1, x2, x3),
        _ => return Err(PsciError::NotSupported),
    };
    PsciError::check(x0)
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
