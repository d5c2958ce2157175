//! Command-line definition. Every flag also reads an environment variable, shown in
//! `liner <command> --help`.

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "liner", version, about = "Liner: rate and review albums, talk about them live.")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the whole system on this machine (SQLite files, in-process fan-out).
    Up(crate::up::UpSettings),
    /// Run the review service alone (users, login, reviews).
    Review(liner_review::Settings),
    /// Run the forum service alone (rooms, live chat over WebSocket).
    Forum(liner_forum::Settings),
    /// Run the gateway alone.
    Gateway(liner_gateway::Settings),
    /// Run the service registry (gRPC discovery) alone.
    Discovery(liner_discovery::Settings),
}
