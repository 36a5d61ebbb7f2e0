// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Proving the schedule and the budgets.
//!
//! A schedule is good when: the platform says how short a window may be
//! (`[schedule] min-window` in its `platform.toml`); the major frame is
//! between that and [`MAX_FRAME_US`]; every core of the platform has exactly
//! one timeline; every window is at least the platform's shortest, and names
//! partitions that exist, once each, and run on every core of its timeline;
//! each core's windows add up to the major frame exactly; every partition
//! has a window naming it on each core it may run on (background windows do
//! not count: nothing guarantees it time there); a partition with more than
//! one vCPU has its windows at the same times on each of its cores, so its
//! vCPUs run together (a guest whose vCPUs take turns spins on locks its
//! other vCPU holds); and the whole table fits [`MAX_WINDOWS`].
//!
//! A budget is good when its time is not longer than its period, both are
//! at least the platform's shortest window, and the period at most
//! [`MAX_FRAME_US`].

use hv_image::{MAX_FRAME_US, MAX_WINDOWS};

use crate::channels::resolve_partition;
use crate::diag::{At, Place, Sink};
use crate::model::{Budget, Schedule, Window};
use crate::platform::Platform;
use crate::system::{BudgetDecl, BudgetsDecl, OwnersDecl, PartitionDecl, ScheduleDecl, SystemDecl};
use crate::time::{Duration, human};

/// Where the platform's shortest window is to be written, for hints.
fn min_window_help(platform: &Platform) -> String {
    format!(
        "add `[schedule]` with `min-window = \"<duration>\"` to {}: the shortest window the \
         board can switch with little loss (docs/manifest.md, The platform description)",
        platform.file
    )
}

/// The platform's shortest window, or an error at `place` saying it is
/// missing.
fn min_window(platform: &Platform, place: &Place, what: &str, sink: &mut Sink<'_>) -> Option<u64> {
    if platform.min_window_us.is_none() {
        sink.error(
            place,
            format!(
                "{what} needs the platform's shortest window, and {} does not give one",
                platform.name
            ),
            min_window_help(platform),
        );
    }
    platform.min_window_us
}

/// Checks a duration is at least the platform's shortest window.
fn at_least(
    duration: &At<Duration>,
    min: Option<u64>,
    what: &str,
    platform: &Platform,
    sink: &mut Sink<'_>,
) -> bool {
    let Some(min) = min else { return true };
    if duration.value.us >= min {
        return true;
    }
    sink.error(
        &duration.place,
        format!(
            "{what} `{}` is shorter than {}'s shortest window, {}",
            duration.value.written,
            platform.name,
            human(min)
        ),
        format!(
            "make it at least {}: a shorter one would be lost to switching ({}, \
             `[schedule] min-window`)",
            human(min),
            platform.file
        ),
    );
    false
}

/// Checks `[schedule]`; `cores` holds each partition's core mask, where it
/// could be read. Returns the checked schedule only if nothing is wrong.
pub(crate) fn check_schedule(
    decl: &SystemDecl,
    schedule: &ScheduleDecl,
    names: &[&str],
    cores: &[Option<u8>],
    platform: &Platform,
    sink: &mut Sink<'_>,
) -> Option<Schedule> {
    let errors = sink.count();
    let min = min_window(platform, &schedule.place, "a schedule", sink);
    let frame = schedule.major_frame.as_ref().filter(|frame| {
        if frame.value.us > u64::from(MAX_FRAME_US) {
            sink.error(
                &frame.place,
                format!(
                    "major frame `{}` is longer than {}",
                    frame.value.written,
                    human(u64::from(MAX_FRAME_US))
                ),
                "a major frame is at most ten seconds; most are tens of milliseconds",
            );
            return false;
        }
        if frame.value.us == 0 {
            sink.error(
                &frame.place,
                "the major frame lasts no time",
                "give it a length, e.g. `major-frame = \"10ms\"`",
            );
            return false;
        }
        at_least(frame, min, "major frame", platform, sink)
    });
    // Each core's timeline: its windows, and the place of its core number.
    let core_count = usize::from(platform.cores);
    let mut per_core: Vec<Option<(Vec<Window>, Place)>> = vec![None; core_count];
    let mut total_windows = 0usize;
    for timeline in &schedule.timelines {
        if timeline.cores.is_empty() {
            sink.error(
                &timeline.place,
                "a timeline for no core",
                "list its cores, e.g. `cores = [0]`",
            );
        }
        let mut windows = Vec::new();
        let mut length: u64 = 0;
        for window in &timeline.windows {
            at_least(&window.length, min, "window", platform, sink);
            if min.is_none() && window.length.value.us == 0 {
                sink.error(
                    &window.length.place,
                    "the window lasts no time",
                    "give it a length, or leave it out",
                );
            }
            length = length.saturating_add(window.length.value.us);
            let owners = match &window.owners {
                OwnersDecl::Background => Vec::new(),
                OwnersDecl::Partitions(listed) => {
                    let mut owners: Vec<usize> = Vec::new();
                    for name in listed {
                        let Some(p) = resolve_partition(name, names, sink) else {
                            continue;
                        };
                        if owners.contains(&p) {
                            sink.error(
                                &name.place,
                                format!("partition `{}` is named twice in one window", name.value),
                                "name each partition once",
                            );
                            continue;
                        }
                        if let Some(mask) = cores.get(p).copied().flatten() {
                            let outside = timeline
                                .cores
                                .iter()
                                .filter(|core| core.value < 8 && mask & (1 << core.value) == 0)
                                .fold(0u8, |outside, core| outside | 1 << core.value);
                            if outside != 0 {
                                sink.error(
                                    &name.place,
                                    format!(
                                        "partition `{}` does not run on {}, which this timeline \
                                         is for",
                                        name.value,
                                        core_list(outside)
                                    ),
                                    format!(
                                        "add them to its `cores`, or name it only in the \
                                         timelines of the cores it runs on ({})",
                                        core_list(mask)
                                    ),
                                );
                            }
                        }
                        owners.push(p);
                    }
                    owners
                }
            };
            windows.push(Window {
                length_us: window.length.value.us,
                owners,
            });
        }
        if let Some(frame) = frame
            && schedule.complete
            && length != frame.value.us
        {
            let (difference, how) = if length < frame.value.us {
                (frame.value.us - length, "short of")
            } else {
                (length - frame.value.us, "longer than")
            };
            sink.error(
                &timeline.windows_place,
                format!(
                    "these windows last {}, {} {how} the major frame ({})",
                    human(length),
                    human(difference),
                    human(frame.value.us)
                ),
                "the windows of every core must fill the major frame exactly; give the rest \
                 to a window, e.g. `{ length = \"..\", background = true }`",
            );
        }
        for (position, core) in timeline.cores.iter().enumerate() {
            if timeline.cores[..position]
                .iter()
                .any(|c| c.value == core.value)
            {
                sink.error(
                    &core.place,
                    format!("core {} is listed twice", core.value),
                    "list each core once",
                );
                continue;
            }
            let Some(slot) = per_core.get_mut(usize::from(core.value)) else {
                sink.error(
                    &core.place,
                    format!(
                        "core {} does not exist: {} has {} cores",
                        core.value, platform.name, platform.cores
                    ),
                    format!("use cores 0 to {}", platform.cores - 1),
                );
                continue;
            };
            if slot.is_some() {
                sink.error(
                    &core.place,
                    format!("core {} already has a timeline", core.value),
                    "give each core one timeline",
                );
                continue;
            }
            total_windows += windows.len();
            *slot = Some((windows.clone(), core.place.clone()));
        }
    }
    if total_windows > MAX_WINDOWS {
        sink.error(
            &schedule.place,
            format!("{total_windows} windows, more than {MAX_WINDOWS}"),
            format!(
                "a schedule has at most {MAX_WINDOWS} windows on all cores together; merge some"
            ),
        );
    }
    if schedule.complete {
        for (core, timeline) in per_core.iter().enumerate() {
            if timeline.is_none() {
                sink.error(
                    &schedule.place,
                    format!("core {core} has no timeline"),
                    format!(
                        "add a `[[schedule.timeline]]` with `cores = [{core}]` (a core no \
                         partition runs on can have one background window as long as the \
                         major frame), or add {core} to another timeline's `cores`"
                    ),
                );
            }
        }
    }
    if schedule.complete {
        check_time_everywhere(decl, cores, &per_core, sink);
    }
    if sink.count() != errors || !schedule.complete {
        return None;
    }
    Some(Schedule {
        major_frame_us: frame?.value.us,
        min_window_us: min?,
        cores: per_core
            .into_iter()
            .map(|timeline| timeline.map(|(windows, _)| windows))
            .collect::<Option<Vec<_>>>()?,
    })
}

/// "0, 1 and 3": the cores of a mask.
fn core_list(mask: u8) -> String {
    let cores: Vec<String> = (0..8)
        .filter(|core| mask & (1 << core) != 0)
        .map(|core: u8| core.to_string())
        .collect();
    match cores.split_last() {
        None => "none".to_owned(),
        Some((last, [])) => format!("core {last}"),
        Some((last, rest)) => format!("cores {} and {last}", rest.join(", ")),
    }
}

/// The stretches of the major frame in which windows on one core name
/// partition `p`, adjacent ones merged: `(start, end)` in microseconds.
fn stretches(windows: &[Window], p: usize) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    let mut start = 0u64;
    for window in windows {
        let end = start.saturating_add(window.length_us);
        if window.owners.contains(&p) {
            match out.last_mut() {
                Some(last) if last.1 == start => last.1 = end,
                _ => out.push((start, end)),
            }
        }
        start = end;
    }
    out
}

/// "0 us..2 ms, 5 ms..6 ms".
fn show_stretches(stretches: &[(u64, u64)]) -> String {
    if stretches.is_empty() {
        return "none".to_owned();
    }
    stretches
        .iter()
        .map(|(start, end)| format!("{}..{}", human(*start), human(*end)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every partition has a window on each core it may run on, and one with
/// several vCPUs has its windows at the same times on all of them. Errors
/// are placed at the partition's `cores`, or its name when it has none.
fn check_time_everywhere(
    decl: &SystemDecl,
    cores: &[Option<u8>],
    per_core: &[Option<(Vec<Window>, Place)>],
    sink: &mut Sink<'_>,
) {
    for (p, (partition, mask)) in decl.partitions.iter().zip(cores).enumerate() {
        let Some(mask) = *mask else { continue };
        let place = partition
            .cores
            .as_ref()
            .map_or(&partition.name.place, |(_, place)| place);
        let mut first: Option<(usize, Vec<(u64, u64)>)> = None;
        let mut without = 0u8;
        for (core, timeline) in per_core.iter().enumerate() {
            if mask & (1 << core) == 0 {
                continue;
            }
            let Some((windows, _)) = timeline else {
                continue;
            };
            let mine = stretches(windows, p);
            if mine.is_empty() {
                without |= 1 << core;
                continue;
            }
            match &first {
                None => first = Some((core, mine)),
                Some((first_core, theirs)) => {
                    if partition.vcpus > 1 && *theirs != mine {
                        sink.error(
                            place,
                            format!(
                                "partition `{}` has {} vCPUs, but its windows on core {core} \
                                 ({}) are not at the times of those on core {first_core} ({})",
                                partition.name.value,
                                partition.vcpus,
                                show_stretches(&mine),
                                show_stretches(theirs)
                            ),
                            "give it windows at the same offsets on each of its cores (one \
                             timeline with all of them in its `cores` does it), so that its \
                             vCPUs run together",
                        );
                    }
                }
            }
        }
        if without != 0 {
            sink.error(
                place,
                format!(
                    "partition `{}` may run on {}, but no window there names it",
                    partition.name.value,
                    core_list(without)
                ),
                no_time_help(partition),
            );
        }
    }
}

/// The hint for a partition without time on some of its cores.
fn no_time_help(partition: &PartitionDecl) -> String {
    let cores = if partition.cores.is_some() {
        "take those cores out of its `cores`"
    } else {
        "give it `cores` (without, it may run on every core, so it needs time on every core)"
    };
    format!(
        "name it in a window of those cores' timelines, or {cores}: a background window does \
         not count, since nothing guarantees it time there"
    )
}

/// Checks a partition's `budget`: each vCPU's, in order (none if it has
/// none); `None` if anything is wrong.
pub(crate) fn check_budgets(
    partition: &PartitionDecl,
    platform: &Platform,
    sink: &mut Sink<'_>,
) -> Option<Vec<Budget>> {
    let vcpus = usize::from(partition.vcpus);
    match &partition.budget {
        None => Some(Vec::new()),
        Some(BudgetsDecl::Every(budget)) => {
            check_budget(budget, platform, sink).map(|budget| vec![budget; vcpus])
        }
        Some(BudgetsDecl::PerVcpu { place, budgets }) => {
            if budgets.len() != vcpus {
                sink.error(
                    place,
                    format!(
                        "{} for {}",
                        count(budgets.len(), "budget"),
                        count(vcpus, "vCPU")
                    ),
                    "give one budget per vCPU, in vCPU order, or one table for all of them: \
                     `budget = { time = \"..\", period = \"..\" }`",
                );
            }
            let checked: Vec<Option<Budget>> = budgets
                .iter()
                .map(|budget| check_budget(budget.as_ref()?, platform, sink))
                .collect();
            (budgets.len() == vcpus)
                .then(|| checked.into_iter().collect::<Option<Vec<_>>>())
                .flatten()
        }
    }
}

/// "1 budget", "2 vCPUs".
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Checks one budget.
fn check_budget(budget: &BudgetDecl, platform: &Platform, sink: &mut Sink<'_>) -> Option<Budget> {
    let errors = sink.count();
    let min = min_window(platform, &budget.place, "a budget", sink);
    at_least(&budget.time, min, "budget time", platform, sink);
    if at_least(&budget.period, min, "budget period", platform, sink)
        && budget.period.value.us > u64::from(MAX_FRAME_US)
    {
        sink.error(
            &budget.period.place,
            format!(
                "budget period `{}` is longer than {}",
                budget.period.value.written,
                human(u64::from(MAX_FRAME_US))
            ),
            "a period is at most ten seconds",
        );
    }
    if min.is_none() && budget.time.value.us == 0 {
        sink.error(
            &budget.time.place,
            "the budget lasts no time",
            "give it a length",
        );
    }
    if budget.time.value.us > budget.period.value.us {
        sink.error(
            &budget.time.place,
            format!(
                "budget time `{}` is longer than its period `{}`",
                budget.time.value.written, budget.period.value.written
            ),
            "a vCPU cannot run longer than its period in each period; shorten the time or \
             lengthen the period",
        );
    }
    (sink.count() == errors).then_some(Budget {
        time_us: budget.time.value.us,
        period_us: budget.period.value.us,
    })
}
