//! Structured logs. `LINER_LOG` (or `RUST_LOG`) sets the filter; `LINER_LOG_FORMAT=json`
//! switches to one JSON object per line for log collectors.
//!
//! A filter that names only targets and levels (`info,sqlx=warn`, the usual case) is
//! applied as tracing-subscriber's static `Targets`; only one that also filters by span
//! or field (`[request{route=review}]=debug`) needs `EnvFilter`, which keeps a table of
//! live spans and takes its lock on every span's entry and exit. The gateway enters its
//! request span several times per request, so it pays that only when it is asked for.

use std::cell::RefCell;
use std::fmt;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;
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
        Box::new(format.fmt_fields(PlainFields))
    };
    let _ = tracing_subscriber::registry().with(filter(&directives)).with(format).try_init();
}

type Filtered = tracing_subscriber::layer::Layered<Box<dyn Layer<Registry> + Send + Sync>, Registry>;

/// `Targets` when the directives are only targets and levels, else `EnvFilter`
/// (`info` when they parse as neither).
fn filter(directives: &str) -> Box<dyn Layer<Registry> + Send + Sync> {
    // `Targets` would take `[span]` for a target's name: the span syntax decides first.
    if !directives.contains(['[', '{'])
        && let Ok(targets) = directives.parse::<Targets>()
    {
        return Box::new(targets);
    }
    Box::new(EnvFilter::try_new(directives).unwrap_or_else(|_| EnvFilter::new("info")))
}

/// The text format's fields without colours, written as `DefaultFields` writes them
/// (`name=value`, space-separated, the message bare, `Debug` values), minus the styling
/// wrapper `DefaultFields` puts around every field name even with colours off.
///
/// Written by hand (tracing-subscriber's `debug_fn` writes the same text) for one reason:
/// the fields are formatted into a per-thread buffer and handed to the writer in one
/// piece. A span keeps its formatted fields in a `String` of its own; written field by
/// field, that string grows by doubling, four or five reallocations for the gateway's
/// request span on every request; written at once, it is allocated at its size.
struct PlainFields;

impl<'w> FormatFields<'w> for PlainFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        thread_local! {
            static FIELDS: RefCell<String> = const { RefCell::new(String::new()) };
        }
        FIELDS.with(|buffer| match buffer.try_borrow_mut() {
            Ok(mut buffer) => {
                buffer.clear();
                let mut visitor = PlainVisitor { out: &mut *buffer, first: true, result: Ok(()) };
                fields.record(&mut visitor);
                visitor.result?;
                writer.write_str(&buffer)
            }
            // A value whose `Debug` logs while it is formatted: straight to the writer.
            Err(_) => {
                let mut visitor = PlainVisitor { out: &mut writer, first: true, result: Ok(()) };
                fields.record(&mut visitor);
                visitor.result
            }
        })
    }
}

struct PlainVisitor<'a, W: fmt::Write> {
    out: &'a mut W,
    first: bool,
    result: fmt::Result,
}

impl<W: fmt::Write> Visit for PlainVisitor<'_, W> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_err() {
            return;
        }
        let separator = if std::mem::take(&mut self.first) { "" } else { " " };
        // Name and separators as plain strings: only the value needs the formatter.
        let out = &mut *self.out;
        self.result = out.write_str(separator).and_then(|()| match field.name() {
            "message" => write!(out, "{value:?}"),
            name => {
                out.write_str(name.strip_prefix("r#").unwrap_or(name))?;
                out.write_char('=')?;
                write!(out, "{value:?}")
            }
        });
    }
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

    /// What the plain text format writes for a span and an event under it.
    fn plain_line(log: impl FnOnce()) -> String {
        let written = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = written.clone();
        let format = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .with_writer(move || Sink(sink.clone()))
            .fmt_fields(PlainFields);
        tracing::subscriber::with_default(tracing_subscriber::registry().with(format), log);
        String::from_utf8(written.lock().unwrap().clone()).unwrap()
    }

    struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn plain_fields_are_name_value_pairs_and_recorded_ones_follow() {
        let line = plain_line(|| {
            let span = tracing::info_span!("request", request_id = %"abc", route = %"review", upstream = tracing::field::Empty);
            let _entered = span.enter();
            span.record("upstream", tracing::field::display("127.0.0.1:1"));
            tracing::info!(status = 200, r#type = "x", "answered");
        });
        assert_eq!(
            line.trim_end(),
            r#" INFO request{request_id=abc route=review upstream=127.0.0.1:1}: answered status=200 type="x""#
        );
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
