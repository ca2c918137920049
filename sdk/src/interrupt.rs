//! Interrupt entry for native subjects: an IDT in the subject, handlers
//! registered by vector.
//!
//! A subject that owns a device IRQ line (an `<irq logical physical
//! vector>` in its device grant) gets that vector injected by the kernel
//! whenever the device interrupts and the subject runs with interrupts
//! enabled; a target event with `<inject_interrupt vector>` injects its
//! vector whenever it is raised ([`crate::info::TargetEvent::vector`]). The
//! subject finds the vector by the line's logical name
//! ([`Info::irq`]), registers a handler for it ([`register`]), loads the
//! SDK's descriptor tables ([`install`]) and enables interrupts
//! ([`enable`]).
//!
//! End of interrupt: the kernel has already sent the EOI to the real
//! interrupt controller. For the subject, returning from the handler is the
//! end of interrupt of an edge-triggered (ISA) line. A level-triggered (PCI)
//! line stays masked from its interrupt on until the subject calls
//! [`crate::Kernel::unmask_irq`] after serving the device (the `unmask_irq`
//! kernel action). Handlers run with interrupts disabled, on the stack of
//! whatever code was interrupted, and must not wait for anything.
//!
//! The SDK's tables: a GDT with a 64-bit code descriptor at selector 0x08
//! and a data descriptor at 0x10 (the selectors the kernel gives native
//! subjects, which `iretq` reloads), and an IDT whose vectors 32..=255 are
//! interrupt gates to the SDK's entry stubs ([`crate::arch`]). Exceptions
//! (0..=31) never reach the subject: they exit to the kernel.

use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use septum_abi::info::ResourceKind;

use crate::arch;
use crate::info::Info;

/// A handler: called with the vector it was registered for.
pub type Handler = fn(u8);

/// First vector a subject can receive.
pub const FIRST_VECTOR: u8 = 32;

/// Null, code (0x08: 64-bit, present, DPL 0, execute/read, accessed) and
/// data (0x10: present, DPL 0, read/write, accessed, 4 GiB).
const GDT_ENTRIES: [u64; 3] = [0, 0x00af_9b00_0000_ffff, 0x00cf_9300_0000_ffff];
/// The code selector the gates name.
const CODE_SELECTOR: u64 = 0x08;

static GDT: [AtomicU64; 3] = [const { AtomicU64::new(0) }; 3];
/// 256 gates of 16 bytes.
static IDT: [AtomicU64; 512] = [const { AtomicU64::new(0) }; 512];
/// Handlers of vectors 32..=255 as `Handler` pointers (null: none). Raw
/// pointers rather than integers keep the function's provenance.
static HANDLERS: [AtomicPtr<()>; 224] = [const { AtomicPtr::new(core::ptr::null_mut()) }; 224];

/// The two words of a 64-bit interrupt gate to `target` (present, DPL 0,
/// type 0xe, no IST), SDM Vol. 3A 6.14.1.
pub const fn gate(target: u64) -> [u64; 2] {
    let low = (target & 0xffff)
        | (CODE_SELECTOR << 16)
        | (0x8e << 40)
        | (((target >> 16) & 0xffff) << 48);
    [low, target >> 32]
}

/// An IRQ line the subject owns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Irq {
    /// The vector the kernel injects for it.
    pub vector: u8,
    /// The line (GSI) number.
    pub line: u32,
}

impl Info<'_> {
    /// The IRQ line named `name` (the `logical` of its `<irq>` grant).
    pub fn irq(&self, name: &str) -> Option<Irq> {
        let r = self.find(name, ResourceKind::Irq)?;
        Some(Irq {
            vector: r.vector.filter(|&v| v >= FIRST_VECTOR)?,
            line: u32::try_from(r.address).ok()?,
        })
    }
}

/// Registers `handler` for `vector` (replacing any earlier one); a vector
/// below 32 is ignored. Register before [`enable`].
pub fn register(vector: u8, handler: Handler) {
    if let Some(slot) = vector
        .checked_sub(FIRST_VECTOR)
        .and_then(|i| HANDLERS.get(usize::from(i)))
    {
        slot.store(handler as *mut (), Ordering::Release);
    }
}

/// Writes the SDK's GDT and IDT and loads them. Interrupts stay disabled
/// until [`enable`]. Only a subject that is given vectors (a routed IRQ line
/// or an `<inject_interrupt>` target event) may call
/// it (see [`crate::arch::load_descriptor_tables`]).
pub fn install() {
    for (slot, value) in GDT.iter().zip(GDT_ENTRIES) {
        slot.store(value, Ordering::Relaxed);
    }
    for vector in FIRST_VECTOR..=u8::MAX {
        let [low, high] = gate(arch::interrupt_stub(vector));
        let index = usize::from(vector) * 2;
        if let (Some(l), Some(h)) = (IDT.get(index), IDT.get(index + 1)) {
            l.store(low, Ordering::Relaxed);
            h.store(high, Ordering::Relaxed);
        }
    }
    arch::load_descriptor_tables(&GDT, &IDT);
}

/// Enables interrupts (RFLAGS.IF).
pub fn enable() {
    arch::enable_interrupts();
}

/// Disables interrupts.
pub fn disable() {
    arch::disable_interrupts();
}

/// Called by the entry stubs with the vector.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
extern "C" fn septum_sdk_interrupt(vector: u64) {
    let Some(slot) = vector
        .checked_sub(u64::from(FIRST_VECTOR))
        .and_then(|i| HANDLERS.get(usize::try_from(i).ok()?))
    else {
        return;
    };
    let raw = slot.load(Ordering::Acquire);
    if raw.is_null() {
        return;
    }
    // Safety: only `register` writes a non-null slot, and it stores a
    // `Handler` (a `fn(u8)`) cast to a raw pointer, which has the same size
    // and keeps its provenance; this turns it back into that function
    // pointer.
    let handler = unsafe { core::mem::transmute::<*mut (), Handler>(raw) };
    handler(vector as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gate_splits_its_target() {
        let [low, high] = gate(0x1234_5678_9abc_def0);
        assert_eq!(low & 0xffff, 0xdef0);
        assert_eq!((low >> 16) & 0xffff, 0x08);
        assert_eq!((low >> 40) & 0xff, 0x8e);
        assert_eq!(low >> 48, 0x9abc);
        assert_eq!(high, 0x1234_5678);
    }

    #[test]
    fn handlers_are_found_by_vector() {
        use core::sync::atomic::AtomicU32;
        static SEEN: AtomicU32 = AtomicU32::new(0);
        fn note(vector: u8) {
            SEEN.store(u32::from(vector), Ordering::Relaxed);
        }
        register(40, note);
        register(7, note);
        septum_sdk_interrupt(41);
        assert_eq!(SEEN.load(Ordering::Relaxed), 0);
        septum_sdk_interrupt(40);
        assert_eq!(SEEN.load(Ordering::Relaxed), 40);
        septum_sdk_interrupt(3);
        septum_sdk_interrupt(300);
        assert_eq!(SEEN.load(Ordering::Relaxed), 40);
    }
}
