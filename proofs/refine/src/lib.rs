// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Exhaustive bounded checking of `hv-core`'s real step functions on a small
//! system ([`system`]), each step against an executable specification
//! ([`spec`]), with the security properties of
//! `hv_core::state::properties` checked in every state reached, and a
//! two-run noninterference check ([`check`]). The binary prints the
//! results for `cargo xtask prove`; see `README.md`.
#![forbid(unsafe_code)]

pub mod check;
pub mod spec;
pub mod system;
