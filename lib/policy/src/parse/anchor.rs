//! The anchor's (Muen's) spellings that Septum does not take, each with
//! the message that names Septum's own spelling.
//!
//! Policies written for the anchor, or by someone who knows it, use these
//! names; a plain "unknown attribute" would leave the integrator guessing.
//! Spellings that mean exactly what Septum's do are accepted where they are
//! parsed instead (the event mode `asynchronous`); those listed here either
//! mean something else (the anchor's `<file offset>` is an offset into the
//! file, Septum's one into the region) or say what Septum derives, so
//! accepting them would hide a difference.

/// An attribute the anchor writes on `element`: the message's tail (after
/// "`attr` on <element> is the anchor's spelling; ") and a help line.
pub(super) fn attribute(element: &str, attribute: &str) -> Option<(&'static str, &'static str)> {
    Some(match (element, attribute) {
        ("memory", "type") => (
            "Septum writes no memory type",
            "remove it: what a region is for follows from how subjects map it, and a channel \
             is a <channel> in <channels>",
        ),
        ("file", "filename") => (
            "Septum writes href",
            "write href=\"FILE\", relative to the directory of the file that holds it",
        ),
        _ => return None,
    })
}

/// A child element the anchor writes in `parent` where Septum has none
/// (`allowed` are the children Septum takes there, to tell same-named
/// parents apart): the message's tail and a help line.
pub(super) fn element(
    parent: &str,
    child: &str,
    allowed: &[&str],
) -> Option<(String, &'static str)> {
    Some(match (parent, child) {
        ("memory", "fill") if allowed.contains(&"file") => (
            "Septum writes fill=\"BYTE\" on the region".to_owned(),
            "replace <fill pattern=\"B\"/> with the attribute fill=\"B\" on this <memory>",
        ),
        ("memory", "memory") if allowed.contains(&"map") => (
            "Septum writes <map logical physical> in a subject's <memory>".to_owned(),
            "rename the element to <map>; its attributes are the same",
        ),
        ("event", "system_reboot" | "system_poweroff" | "system_panic") => (
            format!(
                "Septum writes action=\"{}\" on the <event mode=\"kernel\"> in <events>",
                child.trim_start_matches("system_")
            ),
            "remove the child and give the event this action in the top-level <events>",
        ),
        _ => return None,
    })
}

/// The anchor's spellings accepted as synonyms in enumerations (each
/// stands in its table next to Septum's spelling). Messages that list the
/// valid values leave them out, so they show one spelling per value.
pub(super) const SYNONYMS: &[&str] = &["asynchronous"];
