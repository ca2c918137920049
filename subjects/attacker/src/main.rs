//! The isolation attacker: one binary, one attack per subject name.
//!
//! Every attacker subject of a policy runs this binary (`binary="attacker"`);
//! the subject's name on its info page picks the attack from
//! [`scenarios::SCENARIOS`]. The attacker opens its `report` channel, runs
//! the attack once and parks. A name no scenario carries is a mistake in
//! the policy: the attacker then says so on its channel (`attacker: no
//! scenario named "NAME"`, which the victim relays) and parks, so the typo
//! shows in the test output instead of leaving a subject that quietly does
//! nothing.
//!
//! Every attacker subject thus carries every scenario: together they add
//! about 3 KiB of text, one page per attacker subject (measured in
//! docs/testing.md).
#![no_std]
#![no_main]

mod scenarios;

use attacker::Report;
use septum_sdk::Info;

septum_sdk::entry!(main);

fn main(info: Info<'static>) -> ! {
    let mut report = Report::open(&info);
    let name = info.name();
    match scenarios::find(name) {
        Some(attack) => attack(&info, &mut report),
        None => report.say(format_args!("attacker: no scenario named \"{name}\"")),
    }
    attacker::park(&info)
}
