// SPDX-License-Identifier: Apache-2.0 OR MIT
//! What the host tests of several modules share: QEMU virt's device trees
//! and peripherals, and a minimal ELF file.

use crate::devices::Peripheral;

/// QEMU virt's device tree with a GICv3, 4 cores and 512 MiB.
pub(crate) const GICV3: &[u8] = include_bytes!("../tests/fixtures/qemu-virt-gicv3-smp4-512m.dtb");
/// The same with a GICv2.
pub(crate) const GICV2: &[u8] = include_bytes!("../tests/fixtures/qemu-virt-gicv2-smp4-512m.dtb");

/// QEMU 10's `raspi4b` with Debian's `bcm2711-rpi-4-b.dtb`, as QEMU passes
/// it to the kernel (memory node filled in, `/memreserve/` for the spin
/// table), dumped with `-M raspi4b,dumpdtb=`.
/// QEMU deletes two nodes with `FDT_NOP`s, which the kernel moves out of
/// the root before it reads the tree: see [`rpi4b`].
pub(crate) const RPI4B: &[u8] = include_bytes!("../tests/fixtures/rpi4b-qemu10.dtb");

/// [`RPI4B`] as the kernel reads it, once
/// [`move_nops_out`](crate::devicetree::move_nops_out) has run.
pub(crate) fn rpi4b() -> Vec<u8> {
    let mut blob = RPI4B.to_vec();
    crate::devicetree::move_nops_out(&mut blob).expect("QEMU's tree can be walked");
    blob
}

/// QEMU virt's `platform.toml` devices: uart0, rtc0, gpio0.
pub(crate) const QEMU_VIRT: &[Peripheral] = &[
    Peripheral {
        base: 0x0900_0000,
        size: 0x1000,
        irqs: &[33],
    },
    Peripheral {
        base: 0x0901_0000,
        size: 0x1000,
        irqs: &[34],
    },
    Peripheral {
        base: 0x0903_0000,
        size: 0x1000,
        irqs: &[39],
    },
];

/// A minimal AArch64 ELF file: one PT_LOAD segment of `payload` at
/// `address`, `memory_size` bytes in memory, entry 4 bytes in.
pub(crate) fn elf(address: u64, payload: &[u8], memory_size: u64) -> Vec<u8> {
    let mut e = vec![0u8; 64 + 56];
    e[..6].copy_from_slice(b"\x7fELF\x02\x01");
    e[18..20].copy_from_slice(&183u16.to_le_bytes());
    e[24..32].copy_from_slice(&address.wrapping_add(4).to_le_bytes());
    e[32..40].copy_from_slice(&64u64.to_le_bytes());
    e[54..56].copy_from_slice(&56u16.to_le_bytes());
    e[56..58].copy_from_slice(&1u16.to_le_bytes());
    let ph = 64;
    e[ph..ph + 4].copy_from_slice(&1u32.to_le_bytes());
    e[ph + 8..ph + 16].copy_from_slice(&120u64.to_le_bytes());
    e[ph + 16..ph + 24].copy_from_slice(&address.to_le_bytes());
    e[ph + 32..ph + 40].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    e[ph + 40..ph + 48].copy_from_slice(&memory_size.to_le_bytes());
    e.extend_from_slice(payload);
    e
}

/// An AArch64 ELF file with a PT_LOAD segment for each `(address,
/// memory_size, flags)`, each with (up to) four bytes in the file.
pub(crate) fn elf_segments(segments: &[(u64, u64, u32)]) -> Vec<u8> {
    let mut e = elf(0, b"", 0);
    let count = u16::try_from(segments.len()).expect("a few segments");
    e[56..58].copy_from_slice(&count.to_le_bytes());
    e.truncate(64);
    let data = 64 + 56 * segments.len() as u64;
    for (i, &(address, memory_size, flags)) in segments.iter().enumerate() {
        let mut ph = [0u8; 56];
        ph[..4].copy_from_slice(&1u32.to_le_bytes());
        ph[4..8].copy_from_slice(&flags.to_le_bytes());
        ph[8..16].copy_from_slice(&(data + 4 * i as u64).to_le_bytes());
        ph[16..24].copy_from_slice(&address.to_le_bytes());
        ph[32..40].copy_from_slice(&memory_size.min(4).to_le_bytes());
        ph[40..48].copy_from_slice(&memory_size.to_le_bytes());
        e.extend_from_slice(&ph);
    }
    e.extend(std::iter::repeat_n(0xd5, 4 * segments.len()));
    e
}
