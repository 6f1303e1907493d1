//! Argon2id on a bounded blocking pool, in preallocated memory.
//!
//! A hash holds ~19 MiB and ~20 ms of a core, so at most `parallelism` run at once (the cores).
//! Work beyond that waits in a queue of at most `queue` entries for at most
//! [`PasswordHasher::max_wait`]; only then, or when the queue is full, is it refused with
//! [`Overloaded`] (the gateway answers 503 with `Retry-After`). Queueing instead of refusing at
//! once lets a burst of sign-ins complete at the machine's Argon2 rate instead of failing.
//!
//! Memory: each running hash uses one of `parallelism` block buffers, allocated on first use
//! and reused for every later hash. Letting the argon2 crate allocate per hash left hundreds of
//! MiB resident under load: glibc raises its mmap threshold after the first large free, so the
//! next 19 MiB buffers come from per-thread arenas that are never given back (issue 12).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::password_hash::phc::{self, Output, ParamsString, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use domain::password::Password;
use domain::PasswordHash;
use rand::Rng;
use tokio::sync::Semaphore;

/// Hashing capacity is full: try again shortly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("password hashing capacity is full")]
pub struct Overloaded;

/// How long a hash may wait for a core before it is refused, unless configured otherwise:
/// below the HTTP request timeout (15 s), above the wait of a full queue on two cores.
const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(8);

#[derive(Clone, Debug)]
pub struct PasswordHasher {
    /// Admission: running plus waiting hashes.
    admitted: Arc<Semaphore>,
    /// Hashes running on blocking threads at once; a permit guarantees a free buffer in `memory`.
    running: Arc<Semaphore>,
    /// Block buffers not in use, at most one per running permit.
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
    /// The longest a hash waits for a running permit.
    max_wait: Duration,
}

/// The parameters of new hashes: the crate's defaults (m 19 MiB, t 2, p 1), which the stored
/// hashes and the decoy in the sign-in flow use.
fn params() -> Params {
    Params::DEFAULT
}

impl PasswordHasher {
    /// `parallelism` hashes at once (the cores), `queue` more waiting.
    pub fn new(parallelism: usize, queue: usize) -> Self {
        let parallelism = parallelism.max(1);
        Self {
            admitted: Arc::new(Semaphore::new(parallelism + queue)),
            running: Arc::new(Semaphore::new(parallelism)),
            memory: Arc::new(Mutex::new(Vec::with_capacity(parallelism))),
            max_wait: DEFAULT_MAX_WAIT,
        }
    }

    /// One hash per core, and up to 64 per core waiting (a few seconds of work at ~25 hashes/s
    /// per core; a waiting hash costs only a small future).
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self::new(cores, cores * 64)
    }

    /// The longest a hash may wait for a core before it is refused.
    pub fn with_max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    pub fn max_wait(&self) -> Duration {
        self.max_wait
    }

    /// Runs `work` on a blocking thread with a block buffer, once a core is free.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, Overloaded> {
        let _admitted = self
            .admitted
            .clone()
            .try_acquire_owned()
            .map_err(|_| Overloaded)?;
        let _running = tokio::time::timeout(self.max_wait, self.running.clone().acquire_owned())
            .await
            .map_err(|_| Overloaded)?
            .map_err(|_| Overloaded)?;
        let memory = self.memory.clone();
        tokio::task::spawn_blocking(move || {
            // The lock is held only to push or pop; a panic elsewhere cannot leave the list
            // half-changed, so a poisoned lock is still sound to use.
            let taken = memory.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let mut blocks = taken.unwrap_or_default();
            let result = work(&mut blocks);
            memory
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(blocks);
            result
        })
        .await
        .map_err(|_| Overloaded)
    }

    /// A fresh Argon2id PHC string.
    pub async fn hash(&self, password: &Password) -> Result<PasswordHash, Overloaded> {
        let secret = password.expose_secret().to_owned();
        self.run(move |blocks| {
            let salt: [u8; 16] = rand::rng().random();
            let params = params();
            let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
            Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
                .hash_password_into_with_memory(
                    secret.as_bytes(),
                    &salt,
                    &mut out,
                    sized(blocks, params.block_count()),
                )
                .expect("Argon2 with default parameters and a 16-byte salt cannot fail");
            let phc = phc::PasswordHash {
                algorithm: argon2::ARGON2ID_IDENT,
                version: Some(Version::V0x13.into()),
                params: ParamsString::try_from(&params)
                    .expect("the default parameters always encode"),
                salt: Some(Salt::new(&salt).expect("16 bytes is a valid salt length")),
                hash: Some(Output::new(&out).expect("32 bytes is a valid output length")),
            };
            PasswordHash::from_phc(phc.to_string())
        })
        .await
    }

    /// Whether `candidate` matches `hash`. A malformed stored hash never matches.
    pub async fn verify(&self, candidate: &str, hash: &PasswordHash) -> Result<bool, Overloaded> {
        let candidate = candidate.to_owned();
        let phc = hash.as_phc().to_owned();
        self.run(move |blocks| verify_in(blocks, candidate.as_bytes(), &phc))
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

/// The first `count` blocks of the pooled buffer, grown to the default size on first use. A
/// stored hash with larger parameters (none is written today) gets a buffer of its own, so the
/// pooled memory never grows past one default hash per core.
fn sized(blocks: &mut Vec<Block>, count: usize) -> BlocksFor<'_> {
    let pooled = params().block_count();
    if count > pooled {
        return BlocksFor::Own(vec![Block::new(); count]);
    }
    if blocks.len() < pooled {
        blocks.resize(pooled, Block::new());
    }
    BlocksFor::Pooled(&mut blocks[..count])
}

/// Memory for one hash: a slice of the pooled buffer, or a one-off buffer.
enum BlocksFor<'a> {
    Pooled(&'a mut [Block]),
    Own(Vec<Block>),
}

impl AsMut<[Block]> for BlocksFor<'_> {
    fn as_mut(&mut self) -> &mut [Block] {
        match self {
            Self::Pooled(blocks) => blocks,
            Self::Own(blocks) => blocks,
        }
    }
}

/// Recomputes the hash of `password` with the stored hash's algorithm, version, parameters and
/// salt into `blocks`, and compares the outputs in constant time (`Output`'s `PartialEq`).
fn verify_in(blocks: &mut Vec<Block>, password: &[u8], stored: &str) -> bool {
    let Ok(parsed) = phc::PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    // Sets the output length from the stored hash as well.
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut out = [0u8; Output::MAX_LENGTH];
    let Some(out) = out.get_mut(..expected.len()) else {
        return false;
    };
    let count = params.block_count();
    let computed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password,
        salt,
        out,
        sized(blocks, count),
    );
    computed.is_ok() && Output::new(out).is_ok_and(|out| out == *expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::PasswordVerifier as _;
    use domain::password::PasswordPolicy;

    fn password(p: &str) -> Password {
        Password::parse(p, &PasswordPolicy::default()).unwrap()
    }

    /// `verify("Tq7#vLm2!x", hash)` on `tasks` concurrent tasks: (matched, refused).
    async fn burst(hasher: &PasswordHasher, hash: &PasswordHash, tasks: usize) -> (usize, usize) {
        let tasks: Vec<_> = (0..tasks)
            .map(|_| {
                let hasher = hasher.clone();
                let hash = hash.clone();
                tokio::spawn(async move { hasher.verify("Tq7#vLm2!x", &hash).await })
            })
            .collect();
        let (mut matched, mut refused) = (0, 0);
        for t in tasks {
            match t.await.unwrap() {
                Ok(true) => matched += 1,
                Err(Overloaded) => refused += 1,
                Ok(false) => panic!("the right password must verify"),
            }
        }
        (matched, refused)
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

    #[tokio::test]
    async fn hashes_stay_compatible_with_the_argon2_crates_own_format() {
        let hasher = PasswordHasher::new(1, 1);
        let ours = hasher.hash(&password("Tq7#vLm2!x")).await.unwrap();
        assert!(Argon2::default()
            .verify_password(b"Tq7#vLm2!x", ours.as_phc())
            .is_ok());
        // Stored before the pooled memory, and with other parameters (m 64 KiB, t 1, 16-byte
        // output): both still verify.
        for params in [Params::DEFAULT, Params::new(64, 1, 1, Some(16)).unwrap()] {
            let theirs = argon2::password_hash::PasswordHasher::hash_password_with_salt(
                &Argon2::from(params),
                b"Tq7#vLm2!x",
                b"somesaltsomesalt",
            )
            .unwrap()
            .to_string();
            let theirs = PasswordHash::from_phc(theirs);
            assert!(hasher.verify("Tq7#vLm2!x", &theirs).await.unwrap());
            assert!(!hasher.verify("Tq7#vLm2!y", &theirs).await.unwrap());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_beyond_the_cores_waits_in_the_queue_and_completes() {
        let hasher = PasswordHasher::new(1, 7);
        let hash = hasher.hash(&password("Tq7#vLm2!x")).await.unwrap();
        assert_eq!(burst(&hasher, &hash, 8).await, (8, 0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn beyond_the_queue_the_hasher_refuses_at_once() {
        let hasher = PasswordHasher::new(1, 1);
        let hash = hasher.hash(&password("Tq7#vLm2!x")).await.unwrap();
        let (matched, refused) = burst(&hasher, &hash, 8).await;
        assert!(matched >= 1, "admitted work completes");
        assert!(refused >= 1, "work beyond the queue is refused");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn work_that_waits_longer_than_the_bound_is_refused() {
        let hasher = PasswordHasher::new(1, 64).with_max_wait(Duration::from_millis(1));
        let hash = PasswordHasher::new(1, 1)
            .hash(&password("Tq7#vLm2!x"))
            .await
            .unwrap();
        // A hash takes far longer than 1 ms, so the ones behind the first give up waiting.
        let (matched, refused) = burst(&hasher, &hash, 8).await;
        assert!(matched >= 1, "the first hash runs");
        assert!(refused >= 1, "the ones waiting past the bound are refused");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory_is_one_reused_buffer_per_core_however_many_hashes_run() {
        let hasher = PasswordHasher::new(2, 64);
        let hash = hasher.hash(&password("Tq7#vLm2!x")).await.unwrap();
        assert_eq!(burst(&hasher, &hash, 12).await, (12, 0));
        let pooled = hasher.memory.lock().unwrap();
        assert!(
            (1..=2).contains(&pooled.len()),
            "{} buffers kept",
            pooled.len()
        );
        assert!(pooled
            .iter()
            .all(|b| b.len() == Params::DEFAULT.block_count()));
    }
}
