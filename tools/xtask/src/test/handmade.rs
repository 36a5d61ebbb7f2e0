// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Hand-made boot packages: the demo system's image, its compiled manifest
//! altered the way someone writing a package by hand could
//! (`hv_image::package::forge`, which skips the manifest's validation and
//! makes the CRC right), must be refused at boot with the kernel's reason,
//! before any partition runs.
//!
//! What the compiler refuses, the kernel refuses again: a device placed on
//! what the kernel keeps (its GIC's distributor and redistributors, RAM),
//! on a bus master (virtio-mmio) or firmware's flash, the console UART
//! given away while no partition reads the kernel log, an interrupt that is
//! not its device's, interrupt badges that are zero or that a
//! capability signalling the same notification can set, a schedule that
//! leaves a partition without time, and a budget longer than its period.

use hv_image::{BootManifest, BudgetSpec, Object, Owners, Package, ScheduleSpec, Window};

use super::{Context, Gic, Machine, machine};

/// One alteration and the kernel's words for it.
struct Forgery {
    /// What is altered, for the failure message and the file name.
    name: &'static str,
    /// The alteration.
    edit: fn(&mut BootManifest) -> Result<(), String>,
    /// What the kernel must say after `cannot load the system: `.
    says: &'static str,
}

/// Moves the demo's UART driver's device (its mapping stays where the
/// driver expects its UART) to `pa`.
fn move_uart(manifest: &mut BootManifest, pa: u64) -> Result<(), String> {
    let device = manifest
        .devices
        .iter_mut()
        .find(|d| d.name.as_str() == "uart0")
        .ok_or("the demo gives no partition uart0")?;
    device.pa = pa;
    Ok(())
}

/// The index of uart0's interrupt in the manifest's list.
fn uart_irq(manifest: &BootManifest) -> Result<usize, String> {
    let device = manifest
        .devices
        .iter()
        .position(|d| d.name.as_str() == "uart0")
        .ok_or("the demo gives no partition uart0")?;
    manifest
        .irqs
        .iter()
        .position(|i| usize::from(i.device) == device)
        .ok_or_else(|| "uart0's interrupt is not bound".to_owned())
}

const FORGERIES: &[Forgery] = &[
    Forgery {
        name: "gic-distributor",
        edit: |m| move_uart(m, 0x0800_0000),
        says: "the manifest gives partition `uart` device `uart0` at 0x8000000, which no \
               partition may have: it is the kernel's own (interrupt controller or timer)",
    },
    Forgery {
        name: "gic-redistributor",
        edit: |m| move_uart(m, 0x080a_0000),
        says: "device `uart0` at 0x80a0000, which no partition may have: it is the kernel's own",
    },
    Forgery {
        name: "virtio-mmio",
        edit: |m| move_uart(m, 0x0a00_0000),
        says: "device `uart0` at 0xa000000, which no partition may have: it is capable of DMA",
    },
    Forgery {
        name: "flash",
        edit: |m| move_uart(m, 0x0400_0000),
        says: "device `uart0` at 0x4000000, which no partition may have: it is firmware's",
    },
    Forgery {
        name: "ram",
        edit: |m| move_uart(m, 0x4000_0000),
        says: "device `uart0` at 0x40000000, which no partition may have: it is memory, not a \
               device",
    },
    Forgery {
        name: "console-without-kernel-log",
        edit: |m| {
            let reader = m.kernel_log.take().ok_or("the demo has no kernel log")?;
            let caps = &mut m
                .partitions
                .get_mut(usize::from(reader.partition))
                .ok_or("no reader")?
                .caps;
            let slot = caps
                .iter()
                .position(|c| c.object == Object::KernelLog)
                .ok_or("the reader holds no kernel-log capability")?;
            caps.remove(slot);
            Ok(())
        },
        says: "device `uart0` at 0x9000000, which no partition may have: it is the kernel's \
               console UART, and no partition reads the kernel log, so the kernel prints to it",
    },
    Forgery {
        name: "another-devices-interrupt",
        edit: |m| {
            let irq = uart_irq(m)?;
            m.irqs[irq].intid = 34;
            Ok(())
        },
        says: "the manifest binds INTID 34 as device `uart0`'s, but it is not that device's",
    },
    Forgery {
        name: "badge-zero",
        edit: |m| {
            let irq = uart_irq(m)?;
            m.irqs[irq].badge.0 = 0;
            Ok(())
        },
        says: "the compiled manifest is invalid: interrupt 0: the badge is zero",
    },
    Forgery {
        name: "badge-a-signaller-sets",
        edit: |m| {
            let irq = m.irqs[uart_irq(m)?];
            let signaller = m
                .partitions
                .iter_mut()
                .flat_map(|p| p.caps.iter_mut())
                .find(|c| {
                    c.object == Object::Notification(irq.notification)
                        && c.rights.contains(hv_abi::hypercall::Rights::WRITE)
                })
                .ok_or("nobody signals uart0's notification")?;
            signaller.badge = irq.badge;
            Ok(())
        },
        says: "the compiled manifest is invalid: interrupt 0: badge shares bits with what \
               partition 1's capability",
    },
    Forgery {
        name: "schedule-without-the-last-partition",
        edit: |m| schedule_all_but_last(m),
        says: "the compiled manifest is invalid: schedule: partition 6 may run on core 0 but no \
               window there names it",
    },
    Forgery {
        name: "budget-longer-than-its-period",
        edit: |m| {
            m.budgets
                .push(BudgetSpec {
                    partition: 0,
                    vcpu: 0,
                    budget_us: 10_001,
                    period_us: 10_000,
                })
                .map_err(|_| "no room for a budget".to_owned())
        },
        says: "the compiled manifest is invalid: budget 0: the budget is zero or longer than its \
               period",
    },
];

/// Gives the demo (seven partitions, every one on every core) a schedule
/// whose one window on each of its 4 cores names every partition but the
/// last, which then has no time anywhere.
fn schedule_all_but_last(manifest: &mut BootManifest) -> Result<(), String> {
    let count = manifest.partitions.len();
    if count != 7 {
        return Err(format!("the demo has {count} partitions, not 7"));
    }
    let mut schedule = ScheduleSpec {
        major_frame_us: 10_000,
        cores: hv_image::heapless::Vec::new(),
        windows: hv_image::heapless::Vec::new(),
    };
    for _ in 0..4 {
        schedule.cores.push(1).map_err(|_| "cores")?;
        let window = Window {
            length_us: 10_000,
            owners: Owners::Partitions(0b011_1111),
        };
        schedule.windows.push(window).map_err(|_| "windows")?;
    }
    manifest.schedule = Some(schedule);
    Ok(())
}

/// Boots each forgery of the demo's package: each must be refused with the
/// kernel's reason, the machine powered off, and no partition started.
/// Boots `machine`, which the kernel must refuse before anything runs, with
/// its refusal line saying `says`.
fn refused_saying(c: &Context<'_>, machine: &Machine<'_>, says: &str) -> Result<(), String> {
    let outcome = super::start(c, machine, super::healthy())?;
    if outcome.timed_out || outcome.ready() {
        return Err(format!(
            "the kernel did not refuse and power off\n--- console ---\n{}",
            outcome.console
        ));
    }
    super::expect_lines_with(
        &outcome,
        &[("!!! BULKHEAD CANNOT BOOT: cannot load the system: ", says)],
    )
}

pub(super) fn hand_made(c: &Context<'_>) -> std::result::Result<String, String> {
    let image = std::fs::read(c.system("demo")?).map_err(|e| e.to_string())?;
    // The kernel alone, whose header says where the package starts.
    let kernel = std::fs::read(&c.normal).map_err(|e| e.to_string())?;
    let kernel_size = kernel
        .get(16..24)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .and_then(|size| usize::try_from(size).ok())
        .ok_or("the kernel has no image header")?;
    let package = image.get(kernel_size..).ok_or("the image has no package")?;
    let package = Package::parse(package).map_err(|e| format!("the demo's package: {e}"))?;
    let original = package
        .manifest()
        .map_err(|e| format!("the demo's manifest: {e}"))?;
    let mut failures = Vec::new();
    for forgery in FORGERIES {
        let mut manifest = original.clone();
        (forgery.edit)(&mut manifest).map_err(|e| format!("{}: {e}", forgery.name))?;
        let forged = hv_image::package::forge(&package, &manifest)
            .map_err(|e| format!("{}: cannot forge: {e}", forgery.name))?;
        let path = crate::system::output_dir().join(format!("demo-hand-made-{}.img", forgery.name));
        let bytes = crate::image::append_package(&kernel, &forged)?;
        crate::image::write_atomically(&path, &bytes).map_err(|e| e.to_string())?;
        let machine = Machine {
            kernel: Some(path),
            ..machine(c, Gic::V3, 2, "1G")
        };
        // Every forgery is tried, and every one that boots is reported.
        if let Err(e) = refused_saying(c, &machine, forgery.says) {
            failures.push(format!("{}: {e}", forgery.name));
        }
    }
    if !failures.is_empty() {
        return Err(failures.join("\n"));
    }
    Ok(format!("{} hand-made packages refused", FORGERIES.len()))
}
