//! The `aos` command-line tool.

fn main() {}
