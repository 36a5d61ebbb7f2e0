// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Hypercalls: numbers, register convention, error codes, message layout.
//!
//! A partition calls the kernel with `svc #0` (a service at EL0) or `hvc #0`
//! (a virtual machine at EL1), following the Arm SMC Calling
//! Convention (SMCCC 1.4) for a fast SMC64 call in the vendor-specific
//! hypervisor range:
//!
//! | register | on entry | on return |
//! |---|---|---|
//! | x0 | function ID: [`FUNCTION_BASE`] + [`Hypercall`] number | [`Status`] (0 = success) |
//! | x1 | capability slot (calls that name one) | badge of the sender (receiving calls) |
//! | x2 | [`MessageInfo`] (calls that carry a message) | [`MessageInfo`] of the message received |
//! | x3..x7 | message words 0..4 | message words 0..4 received |
//!
//! x8 to x17 may be clobbered, as SMCCC allows; everything else is preserved.
//! The full specification, with every call's arguments and errors, is in
//! `docs/abi.md`; this module is its single source of numbers.

use core::fmt;

/// SMCCC function ID of hypercall 0: fast call, SMC64, owning entity 6
/// (vendor-specific hypervisor service).
pub const FUNCTION_BASE: u32 = 0xC600_0000;

/// The ABI's version: major in bits 31:16, minor in bits 15:0. A partition
/// built for a different major version must not run.
pub const ABI_VERSION: u32 = 2 << 16;

/// The function ID of a call that only kernels built for the bench answer
/// (hv-kernel's `lock-count` feature): x0 = `Success`, x1 = how many times
/// this core has taken a lock that other cores take too, since boot. Any
/// other kernel answers it as an unknown call. Not a [`Hypercall`]: no
/// partition but the bench's may rely on it.
pub const BENCH_SHARED_LOCKS: u32 = FUNCTION_BASE + 0xff00;

/// Message words carried in registers (x3 to x7).
pub const MESSAGE_WORDS: usize = 5;

/// Bytes one `Log` or `LogRead` hypercall carries: the message words' bytes.
pub const LOG_BYTES: usize = MESSAGE_WORDS * 8;

/// Every hypercall, by number. The function ID in x0 is
/// [`FUNCTION_BASE`] + the number.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Hypercall {
    /// Returns [`ABI_VERSION`] in x1. Does nothing else: the null hypercall.
    Version = 0,
    /// Gives up the rest of the time slice.
    Yield = 1,
    /// Sends a message on the endpoint in x1 and waits for the reply.
    Call = 2,
    /// Replies to the last caller, then waits on the endpoint in x1. The
    /// capability field of x2 (the reply carries none) names the empty slot
    /// a capability sent with the next message may land in.
    ReplyRecv = 3,
    /// Waits for a message on the endpoint in x1. The capability field of
    /// x2 names the empty slot a capability sent with it may land in.
    Recv = 4,
    /// Sends a message on the endpoint in x1, waiting until it is taken.
    Send = 5,
    /// Replies to the last caller without waiting for anything.
    Reply = 6,
    /// Sets the badge bits of the notification capability in x1.
    Signal = 7,
    /// Waits until the notification in x1 has bits set; returns and clears them.
    Wait = 8,
    /// Returns and clears the notification's bits without waiting.
    Poll = 9,
    /// Acknowledges the interrupt of the device capability in x1, so it can
    /// fire again.
    IrqAck = 10,
    /// Reports that the caller failed (a panic, say), with a reason code in
    /// x2 and words in x3..x7; the kernel applies the partition's fault policy.
    Fault = 11,
    /// Writes a copy of the capability in x1, with rights and badge from x2,
    /// into the empty slot in x3.
    Derive = 12,
    /// Deletes every capability derived from the one in x1.
    Revoke = 13,
    /// Empties the slot in x1.
    Delete = 14,
    /// Appends bytes to the kernel's log: x2 the count (at most 40), x3..x7 the
    /// bytes, little-endian. Only for partitions without a console channel.
    Log = 15,
    /// Takes up to 40 bytes from the kernel's log through the kernel-log
    /// capability in x1: x2 the count, x3..x7 the bytes, x1 the bytes the
    /// log had to drop since the last read (then zero). Never waits.
    LogRead = 16,
    /// Reports on the partition that the `Partition` capability in x1 names
    /// (READ): x1 its [`RunState`], x2 how many times it has faulted, x3 the
    /// reason of its last stop or restart, x4 how many times it has been
    /// restarted.
    PartitionStatus = 17,
    /// Stops the partition that the `Partition` capability in x1 names
    /// (CONTROL), as the `stop` fault policy would.
    PartitionStop = 18,
    /// Restarts the partition that the `Partition` capability in x1 names
    /// (CONTROL), running or stopped, as the `restart` fault policy would.
    PartitionRestart = 19,
    /// Keeps the reply the caller owes in the empty reply object that the
    /// capability in x1 names (WRITE), so it can receive again and answer
    /// later with `ReplySaved`.
    SaveReply = 20,
    /// Answers the caller kept in the reply object that the capability in x1
    /// names (WRITE) with the message in x2..x7, as `Reply` would; the object
    /// is empty again.
    ReplySaved = 21,
    /// Starts the virtual machine vCPU that the `Vcpu` capability in x1
    /// names (CONTROL), which must be off: at EL1 with its MMU off and
    /// interrupts masked, at the IPA in x2, with x0 = x3 and every other
    /// register zero (the arm64 boot protocol; PSCI `CPU_ON`).
    VcpuStart = 22,
    /// Turns the vCPU that the `Vcpu` capability in x1 names (CONTROL) off,
    /// wherever it is: an exit it sent its monitor is withdrawn, the
    /// interrupts pending for it are dropped. Only `VcpuStart` brings it back.
    VcpuStop = 23,
    /// Makes virtual interrupt x2 (bits 15:0: an INTID below
    /// [`crate::vm::VIRTUAL_INTIDS`]; bits 23:16: the sending vCPU of an SGI,
    /// for GICv2) pending for the vCPU that the `Vcpu` capability in x1
    /// names (WRITE), waking it if it waits for an interrupt.
    VcpuInject = 24,
    /// Reads register x2 ([`crate::vm::Register`]) of the vCPU that the
    /// `Vcpu` capability in x1 names (READ) into x1; the vCPU must be off
    /// or waiting for its monitor's answer to an exit.
    VcpuRead = 25,
    /// Writes x3 into register x2 ([`crate::vm::Register`]) of the vCPU
    /// that the `Vcpu` capability in x1 names (WRITE); the vCPU must be off
    /// or waiting for its monitor's answer to an exit.
    VcpuWrite = 26,
    /// x1 = the [`crate::vm::VcpuRunState`] of the vCPU that the `Vcpu`
    /// capability in x1 names (READ).
    VcpuStatus = 27,
}

impl Hypercall {
    /// Every hypercall, in number order.
    pub const ALL: [Self; 28] = [
        Self::Version,
        Self::Yield,
        Self::Call,
        Self::ReplyRecv,
        Self::Recv,
        Self::Send,
        Self::Reply,
        Self::Signal,
        Self::Wait,
        Self::Poll,
        Self::IrqAck,
        Self::Fault,
        Self::Derive,
        Self::Revoke,
        Self::Delete,
        Self::Log,
        Self::LogRead,
        Self::PartitionStatus,
        Self::PartitionStop,
        Self::PartitionRestart,
        Self::SaveReply,
        Self::ReplySaved,
        Self::VcpuStart,
        Self::VcpuStop,
        Self::VcpuInject,
        Self::VcpuRead,
        Self::VcpuWrite,
        Self::VcpuStatus,
    ];

    /// The SMCCC function ID that names this hypercall in x0.
    #[must_use]
    pub const fn function_id(self) -> u32 {
        FUNCTION_BASE + self as u32
    }
}

impl TryFrom<u64> for Hypercall {
    type Error = Status;

    /// Decodes x0. Written out by hand so that any value a partition passes is
    /// an ordinary error, never a panic; the upper 32 bits must be zero, as
    /// SMCCC requires.
    fn try_from(x0: u64) -> Result<Self, Status> {
        let number = x0
            .checked_sub(u64::from(FUNCTION_BASE))
            .ok_or(Status::NotSupported)?;
        match number {
            0 => Ok(Self::Version),
            1 => Ok(Self::Yield),
            2 => Ok(Self::Call),
            3 => Ok(Self::ReplyRecv),
            4 => Ok(Self::Recv),
            5 => Ok(Self::Send),
            6 => Ok(Self::Reply),
            7 => Ok(Self::Signal),
            8 => Ok(Self::Wait),
            9 => Ok(Self::Poll),
            10 => Ok(Self::IrqAck),
            11 => Ok(Self::Fault),
            12 => Ok(Self::Derive),
            13 => Ok(Self::Revoke),
            14 => Ok(Self::Delete),
            15 => Ok(Self::Log),
            16 => Ok(Self::LogRead),
            17 => Ok(Self::PartitionStatus),
            18 => Ok(Self::PartitionStop),
            19 => Ok(Self::PartitionRestart),
            20 => Ok(Self::SaveReply),
            21 => Ok(Self::ReplySaved),
            22 => Ok(Self::VcpuStart),
            23 => Ok(Self::VcpuStop),
            24 => Ok(Self::VcpuInject),
            25 => Ok(Self::VcpuRead),
            26 => Ok(Self::VcpuWrite),
            27 => Ok(Self::VcpuStatus),
            _ => Err(Status::NotSupported),
        }
    }
}

/// What a hypercall returns in x0. Negative values, as SMCCC's
/// `NOT_SUPPORTED` (-1) is.
#[repr(i64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// It worked.
    Success = 0,
    /// No such hypercall (SMCCC `NOT_SUPPORTED`).
    NotSupported = -1,
    /// The slot is out of range or empty.
    InvalidCapability = -2,
    /// The capability names the wrong kind of object for this call.
    WrongType = -3,
    /// The capability lacks a right this call needs.
    NoRights = -4,
    /// An argument is malformed (a bad message length, a slot in use...).
    InvalidArgument = -5,
    /// Nothing to receive, and the call does not wait.
    WouldBlock = -6,
    /// There is no caller to reply to.
    NoCaller = -7,
    /// The peer partition has stopped.
    PeerGone = -8,
    /// The manifest does not allow moving this capability.
    NotGrantable = -9,
    /// A transferred capability has nowhere to land: the receiver named no
    /// slot for one, or the slot it named is not empty. The message was not
    /// delivered.
    OutOfResources = -10,
    /// The partition is restarting (the kernel is reloading its memory):
    /// try again once it runs.
    Busy = -11,
}

impl Status {
    /// Every status, in code order from 0 down.
    pub const ALL: [Self; 12] = [
        Self::Success,
        Self::NotSupported,
        Self::InvalidCapability,
        Self::WrongType,
        Self::NoRights,
        Self::InvalidArgument,
        Self::WouldBlock,
        Self::NoCaller,
        Self::PeerGone,
        Self::NotGrantable,
        Self::OutOfResources,
        Self::Busy,
    ];

    /// The value in x0.
    #[must_use]
    pub const fn to_register(self) -> u64 {
        (self as i64).cast_unsigned()
    }

    /// Decodes x0; an unknown value is `None`.
    #[must_use]
    pub fn from_register(x0: u64) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.to_register() == x0)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Self::Success => "success",
            Self::NotSupported => "no such hypercall",
            Self::InvalidCapability => "no capability in that slot",
            Self::WrongType => "the capability names the wrong kind of object",
            Self::NoRights => "the capability lacks the right",
            Self::InvalidArgument => "malformed argument",
            Self::WouldBlock => "nothing to receive",
            Self::NoCaller => "no caller to reply to",
            Self::PeerGone => "the peer partition has stopped",
            Self::NotGrantable => "the manifest does not allow moving this capability",
            Self::OutOfResources => "the receiver named no empty slot for the capability",
            Self::Busy => "the partition is restarting",
        };
        f.write_str(text)
    }
}

/// Where a partition is in its life, as `PartitionStatus` returns it in x1.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RunState {
    /// Its vCPUs run (or wait, or are ready to).
    Running = 0,
    /// It is stopped: by a fault under the `stop` policy, by a partition
    /// that controls it, or for restarting too often. Only a `PartitionRestart`
    /// brings it back.
    Stopped = 1,
    /// The kernel is reloading it; it runs again once that is done.
    Restarting = 2,
}

impl RunState {
    /// Every state, in code order.
    pub const ALL: [Self; 3] = [Self::Running, Self::Stopped, Self::Restarting];

    /// The value in x1.
    #[must_use]
    pub const fn to_register(self) -> u64 {
        self as u64
    }

    /// Decodes x1; an unknown value is `None`.
    #[must_use]
    pub fn from_register(x1: u64) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.to_register() == x1)
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Running => "running",
            Self::Stopped => "stopped",
            Self::Restarting => "restarting",
        })
    }
}

/// The largest reason a partition may give its own `Fault` (x2): reasons
/// 0 to 0xff are the partition's, everything above is the kernel's. A
/// `Fault` with a larger reason is refused (`InvalidArgument`), so no
/// partition can pass for the kernel or for a controller in a report.
pub const REASON_OWN_MAX: u64 = 0xff;

/// The reason the kernel gives when it stops or restarts a partition for an
/// exception it caught (a stage-2 abort, an undefined instruction, an
/// SError).
pub const REASON_EXCEPTION: u64 = 0x100;

/// The reason the kernel gives for a stop or restart that a partition asked
/// for through a `Partition` capability (`PartitionStop`,
/// `PartitionRestart`): this plus the controller's partition index. It is
/// what the kernel's report of the stop shows and what `PartitionStatus`
/// returns as the last reason. No partition can give it to its own `Fault`
/// (see [`REASON_OWN_MAX`]).
pub const REASON_CONTROLLER: u64 = 0x200;

/// Why a partition was stopped or restarted: the three sources are
/// disjoint, so what a report or `PartitionStatus` says (the register form,
/// [`StopReason::to_register`]) always names who acted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StopReason {
    /// The partition's own `Fault`, with its reason (0 to
    /// [`REASON_OWN_MAX`]).
    Own(u8),
    /// An exception the kernel caught ([`REASON_EXCEPTION`]).
    Exception,
    /// A partition holding a `Partition` capability with CONTROL stopped or
    /// restarted it: that partition's index ([`REASON_CONTROLLER`] plus it).
    Controller(u8),
}

impl StopReason {
    /// The reason of a `Fault` call whose x2 is `x2`: only the partition's
    /// own range; `None` (the call is refused) for anything above.
    #[must_use]
    pub const fn own(x2: u64) -> Option<Self> {
        if x2 <= REASON_OWN_MAX {
            Some(Self::Own(x2 as u8))
        } else {
            None
        }
    }

    /// The register form, as `PartitionStatus` returns it in x3 and the
    /// kernel's reports print it.
    #[must_use]
    pub const fn to_register(self) -> u64 {
        match self {
            Self::Own(reason) => reason as u64,
            Self::Exception => REASON_EXCEPTION,
            Self::Controller(index) => REASON_CONTROLLER + index as u64,
        }
    }

    /// The reason whose register form is `x`, if it is one.
    #[must_use]
    pub const fn from_register(x: u64) -> Option<Self> {
        if x <= REASON_OWN_MAX {
            Some(Self::Own(x as u8))
        } else if x == REASON_EXCEPTION {
            Some(Self::Exception)
        } else if x & !0xff == REASON_CONTROLLER {
            Some(Self::Controller((x & 0xff) as u8))
        } else {
            None
        }
    }
}

/// The index of the controlling partition, if `reason` (a register form)
/// is [`REASON_CONTROLLER`] plus one.
#[must_use]
pub const fn controller_of(reason: u64) -> Option<u64> {
    match StopReason::from_register(reason) {
        Some(StopReason::Controller(index)) => Some(index as u64),
        _ => None,
    }
}

/// A capability slot: an index into the calling partition's capability table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CapSlot(pub u32);

/// A badge: a word the kernel delivers with every message sent through a
/// capability (in x1), so a server can tell its clients apart; for a
/// notification, the bits that `signal` sets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Badge(pub u64);

/// The message descriptor in x2.
///
/// Bits 2:0: the number of message words used (0 to [`MESSAGE_WORDS`]).
/// Bit 3: a capability is transferred. Bits 63:32: on send, the slot of the
/// capability to transfer; on receive, the slot it arrived in. A receiving
/// call (`Recv`, `ReplyRecv`) sets bit 3 and bits 63:32 to name the empty
/// slot a capability sent to it may land in (its receive slot, as seL4's);
/// without it, a message carrying a capability is refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct MessageInfo(pub u64);

impl MessageInfo {
    /// A message of `length` words and no capability.
    #[must_use]
    pub const fn words(length: usize) -> Self {
        Self(length as u64 & 0b111)
    }

    /// This message, also transferring the capability in `slot`.
    #[must_use]
    pub const fn with_capability(self, slot: CapSlot) -> Self {
        Self((self.0 & 0b111) | 1 << 3 | (slot.0 as u64) << 32)
    }

    /// The number of message words, if it is valid.
    #[must_use]
    pub const fn length(self) -> Option<usize> {
        let length = (self.0 & 0b111) as usize;
        if length <= MESSAGE_WORDS {
            Some(length)
        } else {
            None
        }
    }

    /// The capability slot transferred, if any.
    #[must_use]
    pub const fn capability(self) -> Option<CapSlot> {
        if self.0 & 1 << 3 != 0 {
            Some(CapSlot((self.0 >> 32) as u32))
        } else {
            None
        }
    }

    /// Whether bits the ABI does not define are clear.
    #[must_use]
    pub const fn is_well_formed(self) -> bool {
        self.0 & 0xffff_fff0 == 0 && self.length().is_some()
    }
}

/// Rights a capability carries. Deriving a capability can only remove rights.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Rights(pub u32);

impl Rights {
    /// No rights.
    pub const NONE: Self = Self(0);
    /// Read memory; receive on an endpoint; wait on a notification; see a
    /// partition's status.
    pub const READ: Self = Self(1 << 0);
    /// Write memory; send or call on an endpoint; signal a notification.
    pub const WRITE: Self = Self(1 << 1);
    /// Execute memory.
    pub const EXECUTE: Self = Self(1 << 2);
    /// Transfer capabilities through this endpoint.
    pub const GRANT: Self = Self(1 << 3);
    /// Derive copies of this capability.
    pub const DERIVE: Self = Self(1 << 4);
    /// Stop or restart a partition; start or stop a vCPU.
    pub const CONTROL: Self = Self(1 << 5);
    /// Every right defined.
    pub const ALL: Self = Self(0b11_1111);

    /// Whether every right in `other` is in `self`.
    #[must_use]
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// The rights in both.
    #[must_use]
    pub const fn intersection(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    /// The rights in either.
    #[must_use]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether only defined rights are set.
    #[must_use]
    pub const fn is_valid(self) -> bool {
        Self::ALL.contains(self)
    }
}

/// `Derive`'s x2: the rights in bits 31:0 and the badge in bits 63:32 (0
/// keeps the source's badge). `None` if the badge does not fit in 32 bits.
#[must_use]
pub fn derive_arguments(rights: Rights, badge: Badge) -> Option<u64> {
    let badge = u32::try_from(badge.0).ok()?;
    Some(u64::from(rights.0) | (u64::from(badge) << 32))
}

/// The rights and badge in `Derive`'s x2 (the inverse of
/// [`derive_arguments`]).
#[must_use]
pub const fn derive_fields(x2: u64) -> (Rights, Badge) {
    // Truncation is the layout: rights in the low half, badge in the high.
    (Rights(x2 as u32), Badge(x2 >> 32))
}

#[cfg(test)]
mod tests {
    use super::{
        CapSlot, FUNCTION_BASE, Hypercall, MessageInfo, REASON_CONTROLLER, Rights, RunState,
        Status, controller_of,
    };

    #[test]
    fn every_hypercall_round_trips_and_nothing_else_decodes() {
        for (number, call) in Hypercall::ALL.iter().enumerate() {
            assert_eq!(*call as usize, number);
            assert_eq!(
                Hypercall::try_from(u64::from(call.function_id())),
                Ok(*call)
            );
        }
        for bad in [
            0,
            1,
            u64::from(FUNCTION_BASE) - 1,
            u64::from(FUNCTION_BASE) + Hypercall::ALL.len() as u64,
            u64::MAX,
            1 << 40,
        ] {
            assert_eq!(
                Hypercall::try_from(bad),
                Err(Status::NotSupported),
                "{bad:#x}"
            );
        }
    }

    #[test]
    fn status_codes_round_trip() {
        for (i, status) in Status::ALL.iter().enumerate() {
            assert_eq!(*status as i64, -(i as i64));
            assert_eq!(Status::from_register(status.to_register()), Some(*status));
        }
        assert_eq!(Status::NotSupported.to_register(), u64::MAX);
        assert_eq!(Status::from_register(12345), None);
    }

    #[test]
    fn message_info_layout() {
        let info = MessageInfo::words(3).with_capability(CapSlot(7));
        assert_eq!(info.length(), Some(3));
        assert_eq!(info.capability(), Some(CapSlot(7)));
        assert!(info.is_well_formed());
        assert_eq!(MessageInfo(7).length(), None);
        assert!(!MessageInfo(1 << 4).is_well_formed());
        assert_eq!(MessageInfo::words(2).capability(), None);
    }

    #[test]
    fn rights_only_shrink_by_intersection() {
        let rw = Rights::READ.union(Rights::WRITE);
        assert!(rw.contains(Rights::READ) && !rw.contains(Rights::GRANT));
        assert_eq!(
            rw.intersection(Rights::WRITE.union(Rights::GRANT)),
            Rights::WRITE
        );
        assert!(!Rights(1 << 9).is_valid());
    }

    #[test]
    fn run_states_round_trip() {
        for (i, state) in RunState::ALL.iter().enumerate() {
            assert_eq!(state.to_register(), i as u64);
            assert_eq!(RunState::from_register(state.to_register()), Some(*state));
        }
        assert_eq!(RunState::from_register(3), None);
        assert_eq!(RunState::Restarting.to_string(), "restarting");
    }

    #[test]
    fn controller_reasons_name_the_controller() {
        assert_eq!(controller_of(REASON_CONTROLLER + 5), Some(5));
        assert_eq!(controller_of(REASON_CONTROLLER + 0xff), Some(0xff));
        assert_eq!(controller_of(0x100), None);
        assert_eq!(controller_of(0x300), None);
        assert_eq!(controller_of(1), None);
        assert_eq!(controller_of(u64::MAX), None);
    }

    #[test]
    fn a_partition_cannot_give_the_kernels_reasons() {
        use super::{REASON_EXCEPTION, REASON_OWN_MAX, StopReason};
        // Its own range round-trips; nothing above it is its to give.
        for x2 in 0..=REASON_OWN_MAX {
            let reason = StopReason::own(x2).unwrap();
            assert_eq!(reason.to_register(), x2);
            assert_eq!(StopReason::from_register(x2), Some(reason));
        }
        for x2 in [
            REASON_OWN_MAX + 1,
            REASON_EXCEPTION,
            REASON_CONTROLLER,
            REASON_CONTROLLER + 2,
            0x1_0000_0202,
            u64::MAX,
        ] {
            assert_eq!(StopReason::own(x2), None, "{x2:#x}");
        }
        // The kernel's reasons are disjoint from every reason a partition
        // can give, and round-trip.
        let kernels = core::iter::once(StopReason::Exception)
            .chain((0..=u8::MAX).map(StopReason::Controller));
        for reason in kernels {
            let x = reason.to_register();
            assert!(x > REASON_OWN_MAX);
            assert_eq!(StopReason::from_register(x), Some(reason));
        }
        assert_eq!(StopReason::from_register(0x101), None);
        assert_eq!(StopReason::from_register(0x300), None);
    }

    #[test]
    fn derive_arguments_round_trip_and_refuse_wide_badges() {
        use super::{Badge, derive_arguments, derive_fields};
        for (rights, badge) in [(0b11, 0), (0b1_0010, 0x77), (0x3f, u64::from(u32::MAX))] {
            let x2 = derive_arguments(Rights(rights), Badge(badge)).unwrap();
            assert_eq!(derive_fields(x2), (Rights(rights), Badge(badge)));
        }
        assert_eq!(derive_arguments(Rights::READ, Badge(1 << 32)), None);
    }
}
