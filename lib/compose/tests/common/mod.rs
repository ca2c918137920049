//! Helpers shared by the composer's integration tests.

/// A minimal bzImage (protocol 2.15, 64-bit entry, relocatable, 2 MiB
/// alignment, init_size 1 MiB) with `kernel_len` bytes of kernel.
pub fn bzimage(kernel_len: usize) -> Vec<u8> {
    let mut d = vec![0u8; 1024 + kernel_len];
    d[0x1f1] = 1;
    d[0x1fe] = 0x55;
    d[0x1ff] = 0xaa;
    d[0x201] = 0x6a;
    d[0x202..0x206].copy_from_slice(b"HdrS");
    d[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
    d[0x22c..0x230].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    d[0x230..0x234].copy_from_slice(&0x20_0000u32.to_le_bytes());
    d[0x234] = 1;
    d[0x236..0x238].copy_from_slice(&0x7fu16.to_le_bytes());
    d[0x238..0x23c].copy_from_slice(&0x7ffu32.to_le_bytes());
    d[0x258..0x260].copy_from_slice(&0x100_0000u64.to_le_bytes());
    d[0x260..0x264].copy_from_slice(&0x10_0000u32.to_le_bytes());
    d
}
