//! Structured logs. `LINER_LOG` (or `RUST_LOG`) sets the filter; `LINER_LOG_FORMAT=json`
//! switches to one JSON object per line for log collectors.
//!
//! A filter that names only targets and levels (`info,sqlx=warn`, the usual case) is
//! applied as tracing-subscriber's static `Targets`; only one that also filters by span
//! or field (`[request{route=review}]=debug`) needs `EnvFilter`, which keeps a table of
//! live spans and takes its lock on every span's entry and exit. The gateway enters its
//! request span several times per request, so it pays that only when it is asked for.

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// Installs the global subscriber once; later calls (tests) are no-ops.
pub fn init() {
    let directives = std::env::var("LINER_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info,sqlx=warn,tower_http=warn".into());
    // Colours only on a terminal: a log file or collector gets plain text (and the
    // escape codes cost formatting time on every span and event).
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let format = tracing_subscriber::fmt::layer().with_target(false).with_ansi(ansi).with_writer(std::io::stderr);
    let format: Box<dyn Layer<Filtered> + Send + Sync> = if std::env::var("LINER_LOG_FORMAT").as_deref() == Ok("json") {
        Box::new(format.json())
    } else if ansi {
        Box::new(format)
    } else {
        Box::new(format.fmt_fields(plain_fields()))
    };
    let _ = tracing_subscriber::registry().with(filter(&directives)).with(format).try_init();
}

type Filtered = tracing_subscriber::layer::Layered<Box<dyn Layer<Registry> + Send + Sync>, Registry>;

/// `Targets` when the directives are only targets and levels, else `EnvFilter`
/// (`info` when they parse as neither).
fn filter(directives: &str) -> Box<dyn Layer<Registry> + Send + Sync> {
    // `Targets` would take `[span]` for a target's name: the span syntax decides first.
    let by_span = directives.contains(['[', '{']);
    match directives.parse::<Targets>() {
        Ok(targets) if !by_span => Box::new(targets),
        _ => Box::new(EnvFilter::try_new(directives).unwrap_or_else(|_| EnvFilter::new("info"))),
    }
}

/// The text format's fields without colours, written as `DefaultFields` writes them
/// (`name=value`, the message bare, `Debug` values). `DefaultFields` styles every field
/// name even with colours off (no escape codes, but a styling wrapper per field), and
/// the gateway formats a request span's fields on every request.
fn plain_fields() -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> + 'static {
    use tracing_subscriber::field::MakeExt;
    tracing_subscriber::fmt::format::debug_fn(|w, field, value| match field.name() {
        "message" => write!(w, "{value:?}"),
        name => write!(w, "{}={value:?}", name.strip_prefix("r#").unwrap_or(name)),
    })
    .delimited(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    fn under<T>(directives: &str, check: impl FnOnce() -> T) -> T {
        tracing::subscriber::with_default(tracing_subscriber::registry().with(filter(directives)), check)
    }

    #[test]
    fn target_and_level_directives_filter_by_target() {
        under("info,sqlx=warn", || {
            assert!(tracing::enabled!(Level::INFO));
            assert!(!tracing::enabled!(Level::DEBUG));
            assert!(tracing::enabled!(target: "sqlx", Level::WARN));
            assert!(!tracing::enabled!(target: "sqlx", Level::INFO));
        });
    }

    #[test]
    fn span_directives_still_filter_by_span() {
        under("warn,[request]=debug", || {
            assert!(!tracing::enabled!(Level::INFO), "outside the span: warn");
            let span = tracing::warn_span!("request");
            let _entered = span.enter();
            assert!(tracing::enabled!(Level::DEBUG), "inside the span: debug");
        });
    }
}
