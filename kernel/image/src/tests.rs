// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Host tests: the package round trip, corruption and truncation of every
//! kind refused without a panic, every validation rule, and proptest over
//! random manifests and random bytes.

use hv_abi::hypercall::{Badge, Rights};
use proptest::prelude::{Strategy, any, prop, prop_assert, prop_assert_eq, proptest};

use crate::error::{Item, ManifestError, MappingProblem};
use crate::manifest::{
    BootManifest, Capability, DeviceSpec, FaultPolicy, FaultSignal, FileSpec, IrqSpec,
    KernelLogSpec, Mapping, MappingKind, Name, Object, PartitionKind, PartitionSpec, RAM_IPA,
    SharedRegion, VmSpec,
};
use crate::package::{self, FORMAT_VERSION, Package, PackageError};
use crate::schedule::{BudgetSpec, MAX_CORES, Owners, ScheduleSpec, Window};

fn name(text: &str) -> Name {
    Name::try_from(text).expect("test names fit")
}

fn rw() -> Rights {
    Rights::READ.union(Rights::WRITE)
}

fn partition(text: &str, program: u8) -> PartitionSpec {
    PartitionSpec {
        name: name(text),
        kind: PartitionKind::Service { program },
        memory_size: 0x4_0000,
        memory_base: None,
        ram_ipa: RAM_IPA,
        vcpus: 1,
        cores: 0b1111,
        priority: 100,
        fault: FaultPolicy::Stop,
        mappings: heapless::Vec::new(),
        caps: heapless::Vec::new(),
    }
}

fn cap(object: Object, rights: Rights, badge: u64) -> Capability {
    Capability {
        object,
        rights,
        badge: Badge(badge),
    }
}

/// A small system using every kind of object: a UART driver with its device
/// and interrupt, a console serving an endpoint, and two partitions sharing
/// memory.
fn sample() -> BootManifest {
    let mut m = BootManifest::empty(name("demo"), name("qemu-virt"));
    m.endpoint_count = 1;
    m.notification_count = 3;
    m.scrub_on_switch = true;
    m.shared_regions
        .push(SharedRegion {
            name: name("buffer"),
            size: 0x1_0000,
        })
        .unwrap();
    m.devices
        .push(DeviceSpec {
            name: name("uart0"),
            pa: 0x0900_0000,
            size: 0x1000,
            owner: 0,
        })
        .unwrap();
    m.irqs
        .push(IrqSpec {
            intid: 33,
            device: 0,
            notification: 0,
            badge: Badge(1),
        })
        .unwrap();

    let mut uart = partition("uart", 0);
    uart.mappings
        .push(Mapping {
            kind: MappingKind::Device { device: 0 },
            ipa: 0x0900_0000,
            size: 0x1000,
            rights: rw(),
        })
        .unwrap();
    uart.caps
        .push(cap(Object::Notification(0), Rights::READ, 0))
        .unwrap();
    uart.caps.push(cap(Object::Device(0), rw(), 0)).unwrap();
    uart.caps
        .push(cap(Object::Irq(0), Rights::WRITE, 0))
        .unwrap();
    uart.caps
        .push(cap(Object::Endpoint(0), Rights::WRITE, 1))
        .unwrap();

    let mut console = partition("console", 1);
    console.priority = 200;
    console.memory_base = Some(0x5000_0000);
    console
        .caps
        .push(cap(Object::Endpoint(0), Rights::READ, 0))
        .unwrap();
    console
        .caps
        .push(cap(Object::Partition(0), Rights::CONTROL, 0))
        .unwrap();
    m.replies.push(1).unwrap();
    console
        .caps
        .push(cap(Object::Reply(0), Rights::WRITE, 0))
        .unwrap();
    // The console watches the UART driver's faults on notification 2.
    console
        .caps
        .push(cap(Object::Notification(2), Rights::READ, 0))
        .unwrap();
    m.fault_signals
        .push(FaultSignal {
            partition: 0,
            controller: 1,
            notification: 2,
            badge: Badge(0b10),
        })
        .unwrap();

    let mut producer = partition("producer", 2);
    producer.fault = FaultPolicy::Restart;
    producer.vcpus = 2;
    let shared = |rights| Mapping {
        kind: MappingKind::Shared { region: 0 },
        ipa: 0x1_0000_0000,
        size: 0x1_0000,
        rights,
    };
    producer.mappings.push(shared(rw())).unwrap();
    producer.caps.push(cap(Object::Memory(0), rw(), 0)).unwrap();
    producer
        .caps
        .push(cap(Object::Notification(1), Rights::WRITE, 1))
        .unwrap();
    let mut consumer = partition("consumer", 2);
    consumer.mappings.push(shared(Rights::READ)).unwrap();
    consumer
        .caps
        .push(cap(Object::Memory(0), Rights::READ, 0))
        .unwrap();
    consumer
        .caps
        .push(cap(Object::Notification(1), Rights::READ, 0))
        .unwrap();

    for p in [uart, console, producer, consumer] {
        m.partitions.push(p).unwrap();
    }
    m
}

const PROGRAMS: [&[u8]; 3] = [
    b"uart program",
    b"console!",
    b"producer-consumer program bytes",
];

fn sample_package() -> Vec<u8> {
    package::build(&sample(), &PROGRAMS, &[]).expect("the sample builds")
}

/// Parses and decodes, as the kernel does; any error is fine, a panic is not.
fn kernel_reads(bytes: &[u8]) -> Result<BootManifest, ()> {
    let package = Package::parse(bytes).map_err(|_| ())?;
    package.manifest().map_err(|_| ())
}

#[test]
fn sample_is_valid_and_round_trips() {
    let manifest = sample();
    assert_eq!(manifest.validate(), Ok(()));
    let bytes = sample_package();
    let package = Package::parse(&bytes).unwrap();
    assert_eq!(package.manifest(), Ok(manifest));
    assert_eq!(package.program_count(), PROGRAMS.len());
    for (i, program) in PROGRAMS.iter().enumerate() {
        assert_eq!(package.program(i), Some(*program));
    }
    assert_eq!(package.program(PROGRAMS.len()), None);
    assert_eq!(package.bytes().len(), bytes.len());
}

#[test]
fn layout_matches_the_documented_header() {
    let bytes = sample_package();
    assert_eq!(&bytes[..8], b"BULKHEAD");
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap());
    assert_eq!(u32_at(8), FORMAT_VERSION);
    assert_eq!(u32_at(12), 64);
    assert_eq!(
        u64::from_le_bytes(bytes[16..24].try_into().unwrap()),
        bytes.len() as u64
    );
    assert_eq!(u32_at(24), 64);
    assert_eq!(u32_at(32), 3);
    assert_eq!(u32_at(36) % 8, 0);
    assert_eq!(u32_at(44), 0);
    assert_eq!(u32_at(48) % 8, 0);
    assert!(bytes[52..56].iter().all(|&b| b == 0));
    let checked = u64::from_le_bytes(bytes[56..64].try_into().unwrap());
    assert_eq!(
        checked,
        bytes.len() as u64,
        "no files: the CRC covers it all"
    );
    let mut zeroed = bytes.clone();
    zeroed[40..44].fill(0);
    assert_eq!(u32_at(40), crate::crc32(&zeroed));
}

/// A virtual machine `guest` with two vCPUs, monitored by `vmm`, which maps
/// its RAM and the two files, holds its vCPUs and serves its exits.
fn vm_sample() -> BootManifest {
    let mut m = BootManifest::empty(name("linux"), name("qemu-virt"));
    m.endpoint_count = 1;
    let mut vmm = partition("vmm", 0);
    vmm.caps
        .push(cap(Object::Endpoint(0), Rights::READ, 0))
        .unwrap();
    for vcpu in 0..2 {
        vmm.caps
            .push(cap(
                Object::Vcpu { partition: 1, vcpu },
                Rights::READ.union(Rights::WRITE).union(Rights::CONTROL),
                0,
            ))
            .unwrap();
    }
    let guest_ram = 0x800_0000;
    for (kind, ipa, size, rights) in [
        (
            MappingKind::GuestRam { partition: 1 },
            0x1_0000_0000,
            guest_ram,
            rw(),
        ),
        (
            MappingKind::File { file: 0 },
            0x2_0000_0000,
            0x3000,
            Rights::READ,
        ),
        (
            MappingKind::File { file: 1 },
            0x3_0000_0000,
            0x1000,
            Rights::READ,
        ),
    ] {
        vmm.mappings
            .push(Mapping {
                kind,
                ipa,
                size,
                rights,
            })
            .unwrap();
    }
    let mut guest = partition("guest", 0);
    guest.kind = PartitionKind::Vm(VmSpec {
        monitor: 0,
        exit_endpoint: 0,
    });
    guest.memory_size = guest_ram;
    guest.vcpus = 2;
    m.partitions.push(vmm).unwrap();
    m.partitions.push(guest).unwrap();
    for (text, size) in [("kernel", 0x2001), ("initrd", 0x10)] {
        m.files
            .push(FileSpec {
                name: name(text),
                size,
            })
            .unwrap();
    }
    m
}

const FILES: [&[u8]; 2] = [&[0x5a; 0x2001], b"initrd, 16 bytes"];

#[test]
fn files_travel_page_aligned_outside_the_checksum() {
    let manifest = vm_sample();
    assert_eq!(manifest.validate(), Ok(()));
    let bytes = package::build(&manifest, &PROGRAMS[..1], &FILES).unwrap();
    let package = Package::parse(&bytes).unwrap();
    assert_eq!(package.manifest(), Ok(manifest.clone()));
    assert_eq!(package.file_count(), 2);
    for (i, file) in FILES.iter().enumerate() {
        let got = package.file(i).unwrap();
        assert_eq!(got, *file);
        let offset = got.as_ptr() as usize - bytes.as_ptr() as usize;
        assert_eq!(offset % 4096, 0, "file {i} at {offset:#x}");
    }
    assert_eq!(package.file(2), None);
    let checked = u64::from_le_bytes(bytes[56..64].try_into().unwrap()) as usize;
    let first = package.file(0).unwrap().as_ptr() as usize - bytes.as_ptr() as usize;
    assert!(checked <= first);
    // A flipped byte in a file is the guest's business; anywhere before, it
    // is refused.
    let mut in_file = bytes.clone();
    in_file[first + 5] ^= 0xff;
    assert!(Package::parse(&in_file).is_ok());
    let mut in_manifest = bytes.clone();
    in_manifest[70] ^= 0xff;
    assert!(matches!(
        Package::parse(&in_manifest),
        Err(PackageError::Checksum { .. })
    ));
    // A file whose length differs from the manifest's.
    let short: [&[u8]; 2] = [&[0x5a; 0x2000], FILES[1]];
    assert_eq!(
        package::build(&manifest, &PROGRAMS[..1], &short),
        Err(package::BuildError::Manifest(ManifestError::MissingFile {
            file: 0
        }))
    );
    assert_eq!(
        package::build(&manifest, &PROGRAMS[..1], &FILES[..1]),
        Err(package::BuildError::Manifest(ManifestError::MissingFile {
            file: 1
        }))
    );
}

/// One broken virtual machine per rule, with the error it must produce.
#[test]
fn every_virtual_machine_rule_is_checked() {
    use crate::error::VmProblem;
    type Edit = fn(&mut BootManifest);
    let cases: &[(Edit, ManifestError)] = &[
        (
            |m| {
                if let PartitionKind::Vm(vm) = &mut m.partitions[1].kind {
                    vm.monitor = 1;
                }
            },
            ManifestError::Vm {
                partition: 1,
                problem: VmProblem::Monitor,
            },
        ),
        (
            |m| {
                if let PartitionKind::Vm(vm) = &mut m.partitions[1].kind {
                    vm.monitor = 7;
                }
            },
            ManifestError::Vm {
                partition: 1,
                problem: VmProblem::Monitor,
            },
        ),
        (
            |m| {
                if let PartitionKind::Vm(vm) = &mut m.partitions[1].kind {
                    vm.exit_endpoint = 1;
                }
            },
            ManifestError::Vm {
                partition: 1,
                problem: VmProblem::ExitEndpoint,
            },
        ),
        (
            |m| m.partitions[0].caps[0].rights = Rights::WRITE,
            ManifestError::Vm {
                partition: 1,
                problem: VmProblem::ExitNotServed,
            },
        ),
        (
            |m| m.partitions[0].caps[0].rights = rw(),
            ManifestError::Vm {
                partition: 1,
                problem: VmProblem::ExitWritable { holder: 0 },
            },
        ),
        (
            |m| {
                let mut other = m.partitions[1].clone();
                other.name = name("second");
                m.partitions.push(other).unwrap();
            },
            ManifestError::Vm {
                partition: 1,
                problem: VmProblem::SharedMonitor { other: 2 },
            },
        ),
        (
            |m| m.partitions[0].mappings[0].size = 0x400_0000,
            MappingProblem::Size.at(0, 0),
        ),
        (
            |m| m.partitions[0].mappings[0].kind = MappingKind::GuestRam { partition: 0 },
            MappingProblem::NotMonitor.at(0, 0),
        ),
        (
            |m| m.partitions[0].mappings[0].kind = MappingKind::GuestRam { partition: 9 },
            MappingProblem::Unknown.at(0, 0),
        ),
        (
            |m| m.partitions[0].mappings[1].rights = rw(),
            MappingProblem::Rights.at(0, 1),
        ),
        (
            |m| m.partitions[0].mappings[1].size = 0x2000,
            MappingProblem::Size.at(0, 1),
        ),
        (
            |m| m.partitions[0].mappings[2].kind = MappingKind::File { file: 2 },
            MappingProblem::Unknown.at(0, 2),
        ),
        (
            |m| {
                m.partitions[0].caps[1].object = Object::Vcpu {
                    partition: 1,
                    vcpu: 2,
                }
            },
            ManifestError::UnknownObject {
                partition: 0,
                slot: 1,
            },
        ),
        (
            |m| {
                m.partitions[0].caps[1].object = Object::Vcpu {
                    partition: 0,
                    vcpu: 0,
                }
            },
            ManifestError::UnknownObject {
                partition: 0,
                slot: 1,
            },
        ),
        (
            |m| {
                let vcpu = m.partitions[0].caps[1];
                m.partitions[1].caps.push(vcpu).unwrap();
            },
            ManifestError::NotOwner {
                partition: 1,
                slot: 0,
            },
        ),
        (
            |m| m.partitions[0].caps[1].rights = Rights::GRANT,
            ManifestError::BadRights {
                partition: 0,
                slot: 1,
            },
        ),
        (
            |m| m.files[1].size = 0,
            ManifestError::BadFileSize { file: 1 },
        ),
        (
            |m| m.files[1].name = name("kernel"),
            ManifestError::DuplicateName {
                item: Item::File(1),
                first: 0,
            },
        ),
    ];
    for (i, (edit, expected)) in cases.iter().enumerate() {
        let mut manifest = vm_sample();
        edit(&mut manifest);
        assert_eq!(manifest.validate(), Err(*expected), "case {i}");
        assert!(!expected.to_string().is_empty());
    }
}

#[test]
fn padding_after_the_package_is_ignored() {
    let mut bytes = sample_package();
    bytes.extend_from_slice(&[0xAA; 100]);
    assert_eq!(kernel_reads(&bytes), Ok(sample()));
}

#[test]
fn every_single_byte_corruption_is_refused() {
    let bytes = sample_package();
    for position in 0..bytes.len() {
        for flip in 1..=255u8 {
            let mut corrupt = bytes.clone();
            corrupt[position] ^= flip;
            assert!(
                Package::parse(&corrupt).is_err(),
                "byte {position} ^ {flip:#x} accepted"
            );
        }
    }
}

#[test]
fn every_truncation_is_refused() {
    let bytes = sample_package();
    for length in 0..bytes.len() {
        assert!(
            Package::parse(&bytes[..length]).is_err(),
            "{length} bytes accepted"
        );
    }
    assert_eq!(
        Package::parse(&bytes[..10]).unwrap_err(),
        PackageError::TooShort { length: 10 }
    );
}

/// Rewrites the CRC after an edit, as a hostile or buggy tool would.
fn reseal(bytes: &mut [u8]) {
    bytes[40..44].fill(0);
    let crc = crate::crc32(bytes);
    bytes[40..44].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn resealed_corruption_of_the_manifest_never_panics() {
    let bytes = sample_package();
    let length = u32::from_le_bytes(bytes[28..32].try_into().unwrap()) as usize;
    for position in 64..64 + length {
        for flip in [0x01, 0x02, 0x10, 0x80, 0xFF] {
            let mut corrupt = bytes.clone();
            corrupt[position] ^= flip;
            reseal(&mut corrupt);
            if let Ok(manifest) = kernel_reads(&corrupt) {
                assert_eq!(manifest.validate(), Ok(()));
            }
        }
    }
}

#[test]
fn resealed_bad_offsets_are_refused() {
    let cases: [(usize, u32, PackageError); 5] = [
        (24, 3, PackageError::BadManifestRange),
        (28, 0xFFFF_FFFF, PackageError::BadManifestRange),
        (32, 17, PackageError::TooManyPrograms { count: 17 }),
        (36, 0xFFFF_FFF8, PackageError::BadProgramTable),
        (12, 32, PackageError::BadHeader),
    ];
    for (offset, value, expected) in cases {
        let mut bytes = sample_package();
        bytes[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
        reseal(&mut bytes);
        assert_eq!(
            Package::parse(&bytes).unwrap_err(),
            expected,
            "field {offset}"
        );
    }
    // A program entry pointing past the end.
    let mut bytes = sample_package();
    let table = u32::from_le_bytes(bytes[36..40].try_into().unwrap()) as usize;
    bytes[table + 16 + 8..table + 32].copy_from_slice(&u64::MAX.to_le_bytes());
    reseal(&mut bytes);
    assert_eq!(
        Package::parse(&bytes).unwrap_err(),
        PackageError::BadProgram { index: 1 }
    );
}

#[test]
fn a_version_mismatch_names_both_versions() {
    let mut bytes = sample_package();
    bytes[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    reseal(&mut bytes);
    let error = Package::parse(&bytes).unwrap_err();
    assert_eq!(
        error,
        PackageError::Version {
            found: FORMAT_VERSION + 1,
            expected: FORMAT_VERSION
        }
    );
    assert_eq!(
        error.to_string(),
        format!(
            "boot package format version {}, but this kernel reads version {FORMAT_VERSION}: rebuild the image with this kernel's tools",
            FORMAT_VERSION + 1
        )
    );
}

#[test]
fn checksum_and_magic_errors_read_well() {
    let mut bytes = sample_package();
    bytes[100] ^= 1;
    let message = Package::parse(&bytes).unwrap_err().to_string();
    assert!(
        message.starts_with("boot package corrupt: CRC-32 is 0x"),
        "{message}"
    );
    bytes[0] = b'X';
    assert_eq!(Package::parse(&bytes).unwrap_err(), PackageError::BadMagic);
}

#[test]
fn a_missing_program_is_refused_at_build_and_at_boot() {
    assert_eq!(
        package::build(&sample(), &PROGRAMS[..2], &[]),
        Err(package::BuildError::Manifest(
            ManifestError::MissingProgram { partition: 2 }
        ))
    );
    // A package with fewer programs than the manifest names, built by hand.
    let mut manifest = sample();
    for p in &mut manifest.partitions {
        p.kind = PartitionKind::Service { program: 0 };
    }
    let bytes = package::build(&manifest, &PROGRAMS[..1], &[]).unwrap();
    let mut manifest_with_more = manifest.clone();
    manifest_with_more.partitions[1].kind = PartitionKind::Service { program: 1 };
    let blob = postcard::to_allocvec(&manifest_with_more).unwrap();
    let package = Package::parse(&bytes).unwrap();
    assert_eq!(package.program_count(), 1);
    assert_eq!(BootManifest::decode(&blob), Ok(manifest_with_more));
}

#[test]
fn decode_refuses_trailing_bytes_and_garbage() {
    let mut blob = postcard::to_allocvec(&sample()).unwrap();
    assert_eq!(BootManifest::decode(&blob), Ok(sample()));
    blob.push(0);
    assert_eq!(
        BootManifest::decode(&blob),
        Err(ManifestError::TrailingBytes)
    );
    assert_eq!(BootManifest::decode(&[]), Err(ManifestError::Malformed));
    assert_eq!(
        BootManifest::decode(&[0xFF; 8]),
        Err(ManifestError::Malformed)
    );
}

#[test]
fn a_kernel_only_system_is_valid() {
    let manifest = BootManifest::empty(name("demo"), name("qemu-virt"));
    assert_eq!(manifest.validate(), Ok(()));
    let bytes = package::build(&manifest, &[], &[]).unwrap();
    assert_eq!(kernel_reads(&bytes), Ok(manifest));
}

/// One broken sample per rule, with the error it must produce.
#[test]
fn every_rule_is_checked() {
    type Edit = fn(&mut BootManifest);
    let cases: &[(Edit, ManifestError)] = &[
        (
            |m| m.system = name("Demo"),
            ManifestError::BadName(Item::System),
        ),
        (
            |m| m.platform = name(""),
            ManifestError::BadName(Item::Platform),
        ),
        (
            |m| m.partitions[1].name = name("9lives"),
            ManifestError::BadName(Item::Partition(1)),
        ),
        (
            |m| m.partitions[2].name = name("uart"),
            ManifestError::DuplicateName {
                item: Item::Partition(2),
                first: 0,
            },
        ),
        (
            |m| m.shared_regions[0].name = name("a b"),
            ManifestError::BadName(Item::SharedRegion(0)),
        ),
        (|m| m.endpoint_count = 65, ManifestError::TooManyEndpoints),
        (
            |m| m.notification_count = 65,
            ManifestError::TooManyNotifications,
        ),
        (
            |m| m.partitions[0].kind = PartitionKind::Service { program: 16 },
            ManifestError::MissingProgram { partition: 0 },
        ),
        (
            |m| m.partitions[1].memory_size = 0x3001,
            ManifestError::BadMemorySize { partition: 1 },
        ),
        (
            |m| m.partitions[1].memory_size = 0,
            ManifestError::BadMemorySize { partition: 1 },
        ),
        (
            |m| m.partitions[1].memory_base = Some(u64::MAX - 0xFFF),
            ManifestError::BadMemoryBase { partition: 1 },
        ),
        (
            |m| m.partitions[1].memory_base = Some(0x5000_0800),
            ManifestError::BadMemoryBase { partition: 1 },
        ),
        (
            |m| m.partitions[2].memory_base = Some(0x5003_F000),
            ManifestError::MemoryOverlap {
                partition: 2,
                other: 1,
            },
        ),
        (
            |m| m.partitions[1].ram_ipa = (1 << 40) - 0x1000,
            ManifestError::BadRamIpa { partition: 1 },
        ),
        (
            |m| m.partitions[1].vcpus = 0,
            ManifestError::BadVcpus { partition: 1 },
        ),
        (
            |m| m.partitions[1].vcpus = 9,
            ManifestError::BadVcpus { partition: 1 },
        ),
        (
            |m| m.partitions[1].cores = 0,
            ManifestError::NoCores { partition: 1 },
        ),
        (
            |m| m.partitions[0].mappings[0].ipa = !0xFFF,
            MappingProblem::Range.at(0, 0),
        ),
        (
            |m| m.partitions[0].mappings[0].size = 0,
            MappingProblem::Range.at(0, 0),
        ),
        (
            |m| m.partitions[0].mappings[0].ipa = RAM_IPA + 0x1000,
            MappingProblem::Overlap(None).at(0, 0),
        ),
        (
            |m| {
                let again = m.partitions[2].mappings[0];
                m.partitions[2].mappings.push(again).unwrap();
            },
            MappingProblem::Overlap(Some(0)).at(2, 1),
        ),
        (
            |m| m.partitions[0].mappings[0].kind = MappingKind::Device { device: 5 },
            MappingProblem::Unknown.at(0, 0),
        ),
        (
            |m| m.partitions[2].mappings[0].kind = MappingKind::Shared { region: 1 },
            MappingProblem::Unknown.at(2, 0),
        ),
        (
            |m| {
                let device = m.partitions[0].mappings.pop().unwrap();
                m.partitions[1].mappings.push(device).unwrap();
            },
            MappingProblem::NotOwned.at(1, 0),
        ),
        (
            |m| m.partitions[0].mappings[0].size = 0x2000,
            MappingProblem::Size.at(0, 0),
        ),
        (
            |m| m.partitions[0].mappings[0].rights = Rights::EXECUTE,
            MappingProblem::Rights.at(0, 0),
        ),
        (
            |m| m.partitions[3].mappings[0].rights = rw(),
            MappingProblem::NoCapability.at(3, 0),
        ),
        (
            |m| m.partitions[1].caps[0].object = Object::Endpoint(1),
            ManifestError::UnknownObject {
                partition: 1,
                slot: 0,
            },
        ),
        (
            |m| m.partitions[1].caps[1].object = Object::Partition(4),
            ManifestError::UnknownObject {
                partition: 1,
                slot: 1,
            },
        ),
        (
            |m| m.partitions[0].caps[2].object = Object::Irq(1),
            ManifestError::UnknownObject {
                partition: 0,
                slot: 2,
            },
        ),
        (
            |m| m.partitions[1].caps[0].rights = Rights::CONTROL,
            ManifestError::BadRights {
                partition: 1,
                slot: 0,
            },
        ),
        (
            |m| m.partitions[1].caps[0].rights = Rights(1 << 9),
            ManifestError::BadRights {
                partition: 1,
                slot: 0,
            },
        ),
        (
            |m| m.partitions[1].caps[0].rights = Rights::NONE,
            ManifestError::BadRights {
                partition: 1,
                slot: 0,
            },
        ),
        (
            |m| m.partitions[3].caps[1] = cap(Object::Reply(0), Rights::WRITE, 0),
            ManifestError::NotOwner {
                partition: 3,
                slot: 1,
            },
        ),
        (
            |m| m.partitions[1].caps[2].object = Object::Reply(1),
            ManifestError::UnknownObject {
                partition: 1,
                slot: 2,
            },
        ),
        (
            |m| m.partitions[1].caps[2].rights = Rights::READ,
            ManifestError::BadRights {
                partition: 1,
                slot: 2,
            },
        ),
        (
            |m| m.replies[0] = 4,
            ManifestError::BadReplyOwner { reply: 0 },
        ),
        (
            |m| m.partitions[1].caps[0].object = Object::Device(0),
            ManifestError::NotOwner {
                partition: 1,
                slot: 0,
            },
        ),
        (
            |m| {
                m.partitions[1].caps[0] = cap(Object::Irq(0), Rights::WRITE, 0);
            },
            ManifestError::NotOwner {
                partition: 1,
                slot: 0,
            },
        ),
        (
            |m| m.shared_regions[0].size = 0x800,
            ManifestError::BadRegionSize { region: 0 },
        ),
        (
            |m| m.devices[0].pa = !0xFFF,
            ManifestError::BadDevice { device: 0 },
        ),
        (
            |m| m.devices[0].owner = 4,
            ManifestError::BadDeviceOwner { device: 0 },
        ),
        (
            |m| {
                let mut rtc = m.devices[0].clone();
                rtc.name = name("rtc");
                m.devices.push(rtc).unwrap();
            },
            ManifestError::DeviceOverlap {
                device: 1,
                other: 0,
            },
        ),
        (|m| m.irqs[0].intid = 27, ManifestError::BadIntid { irq: 0 }),
        (
            |m| m.irqs[0].intid = 1020,
            ManifestError::BadIntid { irq: 0 },
        ),
        (
            |m| {
                let mut again = m.irqs[0];
                again.badge = Badge(2);
                m.irqs.push(again).unwrap();
            },
            ManifestError::DuplicateIntid { irq: 1, first: 0 },
        ),
        (
            |m| m.irqs[0].notification = 3,
            ManifestError::UnknownIrqObject { irq: 0 },
        ),
        (
            |m| m.irqs[0].badge = Badge(0),
            ManifestError::BadIrqBadge {
                irq: 0,
                other: None,
            },
        ),
        (
            |m| {
                let mut other = m.irqs[0];
                other.intid = 34;
                other.badge = Badge(3);
                m.irqs.push(other).unwrap();
            },
            ManifestError::BadIrqBadge {
                irq: 1,
                other: Some(0),
            },
        ),
        (
            // A signaller whose badge has the interrupt's bit could pass
            // for the UART's interrupt.
            |m| {
                m.partitions[2]
                    .caps
                    .push(cap(Object::Notification(0), Rights::WRITE, 0b11))
                    .unwrap();
            },
            ManifestError::IrqBadgeSignalled {
                irq: 0,
                partition: 2,
                slot: 2,
            },
        ),
        (
            // The waiter itself signalling with the interrupt's bit.
            |m| m.partitions[0].caps[0] = cap(Object::Notification(0), rw(), 1),
            ManifestError::IrqBadgeSignalled {
                irq: 0,
                partition: 0,
                slot: 0,
            },
        ),
        (
            |m| {
                m.kernel_log = Some(KernelLogSpec {
                    partition: 0,
                    notification: 0,
                    badge: Badge(1),
                });
            },
            ManifestError::IrqBadgeKernelLog { irq: 0 },
        ),
        (
            |m| m.fault_signals[0].badge = Badge(0),
            ManifestError::BadFaultSignal { signal: 0 },
        ),
        (
            // Console does not control the producer.
            |m| m.fault_signals[0].partition = 2,
            ManifestError::BadFaultSignal { signal: 0 },
        ),
        (
            // Console does not wait on notification 1 (the consumer does).
            |m| m.fault_signals[0].notification = 1,
            ManifestError::BadFaultSignal { signal: 0 },
        ),
        (
            |m| m.fault_signals[0].notification = 3,
            ManifestError::BadFaultSignal { signal: 0 },
        ),
        (
            // A signaller setting the fault signal's bit could fake a fault.
            |m| {
                m.partitions[2]
                    .caps
                    .push(cap(Object::Notification(2), Rights::WRITE, 0b110))
                    .unwrap();
            },
            ManifestError::BadFaultSignal { signal: 0 },
        ),
        (
            |m| {
                let mut again = m.fault_signals[0];
                again.badge = Badge(0b100);
                m.fault_signals.push(again).unwrap();
            },
            ManifestError::BadFaultSignal { signal: 1 },
        ),
    ];
    let mut forged_count = 0;
    for (i, (edit, expected)) in cases.iter().enumerate() {
        let mut manifest = sample();
        edit(&mut manifest);
        assert_eq!(manifest.validate(), Err(*expected), "case {i}");
        assert!(!expected.to_string().is_empty());
        // The same manifest through the package builder is refused too.
        assert_eq!(
            package::build(&manifest, &PROGRAMS, &[]),
            Err(package::BuildError::Manifest(*expected)),
            "case {i}"
        );
        // Forged into a package with a right CRC, the kernel refuses it
        // when it decodes the manifest.
        // (Not when the package's programs cannot carry it.)
        let original = sample_package();
        match package::forge(&Package::parse(&original).unwrap(), &manifest) {
            Ok(forged) => {
                let parsed = Package::parse(&forged).expect("the forged package's CRC is right");
                assert_eq!(parsed.manifest(), Err(*expected), "case {i}");
                assert_eq!(parsed.program_count(), PROGRAMS.len());
                forged_count += 1;
            }
            Err(package::BuildError::Manifest(ManifestError::MissingProgram { .. })) => {}
            Err(e) => panic!("case {i}: {e}"),
        }
    }
    assert!(forged_count + 3 > cases.len(), "{forged_count} forged");
}

#[test]
fn error_messages_say_where() {
    assert_eq!(
        MappingProblem::Overlap(Some(2)).at(1, 3).to_string(),
        "partition 1 mapping 3: overlaps mapping 2"
    );
    assert_eq!(
        ManifestError::BadRights {
            partition: 0,
            slot: 5
        }
        .to_string(),
        "partition 0 slot 5: rights are empty or not meaningful for the object"
    );
}

#[test]
fn the_manifest_size_is_known() {
    // About 30.7 KiB with today's limits (27.8 before fault signals, the
    // schedule and budgets): too big for a secondary core's 32 KiB stack to
    // hold once, so the kernel decodes it on core 0's 512 KiB boot stack
    // (`system::load`) and keeps it in static or heap memory. If this
    // grows, check where the kernel keeps its manifest.
    let size = core::mem::size_of::<BootManifest>();
    assert!(size < 31 * 1024, "BootManifest is {size} bytes");
}

/// A valid manifest built from random choices: `n` partitions with random
/// scalars, and a chain of endpoint capabilities between them.
fn valid_manifest() -> impl Strategy<Value = BootManifest> {
    let scalars = (
        1u64..=64,
        prop::option::of(0u64..1024),
        1u8..=8,
        1u8..=255,
        any::<u8>(),
        any::<bool>(),
        0u8..16,
        any::<u64>(),
    );
    (
        prop::collection::vec(scalars, 0..=16),
        0u16..=64,
        prop::option::of(2u32..=1000),
        any::<u16>(),
    )
        .prop_map(|(parts, endpoints, frame, budgeted)| {
            let mut m = BootManifest::empty(name("random"), name("qemu-virt"));
            m.endpoint_count = endpoints;
            for (i, (pages, base, vcpus, cores, priority, restart, program, badge)) in
                parts.into_iter().enumerate()
            {
                let mut p = partition(&format!("p{i}"), program);
                p.memory_size = pages * 0x1000;
                // Fixed bases in disjoint 1 GiB slots, so they never overlap.
                p.memory_base = base.map(|b| (i as u64) << 30 | b << 12);
                p.vcpus = vcpus;
                p.cores = cores;
                p.priority = priority;
                p.fault = if restart {
                    FaultPolicy::Restart
                } else {
                    FaultPolicy::Stop
                };
                if endpoints > 0 {
                    let endpoint = (i as u16) % endpoints;
                    p.caps
                        .push(cap(Object::Endpoint(endpoint), Rights::WRITE, badge))
                        .unwrap();
                }
                if budgeted & (1 << i) != 0 {
                    m.budgets
                        .push(BudgetSpec {
                            partition: i as u16,
                            vcpu: vcpus - 1,
                            budget_us: u32::from(priority) * 10 + 1,
                            period_us: 2551,
                        })
                        .unwrap();
                }
                m.partitions.push(p).unwrap();
            }
            if let Some(frame) = frame {
                m.schedule = Some(schedule_for(&m.partitions, frame * 1000));
            }
            m
        })
}

/// A valid schedule of `frame` microseconds (at least 2) for `partitions`:
/// on every core, a window shared by every partition that may run there,
/// then a background window.
fn schedule_for(partitions: &[PartitionSpec], frame: u32) -> ScheduleSpec {
    let mut schedule = ScheduleSpec {
        major_frame_us: frame,
        cores: heapless::Vec::new(),
        windows: heapless::Vec::new(),
    };
    for core in 0..MAX_CORES {
        let owners = partitions
            .iter()
            .enumerate()
            .filter(|(_, p)| p.cores & (1 << core) != 0)
            .fold(0u16, |mask, (i, _)| mask | 1 << i);
        let mut count = 0;
        if owners != 0 {
            schedule
                .windows
                .push(Window {
                    length_us: frame / 2,
                    owners: Owners::Partitions(owners),
                })
                .unwrap();
            count += 1;
        }
        schedule
            .windows
            .push(Window {
                length_us: frame - if owners != 0 { frame / 2 } else { 0 },
                owners: Owners::Background,
            })
            .unwrap();
        schedule.cores.push(count + 1).unwrap();
    }
    schedule
}

/// Random valid manifests, with and without schedules and budgets, pack and
/// read back unchanged.
///
/// In a thread of its own with an 8 MiB stack: an unoptimised build keeps
/// dozens of copies of the 28 KiB manifest on the stack between proptest,
/// the encoder and the decoder, and needed about 2.0 MB before schedules,
/// 2.5 MB after, just over the 2 MiB a test thread gets. (The kernel decodes
/// its manifest once, optimised, on core 0's 512 KiB boot stack.)
#[test]
fn random_valid_manifests_round_trip() {
    let run = || {
        let mut runner = proptest::test_runner::TestRunner::default();
        runner
            .run(&valid_manifest(), |manifest| {
                prop_assert_eq!(manifest.validate(), Ok(()));
                let programs: Vec<&[u8]> = vec![b"program"; 16];
                let bytes = package::build(&manifest, &programs, &[]).unwrap();
                let package = Package::parse(&bytes).unwrap();
                prop_assert_eq!(package.manifest(), Ok(manifest));
                Ok(())
            })
            .map_err(|failure| failure.to_string())
    };
    let outcome = std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(run)
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(outcome, Ok(()));
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = BootManifest::decode(&bytes);
        let _ = Package::parse(&bytes);
    }

    #[test]
    fn random_headers_never_panic(
        header in prop::collection::vec(any::<u8>(), 64..=64),
        body in prop::collection::vec(any::<u8>(), 0..256),
        version in prop::sample::select(vec![FORMAT_VERSION, 2]),
    ) {
        let mut bytes = header;
        bytes[..8].copy_from_slice(b"BULKHEAD");
        bytes[8..12].copy_from_slice(&version.to_le_bytes());
        bytes[12..16].copy_from_slice(&64u32.to_le_bytes());
        bytes[44..64].fill(0);
        bytes.extend_from_slice(&body);
        let total = bytes.len() as u64;
        bytes[16..24].copy_from_slice(&total.to_le_bytes());
        reseal(&mut bytes);
        // Random offsets with a valid CRC: refused or accepted, never a panic,
        // and whatever is accepted lies inside the package.
        if let Ok(package) = Package::parse(&bytes) {
            for i in 0..package.program_count() {
                prop_assert!(package.program(i).is_some());
            }
            let _ = package.manifest();
        }
    }

    #[test]
    fn random_edits_of_a_valid_manifest_never_panic(
        edits in prop::collection::vec((0usize..2000, any::<u8>()), 1..8),
    ) {
        let mut blob = postcard::to_allocvec(&sample()).unwrap();
        for (position, value) in edits {
            let position = position % blob.len();
            blob[position] = value;
        }
        if let Ok(manifest) = BootManifest::decode(&blob) {
            prop_assert_eq!(manifest.validate(), Ok(()));
        }
    }
}

/// `vm_sample` with the RTC passed through to the guest: its registers and
/// its interrupt.
fn passthrough_sample() -> BootManifest {
    let mut m = vm_sample();
    m.devices
        .push(crate::DeviceSpec {
            name: name("rtc0"),
            pa: 0x0901_0000,
            size: 0x1000,
            owner: 1,
        })
        .unwrap();
    m.passthrough
        .push(crate::PassthroughIrq {
            intid: 34,
            device: 0,
        })
        .unwrap();
    m.partitions[1]
        .mappings
        .push(crate::Mapping {
            kind: MappingKind::Device { device: 0 },
            ipa: 0x0901_0000,
            size: 0x1000,
            rights: rw(),
        })
        .unwrap();
    m
}

#[test]
fn devices_and_interrupts_pass_through_to_a_guest() {
    use crate::error::VmProblem;
    let manifest = passthrough_sample();
    assert_eq!(manifest.validate(), Ok(()));
    let bytes = package::build(&manifest, &PROGRAMS[..1], &FILES).unwrap();
    assert_eq!(Package::parse(&bytes).unwrap().manifest(), Ok(manifest));
    type Edit = fn(&mut BootManifest);
    let cases: &[(Edit, ManifestError)] = &[
        // Over the UART its monitor emulates, or over its RAM.
        (
            |m| m.devices[0].pa = 0x0900_0000,
            ManifestError::Vm {
                partition: 1,
                problem: VmProblem::DeviceInLayout { device: 0 },
            },
        ),
        (
            |m| m.devices[0].pa = m.partitions[1].ram_ipa,
            ManifestError::Vm {
                partition: 1,
                problem: VmProblem::DeviceInLayout { device: 0 },
            },
        ),
        // Not an SPI a guest can have.
        (
            |m| m.passthrough[0].intid = 27,
            ManifestError::BadPassthrough { irq: 0 },
        ),
        (
            |m| m.passthrough[0].intid = 300,
            ManifestError::BadPassthrough { irq: 0 },
        ),
        // The emulated UART's.
        (
            |m| m.passthrough[0].intid = 33,
            ManifestError::BadPassthrough { irq: 0 },
        ),
        // Mapped anywhere but at its physical address.
        (
            |m| m.partitions[1].mappings[0].ipa = 0x0902_0000,
            MappingProblem::Range.at(1, 0),
        ),
        // Bound twice.
        (
            |m| {
                let again = m.passthrough[0];
                m.passthrough.push(again).unwrap();
            },
            ManifestError::BadPassthrough { irq: 1 },
        ),
        // Of a device a service owns, or of none.
        (
            |m| {
                m.devices[0].owner = 0;
                m.partitions[1].mappings.clear();
            },
            ManifestError::BadPassthrough { irq: 0 },
        ),
        (
            |m| m.passthrough[0].device = 1,
            ManifestError::BadPassthrough { irq: 0 },
        ),
        // A guest's device's interrupt bound to a notification instead.
        (
            |m| {
                m.notification_count = 1;
                m.passthrough.clear();
                m.irqs
                    .push(crate::IrqSpec {
                        intid: 34,
                        device: 0,
                        notification: 0,
                        badge: hv_abi::hypercall::Badge(1),
                    })
                    .unwrap();
            },
            ManifestError::UnknownIrqObject { irq: 0 },
        ),
    ];
    for (i, (edit, expected)) in cases.iter().enumerate() {
        let mut m = passthrough_sample();
        edit(&mut m);
        assert_eq!(m.validate(), Err(*expected), "case {i}");
    }
}

#[test]
fn only_partitions_with_a_device_synchronise_serrors() {
    // uart maps uart0; console maps only RAM and shared memory.
    let m = sample();
    let owners: std::vec::Vec<bool> = m
        .partitions
        .iter()
        .map(PartitionSpec::owns_devices)
        .collect();
    assert!(owners[0]);
    assert!(owners[1..].iter().all(|owns| !owns));
}
