//! The virtio console's monitor (systems/linux_virtio.xml): emulates the
//! legacy virtio-pci console of the Linux VM it monitors on top of two
//! SHMStream channels to a native subject (docs/kernel.md, "Virtio
//! console").
//!
//! The kernel presents the device's PCI header and hands the monitor two
//! kinds of the VM's exits: every I/O access to the console's BAR
//! ([`BAR_SIZE`] ports at the policy's `<virtioConsole port>`, which the
//! policy rules align to [`BAR_SIZE`], so the low bits of the port are the
//! register offset and the monitor needs no copy of the port) and every HLT
//! with interrupts enabled (the guest idles). At each trap the monitor
//!
//! 1. emulates the register access ([`Console::read`] / [`Console::write`];
//!    RAX carries the value) or completes the HLT, and moves RIP past the
//!    instruction;
//! 2. takes the guest's transmit buffers ([`Console::transmit`]), collects
//!    their bytes into lines and writes each line as one element of channel
//!    `to_peer` (NUL-padded text, carriage returns dropped);
//! 3. reads the next element of channel `from_peer` when it has nothing
//!    left to deliver and puts its text into the guest's receive buffers
//!    ([`Console::receive`]): data that arrives while the guest idles is
//!    delivered at its next halt, which wakes it;
//! 4. asserts the VM's interrupt (the state page's `device_interrupt`) when
//!    [`Console::take_interrupt`] says so, and resumes the VM; after a HLT
//!    it resumes it halted (`resume_halted`): the kernel enters it in the
//!    HLT activity state, so it sleeps until its next interrupt (its timer
//!    tick, or the interrupt just asserted) instead of halting into the
//!    monitor again at once. Input that arrives while it sleeps is
//!    delivered at the halt after its next wake-up.
//!
//! An exit it does not expect (string I/O, any exit but I/O and HLT) is not
//! emulated: the monitor keeps the VM stopped and yields its frames from
//! then on. Guest memory is reached only through the policy's `guest_low`
//! and `guest_ram` mappings, with every range checked ([`GuestRam`]).
#![no_std]
#![no_main]

use septum_sdk::channel::{Format, ReadOutcome};
use septum_sdk::monitor::{Gpr, Monitored, SubjectState};
use septum_sdk::needs::Need;
use septum_sdk::virtio::{Console, GuestRam};
use septum_sdk::{Info, raise};

septum_sdk::entry!(main);

// The guest memory mappings (`guest_low`, `guest_ram`) are no declared
// need: the composer derives them from the VM's <virtioConsole>, not from
// a <map> the contract check could compare with.
septum_sdk::needs![
    Need::memory_writable("vm_state"),
    Need::source_event("resume"),
    Need::channel_writer("to_peer", Format::DEFAULT),
    Need::channel_reader("from_peer", Format::DEFAULT),
];

/// Ports of the BAR (`septum_kerncore::vm::pci::VIRTIO_BAR_SIZE`).
const BAR_SIZE: u16 = 0x20;
/// VT-x basic exit reasons.
const EXIT_HLT: u16 = 12;
const EXIT_IO: u16 = 30;
/// Bytes of one channel element.
const ELEMENT: usize = 64;

/// A line of guest output being collected for one channel element.
struct LineOut {
    bytes: [u8; ELEMENT],
    len: usize,
}

impl LineOut {
    /// Add `byte`; true when the element is complete (a newline, or one
    /// byte short of full, keeping a NUL).
    fn push(&mut self, byte: u8) -> bool {
        match byte {
            b'\n' => return true,
            b'\r' | 0 => return false,
            _ => {}
        }
        if let Some(slot) = self.bytes.get_mut(self.len) {
            *slot = byte;
            self.len = self.len.saturating_add(1);
        }
        self.len >= ELEMENT - 1
    }

    fn take(&mut self) -> &[u8] {
        let len = core::mem::take(&mut self.len);
        self.bytes.get(..len).unwrap_or_default()
    }
}

/// Emulate the I/O access of `state` (one to the BAR); false if it is
/// string I/O, which the device does not take.
fn io(console: &mut Console, state: &mut SubjectState) -> bool {
    let q = state.exit_qualification;
    let size = ((q & 7) as u8).wrapping_add(1);
    let input = q & (1 << 3) != 0;
    let string = q & (1 << 4) != 0;
    // The kernel hands over only the BAR's ports (`kerncore::monitor`).
    let offset = (q >> 16) as u16 & (BAR_SIZE - 1);
    if string {
        return false;
    }
    let rax = state.gpr(Gpr::Rax);
    if input {
        let value = u64::from(console.read(offset, size));
        let merged = match size {
            1 => (rax & !0xff) | value,
            2 => (rax & !0xffff) | value,
            _ => value,
        };
        state.set_gpr(Gpr::Rax, merged);
    } else {
        // A notify of the transmit queue needs nothing more here: the
        // queue is taken after every trap (`main`).
        let _ = console.write(offset, rax as u32);
    }
    true
}

fn main(info: Info<'static>) -> ! {
    let Some(vm) = Monitored::open(&info, "vm_state", "resume") else {
        panic!("virtio_console: no state page \"vm_state\" or event \"resume\"");
    };
    let ram = GuestRam::new(
        info.memory_region("guest_low"),
        info.memory_region("guest_ram"),
    );
    let Some(mut to_peer) = info.channel_writer("to_peer", Format::DEFAULT) else {
        panic!("virtio_console: no channel \"to_peer\"");
    };
    let Some(mut from_peer) = info.channel_reader("from_peer", Format::DEFAULT) else {
        panic!("virtio_console: no channel \"from_peer\"");
    };
    let pause = info.source_event("yield");
    let mut console = Console::new();
    let mut line = LineOut {
        bytes: [0; ELEMENT],
        len: 0,
    };
    let mut inbox = [0u8; ELEMENT];
    let (mut delivered, mut pending) = (0usize, 0usize);
    loop {
        vm.resume();
        let Ok(mut state) = vm.state() else {
            continue;
        };
        let halted = state.basic_exit_reason() == EXIT_HLT;
        let handled = match state.basic_exit_reason() {
            EXIT_IO => io(&mut console, &mut state),
            EXIT_HLT => true,
            _ => false,
        };
        if !handled {
            // Not ours to emulate: the VM stays stopped.
            loop {
                match pause {
                    Some(event) => raise(event),
                    None => core::hint::spin_loop(),
                }
            }
        }
        state.advance_rip();
        console.transmit(&ram, &mut |bytes| {
            for &byte in bytes {
                if line.push(byte) {
                    let _ = to_peer.write(line.take());
                }
            }
        });
        if delivered >= pending {
            inbox = [0; ELEMENT];
            if from_peer.read(&mut inbox) == ReadOutcome::Element {
                delivered = 0;
                pending = inbox.iter().position(|&b| b == 0).unwrap_or(ELEMENT);
            }
        }
        if let Some(rest) = inbox.get(delivered..pending) {
            delivered = delivered.saturating_add(console.receive(&ram, rest));
        }
        state.device_interrupt = u64::from(console.take_interrupt());
        // The guest halted: it stays halted until its next interrupt (the
        // one just asserted wakes it at once), rather than halting into
        // this monitor again straight away.
        state.resume_halted = u64::from(halted);
        let _ = vm.set_state(&state);
    }
}
