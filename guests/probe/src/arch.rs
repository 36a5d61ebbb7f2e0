// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The probe's one module with `unsafe`: its entry and vector table
//! (`entry.S`), and safe functions for everything else that needs an
//! instruction Rust cannot write: device registers, RAM outside the image,
//! system registers, `hvc`/`smc`, WFI and the timed loops of the bench.
//!
//! What keeps it sound: the probe runs alone on one vCPU with the MMU off,
//! so an address is a guest physical address. Its own code, data, .bss and
//! stack are the image ([`image`]); the device tree the monitor wrote is
//! only ever read ([`device_tree`]). [`Ram`] reads and writes words of RAM
//! outside both, where no Rust object lives; the register accessors
//! ([`read32`], [`write32`], [`read_loop`]) refuse any address inside RAM,
//! so they alias nothing Rust owns: an access there reaches the monitor's
//! emulated devices, the GIC's virtual CPU interface, or nothing (the
//! monitor reads it as zero). Everything else is an instruction whose only
//! effect is on registers the `asm!` declares, or on the hypervisor.

use core::arch::asm;
use core::ops::Range;
use core::sync::atomic::{AtomicU64, Ordering};

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{
    CNTFRQ_EL0, CNTV_CTL_EL0, CNTV_CVAL_EL0, CNTVCT_EL0, CurrentEL, Readable, Writeable,
};
use hv_abi::vm::GUEST_RAM_BASE;

core::arch::global_asm!(
    include_str!("entry.S"),
    main = sym crate::probe_main,
    handler = sym crate::trap::on_exception,
    frame = const FRAME_SIZE,
);

/// Bytes the vector entry saves: x0..x18, x29, x30, ELR, SPSR, aligned.
const FRAME_SIZE: usize = 192;

unsafe extern "C" {
    /// The image's first byte (`link.x`).
    static _start: u8;
    /// One past the image's last byte, stack included (`link.x`).
    static __image_end: u8;
}

/// Where RAM starts, once [`Ram::new`] has learnt it (the ABI's base until
/// then).
static RAM_START: AtomicU64 = AtomicU64::new(GUEST_RAM_BASE);
/// Where RAM ends; until [`Ram::new`] has learnt it, everything above the
/// base counts as RAM.
static RAM_END: AtomicU64 = AtomicU64::new(u64::MAX);
/// The device tree, which nothing may write.
static TREE_START: AtomicU64 = AtomicU64::new(0);
/// One past the device tree's last byte.
static TREE_END: AtomicU64 = AtomicU64::new(0);

/// The probe's image in RAM: code, data, .bss and stack.
pub(crate) fn image() -> Range<u64> {
    (&raw const _start) as u64..(&raw const __image_end) as u64
}

/// Whether two ranges share an address.
fn overlaps(a: &Range<u64>, b: &Range<u64>) -> bool {
    a.start < b.end && b.start < a.end
}

/// The device tree at `address`, as the monitor wrote it: `None` unless it
/// is 8-byte aligned, above the RAM base, outside the image, and starts with
/// the FDT magic and a plausible size (at most 2 MiB).
pub(crate) fn device_tree(address: u64) -> Option<&'static [u8]> {
    const MAGIC: u32 = 0xd00d_feed;
    const LARGEST: u64 = 2 << 20;
    const HEADER: u64 = 40;
    let image = image();
    if !address.is_multiple_of(8) || address < GUEST_RAM_BASE {
        return None;
    }
    if overlaps(&image, &(address..address.saturating_add(HEADER))) {
        return None;
    }
    // SAFETY: an aligned address above the RAM base and outside the image:
    // RAM the monitor wrote the device tree into (or, if it lied, an address
    // that reads as zero), holding no Rust object.
    let magic = u32::from_be(unsafe { core::ptr::read_volatile(address as *const u32) });
    // SAFETY: as above, four bytes on.
    let size = u32::from_be(unsafe { core::ptr::read_volatile((address + 4) as *const u32) });
    let size = u64::from(size);
    let end = address.checked_add(size)?;
    if magic != MAGIC || !(HEADER..=LARGEST).contains(&size) || overlaps(&image, &(address..end)) {
        return None;
    }
    TREE_START.store(address, Ordering::Relaxed);
    TREE_END.store(end, Ordering::Relaxed);
    // SAFETY: `size` bytes the monitor wrote before starting this vCPU,
    // outside the image; nothing in the probe ever writes them ([`Ram`]
    // refuses), so a shared slice for the rest of the run is sound.
    Some(unsafe { core::slice::from_raw_parts(address as *const u8, size as usize) })
}

/// The probe's RAM, as the device tree gives it.
///
/// # Invariants
/// The image lies inside `start..end`; word accesses refuse the image (and
/// writes the device tree).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ram {
    start: u64,
    end: u64,
}

impl Ram {
    /// RAM of `size` bytes at `start`: `None` unless it holds the image.
    /// Register accessors refuse it from now on.
    pub(crate) fn new(start: u64, size: u64) -> Option<Self> {
        let end = start.checked_add(size)?;
        let image = image();
        if image.start < start || image.end > end {
            return None;
        }
        RAM_START.store(start, Ordering::Relaxed);
        RAM_END.store(end, Ordering::Relaxed);
        Some(Self { start, end })
    }

    /// The first address.
    pub(crate) fn start(&self) -> u64 {
        self.start
    }

    /// One past the last address.
    pub(crate) fn end(&self) -> u64 {
        self.end
    }

    /// Whether the word at `address` may be read: aligned, in RAM, outside
    /// the image.
    fn readable(&self, address: u64) -> bool {
        address.is_multiple_of(8)
            && address >= self.start
            && address < self.end
            && !image().contains(&address)
    }

    /// The word at `address`; `None` if it is unaligned, outside RAM or in
    /// the image.
    pub(crate) fn read_u64(&self, address: u64) -> Option<u64> {
        if !self.readable(address) {
            return None;
        }
        // SAFETY: an aligned word of RAM outside the image (checked above),
        // where no Rust object lives; the device tree there is only read.
        Some(unsafe { core::ptr::read_volatile(address as *const u64) })
    }

    /// Writes the word at `address`; `false` (and nothing written) if it is
    /// unaligned, outside RAM, in the image or in the device tree.
    pub(crate) fn write_u64(&self, address: u64, value: u64) -> bool {
        let tree = TREE_START.load(Ordering::Relaxed)..TREE_END.load(Ordering::Relaxed);
        if !self.readable(address) || tree.contains(&address) {
            return false;
        }
        // SAFETY: an aligned word of RAM outside the image and the device
        // tree (checked above): no Rust object, no shared slice.
        unsafe { core::ptr::write_volatile(address as *mut u64, value) };
        true
    }
}

/// Whether a 4-byte register access at `address` stays clear of RAM.
fn outside_ram(address: u64) -> bool {
    let ram = RAM_START.load(Ordering::Relaxed)..RAM_END.load(Ordering::Relaxed);
    address.is_multiple_of(4) && !overlaps(&ram, &(address..address.saturating_add(4)))
}

/// Reads the 32-bit register at `address` (one `ldr w`, so the trap's
/// syndrome describes it); `None` if it is unaligned or inside RAM.
pub(crate) fn read32(address: u64) -> Option<u32> {
    if !outside_ram(address) {
        return None;
    }
    let value: u32;
    // SAFETY: an aligned address outside RAM (checked): a device register,
    // the monitor's emulation, or nothing; no Rust object is touched.
    unsafe {
        asm!("ldr {v:w}, [{a}]", a = in(reg) address, v = out(reg) value, options(nostack));
    }
    Some(value)
}

/// Writes the 32-bit register at `address` (one `str w`); `false` if it is
/// unaligned or inside RAM.
pub(crate) fn write32(address: u64, value: u32) -> bool {
    if !outside_ram(address) {
        return false;
    }
    // SAFETY: as for `read32`.
    unsafe {
        asm!("str {v:w}, [{a}]", a = in(reg) address, v = in(reg) value, options(nostack));
    }
    true
}

/// The exception level the probe runs at.
pub(crate) fn current_el() -> u64 {
    CurrentEL.read(CurrentEL::EL)
}

/// The virtual counter, after the instructions before it.
pub(crate) fn counter() -> u64 {
    barrier::isb(barrier::SY);
    CNTVCT_EL0.get()
}

/// The counter's frequency in Hz.
pub(crate) fn counter_frequency() -> u64 {
    CNTFRQ_EL0.get()
}

/// Arms the virtual timer to fire when the virtual counter reaches
/// `compare` (enabled, not masked); its interrupt is handled by the vector
/// table (`trap`).
pub(crate) fn timer_arm(compare: u64) {
    CNTV_CVAL_EL0.set(compare);
    CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::SET + CNTV_CTL_EL0::IMASK::CLEAR);
    barrier::isb(barrier::SY);
}

/// Turns the virtual timer off (its interrupt line drops).
pub(crate) fn timer_disarm() {
    CNTV_CTL_EL0.set(0);
    barrier::isb(barrier::SY);
}

/// The virtual timer's compare value.
pub(crate) fn timer_compare() -> u64 {
    CNTV_CVAL_EL0.get()
}

// PSTATE.I is set and cleared with the immediate forms (`daifset`,
// `daifclr`), which aarch64-cpu lacks (its DAIF is a read-modify-write of
// the whole register), and as compiler barriers, so that no memory access
// moves across them.

/// Lets IRQs in (PSTATE.I clear).
pub(crate) fn irq_unmask() {
    // SAFETY: the vector table is installed before Rust runs, and its IRQ
    // entry saves and restores what it uses.
    unsafe { asm!("msr daifclr, #2", "isb", options(nostack)) };
}

/// Keeps IRQs out (PSTATE.I set).
pub(crate) fn irq_mask() {
    // SAFETY: masks interrupts; nothing else changes.
    unsafe { asm!("msr daifset, #2", options(nomem, nostack)) };
}

/// Waits for an interrupt (one pending wakes it even while masked).
pub(crate) fn wait_for_interrupt() {
    aarch64_cpu::asm::wfi();
}

/// Masks every exception and waits for interrupts forever: the guest costs
/// nothing.
pub(crate) fn halt() -> ! {
    // SAFETY: masks exceptions; nothing else changes.
    unsafe { asm!("msr daifset, #0xf", options(nomem, nostack)) };
    loop {
        wait_for_interrupt();
    }
}

/// `hvc #0` with x0..x3 = `args`; returns x0..x3. Follows SMCCC: x4..x17
/// may be clobbered.
pub(crate) fn hvc(args: [u64; 4]) -> [u64; 4] {
    hvc_with::<0>(args)
}

/// `hvc #1` with x0..x3 = `args`; returns x0..x3. The immediate is
/// reserved (`docs/abi.md` §1.1): the hypervisor must refuse the call.
pub(crate) fn hvc_reserved(args: [u64; 4]) -> [u64; 4] {
    hvc_with::<1>(args)
}

/// `hvc #IMM` with x0..x3 = `args`; returns x0..x3 (SMCCC: x4..x17 may be
/// clobbered).
fn hvc_with<const IMM: u16>(args: [u64; 4]) -> [u64; 4] {
    let [mut x0, mut x1, mut x2, mut x3] = args;
    // SAFETY: a call to the hypervisor, which changes only the registers
    // declared here (SMCCC), or stops this vCPU.
    unsafe {
        asm!(
            "hvc #{imm}",
            imm = const IMM,
            inout("x0") x0, inout("x1") x1, inout("x2") x2, inout("x3") x3,
            out("x4") _, out("x5") _, out("x6") _, out("x7") _,
            out("x8") _, out("x9") _, out("x10") _, out("x11") _,
            out("x12") _, out("x13") _, out("x14") _, out("x15") _,
            out("x16") _, out("x17") _,
            options(nostack),
        );
    }
    [x0, x1, x2, x3]
}

/// `smc #0` with x0..x3 = `args`; returns x0..x3, as [`hvc`].
pub(crate) fn smc(args: [u64; 4]) -> [u64; 4] {
    let [mut x0, mut x1, mut x2, mut x3] = args;
    // SAFETY: as for `hvc`: the hypervisor traps it.
    unsafe {
        asm!(
            "smc #0",
            inout("x0") x0, inout("x1") x1, inout("x2") x2, inout("x3") x3,
            out("x4") _, out("x5") _, out("x6") _, out("x7") _,
            out("x8") _, out("x9") _, out("x10") _, out("x11") _,
            out("x12") _, out("x13") _, out("x14") _, out("x15") _,
            out("x16") _, out("x17") _,
            options(nostack),
        );
    }
    [x0, x1, x2, x3]
}

/// `count` (at least 1) times: x0 = `function`, `hvc #0`.
pub(crate) fn hvc_loop(function: u64, count: u64) {
    // SAFETY: as for `hvc`, `count` times.
    unsafe {
        asm!(
            "2:",
            "mov x0, {f}",
            "hvc #0",
            "subs {n}, {n}, #1",
            "b.ne 2b",
            f = in(reg) function,
            n = inout(reg) count.max(1) => _,
            out("x0") _, out("x1") _, out("x2") _, out("x3") _,
            out("x4") _, out("x5") _, out("x6") _, out("x7") _,
            out("x8") _, out("x9") _, out("x10") _, out("x11") _,
            out("x12") _, out("x13") _, out("x14") _, out("x15") _,
            out("x16") _, out("x17") _,
            options(nostack),
        );
    }
}

/// [`hvc_loop`] without the `hvc`: what the loop itself costs.
pub(crate) fn register_loop(function: u64, count: u64) {
    // SAFETY: register moves and a branch.
    unsafe {
        asm!(
            "2:",
            "mov x0, {f}",
            "subs {n}, {n}, #1",
            "b.ne 2b",
            f = in(reg) function,
            n = inout(reg) count.max(1) => _,
            out("x0") _,
            options(nomem, nostack),
        );
    }
}

/// Xen's hypercall instruction's immediate (`hvc #0xEA1`): the call's
/// number goes in x16, its arguments in x0..x4, its result comes in x0.
const XEN_HVC: u16 = 0xEA1;

/// A Xen hypercall: `hvc #0xEA1` with x16 = `number` and x0..x2 = `args`;
/// returns x0. Xen may clobber x1..x5 and x16 (its debug builds do), which
/// is declared.
pub(crate) fn xen_hypercall(number: u64, args: [u64; 3]) -> u64 {
    let [mut x0, x1, x2] = args;
    // SAFETY: a call to the hypervisor, which changes only the registers
    // declared here, or stops this vCPU. The calls the probe makes read
    // guest memory at most (a console write's buffer, which is borrowed
    // for the call by [`xen_console_write`]).
    unsafe {
        asm!(
            "hvc #{imm}",
            imm = const XEN_HVC,
            inout("x16") number => _,
            inout("x0") x0, inout("x1") x1 => _, inout("x2") x2 => _,
            out("x3") _, out("x4") _, out("x5") _,
            options(nostack),
        );
    }
    x0
}

/// Xen's `HYPERVISOR_console_io`.
const XEN_CONSOLE_IO: u64 = 18;
/// Its `CONSOLEIO_write`.
const XEN_CONSOLEIO_WRITE: u64 = 0;

/// Writes `text` to Xen's console (`HYPERVISOR_console_io`,
/// `CONSOLEIO_write`): the hardware domain's text goes straight to Xen's
/// serial console. The MMU is off, so the buffer's address is its guest
/// physical address.
pub(crate) fn xen_console_write(text: &[u8]) {
    if !text.is_empty() {
        xen_hypercall(
            XEN_CONSOLE_IO,
            [XEN_CONSOLEIO_WRITE, text.len() as u64, text.as_ptr() as u64],
        );
    }
}

/// `count` (at least 1) times: x16 = `number`, x0 = `argument`, `hvc
/// #0xEA1` (a Xen hypercall that takes no pointer: `xen_version`).
pub(crate) fn xen_hypercall_loop(number: u64, argument: u64, count: u64) {
    // SAFETY: as for `xen_hypercall`, `count` times, with no pointer.
    unsafe {
        asm!(
            "2:",
            "mov x16, {f}",
            "mov x0, {a}",
            "hvc #{imm}",
            "subs {n}, {n}, #1",
            "b.ne 2b",
            imm = const XEN_HVC,
            f = in(reg) number,
            a = in(reg) argument,
            n = inout(reg) count.max(1) => _,
            out("x0") _, out("x1") _, out("x2") _, out("x3") _,
            out("x4") _, out("x5") _, out("x16") _,
            options(nostack),
        );
    }
}

/// [`xen_hypercall_loop`] without the `hvc`: what the loop itself costs.
pub(crate) fn xen_register_loop(number: u64, argument: u64, count: u64) {
    // SAFETY: register moves and a branch.
    unsafe {
        asm!(
            "2:",
            "mov x16, {f}",
            "mov x0, {a}",
            "subs {n}, {n}, #1",
            "b.ne 2b",
            f = in(reg) number,
            a = in(reg) argument,
            n = inout(reg) count.max(1) => _,
            out("x0") _, out("x16") _,
            options(nomem, nostack),
        );
    }
}

/// `count` (at least 1) times: `ldr w0, [address]`; `false` (and nothing
/// done) if `address` is unaligned or inside RAM.
pub(crate) fn read_loop(address: u64, count: u64) -> bool {
    if !outside_ram(address) {
        return false;
    }
    // SAFETY: as for `read32`, `count` times.
    unsafe {
        asm!(
            "2:",
            "ldr w0, [{a}]",
            "subs {n}, {n}, #1",
            "b.ne 2b",
            a = in(reg) address,
            n = inout(reg) count.max(1) => _,
            out("x0") _,
            options(nostack),
        );
    }
    true
}

/// [`read_loop`] with a `nop` for the load: what the loop itself costs.
pub(crate) fn nop_loop(count: u64) {
    // SAFETY: a no-op and a branch.
    unsafe {
        asm!(
            "2:",
            "nop",
            "subs {n}, {n}, #1",
            "b.ne 2b",
            n = inout(reg) count.max(1) => _,
            options(nomem, nostack),
        );
    }
}

/// GICv3: enables the system-register CPU interface for group 1 at the
/// lowest priority mask (ICC_SRE_EL1.SRE, ICC_PMR_EL1 = 0xff,
/// ICC_IGRPEN1_EL1 = 1).
pub(crate) fn icc_enable() {
    // SAFETY: the probe's own (virtual) CPU interface; interrupts stay
    // masked in PSTATE until `irq_unmask`.
    unsafe {
        asm!(
            "mrs {t}, S3_0_C12_C12_5",
            "orr {t}, {t}, #1",
            "msr S3_0_C12_C12_5, {t}",
            "isb",
            "msr S3_0_C4_C6_0, {pmr}",
            "msr S3_0_C12_C12_7, {one}",
            "isb",
            t = out(reg) _,
            pmr = in(reg) 0xffu64,
            one = in(reg) 1u64,
            options(nomem, nostack),
        );
    }
}

/// GICv3: acknowledges the highest-priority pending group 1 interrupt
/// (ICC_IAR1_EL1): its INTID, or 1023 if none.
pub(crate) fn icc_acknowledge() -> u32 {
    let value: u64;
    // SAFETY: acknowledging an interrupt changes only the CPU interface's
    // state, which the probe alone drives.
    unsafe { asm!("mrs {}, S3_0_C12_C12_0", out(reg) value, options(nomem, nostack)) };
    value as u32
}

/// GICv3: ends interrupt `intid` (ICC_EOIR1_EL1; EOI mode 0, so this also
/// deactivates it).
pub(crate) fn icc_end(intid: u32) {
    // SAFETY: as for `icc_acknowledge`.
    unsafe {
        asm!("msr S3_0_C12_C12_1, {}", "isb", in(reg) u64::from(intid), options(nomem, nostack));
    }
}

// The accessors of registers the hypervisor may trap are not `nomem`, so
// that they stay between the stores `trap::attempt` makes around them.

/// Reads MDSCR_EL1 (a debug register, which the hypervisor traps).
pub(crate) fn debug_control() -> u64 {
    let value: u64;
    // SAFETY: reads a register (or traps to the hypervisor).
    unsafe { asm!("mrs {}, mdscr_el1", out(reg) value, options(nostack)) };
    value
}

/// Writes MDSCR_EL1.
pub(crate) fn set_debug_control(value: u64) {
    // SAFETY: the probe sets no breakpoints or watchpoints and never
    // single-steps, so no debug exception can follow; the hypervisor should
    // trap and ignore it anyway.
    unsafe { asm!("msr mdscr_el1, {}", "isb", in(reg) value, options(nostack)) };
}

/// Reads PMCR_EL0 (the PMU's control register).
pub(crate) fn pmu_control() -> u64 {
    let value: u64;
    // SAFETY: reads a register (or traps to the hypervisor).
    unsafe { asm!("mrs {}, pmcr_el0", out(reg) value, options(nostack)) };
    value
}

/// Reads AMCNTENSET0_EL0 (which activity monitor counters count), an
/// activity monitors (AMU) register that the hypervisor should trap
/// (CPTR_EL2.TAM). Without FEAT_AMUv1 it is undefined.
pub(crate) fn amu_counters_enabled() -> u64 {
    let value: u64;
    // SAFETY: reads a register (or traps).
    unsafe { asm!("mrs {}, s3_3_c13_c2_1", out(reg) value, options(nostack)) };
    value
}

/// ID_AA64PFR0_EL1.AMU (bits 47:44): 0 when the CPU has no activity
/// monitors.
pub(crate) fn amu_version() -> u64 {
    let value: u64;
    // SAFETY: reads an ID register, changes nothing.
    unsafe { asm!("mrs {}, id_aa64pfr0_el1", out(reg) value, options(nostack)) };
    (value >> 44) & 0xf
}

/// The syndrome and fault address of the exception being handled
/// (ESR_EL1, FAR_EL1).
pub(crate) fn exception_syndrome() -> (u64, u64) {
    let (esr, far): (u64, u64);
    // SAFETY: reads registers, changes nothing.
    unsafe {
        asm!(
            "mrs {e}, esr_el1",
            "mrs {f}, far_el1",
            e = out(reg) esr,
            f = out(reg) far,
            options(nomem, nostack),
        );
    }
    (esr, far)
}
