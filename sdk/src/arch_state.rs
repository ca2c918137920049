//! Probes of architectural state that lives outside the VMCS and that no
//! native subject may reach: debug registers, XCR0, IA32_TSC_AUX (through
//! RDTSCP and RDPID) and PKRU (docs/kernel.md, "Architectural state per
//! subject").
//!
//! The state-isolation tests (`systems/state_dr.xml`,
//! `systems/state_cpu.xml`) pair a *writer*, which tries to plant a marker
//! in one of these registers, with a *reader* that runs after it on the
//! same CPU and tries to read the register back. The kernel must stop both
//! at their first access: MOV-DR exiting catches every debug-register
//! access, XSETBV always exits (or raises #UD first with CR4.OSXSAVE
//! clear), XGETBV and the PKRU instructions raise #UD (CR4.OSXSAVE and
//! CR4.PKE are clear and owned by the kernel), RDTSCP and RDPID raise #UD
//! ("enable RDTSCP" is clear) and a WRMSR of TSC_AUX exits (MSR bitmap).
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
