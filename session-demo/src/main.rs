//! Demo service (work in progress).
fn main() {}
