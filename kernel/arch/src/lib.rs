// SPDX-License-Identifier: Apache-2.0 OR MIT
//! hv-arch-aarch64: Bulkhead's AArch64 EL2 backend.
//!
//! This is the one kernel crate that may say `unsafe` or write assembly. It
//! owns what Rust cannot express safely: the image header and entry code
//! (`boot.S`), self-relocation, the exception vectors (`exception.S`), the
//! EL2 MMU, PSCI calls, the per-core boot stacks and the kernel heap. Each
//! of these is wrapped in a safe API that `hv-kernel` uses; the decisions
//! (what to map, what an exception means) are made in `hv-core`.
//!
//! Design rules:
//! - Every `unsafe` block has a `// SAFETY:` comment; every `unsafe fn` a
//!   `# Safety` section.
//! - System registers through `aarch64-cpu`'s typed fields; the few raw
//!   instructions it lacks (TLB and cache maintenance, SMC/HVC) live in
//!   [`insn`].
//! - Assembly lives in `.S` files beside its Rust owner; offsets and sizes
//!   reach it as `const` operands, never as typed numbers.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(not(target_arch = "aarch64"))]
compile_error!("hv-arch-aarch64 builds only for aarch64 targets: use `cargo xtask build`");

pub mod boot;
pub mod cpu;
pub mod diagnostic;
pub mod early;
pub mod exception;
pub mod gic;
pub mod heap;
pub mod insn;
pub mod lock;
pub mod mmu;
pub mod psci;
pub mod ram;
mod serror;
pub mod smp;
pub mod speculation;
pub mod sysreg;
pub mod timer;
pub mod vcpu;
mod vm;
