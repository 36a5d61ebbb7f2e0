// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Reading a fuzzer's bytes as choices: every read succeeds, with zeros
//! once the bytes run out, so any input is a valid (if short) program.

/// The unread rest of a fuzzer's input.
#[derive(Clone, Debug)]
pub struct Bytes<'a> {
    /// What is left.
    rest: &'a [u8],
}

impl<'a> Bytes<'a> {
    /// Reading starts at the beginning of `data`.
    #[must_use]
    pub const fn new(data: &'a [u8]) -> Self {
        Self { rest: data }
    }

    /// Whether everything has been read.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next byte, or 0.
    pub fn byte(&mut self) -> u8 {
        match self.rest.split_first() {
            Some((&b, rest)) => {
                self.rest = rest;
                b
            }
            None => 0,
        }
    }

    /// A number below `n` (which must not be 0), from one byte.
    pub fn below(&mut self, n: u8) -> u8 {
        self.byte() % n.max(1)
    }

    /// A register value: mostly small (slot numbers, lengths, flags), now
    /// and then any 64-bit value, as hypercall arguments are.
    pub fn register(&mut self) -> u64 {
        match self.byte() {
            0..=191 => u64::from(self.byte() % 16),
            192..=223 => u64::from(self.byte()),
            224..=239 => u64::from(u16::from_le_bytes([self.byte(), self.byte()])),
            _ => {
                let mut word = [0; 8];
                for b in &mut word {
                    *b = self.byte();
                }
                u64::from_le_bytes(word)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Bytes;

    #[test]
    fn reads_run_out_into_zeros() {
        let mut b = Bytes::new(&[7, 200, 9]);
        assert_eq!(b.byte(), 7);
        assert_eq!(b.register(), 9);
        assert!(b.is_empty());
        assert_eq!(b.byte(), 0);
        assert_eq!(b.register(), 0);
    }

    #[test]
    fn below_stays_below() {
        let mut b = Bytes::new(&[255, 4]);
        assert_eq!(b.below(4), 3);
        assert_eq!(b.below(4), 0);
        assert_eq!(b.below(0), 0);
    }
}
