// SPDX-License-Identifier: Apache-2.0 OR MIT
//! Decoding a [`BootManifest`] and every consistency rule the kernel
//! re-checks at boot.
//!
//! The compiler checks far more (names that resolve, memory that fits the
//! platform, channels with both ends); what is here is what the kernel needs
//! to be true before it builds anything from the tables: every number in
//! range, every size page-aligned and free of overflow, each partition's
//! address space free of overlaps, each device and interrupt owned once, and
//! capabilities carrying only rights their object gives meaning to. The
//! errors are in `error.rs`.

use hv_abi::hypercall::Rights;

use crate::error::{Item, ManifestError, MappingProblem, SPI_FIRST, SPI_LAST, VmProblem};
use crate::manifest::{
    BootManifest, IPA_LIMIT, MAX_ENDPOINTS, MAX_NOTIFICATIONS, MAX_PROGRAMS, MAX_VCPUS,
    MappingKind, Name, Object, PAGE_SIZE, PartitionKind, PartitionSpec, VmSpec,
};

/// Whether `name` is a valid name: a lowercase ASCII letter, then lowercase
/// letters, digits and `-`. (Length is bounded by [`Name`]'s capacity.)
#[must_use]
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The rights that mean something for an object.
const fn meaningful_rights(object: Object) -> Rights {
    let bits = match object {
        Object::Endpoint(_) => {
            Rights::READ.0 | Rights::WRITE.0 | Rights::GRANT.0 | Rights::DERIVE.0
        }
        Object::Notification(_) => Rights::READ.0 | Rights::WRITE.0 | Rights::DERIVE.0,
        Object::Memory(_) => {
            Rights::READ.0 | Rights::WRITE.0 | Rights::EXECUTE.0 | Rights::DERIVE.0
        }
        Object::Device(_) => Rights::READ.0 | Rights::WRITE.0 | Rights::DERIVE.0,
        Object::Irq(_) => Rights::WRITE.0 | Rights::DERIVE.0,
        Object::Partition(_) => Rights::READ.0 | Rights::CONTROL.0 | Rights::DERIVE.0,
        Object::KernelLog => Rights::READ.0,
        Object::Reply(_) => Rights::WRITE.0,
        Object::Vcpu { .. } => {
            Rights::READ.0 | Rights::WRITE.0 | Rights::CONTROL.0 | Rights::DERIVE.0
        }
    };
    Rights(bits)
}

/// Whether `rights` is non-empty and within `allowed`.
const fn rights_within(rights: Rights, allowed: Rights) -> bool {
    rights.0 != 0 && allowed.contains(rights)
}

/// Whether `[base, base + size)` is non-empty, page-aligned and ends at or
/// before `limit`. Never overflows.
fn is_page_range(base: u64, size: u64, limit: u64) -> bool {
    size != 0
        && base.is_multiple_of(PAGE_SIZE)
        && size.is_multiple_of(PAGE_SIZE)
        && base.checked_add(size).is_some_and(|end| end <= limit)
}

/// Whether two ranges already known not to overflow overlap.
const fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 < b.0 + b.1 && b.0 < a.0 + a.1
}

/// Converts a table index to the `u16` errors carry. Tables hold at most a
/// few dozen entries, so this never saturates in practice.
pub(crate) fn index(i: usize) -> u16 {
    u16::try_from(i).unwrap_or(u16::MAX)
}

/// Checks that `names` are valid and unique, naming items with `item`.
fn check_names<'a>(
    names: impl Iterator<Item = &'a Name> + Clone,
    item: fn(u16) -> Item,
) -> Result<(), ManifestError> {
    for (i, name) in names.clone().enumerate() {
        if !is_valid_name(name) {
            return Err(ManifestError::BadName(item(index(i))));
        }
        if let Some(first) = names.clone().take(i).position(|other| other == name) {
            return Err(ManifestError::DuplicateName {
                item: item(index(i)),
                first: index(first),
            });
        }
    }
    Ok(())
}

impl BootManifest {
    /// Decodes a postcard blob and validates it: the only way the kernel
    /// should obtain a manifest.
    ///
    /// # Errors
    ///
    /// [`ManifestError::Malformed`] or [`ManifestError::TrailingBytes`] if the
    /// blob is not exactly one encoded manifest within the limits, or the
    /// first rule of [`Self::validate`] it breaks.
    pub fn decode(blob: &[u8]) -> Result<Self, ManifestError> {
        let (manifest, rest): (Self, _) =
            postcard::take_from_bytes(blob).map_err(|_| ManifestError::Malformed)?;
        if !rest.is_empty() {
            return Err(ManifestError::TrailingBytes);
        }
        manifest.validate()?;
        Ok(manifest)
    }

    /// Checks every rule the kernel relies on (see the module docs).
    ///
    /// # Errors
    ///
    /// The first rule broken, with where.
    pub fn validate(&self) -> Result<(), ManifestError> {
        if !is_valid_name(&self.system) {
            return Err(ManifestError::BadName(Item::System));
        }
        if !is_valid_name(&self.platform) {
            return Err(ManifestError::BadName(Item::Platform));
        }
        check_names(self.partitions.iter().map(|p| &p.name), Item::Partition)?;
        check_names(
            self.shared_regions.iter().map(|r| &r.name),
            Item::SharedRegion,
        )?;
        check_names(self.devices.iter().map(|d| &d.name), Item::Device)?;
        check_names(self.files.iter().map(|f| &f.name), Item::File)?;
        if let Some(file) = self.files.iter().position(|f| f.size == 0) {
            return Err(ManifestError::BadFileSize { file: index(file) });
        }
        if usize::from(self.endpoint_count) > MAX_ENDPOINTS {
            return Err(ManifestError::TooManyEndpoints);
        }
        if usize::from(self.notification_count) > MAX_NOTIFICATIONS {
            return Err(ManifestError::TooManyNotifications);
        }
        self.validate_regions_and_devices()?;
        self.validate_replies()?;
        // Virtual machines first: their monitors' mappings and capabilities
        // are checked against them.
        for (i, partition) in self.partitions.iter().enumerate() {
            if let Some(vm) = partition.vm() {
                self.validate_vm(index(i), vm)?;
            }
        }
        for (i, partition) in self.partitions.iter().enumerate() {
            self.validate_partition(index(i), partition)?;
        }
        self.validate_irqs()?;
        self.validate_passthrough()?;
        self.validate_kernel_log()?;
        if let Some(schedule) = &self.schedule {
            schedule
                .validate(&self.partitions)
                .map_err(ManifestError::Schedule)?;
        }
        crate::schedule::validate_budgets(&self.budgets, &self.partitions)
            .map_err(|(budget, problem)| ManifestError::Budget { budget, problem })?;
        self.validate_fault_signals()
    }

    /// Fault signals: each names a partition, a controller that holds
    /// CONTROL over it and READ on the notification, and non-zero bits that
    /// nothing else sets on that notification (no capability that signals
    /// it, no interrupt, the kernel log, another fault signal of another
    /// partition or controller) and that the controller's signals of one
    /// partition name once.
    fn validate_fault_signals(&self) -> Result<(), ManifestError> {
        for (i, signal) in self.fault_signals.iter().enumerate() {
            let bad = Err(ManifestError::BadFaultSignal { signal: index(i) });
            let Some(controller) = self.partitions.get(usize::from(signal.controller)) else {
                return bad;
            };
            let holds = |object: Object, right: Rights| {
                controller
                    .caps
                    .iter()
                    .any(|c| c.object == object && c.rights.contains(right))
            };
            let notification = Object::Notification(signal.notification);
            let sound = usize::from(signal.partition) < self.partitions.len()
                && signal.partition != signal.controller
                && signal.notification < self.notification_count
                && signal.badge.0 != 0
                && holds(Object::Partition(signal.partition), Rights::CONTROL)
                && holds(notification, Rights::READ);
            let overlaps =
                |n: u16, badge: u64| n == signal.notification && badge & signal.badge.0 != 0;
            let shared = self.partitions.iter().any(|p| {
                p.caps.iter().any(|c| {
                    c.object == notification
                        && c.rights.contains(Rights::WRITE)
                        && c.badge.0 & signal.badge.0 != 0
                })
            }) || self
                .irqs
                .iter()
                .any(|irq| overlaps(irq.notification, irq.badge.0))
                || self
                    .kernel_log
                    .is_some_and(|log| overlaps(log.notification, log.badge.0))
                || self.fault_signals.iter().take(i).any(|o| {
                    overlaps(o.notification, o.badge.0)
                        || (o.partition, o.controller) == (signal.partition, signal.controller)
                });
            if !sound || shared {
                return bad;
            }
        }
        Ok(())
    }

    /// Passed-through interrupts: SPIs a guest can be given, bound once (in
    /// either list), each of a device a virtual machine owns.
    fn validate_passthrough(&self) -> Result<(), ManifestError> {
        for (i, irq) in self.passthrough.iter().enumerate() {
            let bad = ManifestError::BadPassthrough { irq: index(i) };
            if !(SPI_FIRST..hv_abi::vm::VIRTUAL_INTIDS).contains(&irq.intid)
                || irq.intid == hv_abi::vm::GUEST_UART_INTID
                || self.irqs.iter().any(|o| o.intid == irq.intid)
                || self
                    .passthrough
                    .iter()
                    .take(i)
                    .any(|o| o.intid == irq.intid)
            {
                return Err(bad);
            }
            let owner = self
                .devices
                .get(usize::from(irq.device))
                .and_then(|d| self.partitions.get(usize::from(d.owner)));
            if owner.is_none_or(|o| o.vm().is_none()) {
                return Err(bad);
            }
        }
        Ok(())
    }

    /// Every reply object's owner exists.
    fn validate_replies(&self) -> Result<(), ManifestError> {
        match self
            .replies
            .iter()
            .position(|&owner| usize::from(owner) >= self.partitions.len())
        {
            Some(reply) => Err(ManifestError::BadReplyOwner {
                reply: index(reply),
            }),
            None => Ok(()),
        }
    }

    /// The kernel log's reader exists, its notification exists, and its bits
    /// are not zero.
    fn validate_kernel_log(&self) -> Result<(), ManifestError> {
        let Some(log) = self.kernel_log else {
            return Ok(());
        };
        let sound = usize::from(log.partition) < self.partitions.len()
            && log.notification < self.notification_count
            && log.badge.0 != 0;
        if sound {
            Ok(())
        } else {
            Err(ManifestError::BadKernelLog)
        }
    }

    /// Shared regions' sizes; devices' ranges and owners.
    fn validate_regions_and_devices(&self) -> Result<(), ManifestError> {
        for (i, region) in self.shared_regions.iter().enumerate() {
            if region.size == 0 || !region.size.is_multiple_of(PAGE_SIZE) {
                return Err(ManifestError::BadRegionSize { region: index(i) });
            }
        }
        for (i, device) in self.devices.iter().enumerate() {
            let device_index = index(i);
            if !is_page_range(device.pa, device.size, u64::MAX) {
                return Err(ManifestError::BadDevice {
                    device: device_index,
                });
            }
            if usize::from(device.owner) >= self.partitions.len() {
                return Err(ManifestError::BadDeviceOwner {
                    device: device_index,
                });
            }
            let mut earlier = self.devices.iter().take(i);
            if let Some(other) =
                earlier.position(|o| overlaps((o.pa, o.size), (device.pa, device.size)))
            {
                return Err(ManifestError::DeviceOverlap {
                    device: device_index,
                    other: index(other),
                });
            }
        }
        Ok(())
    }

    /// One partition: its scalars, its address space, its capabilities.
    fn validate_partition(&self, p: u16, partition: &PartitionSpec) -> Result<(), ManifestError> {
        match &partition.kind {
            PartitionKind::Service { program } => {
                if usize::from(*program) >= MAX_PROGRAMS {
                    return Err(ManifestError::MissingProgram { partition: p });
                }
            }
            // Checked before any partition (`validate`).
            PartitionKind::Vm(_) => {}
        }
        if partition.memory_size == 0 || !partition.memory_size.is_multiple_of(PAGE_SIZE) {
            return Err(ManifestError::BadMemorySize { partition: p });
        }
        if let Some(base) = partition.memory_base {
            if !is_page_range(base, partition.memory_size, u64::MAX) {
                return Err(ManifestError::BadMemoryBase { partition: p });
            }
            let mut earlier = self.partitions.iter().take(usize::from(p));
            if let Some(other) = earlier.position(|o| {
                o.memory_base.is_some_and(|other_base| {
                    overlaps((other_base, o.memory_size), (base, partition.memory_size))
                })
            }) {
                return Err(ManifestError::MemoryOverlap {
                    partition: p,
                    other: index(other),
                });
            }
        }
        if !is_page_range(partition.ram_ipa, partition.memory_size, IPA_LIMIT) {
            return Err(ManifestError::BadRamIpa { partition: p });
        }
        if !(1..=MAX_VCPUS).contains(&partition.vcpus) {
            return Err(ManifestError::BadVcpus { partition: p });
        }
        if partition.cores == 0 {
            return Err(ManifestError::NoCores { partition: p });
        }
        self.validate_mappings(p, partition)?;
        self.validate_caps(p, partition)
    }

    /// A virtual machine: a monitor of its own that serves an exit endpoint
    /// of its own, on which nobody else may send.
    fn validate_vm(&self, p: u16, vm: &VmSpec) -> Result<(), ManifestError> {
        let problem = |problem| ManifestError::Vm {
            partition: p,
            problem,
        };
        let monitor_runs_a_program = self
            .partitions
            .get(usize::from(vm.monitor))
            .is_some_and(|m| m.program().is_some());
        if vm.monitor == p || !monitor_runs_a_program {
            return Err(problem(VmProblem::Monitor));
        }
        let others = self
            .partitions
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != usize::from(p));
        for (other, spec) in others {
            let Some(theirs) = spec.vm() else { continue };
            if theirs.monitor == vm.monitor {
                return Err(problem(VmProblem::SharedMonitor {
                    other: index(other),
                }));
            }
            if theirs.exit_endpoint == vm.exit_endpoint {
                return Err(problem(VmProblem::ExitEndpoint));
            }
        }
        if vm.exit_endpoint >= self.endpoint_count {
            return Err(problem(VmProblem::ExitEndpoint));
        }
        // Its devices are mapped at their physical addresses: not over its
        // RAM or what its monitor emulates.
        let ram = self
            .partitions
            .get(usize::from(p))
            .map(|s| (s.ram_ipa, s.memory_size));
        for (d, device) in self.devices.iter().enumerate() {
            if device.owner == p
                && (hv_abi::vm::overlaps_emulated(device.pa, device.size)
                    || ram.is_some_and(|ram| overlaps(ram, (device.pa, device.size))))
            {
                return Err(problem(VmProblem::DeviceInLayout { device: index(d) }));
            }
        }
        let exits = Object::Endpoint(vm.exit_endpoint);
        let served = self
            .partitions
            .get(usize::from(vm.monitor))
            .is_some_and(|m| {
                m.caps
                    .iter()
                    .any(|c| c.object == exits && c.rights.contains(Rights::READ))
            });
        if !served {
            return Err(problem(VmProblem::ExitNotServed));
        }
        for (holder, spec) in self.partitions.iter().enumerate() {
            if spec
                .caps
                .iter()
                .any(|c| c.object == exits && c.rights.contains(Rights::WRITE))
            {
                return Err(problem(VmProblem::ExitWritable {
                    holder: index(holder),
                }));
            }
        }
        Ok(())
    }

    /// The virtual machine partition `vm` if `monitor` monitors it.
    fn monitored_by(&self, vm: u16, monitor: u16) -> Option<&PartitionSpec> {
        self.partitions
            .get(usize::from(vm))
            .filter(|spec| spec.vm().is_some_and(|v| v.monitor == monitor))
    }

    /// A partition's mappings: in range, disjoint, backed by what it owns.
    fn validate_mappings(&self, p: u16, partition: &PartitionSpec) -> Result<(), ManifestError> {
        let ram = (partition.ram_ipa, partition.memory_size);
        for (m, mapping) in partition.mappings.iter().enumerate() {
            let (partition_index, mapping_index) = (p, index(m));
            let error = |problem: MappingProblem| problem.at(partition_index, mapping_index);
            if !is_page_range(mapping.ipa, mapping.size, IPA_LIMIT) {
                return Err(error(MappingProblem::Range));
            }
            let range = (mapping.ipa, mapping.size);
            if overlaps(ram, range) {
                return Err(error(MappingProblem::Overlap(None)));
            }
            let mut earlier = partition.mappings.iter().take(m);
            if let Some(other) = earlier.position(|o| overlaps((o.ipa, o.size), range)) {
                return Err(error(MappingProblem::Overlap(Some(index(other)))));
            }
            let (size, allowed) = match mapping.kind {
                MappingKind::Device { device } => {
                    let spec = self
                        .devices
                        .get(usize::from(device))
                        .ok_or(error(MappingProblem::Unknown))?;
                    if spec.owner != p {
                        return Err(error(MappingProblem::NotOwned));
                    }
                    // A guest's device is where its device tree says: at
                    // its physical address, which `validate_vm` checked.
                    if partition.vm().is_some() && mapping.ipa != spec.pa {
                        return Err(error(MappingProblem::Range));
                    }
                    (spec.size, Rights::READ.union(Rights::WRITE))
                }
                MappingKind::Shared { region } => {
                    let spec = self
                        .shared_regions
                        .get(usize::from(region))
                        .ok_or(error(MappingProblem::Unknown))?;
                    let memory = Rights::READ.union(Rights::WRITE).union(Rights::EXECUTE);
                    (spec.size, memory)
                }
                MappingKind::GuestRam { partition: vm } => {
                    if usize::from(vm) >= self.partitions.len() {
                        return Err(error(MappingProblem::Unknown));
                    }
                    let guest = self
                        .monitored_by(vm, p)
                        .ok_or(error(MappingProblem::NotMonitor))?;
                    (guest.memory_size, Rights::READ.union(Rights::WRITE))
                }
                MappingKind::File { file } => {
                    let spec = self
                        .files
                        .get(usize::from(file))
                        .ok_or(error(MappingProblem::Unknown))?;
                    let size = spec
                        .size
                        .checked_next_multiple_of(PAGE_SIZE)
                        .ok_or(error(MappingProblem::Size))?;
                    (size, Rights::READ)
                }
            };
            if size != mapping.size {
                return Err(error(MappingProblem::Size));
            }
            if !rights_within(mapping.rights, allowed) {
                return Err(error(MappingProblem::Rights));
            }
            if let MappingKind::Shared { region } = mapping.kind {
                let covered = partition.caps.iter().any(|cap| {
                    cap.object == Object::Memory(region) && cap.rights.contains(mapping.rights)
                });
                if !covered {
                    return Err(error(MappingProblem::NoCapability));
                }
            }
        }
        Ok(())
    }

    /// A partition's capabilities: objects exist, rights mean something,
    /// devices and interrupts belong to it.
    fn validate_caps(&self, p: u16, partition: &PartitionSpec) -> Result<(), ManifestError> {
        for (s, cap) in partition.caps.iter().enumerate() {
            let slot = index(s);
            let in_range = |n: u16, count: usize| usize::from(n) < count;
            let (exists, owner) = match cap.object {
                Object::Endpoint(n) => (in_range(n, usize::from(self.endpoint_count)), None),
                Object::Notification(n) => {
                    (in_range(n, usize::from(self.notification_count)), None)
                }
                Object::Memory(n) => (in_range(n, self.shared_regions.len()), None),
                Object::Partition(n) => (in_range(n, self.partitions.len()), None),
                Object::KernelLog => (
                    self.kernel_log.is_some(),
                    self.kernel_log.map(|k| k.partition),
                ),
                Object::Device(n) => {
                    let device = self.devices.get(usize::from(n));
                    (device.is_some(), device.map(|d| d.owner))
                }
                Object::Irq(n) => {
                    let device = self
                        .irqs
                        .get(usize::from(n))
                        .and_then(|irq| self.devices.get(usize::from(irq.device)));
                    (device.is_some(), device.map(|d| d.owner))
                }
                Object::Reply(n) => {
                    let owner = self.replies.get(usize::from(n)).copied();
                    (owner.is_some(), owner)
                }
                Object::Vcpu { partition, vcpu } => {
                    let guest = self.partitions.get(usize::from(partition));
                    let monitor = guest.and_then(PartitionSpec::vm).map(|vm| vm.monitor);
                    let exists = guest.is_some_and(|g| vcpu < g.vcpus) && monitor.is_some();
                    (exists, monitor)
                }
            };
            if !exists {
                return Err(ManifestError::UnknownObject { partition: p, slot });
            }
            if !cap.rights.is_valid() || !rights_within(cap.rights, meaningful_rights(cap.object)) {
                return Err(ManifestError::BadRights { partition: p, slot });
            }
            if owner.is_some_and(|owner| owner != p) {
                return Err(ManifestError::NotOwner { partition: p, slot });
            }
        }
        Ok(())
    }

    /// Interrupts: real SPIs, bound once, to existing objects, with non-zero
    /// badges that tell them apart from each other, from every capability
    /// that signals the same notification and from the kernel log.
    fn validate_irqs(&self) -> Result<(), ManifestError> {
        for (i, irq) in self.irqs.iter().enumerate() {
            let here = index(i);
            if !(SPI_FIRST..=SPI_LAST).contains(&irq.intid) {
                return Err(ManifestError::BadIntid { irq: here });
            }
            let mut earlier = self.irqs.iter().take(i);
            if let Some(first) = earlier.clone().position(|o| o.intid == irq.intid) {
                return Err(ManifestError::DuplicateIntid {
                    irq: here,
                    first: index(first),
                });
            }
            // A virtual machine's device's interrupts are passed through.
            let vm_owned = self
                .devices
                .get(usize::from(irq.device))
                .and_then(|d| self.partitions.get(usize::from(d.owner)))
                .is_some_and(|o| o.vm().is_some());
            if usize::from(irq.device) >= self.devices.len()
                || irq.notification >= self.notification_count
                || vm_owned
            {
                return Err(ManifestError::UnknownIrqObject { irq: here });
            }
            if irq.badge.0 == 0 {
                return Err(ManifestError::BadIrqBadge {
                    irq: here,
                    other: None,
                });
            }
            if let Some(other) = earlier
                .position(|o| o.notification == irq.notification && o.badge.0 & irq.badge.0 != 0)
            {
                return Err(ManifestError::BadIrqBadge {
                    irq: here,
                    other: Some(index(other)),
                });
            }
            // Nothing else may set the interrupt's bits: not a capability
            // that signals the notification, not the kernel log.
            let notification = Object::Notification(irq.notification);
            for (p, spec) in self.partitions.iter().enumerate() {
                if let Some(slot) = spec.caps.iter().position(|c| {
                    c.object == notification
                        && c.rights.contains(Rights::WRITE)
                        && c.badge.0 & irq.badge.0 != 0
                }) {
                    return Err(ManifestError::IrqBadgeSignalled {
                        irq: here,
                        partition: index(p),
                        slot: index(slot),
                    });
                }
            }
            if self.kernel_log.is_some_and(|log| {
                log.notification == irq.notification && log.badge.0 & irq.badge.0 != 0
            }) {
                return Err(ManifestError::IrqBadgeKernelLog { irq: here });
            }
        }
        Ok(())
    }
}
