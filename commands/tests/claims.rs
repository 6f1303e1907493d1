//! Claims on values that belong to at most one account (DESIGN §3.6): exactly one of concurrent
//! claimants wins, a failed command gives its claim back, and a stale pending claim is taken
//! over only when its owner's command never committed.

use std::collections::HashSet;

use commands::claims::ClaimKind;
use commands::service::ServiceError;
use commands::{CommandContext, Store};
use domain::account::{AccountEvent, VerificationMethod};
use domain::values::{AccountId, VerificationCode};
use domain::{Account, AccountCommand, DomainError, PasswordHash, SessionId};
use testkit::prelude::*;
use testkit::TestDatabase;

const EMAIL: &str = "ada@example.com";

on_both_backends!(
    of_fifty_concurrent_claims_on_one_email_exactly_one_wins,
    of_ten_concurrent_sign_ups_with_one_email_exactly_one_succeeds,
    claiming_a_value_one_already_owns_succeeds,
    a_released_claim_can_be_taken_by_another_owner,
    a_sign_up_whose_registration_fails_gives_its_email_claim_back,
    a_fresh_pending_claim_is_not_taken_over,
    a_stale_pending_claim_whose_command_never_committed_is_taken_over,
    a_stale_pending_claim_whose_owner_holds_the_value_is_refused_and_marked_held,
    a_stale_login_email_claim_is_taken_over_when_the_owner_has_the_address_only_as_contact_email,
);

async fn of_fifty_concurrent_claims_on_one_email_exactly_one_wins(db: TestDatabase) {
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = db.store.clone();
            tokio::spawn(async move {
                let owner = format!("owner-{i}");
                let result = claim(&store, ClaimKind::LoginEmail, EMAIL, &owner).await;
                (owner, result)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (owner, Ok(())) => winners.push(owner),
            (_, Err(ServiceError::Domain(DomainError::Conflict))) => {}
            (owner, Err(e)) => panic!("{owner}'s claim failed instead of being refused: {e}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one claimant wins: {winners:?}");
    assert_eq!(
        db.store
            .claim_owner(ClaimKind::LoginEmail, EMAIL)
            .await
            .unwrap(),
        Some(winners[0].clone())
    );
    assert_eq!(claim_rows(&db.store).await, 1);
}

async fn of_ten_concurrent_sign_ups_with_one_email_exactly_one_succeeds(db: TestDatabase) {
    let service = service(&db.store);
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let service = service.clone();
            tokio::spawn(async move {
                service
                    .sign_up_with_email(email(EMAIL), &password(), &CommandContext::system())
                    .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(signed_up) => winners.push(signed_up.account_id),
            Err(ServiceError::Domain(DomainError::Conflict)) => {}
            Err(e) => panic!("a losing sign-up must be a conflict, got {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one sign-up succeeds");
    let streams: HashSet<String> = all_keys(&db.store)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        streams,
        HashSet::from([winners[0].as_str().to_owned()]),
        "only the winner has events"
    );
    assert_eq!(
        claim_state(&db.store, ClaimKind::LoginEmail, EMAIL).await,
        Some((winners[0].as_str().to_owned(), "held".to_owned())),
        "the winner's claim is held once its registration committed"
    );
}

async fn claiming_a_value_one_already_owns_succeeds(db: TestDatabase) {
    claim(&db.store, ClaimKind::ServerIp, "203.0.113.7", "owner-a")
        .await
        .unwrap();
    claim(&db.store, ClaimKind::ServerIp, "203.0.113.7", "owner-a")
        .await
        .expect("the owner claims it again");
    assert!(matches!(
        claim(&db.store, ClaimKind::ServerIp, "203.0.113.7", "owner-b").await,
        Err(ServiceError::Domain(DomainError::Conflict))
    ));
    // Kinds are separate: the same text may be claimed as another kind.
    claim(&db.store, ClaimKind::InstanceId, "203.0.113.7", "owner-b")
        .await
        .unwrap();
}

async fn a_released_claim_can_be_taken_by_another_owner(db: TestDatabase) {
    claim(&db.store, ClaimKind::LoginEmail, EMAIL, "owner-a")
        .await
        .unwrap();
    assert!(matches!(
        claim(&db.store, ClaimKind::LoginEmail, EMAIL, "owner-b").await,
        Err(ServiceError::Domain(DomainError::Conflict))
    ));

    db.store
        .release(ClaimKind::LoginEmail, EMAIL, "owner-a")
        .await
        .unwrap();

    assert_eq!(
        db.store
            .claim_owner(ClaimKind::LoginEmail, EMAIL)
            .await
            .unwrap(),
        None
    );
    claim(&db.store, ClaimKind::LoginEmail, EMAIL, "owner-b")
        .await
        .expect("a released value is free again");
    assert_eq!(
        db.store
            .claim_owner(ClaimKind::LoginEmail, EMAIL)
            .await
            .unwrap()
            .as_deref(),
        Some("owner-b")
    );
}

async fn a_sign_up_whose_registration_fails_gives_its_email_claim_back(db: TestDatabase) {
    // Occupy the id the next sign-up will take, so that its registration is refused after
    // its claim was made.
    let executor = executor(&db.store);
    let taken_now = db.store.next_account_number().await.unwrap();
    let next = AccountId::from_number(taken_now + 1).unwrap();
    executor
        .execute::<Account>(
            next.as_str(),
            AccountCommand::RegisterWithMobile {
                account_id: next.clone(),
                mobile: mobile(1),
            },
            &CommandContext::system(),
        )
        .await
        .unwrap();
    let service = service(&db.store);

    let failed = service
        .sign_up_with_email(email(EMAIL), &password(), &CommandContext::system())
        .await;

    assert!(
        matches!(
            failed,
            Err(ServiceError::Domain(DomainError::AccountAlreadyExists))
        ),
        "the registration on an existing id is refused, got {failed:?}"
    );
    assert_eq!(
        db.store
            .claim_owner(ClaimKind::LoginEmail, EMAIL)
            .await
            .unwrap(),
        None,
        "the failed sign-up released its claim"
    );
    let retried = service
        .sign_up_with_email(email(EMAIL), &password(), &CommandContext::system())
        .await
        .expect("the email is free for the next sign-up");
    assert!(retried.account_id.number() > next.number());
}

async fn a_fresh_pending_claim_is_not_taken_over(db: TestDatabase) {
    // Its owner may still be running its command.
    insert_pending_claim(&db.store, EMAIL, "100000000999", 0).await;

    assert!(matches!(
        claim(&db.store, ClaimKind::LoginEmail, EMAIL, "owner-b").await,
        Err(ServiceError::Domain(DomainError::Conflict))
    ));
    assert_eq!(
        claim_state(&db.store, ClaimKind::LoginEmail, EMAIL).await,
        Some(("100000000999".to_owned(), "pending".to_owned()))
    );
}

async fn a_stale_pending_claim_whose_command_never_committed_is_taken_over(db: TestDatabase) {
    // The owner claimed two minutes ago and died before its registration committed.
    insert_pending_claim(&db.store, EMAIL, "100000000999", 120).await;

    claim(&db.store, ClaimKind::LoginEmail, EMAIL, "owner-b")
        .await
        .expect("a dead claim is taken over");

    assert_eq!(
        claim_state(&db.store, ClaimKind::LoginEmail, EMAIL).await,
        Some(("owner-b".to_owned(), "pending".to_owned()))
    );
}

async fn a_stale_pending_claim_whose_owner_holds_the_value_is_refused_and_marked_held(
    db: TestDatabase,
) {
    // The owner's registration committed, but it died before marking its claim held.
    let executor = executor(&db.store);
    let owner = AccountId::from_number(db.store.next_account_number().await.unwrap()).unwrap();
    executor
        .execute::<Account>(
            owner.as_str(),
            AccountCommand::RegisterWithEmail {
                account_id: owner.clone(),
                login_email: email(EMAIL),
                password_hash: PasswordHash::from_phc("x"),
                code_id: "code-1".to_owned(),
            },
            &CommandContext::system(),
        )
        .await
        .unwrap();
    insert_pending_claim(&db.store, EMAIL, owner.as_str(), 120).await;

    let refused = claim(&db.store, ClaimKind::LoginEmail, EMAIL, "owner-b").await;

    assert!(
        matches!(refused, Err(ServiceError::Domain(DomainError::Conflict))),
        "got {refused:?}"
    );
    assert_eq!(
        claim_state(&db.store, ClaimKind::LoginEmail, EMAIL).await,
        Some((owner.as_str().to_owned(), "held".to_owned())),
        "the claim stays with the owner whose stream holds the value, now held"
    );
}

async fn a_stale_login_email_claim_is_taken_over_when_the_owner_has_the_address_only_as_contact_email(
    db: TestDatabase,
) {
    // An account registered by mobile makes the address its contact email, then asks to bind
    // it as its login email: the claim is made, and the process dies before the binding
    // request commits. The owner's stream mentions the address, but never as a login email.
    let executor = executor(&db.store);
    let owner = register_by_mobile(&executor, 1).await;
    let session = SessionId::new("session-1");
    let context = CommandContext::system();
    let started = executor
        .execute::<Account>(
            owner.as_str(),
            AccountCommand::StartIdentityVerification {
                verification_id: "verification-1".to_owned(),
                method: VerificationMethod::Sms,
                session_id: session.clone(),
            },
            &context,
        )
        .await
        .unwrap();
    let [AccountEvent::VerificationCodeIssued { sealed_code, .. }] = started.events.as_slice()
    else {
        panic!("a step-up code is issued, got {:?}", started.events);
    };
    let code = VerificationCode::parse(&keyring().open(sealed_code).unwrap()).unwrap();
    let commands = [
        AccountCommand::ConfirmIdentityWithCode {
            verification_id: "verification-1".to_owned(),
            session_id: session.clone(),
            code,
        },
        AccountCommand::ChangeContactEmail {
            session_id: session.clone(),
            email: email(EMAIL),
            code_id: "code-1".to_owned(),
        },
    ];
    for command in commands {
        executor
            .execute::<Account>(owner.as_str(), command, &context)
            .await
            .unwrap();
    }
    let state = executor
        .load::<Account>(owner.as_str())
        .await
        .unwrap()
        .state;
    assert_eq!(state.login_email, None);
    assert!(state.pending_login_email.is_none());
    insert_pending_claim(&db.store, EMAIL, owner.as_str(), 120).await;

    let claimed = claim(&db.store, ClaimKind::LoginEmail, EMAIL, "owner-b").await;

    assert!(
        claimed.is_ok(),
        "the owner never took {EMAIL} as its login email, so its stale claim must be taken \
         over; got {claimed:?} and the claim is now {:?}",
        claim_state(&db.store, ClaimKind::LoginEmail, EMAIL).await
    );
}

/// Inserts a pending login-email claim made `age_seconds` ago.
async fn insert_pending_claim(store: &Store, value: &str, owner: &str, age_seconds: i64) {
    let age = format!("-{age_seconds} seconds");
    Raw::of(store)
        .execute(
            "INSERT INTO claims (kind, value, owner, state, claimed_at) \
             VALUES ('login_email', $1, $2, 'pending', now() + $3::interval)",
            "INSERT INTO claims (kind, value, owner, state, claimed_at) \
             VALUES ('login_email', ?1, ?2, 'pending', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?3))",
            &[Arg::Text(value), Arg::Text(owner), Arg::Text(&age)],
        )
        .await;
}

/// (owner, state) of the claim on `value`.
async fn claim_state(store: &Store, kind: ClaimKind, value: &str) -> Option<(String, String)> {
    let found = Raw::of(store)
        .texts(
            "SELECT owner || '/' || state FROM claims WHERE kind = $1 AND value = $2",
            "SELECT owner || '/' || state FROM claims WHERE kind = ?1 AND value = ?2",
            &[Arg::Text(kind.as_str()), Arg::Text(value)],
        )
        .await;
    found.first().and_then(|row| {
        let (owner, state) = row.split_once('/')?;
        Some((owner.to_owned(), state.to_owned()))
    })
}

async fn claim_rows(store: &Store) -> i64 {
    count(store, "SELECT count(*) FROM claims").await as i64
}

/// Claims through the command service, which settles stale claims from the owner's state.
async fn claim(
    store: &Store,
    kind: ClaimKind,
    value: &str,
    owner: &str,
) -> Result<(), ServiceError> {
    service(store).claim(kind, value, owner).await
}
