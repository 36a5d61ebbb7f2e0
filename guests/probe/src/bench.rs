// SPDX-License-Identifier: Apache-2.0 OR MIT
//! `probe=bench`: what the guest's exits cost, in ticks of the virtual
//! counter (CNTVCT_EL0; 62.5 MHz under QEMU, where with `-icount shift=0`
//! one tick is exactly 16 instructions).
//!
//! - `hvc-null`: `hvc #0` with x0 = Bulkhead's `Version`, which the kernel
//!   answers itself; [`ITERATIONS`] calls, less the same loop without the
//!   `hvc`, per call.
//! - `mmio-read`: `ldr w0, [UART + FR]`, which the kernel hands to the
//!   monitor as an exit and the monitor answers; [`ITERATIONS`] reads, less
//!   the same loop with a `nop`, per read.
//! - `vtimer`: the virtual timer's delivery: armed [`TIMER_DELAY`] ticks
//!   ahead, the probe waits in WFI; the interrupt handler reads the counter
//!   once it has acknowledged the interrupt, and the latency is that reading
//!   less the compare value. [`TIMER_ROUNDS`] rounds, averaged.
//! - `gicd-read`: `ldr w0, [GICD + GICD_TYPER]`, a GIC distributor
//!   register, which the monitor emulates (the same exit as `mmio-read`);
//!   [`ITERATIONS`] reads, less the same loop with a `nop`, per read. Under
//!   Xen ([`run_xen`]) Xen's vGIC answers it itself. It comes last, after
//!   the timer, so that the earlier figures' runs are as they were.
//!
//! Lines: `bench counter <Hz> Hz, <n> iterations`, `bench hvc-null <t>
//! ticks`, `bench mmio-read <t> ticks`, `bench vtimer <t> ticks` (each `<t>`
//! with three decimals), `bench vtimer spread <min>..<max> ticks over <n>
//! interrupts`, `bench gicd-read <t> ticks`, `bench done`. If a round's
//! interrupt never comes: `bench vtimer: no interrupt within <n> ticks
//! (round <r>)`, and the timer part stops.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use hv_abi::hypercall::{ABI_VERSION, Hypercall};
use hv_abi::vm::GUEST_UART;

use crate::arch;
use crate::console::{Milli, Signed, say};
use crate::machine::{Gic, Machine};

/// Calls and reads measured.
pub(crate) const ITERATIONS: u64 = 10_000;
/// Rounds of the loops run first, so that the measured ones find
/// everything warm (QEMU's translations included).
const WARM_UP: u64 = 100;
/// How far ahead the timer is armed.
const TIMER_DELAY: u64 = 4000;
/// Timer interrupts measured.
const TIMER_ROUNDS: u64 = 100;
/// How long a round waits for its interrupt before giving up: a second at
/// 62.5 MHz.
const TIMER_TIMEOUT: u64 = 62_500_000;

/// The timer's interrupt arrived.
static FIRED: AtomicBool = AtomicBool::new(false);
/// Its latency: the counter in the handler less the compare value.
static LATENCY: AtomicU64 = AtomicU64::new(0);

/// The virtual timer's interrupt, from the GIC driver: records the
/// latency and turns the timer off (so its line drops before the end of
/// the interrupt).
pub(crate) fn timer_fired() {
    let now = arch::counter();
    let compare = arch::timer_compare();
    arch::timer_disarm();
    LATENCY.store(now.wrapping_sub(compare), Ordering::SeqCst);
    FIRED.store(true, Ordering::SeqCst);
}

/// Ticks `f` takes.
fn ticks(f: impl FnOnce()) -> u64 {
    let start = arch::counter();
    f();
    arch::counter().wrapping_sub(start)
}

/// Thousandths of a tick per iteration, of `total` less `empty`.
fn per_iteration(total: u64, empty: u64) -> Milli {
    Milli(total.saturating_sub(empty) * 1000 / ITERATIONS)
}

/// Runs the three measurements.
pub(crate) fn run(machine: &Machine) {
    say!(
        "bench counter {} Hz, {ITERATIONS} iterations",
        arch::counter_frequency()
    );
    let version = u64::from(Hypercall::Version.function_id());
    let [x0, x1, ..] = arch::hvc([version, 0, 0, 0]);
    if x0 != 0 || x1 != u64::from(ABI_VERSION) {
        say!(
            "bench hvc-null: Version returned x0 {} x1 {x1:#x}",
            Signed(x0)
        );
    }
    arch::hvc_loop(version, WARM_UP);
    arch::register_loop(version, WARM_UP);
    let calls = ticks(|| arch::hvc_loop(version, ITERATIONS));
    let empty = ticks(|| arch::register_loop(version, ITERATIONS));
    say!("bench hvc-null {} ticks", per_iteration(calls, empty));

    let flags = GUEST_UART + crate::console::FR;
    arch::read_loop(flags, WARM_UP);
    arch::nop_loop(WARM_UP);
    let reads = ticks(|| {
        arch::read_loop(flags, ITERATIONS);
    });
    let empty = ticks(|| arch::nop_loop(ITERATIONS));
    say!("bench mmio-read {} ticks", per_iteration(reads, empty));

    crate::gic::init(machine.gic);
    timer();
    gicd_read(machine);
    say!("bench done");
}

/// GICD_TYPER's offset in the GIC distributor.
const GICD_TYPER: u64 = 0x4;

/// Xen's `__HYPERVISOR_xen_version`.
const XEN_VERSION: u64 = 17;
/// Its `XENVER_version`: the version, major in bits 16 and up, minor below.
const XENVER_VERSION: u64 = 0;

/// `gicd-read`: `ldr w0, [GICD + GICD_TYPER]`, a read of the GIC
/// distributor the hypervisor emulates (Bulkhead's monitor, Xen's vGIC);
/// [`ITERATIONS`] reads less the same loop with a `nop`, per read.
fn gicd_read(machine: &Machine) {
    let distributor = match machine.gic {
        Gic::V2 { distributor, .. } | Gic::V3 { distributor, .. } => distributor,
    };
    let typer = distributor + GICD_TYPER;
    arch::read_loop(typer, WARM_UP);
    arch::nop_loop(WARM_UP);
    let reads = ticks(|| {
        arch::read_loop(typer, ITERATIONS);
    });
    let empty = ticks(|| arch::nop_loop(ITERATIONS));
    say!("bench gicd-read {} ticks", per_iteration(reads, empty));
}

/// `probe=bench` under Xen, as its hardware domain: `hvc-null` is Xen's
/// `xen_version` (`XENVER_version`; `hvc #0xEA1`, x16 = 17, x0 = 0), Xen's
/// cheapest hypercall; `gicd-read` and `vtimer` as under Bulkhead (Xen's
/// vGIC answers the read and injects the timer's interrupt). There is no
/// `mmio-read` (Xen keeps the PL011 for itself). Lines as [`run`]'s, and
/// first `bench xen <major>.<minor>`.
pub(crate) fn run_xen(machine: &Machine) {
    say!(
        "bench counter {} Hz, {ITERATIONS} iterations",
        arch::counter_frequency()
    );
    let version = arch::xen_hypercall(XEN_VERSION, [XENVER_VERSION, 0, 0]);
    say!("bench xen {}.{}", version >> 16, version & 0xffff);
    arch::xen_hypercall_loop(XEN_VERSION, XENVER_VERSION, WARM_UP);
    arch::xen_register_loop(XEN_VERSION, XENVER_VERSION, WARM_UP);
    let calls = ticks(|| arch::xen_hypercall_loop(XEN_VERSION, XENVER_VERSION, ITERATIONS));
    let empty = ticks(|| arch::xen_register_loop(XEN_VERSION, XENVER_VERSION, ITERATIONS));
    say!("bench hvc-null {} ticks", per_iteration(calls, empty));
    crate::gic::init(machine.gic);
    timer();
    gicd_read(machine);
    say!("bench done");
}

/// The virtual timer's delivery, [`TIMER_ROUNDS`] times.
fn timer() {
    let (mut sum, mut least, mut most) = (0u64, u64::MAX, 0u64);
    for round in 0..TIMER_ROUNDS {
        FIRED.store(false, Ordering::SeqCst);
        let compare = arch::counter() + TIMER_DELAY;
        arch::timer_arm(compare);
        // Interrupts stay masked but for a moment after each WFI, so that
        // one arriving between the check and the WFI still ends the WFI.
        while !FIRED.load(Ordering::SeqCst) {
            if arch::counter() > compare + TIMER_TIMEOUT {
                arch::timer_disarm();
                say!("bench vtimer: no interrupt within {TIMER_TIMEOUT} ticks (round {round})");
                return;
            }
            arch::wait_for_interrupt();
            arch::irq_unmask();
            arch::irq_mask();
        }
        let latency = LATENCY.load(Ordering::SeqCst);
        sum += latency;
        least = least.min(latency);
        most = most.max(latency);
    }
    say!("bench vtimer {} ticks", Milli(sum * 1000 / TIMER_ROUNDS));
    say!(
        "bench vtimer spread {least}..{most} ticks over {TIMER_ROUNDS} interrupts{}",
        match crate::gic::others() {
            0 => "",
            _ => " (and other interrupts)",
        }
    );
}
