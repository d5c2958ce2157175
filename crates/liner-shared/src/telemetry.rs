//! Structured logs. `LINER_LOG` (or `RUST_LOG`) sets the filter; `LINER_LOG_FORMAT=json`
//! switches to one JSON object per line for log collectors.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once; later calls (tests) are no-ops.
pub fn init() {
    let filter = std::env::var("LINER_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info,sqlx=warn,tower_http=warn".into());
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: a log file or collector gets plain text (and the
    // escape codes cost formatting time on every span and event).
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = if std::env::var("LINER_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().try_init()
    } else if ansi {
        builder.try_init()
    } else {
        builder.fmt_fields(plain_fields()).try_init()
    };
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
