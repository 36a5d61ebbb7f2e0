// SPDX-License-Identifier: Apache-2.0 OR MIT
//! svc-rt: the runtime every service partition is built on.
//!
//! A service is a `#![no_std]` `#![no_main]` binary that names its main with
//! [`entry!`]. It runs at EL0 in its own stage-2 address space: its RAM (with
//! the program loaded at its start and the stack at its end), and whatever
//! devices and shared memory the manifest gives it. It talks to the kernel
//! only through the typed hypercalls in [`call`], which follow `hv-abi` (re-
//! exported here, as Hubris's userlib does). A panic is logged and reported
//! to the kernel as a fault; the kernel then applies the partition's fault
//! policy.
//!
//! Besides the hypercalls: [`mmio`] reaches a driver's device registers,
//! [`shared`] and [`ring`] the memory that `shared-memory` channels map,
//! [`console`] is the console service's client protocol (which [`println!`]
//! speaks when the partition has a `log` capability), [`clients`] tells
//! an endpoint's server who its clients are, and [`guest`] is what a virtual
//! machine monitor reaches of its guest (its RAM, the files it boots). [`cap!`], [`optional_cap!`], [`shared!`],
//! [`device!`] and [`clients!`] read what the manifest decided at compile time,
//! [`setting!`] and [`optional_setting!`] the partition's `settings` (read
//! with [`parse_number`] and [`parse_duration`]).
//!
//! A service that wants `alloc` gets a heap with [`heap!`].
//!
//! Design rules: `unsafe` only in [`call`]'s one `svc` primitive, the two
//! modules that turn addresses outside RAM into accesses ([`mmio`],
//! [`shared`]) and the allocator glue ([`heap`]: `GlobalAlloc` is an unsafe
//! trait); services themselves say `#![deny(unsafe_code)]` apart from the
//! one trampoline [`entry!`] emits.
#![no_std]

pub use hv_abi::*;

pub mod call;
pub mod clients;
pub mod console;
pub mod guest;
pub mod heap;
pub mod mmio;
mod panic;
pub mod print;
pub mod probe;
pub mod ring;
pub mod shared;

/// The reason code a service's fault carries when it panicked.
pub const FAULT_PANIC: u8 = 1;
/// The reason code when its program had a relocation the runtime cannot apply.
pub const FAULT_BAD_RELOCATION: u8 = 2;
/// The reason code when its main returned (mains never should).
pub const FAULT_MAIN_RETURNED: u8 = 3;

core::arch::global_asm!(
    include_str!("start.S"),
    fault_low = const hv_abi::hypercall::Hypercall::Fault.function_id() & 0xffff,
    fault_high = const hv_abi::hypercall::Hypercall::Fault.function_id() >> 16,
    bad_relocation = const FAULT_BAD_RELOCATION,
    main_returned = const FAULT_MAIN_RETURNED,
);

/// The slot of the capability named `NAME` in this partition, from the
/// manifest: `svc_rt::cap!(LOG)` is the slot of the channel (or device)
/// called `log` in the system's manifest (upper case, `-` as `_`).
/// `cargo xtask` passes the slots to the build as `BULKHEAD_CAP_<NAME>`; a
/// program that names a capability its partition lacks does not build.
#[macro_export]
macro_rules! cap {
    ($name:ident) => {
        $crate::hypercall::CapSlot($crate::parse_slot(env!(
            concat!("BULKHEAD_CAP_", stringify!($name)),
            concat!(
                "this program uses the capability `",
                stringify!($name),
                "`, but its partition has no channel or device of that name in the manifest"
            )
        )))
    };
}

/// The slot of the capability named `NAME`, if this partition has one:
/// `Option<CapSlot>`, for programs that work with or without it (as
/// [`cap!`] otherwise).
#[macro_export]
macro_rules! optional_cap {
    ($name:ident) => {
        match option_env!(concat!("BULKHEAD_CAP_", stringify!($name))) {
            Some(slot) => Some($crate::hypercall::CapSlot($crate::parse_slot(slot))),
            None => None,
        }
    };
}

/// Where the manifest put the shared-memory channel `NAME` in this
/// partition's address space, as a [`shared::Window`]: `svc_rt::shared!(RECORDS)`
/// for the channel `records` (upper case, `-` as `_`). `cargo xtask` passes
/// `BULKHEAD_SHARED_<NAME>=<ipa>:<size>` to the build; a program that names a
/// region its partition does not map does not build.
#[macro_export]
macro_rules! shared {
    ($name:ident) => {
        const { $crate::shared::Window::parse(env!(
            concat!("BULKHEAD_SHARED_", stringify!($name)),
            concat!(
                "this program uses the shared region `",
                stringify!($name),
                "`, but its partition maps no shared-memory channel of that name in the manifest"
            )
        )) }
    };
}

/// Where the manifest mapped the device `NAME` that this partition owns, as
/// a [`shared::Window`] (IPA and size of its register block; IPA = PA):
/// `svc_rt::device!(UART0)` for the device `uart0`. `cargo xtask` passes
/// `BULKHEAD_DEVICE_<NAME>=<ipa>:<size>` to the build; a program that names a
/// device its partition does not own does not build.
#[macro_export]
macro_rules! device {
    ($name:ident) => {
        const {
            $crate::shared::Window::parse(env!(
                concat!("BULKHEAD_DEVICE_", stringify!($name)),
                concat!(
                    "this program uses the device `",
                    stringify!($name),
                    "`, but its partition owns no device of that name in the manifest"
                )
            ))
        }
    };
}

/// Where the board's console UART is, as a [`shared::Window`] whose `ipa` is
/// its physical address: `svc_rt::board_console!()`. No partition but its
/// driver is given it; the test programs that write to it anyway (and must
/// fault) use this to find it on whichever board they are built for. `cargo
/// xtask` passes `BULKHEAD_BOARD_CONSOLE` to every program's build.
#[macro_export]
macro_rules! board_console {
    () => {
        const {
            $crate::shared::Window::parse(env!(
                "BULKHEAD_BOARD_CONSOLE",
                "the board has no console UART, or this program was not built by cargo xtask"
            ))
        }
    };
}

/// The clients of the endpoint channel `NAME` that this partition serves,
/// as the text [`clients::parse`] reads: `svc_rt::clients!(LOG)`. `cargo
/// xtask` passes `BULKHEAD_CLIENTS_<NAME>` to the build of the endpoint's
/// server; a program that names an endpoint its partition does not serve does
/// not build.
#[macro_export]
macro_rules! clients {
    ($name:ident) => {
        env!(
            concat!("BULKHEAD_CLIENTS_", stringify!($name)),
            concat!(
                "this program serves the endpoint `",
                stringify!($name),
                "`, but its partition is not that channel's server in the manifest"
            )
        )
    };
}

/// The setting `KEY` from this partition's `settings` in the manifest, as a
/// `&'static str`: `svc_rt::setting!(STOP_FIRST)` for `stop-first` (upper
/// case, `-` as `_`). `cargo xtask` passes `BULKHEAD_SETTING_<KEY>=<value>` to
/// the build: a string as written, an integer in decimal, a boolean as `true`
/// or `false`; [`parse_number`] and [`parse_duration`] read them at compile
/// time. A program that needs a setting its partition lacks does not build.
#[macro_export]
macro_rules! setting {
    ($key:ident) => {
        env!(
            concat!("BULKHEAD_SETTING_", stringify!($key)),
            concat!(
                "this program needs the setting `",
                stringify!($key),
                "`, but its partition's `settings` in the manifest do not have it"
            )
        )
    };
}

/// The setting `KEY`, if this partition's `settings` have it:
/// `Option<&'static str>`, for settings with a default (as [`setting!`]
/// otherwise).
#[macro_export]
macro_rules! optional_setting {
    ($key:ident) => {
        option_env!(concat!("BULKHEAD_SETTING_", stringify!($key)))
    };
}

/// Parses a setting's number at compile time: decimal (`300`), or
/// hexadecimal after `0x` (`0x0a00_0000`), with `_` allowed between digits.
///
/// # Panics
/// At compile time, if `text` is not such a number or does not fit 64 bits.
#[must_use]
pub const fn parse_number(text: &str) -> u64 {
    let bytes = text.as_bytes();
    let (radix, mut i) = if bytes.len() > 2 && bytes[0] == b'0' && bytes[1] == b'x' {
        (16, 2)
    } else {
        (10, 0)
    };
    let mut value: u64 = 0;
    let mut digits = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        i += 1;
        if byte == b'_' && digits > 0 {
            continue;
        }
        let digit = match byte {
            b'0'..=b'9' => byte - b'0',
            b'a'..=b'f' if radix == 16 => byte - b'a' + 10,
            b'A'..=b'F' if radix == 16 => byte - b'A' + 10,
            _ => panic!("a setting is not a number (decimal, or hexadecimal after 0x)"),
        };
        value = match value.checked_mul(radix) {
            Some(v) => match v.checked_add(digit as u64) {
                Some(v) => v,
                None => panic!("a setting's number does not fit 64 bits"),
            },
            None => panic!("a setting's number does not fit 64 bits"),
        };
        digits += 1;
    }
    assert!(digits > 0, "a setting's number has no digits");
    value
}

/// Parses a setting's duration at compile time, in nanoseconds: a decimal
/// number, then a unit, `ns`, `us`, `ms` or `s`, with or without a space
/// between: `"10ms"`, `"1 s"`, `"500us"`.
///
/// # Panics
/// At compile time, if `text` is not such a duration or it does not fit 64
/// bits of nanoseconds (about 584 years).
#[must_use]
pub const fn parse_duration(text: &str) -> u64 {
    let bytes = text.as_bytes();
    let mut end = bytes.len();
    while end > 0 && bytes[end - 1].is_ascii_alphabetic() {
        end -= 1;
    }
    let (number, unit) = bytes.split_at(end);
    let scale: u64 = match unit {
        b"ns" => 1,
        b"us" => 1_000,
        b"ms" => 1_000_000,
        b"s" => 1_000_000_000,
        _ => panic!("a duration setting ends in a unit: ns, us, ms or s, e.g. \"10ms\""),
    };
    let number = match number {
        [rest @ .., b' '] => rest,
        _ => number,
    };
    let value = match core::str::from_utf8(number) {
        Ok(text) => parse_number(text),
        Err(_) => panic!("a duration setting starts with a number"),
    };
    match value.checked_mul(scale) {
        Some(nanoseconds) => nanoseconds,
        None => panic!("a duration setting does not fit 64 bits of nanoseconds"),
    }
}

// The parsers' cases, checked whenever the runtime is built.
const _: () = {
    assert!(parse_number("300") == 300);
    assert!(parse_number("0x0a00_0000") == 0x0a00_0000);
    assert!(parse_number("18446744073709551615") == u64::MAX);
    assert!(parse_duration("10ms") == 10_000_000);
    assert!(parse_duration("1 s") == 1_000_000_000);
    assert!(parse_duration("1_500us") == 1_500_000);
    assert!(parse_duration("7ns") == 7);
};

/// Parses a slot number at compile time (see [`cap!`]).
///
/// # Panics
/// At compile time, if `text` is not a decimal `u32`.
#[must_use]
pub const fn parse_slot(text: &str) -> u32 {
    let bytes = text.as_bytes();
    assert!(!bytes.is_empty(), "empty capability slot");
    let mut value: u32 = 0;
    let mut i = 0;
    while i < bytes.len() {
        let digit = bytes[i];
        assert!(digit.is_ascii_digit(), "capability slot is not a number");
        value = value * 10 + (digit - b'0') as u32;
        i += 1;
    }
    value
}

/// The system counter, which services may read (as CNTVCT_EL0: the kernel
/// gives the virtual counter no offset, so it counts from power-on like the
/// physical one): it ticks at the generic timer's frequency.
pub fn counter() -> u64 {
    call::counter()
}

/// The counter's frequency, in ticks a second (CNTFRQ_EL0, which the
/// firmware sets and services may read).
pub fn counter_frequency() -> u64 {
    call::counter_frequency()
}

/// What a service learns at start.
#[derive(Clone, Copy, Debug)]
pub struct Start {
    /// Its partition's index in the manifest.
    pub partition: u64,
    /// Where its RAM starts (an IPA).
    pub ram_base: u64,
    /// The RAM's size in bytes.
    pub ram_size: u64,
    /// Which of the partition's vCPUs this is (0 for the first). Every vCPU
    /// starts in the same `main`, each on its own stack.
    pub vcpu: u64,
    /// The machine's GIC version (2 or 3): what a virtual machine monitor
    /// gives its guest.
    pub gic_version: u64,
}

/// Names the service's main, a `fn(svc_rt::Start) -> !`. Use it once, at the
/// crate root:
///
/// ```ignore
/// svc_rt::entry!(main);
/// ```
///
/// It emits the one assembly trampoline the runtime's `_start` jumps to; the
/// service crate must not forbid `unsafe_code` (deny it instead).
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        extern "C" fn __bulkhead_service_main(
            partition: u64,
            ram_base: u64,
            ram_size: u64,
            vcpu: u64,
            gic_version: u64,
        ) -> ! {
            let main: fn($crate::Start) -> ! = $main;
            main($crate::Start { partition, ram_base, ram_size, vcpu, gic_version })
        }
        #[expect(unsafe_code, reason = "the one assembly trampoline to the service's main")]
        mod __bulkhead_service_main_trampoline {
            core::arch::global_asm!(
                ".global bulkhead_service_main",
                "bulkhead_service_main:",
                "b {main}",
                main = sym super::__bulkhead_service_main,
            );
        }
    };
}
