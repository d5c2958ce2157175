//! One-shot commands a deployment runs beside the services: `liner migrate <service>`
//! (a Kubernetes Job or a compose step applies the schema once, before the replicas
//! start with `--migrations verify`) and `liner probe URL` (container health checks: the
//! distroless runtime image has no shell or curl to run one with).

use std::path::PathBuf;
use std::time::Duration;

use liner_shared::config::{DatabaseUrl, MigrationMode, database_url_or};
use liner_shared::db::Db;
use liner_shared::tls::{ClientTls, PeerClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `liner migrate <review|forum|catalog>`, with the service's own database flags.
#[derive(clap::Args, Debug)]
pub struct MigrateCommand {
    /// The service whose schema to apply.
    #[arg(value_enum)]
    pub service: MigratedService,
    /// `sqlite://FILE` or `postgres://…`; default: the service's SQLite file in the data dir.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<DatabaseUrl>,
    /// Directory of the default SQLite file.
    #[arg(long, env = "LINER_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
}

/// The services that own a database.
#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub enum MigratedService {
    Review,
    Forum,
    Catalog,
}

impl MigrateCommand {
    /// Applies the migrations (waiting for any other run's lock) and reports one line.
    pub async fn run(&self) -> anyhow::Result<()> {
        let (name, sqlite_file, migrations) = match self.service {
            MigratedService::Review => ("review", liner_review::SQLITE_FILE, liner_review::MIGRATIONS),
            MigratedService::Forum => ("forum", liner_forum::SQLITE_FILE, liner_forum::MIGRATIONS),
            MigratedService::Catalog => ("catalog", liner_catalog::SQLITE_FILE, liner_catalog::MIGRATIONS),
        };
        let url = database_url_or(self.database_url.as_ref(), &self.data_dir, sqlite_file)?;
        let db = Db::connect(&url, 1, migrations, MigrationMode::Apply).await?;
        db.pool.close().await;
        println!("{name}: migrations applied to {url:?}");
        Ok(())
    }
}

/// `liner probe [URL]`.
#[derive(clap::Args, Debug)]
pub struct ProbeCommand {
    /// `http://HOST:PORT/PATH` (or `https://`, for a listener that speaks TLS) to GET.
    #[arg(default_value = "http://127.0.0.1:8080/readyz")]
    pub url: String,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 3)]
    pub timeout_secs: u64,
    /// With an `https://` URL: the PEM CA that signed the listener's certificate (the
    /// service's own `LINER_TLS_CA_FILE`); the name in the URL must be in the certificate.
    #[arg(long, env = "LINER_TLS_CA_FILE")]
    pub tls_ca_file: Option<PathBuf>,
}

impl ProbeCommand {
    /// One HTTP/1.1 GET; fails with one line unless the status is 2xx.
    pub async fn run(&self) -> anyhow::Result<()> {
        let url = &self.url;
        if url.starts_with("https://") {
            return self.run_tls().await;
        }
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| anyhow::anyhow!("probe URL must start with http:// or https://"))?;
        let (authority, path) = rest.split_once('/').map_or((rest, String::from("/")), |(a, p)| (a, format!("/{p}")));
        let exchange = async {
            let mut stream = tokio::net::TcpStream::connect(authority).await?;
            let request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
            stream.write_all(request.as_bytes()).await?;
            let mut head = Vec::new();
            stream.take(1024).read_to_end(&mut head).await?;
            Ok::<_, std::io::Error>(head)
        };
        let head = tokio::time::timeout(Duration::from_secs(self.timeout_secs), exchange)
            .await
            .map_err(|_| anyhow::anyhow!("{url} did not answer within {} s", self.timeout_secs))?
            .map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
        let head = String::from_utf8_lossy(&head);
        let status_line = head.lines().next().unwrap_or_default();
        let ok = status_line.split_whitespace().nth(1).is_some_and(|code| code.len() == 3 && code.starts_with('2'));
        anyhow::ensure!(ok, "{url} answered {status_line:?}");
        Ok(())
    }

    /// The GET over TLS, verified against `--tls-ca-file` only.
    async fn run_tls(&self) -> anyhow::Result<()> {
        let url = &self.url;
        let ca = self.tls_ca_file.as_deref();
        let ca = ca.ok_or_else(|| anyhow::anyhow!("an https:// probe URL needs --tls-ca-file (LINER_TLS_CA_FILE)"))?;
        let client = PeerClient::new(&ClientTls::from_ca_file(ca)?);
        let timeout = Duration::from_secs(self.timeout_secs);
        let (status, _) = client.get(url, timeout, 1024).await.map_err(|e| anyhow::anyhow!("{url}: {e:#}"))?;
        anyhow::ensure!(status.is_success(), "{url} answered {status}");
        Ok(())
    }
}
