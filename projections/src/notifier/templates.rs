//! The texts of every message, rendered at send time from a planned message's `params`: a
//! sealed code or token is opened only here, only for the message that carries it, and never
//! stored or logged in clear.
//!
//! No message other than a code message contains a run of exactly six digits (SPEC §2): masked
//! values that would show one are left out, subscribed messages with one are refused upstream,
//! and [`render`] checks the result. The exceptions are the random tokens of the reset link and
//! of a security notice's protection link (docs/adr/0009), which may by chance hold six digits
//! in a row (about once in 4,000 links): a notice's text is checked without its link.

use chrono::{DateTime, Utc};
use domain::account::AccountSummary;
use domain::rules::{CODE_TTL, PROTECTION_TOKEN_TTL};
use domain::{Channel, CodePurpose, Sealed};
use serde::Deserialize;
use serde_json::Value;

use super::plan::{Notice, Template};
use super::Unsealer;
use crate::bus::has_six_digit_run;

/// A message ready for a sender.
#[derive(Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
}

impl std::fmt::Debug for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The text may hold a code, a reset link or a protection link.
        f.debug_struct("Rendered")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// Why a planned message cannot be rendered: it will never render, so it is dead-lettered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("the planned message's parameters are malformed: {0}")]
    Malformed(String),
    #[error("the sealed value cannot be opened (unknown key or altered)")]
    Unsealable,
    #[error("the rendered text would contain a run of six digits")]
    LooksLikeACode,
}

/// Renders `template` for `channel` from `params`.
pub fn render(
    template: Template,
    channel: Channel,
    params: &Value,
    unsealer: &dyn Unsealer,
    public_url: &str,
) -> Result<Rendered, RenderError> {
    let rendered = match template {
        Template::Code => code(channel, params, unsealer)?,
        Template::AccountInfo => account_info(params)?,
        Template::ResetLink => reset_link(params, unsealer, public_url)?,
        Template::SecurityNotice => security_notice(params, unsealer, public_url)?,
        Template::PasswordReminder => password_reminder(params)?,
        Template::Subscribed => subscribed(channel, params)?,
    };
    // A security notice checked its text before adding its link.
    let exempt = matches!(
        template,
        Template::Code | Template::ResetLink | Template::SecurityNotice
    );
    if !exempt && (has_six_digit_run(&rendered.subject) || has_six_digit_run(&rendered.text)) {
        return Err(RenderError::LooksLikeACode);
    }
    Ok(rendered)
}

fn read<T: for<'de> Deserialize<'de>>(params: &Value) -> Result<T, RenderError> {
    serde_json::from_value(params.clone()).map_err(|e| RenderError::Malformed(e.to_string()))
}

/// A masked value fit for a non-code message (one with six digits in a row is left out).
fn shown(masked: Option<String>) -> Option<String> {
    masked.filter(|m| !has_six_digit_run(m))
}

fn code(
    channel: Channel,
    params: &Value,
    unsealer: &dyn Unsealer,
) -> Result<Rendered, RenderError> {
    #[derive(Deserialize)]
    struct Params {
        purpose: CodePurpose,
        sealed: Sealed,
    }
    let p: Params = read(params)?;
    let code = unsealer.open(&p.sealed).ok_or(RenderError::Unsealable)?;
    let what = match (p.purpose, channel) {
        (CodePurpose::Signup, _) => "completes your sign-up",
        (CodePurpose::Login, _) => "signs you in",
        (CodePurpose::StepUp, _) => "confirms that it is you",
        (CodePurpose::Contact, Channel::Sms) => "verifies this number as your contact mobile",
        (CodePurpose::Contact, Channel::Email) => "verifies this address as your contact email",
        (CodePurpose::Recovery, Channel::Sms) => "confirms this number as your recovery mobile",
        (CodePurpose::Recovery, Channel::Email) => "confirms this address as your recovery email",
        (CodePurpose::LoginEmail, _) => "binds this address as your login email",
        (CodePurpose::Reset, _) => "confirms your password reset",
    };
    let minutes = CODE_TTL.num_minutes();
    Ok(Rendered {
        subject: "Your accountd verification code".to_owned(),
        text: format!(
            "Your accountd verification code is {code}. It {what} and expires in {minutes} \
             minutes. Never share it: we will never ask you for it."
        ),
    })
}

fn account_info(params: &Value) -> Result<Rendered, RenderError> {
    #[derive(Deserialize)]
    struct Params {
        accounts: Vec<AccountSummary>,
    }
    let p: Params = read(params)?;
    let lines: Vec<String> = p
        .accounts
        .iter()
        .map(|a| match shown(a.masked_login_email.clone()) {
            Some(email) => format!("account ID {} (login email {email})", a.account_id),
            None if a.masked_login_email.is_some() => {
                format!("account ID {} (login email hidden)", a.account_id)
            }
            None => format!("account ID {} (no login email)", a.account_id),
        })
        .collect();
    Ok(Rendered {
        subject: "Your accountd account information".to_owned(),
        text: format!(
            "accountd: this mobile serves {}. If you did not ask for this, you can ignore it.",
            lines.join("; ")
        ),
    })
}

fn reset_link(
    params: &Value,
    unsealer: &dyn Unsealer,
    public_url: &str,
) -> Result<Rendered, RenderError> {
    #[derive(Deserialize)]
    struct Params {
        sealed: Sealed,
    }
    let p: Params = read(params)?;
    let token = unsealer.open(&p.sealed).ok_or(RenderError::Unsealable)?;
    let base = public_url.trim_end_matches('/');
    Ok(Rendered {
        subject: "Reset your accountd password".to_owned(),
        text: format!(
            "We received a request to reset the password of your accountd account.\n\n\
             To choose a new password, open this link within 30 minutes:\n\n\
             {base}/reset-password?token={token}\n\n\
             If you did not ask for this, ignore this email: your password stays as it is."
        ),
    })
}

/// The subject of a security notice, in English (SPEC §2).
pub fn notice_subject(notice: Notice) -> &'static str {
    match notice {
        Notice::PasswordChanged => "Your password was changed",
        Notice::PasswordSet => "A password was set for your account",
        Notice::PasswordReset => "Your password was reset",
        Notice::RecoveryMobileChanged => "Your recovery mobile was changed",
        Notice::RecoveryEmailChanged => "Your recovery email was changed",
        Notice::LoginEmailBound => "A login email was bound to your account",
        Notice::ContactMobileChanged => "Your contact mobile was changed",
        Notice::ContactEmailChanged => "Your contact email was changed",
        Notice::NewSignIn => "New sign-in to your account",
    }
}

/// The most characters of a user agent a new-sign-in notice shows (the event keeps up to 200).
const SHORT_USER_AGENT_CHARS: usize = 80;

/// The user agent as a notice names it: cut short, and left out when it would show a run of
/// six digits (the text must not look like a code message).
fn short_user_agent(agent: Option<String>) -> Option<String> {
    let agent = agent?;
    let mut short: String = agent.chars().take(SHORT_USER_AGENT_CHARS).collect();
    if short.len() < agent.len() {
        short.push('…');
    }
    shown(Some(short))
}

fn security_notice(
    params: &Value,
    unsealer: &dyn Unsealer,
    public_url: &str,
) -> Result<Rendered, RenderError> {
    #[derive(Deserialize)]
    struct Params {
        notice: String,
        account_id: String,
        masked_value: Option<String>,
        /// The change's protection token, sealed (absent on changes recorded before links).
        #[serde(default)]
        sealed_link: Option<Sealed>,
        /// The client of a new sign-in (`new_sign_in` only).
        #[serde(default)]
        ip: Option<String>,
        #[serde(default)]
        user_agent: Option<String>,
    }
    let p: Params = read(params)?;
    let notice = Notice::parse(&p.notice)
        .ok_or_else(|| RenderError::Malformed(format!("unknown notice {}", p.notice)))?;
    let subject = notice_subject(notice);
    let detail = match (notice, shown(p.masked_value)) {
        (Notice::NewSignIn, _) => {
            let from = match shown(p.ip) {
                Some(ip) => format!(" from IP address {ip}"),
                None => String::new(),
            };
            let with = match short_user_agent(p.user_agent) {
                Some(agent) => format!(" with {agent}"),
                None => String::new(),
            };
            format!(" Someone signed in{from}{with}, a client this account had not used lately.")
        }
        (_, Some(value)) => format!(" It is now {value}."),
        (_, None) => String::new(),
    };
    let mut text = format!(
        "accountd security notice for account {}: {subject}.{detail} If this was you, \
         nothing more is needed.",
        p.account_id
    );
    let advice = match &p.sealed_link {
        Some(_) if notice == Notice::NewSignIn => format!(
            " If it was not, open this link within {} days: it ends every session, that \
             sign-in's too, and locks the account until you reset your password.",
            PROTECTION_TOKEN_TTL.num_days()
        ),
        Some(_) => format!(
            " If it was not, open this link within {} days: it ends every session, undoes this \
             change where it can and locks the account until you reset your password.",
            PROTECTION_TOKEN_TTL.num_days()
        ),
        None => " If it was not, reset your password at once and review your account's \
                 contact and recovery settings."
            .to_owned(),
    };
    text.push_str(&advice);
    if has_six_digit_run(subject) || has_six_digit_run(&text) {
        return Err(RenderError::LooksLikeACode);
    }
    if let Some(sealed) = &p.sealed_link {
        let token = unsealer.open(sealed).ok_or(RenderError::Unsealable)?;
        let base = public_url.trim_end_matches('/');
        text.push_str(&format!("\n\n{base}/secure-account?token={token}"));
    }
    Ok(Rendered {
        subject: subject.to_owned(),
        text,
    })
}

fn password_reminder(params: &Value) -> Result<Rendered, RenderError> {
    #[derive(Deserialize)]
    struct Params {
        account_id: String,
        password_changed_at: DateTime<Utc>,
    }
    let p: Params = read(params)?;
    Ok(Rendered {
        subject: "Time to change your password".to_owned(),
        text: format!(
            "The password of your accountd account {} was last changed on {}. We recommend \
             choosing a new one now. Nothing is locked: this is only a reminder.",
            p.account_id,
            p.password_changed_at.format("%Y-%m-%d")
        ),
    })
}

fn subscribed(channel: Channel, params: &Value) -> Result<Rendered, RenderError> {
    #[derive(Deserialize)]
    struct Params {
        subject: String,
        body: String,
    }
    let p: Params = read(params)?;
    let text = match channel {
        Channel::Sms => format!("{}: {}", p.subject, p.body),
        Channel::Email => p.body,
    };
    Ok(Rendered {
        subject: p.subject,
        text,
    })
}
