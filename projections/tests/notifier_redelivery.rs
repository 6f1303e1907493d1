//! Nothing is lost and nothing is sent twice when the notifier is re-run, shares its work, or
//! loses a worker: a planner moved back to the start of the log, requests redelivered by the
//! bus, two workers on one delivery log, and a worker that died holding claimed rows (its rows
//! go out within seconds, with the same delivery ids).

mod support_bus;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use projections::bus::{NotificationKind, NotificationRequest};
use projections::notifier::planner::{Planner, PLANNER};
use projections::notifier::senders::Senders;
use projections::notifier::store::now_ms;
use support_bus::*;
use testkit::procs::scratch_dir;
use testkit::TestDatabase;
use tokio::sync::Notify;

/// A history that sends 8 messages: sign-up code, contact mobile (notice ×2, code), password
/// change (notice ×2), a challenge code, a reset link.
async fn history(world: &World) -> usize {
    let (a, code) = world.sign_up_by_email("gina@example.com").await;
    world.verify_contact_email(&a, code).await;
    world.change_contact_mobile(&a, &mobile(30)).await;
    world.change_password(&a, 9).await;
    world
        .issue_challenge("challenge-redelivery", &mobile(31))
        .await;
    world.issue_reset_token(&a).await;
    8
}

fn request() -> NotificationRequest {
    NotificationRequest {
        kind: NotificationKind::Event,
        subject: "Maintenance tonight".into(),
        body: "Your servers restart at 02:00 UTC.".into(),
    }
}

/// Steps `planner` until it has planned the whole log (on PostgreSQL the reader holds back
/// while other tests' transactions are in flight, so one empty step proves nothing).
async fn plan_to_the_head(world: &World, planner: &Planner<StoreLog>) {
    let head = world.log_head().await;
    eventually("the planner at the head of the log", || async {
        planner.step().await.unwrap();
        world.notify_store().checkpoint(PLANNER).await.unwrap() == head
    })
    .await;
    // Requests loaded before a step that found nothing more are resolved by it.
    planner.step().await.unwrap();
}

/// Each message once, each with a delivery id of its own.
fn assert_once_each(sent: &[Received], expected: usize) {
    let ids: BTreeSet<_> = sent
        .iter()
        .map(|m| m.delivery_id.clone().expect("a delivery id"))
        .collect();
    assert_eq!(sent.len(), expected, "{sent:#?}");
    assert_eq!(ids.len(), expected, "a delivery id sent twice: {sent:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_planner_run_again_from_the_start_and_redelivered_requests_send_nothing_twice() {
    let world = World::with_nats(TestDatabase::postgres().await).await;
    let dir = scratch_dir("bus");
    let running = world.start(Senders::file(&dir), fast_settings());
    let (a, code) = world.sign_up_by_email("gina.request@example.com").await;
    world.verify_contact_email(&a, code).await;
    let expected = history(&world).await + 1;
    eventually("every message in the outbox", || async {
        outbox(&dir).len() >= expected
    })
    .await;
    world
        .bus
        .publish_notification_request(a.as_str(), &request())
        .await
        .unwrap();
    eventually("the request's message", || async {
        outbox(&dir).len() > expected
    })
    .await;
    running.stop().await;

    // Plan everything again, and deliver the request again (as a redelivery would).
    world.notify_store().reset(PLANNER).await.unwrap();
    let copies = read_stream(
        &world.bus,
        projections::bus::StreamKind::NotificationRequests,
        1,
    )
    .await;
    let running = world.start(Senders::file(&dir), fast_settings());
    for copy in copies {
        world
            .bus
            .publish(projections::bus::OutgoingMessage {
                subject: copy.subject,
                // Beyond JetStream's duplicate window: the same id, stored again.
                message_id: copy.message_id,
                payload: copy.payload,
            })
            .await
            .unwrap();
    }
    eventually("the planner back at the head of the log", || async {
        world.notify_store().checkpoint(PLANNER).await.unwrap() == world.log_head().await
    })
    .await;
    eventually("no request waiting", || async {
        world
            .notify_store()
            .pending_requests(10)
            .await
            .unwrap()
            .is_empty()
    })
    .await;
    eventually("nothing left to send", || async {
        let counts = world.notify_store().counts().await.unwrap();
        counts.iter().all(|(state, _)| state == "sent")
    })
    .await;
    running.stop().await;
    let sent = outbox(&dir);
    assert_once_each(&sent, expected + 1);
    assert_no_leaks(&sent);
    world.clean_up().await;
}

async fn two_workers_share_the_log(db: TestDatabase) {
    let world = World::with_nats(db).await;
    let dir = scratch_dir("bus");
    let one = world.start(Senders::file(&dir), fast_settings());
    let two = world.start_notifier(Senders::file(&dir), fast_settings());
    let mut expected = 0;
    for i in 0..20 {
        world
            .sign_up_by_email(&format!("share{i}@example.com"))
            .await;
        expected += 1;
    }
    expected += history(&world).await;
    eventually("every message in the outbox", || async {
        outbox(&dir).len() >= expected
    })
    .await;
    eventually("nothing left to send", || async {
        let counts = world.notify_store().counts().await.unwrap();
        counts.iter().all(|(state, _)| state == "sent")
    })
    .await;
    one.stop().await;
    two.stop().await;
    assert_once_each(&outbox(&dir), expected);
    world.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_notifiers_share_the_delivery_log_on_postgres() {
    two_workers_share_the_log(TestDatabase::postgres().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_notifiers_share_the_delivery_log_on_sqlite() {
    two_workers_share_the_log(TestDatabase::sqlite().await).await;
}

async fn a_dead_workers_rows_go_out_within_seconds(db: TestDatabase) {
    let world = World::with_nats(db).await;
    let expected = history(&world).await;
    plan_to_the_head(&world, &world.planner(Arc::new(Notify::new()))).await;
    // A worker claims every row and dies before sending any (its lease: 900 ms).
    let settings = fast_settings();
    let now = now_ms();
    let lease = i64::try_from(settings.lease.as_millis()).unwrap();
    let claimed = world
        .notify_store()
        .claim_due(now, now + lease, 100)
        .await
        .unwrap();
    assert_eq!(claimed.len(), expected);
    let ids: BTreeMap<String, String> = claimed
        .iter()
        .map(|r| (r.delivery_id(), r.recipient.clone()))
        .collect();
    let dir = scratch_dir("bus");
    let started = Instant::now();
    let running = world.start_notifier(Senders::file(&dir), settings);
    eventually("the dead worker's messages", || async {
        outbox(&dir).len() >= expected
    })
    .await;
    let took = started.elapsed();
    running.stop().await;
    assert!(took.as_secs_f64() < 5.0, "took {took:?}");
    let sent = outbox(&dir);
    assert_once_each(&sent, expected);
    // The same messages, with the delivery ids the dead worker held.
    let got: BTreeMap<String, String> = sent
        .iter()
        .map(|m| (m.delivery_id.clone().unwrap(), m.to.clone()))
        .collect();
    assert_eq!(got, ids);
    world.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_workers_rows_go_out_within_seconds_on_postgres() {
    a_dead_workers_rows_go_out_within_seconds(TestDatabase::postgres().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_workers_rows_go_out_within_seconds_on_sqlite() {
    a_dead_workers_rows_go_out_within_seconds(TestDatabase::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_waits_for_the_planner_and_one_that_never_can_be_planned_is_a_dead_letter() {
    let world = World::with_nats(TestDatabase::sqlite().await).await;
    let (a, code) = world.sign_up_by_email("wait@example.com").await;
    world.verify_contact_email(&a, code).await;
    let code = world.change_contact_mobile(&a, &mobile(50)).await;
    world.verify_contact_mobile(&a, code).await;
    let head = world
        .store()
        .read_after(Default::default(), 1000)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.aggregate_id == a.as_str())
        .map(|e| e.sequence)
        .max()
        .unwrap();
    // A worker alone keeps the requests; no planner runs yet.
    let dir = scratch_dir("bus");
    let planned = Arc::new(Notify::new());
    let worker = Arc::new(world.notifier(Senders::file(&dir), fast_settings(), planned.clone()));
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let worker_task = tokio::spawn(worker.run(stopped(stopping)));
    let bus = &world.bus;
    bus.publish_notification_request_after(a.as_str(), &request(), Some(head))
        .await
        .unwrap();
    bus.publish_notification_request(a.as_str(), &request())
        .await
        .unwrap();
    // Never planned: an account that does not exist, a sequence the account never reaches.
    bus.publish_notification_request("999999999999", &request())
        .await
        .unwrap();
    bus.publish_notification_request_after(a.as_str(), &request(), Some(head + 100))
        .await
        .unwrap();
    eventually("four requests kept", || async {
        world
            .notify_store()
            .pending_requests(10)
            .await
            .unwrap()
            .len()
            == 4
    })
    .await;
    assert!(outbox(&dir).is_empty(), "nothing before the planner");

    // The planner folds the account in order, then resolves the requests.
    plan_to_the_head(&world, &world.planner(planned)).await;
    assert!(world
        .notify_store()
        .pending_requests(10)
        .await
        .unwrap()
        .is_empty());
    // Two requests × (verified email + verified mobile), plus the history's 1 + 3 messages.
    eventually("the planned messages", || async { outbox(&dir).len() >= 8 }).await;
    let dead = world.notify_store().dead_letters().await.unwrap();
    let reasons: BTreeSet<_> = dead
        .iter()
        .map(|d| d.last_error.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        reasons,
        BTreeSet::from([
            "unknown account".to_owned(),
            format!(
                "the account's events end at sequence {head} before {}",
                head + 100
            ),
        ])
    );
    let _ = stop.send(true);
    worker_task.await.unwrap();
    let sent = outbox(&dir);
    assert_once_each(&sent, 8);
    let to_requests = sent.iter().filter(|m| m.text.contains("02:00 UTC")).count();
    assert_eq!(to_requests, 4);
    world.clean_up().await;
}
