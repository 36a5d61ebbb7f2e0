// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Time in the compiled manifest: the cyclic schedule (a major frame of
//! windows on every core) and the budgets of vCPUs, and the rules the kernel
//! re-checks before it trusts them.
//!
//! A [`ScheduleSpec`] gives each core a list of [`Window`]s that together
//! last exactly the major frame, in microseconds: entry `n` of
//! [`ScheduleSpec::cores`] is how many windows core `n` has, and all cores'
//! windows are one table, core 0's first ([`ScheduleSpec::windows_of`]). A window is owned by a set of partitions (a
//! bitmask: bit `p` is partition `p`; priorities decide among their vCPUs
//! on that core, as without a schedule) or is a background window, in which
//! every vCPU pinned to the core may run by priority. The frame repeats
//! forever from the moment the kernel starts it, on every core at once, so
//! windows that start at the same offset on two cores are aligned.
//!
//! A [`BudgetSpec`] limits one vCPU to `budget_us` of running in every
//! `period_us`: spent, it waits for its next period. Budgets apply with or
//! without a schedule (inside a window they cap the owner's high-priority
//! vCPUs).
//!
//! The manifest compiler (`tools/manifest`) proves more than is checked
//! here (windows no shorter than the platform's minimum, a multi-vCPU
//! partition's windows aligned across its cores); what is here is what the
//! kernel needs to be true to run the tables at all: every number in range,
//! every core's windows filling the frame exactly, every owner a partition
//! that may run on that core, and every partition time on each core it may
//! run on. Nothing here decides which window runs when: that is the
//! scheduler's, in `hv-core`, where its host tests see it.

use core::fmt;

use heapless::Vec;
use serde::{Deserialize, Serialize};

use crate::manifest::{MAX_PARTITIONS, PartitionSpec};
use crate::validate::index;

/// Cores a schedule describes: as many as a partition's core mask names
/// ([`PartitionSpec::cores`] is a `u8`).
pub const MAX_CORES: usize = 8;
/// Windows in a schedule, all cores together.
pub const MAX_WINDOWS: usize = 64;
/// The longest major frame and the longest budget period, in microseconds:
/// ten seconds.
pub const MAX_FRAME_US: u32 = 10_000_000;

// A window's owners are a `u16` bitmask of partitions.
const _: () = assert!(MAX_PARTITIONS <= 16);

/// The cyclic schedule of a system: one major frame of windows per core.
///
/// The windows of all cores are one table, core after core, so that the
/// kernel's copy is small: core `n`'s are the `cores[n]` entries after
/// those of cores `0..n` ([`ScheduleSpec::windows_of`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleSpec {
    /// The major frame in microseconds: every core's windows last exactly
    /// this long, and then start again.
    pub major_frame_us: u32,
    /// Entry `n` is how many windows core `n` has; not zero. Every core a
    /// partition may run on has an entry.
    pub cores: Vec<u8, MAX_CORES>,
    /// Every core's windows, in the order they run, core after core.
    pub windows: Vec<Window, MAX_WINDOWS>,
}

/// A time window on one core.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Window {
    /// How long it lasts, in microseconds; not zero.
    pub length_us: u32,
    /// Who may run in it.
    pub owners: Owners,
}

/// Who may run in a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Owners {
    /// These partitions (bit `p` is partition `p`; not zero), by priority
    /// among their vCPUs on the core.
    Partitions(u16),
    /// Any vCPU pinned to the core, by priority.
    Background,
}

impl Owners {
    /// Whether the window is partition `partition`'s: named in it (every
    /// partition may run in a background window, but none owns it).
    #[must_use]
    pub const fn names(self, partition: usize) -> bool {
        match self {
            Self::Partitions(mask) => partition < 16 && mask & (1 << partition) != 0,
            Self::Background => false,
        }
    }
}

/// A budget: one vCPU runs at most `budget_us` in every `period_us`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BudgetSpec {
    /// The partition.
    pub partition: u16,
    /// The vCPU's index in it.
    pub vcpu: u8,
    /// Microseconds it may run in each period; not zero, at most the period.
    pub budget_us: u32,
    /// The period in microseconds; at most [`MAX_FRAME_US`].
    pub period_us: u32,
}

impl ScheduleSpec {
    /// Core `core`'s windows, in the order they run; `None` for a core the
    /// schedule does not describe, or if the counts overrun the table.
    #[must_use]
    pub fn windows_of(&self, core: usize) -> Option<&[Window]> {
        let before: usize = self.cores.iter().take(core).map(|&n| usize::from(n)).sum();
        let count = usize::from(*self.cores.get(core)?);
        self.windows.get(before..before.checked_add(count)?)
    }

    /// Checks the schedule against `partitions` (see the module docs).
    pub(crate) fn validate(&self, partitions: &[PartitionSpec]) -> Result<(), ScheduleProblem> {
        if self.major_frame_us == 0 || self.major_frame_us > MAX_FRAME_US {
            return Err(ScheduleProblem::MajorFrame);
        }
        if self.cores.is_empty() {
            return Err(ScheduleProblem::NoCores);
        }
        let known = u32::try_from(partitions.len())
            .ok()
            .and_then(|n| 1u32.checked_shl(n))
            .map_or(u16::MAX, |bit| u16::try_from(bit - 1).unwrap_or(u16::MAX));
        let counted: usize = self.cores.iter().map(|&n| usize::from(n)).sum();
        if counted != self.windows.len() {
            return Err(ScheduleProblem::WindowCount);
        }
        for c in 0..self.cores.len() {
            let core_index = index8(c);
            let windows = self.windows_of(c).unwrap_or_default();
            if windows.is_empty() {
                return Err(ScheduleProblem::Fill { core: core_index });
            }
            let mut total: u32 = 0;
            for (w, window) in windows.iter().enumerate() {
                let at = (core_index, index8(w));
                if window.length_us == 0 {
                    return Err(ScheduleProblem::EmptyWindow {
                        core: at.0,
                        window: at.1,
                    });
                }
                total = total
                    .checked_add(window.length_us)
                    .ok_or(ScheduleProblem::Fill { core: core_index })?;
                if let Owners::Partitions(mask) = window.owners {
                    if mask == 0 || mask & !known != 0 {
                        return Err(ScheduleProblem::Owners {
                            core: at.0,
                            window: at.1,
                        });
                    }
                    let off_core = partitions
                        .iter()
                        .enumerate()
                        .find(|(p, spec)| window.owners.names(*p) && spec.cores & (1 << c) == 0);
                    if let Some((p, _)) = off_core {
                        return Err(ScheduleProblem::OffCore {
                            core: at.0,
                            window: at.1,
                            partition: index(p),
                        });
                    }
                }
            }
            if total != self.major_frame_us {
                return Err(ScheduleProblem::Fill { core: core_index });
            }
        }
        for (p, spec) in partitions.iter().enumerate() {
            for c in (0..MAX_CORES).filter(|c| spec.cores & (1 << c) != 0) {
                let owns = self
                    .windows_of(c)
                    .is_some_and(|windows| windows.iter().any(|w| w.owners.names(p)));
                if !owns {
                    return Err(ScheduleProblem::NoTime {
                        partition: index(p),
                        core: index8(c),
                    });
                }
            }
        }
        Ok(())
    }
}

/// Checks budgets against `partitions`: each names a vCPU that exists, once,
/// with a budget that is not zero and fits its period.
pub(crate) fn validate_budgets(
    budgets: &[BudgetSpec],
    partitions: &[PartitionSpec],
) -> Result<(), (u16, BudgetProblem)> {
    for (b, budget) in budgets.iter().enumerate() {
        let at = |problem| (index(b), problem);
        let exists = partitions
            .get(usize::from(budget.partition))
            .is_some_and(|p| budget.vcpu < p.vcpus);
        if !exists {
            return Err(at(BudgetProblem::UnknownVcpu));
        }
        if budgets
            .iter()
            .take(b)
            .any(|o| o.partition == budget.partition && o.vcpu == budget.vcpu)
        {
            return Err(at(BudgetProblem::Duplicate));
        }
        if budget.period_us == 0 || budget.period_us > MAX_FRAME_US {
            return Err(at(BudgetProblem::Period));
        }
        if budget.budget_us == 0 || budget.budget_us > budget.period_us {
            return Err(at(BudgetProblem::Budget));
        }
    }
    Ok(())
}

/// A table index as a `u8` (schedules hold at most 8 cores of 32 windows).
fn index8(i: usize) -> u8 {
    u8::try_from(i).unwrap_or(u8::MAX)
}

/// What is wrong with a schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScheduleProblem {
    /// The major frame is zero or longer than [`MAX_FRAME_US`].
    MajorFrame,
    /// No core has windows.
    NoCores,
    /// The cores' window counts do not add up to the window table's length.
    WindowCount,
    /// A window lasts no time.
    EmptyWindow {
        /// The core.
        core: u8,
        /// The window's index.
        window: u8,
    },
    /// A core has no windows, or they do not add up to the major frame.
    Fill {
        /// The core.
        core: u8,
    },
    /// A window's owners are none, or not all partitions.
    Owners {
        /// The core.
        core: u8,
        /// The window's index.
        window: u8,
    },
    /// A window names a partition that may not run on its core.
    OffCore {
        /// The core.
        core: u8,
        /// The window's index.
        window: u8,
        /// The partition.
        partition: u16,
    },
    /// A partition may run on a core where no window names it.
    NoTime {
        /// The partition.
        partition: u16,
        /// The core.
        core: u8,
    },
}

impl fmt::Display for ScheduleProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::MajorFrame => write!(
                f,
                "the major frame is zero or longer than {MAX_FRAME_US} microseconds"
            ),
            Self::NoCores => f.write_str("no core has windows"),
            Self::WindowCount => {
                f.write_str("the cores' window counts do not add up to the window table")
            }
            Self::EmptyWindow { core, window } => {
                write!(f, "core {core} window {window}: it lasts no time")
            }
            Self::Fill { core } => {
                write!(
                    f,
                    "core {core}: no windows, or they do not add up to the major frame"
                )
            }
            Self::Owners { core, window } => write!(
                f,
                "core {core} window {window}: it names no partition, or one that does not exist"
            ),
            Self::OffCore {
                core,
                window,
                partition,
            } => write!(
                f,
                "core {core} window {window}: partition {partition} may not run on this core"
            ),
            Self::NoTime { partition, core } => write!(
                f,
                "partition {partition} may run on core {core} but no window there names it"
            ),
        }
    }
}

/// What is wrong with a budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BudgetProblem {
    /// It names a partition or vCPU that does not exist.
    UnknownVcpu,
    /// An earlier budget names the same vCPU.
    Duplicate,
    /// The period is zero or longer than [`MAX_FRAME_US`].
    Period,
    /// The budget is zero or longer than its period.
    Budget,
}

impl fmt::Display for BudgetProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownVcpu => f.write_str("names a vCPU that does not exist"),
            Self::Duplicate => f.write_str("an earlier budget names the same vCPU"),
            Self::Period => write!(
                f,
                "the period is zero or longer than {MAX_FRAME_US} microseconds"
            ),
            Self::Budget => f.write_str("the budget is zero or longer than its period"),
        }
    }
}

#[cfg(test)]
mod tests;
