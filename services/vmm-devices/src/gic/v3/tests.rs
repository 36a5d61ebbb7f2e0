// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Tests of the GICv3 model, starting from what Linux 6.1 does at boot.

use alloc::vec::Vec;

use proptest::prelude::{Just, Strategy, any, prop_assert, prop_assert_eq, prop_oneof, proptest};

use super::super::{Action, Actions, IIDR, Injection};
use super::{GicV3Model, V3Layout, V3Region};
use crate::layout::{GICD_BASE, GICR_BASE};

const D: V3Region = V3Region::Distributor;
const SGI: u64 = 0x1_0000;

fn r(vcpu: u8) -> V3Region {
    V3Region::Redistributor(vcpu)
}

/// What `gic_init_bases`, `gic_dist_init` and `gic_cpu_init` (on every CPU) do, checking what
/// Linux checks on the way. Returns the GIC ready for `request_irq`.
fn linux_boot(vcpus: u8) -> GicV3Model {
    let mut gic = GicV3Model::new(vcpus, 64);
    let mut actions = Actions::default();
    // gic_validate_dist_version, gic_init_bases.
    assert_eq!(gic.read(D, 0xffe8, 4) & 0xf0, 0x30);
    let typer = gic.read(D, 0x4, 4);
    let lines = ((typer & 0x1f) + 1) * 32;
    assert_eq!(lines, 96);
    assert_eq!((typer >> 19) & 0x1f, 9, "IDbits");
    assert_eq!(
        typer & (1 << 17 | 1 << 16 | 1 << 8 | 1 << 26),
        0,
        "no LPIs, MBIs, ESPIs, RSS"
    );
    assert_eq!(gic.read(D, 0x8, 4), u64::from(IIDR));
    assert_eq!(gic.read(D, 0xc, 4), 0);
    // gic_dist_init.
    actions.extend(gic.write(D, 0x0, 4, 0));
    assert_eq!(gic.read(D, 0x0, 4) & (1 << 31), 0, "RWP");
    for i in (32..lines).step_by(32) {
        actions.extend(gic.write(D, 0x80 + i / 8, 4, 0xffff_ffff));
    }
    for i in (32..lines).step_by(16) {
        actions.extend(gic.write(D, 0xc00 + i / 4, 4, 0));
    }
    for i in (32..lines).step_by(4) {
        actions.extend(gic.write(D, 0x400 + i, 4, 0xa0a0_a0a0));
    }
    for i in (32..lines).step_by(32) {
        actions.extend(gic.write(D, 0x380 + i / 8, 4, 0xffff_ffff));
        actions.extend(gic.write(D, 0x180 + i / 8, 4, 0xffff_ffff));
    }
    actions.extend(gic.write(D, 0x0, 4, 1 << 4 | 1 << 1 | 1));
    for i in 32..lines {
        actions.extend(gic.write(D, 0x6000 + 8 * i, 8, 0));
    }
    // gic_cpu_init on each CPU: find the redistributor, wake it, configure SGIs and PPIs.
    for cpu in 0..vcpus {
        let mut frame = 0;
        loop {
            assert_eq!(gic.read(r(frame), 0xffe8, 4) & 0xf0, 0x30);
            let typer = gic.read(r(frame), 0x8, 8);
            assert_eq!(typer & 0b10, 0, "VLPIS");
            assert_eq!((typer >> 27) & 0x1f, 0, "PPInum: 16 PPIs");
            if typer >> 32 == u64::from(cpu) {
                break;
            }
            assert_eq!(typer & (1 << 4), 0, "CPU {cpu} not found before Last");
            frame += 1;
        }
        let waker = gic.read(r(frame), 0x14, 4);
        actions.extend(gic.write(r(frame), 0x14, 4, waker & !0b10));
        assert_eq!(gic.read(r(frame), 0x14, 4) & 0b100, 0, "ChildrenAsleep");
        actions.extend(gic.write(r(frame), SGI + 0x80, 4, 0xffff_ffff));
        actions.extend(gic.write(r(frame), SGI + 0x380, 4, 0xffff_ffff));
        actions.extend(gic.write(r(frame), SGI + 0x180, 4, 0xffff_ffff));
        for i in (0..32).step_by(4) {
            actions.extend(gic.write(r(frame), SGI + 0x400 + i, 4, 0xa0a0_a0a0));
        }
        // Then each of the seven IPIs is enabled as it is requested.
        for ipi in 0..7 {
            actions.extend(gic.write(r(frame), SGI + 0x100, 4, 1 << ipi));
        }
    }
    assert!(actions.is_empty(), "{actions:?}");
    gic
}

/// `request_irq` of a level-high SPI: type, then unmask.
fn enable_spi(gic: &mut GicV3Model, intid: u32) -> Actions {
    let config = 0xc00 + u64::from(intid / 16) * 4;
    let value = gic.read(D, config, 4) & !(0b11 << ((intid % 16) * 2));
    gic.write(D, config, 4, value);
    gic.write(D, 0x100 + u64::from(intid / 32) * 4, 4, 1 << (intid % 32))
}

fn injection(intid: u32, vcpu: u8) -> Injection {
    Injection {
        intid,
        vcpu,
        priority: 0xa0,
        group1: true,
        source: None,
    }
}

#[test]
fn linux_boots_on_one_to_sixteen_vcpus() {
    for vcpus in [1, 2, 4, 8, 16] {
        let gic = linux_boot(vcpus);
        assert_eq!(
            gic.read(D, 0x0, 4),
            0x53,
            "DS | ARE | EnableGrp1 | EnableGrp0"
        );
        for intid in 32..96 {
            assert_eq!(gic.route(intid), Some(0));
            assert!(!gic.is_enabled(intid, 0));
        }
        for vcpu in 0..vcpus {
            assert!(gic.is_enabled(0, vcpu));
            assert!(gic.is_enabled(6, vcpu));
            assert!(!gic.is_enabled(7, vcpu));
            assert!(!gic.is_enabled(27, vcpu));
        }
    }
}

#[test]
fn redistributor_typer_names_each_vcpu_and_the_last() {
    let gic = GicV3Model::new(3, 64);
    for vcpu in 0..3u8 {
        let typer = gic.read(r(vcpu), 0x8, 8);
        assert_eq!(typer >> 32, u64::from(vcpu), "Affinity_Value");
        assert_eq!((typer >> 8) & 0xffff, u64::from(vcpu), "Processor_Number");
        assert_eq!(typer & (1 << 4) != 0, vcpu == 2, "Last");
        // 32-bit halves agree.
        assert_eq!(
            gic.read(r(vcpu), 0x8, 4) | (gic.read(r(vcpu), 0xc, 4) << 32),
            typer
        );
    }
}

#[test]
fn waker_sleeps_and_wakes() {
    let mut gic = GicV3Model::new(1, 64);
    assert_eq!(gic.read(r(0), 0x14, 4), 0b110);
    gic.write(r(0), 0x14, 4, 0);
    assert_eq!(gic.read(r(0), 0x14, 4), 0);
    gic.write(r(0), 0x14, 4, 0b10);
    assert_eq!(gic.read(r(0), 0x14, 4), 0b110);
}

#[test]
fn identification_and_lpi_registers() {
    let mut gic = GicV3Model::new(2, 64);
    assert_eq!(gic.read(D, 0xffe8, 4), 0x3b);
    assert_eq!(gic.read(r(1), 0xffe8, 4), 0x3b);
    assert_eq!(gic.read(r(1), 0x4, 4), u64::from(IIDR));
    // GICR_CTLR: no LPIs to enable, RWP and UWP clear.
    gic.write(r(0), 0x0, 4, u64::MAX);
    assert_eq!(gic.read(r(0), 0x0, 4), 0);
    // GICR_PROPBASER, GICR_PENDBASER.
    for offset in [0x70, 0x78] {
        gic.write(r(0), offset, 8, u64::MAX);
        assert_eq!(gic.read(r(0), offset, 8), 0, "{offset:#x}");
    }
    // IGRPMODR (single security state: RAZ/WI), NSACR, SGIR.
    for (region, offset) in [
        (D, 0xd04),
        (r(0), SGI + 0xd00),
        (D, 0xe08),
        (r(0), SGI + 0xe00),
    ] {
        gic.write(region, offset, 4, u32::MAX.into());
        assert_eq!(gic.read(region, offset, 4), 0);
    }
    assert!(gic.write(D, 0xf00, 4, 0x0001_0001).is_empty());
}

#[test]
fn a_device_line_is_injected_when_enabled() {
    let mut gic = linux_boot(2);
    assert!(enable_spi(&mut gic, 33).is_empty());
    assert_eq!(gic.set_line(33, true), Some(injection(33, 0)));
    // Staying high, nothing more; falling and rising again, once more.
    assert_eq!(gic.set_line(33, true), None);
    assert_eq!(gic.set_line(33, false), None);
    assert_eq!(gic.set_line(33, true), Some(injection(33, 0)));
}

#[test]
fn a_line_high_while_disabled_waits_for_the_enable() {
    let mut gic = linux_boot(2);
    assert_eq!(gic.set_line(33, true), None);
    assert!(gic.is_pending(33, 0));
    assert_eq!(gic.read(D, 0x204, 4), 0b10);
    let actions = enable_spi(&mut gic, 33);
    assert_eq!(actions.as_slice(), [Action::Inject(injection(33, 0))]);
    // A level line that fell before the enable is forgotten.
    gic.write(D, 0x184, 4, 1 << 1);
    gic.set_line(33, false);
    gic.set_line(34, true);
    gic.set_line(34, false);
    assert!(!gic.is_pending(34, 0));
    assert!(enable_spi(&mut gic, 34).is_empty());
}

#[test]
fn the_distributor_enable_releases_what_waited() {
    let mut gic = linux_boot(1);
    enable_spi(&mut gic, 40);
    gic.write(D, 0x0, 4, 0x10);
    assert_eq!(gic.set_line(40, true), None);
    let actions = gic.write(D, 0x0, 4, 0x12);
    assert_eq!(actions.injections().collect::<Vec<_>>(), [injection(40, 0)]);
}

#[test]
fn only_enabled_groups_deliver() {
    let mut gic = linux_boot(1);
    enable_spi(&mut gic, 35);
    // Group 0 interrupt, only group 1 enabled: waits.
    gic.write(D, 0x84, 4, 0xffff_ffff & !(1 << 3));
    gic.write(D, 0x0, 4, 0b10);
    assert_eq!(gic.set_line(35, true), None);
    let actions = gic.write(D, 0x0, 4, 0b11);
    let expected = Injection {
        group1: false,
        ..injection(35, 0)
    };
    assert_eq!(actions.injections().collect::<Vec<_>>(), [expected]);
}

#[test]
fn irouter_routes_spis() {
    let mut gic = linux_boot(4);
    enable_spi(&mut gic, 33);
    gic.write(D, 0x6000 + 33 * 8, 8, 2);
    assert_eq!(gic.route(33), Some(2));
    assert_eq!(gic.set_line(33, true), Some(injection(33, 2)));
    // IRM: any PE, which is vCPU 0.
    gic.write(D, 0x6000 + 33 * 8, 8, 1 << 31);
    assert_eq!(gic.route(33), Some(0));
    assert_eq!(gic.read(D, 0x6000 + 33 * 8, 8), 1 << 31);
    // No such vCPU, or Aff1 set: nowhere, and the line waits.
    gic.write(D, 0x6000 + 33 * 8, 8, 7);
    assert_eq!(gic.route(33), None);
    gic.write(D, 0x6000 + 33 * 8, 8, 0x101);
    assert_eq!(gic.route(33), None);
    gic.set_line(33, false);
    assert_eq!(gic.set_line(33, true), None);
    // Routing it to vCPU 3 with a 32-bit write to the low half delivers it.
    let actions = gic.write(D, 0x6000 + 33 * 8, 4, 3);
    assert_eq!(actions.injections().collect::<Vec<_>>(), [injection(33, 3)]);
    // Aff3 is RES0 and does not stick; the high half is writable alone.
    gic.write(D, 0x6000 + 33 * 8 + 4, 4, 0xff);
    assert_eq!(gic.read(D, 0x6000 + 33 * 8, 8), 3);
}

#[test]
fn guest_writes_to_ispendr_inject() {
    let mut gic = linux_boot(2);
    enable_spi(&mut gic, 50);
    let actions = gic.write(D, 0x204, 4, 1 << 18);
    assert_eq!(actions.as_slice(), [Action::Inject(injection(50, 0))]);
    // An SGI made pending through vCPU 1's SGI frame goes to vCPU 1.
    let actions = gic.write(r(1), SGI + 0x200, 4, 1 << 3);
    assert_eq!(actions.as_slice(), [Action::Inject(injection(3, 1))]);
    // Disabled: held pending, readable, released by the enable.
    gic.write(r(1), SGI + 0x180, 4, 1 << 4);
    assert!(gic.write(r(1), SGI + 0x200, 4, 1 << 4).is_empty());
    assert_eq!(gic.read(r(1), SGI + 0x200, 4), 1 << 4);
    let actions = gic.write(r(1), SGI + 0x100, 4, 1 << 4);
    assert_eq!(actions.as_slice(), [Action::Inject(injection(4, 1))]);
}

#[test]
fn clearing_pending_or_enable_retracts_and_active_deactivates() {
    let mut gic = linux_boot(2);
    enable_spi(&mut gic, 33);
    gic.write(D, 0x6000 + 33 * 8, 8, 1);
    gic.set_line(33, true);
    // ICENABLER: retract from vCPU 1; the line is still high, so re-enabling injects again.
    let actions = gic.write(D, 0x184, 4, 1 << 1);
    assert_eq!(actions.as_slice(), [Action::Retract { intid: 33, vcpu: 1 }]);
    let actions = gic.write(D, 0x104, 4, 1 << 1);
    assert_eq!(actions.as_slice(), [Action::Inject(injection(33, 1))]);
    // ICPENDR with the line high: retracted, and pending again at once.
    let actions = gic.write(D, 0x284, 4, 1 << 1);
    assert_eq!(
        actions.as_slice(),
        [
            Action::Retract { intid: 33, vcpu: 1 },
            Action::Inject(injection(33, 1))
        ]
    );
    // ICACTIVER: deactivate.
    gic.write(D, 0x304, 4, 1 << 1);
    assert_eq!(gic.read(D, 0x304, 4), 1 << 1);
    let actions = gic.write(D, 0x384, 4, 1 << 1);
    assert_eq!(
        actions.as_slice(),
        [Action::Deactivate { intid: 33, vcpu: 1 }]
    );
    assert_eq!(gic.read(D, 0x304, 4), 0);
    // Never injected: nothing to tell the kernel.
    assert!(gic.write(D, 0x384, 4, 1 << 2).is_empty());
}

#[test]
fn resample_reinjects_a_line_still_high() {
    let mut gic = linux_boot(1);
    enable_spi(&mut gic, 33);
    assert!(gic.set_line(33, true).is_some());
    assert_eq!(gic.resample(33, 0), Some(injection(33, 0)));
    gic.set_line(33, false);
    assert_eq!(gic.resample(33, 0), None);
    assert_eq!(gic.resample(2000, 0), None);
}

#[test]
fn edge_lines_latch() {
    let mut gic = linux_boot(1);
    gic.write(D, 0xc08, 4, 0b10 << 2); // INTID 33 edge-triggered.
    assert_eq!(gic.read(D, 0xc08, 4), 0b10 << 2);
    assert_eq!(gic.set_line(33, true), None);
    gic.set_line(33, false);
    assert!(gic.is_pending(33, 0));
    let actions = gic.write(D, 0x104, 4, 1 << 1);
    assert_eq!(actions.injections().count(), 1);
    gic.set_line(33, true);
    assert_eq!(gic.resample(33, 0), None, "edges are not resampled");
}

#[test]
fn ppis_are_per_vcpu_and_report_their_enables() {
    let mut gic = linux_boot(2);
    let actions = gic.write(r(1), SGI + 0x100, 4, 1 << 27);
    assert_eq!(
        actions.as_slice(),
        [Action::PpiEnable {
            intid: 27,
            vcpu: 1,
            enabled: true
        }]
    );
    assert!(gic.is_enabled(27, 1));
    assert!(!gic.is_enabled(27, 0));
    assert_eq!(gic.set_ppi_line(0, 27, true), None);
    assert_eq!(gic.set_ppi_line(1, 27, true), Some(injection(27, 1)));
    let actions = gic.write(r(1), SGI + 0x180, 4, 1 << 27);
    assert_eq!(
        actions.as_slice(),
        [
            Action::PpiEnable {
                intid: 27,
                vcpu: 1,
                enabled: false
            },
            Action::Retract { intid: 27, vcpu: 1 }
        ]
    );
    assert_eq!(gic.set_ppi_line(1, 3, true), None, "SGIs have no line");
    assert_eq!(gic.set_ppi_line(1, 40, true), None, "SPIs are not PPIs");
    assert_eq!(gic.set_line(27, true), None, "PPIs need a vCPU");
}

#[test]
fn sgis_from_icc_sgi1r() {
    let mut gic = linux_boot(4);
    // SGI 1 to vCPUs 1 and 3.
    let actions = gic.send_sgi(0, 1 << 24 | 0b1010);
    let targets: Vec<u8> = actions.injections().map(|i| i.vcpu).collect();
    assert_eq!(targets, [1, 3]);
    assert!(actions.injections().all(|i| i.intid == 1));
    // IRM: everyone but the sender.
    let targets: Vec<u8> = gic
        .send_sgi(2, 5 << 24 | 1 << 40)
        .injections()
        .map(|i| i.vcpu)
        .collect();
    assert_eq!(targets, [0, 1, 3]);
    // Another cluster (Aff1 = 1) or range (RS = 1) has nobody here.
    assert!(gic.send_sgi(0, 1 << 16 | 1).is_empty());
    assert!(gic.send_sgi(0, 1 << 44 | 1).is_empty());
    // A disabled SGI waits for its enable.
    gic.write(r(2), SGI + 0x180, 4, 1 << 6);
    assert!(gic.send_sgi(0, 6 << 24 | 1 << 2).is_empty());
    let actions = gic.write(r(2), SGI + 0x100, 4, 1 << 6);
    assert_eq!(actions.as_slice(), [Action::Inject(injection(6, 2))]);
}

#[test]
fn configuration_registers() {
    let mut gic = linux_boot(1);
    // SGIs are edge and read-only; PPIs and SPIs are writable.
    gic.write(r(0), SGI + 0xc00, 4, 0);
    assert_eq!(gic.read(r(0), SGI + 0xc00, 4), 0xaaaa_aaaa);
    gic.write(r(0), SGI + 0xc04, 4, 0xaaaa_aaaa);
    assert_eq!(gic.read(r(0), SGI + 0xc04, 4), 0xaaaa_aaaa);
    gic.write(r(0), SGI + 0xc04, 4, 0xffff_ffff);
    assert_eq!(
        gic.read(r(0), SGI + 0xc04, 4),
        0xaaaa_aaaa,
        "bit 0 of each pair is RES0"
    );
    gic.write(D, 0xc0c, 4, 0x8000_0002);
    assert_eq!(gic.read(D, 0xc0c, 4), 0x8000_0002);
    // The distributor's ICFGR0/1 are the redistributors' business.
    gic.write(D, 0xc04, 4, 0xaaaa_aaaa);
    assert_eq!(gic.read(D, 0xc04, 4), 0);
    // Beyond the implemented SPIs: RAZ/WI.
    gic.write(D, 0xc00 + 4 * 10, 4, 0xaaaa_aaaa);
    assert_eq!(gic.read(D, 0xc00 + 4 * 10, 4), 0);
}

#[test]
fn priorities_are_bytes_with_five_bits() {
    let mut gic = linux_boot(2);
    gic.write(D, 0x400 + 33, 1, 0xff);
    assert_eq!(gic.read(D, 0x400 + 33, 1), 0xf8);
    assert_eq!(gic.read(D, 0x420, 4), 0xa0a0_f8a0);
    gic.write(D, 0x422, 2, 0x1234);
    assert_eq!(gic.read(D, 0x420, 4), 0x1030_f8a0);
    // Bytes for INTIDs 0..31 in the distributor are RAZ/WI; the SGI frame has them.
    gic.write(D, 0x400, 4, 0xffff_ffff);
    assert_eq!(gic.read(D, 0x400, 4), 0);
    gic.write(r(1), SGI + 0x41c, 1, 0x88);
    assert_eq!(gic.read(r(1), SGI + 0x41c, 4), 0xa0a0_a088);
    assert_eq!(gic.read(r(0), SGI + 0x41c, 4), 0xa0a0_a0a0);
    // An injection carries its priority.
    enable_spi(&mut gic, 33);
    assert_eq!(gic.set_line(33, true).unwrap().priority, 0xf8);
}

#[test]
fn distributor_word_zero_is_raz_wi() {
    let mut gic = linux_boot(1);
    for offset in [0x80, 0x100, 0x180, 0x200, 0x280, 0x300, 0x380] {
        assert!(gic.write(D, offset, 4, 0xffff_ffff).is_empty());
        assert_eq!(gic.read(D, offset, 4), 0, "{offset:#x}");
    }
    assert!(gic.is_enabled(0, 0));
    assert!(!gic.is_enabled(32, 0));
}

#[test]
fn layout_locates_frames() {
    let layout = V3Layout {
        distributor: GICD_BASE,
        redistributors: GICR_BASE,
        vcpus: 2,
    };
    assert_eq!(layout.locate(GICD_BASE), Some((D, 0)));
    assert_eq!(layout.locate(GICD_BASE + 0xffe8), Some((D, 0xffe8)));
    assert_eq!(layout.locate(GICD_BASE + 0x1_0000), None);
    assert_eq!(layout.locate(GICR_BASE + 0x14), Some((r(0), 0x14)));
    assert_eq!(
        layout.locate(GICR_BASE + 0x2_0000 + SGI + 0x100),
        Some((r(1), SGI + 0x100))
    );
    assert_eq!(layout.locate(GICR_BASE + 0x4_0000), None);
    assert_eq!(layout.locate(0), None);
    assert_eq!(layout.locate(u64::MAX), None);
}

#[test]
fn nonsense_reads_zero_and_changes_nothing() {
    let mut gic = linux_boot(2);
    for (region, offset, size) in [
        (r(2), 0x8, 8),
        (r(255), SGI + 0x100, 4),
        (D, 0x101, 4),
        (D, 0x100, 3),
        (D, 0x100, 0),
        (D, 0x100, 16),
        (D, u64::MAX, 1),
        (D, 0x2_0000, 4),
        (r(0), 0x3_0000, 4),
    ] {
        assert_eq!(
            gic.read(region, offset, size),
            0,
            "{region:?} {offset:#x} {size}"
        );
        assert!(gic.write(region, offset, size, u64::MAX).is_empty());
    }
    assert!(!gic.is_enabled(2000, 0));
    assert!(!gic.is_enabled(0, 200));
    assert_eq!(gic.route(5), None);
    assert_eq!(gic.route(96), None);
    assert_eq!(gic.set_line(96, true), None);
    assert_eq!(gic.set_line(u32::MAX, true), None);
    assert_eq!(gic.set_ppi_line(9, 27, true), None);
    // A sender that does not exist still reaches every vCPU with IRM.
    assert_eq!(gic.send_sgi(200, 1 << 40).injections().count(), 2);
    let empty = GicV3Model::new(0, 0);
    assert_eq!(empty.read(D, 0x4, 4), 9 << 19);
    assert_eq!(GicV3Model::new(200, 5000).vcpus(), 16);
    assert_eq!(GicV3Model::new(1, 5000).spi_count(), 960);
    assert_eq!(GicV3Model::new(1, 33).spi_count(), 64);
}

#[derive(Clone, Debug)]
enum Op {
    Write(V3Region, u64, u8, u64),
    Read(V3Region, u64, u8),
    Line(u32, bool),
    PpiLine(u8, u32, bool),
    Sgi(u8, u64),
    Resample(u32, u8),
}

fn region() -> impl Strategy<Value = V3Region> {
    prop_oneof![
        Just(D),
        (0u8..6).prop_map(V3Region::Redistributor),
        any::<u8>().prop_map(V3Region::Redistributor)
    ]
}

fn offset() -> impl Strategy<Value = u64> {
    prop_oneof![
        (0u64..0x400).prop_map(|o| o & !3),
        0x6000u64..0x6400,
        Just(0x1_0000u64).prop_flat_map(|b| (0u64..0xd00).prop_map(move |o| b + (o & !3))),
        any::<u64>(),
        0u64..0x2_0000,
    ]
}

fn size() -> impl Strategy<Value = u8> {
    prop_oneof![Just(4u8), Just(8), Just(1), Just(2), any::<u8>()]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (region(), offset(), size(), any::<u64>()).prop_map(|(r, o, s, v)| Op::Write(r, o, s, v)),
        (region(), offset(), size()).prop_map(|(r, o, s)| Op::Read(r, o, s)),
        (0u32..200, any::<bool>()).prop_map(|(i, l)| Op::Line(i, l)),
        (0u8..6, 0u32..40, any::<bool>()).prop_map(|(v, i, l)| Op::PpiLine(v, i, l)),
        (0u8..6, any::<u64>()).prop_map(|(v, x)| Op::Sgi(v, x)),
        (0u32..200, 0u8..6).prop_map(|(i, v)| Op::Resample(i, v)),
    ]
}

proptest! {
    #[test]
    fn random_accesses_never_panic_and_injections_make_sense(ops in proptest::collection::vec(op(), 0..300)) {
        let mut gic = GicV3Model::new(4, 64);
        for op in ops {
            let mut actions = Actions::default();
            match op {
                Op::Write(region, offset, size, value) => actions = gic.write(region, offset, size, value),
                Op::Read(region, offset, size) => {
                    let value = gic.read(region, offset, size);
                    if size < 8 && matches!(size, 1 | 2 | 4) {
                        prop_assert!(value >> (u32::from(size) * 8) == 0);
                    }
                }
                Op::Line(intid, level) => actions.push_for_test(gic.set_line(intid, level)),
                Op::PpiLine(vcpu, intid, level) => actions.push_for_test(gic.set_ppi_line(vcpu, intid, level)),
                Op::Sgi(vcpu, value) => actions = gic.send_sgi(vcpu, value),
                Op::Resample(intid, vcpu) => actions.push_for_test(gic.resample(intid, vcpu)),
            }
            for injection in actions.injections() {
                prop_assert!(injection.vcpu < 4);
                prop_assert!(injection.intid < 96);
                prop_assert!(gic.is_enabled(injection.intid, injection.vcpu));
                prop_assert_eq!(injection.priority & 0x7, 0);
                prop_assert_eq!(injection.source, None);
            }
        }
    }

    #[test]
    fn enables_and_routes_read_back_as_written(
        writes in proptest::collection::vec((0u32..3, any::<u32>(), any::<bool>(), 0u8..4, any::<u64>()), 1..40),
    ) {
        let mut gic = GicV3Model::new(4, 64);
        let mut enabled = [[false; 96]; 4];
        let mut route = [Some(0u8); 96];
        for (word, value, set, vcpu, irouter) in writes {
            // Enables: word 0 through vCPU `vcpu`'s SGI frame, words 1 and 2 through the distributor.
            let (region, offset) = if word == 0 { (r(vcpu), SGI) } else { (D, 0) };
            let register = offset + if set { 0x100 } else { 0x180 } + u64::from(word) * 4;
            gic.write(region, register, 4, value.into());
            for bit in 0..32 {
                if value & (1 << bit) != 0 {
                    let intid = (word * 32 + bit) as usize;
                    let banks = if word == 0 { vcpu..vcpu + 1 } else { 0..4 };
                    for v in banks {
                        enabled[usize::from(v)][intid] = set;
                    }
                }
            }
            // A route for one SPI.
            let spi = 32 + (value % 64);
            gic.write(D, 0x6000 + 8 * u64::from(spi), 8, irouter);
            let irouter = irouter & 0x80ff_ffff;
            route[spi as usize] = if irouter & (1 << 31) != 0 {
                Some(0)
            } else if irouter < 4 {
                Some(irouter as u8)
            } else {
                None
            };
            prop_assert_eq!(gic.read(D, 0x6000 + 8 * u64::from(spi), 8), irouter);
        }
        for vcpu in 0..4u8 {
            for intid in 0..96u32 {
                prop_assert_eq!(gic.is_enabled(intid, vcpu), enabled[usize::from(vcpu)][intid as usize]);
            }
            let word0 = gic.read(r(vcpu), SGI + 0x100, 4);
            prop_assert_eq!(word0, gic.read(r(vcpu), SGI + 0x180, 4));
            for (bit, &on) in enabled[usize::from(vcpu)][..32].iter().enumerate() {
                prop_assert_eq!(word0 & (1 << bit) != 0, on);
            }
        }
        for intid in 32..96u32 {
            prop_assert_eq!(gic.route(intid), route[intid as usize]);
            let word = gic.read(D, 0x100 + u64::from(intid / 32) * 4, 4);
            prop_assert_eq!(word & (1 << (intid % 32)) != 0, enabled[0][intid as usize]);
        }
    }
}

impl Actions {
    fn push_for_test(&mut self, injection: Option<Injection>) {
        if let Some(injection) = injection {
            self.push(Action::Inject(injection));
        }
    }
}
