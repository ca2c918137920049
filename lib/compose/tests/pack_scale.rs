//! Packing at scale: a composed system's regions pack into a number of
//! `PT_LOAD` segments that does not grow with its number of subjects, so a
//! big image stays far below the 583 program headers GRUB accepts
//! (docs/building.md, "How an image is packed"). This ties the composer's
//! back-to-back allocation to the packer: an allocator change that left
//! gaps between a subject's regions would fail here, not at boot.

use septum_compose::elf::build::sample_kernel;
use septum_compose::{output, pack, testgen};
use septum_policy::MemoryFiles;

fn regions(subjects: usize) -> (output::RegionsFile, Vec<u8>) {
    let xml = testgen::policy_xml(subjects, subjects, 1);
    let loaded = septum_policy::check_str("gen.xml", &xml, &MemoryFiles::new());
    let policy = loaded
        .valid_policy()
        .unwrap_or_else(|| panic!("{:?}", loaded.diagnostics));
    let composed = septum_compose::compose_policy(policy, &testgen::binaries())
        .unwrap_or_else(|e| panic!("{e:?}"));
    output::regions(&composed.composition)
}

#[test]
fn segments_do_not_grow_with_subjects() {
    let mut counts = Vec::new();
    for subjects in [2, 20, 200] {
        let (file, blob) = regions(subjects);
        assert!(file.regions.len() > 10 * subjects);
        let segments = pack::region_segments(&file.regions, &blob).unwrap();
        let elf = pack::pack("kernel", &sample_kernel(), &file, &blob).unwrap();
        let phnum = u16::from_le_bytes([elf[56], elf[57]]) as usize;
        assert_eq!(phnum, 3 + segments.len());
        // The segments load exactly the regions, nothing between them.
        let loaded: u64 = segments.iter().map(|s| s.mem_size).sum();
        assert_eq!(loaded, file.regions.iter().map(|r| r.size).sum::<u64>());
        counts.push(segments.len());
    }
    assert!(counts.iter().all(|&n| n <= 3), "{counts:?}");
    assert_eq!(counts[1], counts[2], "{counts:?}");
}
