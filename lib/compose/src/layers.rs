//! Layer consistency: a subject's own IA-32e paging and its EPT must tell
//! the same story, and the EPT must reach nothing the subject is not owed.
//!
//! A native subject's memory rights live in two layers: its guest page
//! tables (virtual -> guest-physical) and its EPT (guest-physical ->
//! host-physical). The composer builds both from one list of mappings, but
//! the hardware only sees the bytes, so this module checks the bytes, read
//! back the way the CPU reads them: the EPT from host-physical memory (the
//! composed regions), and the guest tables *through* that EPT, starting at
//! the subject's CR3. It uses the same walkers as every other read-back
//! ([`crate::paging::leaves_in`], [`crate::paging::translate_in`]); only the
//! memory they read differs.
//!
//! What must hold, for every subject:
//!
//! 1. every virtual page the guest tables map has VA == GPA, and the EPT maps
//!    that GPA readable with the same write and execute rights;
//! 2. the only further EPT pages are the guest's own page-table pages
//!    (exactly the pages the walk visited, none of them reachable through a
//!    virtual address), mapped read-only and not executable;
//! 3. every guest table entry is present with Accessed and Dirty set and
//!    U/S clear, so the CPU never writes the (read-only) tables;
//! 4. every EPT page lands in memory the subject may see: its own program,
//!    info page and stack, its own page tables (read-only, as in 2), or a
//!    `<memory>` region or channel the *input* grants it at that address
//!    with at least those rights, or device memory (MMIO) the input grants
//!    it at that address with at least those rights and with the device
//!    memory's type (UC unless the hardware description says otherwise).
//!    A VM's program memory is allowed in one other subject: the monitor
//!    that emulates the VM's virtio console (its `<monitor event>`'s target
//!    in the input), at the input's `guestMemory` + the guest-physical
//!    address the VM's own (checked) EPT maps to the same host page, not
//!    executable ([`guest_view_problem`]).
//!    Never another subject's private regions, any kernel or table region
//!    (VMXON, VMCS, bitmaps, EPT, kernel page tables, kernel windows), nor
//!    unallocated memory, nor device memory it is not granted;
//! 5. every virtual page on uncached (UC) device memory is uncached in the
//!    guest tables too (PCD and PWT: PAT entry 3, UC).
//!
//! Grants in 4 come from the [`SystemInput`], not from the composer's own
//! mapping list, so a composer bug cannot vouch for itself.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use septum_abi::SubjectId;

use crate::alloc::KERNEL_WINDOWS;
use crate::crash_audit::CrashAudit;
use crate::crash_reader;
use crate::input::{Caching, DeviceMemoryGrantInput, SubjectInput, SystemInput};
use crate::paging::{
    Format, MemoryType, TableMemory, ept, ia32e, leaves_in, small_pages, translate_in,
};
use crate::system::{Composition, Region, RegionKind, RegionOwner, SubjectOut};

/// The outcome of [`check`]: what was looked at and what is wrong.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LayerReport {
    /// Subjects checked.
    pub subjects: usize,
    /// Virtual 4 KiB pages found in guest tables (summed over subjects).
    pub guest_pages: usize,
    /// Guest page-table pages visited through EPT (summed over subjects).
    pub table_pages: usize,
    /// EPT 4 KiB pages checked (summed over subjects).
    pub ept_pages: usize,
    /// One line per violation, naming the subject and the address; empty
    /// when the layers agree.
    pub violations: Vec<String>,
}

/// Check every subject of `composition` (composed from `input`).
pub fn check(input: &SystemInput, composition: &Composition) -> LayerReport {
    let memory = Physical::new(&composition.regions);
    let ept_roots: Vec<u64> = composition
        .subjects
        .iter()
        .map(|s| s.eptp & !0xfff)
        .collect();
    let mut report = LayerReport::default();
    for (i, (subject, granted)) in composition.subjects.iter().zip(&input.subjects).enumerate() {
        let id = SubjectId(u16::try_from(i).unwrap_or(u16::MAX));
        let layers = Layers {
            input,
            memory: &memory,
            crash_audit: &composition.crash_audit,
            ept_roots: &ept_roots,
        };
        check_subject(&layers, id, subject, granted, &mut report);
        report.subjects += 1;
    }
    if composition.subjects.len() != input.subjects.len() {
        report.violations.push(format!(
            "composition has {} subjects, input {}",
            composition.subjects.len(),
            input.subjects.len()
        ));
    }
    report
}

/// Host-physical memory as the composed image will hold it: each region's
/// initial bytes, zero beyond them; nothing outside the regions is readable.
struct Physical<'a> {
    /// Sorted by start.
    regions: Vec<&'a Region>,
}

impl<'a> Physical<'a> {
    fn new(regions: &'a [Region]) -> Self {
        let mut regions: Vec<&Region> = regions.iter().collect();
        regions.sort_by_key(|r| r.start);
        Self { regions }
    }

    fn region_at(&self, address: u64) -> Option<&'a Region> {
        let after = self.regions.partition_point(|r| r.start.get() <= address);
        let region = *self.regions.get(after.checked_sub(1)?)?;
        (address < region.end()).then_some(region)
    }
}

impl TableMemory for Physical<'_> {
    fn entry(&self, table: u64, slot: usize) -> Option<u64> {
        let address = table.checked_add(u64::try_from(slot).ok()?.checked_mul(8)?)?;
        let region = self.region_at(address)?;
        let offset = usize::try_from(address - region.start.get()).ok()?;
        let mut raw = [0u8; 8];
        if let Some(initial) = region.content.get(offset..) {
            let n = initial.len().min(8);
            raw[..n].copy_from_slice(&initial[..n]);
        }
        Some(u64::from_le_bytes(raw))
    }
}

/// A subject's guest tables as the CPU reads them: every table address is
/// guest-physical and is translated through the subject's EPT first. Records
/// what the walk touched.
struct ThroughEpt<'a> {
    memory: &'a Physical<'a>,
    ept_root: u64,
    /// Table pages visited: guest-physical -> host-physical.
    tables: RefCell<BTreeMap<u64, u64>>,
    /// Table pages the EPT does not let the CPU read.
    unreadable: RefCell<BTreeSet<u64>>,
    /// Every non-zero entry read: (table guest-physical, slot, value).
    entries: RefCell<Vec<(u64, usize, u64)>>,
}

impl TableMemory for ThroughEpt<'_> {
    fn entry(&self, table: u64, slot: usize) -> Option<u64> {
        let known = self.tables.borrow().get(&table).copied();
        let host = match known {
            Some(host) => host,
            None => {
                let readable = translate_in(Format::Ept, self.memory, self.ept_root, table)
                    .filter(|t| t.leaf & ept::READ != 0);
                let Some(t) = readable else {
                    self.unreadable.borrow_mut().insert(table);
                    return None;
                };
                self.tables.borrow_mut().insert(table, t.output);
                t.output
            }
        };
        let value = self.memory.entry(host, slot)?;
        if value != 0 {
            self.entries.borrow_mut().push((table, slot, value));
        }
        Some(value)
    }
}

fn rights_text(writable: bool, executable: bool) -> String {
    format!(
        "r{}{}",
        if writable { 'w' } else { '-' },
        if executable { 'x' } else { '-' }
    )
}

/// What every subject's check reads besides the subject itself.
struct Layers<'a> {
    input: &'a SystemInput,
    memory: &'a Physical<'a>,
    crash_audit: &'a CrashAudit,
    /// Every subject's EPT root (for a monitor's view of its VM).
    ept_roots: &'a [u64],
}

fn check_subject(
    layers: &Layers<'_>,
    id: SubjectId,
    subject: &SubjectOut,
    granted: &SubjectInput,
    report: &mut LayerReport,
) {
    let Layers {
        input,
        memory,
        crash_audit,
        ..
    } = *layers;
    let name = &subject.name;
    let mut violation = |message: String| {
        report
            .violations
            .push(format!("subject \"{name}\": {message}"));
    };
    if granted.name != *name {
        violation(format!(
            "input subject at this index is \"{}\"",
            granted.name
        ));
        return;
    }
    let ept_root = subject.eptp & !0xfff;
    let ept_pages = small_pages(&leaves_in(Format::Ept, memory, ept_root));
    let view = ThroughEpt {
        memory,
        ept_root,
        tables: RefCell::default(),
        unreadable: RefCell::default(),
        entries: RefCell::default(),
    };
    let guest_pages = small_pages(&leaves_in(Format::Ia32e, &view, subject.guest.cr3.get()));
    let tables = view.tables.into_inner();

    // 1. VA == GPA, same rights in both layers.
    let mut guest_physical = BTreeSet::new();
    for (&va, &(gpa, leaf)) in &guest_pages {
        guest_physical.insert(gpa);
        if va != gpa {
            violation(format!("virtual page {va:#x} maps guest-physical {gpa:#x}"));
        }
        // 5. Uncached device memory is uncached in the guest tables.
        let uncached = ia32e::CACHE_DISABLE | ia32e::WRITE_THROUGH;
        let uncached_clear = leaf & uncached != uncached;
        if device_grant_at(granted, gpa).is_some_and(|d| d.caching == Caching::Uc) && uncached_clear
        {
            violation(format!(
                "virtual page {va:#x} maps UC device memory without PCD and PWT"
            ));
        }
        if crash_reader::covers(granted, crash_audit, gpa) && uncached_clear {
            violation(format!(
                "virtual page {va:#x} maps the crash-audit region without PCD and PWT"
            ));
        }
        let guest = (
            leaf & ia32e::WRITABLE != 0,
            leaf & ia32e::EXECUTE_DISABLE == 0,
        );
        match ept_pages.get(&gpa) {
            None => violation(format!(
                "virtual page {va:#x} (guest-physical {gpa:#x}) is not mapped in EPT"
            )),
            Some(&(_, e)) if e & ept::READ == 0 => {
                violation(format!("EPT maps guest-physical {gpa:#x} without read"));
            }
            Some(&(_, e)) => {
                let nested = (e & ept::WRITE != 0, e & ept::EXECUTE != 0);
                if nested != guest {
                    violation(format!(
                        "virtual page {va:#x}: guest tables give {}, EPT gives {}",
                        rights_text(guest.0, guest.1),
                        rights_text(nested.0, nested.1)
                    ));
                }
            }
        }
    }

    // 2. The only other EPT pages are the table pages, read-only.
    for table in view.unreadable.into_inner() {
        violation(format!(
            "guest page-table page at guest-physical {table:#x} is not readable through EPT"
        ));
    }
    for &table in tables.keys() {
        if guest_physical.contains(&table) {
            violation(format!(
                "guest page-table page at {table:#x} is reachable through a virtual address"
            ));
        }
        if let Some(&(_, e)) = ept_pages.get(&table)
            && e & (ept::WRITE | ept::EXECUTE) != 0
        {
            violation(format!(
                "EPT maps guest page-table page {table:#x} as {}",
                rights_text(e & ept::WRITE != 0, e & ept::EXECUTE != 0)
            ));
        }
    }
    // A VM's APIC-access page is in its EPT only (step 4 checks the host
    // page).
    let apic_page =
        |gpa: u64| subject.apic_access.is_some() && gpa == septum_kerncore::vm::lapic::XAPIC_GPA;
    for &gpa in ept_pages.keys() {
        if !guest_physical.contains(&gpa) && !tables.contains_key(&gpa) && !apic_page(gpa) {
            violation(format!(
                "EPT maps guest-physical {gpa:#x}, which is neither a guest mapping nor a \
                 guest page-table page"
            ));
        }
    }

    // 3. Accessed and Dirty preset, supervisor only, in every entry.
    for (table, slot, value) in view.entries.into_inner() {
        let required = ia32e::PRESENT | ia32e::ACCESSED | ia32e::DIRTY;
        if value & required != required || value & USER != 0 {
            violation(format!(
                "guest table {table:#x} entry {slot} is {value:#x}: not present, or \
                 Accessed/Dirty clear, or U/S set"
            ));
        }
    }

    // 4. Every EPT page lands where this subject may look.
    for (&gpa, &(hpa, e)) in &ept_pages {
        let page = EptPage {
            gpa,
            hpa,
            writable: e & ept::WRITE != 0,
            executable: e & ept::EXECUTE != 0,
            memory_type: (e >> ept::MEMORY_TYPE_SHIFT) & 7,
        };
        let crash_page = crash_reader::Page {
            gpa,
            hpa,
            writable: page.writable,
            executable: page.executable,
            memory_type: page.memory_type,
        };
        let problem = match crash_reader::page_problem(granted, crash_audit, crash_page) {
            Some(verdict) => verdict,
            None => match guest_view_problem(layers, id, page) {
                Some(verdict) => verdict,
                None => placement_problem(input, memory, id, granted, &tables, page),
            },
        };
        if let Some(problem) = problem {
            violation(format!("EPT page {gpa:#x} -> {hpa:#x}: {problem}"));
        }
    }

    report.guest_pages += guest_pages.len();
    report.table_pages += tables.len();
    report.ept_pages += ept_pages.len();
}

/// IA-32e U/S bit (user-mode access allowed); never set by the composer.
const USER: u64 = 1 << 2;

/// One 4 KiB page of a subject's EPT, as read back.
#[derive(Clone, Copy)]
struct EptPage {
    gpa: u64,
    hpa: u64,
    writable: bool,
    executable: bool,
    /// EPT memory type (bits 5:3).
    memory_type: u64,
}

/// The device memory grant of `granted` whose guest-physical range holds
/// `gpa`.
fn device_grant_at(granted: &SubjectInput, gpa: u64) -> Option<&DeviceMemoryGrantInput> {
    granted.devices.iter().flat_map(|d| &d.memory).find(|m| {
        gpa.checked_sub(m.virtual_address.get())
            .is_some_and(|offset| offset < m.size)
    })
}

/// If `page` lands in device memory `granted` is given: why that mapping is
/// wrong, or `None` if it is right. `Err(())` if the page is not in the
/// subject's device memory at all.
fn device_memory_problem(granted: &SubjectInput, page: EptPage) -> Result<Option<String>, ()> {
    let grant = granted.devices.iter().flat_map(|d| &d.memory).find(|m| {
        page.hpa
            .checked_sub(m.physical.get())
            .is_some_and(|offset| offset < m.size)
    });
    let Some(m) = grant else {
        return Err(());
    };
    let offset = page.hpa - m.physical.get();
    Ok(
        if page.gpa.checked_sub(m.virtual_address.get()) != Some(offset) {
            Some(format!(
                "device memory \"{}\" is not granted at this address",
                m.logical
            ))
        } else if (page.writable && !m.writable) || (page.executable && !m.executable) {
            Some(format!(
                "device memory \"{}\" mapped {}, granted {}",
                m.logical,
                rights_text(page.writable, page.executable),
                rights_text(m.writable, m.executable)
            ))
        } else if page.memory_type != m.caching.memory_type() {
            Some(format!(
                "device memory \"{}\" has EPT memory type {}, the device's is {} ({})",
                m.logical,
                page.memory_type,
                m.caching.memory_type(),
                m.caching.as_str()
            ))
        } else {
            None
        },
    )
}

/// For a page in a VM's program memory mapped by subject `id`: `None` if
/// this is not such a page (the other checks decide), `Some(None)` if `id`
/// is the monitor of the VM's virtio console and the page is the VM's
/// memory at `guestMemory` + the guest-physical address the VM's EPT maps
/// to the same host page, not executable; else `Some(problem)`.
fn guest_view_problem(layers: &Layers<'_>, id: SubjectId, page: EptPage) -> Option<Option<String>> {
    let region = layers.memory.region_at(page.hpa)?;
    let RegionOwner::Subject(vm) = region.owner else {
        return None;
    };
    if vm == id || region.kind != RegionKind::Program {
        return None;
    }
    let input = layers.input;
    let console = input
        .subjects
        .get(vm.index())?
        .monitor
        .as_ref()
        .and_then(|m| Some((m.event, m.virtio_console?)));
    let (event, console) = console?;
    let monitor = input
        .subjects
        .iter()
        .position(|s| s.target_events.iter().any(|t| t.event == event));
    if monitor != Some(id.index()) {
        return None;
    }
    let Some(guest) = page.gpa.checked_sub(console.guest_memory) else {
        return Some(Some("below the VM's guest memory view".into()));
    };
    let root = layers.ept_roots.get(vm.index())?;
    let translated = translate_in(Format::Ept, layers.memory, *root, guest).map(|t| t.output);
    Some(if translated != Some(page.hpa) {
        Some(format!(
            "host page of VM region \"{}\" is not its guest-physical {guest:#x}",
            region.name
        ))
    } else if page.executable {
        Some("VM memory mapped executable for its monitor".into())
    } else {
        None
    })
}

/// Why `page` must not be in this subject's EPT; `None` if it may.
fn placement_problem(
    input: &SystemInput,
    memory: &Physical<'_>,
    id: SubjectId,
    granted: &SubjectInput,
    tables: &BTreeMap<u64, u64>,
    page: EptPage,
) -> Option<String> {
    if let Ok(verdict) = device_memory_problem(granted, page) {
        return verdict;
    }
    let EptPage {
        gpa,
        hpa,
        writable,
        executable,
        ..
    } = page;
    if let Some((window, _)) = KERNEL_WINDOWS
        .iter()
        .find(|(_, w)| (w.start.get()..w.end()).contains(&hpa))
    {
        return Some(format!("host page lies in {window}"));
    }
    let Some(region) = memory.region_at(hpa) else {
        return Some("host page lies in no composed region".into());
    };
    let own = region.owner == RegionOwner::Subject(id);
    let offset = hpa - region.start.get();
    match region.kind {
        RegionKind::KernelWindow
        | RegionKind::KernelPageTables
        | RegionKind::Vmxon
        | RegionKind::Vmcs
        | RegionKind::IoBitmaps
        | RegionKind::MsrBitmap
        | RegionKind::Ept
        | RegionKind::Pristine
        | RegionKind::VtdTables => Some(format!(
            "host page lies in {:?} region \"{}\"",
            region.kind, region.name
        )),
        // A VM's APIC-access page: its own, at the xAPIC's address only,
        // never executable (the CPU virtualises every access to it).
        RegionKind::ApicAccess
            if own
                && gpa == septum_kerncore::vm::lapic::XAPIC_GPA
                && offset == 0
                && !executable =>
        {
            None
        }
        RegionKind::ApicAccess => Some(format!(
            "host page lies in APIC-access page \"{}\" at the wrong place or with execute",
            region.name
        )),
        RegionKind::GuestPageTables if !own => Some(format!(
            "host page lies in another subject's page tables \"{}\"",
            region.name
        )),
        RegionKind::GuestPageTables => match tables.get(&gpa) {
            Some(&walked) if walked == hpa && !writable && !executable => None,
            Some(_) => Some(format!(
                "own page-table page mapped {} or at the wrong host page",
                rights_text(writable, executable)
            )),
            None => Some("own page-table region mapped where the walk found no table".into()),
        },
        RegionKind::Program | RegionKind::InfoPage | RegionKind::Stack if !own => Some(format!(
            "host page lies in private region \"{}\" of another subject",
            region.name
        )),
        RegionKind::Program | RegionKind::InfoPage | RegionKind::Stack => None,
        RegionKind::Memory => {
            let grant = granted.maps.iter().find(|m| {
                input
                    .regions
                    .get(m.region)
                    .is_some_and(|r| r.name == region.name)
                    && gpa.checked_sub(m.virtual_address.get()) == Some(offset)
            });
            match grant {
                None => Some(format!(
                    "memory region \"{}\" is not granted at this address",
                    region.name
                )),
                Some(m) if (writable && !m.writable) || (executable && !m.executable) => {
                    Some(format!(
                        "memory region \"{}\" mapped {}, granted {}",
                        region.name,
                        rights_text(writable, executable),
                        rights_text(m.writable, m.executable)
                    ))
                }
                Some(_) => None,
            }
        }
        RegionKind::Channel => {
            let end = granted.channels.iter().find(|c| {
                input
                    .channels
                    .get(c.channel)
                    .is_some_and(|ch| ch.name == region.name)
                    && gpa.checked_sub(c.virtual_address.get()) == Some(offset)
            });
            match end {
                None => Some(format!(
                    "channel \"{}\" is not granted at this address",
                    region.name
                )),
                Some(c) if (writable && !c.writer) || executable => Some(format!(
                    "channel \"{}\" mapped {} for a {}",
                    region.name,
                    rights_text(writable, executable),
                    if c.writer { "writer" } else { "reader" }
                )),
                Some(_) => None,
            }
        }
    }
}
