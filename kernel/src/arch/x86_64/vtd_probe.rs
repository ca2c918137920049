//! The VT-d probe (feature `vtd-probe`, test builds only): drives QEMU's
//! `edu` PCI device from root mode after [`super::vtd::enable`] has
//! programmed the IOMMU from the composed tables exactly as a normal boot
//! does, and reports what the IOMMU let through.
//!
//! QEMU has no VT-x under TCG, so this build skips VMX and runs the checks
//! itself (`cargo xtask test` runs it in `qemu-system-x86_64 -machine q35
//! -device intel-iommu,intremap=on -device edu`; docs/testing.md):
//!
//! 1. a DMA from the domain's window into the device and back into the
//!    window's second page succeeds (the bytes arrive);
//! 2. a DMA to an address outside the domain (the physical address of a
//!    kernel buffer, which it would hit without an IOMMU) is blocked,
//!    signalled by the unit's fault event at vector 253 (pending in the
//!    local APIC's IRR: the probe runs with interrupts off and no VMX, so
//!    the external-interrupt exit that acknowledges it in a normal boot
//!    cannot happen here), reported as a fault naming the device and the
//!    address, and the buffer is unchanged;
//! 3. the MSI the kernel programmed at boot from the spec (`msi::init`,
//!    as in every boot) holds the composed remappable handle; a write of
//!    another address by the owner (through the configuration emulation,
//!    `pcicfg::perform`, as the owner's port accesses go) is dropped; the
//!    owner's MSI Enable goes through; edu raises it; the probe takes the
//!    interrupt with its own IDT (what acknowledge-on-exit does in a VM
//!    exit) and hands the vector to `interrupts::route`, the exit path's
//!    routing: it arrives at host vector 32 + IRQ and is pending for the
//!    owner at the policy's vector;
//!    the MSI-X table of the e1000e the policy also gives the driver holds
//!    the composed messages, masked, MSI-X disabled; the owner may enable
//!    it (with interrupt remapping); its unmasked entry 1 delivers to the
//!    owner at its vector + 1, and the entry the owner rewrites with
//!    edu's remappable handle is blocked (the source-id check);
//! 4. an MSI through the remapping entry the policy gives the device
//!    reaches the local APIC (its vector is pending in the IRR); an MSI
//!    through an entry the table does not have does not, nor one through
//!    the entry of another requester (the I/O APIC's line). A
//!    compatibility-format MSI must be blocked too (the kernel leaves
//!    GSTS.CFIS clear, which the probe checks), but QEMU does not model
//!    that gate and delivers it: the probe prints what QEMU did.
//!
//! The device's registers are in its BAR, which the composer does not map
//! for the kernel, so the probe switches to its own page tables first: the
//! low 4 GiB identity-mapped with 2 MiB pages (uncached above 3 GiB), which
//! covers the kernel, the composed regions, the BAR, the IOMMU and the
//! local APIC. The remapping setup it tests is the normal one. PCI
//! configuration space is reached through ports 0xCF8/0xCFC. Each check
//! prints one `vtd probe:` line; the last says `passed` or `FAILED`, and
//! the probe ends QEMU through the isa-debug-exit port.

use core::arch::{asm, global_asm};
use core::sync::atomic::{AtomicU64, Ordering};

use septum_kerncore::irq::Vector;
use septum_kerncore::pcicfg::{CONFIG_ADDRESS, CONFIG_DATA, PortAccess, hardware_address};
use septum_kerncore::vtd::{FAULT_EVENT_VECTOR, SourceId};

use super::{cpu, interrupts, msi, pcicfg, vtd};
use crate::kprintln;
use crate::system::{INTERRUPTS, MSI, SPEC, VTD};

/// QEMU's edu device: vendor 0x1234, device 0x11e8.
const EDU_ID: u32 = 0x11e8_1234;
/// edu registers (QEMU docs/specs/edu.rst).
const EDU_IDENT: u64 = 0x00;
const EDU_RAISE: u64 = 0x60;
const EDU_ACK: u64 = 0x64;
const EDU_DMA_SRC: u64 = 0x80;
const EDU_DMA_DST: u64 = 0x88;
const EDU_DMA_COUNT: u64 = 0x90;
const EDU_DMA_CMD: u64 = 0x98;
/// DMA command: run; direction device to RAM.
const DMA_RUN: u64 = 1;
const DMA_TO_RAM: u64 = 2;
/// The device's internal buffer, as its DMA registers address it.
const EDU_BUFFER: u64 = 0x4_0000;
/// Bytes each DMA moves.
const DMA_BYTES: usize = 64;
/// Port of QEMU's isa-debug-exit device (`iobase=0xf4`).
const DEBUG_EXIT: u16 = 0xf4;
/// The remapping table index (= IRQ number) the probe policy gives edu's
/// MSI, and one it does not give.
const ALLOWED_INDEX: u32 = 48;
const ABSENT_INDEX: u32 = 49;
/// Host vector of IRQ n (the composer's rule: 32 + n).
const VECTOR_BASE: u32 = 32;

/// A 4 KiB-aligned page-table page.
#[repr(C, align(4096))]
struct Table([u64; 512]);

/// The probe's page tables: PML4, PDPT, four page directories.
static mut TABLES: [Table; 6] = [const { Table([0; 512]) }; 6];

/// A page-aligned kernel buffer a stray DMA would hit: it must stay as
/// it is.
#[repr(C, align(4096))]
struct Sentinel([u8; 4096]);

static mut SENTINEL: Sentinel = Sentinel([0x5a; 4096]);

fn write_cr3_identity() {
    const PRESENT_WRITABLE: u64 = 0b11;
    const LARGE: u64 = 1 << 7;
    const UNCACHED: u64 = 0b11 << 3;
    // Safety: the probe runs on the boot CPU alone, before anything else
    // uses these statics; the tables identity-map the low 4 GiB, which
    // hold the running code, its stack and data, so the switch keeps every
    // address the kernel uses valid.
    unsafe {
        let tables = &raw mut TABLES;
        let tables = &mut *tables;
        let address = |table: &Table| core::ptr::from_ref(table) as u64;
        let [pml4, pdpt, directories @ ..] = tables;
        let pdpt_address = address(pdpt);
        if let Some(entry) = pml4.0.first_mut() {
            *entry = pdpt_address | PRESENT_WRITABLE;
        }
        for (gib, (directory, pointer)) in directories.iter_mut().zip(pdpt.0.iter_mut()).enumerate()
        {
            *pointer = address(directory) | PRESENT_WRITABLE;
            let caching = if gib == 3 { UNCACHED } else { 0 };
            for (n, entry) in directory.0.iter_mut().enumerate() {
                let start = (gib as u64) << 30 | (n as u64) << 21;
                *entry = start | PRESENT_WRITABLE | LARGE | caching;
            }
        }
        cpu::write_cr3(address(pml4));
    }
}

/// Writes a 32-bit value to an I/O port.
///
/// # Safety
/// The port must be one whose write has no effect on memory safety (here:
/// the PCI configuration address and data ports).
unsafe fn outl(port: u16, value: u32) {
    // Safety: the caller guarantees the port is harmless to write.
    unsafe {
        core::arch::asm!("out dx, eax", in("dx") port, in("eax") value, options(nomem, nostack, preserves_flags));
    }
}

/// Reads a 32-bit value from an I/O port.
///
/// # Safety
/// As for [`outl`].
unsafe fn inl(port: u16) -> u32 {
    let value: u32;
    // Safety: the caller guarantees the port is harmless to read.
    unsafe {
        core::arch::asm!("in eax, dx", in("dx") port, out("eax") value, options(nomem, nostack, preserves_flags));
    }
    value
}

fn config_address(source: SourceId, offset: u8) -> u32 {
    1 << 31 | u32::from(source.0) << 8 | u32::from(offset & 0xfc)
}

fn config_read(source: SourceId, offset: u8) -> u32 {
    // Safety: ports 0xCF8/0xCFC are the PCI configuration mechanism; the
    // probe is the only user.
    unsafe {
        outl(0xcf8, config_address(source, offset));
        inl(0xcfc)
    }
}

fn config_write(source: SourceId, offset: u8, value: u32) {
    // Safety: as in `config_read`.
    unsafe {
        outl(0xcf8, config_address(source, offset));
        outl(0xcfc, value);
    }
}

fn mmio_read(address: u64) -> u64 {
    // Safety: `address` is an edu or local APIC register, identity-mapped
    // uncached by the probe's tables.
    unsafe { core::ptr::read_volatile(address as *const u64) }
}

fn mmio_read32(address: u64) -> u32 {
    // Safety: as in `mmio_read`.
    unsafe { core::ptr::read_volatile(address as *const u32) }
}

fn mmio_write(address: u64, value: u64) {
    // Safety: as in `mmio_read`; the registers are the device's.
    unsafe { core::ptr::write_volatile(address as *mut u64, value) }
}

fn mmio_write32(address: u64, value: u32) {
    // Safety: as in `mmio_write`.
    unsafe { core::ptr::write_volatile(address as *mut u32, value) }
}

fn ram_read(address: u64, out: &mut [u8]) {
    for (i, byte) in out.iter_mut().enumerate() {
        // Safety: `address` is in the domain's window or the sentinel, RAM
        // identity-mapped by the probe's tables.
        *byte = unsafe { core::ptr::read_volatile(address.wrapping_add(i as u64) as *const u8) };
    }
}

fn ram_write(address: u64, bytes: &[u8]) {
    for (i, byte) in bytes.iter().enumerate() {
        // Safety: as in `ram_read`; the window is the probe policy's DMA
        // buffer, which no subject uses in this build.
        unsafe { core::ptr::write_volatile(address.wrapping_add(i as u64) as *mut u8, *byte) }
    }
}

/// Runs one edu DMA and waits until the device says it is done.
fn dma(bar: u64, source: u64, destination: u64, to_ram: bool) -> bool {
    mmio_write(bar.wrapping_add(EDU_DMA_SRC), source);
    mmio_write(bar.wrapping_add(EDU_DMA_DST), destination);
    mmio_write(bar.wrapping_add(EDU_DMA_COUNT), DMA_BYTES as u64);
    let command = if to_ram {
        DMA_RUN | DMA_TO_RAM
    } else {
        DMA_RUN
    };
    mmio_write(bar.wrapping_add(EDU_DMA_CMD), command);
    // edu starts the transfer 100 ms of virtual time later.
    for _ in 0..200_000_000u32 {
        if mmio_read(bar.wrapping_add(EDU_DMA_CMD)) & DMA_RUN == 0 {
            return true;
        }
        cpu::pause();
    }
    false
}

/// Whether `vector` is pending in the local APIC's IRR.
fn pending(apic: u64, vector: u32) -> bool {
    let register = apic
        .wrapping_add(0x200)
        .wrapping_add(u64::from(vector / 32) * 0x10);
    mmio_read32(register) & (1 << (vector % 32)) != 0
}

/// Points edu's MSI at `address`/`data` and raises one interrupt.
fn raise_msi(source: SourceId, msi: u8, bar: u64, address: u32, data: u16) {
    config_write(source, msi.wrapping_add(4), address);
    config_write(source, msi.wrapping_add(8), 0);
    config_write(source, msi.wrapping_add(12), u32::from(data));
    let control = config_read(source, msi);
    config_write(source, msi, control | 1 << 16);
    mmio_write32(bar.wrapping_add(EDU_RAISE), 1);
    mmio_write32(bar.wrapping_add(EDU_ACK), 1);
}

/// The remappable-format MSI address for table index `index`.
const fn remappable(index: u32) -> u32 {
    0xfee0_0000 | (index & 0x7fff) << 5 | 1 << 4 | (index >> 15 & 1) << 2
}

/// Runs the probe and ends QEMU; does not return (declared `()` so the
/// boot code after the call still type-checks without an unreachable-code
/// warning in this build).
pub fn run() {
    let passed = checks();
    kprintln!("vtd probe: {}", if passed { "passed" } else { "FAILED" });
    crate::console::drain();
    // Safety: writing the isa-debug-exit port ends QEMU; it exists only in
    // the probe's QEMU machine, and elsewhere the write is ignored.
    unsafe { cpu::outb(DEBUG_EXIT, u8::from(!passed)) };
    cpu::halt_forever()
}

fn checks() -> bool {
    write_cr3_identity();
    let Some((source, domain)) = (0..32u8).find_map(|device| {
        let id = SourceId::new(0, device, 0);
        (config_read(id, 0) == EDU_ID).then_some(id).and_then(|id| {
            VTD.devices
                .iter()
                .find(|d| d.source == id)
                .map(|d| (id, d.domain))
        })
    }) else {
        kprintln!("vtd probe: no edu device with a device domain on bus 0");
        return false;
    };
    let Some(window) = VTD
        .domains
        .get(usize::from(domain))
        .and_then(|d| d.windows.first())
        .filter(|w| w.writable && w.size >= 0x2000)
    else {
        kprintln!("vtd probe: edu's domain has no writable two-page window");
        return false;
    };
    // Memory space and bus mastering on; BAR 0 is edu's 1 MiB of registers.
    let command = config_read(source, 4);
    config_write(source, 4, command | 0b110);
    let bar = u64::from(config_read(source, 0x10) & !0xf);
    let line = config_read(source, 0x3c) & 0xff;
    kprintln!(
        "vtd probe: edu at {source}, BAR0 {bar:#x}, interrupt line {line}, ident {:#x}",
        mmio_read32(bar.wrapping_add(EDU_IDENT))
    );
    let mut ok = true;

    // 1. Into the domain: window page 0 -> device -> window page 1.
    let pattern: [u8; DMA_BYTES] = core::array::from_fn(|i| (i as u8).wrapping_mul(7) ^ 0xa5);
    let (page0, page1) = (
        window.physical.get(),
        window.physical.get().wrapping_add(0x1000),
    );
    ram_write(page0, &pattern);
    ram_write(page1, &[0; DMA_BYTES]);
    let iova = window.address.get();
    let moved =
        dma(bar, iova, EDU_BUFFER, false) && dma(bar, EDU_BUFFER, iova.wrapping_add(0x1000), true);
    let mut arrived = [0u8; DMA_BYTES];
    ram_read(page1, &mut arrived);
    let inside = moved && arrived == pattern && vtd::report_faults() == 0;
    kprintln!(
        "vtd probe: DMA inside the domain (I/O address {iova:#x} -> {page0:#x}, {:#x} -> {page1:#x}): {}",
        iova.wrapping_add(0x1000),
        if inside { "done" } else { "FAILED" }
    );
    ok &= inside;

    // Software-enable the local APIC (spurious vector 0xff); interrupts
    // stay disabled, so a delivered vector waits in the IRR. Then let the
    // unit signal faults, as the kernel does once the boot CPU's APIC is
    // ready (`interrupts::init_cpu`).
    let apic = cpu::rdmsr(0x1b) & 0xf_ffff_f000;
    mmio_write32(apic.wrapping_add(0xf0), 0x1ff);
    vtd::unmask_fault_events();

    // 2. Outside: the sentinel's physical address is not in the domain.
    // The fault is signalled at the fault event's vector (what the exit
    // path acknowledges and hands to `vtd::report_faults`).
    let event = u32::from(FAULT_EVENT_VECTOR);
    let quiet_before = !pending(apic, event);
    let sentinel = (&raw const SENTINEL) as u64;
    let completed = dma(bar, EDU_BUFFER, sentinel, true);
    let mut after = [0u8; DMA_BYTES];
    ram_read(sentinel, &mut after);
    let unchanged = after.iter().all(|&b| b == 0x5a);
    let signalled = quiet_before && pending(apic, event);
    kprintln!(
        "vtd probe: fault event at vector {event}: {}",
        if signalled {
            "delivered"
        } else {
            "NOT delivered"
        }
    );
    // What the exit path does with the fault event (`interrupts::route`):
    // read and clear the records, no line; the lines come in idle time.
    let taken = vtd::take_faults();
    let faults = vtd::print_held(usize::MAX);
    let outside = completed && unchanged && faults > 0 && faults == taken && signalled;
    kprintln!(
        "vtd probe: DMA outside the domain (to {sentinel:#x}): {}, {faults} fault(s) reported, memory {}",
        if faults > 0 { "blocked" } else { "NOT blocked" },
        if unchanged { "unchanged" } else { "CHANGED" }
    );
    ok &= outside;

    // 3. edu's MSI as a normal boot leaves it (`msi::init`), enabled by
    // its owner through the configuration-space emulation, raised, taken
    // and routed as the exit path routes it.
    ok &= routed_msi(source, bar, apic);
    ok &= msix_table(apic);

    // 4. MSIs: the capability list from offset 0x34; MSI is id 0x05.
    let mut cap = (config_read(source, 0x34) & 0xfc) as u8;
    let mut msi = None;
    for _ in 0..48 {
        if cap == 0 {
            break;
        }
        let header = config_read(source, cap);
        if header & 0xff == 0x05 {
            msi = Some(cap);
            break;
        }
        cap = ((header >> 8) & 0xfc) as u8;
    }
    let Some(msi) = msi else {
        kprintln!("vtd probe: edu has no MSI capability");
        return false;
    };
    let allowed_vector = VECTOR_BASE + ALLOWED_INDEX;
    let absent_vector = VECTOR_BASE + ABSENT_INDEX;
    raise_msi(source, msi, bar, remappable(ALLOWED_INDEX), 0);
    let delivered = pending(apic, allowed_vector);
    kprintln!(
        "vtd probe: MSI through entry {ALLOWED_INDEX} (the policy's): {}",
        if delivered {
            "delivered"
        } else {
            "NOT delivered"
        }
    );
    raise_msi(source, msi, bar, remappable(ABSENT_INDEX), 0);
    let absent_blocked = !pending(apic, absent_vector);
    let faults = vtd::report_faults();
    kprintln!(
        "vtd probe: MSI through entry {ABSENT_INDEX} (not in the table): {}, {faults} fault(s) reported",
        if absent_blocked {
            "blocked"
        } else {
            "DELIVERED"
        }
    );
    // An entry that exists but names another requester (the I/O APIC's,
    // for the driver's line): the entry's source-id check must block it.
    // This is what confines an MSI-X table its owner rewrites.
    let foreign = INTERRUPTS
        .routes
        .first()
        .map(|route| u32::from(route.line.0));
    let foreign_blocked = foreign.is_some_and(|line| {
        raise_msi(source, msi, bar, remappable(line), 0);
        !pending(apic, VECTOR_BASE.wrapping_add(line))
    });
    let faults = vtd::report_faults();
    kprintln!(
        "vtd probe: MSI through entry {} (the I/O APIC's line, another requester): {}, {faults} fault(s) reported",
        foreign.unwrap_or(0),
        if foreign_blocked {
            "blocked"
        } else {
            "DELIVERED"
        }
    );
    // A compatibility-format MSI bypasses the table. VT-d blocks it while
    // GSTS.CFIS is clear (spec 5.1.4); QEMU (7.2 and later) does not model
    // that gate and delivers it, so the probe checks what the kernel asked
    // for (CFIS clear) and reports what QEMU did, without judging QEMU.
    let cfis_clear = vtd::global_status(0).is_some_and(|gsts| gsts & 1 << 23 == 0);
    raise_msi(source, msi, bar, 0xfee0_0000, absent_vector as u16);
    let compat_delivered = pending(apic, absent_vector);
    kprintln!(
        "vtd probe: compatibility-format MSI (vector {absent_vector}): CFIS {} (blocked by VT-d), QEMU {} it",
        if cfis_clear { "clear" } else { "SET" },
        if compat_delivered {
            "delivers"
        } else {
            "blocks"
        }
    );
    ok && delivered && absent_blocked && foreign_blocked && cfis_clear
}

/// The probe's IDT: the kernel's 32 exception gates, then every vector
/// from 32 on to `septum_probe_interrupt`. 256 gates of 16 bytes.
#[repr(C, align(16))]
struct ProbeIdt([u64; 512]);

static mut PROBE_IDT: ProbeIdt = ProbeIdt([0; 512]);

/// Vectors the probe's interrupt handler took (bit per vector).
static TAKEN: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
/// The local APIC's register page, for the handler.
static APIC_PAGE: AtomicU64 = AtomicU64::new(0);

// Saves the caller-saved registers (the CPU aligned RSP to 16 before its
// 40-byte frame; nine pushes realign it for the call), calls the handler,
// returns from the interrupt.
global_asm!(
    ".text",
    ".balign 16",
    ".global septum_probe_interrupt",
    "septum_probe_interrupt:",
    "push rax",
    "push rcx",
    "push rdx",
    "push rsi",
    "push rdi",
    "push r8",
    "push r9",
    "push r10",
    "push r11",
    "cld",
    "call {handler}",
    "pop r11",
    "pop r10",
    "pop r9",
    "pop r8",
    "pop rdi",
    "pop rsi",
    "pop rdx",
    "pop rcx",
    "pop rax",
    "iretq",
    handler = sym probe_interrupt,
);

unsafe extern "C" {
    /// The stub above.
    static septum_probe_interrupt: u8;
}

/// The CPU accepted an interrupt (what acknowledge-on-exit does in a VM
/// exit): note the in-service vector, end it.
extern "C" fn probe_interrupt() {
    let apic = APIC_PAGE.load(Ordering::Relaxed);
    for word in (0..8u64).rev() {
        let isr = mmio_read32(
            apic.wrapping_add(0x100)
                .wrapping_add(word.wrapping_mul(0x10)),
        );
        if isr != 0 {
            let vector = word
                .wrapping_mul(32)
                .wrapping_add(31)
                .wrapping_sub(u64::from(isr.leading_zeros()));
            if let Some(bits) = TAKEN.get((vector / 64) as usize) {
                bits.fetch_or(1 << (vector % 64), Ordering::Relaxed);
            }
            break;
        }
    }
    mmio_write32(apic.wrapping_add(0xb0), 0);
}

/// Pseudo-descriptor for SIDT/LIDT.
#[repr(C, packed)]
struct TablePointer {
    limit: u16,
    base: u64,
}

/// Route every vector in `taken` (as [`take_interrupts`] returns them) as
/// the exit path does: whether `host` was among them, and the subject its
/// route named.
fn route_taken(taken: &[u64; 4], host: u8) -> (bool, Option<septum_abi::SubjectId>) {
    let was_taken = |v: u8| {
        taken
            .get(usize::from(v / 64))
            .is_some_and(|b| b & 1 << (v % 64) != 0)
    };
    let mut routed_to = None;
    for vector in (0..=255u8).filter(|&v| was_taken(v)) {
        let to = interrupts::route(vector);
        if vector == host {
            routed_to = to;
        }
    }
    (was_taken(host), routed_to)
}

/// Opens an interrupt window in root mode with the probe's IDT: every
/// requested interrupt is taken and noted; returns the vectors taken.
fn take_interrupts(apic: u64) -> [u64; 4] {
    APIC_PAGE.store(apic, Ordering::Relaxed);
    for bits in &TAKEN {
        bits.store(0, Ordering::Relaxed);
    }
    let mut kernel = TablePointer { limit: 0, base: 0 };
    let code_segment: u64;
    // Safety: SIDT stores the IDTR into `kernel`; reading CS has no effect.
    unsafe {
        asm!("sidt [{}]", in(reg) &raw mut kernel, options(nostack, preserves_flags));
        asm!("mov {:r}, cs", out(reg) code_segment, options(nomem, nostack, preserves_flags));
    }
    let handler = (&raw const septum_probe_interrupt) as u64;
    let gate_low = (handler & 0xffff)
        | (code_segment & 0xffff) << 16
        | 0x8e << 40
        | ((handler >> 16) & 0xffff) << 48;
    let kernel_base = kernel.base;
    // Safety: the probe runs alone on the boot CPU; PROBE_IDT is its own.
    // The kernel's IDT has the 32 exception gates (512 bytes) at its base,
    // identity-mapped by the probe's tables, read as they are.
    let idt = unsafe {
        let idt = &raw mut PROBE_IDT;
        let idt = &mut *idt;
        for (i, word) in idt.0.iter_mut().enumerate() {
            *word = if i < 64 {
                core::ptr::read_volatile((kernel_base as *const u64).wrapping_add(i))
            } else if i % 2 == 0 {
                gate_low
            } else {
                handler >> 32
            };
        }
        TablePointer {
            limit: 256 * 16 - 1,
            base: core::ptr::from_ref(idt) as u64,
        }
    };
    // Safety: the probe's IDT keeps the kernel's exception gates and sends
    // every interrupt to the handler above, which saves what it uses and
    // returns; interrupts are on only for this short window, then the
    // kernel's IDT is back.
    unsafe {
        asm!("lidt [{}]", in(reg) &idt, options(readonly, nostack, preserves_flags));
        asm!("sti");
        for _ in 0..100_000u32 {
            cpu::pause();
        }
        asm!("cli");
        asm!("lidt [{}]", in(reg) &kernel, options(readonly, nostack, preserves_flags));
    }
    core::array::from_fn(|i| TAKEN.get(i).map_or(0, |b| b.load(Ordering::Relaxed)))
}

/// The owner's configuration access `access` after latching `register`
/// of `source`, through the kernel's emulation.
fn as_owner(
    owner: septum_abi::SubjectId,
    source: SourceId,
    register: u8,
    access: PortAccess,
) -> Option<Option<u32>> {
    pcicfg::perform(
        owner,
        PortAccess {
            port: CONFIG_ADDRESS,
            size: 4,
            write: Some(hardware_address(source, register)),
        },
    )?;
    pcicfg::perform(owner, access)
}

/// Check 3 (see the module doc).
fn routed_msi(source: SourceId, bar: u64, apic: u64) -> bool {
    let Some(route) = MSI.messages(source).next() else {
        kprintln!("vtd probe: the spec routes no MSI of edu");
        return false;
    };
    let (Some(expected), Some(cap), Some(host)) = (
        MSI.message(route),
        msi::msi_capability(source),
        septum_kerncore::irq::host_vector(route.irq),
    ) else {
        kprintln!("vtd probe: edu's MSI route has no message, capability or host vector");
        return false;
    };
    let owner = route.owner;
    let name = SPEC.subjects.get(owner.index()).map_or("?", |s| s.name);
    let Some((programmed, enabled)) = msi::read_back(source) else {
        return false;
    };
    let as_composed = programmed == expected && !enabled;
    kprintln!(
        "vtd probe: edu's MSI as the kernel programmed it at boot: address {:#x}, data {:#x} (IRQ {}, {}), {}: {}",
        programmed.address,
        programmed.data,
        route.irq.0,
        if MSI.remapped {
            "remappable"
        } else {
            "compatibility"
        },
        if enabled { "enabled" } else { "disabled" },
        if as_composed {
            "as composed"
        } else {
            "NOT as composed"
        }
    );
    // The owner tries to point it at the local APIC directly (a
    // compatibility-format address, which bypasses remapping).
    let Some(layout) = septum_kerncore::msi::msi_layout(cap, 0) else {
        return false;
    };
    let write = |value: u32| PortAccess {
        port: CONFIG_DATA,
        size: 4,
        write: Some(value),
    };
    let retarget = as_owner(owner, source, layout.address, write(0xfee0_0000));
    let kept = msi::read_back(source).is_some_and(|(now, _)| now == programmed);
    kprintln!(
        "vtd probe: the owner's write of address 0xfee00000 to edu's MSI: {}",
        match (retarget, kept) {
            (Some(None), true) => "dropped, address unchanged",
            (None, _) => "FAULTED",
            _ => "CHANGED the address",
        }
    );
    // The owner sets MSI Enable: a word write of the message control.
    let control = as_owner(
        owner,
        source,
        cap,
        PortAccess {
            port: CONFIG_DATA,
            size: 4,
            write: None,
        },
    )
    .flatten()
    .map_or(0, |dword| dword >> 16);
    let enable = as_owner(
        owner,
        source,
        cap,
        PortAccess {
            port: CONFIG_DATA + 2,
            size: 2,
            write: Some(control | 1),
        },
    );
    let now_enabled = msi::read_back(source).is_some_and(|(now, on)| now == programmed && on);
    kprintln!(
        "vtd probe: the owner sets MSI Enable through the configuration emulation: {}",
        if enable == Some(None) && now_enabled {
            "enabled"
        } else {
            "NOT enabled"
        }
    );
    // Raise it; take it; route it as the exit path does.
    let quiet_before = !pending(apic, u32::from(host.0));
    mmio_write32(bar.wrapping_add(EDU_RAISE), 1);
    let arrived = pending(apic, u32::from(host.0));
    let taken = take_interrupts(apic);
    mmio_write32(bar.wrapping_add(EDU_ACK), 1);
    let (host_taken, routed_to) = route_taken(&taken, host.0);
    let at_vector = interrupts::PENDING.highest(owner) == Some(route.vector);
    let delivered = quiet_before && arrived && host_taken && routed_to == Some(owner) && at_vector;
    kprintln!(
        "vtd probe: edu's MSI arrived at host vector {} and is pending for \"{name}\" at vector {}: {}",
        host.0,
        route.vector.0,
        if delivered { "yes" } else { "NOT" }
    );
    if delivered {
        interrupts::PENDING.clear(owner, Vector(route.vector.0));
    }
    as_composed && kept && now_enabled && delivered
}

/// QEMU's e1000e (the probe machine's MSI-X device): vendor 0x8086, device
/// 0x10d3.
const E1000E_ID: u32 = 0x10d3_8086;

/// Check 3, MSI-X: the table of the MSI-X device the spec routes (QEMU's
/// e1000e) holds the composed messages, every entry masked, MSI-X
/// disabled with its Function Mask set; the owner may enable it (interrupt
/// remapping confines the table, kernel.md "MSI and MSI-X").
fn msix_table(apic: u64) -> bool {
    let Some(nic) = MSI
        .devices()
        .map(|(first, _)| first.device)
        .find(|&d| pcicfg::config_read(d, 0) == E1000E_ID)
    else {
        kprintln!("vtd probe: the spec routes no MSI of an e1000e");
        return false;
    };
    let Some((cap, control)) = msi::msix_capability(nic) else {
        kprintln!("vtd probe: the e1000e has no MSI-X capability");
        return false;
    };
    let Some(table) =
        septum_kerncore::msi::msix_table(pcicfg::config_read(nic, cap.wrapping_add(4)), |bar| {
            pcicfg::config_read(nic, 0x10u8.wrapping_add(bar.wrapping_mul(4)))
        })
    else {
        return false;
    };
    let entries = u64::from(control & septum_kerncore::msi::MSIX_TABLE_SIZE).wrapping_add(1);
    let mut routes = MSI.messages(nic);
    let mut as_composed = true;
    for k in 0..entries {
        let at = table.get().wrapping_add(k.wrapping_mul(16));
        let found: [u32; 4] =
            core::array::from_fn(|i| mmio_read32(at.wrapping_add((i as u64).wrapping_mul(4))));
        let wanted = septum_kerncore::msi::msix_entry(routes.next().and_then(|r| MSI.message(r)));
        as_composed &= found == wanted;
    }
    let disabled = control & septum_kerncore::msi::MSIX_ENABLE == 0
        && control & septum_kerncore::msi::MSIX_FUNCTION_MASK != 0;
    let first = MSI.messages(nic).next().map_or(0, |r| r.irq.0);
    let count = MSI.messages(nic).count();
    kprintln!(
        "vtd probe: e1000e's MSI-X table at {table} as the kernel wrote it at boot: {entries} entries, IRQs {first}.. ({count} routed), all masked, MSI-X {}: {}",
        if disabled {
            "disabled, function masked"
        } else {
            "ENABLED"
        },
        if as_composed {
            "as composed"
        } else {
            "NOT as composed"
        }
    );
    // The owner enables MSI-X and clears the Function Mask (high byte of
    // the control word): allowed with interrupt remapping.
    let owner = MSI.messages(nic).next().map(|r| r.owner);
    let enabled = owner.is_some_and(|owner| {
        as_owner(
            owner,
            nic,
            cap,
            PortAccess {
                port: CONFIG_DATA + 3,
                size: 1,
                write: Some(0x80),
            },
        ) == Some(None)
    }) && msi::msix_capability(nic).is_some_and(|(_, now)| {
        now & septum_kerncore::msi::MSIX_ENABLE != 0
            && now & septum_kerncore::msi::MSIX_FUNCTION_MASK == 0
            && now & septum_kerncore::msi::MSIX_TABLE_SIZE
                == control & septum_kerncore::msi::MSIX_TABLE_SIZE
    });
    kprintln!(
        "vtd probe: the owner enables e1000e's MSI-X through the configuration emulation: {}",
        if enabled {
            "enabled, function unmasked"
        } else {
            "NOT enabled"
        }
    );
    let Some(owner) = owner else {
        return false;
    };
    as_composed && disabled && enabled && msix_delivery(nic, table, owner, apic)
}

/// e1000e registers (82574L datasheet 10.2): interrupt cause set, mask
/// set, interrupt vector allocation.
const E1000E_ICS: u64 = 0xc8;
const E1000E_IMS: u64 = 0xd0;
const E1000E_IVAR: u64 = 0xe4;
/// Causes: receive queue 0, "other".
const CAUSE_RXQ0: u32 = 1 << 20;
const CAUSE_OTHER: u32 = 1 << 24;
/// IVAR entry: valid bit, vector in bits 2:0.
const IVAR_VALID: u32 = 0x8;

/// The owner drives its e1000e: the "other" cause through its unmasked
/// MSI-X entry 1 arrives at that message's host vector and is pending
/// for the owner at its policy vector + 1; then it points entry 2 at
/// edu's remapping entry (another requester's) and raises it through
/// that entry: blocked.
fn msix_delivery(
    nic: SourceId,
    table: septum_abi::PhysAddr,
    owner: septum_abi::SubjectId,
    apic: u64,
) -> bool {
    let (Some(route), Some(edu_route)) = (
        MSI.messages(nic).nth(1),
        MSI.routes.iter().find(|r| r.device != nic),
    ) else {
        return false;
    };
    let (Some(host), Some(edu_host)) = (
        septum_kerncore::irq::host_vector(route.irq),
        septum_kerncore::irq::host_vector(edu_route.irq),
    ) else {
        return false;
    };
    let command = pcicfg::config_read(nic, 4);
    pcicfg::config_write(nic, 4, command | 0b110);
    let registers = u64::from(pcicfg::config_read(nic, 0x10) & !0xf);
    let entry = |k: u64, word: u64| {
        table
            .get()
            .wrapping_add(k.wrapping_mul(16))
            .wrapping_add(word.wrapping_mul(4))
    };
    // Entry 1 unmasked, "other" to entry 1, receive queue 0 to entry 2.
    mmio_write32(entry(1, 3), 0);
    mmio_write32(
        registers.wrapping_add(E1000E_IVAR),
        (IVAR_VALID | 1) << 16 | (IVAR_VALID | 2),
    );
    mmio_write32(registers.wrapping_add(E1000E_IMS), CAUSE_OTHER | CAUSE_RXQ0);
    let quiet_before = !pending(apic, u32::from(host.0));
    mmio_write32(registers.wrapping_add(E1000E_ICS), CAUSE_OTHER);
    let arrived = pending(apic, u32::from(host.0));
    let taken = take_interrupts(apic);
    let (host_taken, routed_to) = route_taken(&taken, host.0);
    let at_vector = interrupts::PENDING.highest(owner) == Some(route.vector);
    let delivered = quiet_before && arrived && host_taken && routed_to == Some(owner) && at_vector;
    let name = SPEC.subjects.get(owner.index()).map_or("?", |s| s.name);
    kprintln!(
        "vtd probe: e1000e's MSI-X entry 1 (IRQ {}) arrived at host vector {} and is pending for \"{name}\" at vector {}: {}",
        route.irq.0,
        host.0,
        route.vector.0,
        if delivered { "yes" } else { "NOT" }
    );
    interrupts::PENDING.clear(owner, route.vector);
    // The owner rewrites its entry 2 with edu's remappable handle.
    let foreign = septum_kerncore::msi::MsiSpec {
        remapped: true,
        routes: &[],
        windows: &[],
    }
    .message(edu_route)
    .map_or(0, |m| m.address);
    mmio_write32(entry(2, 0), foreign);
    mmio_write32(entry(2, 2), 0);
    mmio_write32(entry(2, 3), 0);
    let quiet = !pending(apic, u32::from(edu_host.0));
    mmio_write32(registers.wrapping_add(E1000E_ICS), CAUSE_RXQ0);
    let blocked = quiet && !pending(apic, u32::from(edu_host.0));
    let faults = vtd::report_faults();
    kprintln!(
        "vtd probe: the owner points e1000e's MSI-X entry 2 at edu's remapping entry {}: {}, {faults} fault(s) reported",
        edu_route.irq.0,
        if blocked { "blocked" } else { "DELIVERED" }
    );
    delivered && blocked
}
