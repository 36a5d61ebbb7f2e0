// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Tests of the GICv2 model, starting from what Linux 6.1 does at boot.

use alloc::vec::Vec;

use proptest::prelude::{Just, Strategy, any, prop_assert, prop_assert_eq, prop_oneof, proptest};

use super::super::{Action, Actions, IIDR, Injection};
use super::GicV2Model;

/// What `gic_init_bases`, `gic_dist_init` and `gic_cpu_init` (on every CPU) do. Returns the
/// GIC ready for `request_irq`.
fn linux_boot(vcpus: u8) -> GicV2Model {
    let mut gic = GicV2Model::new(vcpus, 64);
    let mut actions = Actions::default();
    let lines = ((gic.read(0, 0x4, 4) & 0x1f) + 1) * 32;
    assert_eq!(lines, 96);
    // gic_get_cpumask, on the boot CPU.
    let mut mask = 0;
    for i in (0..32).step_by(4) {
        mask = gic.read(0, 0x800 + i, 4);
        mask |= mask >> 16;
        mask |= mask >> 8;
        if mask != 0 {
            break;
        }
    }
    assert_eq!(mask & 0xff, 1);
    let cpumask = (mask & 0xff) * 0x0101_0101;
    // gic_dist_init.
    actions.extend(gic.write(0, 0x0, 4, 0));
    for i in (32..lines).step_by(4) {
        actions.extend(gic.write(0, 0x800 + i, 4, cpumask));
    }
    for i in (32..lines).step_by(16) {
        actions.extend(gic.write(0, 0xc00 + i / 4, 4, 0));
    }
    for i in (32..lines).step_by(4) {
        actions.extend(gic.write(0, 0x400 + i, 4, 0xa0a0_a0a0));
    }
    for i in (32..lines).step_by(32) {
        actions.extend(gic.write(0, 0x380 + i / 8, 4, 0xffff_ffff));
        actions.extend(gic.write(0, 0x180 + i / 8, 4, 0xffff_ffff));
    }
    actions.extend(gic.write(0, 0x0, 4, 1));
    // gic_cpu_init on each CPU (gic_cpu_config).
    for cpu in 0..vcpus {
        let own = gic.read(cpu, 0x800, 4) & 0xff;
        assert_eq!(own, 1 << cpu);
        actions.extend(gic.write(cpu, 0x380, 4, 0xffff_ffff));
        actions.extend(gic.write(cpu, 0x180, 4, 0xffff_ffff));
        for i in (0..32).step_by(4) {
            actions.extend(gic.write(cpu, 0x400 + i, 4, 0xa0a0_a0a0));
        }
        // Then each of the seven IPIs is enabled as it is requested.
        for ipi in 0..7 {
            actions.extend(gic.write(cpu, 0x100, 4, 1 << ipi));
        }
    }
    assert!(actions.is_empty(), "{actions:?}");
    gic
}

fn injection(intid: u32, vcpu: u8) -> Injection {
    Injection {
        intid,
        vcpu,
        priority: 0xa0,
        group1: false,
        source: None,
    }
}

fn sgi(intid: u32, vcpu: u8, source: u8) -> Injection {
    Injection {
        source: Some(source),
        ..injection(intid, vcpu)
    }
}

#[test]
fn linux_boots_on_one_to_eight_vcpus() {
    for vcpus in 1..=8 {
        let gic = linux_boot(vcpus);
        assert_eq!(gic.read(0, 0x0, 4), 1);
        assert_eq!(
            (gic.read(0, 0x4, 4) >> 5) & 7,
            u64::from(vcpus - 1),
            "CPUNumber"
        );
        assert_eq!(gic.read(0, 0x4, 4) & (1 << 10), 0, "no Security Extensions");
        for intid in 32..96 {
            assert_eq!(gic.targets(intid), 1);
            assert_eq!(gic.route(intid), Some(0));
        }
        for vcpu in 0..vcpus {
            assert!(gic.is_enabled(6, vcpu));
            assert!(!gic.is_enabled(7, vcpu));
            assert!(!gic.is_enabled(27, vcpu));
        }
    }
}

#[test]
fn identification() {
    let gic = GicV2Model::new(2, 64);
    assert_eq!(gic.read(0, 0x8, 4), u64::from(IIDR));
    assert_eq!(gic.read(1, 0xfe8, 4), 0x2b);
}

#[test]
fn private_registers_are_banked() {
    let mut gic = linux_boot(2);
    gic.write(1, 0x100, 4, 1 << 27);
    assert!(gic.is_enabled(27, 1));
    assert!(!gic.is_enabled(27, 0));
    assert_eq!(gic.read(0, 0x100, 4), 0x7f);
    assert_eq!(gic.read(1, 0x100, 4), 0x7f | 1 << 27);
    gic.write(1, 0x41b, 1, 0x30);
    assert_eq!(gic.read(1, 0x418, 4), 0x30a0_a0a0);
    assert_eq!(gic.read(0, 0x418, 4), 0xa0a0_a0a0);
    // Private targets read as the accessing CPU and cannot be written.
    gic.write(1, 0x81c, 4, 0);
    assert_eq!(gic.read(1, 0x81c, 4), 0x0202_0202);
}

#[test]
fn spis_go_to_their_lowest_target() {
    let mut gic = linux_boot(4);
    gic.write(0, 0x104, 4, 1 << 1);
    gic.write(0, 0x821, 1, 0b1100);
    assert_eq!(gic.targets(33), 0b1100);
    assert_eq!(gic.route(33), Some(2));
    assert_eq!(gic.set_line(33, true), Some(injection(33, 2)));
    // Targets beyond the vCPUs do not stick; no target means the line waits.
    gic.write(0, 0x821, 1, 0xf0);
    assert_eq!(gic.targets(33), 0);
    assert_eq!(gic.route(33), None);
    gic.set_line(33, false);
    assert_eq!(gic.set_line(33, true), None);
    assert!(gic.is_pending(33, 0));
    let actions = gic.write(0, 0x820, 4, 0x0000_0800);
    assert_eq!(actions.injections().collect::<Vec<_>>(), [injection(33, 3)]);
}

#[test]
fn device_lines_follow_the_v3_rules() {
    let mut gic = linux_boot(1);
    assert_eq!(gic.set_line(40, true), None);
    let actions = gic.write(0, 0x104, 4, 1 << 8);
    assert_eq!(actions.as_slice(), [Action::Inject(injection(40, 0))]);
    assert_eq!(gic.set_line(40, true), None);
    assert_eq!(gic.resample(40, 0), Some(injection(40, 0)));
    gic.set_line(40, false);
    assert_eq!(gic.resample(40, 0), None);
    // The distributor's enable gates everything.
    gic.write(0, 0x0, 4, 0);
    assert_eq!(gic.set_line(40, true), None);
    let actions = gic.write(0, 0x0, 4, 1);
    assert_eq!(actions.injections().count(), 1);
    // PPIs have per-vCPU lines.
    gic.write(0, 0x100, 4, 1 << 27);
    assert_eq!(gic.set_ppi_line(0, 27, true), Some(injection(27, 0)));
}

#[test]
fn sgir_sends_with_the_source_recorded() {
    let mut gic = linux_boot(4);
    // gic_ipi_send_mask: a target list.
    let actions = gic.write(1, 0xf00, 4, 0b1001 << 16 | 3);
    assert_eq!(
        actions.injections().collect::<Vec<_>>(),
        [sgi(3, 0, 1), sgi(3, 3, 1)]
    );
    // All but self.
    let actions = gic.write(2, 0xf00, 4, 1 << 24 | 5);
    assert_eq!(
        actions.injections().collect::<Vec<_>>(),
        [sgi(5, 0, 2), sgi(5, 1, 2), sgi(5, 3, 2)]
    );
    // Self only, and the reserved filter.
    let actions = gic.write(2, 0xf00, 4, 2 << 24 | 0xff << 16 | 6);
    assert_eq!(actions.injections().collect::<Vec<_>>(), [sgi(6, 2, 2)]);
    assert!(gic.write(2, 0xf00, 4, 3 << 24 | 0xff << 16).is_empty());
    // SGIR is write-only.
    assert_eq!(gic.read(0, 0xf00, 4), 0);
}

#[test]
fn disabled_sgis_keep_each_source_pending() {
    let mut gic = linux_boot(4);
    gic.write(3, 0x180, 4, 1 << 2);
    assert!(gic.write(0, 0xf00, 4, 1 << 19 | 2).is_empty());
    assert!(gic.write(1, 0xf00, 4, 1 << 19 | 2).is_empty());
    // SPENDSGIR/CPENDSGIR show and change the sources; ISPENDR shows the SGI pending.
    assert_eq!(gic.read(3, 0xf20, 4), 0b11 << 16);
    assert_eq!(gic.read(3, 0xf12, 1), 0b11);
    assert_eq!(gic.read(3, 0x200, 4) & 0xffff, 1 << 2);
    gic.write(3, 0xf12, 1, 0b01);
    assert_eq!(gic.read(3, 0xf22, 1), 0b10);
    let actions = gic.write(3, 0x100, 4, 1 << 2);
    assert_eq!(actions.injections().collect::<Vec<_>>(), [sgi(2, 3, 1)]);
    assert_eq!(gic.read(3, 0xf20, 4), 0);
    // SPENDSGIR sets sources and injects at once when enabled.
    let actions = gic.write(3, 0xf23, 1, 0b100);
    assert_eq!(actions.injections().collect::<Vec<_>>(), [sgi(3, 3, 2)]);
}

#[test]
fn ispendr_and_icpendr_ignore_sgis() {
    let mut gic = linux_boot(2);
    assert!(gic.write(0, 0x200, 4, 0xffff).is_empty());
    assert!(!gic.is_pending(0, 0));
    // PPIs and SPIs are settable.
    gic.write(0, 0x100, 4, 1 << 20);
    let actions = gic.write(0, 0x200, 4, 1 << 20);
    assert_eq!(actions.as_slice(), [Action::Inject(injection(20, 0))]);
    let actions = gic.write(0, 0x280, 4, 1 << 20);
    assert_eq!(actions.as_slice(), [Action::Retract { intid: 20, vcpu: 0 }]);
}

#[test]
fn groups_and_configuration() {
    let mut gic = linux_boot(1);
    // Group 1 with only group 0 enabled waits; EnableGrp1 releases it, marked group 1.
    gic.write(0, 0x84, 4, 1 << 1);
    assert_eq!(gic.read(0, 0x84, 4), 1 << 1);
    gic.write(0, 0x104, 4, 1 << 1);
    assert_eq!(gic.set_line(33, true), None);
    let actions = gic.write(0, 0x0, 4, 0b11);
    let expected = Injection {
        group1: true,
        ..injection(33, 0)
    };
    assert_eq!(actions.injections().collect::<Vec<_>>(), [expected]);
    assert_eq!(gic.read(0, 0x0, 4), 0b11);
    // SGIs are edge and read-only; PPIs and SPIs writable.
    gic.write(0, 0xc00, 4, 0);
    assert_eq!(gic.read(0, 0xc00, 4), 0xaaaa_aaaa);
    gic.write(0, 0xc04, 4, 0x8000_0000);
    assert_eq!(gic.read(0, 0xc04, 4), 0x8000_0000);
    gic.write(0, 0xc08, 4, 0x2);
    assert_eq!(gic.read(0, 0xc08, 4), 0x2);
}

#[test]
fn nonsense_reads_zero_and_changes_nothing() {
    let mut gic = linux_boot(2);
    for (vcpu, offset, size) in [
        (2, 0x100, 4),
        (255, 0x0, 4),
        (0, 0x101, 4),
        (0, 0x100, 3),
        (0, 0x1000, 4),
        (0, u64::MAX, 1),
    ] {
        assert_eq!(gic.read(vcpu, offset, size), 0);
        assert!(gic.write(vcpu, offset, size, u64::MAX).is_empty());
    }
    // A halfword write to a bitmap register is ignored.
    assert!(gic.write(0, 0x104, 2, 0xffff).is_empty());
    assert!(!gic.is_enabled(32, 0));
    assert_eq!(gic.read(0, 0xe00, 4), 0, "NSACR");
    assert!(!gic.is_enabled(5000, 0));
    assert_eq!(gic.targets(5), 0);
    assert_eq!(gic.route(1000), None);
    assert_eq!(gic.set_line(10, true), None);
    assert_eq!(gic.set_ppi_line(7, 27, true), None);
    assert_eq!(GicV2Model::new(12, 64).vcpus(), 8);
    assert_eq!(GicV2Model::new(0, 0).read(0, 0x4, 4), 0);
}

#[derive(Clone, Debug)]
enum Op {
    Write(u8, u64, u8, u64),
    Read(u8, u64, u8),
    Line(u32, bool),
    Resample(u32, u8),
}

fn offset() -> impl Strategy<Value = u64> {
    prop_oneof![
        (0u64..0x400).prop_map(|o| o & !3),
        0x400u64..0xd00,
        0xf00u64..0xf30,
        any::<u64>(),
        0u64..0x1100
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let size = prop_oneof![Just(4u8), Just(1), Just(2), Just(8), any::<u8>()];
    prop_oneof![
        (0u8..10, offset(), size.clone(), any::<u64>())
            .prop_map(|(v, o, s, x)| Op::Write(v, o, s, x)),
        (0u8..10, offset(), size).prop_map(|(v, o, s)| Op::Read(v, o, s)),
        (0u32..200, any::<bool>()).prop_map(|(i, l)| Op::Line(i, l)),
        (0u32..200, 0u8..10).prop_map(|(i, v)| Op::Resample(i, v)),
    ]
}

proptest! {
    #[test]
    fn random_accesses_never_panic_and_injections_make_sense(ops in proptest::collection::vec(op(), 0..300)) {
        let mut gic = GicV2Model::new(4, 64);
        for op in ops {
            let injections: Vec<Injection> = match op {
                Op::Write(vcpu, offset, size, value) => gic.write(vcpu, offset, size, value).injections().collect(),
                Op::Read(vcpu, offset, size) => {
                    let _ = gic.read(vcpu, offset, size);
                    Vec::new()
                }
                Op::Line(intid, level) => gic.set_line(intid, level).into_iter().collect(),
                Op::Resample(intid, vcpu) => gic.resample(intid, vcpu).into_iter().collect(),
            };
            for injection in injections {
                prop_assert!(injection.vcpu < 4);
                prop_assert!(injection.intid < 96);
                prop_assert!(gic.is_enabled(injection.intid, injection.vcpu));
                prop_assert_eq!(injection.source.is_some(), injection.intid < 16);
                prop_assert!(injection.source.is_none_or(|s| s < 4));
            }
        }
    }

    #[test]
    fn enables_and_targets_read_back_as_written(
        writes in proptest::collection::vec((0u32..3, any::<u32>(), any::<bool>(), 0u8..4, any::<u8>()), 1..40),
    ) {
        let mut gic = GicV2Model::new(4, 64);
        let mut enabled = [[false; 96]; 4];
        let mut targets = [0u8; 96];
        for (word, value, set, vcpu, target) in writes {
            let register = if set { 0x100 } else { 0x180 } + u64::from(word) * 4;
            gic.write(vcpu, register, 4, value.into());
            for bit in (0..32).filter(|bit| value & (1 << bit) != 0) {
                let banks = if word == 0 { vcpu..vcpu + 1 } else { 0..4 };
                for v in banks {
                    enabled[usize::from(v)][(word * 32 + bit) as usize] = set;
                }
            }
            let spi = 32 + (value % 64);
            gic.write(vcpu, 0x800 + u64::from(spi), 1, target.into());
            targets[spi as usize] = target & 0xf;
        }
        for vcpu in 0..4u8 {
            for intid in 0..96u32 {
                prop_assert_eq!(gic.is_enabled(intid, vcpu), enabled[usize::from(vcpu)][intid as usize]);
                let word = gic.read(vcpu, 0x100 + u64::from(intid / 32) * 4, 4);
                prop_assert_eq!(word & (1 << (intid % 32)) != 0, enabled[usize::from(vcpu)][intid as usize]);
            }
        }
        for intid in 32..96u32 {
            prop_assert_eq!(gic.targets(intid), targets[intid as usize]);
            let lowest = (targets[intid as usize] != 0).then(|| targets[intid as usize].trailing_zeros() as u8);
            prop_assert_eq!(gic.route(intid), lowest);
            prop_assert_eq!(gic.read(0, 0x800 + u64::from(intid), 1), u64::from(targets[intid as usize]));
        }
    }
}
