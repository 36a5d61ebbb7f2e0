// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Test support: seeds built from owned parts, and a simulated kernel glue.

use hv_abi::hypercall::{Badge, Hypercall, Rights, Status};

use crate::cap::{EndpointId, IrqId, NotificationId, PartitionId};
use crate::sched::VcpuId;
use crate::state::{
    EndpointSeed, FaultPolicy, FaultSignalSeed, IrqSeed, KernelState, Next, Outcome, PartitionSeed,
    ReplySeed, Seed,
};
use hv_image::Capability;
use hv_image::Object;
use hv_image::{BudgetSpec, Owners, ScheduleSpec, Window};

pub(super) const R: Rights = Rights::READ;
pub(super) const W: Rights = Rights::WRITE;
pub(super) const G: Rights = Rights::GRANT;
pub(super) const D: Rights = Rights::DERIVE;

/// The union of `rights`.
pub(super) fn rights(rights: &[Rights]) -> Rights {
    rights.iter().fold(Rights::NONE, |a, r| a.union(*r))
}

pub(super) fn fid(call: Hypercall) -> u64 {
    u64::from(call.function_id())
}

pub(super) fn endpoint(i: u8, r: &[Rights], badge: u64) -> Option<Capability> {
    Some(
        Capability::new(Object::Endpoint(EndpointId(i).number()), rights(r))
            .with_badge(Badge(badge)),
    )
}

pub(super) fn notification(i: u8, r: &[Rights], badge: u64) -> Option<Capability> {
    Some(
        Capability::new(Object::Notification(NotificationId(i).number()), rights(r))
            .with_badge(Badge(badge)),
    )
}

pub(super) fn object(object: Object, r: &[Rights]) -> Option<Capability> {
    Some(Capability::new(object, rights(r)))
}

pub(super) fn irq(i: u8) -> Object {
    Object::Irq(IrqId(i).number())
}

/// A partition of a test system, owning its capabilities.
#[derive(Clone, Debug)]
pub(super) struct Part {
    pub(super) vcpus: usize,
    pub(super) cores: u64,
    pub(super) priority: u8,
    pub(super) policy: FaultPolicy,
    pub(super) caps: Vec<Option<Capability>>,
    /// The exit endpoint of a virtual machine.
    pub(super) exits: Option<EndpointId>,
}

impl Part {
    /// One vCPU on `cores` at `priority`, stopped on a fault, with `caps`.
    pub(super) fn new(cores: u64, priority: u8, caps: &[Option<Capability>]) -> Self {
        Self {
            vcpus: 1,
            cores,
            priority,
            policy: FaultPolicy::Stop,
            caps: caps.to_vec(),
            exits: None,
        }
    }

    /// A virtual machine whose exits go to endpoint `exits`.
    pub(super) fn vm(self, exits: u8) -> Self {
        Self {
            exits: Some(EndpointId(exits)),
            ..self
        }
    }

    pub(super) fn vcpus(self, vcpus: usize) -> Self {
        Self { vcpus, ..self }
    }

    pub(super) fn restart(self) -> Self {
        Self {
            policy: FaultPolicy::Restart,
            ..self
        }
    }
}

/// A test system.
#[derive(Clone, Debug, Default)]
pub(super) struct System {
    pub(super) cores: usize,
    pub(super) parts: Vec<Part>,
    pub(super) endpoints: Vec<EndpointSeed>,
    pub(super) notifications: usize,
    pub(super) irqs: Vec<IrqSeed>,
    pub(super) replies: Vec<ReplySeed>,
    pub(super) fault_signals: Vec<FaultSignalSeed>,
    /// The schedule, if any ([`schedule`]).
    pub(super) schedule: Option<ScheduleSpec>,
    /// Budgets of vCPUs.
    pub(super) budgets: Vec<BudgetSpec>,
}

/// The counter frequency of timed test systems: a tick is a microsecond.
pub(super) const HZ: u64 = 1_000_000;

/// A schedule whose core `n` runs `cores[n]`: windows of `(length in us,
/// owners)`, owners a partition mask or `None` for a background window.
pub(super) fn schedule(cores: &[&[(u32, Option<u16>)]]) -> ScheduleSpec {
    let mut spec = ScheduleSpec {
        major_frame_us: cores.first().map_or(0, |w| w.iter().map(|(l, _)| l).sum()),
        cores: hv_image::heapless::Vec::new(),
        windows: hv_image::heapless::Vec::new(),
    };
    for windows in cores {
        spec.cores.push(windows.len() as u8).unwrap();
        for &(length_us, owners) in *windows {
            let owners = owners.map_or(Owners::Background, Owners::Partitions);
            spec.windows.push(Window { length_us, owners }).unwrap();
        }
    }
    spec
}

/// A budget of `budget_us` every `period_us` for vCPU `vcpu` of `partition`.
pub(super) fn budget(partition: u16, vcpu: u8, budget_us: u32, period_us: u32) -> BudgetSpec {
    BudgetSpec {
        partition,
        vcpu,
        budget_us,
        period_us,
    }
}

impl System {
    /// This system with `schedule`.
    pub(super) fn scheduled(self, schedule: ScheduleSpec) -> Self {
        Self {
            schedule: Some(schedule),
            ..self
        }
    }

    /// This system with `budgets`.
    pub(super) fn budgeted(self, budgets: &[BudgetSpec]) -> Self {
        Self {
            budgets: budgets.to_vec(),
            ..self
        }
    }

    /// `cores` cores, the partitions, `endpoints` endpoints with no declared
    /// server, `notifications` notifications, no interrupts.
    pub(super) fn new(
        cores: usize,
        parts: Vec<Part>,
        endpoints: usize,
        notifications: usize,
    ) -> Self {
        Self {
            cores,
            parts,
            endpoints: vec![EndpointSeed::default(); endpoints],
            notifications,
            irqs: Vec::new(),
            replies: Vec::new(),
            fault_signals: Vec::new(),
            schedule: None,
            budgets: Vec::new(),
        }
    }

    /// Runs `f` on the [`Seed`] this system describes.
    pub(super) fn with_seed<T>(&self, f: impl FnOnce(&Seed<'_>) -> T) -> T {
        let parts: Vec<PartitionSeed<'_>> = self
            .parts
            .iter()
            .map(|p| PartitionSeed {
                vcpus: p.vcpus,
                cores: p.cores,
                priority: p.priority,
                fault_policy: p.policy,
                capabilities: &p.caps,
                exits: p.exits,
            })
            .collect();
        f(&Seed {
            cores: self.cores,
            partitions: &parts,
            endpoints: &self.endpoints,
            notifications: self.notifications,
            irqs: &self.irqs,
            replies: &self.replies,
            kernel_log: None,
            fault_signals: &self.fault_signals,
            time: crate::state::TimeSeed {
                schedule: self.schedule.as_ref(),
                budgets: &self.budgets,
                counter_hz: HZ,
                start: 0,
            },
        })
    }

    pub(super) fn boot(&self) -> Box<KernelState> {
        let mut state = Box::new(KernelState::empty());
        self.with_seed(|seed| state.boot(seed)).unwrap();
        state.check_invariants().unwrap();
        state
    }
}

/// The kernel glue, simulated: each core's live x0..x7, what every step
/// asked for, and an invariant check after every step.
pub(super) struct Machine {
    pub(super) state: Box<KernelState>,
    pub(super) regs: Vec<[u64; 8]>,
    pub(super) last: Outcome,
    /// The counter, for tests that advance it step by step.
    pub(super) now: u64,
}

impl Machine {
    /// Boots `system` and lets every core pick its first vCPU.
    pub(super) fn new(system: &System) -> Self {
        Self::running(system.boot(), system.cores)
    }

    /// Boots domain `domain` of `system` ([`crate::state::Domains`]) and
    /// lets every core pick its first vCPU.
    pub(super) fn domain(system: &System, domains: &crate::state::Domains, domain: usize) -> Self {
        let mut state = Box::new(KernelState::empty());
        system
            .with_seed(|seed| state.boot_domain(seed, domains, domain))
            .unwrap();
        state.check_invariants().unwrap();
        Self::running(state, system.cores)
    }

    /// `state` on `cores` cores, each having picked its first vCPU.
    fn running(state: Box<KernelState>, cores: usize) -> Self {
        let mut m = Self {
            state,
            regs: vec![[0; 8]; cores],
            last: Outcome::CONTINUE,
            now: 0,
        };
        for core in 0..cores {
            m.step(core, |s, r| s.idle(core, r));
        }
        m
    }

    /// Runs one step on `core` with its live registers.
    pub(super) fn step(
        &mut self,
        core: usize,
        f: impl FnOnce(&mut KernelState, &mut [u64; 8]) -> Outcome,
    ) -> Outcome {
        let outcome = f(&mut self.state, &mut self.regs[core]);
        // The glue tells a timed state the counter after every step.
        self.state.clock_in(core, self.now);
        if let Err(broken) = self.state.check_invariants() {
            panic!(
                "invariant broken: {broken}\nafter {outcome:?}\n{:#?}",
                self.state
            );
        }
        // What the glue would see agrees with the state.
        let running = self.state.current(core);
        match outcome.next {
            Next::Continue => {}
            Next::Switch { to, .. } => assert_eq!(running, Some(to)),
            Next::Idle { .. } => assert_eq!(running, None),
        }
        self.last = outcome;
        outcome
    }

    /// The vCPU on `core` makes hypercall `call` with x1.. = `args` (the rest
    /// zero).
    pub(super) fn hvc(&mut self, core: usize, call: Hypercall, args: &[u64]) -> Outcome {
        let mut regs = [0; 8];
        regs[0] = fid(call);
        for (r, a) in regs.iter_mut().skip(1).zip(args) {
            *r = *a;
        }
        self.raw(core, regs)
    }

    /// The vCPU on `core` makes a hypercall with exactly `regs`. The general
    /// path runs first on a copy: the real step (which may take the fast
    /// path) must do exactly the same.
    pub(super) fn raw(&mut self, core: usize, regs: [u64; 8]) -> Outcome {
        self.regs[core] = regs;
        let mut general = self.state.clone();
        let mut general_regs = regs;
        let expected = if regs[0] == fid(Hypercall::Version) {
            None
        } else {
            Some(general.dispatch(core, &mut general_regs))
        };
        // The kernel glue's order: the fast path alone, if the call may take
        // it, then the general one. The question never turns one away that
        // the fast path would have taken.
        let mut glue = self.state.clone();
        let mut glue_regs = regs;
        let fast = crate::state::fast_candidate(&regs)
            .and_then(|call| glue.hypercall_fast(core, &mut glue_regs, call));
        let glue_outcome = match fast {
            Some(_) => None,
            None => Some(glue.hypercall_general(core, &mut glue_regs)),
        };
        // As `step` does after the real one.
        glue.clock_in(core, self.now);
        general.clock_in(core, self.now);
        let outcome = self.step(core, |s, r| s.hypercall(core, r));
        match (fast, glue_outcome) {
            (Some(to), _) => assert!(
                matches!(outcome.next, Next::Switch { to: t, .. } if t == to)
                    && outcome.kick == 0
                    && outcome.effect.is_none(),
                "the glue's order differs on {regs:x?}"
            ),
            (None, Some(general)) => {
                assert_eq!(general, outcome, "the glue's order differs on {regs:x?}");
            }
            (None, None) => unreachable!(),
        }
        assert_eq!(
            glue_regs, self.regs[core],
            "the glue's order differs on {regs:x?}"
        );
        assert!(
            *glue == *self.state,
            "the glue's order differs on {regs:x?}"
        );
        if let Some(expected) = expected {
            assert_eq!(
                outcome, expected,
                "fast and general paths disagree on {regs:x?}"
            );
            assert_eq!(
                self.regs[core], general_regs,
                "fast and general paths disagree on {regs:x?}"
            );
            assert!(
                *self.state == *general,
                "fast and general paths disagree on {regs:x?}"
            );
        }
        outcome
    }

    /// The glue's clock: the counter is `now` on `core` (the glue tells
    /// the state after every step, and before a timer step).
    pub(super) fn clock(&mut self, core: usize, now: u64) {
        self.now = now;
        self.state.clock_in(core, now);
        self.state.check_invariants().unwrap();
    }

    /// The timer fires on `core` at `now` for time's sake.
    pub(super) fn time_event(&mut self, core: usize, now: u64) -> Outcome {
        self.clock(core, now);
        self.step(core, |s, r| s.time_event(core, r))
    }

    pub(super) fn tick(&mut self, core: usize) -> Outcome {
        self.step(core, |s, r| s.tick(core, r))
    }

    pub(super) fn reschedule(&mut self, core: usize) -> Outcome {
        self.step(core, |s, r| s.reschedule(core, r))
    }

    /// Status in x0 of what now runs on `core`.
    pub(super) fn status(&self, core: usize) -> Option<Status> {
        Status::from_register(self.regs[core][0])
    }

    pub(super) fn on(&self, core: usize) -> Option<VcpuId> {
        self.state.current(core)
    }
}

/// The status word for `s`.
pub(super) fn st(s: Status) -> u64 {
    s.to_register()
}

/// Partition `i`.
pub(super) fn p(i: u8) -> PartitionId {
    PartitionId(i)
}

/// vCPU `i`.
pub(super) fn v(i: u8) -> VcpuId {
    VcpuId::of(i).unwrap()
}
