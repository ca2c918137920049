//! The local APIC of a VM: an xAPIC at guest-physical 0xFEE0_0000 whose
//! timer runs in TSC-deadline mode (docs/kernel.md, "Local APIC of a VM").
//!
//! Why it exists: with a local APIC and a TSC-deadline timer in its CPUID
//! view, Linux takes the APIC timer ("lapic-deadline") as its per-CPU clock
//! event device instead of the PIT: one WRMSR per timer program instead of
//! several port writes, and its `irq_work` gets a self-IPI.
//!
//! Why it looks the way it does: the processor does most of the work. The
//! VM's controls turn on "use TPR shadow", "virtualize APIC accesses",
//! "APIC-register virtualization" and "virtual-interrupt delivery", so the
//! guest's reads of its APIC page are served from the virtual-APIC page
//! ([`ApicPage`], kept in the kernel's per-VM slot) without an exit, TPR
//! writes and EOIs are virtualised by the CPU (which also delivers a
//! pending vector once RFLAGS.IF, the interruptibility state and the
//! priority (TPR/ISR) allow it), and writes to the other registers land in
//! the page and cause a trap-like APIC-write exit naming the offset: no
//! instruction decoding. This module decides what such a write means
//! ([`Lapic::write`]), keeps the TSC deadline ([`Lapic::set_deadline`],
//! [`Lapic::due`]) and sets IRR bits; the arch layer copies the highest
//! IRR vector into the guest's RVI and wakes a halted VM.
//!
//! What is modelled, and what is not:
//!
//! - ID 0 (read-write, as in every xAPIC: Linux writes it at boot; it
//!   only decides which physical destination is "self"), version 0x14
//!   with six LVT entries (timer, thermal, performance
//!   counters, LINT0, LINT1, error); TPR/PPR/ISR/IRR/TMR are the CPU's
//!   (virtual-interrupt delivery); LDR and DFR keep their writable bits;
//!   SVR keeps vector, enable and focus bits (no EOI-broadcast
//!   suppression); clearing its enable bit masks every LVT entry, and an
//!   LVT entry stays masked while the APIC is software-disabled;
//! - the LVT timer in TSC-deadline mode only: a write selecting one-shot or
//!   periodic mode (or the reserved mode) is stored masked, so that timer
//!   never fires (Linux never uses them once CPUID shows TSC deadline); the
//!   initial-count register reads 0 in TSC-deadline mode and the current
//!   count is not emulated (a read is a fault of the subject);
//! - IA32_TSC_DEADLINE: a write arms the timer (0 disarms) while the LVT
//!   timer is in TSC-deadline mode and is ignored otherwise (as the SDM
//!   says); a read returns the armed deadline or 0. When the TSC passes the
//!   deadline the timer disarms and, if its LVT entry is unmasked, its
//!   vector becomes pending in IRR; a deadline in the past fires at the
//!   next entry, u64::MAX never in practice;
//! - the emulated 8259 PIC's interrupts are injected directly, as ExtINT
//!   interrupts bypassing IRR, ISR and the priority, whatever LINT0 says:
//!   Linux 6.1 with a MADT and no I/O APIC masks LINT0 ("masked ExtINT")
//!   yet routes every legacy IRQ through the PIC, so honouring the mask
//!   would silence the UART and the PIT. LINT0, LINT1, thermal,
//!   performance counters and error are registers only;
//! - the ICR delivers a fixed interrupt to this CPU only (shorthand "self"
//!   or "all including self", or a physical destination 0, or a logical
//!   destination matching LDR); every other IPI (other destinations, INIT,
//!   SIPI, NMI, SMI, lowest priority to others, vectors below 16) is
//!   dropped: the VM has one CPU and cannot reach any other. The delivery
//!   status always reads idle;
//! - ESR writes clear it (no error is ever recorded);
//! - no APIC-base relocation and no x2APIC: IA32_APIC_BASE reads
//!   0xFEE0_0900 (`crate::vm::msr`), and every write to it is a fault of
//!   the subject.
//!
//! Every operation is a fixed, small amount of work (at most eight IRR
//! words are scanned).

/// Guest-physical address of the xAPIC page.
pub const XAPIC_GPA: u64 = 0xfee0_0000;
/// IA32_APIC_BASE as the VM reads it: base 0xFEE0_0000, xAPIC enabled
/// (bit 11), bootstrap processor (bit 8).
pub const APIC_BASE_VALUE: u64 = XAPIC_GPA | (1 << 11) | (1 << 8);

/// Register offsets in the APIC page (SDM Vol. 3A, table 11-1).
pub mod reg {
    /// Local APIC ID.
    pub const ID: u16 = 0x20;
    /// Version.
    pub const VERSION: u16 = 0x30;
    /// Task priority.
    pub const TPR: u16 = 0x80;
    /// Processor priority.
    pub const PPR: u16 = 0xa0;
    /// End of interrupt.
    pub const EOI: u16 = 0xb0;
    /// Logical destination.
    pub const LDR: u16 = 0xd0;
    /// Destination format.
    pub const DFR: u16 = 0xe0;
    /// Spurious-interrupt vector.
    pub const SVR: u16 = 0xf0;
    /// In-service, first of eight words.
    pub const ISR: u16 = 0x100;
    /// Trigger mode, first of eight words.
    pub const TMR: u16 = 0x180;
    /// Interrupt request, first of eight words.
    pub const IRR: u16 = 0x200;
    /// Error status.
    pub const ESR: u16 = 0x280;
    /// Interrupt command, low word.
    pub const ICR_LOW: u16 = 0x300;
    /// Interrupt command, high word (destination).
    pub const ICR_HIGH: u16 = 0x310;
    /// LVT timer.
    pub const LVT_TIMER: u16 = 0x320;
    /// LVT thermal sensor.
    pub const LVT_THERMAL: u16 = 0x330;
    /// LVT performance-monitoring counters.
    pub const LVT_PMC: u16 = 0x340;
    /// LVT LINT0.
    pub const LVT_LINT0: u16 = 0x350;
    /// LVT LINT1.
    pub const LVT_LINT1: u16 = 0x360;
    /// LVT error.
    pub const LVT_ERROR: u16 = 0x370;
    /// Every LVT entry (the version register's "max LVT entry" is 5).
    pub const LVTS: [u16; 6] = [
        LVT_TIMER,
        LVT_THERMAL,
        LVT_PMC,
        LVT_LINT0,
        LVT_LINT1,
        LVT_ERROR,
    ];
    /// Timer initial count.
    pub const TIMER_INITIAL: u16 = 0x380;
    /// Timer current count.
    pub const TIMER_CURRENT: u16 = 0x390;
    /// Timer divide configuration.
    pub const TIMER_DIVIDE: u16 = 0x3e0;
}

/// Version register: version 0x14 (integrated APIC), max LVT entry 5.
pub const VERSION_VALUE: u32 = 0x0005_0014;
/// LVT mask bit.
pub const LVT_MASKED: u32 = 1 << 16;
/// SVR: APIC software enable.
pub const SVR_ENABLED: u32 = 1 << 8;
/// LVT timer mode field (bits 18:17).
const TIMER_MODE: u32 = 3 << 17;
/// LVT timer mode: TSC deadline.
pub const TIMER_TSC_DEADLINE: u32 = 2 << 17;
/// LVT delivery mode field (bits 10:8).
const DELIVERY_MODE: u32 = 7 << 8;
/// Delivery mode ExtINT.
const DELIVERY_EXTINT: u32 = 7 << 8;
/// Writable bits of the LVT timer: vector, mask, mode.
const LVT_TIMER_BITS: u32 = 0xff | LVT_MASKED | TIMER_MODE;
/// Writable bits of LINT0/LINT1: vector, delivery mode, polarity, trigger
/// mode, mask (remote IRR and delivery status are read-only).
const LVT_LINT_BITS: u32 = 0xff | DELIVERY_MODE | (1 << 13) | (1 << 15) | LVT_MASKED;
/// Writable bits of the thermal and performance-counter entries: vector,
/// delivery mode, mask.
const LVT_LOCAL_BITS: u32 = 0xff | DELIVERY_MODE | LVT_MASKED;
/// Writable bits of the error entry: vector, mask.
const LVT_ERROR_BITS: u32 = 0xff | LVT_MASKED;
/// Writable bits of SVR: vector, software enable, focus check.
const SVR_BITS: u32 = 0xff | SVR_ENABLED | (1 << 9);
/// Writable bits of ICR low: vector, delivery mode, destination mode,
/// level, trigger mode, shorthand (delivery status reads idle).
const ICR_LOW_BITS: u32 = 0xff | DELIVERY_MODE | (1 << 11) | (1 << 14) | (1 << 15) | (3 << 18);
/// ICR destination mode: logical.
const ICR_LOGICAL: u32 = 1 << 11;
/// The destination byte of ICR high and LDR (bits 31:24).
const DESTINATION_BITS: u32 = 0xff << 24;
/// Writable bits of DFR (model, bits 31:28); the rest read as ones.
const DFR_MODEL_BITS: u32 = 0xf << 28;
/// Writable bits of the divide configuration.
const DIVIDE_BITS: u32 = 0xb;

/// Words in the 4 KiB APIC page.
const PAGE_WORDS: usize = 1024;

/// The virtual-APIC page: the VM's APIC registers, each a 32-bit word at
/// its offset (every 16 bytes). The CPU reads and writes it while the VM
/// runs (VMCS field "virtual-APIC address"); the kernel touches it only
/// between an exit and the next entry, on the VM's CPU.
#[derive(Clone, Debug, PartialEq, Eq)]
#[repr(C, align(4096))]
pub struct ApicPage(pub [u32; PAGE_WORDS]);

impl ApicPage {
    /// The page as a PC's firmware leaves it: ID 0, enabled, LINT0 the
    /// virtual wire of the 8259 PIC (ExtINT), LINT1 NMI, the other LVT
    /// entries masked, DFR flat, nothing pending or in service.
    #[allow(
        clippy::indexing_slicing,
        reason = "constant register offsets, all inside the 1024-word page"
    )]
    pub const fn new() -> Self {
        let mut words = [0; PAGE_WORDS];
        words[word(reg::VERSION)] = VERSION_VALUE;
        words[word(reg::DFR)] = u32::MAX;
        words[word(reg::SVR)] = SVR_ENABLED | 0xff;
        words[word(reg::LVT_TIMER)] = LVT_MASKED;
        words[word(reg::LVT_THERMAL)] = LVT_MASKED;
        words[word(reg::LVT_PMC)] = LVT_MASKED;
        words[word(reg::LVT_LINT0)] = DELIVERY_EXTINT;
        words[word(reg::LVT_LINT1)] = 4 << 8;
        words[word(reg::LVT_ERROR)] = LVT_MASKED;
        Self(words)
    }

    /// The register at `offset` (0 for an offset outside the page).
    pub fn get(&self, offset: u16) -> u32 {
        self.0.get(word(offset)).copied().unwrap_or(0)
    }

    fn set(&mut self, offset: u16, value: u32) {
        if let Some(slot) = self.0.get_mut(word(offset)) {
            *slot = value;
        }
    }
}

impl Default for ApicPage {
    fn default() -> Self {
        Self::new()
    }
}

/// The word index of register `offset`.
const fn word(offset: u16) -> usize {
    (offset as usize) >> 2
}

/// What a write to an APIC register did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    /// Taken (the register holds its new, sanitised value).
    Done,
    /// A vector became pending in IRR (a self-IPI): the arch layer updates
    /// RVI.
    Posted(u8),
    /// Not a register a write may reach (read-only, reserved, unaligned or
    /// outside the page): a fault of the subject.
    Refused,
}

/// One VM's local APIC: its register page and the TSC deadline.
#[derive(Clone, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Lapic {
    /// The virtual-APIC page (first, so that it keeps its 4 KiB alignment
    /// wherever the state is).
    pub page: ApicPage,
    /// IA32_TSC_DEADLINE: the TSC value at which the timer fires; 0 when
    /// disarmed.
    deadline: u64,
}

impl Lapic {
    /// The reset state ([`ApicPage::new`], timer disarmed).
    pub const fn new() -> Self {
        Self {
            page: ApicPage::new(),
            deadline: 0,
        }
    }

    /// Whether the APIC is software-enabled (SVR bit 8).
    pub fn enabled(&self) -> bool {
        self.page.get(reg::SVR) & SVR_ENABLED != 0
    }

    /// Whether the LVT timer is in TSC-deadline mode.
    fn deadline_mode(&self) -> bool {
        self.page.get(reg::LVT_TIMER) & TIMER_MODE == TIMER_TSC_DEADLINE
    }

    /// The guest wrote `value` to the register at `offset` (after an
    /// APIC-write exit the CPU has already stored it in the page; the
    /// value is then that word). Stores the sanitised value and carries
    /// out what the write means.
    pub fn write(&mut self, offset: u16, value: u32) -> Written {
        let enabled = self.enabled();
        let lvt = |bits: u32| {
            let value = value & bits;
            if enabled { value } else { value | LVT_MASKED }
        };
        match offset {
            reg::ID => self.page.set(offset, value & DESTINATION_BITS),
            reg::TPR => self.page.set(offset, value & 0xff),
            // EOIs are virtualised by the CPU; a write that reaches here
            // (none should) has nothing in service to end.
            reg::EOI => self.page.set(offset, 0),
            reg::LDR => self.page.set(offset, value & DESTINATION_BITS),
            reg::DFR => self
                .page
                .set(offset, (value & DFR_MODEL_BITS) | !DFR_MODEL_BITS),
            reg::SVR => {
                self.page.set(offset, value & SVR_BITS);
                if value & SVR_ENABLED == 0 {
                    self.mask_all();
                }
            }
            reg::ESR => self.page.set(offset, 0),
            reg::ICR_LOW => {
                let command = value & ICR_LOW_BITS;
                self.page.set(offset, command);
                if let Some(vector) = self.self_ipi(command) {
                    return self.post(vector);
                }
            }
            reg::ICR_HIGH => self.page.set(offset, value & DESTINATION_BITS),
            reg::LVT_TIMER => {
                let mut entry = lvt(LVT_TIMER_BITS);
                if entry & TIMER_MODE != TIMER_TSC_DEADLINE {
                    entry |= LVT_MASKED;
                    self.deadline = 0;
                }
                self.page.set(offset, entry);
            }
            reg::LVT_THERMAL | reg::LVT_PMC => self.page.set(offset, lvt(LVT_LOCAL_BITS)),
            reg::LVT_LINT0 | reg::LVT_LINT1 => self.page.set(offset, lvt(LVT_LINT_BITS)),
            reg::LVT_ERROR => self.page.set(offset, lvt(LVT_ERROR_BITS)),
            // TSC-deadline mode ignores the initial count (the only mode
            // with an unmasked timer).
            reg::TIMER_INITIAL => self.page.set(offset, 0),
            reg::TIMER_DIVIDE => self.page.set(offset, value & DIVIDE_BITS),
            _ => return Written::Refused,
        }
        Written::Done
    }

    /// Set the mask bit of every LVT entry (the APIC was software-disabled).
    fn mask_all(&mut self) {
        for offset in reg::LVTS {
            let entry = self.page.get(offset);
            self.page.set(offset, entry | LVT_MASKED);
        }
    }

    /// The vector an interrupt command sends to this CPU, if it does: a
    /// fixed interrupt (delivery mode 0) with a valid vector (16 or more)
    /// whose destination includes this CPU (APIC ID 0, logical ID in LDR).
    fn self_ipi(&self, command: u32) -> Option<u8> {
        let vector = (command & 0xff) as u8;
        if command & DELIVERY_MODE != 0 || vector < 16 || !self.enabled() {
            return None;
        }
        let destination = self.page.get(reg::ICR_HIGH) >> 24;
        let to_me = match (command >> 18) & 3 {
            // No shorthand: the destination field.
            0 if command & ICR_LOGICAL != 0 => destination & (self.page.get(reg::LDR) >> 24) != 0,
            0 => destination == self.page.get(reg::ID) >> 24,
            // Self, all including self.
            1 | 2 => true,
            // All excluding self.
            _ => false,
        };
        to_me.then_some(vector)
    }

    /// Make `vector` pending in IRR. Vectors below 16 are illegal and
    /// dropped.
    pub fn post(&mut self, vector: u8) -> Written {
        if vector < 16 {
            return Written::Done;
        }
        let offset = reg::IRR.saturating_add(u16::from(vector >> 5).saturating_mul(0x10));
        let bits = self.page.get(offset) | (1 << (vector & 31));
        self.page.set(offset, bits);
        Written::Posted(vector)
    }

    /// The highest vector pending in IRR (0: none), the guest's RVI.
    pub fn highest_irr(&self) -> u8 {
        for index in (0u8..8).rev() {
            let offset = reg::IRR.saturating_add(u16::from(index).saturating_mul(0x10));
            let bits = self.page.get(offset);
            if bits != 0 {
                // `leading_zeros` of a non-zero u32 is at most 31.
                let bit = 31u8.saturating_sub(bits.leading_zeros() as u8);
                return index.saturating_mul(32).saturating_add(bit);
            }
        }
        0
    }

    /// Whether the highest pending vector's priority class is above the
    /// processor priority (PPR, which the CPU keeps in the page): the CPU
    /// delivers it as soon as RFLAGS.IF and the interruptibility state
    /// allow.
    pub fn deliverable(&self) -> bool {
        let pending = self.highest_irr() >> 4;
        let ppr = (self.page.get(reg::PPR) >> 4) & 0xf;
        pending != 0 && u32::from(pending) > ppr
    }

    /// RDMSR IA32_TSC_DEADLINE: the armed deadline, or 0.
    pub fn deadline(&self) -> u64 {
        self.deadline
    }

    /// WRMSR IA32_TSC_DEADLINE: arm the timer for TSC `value` (0 disarms);
    /// ignored unless the LVT timer is in TSC-deadline mode.
    pub fn set_deadline(&mut self, value: u64) {
        if self.deadline_mode() {
            self.deadline = value;
        }
    }

    /// When the timer wants the VM back: its armed deadline, if an expiry
    /// would deliver anything (an unmasked timer in TSC-deadline mode).
    pub fn wake_at(&self) -> Option<u64> {
        let entry = self.page.get(reg::LVT_TIMER);
        (self.deadline != 0 && entry & LVT_MASKED == 0 && self.deadline_mode())
            .then_some(self.deadline)
    }

    /// At TSC `now`: if the armed deadline has passed, disarm it and make
    /// the timer's vector pending (unless its LVT entry is masked). Returns
    /// the vector posted.
    pub fn due(&mut self, now: u64) -> Option<u8> {
        if self.deadline == 0 || now < self.deadline {
            return None;
        }
        self.deadline = 0;
        let entry = self.page.get(reg::LVT_TIMER);
        if entry & LVT_MASKED != 0 || !self.deadline_mode() {
            return None;
        }
        match self.post((entry & 0xff) as u8) {
            Written::Posted(vector) => Some(vector),
            _ => None,
        }
    }
}

impl Default for Lapic {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The offsets a trap-like APIC-write exit can name (SDM 30.4.3.3 with
    /// APIC-register virtualization), TPR and EOI included for safety.
    const WRITABLE: [u16; 17] = [
        reg::ID,
        reg::TPR,
        reg::EOI,
        reg::LDR,
        reg::DFR,
        reg::SVR,
        reg::ESR,
        reg::ICR_LOW,
        reg::ICR_HIGH,
        reg::LVT_TIMER,
        reg::LVT_THERMAL,
        reg::LVT_PMC,
        reg::LVT_LINT0,
        reg::LVT_LINT1,
        reg::LVT_ERROR,
        reg::TIMER_INITIAL,
        reg::TIMER_DIVIDE,
    ];

    fn linux_setup() -> Lapic {
        let mut apic = Lapic::new();
        assert_eq!(apic.write(reg::SVR, 0x1ff), Written::Done);
        assert_eq!(
            apic.write(reg::LVT_TIMER, 0xec | TIMER_TSC_DEADLINE),
            Written::Done
        );
        apic
    }

    #[test]
    fn reset_state_is_a_firmware_virtual_wire() {
        let apic = Lapic::new();
        assert_eq!(apic.page.get(reg::ID), 0);
        assert_eq!(apic.page.get(reg::VERSION), 0x0005_0014);
        assert!(apic.enabled());
        assert_eq!(apic.page.get(reg::LVT_LINT0), 0x700, "ExtINT");
        assert_eq!(apic.page.get(reg::LVT_TIMER), LVT_MASKED);
        assert_eq!(apic.highest_irr(), 0);
        assert_eq!(apic.deadline(), 0);
        assert_eq!(apic.wake_at(), None);
        assert_eq!(core::mem::align_of::<Lapic>(), 4096);
        assert_eq!(APIC_BASE_VALUE, 0xfee0_0900);
    }

    #[test]
    fn deadline_fires_once_with_the_programmed_vector() {
        let mut apic = linux_setup();
        apic.set_deadline(1_000);
        assert_eq!(apic.deadline(), 1_000);
        assert_eq!(apic.wake_at(), Some(1_000));
        assert_eq!(apic.due(999), None);
        assert_eq!(apic.due(1_000), Some(0xec));
        assert_eq!(apic.deadline(), 0);
        assert_eq!(apic.due(5_000), None, "disarmed after firing");
        assert_eq!(apic.highest_irr(), 0xec);
        assert_eq!(apic.page.get(reg::IRR + 7 * 0x10), 1 << 12);
    }

    #[test]
    fn past_zero_and_maximal_deadlines() {
        let mut apic = linux_setup();
        apic.set_deadline(1);
        assert_eq!(
            apic.due(u64::MAX),
            Some(0xec),
            "a deadline in the past fires at once"
        );
        apic.set_deadline(u64::MAX);
        assert_eq!(apic.due(u64::MAX - 1), None);
        assert_eq!(apic.wake_at(), Some(u64::MAX));
        apic.set_deadline(0);
        assert_eq!(apic.wake_at(), None, "0 disarms");
        assert_eq!(apic.due(u64::MAX), None);
    }

    #[test]
    fn masked_or_other_modes_never_deliver() {
        let mut apic = linux_setup();
        apic.set_deadline(10);
        apic.write(reg::LVT_TIMER, 0xec | TIMER_TSC_DEADLINE | LVT_MASKED);
        assert_eq!(apic.wake_at(), None);
        assert_eq!(apic.due(20), None);
        assert_eq!(apic.deadline(), 0, "a masked expiry still disarms");
        for mode in [0, 1 << 17, 3 << 17] {
            let mut apic = linux_setup();
            apic.set_deadline(10);
            assert_eq!(apic.write(reg::LVT_TIMER, 0xec | mode), Written::Done);
            assert_ne!(
                apic.page.get(reg::LVT_TIMER) & LVT_MASKED,
                0,
                "mode {mode:#x}"
            );
            assert_eq!(apic.deadline(), 0, "leaving TSC-deadline mode disarms");
            apic.set_deadline(10);
            assert_eq!(apic.deadline(), 0, "ignored outside TSC-deadline mode");
            assert_eq!(apic.due(u64::MAX), None);
        }
    }

    #[test]
    fn software_disable_masks_every_lvt_entry_and_keeps_it_masked() {
        let mut apic = linux_setup();
        apic.write(reg::SVR, 0xff);
        assert!(!apic.enabled());
        for offset in (reg::LVT_TIMER..=reg::LVT_ERROR).step_by(0x10) {
            assert_ne!(apic.page.get(offset) & LVT_MASKED, 0, "{offset:#x}");
            apic.write(offset, 0);
            assert_ne!(apic.page.get(offset) & LVT_MASKED, 0, "{offset:#x}");
        }
        assert_eq!(
            apic.write(reg::ICR_LOW, 0x4_00f0),
            Written::Done,
            "no IPI while disabled"
        );
        assert_eq!(apic.highest_irr(), 0);
    }

    #[test]
    fn only_fixed_ipis_to_this_cpu_are_delivered() {
        let mut apic = linux_setup();
        // Self shorthand (Linux's irq_work).
        assert_eq!(apic.write(reg::ICR_LOW, 0x4_00f6), Written::Posted(0xf6));
        assert_eq!(apic.page.get(reg::ICR_LOW) & (1 << 12), 0, "idle");
        // All including self.
        assert_eq!(apic.write(reg::ICR_LOW, 0x8_0040), Written::Posted(0x40));
        // Physical destination 0, then the ID the guest gave itself.
        apic.write(reg::ICR_HIGH, 0);
        assert_eq!(apic.write(reg::ICR_LOW, 0x41), Written::Posted(0x41));
        apic.write(reg::ID, 0x0500_0000);
        assert_eq!(apic.write(reg::ICR_LOW, 0x43), Written::Done);
        apic.write(reg::ICR_HIGH, 0x0500_0000);
        assert_eq!(apic.write(reg::ICR_LOW, 0x43), Written::Posted(0x43));
        apic.write(reg::ID, 0);
        // Logical destination matching LDR.
        apic.write(reg::LDR, 1 << 24);
        apic.write(reg::ICR_HIGH, 1 << 24);
        assert_eq!(apic.write(reg::ICR_LOW, 0x842), Written::Posted(0x42));
        // Dropped: all excluding self, another physical or logical
        // destination, INIT, SIPI, NMI, SMI, lowest priority, bad vectors.
        apic.write(reg::ICR_HIGH, 1 << 24);
        let before = apic.clone();
        for command in [
            0xc_0050, 0x50, 0x4_0500, 0x4_0650, 0x4_0450, 0x4_0250, 0x4_0150, 0x4_000f, 0xc_4500,
        ] {
            assert_eq!(
                apic.write(reg::ICR_LOW, command),
                Written::Done,
                "{command:#x}"
            );
        }
        apic.write(reg::ICR_HIGH, 2 << 24);
        assert_eq!(apic.write(reg::ICR_LOW, 0x850), Written::Done);
        let irr = |a: &Lapic| {
            core::array::from_fn::<u32, 8, _>(|i| a.page.get(reg::IRR + i as u16 * 0x10))
        };
        assert_eq!(irr(&apic), irr(&before));
        assert_eq!(apic.highest_irr(), 0xf6);
    }

    #[test]
    fn every_offset_and_value_stays_bounded() {
        let values = [
            0,
            1,
            0xff,
            0xffff,
            0x1_0000,
            0x7_ffff,
            0x8000_0000,
            u32::MAX,
        ];
        // Every offset (every register's first byte only under Miri, where
        // 4096 page copies per value are too slow).
        let stride = if cfg!(miri) { 0x10 } else { 1 };
        for offset in (0..=0xfffu16)
            .step_by(stride)
            .chain([0x1000, 0xfff0, u16::MAX])
        {
            for &value in &values {
                let mut apic = linux_setup();
                let outcome = apic.write(offset, value);
                let expected = offset % 16 == 0 && WRITABLE.contains(&offset);
                assert_eq!(
                    outcome != Written::Refused,
                    expected,
                    "{offset:#x} {value:#x}"
                );
                // Read-only registers never change.
                assert_eq!(apic.page.get(reg::ID) & 0x00ff_ffff, 0);
                assert_eq!(apic.page.get(reg::VERSION), VERSION_VALUE);
                assert_eq!(apic.page.get(reg::PPR), 0);
                assert_eq!(apic.page.get(reg::TIMER_CURRENT), 0);
                for i in 0..8 {
                    assert_eq!(apic.page.get(reg::ISR + i * 0x10), 0);
                    assert_eq!(apic.page.get(reg::TMR + i * 0x10), 0);
                }
                assert_eq!(apic.page.get(reg::ESR), 0);
                assert_eq!(apic.page.get(reg::ICR_LOW) & (1 << 12), 0);
                assert_eq!(apic.page.get(reg::DFR) & 0x0fff_ffff, 0x0fff_ffff);
                assert_eq!(apic.page.get(reg::SVR) & !SVR_BITS, 0);
                if let Written::Posted(vector) = outcome {
                    assert!(vector >= 16);
                    assert_eq!(apic.highest_irr(), vector);
                }
            }
        }
    }

    #[test]
    fn lvt_entries_keep_only_their_writable_bits() {
        let mut apic = linux_setup();
        apic.write(reg::LVT_LINT0, u32::MAX);
        assert_eq!(apic.page.get(reg::LVT_LINT0), LVT_LINT_BITS);
        apic.write(reg::LVT_ERROR, u32::MAX);
        assert_eq!(apic.page.get(reg::LVT_ERROR), LVT_ERROR_BITS);
        apic.write(reg::LVT_PMC, u32::MAX);
        assert_eq!(apic.page.get(reg::LVT_PMC), LVT_LOCAL_BITS);
        apic.write(reg::LVT_TIMER, u32::MAX);
        assert_eq!(
            apic.page.get(reg::LVT_TIMER),
            LVT_TIMER_BITS,
            "reserved mode, masked"
        );
    }

    #[test]
    fn only_a_vector_above_the_processor_priority_is_deliverable() {
        let mut apic = Lapic::new();
        assert!(!apic.deliverable(), "nothing pending");
        apic.post(0xec);
        assert!(apic.deliverable());
        apic.page.set(reg::PPR, 0xe0);
        assert!(!apic.deliverable(), "same class as PPR");
        apic.page.set(reg::PPR, 0xd0);
        assert!(apic.deliverable());
    }

    /// One step of a hostile guest.
    #[derive(Clone, Debug)]
    enum Step {
        /// A register write (any offset, any value).
        Write(u16, u32),
        /// WRMSR IA32_TSC_DEADLINE.
        Deadline(u64),
        /// An entry at this TSC.
        Entry(u64),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0u16..0x1010, any::<u32>()).prop_map(|(o, v)| Step::Write(o, v)),
            (prop::sample::select(WRITABLE.to_vec()), any::<u32>())
                .prop_map(|(o, v)| Step::Write(o, v)),
            any::<u64>().prop_map(Step::Deadline),
            any::<u64>().prop_map(Step::Entry),
        ]
    }

    fn cases() -> u32 {
        if cfg!(miri) { 4 } else { 256 }
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: cases(),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]
        /// Whatever a guest writes, in any order: read-only registers keep
        /// their values, nothing is ever in service or level-triggered by
        /// the model's doing, only vectors 16-255 become pending, and the
        /// timer fires only at or after an armed deadline, unmasked, in
        /// TSC-deadline mode, once per arming.
        #[test]
        fn hostile_sequences_keep_the_invariants(steps in proptest::collection::vec(step(), 0..64)) {
            let mut apic = Lapic::new();
            for s in steps {
                let before = apic.clone();
                match s {
                    Step::Write(offset, value) => {
                        let outcome = apic.write(offset, value);
                        prop_assert_eq!(outcome == Written::Refused, !(offset % 16 == 0 && WRITABLE.contains(&offset)));
                        if outcome == Written::Refused {
                            prop_assert_eq!(&apic, &before, "a refused write changes nothing");
                        }
                    }
                    Step::Deadline(value) => apic.set_deadline(value),
                    Step::Entry(now) => {
                        let armed = before.wake_at();
                        let fired = apic.due(now);
                        match fired {
                            Some(vector) => {
                                prop_assert!(armed.is_some_and(|d| now >= d));
                                prop_assert_eq!(vector, (apic.page.get(reg::LVT_TIMER) & 0xff) as u8);
                                prop_assert!(vector >= 16);
                                prop_assert_eq!(apic.deadline(), 0);
                            }
                            None => prop_assert!(armed.is_none_or(|d| now < d) || (apic.page.get(reg::LVT_TIMER) & 0xff) < 16),
                        }
                    }
                }
                prop_assert_eq!(apic.page.get(reg::VERSION), VERSION_VALUE);
                prop_assert_eq!(apic.page.get(reg::PPR), 0);
                prop_assert_eq!(apic.page.get(reg::TIMER_CURRENT), 0);
                prop_assert_eq!(apic.page.get(reg::ESR), 0);
                prop_assert_eq!(apic.page.get(reg::ICR_LOW) & (1 << 12), 0);
                for i in 0..8 {
                    prop_assert_eq!(apic.page.get(reg::ISR + i * 0x10), 0);
                    prop_assert_eq!(apic.page.get(reg::TMR + i * 0x10), 0);
                }
                prop_assert_eq!(apic.page.get(reg::IRR) & 0xffff, 0, "no vector below 16");
                if !apic.enabled() {
                    for offset in (reg::LVT_TIMER..=reg::LVT_ERROR).step_by(0x10) {
                        prop_assert_ne!(apic.page.get(offset) & LVT_MASKED, 0);
                    }
                }
                if apic.page.get(reg::LVT_TIMER) & TIMER_MODE != TIMER_TSC_DEADLINE {
                    prop_assert_ne!(apic.page.get(reg::LVT_TIMER) & LVT_MASKED, 0);
                    prop_assert_eq!(apic.deadline(), 0);
                }
            }
        }
    }

    #[test]
    fn highest_irr_scans_every_word() {
        let mut apic = Lapic::new();
        for vector in 16..=255u8 {
            apic.post(vector);
            assert_eq!(apic.highest_irr(), vector);
        }
        assert_eq!(Lapic::new().post(15), Written::Done);
    }
}
