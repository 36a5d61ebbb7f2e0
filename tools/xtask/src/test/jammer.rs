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
//!
//! QEMU's PL011 transmits whatever its control register says, so it cannot
//! show a UART that never drains; `hv_core::uart`'s host tests show the
//! kernel's wait on one is bounded (docs/testing.md).

use crate::qemu::RunSpec;

use super::{BOOT_TIMEOUT, Context, Gic, Machine, expect_lines, in_order, machine, start};

const JAMMING: &str = "[jammer] jamming the UART: CTS flow control on, UART and transmitter off";
const BACK: &str = "[jammer] the UART is back on; while it was jammed (control register \
                    00008000) the kernel log carried ";
const STOPPED: &str = "[jammer] | bulkhead: fault: partition `accomplice` stopped";
const PING_DONE: &str = "[jammer] | [ping] ping: done";

/// Boots the jammer system on `smp` cores and checks the attack came to
/// nothing.
pub(super) fn jammed(c: &Context<'_>, gic: Gic, smp: u32) -> std::result::Result<String, String> {
    let (_, image) = super::test_system(c, "jammer")?;
    let machine = Machine {
        kernel: Some(image),
        ..machine(c, gic, smp, "1G")
    };
    let spec = RunSpec {
        timeout: Some(BOOT_TIMEOUT),
        until_all: vec![STOPPED.to_owned(), PING_DONE.to_owned()],
        ..RunSpec::default()
    };
    let outcome = start(c, &machine, spec)?;
    let fail = |why: &str| Err(format!("{why}\n--- console ---\n{}", outcome.console));
    if let Some(line) = outcome.failure() {
        return fail(line);
    }
    if outcome.console.contains("isolation is broken") {
        return fail("the accomplice's write to the UART went through");
    }
    expect_lines(
        &outcome,
        &[
            JAMMING.to_owned(),
            BACK.to_owned(),
            "[jammer] | bulkhead: fault: partition `accomplice` vCPU 1: data abort from a lower \
             EL on a write: translation fault (not mapped), level 1 at address 0x9000000"
                .to_owned(),
            STOPPED.to_owned(),
            PING_DONE.to_owned(),
        ],
    )?;
    in_order(&outcome, &[JAMMING, BACK, STOPPED])?;
    in_order(&outcome, &[JAMMING, BACK, PING_DONE])?;
    // While the UART was jammed, nothing at all reached it: the kernel
    // printed nothing to the UART it had given away.
    let jammed_at = outcome.console.find(JAMMING).unwrap_or(0) + JAMMING.len();
    let back_at = outcome.console.find(BACK).unwrap_or(0);
    let between = outcome.console.get(jammed_at..back_at).unwrap_or("?");
    if !between.trim().is_empty() {
        return fail(&format!(
            "something was printed to the UART while it was jammed: {between:?}"
        ));
    }
    Ok(String::new())
}
