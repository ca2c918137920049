//! I/O and MSR bitmaps (SDM Vol. 3C 25.6.4, 25.6.9).
//!
//! A set bit makes the access exit. Everything is denied by default (all
//! ones); only the ports of devices assigned to a subject are cleared. No
//! MSR is granted in this version, so the MSR bitmap is all ones: every
//! RDMSR/WRMSR of a subject exits and the kernel treats it as a fault.

use crate::input::IoPortRange;

/// Size of one I/O bitmap (A: ports 0x0000-0x7fff, B: 0x8000-0xffff).
pub const IO_BITMAP_SIZE: usize = 4096;
/// Size of the MSR bitmap.
pub const MSR_BITMAP_SIZE: usize = 4096;

/// Bitmaps A and B back to back (8 KiB) with the given ranges granted.
pub fn io_bitmaps<'a>(granted: impl IntoIterator<Item = &'a IoPortRange>) -> Vec<u8> {
    let mut bytes = vec![0xffu8; 2 * IO_BITMAP_SIZE];
    for range in granted {
        for port in range.start..=range.end {
            let port = usize::from(port);
            bytes[port / 8] &= !(1 << (port % 8));
        }
    }
    bytes
}

/// Whether an access to `port` exits, read back from the bitmaps.
pub fn io_port_exits(bitmaps: &[u8], port: u16) -> bool {
    let port = usize::from(port);
    bitmaps
        .get(port / 8)
        .is_none_or(|byte| byte & (1 << (port % 8)) != 0)
}

/// The MSR bitmap: every read and write of every MSR exits.
pub fn msr_bitmap() -> Vec<u8> {
    vec![0xff; MSR_BITMAP_SIZE]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_granted_ports_pass() {
        let com1 = IoPortRange {
            name: "ports".into(),
            start: 0x3f8,
            end: 0x3ff,
        };
        let high = IoPortRange {
            name: "hi".into(),
            start: 0x8900,
            end: 0x8900,
        };
        let b = io_bitmaps([&com1, &high]);
        assert_eq!(b.len(), 8192);
        for port in 0..=u16::MAX {
            let granted = (0x3f8..=0x3ff).contains(&port) || port == 0x8900;
            assert_eq!(io_port_exits(&b, port), !granted, "port {port:#x}");
        }
        assert_eq!(b[0x3f8 / 8], 0x00);
        assert_eq!(b[4096 + 0x900 / 8], 0xfe, "port 0x8900 lives in bitmap B");
        assert!(msr_bitmap().iter().all(|&b| b == 0xff));
    }
}
