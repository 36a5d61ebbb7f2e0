// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Bringing up the other cores and parking them in the idle loop.

use core::sync::atomic::{AtomicUsize, Ordering};

use hv_arch_aarch64 as arch;
use hv_core::MAX_CPUS;
use hv_core::platform::PlatformInfo;

use crate::console::report;

/// Cores that have reached the kernel, the boot core included.
static ONLINE: AtomicUsize = AtomicUsize::new(1);

/// Starts every core the device tree lists and waits (up to one second of
/// timer ticks) until they report in. Returns (online, listed).
pub(crate) fn start_secondaries(info: &PlatformInfo<'_>) -> (usize, usize) {
    let me = arch::cpu::mpidr_affinity();
    for (index, &mpidr) in (1..).zip(info.cpus.iter().filter(|&&m| m != me)) {
        if let Err(e) = arch::smp::start_cpu(index, mpidr, secondary_main) {
            report!("core {index} (MPIDR {mpidr:#x}) did not start: {e:?}");
        }
    }
    let listed = info.cpus.len();
    let deadline = arch::cpu::counter() + arch::cpu::timer_frequency();
    while ONLINE.load(Ordering::Acquire) < listed && arch::cpu::counter() < deadline {
        arch::cpu::relax();
    }
    (ONLINE.load(Ordering::Acquire), listed)
}

/// Each core's MPIDR affinity, by core index: the boot core first, then the
/// device tree's order (the order `start_secondaries` numbers them).
pub(crate) fn core_affinities(info: &PlatformInfo<'_>) -> [u64; MAX_CPUS] {
    let me = arch::cpu::mpidr_affinity();
    let mut cores = [0; MAX_CPUS];
    cores[0] = me;
    for (slot, &mpidr) in cores
        .iter_mut()
        .skip(1)
        .zip(info.cpus.iter().filter(|&&m| m != me))
    {
        *slot = mpidr;
    }
    cores
}

/// Where a secondary core arrives with its MMU on.
fn secondary_main(index: usize) -> ! {
    arch::vcpu::configure_cpu();
    if let Err(e) = crate::irq::init_cpu() {
        report!("core {index}: cannot set up interrupts: {e:?}");
        arch::cpu::park();
    }
    ONLINE.fetch_add(1, Ordering::AcqRel);
    crate::irq::idle()
}
