//! A circuit breaker in front of the store, so that a database outage is answered at once.
//!
//! Without it, every request during a PostgreSQL outage waits for the pool's acquire timeout
//! before it fails. With it, the first request that fails on the store starts a probe (a
//! `SELECT 1` with its own short deadline); if the probe fails too, the breaker opens and every
//! request answers 503 `unavailable` with `Retry-After` straight away, while the prober keeps
//! trying every [`BreakerSettings::probe_every`]. The first probe that succeeds closes the
//! breaker again: the process recovers without a restart.
//!
//! A failure is confirmed by a probe before the breaker opens, so one failed statement (a
//! constraint, a corrupt row) never turns the service away. The prober is one task at a time,
//! so a burst of failures costs one probe, not one per request.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

/// A health check of the guarded dependency: `Ok` when it answers.
pub type Probe = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// How the breaker probes.
#[derive(Debug, Clone, Copy)]
pub struct BreakerSettings {
    /// The longest one probe may take; longer counts as a failure.
    pub probe_timeout: Duration,
    /// The pause between probes while the breaker is open.
    pub probe_every: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            probe_timeout: Duration::from_millis(500),
            probe_every: Duration::from_millis(250),
        }
    }
}

/// The breaker; cloning shares it.
#[derive(Clone)]
pub struct Breaker {
    inner: Arc<Inner>,
}

struct Inner {
    /// Requests are turned away while this is set.
    open: AtomicBool,
    /// A prober task is running (at most one).
    probing: AtomicBool,
    probe: Probe,
    settings: BreakerSettings,
}

impl std::fmt::Debug for Breaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Breaker")
            .field("open", &self.is_open())
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl Breaker {
    pub fn new(probe: Probe, settings: BreakerSettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                open: AtomicBool::new(false),
                probing: AtomicBool::new(false),
                probe,
                settings,
            }),
        }
    }

    /// A breaker whose probe is `check`.
    pub fn probing<F, Fut>(check: F, settings: BreakerSettings) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        Self::new(Arc::new(move || Box::pin(check())), settings)
    }

    /// Whether requests should be turned away now.
    pub fn is_open(&self) -> bool {
        self.inner.open.load(Ordering::Acquire)
    }

    /// A request failed on the guarded dependency: probe it in the background, and keep the
    /// breaker open from the first failed probe until one succeeds. Returns at once.
    pub fn report_failure(&self) {
        if self.inner.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let inner = Arc::clone(&self.inner);
        tokio::spawn(async move { inner.probe_until_healthy().await });
    }
}

impl Inner {
    async fn probe_until_healthy(&self) {
        loop {
            let outcome =
                match tokio::time::timeout(self.settings.probe_timeout, (self.probe)()).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err(format!(
                        "no answer within {} ms",
                        self.settings.probe_timeout.as_millis()
                    )),
                };
            match outcome {
                Ok(()) => {
                    if self.open.swap(false, Ordering::AcqRel) {
                        tracing::info!("the store answers again: breaker closed");
                    }
                    self.probing.store(false, Ordering::Release);
                    return;
                }
                Err(reason) => {
                    if !self.open.swap(true, Ordering::AcqRel) {
                        tracing::warn!(%reason, "the store does not answer: breaker open, requests fail fast");
                    }
                }
            }
            tokio::time::sleep(self.settings.probe_every).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Instant;

    /// Short periods so that the tests run in real time quickly (the paused clock needs tokio's
    /// test-util feature, which would rebuild tokio and everything on it for tests).
    const FAST: BreakerSettings = BreakerSettings {
        probe_timeout: Duration::from_millis(50),
        probe_every: Duration::from_millis(10),
    };

    /// A dependency the test switches up and down, counting probes.
    #[derive(Default)]
    struct Switch {
        down: AtomicBool,
        probes: AtomicUsize,
    }

    impl Switch {
        fn probes(&self) -> usize {
            self.probes.load(Ordering::SeqCst)
        }
    }

    fn breaker_on(switch: &Arc<Switch>) -> Breaker {
        let switch = Arc::clone(switch);
        Breaker::probing(
            move || {
                let switch = Arc::clone(&switch);
                async move {
                    switch.probes.fetch_add(1, Ordering::SeqCst);
                    if switch.down.load(Ordering::SeqCst) {
                        Err("refused".to_owned())
                    } else {
                        Ok(())
                    }
                }
            },
            FAST,
        )
    }

    /// Waits until `condition` holds, failing after two seconds.
    async fn until(what: &str, condition: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while !condition() {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    #[tokio::test]
    async fn a_failure_the_probe_does_not_confirm_leaves_the_breaker_closed() {
        let switch = Arc::new(Switch::default());
        let breaker = breaker_on(&switch);
        breaker.report_failure();
        until("the probe ran", || switch.probes() == 1).await;
        until("the prober stopped", || {
            !breaker.inner.probing.load(Ordering::SeqCst)
        })
        .await;
        assert!(!breaker.is_open());
        assert_eq!(switch.probes(), 1);
    }

    #[tokio::test]
    async fn an_outage_opens_the_breaker_until_a_probe_succeeds() {
        let switch = Arc::new(Switch::default());
        switch.down.store(true, Ordering::SeqCst);
        let breaker = breaker_on(&switch);
        for _ in 0..50 {
            breaker.report_failure();
        }
        until("the breaker opened", || breaker.is_open()).await;
        assert_eq!(switch.probes(), 1, "a burst of failures costs one probe");

        until("it probed again", || switch.probes() >= 5).await;
        assert!(breaker.is_open(), "still down: still open");

        switch.down.store(false, Ordering::SeqCst);
        until("the breaker closed", || !breaker.is_open()).await;
        until("the prober stopped", || {
            !breaker.inner.probing.load(Ordering::SeqCst)
        })
        .await;
        let probes = switch.probes();
        breaker.report_failure();
        until("a new failure is probed", || switch.probes() == probes + 1).await;
        assert!(!breaker.is_open());
    }

    #[tokio::test]
    async fn a_probe_that_hangs_counts_as_a_failure() {
        let breaker = Breaker::probing(
            || async {
                std::future::pending::<()>().await;
                Ok(())
            },
            FAST,
        );
        breaker.report_failure();
        until("the breaker opened", || breaker.is_open()).await;
    }
}
