// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Speculation: which branch-predictor maintenance a core needs when it
//! switches from one partition to another, chosen from its MIDR, its ID
//! registers and what firmware offers.
//!
//! Two Spectre variants let one partition steer another's speculative
//! execution through the branch predictors a core keeps across the switch:
//! - **Spectre-v2** (branch target injection, CVE-2017-5715): a core
//!   without CSV2 (ID_AA64PFR0_EL1 bits 59:56 zero) lets one context train
//!   the indirect branch predictor for another. Arm's mitigation for the
//!   affected Cortex-A cores (A57, A72, A73, A75) is firmware's
//!   `SMCCC_ARCH_WORKAROUND_1`, which invalidates the predictor (on A57 and
//!   A72 by turning EL3's MMU off and on), offered when firmware implements
//!   SMCCC 1.1 and says so through `SMCCC_ARCH_FEATURES`.
//! - **Spectre-BHB** (branch history injection, CVE-2022-23960): the
//!   branch history one context leaves steers the indirect branches of the
//!   next even with CSV2. Arm's mitigations, in order of preference: none
//!   where the core is not affected (CSV2 = 3, ECBHB in ID_AA64MMFR1_EL1
//!   bits 63:60, or a core Arm lists as unaffected: A35, A53, A55, A510);
//!   the `CLRBHB` instruction where ID_AA64ISAR2_EL1.ClearBHB (bits 31:28)
//!   says it exists; a loop of `k` taken branches that overwrites the
//!   history, with `k` per core (8 for A57 and A72, 24 for A76, A77 and
//!   Neoverse N1, 32 for A78, A78AE, A78C, X1, X2, A710, Neoverse N2 and
//!   V1); or firmware's `SMCCC_ARCH_WORKAROUND_3` (which also does
//!   workaround 1's job) where the loop does not suffice (A73, A75).
//!
//! [`choose`] makes the choice for one core (the values are Linux's
//! `proton-pack.c` tables and Arm's Spectre-BHB guidance); the kernel
//! carries it out (`hv-arch-aarch64`'s `speculation` module) on every
//! switch between partitions, never on a partition's own re-entry, and
//! prints it at boot. A core this table does not know and whose ID
//! registers do not clear it gets the longest loop (32), as a precaution.
//!
//! With [`Scrub::OnSwitch`] (the manifest's `[system] scrub = "on-switch"`)
//! every switch between partitions also gets everything the core can do
//! whether the table says it is needed or not: the longest BHB loop (or
//! `CLRBHB`), firmware's workarounds when offered, the instruction cache
//! and the TLBs invalidated, and the data and unified caches cleaned and
//! invalidated by set/way. What this does not cover is in
//! `docs/ARCHITECTURE.md` (caches shared with other cores, system caches
//! beyond the point set/way reaches, cache colouring, the kernel's own
//! entry).

use core::fmt;

/// The ID registers that decide a core's mitigation, as read at EL2.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuId {
    /// MIDR_EL1: implementer (bits 31:24) and part number (bits 15:4).
    pub midr: u64,
    /// ID_AA64PFR0_EL1: CSV2 in bits 59:56.
    pub pfr0: u64,
    /// ID_AA64MMFR1_EL1: ECBHB in bits 63:60.
    pub mmfr1: u64,
    /// ID_AA64ISAR2_EL1: ClearBHB in bits 31:28.
    pub isar2: u64,
}

/// What firmware offers, from `SMCCC_ARCH_FEATURES` (SMCCC 1.1 and later):
/// for each workaround, whether calling it does something on this core.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Firmware {
    /// `SMCCC_ARCH_WORKAROUND_1` is implemented and needed here (0 from
    /// `SMCCC_ARCH_FEATURES`).
    pub workaround_1: bool,
    /// `SMCCC_ARCH_WORKAROUND_3` is implemented and needed here.
    pub workaround_3: bool,
}

/// The Arm Ltd cores the table names (implementer 0x41).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Core {
    /// Cortex-A35, A53, A55, A510: in-order, neither variant applies.
    Unaffected(&'static str),
    /// A core with a Spectre-BHB loop count (and, for A57 and A72, no CSV2).
    Loop(&'static str, u8),
    /// Cortex-A73 and A75: only firmware's workaround 3 clears their history.
    FirmwareOnly(&'static str),
    /// Anything else: `implementer` and `part` from the MIDR.
    Other {
        /// MIDR bits 31:24.
        implementer: u8,
        /// MIDR bits 15:4.
        part: u16,
    },
}

impl Core {
    /// The core `midr` names.
    #[must_use]
    pub fn from_midr(midr: u64) -> Self {
        let implementer = ((midr >> 24) & 0xff) as u8;
        let part = ((midr >> 4) & 0xfff) as u16;
        if implementer != 0x41 {
            return Self::Other { implementer, part };
        }
        match part {
            0xd04 => Self::Unaffected("Cortex-A35"),
            0xd03 => Self::Unaffected("Cortex-A53"),
            0xd05 => Self::Unaffected("Cortex-A55"),
            0xd46 => Self::Unaffected("Cortex-A510"),
            0xd07 => Self::Loop("Cortex-A57", 8),
            0xd08 => Self::Loop("Cortex-A72", 8),
            0xd09 => Self::FirmwareOnly("Cortex-A73"),
            0xd0a => Self::FirmwareOnly("Cortex-A75"),
            0xd0b => Self::Loop("Cortex-A76", 24),
            0xd0e => Self::Loop("Cortex-A76AE", 24),
            0xd0d => Self::Loop("Cortex-A77", 24),
            0xd0c => Self::Loop("Neoverse N1", 24),
            0xd41 => Self::Loop("Cortex-A78", 32),
            0xd42 => Self::Loop("Cortex-A78AE", 32),
            0xd4b => Self::Loop("Cortex-A78C", 32),
            0xd44 => Self::Loop("Cortex-X1", 32),
            0xd47 => Self::Loop("Cortex-A710", 32),
            0xd48 => Self::Loop("Cortex-X2", 32),
            0xd49 => Self::Loop("Neoverse N2", 32),
            0xd40 => Self::Loop("Neoverse V1", 32),
            part => Self::Other { implementer, part },
        }
    }
}

impl fmt::Display for Core {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unaffected(name) | Self::Loop(name, _) | Self::FirmwareOnly(name) => {
                f.write_str(name)
            }
            Self::Other { implementer, part } => {
                write!(f, "core {part:#05x} of implementer {implementer:#04x}")
            }
        }
    }
}

/// The longest Spectre-BHB loop any core needs.
pub const LONGEST_LOOP: u8 = 32;

/// How the branch history is cleared on a switch between partitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bhb {
    /// Not needed.
    None,
    /// The `CLRBHB` instruction.
    Clear,
    /// A loop of this many taken branches, then `dsb nsh; isb`.
    Loop(u8),
    /// Firmware's `SMCCC_ARCH_WORKAROUND_3` (which also invalidates the
    /// branch predictor, so the plan's `workaround_1` is then false).
    Firmware,
    /// Needed, but the core offers no way (A73 or A75 without the firmware
    /// workaround): the boot line says so.
    Unavailable,
}

/// What the kernel does on a switch between partitions on one core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The core, as the table knows it.
    pub core: Core,
    /// Call firmware's `SMCCC_ARCH_WORKAROUND_1` (Spectre-v2).
    pub workaround_1: bool,
    /// Spectre-v2 applies and nothing mitigates it (no CSV2, no firmware
    /// workaround): the boot line says so.
    pub v2_unmitigated: bool,
    /// Clearing the branch history (Spectre-BHB).
    pub bhb: Bhb,
    /// Scrub on every switch ([`Scrub::OnSwitch`]): also invalidate the
    /// instruction cache and TLBs, and clean and invalidate the data and
    /// unified caches by set/way.
    pub scrub: bool,
}

/// The manifest's choice (`[system] scrub`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Scrub {
    /// Only the maintenance the core needs ([`choose`]).
    #[default]
    Needed,
    /// Everything the core can do, on every switch between partitions.
    OnSwitch,
}

impl CpuId {
    fn csv2(&self) -> u64 {
        (self.pfr0 >> 56) & 0xf
    }

    fn ecbhb(&self) -> bool {
        (self.mmfr1 >> 60) & 0xf != 0
    }

    fn clear_bhb(&self) -> bool {
        (self.isar2 >> 28) & 0xf != 0
    }
}

/// The plan for a core with ID registers `id`, firmware `firmware`, under
/// the manifest's `scrub`.
#[must_use]
pub fn choose(id: CpuId, firmware: Firmware, scrub: Scrub) -> Plan {
    let core = Core::from_midr(id.midr);
    let scrubbing = scrub == Scrub::OnSwitch;
    // Spectre-v2: a core with CSV2 (or one Arm lists as unaffected) needs
    // nothing; otherwise firmware's workaround, when it says it helps here.
    let v2_affected = id.csv2() == 0 && !matches!(core, Core::Unaffected(_));
    let bhb_affected = match core {
        Core::Unaffected(_) => false,
        _ => !(id.csv2() >= 3 || id.ecbhb()),
    };
    let bhb = if !bhb_affected && !scrubbing {
        Bhb::None
    } else if id.clear_bhb() {
        Bhb::Clear
    } else {
        match core {
            Core::Loop(_, k) if !scrubbing => Bhb::Loop(k),
            Core::FirmwareOnly(_) if firmware.workaround_3 => Bhb::Firmware,
            Core::FirmwareOnly(_) if !scrubbing => Bhb::Unavailable,
            // Unknown cores, and everything under scrubbing: the longest
            // loop (firmware's workaround 3 if that is all A73/A75 have).
            _ => Bhb::Loop(LONGEST_LOOP),
        }
    };
    let workaround_3 = bhb == Bhb::Firmware;
    let wants_1 = v2_affected || scrubbing;
    let workaround_1 = wants_1 && firmware.workaround_1 && !workaround_3;
    Plan {
        core,
        workaround_1,
        v2_unmitigated: v2_affected && !workaround_1 && !workaround_3,
        bhb,
        scrub: scrubbing,
    }
}

impl Plan {
    /// Whether a switch between partitions does anything at all.
    #[must_use]
    pub fn does_something(&self) -> bool {
        self.workaround_1 || self.bhb != Bhb::None || self.scrub
    }
}

/// The boot line's account: `<core>: <what a switch does>`.
impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: on a switch between partitions, ", self.core)?;
        if !self.does_something() {
            return f.write_str("nothing (not affected by Spectre-v2 or Spectre-BHB)");
        }
        let mut first = true;
        let mut item = |f: &mut fmt::Formatter<'_>, what: fmt::Arguments<'_>| {
            let sep = if first { "" } else { ", " };
            first = false;
            write!(f, "{sep}{what}")
        };
        match self.bhb {
            Bhb::None => {}
            Bhb::Clear => item(f, format_args!("CLRBHB"))?,
            Bhb::Loop(k) => item(f, format_args!("branch history loop x{k}"))?,
            Bhb::Firmware => item(f, format_args!("firmware's ARCH_WORKAROUND_3"))?,
            Bhb::Unavailable => item(
                f,
                format_args!(
                    "no branch history clearing (the core needs firmware's ARCH_WORKAROUND_3, which is absent)"
                ),
            )?,
        }
        if self.workaround_1 {
            item(f, format_args!("firmware's ARCH_WORKAROUND_1"))?;
        }
        if self.scrub {
            item(
                f,
                format_args!(
                    "caches cleaned and invalidated, TLBs and instruction cache invalidated (scrub on-switch)"
                ),
            )?;
        }
        if self.v2_unmitigated {
            item(
                f,
                format_args!(
                    "Spectre-v2 unmitigated (no CSV2, firmware offers no ARCH_WORKAROUND_1)"
                ),
            )?;
        }
        Ok(())
    }
}

/// The cache levels (0 for L1) that hold data, up to the level of coherence
/// (CLIDR_EL1.LoC, bits 26:24): the ones [`Scrub::OnSwitch`] cleans and
/// invalidates by set/way. CLIDR_EL1.Ctype`n` (bits 3n+2:3n) is 2 (data),
/// 3 (separate instruction and data) or 4 (unified) for those.
pub fn data_cache_levels(clidr: u64) -> impl Iterator<Item = u8> {
    let coherence = ((clidr >> 24) & 0b111) as u8;
    (0..coherence.min(7)).filter(move |&n| matches!((clidr >> (3 * n)) & 0b111, 2..=4))
}

/// One cache level's shape, from its CCSIDR_EL1, for a set/way walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheGeometry {
    /// The level (0 for L1).
    pub level: u8,
    /// log2 of the line size in bytes.
    pub line_shift: u32,
    /// How many ways.
    pub ways: u32,
    /// How many sets.
    pub sets: u32,
}

impl CacheGeometry {
    /// Decodes CCSIDR_EL1 for `level` (selected through CSSELR_EL1).
    /// `ccidx` is FEAT_CCIDX (ID_AA64MMFR2_EL1 bits 23:20), which widens
    /// the fields: associativity in bits 23:3 and sets in 55:32 instead of
    /// 12:3 and 27:13.
    #[must_use]
    pub fn from_ccsidr(level: u8, ccsidr: u64, ccidx: bool) -> Self {
        let (ways, sets) = if ccidx {
            ((ccsidr >> 3) & 0x1f_ffff, (ccsidr >> 32) & 0xff_ffff)
        } else {
            ((ccsidr >> 3) & 0x3ff, (ccsidr >> 13) & 0x7fff)
        };
        Self {
            level,
            line_shift: (ccsidr & 0b111) as u32 + 4,
            ways: ways as u32 + 1,
            sets: sets as u32 + 1,
        }
    }

    /// The operand of `DC CISW` for `set` and `way`: the way in the top
    /// bits (shifted by 32 - log2(ways), rounded up), the set above the
    /// line offset, the level in bits 3:1.
    #[must_use]
    pub fn operand(&self, set: u32, way: u32) -> u64 {
        let way_bits = u32::BITS - (self.ways - 1).leading_zeros();
        let way_field = if way_bits == 0 {
            0
        } else {
            u64::from(way) << (32 - way_bits)
        };
        way_field | (u64::from(set) << self.line_shift) | (u64::from(self.level) << 1)
    }
}

#[cfg(test)]
mod tests {
    use super::{Bhb, CacheGeometry, Core, CpuId, Firmware, LONGEST_LOOP, Plan, Scrub, choose};

    #[test]
    fn set_way_walks_cover_the_data_caches_to_the_point_of_coherence() {
        // QEMU's Cortex-A57: L1 I+D (3), L2 unified (4), LoC 2.
        let clidr = 0x0a20_0023;
        assert_eq!(super::data_cache_levels(clidr).collect::<Vec<_>>(), [0, 1]);
        // Instruction-only L1 (1) is skipped; LoC 0 cleans nothing.
        assert_eq!(
            super::data_cache_levels(0x0200_0021).collect::<Vec<_>>(),
            [1]
        );
        assert_eq!(super::data_cache_levels(0x23).count(), 0);
        // A57's L1 data cache: 32 KiB, 2 ways, 64-byte lines, 256 sets.
        let l1 = CacheGeometry::from_ccsidr(0, 0x701f_e00a, false);
        assert_eq!((l1.line_shift, l1.ways, l1.sets), (6, 2, 256));
        assert_eq!(l1.operand(255, 1), 1 << 31 | 255 << 6);
        // Its L2: 2 MiB, 16 ways, 2048 sets, at level 1.
        let l2 = CacheGeometry::from_ccsidr(1, 0x70ff_e07a, false);
        assert_eq!((l2.line_shift, l2.ways, l2.sets), (6, 16, 2048));
        assert_eq!(l2.operand(2047, 15), 15 << 28 | 2047 << 6 | 1 << 1);
        // FEAT_CCIDX's layout; a direct-mapped cache has no way bits.
        let wide = CacheGeometry::from_ccsidr(0, 255 << 32 | 1 << 3 | 2, true);
        assert_eq!((wide.line_shift, wide.ways, wide.sets), (6, 2, 256));
        let direct = CacheGeometry::from_ccsidr(0, 2, false);
        assert_eq!(direct.operand(0, 0), 0);
        // Three ways round up to two way bits.
        let three = CacheGeometry::from_ccsidr(0, 2 << 3 | 2, false);
        assert_eq!(three.operand(0, 2), 2 << 30);
    }

    /// MIDR values as the cores report them (variant and revision vary).
    const A53: u64 = 0x410f_d034;
    const A57: u64 = 0x411f_d070;
    const A72: u64 = 0x410f_d083;
    const A73: u64 = 0x410f_d092;
    const A76: u64 = 0x414f_d0b1;
    const NEOVERSE_N1: u64 = 0x413f_d0c1;
    const NEOVERSE_V1: u64 = 0x411f_d401;
    /// QEMU's `max` CPU: implementer 0, part 0x051.
    const QEMU_MAX: u64 = 0x000f_0510;

    const CSV2_1: u64 = 1 << 56;
    const CSV2_3: u64 = 3 << 56;
    const NO_FIRMWARE: Firmware = Firmware {
        workaround_1: false,
        workaround_3: false,
    };
    const FIRMWARE_1: Firmware = Firmware {
        workaround_1: true,
        workaround_3: false,
    };
    const FIRMWARE_3: Firmware = Firmware {
        workaround_1: true,
        workaround_3: true,
    };

    fn id(midr: u64, pfr0: u64) -> CpuId {
        CpuId {
            midr,
            pfr0,
            ..CpuId::default()
        }
    }

    fn plan(midr: u64, pfr0: u64, firmware: Firmware) -> Plan {
        choose(id(midr, pfr0), firmware, Scrub::Needed)
    }

    #[test]
    fn cortex_a53_needs_nothing() {
        let p = plan(A53, 0, NO_FIRMWARE);
        assert_eq!(p.core, Core::Unaffected("Cortex-A53"));
        assert!(!p.does_something() && !p.v2_unmitigated);
        assert_eq!(
            p.to_string(),
            "Cortex-A53: on a switch between partitions, nothing (not affected by Spectre-v2 or \
             Spectre-BHB)"
        );
    }

    #[test]
    fn cortex_a57_and_a72_loop_8_and_take_firmware_workaround_1() {
        for (midr, name) in [(A57, "Cortex-A57"), (A72, "Cortex-A72")] {
            let p = plan(midr, 0, FIRMWARE_1);
            assert_eq!(p.core, Core::Loop(name, 8));
            assert_eq!(p.bhb, Bhb::Loop(8));
            assert!(p.workaround_1 && !p.v2_unmitigated && !p.scrub);
            // Without firmware's workaround, Spectre-v2 stays open, and the
            // boot line says so.
            let p = plan(midr, 0, NO_FIRMWARE);
            assert_eq!(p.bhb, Bhb::Loop(8));
            assert!(!p.workaround_1 && p.v2_unmitigated);
            assert_eq!(
                p.to_string(),
                format!(
                    "{name}: on a switch between partitions, branch history loop x8, Spectre-v2 \
                     unmitigated (no CSV2, firmware offers no ARCH_WORKAROUND_1)"
                )
            );
            // Firmware's workaround 3 is not needed where the loop does.
            assert_eq!(plan(midr, 0, FIRMWARE_3).bhb, Bhb::Loop(8));
        }
    }

    #[test]
    fn cortex_a73_needs_firmware_workaround_3() {
        let p = plan(A73, 0, FIRMWARE_3);
        assert_eq!(p.bhb, Bhb::Firmware);
        // Workaround 3 does workaround 1's job too.
        assert!(!p.workaround_1 && !p.v2_unmitigated);
        let p = plan(A73, 0, NO_FIRMWARE);
        assert_eq!(p.bhb, Bhb::Unavailable);
        assert!(p.v2_unmitigated);
    }

    #[test]
    fn cortex_a76_and_neoverse_have_csv2_and_loop_24_or_32() {
        let p = plan(A76, CSV2_1, FIRMWARE_1);
        assert_eq!(p.bhb, Bhb::Loop(24));
        assert!(!p.workaround_1 && !p.v2_unmitigated);
        assert_eq!(plan(NEOVERSE_N1, CSV2_1, NO_FIRMWARE).bhb, Bhb::Loop(24));
        let p = plan(NEOVERSE_V1, CSV2_1, NO_FIRMWARE);
        assert_eq!(p.core, Core::Loop("Neoverse V1", 32));
        assert_eq!(p.bhb, Bhb::Loop(32));
        assert!(!p.v2_unmitigated);
    }

    #[test]
    fn id_registers_clear_or_replace_the_loop() {
        // CSV2 = 3 or ECBHB: not affected by Spectre-BHB.
        assert_eq!(plan(A76, CSV2_3, NO_FIRMWARE).bhb, Bhb::None);
        let ecbhb = CpuId {
            mmfr1: 1 << 60,
            ..id(NEOVERSE_V1, CSV2_1)
        };
        assert_eq!(choose(ecbhb, NO_FIRMWARE, Scrub::Needed).bhb, Bhb::None);
        // ClearBHB: the instruction instead of the loop.
        let clear = CpuId {
            isar2: 1 << 28,
            ..id(NEOVERSE_V1, CSV2_1)
        };
        assert_eq!(choose(clear, NO_FIRMWARE, Scrub::Needed).bhb, Bhb::Clear);
    }

    #[test]
    fn qemu_max_and_unknown_cores_get_the_longest_loop_unless_cleared() {
        let p = plan(QEMU_MAX, CSV2_1, NO_FIRMWARE);
        assert_eq!(
            p.core,
            Core::Other {
                implementer: 0,
                part: 0x051
            }
        );
        assert_eq!(p.bhb, Bhb::Loop(LONGEST_LOOP));
        assert!(!p.v2_unmitigated);
        assert_eq!(plan(QEMU_MAX, CSV2_3, NO_FIRMWARE).bhb, Bhb::None);
        // An unknown core without CSV2: Spectre-v2 is open unless firmware
        // helps.
        assert!(plan(QEMU_MAX, 0, NO_FIRMWARE).v2_unmitigated);
        assert!(plan(QEMU_MAX, 0, FIRMWARE_1).workaround_1);
    }

    #[test]
    fn scrubbing_does_everything_the_core_can_even_where_not_needed() {
        for (midr, pfr0) in [(A53, 0), (A57, 0), (A76, CSV2_3), (QEMU_MAX, CSV2_3)] {
            let p = choose(id(midr, pfr0), FIRMWARE_1, Scrub::OnSwitch);
            assert!(p.scrub && p.workaround_1, "{midr:#x}");
            assert_eq!(p.bhb, Bhb::Loop(LONGEST_LOOP), "{midr:#x}");
            assert!(p.to_string().contains("(scrub on-switch)"));
        }
        // A73 with firmware: workaround 3, which includes workaround 1.
        let p = choose(id(A73, 0), FIRMWARE_3, Scrub::OnSwitch);
        assert_eq!(p.bhb, Bhb::Firmware);
        assert!(!p.workaround_1);
        assert_eq!(
            choose(id(A57, 0), NO_FIRMWARE, Scrub::OnSwitch).to_string(),
            "Cortex-A57: on a switch between partitions, branch history loop x32, caches cleaned \
             and invalidated, TLBs and instruction cache invalidated (scrub on-switch), \
             Spectre-v2 unmitigated (no CSV2, firmware offers no ARCH_WORKAROUND_1)"
        );
    }
}
