//! `grpc.health.v1.Health` for the HTTP services, on their own port.
//!
//! The contract asks every service to serve the standard gRPC health check, so
//! orchestrators and gRPC tooling can probe any Liner process alike. An HTTP service
//! merges [`router`] into its axum router (axum's `http2` feature lets one port speak
//! HTTP/1.1 REST and h2c gRPC) and flips the status through the returned reporter,
//! e.g. to not-serving when it starts draining.

use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// The health service with `""` (the whole server) and `service` set to SERVING. The
/// router has no fallback of its own (tonic's `Routes` would add one), so it merges into
/// a service's router that has.
pub async fn router(service: &str) -> (HealthReporter, axum::Router) {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_service_status("", ServingStatus::Serving).await;
    reporter.set_service_status(service, ServingStatus::Serving).await;
    let path = format!("/{}/{{*method}}", name_of(&health));
    (reporter, axum::Router::new().route_service(&path, health))
}

fn name_of<S: tonic::server::NamedService>(_: &S) -> &'static str {
    S::NAME
}
