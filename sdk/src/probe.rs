//! Deliberately forbidden accesses, for isolation tests.
//!
//! An isolation test subject tries something its policy does not allow and
//! expects the kernel to stop it. Doing that from safe Rust needs care: a
//! stray write must not be able to corrupt the subject's own Rust objects
//! if, against expectations, it succeeds. [`write_u64`] therefore refuses
//! any address in the low gigabyte (where the subject's image, stack and
//! info page live) and any address the info page lists as writable for
//! this subject; everything else either faults (the point of the test) or
//! hits memory no Rust object of the subject occupies.
//!
//! [`read_u64`] is the load counterpart with the same address rules.
//! [`resumable_write_u64`], [`resumable_read_u64`] and [`mark`] are for a
//! subject whose faults go to a monitor (`onFault="monitor"`): each puts
//! the address after its probing instruction in R15, where the monitor
//! resumes it (the CPU reports no instruction length for a page fault or
//! `ud2`).
//!
//! The privileged-instruction probes ([`read_msr`], [`write_msr`],
//! [`toggle_cr0_ts`], [`write_cr3_reserved`], [`vmxoff`],
//! [`raw_hypercall`]) touch no memory: in VMX non-root mode each either
//! exits to the kernel or, if the policy allowed it, has an effect that
//! cannot break Rust's memory safety (CR0.TS only makes the next FPU
//! instruction fault; the CR3 value is one the CPU must refuse). Forbidden
//! port I/O needs no wrapper: [`crate::arch::outb`] and
//! [`crate::arch::inb`] are safe because the I/O bitmap decides what they
//! do.
//!
//! [`gpr_mark`] is for the register isolation test (`gpr_isolation`): it
//! fills the general-purpose registers with markers around a `vmcall` and
//! reports what came back; only its own stack slots and its result array
//! are written.
//!
//! The CR2 probes ([`read_cr2`], [`write_cr2`]) are for the state isolation
//! test: MOV to and from CR2 does not exit in VMX non-root mode and CR2 is
//! not part of the VMCS, so the kernel must keep it per subject. A subject
//! runs with every exception exiting to the kernel, so CR2 holds nothing
//! the subject's own code relies on; writing it cannot break Rust's memory
//! safety.
//!
//! The x87 probes ([`x87_mark`], [`x87_state`]) are for the FPU isolation
//! test: the kernel must save and restore the x87 state when the subject on
//! a CPU changes. Subjects are built soft-float (`x86_64-unknown-none`), so
//! compiled code never touches the x87 unit and a subject can keep a marker
//! in it across frames. The guest runs with CR4.OSFXSR clear, so SSE
//! instructions would fault; only x87 instructions and `fxsave` (which
//! needs no OSFXSR) are used.
#![allow(unsafe_code)]

use septum_abi::VirtAddr;

use crate::info::Info;

/// Lowest address a probe may touch: everything below holds the subject's
/// own image, stack and info page.
pub const PROBE_FLOOR: VirtAddr = VirtAddr(0x4000_0000);

/// Why a probe refused to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeError {
    /// The `Info` is not the composer's page (see [`crate::rt::startup`]).
    NotMapped,
    /// The address is below [`PROBE_FLOOR`] or not 8-byte aligned.
    BadAddress,
    /// The address is writable memory of this subject: writing it proves
    /// nothing.
    Allowed,
}

/// Writes `value` to `address`, which the policy must not let this subject
/// write. Returns only if the write did not fault.
pub fn write_u64(info: &Info<'static>, address: VirtAddr, value: u64) -> Result<(), ProbeError> {
    if !info.mapped {
        return Err(ProbeError::NotMapped);
    }
    if address < PROBE_FLOOR || !address.is_aligned(8) {
        return Err(ProbeError::BadAddress);
    }
    if info.covers_writable(address, 8) {
        return Err(ProbeError::Allowed);
    }
    let address = usize::try_from(address.get()).map_err(|_| ProbeError::BadAddress)?;
    // Safety: the target is aligned, above every Rust object of the subject
    // (image, stack and info page lie below `PROBE_FLOOR`; there is no
    // heap) and not memory the policy lets the subject write, so the store
    // faults or changes memory the program holds no reference to.
    unsafe { core::ptr::with_exposed_provenance_mut::<u64>(address).write_volatile(value) };
    Ok(())
}

/// Reads `address`, which the policy must not let this subject read.
/// Returns the value only if the load did not fault. Same address rules as
/// [`write_u64`], except that readable memory of the subject is not
/// refused here (the caller chooses an unmapped address).
pub fn read_u64(info: &Info<'static>, address: VirtAddr) -> Result<u64, ProbeError> {
    if !info.mapped {
        return Err(ProbeError::NotMapped);
    }
    if address < PROBE_FLOOR || !address.is_aligned(8) {
        return Err(ProbeError::BadAddress);
    }
    let address = usize::try_from(address.get()).map_err(|_| ProbeError::BadAddress)?;
    // Safety: the target is aligned and above every Rust object of the
    // subject; a load changes nothing, and if it does not fault it reads
    // memory the program holds no reference to (a volatile read of a `u64`,
    // for which every bit pattern is valid).
    Ok(unsafe { core::ptr::with_exposed_provenance::<u64>(address).read_volatile() })
}

/// [`write_u64`] for a monitored subject (`onFault="monitor"`): R15 holds
/// the address right after the store, so that the monitor can resume the
/// subject there (RIP = R15) after the fault, which reports no instruction
/// length. Returns whether or not the store faulted; the monitor tells.
pub fn resumable_write_u64(
    info: &Info<'static>,
    address: VirtAddr,
    value: u64,
) -> Result<(), ProbeError> {
    if !info.mapped {
        return Err(ProbeError::NotMapped);
    }
    if address < PROBE_FLOOR || !address.is_aligned(8) {
        return Err(ProbeError::BadAddress);
    }
    if info.covers_writable(address, 8) {
        return Err(ProbeError::Allowed);
    }
    // Safety: as in `write_u64` (the same address rules); the block also
    // writes R15 (declared clobbered), and execution leaves it only at its
    // end, whether the store completes or a monitor resumes the subject at
    // the label.
    unsafe {
        core::arch::asm!(
            "lea r15, [rip + 2f]",
            "mov qword ptr [{address}], {value}",
            "2:",
            address = in(reg) address.get(),
            value = in(reg) value,
            out("r15") _,
            options(nostack, preserves_flags),
        );
    }
    Ok(())
}

/// [`read_u64`] for a monitored subject: R15 holds the address right after
/// the load (see [`resumable_write_u64`]). If the load faulted and the
/// monitor resumed the subject, the value is whatever the register held.
pub fn resumable_read_u64(info: &Info<'static>, address: VirtAddr) -> Result<u64, ProbeError> {
    if !info.mapped {
        return Err(ProbeError::NotMapped);
    }
    if address < PROBE_FLOOR || !address.is_aligned(8) {
        return Err(ProbeError::BadAddress);
    }
    let value: u64;
    // Safety: as in `read_u64`; R15 is declared clobbered, and execution
    // leaves the block only at its end.
    unsafe {
        core::arch::asm!(
            "lea r15, [rip + 2f]",
            "mov {value}, qword ptr [{address}]",
            "2:",
            address = in(reg) address.get(),
            value = lateout(reg) value,
            out("r15") _,
            options(nostack, preserves_flags, readonly),
        );
    }
    Ok(value)
}

/// Traps to the monitor on purpose (`ud2`, an invalid-opcode exception)
/// with `tag` in RDI and `value` in RSI, R15 holding the address after the
/// `ud2`: a monitored subject's way to report to its monitor. Without a
/// monitor that resumes it, the subject's `onFault` applies.
pub fn mark(tag: u64, value: u64) {
    // Safety: `ud2` touches no memory; a monitor resumes the subject at the
    // label (R15, declared clobbered) or the kernel applies its `onFault`.
    unsafe {
        core::arch::asm!(
            "lea r15, [rip + 2f]",
            "ud2",
            "2:",
            in("rdi") tag,
            in("rsi") value,
            out("r15") _,
            options(nomem, nostack, preserves_flags),
        );
    }
}

/// Reads model-specific register `msr` (`rdmsr`).
pub fn read_msr(msr: u32) -> u64 {
    let low: u32;
    let high: u32;
    // Safety: `rdmsr` writes only EDX:EAX (declared); a denied MSR exits to
    // the kernel before anything happens.
    unsafe {
        core::arch::asm!("rdmsr", in("ecx") msr, out("eax") low, out("edx") high, options(nomem, nostack, preserves_flags));
    }
    (u64::from(high) << 32) | u64::from(low)
}

/// Writes `value` to model-specific register `msr` (`wrmsr`).
///
/// Only for MSRs whose change cannot affect the subject's memory safety
/// (the callers write `IA32_FS_BASE`, unused by soft-float `no_std` code
/// without thread locals, and the read-only `IA32_PLATFORM_ID`).
pub fn write_msr(msr: u32, value: u64) {
    let low = value as u32;
    let high = (value >> 32) as u32;
    // Safety: `wrmsr` reads ECX and EDX:EAX and touches no memory; a denied
    // MSR exits to the kernel before anything happens, and the MSRs callers
    // use are ones the subject's code does not depend on (see above).
    unsafe {
        core::arch::asm!("wrmsr", in("ecx") msr, in("eax") low, in("edx") high, options(nomem, nostack, preserves_flags));
    }
}

/// Loads CR3 from RAX with a value whose bit 51 is set (`mov cr3, rax`).
///
/// Bit 51 is a reserved CR3 bit whenever the physical-address width
/// (MAXPHYADDR) is below 52 bits, as on the CPUs the tests boot on; there,
/// if CR3-load exiting failed, the CPU would raise #GP instead of
/// switching page tables. A probe cannot read
/// its real CR3 first: that read (CR3-store exiting) would exit on its
/// own. RAX is fixed so the exit qualification is exactly `0x3` (CR 3,
/// MOV to CR, register 0).
pub fn write_cr3_reserved() {
    const VALUE: u64 = 1 << 51;
    // Safety: with MAXPHYADDR below 52 the value has a reserved bit set, so
    // the CPU never installs it as a page-table root (it exits to the
    // kernel, or at worst faults with #GP); no memory is touched.
    unsafe {
        core::arch::asm!("mov cr3, rax", in("rax") VALUE, options(nomem, nostack, preserves_flags));
    }
}

/// Writes CR0 with its TS bit flipped (`mov cr0`), which differs from the
/// kernel's read shadow and so must exit when the kernel owns CR0.
pub fn toggle_cr0_ts() {
    // Safety: reads CR0 into a scratch register and writes it back with only
    // bit 3 (TS) flipped: no memory is touched, paging and protection bits
    // are unchanged; at worst the next FPU instruction faults.
    unsafe {
        core::arch::asm!(
            "mov {tmp}, cr0",
            "xor {tmp}, 8",
            "mov cr0, {tmp}",
            tmp = out(reg) _,
            options(nomem, nostack, preserves_flags),
        );
    }
}

/// Executes `vmxoff`, which always exits in VMX non-root mode.
pub fn vmxoff() {
    // Safety: in non-root mode `vmxoff` unconditionally causes a VM exit;
    // it touches no memory of the subject.
    unsafe {
        core::arch::asm!("vmxoff", options(nomem, nostack));
    }
}

/// `vmcall` with an arbitrary RAX, bypassing [`crate::SourceEventId`]'s
/// range check: the kernel must ignore numbers the policy does not define.
pub fn raw_hypercall(number: u64) {
    crate::arch::vmcall(number);
}

/// What [`gpr_mark`] saw after its `vmcall` returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GprSeen {
    /// RAX: the hypercall's result (the pending events of a `sleep`), else
    /// its number.
    pub rax: u64,
    /// RCX, RDX, RBX, RBP, RSI, RDI, R8..R15, in this order.
    pub regs: [u64; 14],
}

impl GprSeen {
    /// How many of the 14 registers do not hold what [`gpr_mark`] loaded
    /// for `seed` (register `i` of [`GprSeen::regs`]: `seed + i + 1`).
    pub fn mismatches(&self, seed: u64) -> u32 {
        let mut count = 0;
        for (expected, seen) in (1u64..).map(|i| seed.wrapping_add(i)).zip(self.regs) {
            if seen != expected {
                count += 1;
            }
        }
        count
    }
}

/// Loads every general-purpose register but RAX and RSP with a marker made
/// from `seed` (RCX `seed + 1`, RDX `+ 2`, RBX `+ 3`, RBP `+ 4`, RSI `+ 5`,
/// RDI `+ 6`, R8..R15 `+ 7`..`+ 14`), executes `vmcall` with `number` in
/// RAX and returns what the 15 registers hold right after it: the register
/// isolation test's probe (whatever ran on the CPU meanwhile, the kernel
/// changes no register but RAX).
pub fn gpr_mark(number: u64, seed: u64) -> GprSeen {
    let mut regs = [0u64; 14];
    let rax: u64;
    // Safety: RBX and RBP (which Rust reserves) are saved on the stack and
    // restored; every other register the block writes is declared. The
    // only memory written is `regs` (14 words, through the pointer kept on
    // the stack across the `vmcall`).
    unsafe {
        core::arch::asm!(
            "push rbx",
            "push rbp",
            "push rdi",
            "mov rbx, rsi",
            "lea rcx, [rbx + 1]",
            "lea rdx, [rbx + 2]",
            "lea rbp, [rbx + 4]",
            "lea rsi, [rbx + 5]",
            "lea rdi, [rbx + 6]",
            "lea r8, [rbx + 7]",
            "lea r9, [rbx + 8]",
            "lea r10, [rbx + 9]",
            "lea r11, [rbx + 10]",
            "lea r12, [rbx + 11]",
            "lea r13, [rbx + 12]",
            "lea r14, [rbx + 13]",
            "lea r15, [rbx + 14]",
            "add rbx, 3",
            "vmcall",
            "push rax",
            "mov rax, [rsp + 8]",
            "mov [rax], rcx",
            "mov [rax + 8], rdx",
            "mov [rax + 16], rbx",
            "mov [rax + 24], rbp",
            "mov [rax + 32], rsi",
            "mov [rax + 40], rdi",
            "mov [rax + 48], r8",
            "mov [rax + 56], r9",
            "mov [rax + 64], r10",
            "mov [rax + 72], r11",
            "mov [rax + 80], r12",
            "mov [rax + 88], r13",
            "mov [rax + 96], r14",
            "mov [rax + 104], r15",
            "pop rax",
            "add rsp, 8",
            "pop rbp",
            "pop rbx",
            inout("rax") number => rax,
            inout("rdi") regs.as_mut_ptr() => _,
            inout("rsi") seed => _,
            out("rcx") _,
            out("rdx") _,
            out("r8") _,
            out("r9") _,
            out("r10") _,
            out("r11") _,
            out("r12") _,
            out("r13") _,
            out("r14") _,
            out("r15") _,
        );
    }
    GprSeen { rax, regs }
}

/// Reads CR2 (`mov rax, cr2`; no exit in VMX non-root mode).
pub fn read_cr2() -> u64 {
    let value: u64;
    // Safety: reading a control register touches no memory and changes no
    // state.
    unsafe {
        core::arch::asm!("mov {}, cr2", out(reg) value, options(nomem, nostack, preserves_flags));
    }
    value
}

/// Writes CR2 (`mov cr2, rax`; no exit in VMX non-root mode).
pub fn write_cr2(value: u64) {
    // Safety: CR2 only reports the address of the last page fault; no
    // translation, protection or memory depends on it, and a subject's
    // page faults exit to the kernel rather than reading it.
    unsafe {
        core::arch::asm!("mov cr2, {}", in(reg) value, options(nomem, nostack, preserves_flags));
    }
}

/// The x87 part of an FXSAVE image (SDM Vol. 1, 10.5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct X87State {
    /// FPU control word (FNINIT: `0x37f`).
    pub fcw: u16,
    /// FPU status word (FNINIT: 0; bits 13:11 are TOP).
    pub fsw: u16,
    /// Abridged tag word, one bit per physical register, 1 = valid
    /// (FNINIT: 0, all empty).
    pub ftw: u8,
    /// ST(0)..ST(7) as FXSAVE stores them, 80 bits each; the contents of
    /// empty registers too, which is where a leak would show.
    pub regs: [[u8; 10]; 8],
}

impl X87State {
    /// The 64-bit significand of ST(`i`) (its low 8 bytes).
    pub fn significand(&self, i: usize) -> Option<u64> {
        let reg = self.regs.get(i)?;
        let mut low = [0u8; 8];
        low.copy_from_slice(reg.get(..8)?);
        Some(u64::from_le_bytes(low))
    }
}

/// FXSAVE needs a 16-byte aligned 512-byte area.
#[repr(C, align(16))]
struct FxArea([u8; 512]);

/// Reads the whole x87 state with `fxsave` (no change to it).
pub fn x87_state() -> X87State {
    let mut area = FxArea([0; 512]);
    // Safety: `fxsave` writes exactly the 512 bytes of `area`, which is
    // 16-byte aligned and exclusively borrowed here; it changes no register
    // (CR0.EM and CR0.TS are clear in every subject, so it does not fault).
    unsafe {
        core::arch::asm!("fxsave [{}]", in(reg) area.0.as_mut_ptr(), options(nostack, preserves_flags));
    }
    let bytes = &area.0;
    let mut regs = [[0u8; 10]; 8];
    for (i, reg) in regs.iter_mut().enumerate() {
        let at = 32 + 16 * i;
        if let Some(src) = bytes.get(at..at + 10) {
            reg.copy_from_slice(src);
        }
    }
    X87State {
        fcw: u16::from_le_bytes([bytes[0], bytes[1]]),
        fsw: u16::from_le_bytes([bytes[2], bytes[3]]),
        ftw: bytes[4],
        regs,
    }
}

/// Leaves a marker in the x87 unit: loads control word `fcw`, pushes the
/// 64-bit pattern `significand` as an 80-bit value (`fild` of a signed
/// 64-bit integer is exact, so the significand keeps the pattern's bits,
/// normalised), and pops it again. The stack is empty afterwards but the
/// physical register keeps the value, which `fxsave` shows as ST(7).
pub fn x87_mark(fcw: u16, significand: i64) {
    let mut scratch: i64 = 0;
    // Safety: reads `fcw` and `significand` and writes `scratch`, all
    // locals passed by address and alive for the block. The x87 stack is
    // empty on entry and exit, as the inline-assembly rules require when
    // all eight ST registers are declared clobbered. The new control word
    // cannot affect compiled code: the target is soft-float and never uses
    // the x87 unit.
    unsafe {
        core::arch::asm!(
            "fldcw [{fcw}]",
            "fild qword ptr [{value}]",
            "fistp qword ptr [{scratch}]",
            fcw = in(reg) &fcw,
            value = in(reg) &significand,
            scratch = in(reg) &mut scratch,
            out("st(0)") _, out("st(1)") _, out("st(2)") _, out("st(3)") _,
            out("st(4)") _, out("st(5)") _, out("st(6)") _, out("st(7)") _,
            options(nostack),
        );
    }
}

/// Loads `gdt` as the subject's GDT (`lgdt`), leaving every segment
/// register as it is. Only composes where descriptor-table exiting is off
/// (a subject that takes interrupts, see [`crate::interrupt`]); elsewhere
/// `lgdt` exits and is a fault of the subject.
pub fn load_gdt(gdt: &'static [core::sync::atomic::AtomicU64]) {
    #[repr(C, packed)]
    struct Pointer {
        limit: u16,
        base: u64,
    }
    let pointer = Pointer {
        limit: u16::try_from(gdt.len() * 8 - 1).unwrap_or(u16::MAX),
        base: gdt.as_ptr() as u64,
    };
    // Safety: the table is `'static`; `lgdt` reads the 10-byte pointer and
    // changes only the GDTR. The loaded segments keep their cached
    // descriptors, so nothing the subject runs depends on the new table
    // until it loads a selector from it.
    unsafe {
        core::arch::asm!("lgdt [{}]", in(reg) &pointer, options(readonly, nostack, preserves_flags));
    }
}

/// Loads GS with `selector` (`mov gs`): in 64-bit mode GS.base becomes the
/// descriptor's 32-bit base. The SDK's code never uses GS.
pub fn load_gs(selector: u16) {
    // Safety: GS is not used by the SDK or by Rust code on this target; a
    // bad selector raises #GP, which exits to the kernel (a fault).
    unsafe {
        core::arch::asm!("mov gs, {0:x}", in(reg) selector, options(nomem, nostack, preserves_flags));
    }
}

/// `swapgs`: exchanges GS.base with IA32_KERNEL_GS_BASE (no exit at CPL 0).
pub fn swapgs() {
    // Safety: only the GS base and KERNEL_GS_BASE change; neither is used
    // by the SDK or by Rust code on this target.
    unsafe { core::arch::asm!("swapgs", options(nomem, nostack, preserves_flags)) }
}

/// Reads the u64 at `gs:[offset]`: at linear address GS.base + `offset`.
/// With GS.base 0 that is `offset` itself; any other base reads elsewhere
/// or faults (an exit, reported by the kernel).
pub fn read_gs_u64(offset: u64) -> u64 {
    let value: u64;
    // Safety: a read through GS that reaches unmapped memory faults into the
    // kernel (the subject is stopped), it never corrupts memory.
    unsafe {
        core::arch::asm!("mov {}, gs:[{}]", out(reg) value, in(reg) offset, options(readonly, nostack, preserves_flags));
    }
    value
}
