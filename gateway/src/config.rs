//! Typed configuration from the environment (SPEC §7). No host, port or secret lives in code
//! beyond the documented defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use commands::secrets::{decode_key, generate_key, Keyring};
use commands::Store;

#[derive(Debug, Clone)]
pub struct Config {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    /// `DATABASE_URL` as given (it may carry a password: never log it).
    pub database_url: Option<String>,
    /// Which store `DATABASE_URL` names.
    pub database: Database,
    /// `NATS_URL`; unset means the in-process bus.
    pub nats_url: Option<String>,
    /// `ACCOUNTD_NATS_STREAM_PREFIX`, prepended verbatim to stream names and subjects.
    pub nats_stream_prefix: String,
    /// `ACCOUNTD_NATS_REPLICAS`.
    pub nats_replicas: usize,
    /// `ACCOUNTD_PUBLIC_URL`, without a trailing slash.
    pub public_url: String,
    /// `ACCOUNTD_SMTP_URL`; unset means the file sink.
    pub smtp_url: Option<String>,
    /// `ACCOUNTD_SMTP_FROM`.
    pub smtp_from: String,
    /// `ACCOUNTD_SMS_URL`; unset means the file sink.
    pub sms_url: Option<String>,
    /// `ACCOUNTD_SERVICE_TOKENS`: (role, token) pairs.
    pub service_tokens: Vec<(String, String)>,
    /// `ACCOUNTD_IP_RATE_LIMIT`: requests a minute per client IP and public route; 0 is off.
    pub ip_rate_limit: u32,
    /// `ACCOUNTD_TRUSTED_PROXY_HEADER`: the header our proxy appends the client IP to; its
    /// right-most entry is taken (see `http::extract::client_of`).
    pub trusted_proxy_header: Option<String>,
    /// `ACCOUNTD_NEW_SIGN_IN_NOTICE_DAYS`: a sign-in from a client (IP and user agent) without
    /// a session of the account in this many days is notified to the contact email; 0 is off.
    /// Default 30, and 0 on the development start (no `DATABASE_URL`: the embedded store in
    /// the data folder), where every sign-in from a fresh browser would mail the file sink.
    pub new_sign_in_notice_days: u32,
    /// `ACCOUNTD_SECRET_KEY`; generated into the data folder on the embedded store.
    secret_key: Option<String>,
    /// `ACCOUNTD_PREVIOUS_SECRET_KEYS`: older keys, comma-separated, still accepted for opening
    /// sealed values after a rotation.
    previous_secret_keys: Vec<String>,
}

/// The store `DATABASE_URL` chooses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// No `DATABASE_URL`: the embedded SQLite file `accountd.db` in the data folder.
    Embedded,
    /// `postgres://…` or `postgresql://…`.
    Postgres,
    /// `sqlite://PATH` (or `sqlite:PATH`): the embedded store in that file, created if missing.
    /// The key file and the file sink stay in the data folder.
    SqliteFile(PathBuf),
}

impl Database {
    /// Parses `DATABASE_URL`. Refused with a message that says what is accepted: another
    /// scheme, an in-memory SQLite database (every event would be lost at exit), or SQLite
    /// options in a query string (the store sets its own).
    pub fn parse(url: Option<&str>) -> anyhow::Result<Self> {
        let Some(url) = url else {
            return Ok(Self::Embedded);
        };
        let Some((scheme, rest)) = url.split_once(':') else {
            bail!("DATABASE_URL must be postgres://… or sqlite://PATH");
        };
        match scheme.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" => {
                // Parsed now so that a malformed URL is a configuration error, not a failure
                // at the first connection; sqlx's messages do not repeat the URL.
                commands::store::postgres_target(url)
                    .context("DATABASE_URL is not a valid PostgreSQL URL")?;
                Ok(Self::Postgres)
            }
            "sqlite" => {
                let path = rest.strip_prefix("//").unwrap_or(rest);
                if path.contains('?') {
                    bail!("DATABASE_URL: sqlite://PATH takes a file path only, without ?options");
                }
                if path.is_empty() || path.contains(":memory:") || path.starts_with(':') {
                    bail!(
                        "DATABASE_URL: sqlite:// needs a file path (an in-memory database would lose every event at exit)"
                    );
                }
                Ok(Self::SqliteFile(PathBuf::from(path)))
            }
            other => bail!(
                "DATABASE_URL has the scheme {other:?}; accountd takes postgres://… (PostgreSQL) or sqlite://PATH (the embedded store in that file)"
            ),
        }
    }
}

impl Config {
    /// From the process environment.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// From any source of variables (tests pass a map). Empty values count as unset, except
    /// the stream prefix, which is taken verbatim.
    pub fn from_vars(source: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let var = |name: &str| source(name).filter(|v| !v.trim().is_empty());
        let bind = var("ACCOUNTD_BIND")
            .unwrap_or_else(|| "127.0.0.1:8080".to_owned())
            .parse()
            .context("ACCOUNTD_BIND must be host:port")?;
        let service_tokens = var("ACCOUNTD_SERVICE_TOKENS")
            .map(|v| {
                v.split(',')
                    .filter(|pair| !pair.trim().is_empty())
                    .map(|pair| {
                        let (role, token) = pair
                            .trim()
                            .split_once(':')
                            .context("ACCOUNTD_SERVICE_TOKENS must be role:token pairs")?;
                        anyhow::ensure!(
                            matches!(role, "compute" | "support" | "notifier" | "auditor"),
                            "unknown role {role} in ACCOUNTD_SERVICE_TOKENS"
                        );
                        anyhow::ensure!(
                            token.len() >= 16,
                            "service tokens must be at least 16 characters"
                        );
                        Ok((role.to_owned(), token.to_owned()))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()
            })
            .transpose()?
            .unwrap_or_default();
        let database = Database::parse(var("DATABASE_URL").as_deref())?;
        let new_sign_in_notice_days = var("ACCOUNTD_NEW_SIGN_IN_NOTICE_DAYS")
            .map(|v| {
                v.trim().parse().context(
                    "ACCOUNTD_NEW_SIGN_IN_NOTICE_DAYS must be a number of days (0 turns it off)",
                )
            })
            .transpose()?
            .unwrap_or(match database {
                Database::Embedded => 0,
                Database::Postgres | Database::SqliteFile(_) => 30,
            });
        Ok(Self {
            nats_url: var("NATS_URL"),
            nats_stream_prefix: source("ACCOUNTD_NATS_STREAM_PREFIX").unwrap_or_default(),
            nats_replicas: var("ACCOUNTD_NATS_REPLICAS")
                .map(|v| v.parse().context("ACCOUNTD_NATS_REPLICAS must be a number"))
                .transpose()?
                .unwrap_or(1),
            public_url: var("ACCOUNTD_PUBLIC_URL")
                .unwrap_or_else(|| "http://127.0.0.1:8080".to_owned())
                .trim_end_matches('/')
                .to_owned(),
            smtp_url: var("ACCOUNTD_SMTP_URL"),
            smtp_from: var("ACCOUNTD_SMTP_FROM")
                .unwrap_or_else(|| "no-reply@accountd.local".to_owned()),
            sms_url: var("ACCOUNTD_SMS_URL"),
            service_tokens,
            ip_rate_limit: var("ACCOUNTD_IP_RATE_LIMIT")
                .map(|v| v.parse().context("ACCOUNTD_IP_RATE_LIMIT must be a number"))
                .transpose()?
                .unwrap_or(300),
            trusted_proxy_header: var("ACCOUNTD_TRUSTED_PROXY_HEADER"),
            new_sign_in_notice_days,
            bind,
            data_dir: var("ACCOUNTD_DATA_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("./data")),
            database,
            database_url: var("DATABASE_URL"),
            secret_key: var("ACCOUNTD_SECRET_KEY"),
            previous_secret_keys: var("ACCOUNTD_PREVIOUS_SECRET_KEYS")
                .map(|v| v.split(',').map(|k| k.trim().to_owned()).collect())
                .unwrap_or_default(),
        })
    }

    /// Opens the configured store (PostgreSQL when `DATABASE_URL` is a PostgreSQL URL, else
    /// the embedded SQLite file) and migrates it.
    pub async fn open_store(&self) -> anyhow::Result<Store> {
        let store = match (&self.database, &self.database_url) {
            (Database::Postgres, Some(url)) => {
                let target = check_postgres(url).await?;
                Store::connect_postgres_failing_after(url, 32, ACQUIRE_TIMEOUT)
                    .await
                    .with_context(|| format!("connecting to PostgreSQL at {target}"))?
            }
            (Database::SqliteFile(path), _) => open_sqlite(path).await?,
            _ => {
                private_dir(&self.data_dir).with_context(|| {
                    format!("creating the data folder {}", self.data_dir.display())
                })?;
                let path = self.data_dir.join("accountd.db");
                // SQLite gives its -wal and -shm files the mode of the database file.
                private_file(&path).with_context(|| format!("creating {}", path.display()))?;
                open_sqlite(&path).await?
            }
        };
        store.migrate().await.context("migrating the store")?;
        Ok(store)
    }

    /// Opens the read side's own pool on the configured store (after [`Self::open_store`],
    /// which creates the data folder) and migrates it.
    pub async fn open_read_store(&self) -> anyhow::Result<projections::ReadStore> {
        let location = match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("accountd.db").display()),
        };
        projections::ReadStore::open(&location)
            .await
            .context("opening the read store")
    }

    /// The keyring: `ACCOUNTD_SECRET_KEY`, or on the embedded store a key file generated into
    /// the data folder on first start. PostgreSQL deployments must configure the key.
    pub fn keyring(&self) -> anyhow::Result<Keyring> {
        let current = match (&self.secret_key, &self.database) {
            (Some(key), _) => key.clone(),
            (None, Database::Postgres) => {
                bail!("ACCOUNTD_SECRET_KEY is required with a PostgreSQL DATABASE_URL")
            }
            (None, Database::Embedded | Database::SqliteFile(_)) => self.embedded_key()?,
        };
        let current = decode_key(&current).context("ACCOUNTD_SECRET_KEY")?;
        let older = self
            .previous_secret_keys
            .iter()
            .map(|k| decode_key(k).context("ACCOUNTD_PREVIOUS_SECRET_KEYS"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Keyring::new(current, older))
    }

    fn embedded_key(&self) -> anyhow::Result<String> {
        let path = self.data_dir.join("secret.key");
        if let Ok(existing) = std::fs::read_to_string(&path) {
            return Ok(existing.trim().to_owned());
        }
        private_dir(&self.data_dir)?;
        let key = generate_key();
        write_private(&path, &key)?;
        tracing::info!(path = %path.display(), "generated a secret key for the embedded store");
        Ok(key)
    }
}

/// Creates `dir` (and its parents) if missing, and makes it its owner's alone (0700): the data
/// folder holds the events, the key and the outbox, which carry personal data and codes.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Creates `path` empty if missing, readable by its owner only (0600); an existing file is left
/// as it is.
fn private_file(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true);
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path).map(drop)
}

/// How long a request waits for a database connection: with PostgreSQL down, requests must
/// answer 503 within a second (issue 12), and the breaker answers the ones after at once.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_millis(500);

/// How long the start-up check waits for PostgreSQL to answer.
const POSTGRES_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// One direct connection before the pool is built, so that an unreachable database is reported
/// at once with its real cause ("Connection refused"): the pool retries refused connections
/// until its acquire timeout and then says only "pool timed out". Returns where it connected
/// (`host:port/database`, no credentials) for messages.
async fn check_postgres(url: &str) -> anyhow::Result<String> {
    let target = commands::store::postgres_target(url)
        .context("DATABASE_URL is not a valid PostgreSQL URL")?;
    match tokio::time::timeout(POSTGRES_CHECK_TIMEOUT, commands::store::check_postgres(url)).await {
        Ok(Ok(())) => Ok(target),
        Ok(Err(e)) => Err(e).with_context(|| format!("connecting to PostgreSQL at {target}")),
        Err(_) => bail!(
            "connecting to PostgreSQL at {target}: no answer within {} s",
            POSTGRES_CHECK_TIMEOUT.as_secs()
        ),
    }
}

/// Opens the embedded store in `path`.
async fn open_sqlite(path: &Path) -> anyhow::Result<Store> {
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("creating the folder {}", folder.display()))?;
    }
    Store::open_sqlite(path)
        .await
        .with_context(|| format!("opening the embedded store {}", path.display()))
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(url: &str) -> String {
        format!("{:#}", Database::parse(Some(url)).unwrap_err())
    }

    #[test]
    fn database_url_names_postgres_or_a_sqlite_file() {
        assert_eq!(Database::parse(None).unwrap(), Database::Embedded);
        for url in [
            "postgres://u:p@db:5432/accounts",
            "postgresql://db/accounts",
        ] {
            assert_eq!(Database::parse(Some(url)).unwrap(), Database::Postgres);
        }
        assert_eq!(
            Database::parse(Some("sqlite:///var/lib/accountd/events.db")).unwrap(),
            Database::SqliteFile(PathBuf::from("/var/lib/accountd/events.db"))
        );
        assert_eq!(
            Database::parse(Some("sqlite://data/events.db")).unwrap(),
            Database::SqliteFile(PathBuf::from("data/events.db"))
        );
        assert_eq!(
            Database::parse(Some("sqlite:events.db")).unwrap(),
            Database::SqliteFile(PathBuf::from("events.db"))
        );
    }

    #[test]
    fn the_new_sign_in_notice_is_off_on_the_development_start_and_thirty_days_elsewhere() {
        let days = |vars: &[(&str, &str)]| {
            let vars: std::collections::HashMap<String, String> = vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            Config::from_vars(|name| vars.get(name).cloned()).map(|c| c.new_sign_in_notice_days)
        };
        assert_eq!(days(&[]).unwrap(), 0);
        assert_eq!(
            days(&[("DATABASE_URL", "postgres://db/accounts")]).unwrap(),
            30
        );
        assert_eq!(
            days(&[("DATABASE_URL", "sqlite:///var/lib/a.db")]).unwrap(),
            30
        );
        let set = [
            ("DATABASE_URL", "postgres://db/accounts"),
            ("ACCOUNTD_NEW_SIGN_IN_NOTICE_DAYS", "0"),
        ];
        assert_eq!(days(&set).unwrap(), 0);
        assert_eq!(
            days(&[("ACCOUNTD_NEW_SIGN_IN_NOTICE_DAYS", "7")]).unwrap(),
            7
        );
        let refused = days(&[("ACCOUNTD_NEW_SIGN_IN_NOTICE_DAYS", "-1")]).unwrap_err();
        assert!(
            format!("{refused:#}").contains("number of days"),
            "{refused:#}"
        );
    }

    #[test]
    fn other_database_urls_are_refused_saying_what_is_accepted() {
        assert!(refusal("mysql://db/accounts").contains("postgres://"));
        assert!(refusal("sqlite::memory:").contains("in-memory"));
        assert!(refusal("sqlite://").contains("file path"));
        assert!(refusal("sqlite://x.db?mode=ro").contains("without ?options"));
        assert!(refusal("accounts").contains("sqlite://PATH"));
        let bad_port = refusal("postgres://u:secret@db:notaport/accounts");
        assert!(
            bad_port.contains("not a valid PostgreSQL URL"),
            "{bad_port}"
        );
        assert!(!bad_port.contains("secret"), "{bad_port}");
    }

    #[test]
    fn a_sqlite_file_keeps_its_key_in_the_data_folder() {
        let dir = std::env::temp_dir().join(format!("accountd_cfg_{}", uuid::Uuid::new_v4()));
        let dir_text = dir.display().to_string();
        let config = Config::from_vars(|name| match name {
            "DATABASE_URL" => Some("sqlite://elsewhere.db".to_owned()),
            "ACCOUNTD_DATA_DIR" => Some(dir_text.clone()),
            _ => None,
        })
        .unwrap();
        assert!(config.keyring().is_ok(), "no ACCOUNTD_SECRET_KEY needed");
        assert!(dir.join("secret.key").exists());
        let _ = std::fs::remove_dir_all(dir);
    }
}
