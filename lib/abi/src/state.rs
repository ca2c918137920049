//! The subject-state page: a monitored subject's registers and the data of
//! the exit that stopped it, as its monitor reads and changes them.
//!
//! A subject with `onFault="monitor"` hands the exits its policy chooses to
//! a monitor subject (docs/kernel.md, "Monitors"). On such an exit the
//! kernel writes the subject's state into this page (one 4 KiB region per
//! monitored subject, mapped into the monitor), marks the subject
//! *trapped* and switches to the monitor. The monitor reads the page, may
//! change the registers, and resumes the subject with a `switch` event;
//! before the subject runs again, the kernel loads the registers the
//! monitor may change back into the subject (below).
//!
//! The layout follows the anchor's subject state (registers, exit reason,
//! qualification, guest-physical and linear address, instruction length,
//! control registers, EFER, segment bases), so that a VM subject's device
//! emulation can use the same seam: every general-purpose register, RIP,
//! RSP, RFLAGS, CR0/CR2/CR3/CR4, EFER and every segment base. All fields
//! are `u64`, little-endian, at fixed offsets:
//!
//! ```text
//! offset  field
//! 0x000   magic               STATE_MAGIC ("SEPTSTAT")
//! 0x008   version             STATE_VERSION
//! 0x010   traps               exits handed to the monitor since boot
//! 0x018   exit reason         full VT-x exit reason (bit 31: entry failure)
//! 0x020   exit qualification
//! 0x028   guest-physical      (EPT violation / misconfiguration; else 0)
//! 0x030   guest linear        (where the CPU reports one; else 0)
//! 0x038   instruction length  (where the CPU defines it; else 0)
//! 0x040   interruption info   (exception exits; else 0)
//! 0x048   error code          (exceptions that push one; else 0)
//! 0x050   gprs[16]            RAX RCX RDX RBX RSP RBP RSI RDI R8..R15
//!                             (the instruction encoding's order)
//! 0x0d0   rip
//! 0x0d8   rflags
//! 0x0e0   cr0
//! 0x0e8   cr2
//! 0x0f0   cr3
//! 0x0f8   cr4
//! 0x100   efer
//! 0x108   segment bases[6]    CS SS DS ES FS GS
//! 0x138   device interrupt    written by the monitor (below); the kernel
//!                             writes 0 on every trap
//! 0x140   resume halted       written by the monitor (below); the kernel
//!                             writes 0 on every trap (version 2)
//! 0x148   end (the rest of the page is reserved, 0)
//! ```
//!
//! An I/O exit's port and width are in the exit qualification (bits 31:16
//! and 2:0, SDM Vol. 3C table 28-5): the kernel hands a monitor only
//! accesses whose every byte is in the monitor's ports (docs/kernel.md,
//! "I/O access width"), so a monitor that serves a port range needs no
//! other check than the qualification's.
//!
//! `device interrupt` is how a VM's device monitor raises the VM's
//! interrupt (docs/kernel.md, "Virtio console"): non-zero when the monitor
//! resumes the subject asserts the interrupt line of the VM's virtio
//! console (the policy's `irq`, which the monitor need not know) on the
//! VM's PIC, and the kernel injects it as soon as the guest can take it.
//! For a subject without a virtio console the field is ignored.
//!
//! `resume halted` is how a VM's monitor resumes it idle (docs/kernel.md,
//! "Virtio console"): non-zero when the monitor resumes a VM makes the
//! kernel enter it in the HLT activity state, as it does after a HLT it
//! completes itself, so the VM waits in the CPU for its next interrupt
//! (its PIT, the line `device interrupt` raises, console input) instead of
//! running on at once. The monitor sets it after a trapped HLT it has
//! completed (RIP past the HLT). The kernel honours it only for a VM at
//! CPL 0 with interrupts enabled, on a CPU that supports the HLT activity
//! state; otherwise, and for a subject that is not a VM, it is ignored and
//! the subject resumes running.
//!
//! Versions: 1 ended at 0x140; 2 added `resume halted` (0x140).
//!
//! The kernel writes every field on a trap. On resume it loads only these
//! fields back: the general-purpose registers (RSP included),
//! RIP (only if canonical) and the status flags and DF of RFLAGS
//! ([`RFLAGS_WRITABLE`]); control registers, EFER and segments are for
//! reading. A value the kernel would have to refuse at VM entry can
//! therefore never reach the VMCS: a monitor can change its subject, never
//! stop the system.

/// `"SEPTSTAT"` as a little-endian `u64`.
pub const STATE_MAGIC: u64 = u64::from_le_bytes(*b"SEPTSTAT");
/// Layout version of the page.
pub const STATE_VERSION: u64 = 2;
/// Size of the region that holds the page.
pub const STATE_PAGE_SIZE: u64 = 4096;

/// Index of a general-purpose register in [`SubjectState::gprs`] (the
/// instruction encoding's register number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Gpr {
    /// RAX.
    Rax = 0,
    /// RCX.
    Rcx = 1,
    /// RDX.
    Rdx = 2,
    /// RBX.
    Rbx = 3,
    /// RSP.
    Rsp = 4,
    /// RBP.
    Rbp = 5,
    /// RSI.
    Rsi = 6,
    /// RDI.
    Rdi = 7,
    /// R8.
    R8 = 8,
    /// R9.
    R9 = 9,
    /// R10.
    R10 = 10,
    /// R11.
    R11 = 11,
    /// R12.
    R12 = 12,
    /// R13.
    R13 = 13,
    /// R14.
    R14 = 14,
    /// R15.
    R15 = 15,
}

/// Index of a segment base in [`SubjectState::segment_bases`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Seg {
    /// CS.
    Cs = 0,
    /// SS.
    Ss = 1,
    /// DS.
    Ds = 2,
    /// ES.
    Es = 3,
    /// FS.
    Fs = 4,
    /// GS.
    Gs = 5,
}

/// The page's contents (see the module doc for offsets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct SubjectState {
    /// [`STATE_MAGIC`] once the kernel has written the page.
    pub magic: u64,
    /// [`STATE_VERSION`].
    pub version: u64,
    /// Exits handed to the monitor since boot (the first trap writes 1).
    pub traps: u64,
    /// The full VT-x exit reason (basic reason in bits 15:0).
    pub exit_reason: u64,
    /// The exit qualification.
    pub exit_qualification: u64,
    /// Guest-physical address (EPT exits; else 0).
    pub guest_physical: u64,
    /// Guest linear address (where the CPU reports one; else 0).
    pub guest_linear: u64,
    /// VM-exit instruction length (where the CPU defines it; else 0).
    pub instruction_length: u64,
    /// VM-exit interruption information (exception exits; else 0).
    pub interruption_info: u64,
    /// Exception error code (where one is pushed; else 0).
    pub error_code: u64,
    /// General-purpose registers, indexed by [`Gpr`].
    pub gprs: [u64; 16],
    /// RIP of the exiting instruction.
    pub rip: u64,
    /// RFLAGS.
    pub rflags: u64,
    /// CR0 as the subject sees it.
    pub cr0: u64,
    /// CR2.
    pub cr2: u64,
    /// CR3.
    pub cr3: u64,
    /// CR4 as the subject sees it.
    pub cr4: u64,
    /// IA32_EFER.
    pub efer: u64,
    /// Segment bases, indexed by [`Seg`].
    pub segment_bases: [u64; 6],
    /// Non-zero: the monitor asserts the VM's device interrupt line at
    /// resume (see the module doc). 0 after every trap.
    pub device_interrupt: u64,
    /// Non-zero: the monitor resumes the VM in the HLT activity state
    /// (see the module doc). 0 after every trap.
    pub resume_halted: u64,
}

/// Size of [`SubjectState`] in bytes.
pub const STATE_SIZE: usize = core::mem::size_of::<SubjectState>();

const _: () = assert!(STATE_SIZE == 0x148);
const _: () = assert!(core::mem::offset_of!(SubjectState, device_interrupt) == 0x138);
const _: () = assert!(core::mem::offset_of!(SubjectState, resume_halted) == 0x140);
const _: () = assert!(core::mem::offset_of!(SubjectState, gprs) == 0x50);
const _: () = assert!(core::mem::offset_of!(SubjectState, rip) == 0xd0);
const _: () = assert!(core::mem::offset_of!(SubjectState, efer) == 0x100);
const _: () = assert!(core::mem::offset_of!(SubjectState, segment_bases) == 0x108);
const _: () = assert!(STATE_SIZE as u64 <= STATE_PAGE_SIZE);

/// RFLAGS bits a monitor may change: CF, PF, AF, ZF, SF, DF, OF. The
/// others (TF, IF, IOPL, VM, ...) keep the subject's value: a monitor
/// emulating an instruction sets its result flags, nothing that changes
/// how the subject runs or that VM entry would refuse.
pub const RFLAGS_WRITABLE: u64 = 1 | 1 << 2 | 1 << 4 | 1 << 6 | 1 << 7 | 1 << 10 | 1 << 11;

/// Number of `u64` words of [`SubjectState`].
pub const STATE_WORDS: usize = STATE_SIZE / 8;

impl SubjectState {
    /// The basic exit reason (bits 15:0 of the exit reason).
    pub const fn basic_exit_reason(&self) -> u16 {
        self.exit_reason as u16
    }

    /// The exception vector of an exception exit (bits 7:0 of the
    /// interruption information; meaningful when it is valid, bit 31).
    pub const fn vector(&self) -> Option<u8> {
        if self.interruption_info & (1 << 31) != 0 {
            Some(self.interruption_info as u8)
        } else {
            None
        }
    }

    /// General-purpose register `register`.
    pub const fn gpr(&self, register: Gpr) -> u64 {
        self.gprs[register.index()]
    }

    /// Sets general-purpose register `register`.
    pub const fn set_gpr(&mut self, register: Gpr, value: u64) {
        self.gprs[register.index()] = value;
    }

    /// Moves RIP past the exiting instruction (by the instruction length
    /// the CPU reported; 0 where it defines none, so RIP stays).
    pub const fn advance_rip(&mut self) {
        self.rip = self.rip.wrapping_add(self.instruction_length);
    }

    /// The page as words, in layout order.
    pub const fn to_words(&self) -> [u64; STATE_WORDS] {
        let mut words = [0; STATE_WORDS];
        let head = [
            self.magic,
            self.version,
            self.traps,
            self.exit_reason,
            self.exit_qualification,
            self.guest_physical,
            self.guest_linear,
            self.instruction_length,
            self.interruption_info,
            self.error_code,
        ];
        let tail = [
            self.rip,
            self.rflags,
            self.cr0,
            self.cr2,
            self.cr3,
            self.cr4,
            self.efer,
        ];
        let mut i = 0;
        while i < head.len() {
            words[i] = head[i];
            i += 1;
        }
        let mut j = 0;
        while j < 16 {
            words[i + j] = self.gprs[j];
            j += 1;
        }
        i += 16;
        j = 0;
        while j < tail.len() {
            words[i + j] = tail[j];
            j += 1;
        }
        i += tail.len();
        j = 0;
        while j < 6 {
            words[i + j] = self.segment_bases[j];
            j += 1;
        }
        words[i + 6] = self.device_interrupt;
        words[i + 7] = self.resume_halted;
        words
    }

    /// The page from its words, in layout order.
    pub const fn from_words(w: &[u64; STATE_WORDS]) -> Self {
        let mut gprs = [0; 16];
        let mut j = 0;
        while j < 16 {
            gprs[j] = w[10 + j];
            j += 1;
        }
        let mut segment_bases = [0; 6];
        j = 0;
        while j < 6 {
            segment_bases[j] = w[33 + j];
            j += 1;
        }
        Self {
            magic: w[0],
            version: w[1],
            traps: w[2],
            exit_reason: w[3],
            exit_qualification: w[4],
            guest_physical: w[5],
            guest_linear: w[6],
            instruction_length: w[7],
            interruption_info: w[8],
            error_code: w[9],
            gprs,
            rip: w[26],
            rflags: w[27],
            cr0: w[28],
            cr2: w[29],
            cr3: w[30],
            cr4: w[31],
            efer: w[32],
            segment_bases,
            device_interrupt: w[39],
            resume_halted: w[40],
        }
    }
}

impl Gpr {
    /// Index into [`SubjectState::gprs`].
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl Seg {
    /// Index into [`SubjectState::segment_bases`].
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// Whether `address` is canonical with 48 linear-address bits (bits 63:47
/// all equal): the only RIP values VM entry accepts for a 64-bit subject.
pub const fn is_canonical(address: u64) -> bool {
    let top = address >> 47;
    top == 0 || top == (1 << 17) - 1
}

/// The RFLAGS a subject resumes with: `old` (what it had at the trap) with
/// the bits in [`RFLAGS_WRITABLE`] taken from `new` (the page).
pub const fn merge_rflags(old: u64, new: u64) -> u64 {
    (old & !RFLAGS_WRITABLE) | (new & RFLAGS_WRITABLE)
}

/// The RIP a subject resumes at: `new` (the page) if canonical, else `old`.
pub const fn resume_rip(old: u64, new: u64) -> u64 {
    if is_canonical(new) { new } else { old }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_addresses_are_the_low_and_high_halves() {
        assert!(is_canonical(0));
        assert!(is_canonical(0x0000_7fff_ffff_ffff));
        assert!(is_canonical(0xffff_8000_0000_0000));
        assert!(is_canonical(u64::MAX));
        assert!(!is_canonical(0x0000_8000_0000_0000));
        assert!(!is_canonical(0x8000_0000_0000_0000));
    }

    #[test]
    fn only_status_flags_and_df_pass() {
        // Bit 1 (always one), IF (9) and TF (8) stay; CF and ZF change.
        let old = 1 << 1 | 1 << 9;
        let new = 1 | 1 << 6 | 1 << 8 | 1 << 17;
        assert_eq!(merge_rflags(old, new), 1 << 1 | 1 << 9 | 1 | 1 << 6);
        assert_eq!(merge_rflags(old, 0), old);
    }

    #[test]
    fn a_non_canonical_rip_keeps_the_old_one() {
        assert_eq!(resume_rip(0x1000, 0x2000), 0x2000);
        assert_eq!(resume_rip(0x1000, 0x8000_0000_0000_0000), 0x1000);
    }

    #[test]
    fn words_follow_the_layout() {
        let mut state = SubjectState {
            magic: STATE_MAGIC,
            exit_reason: 30,
            instruction_length: 2,
            rip: 0x1000,
            efer: 0xd00,
            ..SubjectState::default()
        };
        state.set_gpr(Gpr::R15, 0xf);
        state.segment_bases[Seg::Gs.index()] = 0x6;
        let words = state.to_words();
        assert_eq!(words[0], STATE_MAGIC);
        assert_eq!(words[core::mem::offset_of!(SubjectState, rip) / 8], 0x1000);
        assert_eq!(words[core::mem::offset_of!(SubjectState, efer) / 8], 0xd00);
        assert_eq!(
            words[core::mem::offset_of!(SubjectState, gprs) / 8 + 15],
            0xf
        );
        assert_eq!(words[STATE_WORDS - 3], 0x6);
        state.device_interrupt = 1;
        state.resume_halted = 2;
        let words = state.to_words();
        assert_eq!(words[0x138 / 8], 1);
        assert_eq!(words[0x140 / 8], 2);
        assert_eq!(SubjectState::from_words(&words), state);
        state.advance_rip();
        assert_eq!(state.rip, 0x1002);
        assert_eq!(state.basic_exit_reason(), 30);
        assert_eq!(state.vector(), None);
        state.interruption_info = 1 << 31 | 3 << 8 | 14;
        assert_eq!(state.vector(), Some(14));
    }

    #[test]
    fn register_indexes_follow_the_encoding() {
        assert_eq!(Gpr::Rax.index(), 0);
        assert_eq!(Gpr::Rsp.index(), 4);
        assert_eq!(Gpr::R15.index(), 15);
        assert_eq!(Seg::Gs.index(), 5);
    }
}
