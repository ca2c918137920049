//! The `<deny>` check's bounds: at most 256 broken `<deny>`s are spelled
//! out, at most 256 searches run, long paths show their ends.

use septum_policy::diag::headline;
use septum_policy::{Loaded, MemoryFiles, check_str};

fn errors(loaded: &Loaded) -> Vec<String> {
    loaded
        .diagnostics
        .iter()
        .filter(|d| d.rule == "flows-denied")
        .map(|d| headline(d, &loaded.sources))
        .collect()
}

/// `n` subjects on CPU 0 in a ring of channels (s_i writes c_i, read by
/// s_i+1), each stopping alone on a fault, and `denies`.
fn ring(n: usize, denies: &str) -> String {
    let mut channels = String::new();
    let mut subjects = String::new();
    let mut partitions = String::new();
    let mut frames = String::new();
    for i in 0..n {
        let prev = (i + n - 1) % n;
        channels.push_str(&format!("<channel name=\"c{i}\" size=\"0x1000\"/>"));
        subjects.push_str(&format!(
            "<subject name=\"s{i}\" profile=\"native\" binary=\"s\" onFault=\"stopSubject\">\
             <channels><writer logical=\"w\" physical=\"c{i}\"/>\
             <reader logical=\"r\" physical=\"c{prev}\"/></channels></subject>\n"
        ));
        partitions.push_str(&format!(
            "<partition name=\"p{i}\"><group><subject name=\"s{i}\"/></group></partition>"
        ));
        frames.push_str(&format!("<minorFrame partition=\"p{i}\" ticks=\"1\"/>"));
    }
    format!(
        "<system name=\"t\">\n\
         <hardware><processor cpuCores=\"1\" speed=\"1000\" vmxTimerRate=\"0\"/>\
         <memory><memoryBlock name=\"ram\" physicalAddress=\"0x10_0000\" size=\"0x1000_0000\" \
         allocatable=\"true\"/></memory>\
         <devices><device name=\"com1\"><ioPort name=\"p\" start=\"0x3f8\" end=\"0x3ff\"/>\
         </device></devices></hardware>\n<kernel debugConsole=\"com1\"/>\n\
         <channels>{channels}</channels>\n<subjects>\n{subjects}</subjects>\n\
         <scheduling tickRate=\"1000\"><partitions>{partitions}</partitions>\
         <majorFrame><cpu id=\"0\">{frames}</cpu></majorFrame></scheduling>\n\
         <flows>\n{denies}</flows>\n</system>\n"
    )
}

#[test]
fn a_long_path_shows_its_first_and_last_hops() {
    let text = ring(12, "<deny from=\"s0\" to=\"s11\"/>\n");
    let loaded = check_str("t.xml", &text, &MemoryFiles::new());
    assert_eq!(
        errors(&loaded),
        [
            "t.xml:21:1: error[flows-denied]: the policy lets information flow from \"s0\" to \
             \"s11\", which this <deny> forbids: s0 -> s1 (channel \"c0\"), then s1 -> s2 \
             (channel \"c1\"), then s2 -> s3 (channel \"c2\"), then s3 -> s4 (channel \"c3\"), \
             then (3 more hops), then s7 -> s8 (channel \"c7\"), then s8 -> s9 (channel \"c8\"), \
             then s9 -> s10 (channel \"c9\"), then s10 -> s11 (channel \"c10\")"
        ]
    );
}

#[test]
fn at_most_256_broken_denies_are_spelled_out() {
    let denies = "<deny from=\"s0\" to=\"s1\"/>\n".repeat(300);
    let loaded = check_str("t.xml", &ring(2, &denies), &MemoryFiles::new());
    let errors = errors(&loaded);
    assert_eq!(errors.len(), 257);
    assert_eq!(
        errors.last().map(String::as_str),
        Some(
            "t.xml:310:1: error[flows-denied]: 44 more <deny>s are broken by flows the policy \
             allows (the first 256 are spelled out); this is the last"
        )
    );
}

#[test]
fn at_most_256_searches_run() {
    // 260 different `from` subjects: the last 4 are not searched.
    let n = 260;
    let denies: String = (0..n)
        .map(|i| {
            format!(
                "<deny from=\"s{i}\" to=\"s{}\" direct=\"true\"/>\n",
                (i + 2) % n
            )
        })
        .collect();
    let loaded = check_str("t.xml", &ring(n, &denies), &MemoryFiles::new());
    let not_checked: Vec<String> = errors(&loaded)
        .into_iter()
        .filter(|e| e.contains("was not checked"))
        .collect();
    assert_eq!(not_checked.len(), 4, "{not_checked:#?}");
    assert!(not_checked[0].ends_with(
        "error[flows-denied]: this <deny> was not checked: the <deny>s name more than 256 \
         different `from` subjects (with their `direct` and `covert`)"
    ));
}
