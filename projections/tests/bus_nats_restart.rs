//! NATS stopped and started again mid-flow (a private `nats-server -js` on its own port and
//! store folder): commands keep committing while it is down, and their messages keep going
//! out (they are planned from the event log, not from the bus); once it is back everything goes
//! on, and nothing was sent twice.

mod support_bus;

use projections::bus::{Bus, BusConfig};
use projections::notifier::senders::Senders;
use support_bus::*;
use testkit::procs::scratch_dir;
use testkit::procs::PrivateNats;
use testkit::TestDatabase;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nothing_is_lost_or_sent_twice_when_nats_stops_and_starts_again() {
    let mut nats = PrivateNats::start().await;
    let bus = Bus::connect(BusConfig {
        url: Some(nats.url()),
        prefix: unique_prefix(),
        replicas: 1,
    })
    .await
    .expect("connect to the private nats-server");
    let world = World::new(TestDatabase::postgres().await, bus).await;
    let dir = scratch_dir("bus");
    let running = world.start(Senders::file(&dir), fast_settings());

    // Before: a sign-up (its code) and a challenge.
    world.sign_up_by_email("jack@example.com").await;
    world.issue_challenge("challenge-before", &mobile(50)).await;
    eventually("the first messages", || async { outbox(&dir).len() >= 2 }).await;

    // While NATS is down, the write side goes on.
    nats.stop().await;
    let mut expected = 2;
    for i in 0..5 {
        world
            .sign_up_by_email(&format!("down{i}@example.com"))
            .await;
        world
            .issue_challenge(&format!("challenge-down-{i}"), &mobile(60 + i))
            .await;
        expected += 2;
    }
    eventually(
        "the messages of the commands made while NATS is down",
        || async { outbox(&dir).len() >= expected },
    )
    .await;

    // Back on the same port and store: everything arrives, and more goes on.
    nats.restart().await;
    for i in 0..3 {
        world
            .sign_up_by_email(&format!("after{i}@example.com"))
            .await;
        expected += 1;
    }
    eventually("every message after the restart", || async {
        outbox(&dir).len() >= expected
    })
    .await;
    eventually("nothing left to send", || async {
        let counts = world.notify_store().counts().await.unwrap();
        counts.iter().all(|(state, _)| state == "sent")
    })
    .await;
    running.stop().await;
    let sent = outbox(&dir);
    assert_eq!(sent.len(), expected, "none lost, none twice: {sent:#?}");
    let mut recipients: Vec<_> = sent.iter().map(|m| m.to.clone()).collect();
    recipients.sort();
    recipients.dedup();
    assert_eq!(recipients.len(), expected, "each recipient once");
    assert_no_leaks(&sent);
}
