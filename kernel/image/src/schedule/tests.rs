// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Host tests of the schedule and budget tables: a sample's encoding round
//! trip and where its windows fall, and every rule the kernel re-checks,
//! broken once each.

use super::{BudgetProblem, BudgetSpec, Owners, ScheduleProblem, ScheduleSpec, Window};
use crate::error::ManifestError;
use crate::manifest::{BootManifest, FaultPolicy, Name, PartitionKind, PartitionSpec, RAM_IPA};
use crate::package::{self, Package};

fn name(text: &str) -> Name {
    Name::try_from(text).expect("test names fit")
}

fn partition(text: &str, vcpus: u8, cores: u8) -> PartitionSpec {
    PartitionSpec {
        name: name(text),
        kind: PartitionKind::Service { program: 0 },
        memory_size: 0x1_0000,
        memory_base: None,
        ram_ipa: RAM_IPA,
        vcpus,
        cores,
        priority: 100,
        fault: FaultPolicy::Stop,
        mappings: heapless::Vec::new(),
        caps: heapless::Vec::new(),
    }
}

fn window(length_us: u32, owners: Owners) -> Window {
    Window { length_us, owners }
}

/// Three partitions on two cores and a 10 ms frame: `control` (core 0) has
/// 2 ms, `logger` (core 0) 3 ms, then a 5 ms background window; `linux`
/// (two vCPUs, cores 0 and 1)... is on core 1 only here: 6 ms, then 4 ms of
/// background. Budgets: `control`'s vCPU 1 ms in 2 ms.
fn sample() -> BootManifest {
    let mut m = BootManifest::empty(name("timed"), name("qemu-virt"));
    for p in [
        partition("control", 1, 0b01),
        partition("logger", 1, 0b01),
        partition("linux", 2, 0b10),
    ] {
        m.partitions.push(p).unwrap();
    }
    let windows = [
        window(2000, Owners::Partitions(0b001)),
        window(3000, Owners::Partitions(0b010)),
        window(5000, Owners::Background),
        window(6000, Owners::Partitions(0b100)),
        window(4000, Owners::Background),
    ];
    m.schedule = Some(ScheduleSpec {
        major_frame_us: 10_000,
        cores: heapless::Vec::from_slice(&[3, 2]).unwrap(),
        windows: heapless::Vec::from_slice(&windows).unwrap(),
    });
    m.budgets
        .push(BudgetSpec {
            partition: 0,
            vcpu: 0,
            budget_us: 1000,
            period_us: 2000,
        })
        .unwrap();
    m
}

fn schedule(m: &mut BootManifest) -> &mut ScheduleSpec {
    m.schedule.as_mut().unwrap()
}

#[test]
fn the_sample_is_valid_and_travels_in_the_package() {
    let m = sample();
    assert_eq!(m.validate(), Ok(()));
    let bytes = package::build(&m, &[b"program"], &[]).unwrap();
    let read = Package::parse(&bytes).unwrap().manifest().unwrap();
    assert_eq!(read, m);
    assert_eq!(read.budgets[0].budget_us, 1000);
}

#[test]
fn each_core_reads_its_own_windows() {
    let m = sample();
    let s = m.schedule.as_ref().unwrap();
    let lengths = |core| -> Option<Vec<u32>> {
        Some(s.windows_of(core)?.iter().map(|w| w.length_us).collect())
    };
    assert_eq!(lengths(0), Some(vec![2000, 3000, 5000]));
    assert_eq!(lengths(1), Some(vec![6000, 4000]));
    assert_eq!(lengths(2), None);
    // Counts that overrun the table read as nothing, never a panic.
    let mut overrun = s.clone();
    overrun.cores[1] = 3;
    assert_eq!(overrun.windows_of(1), None);
    assert!(Owners::Partitions(0b100).names(2));
    assert!(!Owners::Partitions(0b100).names(1));
    assert!(!Owners::Partitions(u16::MAX).names(16));
    assert!(!Owners::Background.names(0));
}

/// Breaks `sample()` with `edit` and checks the kernel refuses it with
/// `expected`.
fn refused(edit: impl FnOnce(&mut BootManifest), expected: ManifestError) {
    let mut m = sample();
    edit(&mut m);
    assert_eq!(m.validate(), Err(expected));
    let blob = postcard::to_allocvec(&m).unwrap();
    assert_eq!(BootManifest::decode(&blob), Err(expected));
}

#[test]
fn every_schedule_rule_is_checked() {
    use ScheduleProblem as P;
    let schedule_error = ManifestError::Schedule;
    refused(
        |m| schedule(m).major_frame_us = 0,
        schedule_error(P::MajorFrame),
    );
    refused(
        |m| {
            let s = schedule(m);
            s.major_frame_us = super::MAX_FRAME_US + 1;
        },
        schedule_error(P::MajorFrame),
    );
    refused(
        |m| {
            let s = schedule(m);
            s.cores.clear();
            s.windows.clear();
        },
        schedule_error(P::NoCores),
    );
    refused(|m| schedule(m).cores[1] = 3, schedule_error(P::WindowCount));
    refused(
        |m| {
            let s = schedule(m);
            s.cores[0] = 2;
            s.cores[1] = 3;
        },
        schedule_error(P::Fill { core: 0 }),
    );
    refused(
        |m| {
            schedule(m).cores.push(0).unwrap();
        },
        schedule_error(P::Fill { core: 2 }),
    );
    refused(
        |m| schedule(m).windows[1].length_us = 0,
        schedule_error(P::EmptyWindow { core: 0, window: 1 }),
    );
    refused(
        |m| schedule(m).windows[4].length_us = 4001,
        schedule_error(P::Fill { core: 1 }),
    );
    refused(
        |m| {
            let s = schedule(m);
            s.windows[3].length_us = u32::MAX;
        },
        schedule_error(P::Fill { core: 1 }),
    );
    refused(
        |m| schedule(m).windows[0].owners = Owners::Partitions(0),
        schedule_error(P::Owners { core: 0, window: 0 }),
    );
    refused(
        |m| schedule(m).windows[0].owners = Owners::Partitions(0b1001),
        schedule_error(P::Owners { core: 0, window: 0 }),
    );
    refused(
        |m| schedule(m).windows[3].owners = Owners::Partitions(0b101),
        schedule_error(P::OffCore {
            core: 1,
            window: 0,
            partition: 0,
        }),
    );
    // `logger` loses its window: it may run on core 0, where nothing names it.
    refused(
        |m| schedule(m).windows[1].owners = Owners::Background,
        schedule_error(P::NoTime {
            partition: 1,
            core: 0,
        }),
    );
    // `linux` may run on core 2 too, which the schedule does not describe.
    refused(
        |m| m.partitions[2].cores = 0b110,
        schedule_error(P::NoTime {
            partition: 2,
            core: 2,
        }),
    );
    // Without a schedule the same partitions are fine.
    let mut m = sample();
    m.schedule = None;
    m.partitions[2].cores = 0b110;
    assert_eq!(m.validate(), Ok(()));
}

#[test]
fn every_budget_rule_is_checked() {
    let at = |problem| ManifestError::Budget { budget: 1, problem };
    let second = |edit: fn(&mut BudgetSpec)| {
        move |m: &mut BootManifest| {
            let mut budget = BudgetSpec {
                partition: 2,
                vcpu: 1,
                budget_us: 500,
                period_us: 500,
            };
            edit(&mut budget);
            m.budgets.push(budget).unwrap();
        }
    };
    let mut m = sample();
    second(|_| {})(&mut m);
    assert_eq!(m.validate(), Ok(()), "a budget equal to its period is fine");
    refused(second(|b| b.vcpu = 2), at(BudgetProblem::UnknownVcpu));
    refused(second(|b| b.partition = 3), at(BudgetProblem::UnknownVcpu));
    refused(
        second(|b| {
            b.partition = 0;
            b.vcpu = 0;
        }),
        at(BudgetProblem::Duplicate),
    );
    refused(second(|b| b.period_us = 0), at(BudgetProblem::Period));
    refused(
        second(|b| {
            b.period_us = super::MAX_FRAME_US + 1;
            b.budget_us = 1;
        }),
        at(BudgetProblem::Period),
    );
    refused(second(|b| b.budget_us = 0), at(BudgetProblem::Budget));
    refused(second(|b| b.budget_us = 501), at(BudgetProblem::Budget));
}

#[test]
fn errors_read_well() {
    assert_eq!(
        ManifestError::Schedule(ScheduleProblem::NoTime {
            partition: 1,
            core: 0
        })
        .to_string(),
        "schedule: partition 1 may run on core 0 but no window there names it"
    );
    assert_eq!(
        ManifestError::Schedule(ScheduleProblem::OffCore {
            core: 1,
            window: 0,
            partition: 0
        })
        .to_string(),
        "schedule: core 1 window 0: partition 0 may not run on this core"
    );
    assert_eq!(
        ManifestError::Budget {
            budget: 3,
            problem: BudgetProblem::Budget
        }
        .to_string(),
        "budget 3: the budget is zero or longer than its period"
    );
}
