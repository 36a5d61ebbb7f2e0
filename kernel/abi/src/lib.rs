// SPDX-License-Identifier: Apache-2.0 OR MIT
//! hv-abi: the one definition of everything that crosses the kernel's boundary.
//!
//! Today that is two things: the Arm SMC Calling Convention function IDs the
//! kernel uses to talk to firmware (PSCI), and the console protocol through
//! which the kernel tells the host runner (`cargo xtask`) how a boot went.
//! Hypercall numbers, error codes and capability rights join this crate with
//! partitions. Kernel, services and host tools all take these constants from
//! here, so no number is ever written down twice.
//!
//! Design rules: no dependencies, no `unsafe`, `no_std`.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod console;
pub mod smccc;
