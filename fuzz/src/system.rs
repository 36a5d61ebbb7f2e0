// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The system the state machine targets run, and the simulated glue that
//! drives it one step at a time.

use hv_abi::hypercall::{Badge, FUNCTION_BASE, Hypercall, Rights, StopReason};
use hv_core::cap::{EndpointId, IrqId, NotificationId, PartitionId, ReplyId};
use hv_core::sched::VcpuId;
use hv_core::state::properties::{self, Policy};
use hv_core::state::{
    EndpointSeed, FaultSignalSeed, IrqSeed, KernelState, Next, Outcome, PartitionSeed, ReloadWork,
    ReplySeed, Seed, TimeSeed, VmExit,
};
use hv_image::Capability;
use hv_image::{BudgetSpec, FaultPolicy, Object, Owners, ScheduleSpec, Window};

use crate::Bytes;

/// Cores the system runs on.
pub(crate) const CORES: usize = 2;

/// The interrupt bound to a notification (device 5's).
const BOUND_INTID: u32 = 40;
/// The interrupt passed through to the virtual machine's first vCPU.
const PASSED_INTID: u32 = 44;
/// The virtual machine's vCPUs.
const GUEST_VCPUS: [u8; 2] = [4, 5];

const R: Rights = Rights::READ;
const W: Rights = Rights::WRITE;
const G: Rights = Rights::GRANT;
const D: Rights = Rights::DERIVE;
const C: Rights = Rights::CONTROL;

/// A capability over `object` with the union of `rights` and `badge`.
fn cap(object: Object, rights: &[Rights], badge: u64) -> Option<Capability> {
    let rights = Rights(rights.iter().fold(0, |all, r| all | r.0));
    Some(Capability {
        object,
        rights,
        badge: Badge(badge),
    })
}

fn ep(n: u16) -> Object {
    Object::Endpoint(n)
}

fn note(n: u16) -> Object {
    Object::Notification(n)
}

/// The virtual machine (partition 3)'s vCPU `vcpu`, global vCPU
/// `GUEST_VCPUS[vcpu]`.
fn guest_vcpu(vcpu: u8) -> Object {
    Object::Vcpu { partition: 3, vcpu }
}

/// Boots the system: a client with two vCPUs on both cores (restarts on a
/// fault), its server on core 0 (restarts; it holds an interrupt, a device,
/// two reply objects, the kernel log and control of the client), a third
/// partition on core 1 (stops on a fault; it lends memory and controls the
/// client too), a virtual machine with two vCPUs (restarts) and its monitor,
/// which serves its exits and holds its vCPUs.
///
/// If `timed`, each core's time is cut into windows (core 0: the client
/// and its server, then the others, then background; core 1: the client
/// and the third partition, then the others, then background: 6 ms in
/// all), and the client's second vCPU may run 0.5 ms of every 3 ms. The
/// counter counts microseconds.
pub(crate) fn boot(timed: bool) -> Box<KernelState> {
    let client = [
        cap(ep(0), &[W, G], 1),
        cap(ep(1), &[W], 2),
        cap(note(0), &[W], 0b1),
        cap(Object::Memory(0), &[R, W, D], 0),
        cap(ep(2), &[R], 0),
        cap(note(1), &[R], 0),
        cap(Object::Partition(PartitionId(2).number()), &[R], 0),
    ];
    let server = [
        cap(ep(0), &[R, G], 0),
        cap(ep(1), &[R], 0),
        cap(note(0), &[R], 0),
        cap(ep(2), &[W, G, D], 3),
        cap(Object::Irq(IrqId(0).number()), &[W], 0),
        cap(Object::Device(5), &[W], 0),
        cap(Object::Partition(PartitionId(0).number()), &[R, C], 0),
        cap(Object::Reply(ReplyId(0).number()), &[W], 0),
        cap(Object::Reply(ReplyId(1).number()), &[W, D], 0),
        cap(Object::KernelLog, &[R], 0),
        None,
        None,
    ];
    let other = [
        cap(ep(0), &[W], 4),
        cap(ep(2), &[R], 0),
        cap(note(1), &[W, D], 0b10),
        cap(Object::Memory(1), &[R, W, D, G], 0),
        cap(Object::Partition(PartitionId(0).number()), &[R, C, D], 0),
    ];
    let guest = [cap(ep(0), &[W], 6)];
    let monitor = [
        cap(ep(3), &[R], 0),
        cap(guest_vcpu(0), &[R, W, C], 0),
        cap(guest_vcpu(1), &[R, W, C], 0),
        cap(guest_vcpu(1), &[R], 0),
        cap(Object::Reply(ReplyId(2).number()), &[W], 0),
    ];
    let partition = |vcpus, cores, priority, fault_policy, capabilities, exits| PartitionSeed {
        vcpus,
        cores,
        priority,
        fault_policy,
        capabilities,
        exits,
    };
    let partitions = [
        partition(2, 0b11, 10, FaultPolicy::Restart, &client[..], None),
        partition(1, 0b01, 10, FaultPolicy::Restart, &server[..], None),
        partition(1, 0b10, 20, FaultPolicy::Stop, &other[..], None),
        partition(
            2,
            0b11,
            15,
            FaultPolicy::Restart,
            &guest[..],
            Some(EndpointId(3)),
        ),
        partition(1, 0b11, 12, FaultPolicy::Stop, &monitor[..], None),
    ];
    let served = |p| EndpointSeed {
        server: Some(PartitionId(p)),
    };
    let endpoints = [served(1), served(1), EndpointSeed::default(), served(4)];
    let irqs = [IrqSeed {
        intid: BOUND_INTID,
        notification: NotificationId(0),
        badge: Badge(0b10),
        device: Some(5),
    }];
    let owned = |p| ReplySeed {
        owner: PartitionId(p),
    };
    let replies = [owned(1), owned(1), owned(4)];
    let schedule = schedule(&[
        &[(3000, Some(0b0_0011)), (2000, Some(0b1_1100)), (1000, None)],
        &[(2000, Some(0b0_0101)), (3000, Some(0b1_1010)), (1000, None)],
    ]);
    let budgets = [BudgetSpec {
        partition: 0,
        vcpu: 1,
        budget_us: 500,
        period_us: 3000,
    }];
    let seed = Seed {
        cores: CORES,
        partitions: &partitions,
        endpoints: &endpoints,
        notifications: 2,
        irqs: &irqs,
        replies: &replies,
        kernel_log: Some((NotificationId(0), Badge(0b100))),
        // The server hears of the client's faults on its notification.
        fault_signals: &[FaultSignalSeed {
            partition: PartitionId(0),
            controller: PartitionId(1),
            notification: NotificationId(0),
            badge: Badge(0b1000),
        }],
        time: if timed {
            TimeSeed {
                schedule: Some(&schedule),
                budgets: &budgets,
                counter_hz: 1_000_000,
                start: 0,
            }
        } else {
            TimeSeed::NONE
        },
    };
    POLICY.get_or_init(|| Box::new(Policy::new(&seed)));
    let mut state = Box::new(KernelState::empty());
    if let Err(error) = state.boot(&seed) {
        panic!("the fuzz system's seed is refused: {error}");
    }
    state.pass_through(PASSED_INTID);
    check(&state);
    state
}

/// A schedule whose core `n` runs `cores[n]`: windows of `(length in us,
/// owners)`, owners a partition mask or `None` for a background window.
fn schedule(cores: &[&[(u32, Option<u16>)]]) -> ScheduleSpec {
    let mut spec = ScheduleSpec {
        major_frame_us: 6000,
        cores: hv_image::heapless::Vec::new(),
        windows: hv_image::heapless::Vec::new(),
    };
    for windows in cores {
        let _ = spec.cores.push(windows.len() as u8);
        for &(length_us, owners) in *windows {
            let owners = owners.map_or(Owners::Background, Owners::Partitions);
            let _ = spec.windows.push(Window { length_us, owners });
        }
    }
    spec
}

/// What the system's seed allows, for the security properties (the same
/// for the timed and the untimed system, whose capabilities are the same).
static POLICY: std::sync::OnceLock<Box<Policy>> = std::sync::OnceLock::new();

/// Panics with the first invariant or security property
/// (`hv_core::state::properties`) `state` breaks.
pub(crate) fn check(state: &KernelState) {
    if let Err(broken) = state.check_invariants() {
        panic!("invariant broken: {broken}\n{state:#?}");
    }
    if let Some(policy) = POLICY.get()
        && let Err(broken) = properties::check_all(state, policy)
    {
        panic!("property broken: {broken}\n{state:#?}");
    }
}

/// Registers for a hypercall: x0 mostly one of Bulkhead's function IDs
/// (now and then one just past them, or any value), x1..x7 as
/// [`Bytes::register`] gives them.
pub(crate) fn registers(input: &mut Bytes<'_>) -> [u64; 8] {
    let calls = Hypercall::ALL.len() as u8;
    let x0 = match input.byte() {
        0..=239 => u64::from(FUNCTION_BASE) + u64::from(input.below(calls + 2)),
        _ => input.register(),
    };
    let mut regs = [x0, 0, 0, 0, 0, 0, 0, 0];
    for r in regs.iter_mut().skip(1) {
        *r = input.register();
    }
    regs
}

/// The kernel glue, simulated: each core's live x0..x7 and the time.
pub(crate) struct Machine {
    state: Box<KernelState>,
    regs: [[u64; 8]; CORES],
    /// The kernel's ticks since boot, as the glue tells the state.
    now: u64,
    /// The counter (microseconds) of a timed system.
    counter: u64,
}

impl Machine {
    /// A booted system ([`boot`]), every core having picked what it runs.
    pub(crate) fn new(timed: bool) -> Self {
        let mut m = Self {
            state: boot(timed),
            regs: [[0; 8]; CORES],
            now: 0,
            counter: 0,
        };
        for core in 0..CORES {
            m.run(core, |s, r| s.idle(core, r));
        }
        m
    }

    /// Runs `f` on `core`'s live registers, then checks the invariants,
    /// that the outcome agrees with the state, and what the glue must do.
    fn run(&mut self, core: usize, f: impl FnOnce(&mut KernelState, &mut [u64; 8]) -> Outcome) {
        let outcome = f(&mut self.state, &mut self.regs[core]);
        // The glue tells a timed state the counter after every step.
        self.state.clock_in(core, self.counter);
        self.after(core, outcome);
    }

    /// What the glue does after `outcome` on `core`: checks, and the kicked
    /// cores' rescheduling.
    fn after(&mut self, core: usize, outcome: Outcome) {
        check(&self.state);
        let running = self.state.current(core);
        match outcome.next {
            Next::Continue => {}
            Next::Switch { to, .. } => assert_eq!(running, Some(to), "{outcome:?}"),
            Next::Idle { .. } => assert_eq!(running, None, "{outcome:?}"),
        }
        for kicked in (0..CORES).filter(|c| outcome.kick & (1 << c) != 0 && *c != core) {
            let outcome = self.state.reschedule(kicked, &mut self.regs[kicked]);
            self.after(kicked, outcome);
        }
    }

    /// One step, chosen by the next byte of `input`.
    pub(crate) fn step(&mut self, input: &mut Bytes<'_>) {
        let core = usize::from(input.below(CORES as u8));
        match input.below(16) {
            0..=5 => {
                let regs = registers(input);
                self.regs[core] = regs;
                self.run(core, |s, r| s.hypercall(core, r));
            }
            6 => {
                // Time passes (up to about 2.5 s at once, so that restart
                // back-offs end), held interrupts are released, the core
                // ticks.
                self.now += u64::from(input.byte());
                self.state.advance_clock(self.now);
                while self.state.release_held_irq().is_some() {}
                check(&self.state);
                // A timed system's counter moves on too (up to 5 ms, well
                // past windows' ends and budgets' events), and the timer
                // fires for a tick or for time's sake.
                self.counter += u64::from(input.byte()) * 20;
                self.state.clock_in(core, self.counter);
                check(&self.state);
                if input.byte() & 1 == 0 {
                    self.run(core, |s, r| s.tick(core, r));
                } else {
                    self.run(core, |s, r| s.time_event(core, r));
                }
            }
            7 => {
                let intid = match input.below(3) {
                    0 => BOUND_INTID,
                    1 => PASSED_INTID,
                    _ => u32::from(input.byte()),
                };
                self.run(core, |s, r| s.interrupt(core, intid, r));
            }
            8 => {
                // What the glue reports: an exception it caught (a
                // partition's own reasons come through its `Fault` call).
                let reason = if input.byte() & 1 == 0 {
                    StopReason::Exception
                } else {
                    StopReason::Own(input.byte())
                };
                self.run(core, |s, r| s.fault(core, reason, r));
            }
            9 => {
                // The glue's tick on `core`: what the state says to reload,
                // a piece or all of it, or given up.
                self.now += u64::from(input.below(4)) * u64::from(input.byte());
                self.state.advance_clock(self.now);
                match self.state.reload_work(core) {
                    Some(ReloadWork::Reload {
                        partition, from, ..
                    }) => {
                        assert!(self.state.restart_due(partition), "reloaded while not due");
                        if input.byte() & 7 == 0 {
                            let kick = self.state.restart_abandoned(partition);
                            for c in (0..CORES).filter(|c| kick & (1 << c) != 0) {
                                self.run(c, |s, r| s.reschedule(c, r));
                            }
                        } else {
                            let complete = input.byte() & 1 == 0;
                            let kick =
                                self.state
                                    .reload_progress(partition, from + 0x1_0000, complete);
                            for c in (0..CORES).filter(|c| kick & (1 << c) != 0) {
                                self.run(c, |s, r| s.reschedule(c, r));
                            }
                        }
                    }
                    Some(ReloadWork::Stuck { kick, .. }) => {
                        for c in (0..CORES).filter(|c| kick & (1 << c) != 0) {
                            self.run(c, |s, r| s.reschedule(c, r));
                        }
                    }
                    None => {}
                }
                check(&self.state);
            }
            10 => {
                let esr = input.register() | u64::from(input.below(0x40)) << 26;
                let (far, pc, source) = (input.register(), input.register(), input.register());
                let exit = VmExit::describe(esr, far, far, pc, source);
                let running_guest = self
                    .state
                    .current(core)
                    .is_some_and(|v| self.state.is_vm(v));
                if running_guest {
                    self.run(core, |s, r| s.vm_exit(core, exit, r));
                }
            }
            11 => {
                let pending = input.byte() & 1 == 1;
                self.run(core, |s, r| s.vm_halt(core, pending, r));
            }
            12 => {
                let vcpus = input.register();
                self.run(core, |s, r| s.vm_timer(core, vcpus, r));
            }
            13 => {
                let value = input.register();
                self.run(core, |s, r| s.vm_sgi(core, value, r));
            }
            14 => {
                let vcpu = VcpuId::of(GUEST_VCPUS[usize::from(input.below(2))]).unwrap();
                let intid = if input.byte() & 1 == 0 {
                    PASSED_INTID
                } else {
                    BOUND_INTID
                };
                // Nothing but the clock the glue gives a timed state after.
                let mut before = self.state.clone();
                before.clock_in(core, self.counter);
                let mut taken = true;
                self.run(core, |s, r| {
                    s.vm_interrupt(core, vcpu, intid, r).unwrap_or_else(|| {
                        taken = false;
                        Outcome::CONTINUE
                    })
                });
                if !taken {
                    assert!(
                        *self.state == *before,
                        "an interrupt nobody takes changes nothing"
                    );
                }
            }
            _ => {
                if input.byte() & 1 == 0 {
                    self.run(core, |s, r| s.yield_vcpu(core, r));
                } else {
                    let vcpu = VcpuId::of(GUEST_VCPUS[usize::from(input.below(2))]).unwrap();
                    let _ = self.state.take_vm_entry(vcpu);
                    check(&self.state);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{CORES, Machine, boot};
    use crate::Bytes;

    #[test]
    fn the_system_boots_with_something_on_every_core() {
        for timed in [false, true] {
            let m = Machine::new(timed);
            for core in 0..CORES {
                assert!(m.state.current(core).is_some(), "core {core} idles");
            }
            assert_eq!(m.state.is_timed(), timed);
            drop(boot(timed));
        }
    }

    #[test]
    fn a_hypercall_step_reaches_the_kernel() {
        // Core 0, a hypercall (op 0), x0 = Version, x1..x7 zero.
        let mut m = Machine::new(false);
        let mut input = Bytes::new(&[0, 0, 0, 0]);
        m.step(&mut input);
        assert_eq!(m.regs[0][0], 0, "Version answers Success");
        assert_eq!(m.regs[0][1], u64::from(hv_abi::hypercall::ABI_VERSION));
    }
}
