//! The composition pipeline: from a validated system to placed regions and
//! built tables, in the order that keeps every size known before it is
//! placed.
//!
//! 1. Fixed regions (`physicalAddress`) are reserved, then the crash-audit
//!    region is taken from the top of RAM ([`crate::placement`],
//!    [`crate::crash_audit`]); it is not a loaded region.
//! 2. Data regions are allocated, in a fixed order: VMXON per CPU; per
//!    subject its VMCS, I/O bitmaps, MSR bitmap, info page, stack and one
//!    region per ELF segment; then `<memory>` regions; then channels
//!    ([`crate::placement`]).
//! 3. Each subject's address space is laid out, checked, and its IA-32e
//!    page tables are built and placed; 4. its EPT is built and placed, its
//!    profile chooses its VMX state, its events are resolved and its info
//!    page is written ([`crate::subjects`], [`crate::events`],
//!    [`crate::profile`]).
//! 5. The kernel's identity tables (kernel windows, VMXON and VMCS regions,
//!    the crash-audit region and the I/O APIC's registers uncached) are
//!    built and placed; the IRQ routes ([`crate::interrupts`]) are decided
//!    before the subjects, whose VMX controls depend on them.
//! 6. The plan is converted to TSC cycles ([`crate::plan`]) and the boot
//!    major frame's length is written into every info page.
//!
//! Everything is a pure function of the input: the same input gives the
//! same regions, bytes and addresses.

use septum_abi::layout::{KERNEL_DATA, KERNEL_RODATA, KERNEL_TEXT, PAGE_SIZE};
use septum_abi::{PhysAddr, SubjectId, TscCycles, VirtAddr};

use crate::crash_audit::CrashAudit;
use crate::error::{ComposeError, Origin, fail};
use crate::events;
use crate::info;
use crate::input::{Caching, SystemInput};
use crate::interrupts;
use crate::paging::{Format, KernelTables, Rights};
use crate::placement::{self, Placer, RegionRequest};
use crate::plan;
use crate::pristine;
use crate::subjects::{self, SubjectContext};
use crate::system::{Composition, DeviceOwner, DeviceOwnership, RegionKind, SubjectOut};

/// Compose a system.
pub fn compose(input: &SystemInput) -> Result<Composition, ComposeError> {
    if input.subjects.len() > usize::from(u16::MAX) - 1 {
        return fail(format!(
            "{} subjects exceed the limit of 65534",
            input.subjects.len()
        ));
    }
    let cpu_count = plan::cpu_count(input);
    let mut placer = Placer::new(input);

    // 1.-2. Fixed and data regions.
    let placed = placement::place_regions(input, &mut placer, cpu_count)?;
    let vmxon: Vec<PhysAddr> = placed
        .vmxon
        .iter()
        .map(|&i| placer.region(i).start)
        .collect();

    // 3.-4. Per-subject address spaces.
    let targets = events::targets(input);
    let interrupts = interrupts::routes(input)?;
    let pci_grants = crate::pcicfg::grants(input)?;
    let ctx = SubjectContext {
        input,
        placed: &placed,
        targets: &targets,
        interrupts: &interrupts,
    };
    let mut subjects = Vec::with_capacity(input.subjects.len());
    for (si, (s, own)) in input.subjects.iter().zip(&placed.subjects).enumerate() {
        placer.origin = Some(Origin::Subject(si));
        let subject = subjects::compose_subject(&ctx, &mut placer, SubjectId(si as u16), s, own)
            .map_err(|e| e.at(Origin::Subject(si)))?;
        subjects.push(subject);
    }

    // The VT-d tables (their windows are placed `<memory>` regions).
    placer.origin = None;
    let window = |r: usize| {
        let region = placer.region(placed.memory[r]);
        (region.start, input.regions[r].size)
    };
    let windows: Vec<_> = (0..input.regions.len()).map(window).collect();
    let vtd = crate::vtd::compose(&input.vtd, &mut placer, &|r| windows[r])?;

    // 5. Pristine copies for restarts, then the kernel's own tables.
    let restart_images = pristine::plan(&mut placer, &subjects)?;
    placer.origin = None;
    let mut state_pages = crate::monitor::kernel_mappings(input, &subjects);
    state_pages.extend(crate::timed::kernel_mappings(input, &subjects));
    let kernel_pml4 = kernel_tables(
        &mut placer,
        &KernelMaps {
            vmxon: &vmxon,
            subjects: &subjects,
            state_pages: &state_pages,
            crash_audit: &placed.crash_audit,
            restart_maps: &pristine::identity_maps(&restart_images),
            ioapic: interrupts.ioapic,
            msi_windows: &interrupts.msi_windows,
            vtd: &vtd,
        },
    )?;

    // 6. The plan; every info page carries the boot major frame's length,
    // known only now.
    let schedule =
        plan::schedule(input, cpu_count as usize).map_err(|e| e.at(Origin::Scheduling))?;
    let boot_major = schedule
        .major_frames
        .first()
        .map_or(TscCycles(0), |m| m.length);
    for own in &placed.subjects {
        info::set_major_frame_cycles(&mut placer.region_mut(own.info).content, boot_major)
            .map_err(|e| ComposeError::new(format!("info page: {e}")))?;
    }
    let console = &input.hardware.devices[input.debug_console];
    let Some(uart) = console.io_ports.first() else {
        return fail(format!(
            "debug console \"{}\" has no I/O port range",
            console.name
        ));
    };
    let device_owners = device_owners(input);
    let mut regions = placer.into_regions();
    for region in &mut regions {
        let trimmed = region
            .content
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |p| p + 1);
        region.content.truncate(trimmed);
    }
    Ok(Composition {
        name: input.name.clone(),
        kernel_pml4,
        debug_uart_port: uart.start,
        debug_console: console.name.clone(),
        console_input: input.console_input,
        tsc_khz: input.hardware.speed_khz,
        cpu_count,
        vmxon,
        apic_ids: input
            .hardware
            .apic_ids
            .iter()
            .copied()
            .take(cpu_count as usize)
            .collect(),
        regions,
        subjects,
        schedule,
        device_owners,
        crash_audit: placed.crash_audit,
        restart_images,
        interrupts,
        vtd,
        pci_grants,
    })
}

/// What the kernel's own page tables map besides its windows.
#[derive(Clone, Copy)]
struct KernelMaps<'a> {
    vmxon: &'a [PhysAddr],
    subjects: &'a [SubjectOut],
    /// Monitored subjects' state pages (`crate::monitor`).
    state_pages: &'a [(PhysAddr, Caching)],
    crash_audit: &'a CrashAudit,
    /// Pristine images and their targets (`crate::pristine`).
    restart_maps: &'a [(PhysAddr, u64, bool)],
    /// The I/O APIC's register page, with IRQ routes.
    ioapic: Option<PhysAddr>,
    /// Device memory of MSI-routed devices, for their MSI-X tables.
    msi_windows: &'a [septum_kerncore::msi::DeviceWindow],
    vtd: &'a septum_kerncore::vtd::VtdSpec<septum_kerncore::spec::Owned>,
}

/// Build and place the kernel's page tables: the kernel windows with their
/// rights, the VMXON and VMCS regions read-write, no execute, and the
/// crash-audit region read-write, no execute, uncached (PCD|PWT: a record
/// is in RAM, not in a cache line, when the reset comes; docs/crash.md),
/// all identity-mapped; with IRQ routes, also the I/O APIC's register page
/// and the local APIC's xAPIC page (for processors without x2APIC),
/// read-write, no execute, uncached; and the IOMMU register pages and the
/// memory of MSI-routed devices likewise.
/// Returns the PML4's address.
fn kernel_tables(placer: &mut Placer, maps: &KernelMaps<'_>) -> Result<PhysAddr, ComposeError> {
    let KernelMaps {
        vmxon,
        subjects,
        state_pages,
        crash_audit,
        restart_maps,
        ioapic,
        msi_windows,
        vtd,
    } = *maps;
    let mut kernel = KernelTables::new(Format::Ia32e, true);
    let mut identity = |start: PhysAddr, size: u64, rights: Rights| {
        kernel
            .map(VirtAddr(start.get()), start, size, rights)
            .map_err(|e| ComposeError::new(format!("kernel page tables: {e}")))
    };
    let wb = |writable, executable| Rights::of(writable, executable, Caching::Wb);
    identity(KERNEL_TEXT.start, KERNEL_TEXT.size, wb(false, true))?;
    identity(KERNEL_RODATA.start, KERNEL_RODATA.size, wb(false, false))?;
    identity(KERNEL_DATA.start, KERNEL_DATA.size, wb(true, false))?;
    for &at in vmxon {
        identity(at, PAGE_SIZE, wb(true, false))?;
    }
    for s in subjects {
        identity(s.vmcs, PAGE_SIZE, wb(true, false))?;
    }
    // Monitored subjects' state pages (`crate::monitor`).
    for &(page, caching) in state_pages {
        identity(page, PAGE_SIZE, Rights::of(true, false, caching))?;
    }
    let uncached = Rights {
        uncached: true,
        ..Rights::of(true, false, Caching::Uc)
    };
    identity(crash_audit.start, crash_audit.size, uncached)?;
    for &(start, size, writable) in restart_maps {
        identity(start, size, wb(writable, false))?;
    }
    if let Some(ioapic) = ioapic {
        identity(ioapic, PAGE_SIZE, uncached)?;
        // The local APIC's xAPIC page, for processors without x2APIC.
        identity(septum_kerncore::irq::XAPIC_BASE, PAGE_SIZE, uncached)?;
    }
    // The IOMMUs' register pages, uncached (docs/kernel.md, VT-d).
    for unit in &vtd.iommus {
        identity(unit.registers, PAGE_SIZE, uncached)?;
    }
    // MSI-routed devices' memory, for their MSI-X tables (docs/kernel.md,
    // "MSI and MSI-X").
    for window in msi_windows {
        identity(window.start, window.size, uncached)?;
    }
    let tables = placer.place(RegionRequest::kernel(
        "pt",
        RegionKind::KernelPageTables,
        kernel.page_count() as u64 * PAGE_SIZE,
    ))?;
    let pml4 = placer.region(tables).start;
    placer.region_mut(tables).content = kernel.to_bytes(pml4);
    Ok(pml4)
}

/// Every hardware device in description order, with each owner; devices
/// nobody owns are listed too, so the report accounts for all of them.
fn device_owners(input: &SystemInput) -> Vec<DeviceOwnership> {
    let mut out = Vec::new();
    for (di, device) in input.hardware.devices.iter().enumerate() {
        let before = out.len();
        let owned = |owner| DeviceOwnership {
            device: device.name.clone(),
            owner,
        };
        if di == input.debug_console {
            out.push(owned(DeviceOwner::Kernel));
        }
        for s in &input.subjects {
            for grant in s.devices.iter().filter(|g| g.device == di) {
                out.push(owned(DeviceOwner::Subject {
                    subject: s.name.clone(),
                    logical: grant.logical.clone(),
                }));
            }
        }
        if out.len() == before {
            out.push(owned(DeviceOwner::Nobody));
        }
    }
    out
}
