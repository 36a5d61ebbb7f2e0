// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The guest's device tree, built with rust-vmm's `vm-fdt`.
//!
//! The tree describes a QEMU `virt`-like machine with just what Linux needs to boot to a
//! console (see `shared/reference/guest-assets.md`, "Minimal DT that Linux boots with"):
//!
//! ```text
//! / { compatible = model = "linux,dummy-virt"; #address-cells = #size-cells = <2>;
//!     interrupt-parent = <&gic>;
//!   psci { compatible = "arm,psci-1.0", "arm,psci-0.2", "arm,psci"; method = "hvc"; };
//!   memory@40000000 { device_type = "memory"; reg = <base size>; };
//!   cpus { #address-cells = <1>; #size-cells = <0>;
//!     cpu@N { device_type = "cpu"; compatible = "arm,armv8"; reg = <N>; enable-method = "psci"; }; };
//!   intc@8000000 { compatible = "arm,gic-v3"; reg = <GICD 64K>, <GICR 128K×vCPUs>;
//!     #redistributor-regions = <1>;          (or "arm,cortex-a15-gic", reg = <GICD 4K>, <GICC 8K>)
//!     interrupt-controller; #interrupt-cells = <3>; #address-cells = <0>; phandle; };
//!   timer { compatible = "arm,armv8-timer"; interrupts = <1 13 f>, <1 14 f>, <1 11 f>, <1 10 f>;
//!     always-on; };
//!   apb-pclk { compatible = "fixed-clock"; #clock-cells = <0>; clock-frequency = <24000000>;
//!     clock-output-names = "clk24mhz"; phandle; };
//!   pl011@9000000 { compatible = "arm,pl011", "arm,primecell"; reg = <base 4K>;
//!     interrupts = <0 SPI 4>; clocks = <&clk>, <&clk>; clock-names = "uartclk", "apb_pclk"; };
//!   pl031@9010000 { ... };                  (a node per device passed through, crate::passthrough)
//!   chosen { bootargs; stdout-path = "/pl011@9000000";
//!     linux,initrd-start; linux,initrd-end; (u64, only with an initrd) }; };
//! ```
//!
//! Choices, and why:
//! - Timer flags `f`: QEMU's `virt` (7.2 and later, see `kernel/core/tests/fixtures`) marks
//!   the four timer PPIs level-high, 4. With GICv2 the flags also carry the PPI's CPU mask in
//!   bits 15:8, one bit per CPU interface, so it is `0x4 | ((1 << vCPUs) - 1) << 8` (0xf04 for
//!   four vCPUs, as QEMU writes); GICv3's binding has no CPU mask, so it is just 4. Linux's
//!   arch timer driver takes the trigger type from here; the mask is informational.
//! - The PL011 names `apb_pclk` as well as `uartclk`: the AMBA bus enables `apb_pclk` before
//!   it reads the PrimeCell IDs, and without it never probes the UART (no `ttyAMA0`).
//! - `method = "hvc"`: the kernel traps the guest's HVCs and the monitor answers them
//!   ([`crate::psci`]).
//! - `#address-cells = <0>` on the GIC: it has no child nodes (no ITS, no v2m), and dtc
//!   wants interrupt providers to say so.
//! - No `kaslr-seed` or `rng-seed`: Linux says "KASLR disabled due to lack of seed" and runs
//!   where it was put, which the monitor wants for now.
//!
//! Checked by hand (not in CI: it needs QEMU and Debian's kernel): Debian's 6.1 kernel boots
//! with this tree, placed by [`crate::image::placement`], on QEMU `virt` with GICv3 and two
//! vCPUs and with GICv2 and four: PSCI 1.1, both timers' PPIs, `ttyAMA0` as a PL011 rev1,
//! the initrd found and a shell reached (QEMU adds nothing to such a tree but its own PSCI
//! method). The replay in `tests/linux_trace.rs` comes from that boot.
//!
//! Every property has a fixed size whatever the addresses in it, so the blob's size does not
//! depend on where the initrd goes: build once with a placeholder initrd range to learn the
//! size, place the files ([`crate::image::placement`]), then build again.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use vm_fdt::FdtWriter;

use crate::image::Region;
use crate::layout;
use crate::passthrough::Device;

/// The GIC's phandle.
pub const GIC_PHANDLE: u32 = 1;

/// The 24 MHz clock's phandle.
pub const CLOCK_PHANDLE: u32 = 2;

/// The fixed clock feeding the PL011: 24 MHz, as on QEMU `virt`.
pub const APB_CLOCK_HZ: u32 = 24_000_000;

/// The root node's `compatible` and `model`.
pub const MACHINE_COMPATIBLE: &str = "linux,dummy-virt";

/// `interrupts` cell 0: an SPI.
const GIC_SPI: u32 = 0;
/// `interrupts` cell 0: a PPI.
const GIC_PPI: u32 = 1;
/// `interrupts` flags: level-sensitive, active high.
const IRQ_LEVEL_HIGH: u32 = 4;

/// The timer PPIs, in the binding's order: secure physical, non-secure physical, virtual,
/// hypervisor (INTIDs 29, 30, 27, 26).
pub const TIMER_PPIS: [u32; 4] = [13, 14, 11, 10];

/// Which GIC the guest has, and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicConfig {
    /// GICv3: a distributor and one redistributor per vCPU, contiguous.
    V3 {
        /// The distributor's base.
        distributor: u64,
        /// The first redistributor's base.
        redistributors: u64,
    },
    /// GICv2: a distributor and a CPU interface.
    V2 {
        /// The distributor's base.
        distributor: u64,
        /// The CPU interface's base.
        cpu_interface: u64,
    },
}

impl GicConfig {
    /// The distributor's base address.
    pub fn distributor(&self) -> u64 {
        match *self {
            Self::V3 { distributor, .. } | Self::V2 { distributor, .. } => distributor,
        }
    }
}

/// The guest's UART.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UartConfig {
    /// Its register frame's base.
    pub base: u64,
    /// Its SPI number (INTID = 32 + `spi`).
    pub spi: u32,
}

/// Everything the device tree says about the guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestMachine {
    /// How many vCPUs (1 to 8 with GICv2, 1 to 16 with GICv3).
    pub vcpus: u8,
    /// Where RAM starts.
    pub ram_base: u64,
    /// How much RAM.
    pub ram_size: u64,
    /// The interrupt controller.
    pub gic: GicConfig,
    /// The console UART.
    pub uart: UartConfig,
    /// The kernel command line.
    pub bootargs: String,
    /// The initrd's place in RAM, when there is one.
    pub initrd: Option<Region>,
    /// Platform devices passed through to the guest, a node each; add them with
    /// [`GuestMachine::admit`], which refuses one that conflicts with the rest.
    pub devices: Vec<Device>,
}

/// GIC version, for [`GuestMachine::qemu_virt`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicVersion {
    /// GICv2.
    V2,
    /// GICv3.
    V3,
}

impl GuestMachine {
    /// A machine laid out as QEMU `virt` ([`crate::layout`]): RAM at 0x4000_0000, the GIC at
    /// 0x0800_0000, the PL011 at 0x0900_0000 on SPI 1; no initrd, empty command line.
    pub fn qemu_virt(vcpus: u8, ram_size: u64, gic: GicVersion) -> Self {
        let gic = match gic {
            GicVersion::V3 => GicConfig::V3 {
                distributor: layout::GICD_BASE,
                redistributors: layout::GICR_BASE,
            },
            GicVersion::V2 => GicConfig::V2 {
                distributor: layout::GICD_BASE,
                cpu_interface: layout::GICC_BASE,
            },
        };
        Self {
            vcpus,
            ram_base: layout::RAM_BASE,
            ram_size,
            gic,
            uart: UartConfig {
                base: layout::UART_BASE,
                spi: layout::UART_SPI,
            },
            bootargs: String::new(),
            initrd: None,
            devices: Vec::new(),
        }
    }

    /// Adds `device` to the machine, unless its frame overlaps the guest's RAM, the GIC's or
    /// the UART's frames or another device's, or one of its interrupts is the UART's or
    /// another device's: then the device is left out and the error says what it clashes
    /// with (a device tree with two owners of an address or an interrupt is one no driver
    /// can trust).
    ///
    /// # Errors
    ///
    /// [`FdtError::DeviceConflict`], and the machine is unchanged.
    pub fn admit(&mut self, device: Device) -> Result<(), FdtError> {
        self.conflict(&device)?;
        self.devices.push(device);
        Ok(())
    }

    /// The frames the machine already has, each with what it is.
    fn frames(&self) -> Vec<(u64, u64, String)> {
        let mut frames = vec![(
            self.ram_base,
            self.ram_size,
            String::from("the guest's RAM"),
        )];
        match self.gic {
            GicConfig::V3 {
                distributor,
                redistributors,
            } => {
                frames.push((
                    distributor,
                    layout::GICD_V3_SIZE,
                    String::from("the GIC distributor"),
                ));
                frames.push((
                    redistributors,
                    layout::GICR_FRAME_SIZE * u64::from(self.vcpus),
                    String::from("the GIC redistributors"),
                ));
            }
            GicConfig::V2 {
                distributor,
                cpu_interface,
            } => {
                frames.push((
                    distributor,
                    layout::GICD_V2_SIZE,
                    String::from("the GIC distributor"),
                ));
                frames.push((
                    cpu_interface,
                    layout::GICC_V2_SIZE,
                    String::from("the GIC CPU interface"),
                ));
            }
        }
        frames.push((self.uart.base, layout::UART_SIZE, String::from("the UART")));
        for other in &self.devices {
            frames.push((other.base, other.size, format!("device {}", other.name)));
        }
        frames
    }

    /// What `device` clashes with, if anything.
    fn conflict(&self, device: &Device) -> Result<(), FdtError> {
        let clash = |with: String| FdtError::DeviceConflict {
            device: device.name.clone(),
            with,
        };
        for (base, size, what) in self.frames() {
            let end = base.saturating_add(size);
            if device.base < end && base < device.end() {
                return Err(clash(format!("{what} at {base:#x}..{end:#x}")));
            }
        }
        let uart_intid = layout::SPI_BASE_INTID + self.uart.spi;
        for &intid in &device.irqs {
            if intid == uart_intid {
                return Err(clash(format!("the UART's INTID {intid}")));
            }
            if let Some(other) = self.devices.iter().find(|d| d.irqs.contains(&intid)) {
                return Err(clash(format!("device {}'s INTID {intid}", other.name)));
            }
        }
        Ok(())
    }

    /// The UART node's path, which `/chosen/stdout-path` names: `/pl011@<base>`.
    pub fn uart_path(&self) -> String {
        format!("/pl011@{:x}", self.uart.base)
    }
}

/// Why a device tree could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FdtError {
    /// A machine with no vCPU.
    NoVcpus,
    /// More vCPUs than the GIC version allows.
    TooManyVcpus {
        /// How many were asked for.
        vcpus: u8,
        /// The limit.
        max: u8,
    },
    /// RAM is empty or wraps around the address space.
    BadRam,
    /// The initrd range wraps around the address space.
    BadInitrd,
    /// A device passed through clashes with the machine or another device
    /// ([`GuestMachine::admit`]).
    DeviceConflict {
        /// The device's name.
        device: String,
        /// What it clashes with.
        with: String,
    },
    /// `vm-fdt` refused (a NUL in the command line, say).
    Writer(String),
}

impl fmt::Display for FdtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoVcpus => f.write_str("the guest has no vCPU"),
            Self::TooManyVcpus { vcpus, max } => {
                write!(
                    f,
                    "the guest has {vcpus} vCPUs, more than the {max} its GIC can address"
                )
            }
            Self::BadRam => {
                f.write_str("the guest's RAM is empty or wraps around the address space")
            }
            Self::BadInitrd => f.write_str("the initrd's range wraps around the address space"),
            Self::DeviceConflict { device, with } => {
                write!(f, "device {device} clashes with {with}")
            }
            Self::Writer(why) => write!(f, "the device tree could not be written: {why}"),
        }
    }
}

impl core::error::Error for FdtError {}

impl From<vm_fdt::Error> for FdtError {
    fn from(error: vm_fdt::Error) -> Self {
        Self::Writer(error.to_string())
    }
}

/// Builds the device tree blob for `machine`.
///
/// # Errors
///
/// [`FdtError`] when the machine makes no sense (no vCPU, too many, empty RAM, wrapping
/// ranges, devices that clash) or `vm-fdt` refuses a value (a NUL in `bootargs`).
pub fn build(machine: &GuestMachine) -> Result<Vec<u8>, FdtError> {
    check(machine)?;
    let mut fdt = FdtWriter::new()?;
    let root = fdt.begin_node("")?;
    fdt.property_string("compatible", MACHINE_COMPATIBLE)?;
    fdt.property_string("model", MACHINE_COMPATIBLE)?;
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;
    fdt.property_u32("interrupt-parent", GIC_PHANDLE)?;

    let psci = fdt.begin_node("psci")?;
    fdt.property_string_list(
        "compatible",
        strings(&["arm,psci-1.0", "arm,psci-0.2", "arm,psci"]),
    )?;
    fdt.property_string("method", "hvc")?;
    fdt.end_node(psci)?;

    let memory = fdt.begin_node(&format!("memory@{:x}", machine.ram_base))?;
    fdt.property_string("device_type", "memory")?;
    fdt.property_array_u64("reg", &[machine.ram_base, machine.ram_size])?;
    fdt.end_node(memory)?;

    let cpus = fdt.begin_node("cpus")?;
    fdt.property_u32("#address-cells", 1)?;
    fdt.property_u32("#size-cells", 0)?;
    for index in 0..machine.vcpus {
        let cpu = fdt.begin_node(&format!("cpu@{index:x}"))?;
        fdt.property_string("device_type", "cpu")?;
        fdt.property_string("compatible", "arm,armv8")?;
        fdt.property_u32("reg", u32::from(index))?;
        fdt.property_string("enable-method", "psci")?;
        fdt.end_node(cpu)?;
    }
    fdt.end_node(cpus)?;

    write_gic(&mut fdt, machine)?;
    write_timer(&mut fdt, machine)?;

    let clock = fdt.begin_node("apb-pclk")?;
    fdt.property_string("compatible", "fixed-clock")?;
    fdt.property_u32("#clock-cells", 0)?;
    fdt.property_u32("clock-frequency", APB_CLOCK_HZ)?;
    fdt.property_string("clock-output-names", "clk24mhz")?;
    fdt.property_phandle(CLOCK_PHANDLE)?;
    fdt.end_node(clock)?;

    let uart = fdt.begin_node(&machine.uart_path()[1..])?;
    fdt.property_string_list("compatible", strings(&["arm,pl011", "arm,primecell"]))?;
    fdt.property_array_u64("reg", &[machine.uart.base, layout::UART_SIZE])?;
    fdt.property_array_u32("interrupts", &[GIC_SPI, machine.uart.spi, IRQ_LEVEL_HIGH])?;
    fdt.property_array_u32("clocks", &[CLOCK_PHANDLE, CLOCK_PHANDLE])?;
    fdt.property_string_list("clock-names", strings(&["uartclk", "apb_pclk"]))?;
    fdt.end_node(uart)?;

    for device in &machine.devices {
        write_device(&mut fdt, device)?;
    }

    let chosen = fdt.begin_node("chosen")?;
    fdt.property_string("bootargs", &machine.bootargs)?;
    fdt.property_string("stdout-path", &machine.uart_path())?;
    if let Some(initrd) = machine.initrd {
        fdt.property_u64("linux,initrd-start", initrd.start)?;
        fdt.property_u64("linux,initrd-end", initrd.end())?;
    }
    fdt.end_node(chosen)?;

    fdt.end_node(root)?;
    Ok(fdt.finish()?)
}

fn check(machine: &GuestMachine) -> Result<(), FdtError> {
    let max = match machine.gic {
        GicConfig::V3 { .. } => layout::MAX_VCPUS_GICV3,
        GicConfig::V2 { .. } => layout::MAX_VCPUS_GICV2,
    };
    if machine.vcpus == 0 {
        return Err(FdtError::NoVcpus);
    }
    if machine.vcpus > max {
        return Err(FdtError::TooManyVcpus {
            vcpus: machine.vcpus,
            max,
        });
    }
    if machine.ram_size == 0 || machine.ram_base.checked_add(machine.ram_size).is_none() {
        return Err(FdtError::BadRam);
    }
    if machine
        .initrd
        .is_some_and(|initrd| initrd.start.checked_add(initrd.size).is_none())
    {
        return Err(FdtError::BadInitrd);
    }
    // Each device against the machine and the devices before it, as `admit` would have.
    let mut admitted = GuestMachine {
        devices: Vec::new(),
        ..machine.clone()
    };
    for device in &machine.devices {
        admitted.admit(device.clone())?;
    }
    Ok(())
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_string()).collect()
}

fn write_gic(fdt: &mut FdtWriter, machine: &GuestMachine) -> Result<(), FdtError> {
    let gic = fdt.begin_node(&format!("intc@{:x}", machine.gic.distributor()))?;
    match machine.gic {
        GicConfig::V3 {
            distributor,
            redistributors,
        } => {
            fdt.property_string("compatible", "arm,gic-v3")?;
            let redistributors_size = layout::GICR_FRAME_SIZE * u64::from(machine.vcpus);
            fdt.property_array_u64(
                "reg",
                &[
                    distributor,
                    layout::GICD_V3_SIZE,
                    redistributors,
                    redistributors_size,
                ],
            )?;
            fdt.property_u32("#redistributor-regions", 1)?;
        }
        GicConfig::V2 {
            distributor,
            cpu_interface,
        } => {
            fdt.property_string("compatible", "arm,cortex-a15-gic")?;
            fdt.property_array_u64(
                "reg",
                &[
                    distributor,
                    layout::GICD_V2_SIZE,
                    cpu_interface,
                    layout::GICC_V2_SIZE,
                ],
            )?;
        }
    }
    fdt.property_null("interrupt-controller")?;
    fdt.property_u32("#interrupt-cells", 3)?;
    fdt.property_u32("#address-cells", 0)?;
    fdt.property_phandle(GIC_PHANDLE)?;
    fdt.end_node(gic)?;
    Ok(())
}

/// The timer PPIs' flags: level-high, plus the CPU mask in bits 15:8 with GICv2.
pub fn timer_flags(machine: &GuestMachine) -> u32 {
    match machine.gic {
        GicConfig::V3 { .. } => IRQ_LEVEL_HIGH,
        GicConfig::V2 { .. } => {
            let mask = (1u32 << machine.vcpus.min(layout::MAX_VCPUS_GICV2)) - 1;
            IRQ_LEVEL_HIGH | (mask << 8)
        }
    }
}

/// A device passed through: see [`crate::passthrough`] for the node.
fn write_device(fdt: &mut FdtWriter, device: &Device) -> Result<(), FdtError> {
    let node = fdt.begin_node(&device.node_name())?;
    if device.is_primecell() {
        fdt.property_string_list(
            "compatible",
            vec![device.compatible.clone(), String::from("arm,primecell")],
        )?;
    } else {
        fdt.property_string("compatible", &device.compatible)?;
    }
    fdt.property_array_u64("reg", &[device.base, device.size])?;
    if !device.irqs.is_empty() {
        let mut interrupts = vec![];
        for &intid in &device.irqs {
            let spi = intid.saturating_sub(layout::SPI_BASE_INTID);
            interrupts.extend_from_slice(&[GIC_SPI, spi, IRQ_LEVEL_HIGH]);
        }
        fdt.property_array_u32("interrupts", &interrupts)?;
    }
    if device.is_primecell() {
        fdt.property_u32("clocks", CLOCK_PHANDLE)?;
        fdt.property_string("clock-names", "apb_pclk")?;
    }
    fdt.end_node(node)?;
    Ok(())
}

fn write_timer(fdt: &mut FdtWriter, machine: &GuestMachine) -> Result<(), FdtError> {
    let flags = timer_flags(machine);
    let mut interrupts = vec![];
    for ppi in TIMER_PPIS {
        interrupts.extend_from_slice(&[GIC_PPI, ppi, flags]);
    }
    let timer = fdt.begin_node("timer")?;
    fdt.property_string("compatible", "arm,armv8-timer")?;
    fdt.property_array_u32("interrupts", &interrupts)?;
    fdt.property_null("always-on")?;
    fdt.end_node(timer)?;
    Ok(())
}

#[cfg(test)]
mod tests;
