//! The septum command-line tool.
fn main() {}
