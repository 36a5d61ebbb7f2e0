// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Tests of what the two models share.

use alloc::vec::Vec;

use super::state::{BitOp, Field};
use super::{Action, Actions, Injection, bitmap_register, extract, spi_count, valid_access};

#[test]
fn spi_counts_round_to_whole_registers() {
    assert_eq!(spi_count(0), 0);
    assert_eq!(spi_count(1), 32);
    assert_eq!(spi_count(64), 64);
    assert_eq!(spi_count(65), 96);
    assert_eq!(spi_count(u32::MAX), 960);
}

#[test]
fn accesses_are_naturally_aligned_powers_of_two() {
    assert!(valid_access(0x100, 4));
    assert!(valid_access(0x6008, 8));
    assert!(valid_access(0x401, 1));
    assert!(valid_access(0x402, 2));
    assert!(!valid_access(0x402, 4));
    assert!(!valid_access(0x6004, 8));
    assert!(!valid_access(0x100, 3));
    assert!(!valid_access(0x100, 0));
    assert!(!valid_access(0x100, 16));
}

#[test]
fn narrow_reads_take_their_part() {
    let register = 0x1122_3344_5566_7788;
    assert_eq!(extract(register, 0x10, 0x10, 8), register);
    assert_eq!(extract(register, 0x10, 0x14, 4), 0x1122_3344);
    assert_eq!(extract(register, 0x10, 0x12, 2), 0x5566);
    assert_eq!(extract(register, 0x10, 0x17, 1), 0x11);
}

#[test]
fn bitmap_registers_decode() {
    assert_eq!(bitmap_register(0x080), Some((Field::Group, None, 0)));
    assert_eq!(
        bitmap_register(0x104),
        Some((Field::Enabled, Some(BitOp::SetEnable), 1))
    );
    assert_eq!(
        bitmap_register(0x1fc),
        Some((Field::Enabled, Some(BitOp::ClearEnable), 31))
    );
    assert_eq!(
        bitmap_register(0x208),
        Some((Field::Pending, Some(BitOp::SetPending), 2))
    );
    assert_eq!(
        bitmap_register(0x280),
        Some((Field::Pending, Some(BitOp::ClearPending), 0))
    );
    assert_eq!(
        bitmap_register(0x300),
        Some((Field::Active, Some(BitOp::SetActive), 0))
    );
    assert_eq!(
        bitmap_register(0x384),
        Some((Field::Active, Some(BitOp::ClearActive), 1))
    );
    assert_eq!(bitmap_register(0x07c), None);
    assert_eq!(bitmap_register(0x400), None);
}

#[test]
fn actions_keep_their_order() {
    let injection = Injection {
        intid: 33,
        vcpu: 1,
        priority: 0xa0,
        group1: true,
        source: None,
    };
    let mut actions = Actions::default();
    assert!(actions.is_empty());
    actions.push(Action::Retract { intid: 33, vcpu: 0 });
    actions.push(Action::Inject(injection));
    let mut more = Actions::default();
    more.push(Action::Deactivate { intid: 34, vcpu: 0 });
    actions.extend(more);
    assert_eq!(actions.len(), 3);
    assert_eq!(actions.injections().collect::<Vec<_>>(), [injection]);
    assert_eq!(
        actions.as_slice()[2],
        Action::Deactivate { intid: 34, vcpu: 0 }
    );
    let all: Vec<Action> = actions.into_iter().collect();
    assert_eq!(all[0], Action::Retract { intid: 33, vcpu: 0 });
}
