//! The fault suite of issue 11: real processes, real faults, nothing lost.
//!
//! A private PostgreSQL (initdb into a temp folder, a free loopback port) and a private
//! `nats-server -js` (free port, temp store) are started by the test, and two `accountd serve`
//! processes (the real binary) run against them, each with its own file sink. Clients sign up
//! through both while the test kills things:
//! 1. kill -9 of the process holding the locks (relay, projector, planner);
//! 2. kill -9 of the other one, a notification worker with claimed rows;
//! 3. NATS killed and started again;
//! 4. PostgreSQL stopped and started again.
//!
//! After each: every acknowledged sign-up's events exist, the `ACCOUNT_EVENTS` stream holds
//! exactly the store's account events, every message the events ask for (derived from the events
//! by the notifier's own planning rules) was sent exactly once or is a visible dead letter
//! (duplicates can only come from the window between a send and its mark, and carry the same
//! delivery id), and the read models equal a rebuild. The counts are printed, with the
//! commit-to-send p99 of the messages committed around the worker's kill.
//!
//! The servers and processes are `testkit::procs`'s: killed only by their own PIDs.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use projections::bus::{Bus, BusConfig, StreamKind};
use projections::notifier::plan::{plan_account_event, Contacts, NotifierEvent};
use projections::notifier::senders::OutboxLine;
use projections::notifier::store::delivery_id;
use sqlx::{PgPool, Row};
use testkit::procs::{free_port, scratch_dir, Accountd, PrivateNats, PrivatePostgres};

const PASSWORD: &str = "Faults-Quiet-92x";
/// How long a fault lasts, and how long load runs around it.
const PHASE: Duration = Duration::from_secs(3);
/// Everything settles within this, or the test fails.
const SETTLE: Duration = Duration::from_secs(90);

/// One `accountd serve` slot: its process (when running), port and data folder (its outbox
/// survives restarts).
struct Serve {
    name: &'static str,
    port: u16,
    data: PathBuf,
    env: Vec<(String, String)>,
    process: Option<Accountd>,
}

impl Serve {
    fn new(name: &'static str, env: &[(String, String)]) -> Self {
        let port = free_port();
        let data = scratch_dir(name);
        let mut env = env.to_vec();
        env.push(("ACCOUNTD_BIND".into(), format!("127.0.0.1:{port}")));
        env.push(("ACCOUNTD_DATA_DIR".into(), data.display().to_string()));
        env.push(("RUST_LOG".into(), "warn".into()));
        Self {
            name,
            port,
            data,
            env,
            process: None,
        }
    }

    async fn start(&mut self) {
        let log = self.data.join("serve.log");
        self.process = Some(Accountd::start(self.name, &["serve"], &self.env, log));
        let health = format!("http://127.0.0.1:{}/healthz", self.port);
        let client = reqwest::Client::new();
        testkit::poll(
            &format!("accountd {} to be healthy", self.name),
            Duration::from_secs(60),
            || async {
                let answer = client.get(&health).send().await.ok()?;
                answer.status().is_success().then_some(())
            },
        )
        .await;
    }

    /// SIGKILL, by its PID.
    async fn kill9(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill().await;
        }
    }

    /// Every message of its file sink.
    fn outbox(&self) -> Vec<OutboxLine> {
        OutboxLine::read_all(&gateway::workers::outbox_path(&self.data)).unwrap()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        // Dropping the process kills it (by its PID) before its folder goes.
        self.process.take();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// Clients signing up through both processes until stopped; remembers what was acknowledged.
struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    acknowledged: Arc<Mutex<Vec<String>>>,
}

impl Load {
    fn start(ports: [u16; 2], round: usize, clients: usize, sequence: Arc<AtomicUsize>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let acknowledged = Arc::new(Mutex::new(Vec::new()));
        let tasks = (0..clients)
            .map(|client| {
                let stop = stop.clone();
                let acknowledged = acknowledged.clone();
                let sequence = sequence.clone();
                tokio::spawn(async move {
                    let http = reqwest::Client::builder()
                        .timeout(Duration::from_secs(5))
                        .build()
                        .expect("an HTTP client");
                    while !stop.load(Ordering::Relaxed) {
                        let n = sequence.fetch_add(1, Ordering::Relaxed);
                        let port = ports[(client + n) % 2];
                        let answer = http
                            .post(format!("http://127.0.0.1:{port}/v1/accounts"))
                            .json(&serde_json::json!({
                                "login_email": format!("r{round}.n{n}@faults.example.com"),
                                "password": PASSWORD,
                            }))
                            .send()
                            .await;
                        match answer {
                            Ok(r) if r.status() == reqwest::StatusCode::CREATED => {
                                let body: serde_json::Value = r.json().await.unwrap_or_default();
                                if let Some(id) = body["account_id"].as_str() {
                                    acknowledged.lock().unwrap().push(id.to_owned());
                                }
                            }
                            // Refused or failed (a process or the database is down): not
                            // acknowledged, so nothing is owed; try the next one.
                            _ => tokio::time::sleep(Duration::from_millis(20)).await,
                        }
                    }
                })
            })
            .collect();
        Self {
            stop,
            tasks,
            acknowledged,
        }
    }

    async fn finish(self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            let _ = task.await;
        }
        let acknowledged = self.acknowledged.lock().unwrap().clone();
        acknowledged
    }
}

/// What one scenario's check found.
#[derive(Debug, Default)]
struct Counts {
    acknowledged: usize,
    events: usize,
    expected: usize,
    sent: usize,
    dead: usize,
    lost: usize,
    duplicates: usize,
}

async fn pool(url: &str) -> PgPool {
    testkit::poll("PostgreSQL to answer", Duration::from_secs(30), || async {
        PgPool::connect(url).await.ok()
    })
    .await
}

/// Waits until the relay, the projector and the planner are at the head of the log and no
/// delivery is left to try.
async fn settle(db: &PgPool) {
    let deadline = Instant::now() + SETTLE;
    loop {
        let row = sqlx::query(
            "SELECT (SELECT coalesce(max(position), 0) FROM events), \
                    (SELECT coalesce(max(position), 0) FROM relay_checkpoints), \
                    (SELECT coalesce(max(position), 0) FROM projection_checkpoints \
                      WHERE name = 'profiles'), \
                    (SELECT coalesce(max(position), 0) FROM notifier_checkpoints), \
                    (SELECT count(*) FROM notification_deliveries \
                      WHERE state IN ('pending', 'sending')), \
                    (SELECT count(*) FROM notification_requests)",
        )
        .fetch_one(db)
        .await;
        if let Ok(row) = row {
            let head: i64 = row.get(0);
            let settled = row.get::<i64, _>(1) == head
                && row.get::<i64, _>(2) == head
                && row.get::<i64, _>(3) == head
                && row.get::<i64, _>(4) == 0
                && row.get::<i64, _>(5) == 0;
            if settled {
                return;
            }
        }
        assert!(Instant::now() < deadline, "the system never settled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The delivery ids the account events ask for, with the commit time of their event: the
/// notifier's planning rules folded over the store, in each account's order.
async fn expected_messages(db: &PgPool) -> (usize, HashMap<String, DateTime<Utc>>) {
    let rows = sqlx::query(
        "SELECT aggregate_id, sequence, event_type, payload::text, recorded_at FROM events \
         WHERE aggregate_type = 'Account' ORDER BY aggregate_id, sequence",
    )
    .fetch_all(db)
    .await
    .unwrap();
    let mut folds: HashMap<String, Contacts> = HashMap::new();
    let mut expected = HashMap::new();
    for row in &rows {
        let account: String = row.get(0);
        let sequence = u64::try_from(row.get::<i64, _>(1)).unwrap();
        let payload: serde_json::Value = serde_json::from_str(&row.get::<String, _>(3)).unwrap();
        let event = NotifierEvent::parse(&row.get::<String, _>(2), payload).unwrap();
        let fold = folds.entry(account.clone()).or_default();
        let plan = plan_account_event(&account, sequence, &event, fold);
        for m in plan.messages {
            expected.insert(
                delivery_id(&plan.source_id, m.channel.as_str(), &m.recipient),
                row.get(4),
            );
        }
    }
    (rows.len(), expected)
}

/// Checks everything after a scenario; returns the counts and the commit-to-send latency of
/// each message (ms), by delivery id.
async fn check(
    db: &PgPool,
    nats_url: &str,
    serves: &[&Serve],
    acknowledged: &[String],
) -> (Counts, HashMap<String, f64>) {
    settle(db).await;
    // Every acknowledged sign-up's events exist.
    let accounts: BTreeSet<String> = sqlx::query_scalar(
        "SELECT DISTINCT aggregate_id FROM events WHERE aggregate_type = 'Account'",
    )
    .fetch_all(db)
    .await
    .unwrap()
    .into_iter()
    .collect();
    let missing: Vec<_> = acknowledged
        .iter()
        .filter(|id| !accounts.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not stored: {missing:?}"
    );

    // The stream equals the store.
    let store_ids: BTreeSet<String> = sqlx::query_scalar(
        "SELECT aggregate_id || ':' || sequence FROM events WHERE aggregate_type = 'Account'",
    )
    .fetch_all(db)
    .await
    .unwrap()
    .into_iter()
    .collect();
    let stream_ids = read_stream_ids(nats_url).await;
    assert_eq!(
        stream_ids, store_ids,
        "ACCOUNT_EVENTS holds exactly the store"
    );

    // Every expected message sent exactly once, or a visible dead letter.
    let (events, expected) = expected_messages(db).await;
    let mut sent: HashMap<String, Vec<DateTime<Utc>>> = HashMap::new();
    for serve in serves {
        for line in serve.outbox() {
            sent.entry(line.delivery_id).or_default().push(line.sent_at);
        }
    }
    let dead: BTreeSet<String> = sqlx::query(
        "SELECT source_id, channel, recipient FROM notification_deliveries WHERE state = 'dead'",
    )
    .fetch_all(db)
    .await
    .unwrap()
    .iter()
    .map(|r| {
        let (source, channel, recipient): (String, String, String) = (r.get(0), r.get(1), r.get(2));
        delivery_id(&source, &channel, &recipient)
    })
    .collect();
    let lost: Vec<_> = expected
        .keys()
        .filter(|id| !sent.contains_key(*id) && !dead.contains(*id))
        .collect();
    let unexpected: Vec<_> = sent
        .keys()
        .filter(|id| !expected.contains_key(*id))
        .collect();
    assert!(
        unexpected.is_empty(),
        "messages no event asked for: {unexpected:?}"
    );
    let latencies = sent
        .iter()
        .filter_map(|(id, at)| {
            let committed = expected.get(id)?;
            let first = at.iter().min()?;
            Some((id.clone(), (*first - *committed).num_milliseconds() as f64))
        })
        .collect();
    let counts = Counts {
        acknowledged: acknowledged.len(),
        events,
        expected: expected.len(),
        sent: sent.len(),
        dead: dead.len(),
        lost: lost.len(),
        duplicates: sent.values().map(|at| at.len() - 1).sum(),
    };
    assert!(lost.is_empty(), "lost messages: {counts:?}");

    // The read models equal a rebuild from the log.
    let before = dump_read_models(db).await;
    let rebuilt = std::process::Command::new(env!("CARGO_BIN_EXE_accountd"))
        .args(["project", "rebuild"])
        .envs(serves[0].env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("RUST_LOG", "warn")
        .output()
        .expect("accountd project rebuild runs");
    assert!(
        rebuilt.status.success(),
        "{}",
        String::from_utf8_lossy(&rebuilt.stderr)
    );
    assert_eq!(
        dump_read_models(db).await,
        before,
        "read models equal a rebuild"
    );
    (counts, latencies)
}

async fn dump_read_models(db: &PgPool) -> Vec<String> {
    let mut rows = Vec::new();
    for table in ["profiles", "servers"] {
        let sql = format!("SELECT row_to_json(t)::text FROM {table} t ORDER BY 1");
        rows.extend(
            sqlx::query_scalar::<_, String>(&sql)
                .fetch_all(db)
                .await
                .unwrap(),
        );
    }
    rows
}

/// The message ids on `ACCOUNT_EVENTS`, read through a throwaway consumer.
async fn read_stream_ids(nats_url: &str) -> BTreeSet<String> {
    let bus = Bus::connect(BusConfig {
        url: Some(nats_url.to_owned()),
        prefix: String::new(),
        replicas: 1,
    })
    .await
    .expect("the private NATS");
    let durable = format!("check{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let consumer = bus
        .consumer(StreamKind::AccountEvents, &durable)
        .await
        .unwrap();
    let mut deliveries = consumer.deliveries().await.unwrap();
    let mut ids = BTreeSet::new();
    let mut copies = 0usize;
    // Until the stream has nothing more to give for a moment (it was settled before).
    while let Ok(Some(Ok(delivery))) =
        tokio::time::timeout(Duration::from_secs(2), deliveries.next()).await
    {
        let _ = delivery.ack().await;
        if !ids.insert(delivery.message_id.unwrap_or_default()) {
            copies += 1;
        }
    }
    assert_eq!(copies, 0, "an event published twice on the stream");
    let _ = bus
        .delete_consumer(StreamKind::AccountEvents, &durable)
        .await;
    ids
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let i = ((values.len() as f64 - 1.0) * p).round() as usize;
    values.get(i).copied().unwrap_or_default()
}

fn report(scenario: &str, counts: &Counts) {
    println!(
        "[faults] {scenario}: acknowledged {}, events {}, expected messages {}, sent {}, \
         dead letters {}, lost {}, duplicates {}",
        counts.acknowledged,
        counts.events,
        counts.expected,
        counts.sent,
        counts.dead,
        counts.lost,
        counts.duplicates
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_message_is_lost_when_processes_nats_or_postgres_die() {
    let mut pg = PrivatePostgres::start().await;
    let mut nats = PrivateNats::start().await;
    let key = commands::secrets::generate_key();
    let env = vec![
        ("DATABASE_URL".to_owned(), pg.url()),
        ("NATS_URL".to_owned(), nats.url()),
        ("ACCOUNTD_SECRET_KEY".to_owned(), key),
        ("ACCOUNTD_IP_RATE_LIMIT".to_owned(), "100000000".to_owned()),
    ];
    let mut a = Serve::new("a", &env);
    let mut b = Serve::new("b", &env);
    // `a` starts first: it takes the relay's, the projector's and the planner's locks.
    a.start().await;
    b.start().await;
    let db = pool(&pg.url()).await;
    let ports = [a.port, b.port];
    let sequence = Arc::new(AtomicUsize::new(0));
    let clients = 8;
    let mut acknowledged = Vec::new();

    // 1. kill -9 of the lock holder.
    let load = Load::start(ports, 1, clients, sequence.clone());
    tokio::time::sleep(PHASE).await;
    a.kill9().await;
    tokio::time::sleep(PHASE).await;
    a.start().await;
    tokio::time::sleep(PHASE).await;
    acknowledged.extend(load.finish().await);
    let (counts, _) = check(&db, &nats.url(), &[&a, &b], &acknowledged).await;
    report("kill -9 of the lock holder", &counts);

    // 2. kill -9 of a notification worker with claimed rows (`a` holds no lock now).
    let load = Load::start(ports, 2, clients, sequence.clone());
    tokio::time::sleep(PHASE).await;
    let killed_at = Utc::now();
    a.kill9().await;
    tokio::time::sleep(PHASE).await;
    a.start().await;
    tokio::time::sleep(PHASE).await;
    acknowledged.extend(load.finish().await);
    let (counts, latencies) = check(&db, &nats.url(), &[&a, &b], &acknowledged).await;
    report("kill -9 of a notification worker", &counts);
    // Commit-to-send of the messages committed from 2 s before the kill to 2 s after it.
    let around: BTreeMap<String, DateTime<Utc>> = {
        let (_, expected) = expected_messages(&db).await;
        expected
            .into_iter()
            .filter(|(_, at)| (*at - killed_at).num_milliseconds().abs() <= 2000)
            .collect()
    };
    let mut window: Vec<f64> = around
        .keys()
        .filter_map(|id| latencies.get(id).copied())
        .collect();
    let p99 = percentile(&mut window, 0.99);
    println!(
        "[faults] commit-to-send around the worker's kill: {} messages, p99 {:.0} ms",
        window.len(),
        p99
    );
    assert!(
        p99 < 10_000.0,
        "commit-to-send p99 after a worker's kill: {p99} ms"
    );

    // 3. NATS killed and started again.
    let load = Load::start(ports, 3, clients, sequence.clone());
    tokio::time::sleep(PHASE).await;
    nats.stop().await;
    tokio::time::sleep(PHASE).await;
    nats.restart().await;
    tokio::time::sleep(PHASE).await;
    acknowledged.extend(load.finish().await);
    let (counts, _) = check(&db, &nats.url(), &[&a, &b], &acknowledged).await;
    report("NATS killed and restarted", &counts);

    // 4. PostgreSQL stopped and started again.
    let load = Load::start(ports, 4, clients, sequence.clone());
    tokio::time::sleep(PHASE).await;
    pg.stop().await;
    tokio::time::sleep(PHASE).await;
    pg.restart().await;
    tokio::time::sleep(PHASE).await;
    acknowledged.extend(load.finish().await);
    let db = pool(&pg.url()).await;
    let (counts, _) = check(&db, &nats.url(), &[&a, &b], &acknowledged).await;
    report("PostgreSQL stopped and started", &counts);
    assert!(counts.acknowledged > 0, "the load got through");
}
