// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Tests of the device tree: every node and property, read back with the `fdt` crate, and
//! with `dtc` when the host has it.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use fdt::Fdt;
use fdt::node::FdtNode;

use super::{
    APB_CLOCK_HZ, CLOCK_PHANDLE, FdtError, GIC_PHANDLE, GicConfig, GicVersion, GuestMachine, build,
    timer_flags,
};
use crate::image::Region;
use crate::passthrough::{self, Device};

const MIB: u64 = 1 << 20;

fn v3(vcpus: u8) -> GuestMachine {
    let mut machine = GuestMachine::qemu_virt(vcpus, 512 * MIB, GicVersion::V3);
    machine.bootargs = "console=ttyAMA0 rdinit=/init".into();
    machine.initrd = Some(Region {
        start: 0x5f00_0000,
        size: 1_078_000,
    });
    machine
}

fn v2(vcpus: u8) -> GuestMachine {
    let mut machine = GuestMachine::qemu_virt(vcpus, 128 * MIB, GicVersion::V2);
    machine.bootargs = "console=ttyAMA0".into();
    machine
}

fn cells(node: FdtNode<'_, '_>, name: &str) -> Vec<u32> {
    let value = node
        .property(name)
        .unwrap_or_else(|| panic!("{} has no {name}", node.name))
        .value;
    value
        .chunks(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn u64s(node: FdtNode<'_, '_>, name: &str) -> Vec<u64> {
    let value = node.property(name).unwrap().value;
    value
        .chunks(8)
        .map(|c| u64::from_be_bytes(c.try_into().unwrap()))
        .collect()
}

fn strings<'a>(node: FdtNode<'_, 'a>, name: &str) -> Vec<&'a str> {
    let value = node.property(name).unwrap().value;
    value
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| core::str::from_utf8(s).unwrap())
        .collect()
}

fn text<'a>(node: FdtNode<'_, 'a>, name: &str) -> &'a str {
    node.property(name).unwrap().as_str().unwrap()
}

fn is_empty_property(node: FdtNode<'_, '_>, name: &str) -> bool {
    node.property(name).is_some_and(|p| p.value.is_empty())
}

#[test]
fn the_root_describes_a_dummy_virt_machine() {
    let blob = build(&v3(1)).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    let root = fdt.find_node("/").unwrap();
    assert_eq!(strings(root, "compatible"), ["linux,dummy-virt"]);
    assert_eq!(text(root, "model"), "linux,dummy-virt");
    assert_eq!(cells(root, "#address-cells"), [2]);
    assert_eq!(cells(root, "#size-cells"), [2]);
    assert_eq!(cells(root, "interrupt-parent"), [GIC_PHANDLE]);
    let mut names: Vec<&str> = root.children().map(|n| n.name).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "apb-pclk",
            "chosen",
            "cpus",
            "intc@8000000",
            "memory@40000000",
            "pl011@9000000",
            "psci",
            "timer"
        ]
    );
}

#[test]
fn psci_uses_hvc() {
    let blob = build(&v3(1)).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    let psci = fdt.find_node("/psci").unwrap();
    assert_eq!(
        strings(psci, "compatible"),
        ["arm,psci-1.0", "arm,psci-0.2", "arm,psci"]
    );
    assert_eq!(text(psci, "method"), "hvc");
}

#[test]
fn memory_is_the_guests_ram() {
    let blob = build(&v3(1)).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    let memory = fdt.find_node("/memory@40000000").unwrap();
    assert_eq!(text(memory, "device_type"), "memory");
    assert_eq!(u64s(memory, "reg"), [0x4000_0000, 512 * MIB]);
    let region = fdt.memory().regions().next().unwrap();
    assert_eq!(region.starting_address as usize, 0x4000_0000);
    assert_eq!(region.size, Some(512 * MIB as usize));
}

#[test]
fn one_cpu_node_per_vcpu_with_aff0_as_reg() {
    let blob = build(&v3(4)).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    let cpus = fdt.find_node("/cpus").unwrap();
    assert_eq!(cells(cpus, "#address-cells"), [1]);
    assert_eq!(cells(cpus, "#size-cells"), [0]);
    assert_eq!(cpus.children().count(), 4);
    for index in 0..4u32 {
        let cpu = fdt.find_node(&alloc::format!("/cpus/cpu@{index}")).unwrap();
        assert_eq!(text(cpu, "device_type"), "cpu");
        assert_eq!(strings(cpu, "compatible"), ["arm,armv8"]);
        assert_eq!(cells(cpu, "reg"), [index]);
        assert_eq!(text(cpu, "enable-method"), "psci");
    }
    let ids: Vec<usize> = fdt.cpus().map(|cpu| cpu.ids().first()).collect();
    assert_eq!(ids, [0, 1, 2, 3]);
}

#[test]
fn many_cpus_get_hex_unit_addresses() {
    let blob = build(&v3(16)).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    let cpu = fdt.find_node("/cpus/cpu@f").unwrap();
    assert_eq!(cells(cpu, "reg"), [15]);
}

#[test]
fn gicv3_has_a_distributor_and_a_redistributor_per_vcpu() {
    let blob = build(&v3(4)).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    let gic = fdt.find_node("/intc@8000000").unwrap();
    assert_eq!(strings(gic, "compatible"), ["arm,gic-v3"]);
    assert_eq!(
        u64s(gic, "reg"),
        [0x0800_0000, 0x1_0000, 0x080a_0000, 4 * 0x2_0000]
    );
    assert_eq!(cells(gic, "#redistributor-regions"), [1]);
    assert!(is_empty_property(gic, "interrupt-controller"));
    assert_eq!(cells(gic, "#interrupt-cells"), [3]);
    assert_eq!(cells(gic, "#address-cells"), [0]);
    assert_eq!(cells(gic, "phandle"), [GIC_PHANDLE]);
    assert_eq!(fdt.find_phandle(GIC_PHANDLE).unwrap().name, "intc@8000000");
}

#[test]
fn gicv2_has_a_distributor_and_a_cpu_interface() {
    let blob = build(&v2(2)).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    let gic = fdt.find_node("/intc@8000000").unwrap();
    assert_eq!(strings(gic, "compatible"), ["arm,cortex-a15-gic"]);
    assert_eq!(u64s(gic, "reg"), [0x0800_0000, 0x1000, 0x0801_0000, 0x2000]);
    assert!(gic.property("#redistributor-regions").is_none());
    assert!(is_empty_property(gic, "interrupt-controller"));
    assert_eq!(cells(gic, "#interrupt-cells"), [3]);
    assert_eq!(cells(gic, "phandle"), [GIC_PHANDLE]);
}

#[test]
fn the_timer_has_four_level_high_ppis() {
    let blob = build(&v3(2)).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    let timer = fdt.find_node("/timer").unwrap();
    assert_eq!(strings(timer, "compatible"), ["arm,armv8-timer"]);
    assert_eq!(
        cells(timer, "interrupts"),
        [1, 13, 4, 1, 14, 4, 1, 11, 4, 1, 10, 4]
    );
    assert!(is_empty_property(timer, "always-on"));
}

#[test]
fn gicv2_timer_flags_carry_the_cpu_mask() {
    let blob = build(&v2(4)).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    let timer = fdt.find_node("/timer").unwrap();
    assert_eq!(
        cells(timer, "interrupts"),
        [1, 13, 0xf04, 1, 14, 0xf04, 1, 11, 0xf04, 1, 10, 0xf04]
    );
    assert_eq!(timer_flags(&v2(1)), 0x104);
    assert_eq!(timer_flags(&v2(8)), 0xff04);
    assert_eq!(timer_flags(&v3(8)), 0x4);
}

/// The flags QEMU 7.2 writes for the same machines (fixtures dumped with `dumpdtb`).
#[test]
fn timer_flags_match_qemus() {
    for (file, machine) in [
        ("qemu-virt-gicv3-smp4-512m.dtb", v3(4)),
        ("qemu-virt-gicv2-smp4-512m.dtb", v2(4)),
    ] {
        let path = alloc::format!(
            "{}/../../kernel/core/tests/fixtures/{file}",
            env!("CARGO_MANIFEST_DIR")
        );
        let Ok(qemu) = std::fs::read(&path) else {
            continue;
        };
        let qemu = Fdt::new(&qemu).unwrap();
        let expected = cells(qemu.find_node("/timer").unwrap(), "interrupts");
        let ours = build(&machine).unwrap();
        let ours = Fdt::new(&ours).unwrap();
        assert_eq!(
            cells(ours.find_node("/timer").unwrap(), "interrupts"),
            expected,
            "{file}"
        );
        let expected = cells(qemu.find_node("/pl011@9000000").unwrap(), "interrupts");
        assert_eq!(
            cells(ours.find_node("/pl011@9000000").unwrap(), "interrupts"),
            expected
        );
    }
}

#[test]
fn the_clock_is_24_mhz() {
    let blob = build(&v3(1)).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    let clock = fdt.find_node("/apb-pclk").unwrap();
    assert_eq!(strings(clock, "compatible"), ["fixed-clock"]);
    assert_eq!(cells(clock, "#clock-cells"), [0]);
    assert_eq!(cells(clock, "clock-frequency"), [APB_CLOCK_HZ]);
    assert_eq!(APB_CLOCK_HZ, 24_000_000);
    assert_eq!(strings(clock, "clock-output-names"), ["clk24mhz"]);
    assert_eq!(cells(clock, "phandle"), [CLOCK_PHANDLE]);
}

#[test]
fn the_uart_is_a_primecell_with_both_clocks() {
    let blob = build(&v3(1)).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    let uart = fdt.find_node("/pl011@9000000").unwrap();
    assert_eq!(strings(uart, "compatible"), ["arm,pl011", "arm,primecell"]);
    assert_eq!(u64s(uart, "reg"), [0x0900_0000, 0x1000]);
    assert_eq!(cells(uart, "interrupts"), [0, 1, 4]);
    assert_eq!(cells(uart, "clocks"), [CLOCK_PHANDLE, CLOCK_PHANDLE]);
    assert_eq!(strings(uart, "clock-names"), ["uartclk", "apb_pclk"]);
    // Its interrupt parent is the root's.
    assert!(uart.property("interrupt-parent").is_none());
    let parent = cells(fdt.find_node("/").unwrap(), "interrupt-parent")[0];
    assert_eq!(fdt.find_phandle(parent).unwrap().name, "intc@8000000");
}

#[test]
fn chosen_names_the_console_and_the_initrd() {
    let blob = build(&v3(1)).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    let chosen = fdt.find_node("/chosen").unwrap();
    assert_eq!(text(chosen, "bootargs"), "console=ttyAMA0 rdinit=/init");
    assert_eq!(text(chosen, "stdout-path"), "/pl011@9000000");
    assert_eq!(u64s(chosen, "linux,initrd-start"), [0x5f00_0000]);
    assert_eq!(u64s(chosen, "linux,initrd-end"), [0x5f00_0000 + 1_078_000]);
    assert_eq!(fdt.chosen().stdout().unwrap().name, "pl011@9000000");
    assert_eq!(
        fdt.chosen().bootargs(),
        Some("console=ttyAMA0 rdinit=/init")
    );
}

#[test]
fn no_initrd_means_no_initrd_properties() {
    let blob = build(&v2(1)).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    let chosen = fdt.find_node("/chosen").unwrap();
    assert!(chosen.property("linux,initrd-start").is_none());
    assert!(chosen.property("linux,initrd-end").is_none());
}

#[test]
fn the_size_does_not_depend_on_where_the_initrd_goes() {
    let mut machine = v3(2);
    let first = build(&machine).unwrap().len();
    machine.initrd = Some(Region {
        start: 0xffff_ffff_0000,
        size: 0x1234_5678,
    });
    assert_eq!(build(&machine).unwrap().len(), first);
}

#[test]
fn other_addresses_are_parameters() {
    let mut machine = v3(1);
    machine.ram_base = 0x8000_0000;
    machine.gic = GicConfig::V3 {
        distributor: 0x2f00_0000,
        redistributors: 0x2f10_0000,
    };
    machine.uart.base = 0x1c09_0000;
    machine.uart.spi = 5;
    let blob = build(&machine).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    assert!(fdt.find_node("/memory@80000000").is_some());
    let gic = fdt.find_node("/intc@2f000000").unwrap();
    assert_eq!(
        u64s(gic, "reg"),
        [0x2f00_0000, 0x1_0000, 0x2f10_0000, 0x2_0000]
    );
    let uart = fdt.find_node("/pl011@1c090000").unwrap();
    assert_eq!(cells(uart, "interrupts"), [0, 5, 4]);
    assert_eq!(
        text(fdt.find_node("/chosen").unwrap(), "stdout-path"),
        "/pl011@1c090000"
    );
}

#[test]
fn refuses_machines_that_make_no_sense() {
    assert_eq!(build(&v3(0)), Err(FdtError::NoVcpus));
    assert_eq!(
        build(&v3(17)),
        Err(FdtError::TooManyVcpus { vcpus: 17, max: 16 })
    );
    assert_eq!(
        build(&v2(9)),
        Err(FdtError::TooManyVcpus { vcpus: 9, max: 8 })
    );
    assert!(build(&v2(8)).is_ok());
    let mut machine = v3(1);
    machine.ram_size = 0;
    assert_eq!(build(&machine), Err(FdtError::BadRam));
    machine.ram_size = u64::MAX;
    assert_eq!(build(&machine), Err(FdtError::BadRam));
    let mut machine = v3(1);
    machine.initrd = Some(Region {
        start: u64::MAX,
        size: 2,
    });
    assert_eq!(build(&machine), Err(FdtError::BadInitrd));
    let mut machine = v3(1);
    machine.bootargs = "console=\0oops".into();
    let error = build(&machine).unwrap_err();
    assert!(matches!(error, FdtError::Writer(_)));
    assert!(
        error
            .to_string()
            .starts_with("the device tree could not be written")
    );
}

fn rtc() -> Device {
    passthrough::parse("rtc0 arm,pl031 0x9010000 0x1000 34")
        .devices
        .remove(0)
}

/// A GICv3 machine with QEMU `virt`'s PL031 passed through, as the monitor builds it from
/// the compiler's `BULKHEAD_GUEST_DEVICES`.
fn with_rtc(mut machine: GuestMachine) -> GuestMachine {
    machine.admit(rtc()).unwrap();
    machine
}

#[test]
fn a_device_passed_through_gets_a_primecell_node() {
    for machine in [with_rtc(v3(2)), with_rtc(v2(4))] {
        let blob = build(&machine).unwrap();
        let fdt = Fdt::new(&blob).unwrap();
        let rtc = fdt.find_node("/pl031@9010000").unwrap();
        assert_eq!(strings(rtc, "compatible"), ["arm,pl031", "arm,primecell"]);
        assert_eq!(u64s(rtc, "reg"), [0x0901_0000, 0x1000]);
        // SPI 2 = INTID 34, level-high, whatever the GIC version.
        assert_eq!(cells(rtc, "interrupts"), [0, 2, 4]);
        assert_eq!(cells(rtc, "clocks"), [CLOCK_PHANDLE]);
        assert_eq!(strings(rtc, "clock-names"), ["apb_pclk"]);
        assert_eq!(fdt.find_phandle(CLOCK_PHANDLE).unwrap().name, "apb-pclk");
        // Its interrupt parent is the root's, the GIC.
        assert!(rtc.property("interrupt-parent").is_none());
        // Found as Linux's AMBA bus and the fdt crate find devices.
        assert_eq!(
            fdt.find_compatible(&["arm,pl031"]).unwrap().name,
            "pl031@9010000"
        );
    }
}

#[test]
fn the_root_lists_the_device_beside_the_others() {
    let blob = build(&with_rtc(v3(1))).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    let mut names: Vec<&str> = fdt
        .find_node("/")
        .unwrap()
        .children()
        .map(|n| n.name)
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "apb-pclk",
            "chosen",
            "cpus",
            "intc@8000000",
            "memory@40000000",
            "pl011@9000000",
            "pl031@9010000",
            "psci",
            "timer"
        ]
    );
}

#[test]
fn other_devices_get_plain_nodes_and_every_interrupt() {
    let mut machine = v3(1);
    let parsed = passthrough::parse(
        "flash0 cfi-flash 0x4000000 0x4000000 -;gpio0 arm,pl061 0x9030000 0x1000 39+40;\
         thing0 acme,widget-2 0xa000000 0x200 80",
    );
    assert!(parsed.errors.is_empty());
    for device in parsed.devices {
        machine.admit(device).unwrap();
    }
    let blob = build(&machine).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    let flash = fdt.find_node("/cfi-flash@4000000").unwrap();
    assert_eq!(strings(flash, "compatible"), ["cfi-flash"]);
    assert_eq!(u64s(flash, "reg"), [0x0400_0000, 0x0400_0000]);
    assert!(flash.property("interrupts").is_none());
    assert!(flash.property("clocks").is_none());
    let gpio = fdt.find_node("/pl061@9030000").unwrap();
    assert_eq!(strings(gpio, "compatible"), ["arm,pl061", "arm,primecell"]);
    assert_eq!(cells(gpio, "interrupts"), [0, 7, 4, 0, 8, 4]);
    let widget = fdt.find_node("/widget-2@a000000").unwrap();
    assert_eq!(strings(widget, "compatible"), ["acme,widget-2"]);
    assert_eq!(u64s(widget, "reg"), [0x0a00_0000, 0x200]);
    assert_eq!(cells(widget, "interrupts"), [0, 48, 4]);
    assert!(widget.property("clock-names").is_none());
}

#[test]
fn devices_do_not_change_the_size_from_build_to_build() {
    let mut machine = with_rtc(v3(2));
    let first = build(&machine).unwrap().len();
    machine.initrd = Some(Region {
        start: 0xffff_ffff_0000,
        size: 0x1234_5678,
    });
    assert_eq!(build(&machine).unwrap().len(), first);
}

#[test]
fn clashing_devices_are_refused_and_the_machine_unchanged() {
    let mut machine = with_rtc(v3(2));
    let before = machine.clone();
    let device = |text: &str| passthrough::parse(text).devices.remove(0);
    for (text, with) in [
        (
            "ram0 x,ram 0x48000000 0x1000 -",
            "the guest's RAM at 0x40000000..0x60000000",
        ),
        (
            "gicd0 x,gic 0x8000000 0x1000 -",
            "the GIC distributor at 0x8000000..0x8010000",
        ),
        (
            "gicr0 x,gic 0x80b0000 0x1000 -",
            "the GIC redistributors at 0x80a0000..0x80e0000",
        ),
        (
            "uart1 arm,pl011 0x9000800 0x1000 -",
            "the UART at 0x9000000..0x9001000",
        ),
        (
            "rtc1 arm,pl031 0x9010000 0x1000 35",
            "device rtc0 at 0x9010000..0x9011000",
        ),
        (
            "big x,y 0x0 0x9010001 -",
            "the GIC distributor at 0x8000000..0x8010000",
        ),
        ("irq x,y 0xa000000 0x1000 33", "the UART's INTID 33"),
        ("irq x,y 0xa000000 0x1000 35+34", "device rtc0's INTID 34"),
    ] {
        let error = machine.admit(device(text)).unwrap_err();
        let name = text.split(' ').next().unwrap();
        assert_eq!(
            error,
            FdtError::DeviceConflict {
                device: name.into(),
                with: with.into(),
            },
            "{text}"
        );
        assert_eq!(machine, before);
    }
    assert_eq!(
        machine
            .admit(device("irq x,y 0xa000000 0x1000 33"))
            .unwrap_err()
            .to_string(),
        "device irq clashes with the UART's INTID 33"
    );
    // On GICv2 the CPU interface is there instead of the redistributors.
    let mut machine = v2(1);
    let error = machine
        .admit(device("gicc x,y 0x8011000 0x1000 -"))
        .unwrap_err();
    assert!(
        error
            .to_string()
            .ends_with("the GIC CPU interface at 0x8010000..0x8012000")
    );
    // A machine built by hand with clashing devices does not build.
    let mut machine = with_rtc(v3(1));
    machine.devices.push(rtc());
    assert!(matches!(
        build(&machine),
        Err(FdtError::DeviceConflict { .. })
    ));
}

/// Decompiles the blob with `dtc` when the host has it (Debian: device-tree-compiler), which
/// checks the structure independently and warns about binding mistakes.
#[test]
fn dtc_decompiles_it_without_warnings() {
    use std::process::{Command, Stdio};
    for machine in [v3(4), v2(2), with_rtc(v3(1)), with_rtc(v2(2))] {
        let blob = build(&machine).unwrap();
        let dir = std::env::temp_dir();
        let path = dir.join(alloc::format!(
            "vmm-devices-test-{}-{}-{}.dtb",
            std::process::id(),
            machine.vcpus,
            machine.devices.len()
        ));
        std::fs::write(&path, &blob).unwrap();
        let output = Command::new("dtc")
            .args(["-I", "dtb", "-O", "dts"])
            .arg(&path)
            .stdin(Stdio::null())
            .output();
        let _ = std::fs::remove_file(&path);
        let Ok(output) = output else {
            std::eprintln!("dtc is not installed: skipping");
            return;
        };
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        assert!(stderr.trim().is_empty(), "dtc warned:\n{stderr}");
        let source = String::from_utf8(output.stdout).unwrap();
        assert!(
            source.contains("stdout-path = \"/pl011@9000000\";"),
            "{source}"
        );
        assert!(
            source.contains("clock-names = \"uartclk\\0apb_pclk\";"),
            "{source}"
        );
        if !machine.devices.is_empty() {
            assert!(source.contains("pl031@9010000 {"), "{source}");
            assert!(
                source.contains("compatible = \"arm,pl031\\0arm,primecell\";"),
                "{source}"
            );
            assert!(source.contains("clock-names = \"apb_pclk\";"), "{source}");
        }
    }
}
