// SPDX-License-Identifier: Apache-2.0 OR MIT
//! System tests of virtual machines with the project's own probe guest
//! (`guests/probe`, booted by the same monitor as Linux): two guests whose
//! memories are sealed from each other (`tests/qemu/two-guests.expect`), a
//! guest that attacks what a guest must never reach (`probe.expect`), and a
//! guest that drives a device passed through to it (`passthrough.expect`).
//! Their lines are in those files; here is what a file cannot say. The
//! probe's lines are documented in its crate.

use super::expect::Expect;
use crate::qemu::Outcome;
use crate::transcript::Writer;

/// `tests/qemu/passthrough.toml`: the probe read a time from the PL031's
/// data register (RTCDR), and it is a number that is not zero (the real
/// device's, not a register that reads as zero).
pub(super) fn rtc_time(
    _: &super::Context<'_>,
    _: &Expect,
    outcome: &Outcome,
) -> Result<String, String> {
    let prefix = "probe: passthrough at 0x9010000: RTCDR ";
    let transcript = outcome.transcript();
    let time: Option<u64> = transcript
        .lines()
        .iter()
        .filter(|l| l.writer == Writer::Partition("probe"))
        .find_map(|l| l.text.trim_end().strip_prefix(prefix))
        .and_then(|t| t.parse().ok());
    match time.filter(|&t| t != 0) {
        Some(time) => Ok(format!("RTCDR {time}")),
        None => Err(format!(
            "no non-zero RTCDR line ({time:?})\n--- console ---\n{}",
            outcome.console
        )),
    }
}
