//! Each event kind produces the right message, to the right address, with no secret but the
//! code or link meant for that recipient: the real write side on PostgreSQL, the relay to the
//! real NATS JetStream, the notifier to an in-process SMTP server and SMS gateway.

mod support_bus;

use chrono::Duration as Days;
use domain::account::AccountSummary;
use domain::{AccountCommand, Channel};
use projections::bus::{NotificationKind, NotificationRequest};
use support_bus::*;
use testkit::TestDatabase;

/// The messages that arrived since the last call, once `n` of them did.
struct Steps {
    inbox: Inbox,
    seen: usize,
}

impl Steps {
    async fn next(&mut self, n: usize) -> Vec<Received> {
        self.inbox.wait_for(self.seen + n).await;
        let all = self.inbox.all();
        assert_eq!(
            all.len(),
            self.seen + n,
            "exactly {n} new messages: {:#?}",
            &all[self.seen..]
        );
        let new = all[self.seen..].to_vec();
        self.seen += n;
        new
    }
}

fn one<'a>(messages: &'a [Received], channel: Channel, to: &str) -> &'a Received {
    let found: Vec<_> = messages
        .iter()
        .filter(|m| m.channel == channel && m.to == to)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one {channel:?} message to {to} in {messages:#?}"
    );
    found[0]
}

fn subject(m: &Received) -> &str {
    m.subject.as_deref().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_event_kind_sends_the_right_message_to_the_right_address() {
    let world = World::with_nats(TestDatabase::postgres().await).await;
    let inbox = Inbox::default();
    let smtp = SmtpSink::start(inbox.clone()).await;
    let sms = SmsSink::start(inbox.clone()).await;
    let running = world.start(network_senders(&smtp, &sms), fast_settings());
    let mut steps = Steps {
        inbox: inbox.clone(),
        seen: 0,
    };
    let (m1, m2, m3, m4) = (mobile(1), mobile(2), mobile(3), mobile(4));

    // Sign-up by email: the code goes to the login email, and only there.
    let (a, code) = world.sign_up_by_email("alice@example.com").await;
    let got = steps.next(1).await;
    let m = one(&got, Channel::Email, "alice@example.com");
    assert!(m.is_code() && m.text.contains(code.as_str()), "{m:?}");
    assert_eq!(six_digit_runs(&m.text), vec![code.as_str().to_owned()]);
    world.verify_contact_email(&a, code).await;

    // Contact mobile set: a notice to every contact value, the code to the new mobile.
    let code = world.change_contact_mobile(&a, &m1).await;
    let got = steps.next(3).await;
    let notices: Vec<_> = got.iter().filter(|m| !m.is_code()).collect();
    assert_eq!(notices.len(), 2);
    assert!(notices
        .iter()
        .any(|m| m.channel == Channel::Sms && m.to == m1.as_str()));
    let email_notice = one(&got, Channel::Email, "alice@example.com");
    assert_eq!(subject(email_notice), "Your contact mobile was changed");
    assert!(email_notice.text.contains(&m1.masked()), "{email_notice:?}");
    let code_sms = got.iter().find(|m| m.is_code()).unwrap();
    assert_eq!(
        (code_sms.channel, code_sms.to.as_str()),
        (Channel::Sms, m1.as_str())
    );
    assert!(code_sms.text.contains(code.as_str()));
    world.verify_contact_mobile(&a, code).await;

    // Recovery mobile: the code to the new value at the request, notices at the confirmation.
    let code = world.change_recovery_mobile(&a, &m2).await;
    let got = steps.next(3).await;
    let code_sms = one(&got, Channel::Sms, m2.as_str());
    assert!(code_sms.is_code() && code_sms.text.contains(code.as_str()));
    for m in [
        one(&got, Channel::Sms, m1.as_str()),
        one(&got, Channel::Email, "alice@example.com"),
    ] {
        assert!(m.text.contains("Your recovery mobile was changed"), "{m:?}");
        assert!(
            !m.text.contains(m2.as_str()),
            "the new value is masked: {m:?}"
        );
    }

    // Password change: a notice to the contact values.
    world.change_password(&a, 2).await;
    let got = steps.next(2).await;
    assert_eq!(
        subject(one(&got, Channel::Email, "alice@example.com")),
        "Your password was changed"
    );
    assert!(one(&got, Channel::Sms, m1.as_str())
        .text
        .contains("Your password was changed"));

    // Reset on an account whose only contact value is unverified: the link, then the notice.
    let (b, _) = world.sign_up_by_email("bob@example.com").await;
    steps.next(1).await;
    let token = world.issue_reset_token(&b).await;
    let got = steps.next(1).await;
    let link = one(&got, Channel::Email, "bob@example.com");
    assert_eq!(subject(link), "Reset your accountd password");
    let expected = format!("https://console.example.test/reset-password?token={token}");
    assert!(
        link.text.contains(&expected),
        "{link:?} should hold {expected}"
    );
    world.reset_password(&b, &token, 3).await;
    let got = steps.next(1).await;
    let notice = one(&got, Channel::Email, "bob@example.com");
    assert_eq!(subject(notice), "Your password was reset");
    assert!(!notice.text.contains(&token));

    // Account information after a recovery: to that mobile, IDs in full, login email masked;
    // recorded on both accounts under one message id, sent once.
    let accounts = vec![
        world.account(&a).await.summary().unwrap(),
        world.account(&b).await.summary().unwrap(),
    ];
    world
        .record_account_info(&a, "info-1", &m2, accounts.clone())
        .await;
    world
        .record_account_info(&b, "info-1", &m2, accounts.clone())
        .await;
    let got = steps.next(1).await;
    let info = one(&got, Channel::Sms, m2.as_str());
    for AccountSummary {
        account_id,
        masked_login_email,
    } in &accounts
    {
        assert!(info.text.contains(account_id.as_str()), "{info:?}");
        assert!(
            info.text.contains(masked_login_email.as_deref().unwrap()),
            "{info:?}"
        );
    }
    assert!(!info.text.contains("alice@example.com"));

    // Contact email changed: the new value, the other contact value and the previous value.
    let session = world.step_up(&a).await;
    let committed = world
        .execute(
            &a,
            AccountCommand::ChangeContactEmail {
                session_id: session,
                email: email("carol@example.com"),
                code_id: "contact-email-a".into(),
            },
        )
        .await;
    let code = world.code_of(&committed);
    let got = steps.next(4).await;
    assert_eq!(
        subject(one(&got, Channel::Email, "alice@example.com")),
        "Your contact email was changed"
    );
    assert!(one(&got, Channel::Sms, m1.as_str())
        .text
        .contains("Your contact email was changed"));
    let to_carol: Vec<_> = got.iter().filter(|m| m.to == "carol@example.com").collect();
    assert_eq!(to_carol.len(), 2, "a notice and the code: {got:#?}");
    assert!(to_carol
        .iter()
        .any(|m| m.is_code() && m.text.contains(code.as_str())));

    // Login email bound to an account made with a mobile (step-up by SMS to its recovery
    // mobile): the code to the email, then notices (bound, password set) to the contact mobile.
    let c = world.sign_up_by_mobile(&m3).await;
    let code = world.bind_login_email(&c, "dave@example.com").await;
    let got = steps.next(4).await;
    assert!(one(&got, Channel::Email, "dave@example.com")
        .text
        .contains(code.as_str()));
    let to_m3: Vec<_> = got.iter().filter(|m| m.to == m3.as_str()).collect();
    assert_eq!(to_m3.len(), 3, "{got:#?}");
    assert_eq!(
        to_m3.iter().filter(|m| m.is_code()).count(),
        1,
        "the step-up code"
    );
    assert!(to_m3
        .iter()
        .any(|m| m.text.contains("A login email was bound to your account")));
    assert!(to_m3
        .iter()
        .any(|m| m.text.contains("A password was set for your account")));

    // The 90-day reminder, to every contact value as they stand.
    world.clock.advance(Days::days(91));
    world
        .execute(&a, AccountCommand::SendPasswordExpiryReminder)
        .await;
    let got = steps.next(2).await;
    assert_eq!(
        subject(one(&got, Channel::Email, "carol@example.com")),
        "Time to change your password"
    );
    assert!(one(&got, Channel::Sms, m1.as_str())
        .text
        .contains("last changed on"));

    // A subscribed message: to the verified contact values only (carol@ is not verified).
    let request = NotificationRequest {
        kind: NotificationKind::Arrears,
        subject: "Your account is in arrears".into(),
        body: "Please settle the open balance of your account.".into(),
    };
    world
        .bus
        .publish_notification_request(a.as_str(), &request)
        .await
        .unwrap();
    let got = steps.next(1).await;
    let m = one(&got, Channel::Sms, m1.as_str());
    assert_eq!(
        m.text,
        "Your account is in arrears: Please settle the open balance of your account."
    );
    // For an account without a verified contact value, nothing goes: a visible dead letter.
    world
        .bus
        .publish_notification_request(b.as_str(), &request)
        .await
        .unwrap();
    eventually(
        "the request without a recipient as a dead letter",
        || async {
            world
                .notify_store()
                .dead_letters()
                .await
                .unwrap()
                .iter()
                .any(|d| {
                    d.template == "subscribed"
                        && d.last_error.as_deref() == Some("no verified contact value")
                })
        },
    )
    .await;

    // A sign-in challenge: its code to its mobile, through the challenge stream.
    let code = world.issue_challenge("challenge-1", &m4).await;
    let got = steps.next(1).await;
    let m = one(&got, Channel::Sms, m4.as_str());
    assert!(m.is_code() && m.text.contains(&code));

    inbox.settle_at(steps.seen).await;
    assert_no_leaks(&inbox.all());
    // Every message carried its own delivery id (SMS `Idempotency-Key`, email `Message-ID`).
    let ids: std::collections::BTreeSet<_> = inbox
        .all()
        .iter()
        .map(|m| m.delivery_id.clone().expect("a delivery id"))
        .collect();
    assert_eq!(ids.len(), steps.seen);
    running.stop().await;
    world.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_gateway_is_retried_with_backoff_and_gives_up_into_a_dead_letter() {
    let world = World::with_nats(TestDatabase::postgres().await).await;
    let inbox = Inbox::default();
    let smtp = SmtpSink::start(inbox.clone()).await;
    let sms = SmsSink::start(inbox.clone()).await;
    let running = world.start(network_senders(&smtp, &sms), fast_settings());

    // Two failures, then success: sent once.
    sms.fail_next(2);
    let id = world.sign_up_by_mobile(&mobile(10)).await;
    world.issue_challenge("challenge-retry", &mobile(11)).await;
    inbox.settle_at(1).await;
    assert_eq!(inbox.all()[0].to, mobile(11).as_str());

    // Always failing: dead after `max_attempts`, nothing sent.
    sms.fail_next(usize::MAX);
    world.change_password_free_notice(&id).await;
    eventually("a dead letter", || async {
        !world
            .notify_store()
            .dead_letters()
            .await
            .unwrap()
            .is_empty()
    })
    .await;
    let dead = world.notify_store().dead_letters().await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].attempts, 3);
    assert_eq!(dead[0].channel, "sms");
    assert!(
        dead[0].last_error.as_deref().unwrap().contains("503"),
        "{dead:?}"
    );
    sms.fail_next(0);
    inbox.settle_at(1).await;
    running.stop().await;
    world.clean_up().await;
}

impl World {
    /// A command on an account made with a mobile that sends exactly one SMS: a step-up code to
    /// its recovery mobile.
    async fn change_password_free_notice(&self, id: &domain::values::AccountId) {
        self.execute(
            id,
            AccountCommand::StartIdentityVerification {
                verification_id: "v-dead".into(),
                method: domain::account::VerificationMethod::Sms,
                session_id: domain::SessionId::new("s-dead"),
            },
        )
        .await;
    }
}

/// Everything the process logs, at every level, from the moment it is installed (the whole
/// test binary: a global subscriber, since the notifier's tasks run on other threads).
#[derive(Clone, Default)]
struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn install() -> Self {
        let logs = Logs::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .try_init()
            .expect("the only subscriber of this test binary");
        logs
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// The protection token of a notice's `…/secure-account?token=…` link.
fn protection_token(m: &Received) -> String {
    let prefix = format!("{}/secure-account?token=", PUBLIC_URL.trim_end_matches('/'));
    let start = m
        .text
        .find(&prefix)
        .unwrap_or_else(|| panic!("a protection link in {m:?}"))
        + prefix.len();
    m.text[start..]
        .split_whitespace()
        .next()
        .expect("a token")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_security_notice_carries_the_protection_link_of_its_own_change_and_only_there() {
    use domain::Secrets;
    use projections::bus::StreamKind;

    let logs = Logs::install();
    let world = World::with_nats(TestDatabase::postgres().await).await;
    let inbox = Inbox::default();
    let smtp = SmtpSink::start(inbox.clone()).await;
    let sms = SmsSink::start(inbox.clone()).await;
    let running = world.start(network_senders(&smtp, &sms), fast_settings());
    let mut steps = Steps {
        inbox: inbox.clone(),
        seen: 0,
    };
    let (m1, m2, m3) = (mobile(21), mobile(22), mobile(23));
    // (notices, the change kind their link must answer, the account)
    let mut changes: Vec<(Vec<Received>, &str, domain::values::AccountId)> = Vec::new();
    let notices = |got: Vec<Received>| got.into_iter().filter(|m| !m.is_code()).collect();

    let (a, code) = world.sign_up_by_email("erin@example.com").await;
    steps.next(1).await;
    world.verify_contact_email(&a, code).await;

    let code = world.change_contact_mobile(&a, &m1).await;
    changes.push((notices(steps.next(3).await), "contact_mobile", a.clone()));
    world.verify_contact_mobile(&a, code).await;

    world.change_recovery_mobile(&a, &m2).await;
    changes.push((notices(steps.next(3).await), "recovery_mobile", a.clone()));

    world.change_password(&a, 2).await;
    changes.push((notices(steps.next(2).await), "password", a.clone()));

    let session = world.step_up(&a).await;
    world
        .execute(
            &a,
            AccountCommand::ChangeContactEmail {
                session_id: session,
                email: email("frank@example.com"),
                code_id: "contact-email-erin".into(),
            },
        )
        .await;
    changes.push((notices(steps.next(4).await), "contact_email", a.clone()));

    let (b, _) = world.sign_up_by_email("gina@example.com").await;
    steps.next(1).await;
    let reset = world.issue_reset_token(&b).await;
    steps.next(1).await;
    world.reset_password(&b, &reset, 3).await;
    changes.push((notices(steps.next(1).await), "password_reset", b.clone()));

    let c = world.sign_up_by_mobile(&m3).await;
    world.bind_login_email(&c, "hank@example.com").await;
    let got = notices(steps.next(4).await);
    let (bound, set): (Vec<_>, Vec<_>) = got
        .into_iter()
        .partition(|m| m.text.contains("A login email was bound"));
    changes.push((bound, "login_email", c.clone()));
    changes.push((set, "password", c.clone()));

    // A sign-in from a client new to the account: one notice, to the contact email only (not
    // the contact mobile), naming the client.
    world
        .execute(
            &a,
            AccountCommand::SignInWithSms {
                session_id: domain::SessionId::new("new-client-erin"),
                new_client: Some(domain::account::SignInClient::new(
                    Some("198.51.100.4".parse().unwrap()),
                    Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0"),
                )),
            },
        )
        .await;
    let got = notices(steps.next(1).await);
    let m = one(&got, Channel::Email, "frank@example.com");
    assert_eq!(subject(m), "New sign-in to your account");
    assert!(
        m.text.contains("198.51.100.4") && m.text.contains("Firefox/133.0"),
        "{m:?}"
    );
    changes.push((got, "sign_in", a.clone()));

    let mut tokens = std::collections::BTreeSet::new();
    for (notices, kind, account) in &changes {
        assert!(!notices.is_empty(), "notices of a {kind} change");
        let token = protection_token(&notices[0]);
        for m in notices {
            assert_eq!(
                protection_token(m),
                token,
                "every notice of one change carries the same link: {m:?}"
            );
        }
        let digest = world.keyring.token_digest(&token);
        let state = world.account(account).await;
        let protection = state
            .protections
            .iter()
            .find(|p| p.token_digest == digest)
            .unwrap_or_else(|| panic!("the link of a {kind} notice is live on {account}"));
        assert_eq!(protection.change.kind(), *kind, "{notices:#?}");
        assert!(
            token.starts_with(&format!("{}.", account.as_str())),
            "the token names its account"
        );
        assert!(tokens.insert(token), "a link of its own for each change");
    }

    // Nothing but the notices holds a token in clear: not the bus, not the delivery log's
    // parameters, not the logs.
    inbox.settle_at(steps.seen).await;
    assert_no_leaks(&inbox.all());
    let codes: Vec<_> = inbox.all().into_iter().filter(|m| m.is_code()).collect();
    world.relay_all(&world.relay()).await;
    let expected = world.count_events("Account").await;
    let published = read_stream(&world.bus, StreamKind::AccountEvents, expected).await;
    running.stop().await;
    let logged = logs.text();
    assert!(
        logged.contains("notification planner active"),
        "the capture holds the notifier's logs"
    );
    for token in &tokens {
        for m in &published {
            assert!(
                !String::from_utf8_lossy(&m.payload).contains(token.as_str()),
                "a protection token on the bus: {}",
                m.subject
            );
        }
        for m in &codes {
            assert!(
                !m.text.contains(token.as_str()),
                "a token in a code message"
            );
        }
        assert!(
            !logged.contains(token.as_str()),
            "a protection token in the logs"
        );
        let random = token.split_once('.').unwrap().1;
        assert!(
            !logged.contains(random),
            "a protection token's secret part in the logs"
        );
    }
    world.clean_up().await;
}
