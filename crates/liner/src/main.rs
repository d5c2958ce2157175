use std::process::ExitCode;

use clap::Parser;
use liner::cli::{CatalogAction, Cli, Command};
use liner_shared::shutdown;

/// jemalloc, configured at build time (`.cargo/config.toml`) to purge freed pages on a
/// background thread: see the `jemalloc` feature in Cargo.toml.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    liner_shared::telemetry::init();
    #[cfg(feature = "heap-profiling")]
    liner::heap::dump_on_signal();
    #[cfg(feature = "jemalloc")]
    liner::heap::start_reporting();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up(settings) => liner::up::run(settings).await,
        Command::Review(settings) => {
            run_one(liner_review::build(settings).await.map(|r| r.run_until(shutdown::token_on_signal()))).await
        }
        Command::Forum(settings) => {
            run_one(liner_forum::build(settings).await.map(|r| r.run_until(shutdown::token_on_signal()))).await
        }
        Command::Catalog(catalog) => match catalog.action {
            Some(CatalogAction::Import(import)) => liner_catalog::import::import_file(&import).await.map(|report| {
                println!("{report}");
            }),
            None => {
                run_one(liner_catalog::build(catalog.settings).await.map(|r| r.run_until(shutdown::token_on_signal())))
                    .await
            }
        },
        Command::Gateway(settings) => {
            run_one(liner_gateway::build(settings).await.map(|r| r.run_until(shutdown::token_on_signal()))).await
        }
        Command::Discovery(settings) => {
            run_one(liner_discovery::build(settings).await.map(|r| r.run_until(shutdown::token_on_signal()))).await
        }
        Command::Migrate(migrate) => migrate.run().await,
        Command::Probe(probe) => probe.run().await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, the whole cause chain.
            eprintln!("liner: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run_one(built: anyhow::Result<impl std::future::Future<Output = anyhow::Result<()>>>) -> anyhow::Result<()> {
    built?.await
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
