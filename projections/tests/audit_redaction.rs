//! Redaction (issue 7, SPEC §4): no password hash, code, reset token or sealed value appears
//! in any audit or history output. The account holds all of them: real Argon2id hashes, codes
//! and a reset token sealed in its events (opened here with the keyring to know them).

#[macro_use]
mod support_audit;

use chrono::Duration;
use domain::account::AccountEvent;
use domain::stored::from_payload;
use domain::values::AccountId;
use domain::{AccountCommand, Channel, PasswordCheck, ReuseCheck, Sealed};
use support_audit::*;
use testkit::TestDatabase;

on_both_backends!(no_secret_appears_in_any_audit_output);

/// Signs up with a real password hash, verifies the contact email, changes the contact mobile
/// and the password (real hash), asks for a reset link and a reset code, and registers a second
/// account by mobile. Every sealed code and token is stored in the events.
async fn an_account_with_every_kind_of_secret(env: &Env) -> AccountId {
    let (id, signup_code) = env
        .register_by_email("grace@example.com", env.hash("Tq7#vLm2!x").await)
        .await;
    env.exec(
        &id,
        AccountCommand::VerifyContact {
            channel: Channel::Email,
            code: signup_code,
        },
    )
    .await;
    let session = env.step_up_by_password(&id).await;
    let sent = env
        .exec(
            &id,
            AccountCommand::RequestRecoveryMobileChange {
                session_id: session.clone(),
                mobile: mobile(3),
                code_id: "recovery-1".into(),
            },
        )
        .await;
    env.exec(
        &id,
        AccountCommand::ConfirmRecoveryChange {
            channel: Channel::Sms,
            code: env.code_of(&sent),
        },
    )
    .await;
    let version = env.account(&id).await.password_version();
    env.exec(
        &id,
        AccountCommand::ChangePassword {
            session_id: session,
            current: PasswordCheck {
                against_version: version,
                matches: true,
            },
            reuse: ReuseCheck {
                against_version: version,
                reused: false,
            },
            new_hash: env.hash("Zx9!pQr4#w").await,
        },
    )
    .await;
    let issued = env.exec(&id, AccountCommand::IssueResetToken).await;
    let token_digest = issued
        .events
        .iter()
        .find_map(|e| match e {
            AccountEvent::ResetTokenIssued { token_digest, .. } => Some(token_digest.clone()),
            _ => None,
        })
        .expect("a reset token");
    env.exec(
        &id,
        AccountCommand::SendResetCode {
            token_digest,
            channel: Channel::Sms,
            code_id: "reset-1".into(),
        },
    )
    .await;
    env.clock.advance(Duration::minutes(1));
    id
}

/// Every sealed value stored in the account's events, opened: its codes and its reset token.
async fn opened_secrets(env: &Env, id: &AccountId) -> (Vec<String>, Vec<String>) {
    let (mut codes, mut tokens) = (Vec::new(), Vec::new());
    for row in stored(env.store(), id).await {
        let event: AccountEvent =
            from_payload(&row.event_type, &row.event_version, row.payload).unwrap();
        let open = |sealed: &Sealed| env.keyring.open(sealed).expect("the keyring opens it");
        match event {
            AccountEvent::VerificationCodeIssued { sealed_code, .. } => {
                codes.push(open(&sealed_code))
            }
            AccountEvent::ResetTokenIssued { sealed_token, .. } => tokens.push(open(&sealed_token)),
            _ => {}
        }
    }
    (codes, tokens)
}

/// Whether `needle` occurs in `text` as a whole token (not inside a longer run of letters or
/// digits, such as a hex hash that happens to contain six decimal digits).
fn occurs_as_token(text: &str, needle: &str) -> bool {
    text.match_indices(needle).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + needle.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric())
            && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}

async fn no_secret_appears_in_any_audit_output(db: TestDatabase) {
    let env = Env::new(db).await;
    let id = an_account_with_every_kind_of_secret(&env).await;
    let other = env.stream_of(9, 3).await;
    let (codes, tokens) = opened_secrets(&env, &id).await;
    assert_eq!(codes.len(), 3, "sign-up, recovery and reset codes");
    assert_eq!(tokens.len(), 1);

    // The store does hold them, so a missing redaction would show.
    let raw = serde_json::to_string(
        &stored(env.store(), &id)
            .await
            .iter()
            .map(|e| e.payload.clone())
            .collect::<Vec<_>>(),
    )
    .unwrap();
    assert!(raw.contains("$argon2id$"));
    assert!(raw.contains("ciphertext"));

    let mut outputs = Vec::new();
    let history = env
        .audit
        .history(&id, 0, Some(1_000))
        .await
        .unwrap()
        .unwrap();
    assert!(history.events.len() >= 10);
    outputs.push(("history", serde_json::to_string(&history).unwrap()));
    let mut export = Vec::new();
    env.audit
        .export(
            support_audit::t0() - Duration::days(1),
            env.now() + Duration::days(1),
            &mut export,
        )
        .await
        .unwrap();
    outputs.push(("export", String::from_utf8(export).unwrap()));
    let state = env.audit.state_at(&id, env.now()).await.unwrap().unwrap();
    outputs.push(("state", serde_json::to_string(&state).unwrap()));
    let verification = env.audit.verify(&id).await.unwrap().unwrap();
    assert!(verification.ok);
    outputs.push((
        "verification",
        serde_json::to_string(&verification).unwrap(),
    ));
    let all = env.audit.verify_all().await.unwrap();
    outputs.push(("verify --all", serde_json::to_string(&all).unwrap()));
    let anchor = env.audit.create_anchor(env.now()).await.unwrap();
    outputs.push(("anchor", anchor.message().to_string()));
    assert!(
        outputs[1].1.contains(other.as_str()),
        "the export covers both accounts"
    );

    for (what, text) in &outputs {
        for forbidden in [
            "$argon2",
            "password_hash",
            "sealed_code",
            "sealed_token",
            "ciphertext",
        ] {
            assert!(
                !text.contains(forbidden),
                "{what} shows {forbidden:?}: {text}"
            );
        }
        for code in &codes {
            assert!(!occurs_as_token(text, code), "{what} shows the code {code}");
        }
        for token in &tokens {
            assert!(
                !text.contains(token.as_str()),
                "{what} shows the reset token"
            );
        }
    }
    // What is kept is still there: the keyed digests, the values the account chose.
    assert!(outputs[0].1.contains("code_digest"));
    assert!(outputs[0].1.contains("token_digest"));
    assert!(outputs[0].1.contains("grace@example.com"));
}
