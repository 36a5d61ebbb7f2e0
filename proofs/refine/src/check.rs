// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The checks: a breadth-first search over every sequence of actions up to
//! a depth, on the real state, checking each step against the spec and
//! every property in every state reached; and a two-run noninterference
//! check.
//!
//! The search is written here rather than with `stateright`: a
//! [`KernelState`] is about 60 KiB, and a BFS that keeps whole states in its
//! queue needs gigabytes at the depths wanted. This one keeps, per state,
//! only its parent and the action that reached it (six bytes) and a 128-bit
//! fingerprint in the visited set, and rebuilds states by replaying their
//! path (children of one parent sit together, so each parent is rebuilt
//! once per level). Paths are therefore free: a counterexample is the path.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::time::Instant;

use hv_abi::hypercall::{Hypercall, Status};
use hv_core::cap::{NotificationId, PartitionId, SlotRef};
use hv_core::state::properties::{self, Policy};
use hv_core::state::{KernelState, VcpuState};
use hv_image::Object;

use crate::spec::{self, Abs, Spec};
use crate::system::{self, Action, PARTITIONS, Report};

/// The name of the refinement check.
pub const REFINEMENT: &str = "refinement: real step matches the spec (status, capabilities, lives)";
/// The name of the kernel's own invariants.
pub const INVARIANTS: &str = "kernel invariants (KernelState::check_invariants)";
/// The name of the noninterference check.
pub const NONINTERFERENCE: &str =
    "noninterference: what p2 holds privately is invisible to partitions it is not connected to";
/// The name of the check that the seed's induced channels are the declared ones.
pub const CHANNELS: &str = "the seed's capabilities induce only the manifest's channels";

/// Every per-state or per-step property the search checks, in report order.
pub const PROPERTIES: [&str; 7] = [
    REFINEMENT,
    INVARIANTS,
    properties::NO_FORGERY,
    properties::ATTENUATION,
    properties::REVOKE,
    properties::MEMORY,
    properties::FLOW,
];

/// A 128-bit fingerprint of anything hashable, two multiply-rotate lanes.
#[derive(Default)]
struct Fingerprint {
    a: u64,
    b: u64,
    n: u64,
}

impl Fingerprint {
    fn mix(&mut self, x: u64) {
        self.n = self.n.wrapping_add(1);
        self.a = (self.a ^ x)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(29);
        self.b = (self.b.rotate_left(17) ^ x ^ self.n).wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
    }

    fn value(&self) -> u128 {
        let fin = |mut z: u64| {
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        (u128::from(fin(self.a ^ self.n)) << 64) | u128::from(fin(self.b))
    }
}

impl Hasher for Fingerprint {
    fn finish(&self) -> u64 {
        self.value() as u64
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.mix(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(w) ^ (rest.len() as u64) << 56);
        }
    }
    fn write_u8(&mut self, x: u8) {
        self.mix(u64::from(x));
    }
    fn write_u16(&mut self, x: u16) {
        self.mix(u64::from(x));
    }
    fn write_u32(&mut self, x: u32) {
        self.mix(u64::from(x));
    }
    fn write_u64(&mut self, x: u64) {
        self.mix(x);
    }
    fn write_usize(&mut self, x: usize) {
        self.mix(x as u64);
    }
}

fn fingerprint(state: &KernelState) -> u128 {
    let mut h = Fingerprint::default();
    state.hash(&mut h);
    h.value()
}

/// What the checks share: the spec, the policy, the actions.
pub struct Context {
    spec: Spec,
    policy: Box<Policy>,
    actions: Vec<Action>,
}

impl Default for Context {
    fn default() -> Self {
        Self::new()
    }
}

impl Context {
    /// The checker's system.
    #[must_use]
    pub fn new() -> Self {
        let policy =
            Box::new(system::with_seed(Policy::new).with_channels(pad_channels(system::CHANNELS)));
        Self {
            spec: Spec::new(),
            policy,
            actions: system::actions(),
        }
    }

    /// How many actions each state is tried with.
    #[must_use]
    pub fn alphabet(&self) -> usize {
        self.actions.len()
    }
}

fn pad_channels(c: [u16; PARTITIONS]) -> [u16; hv_image::MAX_PARTITIONS] {
    let mut all = [0; hv_image::MAX_PARTITIONS];
    all[..PARTITIONS].copy_from_slice(&c);
    all
}

/// The channels the seed's capabilities induce (closed under transfer)
/// must be among the manifest's declared ones.
pub fn seed_channels_declared() -> Result<(), String> {
    let induced = system::with_seed(Policy::new);
    for p in 0..PARTITIONS {
        let have = induced.channels()[p];
        let declared = system::CHANNELS[p];
        if have & !declared != 0 {
            return Err(format!(
                "the seed lets p{p} flow to {:#b}, the manifest declares {declared:#b}",
                have
            ));
        }
    }
    Ok(())
}

/// A property broken: by which path, and how.
#[derive(Clone, Debug)]
pub struct Counterexample {
    /// The steps from boot.
    pub path: Vec<Action>,
    /// What broke.
    pub what: String,
}

impl Counterexample {
    /// The steps and what broke, on one line.
    #[must_use]
    pub fn text(&self) -> String {
        let steps: Vec<String> = self.path.iter().map(ToString::to_string).collect();
        let steps = if steps.is_empty() {
            "boot".to_string()
        } else {
            steps.join(" → ")
        };
        format!("{steps}: {}", self.what)
    }
}

/// The properties the state `k` breaks, by name.
fn state_failures(ctx: &Context, k: &KernelState, out: &mut Vec<(&'static str, String)>) {
    if let Err(e) = k.check_invariants() {
        out.push((INVARIANTS, e.to_string()));
    }
    let checks: [(&'static str, properties::Verdict); 4] = [
        (
            properties::NO_FORGERY,
            properties::no_forgery(k, &ctx.policy),
        ),
        (properties::ATTENUATION, properties::rights_attenuate(k)),
        (
            properties::MEMORY,
            properties::shared_memory_within(k, &ctx.policy),
        ),
        (properties::FLOW, properties::flows_within(k, &ctx.policy)),
    ];
    for (name, verdict) in checks {
        if let Err(b) = verdict {
            out.push((name, b.to_string()));
        }
    }
}

/// The new capability in `after` that `before` lacks, if exactly one, and
/// whether it is a legal transfer: a copy of its parent, which has DERIVE,
/// into a slot empty before.
fn transfer_allowed(before: &Abs, after: &Abs, expected: &Abs) -> Result<Abs, String> {
    let new: Vec<_> = after
        .caps
        .iter()
        .filter(|(s, _)| !expected.caps.contains_key(s))
        .collect();
    match new.as_slice() {
        [] => Ok(expected.clone()),
        &[(&slot, &acap)] => {
            let Some(parent) = acap.parent else {
                return Err(format!("slot {slot:?} gained a root"));
            };
            let Some(src) = before.caps.get(&parent) else {
                return Err(format!("slot {slot:?} gained a child of an empty slot"));
            };
            if src.cap != acap.cap
                || !src.cap.rights.contains(hv_abi::hypercall::Rights::DERIVE)
                || before.caps.contains_key(&slot)
            {
                return Err(format!(
                    "slot {slot:?} gained {acap:?}, which no transfer allows"
                ));
            }
            let mut with = expected.clone();
            with.caps.insert(slot, acap);
            Ok(with)
        }
        more => Err(format!("{} capabilities appeared in one step", more.len())),
    }
}

/// The refinement check of one step.
fn refinement(
    ctx: &Context,
    (before, abs): (&KernelState, &Abs),
    action: &Action,
    after: &KernelState,
    report: &Report,
) -> Result<(), String> {
    let expect = ctx.spec.step(abs, before, action);
    if let Some(status) = expect.refused {
        if report.status != Some(status) || !report.continued {
            return Err(format!(
                "the spec refuses with {status:?}; the kernel returned {:?}",
                report.status
            ));
        }
        if before != after {
            return Err(format!("a call refused with {status:?} changed the state"));
        }
        return Ok(());
    }
    if let Some(status) = report.status
        && !expect.statuses.is_empty()
        && !expect.statuses.contains(&status)
    {
        return Err(format!(
            "the kernel returned {status:?}; the spec allows {:?}",
            expect.statuses
        ));
    }
    let real = spec::abstraction(after);
    let mut expected = if expect.transfer {
        transfer_allowed(abs, &real, &expect.after)?
    } else {
        expect.after.clone()
    };
    if expect.life_open {
        for (p, life) in expected.life.iter_mut().enumerate() {
            if abs.life[p] == hv_core::state::PartitionState::Restarting {
                *life = real.life[p];
            }
        }
    }
    if expected.life != real.life {
        return Err(format!(
            "lives: the spec says {:?}, the kernel {:?}",
            expected.life, real.life
        ));
    }
    if expected.caps != real.caps {
        let diff: Vec<String> = expected
            .caps
            .keys()
            .chain(real.caps.keys())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .filter(|s| expected.caps.get(s) != real.caps.get(s))
            .map(|s| {
                format!(
                    "slot {s:?}: spec {:?}, kernel {:?}",
                    expected.caps.get(s).map(|c| (c.cap.rights.0, c.parent)),
                    real.caps.get(s).map(|c| (c.cap.rights.0, c.parent))
                )
            })
            .collect();
        return Err(format!("capabilities differ: {}", diff.join("; ")));
    }
    Ok(())
}

/// Every failure of one step `before → after` by `action`.
fn step_failures(
    ctx: &Context,
    (before, abs): (&KernelState, &Abs),
    action: &Action,
    after: &KernelState,
    report: &Report,
    out: &mut Vec<(&'static str, String)>,
) {
    if let Err(e) = refinement(ctx, (before, abs), action, after, report) {
        out.push((REFINEMENT, e));
    }
    if let Action::Hvc { p, call } = *action
        && call.regs(p)[0] == u64::from(Hypercall::Revoke.function_id())
        && report.status == Some(Status::Success)
        && let Some(top) = SlotRef::new(PartitionId(p), call.regs(p)[1])
        && let Err(b) = properties::revoke_exact(before.caps(), after.caps(), top)
    {
        out.push((properties::REVOKE, b.to_string()));
    }
    // A state equal to the one before was checked when it was reached.
    if before != after {
        state_failures(ctx, after, out);
    }
}

/// The result of a search.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Distinct states reached.
    pub states: usize,
    /// Steps run (transitions).
    pub steps: usize,
    /// The deepest level completed.
    pub depth: usize,
    /// The first (shortest) counterexample for each property broken.
    pub failures: HashMap<&'static str, Counterexample>,
    /// Seconds taken.
    pub seconds: f64,
    /// How often each thing that matters happened in the steps run (see
    /// `note`).
    pub reached: BTreeMap<String, usize>,
}

/// One state of the search: its parent and the action from it.
#[derive(Clone, Copy)]
struct Node {
    parent: u32,
    action: u16,
}

fn path_of(nodes: &[Node], ctx: &Context, mut i: usize) -> Vec<Action> {
    let mut path = Vec::new();
    while i != 0 {
        let n = nodes[i];
        path.push(ctx.actions[usize::from(n.action)]);
        i = n.parent as usize;
    }
    path.reverse();
    path
}

fn rebuild(root: &KernelState, path: &[Action]) -> Box<KernelState> {
    let mut k = Box::new(root.clone());
    for a in path {
        system::apply(&mut k, a);
    }
    k
}

/// What expanding a range of the frontier found.
struct Found {
    children: Vec<(u128, Node)>,
    failures: Vec<(&'static str, usize, u16, String)>,
    steps: usize,
    reached: BTreeMap<String, usize>,
}

/// Notes in `reached` what the step `before → after` did that matters for
/// the checks not to be vacuous: statuses returned, capabilities moving
/// between partitions, revokes reaching into other partitions, blocked
/// vCPUs woken, partitions stopping, restarting and coming back.
fn note(
    reached: &mut BTreeMap<String, usize>,
    before: &KernelState,
    action: &Action,
    after: &KernelState,
    report: &Report,
) {
    let mut see = |what: String| *reached.entry(what).or_default() += 1;
    if let (Action::Hvc { call, .. }, Some(status)) = (action, report.status) {
        let name = call.to_string();
        let name = name.split('(').next().unwrap_or_default();
        see(format!("{name} → {status:?}"));
    }
    if before == after {
        return;
    }
    for p in 0..PARTITIONS as u8 {
        let p = PartitionId(p);
        for (at, _) in after.caps().slots(p) {
            let new = before.capability(p, u64::from(at.slot().0)).is_none();
            if new
                && after
                    .caps()
                    .parent(at)
                    .is_some_and(|up| up.partition() != p)
            {
                see("a capability transferred to another partition".into());
            }
        }
        let lost = before
            .caps()
            .slots(p)
            .filter(|(at, _)| after.caps().get(*at).is_none())
            .count();
        if lost > 0
            && matches!(action, Action::Hvc { p: q, call: system::Call::Revoke(_) } if *q != p.0)
        {
            see("a revoke emptied a slot of another partition".into());
        }
        let (was, now) = (before.partition_state(p), after.partition_state(p));
        if was != now {
            see(format!("a partition went {was:?} → {now:?}"));
        }
    }
    for v in 0..after.vcpu_count() as u8 {
        let v = hv_core::sched::VcpuId::of(v).unwrap();
        let blocked = |s: Option<VcpuState>| {
            matches!(
                s,
                Some(
                    VcpuState::Sending { .. }
                        | VcpuState::Receiving { .. }
                        | VcpuState::Waiting { .. }
                        | VcpuState::AwaitingReply { .. }
                )
            )
        };
        if blocked(before.vcpu_state(v)) && !blocked(after.vcpu_state(v)) {
            see("a blocked vCPU woken".into());
        }
    }
}

fn expand(
    ctx: &Context,
    root: &KernelState,
    nodes: &[Node],
    range: std::ops::Range<usize>,
) -> Found {
    let mut found = Found {
        children: Vec::new(),
        failures: Vec::new(),
        steps: 0,
        reached: BTreeMap::new(),
    };
    let mut cached: Option<(usize, Box<KernelState>)> = None;
    let mut child = Box::new(KernelState::empty());
    let mut out = Vec::new();
    for i in range {
        // Rebuild state i from its parent, rebuilt once for all its children.
        let parent = nodes[i].parent as usize;
        let state = if i == 0 {
            Box::new(root.clone())
        } else {
            if cached.as_ref().is_none_or(|(c, _)| *c != parent) {
                cached = Some((parent, rebuild(root, &path_of(nodes, ctx, parent))));
            }
            let mut s = Box::new(
                cached
                    .as_ref()
                    .map(|(_, s)| (**s).clone())
                    .unwrap_or_else(KernelState::empty),
            );
            system::apply(&mut s, &ctx.actions[usize::from(nodes[i].action)]);
            s
        };
        let abs = spec::abstraction(&state);
        for (a, action) in ctx.actions.iter().enumerate() {
            if !system::enabled(&state, action) {
                continue;
            }
            child.clone_from(&state);
            let report = system::apply(&mut child, action);
            found.steps += 1;
            out.clear();
            step_failures(ctx, (&state, &abs), action, &child, &report, &mut out);
            if !out.is_empty() {
                for (name, what) in out.drain(..) {
                    found.failures.push((name, i, a as u16, what));
                }
                continue;
            }
            note(&mut found.reached, &state, action, &child, &report);
            if *child == *state {
                continue;
            }
            found.children.push((
                fingerprint(&child),
                Node {
                    parent: i as u32,
                    action: a as u16,
                },
            ));
        }
    }
    found
}

/// Breadth-first search to `depth` steps on `threads` threads.
#[must_use]
pub fn search(ctx: &Context, depth: usize, threads: usize) -> Outcome {
    let start = Instant::now();
    let root = system::boot();
    let mut outcome = Outcome::default();
    let mut initial = Vec::new();
    if spec::abstraction(&root) != ctx.spec.initial() {
        initial.push((
            REFINEMENT,
            "the booted state is not the spec's initial one".into(),
        ));
    }
    state_failures(ctx, &root, &mut initial);
    for (name, what) in initial {
        outcome.failures.entry(name).or_insert(Counterexample {
            path: Vec::new(),
            what,
        });
    }
    let mut nodes = vec![Node {
        parent: 0,
        action: 0,
    }];
    let mut visited: HashSet<u128> = HashSet::new();
    visited.insert(fingerprint(&root));
    let mut frontier = 0..1;
    for level in 0..depth {
        let chunk = frontier.len().div_ceil(threads.max(1)).max(1);
        let ranges: Vec<_> = (frontier.start..frontier.end)
            .step_by(chunk)
            .map(|s| s..(s + chunk).min(frontier.end))
            .collect();
        let founds: Vec<Found> = std::thread::scope(|scope| {
            let handles: Vec<_> = ranges
                .into_iter()
                .map(|r| {
                    let (nodes, root) = (&nodes, &root);
                    scope.spawn(move || expand(ctx, root, nodes, r))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a search thread panicked"))
                .collect()
        });
        let next = nodes.len();
        for found in founds {
            outcome.steps += found.steps;
            for (what, n) in found.reached {
                *outcome.reached.entry(what).or_default() += n;
            }
            for (name, i, a, what) in found.failures {
                if !outcome.failures.contains_key(name) {
                    let mut path = path_of(&nodes, ctx, i);
                    path.push(ctx.actions[usize::from(a)]);
                    outcome.failures.insert(name, Counterexample { path, what });
                }
            }
            for (fp, node) in found.children {
                if visited.insert(fp) {
                    nodes.push(node);
                }
            }
        }
        frontier = next..nodes.len();
        outcome.depth = level + 1;
        eprintln!(
            "  depth {}: {} states ({} new), {} steps, {:.1} s",
            level + 1,
            nodes.len(),
            frontier.len(),
            outcome.steps,
            start.elapsed().as_secs_f64()
        );
        if frontier.is_empty() {
            break;
        }
    }
    outcome.states = nodes.len();
    outcome.seconds = start.elapsed().as_secs_f64();
    outcome
}

/// A capability a partition sees in its table: slot, capability, and the
/// slot it came from (partition, slot).
type HeldCap = (u32, hv_image::Capability, Option<(u8, u32)>);

/// What partition `l` can observe of a state.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Observation {
    life: Option<hv_core::state::PartitionState>,
    vcpus: Vec<(Option<VcpuState>, Option<[u64; 8]>, bool)>,
    caps: Vec<HeldCap>,
    words: Vec<(u16, Option<u64>)>,
}

fn observe(k: &KernelState, l: u8) -> Observation {
    let p = PartitionId(l);
    let vcpus = k
        .partition_vcpus(p)
        .map(|v| {
            let state = k.vcpu_state(v);
            let regs = (state != Some(VcpuState::Running))
                .then(|| k.saved_regs(v))
                .flatten();
            (state, regs, k.caller_of(v).is_some())
        })
        .collect();
    let mut caps = Vec::new();
    let mut words = Vec::new();
    for (at, cap) in k.caps().slots(p) {
        let parent = k.caps().parent(at).map(|u| (u.partition().0, u.slot().0));
        caps.push((at.slot().0, cap, parent));
        if let Object::Notification(n) = cap.object {
            let word = NotificationId::of(n).and_then(|id| k.notification_word(id));
            if !words.contains(&(n, word)) {
                words.push((n, word));
            }
        }
    }
    Observation {
        life: k.partition_state(p),
        vcpus,
        caps,
        words,
    }
}

/// What the low partitions see of a step: the registers of their vCPUs the
/// step hands to a core, and a low caller's status.
fn seen_by(report: &Report, k: &KernelState, low: &[u8]) -> Vec<(usize, [u64; 8])> {
    report
        .seen
        .iter()
        .filter(|(_, v, _)| k.vcpu_partition(*v).is_some_and(|p| low.contains(&p.0)))
        .map(|&(c, _, r)| (c, r))
        .collect()
}

/// Noninterference by two runs: from every state within `base` steps of
/// boot, a pair of states that differ by one step of the high partition H
/// alone (a hypercall, its interrupt, its exception: what changes is what
/// it holds privately: its notification word, its own capabilities, its
/// registers, its run state and life) must look the same to every
/// partition H is not connected to, and keep looking the same after every
/// common sequence of up to `depth` further actions (an action of a vCPU
/// that does not run in one of the runs does nothing there), each step
/// showing them the same registers. The pairs are shared out among
/// `threads` threads.
#[must_use]
pub fn noninterference(ctx: &Context, base: usize, depth: usize, threads: usize) -> Outcome {
    let high = PartitionId(system::HIGH);
    let low: Vec<u8> = (0..PARTITIONS as u8)
        .filter(|&p| !ctx.policy.reaches(high, PartitionId(p)))
        .collect();
    eprintln!("  low partitions (not reached from p{}): {low:?}", high.0);
    two_runs(ctx, (high.0, &low), base, depth, threads)
}

/// [`noninterference`] of `high` for the partitions `low`, whatever the
/// channels say (a test points it at a pair the channels connect, where it
/// must find the flow).
fn two_runs(
    ctx: &Context,
    (high, low): (u8, &[u8]),
    base: usize,
    depth: usize,
    threads: usize,
) -> Outcome {
    let start = Instant::now();
    let low = low.to_vec();
    let root = system::boot();
    // Every path to a state within `base` steps, then one step of H.
    let mut roots = Vec::new();
    let mut seen_bases = HashMap::new();
    bases(
        ctx,
        (&root, high),
        base,
        &mut Vec::new(),
        &mut seen_bases,
        &mut roots,
    );
    eprintln!("  {} pairs to start from", roots.len());
    let threads = threads.max(1);
    let results: Vec<Outcome> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (roots, root, low) = (&roots, &root, &low);
                scope.spawn(move || {
                    let mut search = NiSearch {
                        ctx,
                        low: low.clone(),
                        outcome: Outcome::default(),
                        seen_pairs: HashMap::new(),
                        h_at: 0,
                    };
                    for path in roots.iter().skip(t).step_by(threads) {
                        let Some((h, before)) = path.split_last() else {
                            continue;
                        };
                        let mut b = Box::new((**root).clone());
                        for a in before {
                            system::apply_with(&mut b, a, true);
                        }
                        let mut a = b.clone();
                        system::apply_with(&mut a, h, true);
                        search.h_at = before.len();
                        let mut path = path.clone();
                        search.pairs(&a, &b, depth, &mut path);
                        if !search.outcome.failures.is_empty() {
                            break;
                        }
                    }
                    search.outcome.states = search.seen_pairs.len();
                    search.outcome
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a noninterference thread panicked"))
            .collect()
    });
    let mut outcome = Outcome {
        depth: base + 1 + depth,
        ..Outcome::default()
    };
    for r in results {
        outcome.states += r.states;
        outcome.steps += r.steps;
        for (name, c) in r.failures {
            let shorter = outcome
                .failures
                .get(name)
                .is_none_or(|old| c.path.len() < old.path.len());
            if shorter {
                outcome.failures.insert(name, c);
            }
        }
    }
    outcome.seconds = start.elapsed().as_secs_f64();
    outcome
}

/// Whether `action` in `k` is a step of H's alone: its hypercalls, the
/// interrupt bound to its notification, an exception of its vCPU.
fn high_step(k: &KernelState, action: &Action, h: u8) -> bool {
    let high = |v: Option<hv_core::sched::VcpuId>| {
        v.and_then(|v| k.vcpu_partition(v)) == Some(PartitionId(h))
    };
    match *action {
        Action::Hvc { p, .. } => p == h,
        Action::Interrupt { intid, .. } => h == system::HIGH && intid == system::HIGH_INTID,
        Action::Fault(core) => high(k.current(usize::from(core))),
        _ => false,
    }
}

/// Collects into `roots` every path of at most `left` more steps from `k`
/// (reached by `path`) followed by one step of `high` that changes the
/// state.
fn bases(
    ctx: &Context,
    (k, high): (&KernelState, u8),
    left: usize,
    path: &mut Vec<Action>,
    seen: &mut HashMap<u128, usize>,
    roots: &mut Vec<Vec<Action>>,
) {
    let fp = fingerprint(k);
    if seen.get(&fp).is_some_and(|&l| l >= left) {
        return;
    }
    seen.insert(fp, left);
    for action in &ctx.actions {
        if !system::enabled(k, action) {
            continue;
        }
        let mut next = Box::new(k.clone());
        system::apply_with(&mut next, action, true);
        if *next == *k {
            continue;
        }
        path.push(*action);
        if high_step(k, action, high) {
            roots.push(path.clone());
        }
        if left > 0 {
            bases(ctx, (&next, high), left - 1, path, seen, roots);
        }
        path.pop();
    }
}

struct NiSearch<'a> {
    ctx: &'a Context,
    low: Vec<u8>,
    outcome: Outcome,
    seen_pairs: HashMap<(u128, u128), usize>,
    /// Where in the path the step of H that only the first run takes is.
    h_at: usize,
}

impl NiSearch<'_> {
    fn differ(&self, a: &KernelState, b: &KernelState) -> Option<String> {
        for &l in &self.low {
            let (x, y) = (observe(a, l), observe(b, l));
            if x != y {
                return Some(format!("p{l} sees {x:?} in one run and {y:?} in the other"));
            }
        }
        None
    }

    fn pairs(&mut self, a: &KernelState, b: &KernelState, left: usize, path: &mut Vec<Action>) {
        if !self.outcome.failures.is_empty() {
            return;
        }
        self.outcome.steps += 1;
        if let Some(what) = self.differ(a, b) {
            self.outcome.failures.insert(
                NONINTERFERENCE,
                Counterexample {
                    path: path.clone(),
                    what: format!("(the second run skips step {}) {what}", self.h_at + 1),
                },
            );
            return;
        }
        let key = (fingerprint(a), fingerprint(b));
        // Pairs already explored at least this deep.
        if self.seen_pairs.get(&key).is_some_and(|&l| l >= left) {
            return;
        }
        self.seen_pairs.insert(key, left);
        if left == 0 {
            return;
        }
        for action in &self.ctx.actions.clone() {
            let (ea, eb) = (system::enabled(a, action), system::enabled(b, action));
            if !ea && !eb {
                continue;
            }
            let mut na = Box::new(a.clone());
            let mut nb = Box::new(b.clone());
            let ra = ea.then(|| system::apply_with(&mut na, action, true));
            let rb = eb.then(|| system::apply_with(&mut nb, action, true));
            if *na == *a && *nb == *b {
                continue;
            }
            let sa = ra
                .as_ref()
                .map(|r| seen_by(r, &na, &self.low))
                .unwrap_or_default();
            let sb = rb
                .as_ref()
                .map(|r| seen_by(r, &nb, &self.low))
                .unwrap_or_default();
            path.push(*action);
            if sa != sb {
                self.outcome.failures.insert(
                    NONINTERFERENCE,
                    Counterexample {
                        path: path.clone(),
                        what: format!(
                            "(the second run skips step {}) the low partitions see {sa:x?} in one run and {sb:x?} in the other",
                            self.h_at + 1
                        ),
                    },
                );
                path.pop();
                return;
            }
            self.pairs(&na, &nb, left - 1, path);
            path.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Context, noninterference, search};

    /// A shallow search passes every check and is not vacuous: it reaches
    /// transfers, revokes into other partitions, restarts that finish,
    /// woken vCPUs, and every class of refusal.
    #[test]
    fn a_shallow_search_passes_and_reaches_what_matters() {
        let ctx = Context::new();
        super::seed_channels_declared().unwrap();
        let outcome = search(&ctx, 3, 2);
        if let Some((name, c)) = outcome.failures.iter().next() {
            panic!("{name}: {}", c.text());
        }
        for what in [
            "a capability transferred to another partition",
            "a revoke emptied a slot of another partition",
            "a blocked vCPU woken",
            "a partition went Some(Active) → Some(Restarting)",
            "a partition went Some(Active) → Some(Stopped)",
            "Derive → Success",
            "Derive → NoRights",
            "Derive → InvalidArgument",
            "Derive → InvalidCapability",
            "Send → WrongType",
            "Send → NotGrantable",
            "Send → PeerGone",
            "Revoke → Success",
            "PartitionStop → Busy",
        ] {
            assert!(
                outcome.reached.contains_key(what),
                "never reached: {what} ({:?})",
                outcome.reached
            );
        }
        let ni = noninterference(&ctx, 1, 1, 2);
        assert!(ni.failures.is_empty(), "{:?}", ni.failures);
        assert!(ni.states > 0);
    }

    /// The two-run check finds a flow where there is one: p0 signals p1's
    /// notification and sends on its endpoint, so p1 must see p0's steps.
    #[test]
    fn the_two_runs_find_a_flow_the_channels_allow() {
        let ctx = Context::new();
        let ni = super::two_runs(&ctx, (0, &[1]), 0, 1, 2);
        let found = ni
            .failures
            .get(super::NONINTERFERENCE)
            .expect("p0's steps are visible to p1");
        eprintln!("found, as it should: {}", found.text());
        assert!(
            found
                .path
                .first()
                .is_some_and(|a| matches!(a, crate::system::Action::Hvc { p: 0, .. }))
        );
    }
}
