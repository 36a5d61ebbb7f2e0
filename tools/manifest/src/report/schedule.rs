// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The schedule in the report: each core's timeline (every window with its
//! start, length and who runs in it) and each partition's share of every
//! core, which is what `cargo xtask check` shows for a system with a
//! `[schedule]`.

use std::fmt::Write;

use super::table;
use crate::model::{Schedule, System};
use crate::time::{human, percent};

/// The schedule section, if the system has a schedule.
pub(super) fn schedule(out: &mut String, system: &System) {
    let Some(schedule) = &system.schedule else {
        return;
    };
    let frame = schedule.major_frame_us;
    let _ = writeln!(
        out,
        "\nschedule: major frame {} on every core, all cores starting it together; shortest \
         window on {}: {}",
        human(frame),
        system.platform.name,
        human(schedule.min_window_us)
    );
    let name = |p: usize| system.partitions.get(p).map_or("?", |p| p.name.as_str());
    for (core, windows) in schedule.cores.iter().enumerate() {
        let _ = writeln!(out, "  core {core}");
        let mut rows = vec![vec![
            "start".to_owned(),
            "length".to_owned(),
            "runs".to_owned(),
        ]];
        let mut start = 0;
        for window in windows {
            let who = if window.is_background() {
                format!("background: any partition on core {core}, by priority")
            } else {
                let names: Vec<&str> = window.owners.iter().map(|&p| name(p)).collect();
                let mut who = names.join(", ");
                if names.len() > 1 {
                    who.push_str(", by priority");
                }
                who
            };
            rows.push(vec![human(start), human(window.length_us), who]);
            start += window.length_us;
        }
        table(out, "    ", &rows);
    }
    shares(out, system, schedule);
}

/// Each partition's share of each core's major frame, then the background's.
fn shares(out: &mut String, system: &System, schedule: &Schedule) {
    let frame = schedule.major_frame_us;
    let mut header = vec!["share of the frame".to_owned()];
    header.extend((0..schedule.cores.len()).map(|core| format!("core {core}")));
    let mut rows = vec![header];
    let mut shared = false;
    for (p, partition) in system.partitions.iter().enumerate() {
        let mut row = vec![partition.name.clone()];
        for (core, windows) in schedule.cores.iter().enumerate() {
            if partition.cores & (1 << core) == 0 {
                row.push("-".to_owned());
                continue;
            }
            let mine = windows.iter().filter(|w| w.owners.contains(&p));
            let time: u64 = mine.clone().map(|w| w.length_us).sum();
            let with_others = mine.clone().any(|w| w.owners.len() > 1);
            shared |= with_others;
            row.push(format!(
                "{}{}",
                percent(time, frame),
                if with_others { "*" } else { "" }
            ));
        }
        rows.push(row);
    }
    let mut background = vec!["background".to_owned()];
    for windows in &schedule.cores {
        let time: u64 = windows
            .iter()
            .filter(|w| w.is_background())
            .map(|w| w.length_us)
            .sum();
        background.push(percent(time, frame));
    }
    rows.push(background);
    let _ = writeln!(out, "  shares");
    table(out, "    ", &rows);
    if shared {
        let _ = writeln!(
            out,
            "    * includes windows shared with other partitions, which take turns there by \
             priority"
        );
    }
    let _ = writeln!(
        out,
        "    (- where a partition may not run; background time is anyone's on that core, by \
         priority, on top of their share)"
    );
}
