//! Validation rules: the checks that run on a loaded [`Policy`].
//!
//! A rule is plain data: a stable id (what diagnostics carry and tests match
//! on), a category (for the manual), a one-line doc (rendered into
//! docs/policy.md by a test, so the manual always lists every rule), and a
//! check function that reports into a [`Diagnostics`] sink. Rules never stop
//! at the first problem and never depend on each other's order; `validate`
//! runs all of them and sorts the result.

use crate::diag::Diagnostics;
use crate::model::Policy;

/// What a rule is about (groups the rule list in the manual).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    /// XML structure, numbers, names, includes (loader checks).
    Syntax,
    /// Names: uniqueness and references.
    Names,
    /// Memory regions and mappings.
    Memory,
    /// Devices and their resources.
    Devices,
    /// Device domains (DMA address spaces, `<deviceDomains>`).
    Domains,
    /// The hardware description.
    Hardware,
    /// Events, ids and vectors.
    Events,
    /// Channels.
    Channels,
    /// Subjects.
    Subjects,
    /// Partitions and the scheduling plan.
    Scheduling,
    /// Kernel settings.
    Kernel,
    /// Information flows the integrator denied (`<flows>`).
    Flows,
}

impl Category {
    /// Title used in the manual.
    pub const fn title(self) -> &'static str {
        match self {
            Category::Syntax => "Syntax",
            Category::Names => "Names",
            Category::Memory => "Memory",
            Category::Devices => "Devices",
            Category::Domains => "Domains",
            Category::Hardware => "Hardware",
            Category::Events => "Events",
            Category::Channels => "Channels",
            Category::Subjects => "Subjects",
            Category::Scheduling => "Scheduling",
            Category::Kernel => "Kernel",
            Category::Flows => "Flows",
        }
    }
}

/// One validation rule.
#[derive(Clone, Copy)]
pub struct Rule {
    /// Stable kebab-case id, used as the `rule` of every diagnostic it
    /// reports.
    pub id: &'static str,
    /// Category.
    pub category: Category,
    /// One line for the manual: what the rule requires.
    pub doc: &'static str,
    /// Reports every violation in the policy.
    pub check: fn(&Policy, &mut Diagnostics),
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rule")
            .field("id", &self.id)
            .field("category", &self.category)
            .finish()
    }
}
