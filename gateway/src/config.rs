//! Typed configuration from the environment (SPEC §7). No host, port or secret lives in code
//! beyond the documented defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use commands::secrets::{decode_key, generate_key, Keyring};
use commands::Store;

#[derive(Debug, Clone)]
pub struct Config {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    /// `ACCOUNTD_SECRET_KEY`; generated into the data folder on the embedded store.
    secret_key: Option<String>,
    /// `ACCOUNTD_PREVIOUS_SECRET_KEYS`: older keys, comma-separated, still accepted for opening
    /// sealed values after a rotation.
    previous_secret_keys: Vec<String>,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        let bind = var("ACCOUNTD_BIND")
            .unwrap_or_else(|| "127.0.0.1:8080".to_owned())
            .parse()
            .context("ACCOUNTD_BIND must be host:port")?;
        Ok(Self {
            bind,
            data_dir: var("ACCOUNTD_DATA_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("./data")),
            database_url: var("DATABASE_URL"),
            secret_key: var("ACCOUNTD_SECRET_KEY"),
            previous_secret_keys: var("ACCOUNTD_PREVIOUS_SECRET_KEYS")
                .map(|v| v.split(',').map(|k| k.trim().to_owned()).collect())
                .unwrap_or_default(),
        })
    }

    /// Opens the configured store (PostgreSQL when `DATABASE_URL` is set, else the embedded
    /// SQLite file in the data folder) and migrates it.
    pub async fn open_store(&self) -> anyhow::Result<Store> {
        let store = match &self.database_url {
            Some(url) => Store::connect_postgres(url, 32)
                .await
                .context("connecting to PostgreSQL (DATABASE_URL)")?,
            None => {
                std::fs::create_dir_all(&self.data_dir).with_context(|| {
                    format!("creating the data folder {}", self.data_dir.display())
                })?;
                Store::open_sqlite(&self.data_dir.join("accountd.db"))
                    .await
                    .context("opening the embedded store")?
            }
        };
        store.migrate().await.context("migrating the store")?;
        Ok(store)
    }

    /// The keyring: `ACCOUNTD_SECRET_KEY`, or on the embedded store a key file generated into
    /// the data folder on first start. PostgreSQL deployments must configure the key.
    pub fn keyring(&self) -> anyhow::Result<Keyring> {
        let current = match (&self.secret_key, &self.database_url) {
            (Some(key), _) => key.clone(),
            (None, Some(_)) => bail!("ACCOUNTD_SECRET_KEY is required with DATABASE_URL"),
            (None, None) => self.embedded_key()?,
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
        std::fs::create_dir_all(&self.data_dir)?;
        let key = generate_key();
        write_private(&path, &key)?;
        tracing::info!(path = %path.display(), "generated a secret key for the embedded store");
        Ok(key)
    }
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
