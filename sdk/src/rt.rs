//! Start-up and the resources that need the real info page.
//!
//! [`startup`] runs before the subject's `main` (see [`crate::entry!`]): it
//! checks that the kernel passed the agreed info page address, makes the
//! one `unsafe` slice over that fixed read-only page, parses it, and marks
//! the result as describing real mappings. Only such an [`Info`] hands out
//! [`Region`]s, channel ends and probes, because only then do the addresses
//! on it name memory the composer mapped for this subject. A page parsed
//! from arbitrary bytes ([`Info::parse`]) can be inspected but never turns
//! into memory access.
//!
//! The panic handler lives here too. It formats `FILE:LINE: MESSAGE` into
//! [`PANIC_TEXT_LEN`] bytes (cut if longer) and ends the subject with
//! [`crate::arch::panic_stop`]: the text travels in registers to the
//! kernel, which prints `subject "NAME" panicked at FILE:LINE: MESSAGE` on
//! the debug console and then applies the subject's `onFault` action to the
//! invalid-opcode exit (`septum_abi::panic` explains why registers). A
//! subject needs no UART or policy line for its panic to be reported.
#![allow(unsafe_code)]

use core::fmt::Write;
use core::num::NonZeroU64;

use septum_abi::info::{INFO_PAGE_SIZE, ResourceKind};
use septum_abi::layout::SUBJECT_INFO;
use septum_abi::panic::PANIC_TEXT_LEN;

use crate::channel::{Format, Reader, Writer, fresh_epoch};
use crate::info::{ChannelRole, Info};
use crate::log::Log;
use crate::region::Region;
use crate::text::TextBuf;

/// Checks and parses the info page; ends the subject with `ud2` if the
/// kernel passed another address or the page is malformed (a composer or
/// kernel bug that no subject code could work around).
pub fn startup(info_address: u64) -> Info<'static> {
    if info_address != SUBJECT_INFO.get() {
        crate::arch::invalid_opcode();
    }
    let address = usize::try_from(SUBJECT_INFO.get()).unwrap_or_default();
    // Safety: the composer maps every native subject's info page, 4 KiB,
    // read-only, at `SUBJECT_INFO` for the subject's whole life (policy
    // language semantics), the kernel never changes it after boot, and no
    // Rust object of the subject lives there (the image is linked at
    // `SUBJECT_IMAGE_BASE`, the stack ends at `SUBJECT_STACK_TOP`).
    let page: &'static [u8] = unsafe {
        core::slice::from_raw_parts(
            core::ptr::with_exposed_provenance::<u8>(address),
            INFO_PAGE_SIZE,
        )
    };
    match Info::parse(page) {
        Ok(mut info) => {
            info.mapped = true;
            info
        }
        Err(_) => crate::arch::invalid_opcode(),
    }
}

impl Info<'static> {
    /// The memory mapping named `name` as a [`Region`] (read-only unless the
    /// policy maps it writable). `None` if there is no such mapping or this
    /// `Info` was not produced by [`startup`].
    pub fn memory_region(&self, name: &str) -> Option<Region<'static>> {
        if !self.mapped {
            return None;
        }
        let memory = self.memory(name)?;
        // Safety: `mapped` means this page is the composer's: the mapping
        // exists for the subject's life with the listed rights, and the
        // composer never overlaps it with the image, stack or info page.
        unsafe { Region::from_raw(memory.address, memory.size, memory.writable) }
    }

    /// The device memory (MMIO) granted as `name` (a `<memory>` child of a
    /// device grant) as a [`Region`]: volatile copies, read-only unless the
    /// policy maps it writable. The kernel maps it uncached (unless the
    /// hardware description gives the device memory another type).
    pub fn device_memory(&self, name: &str) -> Option<Region<'static>> {
        if !self.mapped {
            return None;
        }
        let r = self.find(name, ResourceKind::DeviceMemory)?;
        // Safety: as in `memory_region`: the composer maps the device's
        // pages at this address for the subject's life with these rights,
        // apart from the image, stack and info page.
        unsafe {
            Region::from_raw(
                crate::VirtAddr(r.address),
                r.size,
                r.flags & septum_abi::info::FLAG_WRITABLE != 0,
            )
        }
    }

    /// The crash-audit region granted as `name` (`<crashAudit logical>`),
    /// read-only, with its header checked ([`crate::crash::Records`]).
    /// `None` if there is no such grant or this `Info` was not produced by
    /// [`startup`]; `Some(Err)` if the region holds no usable header.
    pub fn crash_audit(
        &self,
        name: &str,
    ) -> Option<Result<crate::crash::Records<'static>, crate::crash::CrashError>> {
        if !self.mapped {
            return None;
        }
        let r = self.find(name, ResourceKind::CrashAudit)?;
        // Safety: as in `memory_region`: the composer maps the crash-audit
        // region at this address, read-only, for the subject's life, apart
        // from the image, stack and info page; the region is only read.
        let region = unsafe { Region::from_raw(crate::VirtAddr(r.address), r.size, false) }?;
        Some(crate::crash::Records::new(region))
    }

    fn channel_region(&self, name: &str, role: ChannelRole) -> Option<Region<'static>> {
        if !self.mapped {
            return None;
        }
        let channel = self.channel(name).filter(|c| c.role == role)?;
        let writable = role == ChannelRole::Writer;
        // Safety: as in `memory_region`; a channel is mapped writable in its
        // writer and read-only in its readers.
        unsafe { Region::from_raw(channel.address, channel.size, writable) }
    }

    /// Initialises the channel this subject writes, named `name`, with a
    /// fresh epoch and returns its writer. The epoch is
    /// [`crate::channel::fresh_epoch`] of the TSC now and this subject's id:
    /// a writer initialised again later announces a new epoch. `None` if
    /// there is no such writer end or the format does not fit the region.
    pub fn channel_writer(&self, name: &str, format: Format) -> Option<Writer<'static>> {
        let epoch = fresh_epoch(crate::arch::rdtsc(), self.subject_id());
        self.channel_writer_with_epoch(name, format, epoch)
    }

    /// As [`Self::channel_writer`], announcing `epoch` (tests that need a
    /// known epoch).
    pub fn channel_writer_with_epoch(
        &self,
        name: &str,
        format: Format,
        epoch: NonZeroU64,
    ) -> Option<Writer<'static>> {
        Writer::init(
            self.channel_region(name, ChannelRole::Writer)?,
            format,
            epoch,
        )
        .ok()
    }

    /// The log channel this subject writes, named `name` (a writer end
    /// with the policy's default format, [`crate::log::FORMAT`]),
    /// initialised with a fresh epoch. `None` as for
    /// [`Self::channel_writer`].
    pub fn log(&self, name: &str) -> Option<Log<'static>> {
        self.channel_writer(name, crate::log::FORMAT).map(Log::new)
    }

    /// A reader of the channel named `name`.
    pub fn channel_reader(&self, name: &str, format: Format) -> Option<Reader<'static>> {
        Some(Reader::new(
            self.channel_region(name, ChannelRole::Reader)?,
            format,
        ))
    }
}

/// The text of a panic as the kernel prints it: `FILE:LINE: MESSAGE`,
/// cut at [`PANIC_TEXT_LEN`] bytes.
pub fn panic_text(info: &core::panic::PanicInfo<'_>) -> TextBuf<PANIC_TEXT_LEN> {
    let mut text = TextBuf::new();
    // A text that does not fit is cut; the error only says so.
    let _ = match info.location() {
        Some(location) => write!(
            text,
            "{}:{}: {}",
            location.file(),
            location.line(),
            info.message()
        ),
        None => write!(text, "{}", info.message()),
    };
    text
}

#[cfg(all(target_os = "none", not(test)))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    crate::arch::panic_stop(&septum_abi::panic::encode(panic_text(info).as_bytes()))
}
