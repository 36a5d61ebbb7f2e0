// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Notifications, and the interrupts bound to them.
//!
//! A notification is a word of bits. `signal` (WRITE) ORs the capability's badge into it and,
//! if that leaves bits set and a vCPU waits, hands the word to the first
//! waiter (x1) and clears it. `wait` (READ) returns and clears the word, or
//! waits while it is zero. `poll` (READ) returns and clears it and never
//! waits: no bits is `Success` with x1 = 0, not `WouldBlock`, so a poller
//! needs no error path for the common case.
//!
//! # Interrupts
//!
//! A bound interrupt signals its notification with its badge. The glue masks
//! the interrupt before calling [`KernelState::interrupt`]; the owner's
//! `IrqAck` (WRITE on an `Irq`, or on the `Device` it belongs to, x2 picking
//! the device's n-th interrupt) returns [`Effect::UnmaskIrq`], once per
//! delivery: acknowledging an interrupt that is not masked succeeds and asks
//! nothing of the glue.
//!
//! # Interrupt budget
//!
//! An interrupt is taken on its owner's core whoever runs there, so a
//! device that keeps firing (a level interrupt its driver never clears but
//! keeps acknowledging) would be paid for by the others on that core. Each
//! bound interrupt may therefore fire [`IRQ_FIRES_PER_TICK`] times per tick
//! of the state's clock ([`KernelState::advance_clock`]); an `IrqAck` after
//! that succeeds but leaves it masked, *held*, until the next tick, when
//! [`KernelState::release_held_irq`] gives it to the glue to unmask (saying,
//! the first time, that it should be reported). So a storm costs the core at
//! most that many interrupts a tick, and `IrqAck` cannot be used to make it
//! cost more.
//!
//! # Restarts
//!
//! A restarted partition's new self cannot know to acknowledge an
//! interrupt its old self took, so [`KernelState::restart_done`] releases
//! the masked and held interrupts it holds a capability to, and the next
//! tick unmasks them through [`KernelState::release_held_irq`] (not
//! reported). A stopped partition's stay masked.

use hv_abi::hypercall::{Badge, Rights, Status};

use super::dispatch::SUCCESS;
use super::{Effect, KernelState, Next, Outcome, Step, VcpuState};
use crate::cap::{NotificationId, PartitionId};
use crate::sched::{Queue, VcpuId};
use hv_image::Capability;
use hv_image::Object;

/// The times one interrupt may fire per tick before an acknowledgement
/// leaves it masked until the next tick: far above what a driver needs
/// (2000 a second; a PL011 at 115200 baud raises a few hundred), low enough
/// that a storm costs the core it is routed to little.
pub const IRQ_FIRES_PER_TICK: u32 = 20;

/// A held interrupt whose tick is over, for the glue to unmask.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HeldIrq {
    /// The interrupt.
    pub intid: u32,
    /// This is the first time it was held: report it (once).
    pub first: bool,
}

/// A word of bits and the vCPUs waiting for some.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Notification {
    pub(super) word: u64,
    pub(super) waiters: Queue,
}

impl Notification {
    pub(super) const EMPTY: Self = Self {
        word: 0,
        waiters: Queue::EMPTY,
    };
}

/// An interrupt bound to a notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct IrqBinding {
    pub(super) intid: u32,
    pub(super) notification: NotificationId,
    pub(super) badge: Badge,
    pub(super) device: Option<u16>,
    /// Delivered and not yet acknowledged.
    pub(super) masked: bool,
    /// The tick `fires` counts in.
    pub(super) tick: u64,
    /// Deliveries in that tick.
    pub(super) fires: u32,
    /// Acknowledged over budget: masked until a later tick.
    pub(super) held: bool,
    /// Masked, and its owner restarted: unmask it at the next tick.
    pub(super) release: bool,
    /// It has been held before (and reported).
    pub(super) was_held: bool,
}

impl IrqBinding {
    pub(super) const EMPTY: Self = Self {
        intid: 0,
        notification: NotificationId(0),
        badge: Badge(0),
        device: None,
        masked: false,
        tick: 0,
        fires: 0,
        held: false,
        release: false,
        was_held: false,
    };
}

impl KernelState {
    /// The notification in `slot` of `partition`, if the capability there
    /// names one and holds `right`; its badge is what `signal` sets.
    fn notification_cap(
        &self,
        partition: PartitionId,
        slot: u64,
        right: Rights,
    ) -> Result<(NotificationId, Capability), Status> {
        let (n, cap) = self.object_cap(partition, slot, right, |o| match o {
            Object::Notification(n) => NotificationId::of(n),
            _ => None,
        })?;
        if n.index() >= self.notification_count {
            return Err(Status::InvalidCapability);
        }
        Ok((n, cap))
    }

    /// ORs `badge` into notification `n` and wakes its first waiter if bits
    /// are set; the kick that needs.
    pub(super) fn signal_notification(
        &mut self,
        n: NotificationId,
        badge: Badge,
        here: usize,
    ) -> u8 {
        let Some(notification) = self.notifications.get_mut(n.index()) else {
            return 0;
        };
        notification.word |= badge.0;
        if notification.word == 0 {
            return 0;
        }
        let Some(waiter) = notification.waiters.pop_front(&mut self.links) else {
            return 0;
        };
        let word = core::mem::take(&mut notification.word);
        let mut regs = self.saved_regs(waiter).unwrap_or_default();
        regs[0] = SUCCESS;
        regs[1] = word;
        self.wake(waiter, regs, here)
    }

    /// `Signal`.
    pub(super) fn signal(
        &mut self,
        core: usize,
        cur: VcpuId,
        regs: &mut [u64; 8],
    ) -> Result<Step, Status> {
        let partition = self.partition_of(cur)?;
        let (n, cap) = self.notification_cap(partition, regs[1], Rights::WRITE)?;
        let kick = self.signal_notification(n, cap.badge, core);
        regs[0] = SUCCESS;
        Ok(self.settle(core, regs, kick))
    }

    /// `Wait` (`block` true) and `Poll` (`block` false).
    pub(super) fn wait(
        &mut self,
        core: usize,
        cur: VcpuId,
        regs: &mut [u64; 8],
        block: bool,
    ) -> Result<Step, Status> {
        let partition = self.partition_of(cur)?;
        let (n, _) = self.notification_cap(partition, regs[1], Rights::READ)?;
        let notification = self
            .notifications
            .get_mut(n.index())
            .ok_or(Status::InvalidCapability)?;
        if notification.word != 0 || !block {
            regs[0] = SUCCESS;
            regs[1] = core::mem::take(&mut notification.word);
            return Ok(Step::CONTINUE);
        }
        notification.waiters.push_back(&mut self.links, cur);
        self.set_regs(cur, *regs);
        self.set_state(cur, VcpuState::Waiting { notification: n });
        let next = self.switch_away(core, Some(cur), regs);
        Ok(Step { next, kick: 0 })
    }

    /// `IrqAck`.
    pub(super) fn irq_ack(&mut self, cur: VcpuId, regs: &mut [u64; 8]) -> Result<Outcome, Status> {
        let partition = self.partition_of(cur)?;
        let (which, _) = self.object_cap(partition, regs[1], Rights::WRITE, |o| match o {
            Object::Irq(irq) => Some((Some(usize::from(irq)), None)),
            Object::Device(device) => Some((None, Some(device))),
            _ => None,
        })?;
        let bound = self.irqs.get(..self.irq_count).unwrap_or_default();
        let index = match which {
            (Some(index), _) => Some(index).filter(|&i| i < bound.len()),
            (None, device) => {
                let nth = usize::try_from(regs[2]).unwrap_or(usize::MAX);
                bound
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| b.device == device)
                    .nth(nth)
                    .map(|(i, _)| i)
            }
        };
        let binding = index
            .and_then(|i| self.irqs.get_mut(i))
            .ok_or(Status::InvalidArgument)?;
        regs[0] = SUCCESS;
        let clock = self.clock;
        let mut effect =
            core::mem::take(&mut binding.masked).then_some(Effect::UnmaskIrq(binding.intid));
        if effect.is_some() && binding.tick == clock && binding.fires >= IRQ_FIRES_PER_TICK {
            // Over budget: masked until the next tick.
            binding.held = true;
            effect = None;
        }
        Ok(Outcome {
            effect,
            ..Outcome::CONTINUE
        })
    }

    /// An interrupt arrived on `core` (the glue has masked it): signal the
    /// notification it is bound to. An interrupt bound to nothing is
    /// ignored. `regs` are the running vCPU's x0..x7 (ignored if the core
    /// was idle); a vCPU woken here may preempt it.
    pub fn interrupt(&mut self, core: usize, intid: u32, regs: &mut [u64; 8]) -> Outcome {
        if core >= self.core_count {
            return Outcome {
                next: Next::Idle { from: None },
                ..Outcome::CONTINUE
            };
        }
        let bound = self
            .irqs
            .iter_mut()
            .take(self.irq_count)
            .find(|b| b.intid == intid);
        let kick = match bound {
            Some(binding) => {
                binding.masked = true;
                if binding.tick != self.clock {
                    binding.tick = self.clock;
                    binding.fires = 0;
                }
                binding.fires = binding.fires.saturating_add(1);
                let (n, badge) = (binding.notification, binding.badge);
                self.signal_notification(n, badge, core)
            }
            None => 0,
        };
        self.settle(core, regs, kick).into()
    }

    /// Whether `partition` holds a capability that may acknowledge
    /// interrupt binding `i` (WRITE on it, or on its device).
    fn acknowledges(&self, partition: PartitionId, i: usize) -> bool {
        let device = self.irqs.get(i).and_then(|b| b.device);
        self.caps.slots(partition).any(|(_, cap)| {
            cap.rights.contains(Rights::WRITE)
                && match cap.object {
                    Object::Irq(irq) => usize::from(irq) == i,
                    Object::Device(d) => Some(d) == device,
                    _ => false,
                }
        })
    }

    /// `partition` was restarted: the interrupts it may acknowledge that
    /// are masked (delivered and not acknowledged, or held over budget) are
    /// released at the next tick, since its new self cannot know to
    /// acknowledge them.
    pub(super) fn release_irqs_of(&mut self, partition: PartitionId) {
        for i in 0..self.irq_count {
            let masked = self.irqs.get(i).is_some_and(|b| b.masked || b.held);
            if masked
                && self.acknowledges(partition, i)
                && let Some(binding) = self.irqs.get_mut(i)
            {
                binding.masked = false;
                binding.held = false;
                binding.release = true;
            }
        }
    }

    /// `partition` stopped: an interrupt of its that a restart released and
    /// no tick has unmasked yet stays masked after all (awaiting an
    /// acknowledgement, as it was), so a stopped partition's interrupts
    /// stay masked.
    pub(super) fn keep_irqs_of(&mut self, partition: PartitionId) {
        for i in 0..self.irq_count {
            let released = self.irqs.get(i).is_some_and(|b| b.release);
            if released
                && self.acknowledges(partition, i)
                && let Some(binding) = self.irqs.get_mut(i)
            {
                binding.release = false;
                binding.masked = true;
            }
        }
    }

    /// Whether an interrupt is held (over its budget, acknowledged): then
    /// the glue calls [`KernelState::release_held_irq`] on its next tick.
    #[must_use]
    pub fn has_held_irqs(&self) -> bool {
        self.irqs
            .iter()
            .take(self.irq_count)
            .any(|b| b.held || b.release)
    }

    /// A held interrupt whose tick is over, now unheld, for the glue to
    /// unmask (and report if [`HeldIrq::first`]); `None` when there is no
    /// more. Call it on a tick, after [`KernelState::advance_clock`].
    pub fn release_held_irq(&mut self) -> Option<HeldIrq> {
        let clock = self.clock;
        let binding = self
            .irqs
            .iter_mut()
            .take(self.irq_count)
            .find(|b| (b.held && b.tick != clock) || b.release)?;
        binding.held = false;
        let first = !core::mem::take(&mut binding.release)
            && !core::mem::replace(&mut binding.was_held, true);
        Some(HeldIrq {
            intid: binding.intid,
            first,
        })
    }
}
