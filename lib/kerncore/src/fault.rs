//! The fault report line: what the kernel prints when a subject causes an
//! exit the policy does not route.
//!
//! A raw exit qualification means little to whoever reads the console, and
//! a field the hardware leaves undefined for an exit (the guest-physical
//! address outside EPT exits) means nothing at all. So the line has a fixed
//! head that every fault shares and a tail that depends on the exit, each
//! field printed only where the CPU defines it, decoded where its bits say
//! something a reader would otherwise look up in the SDM:
//!
//! ```text
//! subject "<name>" fault: <reason> (exit reason <n>) qualification=0x.. rip=0x..<tail>
//! ```
//!
//! | exit | tail |
//! |---|---|
//! | exception (0) | ` vector=<n> (<mnemonic>)`, then ` error=0x..` if the exception pushes an error code; for a page fault also ` (<access>, <present>, <mode>[, <flag>...]) cr2=0x..` |
//! | I/O instruction (30) | ` port=0x.. (<in\|out>, <n> byte[s][, string][, rep])` |
//! | EPT violation (48) | ` guest-physical=0x.. (<access>, ept <r\|-><w\|-><x\|->[, guest page walk])`, then ` linear=0x..` if the CPU reports the guest linear address |
//! | EPT misconfiguration (49) | ` guest-physical=0x..` |
//! | any other | nothing |
//!
//! Page fault: `<access>` is `fetch` (error code bit 4), `write` (bit 1)
//! or `read`; `<present>` is `present` (bit 0: a protection violation) or
//! `not present`; `<mode>` is `user` (bit 2) or `supervisor`; flags:
//! `reserved bit` (3), `protection key` (5), `shadow stack` (6), `SGX` (15).
//! CR2 is the exit qualification (SDM 28.2.1: a page-fault exit leaves CR2
//! alone and reports the linear address there).
//!
//! EPT violation (SDM 28.2.1, table 28-7): `<access>` from qualification
//! bits 0..2 (`read`, `write`, `fetch`, joined with `+`), the permissions of
//! the EPT translation from bits 3..5 (`---`: not mapped), `guest page walk`
//! when the access was to a guest paging-structure entry (bit 7 set, bit 8
//! clear), and the guest linear address when bit 7 says it is valid.
//!
//! Each part of the tail is a private `Display` impl called directly
//! (`Display::fmt(&part, f)`, never through `write!("{}")`): the kernel's
//! stack-depth gate allows indirect calls (the formatter's `dyn Write`)
//! only in formatting impls, and a direct call adds no level to the chain
//! of indirect formatting calls it bounds.

use core::fmt;

use crate::exits::{FaultDetail, FaultInfo};
use crate::vmx::{
    EXIT_EPT_MISCONFIGURATION, EXIT_EPT_VIOLATION, EXIT_EXCEPTION_OR_NMI, exit_reason_text,
};

/// Vector of the page-fault exception.
pub const PAGE_FAULT: u8 = 14;

/// The report line of a fault of subject `subject` (without the kernel's
/// `septum: ` prefix).
#[derive(Debug, Clone, Copy)]
pub struct FaultLine<'a> {
    /// The subject's name.
    pub subject: &'a str,
    /// What the arch layer read about the exit.
    pub info: &'a FaultInfo,
}

impl fmt::Display for FaultLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let info = self.info;
        f.write_str("subject \"")?;
        f.write_str(self.subject)?;
        f.write_str("\" fault: ")?;
        f.write_str(exit_reason_text(info.code))?;
        write!(
            f,
            " (exit reason {}) qualification={:#x} rip={:#x}",
            info.code, info.qualification, info.rip
        )?;
        match info.detail {
            FaultDetail::Port(access) => fmt::Display::fmt(
                &IoTail {
                    port: access.port,
                    qualification: info.qualification,
                },
                f,
            ),
            FaultDetail::Vector(vector) if info.code == EXIT_EXCEPTION_OR_NMI => {
                fmt::Display::fmt(&ExceptionTail { vector, info }, f)
            }
            FaultDetail::Vector(vector) => write!(f, " vector={vector}"),
            FaultDetail::None if info.code == EXIT_EPT_VIOLATION => {
                fmt::Display::fmt(&EptViolationTail(info), f)
            }
            FaultDetail::None if info.code == EXIT_EPT_MISCONFIGURATION => {
                write!(f, " guest-physical={:#x}", info.guest_physical)
            }
            FaultDetail::None => Ok(()),
        }
    }
}

/// The usual mnemonic of an exception vector (SDM Vol. 3A, table 6-1).
pub const fn exception_mnemonic(vector: u8) -> &'static str {
    match vector {
        0 => "#DE",
        1 => "#DB",
        2 => "NMI",
        3 => "#BP",
        4 => "#OF",
        5 => "#BR",
        6 => "#UD",
        7 => "#NM",
        8 => "#DF",
        10 => "#TS",
        11 => "#NP",
        12 => "#SS",
        13 => "#GP",
        PAGE_FAULT => "#PF",
        16 => "#MF",
        17 => "#AC",
        18 => "#MC",
        19 => "#XM",
        20 => "#VE",
        21 => "#CP",
        _ => "reserved",
    }
}

/// The tail of an exception exit.
struct ExceptionTail<'a> {
    vector: u8,
    info: &'a FaultInfo,
}

impl fmt::Display for ExceptionTail<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let vector = self.vector;
        write!(f, " vector={vector} (")?;
        f.write_str(exception_mnemonic(vector))?;
        f.write_str(")")?;
        if let Some(error) = self.info.error_code {
            write!(f, " error={error:#x}")?;
            if vector == PAGE_FAULT {
                fmt::Display::fmt(&PageFaultError(error), f)?;
            }
        }
        if vector == PAGE_FAULT {
            write!(f, " cr2={:#x}", self.info.qualification)?;
        }
        Ok(())
    }
}

/// ` (<access>, <present>, <mode>[, <flag>...])` of a page-fault error code
/// (SDM Vol. 3A, 4.7).
struct PageFaultError(u32);

impl fmt::Display for PageFaultError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        page_fault_error(f, self.0)
    }
}

#[inline(always)]
fn page_fault_error(f: &mut fmt::Formatter<'_>, error: u32) -> fmt::Result {
    let access = if error & 1 << 4 != 0 {
        "fetch"
    } else if error & 1 << 1 != 0 {
        "write"
    } else {
        "read"
    };
    let present = if error & 1 != 0 {
        "present"
    } else {
        "not present"
    };
    let mode = if error & 1 << 2 != 0 {
        "user"
    } else {
        "supervisor"
    };
    f.write_str(" (")?;
    f.write_str(access)?;
    f.write_str(", ")?;
    f.write_str(present)?;
    f.write_str(", ")?;
    f.write_str(mode)?;
    for (bit, flag) in [
        (3, "reserved bit"),
        (5, "protection key"),
        (6, "shadow stack"),
        (15, "SGX"),
    ] {
        if error & 1 << bit != 0 {
            f.write_str(", ")?;
            f.write_str(flag)?;
        }
    }
    f.write_str(")")
}

/// ` port=0x.. (<in|out>, <n> byte[s][, string][, rep])` from an I/O exit's
/// qualification (SDM 28.2.1, table 28-5).
struct IoTail {
    port: u16,
    qualification: u64,
}

impl fmt::Display for IoTail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        io_tail(f, self.port, self.qualification)
    }
}

#[inline(always)]
fn io_tail(f: &mut fmt::Formatter<'_>, port: u16, qualification: u64) -> fmt::Result {
    let direction = if qualification & 1 << 3 != 0 {
        "in"
    } else {
        "out"
    };
    let size = match qualification & 7 {
        0 => "1 byte",
        1 => "2 bytes",
        _ => "4 bytes",
    };
    write!(f, " port={port:#x} (")?;
    f.write_str(direction)?;
    f.write_str(", ")?;
    f.write_str(size)?;
    if qualification & 1 << 4 != 0 {
        f.write_str(", string")?;
    }
    if qualification & 1 << 5 != 0 {
        f.write_str(", rep")?;
    }
    f.write_str(")")
}

/// The tail of an EPT violation (SDM 28.2.1, table 28-7).
struct EptViolationTail<'a>(&'a FaultInfo);

impl fmt::Display for EptViolationTail<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        ept_violation_tail(f, self.0)
    }
}

#[inline(always)]
fn ept_violation_tail(f: &mut fmt::Formatter<'_>, info: &FaultInfo) -> fmt::Result {
    let q = info.qualification;
    write!(f, " guest-physical={:#x} (", info.guest_physical)?;
    let mut first = true;
    for (bit, access) in [(0, "read"), (1, "write"), (2, "fetch")] {
        if q & 1 << bit != 0 {
            if !first {
                f.write_str("+")?;
            }
            f.write_str(access)?;
            first = false;
        }
    }
    if first {
        f.write_str("no access")?;
    }
    f.write_str(", ept ")?;
    for (bit, allowed) in [(3, "r"), (4, "w"), (5, "x")] {
        f.write_str(if q & 1 << bit != 0 { allowed } else { "-" })?;
    }
    let linear_valid = q & 1 << 7 != 0;
    if linear_valid && q & 1 << 8 == 0 {
        f.write_str(", guest page walk")?;
    }
    f.write_str(")")?;
    if let Some(linear) = info.guest_linear.filter(|_| linear_valid) {
        write!(f, " linear={linear:#x}")?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ioport::IoAccess;
    use crate::vmx::EXIT_IO_INSTRUCTION;
    use std::string::{String, ToString};

    fn line(info: FaultInfo) -> String {
        FaultLine {
            subject: "s",
            info: &info,
        }
        .to_string()
    }

    fn fault(code: u16, qualification: u64, detail: FaultDetail) -> FaultInfo {
        FaultInfo {
            code,
            qualification,
            guest_physical: 0,
            rip: 0x20_1000,
            detail,
            error_code: None,
            guest_linear: None,
        }
    }

    #[test]
    fn page_faults_decode_the_error_code_and_cr2() {
        let write_ro = FaultInfo {
            error_code: Some(0x3),
            ..fault(0, 0x4100_0000, FaultDetail::Vector(14))
        };
        assert_eq!(
            line(write_ro),
            "subject \"s\" fault: exception or NMI (exit reason 0) qualification=0x41000000 \
             rip=0x201000 vector=14 (#PF) error=0x3 (write, present, supervisor) cr2=0x41000000"
        );
        let read_unmapped = FaultInfo {
            error_code: Some(0x4),
            ..fault(0, 0x4000_1000, FaultDetail::Vector(14))
        };
        assert!(
            line(read_unmapped).ends_with("error=0x4 (read, not present, user) cr2=0x40001000")
        );
        let fetch = FaultInfo {
            error_code: Some(0x8011),
            ..fault(0, 0x1000, FaultDetail::Vector(14))
        };
        assert!(line(fetch).contains("(fetch, present, supervisor, SGX)"));
        let reserved = FaultInfo {
            error_code: Some(0x6f),
            ..fault(0, 0x1000, FaultDetail::Vector(14))
        };
        assert!(
            line(reserved)
                .contains("(write, present, user, reserved bit, protection key, shadow stack)")
        );
    }

    #[test]
    fn other_exceptions_print_only_what_they_have() {
        let ud = line(fault(0, 0, FaultDetail::Vector(6)));
        assert!(ud.ends_with("rip=0x201000 vector=6 (#UD)"), "{ud}");
        let gp = FaultInfo {
            error_code: Some(0x18),
            ..fault(0, 0, FaultDetail::Vector(13))
        };
        assert!(line(gp).ends_with("vector=13 (#GP) error=0x18"));
        assert!(line(fault(0, 0, FaultDetail::Vector(31))).ends_with("(reserved)"));
        assert!(!line(fault(0, 0, FaultDetail::Vector(6))).contains("guest-physical"));
    }

    #[test]
    fn io_exits_decode_direction_size_and_kind() {
        let read = line(fault(
            EXIT_IO_INSTRUCTION,
            0x3fd_0008,
            FaultDetail::Port(IoAccess::from_qualification(0x3fd_0008)),
        ));
        assert_eq!(
            read,
            "subject \"s\" fault: I/O instruction (exit reason 30) qualification=0x3fd0008 \
             rip=0x201000 port=0x3fd (in, 1 byte)"
        );
        let rep_out = line(fault(
            EXIT_IO_INSTRUCTION,
            0x80_0031,
            FaultDetail::Port(IoAccess::from_qualification(0x80_0031)),
        ));
        assert!(rep_out.ends_with("port=0x80 (out, 2 bytes, string, rep)"));
    }

    #[test]
    fn ept_violations_decode_access_permissions_and_addresses() {
        let write_ro = FaultInfo {
            guest_physical: 0x2000,
            guest_linear: Some(0x4000_2000),
            ..fault(48, 0x18a, FaultDetail::None)
        };
        assert_eq!(
            line(write_ro),
            "subject \"s\" fault: EPT violation (exit reason 48) qualification=0x18a \
             rip=0x201000 guest-physical=0x2000 (write, ept r--) linear=0x40002000"
        );
        let unmapped_walk = FaultInfo {
            guest_physical: 0x9000,
            guest_linear: Some(0x1234),
            ..fault(48, 0x83, FaultDetail::None)
        };
        assert!(line(unmapped_walk).ends_with(
            "guest-physical=0x9000 (read+write, ept ---, guest page walk) linear=0x1234"
        ));
        // Linear address not valid: not printed, whatever the arch read.
        let fetch = FaultInfo {
            guest_physical: 0x3000,
            guest_linear: Some(0x5555),
            ..fault(48, 0x2c, FaultDetail::None)
        };
        assert!(line(fetch).ends_with("guest-physical=0x3000 (fetch, ept r-x)"));
        let misconfig = FaultInfo {
            guest_physical: 0x7000,
            ..fault(49, 0, FaultDetail::None)
        };
        assert!(line(misconfig).ends_with("qualification=0x0 rip=0x201000 guest-physical=0x7000"));
    }

    #[test]
    fn other_exits_have_only_the_head() {
        let cr = line(fault(28, 0x3, FaultDetail::None));
        assert_eq!(
            cr,
            "subject \"s\" fault: control-register access (exit reason 28) qualification=0x3 \
             rip=0x201000"
        );
        // The isolation tests match `qualification=0x3 ` (a space follows).
        let entry = line(fault(33, 0, FaultDetail::None));
        assert!(entry.ends_with("(exit reason 33) qualification=0x0 rip=0x201000"));
        assert!(!entry.contains("guest-physical"));
    }
}
