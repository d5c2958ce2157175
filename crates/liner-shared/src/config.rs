//! Configuration pieces every service command shares. Each service has one typed
//! settings struct (clap `Args` with an env fallback on every flag); these are the
//! common field types, parsed completely before anything binds.

use std::path::{Path, PathBuf};

/// Which storage backend a database URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database URL whose scheme has been checked: `sqlite://…` or `postgres://…`.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn backend(&self) -> Backend {
        if self.0.starts_with("sqlite:") { Backend::Sqlite } else { Backend::Postgres }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// A SQLite file URL (created if missing).
    pub fn sqlite_file(path: &Path) -> Self {
        Self(format!("sqlite://{}?mode=rwc", path.display()))
    }
}

impl std::str::FromStr for DatabaseUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = ["sqlite:", "postgres://", "postgresql://"].iter().any(|p| s.starts_with(p));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err("database URL must start with sqlite:, postgres:// or postgresql://".into())
        }
    }
}

impl std::fmt::Debug for DatabaseUrl {
    /// Never prints a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

/// `scheme://user:secret@host` → `scheme://user:***@host`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..s + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Makes sure a data directory exists and returns it.
pub fn ensure_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("cannot create data dir {}: {e}", dir.display()))?;
    Ok(dir.to_path_buf())
}

/// The flags every stateful service (review, catalog, forum) takes alike: where its
/// data lives and how the registry finds it. Each service flattens this into its own
/// `Settings`, so the names, env vars and defaults are written once.
#[derive(clap::Args, Debug, Clone)]
pub struct ServiceArgs {
    /// `sqlite://FILE` or `postgres://…`; default: the service's SQLite file in the data dir.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<DatabaseUrl>,
    /// Directory for the default SQLite file (and the review service's generated key).
    #[arg(long, env = "LINER_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Database connections in the pool.
    #[arg(long, env = "LINER_DB_MAX_CONNECTIONS", default_value_t = Self::DEFAULT_DB_MAX_CONNECTIONS, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub db_max_connections: u32,
    /// `apply` the schema migrations on start, or only `verify` that `liner migrate`
    /// applied them (refusing to start otherwise).
    #[arg(long, env = "LINER_MIGRATIONS", value_enum, default_value_t = MigrationMode::Apply)]
    pub migrations: MigrationMode,
    /// Registry to register with, `http://HOST:PORT` (unset: not registered).
    #[arg(long, env = "LINER_DISCOVERY")]
    pub discovery: Option<String>,
    /// Host the gateway reaches this instance at [default: the bound IP; loopback if 0.0.0.0].
    #[arg(long, env = "LINER_ADVERTISE_HOST")]
    pub advertise_host: Option<String>,
    #[command(flatten)]
    pub discovery_token: DiscoveryToken,
    #[command(flatten)]
    pub drain: crate::shutdown::Drain,
    /// TLS of this instance's listener and towards the other services.
    #[command(flatten)]
    pub tls: crate::tls::TlsArgs,
}

/// What a serving process does with its schema migrations. `apply` (the default) suits
/// one process or `liner up`; in a cluster, replicas started together would each take
/// the migration lock and a failed migration would crash-loop every serving pod, so
/// there a Job runs `liner migrate <service>` once and the replicas run with `verify`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MigrationMode {
    /// Apply pending migrations before serving.
    #[default]
    Apply,
    /// Change nothing; refuse to start unless every migration is applied, unchanged.
    Verify,
}

/// The registry's shared secret: a registry given one refuses every call without it, and
/// every service sends it. From `LINER_DISCOVERY_TOKEN`, or a file (a mounted secret);
/// never written in a config file of the repository.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DiscoveryToken {
    /// The secret itself (prefer the environment variable or a file to the command line).
    #[arg(long = "discovery-token", env = "LINER_DISCOVERY_TOKEN", hide = true, hide_env_values = true)]
    pub token: Option<String>,
    /// File holding the registry's shared secret.
    #[arg(long = "discovery-token-file", env = "LINER_DISCOVERY_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
}

impl DiscoveryToken {
    /// Shortest secret accepted: a guessable one would be no boundary.
    pub const MIN_LEN: usize = 16;

    /// A token given in code (`liner up` makes one per run).
    pub fn given(token: impl Into<String>) -> Self {
        Self { token: Some(token.into()), token_file: None }
    }

    /// The secret, if one is configured; an unreadable file or a short secret is an error.
    pub fn resolve(&self) -> anyhow::Result<Option<String>> {
        let token = match (&self.token, &self.token_file) {
            (Some(token), _) => token.trim().to_owned(),
            (None, Some(file)) => std::fs::read_to_string(file)
                .map_err(|e| anyhow::anyhow!("cannot read the discovery token file {}: {e}", file.display()))?
                .trim()
                .to_owned(),
            (None, None) => return Ok(None),
        };
        anyhow::ensure!(
            token.len() >= Self::MIN_LEN && token.bytes().all(|b| b.is_ascii_graphic()),
            "the discovery token must be at least {} printable characters",
            Self::MIN_LEN
        );
        Ok(Some(token))
    }

    /// A new random secret (32 hex digits).
    pub fn generate() -> anyhow::Result<Self> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness for a discovery token: {e}"))?;
        Ok(Self::given(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()))
    }
}

impl ServiceArgs {
    pub const DEFAULT_DB_MAX_CONNECTIONS: u32 = 16;

    /// The defaults, with data in `data_dir` (for `liner up` and tests).
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            database_url: None,
            data_dir,
            db_max_connections: Self::DEFAULT_DB_MAX_CONNECTIONS,
            migrations: MigrationMode::Apply,
            discovery: None,
            advertise_host: None,
            discovery_token: DiscoveryToken::default(),
            drain: Default::default(),
            tls: Default::default(),
        }
    }

    /// The database URL given, else `sqlite_file` in the data dir (created).
    pub fn database_url_or(&self, sqlite_file: &str) -> anyhow::Result<DatabaseUrl> {
        database_url_or(self.database_url.as_ref(), &self.data_dir, sqlite_file)
    }
}

/// `url` when given, else `sqlite_file` in `data_dir` (created): the one rule for where
/// a service's (or a tool's, like `liner catalog import`) database is.
pub fn database_url_or(url: Option<&DatabaseUrl>, data_dir: &Path, sqlite_file: &str) -> anyhow::Result<DatabaseUrl> {
    match url {
        Some(url) => Ok(url.clone()),
        None => Ok(DatabaseUrl::sqlite_file(&ensure_dir(data_dir)?.join(sqlite_file))),
    }
}
