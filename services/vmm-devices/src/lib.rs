// SPDX-License-Identifier: Apache-2.0 OR MIT
//! vmm-devices: what Bulkhead's virtual machine monitor knows about its guest's hardware.
//!
//! A Linux guest runs at EL1 in its own partition; every access it makes outside its RAM
//! reaches the monitor (`services/vmm`) as a decoded access, and the monitor answers from the
//! models here. This crate is the monitor's pure logic, tested on the host:
//!
//! - [`image`]: the arm64 `Image` header and where the kernel, initrd and device tree go.
//! - [`fdt`]: the guest's device tree (QEMU `virt`-like), built with `vm-fdt`.
//! - [`pl011`]: the PL011 UART, as Linux's `amba-pl011` driver drives it.
//! - [`gic`]: the GICv3 distributor and redistributors, and the GICv2 distributor; the
//!   kernel owns the list registers and delivers what the monitor asks for.
//! - [`psci`]: decoding the guest's PSCI calls and the answers that need no state.
//! - [`passthrough`]: the platform devices the manifest passes through to the guest
//!   (`BULKHEAD_GUEST_DEVICES`), which the device tree describes.
//!
//! Design rules:
//! - `no_std` with `alloc`, no `unsafe`, no dependency on the rest of the workspace: the
//!   monitor depends on this crate, never the reverse.
//! - No panics on guest input: every offset, size, value and vCPU index a guest (or a
//!   confused monitor) can produce is answered, unknown registers reading as zero and
//!   ignoring writes; fallible set-up returns errors that say what is wrong.
//! - Models are state machines with no clock and no I/O: the monitor feeds accesses and input
//!   in, and carries out what they return (bytes to print, interrupts to inject).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod fdt;
pub mod gic;
pub mod image;
pub mod layout;
pub mod passthrough;
pub mod pl011;
pub mod psci;
