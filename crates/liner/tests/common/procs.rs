//! The one process harness of the `liner` crate's tests: the real `liner` binary started
//! as a child process, its log kept in a temp file (tails printed when the test fails),
//! killed when dropped, however the test ends.
//!
//! A child is started with `--listen 127.0.0.1:0` (and `--admin-listen 127.0.0.1:0`
//! where a test asks for the gateway's admin listener): it binds a port of the kernel's
//! choosing and says which in its own log, `listening service=<name> addr=<addr>` (every
//! Liner listener logs that line when bound, `liner_shared::server::Bound`), and that is
//! where the harness learns the address. Nothing binds a port, drops it and hands it to
//! a child, which another process on a shared machine could take in between.
//!
//! Not part of `common/mod.rs` (the in-process tests' support): the test binaries that
//! start processes include it with `#[path = "common/procs.rs"] mod procs;`, so the
//! others do not compile it. `common/cluster.rs` builds on it (its includers include
//! both).
#![allow(dead_code)]

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// The registry's shared secret every child is given, as a deployment's secret would.
pub const DISCOVERY_TOKEN: &str = "cluster-test-discovery-secret";

/// How long a child may take to say it listens (it migrates its database first).
pub const START_BOUND: Duration = Duration::from_secs(60);

/// The temp dir with every child's log; prints their tails when the test fails.
/// Declare it before the processes, so that it is dropped after them.
pub struct Logs {
    pub dir: tempfile::TempDir,
    pub files: Mutex<Vec<(String, PathBuf)>>,
}

impl Logs {
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("tempdir"), files: Mutex::new(Vec::new()) }
    }
}

impl Drop for Logs {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for (name, path) in self.files.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            eprintln!("----- {name}: last {} lines of {} -----", tail.len(), path.display());
            for line in tail {
                eprintln!("{line}");
            }
        }
    }
}

/// What a child has logged so far, and whether its log has ended (it exited).
#[derive(Default)]
struct Log {
    lines: Vec<String>,
    ended: bool,
}

/// The address in a `listening service=<service> addr=<addr>` line, when the line is
/// that listener's (the service name may hold a space: `gateway admin`).
fn listening_addr(line: &str, service: &str) -> Option<String> {
    let (_, rest) = line.split_once(" listening service=")?;
    let (name, addr) = rest.rsplit_once(" addr=")?;
    (name == service).then(|| addr.split_whitespace().next().unwrap_or_default().to_owned())
}

/// `liner <args…>` configured by its arguments only: nothing inherited from `LINER_*`,
/// `DATABASE_URL`, `REDIS_URL` or `RUST_LOG`; no standard input.
pub fn liner<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_liner"));
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("LINER_") || key == "DATABASE_URL" || key == "REDIS_URL" || key == "RUST_LOG" {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd.args(args).stdin(Stdio::null());
    cmd
}

/// The listener a subcommand is reached on: `liner up`'s is its gateway's.
fn public_listener(subcommand: &str) -> &str {
    if subcommand == "up" { "gateway" } else { subcommand }
}

/// Starts `liner <args…> --listen 127.0.0.1:0` with its log in `<name>.log`; see
/// [`Spawned::listening`] for its address.
pub fn spawn(logs: &Logs, name: &str, args: &[String]) -> Spawned {
    spawn_on(logs, name, "127.0.0.1:0", args)
}

/// Starts `liner <args…> --listen <listen>`. Only a process coming back where its
/// clients were told to look (the registry after a restart: every replica has its URL)
/// is given an address; it is the one that process bound before, never a probe's.
pub fn spawn_on(logs: &Logs, name: &str, listen: &str, args: &[String]) -> Spawned {
    let service = public_listener(args.first().map_or("", String::as_str)).to_owned();
    let mut cmd = liner(args);
    cmd.args(["--listen", listen]);
    spawn_command(logs, name, cmd, &service)
}

/// Starts `cmd` (from [`liner`], with whatever it adds) with its stdout and stderr in
/// `<name>.log`; `service` names the listener [`Spawned::listening`] waits for.
pub fn spawn_command(logs: &Logs, name: &str, mut cmd: Command, service: &str) -> Spawned {
    let path = logs.dir.path().join(format!("{name}.log"));
    let file = File::create(&path).expect("log file");
    logs.files.lock().unwrap_or_else(|p| p.into_inner()).push((name.to_owned(), path));
    let mut child = cmd
        .env("LINER_LOG", "info")
        .env("NO_COLOR", "1")
        .env("LINER_DISCOVERY_TOKEN", DISCOVERY_TOKEN)
        // Redis keeps sign-up counts across runs: the tests' users all come from loopback.
        .env("LINER_REGISTRATIONS_PER_ADDRESS", "0")
        .stdout(file.try_clone().expect("log file"))
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn liner");
    // The log (stderr) goes to the file through this thread, which also keeps its lines
    // for the test to wait on.
    let (tell, log) = watch::channel(Log::default());
    let stderr = child.stderr.take().expect("stderr piped");
    std::thread::spawn(move || {
        use std::io::{BufRead, Write};
        let mut file = file;
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = writeln!(file, "{line}");
            tell.send_modify(|log| log.lines.push(line));
        }
        tell.send_modify(|log| log.ended = true);
    });
    Spawned { name: name.to_owned(), service: service.to_owned(), child: Some(child), log }
}

/// Starts `liner <args…>` on port 0 and waits until it listens.
pub async fn start(logs: &Logs, name: &str, args: &[String]) -> Proc {
    spawn(logs, name, args).listening().await
}

/// Waits (up to `bound`) for a line of `name`'s log that `matches`; None when the log
/// ended first (the child exited).
async fn wait_line(
    name: &str,
    log: &mut watch::Receiver<Log>,
    what: &str,
    bound: Duration,
    matches: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    let found = |log: &Log| log.lines.iter().find_map(|l| matches(l));
    let waited = tokio::time::timeout(bound, log.wait_for(|log| log.ended || found(log).is_some())).await;
    let log = waited.unwrap_or_else(|_| panic!("{name}: no log line {what} within {bound:?}"));
    found(&log.expect("the log is read to its end"))
}

/// A child that has not said yet where it listens.
pub struct Spawned {
    name: String,
    service: String,
    child: Option<Child>,
    log: watch::Receiver<Log>,
}

impl Spawned {
    /// Waits for its `listening service=<its service> addr=` line (within [`START_BOUND`]);
    /// fails when it exits first (its log's tail is printed).
    pub async fn listening(mut self) -> Proc {
        let (name, service) = (self.name.clone(), self.service.clone());
        let what = format!("`listening service={service}`");
        let addr = wait_line(&name, &mut self.log, &what, START_BOUND, |l| listening_addr(l, &service)).await;
        let addr = addr.unwrap_or_else(|| panic!("{name} exited before it listened"));
        Proc { name, addr, child: self.child.take(), log: self.log.clone() }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

fn kill(child: &mut Option<Child>) {
    if let Some(mut child) = child.take() {
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
    }
}

/// One `liner` child process listening on `addr`; SIGKILLed when dropped.
pub struct Proc {
    pub name: String,
    /// Where its main listener is, from its own log.
    pub addr: String,
    pub child: Option<Child>,
    log: watch::Receiver<Log>,
}

impl Proc {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address of another of its listeners, e.g. `gateway admin`, from its log.
    pub async fn listener(&mut self, service: &str) -> String {
        let what = format!("`listening service={service}`");
        let addr = wait_line(&self.name, &mut self.log, &what, START_BOUND, |l| listening_addr(l, service)).await;
        addr.unwrap_or_else(|| panic!("{} exited before its {service} listener was up", self.name))
    }

    /// Waits for a log line holding every one of `needles`, and returns it.
    pub async fn logged(&mut self, needles: &[&str], bound: Duration) -> String {
        let what = format!("with {needles:?}");
        let matches = |l: &str| needles.iter().all(|n| l.contains(n)).then(|| l.to_owned());
        let line = wait_line(&self.name, &mut self.log, &what, bound, matches).await;
        line.unwrap_or_else(|| panic!("{} exited before it logged {needles:?}", self.name))
    }

    /// Whether its log has ended: it exited (or closed its stderr, which Liner does not).
    pub fn log_ended(&self) -> bool {
        self.log.borrow().ended
    }

    pub fn kill9(&mut self) {
        kill(&mut self.child);
    }

    /// SIGTERM, as a rollout stops a pod.
    pub fn sigterm(&self) {
        let child = self.child.as_ref().expect("running");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    }

    /// Waits for the child to exit (within `bound`, else SIGKILL and fail).
    pub async fn exit_status(&mut self, bound: Duration) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        match tokio::time::timeout(bound, tokio::task::spawn_blocking(move || child.wait())).await {
            Ok(waited) => waited.expect("wait task").expect("wait"),
            Err(_) => {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                panic!("{} did not exit within {bound:?}", self.name)
            }
        }
    }

    pub fn exited(&mut self) -> bool {
        match &mut self.child {
            Some(child) => !matches!(child.try_wait(), Ok(None)),
            None => true,
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Waits until `proc` answers 200 on `/readyz` (it listens already; readiness asks its
/// dependencies once more); fails after [`START_BOUND`] or when it exits first.
pub async fn ready(http: &reqwest::Client, proc: &Proc) {
    let url = format!("{}/readyz", proc.url());
    wait_until(&format!("{} ready", proc.name), START_BOUND, || async {
        assert!(!proc.log_ended(), "{} exited instead of becoming ready", proc.name);
        http.get(&url).send().await.is_ok_and(|r| r.status().is_success())
    })
    .await;
}

/// The gap between attempts at something that cannot notify (`/readyz`, the gateway's
/// `/metrics`, the registry's `List`, a reconnect through the gateway): 2 ms at first,
/// doubling up to a cap, so a condition that holds soon is seen at once and one that
/// takes seconds is not asked hundreds of times.
pub struct Backoff {
    next: Duration,
    cap: Duration,
}

impl Backoff {
    pub fn up_to(cap: Duration) -> Self {
        Self { next: Duration::from_millis(2), cap }
    }

    pub async fn wait(&mut self) {
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(self.cap);
    }
}

/// Asks `check` until it holds (with a [`Backoff`] up to 100 ms between asks); fails
/// after `bound`.
pub async fn wait_until<F, Fut>(what: &str, bound: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    let mut backoff = Backoff::up_to(Duration::from_millis(100));
    while !check().await {
        assert!(started.elapsed() < bound, "{what}: not within {bound:?}");
        backoff.wait().await;
    }
    started.elapsed()
}
