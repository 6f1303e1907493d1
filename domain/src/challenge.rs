//! The sign-up and sign-in SMS challenge: one code to a mobile, for one purpose, keyed by its
//! own id (the `code_id` the caller gets back). Passing it proves the mobile.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::codes::{binding, CodeCheck, CodePurpose, PendingCode};
use crate::error::DomainError;
use crate::rules::CODE_TTL;
use crate::services::{Digest, DomainServices, Sealed};
use crate::values::{Mobile, VerificationCode};
use crate::Channel;

/// The aggregate type stored in every row: never rename it.
pub const CHALLENGE_AGGREGATE_TYPE: &str = "Challenge";

#[derive(Debug, Clone)]
pub enum ChallengeCommand {
    Issue {
        challenge_id: String,
        mobile: Mobile,
        purpose: CodePurpose,
    },
    Pass {
        mobile: Mobile,
        purpose: CodePurpose,
        code: VerificationCode,
        /// When the newest code for this mobile and purpose was asked for, if known. A request
        /// made after this challenge was issued replaced it (SPEC §2: `code_expired`).
        newest_request_at: Option<DateTime<Utc>>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ChallengeEvent {
    ChallengeIssued {
        challenge_id: String,
        mobile: Mobile,
        purpose: CodePurpose,
        code_digest: Digest,
        sealed_code: Sealed,
        expires_at: DateTime<Utc>,
    },
    ChallengeFailed {
        failures: u8,
        at: DateTime<Utc>,
    },
    ChallengePassed {
        mobile: Mobile,
        purpose: CodePurpose,
    },
}

impl ChallengeEvent {
    pub const TYPES: [&'static str; 3] = ["ChallengeIssued", "ChallengeFailed", "ChallengePassed"];

    pub fn type_name(&self) -> &'static str {
        match self {
            Self::ChallengeIssued { .. } => "ChallengeIssued",
            Self::ChallengeFailed { .. } => "ChallengeFailed",
            Self::ChallengePassed { .. } => "ChallengePassed",
        }
    }

    /// The error a recorded failure stands for.
    pub fn rejection(events: &[Self]) -> Option<DomainError> {
        events
            .iter()
            .any(|e| matches!(e, Self::ChallengeFailed { .. }))
            .then_some(DomainError::InvalidCode)
    }
}

impl DomainEvent for ChallengeEvent {
    fn event_type(&self) -> String {
        self.type_name().to_owned()
    }

    fn event_version(&self) -> String {
        crate::EVENT_VERSION.to_owned()
    }
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Challenge {
    pub id: Option<String>,
    pub mobile: Option<Mobile>,
    pub code: Option<PendingCode>,
    pub passed: bool,
}

impl Challenge {
    fn decide(
        &self,
        command: ChallengeCommand,
        services: &DomainServices,
    ) -> Result<Vec<ChallengeEvent>, DomainError> {
        let now = services.clock.now();
        match command {
            ChallengeCommand::Issue {
                challenge_id,
                mobile,
                purpose,
            } => {
                if self.id.is_some() {
                    return Err(DomainError::Conflict);
                }
                let code = services.secrets.new_code();
                let code_digest = services.secrets.code_digest(
                    &binding(&challenge_id, purpose, mobile.as_str(), &challenge_id),
                    &code,
                );
                Ok(vec![ChallengeEvent::ChallengeIssued {
                    challenge_id,
                    mobile,
                    purpose,
                    code_digest,
                    sealed_code: services.secrets.seal(code.as_str()),
                    expires_at: now + CODE_TTL,
                }])
            }
            ChallengeCommand::Pass {
                mobile,
                purpose,
                code,
                newest_request_at,
            } => {
                // A challenge never issued answers like a wrong code, so that probing ids
                // tells nothing; it records nothing either.
                let (Some(id), Some(pending)) = (&self.id, &self.code) else {
                    return Err(DomainError::InvalidCode);
                };
                if self.passed {
                    return Err(DomainError::CodeExpired);
                }
                let check = if pending.purpose == purpose && pending.target == mobile.as_str() {
                    // The code is issued after its request was counted, so a request counted
                    // after the issue is a newer one for the same slot.
                    let issued_at = pending.expires_at - CODE_TTL;
                    if newest_request_at.is_some_and(|newest| newest > issued_at) {
                        return Err(DomainError::CodeExpired);
                    }
                    pending.check(id, &code, now, services.secrets.as_ref())
                } else {
                    // A code is bound to its purpose and target: any other is wrong.
                    match pending.check(id, &code, now, services.secrets.as_ref()) {
                        CodeCheck::Expired => CodeCheck::Expired,
                        _ => CodeCheck::Wrong {
                            failures: pending.failures + 1,
                        },
                    }
                };
                match check {
                    CodeCheck::Matches => {
                        Ok(vec![ChallengeEvent::ChallengePassed { mobile, purpose }])
                    }
                    CodeCheck::Wrong { failures } => {
                        Ok(vec![ChallengeEvent::ChallengeFailed { failures, at: now }])
                    }
                    CodeCheck::Expired => Err(DomainError::CodeExpired),
                }
            }
        }
    }
}

impl Aggregate for Challenge {
    const TYPE: &'static str = CHALLENGE_AGGREGATE_TYPE;
    type Command = ChallengeCommand;
    type Event = ChallengeEvent;
    type Error = DomainError;
    type Services = DomainServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command, services)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            ChallengeEvent::ChallengeIssued {
                challenge_id,
                mobile,
                purpose,
                code_digest,
                expires_at,
                sealed_code: _,
            } => {
                self.code = Some(PendingCode {
                    code_id: challenge_id.clone(),
                    purpose,
                    channel: Channel::Sms,
                    target: mobile.as_str().to_owned(),
                    digest: code_digest,
                    expires_at,
                    failures: 0,
                    bound_to: None,
                });
                self.id = Some(challenge_id);
                self.mobile = Some(mobile);
            }
            ChallengeEvent::ChallengeFailed { failures, .. } => {
                if let Some(code) = &mut self.code {
                    code.failures = failures;
                }
            }
            ChallengeEvent::ChallengePassed { .. } => self.passed = true,
        }
    }
}
