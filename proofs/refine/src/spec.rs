// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The executable specification: what each step does to the abstract state
//! (every partition's capabilities with their derivation parents, and every
//! partition's life), and which status the caller gets, written from the
//! rules in `docs/` and the module documentation of `hv_core::cap`, not
//! from the code.
//!
//! The check is a commuting diagram: for a real step `s → s'`,
//! [`Spec::step`] applied to [`abstraction`]`(s)` must allow
//! [`abstraction`]`(s')` and the status the caller saw. The spec decides
//! the capability and life semantics exactly; for IPC, where the outcome
//! depends on the rendezvous state (who waits on which endpoint), which the
//! spec does not model, it fixes the argument checks and their order, and
//! then allows the statuses IPC may end with and at most one capability
//! transfer, which it checks against the transfer rule: a copy, with the
//! same rights and badge, of a capability with DERIVE, into an empty slot,
//! as a child of its source. Whether a reply is owed (for `Recv` and
//! `Reply`) is read from the real state before the step, an input the
//! spec takes rather than models.

use std::collections::BTreeMap;

use hv_abi::hypercall::{Hypercall, MessageInfo, Rights, Status, derive_fields};
use hv_core::cap::PartitionId;
use hv_core::state::{KernelState, PartitionState};
use hv_image::{Capability, FaultPolicy, MAX_CAPS, Object};

use crate::system::{ENDPOINTS, NOTIFICATIONS, PARTITIONS, POLICIES};

/// A slot: partition, slot number.
pub type Slot = (u8, u8);

/// An abstract capability: what it is and where it was derived from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ACap {
    /// The capability.
    pub cap: Capability,
    /// The slot it was derived (or transferred) from; `None` for a root.
    pub parent: Option<Slot>,
}

/// The abstract state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Abs {
    /// Every occupied slot.
    pub caps: BTreeMap<Slot, ACap>,
    /// Each partition's life.
    pub life: [PartitionState; PARTITIONS],
}

/// The abstraction function: the real state's capability tables and
/// partitions' lives.
#[must_use]
pub fn abstraction(k: &KernelState) -> Abs {
    let mut caps = BTreeMap::new();
    for p in 0..PARTITIONS as u8 {
        for (at, cap) in k.caps().slots(PartitionId(p)) {
            let parent = k
                .caps()
                .parent(at)
                .map(|up| (up.partition().0, up.slot().0 as u8));
            caps.insert((p, at.slot().0 as u8), ACap { cap, parent });
        }
    }
    let life = core::array::from_fn(|p| {
        k.partition_state(PartitionId(p as u8))
            .unwrap_or(PartitionState::Stopped)
    });
    Abs { caps, life }
}

/// What the spec allows a step to do.
#[derive(Clone, Debug)]
pub struct Expect {
    /// The call is refused with this status: the caller carries on with it
    /// in x0 and nothing else changes (the real state is bit-for-bit the
    /// same).
    pub refused: Option<Status>,
    /// The statuses the caller may see if it carries on; empty: any.
    pub statuses: &'static [Status],
    /// The abstract state after the step.
    pub after: Abs,
    /// One capability transfer may also happen (IPC).
    pub transfer: bool,
    /// A restarting partition's life may move on (the glue's reload).
    pub life_open: bool,
}

impl Expect {
    fn refused(status: Status, abs: &Abs) -> Self {
        Self {
            refused: Some(status),
            statuses: &[],
            after: abs.clone(),
            transfer: false,
            life_open: false,
        }
    }

    fn done(statuses: &'static [Status], after: Abs) -> Self {
        Self {
            refused: None,
            statuses,
            after,
            transfer: false,
            life_open: false,
        }
    }
}

/// The specification's constants: the seed's roots.
pub struct Spec {
    seeds: BTreeMap<Slot, Capability>,
}

impl Default for Spec {
    fn default() -> Self {
        Self::new()
    }
}

impl Spec {
    /// The spec of the checker's system.
    #[must_use]
    pub fn new() -> Self {
        let mut seeds = BTreeMap::new();
        for (p, table) in crate::system::tables().iter().enumerate() {
            for (s, cap) in table.iter().enumerate() {
                if let Some(cap) = cap {
                    seeds.insert((p as u8, s as u8), *cap);
                }
            }
        }
        Self { seeds }
    }

    /// The initial abstract state: the seed, every partition active.
    #[must_use]
    pub fn initial(&self) -> Abs {
        Abs {
            caps: self
                .seeds
                .iter()
                .map(|(&s, &cap)| (s, ACap { cap, parent: None }))
                .collect(),
            life: [PartitionState::Active; PARTITIONS],
        }
    }

    /// What `action` may do from `abs`; `real` is the real state before the
    /// step, read only for what the spec takes as input (which vCPU runs
    /// where, whether a reply is owed).
    #[must_use]
    pub fn step(&self, abs: &Abs, real: &KernelState, action: &crate::system::Action) -> Expect {
        use crate::system::Action;
        match *action {
            Action::Hvc { p, call } => {
                let regs = call.regs(p);
                let v = crate::system::vcpu_of(real, p);
                let owes = v.and_then(|v| real.caller_of(v)).is_some();
                self.hypercall(abs, p, &regs, owes)
            }
            Action::Fault(core) => {
                let running = real
                    .current(usize::from(core))
                    .and_then(|v| real.vcpu_partition(v));
                let mut after = abs.clone();
                if let Some(p) = running {
                    self.fail(&mut after, p.0, POLICIES[p.index()]);
                }
                Expect::done(&[], after)
            }
            Action::Reload(_) => Expect {
                life_open: true,
                ..Expect::done(&[], abs.clone())
            },
            Action::Interrupt { .. } | Action::Tick(_) | Action::Reschedule(_) => {
                Expect::done(&[], abs.clone())
            }
        }
    }

    fn lookup(abs: &Abs, p: u8, slot: u64) -> Result<(Slot, Capability), Status> {
        if slot >= MAX_CAPS as u64 {
            return Err(Status::InvalidCapability);
        }
        let at = (p, slot as u8);
        abs.caps
            .get(&at)
            .map(|c| (at, c.cap))
            .ok_or(Status::InvalidCapability)
    }

    /// The object in `slot` of `p`, of the kind `pick` takes, with `right`.
    fn object(
        abs: &Abs,
        p: u8,
        slot: u64,
        right: Rights,
        pick: impl FnOnce(Object) -> Option<u16>,
    ) -> Result<(u16, Capability), Status> {
        let (_, cap) = Self::lookup(abs, p, slot)?;
        let n = pick(cap.object).ok_or(Status::WrongType)?;
        if !cap.rights.contains(right) {
            return Err(Status::NoRights);
        }
        Ok((n, cap))
    }

    fn endpoint(abs: &Abs, p: u8, slot: u64, right: Rights) -> Result<Capability, Status> {
        let (e, cap) = Self::object(abs, p, slot, right, |o| match o {
            Object::Endpoint(e) => Some(e),
            _ => None,
        })?;
        if usize::from(e) >= ENDPOINTS {
            return Err(Status::InvalidCapability);
        }
        Ok(cap)
    }

    fn notification(abs: &Abs, p: u8, slot: u64, right: Rights) -> Result<(), Status> {
        let (n, _) = Self::object(abs, p, slot, right, |o| match o {
            Object::Notification(n) => Some(n),
            _ => None,
        })?;
        if usize::from(n) >= NOTIFICATIONS {
            return Err(Status::InvalidCapability);
        }
        Ok(())
    }

    fn partition(abs: &Abs, p: u8, slot: u64, right: Rights) -> Result<u8, Status> {
        let (t, _) = Self::object(abs, p, slot, right, |o| match o {
            Object::Partition(t) => Some(t),
            _ => None,
        })?;
        if usize::from(t) >= PARTITIONS {
            return Err(Status::InvalidCapability);
        }
        Ok(t as u8)
    }

    /// A message info's length, if well formed.
    fn length(info: u64) -> Result<usize, Status> {
        let info = MessageInfo(info);
        if !info.is_well_formed() {
            return Err(Status::InvalidArgument);
        }
        info.length().ok_or(Status::InvalidArgument)
    }

    /// The receive slot a message info names: in range, and empty.
    fn receive_slot(abs: &Abs, p: u8, info: u64) -> Result<(), Status> {
        let Some(slot) = MessageInfo(info).capability() else {
            return Ok(());
        };
        if slot.0 as usize >= MAX_CAPS {
            return Err(Status::InvalidCapability);
        }
        if abs.caps.contains_key(&(p, slot.0 as u8)) {
            return Err(Status::InvalidArgument);
        }
        Ok(())
    }

    fn hypercall(&self, abs: &Abs, p: u8, regs: &[u64; 8], owes: bool) -> Expect {
        let result = self.hypercall_checked(abs, p, regs, owes);
        result.unwrap_or_else(|status| Expect::refused(status, abs))
    }

    fn hypercall_checked(
        &self,
        abs: &Abs,
        p: u8,
        regs: &[u64; 8],
        owes: bool,
    ) -> Result<Expect, Status> {
        const SUCCESS: &[Status] = &[Status::Success];
        // A send ends delivered, queued (no status yet), or with its
        // partner gone, or its capability unable to land.
        const SENT: &[Status] = &[Status::Success, Status::PeerGone, Status::OutOfResources];
        let call = Hypercall::try_from(regs[0]).map_err(|_| Status::NotSupported)?;
        let ipc = |statuses| Expect {
            transfer: true,
            ..Expect::done(statuses, abs.clone())
        };
        Ok(match call {
            Hypercall::Derive => {
                let (rights, badge) = derive_fields(regs[2]);
                let (from, cap) = Self::lookup(abs, p, regs[1])?;
                if !rights.is_valid() {
                    return Err(Status::InvalidArgument);
                }
                if !cap.rights.contains(Rights::DERIVE) || !cap.rights.contains(rights) {
                    return Err(Status::NoRights);
                }
                let badge = match (badge.0, cap.badge.0) {
                    (0, _) => cap.badge,
                    (_, 0) => badge,
                    _ => return Err(Status::InvalidArgument),
                };
                if regs[3] >= MAX_CAPS as u64 {
                    return Err(Status::InvalidCapability);
                }
                let to = (p, regs[3] as u8);
                if abs.caps.contains_key(&to) {
                    return Err(Status::InvalidArgument);
                }
                let mut after = abs.clone();
                let child = Capability {
                    object: cap.object,
                    rights,
                    badge,
                };
                after.caps.insert(
                    to,
                    ACap {
                        cap: child,
                        parent: Some(from),
                    },
                );
                Expect::done(SUCCESS, after)
            }
            Hypercall::Revoke => {
                let (at, _) = Self::lookup(abs, p, regs[1])?;
                let mut after = abs.clone();
                revoke(&mut after, at);
                Expect::done(SUCCESS, after)
            }
            Hypercall::Delete => {
                let (at, _) = Self::lookup(abs, p, regs[1])?;
                let mut after = abs.clone();
                delete(&mut after, at);
                Expect::done(SUCCESS, after)
            }
            Hypercall::Send | Hypercall::Call => {
                let ep = Self::endpoint(abs, p, regs[1], Rights::WRITE)?;
                Self::length(regs[2])?;
                if let Some(slot) = MessageInfo(regs[2]).capability() {
                    if !ep.rights.contains(Rights::GRANT) {
                        return Err(Status::NotGrantable);
                    }
                    let (_, moved) = Self::lookup(abs, p, u64::from(slot.0))?;
                    if !moved.rights.contains(Rights::DERIVE) {
                        return Err(Status::NotGrantable);
                    }
                }
                ipc(SENT)
            }
            Hypercall::Recv => {
                Self::endpoint(abs, p, regs[1], Rights::READ)?;
                if owes {
                    return Err(Status::InvalidArgument);
                }
                Self::length(regs[2])?;
                Self::receive_slot(abs, p, regs[2])?;
                ipc(SUCCESS)
            }
            Hypercall::ReplyRecv => {
                Self::endpoint(abs, p, regs[1], Rights::READ)?;
                Self::length(regs[2])?;
                Self::receive_slot(abs, p, regs[2])?;
                ipc(SUCCESS)
            }
            Hypercall::Reply => {
                if !owes {
                    return Err(Status::NoCaller);
                }
                if MessageInfo(regs[2]).capability().is_some() {
                    return Err(Status::InvalidArgument);
                }
                Self::length(regs[2])?;
                Expect::done(SUCCESS, abs.clone())
            }
            Hypercall::Signal => {
                Self::notification(abs, p, regs[1], Rights::WRITE)?;
                Expect::done(SUCCESS, abs.clone())
            }
            Hypercall::Wait | Hypercall::Poll => {
                Self::notification(abs, p, regs[1], Rights::READ)?;
                Expect::done(SUCCESS, abs.clone())
            }
            Hypercall::IrqAck => {
                Self::object(abs, p, regs[1], Rights::WRITE, |o| match o {
                    Object::Irq(n) | Object::Device(n) => Some(n),
                    _ => None,
                })?;
                // Which interrupt, and whether it is pending, the spec does
                // not model: any status, nothing changes.
                Expect::done(&[], abs.clone())
            }
            Hypercall::PartitionStatus => {
                Self::partition(abs, p, regs[1], Rights::READ)?;
                Expect::done(SUCCESS, abs.clone())
            }
            Hypercall::PartitionStop | Hypercall::PartitionRestart => {
                let t = Self::partition(abs, p, regs[1], Rights::CONTROL)?;
                let how = if call == Hypercall::PartitionStop {
                    FaultPolicy::Stop
                } else {
                    FaultPolicy::Restart
                };
                let mut after = abs.clone();
                match (abs.life[usize::from(t)], how) {
                    (PartitionState::Restarting, _) => return Err(Status::Busy),
                    (PartitionState::Stopped, FaultPolicy::Stop) => {}
                    _ => self.fail(&mut after, t, how),
                }
                Expect::done(SUCCESS, after)
            }
            Hypercall::Fault => {
                if regs[2] > hv_abi::hypercall::REASON_OWN_MAX {
                    return Err(Status::InvalidArgument);
                }
                let mut after = abs.clone();
                self.fail(&mut after, p, POLICIES[usize::from(p)]);
                Expect::done(&[], after)
            }
            Hypercall::Yield | Hypercall::Version => Expect::done(SUCCESS, abs.clone()),
            // Not in the checker's alphabet.
            _ => Expect::done(&[], abs.clone()),
        })
    }

    /// Partition `p` stops (`how` = stop: its capabilities stay) or
    /// restarts (its table goes back to the seed: every slot deleted, then
    /// the roots put back).
    fn fail(&self, abs: &mut Abs, p: u8, how: FaultPolicy) {
        match how {
            FaultPolicy::Stop => abs.life[usize::from(p)] = PartitionState::Stopped,
            FaultPolicy::Restart => {
                abs.life[usize::from(p)] = PartitionState::Restarting;
                let mine: Vec<Slot> = abs.caps.keys().filter(|s| s.0 == p).copied().collect();
                for s in mine {
                    if abs.caps.contains_key(&s) {
                        delete(abs, s);
                    }
                }
                for (&s, &cap) in self.seeds.iter().filter(|(s, _)| s.0 == p) {
                    abs.caps.insert(s, ACap { cap, parent: None });
                }
            }
        }
    }
}

/// Whether `slot` descends (strictly) from `top`.
fn descends(abs: &Abs, slot: Slot, top: Slot) -> bool {
    let mut at = abs.caps.get(&slot).and_then(|c| c.parent);
    let mut steps = 0;
    while let Some(a) = at {
        if a == top {
            return true;
        }
        steps += 1;
        if steps > abs.caps.len() {
            return false;
        }
        at = abs.caps.get(&a).and_then(|c| c.parent);
    }
    false
}

/// Revoke: every slot that descends from `top` is emptied; nothing else
/// changes.
pub fn revoke(abs: &mut Abs, top: Slot) {
    let gone: Vec<Slot> = abs
        .caps
        .keys()
        .filter(|&&s| descends(abs, s, top))
        .copied()
        .collect();
    for s in gone {
        abs.caps.remove(&s);
    }
}

/// Delete: a root takes its descendants with it; a derived capability's
/// children move up to its parent.
pub fn delete(abs: &mut Abs, at: Slot) {
    let Some(node) = abs.caps.get(&at).copied() else {
        return;
    };
    match node.parent {
        None => revoke(abs, at),
        Some(up) => {
            for c in abs.caps.values_mut() {
                if c.parent == Some(at) {
                    c.parent = Some(up);
                }
            }
        }
    }
    abs.caps.remove(&at);
}
