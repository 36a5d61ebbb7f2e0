// SPDX-License-Identifier: Apache-2.0 OR MIT
//! monitor: a health monitor that the manifest configures. It watches every
//! partition its manifest entry `controls` (the manifest gives it a
//! capability over each), looks at their status when the kernel tells it one
//! stopped or restarts (with a `fault-notification` in its manifest entry)
//! or else every `poll`, and restarts each one it finds stopped, `restarts`
//! times (within `within`, if given); after that it leaves it stopped. A partition with fault policy `stop`
//! under such a monitor comes back or not as the monitor decides, not the
//! kernel. A virtual machine's monitor (`vmm`) is a partition like any other:
//! restarted, it boots its guest afresh.
//!
//! ```toml
//! [partitions.health]
//! program = "monitor"
//! memory = "64K"
//! priority = 1
//! controls = ["crasher", "linux-vmm"]
//! fault-notification = "health"     # a notification channel it waits on
//! settings = { restarts = 3, within = "10s" }
//! ```
//!
//! Settings (`settings.rs`): `restarts` (default 3; 0: it only reports),
//! `within` (a duration, default `"forever"`: restarts count in total),
//! `poll` (a duration, default `"10ms"`; only without a fault notification),
//! `stop-first` (partitions it stops when it starts and leaves stopped,
//! separated by commas).
//!
//! Lines it prints, one per event:
//! - `watching a, b: up to 3 restarts each, looking every 10 ms, counter at
//!   62500000 Hz` (or `.. each within 10 s ..`, or `reporting stops,
//!   restarting nothing`, and `told of stops by the kernel` instead of
//!   `looking every ..` with a fault notification; the counter's frequency
//!   turns durations into ticks);
//! - ``stopping `b` first``, then `` `b` is stopped (reason 0x2nn: by this
//!   partition), after N faults``, for each `stop-first` partition;
//! - `` `a` stopped (fault N, reason 0x..); restarting it (k of n)`` (`k of n
//!   within 10 s` with `within`);
//! - `` `a` stopped again (fault N, reason 0x..); n restarts were enough: it
//!   stays stopped`` (`n restarts within 10 s` with `within`), or, with
//!   `restarts = 0`, `` `a` stopped (..); it stays stopped: restarts = 0,
//!   this monitor only reports``;
//! - `monitor: done: everything it watches stays stopped`, once nothing it
//!   watches runs any more.
//!
//! **Waiting and priority.** With a fault notification it waits there, and
//! the kernel wakes it in the step that stops or restarts a partition it
//! controls (every stop and restart is signalled, its own requests
//! excepted: `docs/manifest.md`, *Control*), so it reacts at once and takes
//! no time while nothing happens; it may then have any priority. Without
//! one (the poll, the fallback): services have no timer to sleep on, so
//! between looks it yields the processor until the counter says `poll` has
//! passed.
//! A yield gives the core to a ready vCPU of the same or a higher priority
//! only: anything of lower priority on its cores never runs while it waits.
//! So give it the lowest priority of its cores (`priority = 1`, say): it
//! then looks in the time nobody else wants, and a partition that stopped
//! has left its core free for it. Give it a partition's priority only if it
//! must stop or restart that one while it spins (as `tests/qemu/control.toml`
//! does to stop `spin`), and then nothing below it on those cores runs.
//! `poll` bounds how often it takes the kernel's lock to read a status, not
//! how much time it takes.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

mod settings;

use core::fmt;

use svc_rt::call::{self, PartitionStatus};
use svc_rt::hypercall::{CapSlot, RunState, Status, controller_of};

use settings::{
    CONTROLLED, FAULT_NOTIFICATION, MAX_WATCHED, POLL, REMEMBERED, RESTARTS, STOP_FIRST, WITHIN,
};

svc_rt::entry!(main);

/// How long it waits, once nothing it watches runs any more, before it says
/// it is done: the kernel reports the last stop from the core the partition
/// ran on, and that line should come first.
const SETTLE: u64 = 100_000_000;

/// What the monitor knows of a partition it watches.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// Running or restarting, as far as it knows.
    Running,
    /// Stopped, and dealt with (restarted no more, or stopped by this
    /// monitor): left alone until it runs again.
    Settled,
    /// Its status cannot be read or it cannot be restarted: no longer
    /// watched.
    Lost,
}

/// A partition it watches.
struct Watch {
    name: &'static str,
    slot: CapSlot,
    /// Its bits on [`FAULT_NOTIFICATION`].
    bits: u64,
    seen: Seen,
    /// Restarts by this monitor, in total.
    restarts: u64,
    /// When the last [`REMEMBERED`] of them were (counter ticks), a ring
    /// indexed by `restarts`.
    times: [u64; REMEMBERED],
}

/// Counter ticks in `nanoseconds`, at the counter's frequency.
fn ticks(nanoseconds: u64) -> u64 {
    let hz = svc_rt::counter_frequency();
    let ticks = u128::from(nanoseconds) * u128::from(hz) / 1_000_000_000;
    u64::try_from(ticks).unwrap_or(u64::MAX)
}

fn main(start: svc_rt::Start) -> ! {
    let mut watched: [Option<Watch>; MAX_WATCHED] = CONTROLLED.map(|c| {
        c.map(|c| Watch {
            name: c.name,
            slot: c.slot,
            bits: c.bits,
            seen: Seen::Running,
            restarts: 0,
            times: [0; REMEMBERED],
        })
    });
    for name in STOP_FIRST.split(',').map(str::trim) {
        let found = settings::controlled(name).and_then(|i| watched.get_mut(i)?.as_mut());
        if let Some(watch) = found {
            stop(watch, start.partition);
        }
    }
    svc_rt::println!(
        "watching {}: {}, counter at {} Hz",
        Names(&watched),
        Budget,
        svc_rt::counter_frequency()
    );
    let poll = ticks(POLL).max(1);
    let within = WITHIN.map(ticks);
    let mut said_done = false;
    let mut next = svc_rt::counter();
    // What the kernel said changed (every partition, the first time).
    let mut changed = u64::MAX;
    let mut faults = FAULT_NOTIFICATION;
    loop {
        for watch in watched.iter_mut().flatten() {
            if watch.bits == 0 || changed & watch.bits != 0 {
                look(watch, within);
            }
        }
        let running = watched.iter().flatten().any(|w| w.seen == Seen::Running);
        if running {
            said_done = false;
        } else if !said_done {
            wait_until(svc_rt::counter().wrapping_add(ticks(SETTLE)));
            svc_rt::println!("monitor: done: everything it watches stays stopped");
            said_done = true;
        }
        if let Some(notification) = faults {
            match call::wait(notification) {
                Ok(bits) => {
                    changed = bits;
                    continue;
                }
                Err(status) => {
                    svc_rt::println!(
                        "cannot wait on its fault notification: {status}; looking every {} instead",
                        Duration(POLL)
                    );
                    faults = None;
                }
            }
        }
        changed = u64::MAX;
        next = next.wrapping_add(poll);
        let now = svc_rt::counter();
        // Late (it did not run for a while): look again at once, and keep
        // to the pace from now on.
        if later(now, next) {
            next = now;
        }
        wait_until(next);
    }
}

/// Whether counter value `a` is later than `b`.
fn later(a: u64, b: u64) -> bool {
    a.wrapping_sub(b).cast_signed() > 0
}

/// Yields the processor until the counter reaches `deadline`.
fn wait_until(deadline: u64) {
    while later(deadline, svc_rt::counter()) {
        call::yield_now();
    }
}

/// Looks at one partition and, if it stopped, restarts it or gives up on it.
fn look(watch: &mut Watch, within: Option<u64>) {
    if watch.seen == Seen::Lost {
        return;
    }
    let status = match call::partition_status(watch.slot) {
        Ok(status) => status,
        Err(status) => {
            svc_rt::println!(
                "cannot read `{}`'s status: {status}; no longer watching it",
                watch.name
            );
            watch.seen = Seen::Lost;
            return;
        }
    };
    match (status.state, watch.seen) {
        (RunState::Stopped, Seen::Running) => stopped(watch, &status, within),
        (RunState::Stopped, _) => {}
        (_, _) => watch.seen = Seen::Running,
    }
}

/// `watch` was found stopped: restart it if its budget allows.
fn stopped(watch: &mut Watch, status: &PartitionStatus, within: Option<u64>) {
    let (name, faults, reason) = (watch.name, status.faults, status.last_reason);
    if RESTARTS == 0 {
        svc_rt::println!(
            "`{name}` stopped (fault {faults}, reason {reason:#x}); it stays stopped: restarts = \
             0, this monitor only reports"
        );
        watch.seen = Seen::Settled;
        return;
    }
    let now = svc_rt::counter();
    let used = match within {
        None => watch.restarts,
        Some(window) => watch
            .times
            .iter()
            .take(usize::try_from(watch.restarts).unwrap_or(usize::MAX))
            .filter(|&&at| now.wrapping_sub(at) < window)
            .count() as u64,
    };
    if RESTARTS.checked_sub(used).is_none_or(|left| left == 0) {
        svc_rt::println!(
            "`{name}` stopped again (fault {faults}, reason {reason:#x}); {RESTARTS} restarts{} \
             were enough: it stays stopped",
            Window
        );
        watch.seen = Seen::Settled;
        return;
    }
    svc_rt::println!(
        "`{name}` stopped (fault {faults}, reason {reason:#x}); restarting it ({} of \
         {RESTARTS}{})",
        used + 1,
        Window
    );
    match call::partition_restart(watch.slot) {
        Ok(()) => {
            let ring = watch.times.len() as u64;
            if let Some(time) = watch
                .restarts
                .checked_rem(ring)
                .and_then(|at| watch.times.get_mut(at as usize))
            {
                *time = now;
            }
            watch.restarts += 1;
            watch.seen = Seen::Running;
        }
        // Another controller is restarting it: it runs again.
        Err(Status::Busy) => watch.seen = Seen::Running,
        Err(status) => {
            svc_rt::println!("cannot restart `{name}`: {status}; no longer watching it");
            watch.seen = Seen::Lost;
        }
    }
}

/// Stops the partition behind `watch` (`stop-first`) and says what its
/// status shows then; `me` is this partition's index.
fn stop(watch: &mut Watch, me: u64) {
    let name = watch.name;
    svc_rt::println!("stopping `{name}` first");
    if let Err(status) = call::partition_stop(watch.slot) {
        svc_rt::println!("cannot stop `{name}`: {status}");
        return;
    }
    watch.seen = Seen::Settled;
    match call::partition_status(watch.slot) {
        Ok(status) => {
            let by = match controller_of(status.last_reason) {
                Some(p) if p == me => "by this partition",
                Some(_) => "by another partition",
                None => "not by a controller",
            };
            svc_rt::println!(
                "`{name}` is {} (reason {:#x}: {by}), after {} faults",
                status.state,
                status.last_reason,
                status.faults
            );
        }
        Err(status) => svc_rt::println!("cannot read `{name}`'s status: {status}"),
    }
}

/// The names of the partitions watched: `a, b, c`.
struct Names<'a>(&'a [Option<Watch>]);

impl fmt::Display for Names<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, watch) in self.0.iter().flatten().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(watch.name)?;
        }
        Ok(())
    }
}

/// The settings, as the first line says them.
struct Budget;

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if RESTARTS == 0 {
            f.write_str("reporting stops, restarting nothing")?;
        } else {
            write!(f, "up to {RESTARTS} restarts each{Window}")?;
        }
        match FAULT_NOTIFICATION {
            Some(_) => f.write_str(", told of stops by the kernel"),
            None => write!(f, ", looking every {}", Duration(POLL)),
        }
    }
}

/// ` within 10 s`, if `within` is given.
struct Window;

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match WITHIN {
            Some(window) => write!(f, " within {}", Duration(window)),
            None => Ok(()),
        }
    }
}

/// A duration in nanoseconds, in the largest unit that says it exactly.
struct Duration(u64);

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let units = [(1_000_000_000, "s"), (1_000_000, "ms"), (1_000, "us")];
        match units
            .iter()
            .find(|(scale, _)| self.0.is_multiple_of(*scale))
        {
            Some((scale, unit)) if self.0 > 0 => write!(f, "{} {unit}", self.0 / scale),
            _ => write!(f, "{} ns", self.0),
        }
    }
}
