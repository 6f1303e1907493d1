//! The relay publishes every account event exactly once, in order per account, with password
//! hashes removed and codes sealed; sign-up / sign-in codes go to their own stream; recovery
//! streams are not published; a checkpoint moved back to zero publishes no duplicate. On the
//! real NATS JetStream, over PostgreSQL and SQLite.

mod support_bus;

use std::collections::HashMap;

use domain::account::RecoveryMethod;
use domain::{Recovery, RecoveryCommand};
use projections::bus::StreamKind;
use serde_json::Value;
use support_bus::*;
use testkit::{on_both_backends, TestDatabase};

on_both_backends!(
    account_events_are_published_once_in_order_and_without_password_hashes,
    a_relay_checkpoint_reset_to_zero_publishes_no_duplicate,
);

/// A few accounts with passwords, codes, a reset token, a challenge and a recovery.
async fn write_history(world: &World) {
    let (a, code) = world.sign_up_by_email("erin@example.com").await;
    world.verify_contact_email(&a, code).await;
    world.change_contact_mobile(&a, &mobile(20)).await;
    world.change_password(&a, 5).await;
    world.issue_reset_token(&a).await;
    let (b, _) = world.sign_up_by_email("frank@example.com").await;
    world.change_password(&b, 6).await;
    world.sign_up_by_mobile(&mobile(21)).await;
    world.issue_challenge("challenge-relay", &mobile(22)).await;
    world
        .service
        .executor()
        .execute::<Recovery>(
            "recovery-relay",
            RecoveryCommand::Start {
                recovery_id: "recovery-relay".into(),
                method: RecoveryMethod::AccountId,
                account: None,
                masked_mobile: "+86 139****0000".into(),
            },
            &commands::CommandContext::system(),
        )
        .await
        .expect("start a recovery");
}

async fn account_events_are_published_once_in_order_and_without_password_hashes(db: TestDatabase) {
    let world = World::with_nats(db).await;
    write_history(&world).await;
    let expected = world.count_events("Account").await;
    assert!(world.count_events("Recovery").await > 0);
    world.relay_all(&world.relay()).await;
    // Once more: nothing new (the log is read after the checkpoint).
    assert_eq!(world.relay().step().await.unwrap(), 0);

    let messages = read_stream(&world.bus, StreamKind::AccountEvents, expected).await;
    let prefix = world.bus.topology().prefix().to_owned();
    let mut last_sequence: HashMap<String, u64> = HashMap::new();
    for m in &messages {
        let envelope: Value = serde_json::from_slice(&m.payload).unwrap();
        let account_id = envelope["account_id"].as_str().unwrap();
        let sequence = envelope["sequence"].as_u64().unwrap();
        let event_type = envelope["type"].as_str().unwrap();
        assert_eq!(
            m.subject,
            format!("{prefix}accounts.{account_id}.{event_type}")
        );
        assert_eq!(
            m.message_id.as_deref(),
            Some(format!("{account_id}:{sequence}").as_str())
        );
        let previous = last_sequence
            .insert(account_id.to_owned(), sequence)
            .unwrap_or(0);
        assert_eq!(sequence, previous + 1, "per-account order on the stream");
        for key in [
            "version",
            "occurred_at",
            "payload",
            "metadata",
            "chain_hash",
        ] {
            assert!(!envelope[key].is_null(), "{key} in {envelope}");
        }
        assert_eq!(envelope["chain_hash"].as_str().unwrap().len(), 64);
        let text = String::from_utf8(m.payload.clone()).unwrap();
        assert!(
            !text.contains("password_hash") && !text.contains("$argon2"),
            "{text}"
        );
        if event_type == "VerificationCodeIssued" {
            assert!(envelope["payload"]["sealed_code"]["ciphertext"].is_string());
            let code = world
                .keyring
                .open(&serde_json::from_value(envelope["payload"]["sealed_code"].clone()).unwrap())
                .unwrap();
            assert!(!text.contains(&code), "the code stays sealed");
        }
        if event_type == "ResetTokenIssued" {
            let token = world
                .keyring
                .open(&serde_json::from_value(envelope["payload"]["sealed_token"].clone()).unwrap())
                .unwrap();
            assert!(!text.contains(&token), "the token stays sealed");
        }
    }
    assert_eq!(
        messages.len(),
        expected,
        "exactly one message per account event"
    );

    // Only ChallengeIssued of the challenge stream, on its own stream.
    let codes = read_stream(&world.bus, StreamKind::ChallengeCodes, 1).await;
    assert_eq!(
        codes[0].subject,
        format!("{prefix}challenges.codes.challenge-relay")
    );
    let envelope: Value = serde_json::from_slice(&codes[0].payload).unwrap();
    assert_eq!(envelope["type"], "ChallengeIssued");
    assert_eq!(envelope["challenge_id"], "challenge-relay");
    world.clean_up().await;
}

async fn a_relay_checkpoint_reset_to_zero_publishes_no_duplicate(db: TestDatabase) {
    let world = World::with_nats(db).await;
    write_history(&world).await;
    let expected = world.count_events("Account").await;
    let relay = world.relay().with_batch_size(7);
    world.relay_all(&relay).await;
    relay.reset_checkpoint().await.unwrap();
    assert_eq!(relay.checkpoint().await.unwrap(), Default::default());
    relay.catch_up().await.unwrap();
    assert_ne!(relay.checkpoint().await.unwrap(), Default::default());
    let messages = read_stream(&world.bus, StreamKind::AccountEvents, expected).await;
    assert_eq!(messages.len(), expected);
    world.clean_up().await;
}
