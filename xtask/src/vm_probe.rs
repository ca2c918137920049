//! Tiny VM guests for system tests of the VM platform (`profile="vm"`)
//! that need no Linux: each is a few hundred bytes of 64-bit code wrapped
//! in the smallest bzImage the composer accepts (`lib/compose/src/linux.rs`
//! checks the header), so it boots through the same `<linux kernel=...>`
//! path as Debian's kernel, in well under a second of Bochs time.
//!
//! The code is hand-assembled here (GNU `as` syntax in the comments; the
//! guest starts in 64-bit mode with interrupts off and an identity map, as
//! the Linux boot protocol's 64-bit entry does) and writes its result on
//! the VM's emulated UART at 0x3f8, whose lines the kernel prints as
//! `NAME: text`. [`prepare`] writes every probe into the composer's
//! binaries directory when a policy names one:
//!
//! - [`RESTART`] (`systems/vm_restart.xml`): checks that the emulated
//!   platform has its power-on values (PIC masks, UART IER/LCR/scratch,
//!   CMOS index, PCI address latch), prints
//!   `vm-probe: platform at power-on values` or `... STALE ...`, then
//!   programs all of them to other values (PIC initialised at vector 0x30
//!   with mask 0x5a, slave mask 0x3c, UART IER 0x0f, scratch 0xa5, LCR
//!   0x83, CMOS index 0x0b, PIT periodic, PCI address 0x8000_1234), then
//!   faults in the middle of an event delivery: it points its IDT at
//!   guest-physical memory it does not own and executes `ud2`, so the
//!   delivery of #UD ends in an EPT violation whose exit carries the #UD
//!   as IDT-vectoring information. Its `onFault` restarts it and the next
//!   boot checks again; a kernel that re-injected that #UD into the new
//!   boot would make it fault before it prints anything.
//! - [`STRADDLE_UART`], [`STRADDLE_BAR`] (`systems/vm_straddle*.xml`):
//!   print `vm-probe: 4-byte OUT at the end of a port range`, execute
//!   `out dx, eax` at the last port of the kernel's UART (0x3ff) or of a
//!   virtio console's BAR at 0xc000 (0xc01f), whose other three bytes are
//!   outside the range, then print `vm-probe: straddling OUT survived`.
//!   The kernel must treat the access as a fault of the subject.
//! - [`OBSERVER`] (`systems/silence_vm.xml`): a VM that measures its own
//!   resumes, for the timing silence of a VM's frame start. It spins on
//!   RDTSC (a six-instruction loop) and takes a gap of more than 2000
//!   ticks between two reads as a resume after a boundary. It keeps, for
//!   20 resumes, each one's distance from the one before minus one major
//!   frame (60000 ticks, the plan of `silence_vm.xml`), then prints the
//!   last 19 as 16-bit hex (`vm-observer: resume deltas 0000 0000 ...`)
//!   and spins. The first is left out: it follows the boot frame, which
//!   the deadline cut in another loop (it reads 0001). Bochs ends a frame
//!   at the end of the instruction trace the deadline falls in, here the
//!   loop's, so the first read after every resume is the same instruction
//!   after the entry, and every delta is 0 when every entry comes at the
//!   same time after its boundary.

//! - [`PRINTER`] (`systems/silence_vm_print.xml`): prints full console
//!   lines on the emulated UART without end (159 characters and a
//!   newline, one OUT each), so that the OUT that completes a line, whose
//!   emulation prints it on the kernel's console (about 3000 ticks),
//!   comes at every distance from its frame's deadline.

use std::fs;
use std::path::Path;

use crate::util::Error;

/// File name of the restart probe.
pub const RESTART: &str = "vm-probe-restart";
/// File name of the probe with a 4-byte OUT at port 0x3ff.
pub const STRADDLE_UART: &str = "vm-probe-straddle-uart";
/// File name of the probe with a 4-byte OUT at port 0xc01f.
pub const STRADDLE_BAR: &str = "vm-probe-straddle-bar";

/// File name of the VM observer.
pub const OBSERVER: &str = "vm-probe-observer";

/// File name of the VM printer.
pub const PRINTER: &str = "vm-probe-printer";

/// Code of the restart probe.
///
/// ```text
///     in al, 0x21; cmp al, 0xff; jne stale     # master IMR
///     in al, 0xa1; cmp al, 0xff; jne stale     # slave IMR
///     mov dx, 0x3f9; in al, dx; test al, al; jne stale   # UART IER
///     mov dx, 0x3fb; in al, dx; test al, al; jne stale   # UART LCR
///     mov dx, 0x3ff; in al, dx; test al, al; jne stale   # scratch
///     in al, 0x70; test al, al; jne stale      # CMOS index
///     mov dx, 0xcf8; in eax, dx; test eax, eax; jne stale # PCI address
///     lea rsi, [rip + fresh_text]; jmp print
/// stale:
///     lea rsi, [rip + stale_text]
/// print:
///     mov dx, 0x3fb; xor eax, eax; out dx, al  # LCR 0: DLAB off, so that
///     mov dx, 0x3f8                             # a stale LCR cannot hide it
/// 1:  mov al, [rsi]; test al, al; je 2f; out dx, al; inc rsi; jmp 1b
/// 2:  lea rsi, [rip + writes]
/// 3:  mov dx, [rsi]; test dx, dx; je 4f
///     mov al, [rsi + 2]; out dx, al; add rsi, 3; jmp 3b
/// 4:  mov dx, 0xcf8; mov eax, 0x80001234; out dx, eax
///     # Own page tables at the end of RAM: 0-2 MiB identity, and linear
///     # 2 MiB onto guest-physical 0x4000_0000, which the VM does not own.
///     mov edi, 0x1fd000
///     mov dword ptr [rdi], 0x1fe003              # PML4[0] -> PDPT
///     mov dword ptr [rdi + 0x1000], 0x1ff003     # PDPT[0] -> PD
///     mov dword ptr [rdi + 0x2000], 0x83         # PD[0]: 0-2 MiB
///     mov dword ptr [rdi + 0x2008], 0x40000083   # PD[1]: 0x4000_0000
///     mov rax, rdi; mov cr3, rax
///     lidt [rip + idtr]                           # IDT at linear 2 MiB
///     ud2     # #UD's delivery reads the IDT: an EPT violation that
///             # interrupts an event delivery (IDT-vectoring information)
/// idtr: .word 0xfff; .quad 0x200000
/// fresh_text: .asciz "vm-probe: platform at power-on values\n"
/// stale_text: .asciz "vm-probe: STALE platform state from the previous boot\n"
/// writes:     (port: u16, value: u8) triples, ended by port 0
/// ```
const RESTART_CODE: [u8; 0xc2] = [
    0xe4, 0x21, 0x3c, 0xff, 0x75, 0x39, 0xe4, 0xa1, 0x3c, 0xff, 0x75, 0x33, 0x66, 0xba, 0xf9, 0x03,
    0xec, 0x84, 0xc0, 0x75, 0x2a, 0x66, 0xba, 0xfb, 0x03, 0xec, 0x84, 0xc0, 0x75, 0x21, 0x66, 0xba,
    0xff, 0x03, 0xec, 0x84, 0xc0, 0x75, 0x18, 0xe4, 0x70, 0x84, 0xc0, 0x75, 0x12, 0x66, 0xba, 0xf8,
    0x0c, 0xed, 0x85, 0xc0, 0x75, 0x09, 0x48, 0x8d, 0x35, 0x85, 0x00, 0x00, 0x00, 0xeb, 0x07, 0x48,
    0x8d, 0x35, 0xa3, 0x00, 0x00, 0x00, 0x66, 0xba, 0xfb, 0x03, 0x31, 0xc0, 0xee, 0x66, 0xba, 0xf8,
    0x03, 0x8a, 0x06, 0x84, 0xc0, 0x74, 0x06, 0xee, 0x48, 0xff, 0xc6, 0xeb, 0xf4, 0x48, 0x8d, 0x35,
    0xbc, 0x00, 0x00, 0x00, 0x66, 0x8b, 0x16, 0x66, 0x85, 0xd2, 0x74, 0x0a, 0x8a, 0x46, 0x02, 0xee,
    0x48, 0x83, 0xc6, 0x03, 0xeb, 0xee, 0x66, 0xba, 0xf8, 0x0c, 0xb8, 0x34, 0x12, 0x00, 0x80, 0xef,
    0xbf, 0x00, 0xd0, 0x1f, 0x00, 0xc7, 0x07, 0x03, 0xe0, 0x1f, 0x00, 0xc7, 0x87, 0x00, 0x10, 0x00,
    0x00, 0x03, 0xf0, 0x1f, 0x00, 0xc7, 0x87, 0x00, 0x20, 0x00, 0x00, 0x83, 0x00, 0x00, 0x00, 0xc7,
    0x87, 0x08, 0x20, 0x00, 0x00, 0x83, 0x00, 0x00, 0x40, 0x48, 0x89, 0xf8, 0x0f, 0x22, 0xd8, 0x0f,
    0x01, 0x1d, 0x02, 0x00, 0x00, 0x00, 0x0f, 0x0b, 0xff, 0x0f, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00,
    0x00, 0x00,
];
/// The restart probe's texts, after its code (the LEAs' targets).
const RESTART_FRESH: &[u8] = b"vm-probe: platform at power-on values\n\0";
const RESTART_STALE: &[u8] = b"vm-probe: STALE platform state from the previous boot\n\0";

/// The writes of the restart probe, after its code: (port, value) pairs.
const RESTART_WRITES: [(u16, u8); 14] = [
    // PIC: ICW1-4 (vector base 0x30), then OCW1 mask 0x5a; slave mask.
    (0x20, 0x11),
    (0x21, 0x30),
    (0x21, 0x04),
    (0x21, 0x01),
    (0x21, 0x5a),
    (0xa1, 0x3c),
    // UART: IER, scratch, then LCR with DLAB set.
    (0x3f9, 0x0f),
    (0x3ff, 0xa5),
    (0x3fb, 0x83),
    // CMOS index.
    (0x70, 0x0b),
    // PIT channel 0: mode 2, lo/hi, count 0x1000.
    (0x43, 0x34),
    (0x40, 0x00),
    (0x40, 0x10),
    // End.
    (0, 0),
];

/// Code of the straddle probes; the port of the OUT is at
/// [`STRADDLE_PORT_AT`].
///
/// ```text
///     lea rsi, [rip + before]; mov dx, 0x3f8
/// 1:  mov al, [rsi]; test al, al; je 2f; out dx, al; inc rsi; jmp 1b
/// 2:  mov dx, PORT; mov eax, 0x5a5a5a5a; out dx, eax
///     lea rsi, [rip + after]; mov dx, 0x3f8
/// 3:  mov al, [rsi]; test al, al; je 4f; out dx, al; inc rsi; jmp 3b
/// 4:  hlt; jmp 4b
/// before: .asciz "vm-probe: 4-byte OUT at the end of a port range\n"
/// after:  .asciz "vm-probe: straddling OUT survived\n"
/// ```
const STRADDLE_CODE: [u8; 0x3b] = [
    0x48, 0x8d, 0x35, 0x34, 0x00, 0x00, 0x00, 0x66, 0xba, 0xf8, 0x03, 0x8a, 0x06, 0x84, 0xc0, 0x74,
    0x06, 0xee, 0x48, 0xff, 0xc6, 0xeb, 0xf4, 0x66, 0xba, 0x00, 0x00, 0xb8, 0x5a, 0x5a, 0x5a, 0x5a,
    0xef, 0x48, 0x8d, 0x35, 0x44, 0x00, 0x00, 0x00, 0x66, 0xba, 0xf8, 0x03, 0x8a, 0x06, 0x84, 0xc0,
    0x74, 0x06, 0xee, 0x48, 0xff, 0xc6, 0xeb, 0xf4, 0xf4, 0xeb, 0xfd,
];
/// Offset of the OUT's port (`mov dx, PORT`'s immediate) in
/// [`STRADDLE_CODE`].
const STRADDLE_PORT_AT: usize = 0x19;
const STRADDLE_BEFORE: &[u8] = b"vm-probe: 4-byte OUT at the end of a port range\n\0";
const STRADDLE_AFTER: &[u8] = b"vm-probe: straddling OUT survived\n\0";

/// Code of the VM observer; its texts and its 20 deltas follow
/// ([`observer_code`]).
///
/// ```text
///     rdtsc; mov r8d, eax
/// 1:  rdtsc; mov ecx, eax; sub ecx, r8d; mov r8d, eax
///     cmp ecx, 2000; jb 1b                    # the first resume
///     lea rdi, [rip + deltas]; xor r9d, r9d
///     shl rdx, 32; or rax, rdx; mov r14, rax
/// next:
///     mov r8d, eax
/// 2:  rdtsc; mov ecx, eax; sub ecx, r8d; mov r8d, eax
///     cmp ecx, 2000; jb 2b                    # the next resume
///     shl rdx, 32; or rax, rdx
///     mov rcx, rax; sub rcx, r14; mov r14, rax
///     sub rcx, 60000; mov [rdi + r9*8], rcx   # minus one major frame
///     inc r9; cmp r9, 20; jb next
///     mov dx, 0x3f8; lea rsi, [rip + prefix]
/// 3:  mov al, [rsi]; test al, al; je 4f; out dx, al; inc rsi; jmp 3b
/// 4:  lea rbx, [rip + hex]; mov r9d, 1        # the first left out
/// 6:  mov al, 32; out dx, al
///     mov rcx, [rdi + r9*8]; mov r10d, 4
/// 7:  rol cx, 4; mov eax, ecx; and eax, 15; mov al, [rbx + rax]
///     out dx, al; dec r10d; jnz 7b
///     inc r9; cmp r9, 20; jb 6b
///     mov al, 10; out dx, al
/// 5:  jmp 5b                                  # HLT with interrupts off
///                                             # would be a fault
/// prefix: .asciz "vm-observer: resume deltas"
/// hex:    .ascii "0123456789abcdef"
/// deltas: .fill 20, 8, 0                      # at 0xe0, 8-aligned
/// ```
const OBSERVER_CODE: [u8; 0xb5] = [
    0x0f, 0x31, 0x41, 0x89, 0xc0, 0x0f, 0x31, 0x89, 0xc1, 0x44, 0x29, 0xc1, 0x41, 0x89, 0xc0, 0x81,
    0xf9, 0xd0, 0x07, 0x00, 0x00, 0x72, 0xee, 0x48, 0x8d, 0x3d, 0xc2, 0x00, 0x00, 0x00, 0x45, 0x31,
    0xc9, 0x48, 0xc1, 0xe2, 0x20, 0x48, 0x09, 0xd0, 0x49, 0x89, 0xc6, 0x41, 0x89, 0xc0, 0x0f, 0x31,
    0x89, 0xc1, 0x44, 0x29, 0xc1, 0x41, 0x89, 0xc0, 0x81, 0xf9, 0xd0, 0x07, 0x00, 0x00, 0x72, 0xee,
    0x48, 0xc1, 0xe2, 0x20, 0x48, 0x09, 0xd0, 0x48, 0x89, 0xc1, 0x4c, 0x29, 0xf1, 0x49, 0x89, 0xc6,
    0x48, 0x81, 0xe9, 0x60, 0xea, 0x00, 0x00, 0x4a, 0x89, 0x0c, 0xcf, 0x49, 0xff, 0xc1, 0x49, 0x83,
    0xf9, 0x14, 0x72, 0xc7, 0x66, 0xba, 0xf8, 0x03, 0x48, 0x8d, 0x35, 0x46, 0x00, 0x00, 0x00, 0x8a,
    0x06, 0x84, 0xc0, 0x74, 0x06, 0xee, 0x48, 0xff, 0xc6, 0xeb, 0xf4, 0x48, 0x8d, 0x1d, 0x4e, 0x00,
    0x00, 0x00, 0x41, 0xb9, 0x01, 0x00, 0x00, 0x00, 0xb0, 0x20, 0xee, 0x4a, 0x8b, 0x0c, 0xcf, 0x41,
    0xba, 0x04, 0x00, 0x00, 0x00, 0x66, 0xc1, 0xc1, 0x04, 0x89, 0xc8, 0x83, 0xe0, 0x0f, 0x8a, 0x04,
    0x03, 0xee, 0x41, 0xff, 0xca, 0x75, 0xee, 0x49, 0xff, 0xc1, 0x49, 0x83, 0xf9, 0x14, 0x72, 0xd8,
    0xb0, 0x0a, 0xee, 0xeb, 0xfe,
];
const OBSERVER_PREFIX: &[u8] = b"vm-observer: resume deltas\0";
const OBSERVER_HEX: &[u8] = b"0123456789abcdef";
/// Offset of the deltas (the first LEA's target).
const OBSERVER_DELTAS_AT: usize = 0xe0;
/// Offset of the major frame (`sub rcx, 60000`'s immediate) in
/// [`OBSERVER_CODE`].
#[cfg(test)]
const OBSERVER_PERIOD_AT: usize = 0x53;

/// The VM observer's code, texts and (zeroed) deltas.
fn observer_code() -> Vec<u8> {
    let mut code = [&OBSERVER_CODE[..], OBSERVER_PREFIX, OBSERVER_HEX].concat();
    code.resize(OBSERVER_DELTAS_AT + 20 * 8, 0);
    code
}

/// Code of the VM printer; its line follows ([`printer_code`]).
///
/// ```text
///     mov dx, 0x3f8
/// 1:  lea rsi, [rip + line]
/// 2:  mov al, [rsi]; test al, al; je 1b; out dx, al; inc rsi; jmp 2b
/// line: .asciz "vm-printer: abcd...\n"          # 159 characters, newline
/// ```
const PRINTER_CODE: [u8; 0x17] = [
    0x66, 0xba, 0xf8, 0x03, 0x48, 0x8d, 0x35, 0x0c, 0x00, 0x00, 0x00, 0x8a, 0x06, 0x84, 0xc0, 0x74,
    0xf3, 0xee, 0x48, 0xff, 0xc6, 0xeb, 0xf4,
];

/// The VM printer's code and line: `vm-printer: ` and the alphabet over
/// and over, 159 characters (one under the kernel's line capacity, so the
/// newline ends it), then the newline.
fn printer_code() -> Vec<u8> {
    let mut code = PRINTER_CODE.to_vec();
    code.extend_from_slice(b"vm-printer: ");
    code.extend((0..159 - 12).map(|i| b'a' + (i % 26) as u8));
    code.extend_from_slice(b"\n\0");
    code
}

/// The restart probe's code and data.
fn restart_code() -> Vec<u8> {
    let mut code = RESTART_CODE.to_vec();
    code.extend_from_slice(RESTART_FRESH);
    code.extend_from_slice(RESTART_STALE);
    for (port, value) in RESTART_WRITES {
        code.extend_from_slice(&port.to_le_bytes());
        code.push(value);
    }
    code
}

/// A straddle probe's code and data, with its OUT at `port`.
fn straddle_code(port: u16) -> Vec<u8> {
    let mut code = STRADDLE_CODE.to_vec();
    code[STRADDLE_PORT_AT..STRADDLE_PORT_AT + 2].copy_from_slice(&port.to_le_bytes());
    code.extend_from_slice(STRADDLE_BEFORE);
    code.extend_from_slice(STRADDLE_AFTER);
    code
}

/// The smallest bzImage around `code`: a boot sector and one setup sector
/// holding the setup header (protocol 2.15, relocatable, 64-bit entry,
/// 4 KiB alignment), then the protected-mode part with `code` at its
/// 64-bit entry (+0x200).
pub fn bzimage(code: &[u8]) -> Vec<u8> {
    let mut image = vec![0u8; 1024 + 0x200];
    image[0x1f1] = 1; // setup_sects
    image[0x1fe..0x200].copy_from_slice(&0xaa55u16.to_le_bytes());
    image[0x201] = 0x6a; // the header ends at 0x26c
    image[0x202..0x206].copy_from_slice(b"HdrS");
    image[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
    image[0x22c..0x230].copy_from_slice(&0x7fff_ffffu32.to_le_bytes()); // initrd_addr_max
    image[0x230..0x234].copy_from_slice(&0x1000u32.to_le_bytes()); // kernel_alignment
    image[0x234] = 1; // relocatable_kernel
    image[0x236..0x238].copy_from_slice(&1u16.to_le_bytes()); // XLF_KERNEL_64
    image[0x238..0x23c].copy_from_slice(&0xffu32.to_le_bytes()); // cmdline_size
    image[0x258..0x260].copy_from_slice(&0x10_0000u64.to_le_bytes()); // pref_address
    image[0x260..0x264].copy_from_slice(&0x1_0000u32.to_le_bytes()); // init_size
    image.extend_from_slice(code);
    image
}

/// Every probe, by file name.
pub fn probes() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (RESTART, bzimage(&restart_code())),
        (STRADDLE_UART, bzimage(&straddle_code(0x3ff))),
        (STRADDLE_BAR, bzimage(&straddle_code(0xc01f))),
        (OBSERVER, bzimage(&observer_code())),
        (PRINTER, bzimage(&printer_code())),
    ]
}

/// Write every probe into `binaries` if the policy text names one.
pub fn prepare(policy_text: &str, binaries: &Path) -> Result<(), Error> {
    if !policy_text.contains("vm-probe-") {
        return Ok(());
    }
    for (name, image) in probes() {
        let path = binaries.join(name);
        fs::write(&path, image).map_err(|e| format!("write {}: {e}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_observer_points_at_its_texts_and_deltas() {
        let code = observer_code();
        let target = |at: usize| {
            let rel = u32::from_le_bytes(code[at + 3..at + 7].try_into().unwrap()) as usize;
            at + 7 + rel
        };
        assert_eq!(target(0x17), OBSERVER_DELTAS_AT);
        assert!(code[target(0x68)..].starts_with(b"vm-observer: resume deltas\0"));
        assert!(code[target(0x7b)..].starts_with(b"0123456789abcdef"));
        assert_eq!(code.len(), OBSERVER_DELTAS_AT + 160);
        // The major frame of `silence_vm.xml`: 3 partitions of 2 ticks at
        // tickRate 1000 on the 10000 kHz TSC.
        assert_eq!(
            &code[OBSERVER_PERIOD_AT..OBSERVER_PERIOD_AT + 4],
            &(3u32 * 2 * 10_000).to_le_bytes()
        );
    }

    #[test]
    fn the_printer_points_at_a_full_line() {
        let code = printer_code();
        let rel = u32::from_le_bytes(code[7..11].try_into().unwrap()) as usize;
        let line = &code[11 + rel..];
        assert!(line.starts_with(b"vm-printer: abc"));
        assert_eq!(line.len(), 161);
        assert!(line.ends_with(b"\n\0"));
    }

    #[test]
    fn probes_are_bzimages_with_code_at_the_64_bit_entry() {
        for (name, image) in probes() {
            assert_eq!(&image[0x202..0x206], b"HdrS", "{name}");
            assert_eq!(image[0x1fe..0x200], [0x55, 0xaa], "{name}");
            assert!(image.len() - 1024 <= 0x1_0000, "{name}: within init_size");
        }
        let restart = restart_code();
        // The RIP-relative LEAs point at the texts and the write table.
        let target = |at: usize| {
            let rel = u32::from_le_bytes(restart[at + 3..at + 7].try_into().unwrap()) as usize;
            at + 7 + rel
        };
        assert!(restart[target(0x36)..].starts_with(b"vm-probe: platform at power-on"));
        assert!(restart[target(0x3f)..].starts_with(b"vm-probe: STALE"));
        let writes = RESTART_CODE.len() + RESTART_FRESH.len() + RESTART_STALE.len();
        assert_eq!(target(0x5d), writes);
        assert_eq!(restart[writes..][..3], [0x20, 0, 0x11]);
        let straddle = straddle_code(0xc01f);
        assert_eq!(
            straddle[STRADDLE_PORT_AT - 2..][..4],
            [0x66, 0xba, 0x1f, 0xc0]
        );
        let lea = |at: usize| {
            let rel = u32::from_le_bytes(straddle[at + 3..at + 7].try_into().unwrap()) as usize;
            at + 7 + rel
        };
        assert_eq!(lea(0), STRADDLE_CODE.len());
        assert_eq!(lea(0x21), STRADDLE_CODE.len() + STRADDLE_BEFORE.len());
    }
}
