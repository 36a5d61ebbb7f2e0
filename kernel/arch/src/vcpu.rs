// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Partitions' virtual CPUs as the hardware sees them: register contexts,
//! entering a partition and coming back.
//!
//! Service partitions run at EL0 under HCR_EL2.TGE, so every exception they
//! take (an `svc` hypercall, a fault, a trapped WFI) and every interrupt
//! comes straight to EL2, and they cannot reach any EL1 system register:
//! their whole CPU state is the [`Context`] below. Their stage-1 translation
//! is off; their stage-2 tables (VTTBR_EL2, one VMID per partition) are what
//! confine them.
//!
//! Each core's [`PerCpu`] (pointed at by TPIDR_EL2) names the context running
//! on it; `vcpu.S` saves into and restores from it. The kernel decides what
//! runs through the [`Exits`] it installs with [`install_exits!`](crate::install_exits).
//!
//! # Invariants
//! - A vCPU's context is touched only by the core running it (its `running`
//!   entry names that core), or, while no core runs it, by [`prepare`].
//! - `PerCpu` of core N, and its message, are touched only by core N.

use core::any::TypeId;
use core::cell::UnsafeCell;
use core::mem::offset_of;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use aarch64_cpu::registers::{
    CNTKCTL_EL1, CNTV_CTL_EL0, CNTVOFF_EL2, ESR_EL2, FAR_EL2, HCR_EL2, HPFAR_EL2, MDCR_EL2,
    ReadWriteable, Readable, SCTLR_EL1, TPIDR_EL2, VTCR_EL2, VTTBR_EL2, Writeable,
};
use hv_abi::hypercall::{ABI_VERSION, Hypercall, MESSAGE_WORDS};
use hv_core::MAX_CPUS;
use hv_core::state::FastCall;
use hv_image::{IPA_BITS, MAX_SYSTEM_VCPUS};

/// A vCPU's registers while it is not running (and, while it runs, the place
/// its registers go when it traps).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Context {
    /// x0 to x30.
    pub x: [u64; 31],
    /// The EL0 stack pointer.
    pub sp_el0: u64,
    /// Where it resumes (ELR_EL2).
    pub elr: u64,
    /// Its PSTATE (SPSR_EL2).
    pub spsr: u64,
    /// Its thread pointer register.
    pub tpidr_el0: u64,
    /// Its stage-2 tables and VMID.
    pub vttbr: u64,
    /// [`FRESH`] and [`VM`], in one byte so that the IPC fast path asks
    /// "neither?" with one test.
    pub kind: u8,
    /// Its partition owns a device: every exit synchronises SErrors first
    /// ([`crate::serror`]), so that one its accesses raised is its own.
    pub sync_errors: bool,
}

const _: () = assert!(offset_of!(Context, x) == 0);

/// [`Context::kind`]: prepared and not yet run, its x0..x7 the start
/// arguments, not what the kernel's state holds for it.
pub const FRESH: u8 = 1;

/// [`Context::kind`]: a virtual machine's vCPU (EL1, with the state
/// [`crate::vm`] keeps).
pub const VM: u8 = 2;
const _: () = assert!(offset_of!(Context, elr) == offset_of!(Context, sp_el0) + 8);
const _: () = assert!(offset_of!(Context, tpidr_el0) == offset_of!(Context, spsr) + 8);

impl Context {
    /// Whether it is a virtual machine's vCPU.
    #[must_use]
    pub const fn vm(&self) -> bool {
        self.kind & VM != 0
    }
}

/// What one core is doing, reached through TPIDR_EL2. One cache line each,
/// so no two cores' entries share a line.
#[repr(C, align(64))]
pub(crate) struct PerCpu {
    /// The running vCPU's context (null while idle).
    current: *mut Context,
    /// The top of this core's kernel stack, where every entry from a
    /// partition starts afresh.
    stack_top: u64,
    /// This core's index.
    pub(crate) index: usize,
    /// Which vCPU `current` is.
    vcpu: usize,
    /// The VTTBR_EL2 value loaded on this core.
    loaded_vttbr: u64,
    /// What this core has loaded of the guests.
    vm: crate::vm::PerCore,
    /// What a switch between partitions does here (`crate::speculation`),
    /// chosen at the first switch after the kernel configured it.
    switch: crate::speculation::Switch,
}

/// A core's PerCpu, after its message and the kernel's data for it:
/// TPIDR_EL2 points at the PerCpu, and the message is the 64 bytes before
/// it (`vcpu.S` reaches both from TPIDR_EL2, the message at a negative
/// offset).
#[repr(C, align(64))]
struct PerCpuCell {
    /// The kernel's data for this core ([`Exits::Core`]), or null: set by
    /// [`set_core_data`] from any core, read by this one.
    core_data: AtomicPtr<()>,
    _pad: [u64; 7],
    /// x0..x7 of an IPC fast-path candidate (`hv_lower_ipc` puts them here,
    /// not in the context), and then the partner's, which `hv_enter_message`
    /// loads: the message goes from one partition to the other without a
    /// copy between contexts. Apart from the PerCpu, so that the kernel may
    /// borrow this core's PerCpu while the fast path holds the message.
    message: UnsafeCell<[u64; 8]>,
    cpu: UnsafeCell<PerCpu>,
}

const _: () = assert!(offset_of!(PerCpuCell, cpu) == offset_of!(PerCpuCell, message) + 64);

// SAFETY: core N only ever touches PER_CPU[N] (module invariant).
unsafe impl Sync for PerCpuCell {}

static PER_CPU: [PerCpuCell; MAX_CPUS] = [const {
    PerCpuCell {
        core_data: AtomicPtr::new(core::ptr::null_mut()),
        _pad: [0; 7],
        message: UnsafeCell::new([0; 8]),
        cpu: UnsafeCell::new(PerCpu {
            current: core::ptr::null_mut(),
            stack_top: 0,
            index: 0,
            vcpu: usize::MAX,
            loaded_vttbr: 0,
            vm: crate::vm::PerCore::NEW,
            switch: crate::speculation::Switch::UNKNOWN,
        }),
    }
}; MAX_CPUS];

/// The cell of the core whose PerCpu is `cpu`.
fn cell_of(cpu: *mut PerCpu) -> *const PerCpuCell {
    cpu.cast::<u8>()
        .wrapping_sub(offset_of!(PerCpuCell, cpu))
        .cast::<PerCpuCell>()
}

/// The message of the core whose PerCpu is `cpu`.
fn message_of(cpu: *mut PerCpu) -> *mut [u64; 8] {
    // SAFETY: only the address of the cell's field is computed (nothing is
    // read or referenced); `cpu` is a PerCpu inside its PerCpuCell.
    unsafe { UnsafeCell::raw_get(core::ptr::addr_of!((*cell_of(cpu)).message)) }
}

const NOWHERE: usize = usize::MAX;

/// One vCPU as this module keeps it. `repr(C)` with the context first, so a
/// PerCpu's `current` (what `vcpu.S` uses) is also a pointer to its cell.
#[repr(C)]
struct VcpuCell {
    /// Its registers.
    context: UnsafeCell<Context>,
    /// The core it is running on (its context is in use there), or
    /// `NOWHERE`. Claimed with acquire when a core makes it current,
    /// released when the core switches away, so its saved registers are
    /// visible to the next core (or `prepare`) that takes it.
    running: AtomicUsize,
    /// A start waiting for the vCPU to be let go of: `prepare` on the core
    /// that is running the vCPU (a partition restarting after a fault on
    /// this core) must not rewrite the context while the exit that faulted
    /// still uses its registers, so the start is applied when the core
    /// switches away.
    pending: UnsafeCell<Option<Start>>,
}

const _: () = assert!(offset_of!(VcpuCell, context) == 0);

// SAFETY: a context and its pending start are touched only by the core its
// vCPU runs on, or by `prepare` while no core runs it (module invariants,
// enforced by `running`).
unsafe impl Sync for VcpuCell {}

static VCPUS: [VcpuCell; MAX_SYSTEM_VCPUS] = [const {
    VcpuCell {
        context: UnsafeCell::new(Context {
            x: [0; 31],
            sp_el0: 0,
            elr: 0,
            spsr: 0,
            tpidr_el0: 0,
            vttbr: 0,
            kind: 0,
            sync_errors: false,
        }),
        running: AtomicUsize::new(NOWHERE),
        pending: UnsafeCell::new(None),
    }
}; MAX_SYSTEM_VCPUS];

core::arch::global_asm!(
    include_str!("vcpu.S"),
    current = const offset_of!(PerCpu, current),
    stack_top = const offset_of!(PerCpu, stack_top),
    message = const -64,
    message_2 = const -48,
    message_4 = const -32,
    message_6 = const -16,
    sp_el0 = const offset_of!(Context, sp_el0),
    spsr = const offset_of!(Context, spsr),
    hypercall = const HYPERCALL,
    synchronous = const SYNCHRONOUS,
    call_offset = const Hypercall::Call.function_id() - Hypercall::Version.function_id(),
    message_words = const MESSAGE_WORDS,
    version_high = const Hypercall::Version.function_id() >> 16,
    abi_version = const ABI_VERSION,
    svc_zero = const hv_core::esr::SVC_ZERO_ROTATED,
);

/// The index `vcpu.S` passes for a synchronous exception that is a
/// hypercall (the vector indices proper are 8 to 11).
const HYPERCALL: u64 = 12;

/// The vector index of a synchronous exception from a lower level (one
/// that is not a hypercall: `hv_lower_sync` tells them apart).
const SYNCHRONOUS: u64 = 8;

/// The vector index of an IRQ from a lower level.
const IRQ: u64 = 9;

/// The vector index of an SError from a lower level.
const SERROR: u64 = 11;

// The fast path's `mov x1, #ABI_VERSION` and `mov x1, #version_high, lsl
// #16` need values MOVZ can encode.
const _: () = assert!(ABI_VERSION & 0xffff == 0 || ABI_VERSION >> 16 == 0);
const _: () = assert!(Hypercall::Version.function_id() & 0xffff == 0);
// The entry's fast-path test: `ReplyRecv` follows `Call`, both a small
// distance (an immediate of `sub`) above `Version`.
const _: () = assert!(Hypercall::ReplyRecv.function_id() == Hypercall::Call.function_id() + 1);
const _: () = assert!(Hypercall::Call.function_id() > Hypercall::Version.function_id());
const _: () = assert!(Hypercall::Call.function_id() - Hypercall::Version.function_id() < 4096);
const _: () = assert!(MESSAGE_WORDS < 32);
// The entry's class-and-immediate test (`sub`, then `tst` against all bits
// but bit 1) admits exactly SVC #0 and HVC #0.
const _: () = assert!(hv_core::esr::HVC_ZERO_ROTATED == hv_core::esr::SVC_ZERO_ROTATED + 2);

unsafe extern "C" {
    fn hv_enter_current() -> !;
    fn hv_enter_message() -> !;
}

/// Points TPIDR_EL2 at this core's `PerCpu`; called once per core at boot.
pub(crate) fn init_cpu(index: usize, stack_top: u64) {
    let Some(cell) = PER_CPU.get(index) else {
        crate::cpu::park()
    };
    // SAFETY: this is core `index` setting up its own PerCpu, before anything
    // else on this core uses it.
    let per_cpu = unsafe { &mut *cell.cpu.get() };
    per_cpu.index = index;
    per_cpu.stack_top = stack_top;
    TPIDR_EL2.set(cell.cpu.get() as u64);
}

/// This core's PerCpu, or `None` before `init_cpu` ran on it (boot.S clears
/// TPIDR_EL2 at entry).
fn this_cpu() -> Option<&'static mut PerCpu> {
    // SAFETY: TPIDR_EL2 is zero or was pointed at this core's PerCpu by
    // `init_cpu`, and only this core uses it (module invariant). The kernel
    // runs with interrupts masked and takes no borrow of its PerCpu across a
    // call that could take another, so no other borrow is live.
    unsafe { (TPIDR_EL2.get() as *mut PerCpu).as_mut() }
}

/// This core's index (0 before the boot code set it up).
pub(crate) fn cpu_index() -> usize {
    this_cpu().map_or(0, |cpu| cpu.index)
}

/// Why a vCPU came back to the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// A hypercall: `svc` from EL0 or `hvc` from EL1 (but `Version`, which
    /// never reaches the kernel's handler).
    Hypercall,
    /// Any other synchronous exception: a fault, a trapped instruction.
    Synchronous {
        /// ESR_EL2. For the addresses of an abort, see [`fault_address`].
        esr: u64,
    },
    /// A physical interrupt.
    Irq,
    /// A physical FIQ.
    Fiq,
    /// A system error.
    SError,
}

/// What to do after the kernel handled an exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Resume the same vCPU.
    Resume,
    /// Run this vCPU instead (it must be pinned to this core).
    Switch(usize),
    /// Run nothing: go to the kernel's idle loop.
    Idle,
}

/// What the kernel does with partitions' exits.
pub trait Exits: 'static {
    /// What the kernel keeps for each core ([`set_core_data`]), which
    /// [`Exits::ipc`] gets without looking it up.
    type Core: Sync + 'static;

    /// Handles an exit: (core, vCPU, why, its x0..x7) to what next. `regs`
    /// comes in as the exiting vCPU's x0..x7 and must go out as the next
    /// vCPU's.
    fn exit(core: usize, vcpu: usize, exit: Exit, regs: &mut [u64; 8]) -> Next;

    /// The IPC fast path: `call` (`Call` or `ReplyRecv` with a plain
    /// message info, which the entry checked) on `core`, whose data is
    /// `data`, with the caller's x0..x7. The vCPU to switch to, `regs` then holding its x0..x7;
    /// or `None`, `regs` untouched, and the hypercall goes to [`Exits::exit`].
    fn ipc(core: usize, data: &Self::Core, call: FastCall, regs: &mut [u64; 8]) -> Option<usize>;

    /// The idle loop, for a core with nothing to run.
    fn idle() -> !;
}

/// Which [`Exits`] [`install_exits!`](crate::install_exits) installed:
/// [`set_core_data`] takes only its [`Exits::Core`], the type `ipc_entry`
/// reads.
static HANDLER: spin::Once<TypeId> = spin::Once::new();

/// Installs the kernel's handling of exits, `$exits` (the name of a type
/// implementing [`vcpu::Exits`](crate::vcpu::Exits), defined in the
/// caller's module): from then on every exit from a
/// partition goes to its `exit`, with the whole path compiled as one
/// function. Call it once, before any partition runs.
///
/// `vcpu.S` calls the entry functions by name, `hv_exit_entry` and
/// `hv_ipc_entry`, with no pointer to load and test on the way: this
/// defines both names, for `$exits`, where the kernel invokes it. A kernel
/// that never invokes it does not link; one that invokes it twice does not
/// either.
#[macro_export]
macro_rules! install_exits {
    ($exits:ident) => {{
        // An item, as `global_asm!` must be, inside the caller's function:
        // `super` is the caller's module, where `$exits` is.
        mod entry_symbols {
            ::core::arch::global_asm!(
                ".global hv_exit_entry",
                ".set hv_exit_entry, {entry}",
                ".global hv_ipc_entry",
                ".set hv_ipc_entry, {ipc}",
                entry = sym $crate::vcpu::lower_entry::<super::$exits>,
                ipc = sym $crate::vcpu::ipc_entry::<super::$exits>,
            );
        }
        // SAFETY: `$exits` is the type whose entry functions the names
        // above are.
        unsafe { $crate::vcpu::set_handler::<$exits>() };
    }};
}

/// Records that `K` handles exits; [`install_exits!`](crate::install_exits)
/// calls it.
///
/// # Safety
///
/// `K` must be the type whose `lower_entry` and `ipc_entry` the symbols
/// `hv_exit_entry` and `hv_ipc_entry` are: `ipc_entry::<K>` reads the data
/// [`set_core_data`] accepts for the recorded type as `K::Core`.
#[doc(hidden)]
pub unsafe fn set_handler<K: Exits>() {
    HANDLER.call_once(TypeId::of::<K>);
}

/// Gives core `core` the kernel's `data`, which [`Exits::ipc`] then gets on
/// that core: for the [`Exits`] that [`install_exits!`](crate::install_exits) installed (for any
/// other, or before it, nothing is done).
pub fn set_core_data<K: Exits>(core: usize, data: &'static K::Core) {
    if HANDLER.get() != Some(&TypeId::of::<K>()) {
        return;
    }
    if let Some(cell) = PER_CPU.get(core) {
        cell.core_data.store(
            core::ptr::from_ref(data).cast_mut().cast(),
            Ordering::Release,
        );
    }
}

/// How a vCPU starts.
#[derive(Clone, Copy, Debug)]
pub struct Start {
    /// The first instruction (an IPA).
    pub entry: u64,
    /// The initial EL0 stack pointer (an IPA).
    pub stack: u64,
    /// x0 to x4 at entry.
    pub args: [u64; 5],
    /// Its stage-2 tables and VMID: see [`vttbr`].
    pub vttbr: u64,
    /// A virtual machine's vCPU: it does not run until the kernel stages a
    /// start for it (`entry`, `stack` and `args` are then ignored but x0).
    pub vm: bool,
    /// Its partition owns a device (see [`Context::sync_errors`]).
    pub sync_errors: bool,
}

/// Why a vCPU cannot be prepared or run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VcpuError {
    /// No such vCPU.
    BadVcpu(usize),
    /// It already runs on a core, and only that core may touch it.
    Running(usize),
}

/// SPSR for a service vCPU's first entry: EL0t, interrupts unmasked (they are
/// taken at EL2 regardless).
const SPSR_EL0T: u64 = 0;

/// Sets up `vcpu` to start as `start` says. Only while no core runs it.
pub fn prepare(vcpu: usize, start: Start) -> Result<(), VcpuError> {
    let cell = VCPUS.get(vcpu).ok_or(VcpuError::BadVcpu(vcpu))?;
    let running = &cell.running;
    // Claim it for the duration, so no core starts running it meanwhile. If
    // this core runs it, the start waits until the core lets go of it. If
    // another core still holds it (it took its kick but has not switched
    // away yet), wait for it, up to a second.
    let here = cpu_index();
    match seize(running, here) {
        Ok(_) => {
            // SAFETY: this core claimed the vCPU above, so no other core
            // touches its context until the release below.
            let context = unsafe { &mut *cell.context.get() };
            reset(context, &start);
            running.store(NOWHERE, Ordering::Release);
            Ok(())
        }
        Err(core) if core == here => {
            // SAFETY: the pending start is touched only by the core running
            // the vCPU, which is this one.
            unsafe { *cell.pending.get() = Some(start) };
            Ok(())
        }
        Err(core) => Err(VcpuError::Running(core)),
    }
}

fn reset(context: &mut Context, start: &Start) {
    *context = Context {
        elr: start.entry,
        sp_el0: start.stack,
        spsr: if start.vm {
            crate::vm::SPSR_EL1H
        } else {
            SPSR_EL0T
        },
        vttbr: start.vttbr,
        kind: if start.vm { VM } else { FRESH },
        sync_errors: start.sync_errors,
        ..Context::default()
    };
    if !start.vm {
        context.x[..5].copy_from_slice(&start.args);
    }
}

/// The VTTBR_EL2 value for stage-2 tables rooted at `root` with `vmid`.
#[must_use]
pub fn vttbr(vmid: u8, root: u64) -> u64 {
    (u64::from(vmid) << 48) | (root & 0x0000_ffff_ffff_fffe)
}

/// Makes `vcpu` this core's current vCPU with `regs` as its x0..x7 (which
/// must not be its own context's), loads its stage-2 tables, and lets go of
/// the vCPU that ran before (after `regs` was read: it may be that vCPU's).
/// `switching` must be whether `vcpu` differs from the core's current one
/// (the exit path knows it already; other callers compute it).
#[inline(always)]
fn make_current(
    cpu: &mut PerCpu,
    vcpu: usize,
    regs: *const [u64; 8],
    switching: bool,
) -> Result<(), VcpuError> {
    let cell = claim(cpu, vcpu, switching)?;
    // SAFETY: this core runs the vCPU (claimed above, or already), so no
    // other core touches its context.
    let context = unsafe { &mut *cell.context.get() };
    // SAFETY: `regs` is valid for reads (the caller's contract) and is not
    // this context's (the vCPU differs from the outgoing one, or `regs` is a
    // copy), so it does not overlap `context`.
    load_regs(context, unsafe { &*regs });
    install(cpu, cell, vcpu, switching);
    Ok(())
}

/// `vcpu`'s cell, claimed for this core if `switching` (else this core
/// runs it already).
#[inline(always)]
fn claim(cpu: &PerCpu, vcpu: usize, switching: bool) -> Result<&'static VcpuCell, VcpuError> {
    let cell = VCPUS.get(vcpu).ok_or(VcpuError::BadVcpu(vcpu))?;
    if switching
        && cell
            .running
            .compare_exchange(NOWHERE, cpu.index, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
    {
        return claim_contended(cell, cpu.index);
    }
    Ok(cell)
}

/// [`claim`] when another core holds `cell`: for a moment only, as it reads
/// or writes one of its registers or sets it up for a start (a vCPU runs
/// only on its own core, this one), so wait for it rather than leave the
/// vCPU that the kernel's state says runs here unrun.
#[cold]
#[inline(never)]
fn claim_contended(cell: &'static VcpuCell, here: usize) -> Result<&'static VcpuCell, VcpuError> {
    seize(&cell.running, here).map_err(VcpuError::Running)?;
    Ok(cell)
}

/// Claims a vCPU (its `running`) for core `here`, waiting up to a second
/// while another core holds it; fails at once, with the holder, if `here`
/// holds it already.
fn seize(running: &AtomicUsize, here: usize) -> Result<(), usize> {
    let deadline = crate::cpu::counter() + crate::cpu::timer_frequency();
    loop {
        match running.compare_exchange(NOWHERE, here, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Ok(()),
            Err(core) if core != here && crate::cpu::counter() < deadline => crate::cpu::relax(),
            Err(core) => return Err(core),
        }
    }
}

/// Makes `cell` (vCPU `vcpu`, claimed by this core) this core's current
/// vCPU: loads its stage-2 tables and lets go of the vCPU that ran before
/// if `switching`.
#[inline(always)]
fn install(cpu: &mut PerCpu, cell: &'static VcpuCell, vcpu: usize, switching: bool) {
    // SAFETY: this core runs the vCPU, so no other core touches its context;
    // only its stage-2 tables are read.
    let vttbr = unsafe { (*cell.context.get()).vttbr };
    if cpu.loaded_vttbr != vttbr {
        // Another partition's vCPU (each partition has its own VMID, so its
        // own VTTBR_EL2): nothing the last one left in the predictors (or,
        // when scrubbing, the caches) may reach it.
        crate::speculation::on_partition_switch(&mut cpu.switch);
        VTTBR_EL2.set(vttbr);
        aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
        cpu.loaded_vttbr = vttbr;
    }
    if switching {
        release_current(cpu);
    }
    // Derived from the whole cell (the context is its first field), so that
    // `release_current` may reach the cell's other fields through it.
    cpu.current = core::ptr::from_ref(cell).cast_mut().cast::<Context>();
    cpu.vcpu = vcpu;
}

/// Gives a vCPU that is about to run its x0..x7 from the kernel's state,
/// unless it is fresh: then it keeps its start arguments.
fn load_regs(context: &mut Context, regs: &[u64; 8]) {
    if context.kind & FRESH != 0 {
        context.kind &= !FRESH;
    } else if let Some(x) = context.x.first_chunk_mut::<8>() {
        copy_registers(x, regs);
    }
}

/// Runs `vcpu` on this core, from its saved context, with `regs` as its
/// x0..x7. Never returns: the kernel comes back through the exit handler.
pub fn run(vcpu: usize, regs: &[u64; 8]) -> Result<core::convert::Infallible, VcpuError> {
    let Some(cpu) = this_cpu() else {
        crate::cpu::park()
    };
    // `regs` is the caller's, never a context's.
    let switching = cpu.vcpu != vcpu;
    make_current(cpu, vcpu, regs, switching)?;
    before_entry(cpu);
    // SAFETY: this core's PerCpu names a prepared context; `hv_enter_current`
    // resets the kernel stack (abandoning this frame, which nothing refers to
    // any more) and erets into it.
    unsafe { hv_enter_current() }
}

/// Moves the running vCPU past the instruction it trapped on (a WFI, say),
/// so that it resumes after it.
pub fn skip_instruction() {
    let Some(current) = this_cpu().map(|cpu| cpu.current) else {
        return;
    };
    if current.is_null() {
        return;
    }
    // SAFETY: `current` is this core's running vCPU's context (module
    // invariants). Only its `elr` is touched, through the raw pointer: the
    // exit handler that calls this holds a reference to the same context's
    // x0..x7, which no reference made here may overlap.
    unsafe {
        let elr = core::ptr::addr_of_mut!((*current).elr);
        elr.write(elr.read().wrapping_add(4));
    }
}

/// Called by `vcpu.S` (as `hv_exit_entry`, [`install_exits!`](crate::install_exits))
/// with this core's PerCpu and the vector index (8 to 11, or [`HYPERCALL`]).
/// Never returns: it ends by entering whatever vCPU is current, so that the
/// compiler need not keep any register of its caller.
///
/// # Safety
///
/// Only `vcpu.S` calls it, on an exit from a partition: `cpu` is this
/// core's PerCpu, whose current context holds the partition's registers.
#[doc(hidden)]
pub unsafe extern "C" fn lower_entry<K: Exits>(cpu: *mut u8, index: u64) -> ! {
    let cpu = cpu.cast::<PerCpu>();
    let mut exit = if index == HYPERCALL {
        Exit::Hypercall
    } else if index == SYNCHRONOUS {
        // A guest's MMIO access, most often: one register read, in line.
        Exit::Synchronous { esr: ESR_EL2.get() }
    } else if index == IRQ {
        Exit::Irq
    } else {
        other_exit(index)
    };
    // SAFETY: `cpu` is this core's PerCpu (vcpu.S passes TPIDR_EL2). Its
    // fields are read here without keeping a reference, so the handler may
    // use `this_cpu()` freely.
    let (core, vcpu, current) = unsafe { ((*cpu).index, (*cpu).vcpu, (*cpu).current) };
    // SAFETY: `current` is this core's running vCPU's context (module invariants).
    let Some(context) = (unsafe { current.as_mut() }) else {
        crate::cpu::park()
    };
    // A partition that owns a device: an SError its accesses raised is
    // taken now, while it is still the one running, and is its exit.
    if context.sync_errors && exit != Exit::SError && crate::serror::synchronise() {
        exit = Exit::SError;
    }
    // The handler works on the context's own x0..x7: no copy on the way in,
    // none on the way out when the same vCPU resumes.
    let regs = context
        .x
        .first_chunk_mut::<8>()
        .unwrap_or_else(|| crate::cpu::park());
    let next = K::exit(core, vcpu, exit, regs);
    match next {
        Next::Resume => enter(cpu),
        Next::Switch(next) => switch::<K>(cpu, vcpu, next, regs),
        Next::Idle => go_idle::<K>(cpu),
    }
}

/// Called by `vcpu.S` (as `hv_ipc_entry`) with this core's PerCpu and 0 for
/// `Call` or 1 for `ReplyRecv`, whose message info the entry found plain:
/// the IPC fast path, without the general exit's tests. What the fast path
/// declines goes to [`lower_entry`] as any hypercall.
///
/// # Safety
///
/// As for [`lower_entry`]; the caller's x0..x7 are in the core's message,
/// the rest of its registers in its context.
#[doc(hidden)]
pub unsafe extern "C" fn ipc_entry<K: Exits>(cpu: *mut u8, call: u64) -> ! {
    let cpu = cpu.cast::<PerCpu>();
    // SAFETY: as in `lower_entry`.
    let (core, current) = unsafe { ((*cpu).index, (*cpu).current) };
    // SAFETY: `current` is this core's running vCPU's context (module
    // invariants), not null: `hv_lower_ipc` has just saved the caller's
    // registers into it.
    let context = unsafe { &mut *current };
    // As in `lower_entry`: an SError is the exit, not the hypercall.
    if context.sync_errors && crate::serror::synchronise() {
        decline::<K>(cpu, context, SERROR)
    }
    let call = if call == 0 {
        FastCall::Call
    } else {
        FastCall::ReplyRecv
    };
    // SAFETY: `cpu` is this core's PerCpu, in its cell; the cell's
    // `core_data` is null or was set by `set_core_data::<K>` (the installed
    // `Exits`, whose entry this is) from a `&'static K::Core`.
    let data = unsafe {
        (*cell_of(cpu))
            .core_data
            .load(Ordering::Acquire)
            .cast::<K::Core>()
            .as_ref()
    };
    let Some(data) = data else {
        decline::<K>(cpu, context, HYPERCALL)
    };
    // SAFETY: `cpu` is this core's PerCpu, after its message (PerCpuCell),
    // which only this exit uses and nothing else borrows.
    let regs = unsafe { &mut *message_of(cpu) };
    match K::ipc(core, data, call, regs) {
        // Another vCPU, always (were it this one, `switch_message`'s claim
        // would fail and `claim_failed` let it go on).
        Some(next) => switch_message::<K>(cpu, next),
        None => decline::<K>(cpu, context, HYPERCALL),
    }
}

/// The fast path declined: the exit goes on as any other (`index`), with
/// the caller's x0..x7, still in the PerCpu's message, put in its context.
#[inline(always)]
fn decline<K: Exits>(cpu: *mut PerCpu, context: &mut Context, index: u64) -> ! {
    spill(cpu, context);
    // SAFETY: `cpu` is this core's PerCpu on an exit (the caller's
    // contract), the caller's registers now all in its context.
    unsafe { lower_entry::<K>(cpu.cast(), index) }
}

/// Copies this core's message into `context`'s x0..x7.
#[inline(always)]
fn spill(cpu: *mut PerCpu, context: &mut Context) {
    if let Some(x) = context.x.first_chunk_mut::<8>() {
        // SAFETY: `cpu` is this core's PerCpu, after its message, which is
        // not the context's.
        copy_registers(x, unsafe { &*message_of(cpu) });
    }
}

/// Switches this core to `next`, whose x0..x7 the fast path left in the
/// PerCpu's message, and enters it. A service's vCPU after a service's
/// takes them straight from there (`hv_enter_message`): its context's
/// x0..x7 stay as they were, unread, until its next exit saves over them.
/// Anything else (a guest's vCPU, whose staged entry may write its
/// registers; a fresh one, which keeps its start arguments; a service's
/// after a guest's, whose EL0 settings come back) gets them copied into
/// its context and is entered the usual way.
#[inline(always)]
fn switch_message<K: Exits>(cpu: *mut PerCpu, next: usize) -> ! {
    // SAFETY: `cpu` is this core's PerCpu; no other borrow of it is live.
    let here = unsafe { &mut *cpu };
    let Ok(cell) = claim(here, next, true) else {
        claim_failed::<K>(cpu, next)
    };
    // SAFETY: claimed above: no other core touches the context.
    let context = unsafe { &mut *cell.context.get() };
    let direct = context.kind == 0 && !here.vm.guest_mode();
    if !direct {
        // SAFETY: as in `ipc_entry`; the message is not the context's.
        load_regs(context, unsafe { &*message_of(cpu) });
    }
    install(here, cell, next, true);
    if direct {
        // SAFETY: this core's PerCpu names the context to run and holds its
        // x0..x7; the kernel stack is reset there, abandoning this frame.
        unsafe { hv_enter_message() }
    }
    enter(cpu)
}

/// [`switch_message`] could not claim `next`. If it is the vCPU this core
/// runs, it goes on: the fast path only ever switches, but the answer is
/// the kernel's either way, so its x0..x7 go into its context and it is
/// entered again. Otherwise the core idles, as after any failed claim.
#[cold]
#[inline(never)]
fn claim_failed<K: Exits>(cpu: *mut PerCpu, next: usize) -> ! {
    // SAFETY: `cpu` is this core's PerCpu; its fields are read without
    // keeping a reference.
    let (vcpu, current) = unsafe { ((*cpu).vcpu, (*cpu).current) };
    if vcpu == next {
        // SAFETY: `current` is this core's running vCPU's context (module
        // invariants), or null.
        if let Some(context) = unsafe { current.as_mut() } {
            spill(cpu, context);
            enter(cpu)
        }
    }
    go_idle::<K>(cpu)
}

/// Switches this core from `vcpu` to `next` (if they differ) with `regs`,
/// the outgoing context's own x0..x7 now holding the incoming vCPU's, and
/// enters it: `make_current` copies them over before it lets go of the
/// outgoing context (which a restart may then reset).
#[inline(always)]
fn switch<K: Exits>(cpu: *mut PerCpu, vcpu: usize, next: usize, regs: *const [u64; 8]) -> ! {
    // The same vCPU again (it was the only one ready here): its registers
    // are already in place; `before_entry` applies what the kernel staged
    // for it (a start, a register write, interrupts).
    if next != vcpu {
        // SAFETY: `cpu` is this core's PerCpu; the handler's borrows of it
        // have ended, and this one ends with the call.
        if make_current(unsafe { &mut *cpu }, next, regs, true).is_err() {
            go_idle::<K>(cpu);
        }
    }
    enter(cpu)
}

/// Enters this core's current vCPU.
#[inline(always)]
fn enter(cpu: *mut PerCpu) -> ! {
    // SAFETY: `cpu` is this core's PerCpu; the handler's borrows have ended.
    before_entry(unsafe { &mut *cpu });
    // SAFETY: this core's PerCpu names the context to run; the kernel stack
    // is reset there, abandoning this frame, which nothing refers to.
    unsafe { hv_enter_current() }
}

/// What entering the current vCPU needs besides its registers: for a
/// guest's, its EL1 state and what the kernel staged; for a service's after
/// a guest, the service's EL0 settings. Two loads and a branch for a
/// service after a service.
#[inline(always)]
fn before_entry(cpu: &mut PerCpu) {
    // SAFETY: `current` is this core's running vCPU's context (module
    // invariants); it is not otherwise borrowed here.
    let Some(context) = (unsafe { cpu.current.as_mut() }) else {
        return;
    };
    if context.vm() || cpu.vm.guest_mode() {
        let vm = context.vm();
        crate::vm::before_entry(&mut cpu.vm, cpu.vcpu, context, vm);
    }
}

/// Sets up guest vCPU `vcpu` at boot, before anything runs: `index` is its
/// place in its virtual machine (its MPIDR's Aff0).
pub fn init_guest(vcpu: usize, index: u8) {
    crate::vm::init_vcpu(vcpu, index);
}

/// Passes shared interrupt `intid` through to guest vCPU `vcpu` (see
/// [`crate::vm`]). Call at boot, before any guest runs.
pub fn set_passthrough(intid: u32, vcpu: usize) {
    crate::vm::set_passthrough(intid, vcpu);
}

/// General register `n` (0 to 30; 31, the zero register, reads 0) of the
/// vCPU running on this core, as it trapped; for the exit handler, which
/// holds its x0..x7 and so asks only for the others.
pub fn current_register(n: u8) -> u64 {
    let Some(current) = this_cpu().map(|cpu| cpu.current) else {
        return 0;
    };
    if current.is_null() || n > 30 {
        return 0;
    }
    // SAFETY: `current` is this core's running vCPU's context (module
    // invariants), read through the raw pointer: the exit handler holds a
    // reference to its x0..x7 only, which this read does not overlap for
    // n >= 8 (and for n < 8 it reads what the handler has not changed).
    unsafe { core::ptr::addr_of!((*current).x[usize::from(n)]).read() }
}

/// Where the vCPU running on this core trapped (its ELR_EL2).
pub fn current_pc() -> u64 {
    let Some(current) = this_cpu().map(|cpu| cpu.current) else {
        return 0;
    };
    if current.is_null() {
        return 0;
    }
    // SAFETY: as in `current_register`: `elr` is outside x0..x7.
    unsafe { core::ptr::addr_of!((*current).elr).read() }
}

/// Stages `entry` (the kernel took it from its state for guest vCPU
/// `vcpu`) to be applied when this core enters `vcpu`, which it is about
/// to; an entry staged for another vCPU is dropped then.
pub fn stage_vm_entry(vcpu: usize, entry: hv_core::state::VmEntry) {
    if let Some(cpu) = this_cpu() {
        crate::vm::stage(&mut cpu.vm, vcpu, entry);
    }
}

/// The virtual timer fired on this core: the guest vCPU it belongs to (its
/// interrupt is now on the way to it), if any. The caller ends the physical
/// interrupt with [`crate::gic::priority_drop`], not [`crate::gic::end`].
pub fn vm_timer_fired() -> Option<usize> {
    this_cpu().and_then(|cpu| crate::vm::timer_fired(&mut cpu.vm))
}

/// The wake-up timer (the EL1 physical timer's PPI) fired on this core: the
/// guest vCPUs pinned here whose unloaded virtual timer is due (bit n: vCPU
/// n), for the kernel to wake.
pub fn vm_wake_due() -> u64 {
    this_cpu().map_or(0, |cpu| crate::vm::wake_due(&mut cpu.vm))
}

/// The GIC's maintenance interrupt on this core.
pub fn vm_maintenance() {
    if let Some(cpu) = this_cpu() {
        crate::vm::maintenance(&mut cpu.vm);
    }
}

/// Whether guest vCPU `vcpu`, running on this core, has an interrupt
/// pending in the hardware (so that its WFI would end at once).
pub fn vm_pending_in_hardware(vcpu: usize) -> bool {
    this_cpu().is_some_and(|cpu| crate::vm::pending_in_hardware(&cpu.vm, vcpu))
}

/// Reads (or, with `write`, writes) register `register` of vCPU `vcpu`,
/// which no core runs: 0..=30 a general register, 32 the PC, 33 PSTATE.
/// Returns the value read (0 for a write). Waits up to a second for the
/// core that last ran it to let go.
pub fn access_register(vcpu: usize, register: u8, write: Option<u64>) -> Result<u64, VcpuError> {
    let cell = VCPUS.get(vcpu).ok_or(VcpuError::BadVcpu(vcpu))?;
    seize(&cell.running, cpu_index()).map_err(VcpuError::Running)?;
    // SAFETY: claimed above: no core runs or touches it until the release.
    let context = unsafe { &mut *cell.context.get() };
    let slot = match register {
        0..=30 => context.x.get_mut(usize::from(register)),
        32 => Some(&mut context.elr),
        33 => Some(&mut context.spsr),
        _ => None,
    };
    let value = match (slot, write) {
        (Some(slot), Some(value)) => {
            *slot = value;
            0
        }
        (Some(slot), None) => *slot,
        (None, _) => 0,
    };
    // A guest may only ever be entered at EL1 or EL0 in AArch64 state: a
    // PSTATE naming EL2 (or AArch32) would hand it the kernel's level.
    if register == 33
        && write.is_some()
        && !matches!(context.spsr & 0x1f, 0b0_0000 | 0b0_0100 | 0b0_0101)
    {
        context.spsr = (context.spsr & !0x1f) | 0b0_0101;
    }
    cell.running.store(NOWHERE, Ordering::Release);
    Ok(value)
}

/// The exit for vector index `index` (10 or 11; the common ones are told
/// apart in line).
#[cold]
#[inline(never)]
fn other_exit(index: u64) -> Exit {
    match index {
        SYNCHRONOUS => Exit::Synchronous { esr: ESR_EL2.get() },
        IRQ => Exit::Irq,
        10 => Exit::Fiq,
        _ => Exit::SError,
    }
}

/// A copy of x0..x7 in four load-pair/store-pair moves (the compiler calls
/// `memcpy` for a 64-byte copy on this target, which costs three times as
/// much on the IPC path).
#[inline(always)]
fn copy_registers(out: &mut [u64; 8], regs: &[u64; 8]) {
    // SAFETY: reads 64 bytes from `regs` and writes 64 bytes to `out`, both
    // valid, aligned [u64; 8] arrays; they cannot overlap, since one is
    // borrowed mutably and the other shared.
    unsafe {
        core::arch::asm!(
            "ldp {a}, {b}, [{src}]", "stp {a}, {b}, [{dst}]",
            "ldp {a}, {b}, [{src}, #16]", "stp {a}, {b}, [{dst}, #16]",
            "ldp {a}, {b}, [{src}, #32]", "stp {a}, {b}, [{dst}, #32]",
            "ldp {a}, {b}, [{src}, #48]", "stp {a}, {b}, [{dst}, #48]",
            src = in(reg) regs.as_ptr(), dst = in(reg) out.as_mut_ptr(),
            a = out(reg) _, b = out(reg) _, options(nostack, preserves_flags),
        );
    }
}

/// Where the running vCPU's last synchronous exception faulted: FAR_EL2 and,
/// for stage-2 aborts, the IPA from HPFAR_EL2. Read only on the slow paths.
pub fn fault_address() -> (u64, u64) {
    let ipa = (HPFAR_EL2.get() & 0x0fff_ffff_ffff_fff0) << 8;
    (FAR_EL2.get(), ipa | (FAR_EL2.get() & 0xfff))
}

/// Lets go of the vCPU this core was running: its context, saved on exit, is
/// now anyone's to take.
#[inline(always)]
fn release_current(cpu: &mut PerCpu) {
    // SAFETY: `current` is null or, as `make_current` set it, a pointer to
    // the whole VcpuCell of `cpu.vcpu` (its context first, repr(C)).
    let Some(cell) = (unsafe { cpu.current.cast::<VcpuCell>().as_ref() }) else {
        return;
    };
    // SAFETY: this core runs the vCPU, so its pending start is this core's
    // alone (module invariants). Only looked at, not moved, on the hot path.
    if unsafe { (*cell.pending.get()).is_some() } {
        apply_pending(cell);
    }
    cell.running.store(NOWHERE, Ordering::Release);
    cpu.current = core::ptr::null_mut();
    cpu.vcpu = usize::MAX;
}

/// Applies the start waiting for `cell` (its vCPU restarted while this core
/// ran it), as this core lets go of it. Out of line and cold: the reset
/// writes a whole context (through `memset`), which would otherwise be
/// copied into every switch path that lets a vCPU go.
#[cold]
#[inline(never)]
fn apply_pending(cell: &VcpuCell) {
    // SAFETY: the caller (`release_current`) runs the vCPU on this core, so
    // its pending start and context are this core's alone.
    let (pending, context) = unsafe { (&mut *cell.pending.get(), &mut *cell.context.get()) };
    if let Some(start) = pending.take() {
        reset(context, &start);
    }
}

/// Lets go of this core's vCPU and runs the idle loop. Takes the PerCpu as a
/// raw pointer: a reference argument would stay borrowed for the whole (never
/// ending) call, while interrupts in the idle loop use `this_cpu()`.
fn go_idle<K: Exits>(cpu: *mut PerCpu) -> ! {
    // SAFETY: `cpu` is this core's PerCpu; the reference lives only for the
    // release.
    release_current(unsafe { &mut *cpu });
    K::idle()
}

/// Configures this core for running service partitions: EL0 under TGE with
/// stage 2 on (HCR_EL2), EL0 controls (SCTLR_EL1, CNTKCTL_EL1) and the stage-2
/// format (VTCR_EL2), debug and PMU traps, and the virtual CPU interface for
/// guests. Called once per core, after the GIC's set-up.
pub fn configure_cpu() {
    let ps = match crate::cpu::physical_address_bits() {
        32 => VTCR_EL2::PS::PA_32B_4GB,
        36 => VTCR_EL2::PS::PA_36B_64GB,
        40 => VTCR_EL2::PS::PA_40B_1TB,
        42 => VTCR_EL2::PS::PA_42B_4TB,
        44 => VTCR_EL2::PS::PA_44B_16TB,
        _ => VTCR_EL2::PS::PA_48B_256TB,
    };
    VTCR_EL2.write(
        VTCR_EL2::RES1::SET
            + VTCR_EL2::T0SZ.val(u64::from(64 - IPA_BITS))
            + VTCR_EL2::SL0.val(1)
            + VTCR_EL2::IRGN0::NormalWBRAWA
            + VTCR_EL2::ORGN0::NormalWBRAWA
            + VTCR_EL2::SH0::Inner
            + VTCR_EL2::TG0::Granule4KB
            + ps,
    );
    SCTLR_EL1.set(crate::vm::SCTLR_SERVICE);
    // The virtual counter is the physical one everywhere (no offset, for
    // guests too): services read it, since QEMU 7.2 traps EL0's reads of
    // the physical counter unless EL1 may use the physical timer
    // (CNTHCTL_EL2.EL1PCEN), which is the kernel's.
    CNTKCTL_EL1.set(crate::vm::CNTKCTL_SERVICE);
    CNTVOFF_EL2.set(0);
    // No performance monitors below EL2: EL0 access off, and any access from
    // EL1/EL0 traps (MDCR_EL2.TPM, TPMCR), whatever firmware left there. The
    // PMU is the kernel's (its cycle counter measures boots). Debug
    // registers, the OS lock and the debug ROM trap too (TDA, TDOSA, TDRA):
    // guests get them through their monitor, which makes them read as zero
    // and ignores writes.
    crate::sysreg::write_pmuserenr_el0(0);
    MDCR_EL2.modify(
        MDCR_EL2::TPM::SET
            + MDCR_EL2::TPMCR::SET
            + MDCR_EL2::TDA::SET
            + MDCR_EL2::TDOSA::SET
            + MDCR_EL2::TDRA::SET,
    );
    // No guest's virtual timer is loaded yet, nor a wake-up set.
    CNTV_CTL_EL0.set(0);
    crate::timer::stop_wake();
    crate::vm::vgic::init_cpu();
    HCR_EL2.set(crate::vm::HCR_SERVICE);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    // Before the first stage-2 use: whatever firmware or an earlier boot
    // left in this core's EL1&0 TLBs (of any VMID) goes. QEMU starts with
    // empty TLBs; a board's firmware or a warm reboot may not.
    crate::insn::tlbi_alle1();
}
