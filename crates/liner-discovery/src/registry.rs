//! The lease table: which instances are alive, until when, and who is watching.
//!
//! Everything lives in memory behind one short-held mutex (no `.await` while it is
//! held). Expiry follows mini-redis's TTL shape: a `BTreeSet` of `(deadline, lease)`
//! ordered by time and one background task that sleeps until the earliest deadline,
//! woken early by a `Notify` when a registration adds an earlier one. Watchers get a
//! `tokio::sync::watch` channel per service holding the whole current set, so a slow
//! watcher only ever skips intermediate states, never the latest one.
//!
//! The registry is not durable on purpose: after a restart it is rebuilt from the
//! instances' next heartbeats (which carry their registration). Until one default TTL
//! has passed since start it reports itself as not `complete`.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::proto::{Instance, RegisterRequest};

/// Shortest and longest lease a client may ask for.
pub const MIN_TTL: Duration = Duration::from_secs(1);
pub const MAX_TTL: Duration = Duration::from_secs(300);

const MAX_METADATA: usize = 32;

/// One live registration.
struct Lease {
    instance: Instance,
    ttl: Duration,
    expires_at: Instant,
}

#[derive(Default)]
struct State {
    /// lease id → lease.
    leases: HashMap<String, Lease>,
    /// (service, instance id) → lease id: re-registering an instance replaces its lease.
    by_instance: HashMap<(String, String), String>,
    /// Expiry order.
    deadlines: BTreeSet<(Instant, String)>,
    /// service → current set, for watchers.
    watchers: HashMap<String, watch::Sender<Arc<Vec<Instance>>>>,
}

/// What a heartbeat did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renewed {
    pub lease_id: String,
    pub ttl: Duration,
    pub reregistered: bool,
}

pub struct Registry {
    state: Mutex<State>,
    wake_expiry: Notify,
    default_ttl: Duration,
    complete_at: Instant,
}

impl Registry {
    /// A registry granting `default_ttl` to clients that ask for none; it calls itself
    /// complete one default TTL after creation.
    pub fn new(default_ttl: Duration) -> Self {
        let default_ttl = default_ttl.clamp(MIN_TTL, MAX_TTL);
        Self {
            state: Mutex::new(State::default()),
            wake_expiry: Notify::new(),
            default_ttl,
            complete_at: Instant::now() + default_ttl,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// False while instances that were registered before a restart may not have
    /// heartbeated yet.
    pub fn complete(&self) -> bool {
        Instant::now() >= self.complete_at
    }

    /// When [`Self::complete`] turns true.
    pub fn complete_at(&self) -> Instant {
        self.complete_at
    }

    pub fn register(&self, req: RegisterRequest) -> Result<(String, Duration), Status> {
        self.register_as(liner_shared::new_id(), req)
    }

    fn register_as(&self, lease_id: String, req: RegisterRequest) -> Result<(String, Duration), Status> {
        let instance = req.instance.ok_or_else(|| Status::invalid_argument("instance is required"))?;
        validate(&instance)?;
        let ttl = match req.ttl_seconds {
            0 => self.default_ttl,
            secs => Duration::from_secs(u64::from(secs)).clamp(MIN_TTL, MAX_TTL),
        };
        let service = instance.service.clone();
        let key = (instance.service.clone(), instance.instance_id.clone());
        let mut state = self.lock();
        if let Some(old) = state.by_instance.remove(&key) {
            remove_lease(&mut state, &old);
        }
        // A reused lease id (re-registration through a heartbeat) must not point at
        // another instance's entry.
        remove_lease(&mut state, &lease_id);
        let expires_at = Instant::now() + ttl;
        state.deadlines.insert((expires_at, lease_id.clone()));
        state.by_instance.insert(key, lease_id.clone());
        tracing::info!(%service, instance = %instance.instance_id, address = %instance.address, "registered");
        state.leases.insert(lease_id.clone(), Lease { instance, ttl, expires_at });
        publish(&mut state, &service);
        drop(state);
        metrics::counter!("discovery_registrations_total").increment(1);
        self.wake_expiry.notify_one();
        Ok((lease_id, ttl))
    }

    /// Renews a lease; an unknown lease is re-created from `registration` when given.
    pub fn heartbeat(&self, lease_id: &str, registration: Option<RegisterRequest>) -> Result<Renewed, Status> {
        if lease_id.is_empty() || lease_id.len() > 128 {
            return Err(Status::invalid_argument("lease_id must be 1-128 characters"));
        }
        {
            let mut state = self.lock();
            if let Some(lease) = state.leases.get_mut(lease_id) {
                let old = lease.expires_at;
                lease.expires_at = Instant::now() + lease.ttl;
                let (new, ttl) = (lease.expires_at, lease.ttl);
                state.deadlines.remove(&(old, lease_id.to_owned()));
                state.deadlines.insert((new, lease_id.to_owned()));
                return Ok(Renewed { lease_id: lease_id.to_owned(), ttl, reregistered: false });
            }
        }
        let Some(registration) = registration else {
            return Err(Status::not_found("unknown lease; register again"));
        };
        let (lease_id, ttl) = self.register_as(lease_id.to_owned(), registration)?;
        Ok(Renewed { lease_id, ttl, reregistered: true })
    }

    /// Removes a lease now; false when it was already gone.
    pub fn deregister(&self, lease_id: &str) -> bool {
        let mut state = self.lock();
        let Some(service) = remove_lease(&mut state, lease_id) else { return false };
        tracing::info!(%service, lease = %lease_id, "deregistered");
        publish(&mut state, &service);
        true
    }

    /// The live instances of `service`, ordered by instance id.
    pub fn list(&self, service: &str) -> Vec<Instance> {
        snapshot(&self.lock(), service)
    }

    /// A channel holding the current set of `service`, updated on every change.
    pub fn subscribe(&self, service: &str) -> watch::Receiver<Arc<Vec<Instance>>> {
        let mut state = self.lock();
        // Forget channels nobody watches any more for services with no instance.
        let live: Vec<String> = state.leases.values().map(|l| l.instance.service.clone()).collect();
        state.watchers.retain(|name, tx| tx.receiver_count() > 0 || live.contains(name));
        if let Some(tx) = state.watchers.get(service) {
            return tx.subscribe();
        }
        let (tx, rx) = watch::channel(Arc::new(snapshot(&state, service)));
        state.watchers.insert(service.to_owned(), tx);
        rx
    }

    /// Removes every expired lease; returns the next deadline, if any.
    fn purge_expired(&self) -> Option<Instant> {
        let now = Instant::now();
        let mut state = self.lock();
        let mut touched = Vec::new();
        while let Some((deadline, lease_id)) = state.deadlines.first().cloned() {
            if deadline > now {
                return finish(&mut state, touched, Some(deadline));
            }
            state.deadlines.pop_first();
            if let Some(service) = remove_lease(&mut state, &lease_id) {
                tracing::warn!(%service, lease = %lease_id, "lease expired");
                metrics::counter!("discovery_expirations_total").increment(1);
                touched.push(service);
            }
        }
        return finish(&mut state, touched, None);

        fn finish(state: &mut State, touched: Vec<String>, next: Option<Instant>) -> Option<Instant> {
            for service in touched {
                publish(state, &service);
            }
            next
        }
    }

    /// Expires leases until `token` is cancelled.
    pub async fn expire_until(self: Arc<Self>, token: CancellationToken) {
        loop {
            let next = self.purge_expired();
            let sleep = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = token.cancelled() => return,
                () = sleep => {}
                () = self.wake_expiry.notified() => {}
            }
        }
    }
}

/// Removes a lease and its indexes; returns its service.
fn remove_lease(state: &mut State, lease_id: &str) -> Option<String> {
    let lease = state.leases.remove(lease_id)?;
    state.deadlines.remove(&(lease.expires_at, lease_id.to_owned()));
    let key = (lease.instance.service.clone(), lease.instance.instance_id.clone());
    if state.by_instance.get(&key).is_some_and(|id| id == lease_id) {
        state.by_instance.remove(&key);
    }
    Some(lease.instance.service)
}

fn snapshot(state: &State, service: &str) -> Vec<Instance> {
    let mut set: Vec<Instance> =
        state.leases.values().filter(|l| l.instance.service == service).map(|l| l.instance.clone()).collect();
    set.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    set
}

/// Tells the watchers of `service` about its current set, if it changed.
fn publish(state: &mut State, service: &str) {
    let set = snapshot(state, service);
    metrics::gauge!("discovery_instances", "service" => service.to_owned()).set(set.len() as f64);
    if let Some(tx) = state.watchers.get(service) {
        tx.send_if_modified(|current| {
            if **current == set {
                return false;
            }
            *current = Arc::new(set);
            true
        });
    }
}

fn validate(instance: &Instance) -> Result<(), Status> {
    let name_ok = |s: &str| {
        (1..=64).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-'))
    };
    if !name_ok(&instance.service) {
        return Err(Status::invalid_argument("service: 1-64 of [a-z0-9_.-]"));
    }
    if instance.instance_id.is_empty() || instance.instance_id.len() > 128 {
        return Err(Status::invalid_argument("instance_id: 1-128 characters"));
    }
    // `HOST:PORT` (plain HTTP) or `https://HOST:PORT` (the instance speaks TLS).
    let host_port = ["https://", "http://"].iter().find_map(|s| instance.address.strip_prefix(s));
    let host_port = host_port.unwrap_or(&instance.address);
    let address_ok = host_port
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0));
    if !address_ok || instance.address.len() > 256 || host_port.contains('/') {
        return Err(Status::invalid_argument("address: HOST:PORT or https://HOST:PORT"));
    }
    if instance.metadata.len() > MAX_METADATA
        || instance.metadata.iter().any(|(k, v)| k.is_empty() || k.len() > 64 || v.len() > 256)
    {
        return Err(Status::invalid_argument("metadata: at most 32 entries, keys 1-64, values up to 256 characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(service: &str, id: &str, ttl: u32) -> RegisterRequest {
        RegisterRequest {
            instance: Some(Instance {
                service: service.into(),
                instance_id: id.into(),
                address: "127.0.0.1:9".into(),
                metadata: HashMap::new(),
            }),
            ttl_seconds: ttl,
        }
    }

    #[tokio::test]
    async fn reregistering_an_instance_replaces_it() {
        let r = Registry::new(Duration::from_secs(10));
        let (a, _) = r.register(req("review", "one", 5)).unwrap();
        let (b, _) = r.register(req("review", "one", 5)).unwrap();
        assert_ne!(a, b);
        assert_eq!(r.list("review").len(), 1);
        assert!(!r.deregister(&a));
        assert!(r.deregister(&b));
        assert!(r.list("review").is_empty());
    }

    #[tokio::test]
    async fn unknown_lease_needs_a_registration() {
        let r = Registry::new(Duration::from_secs(10));
        assert_eq!(r.heartbeat("nope", None).unwrap_err().code(), tonic::Code::NotFound);
        let renewed = r.heartbeat("kept", Some(req("forum", "f1", 5))).unwrap();
        assert!(renewed.reregistered);
        assert_eq!(renewed.lease_id, "kept");
        assert!(!r.heartbeat("kept", None).unwrap().reregistered);
    }

    #[tokio::test(start_paused = true)]
    async fn leases_expire_and_watchers_see_it() {
        let r = Arc::new(Registry::new(Duration::from_secs(10)));
        let token = CancellationToken::new();
        tokio::spawn(r.clone().expire_until(token.clone()));
        let mut rx = r.subscribe("review");
        r.register(req("review", "one", 1)).unwrap();
        rx.changed().await.unwrap();
        assert_eq!(rx.borrow_and_update().len(), 1);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        rx.changed().await.unwrap();
        assert!(rx.borrow().is_empty());
        token.cancel();
    }

    #[test]
    fn bad_registrations_are_refused() {
        let r = Registry::new(Duration::from_secs(10));
        for (service, id, address) in [
            ("Review", "a", "h:1"),
            ("", "a", "h:1"),
            ("review", "", "h:1"),
            ("review", "a", "h"),
            ("review", "a", "h:0"),
            ("review", "a", "ftp://h:1"),
            ("review", "a", "https://h:1/path"),
            ("review", "a", "https://"),
        ] {
            let mut q = req(service, id, 1);
            if let Some(i) = q.instance.as_mut() {
                i.address = address.into();
            }
            assert_eq!(r.register(q).unwrap_err().code(), tonic::Code::InvalidArgument, "{service} {id} {address}");
        }
        assert!(r.register(RegisterRequest { instance: None, ttl_seconds: 0 }).is_err());
        for address in ["https://h:1", "http://h:1", "[::1]:1"] {
            let mut q = req("review", address, 1);
            if let Some(i) = q.instance.as_mut() {
                i.address = address.into();
            }
            assert!(r.register(q).is_ok(), "{address}");
        }
    }
}
