// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Host tests of lowering: a good manifest becomes the expected memory
//! placement, stage-2 mappings, programs, vCPU starts and kernel state on
//! QEMU virt's real device trees; bad ones are refused with the error that
//! names what is wrong.

use hv_abi::hypercall::{Badge, Rights};
use hv_image::grant::Refusal;
use hv_image::{
    BootManifest, Capability, DeviceSpec, FaultPolicy, IrqSpec, KernelLogSpec, Mapping,
    MappingKind, Name, Object, PartitionKind, PartitionSpec, PassthroughIrq, RAM_IPA, SharedRegion,
    VmSpec,
};

use super::{
    Board, Counter, LowerError, MAX_RAM_PIECES, MAX_SEGMENTS, Placement, STAGE2_TABLES,
    Stage2Mapping, VCPU_STACK, build_stage2, check, place, program, ram_pieces, reload_chunk,
    reload_pieces, stage2, stage2_tables, vcpu_start, vmid, with_seed,
};
use crate::cap::{EndpointId, NotificationId, PartitionId, ReplyId};
use crate::devices::DeviceError;
use crate::elf::{Elf, ElfError};
use crate::fixtures::{GICV2, GICV3, QEMU_VIRT, elf, elf_segments};
use crate::memory::{MapError, MemoryMap, Use};
use crate::pagetable::{self, Attributes, Regime, Table};
use crate::platform::PlatformInfo;
use crate::range::PhysRange;
use crate::state::{EndpointSeed, IrqSeed, KernelState, ReplySeed, SeedError, VcpuState};

const BOARD: Board<'static> = Board {
    name: "qemu-virt",
    devices: QEMU_VIRT,
    console: match PhysRange::new(0x0900_0000, 0x1000) {
        Some(r) => r,
        None => panic!(),
    },
};

const R: Rights = Rights::READ;
const W: Rights = Rights::WRITE;
const C: Rights = Rights::CONTROL;

fn rights(all: &[Rights]) -> Rights {
    all.iter().fold(Rights::NONE, |a, r| a.union(*r))
}

fn name(text: &str) -> Name {
    Name::try_from(text).unwrap()
}

fn r(start: u64, size: u64) -> PhysRange {
    PhysRange::new(start, size).unwrap()
}

fn cap(object: Object, all: &[Rights], badge: u64) -> Capability {
    Capability {
        object,
        rights: rights(all),
        badge: Badge(badge),
    }
}

fn partition(text: &str, kind: PartitionKind, memory_size: u64) -> PartitionSpec {
    PartitionSpec {
        name: name(text),
        kind,
        memory_size,
        memory_base: None,
        ram_ipa: RAM_IPA,
        vcpus: 1,
        cores: 0b1,
        priority: 100,
        fault: FaultPolicy::Stop,
        mappings: heapless::Vec::new(),
        caps: heapless::Vec::new(),
    }
}

fn mapping(kind: MappingKind, ipa: u64, size: u64, all: &[Rights]) -> Mapping {
    Mapping {
        kind,
        ipa,
        size,
        rights: rights(all),
    }
}

const RING_IPA: u64 = 0x1_0000_0000;
const RTC_IPA: u64 = 0x0901_0000;
const GUEST_IPA: u64 = 0x2_0000_0000;

/// Four partitions: a driver (0) owning the RTC and its interrupt, a
/// client of the server and writer of a shared ring; a server (1) with
/// two vCPUs at a fixed address, which reads the ring and the kernel log
/// and controls the driver; a virtual machine (2) with two vCPUs; and its
/// monitor (3), which maps its RAM, serves its exits and holds its vCPUs.
fn manifest() -> BootManifest {
    let mut m = BootManifest::empty(name("demo"), name("qemu-virt"));
    m.endpoint_count = 2;
    m.notification_count = 2;
    m.shared_regions
        .push(SharedRegion {
            name: name("ring"),
            size: 0x2000,
        })
        .unwrap();
    m.devices
        .push(DeviceSpec {
            name: name("rtc0"),
            pa: 0x0901_0000,
            size: 0x1000,
            owner: 0,
        })
        .unwrap();
    m.irqs
        .push(IrqSpec {
            intid: 34,
            device: 0,
            notification: 0,
            badge: Badge(0b10),
        })
        .unwrap();
    m.replies.push(1).unwrap();
    m.kernel_log = Some(KernelLogSpec {
        partition: 1,
        notification: 1,
        badge: Badge(1),
    });

    let mut driver = partition("driver", PartitionKind::Service { program: 0 }, 0x1_0000);
    driver.priority = 200;
    driver.fault = FaultPolicy::Restart;
    let device = MappingKind::Device { device: 0 };
    let ring = MappingKind::Shared { region: 0 };
    driver
        .mappings
        .push(mapping(device, RTC_IPA, 0x1000, &[R, W]))
        .unwrap();
    driver
        .mappings
        .push(mapping(ring, RING_IPA, 0x2000, &[R, W]))
        .unwrap();
    for c in [
        cap(Object::Endpoint(0), &[W], 7),
        cap(Object::Device(0), &[W], 0),
        cap(Object::Irq(0), &[W], 0),
        cap(Object::Notification(0), &[R], 0),
        cap(Object::Memory(0), &[R, W], 0),
    ] {
        driver.caps.push(c).unwrap();
    }

    let mut server = partition("server", PartitionKind::Service { program: 1 }, 0x20_0000);
    server.memory_base = Some(0x5000_0000);
    server.vcpus = 2;
    server.cores = 0b11;
    server
        .mappings
        .push(mapping(ring, RING_IPA, 0x2000, &[R]))
        .unwrap();
    for c in [
        cap(Object::Endpoint(0), &[R], 0),
        cap(Object::Memory(0), &[R], 0),
        cap(Object::Partition(0), &[R, C], 0),
        cap(Object::Reply(0), &[W], 0),
        cap(Object::KernelLog, &[R], 0),
        cap(Object::Notification(1), &[R], 0),
    ] {
        server.caps.push(c).unwrap();
    }

    let vm = VmSpec {
        monitor: 3,
        exit_endpoint: 1,
    };
    let mut guest = partition("guest", PartitionKind::Vm(vm), 0x40_0000);
    guest.vcpus = 2;
    guest.cores = 0b11;
    guest.priority = 50;
    guest.fault = FaultPolicy::Restart;

    let mut monitor = partition("vmm", PartitionKind::Service { program: 2 }, 0x10_0000);
    monitor.cores = 0b10;
    let guest_ram = MappingKind::GuestRam { partition: 2 };
    monitor
        .mappings
        .push(mapping(guest_ram, GUEST_IPA, 0x40_0000, &[R, W]))
        .unwrap();
    monitor
        .caps
        .push(cap(Object::Endpoint(1), &[R], 0))
        .unwrap();
    for vcpu in 0..2 {
        let object = Object::Vcpu { partition: 2, vcpu };
        monitor.caps.push(cap(object, &[R, W, C], 0)).unwrap();
    }

    for p in [driver, server, guest, monitor] {
        m.partitions.push(p).unwrap();
    }
    m
}

/// The kernel's image: 2 MiB at 0x4008_0000, in the machine's 512 MiB of
/// RAM at 0x4000_0000.
fn memory(info: &PlatformInfo<'_>) -> MemoryMap {
    MemoryMap::new(
        &info.memory,
        &[(r(0x4008_0000, 0x20_0000), Use::KernelImage)],
    )
    .unwrap()
}

fn placed(m: &BootManifest) -> Result<Placement, LowerError> {
    let info = PlatformInfo::parse(GICV3).unwrap();
    place(m, &mut memory(&info))
}

#[test]
fn the_sample_is_a_valid_manifest() {
    manifest().validate().unwrap();
}

#[test]
fn a_good_manifest_passes_the_boot_checks_on_both_gics() {
    for blob in [GICV3, GICV2] {
        let info = PlatformInfo::parse(blob).unwrap();
        assert_eq!(check(&manifest(), &BOARD, &info, blob), Ok(()));
    }
}

#[test]
fn memory_is_placed_shared_first_then_ram_in_order() {
    let placement = placed(&manifest()).unwrap();
    // The ring: the lowest free page.
    assert_eq!(placement.shared.as_slice(), [r(0x4000_0000, 0x2000)]);
    assert_eq!(
        placement.rams.as_slice(),
        [
            // 2 MiB-aligned, the first that fits past the kernel's image.
            r(0x4040_0000, 0x1_0000),
            // Where the manifest fixed it.
            r(0x5000_0000, 0x20_0000),
            r(0x4060_0000, 0x40_0000),
            r(0x40a0_0000, 0x10_0000),
        ]
    );
}

#[test]
fn each_partition_maps_its_ram_then_its_mappings() {
    let m = manifest();
    let placement = placed(&m).unwrap();
    for (blob, gicv) in [(GICV3, None), (GICV2, Some(0x0804_0000))] {
        let info = PlatformInfo::parse(blob).unwrap();
        let map = |i| {
            stage2(i, &m, &placement, &[], &info.gic, None)
                .unwrap()
                .to_vec()
        };
        let at = |ipa, size, pa, attributes| Stage2Mapping {
            ipa: r(ipa, size),
            pa,
            attributes,
        };
        assert_eq!(
            map(0),
            [
                at(RAM_IPA, 0x1_0000, 0x4040_0000, Attributes::ReadWriteExecute),
                at(RTC_IPA, 0x1000, 0x0901_0000, Attributes::Device),
                at(RING_IPA, 0x2000, 0x4000_0000, Attributes::ReadWrite),
            ]
        );
        assert_eq!(
            map(1),
            [
                at(
                    RAM_IPA,
                    0x20_0000,
                    0x5000_0000,
                    Attributes::ReadWriteExecute
                ),
                at(RING_IPA, 0x2000, 0x4000_0000, Attributes::ReadOnly),
            ]
        );
        // Only a virtual machine on GICv2 gets the virtual CPU interface.
        let mut guest = vec![at(
            RAM_IPA,
            0x40_0000,
            0x4060_0000,
            Attributes::ReadWriteExecute,
        )];
        if let Some(gicv) = gicv {
            let gicc = hv_abi::vm::GUEST_GICC;
            let size = hv_abi::vm::GUEST_GICC_SIZE;
            guest.push(at(gicc, size, gicv, Attributes::Device));
        }
        assert_eq!(map(2), guest);
        assert_eq!(
            map(3),
            [
                at(
                    RAM_IPA,
                    0x10_0000,
                    0x40a0_0000,
                    Attributes::ReadWriteExecute
                ),
                at(GUEST_IPA, 0x40_0000, 0x4060_0000, Attributes::ReadWrite),
            ]
        );
    }
}

#[test]
fn the_stage2_tables_translate_what_was_decided() {
    let m = manifest();
    let placement = placed(&m).unwrap();
    let info = PlatformInfo::parse(GICV3).unwrap();
    let mappings = stage2(0, &m, &placement, &[], &info.gic, None).unwrap();
    let spec = &m.partitions[0];
    // Two mappings of less than 2 MiB: two tables each.
    assert_eq!(stage2_tables(spec, None), STAGE2_TABLES + 4);
    let mut tables = vec![Table::EMPTY; stage2_tables(spec, None)];
    let pool = 0x4800_0000;
    let root = build_stage2(0, &mappings, &mut tables, pool).unwrap();
    assert_eq!(root, pool);
    let at = |ipa| pagetable::translate(&tables, pool, Regime::Stage2, ipa);
    let ram = at(RAM_IPA + 0x1234).unwrap();
    assert_eq!(ram.output, 0x4040_1234);
    assert_eq!(ram.attributes, Attributes::ReadWriteExecute);
    assert_eq!(at(RTC_IPA + 8).unwrap().output, 0x0901_0008);
    assert_eq!(at(RTC_IPA).unwrap().attributes, Attributes::Device);
    assert_eq!(at(RING_IPA + 0x1000).unwrap().output, 0x4000_1000);
    // Past the RAM and between mappings: nothing.
    assert_eq!(at(RAM_IPA + 0x1_0000), None);
    assert_eq!(at(RTC_IPA + 0x1000), None);
    // A mapping on top of RAM is refused, and so is a pool too small.
    let mut overlapping = mappings.clone();
    overlapping[1].ipa = r(RAM_IPA, 0x1000);
    let mut tables = vec![Table::EMPTY; STAGE2_TABLES];
    assert_eq!(
        build_stage2(0, &overlapping, &mut tables, pool),
        Err(LowerError::Stage2(
            0,
            pagetable::MapError::AlreadyMapped(RAM_IPA)
        ))
    );
    let mut one = vec![Table::EMPTY; 1];
    assert_eq!(
        build_stage2(0, &mappings, &mut one, pool),
        Err(LowerError::Stage2(0, pagetable::MapError::OutOfTables))
    );
}

#[test]
fn large_mappings_get_a_table_per_2_mib() {
    let m = manifest();
    // The monitor maps its guest's 4 MiB.
    assert_eq!(stage2_tables(&m.partitions[3], None), STAGE2_TABLES + 2 + 2);
    assert_eq!(stage2_tables(&m.partitions[2], None), STAGE2_TABLES);
}

/// ELF segment flags: read, write, execute.
const PF_R: u32 = 4;
const PF_W: u32 = 2;
const PF_X: u32 = 1;

#[test]
fn a_programs_ram_is_mapped_page_by_page_with_its_segments_access() {
    use Attributes::{Code, ReadOnly, ReadWrite, ReadWriteExecute};
    let pieces = |segments: &[(u64, u64, u32)], size| {
        let file = elf_segments(segments);
        let elf = Elf::parse(&file).unwrap();
        ram_pieces(Some(&elf), size).collect::<Vec<_>>()
    };
    // Code, then read-only data sharing its last page, then writable data
    // and .bss from a page of their own: the rest is stacks, read-write.
    let apart = [
        (0, 0x1800, PF_R | PF_X),
        (0x1800, 0x900, PF_R),
        (0x3000, 0x2400, PF_R | PF_W),
    ];
    assert_eq!(
        pieces(&apart, 0x1_0000),
        [
            (0, 0x2000, Code),
            (0x2000, 0x3000, ReadOnly),
            (0x3000, 0x1_0000, ReadWrite),
        ]
    );
    // Writable data in code's last page: that page read, write and execute.
    let shared = [(0, 0x1800, PF_R | PF_X), (0x1800, 0x100, PF_R | PF_W)];
    assert_eq!(
        pieces(&shared, 0x1_0000),
        [
            (0, 0x1000, Code),
            (0x1000, 0x2000, ReadWriteExecute),
            (0x2000, 0x1_0000, ReadWrite),
        ]
    );
    // A gap between segments, and segments in the middle of pages.
    let gap = [(0x1010, 0x10, PF_R | PF_X), (0x5ff0, 0x20, PF_R)];
    assert_eq!(
        pieces(&gap, 0x8000),
        [
            (0, 0x1000, ReadWrite),
            (0x1000, 0x2000, Code),
            (0x2000, 0x5000, ReadWrite),
            (0x5000, 0x7000, ReadOnly),
            (0x7000, 0x8000, ReadWrite),
        ]
    );
    // Empty segments take no page; segments past the RAM are cut off.
    let odd = [(0x1000, 0, PF_X), (0x3000, u64::MAX - 0x3000, PF_X)];
    assert_eq!(
        pieces(&odd, 0x4000),
        [(0, 0x3000, ReadWrite), (0x3000, 0x4000, Code)]
    );
    // A virtual machine's RAM: whole, its own stage 1 governs.
    assert_eq!(
        ram_pieces(None, 0x4000).collect::<Vec<_>>(),
        [(0, 0x4000, ReadWriteExecute)]
    );
    assert_eq!(ram_pieces(None, 0).count(), 0);
}

#[test]
fn a_programs_stage2_tables_keep_its_code_read_only_and_its_data_unexecutable() {
    let m = manifest();
    let placement = placed(&m).unwrap();
    let info = PlatformInfo::parse(GICV3).unwrap();
    let file = elf_segments(&[(0, 0x1800, PF_R | PF_X), (0x2000, 0x1000, PF_R | PF_W)]);
    let elf = Elf::parse(&file).unwrap();
    let mappings = stage2(0, &m, &placement, &[], &info.gic, Some(&elf)).unwrap();
    let ram = |ipa, size, pa, attributes| Stage2Mapping {
        ipa: r(ipa, size),
        pa,
        attributes,
    };
    assert_eq!(
        mappings[..2],
        [
            ram(RAM_IPA, 0x2000, 0x4040_0000, Attributes::Code),
            ram(RAM_IPA + 0x2000, 0xe000, 0x4040_2000, Attributes::ReadWrite),
        ]
    );
    // Its manifest's mappings follow, as without a program.
    let without = stage2(0, &m, &placement, &[], &info.gic, None).unwrap();
    assert_eq!(mappings[2..], without[1..]);
    let spec = &m.partitions[0];
    assert_eq!(stage2_tables(spec, Some(&elf)), STAGE2_TABLES + 4 + 2);
    let mut tables = vec![Table::EMPTY; stage2_tables(spec, Some(&elf))];
    let pool = 0x4800_0000;
    build_stage2(0, &mappings, &mut tables, pool).unwrap();
    let at = |ipa| pagetable::translate(&tables, pool, Regime::Stage2, ipa).unwrap();
    assert_eq!(at(RAM_IPA + 0x1ffc).attributes, Attributes::Code);
    assert_eq!(at(RAM_IPA + 0x1ffc).output, 0x4040_1ffc);
    assert_eq!(at(RAM_IPA + 0x2000).attributes, Attributes::ReadWrite);
    assert_eq!(at(RAM_IPA + 0xfff8).attributes, Attributes::ReadWrite);
}

#[test]
fn a_program_of_the_most_segments_has_its_ram_mapped_and_one_more_is_refused() {
    let m = manifest();
    let placement = placed(&m).unwrap();
    let info = PlatformInfo::parse(GICV3).unwrap();
    // Code in every other page, from the second: a piece a page.
    let segments: Vec<_> = (0..=MAX_SEGMENTS as u64)
        .map(|i| (0x1000 + i * 0x2000, 0x1000, PF_R | PF_X))
        .collect();
    let most = elf_segments(&segments[..MAX_SEGMENTS]);
    let ram = 0x1_0000 + 2 * VCPU_STACK;
    let checked = program(0, &most, RAM_IPA, ram, 2).unwrap();
    assert_eq!(ram_pieces(Some(&checked.elf), ram).count(), MAX_RAM_PIECES);
    let spec = &m.partitions[0];
    let mappings = stage2(0, &m, &placement, &[], &info.gic, Some(&checked.elf)).unwrap();
    // Partition 0's 64 KiB of RAM end with the last segment: no stacks.
    assert_eq!(mappings.len(), MAX_RAM_PIECES - 1 + spec.mappings.len());
    let more = elf_segments(&segments);
    assert_eq!(
        program(0, &more, RAM_IPA, 0x10_0000, 1).unwrap_err(),
        LowerError::TooLarge("program segments")
    );
}

#[test]
fn a_good_manifest_seeds_the_expected_kernel_state() {
    let m = manifest();
    let seeded = with_seed(&m, 2, Counter::NONE, |seed| {
        assert_eq!(seed.cores, 2);
        assert_eq!(seed.partitions.len(), 4);
        let vcpus: Vec<usize> = seed.partitions.iter().map(|p| p.vcpus).collect();
        assert_eq!(vcpus, [1, 2, 2, 1]);
        let policies: Vec<FaultPolicy> = seed.partitions.iter().map(|p| p.fault_policy).collect();
        use FaultPolicy::{Restart, Stop};
        assert_eq!(policies, [Restart, Stop, Restart, Stop]);
        assert_eq!(seed.partitions[0].cores, 0b1);
        assert_eq!(seed.partitions[0].priority, 200);
        let exits: Vec<_> = seed.partitions.iter().map(|p| p.exits).collect();
        assert_eq!(exits, [None, None, Some(EndpointId(1)), None]);
        // Slot n is the manifest's capability n, the same object.
        assert_eq!(
            seed.partitions[0].capabilities[0],
            Some(Capability::new(Object::Endpoint(0), W).with_badge(Badge(7)))
        );
        assert_eq!(seed.partitions[3].capabilities.len(), 3);
        assert_eq!(
            seed.partitions[3].capabilities[2],
            Some(Capability::new(
                Object::Vcpu {
                    partition: 2,
                    vcpu: 1
                },
                rights(&[R, W, C])
            ))
        );
        // An endpoint's server is who receives on it.
        assert_eq!(
            seed.endpoints,
            [
                EndpointSeed {
                    server: Some(PartitionId(1))
                },
                EndpointSeed {
                    server: Some(PartitionId(3))
                },
            ]
        );
        assert_eq!(seed.notifications, 2);
        assert_eq!(
            seed.irqs,
            [IrqSeed {
                intid: 34,
                notification: NotificationId(0),
                badge: Badge(0b10),
                device: Some(0),
            }]
        );
        assert_eq!(
            seed.replies,
            [ReplySeed {
                owner: PartitionId(1)
            }]
        );
        assert_eq!(seed.kernel_log, Some((NotificationId(1), Badge(1))));
        KernelState::new(seed)
    })
    .unwrap();
    let state = seeded.unwrap();
    state.check_invariants().unwrap();
    assert_eq!(state.partition_count(), 4);
    assert_eq!(state.vcpu_count(), 6);
    // Services' vCPUs are ready; the virtual machine's wait for its monitor.
    let states: Vec<_> = (0..6)
        .map(|v| {
            state
                .vcpu_state(crate::sched::VcpuId::of(v).unwrap())
                .unwrap()
        })
        .collect();
    use VcpuState::{Off, Ready};
    assert_eq!(states, [Ready, Ready, Ready, Off, Off, Ready]);
    assert_eq!(
        state.capability(PartitionId(1), 3),
        Some(Capability::new(Object::Reply(ReplyId(0).number()), W))
    );
}

#[test]
fn programs_are_checked_against_their_ram_and_stacks() {
    // The program spans 0x1000..0x3000 of its RAM.
    let file = elf(0x1000, b"code", 0x2000);
    let ok = program(0, &file, RAM_IPA, 0x3000 + 2 * VCPU_STACK, 2).unwrap();
    assert_eq!(ok.entry, RAM_IPA + 0x1004);
    // One byte short of room for both stacks.
    assert_eq!(
        program(5, &file, RAM_IPA, 0x3000 + 2 * VCPU_STACK - 1, 2).unwrap_err(),
        LowerError::ProgramTooLarge(5)
    );
    assert_eq!(
        program(3, b"#!/bin/sh", RAM_IPA, 0x10_0000, 1).unwrap_err(),
        LowerError::Program(3, ElfError::NotElf64)
    );
}

#[test]
fn each_vcpu_starts_on_its_own_stack_with_its_arguments() {
    let ram = (RAM_IPA, 0x10_0000);
    let first = vcpu_start(3, 0, 0x4000_1004, ram, 2);
    let second = vcpu_start(3, 1, 0x4000_1004, ram, 2);
    assert_eq!(first.entry, 0x4000_1004);
    assert_eq!(first.stack, RAM_IPA + 0x10_0000);
    assert_eq!(second.stack, RAM_IPA + 0x10_0000 - VCPU_STACK);
    assert_eq!(first.args, [3, RAM_IPA, 0x10_0000, 0, 2]);
    assert_eq!(second.args, [3, RAM_IPA, 0x10_0000, 1, 2]);
}

#[test]
fn a_reload_in_steps_rebuilds_the_program_exactly() {
    const RAM: u64 = 0x1_0000;
    let payload: Vec<u8> = (0..0x2345u32).map(|i| (i * 7) as u8).collect();
    let file = elf(0x1800, &payload, 0x3000);
    let loaded = program(0, &file, RAM_IPA, RAM, 1).unwrap();
    let mut whole = vec![0u8; RAM as usize];
    for segment in loaded.elf.segments() {
        let at = segment.address as usize;
        whole[at..at + segment.data.len()].copy_from_slice(segment.data);
    }
    for step in [0x1000, 0x700, RAM, 0x10_0000] {
        let mut ram = vec![0xeeu8; RAM as usize];
        let mut offset = 0;
        let mut steps = 0;
        while let Some((at, len)) = reload_chunk(RAM, offset, step) {
            assert_eq!(at, offset);
            assert!(len <= step);
            ram[at as usize..(at + len) as usize].fill(0);
            for piece in reload_pieces(&loaded.elf, (at, len)) {
                let (into, bytes) = piece.unwrap();
                assert!(into + bytes.len() as u64 <= len, "a piece leaves its chunk");
                let start = (at + into) as usize;
                ram[start..start + bytes.len()].copy_from_slice(bytes);
            }
            offset = at + len;
            steps += 1;
        }
        assert_eq!(offset, RAM);
        assert_eq!(steps, RAM.div_ceil(step.min(RAM)));
        assert!(ram == whole, "step {step:#x}");
    }
}

#[test]
fn vmids_start_at_one() {
    assert_eq!(vmid(0), Ok(1));
    assert_eq!(vmid(15), Ok(16));
    assert_eq!(vmid(255), Err(LowerError::TooLarge("partitions")));
}

// What is refused.

fn refusal(m: &BootManifest, blob: &[u8]) -> LowerError {
    let info = PlatformInfo::parse(blob).unwrap();
    check(m, &BOARD, &info, blob).unwrap_err()
}

#[test]
fn another_platforms_system_is_refused() {
    let mut m = manifest();
    m.platform = name("rpi4");
    assert_eq!(refusal(&m, GICV3), LowerError::Platform);
}

#[test]
fn devices_the_kernel_keeps_are_refused() {
    for (pa, why) in [
        // The GIC distributor.
        (0x0800_0000, DeviceError::Refused(Refusal::Kernel)),
        // RAM.
        (0x4000_0000, DeviceError::Refused(Refusal::Memory)),
        // Flash, firmware's.
        (0x0400_0000, DeviceError::Refused(Refusal::Firmware)),
        // Nothing there.
        (0x0a00_1000_0000, DeviceError::Missing),
    ] {
        let mut m = manifest();
        m.devices[0].pa = pa;
        assert_eq!(
            refusal(&m, GICV3),
            LowerError::Device {
                device: name("rtc0"),
                owner: name("driver"),
                pa,
                why,
            },
            "{pa:#x}"
        );
    }
}

#[test]
fn the_console_may_be_given_only_to_a_system_that_reads_the_kernel_log() {
    let mut m = manifest();
    m.devices[0].pa = 0x0900_0000;
    m.irqs[0].intid = 33;
    let info = PlatformInfo::parse(GICV3).unwrap();
    assert_eq!(check(&m, &BOARD, &info, GICV3), Ok(()));
    m.kernel_log = None;
    assert_eq!(
        refusal(&m, GICV3),
        LowerError::Device {
            device: name("rtc0"),
            owner: name("driver"),
            pa: 0x0900_0000,
            why: DeviceError::Refused(Refusal::Console),
        }
    );
}

#[test]
fn an_interrupt_that_is_not_its_devices_is_refused() {
    let mut m = manifest();
    m.irqs[0].intid = 33;
    assert_eq!(refusal(&m, GICV3), LowerError::Interrupt(name("rtc0"), 33));
    let mut m = manifest();
    m.passthrough
        .push(PassthroughIrq {
            intid: 39,
            device: 0,
        })
        .unwrap();
    assert_eq!(refusal(&m, GICV2), LowerError::Interrupt(name("rtc0"), 39));
    // An interrupt of a device the manifest does not have.
    let mut m = manifest();
    m.irqs[0].device = 4;
    assert_eq!(refusal(&m, GICV3), LowerError::Interrupt(Name::new(), 34));
}

#[test]
fn a_device_of_no_partition_is_refused() {
    let mut m = manifest();
    m.devices[0].owner = 9;
    assert_eq!(refusal(&m, GICV3), LowerError::TooLarge("partitions"));
}

#[test]
fn ram_fixed_where_it_is_not_free_is_refused() {
    for base in [
        // Outside RAM.
        0x1000_0000,
        // On the kernel's image.
        0x4008_0000,
        // On the shared ring, allocated first.
        0x4000_0000,
        // Past the end of RAM.
        0x5ff0_0000,
    ] {
        let mut m = manifest();
        m.partitions[1].memory_base = Some(base);
        let range = r(base, 0x20_0000);
        assert_eq!(
            placed(&m),
            Err(LowerError::Memory(
                "partition RAM",
                MapError::NotFree(range)
            )),
            "{base:#x}"
        );
    }
    // Two partitions fixed on top of each other.
    let mut m = manifest();
    m.partitions[0].memory_base = Some(0x5010_0000);
    let range = r(0x5000_0000, 0x20_0000);
    assert_eq!(
        placed(&m),
        Err(LowerError::Memory(
            "partition RAM",
            MapError::NotFree(range)
        ))
    );
}

#[test]
fn more_memory_than_the_machine_has_is_refused() {
    let mut m = manifest();
    m.partitions[2].memory_size = 0x2000_0000;
    assert_eq!(
        placed(&m),
        Err(LowerError::Memory(
            "partition RAM",
            MapError::OutOfMemory { size: 0x2000_0000 }
        ))
    );
    let mut m = manifest();
    m.shared_regions[0].size = 0x4000_0000;
    assert_eq!(
        placed(&m),
        Err(LowerError::Memory(
            "shared memory",
            MapError::OutOfMemory { size: 0x4000_0000 }
        ))
    );
}

#[test]
fn mappings_of_what_does_not_exist_are_refused() {
    let info = PlatformInfo::parse(GICV3).unwrap();
    let cases = [
        (MappingKind::Device { device: 1 }, "devices"),
        (MappingKind::Shared { region: 1 }, "shared regions"),
        (MappingKind::GuestRam { partition: 4 }, "partitions"),
        (MappingKind::File { file: 0 }, "files"),
    ];
    for (kind, what) in cases {
        let mut m = manifest();
        m.partitions[0].mappings[0].kind = kind;
        let placement = placed(&m).unwrap();
        assert_eq!(
            stage2(0, &m, &placement, &[], &info.gic, None),
            Err(LowerError::TooLarge(what)),
            "{kind:?}"
        );
    }
    let m = manifest();
    let placement = placed(&m).unwrap();
    assert_eq!(
        stage2(4, &m, &placement, &[], &info.gic, None),
        Err(LowerError::TooLarge("partitions"))
    );
}

#[test]
fn seeds_past_the_kernels_tables_are_refused() {
    let mut m = manifest();
    if let PartitionKind::Vm(vm) = &mut m.partitions[2].kind {
        vm.exit_endpoint = 300;
    }
    assert_eq!(
        with_seed(&m, 2, Counter::NONE, |_| ()),
        Err(LowerError::TooLarge("endpoints"))
    );
    let mut m = manifest();
    m.irqs[0].notification = 256;
    assert_eq!(
        with_seed(&m, 2, Counter::NONE, |_| ()),
        Err(LowerError::TooLarge("notifications"))
    );
    let mut m = manifest();
    m.endpoint_count = 65;
    assert_eq!(
        with_seed(&m, 2, Counter::NONE, |_| ()),
        Err(LowerError::TooLarge("endpoints"))
    );
    let mut m = manifest();
    m.replies[0] = 256;
    assert_eq!(
        with_seed(&m, 2, Counter::NONE, |_| ()),
        Err(LowerError::TooLarge("partitions"))
    );
}

#[test]
fn the_kernel_refuses_a_seed_the_lowering_made_from_a_bad_manifest() {
    // The monitor may run only on core 1; with one core, on none.
    let booted = with_seed(&manifest(), 1, Counter::NONE, KernelState::new).unwrap();
    assert_eq!(
        booted.unwrap_err(),
        SeedError::NoAllowedCore { partition: 3 }
    );
    // A Vcpu capability for a service's vCPU.
    let mut m = manifest();
    m.partitions[3].caps[1].object = Object::Vcpu {
        partition: 1,
        vcpu: 0,
    };
    let booted = with_seed(&m, 2, Counter::NONE, KernelState::new).unwrap();
    assert_eq!(
        booted.unwrap_err(),
        SeedError::UnknownObject {
            partition: 3,
            slot: 1
        }
    );
    // A vCPU the virtual machine does not have.
    let mut m = manifest();
    m.partitions[3].caps[1].object = Object::Vcpu {
        partition: 2,
        vcpu: 2,
    };
    let booted = with_seed(&m, 2, Counter::NONE, KernelState::new).unwrap();
    assert_eq!(
        booted.unwrap_err(),
        SeedError::UnknownObject {
            partition: 3,
            slot: 1
        }
    );
}

#[test]
fn errors_read_as_the_boot_report_says_them() {
    let e = LowerError::Device {
        device: name("uart0"),
        owner: name("intruder"),
        pa: 0x0800_0000,
        why: DeviceError::Refused(Refusal::Kernel),
    };
    assert_eq!(
        e.to_string(),
        "the manifest gives partition `intruder` device `uart0` at 0x8000000, which no partition may have: it is the kernel's own (interrupt controller or timer)"
    );
    assert_eq!(
        LowerError::Interrupt(name("uart0"), 34).to_string(),
        "the manifest binds INTID 34 as device `uart0`'s, but it is not that device's"
    );
    assert_eq!(
        LowerError::ProgramTooLarge(2).to_string(),
        "partition 2's program does not fit its RAM"
    );
}
