//! Reading the subject info page: a subject's resources, by logical name.
//!
//! The composer writes the page (layout in `septum_abi::info`) and the
//! kernel maps it read-only. The parser here is safe code over a byte slice:
//! every field is read with bounds-checked little-endian loads, names are
//! compared as bytes up to the first NUL, and a page that lies about its
//! resource count is rejected rather than read past its end. The only
//! `unsafe` step, turning the fixed address into a slice, lives in
//! [`crate::rt`].

use septum_abi::SubjectId;
use septum_abi::TscCycles;
use septum_abi::VirtAddr;
use septum_abi::hypercall::KernelActionCode;
use septum_abi::info::{
    FLAG_CHANNEL_READER, FLAG_CHANNEL_WRITER, FLAG_EXECUTABLE, FLAG_WRITABLE, INFO_MAGIC,
    INFO_PAGE_SIZE, INFO_VERSION, MAX_RESOURCE_NAME, MAX_RESOURCES, MAX_SUBJECT_NAME, NO_EVENT,
    RESOURCE_SIZE, RESOURCES_OFFSET, ResourceKind, offset, resource_offset,
};

use crate::event::{SourceEventId, TargetEventId};

/// Why an info page was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InfoError {
    /// The slice is shorter than a page.
    TooShort,
    /// The magic is not `SEPTINFO`.
    BadMagic,
    /// The layout version is not [`INFO_VERSION`].
    BadVersion(u32),
    /// The resource count is larger than a page can hold.
    TooManyResources(u16),
}

/// A parsed subject info page.
#[derive(Clone, Copy, Debug)]
pub struct Info<'a> {
    page: &'a [u8],
    count: usize,
    /// Set only by [`crate::rt::startup`] for the page the composer mapped:
    /// then (and only then) the addresses on it are real mappings, and the
    /// SDK may build [`crate::region::Region`]s from them.
    pub(crate) mapped: bool,
}

/// One resource record, decoded but not interpreted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resource<'a> {
    name: &'a [u8],
    /// What the record describes; `None` for a kind this SDK does not know.
    pub kind: Option<ResourceKind>,
    /// `FLAG_*` bits.
    pub flags: u8,
    /// Event number, if any.
    pub event: Option<u8>,
    /// Vector, if any.
    pub vector: Option<u8>,
    /// For a source event that is a `kernel` event: its action (`None` for
    /// any other record, and on pages written before the field existed).
    pub kernel_action: Option<KernelActionCode>,
    /// Virtual address, or first I/O port.
    pub address: u64,
    /// Size in bytes, or number of I/O ports.
    pub size: u64,
}

impl<'a> Resource<'a> {
    /// The logical name as bytes (up to the first NUL).
    pub fn name_bytes(&self) -> &'a [u8] {
        self.name
    }

    /// The logical name, or `None` if it is not UTF-8.
    pub fn name(&self) -> Option<&'a str> {
        core::str::from_utf8(self.name).ok()
    }
}

/// A memory mapping of the subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryResource {
    /// Virtual address of the first byte.
    pub address: VirtAddr,
    /// Size in bytes.
    pub size: u64,
    /// Whether the subject may write it.
    pub writable: bool,
    /// Whether the subject may execute it.
    pub executable: bool,
}

/// Which end of a channel the subject holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelRole {
    /// The single writer (mapped writable).
    Writer,
    /// One of the readers (mapped read-only).
    Reader,
}

/// A channel end of the subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelResource {
    /// Virtual address of the channel header.
    pub address: VirtAddr,
    /// Size of the whole channel region in bytes.
    pub size: u64,
    /// Writer or reader.
    pub role: ChannelRole,
    /// For a writer: the source event that notifies the readers; for a
    /// reader: the target event it receives. `None` if the channel has no
    /// event.
    pub event: Option<u8>,
    /// For a reader: the vector injected when the writer notifies.
    pub vector: Option<u8>,
}

impl ChannelResource {
    /// The event a writer raises after writing, if the channel has one.
    pub fn notify_event(&self) -> Option<SourceEventId> {
        match self.role {
            ChannelRole::Writer => self.event.and_then(SourceEventId::new),
            ChannelRole::Reader => None,
        }
    }
}

/// A target event of the subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TargetEvent {
    /// Its number.
    pub id: TargetEventId,
    /// The vector it injects, if any.
    pub vector: Option<u8>,
}

/// A range of I/O ports the subject owns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoPorts {
    /// First port.
    pub first: u16,
    /// Number of ports (at least 1).
    pub count: u16,
}

fn le_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let field = bytes.get(at..at.checked_add(8)?)?;
    Some(u64::from_le_bytes(field.try_into().ok()?))
}

fn le_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let field = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(field.try_into().ok()?))
}

fn le_u16(bytes: &[u8], at: usize) -> Option<u16> {
    let field = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes(field.try_into().ok()?))
}

/// The bytes of a zero-padded name field, up to the first NUL.
fn padded_name(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    field.get(..end).unwrap_or(field)
}

impl<'a> Info<'a> {
    /// Parses a page. Checks the magic, the version and that every resource
    /// the header announces lies inside the page.
    pub fn parse(page: &'a [u8]) -> Result<Self, InfoError> {
        if page.len() < INFO_PAGE_SIZE {
            return Err(InfoError::TooShort);
        }
        if le_u64(page, offset::MAGIC) != Some(INFO_MAGIC) {
            return Err(InfoError::BadMagic);
        }
        let version = le_u32(page, offset::VERSION).ok_or(InfoError::TooShort)?;
        if version != INFO_VERSION {
            return Err(InfoError::BadVersion(version));
        }
        let count = le_u16(page, offset::RESOURCE_COUNT).ok_or(InfoError::TooShort)?;
        if usize::from(count) > MAX_RESOURCES {
            return Err(InfoError::TooManyResources(count));
        }
        Ok(Self {
            page,
            count: usize::from(count),
            mapped: false,
        })
    }

    /// The subject's id in the composed system.
    pub fn subject_id(&self) -> SubjectId {
        SubjectId(le_u16(self.page, offset::SUBJECT_ID).unwrap_or(0))
    }

    /// The subject's policy name (empty if the page holds invalid UTF-8).
    pub fn name(&self) -> &'a str {
        let field = self
            .page
            .get(offset::NAME..offset::NAME + MAX_SUBJECT_NAME)
            .unwrap_or_default();
        core::str::from_utf8(padded_name(field)).unwrap_or_default()
    }

    /// The TSC rate in kHz.
    pub fn tsc_khz(&self) -> u64 {
        le_u64(self.page, offset::TSC_KHZ).unwrap_or(0)
    }

    /// The length of the major frame the kernel runs from boot, in TSC
    /// cycles (the same for every subject); `None` if the page does not say.
    pub fn major_frame_cycles(&self) -> Option<TscCycles> {
        le_u64(self.page, offset::MAJOR_FRAME_CYCLES)
            .filter(|&cycles| cycles != 0)
            .map(TscCycles)
    }

    /// Every resource record, in page order.
    pub fn resources(&self) -> impl Iterator<Item = Resource<'a>> + 'a {
        let page = self.page;
        (0..self.count).filter_map(move |index| {
            let start = RESOURCES_OFFSET.checked_add(index.checked_mul(RESOURCE_SIZE)?)?;
            let record = page.get(start..start.checked_add(RESOURCE_SIZE)?)?;
            Self::decode(record)
        })
    }

    fn decode(record: &'a [u8]) -> Option<Resource<'a>> {
        let name_field = record.get(resource_offset::NAME..MAX_RESOURCE_NAME)?;
        let event = *record.get(resource_offset::EVENT)?;
        let vector = *record.get(resource_offset::VECTOR)?;
        Some(Resource {
            name: padded_name(name_field),
            kind: ResourceKind::from_u8(*record.get(resource_offset::KIND)?),
            flags: *record.get(resource_offset::FLAGS)?,
            event: (event != NO_EVENT).then_some(event),
            vector: (vector != 0).then_some(vector),
            kernel_action: KernelActionCode::from_u8(*record.get(resource_offset::ACTION)?),
            address: le_u64(record, resource_offset::ADDRESS)?,
            size: le_u64(record, resource_offset::SIZE)?,
        })
    }

    /// The first resource named `name` of kind `kind`.
    pub fn find(&self, name: &str, kind: ResourceKind) -> Option<Resource<'a>> {
        self.resources()
            .find(|r| r.kind == Some(kind) && r.name_bytes() == name.as_bytes())
    }

    /// The memory mapping named `name`.
    pub fn memory(&self, name: &str) -> Option<MemoryResource> {
        let r = self.find(name, ResourceKind::Memory)?;
        Some(MemoryResource {
            address: VirtAddr(r.address),
            size: r.size,
            writable: r.flags & FLAG_WRITABLE != 0,
            executable: r.flags & FLAG_EXECUTABLE != 0,
        })
    }

    /// The channel end named `name`. A record that claims to be both or
    /// neither end is ignored.
    pub fn channel(&self, name: &str) -> Option<ChannelResource> {
        let r = self.find(name, ResourceKind::Channel)?;
        let role = match (
            r.flags & FLAG_CHANNEL_WRITER != 0,
            r.flags & FLAG_CHANNEL_READER != 0,
        ) {
            (true, false) => ChannelRole::Writer,
            (false, true) => ChannelRole::Reader,
            _ => return None,
        };
        Some(ChannelResource {
            address: VirtAddr(r.address),
            size: r.size,
            role,
            event: r.event,
            vector: r.vector,
        })
    }

    /// The logical names of the channel ends this subject holds as
    /// `role`, in page order (a collector such as the debug server reads
    /// every channel it is given, whatever its name).
    pub fn channel_names(&self, role: ChannelRole) -> impl Iterator<Item = &'a str> + 'a {
        let page = *self;
        self.resources().filter_map(move |r| {
            let name = r.name().filter(|_| r.kind == Some(ResourceKind::Channel))?;
            (page.channel(name)?.role == role).then_some(name)
        })
    }

    /// The source event named `name`.
    pub fn source_event(&self, name: &str) -> Option<SourceEventId> {
        self.find(name, ResourceKind::SourceEvent)?
            .event
            .and_then(SourceEventId::new)
    }

    /// The first source event that is a `kernel` event with `action` (the
    /// policy's `<event mode="kernel" action="...">`), whatever its logical
    /// name. [`crate::Kernel`] offers the typed calls built on it.
    pub fn kernel_event(&self, action: KernelActionCode) -> Option<SourceEventId> {
        self.resources()
            .find(|r| r.kind == Some(ResourceKind::SourceEvent) && r.kernel_action == Some(action))?
            .event
            .and_then(SourceEventId::new)
    }

    /// The target event named `name`.
    pub fn target_event(&self, name: &str) -> Option<TargetEvent> {
        let r = self.find(name, ResourceKind::TargetEvent)?;
        Some(TargetEvent {
            id: r.event.and_then(TargetEventId::new)?,
            vector: r.vector,
        })
    }

    /// The I/O port range named `name` (for a device granted whole, the
    /// device's logical name). Ranges that are empty or run past port
    /// 0xffff are ignored.
    pub fn io_ports(&self, name: &str) -> Option<IoPorts> {
        let r = self.find(name, ResourceKind::IoPorts)?;
        let first = u16::try_from(r.address).ok()?;
        let count = u16::try_from(r.size).ok()?;
        if count == 0 || u32::from(first) + u32::from(count) > 0x1_0000 {
            return None;
        }
        Some(IoPorts { first, count })
    }

    /// Whether `address..address+len` lies inside a writable memory mapping
    /// or the writer end of a channel on this page.
    pub fn covers_writable(&self, address: VirtAddr, len: u64) -> bool {
        let Some(end) = address.get().checked_add(len) else {
            return false;
        };
        self.resources().any(|r| {
            let writable = match r.kind {
                Some(ResourceKind::Memory | ResourceKind::DeviceMemory) => {
                    r.flags & FLAG_WRITABLE != 0
                }
                Some(ResourceKind::Channel) => r.flags & FLAG_CHANNEL_WRITER != 0,
                _ => false,
            };
            let r_end = r.address.saturating_add(r.size);
            writable && address.get() < r_end && r.address < end
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use septum_abi::info::{FLAG_CHANNEL_READER, FLAG_CHANNEL_WRITER};

    /// Builds an info page the way the composer lays it out.
    pub(crate) struct PageBuilder {
        page: [u8; INFO_PAGE_SIZE],
        count: usize,
    }

    impl PageBuilder {
        pub(crate) fn new(name: &str) -> Self {
            let mut page = [0u8; INFO_PAGE_SIZE];
            page[0..8].copy_from_slice(&INFO_MAGIC.to_le_bytes());
            page[8..12].copy_from_slice(&INFO_VERSION.to_le_bytes());
            page[12..14].copy_from_slice(&7u16.to_le_bytes());
            page[16..16 + name.len()].copy_from_slice(name.as_bytes());
            page[80..88].copy_from_slice(&10_000u64.to_le_bytes());
            page[88..96].copy_from_slice(&100_000u64.to_le_bytes());
            Self { page, count: 0 }
        }

        #[allow(clippy::too_many_arguments)]
        pub(crate) fn add(
            mut self,
            name: &str,
            kind: u8,
            flags: u8,
            event: u8,
            vector: u8,
            address: u64,
            size: u64,
        ) -> Self {
            let at = RESOURCES_OFFSET + self.count * RESOURCE_SIZE;
            let rec = &mut self.page[at..at + RESOURCE_SIZE];
            rec[..name.len()].copy_from_slice(name.as_bytes());
            rec[32] = kind;
            rec[33] = flags;
            rec[34] = event;
            rec[35] = vector;
            rec[40..48].copy_from_slice(&address.to_le_bytes());
            rec[48..56].copy_from_slice(&size.to_le_bytes());
            self.count += 1;
            self.page[14..16].copy_from_slice(&(self.count as u16).to_le_bytes());
            self
        }

        /// Sets the kernel action byte of the last record added.
        pub(crate) fn action(mut self, action: u8) -> Self {
            let at = RESOURCES_OFFSET + (self.count - 1) * RESOURCE_SIZE;
            self.page[at + 36] = action;
            self
        }

        pub(crate) fn bytes(&self) -> &[u8] {
            &self.page
        }
    }

    fn sample() -> PageBuilder {
        PageBuilder::new("console")
            .add("ram", 1, FLAG_WRITABLE, NO_EVENT, 0, 0x4000_0000, 0x2000)
            .add("in", 2, FLAG_CHANNEL_READER, 3, 49, 0x5000_0000, 0x1000)
            .add("out", 2, FLAG_CHANNEL_WRITER, 2, 0, 0x6000_0000, 0x1000)
            .add("yield", 3, 0, 5, 0, 0, 0)
            .add("wake", 4, 0, 9, 48, 0, 0)
            .add("uart", 5, 0, NO_EVENT, 0, 0x3f8, 8)
            .add("ro", 1, 0, NO_EVENT, 0, 0x7000_0000, 0x1000)
    }

    #[test]
    fn header_fields() {
        let b = sample();
        let info = Info::parse(b.bytes()).unwrap();
        assert_eq!(info.name(), "console");
        assert_eq!(info.subject_id(), SubjectId(7));
        assert_eq!(info.tsc_khz(), 10_000);
        assert_eq!(info.major_frame_cycles(), Some(TscCycles(100_000)));
        assert_eq!(info.resources().count(), 7);
    }

    #[test]
    fn zero_major_frame_is_unknown() {
        let mut page = [0u8; INFO_PAGE_SIZE];
        page.copy_from_slice(sample().bytes());
        page[88..96].fill(0);
        assert_eq!(Info::parse(&page).unwrap().major_frame_cycles(), None);
        page[88..96].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(
            Info::parse(&page).unwrap().major_frame_cycles(),
            Some(TscCycles(u64::MAX))
        );
    }

    #[test]
    fn lookups_by_name_and_kind() {
        let b = sample();
        let info = Info::parse(b.bytes()).unwrap();
        let ram = info.memory("ram").unwrap();
        assert_eq!(ram.address, VirtAddr(0x4000_0000));
        assert_eq!(ram.size, 0x2000);
        assert!(ram.writable && !ram.executable);
        let input = info.channel("in").unwrap();
        assert_eq!(input.role, ChannelRole::Reader);
        assert_eq!(input.vector, Some(49));
        assert_eq!(input.notify_event(), None);
        let out = info.channel("out").unwrap();
        assert_eq!(out.notify_event(), SourceEventId::new(2));
        assert_eq!(info.source_event("yield"), SourceEventId::new(5));
        let wake = info.target_event("wake").unwrap();
        assert_eq!(wake.id, TargetEventId::new(9).unwrap());
        assert_eq!(wake.vector, Some(48));
        assert_eq!(
            info.io_ports("uart"),
            Some(IoPorts {
                first: 0x3f8,
                count: 8
            })
        );
        let readers: std::vec::Vec<&str> = info.channel_names(ChannelRole::Reader).collect();
        assert_eq!(readers, ["in"]);
        let writers: std::vec::Vec<&str> = info.channel_names(ChannelRole::Writer).collect();
        assert_eq!(writers, ["out"]);
        // Right name, wrong kind; and unknown names.
        assert!(info.memory("in").is_none());
        assert!(info.source_event("wake").is_none());
        assert!(info.memory("ra").is_none());
        assert!(info.memory("ramx").is_none());
    }

    #[test]
    fn kernel_events_are_found_by_action() {
        let b = PageBuilder::new("display")
            .add("ping", 3, 0, 1, 0, 0, 0)
            .add("nap", 3, 0, 4, 0, 0, 0)
            .action(KernelActionCode::Sleep as u8)
            .add("off", 3, 0, 6, 0, 0, 0)
            .action(KernelActionCode::Poweroff as u8)
            .add("sleep", 4, 0, 2, 0, 0, 0)
            .action(KernelActionCode::Sleep as u8);
        let info = Info::parse(b.bytes()).unwrap();
        assert_eq!(
            info.kernel_event(KernelActionCode::Sleep),
            SourceEventId::new(4),
            "found by action, not by logical name; a target event never counts"
        );
        assert_eq!(
            info.kernel_event(KernelActionCode::Poweroff),
            SourceEventId::new(6)
        );
        assert_eq!(info.kernel_event(KernelActionCode::Yield), None);
        assert_eq!(info.resources().next().unwrap().kernel_action, None);
        // A page from before the action byte: no kernel event is found.
        let old = sample();
        let info = Info::parse(old.bytes()).unwrap();
        assert_eq!(info.kernel_event(KernelActionCode::Yield), None);
        assert_eq!(info.source_event("yield"), SourceEventId::new(5));
    }

    #[test]
    fn writable_coverage() {
        let b = sample();
        let info = Info::parse(b.bytes()).unwrap();
        assert!(info.covers_writable(VirtAddr(0x4000_1fff), 1));
        assert!(!info.covers_writable(VirtAddr(0x4000_2000), 1));
        assert!(info.covers_writable(VirtAddr(0x6000_0000), 8));
        assert!(
            !info.covers_writable(VirtAddr(0x5000_0000), 8),
            "reader end is read-only"
        );
        assert!(
            !info.covers_writable(VirtAddr(0x7000_0000), 8),
            "read-only memory"
        );
        assert!(
            !info.covers_writable(VirtAddr(u64::MAX), 2),
            "overflow is not covered"
        );
    }

    #[test]
    fn rejects_bad_headers() {
        let b = sample();
        assert_eq!(
            Info::parse(&b.bytes()[..100]).unwrap_err(),
            InfoError::TooShort
        );
        let mut page = [0u8; INFO_PAGE_SIZE];
        page.copy_from_slice(b.bytes());
        page[0] ^= 1;
        assert_eq!(Info::parse(&page).unwrap_err(), InfoError::BadMagic);
        page[0] ^= 1;
        page[8] = 2;
        assert_eq!(Info::parse(&page).unwrap_err(), InfoError::BadVersion(2));
        page[8] = 1;
        page[14..16].copy_from_slice(&(MAX_RESOURCES as u16 + 1).to_le_bytes());
        assert_eq!(
            Info::parse(&page).unwrap_err(),
            InfoError::TooManyResources(MAX_RESOURCES as u16 + 1)
        );
    }

    #[test]
    fn odd_records_are_ignored_not_trusted() {
        let b = PageBuilder::new("x")
            .add(
                "both",
                2,
                FLAG_CHANNEL_READER | FLAG_CHANNEL_WRITER,
                1,
                0,
                0x1000,
                0x1000,
            )
            .add("ports", 5, 0, NO_EVENT, 0, 0xfffe, 8)
            .add("ev", 3, 0, 64, 0, 0, 0)
            .add("weird", 99, 0, NO_EVENT, 0, 0, 0);
        let info = Info::parse(b.bytes()).unwrap();
        assert!(info.channel("both").is_none());
        assert!(info.io_ports("ports").is_none());
        assert!(
            info.source_event("ev").is_none(),
            "event 64 is out of range"
        );
        let weird = info
            .resources()
            .find(|r| r.name() == Some("weird"))
            .unwrap();
        assert_eq!(weird.kind, None);
    }

    #[test]
    fn full_length_names_without_nul() {
        let long = "abcdefghijklmnopqrstuvwxyz012345"; // exactly 32 bytes
        let b = PageBuilder::new("x").add(long, 3, 0, 4, 0, 0, 0);
        let info = Info::parse(b.bytes()).unwrap();
        assert_eq!(info.source_event(long), SourceEventId::new(4));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: if cfg!(miri) { 4 } else { 256 },
            failure_persistence: None,
            ..proptest::prelude::ProptestConfig::default()
        })]
        #[test]
        fn garbage_pages_never_panic(
            words in proptest::collection::vec(proptest::prelude::any::<u64>(), INFO_PAGE_SIZE / 8),
            count in 0u16..if cfg!(miri) { 8 } else { 80 },
        ) {
            // Generated as words: eight times fewer random draws (Miri is slow).
            let mut page: std::vec::Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
            page[0..8].copy_from_slice(&INFO_MAGIC.to_le_bytes());
            page[8..12].copy_from_slice(&INFO_VERSION.to_le_bytes());
            page[14..16].copy_from_slice(&count.to_le_bytes());
            if let Ok(info) = Info::parse(&page) {
                let _ = info.name();
                let _ = info.major_frame_cycles();
                for r in info.resources() {
                    let name = core::str::from_utf8(r.name_bytes()).unwrap_or("");
                    let _ = info.memory(name);
                    let _ = info.channel(name);
                    let _ = info.io_ports(name);
                    let _ = info.target_event(name);
                    let _ = info.kernel_event(KernelActionCode::Sleep);
                    let _ = info.covers_writable(VirtAddr(r.address), r.size);
                }
            }
        }
    }
}
