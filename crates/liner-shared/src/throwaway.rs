//! Throwaway PostgreSQL and Redis servers a test owns, to stop and restart at will
//! (outage tests) or to start with a configuration of its own (TLS). The shared test
//! servers of `testkit` must never be stopped: every other test uses them.
//!
//! Both listen on a Unix socket in the server's own temporary directory and on no TCP
//! port, so no port is picked, dropped and raced for on a shared machine. A server that
//! needs TCP (TLS cannot run over a Unix socket) asks for one with
//! [`PostgresOptions::tcp`] / [`RedisOptions::tls`]; the port is tried at random and
//! another is tried if it is taken: the server binds it itself, nothing binds it first.
//!
//! PostgreSQL refuses to run as root: when the tests run as root, the server runs as the
//! `postgres` user (`runuser`), as `scripts/lib/backing-services.sh` does.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> anyhow::Result<Self> {
        let path = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path)?;
        Ok(Self(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether this process runs as root (`/proc/self` belongs to the process's user).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn random_port() -> u16 {
    20_000 + (uuid::Uuid::new_v4().as_u128() % 40_000) as u16
}

/// How a throwaway PostgreSQL is started.
#[derive(Default, Clone)]
pub struct PostgresOptions {
    /// Also listen on 127.0.0.1 at a port of its own choosing (see the module doc).
    pub tcp: bool,
    /// Extra `-c name=value` settings (e.g. `ssl=on`, `ssl_cert_file=…`).
    pub settings: Vec<(String, String)>,
    /// Files written into the data directory before the first start, owned by the
    /// server's user with mode 0600 (PostgreSQL refuses a key others can read); relative
    /// paths in settings resolve there, e.g. `server.crt` and `server.key`, which
    /// `ssl=on` uses by default.
    pub files: Vec<(String, Vec<u8>)>,
}

impl PostgresOptions {
    /// TCP with TLS (`ssl=on`) presenting `cert`.
    pub fn with_tls_cert(cert: &ServerCert) -> Self {
        Self { tcp: true, settings: vec![("ssl".into(), "on".into())], files: cert.files() }
    }
}

/// A PostgreSQL server of one test: `initdb` in a temp dir, `pg_ctl` to stop and start.
pub struct ThrowawayPostgres {
    dir: TempDir,
    bin: PathBuf,
    options: PostgresOptions,
    port: u16,
}

impl ThrowawayPostgres {
    /// Initialises and starts a server (Debian's `postgresql` binaries).
    pub fn start(options: PostgresOptions) -> anyhow::Result<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .find(|b| b.join("initdb").exists())
            .ok_or_else(|| anyhow::anyhow!("no PostgreSQL binaries under /usr/lib/postgresql"))?;
        let dir = TempDir::new("liner-pg")?;
        let mut pg = Self { dir, bin, options, port: 5432 };
        if is_root() {
            run(Command::new("chown").args(["-R", "postgres:postgres"]).arg(&pg.dir.0))?;
        }
        run(pg.as_owner(&pg.bin.join("initdb")).arg("-D").arg(pg.data()).args(["-U", "postgres", "-A", "trust"]))?;
        for (name, contents) in &pg.options.files {
            use std::os::unix::fs::PermissionsExt;
            let path = pg.data().join(name);
            std::fs::write(&path, contents)?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
            if is_root() {
                run(Command::new("chown").arg("postgres:postgres").arg(&path))?;
            }
        }
        for _ in 0..20 {
            if pg.options.tcp {
                pg.port = random_port();
            }
            if pg.start_again().is_ok() {
                return Ok(pg);
            }
        }
        anyhow::bail!("the throwaway PostgreSQL did not start: {}", pg.log_tail())
    }

    fn data(&self) -> PathBuf {
        self.dir.0.join("data")
    }

    /// The directory holding the server's socket (and whatever a test puts there).
    pub fn dir(&self) -> &Path {
        &self.dir.0
    }

    fn as_owner(&self, program: &Path) -> Command {
        if is_root() {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        }
    }

    /// Starts the (stopped) server again, on the same socket and port.
    pub fn start_again(&self) -> anyhow::Result<()> {
        let listen = if self.options.tcp { "127.0.0.1" } else { "" };
        let mut opts = format!(
            "-p {} -k {} -c listen_addresses='{listen}' -c fsync=off -c max_connections=200",
            self.port,
            self.dir.0.display()
        );
        for (name, value) in &self.options.settings {
            opts.push_str(&format!(" -c {name}={value}"));
        }
        run(self
            .as_owner(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.log())
            .args(["-w", "-t", "30", "start", "-o", &opts]))
    }

    /// Stops the server (`fast`: open connections are closed, nothing acknowledged is lost).
    pub fn stop(&self) -> anyhow::Result<()> {
        run(self.as_owner(&self.bin.join("pg_ctl")).arg("-D").arg(self.data()).args(["-m", "fast", "-w", "stop"]))
    }

    /// The TCP port (with [`PostgresOptions::tcp`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL for `database` over TCP (with [`PostgresOptions::tcp`]) that requires TLS
    /// and verifies the server's certificate and name against the CA in `ca_file`.
    pub fn verify_full_url(&self, database: &str, ca_file: &Path) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{database}?sslmode=verify-full&sslrootcert={}",
            self.port,
            ca_file.display()
        )
    }

    /// A URL for `database` over the Unix socket.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@localhost:{}/{database}?host={}", self.port, self.dir.0.display())
    }

    /// Creates a database and returns its URL (over the Unix socket).
    pub async fn fresh_database(&self) -> anyhow::Result<String> {
        use sqlx::Connection;
        let name = format!("liner_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&self.url("postgres")).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await?;
        let _ = conn.close().await;
        Ok(self.url(&name))
    }

    fn log(&self) -> PathBuf {
        self.dir.0.join("server.log")
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log()).unwrap_or_default();
        text.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
    }
}

impl Drop for ThrowawayPostgres {
    fn drop(&mut self) {
        let _ = self
            .as_owner(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// How a throwaway Redis is started.
#[derive(Default, Clone)]
pub struct RedisOptions {
    /// Extra arguments (e.g. `--tls-port`, `--tls-cert-file …`); with `tls`, a TLS port
    /// of its own choosing is added (see the module doc).
    pub args: Vec<String>,
    pub tls: bool,
    /// Files written into the server's directory before the first start; the server runs
    /// there, so relative paths in `args` name them.
    pub files: Vec<(String, Vec<u8>)>,
}

impl RedisOptions {
    /// A TLS port presenting `cert`; clients are not asked for certificates.
    pub fn with_tls_cert(cert: &ServerCert) -> Self {
        let args = ["--tls-cert-file", "server.crt", "--tls-key-file", "server.key", "--tls-auth-clients", "no"];
        Self { args: args.map(String::from).to_vec(), tls: true, files: cert.files() }
    }
}

/// A Redis server of one test, on a Unix socket (`redis+unix://…`).
pub struct ThrowawayRedis {
    dir: TempDir,
    options: RedisOptions,
    tls_port: u16,
    child: std::sync::Mutex<Option<Child>>,
}

impl ThrowawayRedis {
    pub fn start(options: RedisOptions) -> anyhow::Result<Self> {
        let dir = TempDir::new("liner-redis")?;
        for (name, contents) in &options.files {
            std::fs::write(dir.0.join(name), contents)?;
        }
        let redis = Self { dir, options, tls_port: 0, child: Default::default() };
        let mut redis = redis;
        for _ in 0..20 {
            if redis.options.tls {
                redis.tls_port = random_port();
            }
            if redis.start_again().is_ok() {
                return Ok(redis);
            }
        }
        anyhow::bail!("the throwaway Redis did not start")
    }

    fn socket(&self) -> PathBuf {
        self.dir.0.join("redis.sock")
    }

    /// The directory holding the socket (and whatever a test puts there).
    pub fn dir(&self) -> &Path {
        &self.dir.0
    }

    /// `redis+unix://…` for the socket.
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket().display())
    }

    /// `rediss://` to the TLS port (with [`RedisOptions::tls`]), by IP address: the
    /// certificate must name `127.0.0.1`.
    pub fn tls_url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.tls_port)
    }

    /// The TLS port (with [`RedisOptions::tls`]).
    pub fn tls_port(&self) -> u16 {
        self.tls_port
    }

    /// Starts the (stopped) server again on the same socket (and TLS port); waits until
    /// it answers.
    pub fn start_again(&self) -> anyhow::Result<()> {
        let _ = std::fs::remove_file(self.socket());
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", "0", "--save", "", "--appendonly", "no", "--unixsocket"]).arg(self.socket());
        cmd.args(["--unixsocketperm", "700", "--dir"]).arg(&self.dir.0).current_dir(&self.dir.0);
        if self.options.tls {
            cmd.args(["--tls-port", &self.tls_port.to_string(), "--bind", "127.0.0.1"]);
        }
        cmd.args(&self.options.args).stdout(Stdio::null()).stderr(Stdio::null());
        let mut child = cmd.spawn()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.socket().exists() {
            if let Some(status) = child.try_wait()? {
                anyhow::bail!("redis-server exited: {status}");
            }
            anyhow::ensure!(Instant::now() < deadline, "redis-server did not open its socket");
            std::thread::sleep(Duration::from_millis(20));
        }
        *self.child.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
        Ok(())
    }

    /// Kills the server (everything in it is gone: it keeps nothing on disk).
    pub fn stop(&self) {
        if let Some(mut child) = self.child.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ThrowawayRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A certificate authority of one test (no key material in the repository), and the
/// server certificates it signs.
pub struct TestCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pem: String,
}

/// A server's certificate (PEM) and its private key (PKCS#8 PEM).
pub struct ServerCert {
    pub cert_pem: String,
    pub key_pem: String,
}

impl ServerCert {
    /// The files a server is given: `server.crt` and `server.key` in its directory.
    fn files(&self) -> Vec<(String, Vec<u8>)> {
        vec![
            ("server.crt".into(), self.cert_pem.clone().into_bytes()),
            ("server.key".into(), self.key_pem.clone().into_bytes()),
        ]
    }
}

impl TestCa {
    pub fn new(name: &str) -> anyhow::Result<Self> {
        let mut params = rcgen::CertificateParams::new(Vec::new())?;
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        let key = rcgen::KeyPair::generate()?;
        let pem = params.self_signed(&key)?.pem();
        Ok(Self { issuer: rcgen::Issuer::new(params, key), pem })
    }

    /// The CA certificate (PEM), what clients trust.
    pub fn cert_pem(&self) -> &str {
        &self.pem
    }

    /// A server certificate for these names (`127.0.0.1` becomes an IP address SAN).
    pub fn server_cert(&self, names: &[&str]) -> anyhow::Result<ServerCert> {
        let mut params = rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
        params.distinguished_name.push(rcgen::DnType::CommonName, names.first().copied().unwrap_or("server"));
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let key = rcgen::KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(ServerCert { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd.stdin(Stdio::null()).output()?;
    anyhow::ensure!(
        out.status.success(),
        "{:?} failed: {}",
        cmd.get_program(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_throwaway_postgres_stops_and_starts_again() {
        let pg = ThrowawayPostgres::start(PostgresOptions::default()).expect("starts");
        pg.fresh_database().await.expect("serves");
        pg.stop().expect("stops");
        assert!(pg.fresh_database().await.is_err(), "stopped");
        pg.start_again().expect("starts again");
        pg.fresh_database().await.expect("serves again");
    }

    #[test]
    fn a_throwaway_redis_stops_and_starts_again() {
        let redis = ThrowawayRedis::start(RedisOptions::default()).expect("starts");
        let ping = || {
            let out = Command::new("redis-cli").arg("-s").arg(redis.socket()).arg("PING").output().expect("redis-cli");
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        assert_eq!(ping(), "PONG");
        redis.stop();
        assert_ne!(ping(), "PONG", "stopped");
        redis.start_again().expect("starts again");
        assert_eq!(ping(), "PONG");
    }
}
