// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Reading time: the `[schedule]` table (a major frame, and timelines of
//! windows for cores) and a partition's `budget`. Part of reading a manifest
//! (`system.rs`); whether the windows fill the frame, name partitions that
//! exist and run there, and are long enough for the platform is
//! `check/schedule.rs`'s business.

use crate::diag::{At, Place, Sink};
use crate::read::{FieldAt, TableReader};
use crate::time::{self, Duration};

/// `[schedule]`.
#[derive(Debug)]
pub(crate) struct ScheduleDecl {
    /// The table.
    pub(crate) place: Place,
    /// `major-frame`.
    pub(crate) major_frame: Option<At<Duration>>,
    /// `[[schedule.timeline]]`, in file order.
    pub(crate) timelines: Vec<TimelineDecl>,
    /// Whether every timeline was read without error: when one was not,
    /// checks of what every core must have stay quiet.
    pub(crate) complete: bool,
}

/// One `[[schedule.timeline]]`: windows for one or more cores.
#[derive(Debug)]
pub(crate) struct TimelineDecl {
    /// The table.
    pub(crate) place: Place,
    /// `cores`: each core with its place.
    pub(crate) cores: Vec<At<u8>>,
    /// `windows`, in order, and the array's place.
    pub(crate) windows: Vec<WindowDecl>,
    /// The `windows` array.
    pub(crate) windows_place: Place,
}

/// One window of a timeline.
#[derive(Debug)]
pub(crate) struct WindowDecl {
    /// `length`.
    pub(crate) length: At<Duration>,
    /// Who runs in it.
    pub(crate) owners: OwnersDecl,
}

/// Who runs in a window.
#[derive(Debug)]
pub(crate) enum OwnersDecl {
    /// `partitions = [...]`: these partitions, by priority.
    Partitions(Vec<At<String>>),
    /// `background = true`: any partition with a vCPU on the core.
    Background,
}

/// A partition's `budget`: one for every vCPU, or one per vCPU.
#[derive(Debug)]
pub(crate) enum BudgetsDecl {
    /// `budget = { time = "2ms", period = "10ms" }`: each vCPU has this
    /// budget.
    Every(BudgetDecl),
    /// `budget = [{ .. }, { .. }]`: entry `n` is vCPU `n`'s budget (`None`
    /// where it could not be read).
    PerVcpu {
        /// The array.
        place: Place,
        /// The budgets, in vCPU order.
        budgets: Vec<Option<BudgetDecl>>,
    },
}

/// One budget: `{ time = "2ms", period = "10ms" }`.
#[derive(Debug)]
pub(crate) struct BudgetDecl {
    /// The inline table.
    pub(crate) place: Place,
    /// `time`: how long each vCPU may run per period.
    pub(crate) time: At<Duration>,
    /// `period`.
    pub(crate) period: At<Duration>,
}

/// What `[schedule]` takes.
const SCHEDULE_KEYS: [&str; 2] = ["major-frame", "timeline"];
/// What a timeline takes.
const TIMELINE_KEYS: [&str; 2] = ["cores", "windows"];
/// What a window takes.
const WINDOW_KEYS: [&str; 3] = ["length", "partitions", "background"];

/// Reads `[schedule]`.
pub(crate) fn read_schedule(field: &FieldAt<'_, '_>, sink: &mut Sink<'_>) -> Option<ScheduleDecl> {
    let help = "write `[schedule]` with `major-frame = \"<duration>\"` and a \
                `[[schedule.timeline]]` table for each set of cores";
    let errors = sink.count();
    let mut table = field.table(sink, "the `[schedule]` table", help)?;
    let major_frame = table
        .require(
            sink,
            "major-frame",
            "add `major-frame = \"<duration>\"`, e.g. `major-frame = \"10ms\"`: every core's \
             windows repeat after it",
        )
        .and_then(|field| time::read(&field, sink, "major frame"));
    let timeline_help = "declare each timeline as a `[[schedule.timeline]]` table with `cores` \
                         and `windows`";
    let mut timelines = Vec::new();
    if let Some(field) = table.require(sink, "timeline", timeline_help) {
        for item in field.array(sink, timeline_help).unwrap_or_default() {
            if let Some(reader) = item.table(sink, "a timeline", timeline_help)
                && let Some(timeline) = read_timeline(reader, sink)
            {
                timelines.push(timeline);
            }
        }
    }
    let place = table.place.clone();
    table.finish(sink, &SCHEDULE_KEYS);
    Some(ScheduleDecl {
        place,
        major_frame,
        timelines,
        complete: sink.count() == errors,
    })
}

/// Reads one `[[schedule.timeline]]`.
fn read_timeline(mut table: TableReader<'_, '_>, sink: &mut Sink<'_>) -> Option<TimelineDecl> {
    let cores_help = "list the cores that run these windows, e.g. `cores = [0]`, or \
                      `cores = [1, 2]` for the same windows on both, aligned";
    let cores = table
        .require(sink, "cores", cores_help)
        .and_then(|field| field.array(sink, cores_help))
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.integer_in(sink, 0..=255, "core", cores_help))
                .filter_map(|core| Some(At::new(u8::try_from(core.value).ok()?, core.place)))
                .collect::<Vec<_>>()
        });
    let windows_help = "list the windows in the order they run, e.g. \
                        `windows = [{ length = \"2ms\", partitions = [\"control\"] }, \
                        { length = \"8ms\", background = true }]`";
    let windows_field = table.require(sink, "windows", windows_help);
    let windows_place = windows_field
        .as_ref()
        .map_or_else(|| table.place.clone(), |field| field.place.clone());
    let items = windows_field.and_then(|field| field.array(sink, windows_help));
    if items.as_ref().is_some_and(Vec::is_empty) {
        sink.error(&windows_place, "a timeline with no windows", windows_help);
    }
    let windows = items.filter(|items| !items.is_empty()).map(|items| {
        items
            .iter()
            .filter_map(|item| {
                let reader = item.table(sink, "a window", windows_help)?;
                read_window(reader, sink)
            })
            .collect::<Vec<_>>()
    });
    let place = table.place.clone();
    table.finish(sink, &TIMELINE_KEYS);
    Some(TimelineDecl {
        place,
        cores: cores?,
        windows: windows?,
        windows_place,
    })
}

/// Reads one window: `{ length = "2ms", partitions = ["a", "b"] }` or
/// `{ length = "5ms", background = true }`.
fn read_window(mut table: TableReader<'_, '_>, sink: &mut Sink<'_>) -> Option<WindowDecl> {
    let length = table
        .require(
            sink,
            "length",
            "add `length = \"<duration>\"`, e.g. `length = \"2ms\"`",
        )
        .and_then(|field| time::read(&field, sink, "window length"));
    let partitions_help = "name the partitions that run in it, e.g. `partitions = [\"control\"]`";
    let partitions = table.get("partitions").map(|field| {
        field
            .array(sink, partitions_help)
            .unwrap_or_default()
            .iter()
            .filter_map(|item| item.string(sink, partitions_help))
            .collect::<Vec<_>>()
    });
    let background = table.get("background").and_then(|field| {
        let value = field.boolean(sink, "write `background = true`")?;
        if !value.value {
            sink.error(
                &value.place,
                "`background = false` says nothing",
                "leave it out, and name the window's partitions with `partitions`",
            );
            return None;
        }
        Some(value)
    });
    let place = table.place.clone();
    table.finish(sink, &WINDOW_KEYS);
    let owners = match (partitions, background) {
        (Some(_), Some(background)) => {
            sink.error(
                &background.place,
                "a window is either its partitions' or a background window, not both",
                "drop `background`, or drop `partitions` to let any partition on the core run",
            );
            return None;
        }
        (Some(partitions), None) => {
            if partitions.is_empty() {
                sink.error(
                    &place,
                    "a window with no partitions",
                    format!("{partitions_help}, or write `background = true` to let any partition on the core run"),
                );
                return None;
            }
            OwnersDecl::Partitions(partitions)
        }
        (None, Some(_)) => OwnersDecl::Background,
        (None, None) => {
            sink.error(
                &place,
                "a window needs `partitions` or `background = true`",
                format!(
                    "{partitions_help}, or write `background = true` to let any partition on \
                     the core run"
                ),
            );
            return None;
        }
    };
    Some(WindowDecl {
        length: length?,
        owners,
    })
}

/// Reads a partition's `budget`: a table for every vCPU, or an array of
/// tables, one per vCPU.
pub(crate) fn read_budgets(field: &FieldAt<'_, '_>, sink: &mut Sink<'_>) -> Option<BudgetsDecl> {
    if matches!(field.value.get_ref(), toml::de::DeValue::Array(_)) {
        let items = field.array(sink, "")?;
        let budgets = items.iter().map(|item| read_budget(item, sink)).collect();
        return Some(BudgetsDecl::PerVcpu {
            place: field.place.clone(),
            budgets,
        });
    }
    read_budget(field, sink).map(BudgetsDecl::Every)
}

/// Reads one budget, `{ time = "2ms", period = "10ms" }`.
fn read_budget(field: &FieldAt<'_, '_>, sink: &mut Sink<'_>) -> Option<BudgetDecl> {
    let help = "write `budget = { time = \"<duration>\", period = \"<duration>\" }`: each vCPU \
                runs at most `time` in every `period` (or an array of such tables, one per vCPU)";
    let mut table = field.table(sink, "the `budget` table", help)?;
    let time = table
        .require(sink, "time", help)
        .and_then(|field| time::read(&field, sink, "budget time"));
    let period = table
        .require(sink, "period", help)
        .and_then(|field| time::read(&field, sink, "budget period"));
    let place = table.place.clone();
    table.finish(sink, &["time", "period"]);
    Some(BudgetDecl {
        place,
        time: time?,
        period: period?,
    })
}
