// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Physical address ranges and sets of them.
//!
//! [`PhysRange`] is a half-open range `[start, end)` of physical addresses
//! whose construction checks for overflow, so code that holds one never has to.
//! [`subtract`] removes a set of ranges from another, which is how the kernel
//! finds the memory that nothing else uses.

use core::fmt;

/// A half-open range of physical addresses, `[start, end)`.
///
/// # Invariants
/// `start <= end`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PhysRange {
    start: u64,
    end: u64,
}

impl PhysRange {
    /// The range `[start, start + size)`, or `None` if it would wrap past the
    /// end of the address space.
    #[must_use]
    pub const fn new(start: u64, size: u64) -> Option<Self> {
        match start.checked_add(size) {
            Some(end) => Some(Self { start, end }),
            None => None,
        }
    }

    /// The range `[start, end)`, or `None` if `end < start`.
    #[must_use]
    pub const fn from_bounds(start: u64, end: u64) -> Option<Self> {
        if end < start {
            None
        } else {
            Some(Self { start, end })
        }
    }

    /// The empty range at `addr`.
    #[must_use]
    pub const fn empty(addr: u64) -> Self {
        Self {
            start: addr,
            end: addr,
        }
    }

    /// The first address in the range.
    #[must_use]
    pub const fn start(self) -> u64 {
        self.start
    }

    /// The first address past the range.
    #[must_use]
    pub const fn end(self) -> u64 {
        self.end
    }

    /// The number of bytes in the range.
    #[must_use]
    pub const fn size(self) -> u64 {
        self.end - self.start
    }

    /// Whether the range holds no bytes.
    #[must_use]
    pub const fn is_empty(self) -> bool {
        self.start == self.end
    }

    /// Whether `addr` lies in the range.
    #[must_use]
    pub const fn contains(self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }

    /// Whether the two ranges share at least one byte.
    #[must_use]
    pub const fn overlaps(self, other: Self) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// Whether `other` lies entirely inside this range.
    #[must_use]
    pub const fn covers(self, other: Self) -> bool {
        self.start <= other.start && other.end <= self.end
    }

    /// The range grown outwards to multiples of `align` (a power of two), or
    /// `None` if that would pass the end of the address space.
    #[must_use]
    pub const fn align_out(self, align: u64) -> Option<Self> {
        let mask = align - 1;
        let start = self.start & !mask;
        match self.end.checked_add(mask) {
            Some(end) => Some(Self {
                start,
                end: end & !mask,
            }),
            None => None,
        }
    }

    /// The range shrunk inwards to multiples of `align` (a power of two); empty
    /// if no aligned byte is left.
    #[must_use]
    pub const fn align_in(self, align: u64) -> Self {
        let mask = align - 1;
        let start = match self.start.checked_add(mask) {
            Some(s) => s & !mask,
            None => self.end,
        };
        let end = self.end & !mask;
        if end <= start {
            Self {
                start: self.end,
                end: self.end,
            }
        } else {
            Self { start, end }
        }
    }
}

impl fmt::Debug for PhysRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for PhysRange {
    /// `0x40000000..0x60000000`, with the end exclusive.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#011x}..{:#011x}", self.start, self.end)
    }
}

/// A size in bytes, shown in the largest binary unit it reaches: exactly
/// (`512 MiB`) when the unit divides it, else to a tenth (`1018.2 MiB`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size(pub u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u64, &str); 4] = [
            (1 << 40, "TiB"),
            (1 << 30, "GiB"),
            (1 << 20, "MiB"),
            (1 << 10, "KiB"),
        ];
        let Some(&(unit, name)) = UNITS.iter().find(|(unit, _)| self.0 >= *unit) else {
            return write!(f, "{} B", self.0);
        };
        if self.0.is_multiple_of(unit) {
            return write!(f, "{} {name}", self.0 / unit);
        }
        let tenths = u128::from(self.0) * 10 / u128::from(unit);
        write!(f, "{}.{} {name}", tenths / 10, tenths % 10)
    }
}

/// The result of [`subtract`] did not fit in the output's capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooManyRanges;

/// Every byte of `from` that is in none of `remove`, as sorted, disjoint,
/// non-empty ranges. Fails only if the result has more than `N` ranges.
pub fn subtract<const N: usize>(
    from: &[PhysRange],
    remove: &[PhysRange],
) -> Result<heapless::Vec<PhysRange, N>, TooManyRanges> {
    let mut out: heapless::Vec<PhysRange, N> = heapless::Vec::new();
    for &piece in from {
        let mut pending: heapless::Vec<PhysRange, N> = heapless::Vec::new();
        pending.push(piece).map_err(|_| TooManyRanges)?;
        for &cut in remove {
            let mut next: heapless::Vec<PhysRange, N> = heapless::Vec::new();
            for &p in &pending {
                if !p.overlaps(cut) {
                    next.push(p).map_err(|_| TooManyRanges)?;
                    continue;
                }
                if p.start < cut.start {
                    next.push(PhysRange {
                        start: p.start,
                        end: cut.start,
                    })
                    .map_err(|_| TooManyRanges)?;
                }
                if cut.end < p.end {
                    next.push(PhysRange {
                        start: cut.end,
                        end: p.end,
                    })
                    .map_err(|_| TooManyRanges)?;
                }
            }
            pending = next;
        }
        for p in pending {
            if !p.is_empty() {
                out.push(p).map_err(|_| TooManyRanges)?;
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{PhysRange, Size, subtract};
    use proptest::prelude::{Strategy, prop_assert, prop_assert_eq, proptest};

    fn r(start: u64, end: u64) -> PhysRange {
        PhysRange::from_bounds(start, end).unwrap()
    }

    #[test]
    fn construction_refuses_overflow() {
        assert!(PhysRange::new(u64::MAX, 1).is_none());
        assert!(PhysRange::from_bounds(2, 1).is_none());
        assert_eq!(PhysRange::new(0x1000, 0x1000).unwrap().end(), 0x2000);
    }

    #[test]
    fn alignment() {
        assert_eq!(r(0x1001, 0x2fff).align_out(0x1000), Some(r(0x1000, 0x3000)));
        assert_eq!(r(0x1001, 0x2fff).align_in(0x1000).size(), 0);
        assert_eq!(r(0x1001, 0x3001).align_in(0x1000), r(0x2000, 0x3000));
        assert_eq!(r(0, u64::MAX).align_out(0x1000), None);
    }

    #[test]
    fn sizes_print_in_the_largest_unit_reached() {
        assert_eq!(Size(512 << 20).to_string(), "512 MiB");
        assert_eq!(Size(3 << 30).to_string(), "3 GiB");
        assert_eq!(Size(1536 << 10).to_string(), "1.5 MiB");
        assert_eq!(Size(1_042_612 << 10).to_string(), "1018.1 MiB");
        assert_eq!(Size(u64::MAX).to_string(), "16777215.9 TiB");
        assert_eq!(Size(1000).to_string(), "1000 B");
    }

    #[test]
    fn subtract_splits_around_holes() {
        let out: heapless::Vec<_, 8> =
            subtract(&[r(0, 100)], &[r(10, 20), r(50, 60), r(90, 200)]).unwrap();
        assert_eq!(out.as_slice(), &[r(0, 10), r(20, 50), r(60, 90)]);
    }

    #[test]
    fn subtract_reports_overflow_instead_of_losing_ranges() {
        let holes = [r(1, 2), r(3, 4), r(5, 6)];
        assert!(subtract::<2>(&[r(0, 10)], &holes).is_err());
        assert_eq!(subtract::<4>(&[r(0, 10)], &holes).unwrap().len(), 4);
    }

    fn range() -> impl Strategy<Value = PhysRange> {
        (0u64..1000, 0u64..300).prop_map(|(s, len)| r(s, s + len))
    }

    proptest! {
        /// An address is in the result exactly when it is in `from` and in no
        /// removed range, and the result is sorted and disjoint.
        #[test]
        fn subtract_is_exact(
            from in proptest::collection::vec(range(), 0..3),
            remove in proptest::collection::vec(range(), 0..5),
        ) {
            // Disjoint inputs, as banks of memory are.
            let mut from = from;
            from.sort();
            from.dedup_by(|b, a| a.overlaps(*b) || a.end() == b.start());
            let out: heapless::Vec<_, 64> = subtract(&from, &remove).unwrap();
            for addr in 0..1400 {
                let want = from.iter().any(|p| p.contains(addr))
                    && !remove.iter().any(|p| p.contains(addr));
                prop_assert_eq!(out.iter().any(|p| p.contains(addr)), want, "addr {}", addr);
            }
            for pair in out.windows(2) {
                prop_assert!(pair[0].end() <= pair[1].start());
            }
        }
    }
}
