// SPDX-License-Identifier: Apache-2.0 OR MIT
//! What the boot core may do before its MMU is on: set values once without
//! exclusive loads and stores.
//!
//! With the MMU off, every data access is to Device memory, and a real
//! Cortex-A72 (the Raspberry Pi 4's) need not honour an exclusive pair
//! (LDAXR/STLXR, what `spin::Once` and `spin::Mutex` are made of on an
//! Armv8.0 core) there: the store can fail for ever, and the boot hangs
//! before it has printed a line. QEMU honours them, so only the system test
//! that watches every executed instruction (`no-exclusives-before-mmu-*`)
//! shows the rule holds.
//!
//! The rule is kept by construction. The boot core gets one [`Early`] when
//! it enters Rust; only code holding it may set an [`EarlyOnce`], which uses
//! plain loads and stores, sound because an `Early` exists only while no
//! other core runs. The kernel gives it up ([`Early::start_cores`]) for the
//! [`Cores`] that starting another core requires. Code that runs both before
//! and after the MMU is on (the console, the panic handler) takes its locks
//! only when [`crate::cpu::exclusives_work`] says so.

use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicBool, Ordering};

/// Proof that only the boot core runs: made once, when it enters Rust, and
/// given up before another core starts. Neither `Send` nor `Sync` nor
/// `Clone`.
pub struct Early {
    _one_core: PhantomData<*mut ()>,
}

impl Early {
    /// The one `Early`: made only by `boot::primary_rust_entry`, which runs
    /// once, on the boot core, before anything else.
    pub(crate) fn new() -> Self {
        Self {
            _one_core: PhantomData,
        }
    }

    /// Gives up the proof, for the right to start other cores.
    #[must_use]
    pub fn start_cores(self) -> Cores {
        Cores { _private: () }
    }
}

/// The right to start other cores: exists only once no [`Early`] does.
#[derive(Clone, Copy, Debug)]
pub struct Cores {
    _private: (),
}

/// A value set once by the boot core while it holds [`Early`], and read by
/// any core after. Setting it uses no exclusive instruction.
///
/// The value comes first (`repr(C)`), so assembly finds it at the static's
/// own address.
///
/// # Invariants
/// `value` is initialised once `set` is true, and never written again.
#[repr(C)]
pub struct EarlyOnce<T> {
    value: UnsafeCell<MaybeUninit<T>>,
    set: AtomicBool,
}

// SAFETY: the value is written only through `call_once`, which needs the one
// `Early` (so one core, one caller at a time), before `set` is published
// with Release; readers see it only after an Acquire load of `set`, and it is
// never written again. Sharing it across cores shares `&T`, so `T: Sync`.
unsafe impl<T: Sync + Send> Sync for EarlyOnce<T> {}

impl<T> EarlyOnce<T> {
    /// An empty cell.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            value: UnsafeCell::new(MaybeUninit::uninit()),
            set: AtomicBool::new(false),
        }
    }

    /// The value, once set.
    pub fn get(&self) -> Option<&T> {
        if self.set.load(Ordering::Acquire) {
            // SAFETY: `set` is true, so the value is initialised and is never
            // written again (type invariants).
            Some(unsafe { (*self.value.get()).assume_init_ref() })
        } else {
            None
        }
    }

    /// The value, set to `f()` if it was not set yet.
    pub fn call_once(&self, _: &Early, f: impl FnOnce() -> T) -> &T {
        if let Some(value) = self.get() {
            return value;
        }
        let value = f();
        // `f` may have set the cell itself; then its value stays, as readers
        // may already hold it.
        if let Some(earlier) = self.get() {
            return earlier;
        }
        // SAFETY: `set` is false, so no reference to the value exists; the
        // `Early` proves no other core runs, and the check above that `f` did
        // not set it leaves this the only writer.
        unsafe { (*self.value.get()).write(value) };
        self.set.store(true, Ordering::Release);
        // SAFETY: initialised just above, and never written again.
        unsafe { (*self.value.get()).assume_init_ref() }
    }
}

impl<T> Default for EarlyOnce<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Drop for EarlyOnce<T> {
    fn drop(&mut self) {
        if *self.set.get_mut() {
            // SAFETY: initialised (type invariants); `&mut self` means no
            // reader remains.
            unsafe { self.value.get_mut().assume_init_drop() };
        }
    }
}
