// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Tests of the kernel state and its step functions.
//!
//! `support` builds seeds and a `Machine` that plays the kernel glue: it
//! holds each core's live x0..x7, applies every [`super::Outcome`], and
//! checks every invariant after every step. The other modules test one area
//! each; `machine` is the proptest state machine over random steps.

mod caps;
mod control;
mod domains;
mod fault;
mod ipc;
mod machine;
mod notify;
mod properties;
mod reload;
mod reply;
mod sched;
mod seed;
mod support;
mod timing;
mod vm;
mod watch;
