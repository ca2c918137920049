//! Events and time: the subject's whole hypercall interface.
//!
//! A subject raises one of its source events with `vmcall`, RAX = event
//! number (0..63). Nothing else is passed; data travels through shared
//! memory. The numbers are typed so a source event is never confused with a
//! target event or a vector; the subject gets them from its info page by
//! name (see [`crate::info::Info::source_event`]).
//!
//! What a source event does is the policy's business, so [`raise`] cannot
//! say what happens. [`Kernel`] can: it finds the subject's `kernel` events
//! by their action on the info page and offers each as a typed call.
//! [`Kernel::wait`] raises the `sleep` event: the subject leaves the CPU
//! until one of its target events is pending (at once if one already is)
//! and gets the pending ones back as a [`PendingSet`], which the kernel
//! passes in RAX and clears, so each signal is seen once.

use septum_abi::hypercall::{KernelActionCode, MAX_EVENTS};

use crate::info::{Info, TargetEvent};

/// An event number type: 0..63, checked on construction.
macro_rules! event_number {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct $name(u8);

        impl $name {
            /// The event with number `number`, if it is in range.
            pub const fn new(number: u8) -> Option<Self> {
                if (number as usize) < MAX_EVENTS {
                    Some(Self(number))
                } else {
                    None
                }
            }

            /// The event number.
            pub const fn get(self) -> u8 {
                self.0
            }
        }
    };
}

event_number!(
    /// A source event number (0..63) of the calling subject.
    SourceEventId
);
event_number!(
    /// A target event number (0..63): an event the subject receives.
    TargetEventId
);

/// Raises `event`. Returns when the kernel resumes the subject: at once for
/// most events, at the next minor frame for `yield`, once a target event is
/// pending for `sleep` (whose result this discards: use [`Kernel::wait`]),
/// never for `poweroff`.
pub fn raise(event: SourceEventId) {
    crate::arch::vmcall(u64::from(event.get()));
}

/// A set of target events: bit `n` stands for target event `n`. What
/// [`Kernel::wait`] returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PendingSet(u64);

impl PendingSet {
    /// No event.
    pub const EMPTY: Self = Self(0);

    /// The set whose bit `n` stands for target event `n`.
    pub const fn from_bits(bits: u64) -> Self {
        Self(bits)
    }

    /// The raw bits.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// Whether no event is in the set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// How many events are in the set.
    pub const fn len(self) -> u32 {
        self.0.count_ones()
    }

    /// Whether `event` is in the set.
    pub const fn contains(self, event: TargetEventId) -> bool {
        self.0 & (1u64 << event.0) != 0
    }

    /// Whether the target event `event` (from [`Info::target_event`]) is in
    /// the set.
    pub const fn has(self, event: TargetEvent) -> bool {
        self.contains(event.id)
    }

    /// The events in the set, lowest number first.
    pub fn iter(self) -> impl Iterator<Item = TargetEventId> {
        (0..MAX_EVENTS as u8)
            .filter_map(TargetEventId::new)
            .filter(move |event| self.contains(*event))
    }
}

/// The policy gives the subject no `kernel` event with this action (the
/// call did nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotGranted(pub KernelActionCode);

/// The subject's `kernel` events, found by their action on the info page
/// (whatever their logical names), as typed calls. Each call returns
/// [`NotGranted`] if the policy gives the subject no event of that action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kernel {
    yield_event: Option<SourceEventId>,
    sleep: Option<SourceEventId>,
    poweroff: Option<SourceEventId>,
    reboot: Option<SourceEventId>,
    panic: Option<SourceEventId>,
    next_plan: Option<SourceEventId>,
    unmask_irq: Option<SourceEventId>,
}

impl Kernel {
    /// Looks up the subject's kernel events on its info page.
    pub fn from_info(info: &Info<'_>) -> Self {
        Self {
            yield_event: info.kernel_event(KernelActionCode::Yield),
            sleep: info.kernel_event(KernelActionCode::Sleep),
            poweroff: info.kernel_event(KernelActionCode::Poweroff),
            reboot: info.kernel_event(KernelActionCode::Reboot),
            panic: info.kernel_event(KernelActionCode::Panic),
            next_plan: info.kernel_event(KernelActionCode::NextPlan),
            unmask_irq: info.kernel_event(KernelActionCode::UnmaskIrq),
        }
    }

    /// The source event of `action`, if the policy gives the subject one.
    pub fn event(&self, action: KernelActionCode) -> Option<SourceEventId> {
        match action {
            KernelActionCode::Yield => self.yield_event,
            KernelActionCode::Sleep => self.sleep,
            KernelActionCode::Poweroff => self.poweroff,
            KernelActionCode::Reboot => self.reboot,
            KernelActionCode::Panic => self.panic,
            KernelActionCode::NextPlan => self.next_plan,
            KernelActionCode::UnmaskIrq => self.unmask_irq,
        }
    }

    fn granted(&self, action: KernelActionCode) -> Result<SourceEventId, NotGranted> {
        self.event(action).ok_or(NotGranted(action))
    }

    /// Waits for target events (the `sleep` action): returns at once if any
    /// is pending, else the subject leaves the CPU and runs again, in one of
    /// its own minor frames, once one is. However many frames that takes,
    /// the call returns only with events (the set is never empty), or, for
    /// a subject that owns an IRQ line, also when one of its device
    /// interrupts arrives (the set may then be empty; the handler has run
    /// before the call returns if interrupts are enabled). The
    /// events returned are no longer pending (a signal is seen once; one
    /// raised again while the subject runs is returned by the next `wait`).
    pub fn wait(&self) -> Result<PendingSet, NotGranted> {
        let event = self.granted(KernelActionCode::Sleep)?;
        Ok(PendingSet(crate::arch::vmcall_result(u64::from(
            event.get(),
        ))))
    }

    /// Gives up the rest of the minor frame (the `yield` action); returns
    /// at the subject's next turn.
    pub fn yield_now(&self) -> Result<(), NotGranted> {
        raise(self.granted(KernelActionCode::Yield)?);
        Ok(())
    }

    /// Unmasks the subject's level-triggered IRQ lines (the `unmask_irq`
    /// action): the kernel masks a level line from its interrupt on until
    /// its owner has handled the device and says so (docs/sdk.md,
    /// "Interrupts"). Edge-triggered lines are never masked.
    pub fn unmask_irq(&self) -> Result<(), NotGranted> {
        raise(self.granted(KernelActionCode::UnmaskIrq)?);
        Ok(())
    }

    /// Powers the machine off (the `poweroff` action). Returns only if the
    /// policy does not grant it.
    pub fn poweroff(&self) -> NotGranted {
        self.never_returns(KernelActionCode::Poweroff)
    }

    /// Resets the machine (the `reboot` action). Returns only if the policy
    /// does not grant it.
    pub fn reboot(&self) -> NotGranted {
        self.never_returns(KernelActionCode::Reboot)
    }

    /// Stops the system, reporting a panic requested by this subject (the
    /// `panic` action). Returns only if the policy does not grant it.
    pub fn panic_system(&self) -> NotGranted {
        self.never_returns(KernelActionCode::Panic)
    }

    /// Asks for the next plan (the `next_plan` action): at the end of the
    /// current major frame every CPU moves on to the next major frame of
    /// the policy's list (after the last, the first). Returns at once; the
    /// subject goes on running in the current plan until then.
    pub fn next_plan(&self) -> Result<(), NotGranted> {
        raise(self.granted(KernelActionCode::NextPlan)?);
        Ok(())
    }

    fn never_returns(&self, action: KernelActionCode) -> NotGranted {
        if let Ok(event) = self.granted(action) {
            raise(event);
        }
        NotGranted(action)
    }
}

impl Info<'_> {
    /// The subject's kernel events as typed calls ([`Kernel::from_info`]).
    pub fn kernel(&self) -> Kernel {
        Kernel::from_info(self)
    }
}

/// Reads the time-stamp counter (in Bochs: one tick per instruction).
pub fn rdtsc() -> u64 {
    crate::arch::rdtsc()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::info::tests::PageBuilder;

    #[test]
    fn pending_sets() {
        let set = PendingSet::from_bits(1 | 1 << 9 | 1 << 63);
        assert_eq!(set.len(), 3);
        assert!(!set.is_empty() && PendingSet::EMPTY.is_empty());
        assert!(set.contains(TargetEventId::new(9).unwrap()));
        assert!(!set.contains(TargetEventId::new(8).unwrap()));
        let numbers: std::vec::Vec<u8> = set.iter().map(TargetEventId::get).collect();
        assert_eq!(numbers, [0, 9, 63]);
        let wake = TargetEvent {
            id: TargetEventId::new(63).unwrap(),
            vector: None,
        };
        assert!(set.has(wake));
        assert_eq!(set.bits(), 1 | 1 << 9 | 1 << 63);
    }

    #[test]
    fn kernel_calls_are_found_by_action() {
        let b = PageBuilder::new("display")
            .add("nap", 3, 0, 4, 0, 0, 0)
            .action(KernelActionCode::Sleep as u8)
            .add("halt", 3, 0, 0, 0, 0, 0)
            .action(KernelActionCode::Poweroff as u8);
        let kernel = Info::parse(b.bytes()).unwrap().kernel();
        assert_eq!(kernel.event(KernelActionCode::Sleep), SourceEventId::new(4));
        assert_eq!(
            kernel.event(KernelActionCode::Poweroff),
            SourceEventId::new(0)
        );
        // Not granted: the typed call does nothing (no hypercall, which
        // would fault on the host) and says so.
        assert_eq!(kernel.yield_now(), Err(NotGranted(KernelActionCode::Yield)));
        assert_eq!(kernel.reboot(), NotGranted(KernelActionCode::Reboot));
        assert_eq!(kernel.panic_system(), NotGranted(KernelActionCode::Panic));
    }
}
