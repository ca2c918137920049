//! Build orchestration.
fn main() {}
