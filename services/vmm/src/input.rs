// SPDX-License-Identifier: Apache-2.0 OR MIT
//! vCPU 1: keyboard input for the guest. The console signals the monitor's
//! input notification when bytes typed for the guest wait in its inbox;
//! they go to the emulated PL011's receive FIFO (and a backlog behind it),
//! and the UART's interrupt is delivered if the guest enabled it.

use svc_rt::call;

use crate::config;
use crate::exits::{carry_out, with_machine};

/// vCPU 1's loop; without an input notification or a console, it answers
/// exits beside vCPU 0 instead.
pub(crate) fn run(start: &svc_rt::Start) -> ! {
    let (Some(input), Some(log)) = (config::INPUT, config::LOG) else {
        crate::exits::serve(start)
    };
    loop {
        if call::wait(input).is_err() {
            call::yield_now();
        }
        let mut bytes = [0u8; svc_rt::console::READ_MAX];
        loop {
            let count = svc_rt::console::read(log, &mut bytes).unwrap_or_default();
            if count == 0 {
                break;
            }
            let effects = with_machine(|m| m.input(&bytes[..count]));
            carry_out(effects);
        }
    }
}
