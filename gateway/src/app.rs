//! The application: every role of accountd in one process (`accountd serve`), also what the
//! end-to-end tests start on port 0.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use commands::hasher::PasswordHasher;
use commands::CommandService;
use domain::password::PasswordPolicy;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::breaker::{Breaker, BreakerSettings};
use crate::config::Config;
use crate::http::extract::Role;
use crate::http::{self, AppState, Handles, HttpConfig, Notifications};
use crate::wiring::{ReadDirectory, ReadSessions, StoreLog};

/// The metrics recorder is process-wide: installed once, shared by every application.
fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<PrometheusHandle>> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| PrometheusBuilder::new().install_recorder().ok())
        .clone()
}

/// The breaker in front of the store, probing it with `SELECT 1`.
fn store_breaker(store: &commands::Store) -> Breaker {
    let store = store.clone();
    Breaker::probing(
        move || {
            let store = store.clone();
            async move { store.ping().await.map_err(|e| e.to_string()) }
        },
        BreakerSettings::default(),
    )
}

/// A built application, listening, not yet serving.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    /// Background roles to run beside the HTTP server.
    workers: Vec<Worker>,
}

/// A background role: given a shutdown signal, runs until it fires.
pub type Worker =
    Box<dyn FnOnce(watch::Receiver<bool>) -> futures::future::BoxFuture<'static, ()> + Send>;

/// Resolves when `shutdown` turns true.
pub async fn stopped(mut shutdown: watch::Receiver<bool>) {
    while !*shutdown.borrow() {
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

impl Application {
    /// Opens the store, migrates, builds the services and binds the listener.
    pub async fn build(
        config: Config,
        notifications: Arc<dyn Notifications>,
    ) -> anyhow::Result<Self> {
        let store = config.open_store().await?;
        let read = config.open_read_store().await?;
        let keyring = config.keyring()?;
        let service = CommandService::new(
            store.clone(),
            keyring,
            PasswordHasher::for_this_machine(),
            PasswordPolicy::default(),
        )
        .with_directory(Arc::new(ReadDirectory(read.clone())))
        .with_sessions(Arc::new(ReadSessions(read.clone())))
        .with_new_sign_in_notice_days(config.new_sign_in_notice_days);
        let service_tokens = config
            .service_tokens
            .iter()
            .filter_map(|(role, token)| Role::parse(role).map(|r| (r, token.clone())))
            .collect();
        let state = AppState::new(Handles {
            service: service.clone(),
            store: store.clone(),
            read: read.clone(),
            notifications,
            audit: Arc::new(crate::audit::service(
                &store,
                read.clone(),
                PasswordPolicy::default().reminder_after_days,
            )),
            http: Arc::new(HttpConfig {
                ip_rate_limit: config.ip_rate_limit,
                trusted_proxy_header: config.trusted_proxy_header.clone(),
                service_tokens,
                reminder_after_days: PasswordPolicy::default().reminder_after_days,
                request_timeout: Duration::from_secs(15),
                body_read_timeout: Duration::from_secs(10),
                header_read_timeout: Duration::from_secs(10),
            }),
            metrics: metrics_handle(),
            breaker: store_breaker(&store),
            after_answer: tokio_util::task::TaskTracker::new(),
        });
        let listener = TcpListener::bind(config.bind)
            .await
            .with_context(|| format!("binding {}", config.bind))?;

        Ok(Self {
            listener,
            state,
            workers: Vec::new(),
        })
    }

    /// Every role in one process, as `accountd serve` runs it, and as the end-to-end tests start
    /// it (one composition for both): the bus (in-process unless `NATS_URL` is set), the HTTP
    /// gateway, the projector, and the relay, notifier, reminder sweep and audit anchors.
    pub async fn serve(config: &Config) -> anyhow::Result<Self> {
        let bus = crate::workers::connect_bus(config).await?;
        let notifications = Arc::new(crate::workers::BusNotifications(bus.clone()));
        let app = Self::build(config.clone(), notifications).await?;
        let projector = app.projector();
        crate::workers::attach(app.with_worker(projector), config, bus)
    }

    /// The projector as a background role (keeps the read models).
    pub fn projector(&self) -> Worker {
        let log = Arc::new(StoreLog(self.state.store.clone()));
        let commits = self.state.service.executor().commits();
        let read = self.state.read.clone();
        Box::new(move |shutdown| {
            Box::pin(async move {
                projections::Projector::new(log, read)
                    .run(commits, stopped(shutdown))
                    .await;
            })
        })
    }

    /// Adds a background role.
    pub fn with_worker(mut self, worker: Worker) -> Self {
        self.workers.push(worker);
        self
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or_default()
    }

    /// Serves until `shutdown` resolves: stops accepting, finishes in-flight requests (for at
    /// most 10 seconds) and the work they left running after their answer (10 seconds more at
    /// most), then stops the background roles.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop, stopping) = watch::channel(false);
        let tasks: Vec<_> = self
            .workers
            .into_iter()
            .map(|worker| tokio::spawn(worker(stopping.clone())))
            .collect();
        let header_read_timeout = self.state.http.header_read_timeout;
        let after_answer = self.state.after_answer.clone();
        let app = http::router(self.state);
        let (drained_tx, drained_rx) = tokio::sync::oneshot::channel::<()>();
        let server = http::serve::serve(self.listener, app, header_read_timeout, async move {
            shutdown.await;
            let _ = drained_tx.send(());
        });
        let served = tokio::select! {
            () = server => Ok(()),
            () = async {
                let _ = drained_rx.await;
                tokio::time::sleep(Duration::from_secs(10)).await;
            } => Ok(()),
        };
        // A code, reset link or recovery answered with 202 is sent by this work: it appends
        // the events the notifier then delivers, so the background roles stop only after it.
        after_answer.close();
        if tokio::time::timeout(Duration::from_secs(10), after_answer.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                unfinished = after_answer.len(),
                "work after answers still running at shutdown"
            );
        }
        let _ = stop.send(true);
        for task in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        served
    }
}
