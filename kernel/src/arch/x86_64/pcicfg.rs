//! PCI configuration space of native subjects that own PCI devices: the
//! arch half of kerncore's `pcicfg` (docs/kernel.md, "PCI configuration
//! space").
//!
//! `exit.rs` calls [`emulated`] for every I/O exit it does not otherwise
//! handle. For a subject in the composed `PCI_CONFIG` and a port kerncore
//! takes (0xCF8, 0xCFC-0xCFF), this reads the exit, keeps the subject's
//! CONFIG_ADDRESS latch, carries out kerncore's decision on the real ports
//! and moves guest RIP past the instruction. Everything else (another
//! subject, another port, string I/O, a write to another device) returns
//! `false`: the exit takes the fault path, reported, and the subject's
//! `onFault` decides.
//!
//! [`config_read`] and [`config_write`] are the kernel's own accesses, for
//! programming routed devices' MSIs at boot (`msi`), under the same lock.
//!
//! The hardware port pair is one for the whole machine, so each
//! CONFIG_ADDRESS + CONFIG_DATA pair the kernel issues runs under one lock
//! shared by all CPUs; subjects never touch the real ports themselves.

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use septum_abi::SubjectId;
use septum_kerncore::pcicfg::{self, Action, CONFIG_ADDRESS, PortAccess};
use septum_kerncore::plan::MAX_SUBJECTS;
use septum_kerncore::vtd::SourceId;

use super::exit::GuestRegs;
use super::percpu::CpuCore;
use super::vmx::{self, VmxError, field, vmread};
use crate::system::{MSI, PCI_CONFIG};

/// One CONFIG_ADDRESS latch per subject, in subject-id order. A latch is
/// only touched on exits of its subject (one CPU at a time).
static LATCHES: [AtomicU32; MAX_SUBJECTS] = [const { AtomicU32::new(0) }; MAX_SUBJECTS];

/// Held while the kernel uses the hardware CONFIG_ADDRESS/CONFIG_DATA pair.
static PORTS: AtomicBool = AtomicBool::new(false);

/// Emulate the loaded subject's I/O exit if it is a configuration-space
/// access kerncore lets it make; `false` leaves the exit to the fault path.
pub fn emulated(cpu: &CpuCore, frame: &mut GuestRegs) -> bool {
    let Some(vmcs) = cpu.loaded else {
        return false;
    };
    let subject = vmcs.id();
    if !PCI_CONFIG.emulates(subject) {
        return false;
    }
    emulate(subject, frame).unwrap_or(false)
}

fn emulate(subject: SubjectId, frame: &mut GuestRegs) -> Result<bool, VmxError> {
    let q = vmread(field::EXIT_QUALIFICATION)?;
    let string = q & (1 << 4) != 0;
    let port = (q >> 16) as u16;
    let ours = port == CONFIG_ADDRESS || (pcicfg::CONFIG_DATA..=0xcff).contains(&port);
    if string || !ours {
        return Ok(false);
    }
    let size = ((q & 7) as u8).wrapping_add(1);
    let input = q & (1 << 3) != 0;
    let access = PortAccess {
        port,
        size,
        write: (!input).then_some(frame.rax as u32),
    };
    match perform(subject, access) {
        None => return Ok(false),
        Some(Some(value)) => set_rax(frame, size, value),
        Some(None) => {}
    }
    let length = vmread(field::EXIT_INSTRUCTION_LENGTH)?;
    let rip = vmread(field::GUEST_RIP)?;
    vmx::write_guest(vmx::GuestField::Rip, rip.wrapping_add(length))?;
    Ok(true)
}

/// Decide `subject`'s configuration access `access` (kerncore) and carry
/// it out: `None` for a fault, `Some(Some(value))` for what a read
/// returns, `Some(None)` for a write done or dropped. Also the VT-d
/// probe's way to act as the owner.
pub fn perform(subject: SubjectId, access: PortAccess) -> Option<Option<u32>> {
    let latch = LATCHES.get(subject.index())?;
    let size = access.size;
    let action = pcicfg::decide(
        &PCI_CONFIG,
        subject,
        latch.load(Ordering::Relaxed),
        access,
        |device| capabilities(subject, device),
    );
    let mut value = None;
    match action {
        Action::Latch(new) => latch.store(new, Ordering::Relaxed),
        Action::Value(read) => value = Some(read),
        Action::Read { address, port } => {
            let read = with_ports(|| {
                // Safety: kerncore built `address` from a function the
                // subject owns and `port` is a CONFIG_DATA port: the read
                // reaches only the owner's own configuration registers.
                unsafe {
                    outl(CONFIG_ADDRESS, address);
                    read_port(port, size)
                }
            });
            value = Some(read);
        }
        Action::Write {
            address,
            port,
            value: written,
        } => with_ports(|| {
            // Safety: as for the read; kerncore refused writes to the BARs,
            // the ROM BAR and the MSI/MSI-X registers, so the function
            // neither moves nor re-targets its interrupts.
            unsafe {
                outl(CONFIG_ADDRESS, address);
                write_port(port, size, written);
            }
        }),
        Action::Merge {
            address,
            port,
            value: wanted,
            bits,
        } => with_ports(|| {
            // Safety: as for the write; kerncore limited `bits` to the
            // MSI/MSI-X enables of a function whose messages the kernel
            // programmed (`msi`), every other bit is written back as read.
            unsafe {
                outl(CONFIG_ADDRESS, address);
                let current = read_port(port, size);
                write_port(port, size, (current & !bits) | (wanted & bits));
            }
        }),
        Action::Ignore => {}
        Action::Fault => return None,
    }
    Some(value)
}

/// The owned function's MSI/MSI-X registers, from its capability list,
/// with the enables the kernel leaves to `subject` (kerncore `msi`).
fn capabilities(subject: SubjectId, device: SourceId) -> pcicfg::Protected {
    let found = with_ports(|| {
        pcicfg::capabilities(|offset| {
            // Safety: reads of the owned function's own registers (kerncore
            // asks only for a device the subject owns).
            unsafe {
                outl(CONFIG_ADDRESS, pcicfg::hardware_address(device, offset));
                inl(pcicfg::CONFIG_DATA)
            }
        })
    });
    MSI.allow(subject, device, found)
}

/// The kernel's own read of dword `register` of `device` (boot-time MSI
/// programming, `msi`, of the functions subjects own).
pub fn config_read(device: SourceId, register: u8) -> u32 {
    with_ports(|| {
        // Safety: a configuration read by the kernel, under the port lock;
        // reads of configuration registers have no effect on memory.
        unsafe {
            outl(CONFIG_ADDRESS, pcicfg::hardware_address(device, register));
            inl(pcicfg::CONFIG_DATA)
        }
    })
}

/// The kernel's own write of dword `register` of `device` (boot-time MSI
/// programming, `msi`: MSI/MSI-X address, data and control of owned
/// functions only).
pub fn config_write(device: SourceId, register: u8, value: u32) {
    with_ports(|| {
        // Safety: the kernel programs or disables the MSI registers of a
        // function a subject owns, before any subject runs; they only say
        // whether and where the function's interrupts go (to the owner's
        // CPU, as composed).
        unsafe {
            outl(CONFIG_ADDRESS, pcicfg::hardware_address(device, register));
            outl(pcicfg::CONFIG_DATA, value);
        }
    })
}

/// `value`'s low `size` bytes into RAX, the rest of RAX kept (as IN does
/// for 8 and 16 bits; a 32-bit IN zeroes the upper half).
fn set_rax(frame: &mut GuestRegs, size: u8, value: u32) {
    frame.rax = match size {
        1 => (frame.rax & !0xff) | u64::from(value & 0xff),
        2 => (frame.rax & !0xffff) | u64::from(value & 0xffff),
        _ => u64::from(value),
    };
}

/// Run `f` holding the configuration port pair.
fn with_ports<T>(f: impl FnOnce() -> T) -> T {
    while PORTS
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        core::hint::spin_loop();
    }
    let result = f();
    PORTS.store(false, Ordering::Release);
    result
}

/// Read `size` bytes (1, 2, otherwise 4) from `port`.
///
/// # Safety
/// As for [`outl`].
unsafe fn read_port(port: u16, size: u8) -> u32 {
    let value: u32;
    // Safety: the caller's contract; the instructions touch no memory.
    unsafe {
        match size {
            1 => {
                let byte: u8;
                core::arch::asm!("in al, dx", in("dx") port, out("al") byte, options(nomem, nostack, preserves_flags));
                value = u32::from(byte);
            }
            2 => {
                let word: u16;
                core::arch::asm!("in ax, dx", in("dx") port, out("ax") word, options(nomem, nostack, preserves_flags));
                value = u32::from(word);
            }
            _ => {
                core::arch::asm!("in eax, dx", in("dx") port, out("eax") value, options(nomem, nostack, preserves_flags));
            }
        }
    }
    value
}

/// Write the low `size` bytes (1, 2, otherwise 4) of `value` to `port`.
///
/// # Safety
/// As for [`outl`].
unsafe fn write_port(port: u16, size: u8, value: u32) {
    // Safety: the caller's contract; the instructions touch no memory.
    unsafe {
        match size {
            1 => {
                core::arch::asm!("out dx, al", in("dx") port, in("al") value as u8, options(nomem, nostack, preserves_flags))
            }
            2 => {
                core::arch::asm!("out dx, ax", in("dx") port, in("ax") value as u16, options(nomem, nostack, preserves_flags))
            }
            _ => {
                core::arch::asm!("out dx, eax", in("dx") port, in("eax") value, options(nomem, nostack, preserves_flags))
            }
        }
    }
}

/// Write a dword to an I/O port.
///
/// # Safety
/// `port` must be CONFIG_ADDRESS or a CONFIG_DATA port, used under
/// [`with_ports`], with a CONFIG_ADDRESS that kerncore's `pcicfg` built for
/// a function the loaded subject owns, and no write kerncore refused; or,
/// for the kernel's own boot-time MSI programming ([`config_write`]), the
/// MSI registers of a function a subject owns.
unsafe fn outl(port: u16, value: u32) {
    // Safety: the caller's contract; the instruction touches no memory.
    unsafe {
        core::arch::asm!("out dx, eax", in("dx") port, in("eax") value, options(nomem, nostack, preserves_flags));
    }
}

/// Read a dword from an I/O port.
///
/// # Safety
/// As for [`outl`].
unsafe fn inl(port: u16) -> u32 {
    let value: u32;
    // Safety: the caller's contract; the instruction touches no memory.
    unsafe {
        core::arch::asm!("in eax, dx", in("dx") port, out("eax") value, options(nomem, nostack, preserves_flags));
    }
    value
}
