// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Grant-transitivity: a capability passed on along a chain of `grant`
//! endpoints stays under its first holder's control, so whoever can revoke
//! it must have a channel to wherever it can end up.
//!
//! If `x` passes a capability to `p` over a grant endpoint `p` serves, and
//! `p` passes its copy on to `q` over another, then `x` revoking what it
//! passed (or deleting the root it derived it from, or restarting, which
//! revokes everything that descends from its seed) empties a slot of `q`'s
//! table: information flows from `x` to `q`. The proofs of revocation and
//! noninterference (`proofs/model/`) hold only for manifests where every
//! such flow is one the channel graph contains. So: for every partition `q`
//! that a capability of `x` can reach through two or more grant hops, the
//! manifest must let information flow from `x` to `q`.
//!
//! What can travel is computed as the kernel's properties do
//! (`hv_core::state::properties::Policy`): the capabilities the manifest
//! gives, closed under transfer. Only a capability with the derive right can
//! be passed, and only the ends of `derive = true` channels get that right,
//! so a partition that can never hold a derivable capability starts no
//! chain (a system without `derive = true` channels has none at all); a
//! partition that receives one can pass it on, and a client capability of a
//! grant endpoint, once passed, makes its new holder a granter too. The
//! flows are those the same properties count, over the same closed
//! authority: an endpoint both ways between its writers and readers, a
//! notification from its signallers to its waiters, shared memory from each
//! writer to every other end, control of a partition both ways, a monitor's
//! vCPUs both ways, and every partition to the kernel log's reader.

use hv_abi::hypercall::Rights;

use crate::diag::Sink;
use crate::lower::end_of;
use crate::model::{Channel, ChannelKind};
use crate::system::{self, SystemDecl};

/// What the check needs beyond the channels: who controls whom, who
/// monitors whom, who reads the kernel log.
pub(super) struct Others<'a> {
    /// Each partition's `controls`, resolved.
    pub(super) controls: &'a [Vec<usize>],
    /// (monitor, virtual machine) pairs.
    pub(super) monitors: &'a [(usize, usize)],
    /// The kernel log's reader.
    pub(super) log_reader: Option<usize>,
}

/// Reports every pair of partitions joined by a chain of two or more grant
/// hops without a flow from the first to the last. `channels` are the
/// checked channels, in the order of `decl.channels`.
pub(super) fn check_grant_chains(
    decl: &SystemDecl,
    channels: &[Channel],
    names: &[&str],
    others: &Others<'_>,
    sink: &mut Sink<'_>,
) {
    let n = names.len();
    let may = authority(channels, n);
    let derivable: Vec<bool> = may
        .iter()
        .map(|row| row.iter().any(|r| r.contains(Rights::DERIVE)))
        .collect();
    // The first endpoint (in channel order) over which `from` can pass a
    // capability to `to`.
    let mut hop: Vec<Vec<Option<usize>>> = vec![vec![None; n]; n];
    for (c, channel) in channels.iter().enumerate() {
        if !matches!(channel.kind, ChannelKind::Endpoint { grant: true, .. }) {
            continue;
        }
        for from in (0..n).filter(|&p| derivable[p]) {
            if !may[from][c].contains(Rights::WRITE.union(Rights::GRANT)) {
                continue;
            }
            for to in 0..n {
                if to != from && may[to][c].contains(Rights::READ) && hop[from][to].is_none() {
                    hop[from][to] = Some(c);
                }
            }
        }
    }
    let flows = flows(channels, &may, others, n);
    for x in (0..n).filter(|&p| derivable[p]) {
        // Breadth first, neighbours in partition order: each partition
        // reached with its predecessor on a shortest chain.
        let mut before: Vec<Option<usize>> = vec![None; n];
        let mut queue = std::collections::VecDeque::from([x]);
        while let Some(p) = queue.pop_front() {
            for q in 0..n {
                if q != x && before[q].is_none() && hop[p][q].is_some() {
                    before[q] = Some(p);
                    queue.push_back(q);
                }
            }
        }
        for q in 0..n {
            if before[q].is_none() || flows[x][q] {
                continue;
            }
            let mut chain = vec![q];
            while let Some(p) = chain.last().and_then(|&at| before[at]) {
                chain.push(p);
            }
            chain.reverse();
            report(decl, channels, names, &chain, &hop, sink);
        }
    }
}

/// Reports the chain `chain` (partitions, first to last) at the `grant` key
/// of its last hop's endpoint.
fn report(
    decl: &SystemDecl,
    channels: &[Channel],
    names: &[&str],
    chain: &[usize],
    hop: &[Vec<Option<usize>>],
    sink: &mut Sink<'_>,
) {
    let name = |p: usize| names.get(p).copied().unwrap_or("?");
    let hops: Vec<(usize, usize, usize)> = chain
        .windows(2)
        .filter_map(|pair| Some((pair[0], pair[1], hop[pair[0]][pair[1]]?)))
        .collect();
    let (Some(&(_, _, last)), Some(&x), Some(&q)) = (hops.last(), chain.first(), chain.last())
    else {
        return;
    };
    let Some(place) = decl.channels.get(last).and_then(|c| match &c.kind {
        system::ChannelKind::Endpoint {
            grant: Some(grant), ..
        } => Some(&grant.place),
        _ => None,
    }) else {
        return;
    };
    let mut told = String::new();
    for (i, &(from, to, c)) in hops.iter().enumerate() {
        let channel = channels.get(c).map_or("?", |c| c.name.as_str());
        if i == 0 {
            told += &format!(
                "`{}` can pass a capability to `{}` (channel `{channel}`)",
                name(from),
                name(to)
            );
        } else {
            let and = if i + 1 == hops.len() { ", and " } else { ", " };
            told += &format!(
                "{and}`{}` on to `{}` (channel `{channel}`)",
                name(from),
                name(to)
            );
        }
    }
    sink.error(
        place,
        format!(
            "{told}, but no channel lets information flow from `{x}` to `{q}`: `{x}` revoking \
             what it passed, or restarting, would change `{q}`'s capabilities, a flow the \
             manifest does not declare",
            x = name(x),
            q = name(q)
        ),
        format!(
            "connect `{}` and `{}` with a channel, or drop `grant` from one of these endpoints",
            name(x),
            name(q)
        ),
    );
}

/// The rights each partition may come to hold on each channel's object
/// (`[partition][channel]`): its own end, closed under transfer.
fn authority(channels: &[Channel], n: usize) -> Vec<Vec<Rights>> {
    let mut may: Vec<Vec<Rights>> = (0..n)
        .map(|p| {
            channels
                .iter()
                .map(|channel| match end_of(&channel.kind, p) {
                    Some((rights, _)) if channel.derive => rights.union(Rights::DERIVE),
                    Some((rights, _)) => rights,
                    None => Rights::NONE,
                })
                .collect()
        })
        .collect();
    let passes = Rights::WRITE.union(Rights::GRANT);
    loop {
        let mut changed = false;
        for (e, channel) in channels.iter().enumerate() {
            if !matches!(channel.kind, ChannelKind::Endpoint { .. }) {
                continue;
            }
            for from in 0..n {
                if !may[from][e].contains(passes) {
                    continue;
                }
                for to in 0..n {
                    if !may[to][e].contains(Rights::READ) {
                        continue;
                    }
                    let passed = may[from].clone();
                    for (held, r) in may[to].iter_mut().zip(passed) {
                        let new = held.union(r);
                        if r.contains(Rights::DERIVE) && new != *held {
                            *held = new;
                            changed = true;
                        }
                    }
                }
            }
        }
        if !changed {
            return may;
        }
    }
}

/// The flow relation (`[from][to]`) of the closed authority `may` and the
/// capabilities that cannot be passed on.
fn flows(
    channels: &[Channel],
    may: &[Vec<Rights>],
    others: &Others<'_>,
    n: usize,
) -> Vec<Vec<bool>> {
    let mut flow = vec![vec![false; n]; n];
    let holds = |p: usize, c: usize, right: Rights| may[p][c].contains(right);
    for (c, channel) in channels.iter().enumerate() {
        for (from, row) in flow.iter_mut().enumerate() {
            for (to, cell) in row.iter_mut().enumerate() {
                let yes = match channel.kind {
                    ChannelKind::Endpoint { .. } => {
                        (holds(from, c, Rights::WRITE) && holds(to, c, Rights::READ))
                            || (holds(from, c, Rights::READ) && holds(to, c, Rights::WRITE))
                    }
                    ChannelKind::Notification { .. } => {
                        holds(from, c, Rights::WRITE) && holds(to, c, Rights::READ)
                    }
                    ChannelKind::SharedMemory { .. } => {
                        holds(from, c, Rights::WRITE)
                            && (holds(to, c, Rights::READ) || holds(to, c, Rights::WRITE))
                    }
                };
                *cell |= yes;
            }
        }
    }
    let mut both = |a: usize, b: usize| {
        if a < n && b < n {
            flow[a][b] = true;
            flow[b][a] = true;
        }
    };
    for (controller, targets) in others.controls.iter().enumerate() {
        for &target in targets {
            both(controller, target);
        }
    }
    for &(monitor, vm) in others.monitors {
        both(monitor, vm);
    }
    if let Some(reader) = others.log_reader.filter(|&r| r < n) {
        for row in &mut flow {
            row[reader] = true;
        }
    }
    flow
}
