//! The allocator's own view of the heap, as gauges on `/metrics` (and a debug log line):
//! how much the program holds (`allocated`), how much the allocator keeps resident for
//! it (`resident`, the part of RSS that is heap), and its bookkeeping (`metadata`). The
//! gap between the first two is memory the allocator has not yet given back; a gap that
//! stays is fragmentation, a growing `allocated` is a leak. jemalloc only (the default
//! build); glibc's malloc has no equivalent interface.

use std::time::Duration;

use tikv_jemalloc_ctl::{epoch, stats};

const EVERY: Duration = Duration::from_secs(5);

/// Publishes the gauges every few seconds from a small thread of its own.
pub fn start_reporting() {
    let started = std::thread::Builder::new().name("heap-stats".into()).spawn(|| {
        loop {
            report();
            std::thread::sleep(EVERY);
        }
    });
    if let Err(e) = started {
        tracing::warn!(error = %e, "no heap statistics thread");
    }
}

fn report() {
    // Statistics are a snapshot taken when the epoch advances.
    if epoch::advance().is_err() {
        return;
    }
    let read = |what: &str, value: Result<usize, tikv_jemalloc_ctl::Error>| {
        let value = value.unwrap_or(0);
        metrics::gauge!("heap_bytes", "kind" => what.to_owned()).set(value as f64);
        value
    };
    let allocated = read("allocated", stats::allocated::read());
    let active = read("active", stats::active::read());
    let resident = read("resident", stats::resident::read());
    let metadata = read("metadata", stats::metadata::read());
    tracing::debug!(allocated, active, resident, metadata, "heap");
}

/// With the `heap-profiling` build and `MALLOC_CONF=prof:true`: every SIGUSR2 writes a
/// heap profile of what is live now (sampled) to `$LINER_HEAP_PROFILE_DIR` (default the
/// temp dir) as `liner.<pid>.<n>.heap`, for `jeprof` (jemalloc's `bin/jeprof.in`).
#[cfg(feature = "heap-profiling")]
pub fn dump_on_signal() {
    use tikv_jemalloc_ctl::{Access, AsName};
    let dir = std::env::var_os("LINER_HEAP_PROFILE_DIR").map_or_else(std::env::temp_dir, std::path::PathBuf::from);
    tokio::spawn(async move {
        let Ok(mut signals) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined2()) else {
            return;
        };
        let mut n = 0u32;
        while signals.recv().await.is_some() {
            n += 1;
            let path = dir.join(format!("liner.{}.{n}.heap\0", std::process::id()));
            // jemalloc keeps a pointer to the name only for the call; leaking one short
            // string per dump keeps the safe `'static` API.
            let name: &'static [u8] = Box::leak(path.to_string_lossy().into_owned().into_bytes().into_boxed_slice());
            match b"prof.dump\0".name().write(name) {
                Ok(()) => tracing::info!(path = %path.display(), "heap profile written"),
                Err(e) => tracing::warn!(error = %e, "heap profile not written (run with MALLOC_CONF=prof:true)"),
            }
        }
    });
}
