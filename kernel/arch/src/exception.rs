// SPDX-License-Identifier: Apache-2.0 OR MIT
//! EL2 exceptions: the vector table and the saved register frame.
//!
//! `exception.S` saves a [`Frame`] and calls the handler the kernel set with
//! [`set_handler`], telling it which [`Vector`] was taken. What an exception
//! means is the kernel's business (and `hv-core`'s, for decoding); this module
//! only gets the registers to it and back.

use core::mem::{offset_of, size_of};

use crate::early::{Early, EarlyOnce};

/// The registers saved on exception entry. The handler may change them; the
/// exit path restores them, so a change takes effect at ERET.
#[repr(C)]
#[derive(Debug)]
pub struct Frame {
    /// x0 to x30.
    pub x: [u64; 31],
    /// ELR_EL2: where the exception was taken.
    pub elr: u64,
    /// SPSR_EL2: the interrupted PSTATE.
    pub spsr: u64,
    /// ESR_EL2: the syndrome.
    pub esr: u64,
    /// FAR_EL2: the faulting address, where the syndrome says it is valid.
    pub far: u64,
    /// The stack pointer at the time of the exception (EL2 exceptions only).
    pub sp: u64,
}

const _: () = assert!(offset_of!(Frame, x) == 0 && size_of::<Frame>().is_multiple_of(16));
const _: () = assert!(offset_of!(Frame, spsr) == offset_of!(Frame, elr) + 8);
const _: () = assert!(offset_of!(Frame, far) == offset_of!(Frame, esr) + 8);

/// Where an exception came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// EL2 using SP_EL0 (the kernel never does).
    CurrentElSp0,
    /// EL2 using its own stack: the kernel itself.
    CurrentElSpx,
    /// A lower exception level in AArch64: a partition.
    LowerElAarch64,
    /// A lower exception level in AArch32.
    LowerElAarch32,
}

/// What kind of exception it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Synchronous: caused by the instruction at ELR.
    Synchronous,
    /// An IRQ.
    Irq,
    /// An FIQ.
    Fiq,
    /// A system error.
    SError,
}

/// One of the sixteen vector table entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vector {
    /// Where the exception came from.
    pub source: Source,
    /// What kind it is.
    pub kind: Kind,
}

impl Vector {
    fn from_index(index: u64) -> Self {
        let source = match index / 4 {
            0 => Source::CurrentElSp0,
            1 => Source::CurrentElSpx,
            2 => Source::LowerElAarch64,
            _ => Source::LowerElAarch32,
        };
        let kind = match index % 4 {
            0 => Kind::Synchronous,
            1 => Kind::Irq,
            2 => Kind::Fiq,
            _ => Kind::SError,
        };
        Self { source, kind }
    }
}

static HANDLER: EarlyOnce<fn(&mut Frame, Vector)> = EarlyOnce::new();

/// Sets the function every exception goes to, on the boot core before the
/// MMU is on. The first call wins.
pub fn set_handler(early: &Early, handler: fn(&mut Frame, Vector)) {
    HANDLER.call_once(early, || handler);
}

core::arch::global_asm!(
    include_str!("exception.S"),
    frame_size = const size_of::<Frame>(),
    elr = const offset_of!(Frame, elr),
    esr = const offset_of!(Frame, esr),
    sp = const offset_of!(Frame, sp),
    handler = sym exception_entry,
);

/// Called by `exception.S` with the saved frame and the vector's index.
extern "C" fn exception_entry(frame: &mut Frame, index: u64) {
    let vector = Vector::from_index(index);
    if crate::serror::absorb(vector) {
        return;
    }
    match HANDLER.get() {
        Some(handler) => handler(frame, vector),
        // Before the kernel set a handler nothing can be reported.
        None => crate::cpu::park(),
    }
}
