//! The registry over real sockets: a server on port 0, tonic clients, and the
//! registration / watch helpers the other processes use. Every wait is bounded and
//! asserts an eventual outcome, never a speed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use liner_discovery::client::{Credential, Registrar, Registration, watch_service};
use liner_discovery::proto::discovery_client::DiscoveryClient;
use liner_discovery::proto::{
    DeregisterRequest, HeartbeatRequest, Instance, ListRequest, RegisterRequest, WatchRequest, WatchResponse,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

const DEADLINE: Duration = Duration::from_secs(20);

struct Registry {
    addr: SocketAddr,
    token: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Registry {
    async fn start_at(addr: SocketAddr, ttl_secs: u64) -> Self {
        let mut settings = liner_discovery::Settings::new(addr);
        settings.default_ttl_secs = ttl_secs;
        Self::start_with(settings).await
    }

    /// A registry serving on `listener`, which the test has held (and accepted on) so far.
    async fn start_on(listener: tokio::net::TcpListener, ttl_secs: u64) -> Self {
        let addr = listener.local_addr().expect("addr");
        let mut settings = liner_discovery::Settings::new(addr);
        settings.default_ttl_secs = ttl_secs;
        let running = liner_discovery::build_on(settings, listener).await.expect("registry on the held listener");
        Self::run(running)
    }

    async fn start_with(settings: liner_discovery::Settings) -> Self {
        // The port of a registry that just stopped may take a moment to free up.
        let mut tries = 0;
        let running = loop {
            match liner_discovery::build(settings.clone()).await {
                Ok(r) => break r,
                Err(e) if tries < 50 => {
                    tries += 1;
                    eprintln!("bind retry: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot start registry: {e}"),
            }
        };
        Self::run(running)
    }

    fn run(running: liner_discovery::Running) -> Self {
        let addr = running.addr();
        let token = CancellationToken::new();
        let task = tokio::spawn(running.run_until(token.clone()));
        Self { addr, token, task }
    }

    async fn start() -> Self {
        Self::start_at(([127, 0, 0, 1], 0).into(), 10).await
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn client(&self) -> DiscoveryClient<Channel> {
        DiscoveryClient::connect(self.url()).await.expect("connect to registry")
    }

    async fn stop(self) {
        self.token.cancel();
        let stopped = tokio::time::timeout(DEADLINE, self.task).await.expect("registry stops in time");
        stopped.expect("registry task").expect("registry ran cleanly");
    }
}

fn instance(service: &str, id: &str, port: u16) -> Instance {
    Instance {
        service: service.into(),
        instance_id: id.into(),
        address: format!("127.0.0.1:{port}"),
        metadata: HashMap::from([("zone".to_owned(), "a".to_owned())]),
    }
}

fn ids(msg: &WatchResponse) -> Vec<&str> {
    msg.instances.iter().map(|i| i.instance_id.as_str()).collect()
}

async fn next(stream: &mut tonic::Streaming<WatchResponse>) -> WatchResponse {
    tokio::time::timeout(DEADLINE, stream.message())
        .await
        .expect("watch message in time")
        .expect("watch stream healthy")
        .expect("watch stream open")
}

/// Waits until `check` holds for the list of `service`.
async fn eventually_listed(client: &mut DiscoveryClient<Channel>, service: &str, check: impl Fn(&[Instance]) -> bool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Ok(res) = client.list(ListRequest { service: service.into() }).await
            && check(&res.into_inner().instances)
        {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{service} never reached the expected set");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn watch_sees_full_set_then_every_change() {
    let registry = Registry::start().await;
    let mut client = registry.client().await;
    let mut watch = client.watch(WatchRequest { service: "review".into() }).await.unwrap().into_inner();
    assert!(ids(&next(&mut watch).await).is_empty(), "first message is the (empty) full set");

    let a = client
        .register(RegisterRequest { instance: Some(instance("review", "a", 1001)), ttl_seconds: 30 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(a.ttl_seconds, 30);
    assert_eq!(ids(&next(&mut watch).await), ["a"]);
    // Another service's change is not sent to this watcher.
    client.register(RegisterRequest { instance: Some(instance("forum", "f", 1003)), ttl_seconds: 30 }).await.unwrap();
    client.register(RegisterRequest { instance: Some(instance("review", "b", 1002)), ttl_seconds: 0 }).await.unwrap();
    let both = next(&mut watch).await;
    assert_eq!(ids(&both), ["a", "b"]);
    assert_eq!(both.instances[0].metadata.get("zone").map(String::as_str), Some("a"));

    let listed = client.list(ListRequest { service: "review".into() }).await.unwrap().into_inner();
    assert_eq!(listed.instances.len(), 2);

    // A late subscriber gets the full set at once.
    let mut late = client.watch(WatchRequest { service: "review".into() }).await.unwrap().into_inner();
    assert_eq!(ids(&next(&mut late).await), ["a", "b"]);

    let removed = client.deregister(DeregisterRequest { lease_id: a.lease_id.clone() }).await.unwrap().into_inner();
    assert!(removed.removed);
    assert_eq!(ids(&next(&mut watch).await), ["b"]);
    assert_eq!(ids(&next(&mut late).await), ["b"]);
    let again = client.deregister(DeregisterRequest { lease_id: a.lease_id }).await.unwrap().into_inner();
    assert!(!again.removed, "deregistering twice is not an error");
    registry.stop().await;
}

#[tokio::test]
async fn a_lease_without_heartbeats_expires() {
    let registry = Registry::start().await;
    let mut client = registry.client().await;
    let mut watch = client.watch(WatchRequest { service: "forum".into() }).await.unwrap().into_inner();
    next(&mut watch).await;
    client
        .register(RegisterRequest { instance: Some(instance("forum", "short", 2001)), ttl_seconds: 1 })
        .await
        .unwrap();
    let kept = client
        .register(RegisterRequest { instance: Some(instance("forum", "kept", 2002)), ttl_seconds: 1 })
        .await
        .unwrap()
        .into_inner();
    let mut seen = next(&mut watch).await;
    while seen.instances.len() < 2 {
        seen = next(&mut watch).await;
    }
    // Keep one alive with heartbeats; the other must disappear on its own.
    let mut hb = client.clone();
    let beat = tokio::spawn(async move {
        loop {
            let _ = hb.heartbeat(HeartbeatRequest { lease_id: kept.lease_id.clone(), registration: None }).await;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    loop {
        let msg = next(&mut watch).await;
        if ids(&msg) == ["kept"] {
            break;
        }
    }
    beat.abort();
    registry.stop().await;
}

#[tokio::test]
async fn heartbeat_for_an_unknown_lease() {
    let registry = Registry::start().await;
    let mut client = registry.client().await;
    let missing = client.heartbeat(HeartbeatRequest { lease_id: "gone".into(), registration: None }).await;
    assert_eq!(missing.unwrap_err().code(), tonic::Code::NotFound);
    let registration = RegisterRequest { instance: Some(instance("review", "r1", 3001)), ttl_seconds: 5 };
    let res = client
        .heartbeat(HeartbeatRequest { lease_id: "gone".into(), registration: Some(registration) })
        .await
        .unwrap()
        .into_inner();
    assert!(res.reregistered);
    assert_eq!(res.lease_id, "gone", "the lease keeps the id the instance knows");
    let listed = client.list(ListRequest { service: "review".into() }).await.unwrap().into_inner();
    assert_eq!(listed.instances.len(), 1);
    registry.stop().await;
}

#[tokio::test]
async fn bad_requests_are_invalid_argument() {
    let registry = Registry::start().await;
    let mut client = registry.client().await;
    let bad = client.register(RegisterRequest { instance: Some(instance("Bad Name", "x", 1)), ttl_seconds: 1 }).await;
    assert_eq!(bad.unwrap_err().code(), tonic::Code::InvalidArgument);
    let none = client.register(RegisterRequest { instance: None, ttl_seconds: 1 }).await;
    assert_eq!(none.unwrap_err().code(), tonic::Code::InvalidArgument);
    let mut no_port = instance("review", "x", 1);
    no_port.address = "localhost".into();
    let bad = client.register(RegisterRequest { instance: Some(no_port), ttl_seconds: 1 }).await;
    assert_eq!(bad.unwrap_err().code(), tonic::Code::InvalidArgument);
    registry.stop().await;
}

#[tokio::test]
async fn health_is_served() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    let registry = Registry::start().await;
    let channel = tonic::transport::Endpoint::from_shared(registry.url()).unwrap().connect().await.unwrap();
    let mut health = HealthClient::new(channel);
    for service in ["", "discovery.v1.Discovery"] {
        let res = health.check(HealthCheckRequest { service: service.into() }).await.unwrap().into_inner();
        assert_eq!(res.status(), ServingStatus::Serving, "service {service:?}");
    }
    registry.stop().await;
}

#[tokio::test]
async fn registrar_registers_heartbeats_and_deregisters() {
    let registry = Registry::start().await;
    let mut client = registry.client().await;
    let token = CancellationToken::new();
    // A long TTL: if the instance disappears below, it was deregistered, not expired.
    let registration = Registration::new("review", "127.0.0.1:4001").with_ttl(Duration::from_secs(60));
    let registrar = Registrar::new(&registry.url(), registration, &Default::default()).unwrap();
    let task = tokio::spawn(registrar.run(token.clone()));
    eventually_listed(&mut client, "review", |set| set.len() == 1 && set[0].address == "127.0.0.1:4001").await;
    token.cancel();
    tokio::time::timeout(DEADLINE, task).await.expect("registrar stops").unwrap();
    let listed = client.list(ListRequest { service: "review".into() }).await.unwrap().into_inner();
    assert!(listed.instances.is_empty(), "deregistered on cancel");
    registry.stop().await;
}

/// The registry's port is held from the start, with no registry behind it: each
/// connection is accepted and dropped, so every attempt of the registrar fails. Once it
/// has tried twice (it is provably retrying), the same listener is handed to the
/// registry, which the registrar then registers with. No port is let go and bound
/// again, and nothing waits a fixed time.
#[tokio::test]
async fn registrar_retries_until_the_registry_is_up() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let token = CancellationToken::new();
    let registration = Registration::new("forum", "127.0.0.1:4002").with_ttl(Duration::from_secs(3));
    let registrar = Registrar::new(&format!("http://{addr}"), registration, &Default::default()).unwrap();
    let task = tokio::spawn(registrar.run(token.clone()));
    for attempt in 1..=2 {
        let accepted = tokio::time::timeout(DEADLINE, listener.accept()).await;
        let (conn, _) = accepted.unwrap_or_else(|_| panic!("registrar attempt {attempt} within {DEADLINE:?}")).unwrap();
        drop(conn);
    }
    let registry = Registry::start_on(listener, 10).await;
    let mut client = registry.client().await;
    eventually_listed(&mut client, "forum", |set| set.len() == 1).await;
    token.cancel();
    tokio::time::timeout(DEADLINE, task).await.expect("registrar stops").unwrap();
    registry.stop().await;
}

/// A registry restart loses every lease; the next heartbeats rebuild the set, and a
/// watcher keeps its last known set in between.
#[tokio::test]
async fn state_is_rebuilt_after_a_registry_restart() {
    let first = Registry::start_at(([127, 0, 0, 1], 0).into(), 2).await;
    let addr = first.addr;
    let url = first.url();
    let token = CancellationToken::new();
    for port in [5001, 5002] {
        let registration = Registration::new("review", format!("127.0.0.1:{port}")).with_ttl(Duration::from_secs(2));
        tokio::spawn(Registrar::new(&url, registration, &Default::default()).unwrap().run(token.clone()));
    }
    let mut watched = watch_service(&url, Credential::none(), &Default::default(), "review", token.clone()).unwrap();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while watched.borrow().as_ref().is_none_or(|set| set.len() < 2) {
        tokio::time::timeout_at(deadline, watched.changed()).await.expect("both registered").unwrap();
    }

    first.stop().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(watched.borrow().as_ref().map(|s| s.len()), Some(2), "last known set kept while the registry is down");

    let second = Registry::start_at(addr, 2).await;
    let mut client = second.client().await;
    eventually_listed(&mut client, "review", |set| set.len() == 2).await;
    // Through the restart and the incomplete phase the watcher never lost an instance.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        assert_eq!(watched.borrow().as_ref().map(|s| s.len()), Some(2));
        let complete = client.list(ListRequest { service: "review".into() }).await.unwrap().into_inner().complete;
        if complete {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "registry never became complete");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    token.cancel();
    second.stop().await;
}

#[tokio::test]
async fn watcher_sees_an_expired_instance_leave_after_the_registry_is_complete() {
    let registry = Registry::start_at(([127, 0, 0, 1], 0).into(), 1).await;
    let url = registry.url();
    let token = CancellationToken::new();
    let mut watched = watch_service(&url, Credential::none(), &Default::default(), "forum", token.clone()).unwrap();
    let mut client = registry.client().await;
    client
        .register(RegisterRequest { instance: Some(instance("forum", "lonely", 6001)), ttl_seconds: 1 })
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut saw = false;
    loop {
        let len = watched.borrow().as_ref().map(|s| s.len());
        saw |= len == Some(1);
        if saw && len == Some(0) {
            break;
        }
        tokio::time::timeout_at(deadline, watched.changed()).await.expect("expiry seen by the watcher").unwrap();
    }
    token.cancel();
    registry.stop().await;
}

/// A client not written in Rust (Python grpcio) registers, watches and health-checks
/// the registry. Skips only when grpcio cannot be installed (no network for pip).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_grpcio_client_is_wire_compatible() {
    let registry = Registry::start().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/grpc_compat.py");
    let run =
        tokio::process::Command::new("python3").arg(script).arg(registry.addr.to_string()).kill_on_drop(true).output();
    // First run may install grpcio into target/; later runs take seconds.
    let output = match tokio::time::timeout(Duration::from_secs(900), run).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => {
            eprintln!("SKIP python_grpcio_client_is_wire_compatible: cannot run python3 ({e})");
            registry.stop().await;
            return;
        }
        Err(_) => panic!("grpc_compat.py timed out"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    if output.status.code() == Some(3) {
        eprintln!("SKIP python_grpcio_client_is_wire_compatible: pip could not install grpcio");
        registry.stop().await;
        return;
    }
    assert!(output.status.success(), "grpc_compat.py failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("grpc wire compatibility: PASS"));
    registry.stop().await;
}

/// An HTTP service can serve grpc.health.v1 next to its REST routes on one port.
#[tokio::test]
async fn http_services_can_serve_grpc_health_on_their_port() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    let (reporter, health) = liner_discovery::grpc_health::router("review").await;
    let app = axum::Router::new().route("/hello", axum::routing::get(|| async { "hi" })).merge(health);
    let bound = liner_shared::server::Bound::bind(([127, 0, 0, 1], 0).into(), "test").await.unwrap();
    let addr = bound.addr();
    let token = CancellationToken::new();
    let server = tokio::spawn(bound.serve(app, token.clone()));

    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    let mut client = HealthClient::new(channel);
    let check = async |client: &mut HealthClient<tonic::transport::Channel>, service: &str| {
        client.check(HealthCheckRequest { service: service.into() }).await.unwrap().into_inner().status()
    };
    assert_eq!(check(&mut client, "").await, ServingStatus::Serving);
    assert_eq!(check(&mut client, "review").await, ServingStatus::Serving);
    reporter.set_service_status("review", tonic_health::ServingStatus::NotServing).await;
    assert_eq!(check(&mut client, "review").await, ServingStatus::NotServing);
    token.cancel();
    drop(client);
    let _ = tokio::time::timeout(DEADLINE, server).await;
}

#[tokio::test]
async fn reflection_lists_the_services() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let registry = Registry::start().await;
    let channel = tonic::transport::Endpoint::from_shared(registry.url()).unwrap().connect().await.unwrap();
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = client.server_reflection_info(tokio_stream::iter([request])).await.unwrap().into_inner();
    let answer = tokio::time::timeout(DEADLINE, answers.message()).await.unwrap().unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("unexpected reflection answer {answer:?}")
    };
    let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"discovery.v1.Discovery"), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");
    drop(answers);
    registry.stop().await;
}

const SECRET: &str = "a-test-secret-0123456789";

/// A request carrying `authorization: Bearer <token>` when a token is given.
fn req<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    match token {
        Some(t) => with_token(message, t),
        None => tonic::Request::new(message),
    }
}

/// A request carrying `authorization: Bearer <token>`.
fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    req.metadata_mut().insert("authorization", format!("Bearer {token}").parse().expect("ascii"));
    req
}

#[tokio::test]
async fn a_registry_with_a_token_refuses_every_call_without_it_and_changes_nothing() {
    let mut settings = liner_discovery::Settings::new(([127, 0, 0, 1], 0).into());
    settings.token = liner_shared::config::DiscoveryToken::given(SECRET);
    let registry = Registry::start_with(settings).await;
    let mut client = registry.client().await;
    let fake = || RegisterRequest { instance: Some(instance("review", "fake", 9)), ttl_seconds: 10 };

    // No token, a wrong one, and a truncated one: UNAUTHENTICATED, whatever the call.
    for token in [None, Some("a-wrong-secret-0123456789"), Some(&SECRET[..SECRET.len() - 1])] {
        let refused = |r: Result<_, tonic::Status>| r.expect_err("refused").code();
        assert_eq!(refused(client.register(req(fake(), token)).await.map(|_| ())), tonic::Code::Unauthenticated);
        let beat = HeartbeatRequest { lease_id: "x".into(), registration: Some(fake()) };
        assert_eq!(refused(client.heartbeat(req(beat, token)).await.map(|_| ())), tonic::Code::Unauthenticated);
        let bye = DeregisterRequest { lease_id: "x".into() };
        assert_eq!(refused(client.deregister(req(bye, token)).await.map(|_| ())), tonic::Code::Unauthenticated);
        let list = ListRequest { service: "review".into() };
        assert_eq!(refused(client.list(req(list, token)).await.map(|_| ())), tonic::Code::Unauthenticated);
        let watch = WatchRequest { service: "review".into() };
        assert_eq!(refused(client.watch(req(watch, token)).await.map(|_| ())), tonic::Code::Unauthenticated);
    }

    // Nothing was registered by the refused calls; a registrar with the token is.
    let listed = client.list(with_token(ListRequest { service: "review".into() }, SECRET)).await.expect("list");
    assert!(listed.into_inner().instances.is_empty(), "a refused register changed nothing");
    let stop = CancellationToken::new();
    let credential = Credential::new(Some(SECRET)).expect("credential");
    let registrar = Registrar::new(&registry.url(), Registration::new("review", "127.0.0.1:9100"), &Default::default())
        .expect("registrar")
        .with_credential(credential.clone());
    let task = tokio::spawn(registrar.run(stop.clone()));
    let mut watched =
        watch_service(&registry.url(), credential, &Default::default(), "review", stop.clone()).expect("watch");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let seen =
            watched.borrow_and_update().as_ref().is_some_and(|set| set.iter().any(|i| i.address == "127.0.0.1:9100"));
        if seen {
            break;
        }
        tokio::time::timeout_at(deadline, watched.changed()).await.expect("registered in time").expect("watching");
    }
    stop.cancel();
    let _ = task.await;
    registry.stop().await;
}

#[tokio::test]
async fn open_reads_let_list_through_but_not_register() {
    let mut settings = liner_discovery::Settings::new(([127, 0, 0, 1], 0).into());
    settings.token = liner_shared::config::DiscoveryToken::given(SECRET);
    settings.open_reads = true;
    let registry = Registry::start_with(settings).await;
    let mut client = registry.client().await;
    client.list(ListRequest { service: "review".into() }).await.expect("an open read");
    let refused = client
        .register(RegisterRequest { instance: Some(instance("review", "fake", 9)), ttl_seconds: 10 })
        .await
        .expect_err("a write still needs the token");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    registry.stop().await;
}

#[test]
fn a_short_or_unreadable_token_is_a_configuration_error() {
    use liner_shared::config::DiscoveryToken;
    assert!(DiscoveryToken::given("short").resolve().is_err());
    let missing = DiscoveryToken { token: None, token_file: Some("/nonexistent/liner-token".into()) };
    assert!(missing.resolve().is_err());
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{SECRET}\n")).expect("write");
    let from_file = DiscoveryToken { token: None, token_file: Some(file) };
    assert_eq!(from_file.resolve().expect("resolves").as_deref(), Some(SECRET), "trimmed");
    assert_eq!(DiscoveryToken::default().resolve().expect("none"), None);
    let generated = DiscoveryToken::generate().expect("generated").resolve().expect("valid").expect("some");
    assert_eq!(generated.len(), 32);
}
