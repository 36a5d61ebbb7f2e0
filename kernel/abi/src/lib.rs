// SPDX-License-Identifier: Apache-2.0 OR MIT
//! hv-abi: the one definition of everything that crosses the kernel's boundary.
//!
//! - [`hypercall`]: the hypercall numbers, register convention, status codes,
//!   message descriptor, capability slots, badges and rights that partitions
//!   use to talk to the kernel (specified in full in `docs/abi.md`);
//! - [`smccc`]: the PSCI function IDs the kernel uses to talk to firmware;
//! - [`vm`]: what virtual machines add: the exit messages a guest's
//!   monitor receives, its answers, the `Vcpu` calls' registers and states;
//! - [`console`]: the console protocol through which the kernel tells the host
//!   runner (`cargo xtask`) how a boot went.
//!
//! Kernel, services and host tools all take these constants from here, so no
//! number is ever written down twice.
//!
//! Design rules: no dependencies, no `unsafe`, `no_std`.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod console;
pub mod hypercall;
pub mod smccc;
pub mod vm;
