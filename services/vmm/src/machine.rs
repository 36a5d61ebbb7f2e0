// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The guest's emulated devices, shared by the monitor's two vCPUs: the GIC
//! distributor (and, on GICv3, the redistributors) and the PL011.
//!
//! vCPU 0 answers the guest's accesses to them ([`Machine::access`]);
//! vCPU 1 feeds keyboard input to the UART ([`Machine::input`]). Both hold
//! the lock ([`MACHINE`]) only while they change the models, never across a
//! hypercall: what the models decide (interrupts to deliver, bytes to
//! print) comes back as [`Effects`] for the caller to carry out.

use alloc::vec::Vec;

use spin::Mutex;
use svc_rt::vm::{GUEST_GICD, GUEST_GICR, GUEST_UART, GUEST_UART_INTID};
use vmm_devices::gic::{GicV2Model, GicV3Model, Injection, V3Layout};
use vmm_devices::layout::{GICD_V2_SIZE, UART_SIZE};
use vmm_devices::pl011::{Pl011, offset};

/// The devices, once vCPU 0 has created them.
pub(crate) static MACHINE: Mutex<Option<Machine>> = Mutex::new(None);

/// Bytes of keyboard input kept while the UART's receive FIFO is full.
const BACKLOG: usize = 4096;

/// Bytes of guest output gathered before they go to the console.
const LINE: usize = 160;

enum Gic {
    V2(GicV2Model),
    V3(GicV3Model, V3Layout),
}

/// The guest's devices.
pub(crate) struct Machine {
    gic: Gic,
    uart: Pl011,
    /// Keyboard input that did not fit the receive FIFO yet.
    backlog: Vec<u8>,
    /// Guest output not yet sent to the console.
    output: Vec<u8>,
    /// Accesses to addresses with no device, reported so far.
    stray: u32,
}

/// What an access or an input asks the caller to do.
#[derive(Default)]
pub(crate) struct Effects {
    /// Interrupts to make pending.
    pub(crate) inject: Vec<Injection>,
    /// Bytes for the console.
    pub(crate) print: Vec<u8>,
    /// An access to nothing, to report: (address, write).
    pub(crate) stray: Option<(u64, bool)>,
}

/// Reports of accesses to nothing, at most.
const STRAY_REPORTS: u32 = 8;

impl Machine {
    /// The devices of a guest with `vcpus` vCPUs and the machine's GIC
    /// (`gic_version` 2 or 3).
    pub(crate) fn new(vcpus: u8, gic_version: u64) -> Self {
        let spis = vmm_devices::gic::DEFAULT_SPIS;
        let gic = if gic_version == 2 {
            Gic::V2(GicV2Model::new(vcpus, spis))
        } else {
            Gic::V3(
                GicV3Model::new(vcpus, spis),
                V3Layout {
                    distributor: GUEST_GICD,
                    redistributors: GUEST_GICR,
                    vcpus,
                },
            )
        };
        Self {
            gic,
            uart: Pl011::new(),
            backlog: Vec::new(),
            output: Vec::new(),
            stray: 0,
        }
    }

    /// Guest vCPU `vcpu`'s access of `size` bytes at `address`: the value a
    /// read returns (0 for a write), and what the caller must do.
    pub(crate) fn access(
        &mut self,
        vcpu: u8,
        address: u64,
        size: u8,
        write: Option<u64>,
    ) -> (u64, Effects) {
        let mut effects = Effects::default();
        let value = if let Some(offset) = within(address, GUEST_UART, UART_SIZE) {
            self.uart_access(offset, size, write, &mut effects)
        } else if let Some(value) = self.gic_access(vcpu, address, size, write, &mut effects) {
            value
        } else {
            if self.stray < STRAY_REPORTS {
                self.stray += 1;
                effects.stray = Some((address, write.is_some()));
            }
            0
        };
        (value, effects)
    }

    fn gic_access(
        &mut self,
        vcpu: u8,
        address: u64,
        size: u8,
        write: Option<u64>,
        effects: &mut Effects,
    ) -> Option<u64> {
        let actions = match &mut self.gic {
            Gic::V3(model, layout) => {
                let (region, offset) = layout.locate(address)?;
                match write {
                    None => return Some(model.read(region, offset, size)),
                    Some(value) => model.write(region, offset, size, value),
                }
            }
            Gic::V2(model) => {
                let offset = within(address, GUEST_GICD, GICD_V2_SIZE)?;
                match write {
                    None => return Some(model.read(vcpu, offset, size)),
                    Some(value) => model.write(vcpu, offset, size, value),
                }
            }
        };
        effects.inject.extend(actions.injections());
        // Enabling the UART's interrupt while its line is high delivers it.
        self.update_uart_line(effects);
        Some(0)
    }

    fn uart_access(
        &mut self,
        offset: u64,
        size: u8,
        write: Option<u64>,
        effects: &mut Effects,
    ) -> u64 {
        let value = match write {
            None => {
                let value = self.uart.read(offset, size);
                if offset == offset::DR {
                    self.refill();
                }
                u64::from(value)
            }
            Some(value) => {
                let output = &mut self.output;
                self.uart
                    .write_with(offset, size, value as u32, |byte| output.push(byte));
                0
            }
        };
        // A line is printed whole at its newline; what follows a burst of
        // output (anything but sending a byte or polling the flags: the
        // driver turning its transmit interrupt off, a console write ending)
        // shows at once, so a shell's prompt appears.
        let burst = offset == offset::DR && write.is_some() || offset == offset::FR;
        self.take_output(!burst, effects);
        // Reading any register but the data register changes nothing.
        if write.is_some() || offset == offset::DR {
            self.update_uart_line(effects);
        }
        value
    }

    /// Moves finished lines (or, with `all`, everything) to `effects`.
    fn take_output(&mut self, all: bool, effects: &mut Effects) {
        let end = if all || self.output.len() >= LINE {
            self.output.len()
        } else {
            self.output
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1)
        };
        if end > 0 {
            effects.print.extend(self.output.drain(..end));
        }
    }

    /// Keyboard input for the guest: into the receive FIFO, the rest kept
    /// until the guest reads.
    pub(crate) fn input(&mut self, bytes: &[u8]) -> Effects {
        let room = BACKLOG.saturating_sub(self.backlog.len());
        self.backlog
            .extend_from_slice(bytes.get(..room.min(bytes.len())).unwrap_or_default());
        self.refill();
        let mut effects = Effects::default();
        self.update_uart_line(&mut effects);
        effects
    }

    /// Tops the receive FIFO up from the backlog.
    fn refill(&mut self) {
        if !self.backlog.is_empty() {
            let taken = self.uart.push_input(&self.backlog);
            self.backlog.drain(..taken.min(self.backlog.len()));
        }
    }

    /// Tells the GIC where the UART's interrupt line is; a rising line
    /// becomes an injection.
    fn update_uart_line(&mut self, effects: &mut Effects) {
        let level = self.uart.interrupt_level();
        let injection = match &mut self.gic {
            Gic::V2(model) => model.set_line(GUEST_UART_INTID, level),
            Gic::V3(model, _) => model.set_line(GUEST_UART_INTID, level),
        };
        effects.inject.extend(injection);
    }

    /// Back to power-on: the devices forget everything but pending input.
    pub(crate) fn reset(&mut self, vcpus: u8, gic_version: u64) {
        let backlog = core::mem::take(&mut self.backlog);
        *self = Self::new(vcpus, gic_version);
        self.backlog = backlog;
    }
}

/// `address - base` if it is below `size`.
fn within(address: u64, base: u64, size: u64) -> Option<u64> {
    address.checked_sub(base).filter(|&offset| offset < size)
}
