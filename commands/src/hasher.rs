//! Argon2id on a bounded blocking pool. A hash holds ~19 MiB and ~20 ms of a core, so at most
//! `cores` run at once, at most `queue` more wait, and anything beyond is refused at once with
//! [`Overloaded`] (the gateway answers 503 with `Retry-After`) instead of queueing without bound.

use std::sync::Arc;

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::Argon2;
use domain::password::Password;
use domain::PasswordHash;
use rand::Rng;
use tokio::sync::Semaphore;

/// Hashing capacity is full: try again shortly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("password hashing capacity is full")]
pub struct Overloaded;

#[derive(Clone, Debug)]
pub struct PasswordHasher {
    /// Admission: running plus waiting hashes.
    admitted: Arc<Semaphore>,
    /// Hashes running on blocking threads at once.
    running: Arc<Semaphore>,
}

impl PasswordHasher {
    /// `parallelism` hashes at once (the cores), `queue` more waiting.
    pub fn new(parallelism: usize, queue: usize) -> Self {
        let parallelism = parallelism.max(1);
        Self {
            admitted: Arc::new(Semaphore::new(parallelism + queue)),
            running: Arc::new(Semaphore::new(parallelism)),
        }
    }

    /// One hash per core, and as many waiting.
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self::new(cores, cores * 2)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Overloaded> {
        let _admitted = self
            .admitted
            .clone()
            .try_acquire_owned()
            .map_err(|_| Overloaded)?;
        let _running = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Overloaded)?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|_| Overloaded)
    }

    /// A fresh Argon2id (default parameters: m 19 MiB, t 2, p 1) PHC string.
    pub async fn hash(&self, password: &Password) -> Result<PasswordHash, Overloaded> {
        let secret = password.expose_secret().to_owned();
        self.run(move || {
            let salt: [u8; 16] = rand::rng().random();
            let phc = Argon2::default()
                .hash_password_with_salt(secret.as_bytes(), &salt)
                .expect("Argon2 with default parameters and a 16-byte salt cannot fail")
                .to_string();
            PasswordHash::from_phc(phc)
        })
        .await
    }

    /// Whether `candidate` matches `hash`. A malformed stored hash never matches.
    pub async fn verify(&self, candidate: &str, hash: &PasswordHash) -> Result<bool, Overloaded> {
        let candidate = candidate.to_owned();
        let phc = hash.as_phc().to_owned();
        self.run(move || {
            Argon2::default()
                .verify_password(candidate.as_bytes(), phc.as_str())
                .is_ok()
        })
        .await
    }

    /// Whether `candidate` matches any of `hashes` (the password history), checking all of
    /// them so the time does not tell which one matched.
    pub async fn matches_any(
        &self,
        candidate: &str,
        hashes: Vec<PasswordHash>,
    ) -> Result<bool, Overloaded> {
        let mut found = false;
        for hash in &hashes {
            found |= self.verify(candidate, hash).await?;
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::password::PasswordPolicy;

    fn password(p: &str) -> Password {
        Password::parse(p, &PasswordPolicy::default()).unwrap()
    }

    #[tokio::test]
    async fn a_hash_is_argon2id_and_verifies_only_its_password() {
        let hasher = PasswordHasher::new(2, 2);
        let hash = hasher.hash(&password("Tq7#vLm2!x")).await.unwrap();
        assert!(hash.as_phc().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(hasher.verify("Tq7#vLm2!x", &hash).await.unwrap());
        assert!(!hasher.verify("Tq7#vLm2!y", &hash).await.unwrap());
        assert!(!hasher
            .verify("Tq7#vLm2!x", &PasswordHash::from_phc("garbage"))
            .await
            .unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn beyond_its_capacity_the_hasher_refuses_at_once() {
        let hasher = PasswordHasher::new(1, 1);
        let p = password("Tq7#vLm2!x");
        let hash = hasher.hash(&p).await.unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let hasher = hasher.clone();
                let hash = hash.clone();
                tokio::spawn(async move { hasher.verify("Tq7#vLm2!x", &hash).await })
            })
            .collect();
        let mut refused = 0;
        let mut done = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(true) => done += 1,
                Err(Overloaded) => refused += 1,
                Ok(false) => panic!("the right password must verify"),
            }
        }
        assert!(done >= 1, "admitted work completes");
        assert!(refused >= 1, "work beyond capacity is refused, not queued");
    }
}
