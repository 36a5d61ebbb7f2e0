// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Locks that several cores take, and (in a `lock-count` build) how often
//! each core took one.
//!
//! Every lock the kernel shares between cores is taken through [`lock`] or
//! [`try_lock`]; a lock domain's state lock through [`lock_domain`], which
//! counts it only when other cores take it too. In a build with the `lock-count` feature each acquisition
//! adds one to its core's count, which a partition reads with
//! `hv_abi::hypercall::BENCH_SHARED_LOCKS`: `cargo xtask bench` reports the
//! counts per IPC round trip and the like, whose goal is zero. Without the
//! feature these are the locks' own `lock` and `try_lock`.

/// The kernel's lock: `spin`'s, waiting with `yield`
/// ([`hv_arch_aarch64::lock::Yield`]).
pub(crate) type Mutex<T> = spin::mutex::Mutex<T, hv_arch_aarch64::lock::Yield>;
/// A held [`Mutex`].
pub(crate) type MutexGuard<'a, T> = spin::mutex::MutexGuard<'a, T, hv_arch_aarch64::lock::Yield>;

/// Takes `lock`, which other cores take too.
#[inline(always)]
pub(crate) fn lock<T>(lock: &Mutex<T>) -> MutexGuard<'_, T> {
    count();
    lock.lock()
}

/// Takes `lock`, a lock domain's, counting it only if other cores take it
/// too (`shared`: the domain spans cores, or holds the kernel log that
/// every domain writes).
#[inline(always)]
pub(crate) fn lock_domain<T>(lock: &Mutex<T>, shared: bool) -> MutexGuard<'_, T> {
    if shared {
        count();
    }
    lock.lock()
}

/// Takes `lock`, which other cores take too, if it is free.
#[inline(always)]
pub(crate) fn try_lock<T>(lock: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    let guard = lock.try_lock();
    if guard.is_some() {
        count();
    }
    guard
}

#[cfg(feature = "lock-count")]
mod counting {
    use core::sync::atomic::{AtomicU64, Ordering};

    use hv_arch_aarch64 as arch;
    use hv_core::MAX_CPUS;

    /// Acquisitions so far, by core. Each core writes only its own (a load
    /// and a store: no lock to count a lock).
    static TAKEN: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

    pub(super) fn count() {
        if let Some(taken) = TAKEN.get(arch::cpu::index()) {
            taken.store(taken.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        }
    }

    /// How many shared locks this core has taken since boot.
    pub(crate) fn taken() -> u64 {
        TAKEN
            .get(arch::cpu::index())
            .map_or(0, |taken| taken.load(Ordering::Relaxed))
    }
}

#[cfg(feature = "lock-count")]
pub(crate) use counting::taken;

#[inline(always)]
fn count() {
    #[cfg(feature = "lock-count")]
    counting::count();
}
