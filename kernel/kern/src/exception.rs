// SPDX-License-Identifier: Apache-2.0 OR MIT
//! What the kernel does with an exception: today, every exception is
//! unexpected, so it is reported in full and the kernel panics.

use hv_abi::console::EXCEPTION;
use hv_arch_aarch64 as arch;
use hv_arch_aarch64::early::Early;
use hv_arch_aarch64::exception::{Frame, Kind, Source, Vector};
use hv_core::esr::Syndrome;

use crate::console::emergency_print;

/// Routes every EL2 exception to [`on_exception`].
pub(crate) fn install(early: &Early) {
    arch::exception::set_handler(early, on_exception);
}

fn on_exception(frame: &mut Frame, vector: Vector) {
    if vector.kind == Kind::Irq && vector.source == Source::CurrentElSpx {
        // An interrupt while the core idled in the kernel.
        crate::dispatch::interrupt_while_idle(arch::cpu::index());
        return;
    }
    let syndrome = Syndrome::decode(frame.esr);
    let core = arch::cpu::index();
    emergency_print(format_args!(
        "{EXCEPTION}{:?} from {:?} on core {core}",
        vector.kind, vector.source
    ));
    emergency_print(format_args!(
        "{EXCEPTION}ESR_EL2 {:#010x}: {syndrome}",
        frame.esr
    ));
    let far_note = if syndrome.far_valid() {
        ""
    } else {
        " (not valid for this exception)"
    };
    emergency_print(format_args!(
        "{EXCEPTION}FAR_EL2 {:#018x}{far_note}",
        frame.far
    ));
    emergency_print(format_args!(
        "{EXCEPTION}ELR_EL2 {:#018x}  SPSR_EL2 {:#010x}  SP {:#018x}",
        frame.elr, frame.spsr, frame.sp
    ));
    panic!("unexpected exception: {syndrome} (ELR {:#x})", frame.elr);
}

/// Fails on purpose when `bulkhead.inject=` says so, so that tests can prove
/// that failures are reported: `panic`, `data-abort` (a read of an unmapped
/// address) or `undefined` (an undefined instruction).
#[cfg(feature = "fault-injection")]
pub(crate) fn inject(info: &hv_core::platform::PlatformInfo<'_>) {
    /// An address no kernel table maps: below 2^48, far above any RAM.
    const UNMAPPED: u64 = 0xdead_beef_0000;
    match info.boot_option("bulkhead.inject") {
        None => {}
        Some("panic") => panic!("fault injection: bulkhead.inject=panic"),
        Some("data-abort") => {
            if let Err(e) = arch::diagnostic::read_unmapped(UNMAPPED) {
                panic!("fault injection: {e:?} is mapped, cannot fault on it");
            }
        }
        Some("undefined") => arch::diagnostic::undefined_instruction(),
        Some(other) => crate::console::report!("ignoring unknown bulkhead.inject={other}"),
    }
}
