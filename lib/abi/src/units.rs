//! Newtypes for addresses, identifiers and time units.

macro_rules! address_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        #[repr(transparent)]
        pub struct $name(pub u64);

        impl $name {
            /// The raw address value.
            pub const fn get(self) -> u64 {
                self.0
            }

            /// `self + offset`, or `None` on overflow.
            pub const fn checked_add(self, offset: u64) -> Option<Self> {
                match self.0.checked_add(offset) {
                    Some(v) => Some(Self(v)),
                    None => None,
                }
            }

            /// Whether the address is a multiple of `align` (a power of two).
            pub const fn is_aligned(self, align: u64) -> bool {
                align != 0 && self.0 & (align.wrapping_sub(1)) == 0
            }
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, concat!(stringify!($name), "({:#x})"), self.0)
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, "{:#x}", self.0)
            }
        }
    };
}

address_type!(
    /// A host-physical address: what the CPU puts on the bus in root mode.
    PhysAddr
);
address_type!(
    /// A guest-physical address: what a subject's page tables produce, and
    /// what its EPT translates to a [`PhysAddr`].
    GuestPhysAddr
);
address_type!(
    /// A linear (virtual) address inside one address space (the kernel's or
    /// one subject's).
    VirtAddr
);
address_type!(
    /// An I/O virtual address: what a device puts on the bus for DMA, and
    /// what its device domain's VT-d tables translate to a [`PhysAddr`].
    DmaAddr
);

/// Index of a subject in the composed system (0-based, dense, in policy
/// order). The kernel uses it to index its subject tables after a bounds
/// check.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
#[repr(transparent)]
pub struct SubjectId(pub u16);

impl SubjectId {
    /// The id as a table index.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// A duration or instant measured in TSC cycles.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
#[repr(transparent)]
pub struct TscCycles(pub u64);

impl TscCycles {
    /// The raw cycle count.
    pub const fn get(self) -> u64 {
        self.0
    }
}
