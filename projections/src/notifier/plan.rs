//! What each consumed message asks the notifier to send, and to whom (SPEC §2 Notifications).
//! Pure: the notifier's own fold of an account's contact values in, planned messages out.
//!
//! - Verification codes go to the target being verified; sign-up / sign-in codes to the
//!   challenge's mobile.
//! - Security notices go to every contact value as it stands once the change took effect,
//!   verified or not, and a change also to the value it replaced. The new-sign-in notice goes
//!   to the contact email only (issue 15: an SMS for every new browser would cost and annoy).
//! - The reset link goes to the login email named in `ResetTokenIssued`.
//! - Account information goes to the mobile named in `AccountInfoSent`, once per message id
//!   (the same message may be recorded on each account it lists).
//! - The 90-day reminder goes to every contact value.
//! - Subscribed messages go to the verified contact values only.

use chrono::{DateTime, Utc};
use domain::account::{AccountSummary, PasswordChangeReason, ProtectedChange, Verifiable};
use domain::values::{Email, Mobile};
use domain::{Channel, CodePurpose, Sealed};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::bus::NotificationRequest;

/// The notifier's fold of one account: its contact values as of `last_sequence`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contacts {
    pub last_sequence: u64,
    pub mobile: Option<(String, bool)>,
    pub email: Option<(String, bool)>,
}

impl Contacts {
    /// Every contact value, verified or not.
    pub fn all(&self) -> Vec<(Channel, String)> {
        let mut to = Vec::with_capacity(2);
        if let Some((mobile, _)) = &self.mobile {
            to.push((Channel::Sms, mobile.clone()));
        }
        if let Some((email, _)) = &self.email {
            to.push((Channel::Email, email.clone()));
        }
        to
    }

    /// The verified contact values.
    pub fn verified(&self) -> Vec<(Channel, String)> {
        let mut to = Vec::with_capacity(2);
        if let Some((mobile, true)) = &self.mobile {
            to.push((Channel::Sms, mobile.clone()));
        }
        if let Some((email, true)) = &self.email {
            to.push((Channel::Email, email.clone()));
        }
        to
    }
}

/// The templates (stored by name in the delivery log: never rename).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    Code,
    AccountInfo,
    ResetLink,
    SecurityNotice,
    PasswordReminder,
    Subscribed,
}

impl Template {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Code => "code",
            Self::AccountInfo => "account_info",
            Self::ResetLink => "reset_link",
            Self::SecurityNotice => "security_notice",
            Self::PasswordReminder => "password_reminder",
            Self::Subscribed => "subscribed",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "code" => Self::Code,
            "account_info" => Self::AccountInfo,
            "reset_link" => Self::ResetLink,
            "security_notice" => Self::SecurityNotice,
            "password_reminder" => Self::PasswordReminder,
            "subscribed" => Self::Subscribed,
            _ => return None,
        })
    }
}

/// One message to one recipient, before rendering. `params` never holds a secret in clear.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub channel: Channel,
    pub recipient: String,
    pub template: Template,
    pub params: Value,
}

/// What one source message plans: its delivery-log key and its messages.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub source_id: String,
    pub messages: Vec<Planned>,
}

/// The security notices (SPEC §2), stored by name in `params.notice`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    PasswordChanged,
    PasswordSet,
    PasswordReset,
    RecoveryMobileChanged,
    RecoveryEmailChanged,
    LoginEmailBound,
    ContactMobileChanged,
    ContactEmailChanged,
    /// A sign-in from a client new to the account (docs/adr/0009).
    NewSignIn,
}

impl Notice {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PasswordChanged => "password_changed",
            Self::PasswordSet => "password_set",
            Self::PasswordReset => "password_reset",
            Self::RecoveryMobileChanged => "recovery_mobile_changed",
            Self::RecoveryEmailChanged => "recovery_email_changed",
            Self::LoginEmailBound => "login_email_bound",
            Self::ContactMobileChanged => "contact_mobile_changed",
            Self::ContactEmailChanged => "contact_email_changed",
            Self::NewSignIn => "new_sign_in",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "password_changed" => Self::PasswordChanged,
            "password_set" => Self::PasswordSet,
            "password_reset" => Self::PasswordReset,
            "recovery_mobile_changed" => Self::RecoveryMobileChanged,
            "recovery_email_changed" => Self::RecoveryEmailChanged,
            "login_email_bound" => Self::LoginEmailBound,
            "contact_mobile_changed" => Self::ContactMobileChanged,
            "contact_email_changed" => Self::ContactEmailChanged,
            "new_sign_in" => Self::NewSignIn,
            _ => return None,
        })
    }
}

/// An account event as the notifier reads it: only the fields it needs. `link` is the sealed
/// token of the change's protection link (docs/adr/0009), absent on events recorded before
/// links existed; its notices carry `{public_url}/secure-account?token=…`.
#[derive(Debug, Clone)]
pub enum NotifierEvent {
    Registered {
        contact_mobile: Option<Verifiable<Mobile>>,
        contact_email: Option<Verifiable<Email>>,
    },
    CodeIssued {
        purpose: CodePurpose,
        channel: Channel,
        target: String,
        sealed_code: Sealed,
        expires_at: DateTime<Utc>,
    },
    ContactMobileChanged {
        previous: Option<Mobile>,
        mobile: Mobile,
        link: Option<Sealed>,
    },
    ContactEmailChanged {
        previous: Option<Email>,
        email: Email,
        link: Option<Sealed>,
    },
    ContactMobileVerified {
        mobile: Mobile,
    },
    ContactEmailVerified {
        email: Email,
    },
    RecoveryMobileChanged {
        previous: Option<Mobile>,
        mobile: Mobile,
        link: Option<Sealed>,
    },
    RecoveryEmailChanged {
        previous: Option<Email>,
        email: Email,
        link: Option<Sealed>,
    },
    LoginEmailBound {
        email: Email,
        link: Option<Sealed>,
    },
    PasswordChanged {
        reason: PasswordChangeReason,
        link: Option<Sealed>,
    },
    PasswordReset {
        link: Option<Sealed>,
    },
    /// A `SignedIn` with a `new_client`: the client it came from (no secret) and its link.
    /// Sign-ins without one are [`NotifierEvent::Other`].
    NewSignIn {
        ip: Option<String>,
        user_agent: Option<String>,
        link: Sealed,
    },
    ResetTokenIssued {
        sealed_token: Sealed,
        login_email: Email,
        expires_at: DateTime<Utc>,
    },
    AccountInfoSent {
        message_id: String,
        mobile: Mobile,
        accounts: Vec<AccountSummary>,
    },
    PasswordExpiryReminderSent {
        password_changed_at: DateTime<Utc>,
    },
    /// A protection link undid a change (docs/adr/0009): a reverted contact value is back to
    /// the one before, so later notices go there and not to the value that was undone.
    ChangeReverted {
        change: ProtectedChange,
    },
    /// Any event that neither changes contact values nor sends anything.
    Other,
}

impl NotifierEvent {
    /// Reads the payload of an event of type `event_type` (password hashes already removed).
    pub fn parse(event_type: &str, payload: Value) -> Result<Self, serde_json::Error> {
        #[derive(Deserialize)]
        struct Registered {
            contact_mobile: Option<Verifiable<Mobile>>,
            contact_email: Option<Verifiable<Email>>,
        }
        #[derive(Deserialize)]
        struct CodeIssued {
            purpose: CodePurpose,
            channel: Channel,
            target: String,
            sealed_code: Sealed,
            expires_at: DateTime<Utc>,
        }
        /// The part of an event's `protection` the notifier needs: never the digest.
        #[derive(Deserialize)]
        struct Link {
            sealed_token: Sealed,
        }
        #[derive(Deserialize)]
        struct MobileChange {
            previous: Option<Mobile>,
            mobile: Mobile,
            #[serde(default)]
            protection: Option<Link>,
        }
        #[derive(Deserialize)]
        struct EmailChange {
            previous: Option<Email>,
            email: Email,
            #[serde(default)]
            protection: Option<Link>,
        }
        #[derive(Deserialize)]
        struct Bound {
            email: Email,
            #[serde(default)]
            protection: Option<Link>,
        }
        #[derive(Deserialize)]
        struct Reset {
            #[serde(default)]
            protection: Option<Link>,
        }
        #[derive(Deserialize)]
        struct MobileOnly {
            mobile: Mobile,
        }
        #[derive(Deserialize)]
        struct EmailOnly {
            email: Email,
        }
        #[derive(Deserialize)]
        struct Changed {
            reason: PasswordChangeReason,
            #[serde(default)]
            protection: Option<Link>,
        }
        #[derive(Deserialize)]
        struct NewClient {
            ip: Option<String>,
            user_agent: Option<String>,
            protection: Link,
        }
        #[derive(Deserialize)]
        struct SignedIn {
            #[serde(default)]
            new_client: Option<NewClient>,
        }
        #[derive(Deserialize)]
        struct ResetToken {
            sealed_token: Sealed,
            login_email: Email,
            expires_at: DateTime<Utc>,
        }
        #[derive(Deserialize)]
        struct Info {
            message_id: String,
            mobile: Mobile,
            accounts: Vec<AccountSummary>,
        }
        #[derive(Deserialize)]
        struct Reminder {
            password_changed_at: DateTime<Utc>,
        }
        use serde_json::from_value as read;
        let link = |p: Option<Link>| p.map(|l| l.sealed_token);
        Ok(match event_type {
            "AccountRegistered" => {
                let e: Registered = read(payload)?;
                Self::Registered {
                    contact_mobile: e.contact_mobile,
                    contact_email: e.contact_email,
                }
            }
            "VerificationCodeIssued" => {
                let e: CodeIssued = read(payload)?;
                Self::CodeIssued {
                    purpose: e.purpose,
                    channel: e.channel,
                    target: e.target,
                    sealed_code: e.sealed_code,
                    expires_at: e.expires_at,
                }
            }
            "ContactMobileChanged" => {
                let e: MobileChange = read(payload)?;
                Self::ContactMobileChanged {
                    previous: e.previous,
                    mobile: e.mobile,
                    link: link(e.protection),
                }
            }
            "ContactEmailChanged" => {
                let e: EmailChange = read(payload)?;
                Self::ContactEmailChanged {
                    previous: e.previous,
                    email: e.email,
                    link: link(e.protection),
                }
            }
            "ContactMobileVerified" => Self::ContactMobileVerified {
                mobile: read::<MobileOnly>(payload)?.mobile,
            },
            "ContactEmailVerified" => Self::ContactEmailVerified {
                email: read::<EmailOnly>(payload)?.email,
            },
            "RecoveryMobileChanged" => {
                let e: MobileChange = read(payload)?;
                Self::RecoveryMobileChanged {
                    previous: e.previous,
                    mobile: e.mobile,
                    link: link(e.protection),
                }
            }
            "RecoveryEmailChanged" => {
                let e: EmailChange = read(payload)?;
                Self::RecoveryEmailChanged {
                    previous: e.previous,
                    email: e.email,
                    link: link(e.protection),
                }
            }
            "LoginEmailBound" => {
                let e: Bound = read(payload)?;
                Self::LoginEmailBound {
                    email: e.email,
                    link: link(e.protection),
                }
            }
            "PasswordChanged" => {
                let e: Changed = read(payload)?;
                Self::PasswordChanged {
                    reason: e.reason,
                    link: link(e.protection),
                }
            }
            "PasswordReset" => Self::PasswordReset {
                link: link(read::<Reset>(payload)?.protection),
            },
            "SignedIn" => match read::<SignedIn>(payload)?.new_client {
                Some(client) => Self::NewSignIn {
                    ip: client.ip,
                    user_agent: client.user_agent,
                    link: client.protection.sealed_token,
                },
                None => Self::Other,
            },
            "ResetTokenIssued" => {
                let e: ResetToken = read(payload)?;
                Self::ResetTokenIssued {
                    sealed_token: e.sealed_token,
                    login_email: e.login_email,
                    expires_at: e.expires_at,
                }
            }
            "AccountInfoSent" => {
                let e: Info = read(payload)?;
                Self::AccountInfoSent {
                    message_id: e.message_id,
                    mobile: e.mobile,
                    accounts: e.accounts,
                }
            }
            "PasswordExpiryReminderSent" => Self::PasswordExpiryReminderSent {
                password_changed_at: read::<Reminder>(payload)?.password_changed_at,
            },
            "ChangeReverted" => {
                #[derive(Deserialize)]
                struct Reverted {
                    change: ProtectedChange,
                }
                Self::ChangeReverted {
                    change: read::<Reverted>(payload)?.change,
                }
            }
            _ => Self::Other,
        })
    }
}

/// Folds event `sequence` of `account_id` into `contacts` and plans what it sends.
pub fn plan_account_event(
    account_id: &str,
    sequence: u64,
    event: &NotifierEvent,
    contacts: &mut Contacts,
) -> Plan {
    contacts.last_sequence = sequence;
    let mut source_id = format!("{account_id}:{sequence}");
    let mut messages = Vec::new();
    let notice = |notice: Notice, masked: Option<String>, link: &Option<Sealed>| {
        let mut params =
            json!({"notice": notice.as_str(), "account_id": account_id, "masked_value": masked});
        if let Some(sealed) = link {
            params["sealed_link"] = json!(sealed);
        }
        params
    };
    let to_contacts = |contacts: &Contacts, template: Template, params: Value| {
        contacts
            .all()
            .into_iter()
            .map(|(channel, recipient)| Planned {
                channel,
                recipient,
                template,
                params: params.clone(),
            })
            .collect::<Vec<_>>()
    };
    match event {
        NotifierEvent::Registered {
            contact_mobile,
            contact_email,
        } => {
            contacts.mobile = contact_mobile
                .as_ref()
                .map(|c| (c.value.as_str().to_owned(), c.verified));
            contacts.email = contact_email
                .as_ref()
                .map(|c| (c.value.as_str().to_owned(), c.verified));
        }
        NotifierEvent::CodeIssued {
            purpose,
            channel,
            target,
            sealed_code,
            expires_at,
        } => messages.push(Planned {
            channel: *channel,
            recipient: target.clone(),
            template: Template::Code,
            params: json!({"purpose": purpose, "sealed": sealed_code, "expires_at": expires_at}),
        }),
        NotifierEvent::ContactMobileChanged {
            previous,
            mobile,
            link,
        } => {
            contacts.mobile = Some((mobile.as_str().to_owned(), false));
            let params = notice(Notice::ContactMobileChanged, Some(mobile.masked()), link);
            messages = to_contacts(contacts, Template::SecurityNotice, params.clone());
            if let Some(previous) = previous.as_ref().filter(|p| *p != mobile) {
                messages.push(Planned {
                    channel: Channel::Sms,
                    recipient: previous.as_str().to_owned(),
                    template: Template::SecurityNotice,
                    params,
                });
            }
        }
        NotifierEvent::ContactEmailChanged {
            previous,
            email,
            link,
        } => {
            contacts.email = Some((email.as_str().to_owned(), false));
            let params = notice(Notice::ContactEmailChanged, Some(email.masked()), link);
            messages = to_contacts(contacts, Template::SecurityNotice, params.clone());
            if let Some(previous) = previous.as_ref().filter(|p| *p != email) {
                messages.push(Planned {
                    channel: Channel::Email,
                    recipient: previous.as_str().to_owned(),
                    template: Template::SecurityNotice,
                    params,
                });
            }
        }
        NotifierEvent::ContactMobileVerified { mobile } => {
            if let Some((value, verified)) = &mut contacts.mobile {
                if value == mobile.as_str() {
                    *verified = true;
                }
            }
        }
        NotifierEvent::ContactEmailVerified { email } => {
            if let Some((value, verified)) = &mut contacts.email {
                if value == email.as_str() {
                    *verified = true;
                }
            }
        }
        NotifierEvent::RecoveryMobileChanged {
            previous,
            mobile,
            link,
        } => {
            let params = notice(Notice::RecoveryMobileChanged, Some(mobile.masked()), link);
            messages = to_contacts(contacts, Template::SecurityNotice, params.clone());
            if let Some(previous) = previous.as_ref().filter(|p| *p != mobile) {
                messages.push(Planned {
                    channel: Channel::Sms,
                    recipient: previous.as_str().to_owned(),
                    template: Template::SecurityNotice,
                    params,
                });
            }
        }
        NotifierEvent::RecoveryEmailChanged {
            previous,
            email,
            link,
        } => {
            let params = notice(Notice::RecoveryEmailChanged, Some(email.masked()), link);
            messages = to_contacts(contacts, Template::SecurityNotice, params.clone());
            if let Some(previous) = previous.as_ref().filter(|p| *p != email) {
                messages.push(Planned {
                    channel: Channel::Email,
                    recipient: previous.as_str().to_owned(),
                    template: Template::SecurityNotice,
                    params,
                });
            }
        }
        NotifierEvent::LoginEmailBound { email, link } => {
            let params = notice(Notice::LoginEmailBound, Some(email.masked()), link);
            messages = to_contacts(contacts, Template::SecurityNotice, params);
        }
        NotifierEvent::PasswordChanged { reason, link } => {
            let kind = match reason {
                PasswordChangeReason::Change => Notice::PasswordChanged,
                PasswordChangeReason::LoginEmailBound => Notice::PasswordSet,
            };
            messages = to_contacts(contacts, Template::SecurityNotice, notice(kind, None, link));
        }
        NotifierEvent::PasswordReset { link } => {
            messages = to_contacts(
                contacts,
                Template::SecurityNotice,
                notice(Notice::PasswordReset, None, link),
            );
        }
        NotifierEvent::NewSignIn {
            ip,
            user_agent,
            link,
        } => {
            let mut params = notice(Notice::NewSignIn, None, &Some(link.clone()));
            params["ip"] = json!(ip);
            params["user_agent"] = json!(user_agent);
            messages = to_contacts(contacts, Template::SecurityNotice, params)
                .into_iter()
                .filter(|m| m.channel == Channel::Email)
                .collect();
        }
        NotifierEvent::ResetTokenIssued {
            sealed_token,
            login_email,
            expires_at,
        } => messages.push(Planned {
            channel: Channel::Email,
            recipient: login_email.as_str().to_owned(),
            template: Template::ResetLink,
            params: json!({"sealed": sealed_token, "expires_at": expires_at}),
        }),
        NotifierEvent::AccountInfoSent {
            message_id,
            mobile,
            accounts,
        } => {
            source_id = format!("info:{message_id}");
            messages.push(Planned {
                channel: Channel::Sms,
                recipient: mobile.as_str().to_owned(),
                template: Template::AccountInfo,
                params: json!({"accounts": accounts}),
            });
        }
        NotifierEvent::PasswordExpiryReminderSent {
            password_changed_at,
        } => {
            messages = to_contacts(
                contacts,
                Template::PasswordReminder,
                json!({"account_id": account_id, "password_changed_at": password_changed_at}),
            );
        }
        NotifierEvent::ChangeReverted { change } => match change {
            ProtectedChange::ContactMobile { previous, .. } => {
                contacts.mobile = previous
                    .as_ref()
                    .map(|p| (p.value.as_str().to_owned(), p.verified));
            }
            ProtectedChange::ContactEmail { previous, .. } => {
                contacts.email = previous
                    .as_ref()
                    .map(|p| (p.value.as_str().to_owned(), p.verified));
            }
            _ => {}
        },
        NotifierEvent::Other => {}
    }
    Plan {
        source_id,
        messages,
    }
}

/// Plans a subscribed message to the verified contact values.
pub fn plan_request(source_id: String, request: &NotificationRequest, contacts: &Contacts) -> Plan {
    let params = json!({
        "kind": request.kind.as_str(),
        "subject": request.subject.trim(),
        "body": request.body.trim(),
    });
    Plan {
        source_id,
        messages: contacts
            .verified()
            .into_iter()
            .map(|(channel, recipient)| Planned {
                channel,
                recipient,
                template: Template::Subscribed,
                params: params.clone(),
            })
            .collect(),
    }
}

/// Plans a sign-up / sign-in code to the challenge's mobile.
pub fn plan_challenge(
    challenge_id: &str,
    mobile: &Mobile,
    purpose: CodePurpose,
    sealed_code: &Sealed,
    expires_at: DateTime<Utc>,
) -> Plan {
    Plan {
        source_id: format!("challenge:{challenge_id}"),
        messages: vec![Planned {
            channel: Channel::Sms,
            recipient: mobile.as_str().to_owned(),
            template: Template::Code,
            params: json!({"purpose": purpose, "sealed": sealed_code, "expires_at": expires_at}),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipients(plan: &Plan) -> Vec<String> {
        plan.messages.iter().map(|m| m.recipient.clone()).collect()
    }

    /// A stored `SignedIn` as the notifier reads it.
    fn signed_in(new_client: Option<domain::account::NewClient>) -> NotifierEvent {
        let event = domain::AccountEvent::SignedIn {
            method: domain::account::VerificationMethod::Password,
            session_id: domain::SessionId::new("s1"),
            at: Utc::now(),
            new_client,
        };
        let payload = serde_json::to_value(event).unwrap()["SignedIn"].clone();
        NotifierEvent::parse("SignedIn", payload).unwrap()
    }

    #[test]
    fn a_sign_in_from_a_new_client_is_notified_to_the_contact_email_only_with_its_link() {
        let mut contacts = Contacts {
            mobile: Some(("+8613800138000".into(), true)),
            email: Some(("ada@example.com".into(), false)),
            ..Contacts::default()
        };
        let sealed = Sealed {
            key_id: "k1".into(),
            ciphertext: "sealed-token".into(),
        };
        let event = signed_in(Some(domain::account::NewClient {
            ip: Some("198.51.100.4".parse().unwrap()),
            user_agent: Some("Firefox/133.0".into()),
            protection: domain::account::ProtectionLink {
                token_digest: domain::Digest::from_hex("d1g35t"),
                sealed_token: sealed.clone(),
                expires_at: Utc::now(),
            },
        }));
        let plan = plan_account_event("100000000001", 7, &event, &mut contacts);
        assert_eq!(plan.source_id, "100000000001:7");
        assert_eq!(
            plan.messages,
            vec![Planned {
                channel: Channel::Email,
                recipient: "ada@example.com".into(),
                template: Template::SecurityNotice,
                params: json!({
                    "notice": "new_sign_in",
                    "account_id": "100000000001",
                    "masked_value": null,
                    "ip": "198.51.100.4",
                    "user_agent": "Firefox/133.0",
                    "sealed_link": sealed,
                }),
            }]
        );
        assert!(!plan.messages[0].params.to_string().contains("d1g35t"));

        // A sign-in from a known client (or recorded before the notice existed) sends nothing.
        let plan = plan_account_event("100000000001", 8, &signed_in(None), &mut contacts);
        assert!(plan.messages.is_empty());
        // Nor does a new client of an account without a contact email.
        contacts.email = None;
        let plan = plan_account_event("100000000001", 9, &event, &mut contacts);
        assert!(plan.messages.is_empty());
    }

    #[test]
    fn after_a_reverted_contact_email_notices_go_to_the_restored_value_not_the_undone_one() {
        let mut contacts = Contacts {
            email: Some(("owner@example.com".into(), true)),
            ..Contacts::default()
        };
        let intruder = Email::parse("intruder@example.com").unwrap();
        let owner = Email::parse("owner@example.com").unwrap();
        let changed = NotifierEvent::ContactEmailChanged {
            previous: Some(owner.clone()),
            email: intruder.clone(),
            link: None,
        };
        plan_account_event("100000000001", 2, &changed, &mut contacts);
        let reverted = NotifierEvent::parse(
            "ChangeReverted",
            serde_json::to_value(domain::AccountEvent::ChangeReverted {
                change: ProtectedChange::ContactEmail {
                    previous: Some(Verifiable {
                        value: owner,
                        verified: true,
                    }),
                    email: intruder,
                },
                reverted_at: Utc::now(),
            })
            .unwrap()["ChangeReverted"]
                .clone(),
        )
        .unwrap();
        plan_account_event("100000000001", 3, &reverted, &mut contacts);
        assert_eq!(contacts.email, Some(("owner@example.com".into(), true)));
        let later = NotifierEvent::PasswordReset { link: None };
        let plan = plan_account_event("100000000001", 4, &later, &mut contacts);
        assert_eq!(recipients(&plan), ["owner@example.com"]);
    }
}
