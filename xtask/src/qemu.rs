//! Booting an image in QEMU (TCG), for what Bochs cannot emulate: VT-d.
//!
//! QEMU has no VT-x under TCG, so only test builds that skip VMX boot here
//! (the kernel's `vtd-probe` feature, docs/testing.md). The machine is
//! fixed, the one `hardware/qemu-q35-vtd.xml` describes: q35 with 256 MiB,
//! `intel-iommu,intremap=on` (DMA and interrupt remapping), the `edu`
//! device at 00:03.0, an `e1000e` at 00:04.0 (for its MSI-X table; no
//! network behind it, no option ROM), no default NIC, no VGA, the GRUB ISO as CD-ROM, COM1 and
//! COM2 to `com1.txt`/`com2.txt` in the image directory (the same files a
//! Bochs boot leaves) and `isa-debug-exit` at port 0xf4, which the probe
//! writes to end the run. Like a Bochs boot, the run is judged by its
//! serial output; xtask is the watchdog and kills QEMU (by its process id)
//! at the deadline.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::bochs::{Boot, BootOptions, Ending};
use crate::util::Error;

/// The QEMU machine of `hardware/qemu-q35-vtd.xml` (without the serial
/// ports and the ISO, which [`boot`] adds).
pub const VTD_MACHINE: &[&str] = &[
    "-machine",
    "q35",
    "-m",
    "256M",
    "-device",
    "intel-iommu,intremap=on",
    "-device",
    "edu,addr=3.0",
    "-device",
    "e1000e,addr=4.0,romfile=",
    "-device",
    "isa-debug-exit,iobase=0xf4,iosize=0x04",
    "-nic",
    "none",
    "-vga",
    "none",
    "-display",
    "none",
    "-no-reboot",
];

/// Boots `dir/system.iso` on the VT-d machine.
pub fn boot(dir: &Path, options: &BootOptions) -> Result<Boot, Error> {
    for name in ["com1.txt", "com2.txt", "qemu.out"] {
        let _ = fs::remove_file(dir.join(name));
    }
    let out = fs::File::create(dir.join("qemu.out"))
        .map_err(|e| format!("cannot create {}/qemu.out: {e}", dir.display()))?;
    let err = out.try_clone().map_err(|e| format!("qemu.out: {e}"))?;
    let start = Instant::now();
    let mut child = Command::new("qemu-system-x86_64")
        .args(VTD_MACHINE)
        .args(["-cdrom", "system.iso"])
        .args(["-serial", "file:com1.txt", "-serial", "file:com2.txt"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .map_err(|e| {
            format!(
                "cannot start qemu-system-x86_64 in {}: {e} (is it installed?)",
                dir.display()
            )
        })?;
    let ending = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ending::QemuExited(status.code()),
            Ok(None) => {}
            Err(e) => {
                let _ = child.kill();
                return Err(format!("waiting for qemu: {e}").into());
            }
        }
        if start.elapsed() >= options.timeout {
            let _ = child.kill();
            let _ = child.wait();
            break Ending::TimedOut;
        }
        thread::sleep(Duration::from_millis(50));
    };
    let read = |name: &str| fs::read_to_string(dir.join(name)).unwrap_or_default();
    Ok(Boot {
        com1: read("com1.txt"),
        com2: read("com2.txt"),
        ending,
        wall: start.elapsed(),
    })
}
