// SPDX-License-Identifier: Apache-2.0 OR MIT
//! The kernel's own log, once a partition reads it.
//!
//! When the manifest names a kernel-log reader (the console service), the
//! kernel stops writing to the UART after boot: its messages (fault reports,
//! the lines of partitions that log through the kernel) go into this bounded
//! ring instead, and the kernel signals the reader's notification. The reader
//! takes them with `LogRead` on its `KernelLog` capability.
//!
//! **Whole lines, bounded shares.** A line enters the ring whole or not at
//! all, so the reader never sees one cut short with another glued on. The
//! kernel's own messages (fault reports) may use the whole ring; a
//! partition's lines only what leaves [`KERNEL_LOG_RESERVE`] bytes free, so no
//! flood of partition lines can crowd out a fault report. Before a
//! partition's finished line goes anywhere (this ring, or the UART when
//! nobody reads the log) it must pass [`KernelState::admit_log_line`]: each
//! partition may log [`LOG_LINES_PER_WINDOW`] lines per window of
//! [`LOG_WINDOW_TICKS`] ticks, so its share of the log, and of the console
//! behind it, is bounded whoever else logs. Lines over quota, or that found
//! the ring full, are counted per partition and reported (by the glue, as
//! `bulkhead: log: `name` dropped N lines`) just before that partition's next
//! line that goes out. A kernel message that finds even the reserve full is
//! dropped whole and its bytes counted; the count reaches the reader with
//! its next read, so nothing is lost silently.

use hv_abi::hypercall::{Badge, Rights, Status};

use super::{KernelState, Outcome};
use hv_image::MAX_PARTITIONS;

use crate::cap::{NotificationId, PartitionId};
use crate::sched::VcpuId;
use hv_image::Object;

/// Bytes the ring holds.
pub const KERNEL_LOG_BYTES: usize = 4096;

/// Bytes of the ring that partitions' lines may not use: room kept for the
/// kernel's own messages (about ten fault reports) whatever partitions log.
pub const KERNEL_LOG_RESERVE: usize = 1024;

/// Lines one partition may log per window: far more than any service prints
/// in a burst at start, far fewer than a console shows in that time (a
/// 115200-baud UART shows about 140 lines of 80 characters a second), so a
/// flooder's share of the console stays a fraction of it.
pub const LOG_LINES_PER_WINDOW: u32 = 64;

/// The quota's window, in the kernel's ticks: one second.
pub const LOG_WINDOW_TICKS: u64 = super::TICK_HZ;

/// One partition's use of its log quota.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Quota {
    /// The window (`now / LOG_WINDOW_TICKS`) `lines` counts in.
    window: u64,
    /// Lines admitted in that window.
    lines: u32,
    /// Lines dropped since its last line that went out.
    dropped: u32,
}

impl Quota {
    const EMPTY: Self = Self {
        window: 0,
        lines: 0,
        dropped: 0,
    };
}

/// Whether a partition's finished line may go out, by its quota.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Admission {
    /// Over quota: the line is dropped (and counted).
    Dropped,
    /// It goes out; `dropped` lines of this partition were dropped since its
    /// last one that did, which the glue reports first.
    Admitted {
        /// Lines dropped before this one (reset now).
        dropped: u32,
    },
}

/// Bytes one `LogRead` returns at most (x3..x7).
const READ_BYTES: usize = hv_abi::hypercall::LOG_BYTES;

/// The ring and where to signal its reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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
    /// Each partition's use of its quota.
    quotas: [Quota; MAX_PARTITIONS],
}

impl KernelLog {
    pub(super) const EMPTY: Self = Self {
        bytes: [0; KERNEL_LOG_BYTES],
        head: 0,
        len: 0,
        dropped: 0,
        reader: None,
        quotas: [Quota::EMPTY; MAX_PARTITIONS],
    };

    /// Empties the ring and names the reader (at boot).
    pub(super) fn set_reader(&mut self, reader: Option<(NotificationId, Badge)>) {
        *self = Self {
            reader,
            ..Self::EMPTY
        };
    }

    /// Appends `bytes` whole if the ring has room for them with `keep`
    /// bytes left free; says whether it did.
    fn append(&mut self, bytes: &[u8], keep: usize) -> bool {
        if self.len + bytes.len() + keep > KERNEL_LOG_BYTES {
            return false;
        }
        for &byte in bytes {
            let at = (self.head + self.len) % KERNEL_LOG_BYTES;
            if let Some(slot) = self.bytes.get_mut(at) {
                *slot = byte;
            }
            self.len += 1;
        }
        true
    }

    /// Counts a line of `partition` against its quota at tick `now`.
    fn admit(&mut self, partition: PartitionId, now: u64) -> Admission {
        let Some(quota) = self.quotas.get_mut(partition.index()) else {
            return Admission::Dropped;
        };
        let window = now / LOG_WINDOW_TICKS;
        if window != quota.window {
            quota.window = window;
            quota.lines = 0;
        }
        if quota.lines >= LOG_LINES_PER_WINDOW {
            quota.dropped = quota.dropped.saturating_add(1);
            return Admission::Dropped;
        }
        quota.lines += 1;
        Admission::Admitted {
            dropped: core::mem::take(&mut quota.dropped),
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

    /// Counts a finished line of `partition` against its log quota at tick
    /// `now` (the kernel's ticks since boot): whether it may go out, to the
    /// log or the UART, and how many of its lines to report dropped first.
    pub fn admit_log_line(&mut self, partition: PartitionId, now: u64) -> Admission {
        self.klog.admit(partition, now)
    }

    /// Appends the kernel's own message (one line, whole) to its log and
    /// signals the reader. It may use the whole ring; if even that is full
    /// it is dropped whole and its bytes counted for the reader. Returns the
    /// cores to kick (bit n: core n, which may include the caller's own) so
    /// the reader gets to run.
    pub fn append_kernel_log(&mut self, bytes: &[u8]) -> u8 {
        if !self.klog.append(bytes, 0) {
            self.klog.dropped = self.klog.dropped.saturating_add(bytes.len() as u64);
        }
        self.signal_log_reader()
    }

    /// Appends a line of `partition`'s (already admitted by
    /// [`KernelState::admit_log_line`]) to the log, whole, if the ring has
    /// room for it besides [`KERNEL_LOG_RESERVE`]; otherwise it counts as
    /// one of the partition's dropped lines. Returns the cores to kick.
    pub fn append_partition_log(&mut self, partition: PartitionId, bytes: &[u8]) -> u8 {
        if !self.klog.append(bytes, KERNEL_LOG_RESERVE) {
            if let Some(quota) = self.klog.quotas.get_mut(partition.index()) {
                quota.dropped = quota.dropped.saturating_add(1);
            }
            return 0;
        }
        self.signal_log_reader()
    }

    /// Appends the kernel's report that `partition` lost `dropped` lines
    /// (already taken from its count by [`KernelState::admit_log_line`]).
    /// It may use half of [`KERNEL_LOG_RESERVE`], never the rest: a report
    /// gets out even while floods keep the partitions' share full, but
    /// floods cannot crowd the kernel's other reports out with reports of
    /// themselves. If it does not fit, the count goes back to the
    /// partition, to be reported with a later line. Returns the cores to
    /// kick.
    pub fn append_drop_report(&mut self, partition: PartitionId, bytes: &[u8], dropped: u32) -> u8 {
        if !self.klog.append(bytes, KERNEL_LOG_RESERVE / 2) {
            if let Some(quota) = self.klog.quotas.get_mut(partition.index()) {
                quota.dropped = quota.dropped.saturating_add(dropped);
            }
            return 0;
        }
        self.signal_log_reader()
    }

    fn signal_log_reader(&mut self) -> u8 {
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

    use super::{
        Admission, KERNEL_LOG_BYTES, KERNEL_LOG_RESERVE, KernelLog, LOG_LINES_PER_WINDOW,
        LOG_WINDOW_TICKS,
    };
    use crate::cap::{NotificationId, PartitionId};
    use crate::state::{FaultPolicy, KernelState, PartitionSeed, Seed};
    use hv_image::Capability;
    use hv_image::Object;

    /// One partition: slot 0 reads the kernel log, slot 1 waits on
    /// notification 0, where the kernel signals bit 4 when it logs.
    fn system(with_reader: bool) -> Box<KernelState> {
        let caps = [
            Some(Capability::new(Object::KernelLog, Rights::READ)),
            Some(Capability::new(Object::Notification(0), Rights::READ)),
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
            fault_signals: &[],
            time: crate::state::TimeSeed::NONE,
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
    fn the_ring_keeps_order_and_takes_lines_whole() {
        let mut log = KernelLog::EMPTY;
        assert!(log.append(b"hello ", 0));
        assert!(log.append(b"world\n", 0));
        let mut out = [0u8; 8];
        assert_eq!(log.take(&mut out), (8, 0));
        assert_eq!(&out, b"hello wo");
        assert_eq!(log.take(&mut out), (4, 0));
        assert_eq!(&out[..4], b"rld\n");
        assert!(
            !log.append(&[b'x'; KERNEL_LOG_BYTES + 10], 0),
            "too long: not a byte of it"
        );
        assert_eq!(log.take(&mut out), (0, 0));
        assert!(
            log.append(&[b'x'; KERNEL_LOG_BYTES - 8], 8),
            "fits exactly with 8 kept"
        );
        assert!(!log.append(b"y", 8), "would eat into what is kept");
        assert!(log.append(b"12345678", 0));
        assert!(!log.append(b"z", 0));
        assert_eq!(log.take(&mut []), (0, 0));
    }

    /// A full ring drops the kernel's message whole and counts its bytes;
    /// a partition's line stops short of the reserve, and is counted as its
    /// drop, while the kernel's next message still fits.
    #[test]
    fn partitions_cannot_fill_the_kernels_reserve() {
        let mut state = system(true);
        let flooder = PartitionId(0);
        let line = [b'f'; 99];
        for _ in 0..KERNEL_LOG_BYTES {
            let _ = state.append_partition_log(flooder, &line);
        }
        let fitted = (KERNEL_LOG_BYTES - KERNEL_LOG_RESERVE) / line.len();
        assert_eq!(
            state.klog.len,
            fitted * line.len(),
            "only whole lines went in"
        );
        let report = b"bulkhead: fault: partition `x` stopped\n";
        for _ in 0..KERNEL_LOG_RESERVE / report.len() {
            let _ = state.append_kernel_log(report);
        }
        assert_eq!(state.klog.dropped, 0, "every report fitted in the reserve");
        let _ = state.append_kernel_log(&[b'k'; KERNEL_LOG_RESERVE]);
        assert_eq!(
            state.klog.dropped, KERNEL_LOG_RESERVE as u64,
            "dropped whole"
        );
        assert_eq!(
            state.admit_log_line(flooder, 0),
            Admission::Admitted {
                dropped: (KERNEL_LOG_BYTES - fitted) as u32
            },
            "the lines the ring refused are reported with the next"
        );
    }

    /// Reports of dropped lines get out while a flood keeps the partitions'
    /// share full, but use at most half the kernel's reserve; a report that
    /// does not fit gives its count back, and the kernel's own reports
    /// still fit in the other half.
    #[test]
    fn drop_reports_use_at_most_half_the_kernels_reserve() {
        let mut state = system(true);
        let flooder = PartitionId(0);
        let line = [b'f'; 99];
        for _ in 0..KERNEL_LOG_BYTES {
            let _ = state.append_partition_log(flooder, &line);
        }
        let full = state.klog.len;
        let report = [b'r'; 90];
        let fit = (KERNEL_LOG_BYTES - KERNEL_LOG_RESERVE / 2 - full) / report.len();
        assert!(fit > 0, "a report gets past a full partitions' share");
        for _ in 0..fit {
            let _ = state.append_drop_report(flooder, &report, 1);
        }
        assert_eq!(state.klog.len, full + fit * report.len());
        let Admission::Admitted { dropped } = state.admit_log_line(flooder, 0) else {
            panic!("the flooder's next line is admitted");
        };
        assert_eq!(state.append_drop_report(flooder, &report, dropped), 0);
        assert_eq!(
            state.klog.len,
            full + fit * report.len(),
            "half the reserve stays"
        );
        assert_eq!(
            state.admit_log_line(flooder, 0),
            Admission::Admitted { dropped },
            "the count comes back with the next line"
        );
        let _ = state.append_kernel_log(&[b'k'; KERNEL_LOG_RESERVE / 2 - 100]);
        assert_eq!(state.klog.dropped, 0, "the kernel's own report fits");
    }

    /// Each partition gets its quota per window, counts what it drops, and
    /// learns the count once, with its next admitted line; one partition's
    /// flood does not touch another's quota.
    #[test]
    fn each_partition_has_its_own_quota_per_window() {
        let mut state = system(true);
        let (flooder, quiet) = (PartitionId(0), PartitionId(1));
        for n in 0..LOG_LINES_PER_WINDOW {
            assert_eq!(
                state.admit_log_line(flooder, 5),
                Admission::Admitted { dropped: 0 },
                "line {n}"
            );
        }
        for _ in 0..1000 {
            assert_eq!(state.admit_log_line(flooder, 50), Admission::Dropped);
        }
        assert_eq!(
            state.admit_log_line(quiet, 99),
            Admission::Admitted { dropped: 0 }
        );
        assert_eq!(
            state.admit_log_line(flooder, LOG_WINDOW_TICKS),
            Admission::Admitted { dropped: 1000 },
            "a new window: the drops are reported with the first line"
        );
        assert_eq!(
            state.admit_log_line(flooder, LOG_WINDOW_TICKS + 1),
            Admission::Admitted { dropped: 0 }
        );
        assert_eq!(
            state.admit_log_line(PartitionId(u8::MAX), 0),
            Admission::Dropped,
            "no such partition"
        );
    }
}
