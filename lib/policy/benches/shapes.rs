//! Adversarial policy shapes for the loader's bounded-work guarantee,
//! shared by the criterion bench (`benches/bounded.rs`) and the host test
//! (`tests/bounded.rs`, which includes this file with `#[path]`).
//!
//! Each shape is a root file of about `size` bytes (never more than
//! [`septum_policy::MAX_INPUT_BYTES`]) plus, for the include shape, the
//! files it includes; each stresses one thing that was, or could be,
//! quadratic: attributes of one element, namespace declarations, one very
//! long line with an error per element, many lines, nesting at and past the
//! limit, a huge attribute value, many errors of the number parser, a large
//! valid policy (so every rule runs), many includes, one device with
//! many IRQs on a line another subject's device routes, and one partition
//! on as many CPUs as a processor with 2^32-1 cores allows, or as many
//! major frames as fit, each on a CPU of its own, and one range of every
//! kind (device memory, I/O ports, memory blocks, fixed regions, mappings)
//! repeated until it fills the budget, every copy overlapping every other.

#![allow(dead_code)]

use septum_policy::{MAX_INPUT_BYTES, MemoryFiles};

/// One shape: its name, the root text and the other files.
pub struct Shape {
    /// What it stresses.
    pub name: &'static str,
    /// The root file, `shape.xml`.
    pub root: String,
    /// Included files (paths relative to the root's directory).
    pub files: MemoryFiles,
}

/// Repeats `unit(i)` for i = 0.. while the result stays within `budget`.
fn fill(budget: usize, mut unit: impl FnMut(usize) -> String) -> String {
    let mut out = String::new();
    for i in 0.. {
        let next = unit(i);
        if out.len() + next.len() > budget {
            break;
        }
        out.push_str(&next);
    }
    out
}

const HEAD: &str = "<system>\n  <hardware href=\"hw.xml\"/>\n  <kernel debugConsole=\"com2\"/>\n";

const HARDWARE: &str = include_str!("../../../hardware/bochs-tigerlake.xml");

fn shape(name: &'static str, root: String) -> Shape {
    let mut files = MemoryFiles::new();
    files.insert("hw.xml", HARDWARE);
    let root = if root.len() > MAX_INPUT_BYTES as usize {
        root[..MAX_INPUT_BYTES as usize].to_owned()
    } else {
        root
    };
    Shape { name, root, files }
}

/// Every shape at about `size` bytes.
pub fn all(size: usize) -> Vec<Shape> {
    let body = size.saturating_sub(200);
    let mut shapes = vec![
        shape(
            "attributes-one-element",
            format!("<system{}/>", fill(body, |i| format!(" a{i}=\"1\""))),
        ),
        shape(
            "attributes-unclosed",
            format!("<system{}", fill(body, |i| format!(" a{i}=\"1\""))),
        ),
        shape(
            "attributes-many-elements",
            format!(
                "<system>\n{}</system>\n",
                fill(body, |_| {
                    let attrs: String = (0..64).map(|a| format!(" a{a}=\"1\"")).collect();
                    format!("<x{attrs}/>\n")
                })
            ),
        ),
        shape(
            "namespaces",
            format!(
                "<system>{}</system>",
                fill(body, |i| format!("<x xmlns:n{i}=\"u\"/>"))
            ),
        ),
        shape(
            "errors-one-line",
            format!("<system>{}</system>", fill(body, |_| "<x/>".to_owned())),
        ),
        shape(
            "errors-many-lines",
            format!(
                "<system>\n{}</system>\n",
                fill(body, |_| "<x/>\n".to_owned())
            ),
        ),
        shape(
            "number-errors-one-line",
            format!(
                "{HEAD}<memory>{}</memory></system>",
                fill(body, |i| format!(
                    "<memory name=\"m{i}\" size=\"0x1000_\" caching=\"WB\"/>"
                ))
            ),
        ),
        shape(
            "nesting-past-the-limit",
            format!(
                "<system>{}{}</system>",
                "<a>".repeat(body / 7),
                "</a>".repeat(body / 7)
            ),
        ),
        shape(
            "nesting-at-the-limit",
            format!(
                "<system>{}</system>",
                fill(body, |_| format!(
                    "{}{}",
                    "<a>".repeat(31),
                    "</a>".repeat(31)
                ))
            ),
        ),
        shape(
            "long-value",
            format!("<system name=\"{}\"/>", "a".repeat(body)),
        ),
        shape("valid-many-subjects", valid(body)),
        shared_line(body),
        shape("denies-on-a-long-chain", denies(body)),
        cpus_one_partition(body),
        major_frames_one_cpu_each(body),
        everything_overlaps(body),
    ];
    let mut includes = shape(
        "includes",
        format!(
            "{HEAD}<memory>{}</memory></system>",
            fill(body, |_| "<include href=\"m.xml\"/>".to_owned())
        ),
    );
    includes.files.insert(
        "m.xml",
        "<memory><memory name=\"m\" size=\"0x1000\" caching=\"WB\"/></memory>",
    );
    shapes.push(includes);
    shapes
}

/// A valid policy of about `budget` bytes: subjects each with a memory
/// region, an event and a channel to the next, one partition each.
fn valid(budget: usize) -> String {
    // One subject's share of the text, about 600 bytes.
    let n = (budget / 600).max(2);
    let mut memory = String::new();
    let mut events = String::new();
    let mut channels = String::new();
    let mut subjects = String::new();
    let mut partitions = String::new();
    let mut frames = String::new();
    for i in 0..n {
        let prev = (i + n - 1) % n;
        memory.push_str(&format!(
            "<memory name=\"m{i}\" size=\"0x1000\" caching=\"WB\"/>\n"
        ));
        events.push_str(&format!("<event name=\"e{i}\" mode=\"async\"/>\n"));
        channels.push_str(&format!("<channel name=\"c{i}\" size=\"0x1000\"/>\n"));
        subjects.push_str(&format!(
            "<subject name=\"s{i}\" profile=\"native\" binary=\"s\">\
             <memory><map logical=\"m\" physical=\"m{i}\"/></memory>\
             <events><source><group name=\"vmcall\"><event logical=\"e\" physical=\"e{i}\"/>\
             </group></source><target><event logical=\"t\" physical=\"e{prev}\"/></target></events>\
             <channels><writer logical=\"w\" physical=\"c{i}\"/>\
             <reader logical=\"r\" physical=\"c{prev}\"/></channels></subject>\n"
        ));
        partitions.push_str(&format!(
            "<partition name=\"p{i}\"><group><subject name=\"s{i}\"/></group></partition>\n"
        ));
        frames.push_str(&format!("<minorFrame partition=\"p{i}\" ticks=\"1\"/>\n"));
    }
    format!(
        "{HEAD}<memory>{memory}</memory><events>{events}</events><channels>{channels}</channels>\
         <subjects>{subjects}</subjects><scheduling tickRate=\"1000\"><partitions>{partitions}\
         </partitions><majorFrame><cpu id=\"0\">{frames}</cpu></majorFrame></scheduling></system>\n"
    )
}

/// The valid policy with half the budget, every subject stopping alone on
/// a fault (so the only paths are the channel and event rings), and the
/// other half `<deny>`s: each subject to the one before it (a path around
/// the whole ring) and the first subject to every other.
fn denies(budget: usize) -> String {
    let policy =
        valid(budget / 2).replace("binary=\"s\">", "binary=\"s\" onFault=\"stopSubject\">");
    let n = (budget / 2 / 600).max(2);
    let mut flows = String::from("<flows>");
    let mut i = 0;
    while flows.len() < budget / 2 {
        let (from, to) = if i % 2 == 0 {
            (i / 2 % n, (i / 2 + n - 1) % n)
        } else {
            (0, i / 2 % n)
        };
        flows.push_str(&format!("<deny from=\"s{from}\" to=\"s{to}\"/>\n"));
        i += 1;
    }
    flows.push_str("</flows>");
    policy.replace(
        "</scheduling></system>",
        &format!("</scheduling>{flows}</system>"),
    )
}

/// A third of the budget a hardware description whose device "big" has many
/// `<irq>`s on line 16, the line of device "nic2" that subject "a" routes;
/// subject "b" granting every one of them by name (the
/// shared-line rules look at each IRQ of "big" against each of b's
/// grants).
fn shared_line(budget: usize) -> Shape {
    const TWO_CPUS: &str = include_str!("../tests/valid/hardware/two-cpus.xml");
    let irqs = fill(budget / 3, |i| {
        format!("<irq name=\"i{i}\" number=\"16\"/>")
    });
    let count = irqs.matches("<irq").count();
    let hardware = TWO_CPUS.replacen(
        "</devices>",
        &format!(
            "<device name=\"big\"><pci bus=\"0\" device=\"6\" function=\"0\"/>{irqs}</device>\n\
             </devices>"
        ),
        1,
    );
    let grants: String = (0..count)
        .map(|i| {
            format!(
                "<irq logical=\"i{i}\" physical=\"i{i}\" vector=\"{}\"/>",
                40 + i % 100
            )
        })
        .collect();
    let root = format!(
        "{HEAD}<subjects><subject name=\"a\" profile=\"native\" binary=\"s\"><devices><device \
         logical=\"nic\" physical=\"nic2\"><irq logical=\"irq\" physical=\"irq\" vector=\"40\"/>\
         </device></devices></subject><subject name=\"b\" profile=\"native\" binary=\"s\"><devices>\
         <device logical=\"big\" physical=\"big\">{grants}</device></devices></subject></subjects>\
         <scheduling tickRate=\"1000\"><partitions><partition name=\"p\"><group><subject \
         name=\"a\"/></group></partition><partition name=\"q\"><group><subject name=\"b\"/>\
         </group></partition></partitions><majorFrame><cpu id=\"0\"><minorFrame partition=\"p\" \
         ticks=\"1\"/><minorFrame partition=\"q\" ticks=\"1\"/></cpu></majorFrame></scheduling>\
         </system>\n"
    );
    let mut shape = shape("irqs-on-a-routed-line", root);
    shape.files.insert("hw.xml", hardware);
    shape
}

/// A processor of 2^32-1 cores and one major frame with as many `<cpu>`s
/// as fit, each giving its minor frame to the same partition: the
/// scheduling rules look at every CPU of a partition and of the plan.
fn cpus_one_partition(budget: usize) -> Shape {
    // Room for the rest of the root and the hardware file: all files
    // together stay under the input cap, so the rules run.
    let frames = fill(budget.saturating_sub(4096), |i| {
        format!("<cpu id=\"{i}\"><minorFrame partition=\"p\" ticks=\"1\"/></cpu>")
    });
    let root = format!(
        "{HEAD}<subjects><subject name=\"s\" profile=\"native\" binary=\"s\"/></subjects>\
         <scheduling tickRate=\"1000\"><partitions><partition name=\"p\"><group><subject \
         name=\"s\"/></group></partition></partitions><majorFrame>{frames}</majorFrame>\
         </scheduling></system>\n"
    );
    let mut shape = shape("cpus-one-partition", root);
    shape.files.insert(
        "hw.xml",
        HARDWARE.replacen("cpuCores=\"1\"", "cpuCores=\"4294967295\"", 1),
    );
    shape
}

/// The processor of [`cpus_one_partition`] and as many major frames as
/// fit, each with one `<cpu>` of its own: every major frame lacks every
/// other frame's CPU, so "CPU missing" holds for every pair.
fn major_frames_one_cpu_each(budget: usize) -> Shape {
    let mut shape = cpus_one_partition(budget);
    let frames = fill(budget.saturating_sub(4096), |i| {
        format!(
            "<majorFrame><cpu id=\"{i}\"><minorFrame partition=\"p\" ticks=\"1\"/></cpu>\
             </majorFrame>"
        )
    });
    let start = shape.root.find("<majorFrame>").unwrap_or(0);
    let end = shape
        .root
        .rfind("</majorFrame>")
        .map_or(start, |e| e + "</majorFrame>".len());
    shape.root.replace_range(start..end, &frames);
    shape.name = "major-frames-one-cpu-each";
    shape
}

/// A quarter of the budget each: devices with the same memory and I/O
/// ports, memory blocks at the same address, and fixed regions at the same
/// address that one subject maps at the same virtual address. Every pair
/// of each kind overlaps.
fn everything_overlaps(budget: usize) -> Shape {
    let part = budget / 4;
    let devices = fill(part, |i| {
        format!(
            "<device name=\"d{i}\"><memory name=\"m\" physicalAddress=\"16#f000_0000#\" \
             size=\"16#1000#\" caching=\"UC\"/><ioPort name=\"p\" start=\"16#1000#\" \
             end=\"16#1fff#\"/></device>"
        )
    });
    let blocks = fill(part, |i| {
        format!(
            "<memoryBlock allocatable=\"true\" name=\"b{i}\" physicalAddress=\"16#0010_0000#\" \
             size=\"16#0fef_0000#\"/>"
        )
    });
    let regions = fill(part, |i| {
        format!(
            "<memory name=\"r{i}\" size=\"0x1000\" caching=\"WB\" physicalAddress=\"0x200_0000\"/>"
        )
    });
    let count = regions.matches("<memory").count();
    let maps: String = (0..count)
        .map(|i| {
            format!("<map logical=\"r{i}\" physical=\"r{i}\" virtualAddress=\"0x5000_0000\"/>")
        })
        .collect();
    let root = format!(
        "{HEAD}<memory>{regions}</memory><subjects><subject name=\"s\" profile=\"native\" \
         binary=\"s\"><memory>{maps}</memory></subject></subjects><scheduling \
         tickRate=\"1000\"><partitions><partition name=\"p\"><group><subject name=\"s\"/>\
         </group></partition></partitions><majorFrame><cpu id=\"0\"><minorFrame partition=\"p\" \
         ticks=\"1\"/></cpu></majorFrame></scheduling></system>\n"
    );
    let mut shape = shape("everything-overlaps", root);
    shape.files.insert(
        "hw.xml",
        HARDWARE
            .replacen("</devices>", &format!("{devices}</devices>"), 1)
            .replacen("</memory>", &format!("{blocks}</memory>"), 1),
    );
    shape
}
