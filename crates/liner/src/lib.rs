//! The `liner` command: one binary whose subcommands start one service (for a
//! container) or the whole system (`up`, the embedded default). It only parses
//! configuration and wires services together; no business logic lives here.

pub mod cli;
pub mod deploy;
#[cfg(feature = "jemalloc")]
pub mod heap;
pub mod up;
