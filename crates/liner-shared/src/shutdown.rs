//! One shutdown story per process: SIGINT or SIGTERM cancels a token; every server and
//! background loop watches a child of it and drains.
//!
//! A rolling restart must fail no request, so stopping has three steps:
//! 1. at the signal the process is *draining*: `/readyz` answers 503 (Kubernetes takes
//!    the pod out of its Service) and each service deregisters from discovery (the
//!    gateway stops picking it), while it keeps serving whatever still arrives;
//! 2. after [`Drain::period`] (`--drain-secs`; 0 in `liner up` and by default) the
//!    listener closes and every connection finishes its request in flight;
//! 3. requests still running after [`IN_FLIGHT_DEADLINE`] are abandoned.
//!
//! Draining is a property of the process (the signal is), so the flag is process-wide:
//! every readiness check in the process reads it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How long requests in flight may still run once the listener has closed.
pub const IN_FLIGHT_DEADLINE: Duration = Duration::from_secs(15);

static DRAINING: AtomicBool = AtomicBool::new(false);

/// True once the process was asked to stop: readiness checks answer 503.
pub fn is_draining() -> bool {
    DRAINING.load(Ordering::Relaxed)
}

/// How long a service keeps serving after the stop signal (see the module doc).
#[derive(clap::Args, Debug, Clone, Copy, Default)]
pub struct Drain {
    /// Seconds to keep serving after SIGTERM with `/readyz` at 503 and the instance
    /// deregistered, so load balancers stop sending before the listener closes.
    #[arg(long = "drain-secs", env = "LINER_DRAIN_SECS", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=300))]
    pub secs: u64,
}

impl Drain {
    pub fn period(&self) -> Duration {
        Duration::from_secs(self.secs)
    }

    /// A token cancelled [`Self::period`] after `stop`: serve until it.
    pub fn serve_until(&self, stop: &CancellationToken) -> CancellationToken {
        let period = self.period();
        if period.is_zero() {
            return stop.clone();
        }
        let serving = CancellationToken::new();
        let (stop, done) = (stop.clone(), serving.clone());
        tokio::spawn(async move {
            tokio::select! {
                () = stop.cancelled() => {}
                () = done.cancelled() => return,
            }
            tracing::info!(secs = period.as_secs(), "draining: not ready, still serving");
            tokio::time::sleep(period).await;
            done.cancel();
        });
        serving
    }
}

/// Resolves on Ctrl-C or SIGTERM (Kubernetes sends SIGTERM).
pub async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// A token cancelled when the process is asked to stop.
pub fn token_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let child = token.clone();
    tokio::spawn(async move {
        signal().await;
        tracing::info!("shutdown requested");
        DRAINING.store(true, Ordering::Relaxed);
        child.cancel();
    });
    token
}
