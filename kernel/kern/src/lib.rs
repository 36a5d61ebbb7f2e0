// SPDX-License-Identifier: Apache-2.0 OR MIT
//! hv-kernel: Bulkhead's kernel, wiring `hv-core` to the architecture.
//!
//! A platform crate (one per board, under `platforms/`) implements
//! [`Platform`] and names [`start`] as its entry with
//! `hv_arch_aarch64::kernel_entry!`. From there the kernel reads the device
//! tree, maps itself, sets up its heap, brings up every core, prints the boot
//! report and parks each core in its idle loop.
//!
//! Design rules:
//! - No `unsafe`: what needs it is a safe API in `hv-arch-aarch64`.
//! - No `cfg(feature = "board")`: a board is a crate implementing [`Platform`].
//! - The kernel writes to the console only through [`console`], which keeps
//!   each line whole when several cores print.
//! - The modules form a tree (a host test in `tools/xtask/src/layers.rs`
//!   checks it): `boot` uses any; `exception` uses `dispatch`; `dispatch`
//!   uses `irq` and `system`; `smp` uses `irq`; every one may use `console`;
//!   `console` and `irq` use none.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod boot;
pub mod console;
mod dispatch;
mod exception;
mod irq;
mod panic;
mod shared;
mod smp;
mod system;

pub use boot::start;

pub use hv_arch_aarch64::early::Early;
// For `board!`, which platform crates expand.
use hv_core::platform::Uart;
#[doc(hidden)]
pub use {hv_arch_aarch64 as __arch, hv_core as __core};

/// What a board gives the kernel.
pub trait Platform {
    /// The board's name, as the boot report shows it.
    const NAME: &'static str;

    /// The console UART, from the board's `platform.toml`. The kernel prints
    /// through it from its first line on, before it has read the device tree,
    /// so that even a device tree it cannot read is reported; the device
    /// tree's `stdout-path` is then only cross-checked against it.
    const CONSOLE: Uart;

    /// The devices partitions may own, from the board's `platform.toml`
    /// (`[devices]`): the ones the manifest compiler resolves names
    /// against. The kernel refuses a boot package that gives any other.
    const DEVICES: &'static [hv_core::devices::Peripheral];

    /// Sets up `uart` as the kernel's console. Called once, on core 0, with
    /// the MMU off (so no lock or `spin::Once`: [`Early`] and
    /// `hv_arch_aarch64::early::EarlyOnce` are what may be used); the kernel
    /// maps `uart.registers` as device memory before turning the MMU on.
    fn console(early: &Early, uart: &Uart) -> &'static dyn console::Console;
}

/// Defines a board: a unit struct named `$board` that implements
/// [`Platform`] with the facts its `platform.toml` gave the build (the
/// constants `hv_manifest::platform::Platform::build_script` writes, which
/// the crate must `include!` first: `NAME`, `CONSOLE`, `CONSOLE_CLOCK_HZ`,
/// `DEVICES`), and whose console is what `$console` makes of the
/// [`Early`] token, the console UART and its clock; and names
/// [`start`] for it as the kernel entry.
///
/// ```ignore
/// include!(concat!(env!("OUT_DIR"), "/platform.rs"));
///
/// hv_kernel::board! {
///     /// QEMU's `virt` machine.
///     QemuVirt,
///     console: |early, uart, clock| plat_pl011_console::pl011(early, uart, clock, || {}),
/// }
/// ```
///
/// The kernel entry exports one unmangled function, so the crate must
/// allow the `unsafe_code` lint for it.
#[macro_export]
macro_rules! board {
    ($(#[$meta:meta])* $board:ident, console: $console:expr $(,)?) => {
        $(#[$meta])*
        struct $board;

        impl $crate::Platform for $board {
            const NAME: &'static str = NAME;
            const CONSOLE: $crate::__core::platform::Uart = CONSOLE;
            const DEVICES: &'static [$crate::__core::devices::Peripheral] = DEVICES;

            fn console(
                early: &$crate::Early,
                uart: &$crate::__core::platform::Uart,
            ) -> &'static dyn $crate::console::Console {
                ($console)(early, uart, CONSOLE_CLOCK_HZ)
            }
        }

        $crate::__arch::kernel_entry!($crate::start::<$board>);
    };
}
