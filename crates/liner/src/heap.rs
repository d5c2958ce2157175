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
