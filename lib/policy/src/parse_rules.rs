//! The loader's own checks, listed like validation rules so the manual and
//! the diagnostics share one set of ids.
//!
//! These run while the XML is read (structure, numbers, names, includes),
//! before the model exists, so they have no check function: the loader
//! reports them with the ids below. A test keeps this table and the ids the
//! loader actually uses in step.

use crate::rule::Category;

/// A loader check: its id and one line for the manual.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseRule {
    /// Stable kebab-case id, the `rule` of its diagnostics.
    pub id: &'static str,
    /// Always [`Category::Syntax`]; present so rule lists can be uniform.
    pub category: Category,
    /// What the loader requires.
    pub doc: &'static str,
}

macro_rules! parse_rules {
    ($($konst:ident = $id:literal: $doc:literal;)*) => {
        $(
            #[doc = $doc]
            pub const $konst: &str = $id;
        )*

        /// Every loader check, in the order the manual lists them.
        pub static PARSE_RULES: &[ParseRule] = &[
            $(ParseRule { id: $id, category: Category::Syntax, doc: $doc },)*
        ];
    };
}

parse_rules! {
    XML_SYNTAX = "xml-syntax":
        "Every file is well-formed UTF-8 XML without a DTD (`<!DOCTYPE`).";
    FILE_UNREADABLE = "file-unreadable":
        "The policy file named on the command line exists and can be read.";
    INPUT_TOO_LARGE = "input-too-large":
        "No file is larger than 16 MiB, and all files of a policy hold at most 16 MiB together.";
    NESTING_TOO_DEEP = "nesting-too-deep":
        "Elements nest at most 32 levels deep.";
    ATTRIBUTES_TOO_MANY = "attributes-too-many":
        "An element has at most 64 attributes, and a file declares at most 16 XML namespaces.";
    INVALID_ROOT = "invalid-root":
        "A policy file's root element is `<system>` (`<hardware>` for `septum validate --hardware`).";
    UNKNOWN_ELEMENT = "unknown-element":
        "Every element is one the policy language (or, inside `<hardware>`, the hardware format) defines at that place.";
    UNKNOWN_ATTRIBUTE = "unknown-attribute":
        "Every attribute is one the element defines.";
    MISSING_ATTRIBUTE = "missing-attribute":
        "Every required attribute is present.";
    MISSING_ELEMENT = "missing-element":
        "Every required element is present (`<hardware>`, `<kernel>`, `<scheduling>`, `<processor>`).";
    DUPLICATE_ELEMENT = "duplicate-element":
        "Elements that may appear once appear at most once.";
    UNEXPECTED_TEXT = "unexpected-text":
        "Only `<description>` and `<capability>` hold text.";
    INVALID_NUMBER = "invalid-number":
        "Numbers are decimal, `0x` hex or Ada based (`16#ff#`); a single `_` may stand between two digits.";
    NUMBER_OVERFLOW = "number-overflow":
        "Numbers fit the attribute's range (64 bits for sizes and addresses).";
    INVALID_BOOLEAN = "invalid-boolean":
        "Booleans are `true` or `false`.";
    INVALID_NAME = "invalid-name":
        "Names match `[A-Za-z_][A-Za-z0-9_|-]*` and are at most 63 bytes.";
    INVALID_ENUM = "invalid-enum":
        "Enumerated attributes (caching, mode, action, hasEvent, profile, onFault, group name) have one of their listed values.";
    VM_PROFILE_UNSUPPORTED = "vm-profile-unsupported":
        "Subjects use profile `native`, or `vm` with a `<linux>` boot; other virtual machines are reserved for a later release.";
    INCLUDE_MISSING = "include-missing":
        "Every `<include href>` names a readable file.";
    INCLUDE_CYCLE = "include-cycle":
        "No file includes itself, directly or through other files.";
    INCLUDE_TOO_DEEP = "include-too-deep":
        "Includes nest at most 16 files deep.";
    ERRORS_TOO_MANY = "errors-too-many":
        "Loading stops after 10000 diagnostics, so hostile input cannot produce unbounded output.";
    INCLUDE_TOO_MANY = "include-too-many":
        "A policy reads at most 1024 files (its root, hardware description and includes, each time it is included).";
    INCLUDE_ROOT_MISMATCH = "include-root-mismatch":
        "An included file's root element is the element holding the `<include>`, `<include>`, or one element that element holds.";
    HARDWARE_HREF_MISSING = "hardware-href-missing":
        "`<hardware href>` names a readable file whose root element is `<hardware>`.";
    HARDWARE_CONFLICT = "hardware-conflict":
        "`<hardware>` has either an href or inline content, not both.";
    ANCHOR_SPELLING = "anchor-spelling":
        "The anchor's (Muen's) spellings Septum does not take (memory `type`, `<fill pattern>`, `<file filename>`, a subject's `<memory>` maps, `<system_reboot>` and the like) are reported with Septum's spelling.";
    AUTO_EXHAUSTED = "auto-exhausted":
        "An omitted event id or vector can be assigned: the subject has a free one left.";
}
