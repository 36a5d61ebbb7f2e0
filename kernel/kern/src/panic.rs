// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The kernel's panic handler: say what and where, then power off.
//!
//! The first panic on any core prints one line starting with
//! `hv_abi::console::PANIC` (the host runner treats it as a failure) and
//! powers the machine off through PSCI. A panic on another core meanwhile,
//! or inside this handler, just parks that core.

use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};

use hv_abi::console::PANIC;
use hv_arch_aarch64 as arch;

use crate::console::emergency_print;

static PANICKING: AtomicBool = AtomicBool::new(false);

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    // With the MMU off, a swap would need exclusives, and only the boot
    // core runs: a load and a store do (`hv_arch_aarch64::early`).
    let earlier = if arch::cpu::exclusives_work() {
        PANICKING.swap(true, Ordering::AcqRel)
    } else {
        let earlier = PANICKING.load(Ordering::Acquire);
        PANICKING.store(true, Ordering::Release);
        earlier
    };
    if earlier {
        arch::cpu::park();
    }
    let core = arch::cpu::index();
    match info.location() {
        Some(at) => emergency_print(format_args!(
            "{PANIC}{} at {}:{}:{} on core {core}",
            info.message(),
            at.file(),
            at.line(),
            at.column()
        )),
        None => emergency_print(format_args!("{PANIC}{} on core {core}", info.message())),
    }
    let refused = arch::psci::system_off();
    emergency_print(format_args!(
        "{PANIC}power-off failed ({refused:?}); core parked"
    ));
    arch::cpu::park()
}
