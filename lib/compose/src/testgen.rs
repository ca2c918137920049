//! A deterministic generator of large, valid policies, for benchmarks and
//! scale tests.
//!
//! `policy_xml(subjects, channels, cpus)` writes a policy in the policy
//! language with inline hardware: subject `s<i>` runs on CPU `i % cpus` in
//! its own partition, maps one private page of RAM, raises an async event
//! that subject `i + 1` receives (with an injected vector) and a kernel
//! `yield` event; channel `c<j>` is written by subject `j % subjects` and
//! read by subject `(j + 1) % subjects`, every fourth one with an event.
//! Subject 0 owns COM1; COM2 is the kernel's console. Virtual addresses,
//! event ids and vectors are left out, so the loader's auto-assignment is
//! exercised at scale too. Every subject uses the one ELF file
//! [`BINARY`], which [`crate::elf::build::sample_subject`] provides.

use std::fmt::Write;

/// Name of the ELF file every generated subject uses.
pub const BINARY: &str = "subject.elf";

/// Ticks of one major frame on every CPU.
const MAJOR_TICKS: u64 = 10_000;

/// The policy text. `subjects` must be at least 2 and `cpus` at least 1.
pub fn policy_xml(subjects: usize, channels: usize, cpus: usize) -> String {
    let subjects = subjects.max(2);
    let cpus = cpus.clamp(1, subjects);
    let mut o = String::with_capacity(1024 + subjects * 1200 + channels * 200);
    let _ = writeln!(o, "<system name=\"gen{subjects}x{channels}x{cpus}\">");
    let _ = writeln!(o, "  <hardware>");
    let _ = writeln!(
        o,
        "    <processor cpuCores=\"{cpus}\" speed=\"10000\" vmxTimerRate=\"0\">"
    );
    for cpu in 0..cpus {
        let _ = writeln!(o, "      <cpu apicId=\"{}\"/>", cpu * 2);
    }
    let _ = writeln!(o, "    </processor>");
    let _ = writeln!(o, "    <memory>");
    let _ = writeln!(
        o,
        "      <memoryBlock name=\"ram\" physicalAddress=\"16#0010_0000#\" size=\"16#dff0_0000#\" allocatable=\"true\"/>"
    );
    let _ = writeln!(o, "    </memory>");
    let _ = writeln!(
        o,
        "    <devices pciConfigAddress=\"16#e000_0000#\" pciConfigSize=\"16#1000_0000#\">"
    );
    let _ = writeln!(
        o,
        "      <device name=\"com1\"><ioPort name=\"ports\" start=\"0x3f8\" end=\"0x3ff\"/></device>"
    );
    let _ = writeln!(
        o,
        "      <device name=\"com2\"><ioPort name=\"ports\" start=\"0x2f8\" end=\"0x2ff\"/></device>"
    );
    let _ = writeln!(o, "    </devices>");
    let _ = writeln!(o, "  </hardware>");
    let _ = writeln!(o, "  <kernel debugConsole=\"com2\"/>");
    let _ = writeln!(o, "  <memory>");
    for i in 0..subjects {
        let _ = writeln!(
            o,
            "    <memory name=\"ram{i}\" size=\"0x1000\" caching=\"WB\"/>"
        );
    }
    let _ = writeln!(o, "  </memory>");
    let _ = writeln!(o, "  <events>");
    for i in 0..subjects {
        let _ = writeln!(o, "    <event name=\"ping{i}\" mode=\"async\"/>");
        let _ = writeln!(
            o,
            "    <event name=\"yield{i}\" mode=\"kernel\" action=\"yield\"/>"
        );
    }
    let _ = writeln!(o, "  </events>");
    let _ = writeln!(o, "  <channels>");
    for j in 0..channels {
        let event = if j % 4 == 0 {
            " hasEvent=\"async\""
        } else {
            ""
        };
        let _ = writeln!(o, "    <channel name=\"c{j}\" size=\"0x1000\"{event}/>");
    }
    let _ = writeln!(o, "  </channels>");
    let _ = writeln!(o, "  <subjects>");
    for i in 0..subjects {
        let _ = writeln!(
            o,
            "    <subject name=\"s{i}\" profile=\"native\" binary=\"{BINARY}\" cpu=\"{}\">",
            i % cpus
        );
        let _ = writeln!(
            o,
            "      <memory><map logical=\"ram\" physical=\"ram{i}\" writable=\"true\"/></memory>"
        );
        if i == 0 {
            let _ = writeln!(
                o,
                "      <devices><device logical=\"uart\" physical=\"com1\"/></devices>"
            );
        }
        let previous = (i + subjects - 1) % subjects;
        let _ = writeln!(o, "      <events>");
        let _ = writeln!(o, "        <source><group name=\"vmcall\">");
        let _ = writeln!(
            o,
            "          <event logical=\"ping\" physical=\"ping{i}\"/>"
        );
        let _ = writeln!(
            o,
            "          <event logical=\"yield\" physical=\"yield{i}\"/>"
        );
        let _ = writeln!(o, "        </group></source>");
        let _ = writeln!(
            o,
            "        <target><event logical=\"pinged\" physical=\"ping{previous}\"><inject_interrupt/></event></target>"
        );
        let _ = writeln!(o, "      </events>");
        let _ = writeln!(o, "      <channels>");
        for j in (0..channels).filter(|j| j % subjects == i) {
            let _ = writeln!(o, "        <writer logical=\"out{j}\" physical=\"c{j}\"/>");
        }
        for j in (0..channels).filter(|j| (j + 1) % subjects == i) {
            let _ = writeln!(o, "        <reader logical=\"in{j}\" physical=\"c{j}\"/>");
        }
        let _ = writeln!(o, "      </channels>");
        let _ = writeln!(o, "    </subject>");
    }
    let _ = writeln!(o, "  </subjects>");
    let _ = writeln!(o, "  <scheduling tickRate=\"1000\">");
    let _ = writeln!(o, "    <partitions>");
    for i in 0..subjects {
        let _ = writeln!(
            o,
            "      <partition name=\"p{i}\"><group><subject name=\"s{i}\"/></group></partition>"
        );
    }
    let _ = writeln!(o, "    </partitions>");
    let _ = writeln!(o, "    <majorFrame>");
    for cpu in 0..cpus {
        let members: Vec<usize> = (0..subjects).filter(|i| i % cpus == cpu).collect();
        let each = MAJOR_TICKS / members.len() as u64;
        let _ = writeln!(o, "      <cpu id=\"{cpu}\">");
        for (k, i) in members.iter().enumerate() {
            let ticks = if k + 1 == members.len() {
                MAJOR_TICKS - each * k as u64
            } else {
                each
            };
            let _ = writeln!(
                o,
                "        <minorFrame partition=\"p{i}\" ticks=\"{ticks}\"/>"
            );
        }
        let _ = writeln!(o, "      </cpu>");
    }
    let _ = writeln!(o, "    </majorFrame>");
    let _ = writeln!(o, "  </scheduling>");
    let _ = writeln!(o, "</system>");
    o
}

/// The binaries every generated policy needs, in memory.
pub fn binaries() -> std::collections::HashMap<String, Vec<u8>> {
    std::iter::once((BINARY.to_owned(), crate::elf::build::sample_subject())).collect()
}
