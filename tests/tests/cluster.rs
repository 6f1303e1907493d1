//! The cluster shape without containers (issue 14): three `nats-server` processes clustered on
//! loopback with R3 streams, and separate `accountd` processes for every role (two gateways,
//! two projectors, two relays, two notifiers) on one PostgreSQL database. Flows go through both
//! gateways over HTTP while the test kills (SIGKILL, by PID) the leader of the `ACCOUNT_EVENTS`
//! stream, then the active relay and the active projector (those holding the advisory locks),
//! and starts the killed NATS node again on its own folder.
//!
//! Afterwards: the restarted node is back in the stream's group and current with its leader; the
//! stream holds exactly the store's account events (same ids, none twice, each
//! account's in order), the read models equal a `accountd project rebuild`, and every expected
//! message is in the notifiers' outboxes exactly once. It prints what it killed and counted.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::PgPool;
use testkit::TestDatabase;
use tests::procs::{free_port, Accountd, NatsCluster};
use tests::{attach, poll, OutboxLine, TestApp, PASSWORD};

/// Accounts signed up in each of the three phases (before, between and after the kills).
const PER_PHASE: usize = 8;
/// How long the system may take to settle after the last flow.
const SETTLE: Duration = Duration::from_secs(40);

/// The environment every process shares.
fn common_env(
    database_url: &str,
    nats_url: &str,
    prefix: &str,
    name: &str,
) -> Vec<(String, String)> {
    let separator = if database_url.contains('?') { '&' } else { '?' };
    vec![
        (
            "DATABASE_URL".into(),
            // Names the process in pg_stat_activity: how the test finds the lock holders.
            format!("{database_url}{separator}application_name={name}"),
        ),
        ("NATS_URL".into(), nats_url.into()),
        ("ACCOUNTD_NATS_STREAM_PREFIX".into(), prefix.into()),
        ("ACCOUNTD_NATS_REPLICAS".into(), "3".into()),
        (
            "ACCOUNTD_SECRET_KEY".into(),
            tests::base64(&tests::SECRET_KEY),
        ),
        (
            "ACCOUNTD_SERVICE_TOKENS".into(),
            format!(
                "compute:{},support:{},notifier:{},auditor:{}",
                tests::COMPUTE_TOKEN,
                tests::SUPPORT_TOKEN,
                tests::NOTIFIER_TOKEN,
                tests::AUDITOR_TOKEN
            ),
        ),
        ("ACCOUNTD_IP_RATE_LIMIT".into(), "0".into()),
    ]
}

/// The application names of the processes holding a granted advisory lock, by role prefix.
async fn lock_holder(pool: &PgPool, role: &str) -> Option<String> {
    sqlx::query_scalar::<_, String>(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted AND a.datname = current_database() \
         AND a.application_name LIKE $1 ORDER BY 1 LIMIT 1",
    )
    .bind(format!("{role}-%"))
    .fetch_optional(pool)
    .await
    .expect("read pg_locks")
}

async fn scalar(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar::<_, Option<i64>>(sql)
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .unwrap_or(0)
}

/// The profile and server read models as JSON text.
async fn read_models(pool: &PgPool) -> String {
    sqlx::query_scalar::<_, String>(
        "SELECT json_build_object(\
           'profiles', (SELECT coalesce(json_agg(p ORDER BY p.account_id), '[]') FROM profiles p), \
           'servers', (SELECT coalesce(json_agg(s ORDER BY s.account_id, s.instance_id), '[]') FROM servers s))::text",
    )
    .fetch_one(pool)
    .await
    .expect("read the read models")
}

/// One account's flow, through gateway `a` (sign-up, contact mobile) and `b` (sign-in,
/// step-up): returns (account id, email, sign-up code, mobile, mobile code).
async fn flow(
    a: &TestApp,
    b: &TestApp,
    n: usize,
    run: &str,
) -> (String, String, String, String, String) {
    let email = format!("u{n}.{run}@example.com");
    let id = a.sign_up(&email, PASSWORD).await;
    let sign_up_code = a.code_for(&id).await;
    let token = b.sign_in(&email, PASSWORD).await;
    b.step_up_by_password(&token, PASSWORD).await;
    let mobile = format!("+86139{:08}", 10_000_000 + n);
    let changed = a
        .put("/v1/me/contact-mobile", &token, json!({"mobile": mobile}))
        .await;
    assert_eq!(changed.status, 200, "{changed:?}");
    let mobile_code = poll(
        "the contact mobile's code",
        Duration::from_secs(10),
        || async {
            let code = a.latest_code(&id).await?;
            (code != sign_up_code).then_some(code)
        },
    )
    .await;
    let verified = b
        .post(
            "/v1/me/contact-mobile/verification",
            Some(&token),
            json!({"code": mobile_code}),
        )
        .await;
    assert_eq!(
        verified.status,
        200,
        "{verified:?}; events of {id}: {:?}",
        a.stream(&id).await
    );
    (id, email, sign_up_code, mobile, mobile_code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cluster_survives_losing_a_nats_node_the_active_relay_and_the_active_projector() {
    let started = Instant::now();
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let prefix = format!("CL{run}_");
    let database = TestDatabase::postgres().await;
    let mut nats = NatsCluster::start().await;
    let nats_url = nats.url();
    let client = async_nats::connect(
        nats_url
            .split(',')
            .map(|url| url.parse().expect("a NATS URL"))
            .collect::<Vec<async_nats::ServerAddr>>(),
    )
    .await
    .expect("connect to the NATS cluster");
    // JetStream answers account info once the cluster has elected its meta leader.
    poll(
        "JetStream to have a meta leader",
        Duration::from_secs(30),
        || async {
            let answer = client.request("$JS.API.INFO", "".into()).await.ok()?;
            let info: Value = serde_json::from_slice(&answer.payload).ok()?;
            info.get("error").is_none().then_some(())
        },
    )
    .await;
    let js = async_nats::jetstream::new(client.clone());

    let logs = std::env::temp_dir().join(format!("accountd_cluster_{run}"));
    std::fs::create_dir_all(&logs).expect("a log folder");
    let mut processes: HashMap<String, Accountd> = HashMap::new();
    let mut outboxes: Vec<PathBuf> = Vec::new();
    let mut gateways = Vec::new();
    let start = |name: &str, args: &[&str], extra: &[(&str, String)]| {
        let mut env = common_env(&database.url, &nats_url, &prefix, name);
        let data = logs.join(name);
        std::fs::create_dir_all(&data).expect("a data folder");
        env.push(("ACCOUNTD_DATA_DIR".into(), data.display().to_string()));
        env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        Accountd::start(name, args, &env, logs.join(format!("{name}.log")))
    };
    for i in 1..=2 {
        let port = free_port();
        let name = format!("gateway-{i}");
        let process = start(
            &name,
            &["gateway"],
            &[("ACCOUNTD_BIND", format!("127.0.0.1:{port}"))],
        );
        process.until_listening(port).await;
        processes.insert(name, process);
        gateways.push(attach(
            format!("http://127.0.0.1:{port}"),
            database.store.clone(),
            projections::ReadStore::open(&database.url)
                .await
                .expect("the read store"),
        ));
    }
    for role in ["relay", "project", "notify"] {
        for i in 1..=2 {
            let name = format!("{role}-{i}");
            processes.insert(name.clone(), start(&name, &[role], &[]));
            if role == "notify" {
                outboxes.push(gateway::workers::outbox_path(&logs.join(&name)));
            }
        }
    }
    // A pool of the test's own on the database: locks, checkpoints, events and read models.
    let store = PgPool::connect(&database.url)
        .await
        .expect("connect to the test database");
    let relay_active = poll("a relay to hold the lock", Duration::from_secs(30), || {
        lock_holder(&store, "relay")
    })
    .await;
    let projector_active = poll(
        "a projector to hold the lock",
        Duration::from_secs(30),
        || lock_holder(&store, "project"),
    )
    .await;

    let mut flows = Vec::new();
    let mut killed = Vec::new();
    let mut nats_killed = None;
    for phase in 0..3 {
        match phase {
            1 => {
                // The leader of the account events' stream: its followers elect another.
                let mut stream = js
                    .get_stream(format!("{prefix}ACCOUNT_EVENTS"))
                    .await
                    .expect("the account events' stream");
                let info = stream.info().await.expect("stream info");
                assert_eq!(info.config.num_replicas, 3, "the streams are R3");
                let leader = info
                    .cluster
                    .as_ref()
                    .and_then(|c| c.leader.clone())
                    .expect("the stream has a leader");
                let pid = nats.pid(&leader);
                nats.kill(&leader).await;
                killed.push(format!(
                    "NATS node {leader} (pid {pid:?}), leader of {prefix}ACCOUNT_EVENTS"
                ));
                nats_killed = Some(leader);
            }
            2 => {
                // The NATS node comes back (the last phase's flows run while it catches up).
                let node = nats_killed.as_deref().expect("a NATS node was killed");
                nats.restart(node).await;
                for (role, active) in [("relay", &relay_active), ("projector", &projector_active)] {
                    let process = processes.get_mut(active).expect("the active process");
                    let pid = process.pid();
                    process.kill().await;
                    killed.push(format!("active {role} {active} (pid {pid:?})"));
                }
            }
            _ => {}
        }
        let batch = (0..PER_PHASE).map(|k| {
            let n = phase * PER_PHASE + k;
            let (a, b) = (&gateways[n % 2], &gateways[(n + 1) % 2]);
            let run = run.clone();
            async move { flow(a, b, n, &run).await }
        });
        flows.extend(futures::future::join_all(batch).await);
    }
    let flow_seconds = started.elapsed().as_secs_f64();

    // The standbys took over.
    let relay_now = poll("the standby relay to hold the lock", SETTLE, || {
        lock_holder(&store, "relay")
    })
    .await;
    let projector_now = poll("the standby projector to hold the lock", SETTLE, || {
        lock_holder(&store, "project")
    })
    .await;
    assert_ne!(relay_now, relay_active);
    assert_ne!(projector_now, projector_active);

    // The stream equals the store: every published account event once, each account's in order.
    let expected: BTreeSet<String> = sqlx::query_scalar::<_, String>(
        "SELECT aggregate_id || ':' || sequence FROM events WHERE aggregate_type = 'Account'",
    )
    .fetch_all(&store)
    .await
    .expect("the store's account events")
    .into_iter()
    .collect();
    let stream_name = format!("{prefix}ACCOUNT_EVENTS");
    let messages = poll("the stream to hold every account event", SETTLE, || async {
        let mut stream = js.get_stream(&stream_name).await.ok()?;
        let info = stream.info().await.ok()?;
        (info.state.messages as usize >= expected.len()).then_some(info.state.last_sequence)
    })
    .await;
    let stream = js.get_stream(&stream_name).await.expect("the stream");
    let mut ids = Vec::new();
    for seq in 1..=messages {
        let message = stream.get_raw_message(seq).await.expect("a stream message");
        let id = message
            .headers
            .get("Nats-Msg-Id")
            .expect("a message id")
            .to_string();
        ids.push(id);
    }
    let distinct: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(distinct.len(), ids.len(), "a message was published twice");
    assert_eq!(distinct, expected, "the stream differs from the store");
    let mut last: HashMap<String, u64> = HashMap::new();
    for id in &ids {
        let (account, seq) = id.rsplit_once(':').expect("account:sequence");
        let seq: u64 = seq.parse().expect("a sequence");
        let before = last.insert(account.to_owned(), seq).unwrap_or(0);
        assert!(
            seq > before,
            "{account}'s events out of order in the stream"
        );
    }

    // The node that was killed is back in the stream's group and has caught up: three peers,
    // none offline, every follower current with the leader.
    let rejoined = nats_killed.expect("a NATS node was killed");
    let peers = poll("the restarted NATS node to catch up", SETTLE, || async {
        let mut stream = js.get_stream(&stream_name).await.ok()?;
        let cluster = stream.info().await.ok()?.cluster.clone()?;
        let leader = cluster.leader?;
        let caught_up = cluster.replicas.len() == 2
            && (cluster.replicas.iter()).all(|peer| peer.current && !peer.offline);
        let mut peers: Vec<String> = cluster.replicas.into_iter().map(|p| p.name).collect();
        peers.push(leader);
        (caught_up && peers.contains(&rejoined)).then_some(peers)
    })
    .await;

    // The read models equal a rebuild from the log, once the projector has caught up.
    poll("the projector to catch up", SETTLE, || async {
        let head = scalar(&store, "SELECT max(position) FROM events").await;
        let at = scalar(
            &store,
            "SELECT max(position) FROM projection_checkpoints WHERE name = 'profiles'",
        )
        .await;
        (at >= head).then_some(())
    })
    .await;
    let live = read_models(&store).await;
    let rebuilt = tokio::process::Command::new(tests::procs::accountd_bin())
        .args(["project", "rebuild"])
        .env_clear()
        .envs(common_env(&database.url, &nats_url, &prefix, "rebuild"))
        .env("ACCOUNTD_DATA_DIR", logs.join("rebuild"))
        .output()
        .await
        .expect("accountd project rebuild runs");
    assert!(
        rebuilt.status.success(),
        "accountd project rebuild: {}",
        String::from_utf8_lossy(&rebuilt.stderr)
    );
    assert_eq!(
        read_models(&store).await,
        live,
        "the read models differ from a rebuild"
    );
    let profiles = scalar(&store, "SELECT count(*) FROM profiles").await;
    assert_eq!(profiles as usize, flows.len());

    // Every expected message was sent, once: the sign-up code to each email, the contact
    // mobile's code to each mobile; no delivery twice.
    let outbox = |paths: &[PathBuf]| -> Vec<OutboxLine> {
        paths
            .iter()
            .flat_map(|p| OutboxLine::read_all(p).unwrap())
            .collect()
    };
    let wanted: Vec<(String, String)> = flows
        .iter()
        .flat_map(|(_, email, code, mobile, mobile_code)| {
            [
                (email.clone(), code.clone()),
                (mobile.clone(), mobile_code.clone()),
            ]
        })
        .collect();
    let sent = poll("every expected message in the outboxes", SETTLE, || {
        let sent = outbox(&outboxes);
        let all = wanted.iter().all(|(to, code)| {
            sent.iter()
                .any(|m| m.to == *to && tests::contains_number(&m.text, code))
        });
        async move { all.then_some(sent) }
    })
    .await;
    // A moment for a late duplicate to show.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = {
        let again = outbox(&outboxes);
        if again.len() >= sent.len() {
            again
        } else {
            sent
        }
    };
    for (to, code) in &wanted {
        let count = sent
            .iter()
            .filter(|m| m.to == *to && tests::contains_number(&m.text, code))
            .count();
        assert_eq!(count, 1, "the code to {to} was sent {count} times");
    }
    let mut deliveries: BTreeMap<String, usize> = BTreeMap::new();
    for m in &sent {
        *deliveries.entry(m.delivery_id.clone()).or_default() += 1;
    }
    let twice: Vec<_> = deliveries.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "deliveries sent twice: {twice:?}");
    let per_notifier: Vec<usize> = outboxes
        .iter()
        .map(|p| outbox(std::slice::from_ref(p)).len())
        .collect();

    println!(
        "cluster test: NATS {} ({} nodes), processes {:?}",
        nats_url,
        nats.names().len(),
        {
            let mut names: Vec<_> = processes.keys().cloned().collect();
            names.sort();
            names
        }
    );
    for k in &killed {
        println!("killed: {k}");
    }
    println!("took over: relay {relay_now}, projector {projector_now}");
    println!("restarted: NATS node {rejoined}, caught up; stream peers now {peers:?}");
    println!(
        "counted: {} accounts through 2 gateways; {} account events in the store = {} in the stream; \
         read models ({} profiles) equal a rebuild; {} messages sent ({:?} per notifier), {} expected codes each once",
        flows.len(),
        expected.len(),
        ids.len(),
        profiles,
        sent.len(),
        per_notifier,
        wanted.len()
    );
    println!(
        "timing: flows {flow_seconds:.1}s, total {:.1}s",
        started.elapsed().as_secs_f64()
    );
    for gateway in gateways {
        gateway.stop().await;
    }
    drop(processes);
    store.close().await;
    let _ = std::fs::remove_dir_all(&logs);
}
