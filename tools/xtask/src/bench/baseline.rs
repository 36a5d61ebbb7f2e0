// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The bench's figures as JSON, the committed baseline and the check against
//! it (`cargo xtask bench --check`, `--update-baseline`).
//!
//! Every run writes its figures to [`FIGURES`]. The baseline,
//! [`BASELINE`], is the same format, committed. Each figure carries the
//! versions its count depends on (the kernel's compiler, QEMU, the Linux
//! guest: [`Versions`]); a figure is compared with its baseline only when
//! they are the same, and is skipped, saying why, when they are not. A
//! figure more than [`TOLERANCE_PERCENT`] percent over its baseline fails.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Result, error};

/// Where a run writes its figures, under the repository's root.
pub(crate) const FIGURES: &str = "target/bench/figures.json";

/// The committed baseline, under the repository's root.
pub(crate) const BASELINE: &str = "tools/xtask/bench-baseline.json";

/// How much a figure may grow over its baseline, in percent.
pub(crate) const TOLERANCE_PERCENT: u64 = 2;

/// What a count depends on, by name: `rustc` (`rustc -V` of the kernel's
/// toolchain), `qemu` (QEMU and its Debian package), `guest` (the Linux
/// guest's Debian packages). A figure lists only those its count depends on.
pub(crate) type Versions = BTreeMap<String, String>;

/// One measured figure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Figure {
    /// A stable key: what the baseline is matched by.
    pub(crate) key: String,
    /// What the table calls it.
    pub(crate) name: String,
    /// The count, in `unit`.
    pub(crate) count: u64,
    /// `instructions`, `bytes`, `lines` or `thousandths` (a ratio).
    pub(crate) unit: String,
    /// The ceiling: a count over it fails, baseline or not.
    pub(crate) budget: u64,
    /// What we are working towards, if anything.
    pub(crate) goal: Option<u64>,
    /// The versions the count was measured with, of those it depends on.
    pub(crate) versions: Versions,
}

/// A file of figures: a run's, or the baseline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Figures {
    /// What the file is (for a reader of the JSON).
    pub(crate) about: String,
    /// The figures, in the bench's order.
    pub(crate) figures: Vec<Figure>,
}

impl Figures {
    pub(crate) fn new(figures: Vec<Figure>) -> Self {
        Self {
            about: "cargo xtask bench: each figure's count, measured twice alike, with the \
                    versions it depends on; the baseline is compared like with like \
                    (docs/benchmarks.md)"
                .into(),
            figures,
        }
    }

    pub(crate) fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| error!("cannot read {}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| error!("{}: {e}", path.display()))
    }

    pub(crate) fn write(&self, path: &Path) -> Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut text = serde_json::to_string_pretty(self)
            .map_err(|e| error!("cannot write {}: {e}", path.display()))?;
        text.push('\n');
        // Whole or not at all.
        let partial = path.with_extension("json.partial");
        std::fs::write(&partial, text)?;
        std::fs::rename(&partial, path)?;
        Ok(())
    }

    /// This baseline with `run`'s figures in place of its own of the same
    /// keys (and those it lacks added): what `--update-baseline` writes, so
    /// that a filtered run updates only what it measured.
    pub(crate) fn updated_with(&self, run: &[Figure]) -> Self {
        let mut figures = self.figures.clone();
        for figure in run {
            match figures.iter_mut().find(|f| f.key == figure.key) {
                Some(old) => *old = figure.clone(),
                None => figures.push(figure.clone()),
            }
        }
        Self::new(figures)
    }
}

pub(crate) fn figures_path() -> PathBuf {
    crate::root().join(FIGURES)
}

pub(crate) fn baseline_path() -> PathBuf {
    crate::root().join(BASELINE)
}

/// What the check found.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Report {
    /// One line per figure compared, skipped or new, and per baseline
    /// figure not measured.
    pub(crate) lines: Vec<String>,
    /// The figures that grew too much: one line each.
    pub(crate) failures: Vec<String>,
    /// How many figures were compared, and how many skipped.
    pub(crate) compared: usize,
    pub(crate) skipped: usize,
}

/// Compares a run's figures with the baseline's. `complete` says whether
/// the run measured everything (no filter), so that a baseline figure it
/// did not measure is worth a word.
pub(crate) fn check(baseline: &[Figure], run: &[Figure], complete: bool) -> Report {
    let mut report = Report::default();
    for figure in run {
        let Some(base) = baseline.iter().find(|b| b.key == figure.key) else {
            report.lines.push(format!(
                "{}: {} is not in the baseline (`cargo xtask bench --update-baseline` adds it)",
                figure.key,
                shown(figure.count, &figure.unit)
            ));
            continue;
        };
        if let Some(why) = difference(&base.versions, &figure.versions) {
            report.skipped += 1;
            report.lines.push(format!(
                "{}: skipped, not measured like the baseline: {why}",
                figure.key
            ));
            continue;
        }
        if base.unit != figure.unit {
            report.skipped += 1;
            report.lines.push(format!(
                "{}: skipped, the baseline counts {} and this run {}",
                figure.key, base.unit, figure.unit
            ));
            continue;
        }
        report.compared += 1;
        let (old, new) = (base.count, figure.count);
        let change = percent_change(old, new);
        if u128::from(new) * 100 > u128::from(old) * u128::from(100 + TOLERANCE_PERCENT) {
            let line = format!(
                "{} ({}): {} against the baseline's {} ({change}), more than {TOLERANCE_PERCENT}% over it",
                figure.key,
                figure.name,
                shown(new, &figure.unit),
                shown(old, &figure.unit),
            );
            report.lines.push(format!("{line}: FAILED"));
            report.failures.push(line);
        } else if new < old {
            report.lines.push(format!(
                "{}: {} against the baseline's {} ({change}): ok, the baseline can be lowered \
                 (`cargo xtask bench --update-baseline`)",
                figure.key,
                shown(new, &figure.unit),
                shown(old, &figure.unit),
            ));
        } else {
            report.lines.push(format!(
                "{}: {} against the baseline's {} ({change}): ok",
                figure.key,
                shown(new, &figure.unit),
                shown(old, &figure.unit),
            ));
        }
    }
    if complete {
        for base in baseline
            .iter()
            .filter(|b| !run.iter().any(|f| f.key == b.key))
        {
            report.lines.push(format!(
                "{}: in the baseline but no longer measured (`cargo xtask bench --update-baseline` \
                 does not remove it: edit {BASELINE})",
                base.key
            ));
        }
    }
    report
}

/// Why two sets of versions are not alike, or `None` if they are.
fn difference(baseline: &Versions, run: &Versions) -> Option<String> {
    let mut differences = Vec::new();
    for (what, version) in run {
        match baseline.get(what) {
            Some(old) if old == version => {}
            Some(old) => differences.push(format!("{what} is `{version}`, the baseline's `{old}`")),
            None => differences.push(format!("{what} is `{version}`, the baseline names none")),
        }
    }
    for (what, old) in baseline {
        if !run.contains_key(what) {
            differences.push(format!(
                "the baseline's {what} is `{old}`, this run names none"
            ));
        }
    }
    (!differences.is_empty()).then(|| differences.join("; "))
}

/// `+1.23%`, `-0.50%` or `same`.
fn percent_change(old: u64, new: u64) -> String {
    if old == new {
        return "same".into();
    }
    if old == 0 {
        return "from 0".into();
    }
    // In hundredths of a percent, rounded towards zero.
    let hundredths = (i128::from(new) - i128::from(old)) * 10_000 / i128::from(old);
    let sign = if hundredths < 0 { '-' } else { '+' };
    let magnitude = hundredths.unsigned_abs();
    format!("{sign}{}.{:02}%", magnitude / 100, magnitude % 100)
}

/// A count with its unit: `622 instructions`, `1.021x`.
pub(crate) fn shown(count: u64, unit: &str) -> String {
    if unit == "thousandths" {
        format!("{}.{:03}x", count / 1000, count % 1000)
    } else {
        format!("{count} {unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::{Figure, Figures, Versions, check, percent_change};

    fn versions(pairs: &[(&str, &str)]) -> Versions {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    fn figure(key: &str, count: u64, versions: Versions) -> Figure {
        Figure {
            key: key.into(),
            name: format!("the {key}"),
            count,
            unit: "instructions".into(),
            budget: 1_000_000,
            goal: None,
            versions,
        }
    }

    #[test]
    fn growth_over_two_percent_fails_naming_the_figure() {
        let v = versions(&[("rustc", "rustc 1.95.0"), ("qemu", "QEMU 10.0.2")]);
        let baseline = [
            figure("ipc", 500, v.clone()),
            figure("boot", 1000, v.clone()),
        ];
        // 510 is exactly 2% over 500: it passes; 1021 is over 1020.
        let run = [
            figure("ipc", 510, v.clone()),
            figure("boot", 1021, v.clone()),
        ];
        let report = check(&baseline, &run, true);
        assert_eq!(report.compared, 2);
        assert_eq!(
            report.failures,
            [
                "boot (the boot): 1021 instructions against the baseline's 1000 instructions (+2.10%), more than 2% over it"
            ]
        );
        assert!(
            report.lines[0].ends_with("(+2.00%): ok"),
            "{:?}",
            report.lines
        );
        // Small counts: 16 against 15 is 6.66% more.
        let report = check(
            &[figure("hvc", 15, v.clone())],
            &[figure("hvc", 16, v)],
            true,
        );
        assert_eq!(report.failures.len(), 1);
    }

    #[test]
    fn a_smaller_figure_passes_and_says_the_baseline_can_be_lowered() {
        let v = versions(&[("rustc", "rustc 1.95.0")]);
        let report = check(
            &[figure("ipc", 622, v.clone())],
            &[figure("ipc", 300, v)],
            true,
        );
        assert!(report.failures.is_empty());
        assert_eq!(
            report.lines,
            [
                "ipc: 300 instructions against the baseline's 622 instructions (-51.76%): ok, the baseline can be lowered (`cargo xtask bench --update-baseline`)"
            ]
        );
    }

    #[test]
    fn figures_measured_with_other_versions_are_skipped() {
        let old = versions(&[
            ("rustc", "rustc 1.95.0"),
            ("guest", "Debian linux 6.1.192-3"),
        ]);
        let new = versions(&[
            ("rustc", "rustc 1.95.0"),
            ("guest", "Debian linux 6.1.193-1"),
        ]);
        let report = check(
            &[figure("linux", 100, old)],
            &[figure("linux", 500, new)],
            true,
        );
        assert!(report.failures.is_empty());
        assert_eq!((report.compared, report.skipped), (0, 1));
        assert_eq!(
            report.lines,
            [
                "linux: skipped, not measured like the baseline: guest is `Debian linux 6.1.193-1`, the baseline's `Debian linux 6.1.192-3`"
            ]
        );
        // A figure that depends on nothing is always compared.
        let report = check(
            &[figure("lines", 100, Versions::new())],
            &[figure("lines", 103, Versions::new())],
            true,
        );
        assert_eq!(report.failures.len(), 1);
    }

    #[test]
    fn new_and_missing_figures_are_reported_without_failing() {
        let v = Versions::new();
        let report = check(
            &[figure("gone", 1, v.clone())],
            &[figure("new", 1, v)],
            true,
        );
        assert!(report.failures.is_empty());
        assert_eq!(report.lines.len(), 2);
        assert!(report.lines[0].starts_with("new: 1 instructions is not in the baseline"));
        assert!(report.lines[1].starts_with("gone: in the baseline but no longer measured"));
        // With a filter, unmeasured figures are not mentioned.
        let report = check(&[figure("gone", 1, Versions::new())], &[], false);
        assert!(report.lines.is_empty());
    }

    #[test]
    fn ratios_are_shown_as_ratios() {
        let mut base = figure("ratio", 1021, Versions::new());
        base.unit = "thousandths".into();
        let mut run = base.clone();
        run.count = 1045;
        let report = check(&[base], &[run], true);
        assert_eq!(
            report.failures,
            [
                "ratio (the ratio): 1.045x against the baseline's 1.021x (+2.35%), more than 2% over it"
            ]
        );
    }

    #[test]
    fn an_update_replaces_what_was_measured_and_keeps_the_rest() {
        let v = Versions::new();
        let baseline = Figures::new(vec![figure("a", 1, v.clone()), figure("b", 2, v.clone())]);
        let updated = baseline.updated_with(&[figure("b", 3, v.clone()), figure("c", 4, v)]);
        let counts: Vec<(&str, u64)> = updated
            .figures
            .iter()
            .map(|f| (f.key.as_str(), f.count))
            .collect();
        assert_eq!(counts, [("a", 1), ("b", 3), ("c", 4)]);
    }

    #[test]
    fn figures_survive_json() {
        let figures = Figures::new(vec![figure(
            "ipc",
            622,
            versions(&[("qemu", "QEMU 10.0.2")]),
        )]);
        let path = std::env::temp_dir().join(format!("xtask-figures-{}.json", std::process::id()));
        figures.write(&path).unwrap();
        assert_eq!(Figures::read(&path).unwrap(), figures);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(percent_change(1000, 1000), "same");
        assert_eq!(percent_change(0, 5), "from 0");
    }
}
