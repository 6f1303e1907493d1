//! Forced redelivery sends nothing twice: a consumer restarted from the start of its stream, a
//! relay checkpoint reset to zero, events re-published under new message ids (as after
//! JetStream's duplicate window), and events arriving out of order are still folded in sequence.

mod support_bus;

use std::collections::BTreeSet;

use commands::testing::TestDatabase;
use domain::stored::Checkpoint;
use domain::{AccountCommand, Channel};
use projections::bus::{OutgoingMessage, StreamKind};
use projections::notifier::senders::Senders;
use projections::notifier::Notifier;
use support_bus::*;

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

/// Waits until the notifier's consumers have acked everything.
async fn drained(world: &World) {
    eventually("the notifier to ack everything", || async {
        let mut lag = 0;
        for kind in Notifier::STREAMS {
            lag += world.bus.consumer_lag(kind, "notifier").await.unwrap_or(1);
        }
        lag == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_consumer_and_a_reset_relay_send_nothing_twice() {
    let world = World::with_nats(TestDatabase::postgres().await).await;
    let dir = temp_dir();
    let running = world.start(Senders::file(&dir), fast_settings());
    let expected = history(&world).await;
    eventually("every message in the outbox", || async {
        outbox(&dir).len() >= expected
    })
    .await;
    drained(&world).await;
    running.stop().await;

    // Every consumer starts again from the start of its stream; the relay from the start of
    // the log (JetStream drops those re-publishes as duplicates).
    for kind in Notifier::STREAMS {
        world.bus.delete_consumer(kind, "notifier").await.unwrap();
    }
    let relay = world.relay();
    relay.reset_checkpoint().await.unwrap();
    assert_eq!(relay.checkpoint().await.unwrap(), Checkpoint::default());
    let running = world.start(Senders::file(&dir), fast_settings());
    world.relay_all(&relay).await;
    drained(&world).await;
    running.stop().await;
    let sent = outbox(&dir);
    assert_eq!(sent.len(), expected, "nothing sent twice: {sent:#?}");
    assert_no_leaks(&sent);
    world.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_republished_under_new_message_ids_send_nothing_twice() {
    let world = World::with_nats(TestDatabase::sqlite().await).await;
    let dir = temp_dir();
    let running = world.start(Senders::file(&dir), fast_settings());
    let expected = history(&world).await;
    eventually("every message in the outbox", || async {
        outbox(&dir).len() >= expected
    })
    .await;
    drained(&world).await;

    // What a relay re-publishing beyond the duplicate window would put on the streams.
    for kind in [StreamKind::AccountEvents, StreamKind::ChallengeCodes] {
        let n = if kind == StreamKind::AccountEvents {
            world.count_events("Account").await
        } else {
            1
        };
        let copies: Vec<OutgoingMessage> = read_stream(&world.bus, kind, n)
            .await
            .into_iter()
            .map(|d| OutgoingMessage {
                subject: d.subject,
                message_id: d.message_id.map(|id| format!("{id}:again")),
                payload: d.payload,
            })
            .collect();
        for result in world.bus.publish_all(copies).await {
            assert!(!result.unwrap().duplicate);
        }
    }
    drained(&world).await;
    running.stop().await;
    assert_eq!(outbox(&dir).len(), expected);
    world.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_that_arrive_out_of_order_are_folded_in_sequence() {
    let world = World::with_nats(TestDatabase::postgres().await).await;
    // Written without a relay: sign-up, contact mobile set and verified, contact email
    // changed (a notice to the new and the previous email and the contact mobile).
    let (a, code) = world.sign_up_by_email("hana@example.com").await;
    world.verify_contact_email(&a, code).await;
    let code = world.change_contact_mobile(&a, &mobile(40)).await;
    world.verify_contact_mobile(&a, code).await;
    let session = world.step_up(&a).await;
    world
        .execute(
            &a,
            AccountCommand::ChangeContactEmail {
                session_id: session,
                email: email("ivy@example.com"),
                code_id: "contact-email-ooo".into(),
            },
        )
        .await;
    // Published in reverse order.
    let events = world
        .store()
        .read_after(Checkpoint::default(), 1000)
        .await
        .unwrap();
    let mut messages: Vec<OutgoingMessage> = events
        .iter()
        .filter_map(|e| projections::relay::message_for(world.bus.topology(), e))
        .collect();
    messages.reverse();
    for m in messages {
        world.bus.publish(m).await.unwrap();
    }
    let inbox = Inbox::default();
    let smtp = SmtpSink::start(inbox.clone()).await;
    let sms = SmsSink::start(inbox.clone()).await;
    let running = world.start_notifier(network_senders(&smtp, &sms), fast_settings());
    // Sign-up code; contact mobile: 2 notices + code; contact email: 3 notices + code.
    inbox.settle_at(8).await;
    running.stop().await;
    let got: BTreeSet<(Channel, String, bool)> = inbox
        .all()
        .into_iter()
        .map(|m| (m.channel, m.to.clone(), m.is_code()))
        .collect();
    let m40 = mobile(40).as_str().to_owned();
    let expected: BTreeSet<(Channel, String, bool)> = [
        (Channel::Email, "hana@example.com".to_owned(), true),
        (Channel::Sms, m40.clone(), true),
        (Channel::Sms, m40.clone(), false),
        (Channel::Email, "hana@example.com".to_owned(), false),
        (Channel::Email, "ivy@example.com".to_owned(), false),
        (Channel::Email, "ivy@example.com".to_owned(), true),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, expected);
    // The contact-email notice reached the mobile as it stood after it was set: two notices.
    assert_eq!(inbox.to(&m40).iter().filter(|m| !m.is_code()).count(), 2);
    world.clean_up().await;
}
