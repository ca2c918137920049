//! Probes of architectural state that lives outside the VMCS and that no
//! native subject may reach: debug registers, XCR0, IA32_TSC_AUX (through
//! RDTSCP and RDPID) and PKRU (docs/kernel.md, "Architectural state per
//! subject"), and the FXSAVE image ([`fx_save`], [`fx_restore`]) through
//! which a native subject reaches MXCSR (and, where the implementation
//! loads them with CR4.OSFXSR clear, the XMM registers).
//!
//! The state-isolation tests (`systems/state_dr.xml`,
//! `systems/state_cpu.xml`) pair a *writer*, which tries to plant a marker
//! in one of these registers, with a *reader* that runs after it on the
//! same CPU and tries to read the register back. The kernel must stop both
//! at their first access: MOV-DR exiting catches every debug-register
//! access, XSETBV always exits (or raises #UD first with CR4.OSXSAVE
//! clear), XGETBV and the PKRU instructions raise #UD (CR4.OSXSAVE and
//! CR4.PKE are clear and owned by the kernel), RDTSCP and RDPID raise #UD
//! ("enable RDTSCP" is clear), a WRMSR of TSC_AUX exits (MSR bitmap) and
//! SYSCALL, the way to a VM's IA32_LSTAR and SFMASK without an MSR
//! access, raises #UD (EFER.SCE is clear).
//!
//! Every instruction uses fixed registers (the value in RAX, or RAX as the
//! destination), so the exit qualification of a debug-register access is
//! the same on every build: `0x0` for MOV to DR0, `0x7` for MOV to DR7,
//! `0x10` for MOV from DR0, `0x16` for MOV from DR6.
//!
//! None of them can break Rust's memory safety inside the subject, even if
//! the kernel let it through: none touches memory; a debug breakpoint would
//! only raise #DB, which exits to the kernel (every exception of a native
//! subject does); XCR0 only selects which state components XSAVE handles,
//! which soft-float code never uses; PKRU only restricts user-mode pages,
//! and a native subject runs in ring 0.
#![allow(unsafe_code)]

use core::arch::asm;

/// MOV to DR0 from RAX (qualification `0x0`).
pub fn write_dr0(value: u64) {
    // Safety: a debug-register write touches no memory; at worst an
    // enabled breakpoint raises #DB, which exits to the kernel.
    unsafe { asm!("mov dr0, rax", in("rax") value, options(nomem, nostack, preserves_flags)) }
}

/// MOV to DR7 from RAX (qualification `0x7`).
pub fn write_dr7(value: u64) {
    // Safety: as for `write_dr0`: no memory, at worst a #DB exit.
    unsafe { asm!("mov dr7, rax", in("rax") value, options(nomem, nostack, preserves_flags)) }
}

/// MOV from DR0 into RAX (qualification `0x10`).
pub fn read_dr0() -> u64 {
    let value: u64;
    // Safety: reading a debug register changes nothing.
    unsafe { asm!("mov rax, dr0", out("rax") value, options(nomem, nostack, preserves_flags)) }
    value
}

/// MOV from DR3 into RAX (qualification `0x13`).
pub fn read_dr3() -> u64 {
    let value: u64;
    // Safety: reading a debug register changes nothing.
    unsafe { asm!("mov rax, dr3", out("rax") value, options(nomem, nostack, preserves_flags)) }
    value
}

/// MOV from DR6 into RAX (qualification `0x16`).
pub fn read_dr6() -> u64 {
    let value: u64;
    // Safety: reading a debug register changes nothing.
    unsafe { asm!("mov rax, dr6", out("rax") value, options(nomem, nostack, preserves_flags)) }
    value
}

/// XSETBV: writes `value` to extended control register `xcr` (0: XCR0).
pub fn xsetbv(xcr: u32, value: u64) {
    let low = value as u32;
    let high = (value >> 32) as u32;
    // Safety: XCR0 only decides which state components XSAVE/XRSTOR and
    // VEX instructions may use; the subject's soft-float code uses none.
    // No memory is touched.
    unsafe {
        asm!("xsetbv", in("ecx") xcr, in("eax") low, in("edx") high, options(nomem, nostack, preserves_flags));
    }
}

/// XGETBV: reads extended control register `xcr` (0: XCR0).
pub fn xgetbv(xcr: u32) -> u64 {
    let low: u32;
    let high: u32;
    // Safety: a register read; no memory, no state changes.
    unsafe {
        asm!("xgetbv", in("ecx") xcr, out("eax") low, out("edx") high, options(nomem, nostack, preserves_flags));
    }
    (u64::from(high) << 32) | u64::from(low)
}

/// RDTSCP: the TSC and IA32_TSC_AUX (returned second).
pub fn rdtscp() -> (u64, u32) {
    let low: u32;
    let high: u32;
    let aux: u32;
    // Safety: reads the TSC and TSC_AUX into EDX:EAX and ECX; no memory.
    unsafe {
        asm!("rdtscp", out("eax") low, out("edx") high, out("ecx") aux, options(nomem, nostack, preserves_flags));
    }
    ((u64::from(high) << 32) | u64::from(low), aux)
}

/// RDPID: IA32_TSC_AUX into RAX.
pub fn rdpid() -> u64 {
    let value: u64;
    // Safety: a register read; no memory, no state changes.
    unsafe { asm!("rdpid rax", out("rax") value, options(nomem, nostack, preserves_flags)) }
    value
}

/// SYSCALL: with EFER.SCE set it would jump to IA32_LSTAR (a VM's kernel
/// entry) with RCX and R11 overwritten; with SCE clear (every native
/// subject) it raises #UD.
pub fn syscall() {
    // Safety: with EFER.SCE clear (native subjects cannot change EFER) the
    // instruction raises #UD, which exits to the kernel and stops the
    // subject. Were it to execute, it would transfer control to LSTAR,
    // which holds no code of this subject: the first fetch there faults
    // (an exit), no memory of the subject is written. RCX and R11 are
    // declared clobbered.
    unsafe { asm!("syscall", out("rcx") _, out("r11") _, options(nomem, nostack)) }
}

/// WRPKRU: writes `value` to PKRU (ECX and EDX must be zero).
pub fn wrpkru(value: u32) {
    // Safety: PKRU restricts only user-mode accesses to pages with a
    // protection key; a native subject runs in ring 0 with CR4.PKE clear.
    // No memory is touched.
    unsafe {
        asm!("wrpkru", in("eax") value, in("ecx") 0u32, in("edx") 0u32, options(nomem, nostack, preserves_flags));
    }
}

/// RDPKRU: reads PKRU (ECX must be zero).
pub fn rdpkru() -> u32 {
    let value: u32;
    // Safety: a register read into EAX (EDX cleared); no memory.
    unsafe {
        asm!("rdpkru", in("ecx") 0u32, out("eax") value, out("edx") _, options(nomem, nostack, preserves_flags));
    }
    value
}

/// An FXSAVE image (SDM Vol. 1, 10.5.1), for the MXCSR/XMM check of the
/// `state` test.
#[repr(C, align(16))]
#[derive(Clone, Copy)]
pub struct FxImage(pub [u8; 512]);

/// Byte offset of FOP in an FXSAVE image.
const FOP_AT: usize = 6;
/// Byte offset of FIP in a 64-bit FXSAVE image.
const FIP_AT: usize = 8;
/// Byte offset of FDP in a 64-bit FXSAVE image.
const FDP_AT: usize = 16;
/// Byte offset of MXCSR in an FXSAVE image.
const MXCSR_AT: usize = 24;
/// Byte offset of XMM0 in an FXSAVE image.
const XMM0_AT: usize = 160;

impl FxImage {
    /// The `N` bytes at `at` (zero past the end).
    fn bytes<const N: usize>(&self, at: usize) -> [u8; N] {
        let mut out = [0u8; N];
        for (to, from) in out.iter_mut().zip(self.0.iter().skip(at)) {
            *to = *from;
        }
        out
    }

    /// Overwrites the bytes at `at` with `value`.
    fn set_bytes(&mut self, at: usize, value: &[u8]) {
        for (to, from) in self.0.iter_mut().skip(at).zip(value) {
            *to = *from;
        }
    }

    /// The x87 last-instruction state of a 64-bit image (FXSAVE64): FOP
    /// (11 bits), FIP and FDP (64 bits each).
    pub fn x87_pointers(&self) -> (u16, u64, u64) {
        (
            u16::from_le_bytes(self.bytes(FOP_AT)),
            u64::from_le_bytes(self.bytes(FIP_AT)),
            u64::from_le_bytes(self.bytes(FDP_AT)),
        )
    }

    /// MXCSR.
    pub fn mxcsr(&self) -> u32 {
        u32::from_le_bytes(self.bytes(MXCSR_AT))
    }

    /// Sets MXCSR.
    pub fn set_mxcsr(&mut self, value: u32) {
        self.set_bytes(MXCSR_AT, &value.to_le_bytes());
    }

    /// The low 64 bits of XMM0.
    pub fn xmm0(&self) -> u64 {
        u64::from_le_bytes(self.bytes(XMM0_AT))
    }

    /// Sets the low 64 bits of XMM0.
    pub fn set_xmm0(&mut self, value: u64) {
        self.set_bytes(XMM0_AT, &value.to_le_bytes());
    }
}

/// FXSAVE64 of the current x87/MMX/SSE state. With CR4.OSFXSR clear (every
/// native subject) whether the XMM registers are stored is
/// implementation-dependent (Bochs: not; their bytes stay zero here).
pub fn fx_save() -> FxImage {
    let mut image = FxImage([0; 512]);
    // Safety: FXSAVE writes exactly the 512 bytes of `image`, 16-byte
    // aligned and exclusively borrowed; it changes no register (CR0.EM and
    // CR0.TS are clear in every subject).
    unsafe {
        asm!("fxsave64 [{}]", in(reg) image.0.as_mut_ptr(), options(nostack, preserves_flags));
    }
    image
}

/// FXRSTOR64 of `image`: loads x87 state and MXCSR (and, where the
/// implementation loads them with CR4.OSFXSR clear, the XMM registers).
/// Meant for an image from [`fx_save`] with only MXCSR and XMM0 changed:
/// the x87 stack stays as it was (empty, as compiled code expects).
pub fn fx_restore(image: &FxImage) {
    // Safety: FXRSTOR reads the 512 bytes of `image` and loads only
    // floating-point state, which the soft-float subject code never uses;
    // an MXCSR with reserved bits set raises #GP, which exits to the
    // kernel. The x87 registers are declared clobbered.
    unsafe {
        asm!(
            "fxrstor64 [{}]",
            in(reg) image.0.as_ptr(),
            out("st(0)") _, out("st(1)") _, out("st(2)") _, out("st(3)") _,
            out("st(4)") _, out("st(5)") _, out("st(6)") _, out("st(7)") _,
            options(readonly, nostack, preserves_flags),
        );
    }
}
