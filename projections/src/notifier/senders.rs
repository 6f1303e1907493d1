//! Where messages leave: SMTP (lettre) for email, an HTTP gateway (`POST {"to","text"}`, reqwest)
//! for SMS, and the development file sink (`outbox.ndjson`, one JSON object per line with
//! `channel`, `to`, `subject`, `text`, `sent_at`) for either when it is not configured.
//!
//! A failure is transient (try again later: the server is down, busy, or answered 4xx/5xx
//! temporarily) or permanent (it will never go: a malformed address, a 5xx SMTP rejection of the
//! recipient, a 4xx from the gateway other than 408/429). Error texts never hold the message,
//! the URL's credentials or a secret.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use domain::Channel;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use serde_json::json;

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

/// One line of the file sink (`outbox.ndjson`): what [`FileSink`] writes and what its readers
/// (`accountd outbox`, the benchmarks, the tests) read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxLine {
    pub delivery_id: String,
    /// `email` or `sms`.
    pub channel: String,
    pub to: String,
    /// The subject of an email; none for an SMS.
    pub subject: Option<String>,
    pub text: String,
    /// When it was written, to the millisecond.
    pub sent_at: DateTime<Utc>,
}

impl OutboxLine {
    /// The messages in the outbox file at `path`, oldest first (none while it does not exist).
    /// A line that is not a whole message is skipped: one being written as it is read is left
    /// for the next read, and one cut by a crash is not a message anyone received.
    pub fn read_all(path: &Path) -> std::io::Result<Vec<Self>> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(text
                .lines()
                .filter_map(|line| serde_json::from_str(line).ok())
                .collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
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
///
/// The file stays open between messages (opening it per message capped the notifier at a few
/// hundred messages a second, issue 16). It is opened again when the path no longer names it: a
/// developer or a test that removes or rotates the outbox gets a new file, not lines written to
/// an unlinked one.
#[derive(Clone)]
pub struct FileSink {
    path: Arc<PathBuf>,
    /// The open file, shared by every clone; one line is written at a time under the lock, so
    /// concurrent sends never interleave.
    file: Arc<Mutex<Option<OpenOutbox>>>,
}

/// The outbox as opened, with the identity of its inode.
struct OpenOutbox {
    file: std::fs::File,
    dev: u64,
    ino: u64,
}

impl FileSink {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path: Arc::new(path),
            file: Arc::default(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn write(&self, message: &Outbound) -> Result<(), SendError> {
        let line = OutboxLine {
            delivery_id: message.delivery_id.clone(),
            channel: message.channel.as_str().to_owned(),
            to: message.to.clone(),
            subject: (message.channel == Channel::Email).then(|| message.subject.clone()),
            text: message.text.clone(),
            sent_at: Utc::now().trunc_subsecs(3),
        };
        let mut line = serde_json::to_string(&line)
            .map_err(|e| SendError::Permanent(format!("outbox line: {e}")))?;
        line.push('\n');
        // One append of a few hundred bytes to the page cache (no fsync, as any mail spool
        // hand-off would not either): microseconds, cheaper than a trip to a blocking thread.
        self.append(line.as_bytes())
            .map_err(|e| SendError::Transient(format!("outbox file: {}", e.kind())))
    }

    fn append(&self, line: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::MetadataExt;
        let mut open = self
            .file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let current = std::fs::metadata(self.path.as_ref()).ok();
        let still_ours = matches!((&*open, &current),
            (Some(o), Some(m)) if o.dev == m.dev() && o.ino == m.ino());
        if !still_ours {
            *open = Some(self.open()?);
        }
        let outbox = open.as_mut().expect("opened above");
        outbox.file.write_all(line)
    }

    fn open(&self) -> std::io::Result<OpenOutbox> {
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            // The outbox holds codes and links: its owner's alone.
            .mode(0o600)
            .open(self.path.as_ref())?;
        let meta = file.metadata()?;
        Ok(OpenOutbox {
            dev: meta.dev(),
            ino: meta.ino(),
            file,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(to: &str) -> Outbound {
        Outbound {
            delivery_id: format!("d-{to}"),
            channel: Channel::Email,
            to: to.to_owned(),
            subject: "s".to_owned(),
            text: "t".to_owned(),
        }
    }

    /// A fresh folder under the system's temporary one.
    fn scratch_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("accountd_sink_{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn recipients(path: &Path) -> Vec<String> {
        let lines = OutboxLine::read_all(path).unwrap();
        lines.into_iter().map(|line| line.to).collect()
    }

    #[tokio::test]
    async fn read_all_gives_what_the_sink_wrote_and_skips_a_cut_line() {
        let dir = scratch_dir();
        let path = dir.join("outbox.ndjson");
        assert_eq!(OutboxLine::read_all(&path).unwrap(), []);
        let sink = FileSink::new(path.clone());
        let mut sms = message("+41791234567");
        sms.channel = Channel::Sms;
        sink.write(&message("a@example.com")).await.unwrap();
        // A notifier killed in the middle of a line, then the next one's message after it.
        sink.append(br#"{"delivery_id":"d-cut","channel":"email","to":"#)
            .unwrap();
        sink.append(b"\n").unwrap();
        sink.write(&sms).await.unwrap();
        let lines = OutboxLine::read_all(&path).unwrap();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0].delivery_id, "d-a@example.com");
        assert_eq!(lines[0].subject.as_deref(), Some("s"));
        assert_eq!(lines[1].to, "+41791234567");
        assert_eq!(lines[1].channel, "sms");
        assert_eq!(lines[1].subject, None, "an SMS has no subject");
        assert!(Utc::now() - lines[1].sent_at < chrono::Duration::seconds(60));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn the_file_sink_writes_again_to_an_outbox_removed_or_rotated_under_it() {
        let dir = scratch_dir();
        let path = dir.join("nested").join("outbox.ndjson");
        let sink = FileSink::new(path.clone());
        sink.write(&message("a@example.com")).await.unwrap();
        std::fs::remove_file(&path).unwrap();
        sink.write(&message("b@example.com")).await.unwrap();
        assert_eq!(recipients(&path), ["b@example.com"]);
        std::fs::rename(&path, dir.join("rotated")).unwrap();
        sink.clone().write(&message("c@example.com")).await.unwrap();
        assert_eq!(recipients(&path), ["c@example.com"]);
        assert_eq!(recipients(&dir.join("rotated")), ["b@example.com"]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn concurrent_sends_never_interleave_their_lines() {
        let dir = scratch_dir();
        let path = dir.join("outbox.ndjson");
        let sink = FileSink::new(path.clone());
        let sends = (0..200).map(|i| {
            let sink = sink.clone();
            tokio::spawn(async move { sink.write(&message(&format!("{i}@example.com"))).await })
        });
        for send in futures::future::join_all(sends).await {
            send.unwrap().unwrap();
        }
        assert_eq!(recipients(&path).len(), 200);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
