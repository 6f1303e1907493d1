//! The embedded default: the in-process bus carries the same messages as JetStream, and the
//! notifier writes them to the file sink (`outbox.ndjson`). The in-process bus keeps the
//! consumer contract: de-duplication by message id, redelivery of what is nak'ed or not acked.

mod support_bus;

use std::time::Duration;

use futures::StreamExt;
use projections::bus::{Bus, NotificationKind, NotificationRequest, OutgoingMessage, StreamKind};
use projections::notifier::senders::Senders;
use support_bus::*;
use testkit::procs::scratch_dir;
use testkit::TestDatabase;

/// Runs one history through relay and notifier on `world`; returns the outbox, with codes and
/// tokens replaced by placeholders.
async fn run_history(world: &World) -> Vec<(String, String, Option<String>, String)> {
    let dir = scratch_dir("bus");
    let running = world.start(Senders::file(&dir), fast_settings());
    let (a, code) = world.sign_up_by_email("kim@example.com").await;
    world.verify_contact_email(&a, code).await;
    let code = world.change_contact_mobile(&a, &mobile(70)).await;
    world.verify_contact_mobile(&a, code).await;
    world.change_recovery_mobile(&a, &mobile(71)).await;
    world.change_password(&a, 11).await;
    let token = world.issue_reset_token(&a).await;
    let summary = world.account(&a).await.summary().unwrap();
    world
        .record_account_info(&a, "info-embedded", &mobile(71), vec![summary])
        .await;
    world
        .issue_challenge("challenge-embedded", &mobile(72))
        .await;
    // The request goes to the contact values the notifier knows when it handles it: once it
    // has folded the account's events.
    eventually("the account's messages", || async {
        outbox(&dir).len() >= 12
    })
    .await;
    world
        .bus
        .publish_notification_request(
            a.as_str(),
            &NotificationRequest {
                kind: NotificationKind::Expiry,
                subject: "Your instance expires soon".into(),
                body: "Renew it from the console to keep it running.".into(),
            },
        )
        .await
        .unwrap();
    // 1 + 3 + 3 + 2 + 1 + 1 + 1 + 1 (the request goes to the verified mobile and email) + 1
    let expected = 14;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while outbox(&dir).len() < expected {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {expected} messages: {:#?}",
            outbox(&dir).len(),
            outbox(&dir)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    running.stop().await;
    let sent = outbox(&dir);
    assert_eq!(sent.len(), expected, "{sent:#?}");
    assert_no_leaks(&sent);
    let mut normalized: Vec<_> = sent
        .into_iter()
        .map(|m| {
            let mut text = m.text.replace(&token, "<token>");
            // Each run mints its own protection links (random): compare them by place alone.
            if let Some(at) = text.find("secure-account?token=") {
                let start = at + "secure-account?token=".len();
                let end = text[start..]
                    .find(char::is_whitespace)
                    .map_or(text.len(), |n| start + n);
                text.replace_range(start..end, "<protection-token>");
            }
            for run in six_digit_runs(&text) {
                text = text.replace(&run, "<code>");
            }
            let channel = format!("{:?}", m.channel);
            (channel, m.to, m.subject, text)
        })
        .collect();
    normalized.sort();
    std::fs::remove_dir_all(&dir).ok();
    normalized
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_in_process_bus_delivers_the_same_messages_to_the_file_sink() {
    let embedded = World::new(TestDatabase::sqlite().await, Bus::in_process("").unwrap()).await;
    assert!(!embedded.bus.is_durable());
    let on_embedded = run_history(&embedded).await;

    let nats = World::with_nats(TestDatabase::sqlite().await).await;
    let on_nats = run_history(&nats).await;
    nats.clean_up().await;
    assert_eq!(on_embedded, on_nats);
    // SMS lines have no subject; email lines have one.
    assert!(on_embedded
        .iter()
        .all(|(channel, _, subject, _)| (channel == "Email") == subject.is_some()));
}

async fn next(deliveries: &mut projections::bus::Deliveries) -> projections::bus::Delivery {
    tokio::time::timeout(Duration::from_secs(5), deliveries.next())
        .await
        .expect("a delivery in time")
        .expect("the stream goes on")
        .expect("a delivery")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_process_bus_deduplicates_and_redelivers_what_is_not_acked() {
    let bus = Bus::in_process("p_").unwrap();
    let message = |id: &str| OutgoingMessage {
        subject: bus
            .topology()
            .account_event_subject("100000000001", "SignedIn"),
        message_id: Some(id.to_owned()),
        payload: id.as_bytes().to_vec(),
    };
    // Published before the consumer exists: kept for it.
    assert!(!bus.publish(message("a:1")).await.unwrap().duplicate);
    assert!(bus.publish(message("a:1")).await.unwrap().duplicate);
    assert!(!bus.publish(message("a:2")).await.unwrap().duplicate);
    assert!(bus
        .publish(OutgoingMessage {
            subject: "elsewhere.x".into(),
            message_id: None,
            payload: vec![]
        })
        .await
        .is_err());

    let consumer = bus.consumer(StreamKind::AccountEvents, "c").await.unwrap();
    let mut deliveries = consumer.deliveries().await.unwrap();
    let first = next(&mut deliveries).await;
    assert_eq!(
        (first.payload.as_slice(), first.delivered),
        (b"a:1".as_slice(), 1)
    );
    first.nak(Duration::from_millis(50)).await.unwrap();
    let second = next(&mut deliveries).await;
    assert_eq!(second.payload, b"a:2");
    second.ack().await.unwrap();
    let again = next(&mut deliveries).await;
    assert_eq!(
        (again.payload.as_slice(), again.delivered),
        (b"a:1".as_slice(), 2)
    );
    assert_eq!(
        bus.consumer_lag(StreamKind::AccountEvents, "c")
            .await
            .unwrap(),
        1
    );
    again.ack().await.unwrap();
    assert_eq!(
        bus.consumer_lag(StreamKind::AccountEvents, "c")
            .await
            .unwrap(),
        0
    );
    // A consumer restarted under the same name keeps its place; nothing is left.
    drop(deliveries);
    let mut deliveries = bus
        .consumer(StreamKind::AccountEvents, "c")
        .await
        .unwrap()
        .deliveries()
        .await
        .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(200), deliveries.next())
            .await
            .is_err(),
        "nothing is delivered twice once acked"
    );
}
