// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The interrupt controller: GICv2 or GICv3, as the device tree says.
//!
//! The kernel owns the GIC. Every physical interrupt is taken at EL2
//! (HCR_EL2.IMO), acknowledged here, and then either handled by the kernel
//! (its timer, the cross-core kick) or turned into a notification for the
//! partition that owns the device, with the interrupt masked at the
//! distributor until that partition acknowledges it.
//!
//! [`init`] runs once on core 0 (distributor), [`init_cpu`] on every core (its
//! redistributor and CPU interface). The two versions live in [`v2`] and
//! [`v3`]; this module picks one at run time.

mod v2;
mod v3;

use core::sync::atomic::{AtomicBool, Ordering};

use hv_core::platform::{Gic, GicVersion};
use spin::Once;

/// Software-generated interrupt 0: another core asks this one to reschedule.
pub const SGI_KICK: u32 = 0;

/// The first shared peripheral interrupt (SPI) number.
pub const FIRST_SPI: u32 = 32;

/// Why the GIC could not be set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicError {
    /// [`init_cpu`] or an interrupt call came before [`init`].
    NotInitialised,
    /// No redistributor in the GICR region matches this core's affinity.
    NoRedistributor(u64),
    /// The interrupt number is beyond what the distributor implements.
    BadInterrupt(u32),
    /// This core's Aff0 is above 15, but its CPU interface cannot send SGIs
    /// to such cores (ICC_CTLR_EL1.RSS is 0), so no core could kick it.
    NoRangeSelector(u64),
}

enum Driver {
    V2(v2::Gic),
    V3(v3::Gic),
}

// SAFETY: the drivers hold references to device registers. Concurrent use
// from several cores is what the GIC is built for: distributor enable and
// disable registers are write-one-to-set/clear, each core's CPU interface and
// redistributor are its own, and set-up happens once on core 0 before the
// other cores start. No Rust memory is shared through them.
unsafe impl Sync for Driver {}
// SAFETY: as above; the handles are plain addresses of device registers.
unsafe impl Send for Driver {}

static DRIVER: Once<Driver> = Once::new();

/// Whether [`DRIVER`] is GICv3's, set with it: GICv3's CPU interface is in
/// system registers, so the hot paths ([`acknowledge`], [`priority_drop`],
/// [`deactivate`]) need no more than this to reach it.
static IS_V3: AtomicBool = AtomicBool::new(false);

/// Sets up the distributor described by `gic`: every interrupt disabled,
/// group 1 (non-secure), lowest-but-one priority, then enabled. Returns how
/// many interrupt lines it implements.
pub fn init(gic: &Gic) -> u32 {
    // The device tree describes the register blocks; the kernel maps them as
    // device memory and drives them only through this one driver, created
    // once here (the `unsafe` is in each version's `new`).
    let driver = DRIVER.call_once(|| match gic.version {
        GicVersion::V2 => Driver::V2(v2::Gic::new(gic)),
        GicVersion::V3 => Driver::V3(v3::Gic::new(gic)),
    });
    // Before any other core starts (they are brought up after `init`), so
    // a relaxed load sees it.
    IS_V3.store(matches!(driver, Driver::V3(_)), Ordering::Relaxed);
    let lines = match driver {
        Driver::V2(g) => g.init_distributor(),
        Driver::V3(g) => g.init_distributor(),
    };
    crate::vm::vgic::init(gic);
    lines
}

/// Whether guests can be given virtual interrupts: GICv3, or GICv2 with its
/// virtual interface frames described.
pub fn can_virtualize() -> bool {
    crate::vm::vgic::ready()
}

fn driver() -> Result<&'static Driver, GicError> {
    DRIVER.get().ok_or(GicError::NotInitialised)
}

/// Sets up this core's side of the GIC: its private interrupts (SGIs, PPIs)
/// disabled except the kick SGI, and its CPU interface accepting every
/// priority.
pub fn init_cpu() -> Result<(), GicError> {
    match driver()? {
        Driver::V2(g) => g.init_cpu(),
        Driver::V3(g) => g.init_cpu(),
    }
}

/// Enables interrupt `intid`. A shared interrupt is routed to the core
/// whose MPIDR affinity is `target`; a private one is enabled on this core.
pub fn enable(intid: u32, target: u64) -> Result<(), GicError> {
    match driver()? {
        Driver::V2(g) => g.enable(intid, target),
        Driver::V3(g) => g.enable(intid, target),
    }
}

/// Disables (masks) interrupt `intid` at the distributor (or, for a private
/// interrupt, on this core).
pub fn disable(intid: u32) -> Result<(), GicError> {
    match driver()? {
        Driver::V2(g) => g.disable(intid),
        Driver::V3(g) => g.disable(intid),
    }
}

/// An interrupt [`acknowledge`] took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Acknowledged {
    /// Its INTID.
    pub intid: u32,
    /// The whole value read from the acknowledge register, which [`end`]
    /// writes back: on GICv2 an SGI's source core is part of it, and a
    /// GIC-400 leaves the SGI active if it is not.
    iar: u32,
}

/// Takes the highest-priority pending interrupt on this core, if any (1023,
/// "spurious", is `None`). It must be finished with [`end`].
pub fn acknowledge() -> Option<Acknowledged> {
    if IS_V3.load(Ordering::Relaxed) {
        let iar = v3::acknowledge();
        let intid = GicVersion::V3.intid(iar);
        return (intid < 1020).then_some(Acknowledged { intid, iar });
    }
    let (version, iar) = match DRIVER.get()? {
        Driver::V2(g) => (GicVersion::V2, g.acknowledge()),
        Driver::V3(_) => (GicVersion::V3, v3::acknowledge()),
    };
    let intid = version.intid(iar);
    (intid < 1020).then_some(Acknowledged { intid, iar })
}

/// Signals the end of handling an acknowledged interrupt on this core: its
/// priority drops and it is deactivated (the CPU interface runs with EOI
/// mode 1, where the two are separate, so that an interrupt handed to a
/// guest through a linked list register stays active until the guest is
/// done: [`priority_drop`]).
pub fn end(interrupt: Acknowledged) {
    priority_drop(interrupt.iar);
    deactivate(interrupt.iar);
}

/// Ends the handling of `intid` on this core without deactivating it: a
/// guest deactivates it when it completes the virtual interrupt it was
/// given in its place. For a PPI or SPI, whose acknowledge value is its
/// INTID; an SGI is finished with [`end`].
pub fn priority_drop(intid: u32) {
    if IS_V3.load(Ordering::Relaxed) {
        v3::end(intid);
        return;
    }
    match DRIVER.get() {
        Some(Driver::V2(g)) => g.end(intid),
        Some(Driver::V3(_)) => v3::end(intid),
        None => {}
    }
}

/// Makes private interrupt `intid` (an SGI or PPI) active on this core, as
/// if it had been acknowledged: it cannot be signalled again until it is
/// deactivated.
pub fn activate(intid: u32) {
    match DRIVER.get() {
        Some(Driver::V2(g)) => g.activate(intid),
        Some(Driver::V3(g)) => g.activate(intid),
        None => {}
    }
}

/// Deactivates `intid` on this core.
pub fn deactivate(intid: u32) {
    if IS_V3.load(Ordering::Relaxed) {
        v3::deactivate(intid);
        return;
    }
    match DRIVER.get() {
        Some(Driver::V2(g)) => g.deactivate(intid),
        Some(Driver::V3(_)) => v3::deactivate(intid),
        None => {}
    }
}

/// Deactivates shared interrupt `intid` at the distributor, whichever core
/// took it: a passed-through interrupt whose guest vCPU was reset before it
/// completed it.
pub fn clear_active(intid: u32) {
    match DRIVER.get() {
        Some(Driver::V2(g)) => g.clear_active(intid),
        Some(Driver::V3(g)) => g.clear_active(intid),
        None => {}
    }
}

/// Sends the kick SGI to the core whose MPIDR affinity is `target`.
pub fn kick(target: u64) -> Result<(), GicError> {
    match driver()? {
        Driver::V2(g) => g.send_sgi(SGI_KICK, target),
        Driver::V3(_) => {
            v3::send_sgi(SGI_KICK, target);
            Ok(())
        }
    }
}
