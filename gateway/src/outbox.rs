//! `accountd outbox …`: reading the development file sink (`outbox.ndjson` in the data folder,
//! SPEC §7) from a shell, so a walk-through can wait for the message it caused instead of racing
//! the notifier with `tail`.
//!
//! - `accountd outbox count` prints how many messages the outbox holds: a mark to pass to
//!   `wait --after`, taken before the request that sends the message.
//! - `accountd outbox wait --to ADDRESS --kind code|link|text [--after N]` waits (polling, with a
//!   deadline) for the newest message to ADDRESS past the first N that holds a code, a reset link,
//!   or any text, and prints just that.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Subcommand, ValueEnum};
use projections::notifier::senders::OutboxLine;

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum OutboxCommand {
    /// Print how many messages the outbox holds (a mark for `wait --after`).
    Count,
    /// Wait for a message to an address and print its code, its reset link, or its text.
    Wait {
        /// The email address or E.164 mobile the message goes to.
        #[arg(long)]
        to: String,
        /// What to print.
        #[arg(long, value_enum, default_value_t = Kind::Code)]
        kind: Kind,
        /// Consider only messages after the first N (a mark printed by `accountd outbox count`).
        #[arg(long, default_value_t = 0)]
        after: usize,
        /// Seconds to wait before giving up (exit status 1).
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
}

/// What `wait` extracts from a message.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The 6-digit verification code.
    Code,
    /// The password-reset link.
    Link,
    /// The "this wasn't me" link of a security notice (`/secure-account?token=…`).
    Protection,
    /// The whole text.
    Text,
}

/// Errors of the outbox tools.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no {kind:?} message to {to} arrived in {path} within {seconds} s")]
    TimedOut {
        kind: Kind,
        to: String,
        path: PathBuf,
        seconds: u64,
    },
}

/// Runs a subcommand against the outbox in `data_dir`, printing its answer on stdout.
pub async fn run(command: OutboxCommand, data_dir: &Path) -> Result<(), OutboxError> {
    let path = crate::workers::outbox_path(data_dir);
    match command {
        OutboxCommand::Count => println!("{}", read(&path).await?.len()),
        OutboxCommand::Wait {
            to,
            kind,
            after,
            timeout,
        } => println!(
            "{}",
            wait(&path, &to, kind, after, Duration::from_secs(timeout)).await?
        ),
    }
    Ok(())
}

/// Polls the outbox until a message to `to` past the first `after` holds `kind`; returns the
/// newest such value.
pub async fn wait(
    path: &Path,
    to: &str,
    kind: Kind,
    after: usize,
    timeout: Duration,
) -> Result<String, OutboxError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let found = read(path)
            .await?
            .into_iter()
            .skip(after)
            .filter(|line| line.to == to)
            .filter_map(|line| extract(&line.text, kind))
            .next_back();
        if let Some(value) = found {
            return Ok(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(OutboxError::TimedOut {
                kind,
                to: to.to_owned(),
                path: path.to_owned(),
                seconds: timeout.as_secs(),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The messages written so far ([`OutboxLine::read_all`]).
async fn read(path: &Path) -> Result<Vec<OutboxLine>, OutboxError> {
    OutboxLine::read_all(path).map_err(|source| OutboxError::Read {
        path: path.to_owned(),
        source,
    })
}

/// The code (a run of exactly six digits: no other message holds one outside a link's random
/// token, SPEC §2), the reset link, the protection link, or the text of a message.
fn extract(text: &str, kind: Kind) -> Option<String> {
    let link = |path: &str| {
        text.split_whitespace()
            .find(|word| word.contains(path))
            .map(str::to_owned)
    };
    match kind {
        Kind::Text => Some(text.to_owned()),
        Kind::Link => link("/reset-password?token="),
        Kind::Protection => link("/secure-account?token="),
        Kind::Code => {
            // A link's token is random and may hold six digits in a row: never a code.
            let without_links: String = text
                .split_whitespace()
                .filter(|word| !word.contains("?token="))
                .collect::<Vec<_>>()
                .join(" ");
            let text = without_links.as_str();
            let bytes = text.as_bytes();
            let mut start = 0;
            while start < bytes.len() {
                let end = bytes[start..]
                    .iter()
                    .position(|b| !b.is_ascii_digit())
                    .map_or(bytes.len(), |n| start + n);
                if end - start == 6 {
                    return Some(text[start..end].to_owned());
                }
                start = end + 1;
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODE: &str =
        "Your accountd verification code is 042917. It confirms your password reset \
                        and expires in 5 minutes.";
    const LINK: &str = "To choose a new password, open this link within 30 minutes:\n\n\
                        http://127.0.0.1:8080/reset-password?token=abc123-_X\n\nIf you did not…";

    #[test]
    fn a_code_is_the_run_of_exactly_six_digits() {
        assert_eq!(extract(CODE, Kind::Code).as_deref(), Some("042917"));
        assert_eq!(
            extract("account ID 100000000001 (no login email)", Kind::Code),
            None
        );
        assert_eq!(extract("12345 and 1234567", Kind::Code), None);
    }

    #[test]
    fn a_link_is_the_reset_url_alone() {
        assert_eq!(
            extract(LINK, Kind::Link).as_deref(),
            Some("http://127.0.0.1:8080/reset-password?token=abc123-_X")
        );
        assert_eq!(extract(CODE, Kind::Link), None);
    }

    #[test]
    fn a_protection_link_is_never_taken_for_a_code() {
        let notice = "accountd security notice for account 100000000001: Your password was \
                      changed. If this was you, nothing more is needed.\n\n\
                      http://127.0.0.1:8080/secure-account?token=100000000001.ab123456cd";
        assert_eq!(
            extract(notice, Kind::Protection).as_deref(),
            Some("http://127.0.0.1:8080/secure-account?token=100000000001.ab123456cd")
        );
        assert_eq!(extract(notice, Kind::Code), None);
        assert_eq!(extract(notice, Kind::Link), None);
    }

    fn line(to: &str, text: &str) -> String {
        serde_json::json!({"delivery_id": "d-1", "channel": "email", "to": to, "subject": "s",
            "text": text, "sent_at": "2026-12-04T10:00:00.000Z"})
        .to_string()
            + "\n"
    }

    #[tokio::test]
    async fn wait_returns_the_newest_matching_message_past_the_mark() {
        let dir = std::env::temp_dir().join(format!("outbox_{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("outbox.ndjson");
        let older = CODE.replace("042917", "111111");
        let contents = [
            line("ada@example.com", &older),
            line("bob@example.com", CODE),
            line("ada@example.com", "Your password was changed"),
        ]
        .concat();
        std::fs::write(&path, contents).unwrap();
        let quick = Duration::from_millis(300);
        let ada = "ada@example.com";
        assert_eq!(
            wait(&path, ada, Kind::Code, 0, quick).await.unwrap(),
            "111111"
        );
        // Past the mark there is no code to ada yet: it waits for one, and times out without it;
        // with one written meanwhile, it returns that one.
        assert!(matches!(
            wait(&path, ada, Kind::Code, 1, quick).await,
            Err(OutboxError::TimedOut { .. })
        ));
        let writer = {
            let path = path.clone();
            tokio::spawn(async move {
                let mut text = std::fs::read_to_string(&path).unwrap();
                text.push_str(&line(ada, CODE));
                std::fs::write(&path, text).unwrap();
            })
        };
        let code = wait(&path, ada, Kind::Code, 1, Duration::from_secs(10)).await;
        writer.await.unwrap();
        assert_eq!(code.unwrap(), "042917");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
