// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The kernel's own log, once a partition reads it.
//!
//! When the manifest names a kernel-log reader (the console service), the
//! kernel stops writing to the UART after boot: its messages (fault reports,
//! the lines of partitions that log through the kernel) go into this bounded
//! ring instead, and the kernel signals the reader's notification. The reader
//! takes them with `LogRead` on its `KernelLog` capability. A full ring drops
//! the newest bytes and counts them; the count reaches the reader with its
//! next read, so nothing is lost silently.

use hv_abi::hypercall::{Badge, Rights, Status};

use super::{KernelState, Outcome};
use crate::cap::{NotificationId, Object};
use crate::sched::VcpuId;

/// Bytes the ring holds.
pub const KERNEL_LOG_BYTES: usize = 4096;

/// Bytes one `LogRead` returns at most (x3..x7).
const READ_BYTES: usize = hv_abi::hypercall::LOG_BYTES;

/// The ring and where to signal its reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct KernelLog {
    bytes: [u8; KERNEL_LOG_BYTES],
    /// Index of the oldest byte.
    head: usize,
    /// Bytes held.
    len: usize,
    /// Bytes dropped since the last read.
    dropped: u64,
    /// The reader's notification and the bits to set there.
    reader: Option<(NotificationId, Badge)>,
}

impl KernelLog {
    pub(super) const EMPTY: Self = Self {
        bytes: [0; KERNEL_LOG_BYTES],
        head: 0,
        len: 0,
        dropped: 0,
        reader: None,
    };

    /// Empties the ring and names the reader (at boot).
    pub(super) fn set_reader(&mut self, reader: Option<(NotificationId, Badge)>) {
        *self = Self {
            reader,
            ..Self::EMPTY
        };
    }

    /// Appends what fits; counts the rest as dropped.
    fn append(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            if self.len == KERNEL_LOG_BYTES {
                self.dropped = self.dropped.saturating_add(1);
                continue;
            }
            let at = (self.head + self.len) % KERNEL_LOG_BYTES;
            if let Some(slot) = self.bytes.get_mut(at) {
                *slot = byte;
            }
            self.len += 1;
        }
    }

    /// Takes up to `out.len()` bytes; returns how many, and the drop count
    /// (which it resets).
    fn take(&mut self, out: &mut [u8]) -> (usize, u64) {
        let n = out.len().min(self.len);
        for slot in out.iter_mut().take(n) {
            *slot = self.bytes.get(self.head).copied().unwrap_or(0);
            self.head = (self.head + 1) % KERNEL_LOG_BYTES;
        }
        self.len -= n;
        (n, core::mem::take(&mut self.dropped))
    }
}

impl KernelState {
    /// Whether a partition reads the kernel's log (the manifest named one).
    #[must_use]
    pub fn has_kernel_log_reader(&self) -> bool {
        self.klog.reader.is_some()
    }

    /// Appends the kernel's own message to its log and signals the reader.
    /// Returns the cores to kick (bit n: core n, which may include the
    /// caller's own) so the reader gets to run.
    pub fn append_kernel_log(&mut self, bytes: &[u8]) -> u8 {
        self.klog.append(bytes);
        match self.klog.reader {
            // No core is "here": every core that should look again is named.
            Some((n, badge)) => self.signal_notification(n, badge, usize::MAX),
            None => 0,
        }
    }

    /// `LogRead`: x1 a `KernelLog` capability with READ. Returns x1 = bytes
    /// dropped since the last read, x2 = bytes returned, x3..x7 the bytes.
    pub(super) fn log_read(&mut self, cur: VcpuId, regs: &mut [u64; 8]) -> Result<Outcome, Status> {
        let partition = self.partition_of(cur)?;
        let (_, _) = self.object_cap(partition, regs[1], Rights::READ, |o| match o {
            Object::KernelLog => Some(()),
            _ => None,
        })?;
        let mut bytes = [0u8; READ_BYTES];
        let (n, dropped) = self.klog.take(&mut bytes);
        regs[0] = super::dispatch::SUCCESS;
        regs[1] = dropped;
        regs[2] = n as u64;
        for (word, chunk) in regs.iter_mut().skip(3).zip(bytes.chunks(8)) {
            let mut le = [0u8; 8];
            le.copy_from_slice(chunk);
            *word = u64::from_le_bytes(le);
        }
        Ok(Outcome::CONTINUE)
    }
}

#[cfg(test)]
mod tests {
    use hv_abi::hypercall::{Badge, Hypercall, Rights, Status};

    use super::{KERNEL_LOG_BYTES, KernelLog};
    use crate::cap::{Capability, NotificationId, Object};
    use crate::state::{FaultPolicy, KernelState, PartitionSeed, Seed};

    /// One partition: slot 0 reads the kernel log, slot 1 waits on
    /// notification 0, where the kernel signals bit 4 when it logs.
    fn system(with_reader: bool) -> Box<KernelState> {
        let caps = [
            Some(Capability::new(Object::KernelLog, Rights::READ)),
            Some(Capability::new(
                Object::Notification(NotificationId(0)),
                Rights::READ,
            )),
        ];
        let partitions = [PartitionSeed {
            vcpus: 1,
            cores: 1,
            priority: 100,
            fault_policy: FaultPolicy::Stop,
            capabilities: if with_reader { &caps } else { &caps[1..] },
            exits: None,
        }];
        let seed = Seed {
            cores: 1,
            partitions: &partitions,
            endpoints: &[],
            notifications: 1,
            irqs: &[],
            replies: &[],
            kernel_log: with_reader.then_some((NotificationId(0), Badge(1 << 4))),
        };
        let mut state = Box::new(KernelState::empty());
        state.boot(&seed).unwrap();
        let mut regs = [0; 8];
        let _ = state.idle(0, &mut regs);
        state
    }

    fn call(state: &mut KernelState, call: Hypercall, slot: u64) -> [u64; 8] {
        let mut regs = [u64::from(call.function_id()), slot, 0, 0, 0, 0, 0, 0];
        let _ = state.hypercall(0, &mut regs);
        regs
    }

    #[test]
    fn the_reader_is_signalled_and_reads_in_order() {
        let mut state = system(true);
        assert!(state.has_kernel_log_reader());
        let _ = state.append_kernel_log(b"partition `x` stopped\n");
        let regs = call(&mut state, Hypercall::Poll, 1);
        assert_eq!(regs[1], 1 << 4, "the kernel signalled the reader's bit");
        let regs = call(&mut state, Hypercall::LogRead, 0);
        assert_eq!((regs[0], regs[1], regs[2]), (0, 0, 22));
        let bytes: Vec<u8> = regs[3..]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .take(22)
            .collect();
        assert_eq!(bytes, b"partition `x` stopped\n");
        assert_eq!(
            call(&mut state, Hypercall::LogRead, 0)[2],
            0,
            "empty now, and it never waits"
        );
    }

    #[test]
    fn only_a_kernel_log_capability_reads() {
        let mut state = system(false);
        assert!(!state.has_kernel_log_reader());
        let regs = call(&mut state, Hypercall::LogRead, 0);
        assert_eq!(regs[0], Status::WrongType.to_register());
        let regs = call(&mut state, Hypercall::LogRead, 9);
        assert_eq!(regs[0], Status::InvalidCapability.to_register());
    }

    #[test]
    fn the_ring_keeps_order_and_counts_what_it_drops() {
        let mut log = KernelLog::EMPTY;
        log.append(b"hello ");
        log.append(b"world\n");
        let mut out = [0u8; 8];
        assert_eq!(log.take(&mut out), (8, 0));
        assert_eq!(&out, b"hello wo");
        assert_eq!(log.take(&mut out), (4, 0));
        assert_eq!(&out[..4], b"rld\n");
        log.append(&[b'x'; KERNEL_LOG_BYTES + 10]);
        assert_eq!(log.take(&mut out), (8, 10));
        assert_eq!(log.take(&mut out), (8, 0), "the count resets once read");
        assert_eq!(log.take(&mut []), (0, 0));
    }
}
