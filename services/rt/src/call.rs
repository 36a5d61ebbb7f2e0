// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Typed hypercalls: one safe function per call, over one `svc` primitive.
//!
//! The register convention is `hv_abi::hypercall`'s: x0 the function ID, x1
//! the capability slot, x2 the [`MessageInfo`], x3..x7 the message words; on
//! return x0 the [`Status`], x1 the badge, x2 and x3..x7 the message
//! received. Services run at EL0, so they enter the kernel with `svc #0`
//! (virtual machines at EL1 use `hvc #0`; the kernel treats both alike).

use core::arch::asm;

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::{CNTFRQ_EL0, CNTVCT_EL0, Readable};

use hv_abi::hypercall::{
    ABI_VERSION, Badge, CapSlot, Hypercall, MESSAGE_WORDS, MessageInfo, RunState, Status,
};

/// A message: its descriptor and up to five words.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// Length and capability transfer.
    pub info: MessageInfo,
    /// The words; only the first `info.length()` count.
    pub words: [u64; MESSAGE_WORDS],
}

impl Message {
    /// A message of the given words (at most five; more are dropped).
    #[must_use]
    pub fn new(words: &[u64]) -> Self {
        let mut message = Self {
            info: MessageInfo::words(words.len().min(MESSAGE_WORDS)),
            words: [0; MESSAGE_WORDS],
        };
        for (slot, word) in message.words.iter_mut().zip(words) {
            *slot = *word;
        }
        message
    }

    /// The words actually sent.
    #[must_use]
    pub fn payload(&self) -> &[u64] {
        &self.words[..self.info.length().unwrap_or(0)]
    }
}

/// A message received, and the badge of the capability it came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// Which client sent it (the badge the manifest gave its capability).
    pub badge: Badge,
    /// What it sent.
    pub message: Message,
}

/// The one primitive: x0..x7 in, x0..x7 out. Services use the typed calls;
/// this is public for tests that hand the kernel arbitrary registers (any
/// value is safe to pass: the kernel answers bad ones with an error).
pub fn raw(mut regs: [u64; 8]) -> [u64; 8] {
    // SAFETY: `svc #0` enters the kernel, which reads and writes only x0..x7
    // of this partition (and may clobber x8..x17, as SMCCC allows and the
    // clobbers say). It never touches this partition's memory.
    unsafe {
        asm!("svc #0",
            inout("x0") regs[0], inout("x1") regs[1], inout("x2") regs[2], inout("x3") regs[3],
            inout("x4") regs[4], inout("x5") regs[5], inout("x6") regs[6], inout("x7") regs[7],
            out("x8") _, out("x9") _, out("x10") _, out("x11") _, out("x12") _, out("x13") _,
            out("x14") _, out("x15") _, out("x16") _, out("x17") _,
            options(nostack));
    }
    regs
}

fn invoke(call: Hypercall, slot: u64, message: &Message) -> [u64; 8] {
    let w = message.words;
    raw([
        u64::from(call.function_id()),
        slot,
        message.info.0,
        w[0],
        w[1],
        w[2],
        w[3],
        w[4],
    ])
}

fn status(regs: &[u64; 8]) -> Result<(), Status> {
    match Status::from_register(regs[0]) {
        Some(Status::Success) => Ok(()),
        Some(other) => Err(other),
        None => Err(Status::NotSupported),
    }
}

fn received(regs: &[u64; 8]) -> Received {
    Received {
        badge: Badge(regs[1]),
        message: Message {
            info: MessageInfo(regs[2]),
            words: [regs[3], regs[4], regs[5], regs[6], regs[7]],
        },
    }
}

/// Reads CNTVCT_EL0, the virtual counter, which the kernel keeps equal to
/// the physical one (EL0 may read it: CNTKCTL_EL1.EL0VCTEN), after the
/// instructions before it.
pub(crate) fn counter() -> u64 {
    barrier::isb(barrier::SY);
    CNTVCT_EL0.get()
}

/// Reads CNTFRQ_EL0, the counter's frequency in Hz.
pub(crate) fn counter_frequency() -> u64 {
    CNTFRQ_EL0.get()
}

/// The kernel's ABI version: the null hypercall.
pub fn version() -> u32 {
    raw([
        u64::from(Hypercall::Version.function_id()),
        0,
        0,
        0,
        0,
        0,
        0,
        0,
    ])[1] as u32
}

/// Whether the kernel speaks this runtime's ABI major version.
pub fn abi_compatible() -> bool {
    version() >> 16 == ABI_VERSION >> 16
}

/// Gives up the rest of the time slice.
pub fn yield_now() {
    let _ = invoke(Hypercall::Yield, 0, &Message::default());
}

/// Sends `message` on the endpoint in `endpoint` and waits for the reply.
pub fn call(endpoint: CapSlot, message: &Message) -> Result<Message, Status> {
    let regs = invoke(Hypercall::Call, u64::from(endpoint.0), message);
    status(&regs).map(|()| received(&regs).message)
}

/// Sends `message` on `endpoint`, waiting until a receiver takes it.
pub fn send(endpoint: CapSlot, message: &Message) -> Result<(), Status> {
    status(&invoke(Hypercall::Send, u64::from(endpoint.0), message))
}

/// Waits for a message on `endpoint`, accepting no capability: a client
/// that sends one is refused (`OutOfResources`) and its message is not
/// delivered. To receive a capability, see [`recv_accepting`].
pub fn recv(endpoint: CapSlot) -> Result<Received, Status> {
    let regs = invoke(Hypercall::Recv, u64::from(endpoint.0), &Message::default());
    status(&regs).map(|()| received(&regs))
}

/// Waits for a message on `endpoint`; a capability sent with it may land in
/// `into`, which must be empty (else `InvalidArgument`), and nowhere else.
/// If one came, the message info says so (`info.capability()` is
/// `Some(into)`). The kernel picks no slot itself: this partition's slot
/// numbers mean what it made them mean.
pub fn recv_accepting(endpoint: CapSlot, into: CapSlot) -> Result<Received, Status> {
    let mut accept = Message::default();
    accept.info = accept.info.with_capability(into);
    let regs = invoke(Hypercall::Recv, u64::from(endpoint.0), &accept);
    status(&regs).map(|()| received(&regs))
}

/// Replies to the last caller.
pub fn reply(message: &Message) -> Result<(), Status> {
    status(&invoke(Hypercall::Reply, 0, message))
}

/// Replies to the last caller with `message` (which carries no capability),
/// then waits on `endpoint`, accepting no capability (see [`recv`]).
pub fn reply_recv(endpoint: CapSlot, message: &Message) -> Result<Received, Status> {
    let regs = invoke(Hypercall::ReplyRecv, u64::from(endpoint.0), message);
    status(&regs).map(|()| received(&regs))
}

/// Replies to the last caller with `message`, then waits on `endpoint`; a
/// capability sent with the next message may land in the empty slot `into`
/// (see [`recv_accepting`]). `message` must carry no capability of its own
/// (the field names `into`).
pub fn reply_recv_accepting(
    endpoint: CapSlot,
    message: &Message,
    into: CapSlot,
) -> Result<Received, Status> {
    let mut reply = *message;
    reply.info = MessageInfo::words(message.info.length().unwrap_or(0)).with_capability(into);
    let regs = invoke(Hypercall::ReplyRecv, u64::from(endpoint.0), &reply);
    status(&regs).map(|()| received(&regs))
}

/// Keeps the reply owed to the last caller in the empty reply object that
/// `reply` names (a `reply-N` capability), so that this partition can take
/// other calls and answer that caller later with [`reply_saved`].
pub fn save_reply(reply: CapSlot) -> Result<(), Status> {
    status(&invoke(
        Hypercall::SaveReply,
        u64::from(reply.0),
        &Message::default(),
    ))
}

/// Answers the caller kept in the reply object `reply` with `message`; the
/// object is empty again.
pub fn reply_saved(reply: CapSlot, message: &Message) -> Result<(), Status> {
    status(&invoke(Hypercall::ReplySaved, u64::from(reply.0), message))
}

/// Sets the notification's bits (the capability's badge).
pub fn signal(notification: CapSlot) -> Result<(), Status> {
    status(&invoke(
        Hypercall::Signal,
        u64::from(notification.0),
        &Message::default(),
    ))
}

/// Waits until the notification has bits set; returns and clears them.
pub fn wait(notification: CapSlot) -> Result<u64, Status> {
    let regs = invoke(
        Hypercall::Wait,
        u64::from(notification.0),
        &Message::default(),
    );
    status(&regs).map(|()| regs[1])
}

/// Returns and clears the notification's bits without waiting.
pub fn poll(notification: CapSlot) -> Result<u64, Status> {
    let regs = invoke(
        Hypercall::Poll,
        u64::from(notification.0),
        &Message::default(),
    );
    status(&regs).map(|()| regs[1])
}

/// Acknowledges the interrupt behind `capability`, so it can fire again.
pub fn irq_ack(capability: CapSlot) -> Result<(), Status> {
    status(&invoke(
        Hypercall::IrqAck,
        u64::from(capability.0),
        &Message::default(),
    ))
}

/// The most bytes one `Log` hypercall carries.
pub const LOG_CHUNK: usize = hv_abi::hypercall::LOG_BYTES;

/// Appends `bytes` to the kernel's log, in chunks of [`LOG_CHUNK`].
pub fn log(bytes: &[u8]) {
    for chunk in bytes.chunks(LOG_CHUNK) {
        let mut words = [0u64; MESSAGE_WORDS];
        for (i, byte) in chunk.iter().enumerate() {
            words[i / 8] |= u64::from(*byte) << ((i % 8) * 8);
        }
        let message = Message {
            info: MessageInfo(chunk.len() as u64),
            words,
        };
        let _ = invoke(Hypercall::Log, 0, &message);
    }
}

/// Bytes taken from the kernel's log by [`log_read`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelLogBytes {
    /// The bytes: only the first `len` count.
    pub bytes: [u8; LOG_CHUNK],
    /// How many bytes were taken.
    pub len: usize,
    /// Bytes the kernel's log had to drop since the last read.
    pub dropped: u64,
}

/// Takes up to [`LOG_CHUNK`] bytes of the kernel's log through the
/// kernel-log capability in `log` (the manifest's `[system] kernel-log`
/// gives it to one partition). Never waits: an empty log gives `len` 0.
pub fn log_read(log: CapSlot) -> Result<KernelLogBytes, Status> {
    let regs = invoke(Hypercall::LogRead, u64::from(log.0), &Message::default());
    status(&regs)?;
    let mut out = KernelLogBytes {
        bytes: [0; LOG_CHUNK],
        len: (regs[2] as usize).min(LOG_CHUNK),
        dropped: regs[1],
    };
    for (chunk, word) in out.bytes.chunks_mut(8).zip(&regs[3..]) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    Ok(out)
}

/// Reports that this partition failed, with `reason` and up to five words of
/// detail. The kernel applies the partition's fault policy; this never returns.
/// A partition's reasons are 0 to 0xff (`REASON_OWN_MAX`): larger ones are
/// the kernel's, and a `Fault` giving one is refused.
pub fn fault(reason: u8, detail: &[u64]) -> ! {
    let mut message = Message::new(detail);
    message.info = MessageInfo(u64::from(reason));
    loop {
        let _ = invoke(Hypercall::Fault, 0, &message);
    }
}

/// Writes a copy of the capability in `source`, with `rights` (a subset of
/// its own) and `badge` (0 keeps the source's; a new one fits in 32 bits,
/// else `InvalidArgument`), into the empty slot `target`.
pub fn derive(
    source: CapSlot,
    rights: hv_abi::hypercall::Rights,
    badge: Badge,
    target: CapSlot,
) -> Result<(), Status> {
    let message = Message {
        info: MessageInfo(
            hv_abi::hypercall::derive_arguments(rights, badge).ok_or(Status::InvalidArgument)?,
        ),
        words: [u64::from(target.0), 0, 0, 0, 0],
    };
    status(&invoke(Hypercall::Derive, u64::from(source.0), &message))
}

/// Deletes every capability derived from the one in `slot`.
pub fn revoke(slot: CapSlot) -> Result<(), Status> {
    status(&invoke(
        Hypercall::Revoke,
        u64::from(slot.0),
        &Message::default(),
    ))
}

/// Empties `slot`.
pub fn delete(slot: CapSlot) -> Result<(), Status> {
    status(&invoke(
        Hypercall::Delete,
        u64::from(slot.0),
        &Message::default(),
    ))
}

/// What [`partition_status`] reports about a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionStatus {
    /// Running, stopped or restarting.
    pub state: RunState,
    /// How many times it has faulted (an exception, or its own `Fault`).
    pub faults: u64,
    /// The reason of its last stop or restart, 0 before any, in register
    /// form ([`hv_abi::hypercall::StopReason::from_register`] decodes it):
    /// its own fault's (0 to 0xff; 1 for a panic under this runtime),
    /// [`hv_abi::hypercall::REASON_EXCEPTION`], or
    /// [`hv_abi::hypercall::REASON_CONTROLLER`] plus the index of the
    /// partition that stopped or restarted it.
    pub last_reason: u64,
    /// How many times it has been restarted (by its fault policy or by a
    /// partition that controls it).
    pub restarts: u64,
}

/// The status of the partition that the capability in `partition` names
/// (the manifest's `controls` gives one, named after that partition, with
/// the read right this needs).
pub fn partition_status(partition: CapSlot) -> Result<PartitionStatus, Status> {
    let regs = invoke(
        Hypercall::PartitionStatus,
        u64::from(partition.0),
        &Message::default(),
    );
    status(&regs)?;
    Ok(PartitionStatus {
        state: RunState::from_register(regs[1]).ok_or(Status::NotSupported)?,
        faults: regs[2],
        last_reason: regs[3],
        restarts: regs[4],
    })
}

/// Stops the partition that the capability in `partition` names, as the
/// `stop` fault policy would (it needs the control right). Stopping a
/// stopped partition does nothing; one that is restarting gives
/// [`Status::Busy`]. Naming this partition itself, it does not return.
pub fn partition_stop(partition: CapSlot) -> Result<(), Status> {
    status(&invoke(
        Hypercall::PartitionStop,
        u64::from(partition.0),
        &Message::default(),
    ))
}

/// Restarts the partition that the capability in `partition` names, running
/// or stopped, as the `restart` fault policy would: fresh capabilities, its
/// memory reloaded, its vCPUs started at its entry (it needs the control
/// right). One that is already restarting gives [`Status::Busy`]. Naming this
/// partition itself, it does not return.
pub fn partition_restart(partition: CapSlot) -> Result<(), Status> {
    status(&invoke(
        Hypercall::PartitionRestart,
        u64::from(partition.0),
        &Message::default(),
    ))
}

/// Starts the guest vCPU that the `Vcpu` capability in `vcpu` names (it
/// must be off): at EL1 with its MMU off, at `entry` (an IPA of the guest),
/// with x0 = `argument` (the arm64 boot protocol's device tree address, or
/// PSCI `CPU_ON`'s context ID).
pub fn vcpu_start(vcpu: CapSlot, entry: u64, argument: u64) -> Result<(), Status> {
    status(&raw([
        u64::from(Hypercall::VcpuStart.function_id()),
        u64::from(vcpu.0),
        entry,
        argument,
        0,
        0,
        0,
        0,
    ]))
}

/// Turns the guest vCPU that the capability in `vcpu` names off.
pub fn vcpu_stop(vcpu: CapSlot) -> Result<(), Status> {
    status(&invoke(
        Hypercall::VcpuStop,
        u64::from(vcpu.0),
        &Message::default(),
    ))
}

/// Makes virtual interrupt `intid` pending for the guest vCPU that the
/// capability in `vcpu` names (`source`: the guest vCPU that sent it, for a
/// GICv2 SGI).
pub fn vcpu_inject(vcpu: CapSlot, intid: u32, source: u8) -> Result<(), Status> {
    status(&raw([
        u64::from(Hypercall::VcpuInject.function_id()),
        u64::from(vcpu.0),
        u64::from(intid) | (u64::from(source) << 16),
        0,
        0,
        0,
        0,
        0,
    ]))
}

/// Where the guest vCPU that the capability in `vcpu` names is.
pub fn vcpu_status(vcpu: CapSlot) -> Result<hv_abi::vm::VcpuRunState, Status> {
    let regs = invoke(
        Hypercall::VcpuStatus,
        u64::from(vcpu.0),
        &Message::default(),
    );
    status(&regs)?;
    hv_abi::vm::VcpuRunState::from_register(regs[1]).ok_or(Status::NotSupported)
}

/// Reads `register` of the guest vCPU that the capability in `vcpu` names
/// (off, or waiting for this monitor's answer to an exit).
pub fn vcpu_read(vcpu: CapSlot, register: hv_abi::vm::Register) -> Result<u64, Status> {
    let regs = raw([
        u64::from(Hypercall::VcpuRead.function_id()),
        u64::from(vcpu.0),
        register.to_register(),
        0,
        0,
        0,
        0,
        0,
    ]);
    status(&regs)?;
    Ok(regs[1])
}

/// Writes `value` into `register` of the guest vCPU that the capability in
/// `vcpu` names (off, or waiting for this monitor's answer to an exit).
pub fn vcpu_write(vcpu: CapSlot, register: hv_abi::vm::Register, value: u64) -> Result<(), Status> {
    status(&raw([
        u64::from(Hypercall::VcpuWrite.function_id()),
        u64::from(vcpu.0),
        register.to_register(),
        value,
        0,
        0,
        0,
        0,
    ]))
}
