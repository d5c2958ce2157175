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
    /// Run the catalogue service alone (albums, genres, search), or `catalog import FILE`.
    Catalog(CatalogCommand),
    /// Run the gateway alone.
    Gateway(liner_gateway::Settings),
    /// Run the service registry (gRPC discovery) alone.
    Discovery(liner_discovery::Settings),
    /// Apply one service's database migrations and exit (a deployment's migration Job;
    /// its replicas then start with `--migrations verify`).
    Migrate(crate::deploy::MigrateCommand),
    /// GET a local HTTP endpoint and exit 0 on a 2xx answer (the image's health check:
    /// its runtime has no shell or curl).
    Probe(crate::deploy::ProbeCommand),
}

/// `liner catalog [FLAGS]` serves; `liner catalog import FILE [FLAGS]` imports into the
/// same database (`--database-url`, or `catalog.db` in `--data-dir`) and exits.
#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct CatalogCommand {
    #[command(subcommand)]
    pub action: Option<CatalogAction>,
    #[command(flatten)]
    pub settings: liner_catalog::Settings,
}

#[derive(Subcommand, Debug)]
pub enum CatalogAction {
    /// Import MusicBrainz release groups (one JSON object per line): albums and EPs are
    /// kept, re-importing updates by MusicBrainz id, bad lines are counted and skipped.
    Import(liner_catalog::import::ImportSettings),
}
