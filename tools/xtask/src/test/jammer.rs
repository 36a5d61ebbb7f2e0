// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The console UART's owner attacks the kernel through it
//! (`tests/qemu/jammer.toml`, `tests/partitions/jammer`).
//!
//! jammer owns uart0 and reads the kernel log (a manifest that gave the UART
//! away without a reader would be refused: `err/device-console-without-kernel-log`
//! and `hand-made-packages-are-refused`). It jams the UART (CTS flow control
//! on, UART and transmitter off), its accomplice then faults, and ping and
//! pong print through the kernel. The kernel must write nothing to the
//! jammed UART, and its fault report and ping's lines must reach jammer
//! through the log, which jammer shows once it has turned the UART back on.
//! The lines are in `tests/qemu/jammer.expect`; what a file cannot say,
//! that nothing at all came between two of them, is here.
//!
//! QEMU's PL011 transmits whatever its control register says, so it cannot
//! show a UART that never drains; `hv_core::uart`'s host tests show the
//! kernel's wait on one is bounded (docs/testing.md).

use super::expect::Expect;
use crate::qemu::Outcome;

/// While the UART was jammed, nothing at all reached it: the console is
/// empty between jammer's line that it jams the UART and its line that the
/// UART is back on (the first two lines of the file's first `in order:`
/// block), so the kernel printed nothing to the UART it had given away.
pub(super) fn quiet_while_jammed(
    _: &super::Context<'_>,
    expect: &Expect,
    outcome: &Outcome,
) -> Result<String, String> {
    let fail = |why: String| Err(format!("{why}\n--- console ---\n{}", outcome.console));
    let Some([jamming, back, ..]) = expect.in_order.first().map(Vec::as_slice) else {
        return fail(
            "jammer.expect has no `in order:` block of the jamming and back-on lines".into(),
        );
    };
    let (Some(jammed_at), Some(back_at)) = (
        outcome.console.find(jamming.as_str()),
        outcome.console.find(back.as_str()),
    ) else {
        return fail(format!("no `{jamming}` or no `{back}`"));
    };
    let between = outcome
        .console
        .get(jammed_at + jamming.len()..back_at)
        .unwrap_or("?");
    if !between.trim().is_empty() {
        return fail(format!(
            "something was printed to the UART while it was jammed: {between:?}"
        ));
    }
    Ok(String::new())
}
