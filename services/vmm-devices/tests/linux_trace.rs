// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Replays what Linux 6.1 did to QEMU's GICv3 and PL011 while booting (see the fixture's
//! header) against this crate's models, and checks that every read gets QEMU's answer,
//! except where the models differ on purpose:
//!
//! - GICD_TYPER: only ITLinesNumber is compared (QEMU also has LPIs, 16 ID bits and a
//!   different CPUNumber); GICD_IIDR is ours ([`IIDR`]).
//! - GICR_CTLR: QEMU sets CES (LPIs may be disabled); we have no LPIs and read 0.
//! - GICR_TYPER: QEMU sets PLPIS and CommonLPIAff; the rest (affinity, processor number,
//!   Last) must match.
//! - PL011 RIS/MIS: we raise the receive timeout (bit 6) along with RXIS; QEMU only RXIS.
//! - PL011 FR.RXFF: QEMU's FIFO holds 16 bytes, ours 32.
//!
//! The PL011's interrupt line must follow QEMU's at every step, and the GIC must inject the
//! UART's SPI and each vCPU's timer PPI.

use vmm_devices::gic::{GicV3Model, IIDR, V3Region};
use vmm_devices::pl011::{FR_RXFF, INT_RT, Pl011, offset};

const TRACE: &str = include_str!("fixtures/linux-6.1-virt-gicv3-smp2.trace");

fn number(word: &str) -> u64 {
    match word.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).unwrap(),
        None => word.parse().unwrap(),
    }
}

/// The part of a GIC register's value that must agree with QEMU's.
fn gic_compared(region: V3Region, register: u64, value: u64) -> u64 {
    match (region, register) {
        (V3Region::Distributor, 0x4) => value & 0x1f,
        (V3Region::Redistributor(_), 0x8) => value & !(1 | 3 << 24),
        _ => value,
    }
}

#[test]
fn linux_boot_trace_replays_against_the_models() {
    let mut gic = GicV3Model::new(2, 224);
    let mut uart = Pl011::new();
    let (mut spi_injections, mut ppi_injections) = (0, [0; 2]);
    let mut events = 0;
    for (index, line) in TRACE.lines().enumerate() {
        let at = index + 1;
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        events += 1;
        let words: Vec<&str> = line.split_whitespace().collect();
        let n = |i: usize| number(words[i]);
        match words[0] {
            "gd" | "gr" => {
                let (region, rest) = if words[0] == "gd" {
                    (V3Region::Distributor, &words[1..])
                } else {
                    (V3Region::Redistributor(n(1) as u8), &words[2..])
                };
                let (register, size, value) =
                    (number(rest[1]), number(rest[2]) as u8, number(rest[3]));
                if rest[0] == "r" {
                    let ours = gic.read(region, register, size);
                    let expected = match (region, register) {
                        (V3Region::Distributor, 0x8) | (V3Region::Redistributor(_), 0x4) => {
                            u64::from(IIDR)
                        }
                        (V3Region::Redistributor(_), 0x0) => 0,
                        _ => gic_compared(region, register, value),
                    };
                    assert_eq!(
                        gic_compared(region, register, ours),
                        expected,
                        "line {at}: {line}"
                    );
                } else {
                    spi_injections += gic
                        .write(region, register, size, value)
                        .injections()
                        .count();
                }
            }
            "gl" => spi_injections += usize::from(gic.set_line(n(1) as u32, n(2) == 1).is_some()),
            "gp" => {
                if gic
                    .set_ppi_line(n(1) as u8, n(2) as u32, n(3) == 1)
                    .is_some()
                {
                    ppi_injections[n(1) as usize] += 1;
                }
            }
            "ur" => {
                let (register, expected) = (n(1), n(2) as u32);
                let ours = uart.read(register, 4);
                let ignored = match register {
                    offset::RIS | offset::MIS => INT_RT,
                    offset::FR => FR_RXFF,
                    _ => 0,
                };
                assert_eq!(ours & !ignored, expected & !ignored, "line {at}: {line}");
            }
            "uw" => uart.write(n(1), 4, n(2) as u32),
            "ui" => assert_eq!(uart.push_input(&[n(1) as u8]), 1, "line {at}"),
            "uq" => assert_eq!(uart.interrupt_level(), n(1) == 1, "line {at}: {line}"),
            "ut" => {
                for _ in 0..n(1) {
                    assert_eq!(uart.read(offset::FR, 4), n(2) as u32, "line {at}");
                    uart.write(offset::DR, 4, u32::from(b'.'));
                    assert_eq!(uart.interrupt_level(), n(3) == 1, "line {at}");
                }
            }
            other => panic!("line {at}: unknown event {other}"),
        }
    }
    assert!(events > 3000, "{events} events");
    assert!(spi_injections > 0, "the UART's SPI was never injected");
    assert!(
        ppi_injections.iter().all(|&count| count > 100),
        "{ppi_injections:?}"
    );
    assert!(uart.take_output().len() > 10_000);
}
