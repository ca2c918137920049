//! Subject info pages (layout: `septum_abi::info`).
//!
//! One read-only page per subject lists, by logical name, everything the
//! subject may use. The composer is the only writer of this format; the SDK
//! reads it. Names that do not fit the fixed-size fields and subjects with
//! more resources than one page holds are refused here, rather than
//! truncated, so a subject never looks up a name that silently changed.
//!
//! The major frame length is written by [`set_major_frame_cycles`], apart
//! from [`info_page`], because the plan is composed after the subjects'
//! address spaces (their pages are placed first); it is the same value on
//! every page.

use septum_abi::hypercall::NO_KERNEL_ACTION;
use septum_abi::info::{
    INFO_MAGIC, INFO_PAGE_SIZE, INFO_VERSION, MAX_RESOURCE_NAME, MAX_RESOURCES, MAX_SUBJECT_NAME,
    NO_EVENT, RESOURCE_SIZE, RESOURCES_OFFSET, ResourceKind, offset, resource_offset,
};
use septum_abi::{SubjectId, TscCycles, VirtAddr};

use crate::input::KernelAction;

/// One resource record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    /// Logical name.
    pub name: String,
    /// Kind.
    pub kind: ResourceKind,
    /// `FLAG_*` bits.
    pub flags: u8,
    /// Event number, or `NO_EVENT`.
    pub event: u8,
    /// Vector, or 0.
    pub vector: u8,
    /// Kernel action of a source event (`KernelActionCode`), or
    /// `NO_KERNEL_ACTION`.
    pub action: u8,
    /// Virtual address or first I/O port.
    pub address: u64,
    /// Size in bytes or number of ports.
    pub size: u64,
}

impl Resource {
    /// A record with no event and no vector.
    pub fn new(name: &str, kind: ResourceKind, address: u64, size: u64) -> Self {
        Resource {
            name: name.to_owned(),
            kind,
            flags: 0,
            event: NO_EVENT,
            vector: 0,
            action: NO_KERNEL_ACTION,
            address,
            size,
        }
    }
}

/// Identity of the subject a page describes.
pub struct InfoHeader<'a> {
    /// Subject id.
    pub id: SubjectId,
    /// Subject name.
    pub name: &'a str,
    /// TSC rate in kHz.
    pub tsc_khz: u64,
}

/// Why a page cannot be written.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InfoError {
    /// Subject name too long.
    #[error("subject name \"{0}\" is longer than {MAX_SUBJECT_NAME} bytes")]
    SubjectName(String),
    /// Logical name too long for a record.
    #[error("logical name \"{0}\" is longer than {MAX_RESOURCE_NAME} bytes (info page limit)")]
    ResourceName(String),
    /// Too many resources.
    #[error("{0} resources do not fit in the info page (at most {MAX_RESOURCES})")]
    TooMany(usize),
    /// A buffer that is not a whole info page.
    #[error("{0} bytes are not an info page ({INFO_PAGE_SIZE} bytes)")]
    NotAPage(usize),
}

/// The 4 KiB page.
pub fn info_page(header: &InfoHeader<'_>, resources: &[Resource]) -> Result<Vec<u8>, InfoError> {
    if header.name.len() > MAX_SUBJECT_NAME {
        return Err(InfoError::SubjectName(header.name.to_owned()));
    }
    if resources.len() > MAX_RESOURCES {
        return Err(InfoError::TooMany(resources.len()));
    }
    let mut page = vec![0u8; INFO_PAGE_SIZE];
    let mut put = |at: usize, bytes: &[u8]| page[at..at + bytes.len()].copy_from_slice(bytes);
    put(offset::MAGIC, &INFO_MAGIC.to_le_bytes());
    put(offset::VERSION, &INFO_VERSION.to_le_bytes());
    put(offset::SUBJECT_ID, &header.id.0.to_le_bytes());
    put(
        offset::RESOURCE_COUNT,
        &(resources.len() as u16).to_le_bytes(),
    );
    put(offset::NAME, header.name.as_bytes());
    put(offset::TSC_KHZ, &header.tsc_khz.to_le_bytes());
    for (i, r) in resources.iter().enumerate() {
        if r.name.len() > MAX_RESOURCE_NAME {
            return Err(InfoError::ResourceName(r.name.clone()));
        }
        let base = RESOURCES_OFFSET + i * RESOURCE_SIZE;
        put(base + resource_offset::NAME, r.name.as_bytes());
        put(base + resource_offset::KIND, &[r.kind as u8]);
        put(base + resource_offset::FLAGS, &[r.flags]);
        put(base + resource_offset::EVENT, &[r.event]);
        put(base + resource_offset::VECTOR, &[r.vector]);
        put(base + resource_offset::ACTION, &[r.action]);
        put(base + resource_offset::ADDRESS, &r.address.to_le_bytes());
        put(base + resource_offset::SIZE, &r.size.to_le_bytes());
    }
    Ok(page)
}

/// Write the length of the boot major frame into a page made by
/// [`info_page`].
pub fn set_major_frame_cycles(page: &mut [u8], cycles: TscCycles) -> Result<(), InfoError> {
    if page.len() != INFO_PAGE_SIZE {
        return Err(InfoError::NotAPage(page.len()));
    }
    page[offset::MAJOR_FRAME_CYCLES..offset::MAJOR_FRAME_CYCLES + 8]
        .copy_from_slice(&cycles.get().to_le_bytes());
    Ok(())
}

/// The major frame length a page carries (0 if none was written).
pub fn major_frame_cycles_of(page: &[u8]) -> Option<TscCycles> {
    let field = page.get(offset::MAJOR_FRAME_CYCLES..offset::MAJOR_FRAME_CYCLES + 8)?;
    Some(TscCycles(u64::from_le_bytes(field.try_into().ok()?)))
}

/// Read a page back (tests, `septum inspect`-style tools).
pub fn parse_info_page(page: &[u8]) -> Option<(u16, String, u64, Vec<Resource>)> {
    let u64_at = |at: usize| Some(u64::from_le_bytes(page.get(at..at + 8)?.try_into().ok()?));
    let u16_at = |at: usize| Some(u16::from_le_bytes(page.get(at..at + 2)?.try_into().ok()?));
    let text = |at: usize, len: usize| -> Option<String> {
        let raw = page.get(at..at + len)?;
        let end = raw.iter().position(|&b| b == 0).unwrap_or(len);
        String::from_utf8(raw[..end].to_vec()).ok()
    };
    if u64_at(offset::MAGIC)? != INFO_MAGIC {
        return None;
    }
    let count = usize::from(u16_at(offset::RESOURCE_COUNT)?);
    let mut resources = Vec::with_capacity(count);
    for i in 0..count.min(MAX_RESOURCES) {
        let base = RESOURCES_OFFSET + i * RESOURCE_SIZE;
        resources.push(Resource {
            name: text(base + resource_offset::NAME, MAX_RESOURCE_NAME)?,
            kind: ResourceKind::from_u8(*page.get(base + resource_offset::KIND)?)?,
            flags: *page.get(base + resource_offset::FLAGS)?,
            event: *page.get(base + resource_offset::EVENT)?,
            vector: *page.get(base + resource_offset::VECTOR)?,
            action: *page.get(base + resource_offset::ACTION)?,
            address: u64_at(base + resource_offset::ADDRESS)?,
            size: u64_at(base + resource_offset::SIZE)?,
        });
    }
    Some((
        u16_at(offset::SUBJECT_ID)?,
        text(offset::NAME, MAX_SUBJECT_NAME)?,
        u64_at(offset::TSC_KHZ)?,
        resources,
    ))
}

/// The info page's action byte of a kernel event with `action` (the SDK
/// finds `wait`, `yield`, `poweroff`... by it). An action the kernel does
/// not implement has no code: the composer refuses it before pages are
/// written.
pub fn action_code(action: KernelAction) -> u8 {
    action
        .info_code()
        .map_or(NO_KERNEL_ACTION, |code| code as u8)
}

/// A memory resource at a virtual address.
pub fn memory(name: &str, at: VirtAddr, size: u64, flags: u8) -> Resource {
    Resource {
        flags,
        ..Resource::new(name, ResourceKind::Memory, at.get(), size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use septum_abi::info::{FLAG_CHANNEL_WRITER, FLAG_WRITABLE};

    #[test]
    fn bytes_follow_the_abi_layout() {
        let mut chan = Resource::new("out", ResourceKind::Channel, 0x5000_0000, 0x1000);
        chan.flags = FLAG_CHANNEL_WRITER | FLAG_WRITABLE;
        chan.event = 2;
        let mut page = info_page(
            &InfoHeader {
                id: SubjectId(3),
                name: "producer",
                tsc_khz: 10_000,
            },
            &[
                memory("ram", VirtAddr(0x4000_0000), 0x2000, FLAG_WRITABLE),
                chan.clone(),
            ],
        )
        .unwrap();
        assert_eq!(&page[0..8], b"SEPTINFO");
        assert_eq!(page[8..12], 1u32.to_le_bytes());
        assert_eq!(page[12..14], 3u16.to_le_bytes());
        assert_eq!(page[14..16], 2u16.to_le_bytes());
        assert_eq!(&page[16..24], b"producer");
        assert_eq!(page[80..88], 10_000u64.to_le_bytes());
        assert_eq!(
            page[88..96],
            [0; 8],
            "no major frame until the plan is known"
        );
        set_major_frame_cycles(&mut page, TscCycles(100_000)).unwrap();
        assert_eq!(page[88..96], 100_000u64.to_le_bytes());
        assert_eq!(major_frame_cycles_of(&page), Some(TscCycles(100_000)));
        let second = 96 + 64;
        assert_eq!(&page[second..second + 3], b"out");
        assert_eq!(page[second + 32], 2, "kind channel");
        assert_eq!(page[second + 33], 5, "writer | writable");
        assert_eq!(page[second + 34], 2, "event");
        assert_eq!(page[second + 40..second + 48], 0x5000_0000u64.to_le_bytes());
        let (id, name, khz, resources) = parse_info_page(&page).unwrap();
        assert_eq!((id, name.as_str(), khz), (3, "producer", 10_000));
        assert_eq!(resources[1], chan);
        assert_eq!(resources[0].event, NO_EVENT);
    }

    #[test]
    fn source_events_carry_their_kernel_action() {
        let mut sleep = Resource::new("wait", ResourceKind::SourceEvent, 0, 0);
        sleep.event = 4;
        sleep.action = action_code(KernelAction::Sleep);
        let plain = Resource::new("ping", ResourceKind::SourceEvent, 0, 0);
        let page = info_page(
            &InfoHeader {
                id: SubjectId(0),
                name: "s",
                tsc_khz: 1,
            },
            &[sleep.clone(), plain.clone()],
        )
        .unwrap();
        assert_eq!(page[96 + 36], 2, "sleep");
        assert_eq!(page[96 + 64 + 36], 0, "not a kernel event");
        let (_, _, _, resources) = parse_info_page(&page).unwrap();
        assert_eq!(resources, vec![sleep, plain]);
        assert_eq!(action_code(KernelAction::UnmaskIrq), 7);
    }

    #[test]
    fn refuses_what_does_not_fit() {
        let h = InfoHeader {
            id: SubjectId(0),
            name: "s",
            tsc_khz: 1,
        };
        let long = "x".repeat(33);
        let r = Resource::new(&long, ResourceKind::Memory, 0, 0);
        assert_eq!(info_page(&h, &[r]), Err(InfoError::ResourceName(long)));
        let many = vec![Resource::new("m", ResourceKind::Memory, 0, 0); MAX_RESOURCES + 1];
        assert_eq!(
            info_page(&h, &many),
            Err(InfoError::TooMany(MAX_RESOURCES + 1))
        );
        let mut short = vec![0u8; 95];
        assert_eq!(
            set_major_frame_cycles(&mut short, TscCycles(1)),
            Err(InfoError::NotAPage(95))
        );
        assert_eq!(major_frame_cycles_of(&short), None);
    }
}
