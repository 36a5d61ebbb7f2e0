// SPDX-License-Identifier: Apache-2.0 OR MIT
//! From reset to Rust: the image header, relocation, boot stacks, and what the
//! kernel learns about its own image.
//!
//! `boot.S` runs first (see its header). It calls [`primary_rust_entry`], which
//! installs the exception vectors, checks the device tree pointer and records
//! [`BootParams`], then jumps to the kernel entry that the platform crate
//! named with [`kernel_entry!`](crate::kernel_entry).

use core::cell::UnsafeCell;

use aarch64_cpu::registers::{VBAR_EL2, Writeable};
use hv_core::MAX_CPUS;
use hv_core::range::PhysRange;

use crate::early::{Early, EarlyOnce};

/// The boot core's stack, in bytes: it decodes and loads the whole system,
/// whose compiled manifest alone is tens of KiB by value.
pub const BOOT_STACK_SIZE: usize = 512 * 1024;

/// Every other core's stack, in bytes.
pub const STACK_SIZE: usize = 32 * 1024;

/// The value SCTLR_EL2 gets at entry: its RES1 bits, MMU and data cache
/// off, instruction cache on (I, bit 12). With the MMU off, instruction
/// fetches are then cacheable, so the boot core's work before its MMU is on
/// (reading the device tree: some 1.8 million instructions on QEMU's `virt`)
/// does not fetch every instruction from memory on a board; `boot.S`
/// invalidates the instruction cache first.
const SCTLR_EL2_BOOT: u64 = 0x30c5_0830 | (1 << 12);
/// The value CPTR_EL2 gets at entry: its RES1 bits and TFP, so that FP/SIMD
/// instructions trap, and TAM (activity monitors trapped): a service's
/// value, which services keep until a guest first runs on the core. The
/// kernel is built without floating point; an FP instruction at EL2 is a
/// bug and is reported as an exception.
const CPTR_EL2_BOOT: u64 = hv_core::traps::CPTR_SERVICE;
// boot.S loads it with MOVZ (bits 15:0) and MOVK (bits 31:16).
const _: () = assert!(CPTR_EL2_BOOT >> 32 == 0);

/// Stack memory. It lives in `.stacks`, which the boot code does not clear
/// (clearing 768 KiB would cost the boot about 200,000 instructions, and a
/// stack needs no initial value).
#[repr(C, align(4096))]
struct Stack<const N: usize>(UnsafeCell<[u8; N]>);

// SAFETY: Rust code never reads or writes a stack as a value: its only use is
// its address, which boot.S loads into `sp`; each core uses only its own.
unsafe impl<const N: usize> Sync for Stack<N> {}

#[unsafe(link_section = ".stacks")]
static BOOT_STACK: Stack<BOOT_STACK_SIZE> = Stack(UnsafeCell::new([0; BOOT_STACK_SIZE]));

/// Core n (1 and up) uses slot n - 1.
#[unsafe(link_section = ".stacks")]
static STACKS: Stack<{ STACK_SIZE * (MAX_CPUS - 1) }> =
    Stack(UnsafeCell::new([0; STACK_SIZE * (MAX_CPUS - 1)]));

core::arch::global_asm!(
    include_str!("boot.S"),
    boot_stack = sym BOOT_STACK,
    boot_stack_size = const BOOT_STACK_SIZE,
    stacks = sym STACKS,
    stack_size = const STACK_SIZE,
    sctlr = const SCTLR_EL2_BOOT,
    cptr_low = const CPTR_EL2_BOOT & 0xffff,
    cptr_high = const CPTR_EL2_BOOT >> 16,
    spin_mpidrs = sym crate::smp::SPIN_MPIDRS,
    max_cpus = const MAX_CPUS,
    mmu_config = sym crate::mmu::CONFIG,
    primary = sym primary_rust_entry,
    secondary = sym secondary_rust_entry,
);

unsafe extern "Rust" {
    /// The kernel's entry, defined by [`kernel_entry!`](crate::kernel_entry)
    /// in the platform crate.
    fn bulkhead_kernel_entry(early: Early) -> !;
}

unsafe extern "C" {
    static _start: u8;
    static __text_end: u8;
    static __rodata_end: u8;
    static __image_end: u8;
    static hv_exception_vectors: u8;
    fn bulkhead_secondary_entry();
    fn bulkhead_spin_entry();
}

/// Where the parts of the kernel image sit in physical memory. The image is
/// identity-mapped, so these are also its virtual addresses.
#[derive(Clone, Copy, Debug)]
pub struct ImageLayout {
    /// The whole image: the kernel with its .bss, stacks and page tables, and
    /// the boot package after it.
    pub whole: PhysRange,
    /// Code: mapped read-only and executable.
    pub text: PhysRange,
    /// Constants and relocations: read-only, never executable.
    pub rodata: PhysRange,
    /// Data, .bss, stacks, page tables: read-write, never executable.
    pub data: PhysRange,
    /// The boot package appended to the kernel (the compiled manifest and the
    /// partitions' programs): read-only. Empty if the image has none.
    pub package: PhysRange,
}

/// Why the device tree pointer the loader passed cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceTreeError {
    /// x0 was zero or not 8-byte aligned.
    BadPointer(usize),
    /// The blob at x0 does not start with the FDT magic.
    BadMagic(usize),
    /// The header's size is implausible or the blob overlaps the kernel image.
    BadSize(usize),
}

/// What the kernel is told at boot.
#[derive(Debug)]
pub struct BootParams {
    /// The exception level the loader entered the kernel at (2 is required).
    pub exception_level: u8,
    /// The flattened device tree from x0.
    pub device_tree: Result<&'static [u8], DeviceTreeError>,
    /// The physical address of the device tree (for the memory map).
    pub device_tree_address: usize,
    /// The kernel image's layout.
    pub image: ImageLayout,
    /// The boot package's bytes, if the image carries one.
    pub package: Option<&'static [u8]>,
}

static PARAMS: EarlyOnce<BootParams> = EarlyOnce::new();

/// The boot parameters. Valid from the kernel entry on.
///
/// # Panics
/// If called before the kernel entry, which cannot happen in kernel code.
pub fn params() -> &'static BootParams {
    PARAMS
        .get()
        .expect("boot parameters are set before the kernel is entered")
}

/// The physical address the secondary cores' entry point has, for PSCI CPU_ON.
pub(crate) fn secondary_entry_address() -> u64 {
    (bulkhead_secondary_entry as unsafe extern "C" fn()) as usize as u64
}

/// The physical address of the spin-table entry, which a released core
/// jumps to with x0 = 0 (`boot.S` finds its index by its MPIDR).
pub(crate) fn spin_entry_address() -> u64 {
    (bulkhead_spin_entry as unsafe extern "C" fn()) as usize as u64
}

fn symbol_address(symbol: &'static u8) -> u64 {
    core::ptr::from_ref(symbol) as u64
}

/// The largest boot package the kernel accepts.
const MAX_PACKAGE: u64 = 256 << 20;

fn image_layout() -> ImageLayout {
    // SAFETY: the linker script defines these symbols; only their addresses
    // are taken, never their contents.
    let (start, text_end, rodata_end, end) = unsafe {
        (
            symbol_address(&_start),
            symbol_address(&__text_end),
            symbol_address(&__rodata_end),
            symbol_address(&__image_end),
        )
    };
    // The header's image_size (offset 16): the kernel's own size, or more
    // when `cargo xtask` appended a boot package at `__image_end`.
    // SAFETY: the header is the first 64 bytes of the image, read-only and
    // always mapped (or the MMU is off); an aligned u64 read of it is sound.
    let image_size = unsafe { core::ptr::read_volatile((start + 16) as *const u64) };
    let package_size = image_size.saturating_sub(end - start).min(MAX_PACKAGE);
    // The linker script orders the symbols; an empty range stands in if not.
    let range = |a, b| PhysRange::from_bounds(a, b).unwrap_or(PhysRange::empty(a));
    let package_end = end.checked_add(package_size).unwrap_or(end);
    ImageLayout {
        whole: range(start, package_end),
        text: range(start, text_end),
        rodata: range(text_end, rodata_end),
        data: range(rodata_end, end),
        package: range(end, package_end),
    }
}

/// The largest device tree the kernel accepts.
const MAX_DEVICE_TREE: usize = 2 << 20;

fn device_tree(address: usize, image: PhysRange) -> Result<&'static [u8], DeviceTreeError> {
    if address == 0 || !address.is_multiple_of(8) {
        return Err(DeviceTreeError::BadPointer(address));
    }
    // SAFETY: the boot protocol says x0 holds the address of a device tree in
    // RAM that nothing else uses; with the MMU off every address is readable,
    // and 8 bytes are read before anything else is trusted.
    let header = unsafe { core::slice::from_raw_parts(address as *const u8, 8) };
    if header[..4] != [0xd0, 0x0d, 0xfe, 0xed] {
        return Err(DeviceTreeError::BadMagic(address));
    }
    let size = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    let range =
        PhysRange::new(address as u64, size as u64).ok_or(DeviceTreeError::BadSize(size))?;
    if !(40..=MAX_DEVICE_TREE).contains(&size) || range.overlaps(image) {
        return Err(DeviceTreeError::BadSize(size));
    }
    // SAFETY: as above, the loader gave us these `size` bytes; they lie
    // outside the image and the memory map keeps them out of every
    // allocation. This is the only reference to them while it is mutable
    // (core 0, before anything else runs), and the kernel never writes to
    // them again, so the shared `'static` slice returned holds.
    let blob = unsafe { core::slice::from_raw_parts_mut(address as *mut u8, size) };
    // QEMU's raspi4b deletes nodes with FDT_NOPs that `fdt` cannot walk:
    // move them out of the root (a tree that cannot be walked stays as it
    // is, for `PlatformInfo::parse` to refuse with the reason).
    let _ = hv_core::devicetree::move_nops_out(blob);
    Ok(blob)
}

/// The top of core `index`'s boot stack (which stays its kernel stack).
fn stack_top(index: usize) -> u64 {
    if index == 0 {
        BOOT_STACK.0.get() as u64 + BOOT_STACK_SIZE as u64
    } else {
        STACKS.0.get() as u64 + index as u64 * STACK_SIZE as u64
    }
}

fn install_vectors() {
    // SAFETY: only the address of the vector table is taken.
    let vectors = unsafe { symbol_address(&hv_exception_vectors) };
    VBAR_EL2.set(vectors);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}

/// Core 0's first Rust code, called by `boot.S` with the device tree address
/// and the exception level.
extern "C" fn primary_rust_entry(device_tree_address: usize, exception_level: u64) -> ! {
    // The one `Early`: this runs once, on the boot core, before any other
    // core is started.
    let early = Early::new();
    if exception_level == 2 {
        install_vectors();
        crate::vcpu::init_cpu(0, stack_top(0));
    }
    let image = image_layout();
    // SAFETY: the package range lies inside the loaded image (the header's
    // image_size covers it) and nothing ever writes to it.
    let package = (!image.package.is_empty()).then(|| unsafe {
        core::slice::from_raw_parts(
            image.package.start() as *const u8,
            image.package.size() as usize,
        )
    });
    PARAMS.call_once(&early, || BootParams {
        exception_level: exception_level as u8,
        device_tree: device_tree(device_tree_address, image.whole),
        device_tree_address,
        image,
        package,
    });
    // SAFETY: `kernel_entry!` in the platform crate defines this symbol as a
    // safe `fn(Early) -> !`; it is called once, here.
    unsafe { bulkhead_kernel_entry(early) }
}

/// A secondary core's first Rust code, called by `boot.S` with its index,
/// once its MMU and caches are on (`boot.S` turns them on before it touches
/// the stack: core 0 may hold lines of it in its caches).
extern "C" fn secondary_rust_entry(index: usize) -> ! {
    install_vectors();
    crate::vcpu::init_cpu(index, stack_top(index));
    crate::smp::secondary_started(index)
}

/// Names the kernel's entry point: a safe `fn(Early) -> !` that the boot
/// code calls once on core 0, after relocation and with a stack. Use it once,
/// in the platform crate:
///
/// ```ignore
/// hv_arch_aarch64::kernel_entry!(kernel_main);
/// ```
///
/// The macro exports one unmangled function, so the platform crate must
/// allow the `unsafe_code` lint for it, and contains no other unsafe.
#[macro_export]
macro_rules! kernel_entry {
    ($entry:path) => {
        // The boot code (hv-arch-aarch64 boot.rs) calls this by name.
        #[expect(
            unsafe_code,
            reason = "the kernel entry, exported by name to the boot code"
        )]
        #[unsafe(no_mangle)]
        fn bulkhead_kernel_entry(early: $crate::early::Early) -> ! {
            let entry: fn($crate::early::Early) -> ! = $entry;
            entry(early)
        }
    };
}
