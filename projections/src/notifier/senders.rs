//! Where messages leave: SMTP (lettre) for email, an HTTP gateway (`POST {"to","text"}`, reqwest)
//! for SMS, and the development file sink (`outbox.ndjson`, one JSON object per line with
//! `channel`, `to`, `subject`, `text`, `sent_at`) for either when it is not configured.
//!
//! A failure is transient (try again later: the server is down, busy, or answered 4xx/5xx
//! temporarily) or permanent (it will never go: a malformed address, a 5xx SMTP rejection of the
//! recipient, a 4xx from the gateway other than 408/429). Error texts never hold the message,
//! the URL's credentials or a secret.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use domain::Channel;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

/// One message to one recipient.
#[derive(Clone)]
pub struct Outbound {
    /// The delivery id: the same on every attempt of one message (`Idempotency-Key` of an SMS,
    /// `Message-ID` of an email, `delivery_id` of a file-sink line).
    pub delivery_id: String,
    pub channel: Channel,
    pub to: String,
    pub subject: String,
    pub text: String,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("delivery_id", &self.delivery_id)
            .field("channel", &self.channel)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("transient: {0}")]
    Transient(String),
    #[error("permanent: {0}")]
    Permanent(String),
}

/// A sender that cannot be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum SenderConfigError {
    #[error("ACCOUNTD_SMTP_URL is not a valid smtp:// or smtps:// URL")]
    SmtpUrl,
    #[error("ACCOUNTD_SMTP_FROM is not a valid address")]
    SmtpFrom,
    #[error("the SMS gateway client cannot be built: {0}")]
    Sms(String),
}

/// The email and SMS senders.
#[derive(Clone)]
pub struct Senders {
    pub email: EmailSender,
    pub sms: SmsSender,
}

impl Senders {
    /// Everything to the file sink `outbox.ndjson` in `data_dir`.
    pub fn file(data_dir: &Path) -> Self {
        let sink = FileSink::new(data_dir.join("outbox.ndjson"));
        Self {
            email: EmailSender::File(sink.clone()),
            sms: SmsSender::File(sink),
        }
    }

    /// As SPEC §7 configures them: SMTP when `smtp_url` is set, the SMS gateway when `sms_url`
    /// is set, the file sink in `data_dir` for whichever is not.
    pub fn configured(
        smtp_url: Option<&str>,
        smtp_from: &str,
        sms_url: Option<&str>,
        data_dir: &Path,
    ) -> Result<Self, SenderConfigError> {
        let sink = FileSink::new(data_dir.join("outbox.ndjson"));
        let email = match smtp_url {
            Some(url) => EmailSender::Smtp(SmtpSender::new(url, smtp_from)?),
            None => EmailSender::File(sink.clone()),
        };
        let sms = match sms_url {
            Some(url) => SmsSender::Http(SmsGateway::new(url)?),
            None => SmsSender::File(sink),
        };
        Ok(Self { email, sms })
    }

    pub async fn send(&self, message: &Outbound) -> Result<(), SendError> {
        match message.channel {
            Channel::Email => self.email.send(message).await,
            Channel::Sms => self.sms.send(message).await,
        }
    }
}

#[derive(Clone)]
pub enum EmailSender {
    Smtp(SmtpSender),
    File(FileSink),
}

impl EmailSender {
    async fn send(&self, message: &Outbound) -> Result<(), SendError> {
        match self {
            Self::Smtp(smtp) => smtp.send(message).await,
            Self::File(sink) => sink.write(message).await,
        }
    }
}

#[derive(Clone)]
pub enum SmsSender {
    Http(SmsGateway),
    File(FileSink),
}

impl SmsSender {
    async fn send(&self, message: &Outbound) -> Result<(), SendError> {
        match self {
            Self::Http(gateway) => gateway.send(message).await,
            Self::File(sink) => sink.write(message).await,
        }
    }
}

/// SMTP with lettre: `smtp://host:port` (plain) or `smtps://user:pass@host:port` (TLS).
#[derive(Clone)]
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpSender {
    pub fn new(url: &str, from: &str) -> Result<Self, SenderConfigError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|_| SenderConfigError::SmtpUrl)?
            .timeout(Some(Duration::from_secs(15)))
            .build();
        let from = from.parse().map_err(|_| SenderConfigError::SmtpFrom)?;
        Ok(Self { transport, from })
    }

    async fn send(&self, message: &Outbound) -> Result<(), SendError> {
        let to: Mailbox = message
            .to
            .parse()
            .map_err(|_| SendError::Permanent("the recipient is not a valid address".into()))?;
        let email = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(message.subject.clone())
            .message_id(Some(format!("<{}@accountd>", message.delivery_id)))
            .header(ContentType::TEXT_PLAIN)
            .body(message.text.clone())
            .map_err(|e| SendError::Permanent(format!("cannot build the email: {e}")))?;
        match self.transport.send(email).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(SendError::Permanent(smtp_error(&e))),
            Err(e) => Err(SendError::Transient(smtp_error(&e))),
        }
    }
}

/// An SMTP error without anything it may echo from the message.
fn smtp_error(e: &lettre::transport::smtp::Error) -> String {
    match e.status() {
        Some(code) => format!("SMTP server answered {code}"),
        None if e.is_timeout() => "SMTP timed out".to_owned(),
        None => "SMTP connection failed".to_owned(),
    }
}

/// The SMS gateway: `POST {"to": "+86…", "text": "…"}` as JSON.
#[derive(Clone)]
pub struct SmsGateway {
    client: reqwest::Client,
    url: reqwest::Url,
}

impl SmsGateway {
    pub fn new(url: &str) -> Result<Self, SenderConfigError> {
        let url = reqwest::Url::parse(url)
            .map_err(|_| SenderConfigError::Sms("ACCOUNTD_SMS_URL is not a URL".into()))?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| SenderConfigError::Sms(e.without_url().to_string()))?;
        Ok(Self { client, url })
    }

    async fn send(&self, message: &Outbound) -> Result<(), SendError> {
        let response = self
            .client
            .post(self.url.clone())
            .header("Idempotency-Key", &message.delivery_id)
            .json(&json!({"to": message.to, "text": message.text}))
            .send()
            .await
            // The URL may carry a token: never in the error.
            .map_err(|e| SendError::Transient(format!("SMS gateway: {}", e.without_url())))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else if status.is_server_error()
            || status == reqwest::StatusCode::TOO_MANY_REQUESTS
            || status == reqwest::StatusCode::REQUEST_TIMEOUT
        {
            Err(SendError::Transient(format!(
                "SMS gateway answered {status}"
            )))
        } else {
            Err(SendError::Permanent(format!(
                "SMS gateway answered {status}"
            )))
        }
    }
}

/// The development sink: one JSON line per message in `outbox.ndjson`.
#[derive(Clone)]
pub struct FileSink {
    path: Arc<PathBuf>,
    /// Lines are appended one at a time, so that concurrent sends never interleave.
    lock: Arc<Mutex<()>>,
}

impl FileSink {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path: Arc::new(path),
            lock: Arc::new(Mutex::new(())),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn write(&self, message: &Outbound) -> Result<(), SendError> {
        let subject = match message.channel {
            Channel::Email => json!(message.subject),
            Channel::Sms => serde_json::Value::Null,
        };
        let mut line = json!({
            "delivery_id": message.delivery_id,
            "channel": message.channel.as_str(),
            "to": message.to,
            "subject": subject,
            "text": message.text,
            "sent_at": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        })
        .to_string();
        line.push('\n');
        let _turn = self.lock.lock().await;
        if let Some(parent) = self.path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| SendError::Transient(format!("outbox folder: {}", e.kind())))?;
        }
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            // The outbox holds codes and links: its owner's alone.
            .mode(0o600)
            .open(self.path.as_ref())
            .await
            .map_err(|e| SendError::Transient(format!("outbox file: {}", e.kind())))?;
        file.write_all(line.as_bytes())
            .await
            .map_err(|e| SendError::Transient(format!("outbox file: {}", e.kind())))?;
        file.flush()
            .await
            .map_err(|e| SendError::Transient(format!("outbox file: {}", e.kind())))?;
        Ok(())
    }
}
