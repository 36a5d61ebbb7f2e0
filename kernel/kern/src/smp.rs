// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Bringing up the other cores and parking them in the idle loop.

use core::sync::atomic::{AtomicUsize, Ordering};

use hv_arch_aarch64 as arch;
use hv_arch_aarch64::early::Early;
use hv_core::MAX_CPUS;
use hv_core::platform::{CpuStart, NoStart, PlatformInfo};

use crate::console::report;

/// Cores that have reached the kernel, the boot core included.
static ONLINE: AtomicUsize = AtomicUsize::new(1);

/// Starts every core the device tree lists and waits (up to one second of
/// timer ticks) until they report in. Returns (online, listed).
pub(crate) fn start_secondaries(info: &PlatformInfo<'_>, early: Early) -> (usize, usize) {
    let cores = early.start_cores();
    let me = arch::cpu::mpidr_affinity();
    let (mut psci, mut spin_table) = (0, 0);
    for (index, &mpidr) in (1..).zip(info.cpus.iter().filter(|&&m| m != me)) {
        let method = info.start_of(mpidr).unwrap_or(Err(NoStart::Unsupported));
        match arch::smp::start_cpu(cores, index, mpidr, method, secondary_main) {
            Ok(()) if method == Ok(CpuStart::Psci) => psci += 1,
            Ok(()) => spin_table += 1,
            Err(e) => report!("core {index} (MPIDR {mpidr:#x}) did not start: {e:?}"),
        }
    }
    match (psci, spin_table) {
        (0, 0) => {}
        (n, 0) => report!("{n} cores started through PSCI"),
        (0, n) => report!("{n} cores released from the spin table"),
        (p, s) => report!("{p} cores started through PSCI, {s} released from the spin table"),
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
