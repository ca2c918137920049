//! The ACPI tables of a Linux VM: an RSDP, an RSDT and a MADT that lists
//! the VM's one local APIC (docs/policy.md, "VM subjects").
//!
//! Why: Linux 6.1 sets up its local APIC timer only when firmware describes
//! the APIC. Without an MP table (the Debian kernel has no MP-table parser)
//! or an ACPI MADT it runs the APIC in "virtual wire mode with no
//! configuration" and keeps the PIT as its clock; with a MADT naming one
//! local APIC (and no I/O APIC) it runs "symmetric I/O mode", routes its
//! legacy IRQs through the 8259 PIC (no I/O APIC was found) and registers
//! the "lapic-deadline" clock event device. Nothing else is described: no
//! FADT and no DSDT, so Linux's ACPI interpreter finds no namespace to
//! load and turns ACPI off after the boot-time table parse, and the rest
//! of the platform (PIC, PIT, UART, PCI through configuration ports) is
//! found as before.
//!
//! The tables sit at [`ACPI_BASE`] in the boot segment, in the reserved
//! range below 1 MiB, and the zero page's `acpi_rsdp_addr` (boot protocol
//! 2.14 and later) points at the RSDP.

use septum_kerncore::vm::lapic::XAPIC_GPA;

/// Guest-physical address of the RSDP (the start of the reserved range
/// below 1 MiB, where a PC's extended BIOS data area is).
pub const ACPI_BASE: u64 = 0x9_f000;
/// Offset of the RSDT from the RSDP.
const RSDT_OFFSET: usize = 0x20;
/// Offset of the MADT from the RSDP.
const MADT_OFFSET: usize = 0x50;
/// Length of a system description table header.
const HEADER_LEN: usize = 36;
/// OEM id in every table.
const OEM_ID: &[u8; 6] = b"SEPTUM";
/// OEM table id in every table.
const OEM_TABLE_ID: &[u8; 8] = b"SEPTUMVM";
/// MADT flag: the PC has dual 8259 PICs (PCAT_COMPAT).
const MADT_PCAT_COMPAT: u32 = 1;
/// MADT entry type: processor local APIC.
const MADT_LOCAL_APIC: u8 = 0;
/// Local APIC entry flag: enabled.
const LOCAL_APIC_ENABLED: u32 = 1;

/// The byte that makes `bytes` sum to zero (mod 256).
fn checksum(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0u8, |sum, &b| sum.wrapping_add(b))
        .wrapping_neg()
}

/// A table: header with `signature` and `revision`, then `body`; the
/// checksum is filled in.
fn table(signature: &[u8; 4], revision: u8, body: &[u8]) -> Vec<u8> {
    let length = (HEADER_LEN + body.len()) as u32;
    let mut t = Vec::with_capacity(HEADER_LEN + body.len());
    t.extend_from_slice(signature);
    t.extend_from_slice(&length.to_le_bytes());
    t.push(revision);
    t.push(0);
    t.extend_from_slice(OEM_ID);
    t.extend_from_slice(OEM_TABLE_ID);
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(b"SPTM");
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(body);
    t[9] = checksum(&t);
    t
}

/// The RSDP, RSDT and MADT, laid out from [`ACPI_BASE`].
pub fn tables() -> Vec<u8> {
    let rsdt_at = ACPI_BASE + RSDT_OFFSET as u64;
    let madt_at = ACPI_BASE + MADT_OFFSET as u64;
    let mut rsdp = Vec::with_capacity(20);
    rsdp.extend_from_slice(b"RSD PTR ");
    rsdp.push(0);
    rsdp.extend_from_slice(OEM_ID);
    rsdp.push(0);
    rsdp.extend_from_slice(&(rsdt_at as u32).to_le_bytes());
    rsdp[8] = checksum(&rsdp);

    let rsdt = table(b"RSDT", 1, &(madt_at as u32).to_le_bytes());

    let mut madt_body = Vec::new();
    madt_body.extend_from_slice(&(XAPIC_GPA as u32).to_le_bytes());
    madt_body.extend_from_slice(&MADT_PCAT_COMPAT.to_le_bytes());
    madt_body.extend_from_slice(&[MADT_LOCAL_APIC, 8, 0, 0]);
    madt_body.extend_from_slice(&LOCAL_APIC_ENABLED.to_le_bytes());
    let madt = table(b"APIC", 3, &madt_body);

    let mut out = vec![0u8; MADT_OFFSET + madt.len()];
    out[..rsdp.len()].copy_from_slice(&rsdp);
    out[RSDT_OFFSET..RSDT_OFFSET + rsdt.len()].copy_from_slice(&rsdt);
    out[MADT_OFFSET..].copy_from_slice(&madt);
    out
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn sums_to_zero(bytes: &[u8]) -> bool {
        bytes.iter().fold(0u8, |s, &b| s.wrapping_add(b)) == 0
    }

    #[test]
    fn every_table_checks_and_points_at_the_next() {
        let t = tables();
        assert_eq!(&t[..8], b"RSD PTR ");
        assert!(sums_to_zero(&t[..20]));
        let rsdt_at = u32::from_le_bytes(t[16..20].try_into().unwrap()) as u64;
        let rsdt = &t[(rsdt_at - ACPI_BASE) as usize..];
        assert_eq!(&rsdt[..4], b"RSDT");
        let rsdt_len = u32::from_le_bytes(rsdt[4..8].try_into().unwrap()) as usize;
        assert_eq!(rsdt_len, 40);
        assert!(sums_to_zero(&rsdt[..rsdt_len]));
        let madt_at = u32::from_le_bytes(rsdt[36..40].try_into().unwrap()) as u64;
        let madt = &t[(madt_at - ACPI_BASE) as usize..];
        assert_eq!(&madt[..4], b"APIC");
        let madt_len = u32::from_le_bytes(madt[4..8].try_into().unwrap()) as usize;
        assert_eq!(madt_len, madt.len());
        assert!(sums_to_zero(madt));
        assert_eq!(&madt[36..40], &0xfee0_0000u32.to_le_bytes());
        // One enabled local APIC, ID 0; no I/O APIC entry.
        assert_eq!(&madt[44..52], &[0, 8, 0, 0, 1, 0, 0, 0]);
        assert_eq!(madt_len, 52);
    }
}
