//! The I/O access of an I/O-instruction exit: its first port and its width.
//!
//! Why a type of its own: an `in`/`out` of 2 or 4 bytes touches 2 or 4
//! consecutive ports (`out dx, eax` at port P writes P, P+1, P+2 and P+3),
//! and every decision about who may see the access (the kernel's emulated
//! devices, a monitor's port range) must look at all of them, not only at
//! the first: an access at the last port of a range reaches beyond it.
//! [`IoAccess::within`] is that check, written once (docs/kernel.md,
//! "I/O access width").

/// An I/O instruction's access: `size` bytes from `port` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoAccess {
    /// The first port (DX or the immediate).
    pub port: u16,
    /// Bytes accessed: 1, 2 or 4.
    pub size: u8,
}

impl IoAccess {
    /// The access an I/O-instruction exit describes (SDM Vol. 3C, table
    /// 28-5: bits 2:0 size - 1, bits 31:16 the port).
    pub const fn from_qualification(qualification: u64) -> Self {
        Self {
            port: (qualification >> 16) as u16,
            size: ((qualification & 7) as u8).wrapping_add(1),
        }
    }

    /// The last port the access touches (`None`: it runs past port
    /// 0xffff, which no range holds).
    pub const fn last(self) -> Option<u16> {
        match self.size.checked_sub(1) {
            Some(extra) => self.port.checked_add(extra as u16),
            None => None,
        }
    }

    /// Whether every port the access touches lies in the `count` ports
    /// from `first` on.
    pub const fn within(self, first: u16, count: u16) -> bool {
        if self.port < first {
            return false;
        }
        match self.last() {
            // `last >= port >= first`: the subtraction cannot wrap.
            Some(last) => last.wrapping_sub(first) < count,
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn access(port: u16, size: u8) -> IoAccess {
        IoAccess { port, size }
    }

    #[test]
    fn the_qualification_gives_port_and_size() {
        assert_eq!(IoAccess::from_qualification(0x1f0_0008), access(0x1f0, 1));
        assert_eq!(IoAccess::from_qualification(0x3ff_0001), access(0x3ff, 2));
        assert_eq!(IoAccess::from_qualification(0xc01f_0003), access(0xc01f, 4));
    }

    #[test]
    fn every_byte_must_be_in_the_range() {
        // A 32-port range at 0xc000.
        for (port, size, inside) in [
            (0xc000, 1, true),
            (0xc000, 4, true),
            (0xc01c, 4, true),
            (0xc01d, 4, false),
            (0xc01f, 4, false),
            (0xc01f, 2, false),
            (0xc01e, 2, true),
            (0xc01f, 1, true),
            (0xc020, 1, false),
            (0xbfff, 1, false),
            (0xbfff, 4, false),
        ] {
            assert_eq!(
                access(port, size).within(0xc000, 0x20),
                inside,
                "{port:#x}/{size}"
            );
        }
        assert!(!access(0, 0).within(0, 1), "no bytes: nothing to allow");
        assert!(access(0xfffc, 4).within(0xfff0, 0x10));
        assert!(!access(0xfffe, 4).within(0xfff0, 0x10));
        assert!(!access(0xfffe, 4).within(0xfff0, 0xffff));
    }

    #[test]
    fn the_last_port() {
        assert_eq!(access(0x3ff, 4).last(), Some(0x402));
        assert_eq!(access(0xfffe, 4).last(), None);
        assert_eq!(access(0x80, 1).last(), Some(0x80));
    }
}
