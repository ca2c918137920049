//! The crash-audit region: where the kernel's fail-closed paths leave
//! their records (layout: [`septum_abi::crash`], docs/crash.md), and the
//! policy hash that tells one image's records from another's.
//!
//! The region is one header page plus one 512-byte slot per CPU of the
//! plan, rounded up to pages. It must survive a warm reset, so it is kept
//! out of everything `septum pack` loads: it is not one of
//! [`Composition::regions`](crate::system::Composition::regions) (the list
//! that becomes `regions.json`'s loaded regions and the ELF's `PT_LOAD`
//! segments) but its own [`Composition::crash_audit`](crate::system::Composition::crash_audit),
//! and the boot loader does not load it. It is taken from the middle of the
//! highest free RAM range (2 MiB aligned), after the policy's fixed regions
//! and before everything else, so its address depends only on the hardware
//! description, the fixed regions and the CPU count: the next image for the
//! same machine finds the previous image's records at the same place (and
//! tells them apart by the policy hash). Not the top: measured in Bochs,
//! BIOS and GRUB overwrite the top megabyte or two of RAM below 4 GiB on
//! every boot (records 2 MiB below the top survived a warm reset, records
//! 1 MiB below it and at the top did not); not the bottom: the loaded image
//! grows from there.
//!
//! The policy hash is FNV-1a 64 over every source file the policy loader
//! read (the policy, its includes and the hardware description), in load
//! order, each file as its length (8 bytes, little-endian) then its bytes;
//! paths are not hashed, so moving the files changes nothing. FNV-1a
//! rather than SHA-256: the hash only has to tell images apart (whoever
//! can write the region can forge any record anyway, so collision
//! resistance buys nothing), it fits the record's 64-bit field without
//! truncation, and it needs no new dependency.

use septum_abi::PhysAddr;
use septum_abi::crash::{MAX_SLOTS, region_size};

use crate::error::ComposeError;
use crate::placement::Placer;

/// Name of the region in reports and in the kernel's image regions.
pub const NAME: &str = "kernel|crash_audit";

/// The placed crash-audit region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrashAudit {
    /// First byte (page aligned).
    pub start: PhysAddr,
    /// Size in bytes ([`region_size`] of `slot_count`).
    pub size: u64,
    /// Record slots, one per CPU of the plan.
    pub slot_count: u32,
    /// The image's policy hash (see the module doc; 0 when unknown).
    pub policy_hash: u64,
}

impl CrashAudit {
    /// One past the last byte.
    pub fn end(&self) -> u64 {
        self.start.get() + self.size
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// The policy hash of source files given in load order (see the module
/// doc).
pub fn policy_hash<'a>(files: impl IntoIterator<Item = &'a [u8]>) -> u64 {
    files.into_iter().fold(FNV_OFFSET, |hash, file| {
        let hash = fnv1a(hash, &(file.len() as u64).to_le_bytes());
        fnv1a(hash, file)
    })
}

/// The policy hash of every file the policy loader read.
pub fn policy_hash_of(sources: &septum_policy::SourceMap) -> u64 {
    policy_hash(sources.files().iter().map(|f| f.text().as_bytes()))
}

/// Take the region for `cpu_count` CPUs from the middle of the highest RAM
/// block.
pub fn place(
    placer: &mut Placer,
    cpu_count: u32,
    policy_hash: u64,
) -> Result<CrashAudit, ComposeError> {
    let size = region_size(cpu_count).ok_or_else(|| {
        ComposeError::new(format!(
            "crash-audit region: {cpu_count} CPUs exceed its limit of {MAX_SLOTS} record slots"
        ))
    })?;
    let start = placer.reserve_middle(NAME, size)?;
    Ok(CrashAudit {
        start,
        size,
        slot_count: cpu_count,
        policy_hash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_fnv1a_over_lengths_and_bytes() {
        // FNV-1a 64 of the empty input is its offset basis.
        assert_eq!(policy_hash([]), FNV_OFFSET);
        // Known FNV-1a 64 value of "a".
        assert_eq!(fnv1a(FNV_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
        // Moving bytes from one file to the next changes the hash.
        assert_ne!(
            policy_hash([b"ab".as_slice(), b"c".as_slice()]),
            policy_hash([b"a".as_slice(), b"bc".as_slice()])
        );
        assert_eq!(
            policy_hash([b"ab".as_slice(), b"c".as_slice()]),
            policy_hash([b"ab".as_slice(), b"c".as_slice()])
        );
    }
}
