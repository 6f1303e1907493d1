//! The `CommandService` flows against the real stores: what sign-up, step-up, contact changes
//! and sign-in failures commit, the metadata and chain every event carries, and that no secret
//! is stored in clear.

use std::collections::HashSet;
use std::sync::Arc;

use commands::claims::ClaimKind;
use commands::service::ServiceError;
use commands::{Actor, CommandContext};
use domain::account::AccountEvent;
use domain::chain::CHAIN_HASH_KEY;
use domain::codes::{binding, CodePurpose};
use domain::stored::from_payload;
use domain::values::{AccountId, VerificationCode};
use domain::{AccountCommand, DomainError, Secrets, SessionId};
use testkit::prelude::*;
use testkit::TestDatabase;
use uuid::Uuid;

on_both_backends!(
    sign_up_by_email_commits_the_registration_and_a_code_under_a_new_account_id,
    a_second_sign_up_with_the_same_email_is_a_conflict_and_stores_nothing,
    account_ids_increase_and_are_never_handed_out_twice,
    a_password_step_up_lets_the_session_change_the_contact_email,
    changing_the_contact_email_without_a_step_up_is_refused_and_stores_nothing,
    a_wrong_password_records_a_failed_sign_in_and_answers_invalid_credentials,
    every_event_carries_its_id_time_actor_request_details_and_chain_hash,
    a_system_command_records_no_request_details,
    the_chain_of_a_stream_read_back_through_the_reader_verifies,
    a_verification_code_is_stored_only_as_a_keyed_digest_and_a_sealed_copy,
    no_stored_event_holds_the_password_in_clear,
    a_replaced_sign_up_code_answers_code_expired_and_the_newer_one_passes,
    a_refused_password_sign_in_answers_no_sooner_than_the_floor_whether_the_login_exists_or_not,
);

async fn sign_up_by_email_commits_the_registration_and_a_code_under_a_new_account_id(
    db: TestDatabase,
) {
    let service = service(&db.store);
    let signed_up = service
        .sign_up_with_email(
            email("ada@example.com"),
            &password(),
            &CommandContext::system(),
        )
        .await
        .expect("the sign-up succeeds");

    assert!(signed_up.account_id.number() >= AccountId::FIRST);
    let rows = stream_rows(&db.store, signed_up.account_id.as_str()).await;
    let kinds: Vec<(u64, &str)> = rows
        .iter()
        .map(|r| (r.sequence, r.event_type.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [(1, "AccountRegistered"), (2, "VerificationCodeIssued")]
    );
    assert_eq!(rows[0].payload["login_email"], "ada@example.com");
    assert_eq!(rows[1].payload["code_id"], signed_up.code_id.as_str());
    assert_eq!(rows[1].payload["target"], "ada@example.com");
    assert_eq!(
        db.store
            .claim_owner(ClaimKind::LoginEmail, "ada@example.com")
            .await
            .unwrap()
            .as_deref(),
        Some(signed_up.account_id.as_str()),
        "the login email is claimed by the new account"
    );
}

async fn a_second_sign_up_with_the_same_email_is_a_conflict_and_stores_nothing(db: TestDatabase) {
    let service = service(&db.store);
    let context = CommandContext::system();
    let first = service
        .sign_up_with_email(email("ada@example.com"), &password(), &context)
        .await
        .expect("the first sign-up succeeds");

    let second = service
        .sign_up_with_email(email("ada@example.com"), &password(), &context)
        .await;

    assert!(
        matches!(second, Err(ServiceError::Domain(DomainError::Conflict))),
        "a taken login email is a conflict, got {second:?}"
    );
    let streams: HashSet<String> = all_keys(&db.store)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        streams,
        HashSet::from([first.account_id.as_str().to_owned()]),
        "the refused sign-up left no events under any other id"
    );
    assert_eq!(event_count(&db.store).await, 2);
    assert_eq!(
        db.store
            .claim_owner(ClaimKind::LoginEmail, "ada@example.com")
            .await
            .unwrap()
            .as_deref(),
        Some(first.account_id.as_str()),
        "the claim still belongs to the first account"
    );
}

async fn account_ids_increase_and_are_never_handed_out_twice(db: TestDatabase) {
    let mut taken = Vec::new();
    for _ in 0..20 {
        taken.push(db.store.next_account_number().await.unwrap());
    }
    assert!(taken[0] >= AccountId::FIRST);
    assert!(
        taken.windows(2).all(|w| w[0] < w[1]),
        "ids taken one after another strictly increase: {taken:?}"
    );

    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = db.store.clone();
            tokio::spawn(async move { store.next_account_number().await.unwrap() })
        })
        .collect();
    let mut concurrent = Vec::new();
    for task in tasks {
        concurrent.push(task.await.unwrap());
    }
    let distinct: HashSet<u64> = concurrent.iter().copied().collect();
    assert_eq!(distinct.len(), 20, "concurrent takers get distinct ids");
    let last_sequential = *taken.last().unwrap();
    assert!(
        concurrent.iter().all(|n| *n > last_sequential),
        "no id is handed out again"
    );
}

async fn a_password_step_up_lets_the_session_change_the_contact_email(db: TestDatabase) {
    let service = service(&db.store);
    let id = service
        .sign_up_with_email(
            email("ada@example.com"),
            &password(),
            &CommandContext::system(),
        )
        .await
        .unwrap()
        .account_id;
    let context = request_context(&id);
    let session = SessionId::new("session-1");

    let verified = service
        .verify_identity_with_password(&id, &session, PASSWORD, &context)
        .await
        .expect("the right password verifies the identity");
    assert!(matches!(
        verified.events.as_slice(),
        [AccountEvent::IdentityVerified { .. }]
    ));

    service
        .change_contact_email(&id, &session, email("ada@lovelace.example"), &context)
        .await
        .expect("a verified session may change the contact email");

    let rows = stream_rows(&db.store, id.as_str()).await;
    let changed = rows
        .iter()
        .find(|r| r.event_type == "ContactEmailChanged")
        .expect("ContactEmailChanged is stored");
    assert_eq!(changed.payload["email"], "ada@lovelace.example");
    assert_eq!(changed.payload["previous"], "ada@example.com");
    let state = service.account(&id).await.unwrap().state;
    assert_eq!(
        state
            .contact_email
            .as_ref()
            .map(|c| c.value.as_str().to_owned()),
        Some("ada@lovelace.example".to_owned())
    );
}

async fn changing_the_contact_email_without_a_step_up_is_refused_and_stores_nothing(
    db: TestDatabase,
) {
    let service = service(&db.store);
    let id = service
        .sign_up_with_email(
            email("ada@example.com"),
            &password(),
            &CommandContext::system(),
        )
        .await
        .unwrap()
        .account_id;
    let before = stream_rows(&db.store, id.as_str()).await;

    let refused = service
        .change_contact_email(
            &id,
            &SessionId::new("never-verified"),
            email("mallory@example.com"),
            &request_context(&id),
        )
        .await;

    assert!(
        matches!(
            refused,
            Err(ServiceError::Domain(
                DomainError::IdentityVerificationRequired
            ))
        ),
        "got {refused:?}"
    );
    assert_eq!(stream_rows(&db.store, id.as_str()).await, before);
}

async fn a_wrong_password_records_a_failed_sign_in_and_answers_invalid_credentials(
    db: TestDatabase,
) {
    let service = service(&db.store);
    let id = service
        .sign_up_with_email(
            email("ada@example.com"),
            &password(),
            &CommandContext::system(),
        )
        .await
        .unwrap()
        .account_id;
    let account = service.account(&id).await.unwrap();
    let check = service
        .check_password(&account.state, "Wr0ng#password")
        .await
        .unwrap();
    assert!(!check.matches);

    let answer = service
        .execute(
            &id,
            AccountCommand::SignInWithPassword {
                check,
                session_id: SessionId::new("session-1"),
                new_client: None,
            },
            &request_context(&id),
        )
        .await;

    assert!(
        matches!(
            answer,
            Err(ServiceError::Domain(DomainError::InvalidCredentials))
        ),
        "got {answer:?}"
    );
    let rows = stream_rows(&db.store, id.as_str()).await;
    let last = rows.last().unwrap();
    assert_eq!(
        (last.sequence, last.event_type.as_str()),
        (3, "SignInFailed")
    );
    assert_eq!(last.payload["consecutive_failures"], 1);
}

async fn every_event_carries_its_id_time_actor_request_details_and_chain_hash(db: TestDatabase) {
    let clock = Arc::new(TestClock::new(t0()));
    let service = service_with_clock(&db.store, clock.clone());
    let number = db.store.next_account_number().await.unwrap();
    let id = AccountId::from_number(number).unwrap();
    let context = request_context(&id);
    service
        .execute(
            &id,
            AccountCommand::RegisterWithMobile {
                account_id: id.clone(),
                mobile: mobile(1),
            },
            &context,
        )
        .await
        .unwrap();
    clock.advance(chrono::Duration::seconds(90));
    service
        .execute(&id, assign_server(1), &context)
        .await
        .unwrap();

    let rows = stream_rows(&db.store, id.as_str()).await;
    assert_eq!(rows.len(), 2);
    let mut event_ids = HashSet::new();
    for (row, at) in rows
        .iter()
        .zip([t0(), t0() + chrono::Duration::seconds(90)])
    {
        let m = &row.metadata;
        let event_id = m["event_id"].as_str().expect("an event id");
        Uuid::parse_str(event_id).expect("the event id is a UUID");
        assert!(
            event_ids.insert(event_id.to_owned()),
            "event ids are unique"
        );
        let occurred_at = chrono::DateTime::parse_from_rfc3339(
            m["occurred_at"].as_str().expect("an occurrence time"),
        )
        .expect("occurred_at is RFC 3339");
        assert_eq!(occurred_at, at, "occurred_at is the injected clock's time");
        assert_eq!(m["actor"], format!("account:{}", id.as_str()));
        assert_eq!(m["request_id"], "req-7f3a");
        assert_eq!(m["ip"], "203.0.113.9");
        assert_eq!(m["user_agent"], "accountd-tests/1.0");
        let hash = m[CHAIN_HASH_KEY].as_str().expect("a chain hash");
        assert_eq!(hash.len(), 64);
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}

async fn a_system_command_records_no_request_details(db: TestDatabase) {
    let executor = executor(&db.store);
    let id = register_by_mobile(&executor, 1).await;
    executor
        .execute::<domain::Account>(
            id.as_str(),
            assign_server(1),
            &CommandContext::of(Actor::Service("compute".to_owned())),
        )
        .await
        .unwrap();

    let rows = stream_rows(&db.store, id.as_str()).await;
    assert_eq!(rows[0].metadata["actor"], "service:accountd");
    assert_eq!(rows[1].metadata["actor"], "service:compute");
    for row in &rows {
        let keys: HashSet<&str> = row
            .metadata
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            HashSet::from(["event_id", "occurred_at", "actor", CHAIN_HASH_KEY]),
            "no request_id, ip or user_agent without a request"
        );
    }
}

async fn the_chain_of_a_stream_read_back_through_the_reader_verifies(db: TestDatabase) {
    let service = service(&db.store);
    let id = service
        .sign_up_with_email(
            email("ada@example.com"),
            &password(),
            &CommandContext::system(),
        )
        .await
        .unwrap()
        .account_id;
    let context = request_context(&id);
    let session = SessionId::new("session-1");
    service
        .verify_identity_with_password(&id, &session, PASSWORD, &context)
        .await
        .unwrap();
    service
        .change_contact_email(&id, &session, email("ada@lovelace.example"), &context)
        .await
        .unwrap();
    for n in 1..=3 {
        service
            .execute(&id, assign_server(n), &context)
            .await
            .unwrap();
    }
    // Another stream interleaved in the log must not disturb this one's chain.
    register_by_mobile(service.executor(), 9).await;

    let log = read_whole_log(&db.store).await;
    let stream: Vec<_> = log
        .iter()
        .filter(|e| e.aggregate_id == id.as_str())
        .collect();
    assert_eq!(stream.len(), 8);

    let verification = verify_recorded(&stream);
    assert_eq!(verification.first_broken_sequence, None);
    assert_eq!(verification.events_checked, 8);
    assert_eq!(
        verification.head,
        stream.last().unwrap().metadata[CHAIN_HASH_KEY],
        "the verified head is the last event's chain hash"
    );
}

async fn a_verification_code_is_stored_only_as_a_keyed_digest_and_a_sealed_copy(db: TestDatabase) {
    // A fixed clock at whole seconds keeps six-digit fractions out of every timestamp.
    let service = service_with_clock(&db.store, Arc::new(TestClock::new(t0())));
    let signed_up = service
        .sign_up_with_email(
            email("ada@example.com"),
            &password(),
            &CommandContext::system(),
        )
        .await
        .unwrap();
    let id = signed_up.account_id.as_str();
    let rows = stream_rows(&db.store, id).await;
    let issued = rows
        .iter()
        .find(|r| r.event_type == "VerificationCodeIssued")
        .unwrap();
    let AccountEvent::VerificationCodeIssued {
        sealed_code,
        code_digest,
        target,
        code_id,
        ..
    } = from_payload::<AccountEvent>(
        &issued.event_type,
        &issued.event_version,
        issued.payload.clone(),
    )
    .unwrap()
    else {
        unreachable!("the row is a VerificationCodeIssued");
    };

    let code = keyring()
        .open(&sealed_code)
        .expect("the notifier's keyring opens the sealed code");
    let code = VerificationCode::parse(&code).expect("the sealed value is a six-digit code");
    assert_eq!(
        code_digest,
        keyring().code_digest(&binding(id, CodePurpose::Contact, &target, &code_id), &code),
        "the stored digest is the keyed hash of the code, bound to its owner and id"
    );
    for row in &rows {
        for text in [&row.payload_text, &row.metadata_text] {
            assert!(
                !text.contains(code.as_str()),
                "{} stores the code in clear: {text}",
                row.event_type
            );
        }
    }
}

async fn no_stored_event_holds_the_password_in_clear(db: TestDatabase) {
    let service = service(&db.store);
    let id = service
        .sign_up_with_email(
            email("ada@example.com"),
            &password(),
            &CommandContext::system(),
        )
        .await
        .unwrap()
        .account_id;
    let context = request_context(&id);
    let session = SessionId::new("session-1");
    service
        .verify_identity_with_password(&id, &session, PASSWORD, &context)
        .await
        .unwrap();

    let rows = stream_rows(&db.store, id.as_str()).await;
    assert_eq!(rows.len(), 3);
    let hash = rows[0].payload["password_hash"].as_str().unwrap();
    assert!(
        hash.starts_with("$argon2id$"),
        "the registration stores an Argon2id hash"
    );
    for row in &rows {
        assert!(!row.payload_text.contains(PASSWORD), "{}", row.event_type);
        assert!(!row.metadata_text.contains(PASSWORD), "{}", row.event_type);
    }
    const CLAIMS: &str = "SELECT value FROM claims";
    let claims = db.raw.texts(CLAIMS, CLAIMS, &[]).await;
    assert!(claims.iter().all(|v| !v.contains(PASSWORD)));
}

/// The six-digit code of the SMS challenge `code_id`, opened from its stored event.
async fn challenge_code(store: &commands::Store, code_id: &str) -> VerificationCode {
    let rows = stream_rows(store, code_id).await;
    let domain::ChallengeEvent::ChallengeIssued { sealed_code, .. } =
        from_payload::<domain::ChallengeEvent>(
            &rows[0].event_type,
            &rows[0].event_version,
            rows[0].payload.clone(),
        )
        .unwrap()
    else {
        unreachable!("a challenge starts with its issue");
    };
    VerificationCode::parse(&keyring().open(&sealed_code).unwrap()).unwrap()
}

/// SPEC §2: a newer code for the same purpose and target replaces the older one, which then
/// answers `code_expired` (issue 13, finding 1).
async fn a_replaced_sign_up_code_answers_code_expired_and_the_newer_one_passes(db: TestDatabase) {
    let clock = Arc::new(TestClock::new(t0()));
    let service = service_with_clock(&db.store, clock.clone());
    let context = CommandContext::system();
    let to = mobile(4242);
    let mut tickets = Vec::new();
    for _ in 0..2 {
        let ticket = service
            .admit_sms_code(to.clone(), commands::flows::SmsPurpose::Signup)
            .await
            .unwrap();
        service
            .send_sms_code(ticket.clone(), &context)
            .await
            .unwrap();
        tickets.push(ticket.code_id);
        // Past the one-a-minute cooldown, as a person asking again would be.
        clock.advance(chrono::Duration::seconds(61));
    }
    let first = challenge_code(&db.store, &tickets[0]).await;
    let second = challenge_code(&db.store, &tickets[1]).await;

    let replaced = service
        .sign_up_with_mobile(to.clone(), &tickets[0], first, &context)
        .await;
    assert!(
        matches!(
            replaced,
            Err(ServiceError::Domain(DomainError::CodeExpired))
        ),
        "the replaced code is expired: {replaced:?}"
    );
    service
        .sign_up_with_mobile(to, &tickets[1], second, &context)
        .await
        .expect("the newest code signs up");
}

/// Issue 13, finding 7: a known login did a millisecond more work than an unknown one.
async fn a_refused_password_sign_in_answers_no_sooner_than_the_floor_whether_the_login_exists_or_not(
    db: TestDatabase,
) {
    use commands::flows::REFUSED_SIGN_IN_FLOOR;
    let service = service(&db.store);
    let id = service
        .sign_up_with_email(
            email("ada@example.com"),
            &password(),
            &CommandContext::system(),
        )
        .await
        .unwrap()
        .account_id;
    let unknown_id = AccountId::from_number(id.number() + 1).unwrap();
    for login in [
        "ada@example.com",
        "nobody@example.com",
        id.as_str(),
        unknown_id.as_str(),
    ] {
        let began = std::time::Instant::now();
        let answer = service
            .sign_in_with_password(login, "Wr0ng#password", &CommandContext::system())
            .await;
        let took = began.elapsed();
        assert!(
            matches!(
                answer,
                Err(ServiceError::Domain(DomainError::InvalidCredentials))
            ),
            "{login}: {answer:?}"
        );
        assert!(
            took >= REFUSED_SIGN_IN_FLOOR,
            "{login}: answered after {took:?}, before the floor"
        );
    }
}
