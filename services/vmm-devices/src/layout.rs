// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The guest's physical address map: QEMU `virt`'s, so that what boots there boots here.
//!
//! The addresses are what a monitor passes to [`crate::fdt::GuestMachine`] and to the GIC
//! models' layouts; the frame sizes are architectural (GIC, PL011) and used by both the
//! device tree and the models, so they are written once, here. Numbers from QEMU's
//! `hw/arm/virt.c` memory map, checked against the device trees QEMU 7.2 dumps
//! (`kernel/core/tests/fixtures/qemu-virt-*.dtb`).

/// Guest RAM starts here.
pub const RAM_BASE: u64 = 0x4000_0000;

/// The GIC distributor (both versions).
pub const GICD_BASE: u64 = 0x0800_0000;

/// The GICv2 CPU interface (the kernel maps the hardware's virtual CPU interface here).
pub const GICC_BASE: u64 = 0x0801_0000;

/// The first GICv3 redistributor; vCPU *i*'s is [`GICR_FRAME_SIZE`] × *i* above it.
pub const GICR_BASE: u64 = 0x080a_0000;

/// The PL011 UART.
pub const UART_BASE: u64 = 0x0900_0000;

/// The PL011's interrupt: SPI 1, INTID 33.
pub const UART_SPI: u32 = 1;

/// Size of the GICv3 distributor frame: 64 KiB.
pub const GICD_V3_SIZE: u64 = 0x1_0000;

/// Size of one GICv3 redistributor: RD_base and SGI_base, 64 KiB each.
pub const GICR_FRAME_SIZE: u64 = 0x2_0000;

/// Offset of a redistributor's SGI_base frame from its RD_base.
pub const GICR_SGI_OFFSET: u64 = 0x1_0000;

/// Size of the GICv2 distributor: 4 KiB.
pub const GICD_V2_SIZE: u64 = 0x1000;

/// Size of the GICv2 CPU interface: 8 KiB (GICC_DIR is at 0x1000).
pub const GICC_V2_SIZE: u64 = 0x2000;

/// Size of the PL011's register frame: 4 KiB.
pub const UART_SIZE: u64 = 0x1000;

/// The most vCPUs a GICv2 guest can have: the architecture's eight CPU interfaces.
pub const MAX_VCPUS_GICV2: u8 = 8;

/// The most vCPUs a GICv3 guest can have here: with Aff0 = vCPU index and Aff1..3 = 0, an
/// SGI's 16-bit target list (ICC_SGI1R_EL1) reaches Aff0 0..15 only.
pub const MAX_VCPUS_GICV3: u8 = 16;

/// The first SPI's INTID.
pub const SPI_BASE_INTID: u32 = 32;
