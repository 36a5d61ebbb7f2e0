// SPDX-License-Identifier: Apache-2.0 OR MIT
//! plat-qemu-virt: Bulkhead on QEMU's `virt` machine.
//!
//! This binary crate is the whole of a board: the facts from
//! `platform.toml` (which its build script turns into constants) and the
//! console (a PL011, `plat_pl011_console`), put together by
//! `hv_kernel::board!`, which also names the kernel entry. The kernel finds
//! everything else (RAM, cores, GICv2 or GICv3, timer) in the device tree
//! QEMU passes.
//!
//! Unsafe code: none but the kernel entry `board!` exports by name.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

include!(concat!(env!("OUT_DIR"), "/platform.rs"));

hv_kernel::board! {
    /// QEMU's `virt` machine.
    QemuVirt,
    console: |early, uart, clock| plat_pl011_console::pl011(early, uart, clock, || {}),
}
