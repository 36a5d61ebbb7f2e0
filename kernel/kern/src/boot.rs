// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The boot sequence on core 0, and the boot report.
//!
//! [`start`] runs once, on the boot core, right after the architecture's
//! entry code. It reads the device tree, sets up the console, refuses to go on
//! unless it is at EL2, works out the physical memory map, maps the kernel
//! (code read-only and executable, everything else never executable), turns
//! the MMU on, sets up the heap, starts the other cores and reports each step.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use hv_abi::console::{BANNER, FATAL, READY};
use hv_arch_aarch64 as arch;
use hv_core::memory::{MemoryMap, PAGE_SIZE, Use};
use hv_core::pagetable::{Attributes, Builder, MapError};
use hv_core::platform::{Conduit, DtError, GicVersion, PlatformInfo, Uart};
use hv_core::range::{PhysRange, Size, subtract};

use crate::console::report;
use crate::{Platform, console, dispatch, exception, irq, println, smp, system};

/// The kernel heap's size.
const HEAP_SIZE: u64 = 4 << 20;

/// Prints why the kernel cannot boot, powers the machine off and stops.
fn fatal(why: fmt::Arguments<'_>) -> ! {
    console::emergency_print(format_args!("{FATAL}{why}"));
    let refused = arch::psci::system_off();
    console::emergency_print(format_args!(
        "{FATAL}power-off failed ({refused:?}); core parked"
    ));
    arch::cpu::park()
}

enum DeviceTreeProblem {
    Pointer(arch::boot::DeviceTreeError),
    Parse(DtError),
}

impl fmt::Display for DeviceTreeProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pointer(e) => write!(f, "the loader passed no usable device tree in x0 ({e:?})"),
            Self::Parse(e) => write!(f, "{e}"),
        }
    }
}

/// The kernel's entry on the boot core. Name it with
/// `hv_arch_aarch64::kernel_entry!(hv_kernel::start::<YourPlatform>)`.
pub fn start<P: Platform>(early: arch::early::Early) -> ! {
    console::init(&early, P::console(&early, &P::CONSOLE));
    let params = arch::boot::params();
    let info = params
        .device_tree
        .map_err(DeviceTreeProblem::Pointer)
        .and_then(|dt| PlatformInfo::parse(dt).map_err(DeviceTreeProblem::Parse));
    let info = match info {
        Ok(info) => info,
        Err(problem) => fatal(format_args!("cannot read the device tree: {problem}")),
    };
    arch::psci::set_conduit(info.psci);
    println!(
        "{BANNER}{} on {} ({})",
        env!("CARGO_PKG_VERSION"),
        info.model,
        P::NAME
    );
    if params.exception_level != 2 {
        fatal(format_args!(
            "entered at EL{}, but Bulkhead runs at EL2 (on QEMU: -M virt,virtualization=on)",
            params.exception_level
        ));
    }
    exception::install(&early);
    report!("exception level EL2, vectors installed");

    let mut memory = memory_map(params, &info).unwrap_or_else(|e| fatal(format_args!("{e}")));
    let tables = arch::mmu::build(&early, |b| map_kernel(b, params, &info, &P::CONSOLE))
        .unwrap_or_else(|e| fatal(format_args!("cannot build the kernel's page tables: {e:?}")));
    arch::mmu::enable(&early)
        .unwrap_or_else(|e| fatal(format_args!("cannot turn the MMU on: {e:?}")));
    let heap = memory
        .allocate(HEAP_SIZE, 2 << 20, Use::KernelHeap)
        .unwrap_or_else(|e| fatal(format_args!("no room for the kernel heap: {e:?}")));
    arch::heap::init(heap).unwrap_or_else(|e| fatal(format_args!("cannot set up the heap: {e:?}")));
    heap_self_test();

    let system = params.package.map(|package| {
        let device_tree = params.device_tree.unwrap_or(&[]);
        let board = system::Board {
            name: P::NAME,
            devices: P::DEVICES,
            console: P::CONSOLE.registers,
        };
        system::load(package, &board, (&info, device_tree), &mut memory)
            .unwrap_or_else(|e| fatal(format_args!("cannot load the system: {e}")))
    });
    report_memory(params, &info, &memory);
    report!(
        "MMU on: 4 KiB granule, {}-bit addresses, {tables} translation tables; text read-only, data never executable",
        hv_core::pagetable::VA_BITS
    );
    report!(
        "kernel heap {} at {}, allocator self-test passed",
        Size(heap.size()),
        heap
    );
    report_devices(&info, &P::CONSOLE);

    #[cfg(feature = "fault-injection")]
    crate::exception::inject(&info);

    let lines = irq::init(&info).unwrap_or_else(|e| fatal(format_args!("{e}")));
    irq::init_cpu()
        .unwrap_or_else(|e| fatal(format_args!("cannot set up interrupts on core 0: {e:?}")));
    report!("interrupt controller up, {lines} interrupt lines");
    let (online, wanted) = smp::start_secondaries(&info, early);
    report!("cores online {online} of {wanted}");
    if online != wanted {
        fatal(format_args!("only {online} of {wanted} cores came up"));
    }
    // Before waiting for ticks: under QEMU -icount the counter also counts
    // time spent asleep, and the bench measures boot work.
    let boot_cycles = arch::sysreg::cycle_counter();
    let ticking = irq::wait_for_ticks(online);
    report!(
        "timer ticking at {} Hz on {ticking} of {online} cores",
        irq::TICK_HZ
    );
    if ticking != online {
        fatal(format_args!(
            "the timer interrupt reached only {ticking} of {online} cores"
        ));
    }
    report!("{boot_cycles} PMU cycles from entry to all cores online");
    let Some((loaded, manifest)) = system else {
        report!("no boot package: the kernel runs alone");
        println!("{READY}");
        irq::idle()
    };
    // Before any partition runs: what every switch between partitions does
    // to the branch predictors (and, if the manifest asks, the caches).
    let scrub = if manifest.scrub_on_switch {
        hv_core::speculation::Scrub::OnSwitch
    } else {
        hv_core::speculation::Scrub::Needed
    };
    report!("speculation: {}", arch::speculation::configure(scrub));
    let cores = smp::core_affinities(&info);
    dispatch::install(loaded, &manifest, cores, online)
        .unwrap_or_else(|e| fatal(format_args!("cannot start the system: {e}")));
    if manifest.kernel_log.is_some() {
        report!("kernel messages go to the kernel log's reader from now on");
    }
    println!("{READY}");
    for mpidr in cores.iter().take(online).skip(1) {
        let _ = arch::gic::kick(*mpidr);
    }
    dispatch::start_core(0)
}

fn memory_map(
    params: &arch::boot::BootParams,
    info: &PlatformInfo<'_>,
) -> Result<MemoryMap, hv_core::memory::MapError> {
    // The heap does not exist yet: a fixed-size list.
    let mut used: heapless::Vec<(PhysRange, Use), { 2 + hv_core::platform::MAX_RESERVED }> =
        heapless::Vec::new();
    let dt = params
        .device_tree
        .ok()
        .and_then(|dt| PhysRange::new(params.device_tree_address as u64, dt.len() as u64));
    let image = Some((params.image.whole, Use::KernelImage));
    let entries = image.into_iter().chain(dt.map(|r| (r, Use::DeviceTree)));
    for entry in entries.chain(info.reserved.iter().map(|r| (*r, Use::Firmware))) {
        // Capacity is 2 + MAX_RESERVED, exactly what the three sources can hold.
        let _ = used.push(entry);
    }
    MemoryMap::new(&info.memory, &used)
}

/// Identity-maps the kernel image section by section, the rest of RAM
/// read-write, and the devices the kernel drives as device memory.
fn map_kernel(
    b: &mut Builder<'_>,
    params: &arch::boot::BootParams,
    info: &PlatformInfo<'_>,
    console: &Uart,
) -> Result<(), MapError> {
    let image = params.image;
    let whole = image
        .whole
        .align_out(PAGE_SIZE)
        .ok_or(MapError::BadRange(image.whole))?;
    b.map(image.text, Attributes::Code)?;
    b.map(image.rodata, Attributes::ReadOnly)?;
    b.map(image.data, Attributes::ReadWrite)?;
    if !image.package.is_empty() {
        let package = image
            .package
            .align_out(PAGE_SIZE)
            .ok_or(MapError::BadRange(image.package))?;
        b.map(package, Attributes::ReadOnly)?;
    }
    let banks: heapless::Vec<PhysRange, 8> =
        info.memory.iter().map(|r| r.align_in(PAGE_SIZE)).collect();
    let rest: heapless::Vec<PhysRange, 16> =
        subtract(&banks, &[whole]).map_err(|_| MapError::OutOfTables)?;
    for range in rest {
        b.map(range, Attributes::ReadWrite)?;
    }
    let gic = &info.gic;
    let hyp = gic.hyp_interface.into_iter();
    for device in [gic.distributor, gic.cpu_interface, console.registers]
        .into_iter()
        .chain(hyp)
    {
        let range = device
            .align_out(PAGE_SIZE)
            .ok_or(MapError::BadRange(device))?;
        b.map(range, Attributes::Device)?;
    }
    Ok(())
}

fn heap_self_test() {
    let numbers: Vec<u64> = (0..4096).collect();
    let boxed = Box::new(numbers.iter().sum::<u64>());
    if *boxed != 4095 * 4096 / 2 {
        fatal(format_args!("the kernel heap returned corrupt memory"));
    }
}

fn report_memory(params: &arch::boot::BootParams, info: &PlatformInfo<'_>, memory: &MemoryMap) {
    for bank in &info.memory {
        report!("memory {bank} {}", Size(bank.size()));
    }
    let image = params.image;
    report!(
        "  {:<17} {} {} (text {}, rodata {}, data+bss {})",
        "kernel image",
        image.whole,
        Size(image.whole.size()),
        Size(image.text.size()),
        Size(image.rodata.size()),
        Size(image.data.size()),
    );
    for (range, what) in memory.used().iter().filter(|(_, u)| *u != Use::KernelImage) {
        report!("  {:<17} {range} {}", what.name(), Size(range.size()));
    }
    report!(
        "  {:<17} {} in {} regions",
        "free",
        Size(memory.free_bytes()),
        memory.free().len()
    );
}

fn report_devices(info: &PlatformInfo<'_>, console: &Uart) {
    let gic = &info.gic;
    let (version, second) = match gic.version {
        GicVersion::V2 => ("GICv2", "CPU interface"),
        GicVersion::V3 => ("GICv3", "redistributors"),
    };
    let maintenance = gic.maintenance_irq.map_or(0, |i| i);
    report!(
        "{version} ({}) distributor {}, {second} {}, maintenance INTID {maintenance}",
        gic.compatible,
        gic.distributor,
        gic.cpu_interface
    );
    let agreement = match info.uart {
        // platform.toml gives whole pages; the device tree may give less.
        Some(dt) if dt.registers.start() == console.registers.start() => "the device tree agrees",
        Some(_) => "the device tree's stdout differs; platform.toml wins",
        None => "the device tree names no PL011",
    };
    report!(
        "console PL011 at {}, INTID {} ({agreement})",
        console.registers,
        console.irq.unwrap_or(0)
    );
    match info.timer {
        Some(t) => report!(
            "timer {} Hz, hypervisor INTID {}, virtual INTID {}",
            arch::cpu::timer_frequency(),
            t.hypervisor,
            t.virtual_timer
        ),
        None => report!(
            "timer {} Hz, no device-tree node",
            arch::cpu::timer_frequency()
        ),
    }
    let conduit = match info.psci {
        Some(Conduit::Smc) => "SMC",
        Some(Conduit::Hvc) => "HVC",
        None => "none",
    };
    match arch::psci::version() {
        Ok((major, minor)) => report!("PSCI {major}.{minor} via {conduit}"),
        Err(e) => report!("PSCI unavailable via {conduit} ({e:?})"),
    }
    report!(
        "cores {} in device tree{}, MPIDR {:x?}",
        info.cpus.len(),
        if info.cpus_ignored > 0 {
            " (more ignored)"
        } else {
            ""
        },
        info.cpus.as_slice()
    );
}
