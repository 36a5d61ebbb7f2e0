// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Scheduling: which vCPU each core runs, and when another core is kicked.
//!
//! Every vCPU is pinned at boot to one core. Each core runs the first vCPU
//! of its highest non-empty priority ([`crate::sched::RunQueue`]):
//! - a vCPU that becomes ready goes to the back of its priority on its own
//!   core. If that core is another one, and it idles or runs something of
//!   lower priority, the step's [`Outcome::kick`] names it, and the glue
//!   interrupts it so that it calls [`KernelState::reschedule`];
//! - on the core that made it ready, a higher priority preempts the running
//!   vCPU at once, which goes back to the *front* of its priority: it had
//!   not finished its turn;
//! - the timer tick and `Yield` (and trapped WFI/WFE) send the running vCPU
//!   to the *back* of its priority if anything of its priority or higher is
//!   ready, which is round-robin within a priority;
//! - a vCPU that blocks hands the core to the next ready one; a core with
//!   nothing ready idles.
//!
//! Priorities are strict: a vCPU that never blocks starves lower
//! priorities on its core, but never equal or higher ones, nor other cores.
//!
//! On a timed system (windows or budgets, `timing.rs`) only vCPUs that may
//! run now are in the ready queues: a ready vCPU that may not is parked
//! (`make_ready` and `put_back` go through `KernelState::enqueue`), one
//! found in a queue no longer eligible is parked when it would be picked
//! (`first_eligible`), and a running one that may no longer run is preempted
//! at the end of the step (`settle`). Priorities decide among the rest.

use super::{KernelState, Next, Outcome, Step, VcpuState};
use crate::sched::VcpuId;

impl KernelState {
    /// The highest priority ready on `core`.
    fn highest_ready(&self, core: usize) -> Option<u8> {
        self.cores.get(core).and_then(|c| c.ready.highest())
    }

    fn priority(&self, v: VcpuId) -> u8 {
        self.vcpu(v).map_or(0, |v| v.priority)
    }

    /// Puts `v` at the back of its core's ready queue, or parks it if it
    /// may not run now (see `timing`). Returns the bit of its core if that
    /// is not `here` and should look again (it idles or runs a lower
    /// priority), else 0.
    pub(super) fn make_ready(&mut self, v: VcpuId, here: usize) -> u8 {
        if self.timed {
            return self.make_ready_timed(v, here);
        }
        let Some(vcpu) = self.vcpus.get_mut(v.index()) else {
            return 0;
        };
        vcpu.state = VcpuState::Ready;
        let (core, priority) = (usize::from(vcpu.core), vcpu.priority);
        let Some(target) = self.cores.get_mut(core) else {
            return 0;
        };
        target.ready.push_back(&mut self.links, v, priority);
        let running = target.current.map(|c| self.priority(c));
        if core != here && running.is_none_or(|p| p < priority) {
            1 << (core % 8)
        } else {
            0
        }
    }

    /// `v`, halted and pinned to `core`, wakes on `core` itself, which
    /// idles with nothing of `v`'s priority or higher ready: it runs there
    /// at once, `regs` its x0..x7. That is what [`Self::make_ready`] then
    /// [`Self::settle`] do (its queue was empty, so `v` would be pushed and
    /// popped straight back, and no core is kicked), without the queue's
    /// round trip. `None`, and nothing changes, anywhere else (a timed
    /// system included): the caller takes the general path.
    #[inline(always)]
    pub(super) fn wake_on_idle_core(
        &mut self,
        core: usize,
        v: VcpuId,
        regs: &mut [u64; 8],
    ) -> Option<Step> {
        if self.timed || v.index() >= self.vcpu_count {
            return None;
        }
        let vcpu = self.vcpus.get(v.index())?;
        let here = self.cores.get_mut(core)?;
        if vcpu.state != VcpuState::Halted
            || usize::from(vcpu.core) != core
            || here.current.is_some()
            || here.ready.highest().is_some_and(|h| h >= vcpu.priority)
        {
            return None;
        }
        here.current = Some(v);
        Some(Step {
            next: self.run_next(None, Some(v), regs),
            kick: 0,
        })
    }

    /// [`Self::make_ready`] on a timed system: parked if it may not run.
    #[inline(never)]
    fn make_ready_timed(&mut self, v: VcpuId, here: usize) -> u8 {
        let Some(vcpu) = self.vcpus.get_mut(v.index()) else {
            return 0;
        };
        vcpu.state = VcpuState::Ready;
        let (core, priority) = (usize::from(vcpu.core), vcpu.priority);
        if !self.enqueue(v, false) {
            return 0;
        }
        let running = self
            .cores
            .get(core)
            .and_then(|c| c.current)
            .map(|c| self.priority(c));
        if core != here && running.is_none_or(|p| p < priority) {
            1 << (core % 8)
        } else {
            0
        }
    }

    /// Runs the highest ready vCPU on `core` in place of `from`, which no
    /// longer runs (it blocked, or was put back in the ready queue, or its
    /// partition stopped: then `from` is `None`), or idles.
    pub(super) fn switch_away(
        &mut self,
        core: usize,
        from: Option<VcpuId>,
        regs: &mut [u64; 8],
    ) -> Next {
        if self.timed {
            return self.switch_away_timed(core, from, regs);
        }
        let Some(here) = self.cores.get_mut(core) else {
            return Next::Idle { from };
        };
        let next = here.ready.pop_highest(&mut self.links);
        here.current = next;
        self.run_next(from, next, regs)
    }

    /// What running `next` (already `core`'s current) in place of `from`
    /// means: `Running` with its x0..x7 in `regs`, or the core idles.
    #[inline(always)]
    fn run_next(
        &mut self,
        from: Option<VcpuId>,
        next: Option<VcpuId>,
        regs: &mut [u64; 8],
    ) -> Next {
        let Some(to) = next else {
            return Next::Idle { from };
        };
        if let Some(vcpu) = self.vcpus.get_mut(to.index()) {
            vcpu.state = VcpuState::Running;
        }
        if let Some(saved) = self.regs.get(to.index()) {
            *regs = *saved;
        }
        if from == Some(to) {
            Next::Continue
        } else {
            Next::Switch { from, to }
        }
    }

    /// [`Self::switch_away`] on a timed system: the highest ready vCPU that
    /// may run (`first_eligible`).
    #[inline(never)]
    fn switch_away_timed(
        &mut self,
        core: usize,
        from: Option<VcpuId>,
        regs: &mut [u64; 8],
    ) -> Next {
        let popped = self
            .cores
            .get_mut(core)
            .and_then(|here| here.ready.pop_highest(&mut self.links));
        let next = self.first_eligible(core, popped);
        let Some(here) = self.cores.get_mut(core) else {
            return Next::Idle { from };
        };
        here.current = next;
        self.run_next(from, next, regs)
    }

    /// Parks every vCPU popped from `core`'s ready queue, starting with
    /// `next`, that may no longer run (its eligibility changed while it
    /// waited there: a caller it served stopped, say), and returns the first
    /// that may.
    fn first_eligible(&mut self, core: usize, mut next: Option<VcpuId>) -> Option<VcpuId> {
        // Each turn parks one vCPU: at most all of them.
        for _ in 0..hv_image::MAX_SYSTEM_VCPUS {
            let v = next?;
            if self.eligible(v) {
                return Some(v);
            }
            self.timing.park(core, v, true);
            next = self.cores.get_mut(core)?.ready.pop_highest(&mut self.links);
        }
        None
    }

    /// Puts the running `cur` back in its ready queue (at the front if
    /// `front`; parked if it may not run now, which `runs` says if the
    /// caller knows) and runs the highest ready vCPU.
    fn put_back(
        &mut self,
        core: usize,
        cur: VcpuId,
        regs: &mut [u64; 8],
        front: bool,
        runs: Option<bool>,
    ) -> Next {
        let Some(vcpu) = self.vcpus.get_mut(cur.index()) else {
            return Next::Continue;
        };
        vcpu.state = VcpuState::Ready;
        let priority = vcpu.priority;
        if let Some(saved) = self.regs.get_mut(cur.index()) {
            *saved = *regs;
        }
        if self.timed {
            match runs {
                Some(runs) => self.enqueue_as(cur, front, runs),
                None => self.enqueue(cur, front),
            };
        } else if let Some(here) = self.cores.get_mut(core) {
            if front {
                here.ready.push_front(&mut self.links, cur, priority);
            } else {
                here.ready.push_back(&mut self.links, cur, priority);
            }
        }
        self.switch_away(core, Some(cur), regs)
    }

    /// The end of a step in which the running vCPU (if any) did not block:
    /// it carries on unless something of higher priority is now ready here;
    /// an idle core takes whatever is ready.
    pub(super) fn settle(&mut self, core: usize, regs: &mut [u64; 8], kick: u8) -> Step {
        let next = match self.current(core) {
            // Its window ended, its budget ran out, or the caller whose
            // time it ran on is answered: it waits (parked) for its time.
            Some(cur) if self.timed && !self.eligible(cur) => {
                self.put_back(core, cur, regs, true, Some(false))
            }
            Some(cur)
                if self
                    .highest_ready(core)
                    .is_some_and(|h| h > self.priority(cur)) =>
            {
                self.put_back(core, cur, regs, true, None)
            }
            Some(_) => Next::Continue,
            None => self.switch_away(core, None, regs),
        };
        Step { next, kick }
    }

    /// Round-robin: the running vCPU goes to the back of its priority if
    /// anything of its priority or higher is ready.
    pub(super) fn rotate(&mut self, core: usize, regs: &mut [u64; 8]) -> Step {
        match self.current(core) {
            Some(cur)
                if (!self.timed || self.eligible(cur))
                    && self
                        .highest_ready(core)
                        .is_some_and(|h| h >= self.priority(cur)) =>
            {
                Step {
                    next: self.put_back(core, cur, regs, false, None),
                    kick: 0,
                }
            }
            _ => self.settle(core, regs, 0),
        }
    }

    /// The timer preempted `core`: round-robin within the running vCPU's
    /// priority. `regs` are its x0..x7 (ignored if the core idled).
    pub fn tick(&mut self, core: usize, regs: &mut [u64; 8]) -> Outcome {
        self.let_go(core);
        self.refresh(core);
        self.rotate(core, regs).into()
    }

    /// The running vCPU gives up its turn without a hypercall (a trapped WFI
    /// or WFE): as `Yield`, but x0 is left alone.
    pub fn yield_vcpu(&mut self, core: usize, regs: &mut [u64; 8]) -> Outcome {
        self.rotate(core, regs).into()
    }

    /// What `core` should run now: the highest-priority ready vCPU if it
    /// outranks the running one (or the core idles), else carry on. Call it
    /// when a kick arrives (`regs` being the running vCPU's x0..x7, or
    /// anything if the core idled). Its running vCPU may also have been
    /// stopped by another core meanwhile: then the result switches away
    /// with `from: None`.
    pub fn reschedule(&mut self, core: usize, regs: &mut [u64; 8]) -> Outcome {
        self.let_go(core);
        self.settle(core, regs, 0).into()
    }

    /// What an idle `core` should run now (the first vCPU after boot, or
    /// after an interrupt or kick woke it): [`KernelState::reschedule`] for a
    /// core that runs nothing.
    pub fn idle(&mut self, core: usize, regs: &mut [u64; 8]) -> Outcome {
        self.reschedule(core, regs)
    }
}
