// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The checker on the demo system (each program a small stand-in ELF file
//! with a page of code): its tables pass, and every corruption of them is
//! caught.

use super::{Access, Built, MACHINES, Manifest, Run, build, check, merge, negatives, walk};
use crate::prove::tests::tiny_elf;

fn demo(machine: usize) -> Built {
    let root = crate::root();
    let system = crate::system::System::load(&root.join("systems/demo.toml")).unwrap();
    let platform =
        hv_manifest::platform::Platform::read(&root.join("platforms/qemu-virt/platform.toml"))
            .unwrap();
    let programs = system.compiled.programs.iter().map(|_| Some(tiny_elf()));
    let manifest = Manifest {
        path: "systems/demo.toml".into(),
        programs: programs.collect(),
        compiled: system.compiled,
        built: None,
    };
    build(&manifest, &platform, MACHINES[machine].1).unwrap()
}

#[test]
fn the_demo_systems_tables_hold_every_property_on_both_gics() {
    for machine in 0..MACHINES.len() {
        let built = demo(machine);
        let findings = check(&built);
        assert!(findings.clean(), "{findings:?}");
        // Seven partitions: RAM each (in three pieces: data, the program's
        // page of code, data), the driver's UART, two shared regions mapped
        // by two partitions each.
        assert_eq!(findings.mappings, 7 * 3 + 1 + 4);
        assert_eq!(findings.wx_allowed, 0);
        assert!(findings.walked.descriptors > findings.mappings);
    }
}

#[test]
fn every_corruption_is_caught() {
    let results = negatives(&demo(0));
    assert_eq!(results.len(), 7);
    for (what, caught) in results {
        assert!(caught, "not caught: {what}");
    }
}

#[test]
fn an_extra_kernel_page_is_reported_as_such() {
    let built = demo(0);
    let mut bad = built.clone();
    // Partition 0's RAM: point its first page at the kernel's image.
    let image = built.kernel[0].0.start();
    let ram_ipa = built.manifest.partitions[0].ram_ipa;
    let slot = super::slot(&mut bad.partitions[0], ram_ipa).unwrap();
    *slot = (*slot & !super::OUTPUT) | image;
    let findings = check(&bad);
    assert!(!findings.exact.is_empty());
    assert!(
        findings
            .kernel
            .iter()
            .any(|f| f.contains("the kernel's image")),
        "{findings:?}"
    );
}

#[test]
fn the_walker_refuses_what_the_kernel_never_writes() {
    let built = demo(0);
    let tables = &built.partitions[0];
    assert!(walk(&tables.tables, tables.pool, tables.root).is_ok());
    // A table descriptor pointing outside the pool.
    let mut bad = tables.clone();
    let root = bad.tables[0]
        .0
        .iter()
        .position(|d| d & 0b11 == 0b11)
        .unwrap();
    bad.tables[0].0[root] = 0x1000_0000 | 0b11;
    let e = walk(&bad.tables, bad.pool, bad.root).unwrap_err();
    assert!(e.contains("outside the pool"), "{e}");
    // A contiguous hint on a page.
    let mut bad = tables.clone();
    let ipa = built.manifest.partitions[0].ram_ipa;
    let mut bad_tables = bad.clone();
    let slot = super::slot(&mut bad_tables, ipa).unwrap();
    *slot |= 1 << 52;
    bad = bad_tables;
    let e = walk(&bad.tables, bad.pool, bad.root).unwrap_err();
    assert!(e.contains("unknown bits"), "{e}");
}

#[test]
fn runs_merge_only_when_they_continue_each_other() {
    let access = super::Access::normal(true, true, false);
    let run = |ipa, pa| Run {
        ipa,
        pa,
        size: 0x1000,
        access,
    };
    assert_eq!(
        merge(vec![
            run(0x2000, 0x9000),
            run(0x1000, 0x8000),
            run(0x3000, 0x1_0000)
        ]),
        [
            Run {
                size: 0x2000,
                ..run(0x1000, 0x8000)
            },
            run(0x3000, 0x1_0000)
        ]
    );
}

#[test]
fn code_and_data_in_one_page_cannot_be_separated() {
    use super::separable;
    // services/rt/link.x today: .text ends mid-page, .data follows.
    let shared = [(0, 0x2560, false, true), (0x2aa8, 0x2b98, true, false)];
    assert!(!separable(&shared));
    // Page-aligned data: separable.
    let apart = [(0, 0x2560, false, true), (0x3000, 0x3100, true, false)];
    assert!(separable(&apart));
    // A writable and executable segment never is.
    assert!(!separable(&[(0, 0x1000, true, true)]));
}

#[test]
fn a_programs_ram_is_expected_page_by_page() {
    let (code, data, rodata) = (
        Access::normal(true, false, true),
        Access::normal(true, true, false),
        Access::normal(true, false, false),
    );
    let rwx = Access::normal(true, true, true);
    assert_eq!(super::ram_access(None, 0x8000), [(0, 0x8000, rwx)]);
    // Code, read-only data from its last page on, data from a page of its
    // own; the rest stacks.
    let apart = [
        (0, 0x1800, false, true),
        (0x1800, 0x2100, false, false),
        (0x3000, 0x3010, true, false),
    ];
    assert_eq!(
        super::ram_access(Some(&apart), 0x8000),
        [
            (0, 0x2000, code),
            (0x2000, 0x1000, rodata),
            (0x3000, 0x5000, data)
        ]
    );
    // Data in code's last page: that page both.
    let shared = [(0, 0x1800, false, true), (0x1800, 0x1900, true, false)];
    assert_eq!(
        super::ram_access(Some(&shared), 0x4000),
        [
            (0, 0x1000, code),
            (0x1000, 0x1000, rwx),
            (0x2000, 0x2000, data)
        ]
    );
}

#[test]
fn separable_programs_mapped_otherwise_are_reported() {
    let built = demo(0);
    // The tables keep the stand-in's code read-only...
    let own = super::segments(&tiny_elf()).unwrap();
    assert_eq!(super::program_wx(&built, 0, &own), Some(vec![]));
    // ...but not code where they map the stack, nor data where the code is.
    let apart = [(0, 0x1000, false, true), (0x1000, 0x2000, true, false)];
    let failures = super::program_wx(&built, 0, &apart).unwrap();
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(failures[0].contains("code at IPA"), "{failures:?}");
    assert!(failures[1].contains("writable data at IPA"), "{failures:?}");
    assert!(super::segments(b"not an elf").is_err());
    assert_eq!(
        super::segments(&crate::prove::tests::tiny_elf()).unwrap(),
        [(0x1000, 0x1010, false, true)]
    );
}

#[test]
fn a_built_image_gives_the_kernels_size_and_its_package() {
    let root = crate::root();
    let system = crate::system::System::load(&root.join("systems/demo.toml")).unwrap();
    let compiled = &system.compiled;
    let programs: Vec<&[u8]> = compiled.programs.iter().map(|_| &b"program"[..]).collect();
    let package = compiled.package(&programs, &[]).unwrap();
    let mut image = vec![0u8; 3 * 4096];
    image[..8].copy_from_slice(b"notapkg!");
    image.extend_from_slice(&package);
    image.resize(image.len().next_multiple_of(4096), 0);
    let dir = std::env::temp_dir().join(format!("xtask-prove-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("demo.img");
    std::fs::write(&path, &image).unwrap();
    let (size, found) = super::built_image(&path, &compiled.manifest).unwrap();
    assert_eq!((size, found.as_slice()), (3 * 4096, package.as_slice()));
    // Another system's image is not used.
    let mut other = compiled.manifest.clone();
    other.scrub_on_switch = !other.scrub_on_switch;
    assert!(super::built_image(&path, &other).is_none());
    assert!(super::built_image(&dir.join("absent.img"), &compiled.manifest).is_none());
    std::fs::remove_dir_all(&dir).unwrap();
}
