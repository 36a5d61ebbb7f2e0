// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Running partitions: every exit from a partition and every interrupt goes
//! through here to `hv-core`'s step functions, and their outcome is carried
//! out.
//!
//! # Locks
//! The capability, IPC and scheduling state is one [`KernelState`] per lock
//! domain ([`Domains`]: partitions that share no core and no object are in
//! different domains), each under its own lock: a core takes only its own
//! domain's lock for its partitions' hypercalls, interrupts and ticks, so
//! cores running unrelated partitions never wait for each other. Domain 0's
//! state is [`STATE`] (the only one before the system is installed); the
//! others live on the heap. A domain's lock is held only for one step
//! function (or to append to the kernel log), never while printing or
//! touching the GIC, and no other domain's lock is taken while it is held.
//! The kernel log lives in its reader's domain: a line from anywhere takes
//! that domain's lock (with its own released). The log's line buffers
//! (`LINES`) have their own lock, taken with no domain's held; while it is
//! held, a finished line goes to the kernel log (taking the reader's
//! domain) or the console (taking its lock). Order: `LINES`, then one
//! domain or the console lock. A restart's reload takes no lock of its own:
//! its domain says on a tick what to reload on that core
//! ([`KernelState::reload_work`]), only the partition's home core works on
//! it, and the partition runs nowhere meanwhile.

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use hv_abi::console::{PARTITION_FAULT, shown};
use hv_abi::hypercall::StopReason;
use hv_abi::vm::{EXIT_SYSREG, VIRTUAL_TIMER_INTID, WRITE, exit_kind};
use hv_arch_aarch64 as arch;
use hv_arch_aarch64::gic;
use hv_arch_aarch64::vcpu::{Exit, Next as ArchNext};
use hv_core::MAX_CPUS;
use hv_core::cap::PartitionId;
use hv_core::esr::Syndrome;
use hv_core::sched::VcpuId;
use hv_core::state::{
    Admission, Domains, Effect, FastCall, ICC_SGI1R_EL1, IRQ_FIRES_PER_TICK, KernelState,
    LET_GO_TICKS, LOG_BYTES, LOG_LINES_PER_WINDOW, Next, Outcome, RELOAD_STEP_BYTES,
    RELOAD_TICK_PERCENT, ReloadWork, RestartPlan, VmExit,
};
use hv_image::MAX_PARTITIONS;

use crate::shared::{Mutex, MutexGuard};
use spin::Once;

use crate::irq;
use crate::shared;
use crate::system;
use crate::system::Loaded;

/// The kernel's state (capabilities, IPC, scheduling) of lock domain 0,
/// and of every core before the system is installed.
static STATE: Mutex<KernelState> = Mutex::new(KernelState::empty());

/// Every lock domain's state, once the system is installed.
struct Locks {
    domains: Domains,
    /// Domain n's state ([`STATE`] for 0, the heap's for the others), and
    /// whether other cores than its own take its lock: it spans several
    /// cores, or it holds the kernel log, which every domain writes.
    states: alloc::vec::Vec<(&'static Mutex<KernelState>, bool)>,
    /// The domain of the partition that reads the kernel log, if one does.
    reader: Option<usize>,
}

static LOCKS: Once<Locks> = Once::new();

/// A domain's state and whether other cores take its lock, before the
/// system is installed: [`STATE`], which every core takes.
const BEFORE_INSTALL: (&Mutex<KernelState>, bool) = (&STATE, true);

/// Each core's domain's state and whether other cores take its lock, set
/// once at install: the hot path's one lookup (a load of the core's entry,
/// not a walk through [`LOCKS`]).
static CORE_STATE: [Once<(&'static Mutex<KernelState>, bool)>; MAX_CPUS] =
    [const { Once::new() }; MAX_CPUS];

/// The state of `core`'s domain, locked.
#[inline(always)]
fn lock_core(core: usize) -> MutexGuard<'static, KernelState> {
    let (state, shared) = CORE_STATE
        .get(core)
        .and_then(Once::get)
        .copied()
        .unwrap_or(BEFORE_INSTALL);
    shared::lock_domain(state, shared)
}

/// The state of `partition`'s domain, locked.
fn lock_partition(partition: PartitionId) -> MutexGuard<'static, KernelState> {
    let (state, shared) = LOCKS
        .get()
        .and_then(|l| l.states.get(l.domains.of_partition(partition)?).copied())
        .unwrap_or(BEFORE_INSTALL);
    shared::lock_domain(state, shared)
}

/// The state of the domain that holds the kernel log (its reader's),
/// locked.
fn lock_log() -> MutexGuard<'static, KernelState> {
    let (state, shared) = LOCKS
        .get()
        .and_then(|l| l.states.get(l.reader?).copied())
        .unwrap_or(BEFORE_INSTALL);
    shared::lock_domain(state, shared)
}

/// What was loaded, and which core owns each partition interrupt.
struct System {
    loaded: Loaded,
    /// MPIDR affinity of each core, for kicks and interrupt routing.
    cores: [u64; MAX_CPUS],
    /// (INTID, core) for every interrupt bound to a partition.
    irq_cores: alloc::vec::Vec<(u32, usize)>,
    /// (INTID, owner) for every interrupt bound to a partition.
    irq_owners: alloc::vec::Vec<(u32, PartitionId)>,
    /// (INTID, guest vCPU) for every interrupt passed through to a virtual
    /// machine (its first vCPU, on whose core it is taken).
    passthrough: alloc::vec::Vec<(u32, usize)>,
}

static SYSTEM: Once<System> = Once::new();

/// The vCPUs that belong to virtual machines (bit n: vCPU n): fixed at
/// boot, so the exit path tells guests from services without the lock.
static GUEST_VCPUS: AtomicU32 = AtomicU32::new(0);

/// Whether `vcpu` is a guest's.
fn is_guest(vcpu: usize) -> bool {
    vcpu < 32 && GUEST_VCPUS.load(Ordering::Relaxed) & (1 << vcpu) != 0
}

/// Partial log lines, one buffer per partition. Taken before `STATE` (to
/// append to the kernel log) or the console lock, never after either.
struct Line {
    bytes: [u8; 160],
    len: usize,
}

static LINES: Mutex<[Line; MAX_PARTITIONS]> = Mutex::new(
    [const {
        Line {
            bytes: [0; 160],
            len: 0,
        }
    }; MAX_PARTITIONS],
);

/// Once partitions may run, whether the kernel's messages go to the
/// partition that reads the kernel log instead of the UART.
static TO_READER: AtomicBool = AtomicBool::new(false);

/// Prints one line of the kernel's own: to the UART until partitions may
/// run, then to the kernel-log reader if the manifest names one (the
/// kernel's panics alone still go to the UART).
macro_rules! kernel_print {
    ($($arg:tt)*) => {
        print_line(format_args!($($arg)*))
    };
}

/// A line formatted into a fixed buffer; what does not fit is cut.
struct LineBuffer {
    bytes: [u8; 200],
    len: usize,
}

impl core::fmt::Write for LineBuffer {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for &b in s.as_bytes() {
            if let Some(slot) = self.bytes.get_mut(self.len) {
                *slot = b;
                self.len += 1;
            }
        }
        Ok(())
    }
}

fn print_line(args: core::fmt::Arguments<'_>) {
    if !TO_READER.load(Ordering::Acquire) {
        crate::console::print_line(args);
        return;
    }
    let line = format_line(args);
    let kick = lock_log().append_kernel_log(line.as_bytes());
    kick_cores(kick, arch::cpu::index());
}

/// `args` and a newline in a [`LineBuffer`]: cut if need be, but always
/// ending with its newline, so the reader never glues the next line on.
fn format_line(args: core::fmt::Arguments<'_>) -> LineBuffer {
    let mut line = LineBuffer {
        bytes: [0; 200],
        len: 0,
    };
    let _ = core::fmt::Write::write_fmt(&mut line, args);
    line.len = line.len.min(line.bytes.len() - 1);
    line.bytes[line.len] = b'\n';
    line.len += 1;
    line
}

impl LineBuffer {
    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Prints a finished line of `partition`'s, `[name] text`, if its log quota
/// lets it (reporting first how many of its lines were dropped, if any):
/// to the UART until the system runs, then to the kernel-log reader if the
/// manifest names one.
fn partition_line(partition: PartitionId, text: &str) {
    let admission = lock_partition(partition).admit_log_line(partition, irq::now());
    let Admission::Admitted { dropped } = admission else {
        return;
    };
    let to_reader = TO_READER.load(Ordering::Acquire);
    if dropped > 0 {
        let report = format_args!(
            "{LOG_DROPPED}`{}` dropped {dropped} lines (over its quota of \
             {LOG_LINES_PER_WINDOW} a second, or the log was full)",
            name(partition)
        );
        if to_reader {
            // The partition's doing: it may use at most half of what the
            // log keeps for the kernel's own reports.
            let report = format_line(report);
            let kick = lock_log().append_drop_report(partition, report.as_bytes(), dropped);
            kick_cores(kick, arch::cpu::index());
        } else {
            crate::console::print_line(report);
        }
    }
    if !to_reader {
        crate::console::print_line(format_args!("[{}] {text}", name(partition)));
        return;
    }
    let line = format_line(format_args!("[{}] {text}", name(partition)));
    let kick = lock_log().append_partition_log(partition, line.as_bytes());
    kick_cores(kick, arch::cpu::index());
}

/// How the kernel's report of a partition's dropped log lines begins.
const LOG_DROPPED: &str = "bulkhead: log: ";

/// Sends the kick SGI to every core in `kick` but `here` (`usize::MAX`: to
/// every one of them).
fn kick_cores(kick: u8, here: usize) {
    if let Some(system) = SYSTEM.get() {
        for (core, mpidr) in system.cores.iter().enumerate() {
            if core != here && kick & (1 << core) != 0 {
                let _ = gic::kick(*mpidr);
            }
        }
    }
}

/// A stop's or restart's reason as the kernel reports it: the number, and
/// the controller's name when a controlling partition asked for it. Only
/// the kernel makes a [`StopReason::Controller`] (a partition's own `Fault`
/// gives at most 0xff), so the name is always of the partition that acted.
struct Why(StopReason);

impl core::fmt::Display for Why {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "reason {:#x}", self.0.to_register())?;
        match self.0 {
            StopReason::Controller(c) => {
                write!(f, ", at the request of `{}`", name(PartitionId(c)))
            }
            StopReason::Own(_) | StopReason::Exception => Ok(()),
        }
    }
}

/// Boots the capability system from `seed` and starts dispatching.
pub(crate) fn install(
    loaded: Loaded,
    manifest: &hv_image::BootManifest,
    cores: [u64; MAX_CPUS],
    online: usize,
) -> Result<(), system::LoadError> {
    // Hold the state lock until everything a running partition needs is in
    // place: idle cores take timer ticks meanwhile, and one that found a
    // partition ready before the exit handler was set would be lost.
    let mut state = shared::lock(&STATE);
    // One lowering of the manifest for every domain: each `with_seed` call
    // site is a copy of the whole lowering in the image.
    let (domains, states) = system::with_seed(manifest, online, irq::frame_counter(), |seed| {
        let domains = Domains::of(seed)?;
        state.boot_domain(seed, &domains, 0)?;
        let mut states: alloc::vec::Vec<&'static Mutex<KernelState>> = alloc::vec![&STATE];
        for domain in 1..domains.count() {
            // A copy of domain 0's, booted over in place: built from
            // `KernelState::empty()` instead, the compiler keeps a template
            // of the whole state in the image. Not shared with any core yet:
            // its own lock, uncounted.
            let other: &'static Mutex<KernelState> =
                alloc::boxed::Box::leak(alloc::boxed::Box::new(Mutex::new(state.clone())));
            other.lock().boot_domain(seed, &domains, domain)?;
            states.push(other);
        }
        Ok((domains, states))
    })?
    .map_err(system::LoadError::Seed)?;
    report_domains(&domains, &loaded);
    if state.is_timed() {
        // Before any core takes a domain of this system: its timer
        // interrupts are ticks or time events from now on.
        irq::set_timed();
    }
    let mut irq_cores = alloc::vec::Vec::new();
    let mut irq_owners = alloc::vec::Vec::new();
    for irq in &manifest.irqs {
        let owner = manifest
            .devices
            .get(usize::from(irq.device))
            .map(|d| d.owner);
        let core = owner
            .and_then(|p| loaded.partitions.get(usize::from(p)))
            .and_then(|p| VcpuId::new(p.first_vcpu))
            .and_then(|v| state.vcpu_core(v))
            .unwrap_or(0);
        irq_cores.push((irq.intid, core));
        if let Some(owner) = owner.and_then(|o| u8::try_from(o).ok()) {
            irq_owners.push((irq.intid, PartitionId(owner)));
        }
    }
    let mut passthrough = alloc::vec::Vec::new();
    let mut routes = alloc::vec::Vec::new();
    for irq in &manifest.passthrough {
        let guest = manifest
            .devices
            .get(usize::from(irq.device))
            .and_then(|d| loaded.partitions.get(usize::from(d.owner)));
        if let Some(guest) = guest {
            let vcpu = guest.first_vcpu;
            let core = VcpuId::new(vcpu)
                .and_then(|v| state.vcpu_core(v))
                .unwrap_or(0);
            arch::vcpu::set_passthrough(irq.intid, vcpu);
            let domain = domains.of_partition(PartitionId(d_owner(manifest, irq.device)));
            match domain.and_then(|d| states.get(d)) {
                Some(owner) if !core::ptr::eq(*owner, &STATE) => {
                    owner.lock().pass_through(irq.intid);
                }
                _ => state.pass_through(irq.intid),
            }
            passthrough.push((irq.intid, vcpu));
            routes.push((irq.intid, core));
        }
    }
    let guests = (0..state.vcpu_count().min(32))
        .filter(|&v| VcpuId::new(v).is_some_and(|v| state.is_vm(v)))
        .fold(0u32, |mask, v| mask | 1 << v);
    GUEST_VCPUS.store(guests, Ordering::Relaxed);
    routes.extend_from_slice(&irq_cores);
    let reader = manifest
        .kernel_log
        .as_ref()
        .and_then(|log| u8::try_from(log.partition).ok())
        .and_then(|p| domains.of_partition(PartitionId(p)));
    let several = domains.count() > 1;
    let states = states
        .into_iter()
        .enumerate()
        .map(|(d, state)| {
            let spans = domains.cores(d).count_ones() > 1;
            (state, spans || (several && reader == Some(d)))
        })
        .collect();
    let locks = LOCKS.call_once(|| Locks {
        domains,
        states,
        reader,
    });
    SYSTEM.call_once(|| System {
        loaded,
        cores,
        irq_cores,
        irq_owners,
        passthrough,
    });
    arch::install_exits!(Exits);
    // From here a partition may run on another core, and the UART may be
    // its: if a partition reads the kernel log, the kernel's messages (its
    // reports, the lines it prints for partitions) go there, never to the
    // UART. Only the boot report's last lines still go to the UART, with
    // the driver's bounded wait.
    if reader.is_some() {
        TO_READER.store(true, Ordering::Release);
    }
    // Last: from here a core of another domain takes its own domain's lock,
    // not the one held here, and may run a partition at once.
    for (core, entry) in CORE_STATE.iter().enumerate() {
        if let Some(&domain) = locks
            .domains
            .of_core(core)
            .and_then(|d| locks.states.get(d))
        {
            let (state, _) = *entry.call_once(|| domain);
            arch::vcpu::set_core_data::<Exits>(core, state);
        }
    }
    drop(state);
    for &(intid, core) in &routes {
        let _ = gic::enable(intid, cores[core]);
    }
    Ok(())
}

/// The owner of device `device`, as a partition number (0 if it has none:
/// the manifest's devices all have one).
fn d_owner(manifest: &hv_image::BootManifest, device: u16) -> u8 {
    manifest
        .devices
        .get(usize::from(device))
        .and_then(|d| u8::try_from(d.owner).ok())
        .unwrap_or(0)
}

/// One boot-report line per lock domain: its cores and its partitions.
fn report_domains(domains: &Domains, loaded: &Loaded) {
    use core::fmt::Write;
    for domain in 0..domains.count() {
        let mut line = LineBuffer {
            bytes: [0; 200],
            len: 0,
        };
        let cores = domains.cores(domain);
        for core in (0..64).filter(|c| cores & (1 << c) != 0) {
            let _ = write!(line, " {core}");
        }
        let _ = line.write_str(":");
        let partitions = domains.partitions(domain);
        for (p, partition) in loaded.partitions.iter().enumerate() {
            if partitions & (1 << p) != 0 {
                let _ = write!(line, " {}", partition.name);
            }
        }
        let text = core::str::from_utf8(line.as_bytes()).unwrap_or(" ?");
        crate::console::report!("lock domain {domain}, core(s){text}");
    }
}

/// Starts this core's share of the system: runs its first ready vCPU, or
/// idles. Never returns.
pub(crate) fn start_core(core: usize) -> ! {
    let mut regs = [0u64; 8];
    let outcome = step(core, |s| s.idle(core, &mut regs));
    follow(core, outcome, &mut regs)
}

/// Runs one step function under the lock and, if what runs next on `core`
/// is a guest's vCPU, takes what the kernel's state asks to be done before
/// entering it (a start, a register to write, interrupts to deliver) and
/// stages it for the arch code.
///
/// On a timed system the state is told the counter afterwards (to charge
/// the budget of the vCPU that ran), and the core's timer is programmed for
/// the state's next time event or the next tick, whichever is first: one
/// test of a flag on an untimed system.
#[inline(always)]
fn step(core: usize, f: impl FnOnce(&mut KernelState) -> Outcome) -> Outcome {
    let mut state = lock_core(core);
    let outcome = f(&mut state);
    if state.is_timed() {
        clock_and_arm(&mut state, core);
    }
    let next = match outcome.next {
        Next::Switch { to, .. } => Some(to),
        Next::Continue => state.current(core),
        Next::Idle { .. } => None,
    };
    stage(&mut state, next);
    outcome
}

/// After a step of a timed system on `core`: tells its state the counter
/// and programs the core's timer for its next event or tick. Out of line:
/// [`step`] is inlined at every call site.
#[inline(never)]
fn clock_and_arm(state: &mut KernelState, core: usize) {
    state.clock_in(core, arch::cpu::counter());
    irq::arm_until(state.next_event(core));
}

/// Stages the entry work of `next`, if it is a guest's vCPU (the caller
/// holds the lock).
#[inline(always)]
fn stage(state: &mut KernelState, next: Option<VcpuId>) {
    if let Some(v) = next
        && is_guest(v.index())
        && let Some(entry) = state.take_vm_entry(v)
    {
        arch::vcpu::stage_vm_entry(v.index(), entry);
    }
}

/// [`stage`] out of line, for the IPC fast path: the entry work it may take
/// is room on the stack that a switch between services should not set up.
#[inline(never)]
fn stage_apart(state: &mut KernelState, next: VcpuId) {
    stage(state, Some(next));
}

/// Carries out an outcome from outside any vCPU (an idle core): runs the vCPU
/// it names, or returns to idle.
fn follow(core: usize, outcome: Outcome, regs: &mut [u64; 8]) -> ! {
    match apply(core, outcome, regs) {
        ArchNext::Switch(to) => {
            let _ = arch::vcpu::run(to, regs);
            irq::idle()
        }
        ArchNext::Resume | ArchNext::Idle => irq::idle(),
    }
}

/// The kernel's handling of partitions' exits, compiled into the arch
/// crate's entry path.
struct Exits;

impl arch::vcpu::Exits for Exits {
    #[inline(always)]
    fn exit(core: usize, vcpu: usize, exit: Exit, regs: &mut [u64; 8]) -> ArchNext {
        on_exit(core, vcpu, exit, regs)
    }

    /// The core's lock domain's state itself, not its `CORE_STATE` entry:
    /// one load less on the IPC fast path.
    type Core = Mutex<KernelState>;

    #[inline(always)]
    fn ipc(core: usize, data: &Self::Core, call: FastCall, regs: &mut [u64; 8]) -> Option<usize> {
        let mut state = shared::lock_domain(data, domain_shared(core));
        let to = state.hypercall_fast(core, regs, call)?;
        if is_guest(to.index()) {
            stage_apart(&mut state, to);
        }
        Some(to.index())
    }

    fn idle() -> ! {
        irq::idle()
    }
}

/// Whether `core`'s lock domain is shared between cores, for the lock
/// count (which alone reads it).
#[cfg(feature = "lock-count")]
fn domain_shared(core: usize) -> bool {
    CORE_STATE
        .get(core)
        .and_then(Once::get)
        .is_none_or(|&(_, shared)| shared)
}

/// Without the lock count, nothing reads it.
#[cfg(not(feature = "lock-count"))]
#[inline(always)]
fn domain_shared(_core: usize) -> bool {
    false
}

/// Every exit from a partition but the IPC fast path's (which the entry
/// sends to [`Exits::ipc`] first, and here only if it declined). The hot
/// path, a hypercall, comes first.
#[inline(always)]
fn on_exit(core: usize, vcpu: usize, exit: Exit, regs: &mut [u64; 8]) -> ArchNext {
    if exit != Exit::Hypercall {
        return other_exit(core, vcpu, exit, regs);
    }
    #[cfg(feature = "lock-count")]
    if regs[0] == u64::from(hv_abi::hypercall::BENCH_SHARED_LOCKS) {
        regs[0] = hv_abi::hypercall::Status::Success.to_register();
        regs[1] = shared::taken();
        return ArchNext::Resume;
    }
    let outcome = step(core, |s| s.hypercall_general(core, regs));
    apply(core, outcome, regs)
}

/// ESR_EL2's exception class for a data abort from a lower level.
const EC_DATA_ABORT_LOWER: u64 = 0x24;

/// Every exit but a hypercall.
#[inline(never)]
fn other_exit(core: usize, vcpu: usize, exit: Exit, regs: &mut [u64; 8]) -> ArchNext {
    // A guest's data abort (an MMIO access for its monitor) is the common
    // case: no need to decode the syndrome in full.
    if let Exit::Synchronous { esr } = exit
        && (esr >> 26) & 0x3f == EC_DATA_ABORT_LOWER
        && is_guest(vcpu)
    {
        let exit = describe_guest_exit(esr, regs);
        let mut state = lock_core(core);
        if let Some(to) = state.vm_exit_to_waiting_monitor(core, &exit, regs) {
            stage(&mut state, Some(to));
            return ArchNext::Switch(to.index());
        }
        drop(state);
        let outcome = step(core, |s| s.vm_exit(core, exit, regs));
        return apply(core, outcome, regs);
    }
    let outcome = match exit {
        // Answered by `on_exit`; here only for completeness.
        Exit::Hypercall => step(core, |s| s.hypercall(core, regs)),
        Exit::Synchronous { esr } => match Syndrome::decode(esr) {
            Syndrome::Svc { imm: 0 } | Syndrome::Hvc { imm: 0 } => {
                step(core, |s| s.hypercall(core, regs))
            }
            // `svc #n`, `hvc #n`: reserved, refused (the entry code sends
            // them here rather than as hypercalls).
            Syndrome::Svc { .. } | Syndrome::Hvc { .. } => {
                step(core, |s| s.reserved_call(core, regs))
            }
            // A guest's WFI waits for an interrupt; WFE, and a service's
            // either, gives the core away.
            Syndrome::WfiWfe if is_guest(vcpu) && esr & 1 == 0 => {
                arch::vcpu::skip_instruction();
                let pending = arch::vcpu::vm_pending_in_hardware(vcpu);
                step(core, |s| s.vm_halt(core, pending, regs))
            }
            Syndrome::WfiWfe => {
                arch::vcpu::skip_instruction();
                step(core, |s| s.yield_vcpu(core, regs))
            }
            _ if is_guest(vcpu) => guest_exit(core, esr, regs),
            syndrome => {
                let (far, ipa) = arch::vcpu::fault_address();
                report_exception(vcpu, syndrome, esr, far, ipa);
                step(core, |s| s.fault(core, StopReason::Exception, regs))
            }
        },
        Exit::Irq => interrupt(core, regs),
        Exit::Fiq | Exit::SError => {
            report_exception(vcpu, Syndrome::SError, 0, 0, 0);
            step(core, |s| s.fault(core, StopReason::Exception, regs))
        }
    };
    apply(core, outcome, regs)
}

/// A guest's synchronous exception that is not a hypercall or WFI: an SGI
/// (handled here), or an exit for its monitor, described from the syndrome.
fn guest_exit(core: usize, esr: u64, regs: &mut [u64; 8]) -> Outcome {
    let exit = describe_guest_exit(esr, regs);
    let [word, encoding, ..] = exit.words;
    if exit_kind(word) == EXIT_SYSREG && word & WRITE != 0 && encoding == ICC_SGI1R_EL1 {
        let source = exit.words[2];
        return step(core, |s| s.vm_sgi(core, source, regs));
    }
    step(core, |s| s.vm_exit(core, exit, regs))
}

/// The running guest vCPU's exit with syndrome `esr` (and x0..x7 `regs`),
/// described for its monitor; the vCPU is stepped past the instruction if
/// the description says so.
#[inline(always)]
fn describe_guest_exit(esr: u64, regs: &[u64; 8]) -> VmExit {
    let (far, ipa) = arch::vcpu::fault_address();
    let source = match VmExit::source_register(esr) {
        Some(n) if n < 8 => regs[usize::from(n)],
        Some(n) => arch::vcpu::current_register(n),
        None => 0,
    };
    let exit = VmExit::describe(esr, far, ipa, arch::vcpu::current_pc(), source);
    if exit.stepped {
        arch::vcpu::skip_instruction();
    }
    exit
}

/// Takes one interrupt on this core and steps the state for it.
fn interrupt(core: usize, regs: &mut [u64; 8]) -> Outcome {
    let Some(acknowledged) = gic::acknowledge() else {
        return Outcome::CONTINUE;
    };
    let intid = acknowledged.intid;
    let outcome = if intid == irq::timer_intid() {
        // On a timed system the timer also marks windows' ends and budgets'
        // events between ticks.
        if irq::is_timed() {
            if !irq::tick_due(arch::cpu::counter()) {
                let outcome = time_event(core, regs);
                gic::end(acknowledged);
                return outcome;
            }
        } else {
            irq::tick();
        }
        let now = irq::now();
        let mut held = false;
        let mut work = None;
        let outcome = step(core, |s| {
            // A timed state sees the time before the tick.
            if s.is_timed() {
                s.clock_in(core, arch::cpu::counter());
            }
            s.advance_clock(now);
            held = s.has_held_irqs();
            let outcome = s.tick(core, regs);
            work = s.reload_work(core);
            outcome
        });
        if held {
            release_held_irqs(core);
        }
        if let Some(work) = work {
            reload(work);
        }
        outcome
    } else if intid == gic::SGI_KICK {
        step(core, |s| s.reschedule(core, regs))
    } else if intid == VIRTUAL_TIMER_INTID {
        // The guest whose timer it is deactivates it, through the list
        // register it is delivered in.
        gic::priority_drop(intid);
        return match arch::vcpu::vm_timer_fired() {
            Some(owner) => step(core, |s| s.vm_timer(core, 1 << (owner % 64), regs)),
            None => Outcome::CONTINUE,
        };
    } else if intid == irq::wake_intid() {
        let due = arch::vcpu::vm_wake_due();
        step(core, |s| s.vm_timer(core, due, regs))
    } else if Some(intid) == irq::maintenance_intid() {
        arch::vcpu::vm_maintenance();
        Outcome::CONTINUE
    } else if let Some(vcpu) = passthrough_target(intid) {
        // It stays active until the guest completes it, through the list
        // register that links it.
        gic::priority_drop(intid);
        let mut taken = true;
        let outcome = step(core, |s| {
            VcpuId::new(vcpu)
                .and_then(|v| s.vm_interrupt(core, v, intid, regs))
                .unwrap_or_else(|| {
                    taken = false;
                    Outcome::CONTINUE
                })
        });
        if !taken {
            // Its vCPU is off: masked until it starts again (the reset
            // enables it), so a level interrupt does not fire for ever.
            let _ = gic::disable(intid);
            gic::deactivate(intid);
        }
        return outcome;
    } else {
        // Masked until its owner acknowledges it (Effect::UnmaskIrq).
        let _ = gic::disable(intid);
        step(core, |s| s.interrupt(core, intid, regs))
    };
    gic::end(acknowledged);
    outcome
}

/// A timed system's timer interrupt that is not a tick: a window's end or a
/// budget's event (out of line, off every untimed path).
#[inline(never)]
fn time_event(core: usize, regs: &mut [u64; 8]) -> Outcome {
    step(core, |s| {
        s.clock_in(core, arch::cpu::counter());
        s.time_event(core, regs)
    })
}

/// The guest vCPU interrupt `intid` is passed through to, if it is.
fn passthrough_target(intid: u32) -> Option<usize> {
    SYSTEM
        .get()?
        .passthrough
        .iter()
        .find(|(i, _)| *i == intid)
        .map(|&(_, vcpu)| vcpu)
}

/// An interrupt that arrived while this core was idle.
/// It runs inside the exception handler: it must return (back to the idle
/// loop, unwinding the exception) unless it switches to a vCPU, which resets
/// the kernel stack; otherwise every such interrupt would leave a frame on
/// the stack.
pub(crate) fn interrupt_while_idle(core: usize) {
    let mut regs = [0u64; 8];
    let outcome = interrupt(core, &mut regs);
    if let ArchNext::Switch(to) = apply(core, outcome, &mut regs) {
        // Only returns if `to` cannot run here; then the core stays idle.
        let _ = arch::vcpu::run(to, &regs);
    }
}

/// Does what an outcome asks beyond choosing the next vCPU, and says which.
/// `regs` are the x0..x7 of what runs next (the caller's, for an effect
/// that answers it).
#[inline(always)]
fn apply(core: usize, outcome: Outcome, regs: &mut [u64; 8]) -> ArchNext {
    if outcome.kick != 0 || outcome.effect.is_some() {
        kick_and_carry_out(core, &outcome, regs);
    }
    match outcome.next {
        Next::Continue => ArchNext::Resume,
        Next::Switch { to, .. } => ArchNext::Switch(to.index()),
        Next::Idle { .. } => ArchNext::Idle,
    }
}

/// The kicks and the effect of an outcome.
#[inline(never)]
fn kick_and_carry_out(core: usize, outcome: &Outcome, regs: &mut [u64; 8]) {
    kick_cores(outcome.kick, core);
    if let Some(effect) = outcome.effect {
        carry_out(effect, regs);
    }
}

fn name(partition: PartitionId) -> &'static str {
    SYSTEM
        .get()
        .and_then(|s| s.loaded.partitions.get(usize::from(partition.0)))
        .map_or("?", |p| p.name.as_str())
}

/// Unmasks partition interrupt `intid`, routed to its owner's core.
fn unmask(intid: u32) {
    let system = SYSTEM.get();
    let core = system
        .and_then(|s| s.irq_cores.iter().find(|(i, _)| *i == intid))
        .map_or(0, |(_, c)| *c);
    let mpidr = system.map_or(0, |s| s.cores[core]);
    let _ = gic::enable(intid, mpidr);
}

/// On a tick of `core`: unmasks the interrupts of its domain held over
/// their budget in an earlier tick, reporting each the first time.
fn release_held_irqs(core: usize) {
    loop {
        let Some(held) = lock_core(core).release_held_irq() else {
            return;
        };
        if held.first {
            let owner = SYSTEM
                .get()
                .and_then(|s| s.irq_owners.iter().find(|(i, _)| *i == held.intid))
                .map_or("?", |&(_, p)| name(p));
            kernel_print!(
                "bulkhead: irq: interrupt {} of `{owner}` fired more than {IRQ_FIRES_PER_TICK} \
                 times in a tick; it is held masked until the next tick whenever it does \
                 (reported once)",
                held.intid
            );
        }
        unmask(held.intid);
    }
}

/// A bounded share of a restart's reload on this core's tick, as
/// [`KernelState::reload_work`] said: its vCPUs put back at their entry if
/// not yet, then its RAM zeroed and refilled in pieces of
/// [`RELOAD_STEP_BYTES`] for at most [`RELOAD_TICK_PERCENT`] of the tick.
fn reload(work: ReloadWork) {
    let (partition, from, prepare) = match work {
        ReloadWork::Reload {
            partition,
            from,
            prepare,
        } => (partition, from, prepare),
        ReloadWork::Stuck {
            partition,
            cores,
            kick,
        } => {
            kick_cores(kick, usize::MAX);
            kernel_print!(
                "{PARTITION_FAULT}partition `{}` cannot restart: core(s) {} did not let go of \
                 it within {} ms; it is left stopped",
                name(partition),
                Cores(cores),
                LET_GO_TICKS * 1000 / irq::TICK_HZ
            );
            return;
        }
    };
    let index = usize::from(partition.0);
    let Some(loaded) = SYSTEM.get().and_then(|s| s.loaded.partitions.get(index)) else {
        return;
    };
    if prepare && let Err(e) = system::reload_vcpus(index, loaded) {
        abandon(partition, loaded.name.as_str(), e);
        return;
    }
    let deadline = arch::cpu::counter() + irq::period() * RELOAD_TICK_PERCENT / 100;
    let mut done = from;
    while done < loaded.ram.size() {
        match system::reload_step(index, loaded, done, RELOAD_STEP_BYTES) {
            Ok(reached) => done = reached,
            Err(e) => {
                abandon(partition, loaded.name.as_str(), e);
                return;
            }
        }
        if arch::cpu::counter() >= deadline {
            break;
        }
    }
    // When it is complete: every core with a vCPU of it to run, this one
    // too (it may be about to go idle), is kicked; a kick to itself is
    // taken as soon as it unmasks interrupts.
    let complete = done >= loaded.ram.size();
    let kick = lock_partition(partition).reload_progress(partition, done, complete);
    kick_cores(kick, usize::MAX);
}

/// A set of cores (bit n: core n), as a list.
struct Cores(u8);

impl core::fmt::Display for Cores {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut first = true;
        for core in (0..8).filter(|c| self.0 & (1 << c) != 0) {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{core}")?;
        }
        Ok(())
    }
}

/// Gives up on restarting `partition`, whose reload failed with `error`.
fn abandon(partition: PartitionId, name: &str, error: system::LoadError) {
    kernel_print!("bulkhead: partition `{name}` cannot restart: {error}");
    let kick = lock_partition(partition).restart_abandoned(partition);
    kick_cores(kick, usize::MAX);
}

/// How a restart's report ends: its place in a streak of restarts in quick
/// succession and its back-off, once it is not the first.
struct Backoff(Option<RestartPlan>);

impl core::fmt::Display for Backoff {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(plan) if plan.streak > 1 => write!(
                f,
                "; restart {} in a row, after a back-off of {} ms",
                plan.streak,
                plan.backoff * 1000 / irq::TICK_HZ
            ),
            _ => Ok(()),
        }
    }
}

fn carry_out(effect: Effect, regs: &mut [u64; 8]) {
    match effect {
        Effect::VcpuRegister {
            vcpu,
            register,
            write,
        } => match arch::vcpu::access_register(vcpu.index(), register, write) {
            Ok(value) => {
                if write.is_none() {
                    regs[1] = value;
                }
            }
            Err(_) => regs[0] = hv_abi::hypercall::Status::Busy.to_register(),
        },
        Effect::Log {
            partition,
            bytes,
            len,
        } => log(partition, &bytes[..usize::from(len).min(LOG_BYTES)]),
        Effect::UnmaskIrq(intid) => unmask(intid),
        Effect::Fault { partition, reason } => {
            kernel_print!(
                "{PARTITION_FAULT}partition `{}` stopped ({}); the others carry on",
                name(partition),
                Why(reason)
            );
        }
        Effect::Restart { partition, reason } => {
            let plan = lock_partition(partition).restart_plan(partition);
            kernel_print!(
                "{PARTITION_FAULT}partition `{}` restarting ({}){}",
                name(partition),
                Why(reason),
                Backoff(plan)
            );
        }
    }
}

/// Appends a partition's bytes to its log line; prints whole lines as
/// `[name] text`, the text shown as the console shows its clients'
/// (`hv_abi::console::shown`: no carriage return, no other control
/// character), so no partition's text can pass for a line of the kernel's.
fn log(partition: PartitionId, bytes: &[u8]) {
    let mut lines = shared::lock(&LINES);
    let Some(line) = lines.get_mut(usize::from(partition.0)) else {
        return;
    };
    for &byte in bytes {
        // `None`: a newline, which ends the line.
        let shown = match byte {
            b'\n' => None,
            _ => match shown(byte) {
                Some(shown) => Some(shown),
                None => continue,
            },
        };
        if let Some(shown) = shown
            && let Some(slot) = line.bytes.get_mut(line.len)
        {
            *slot = shown;
            line.len += 1;
            continue;
        }
        let text = core::str::from_utf8(&line.bytes[..line.len]).unwrap_or("(not UTF-8)");
        partition_line(partition, text);
        line.len = 0;
        if let Some(shown) = shown {
            line.bytes[0] = shown;
            line.len = 1;
        }
    }
}

fn report_exception(vcpu: usize, syndrome: Syndrome, esr: u64, far: u64, ipa: u64) {
    // Every domain's state numbers every vCPU the same way.
    let partition = VcpuId::new(vcpu).and_then(|v| lock_core(arch::cpu::index()).vcpu_partition(v));
    let who = partition.map_or("?", name);
    if syndrome.far_valid() {
        kernel_print!(
            "{PARTITION_FAULT}partition `{who}` vCPU {vcpu}: {syndrome} at address {far:#x} (IPA {ipa:#x}, ESR {esr:#x})"
        );
    } else {
        kernel_print!("{PARTITION_FAULT}partition `{who}` vCPU {vcpu}: {syndrome} (ESR {esr:#x})");
    }
}
