//! Identity verification during a session (step-up) by a code to the recovery mobile or email,
//! or by the password. The id of a password verification is stateless: a random part and a
//! keyed hash binding it to the session, checked when the password comes back.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use domain::account::{AccountCommand, VerificationMethod};
use domain::values::{AccountId, VerificationCode};
use domain::{DomainError, SessionId};
use rand::Rng;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::{masked_target, registered};
use crate::context::CommandContext;
use crate::limits::TargetLimit;
use crate::service::{CommandService, ServiceError};

/// A started verification.
#[derive(Debug, Clone)]
pub struct VerificationStarted {
    pub verification_id: String,
    /// Where the code went, masked; `None` for the password.
    pub masked_target: Option<String>,
}

/// What answers a verification.
#[derive(Debug, Clone)]
pub enum IdentityProof {
    Code(VerificationCode),
    Password(String),
}

const PASSWORD_VERIFICATION_PREFIX: &str = "pw_";

impl CommandService {
    fn password_verification_id(&self, session: &SessionId, nonce: &[u8]) -> String {
        let tag = self.keyring().keyed_hash(
            "step-up-password",
            &[session.as_str().as_bytes(), b"\0", nonce].concat(),
        );
        format!(
            "{PASSWORD_VERIFICATION_PREFIX}{}.{}",
            URL_SAFE_NO_PAD.encode(nonce),
            URL_SAFE_NO_PAD.encode(&tag[..16])
        )
    }

    /// Whether `id` is a password verification this service started for `session`.
    fn is_password_verification_of(&self, id: &str, session: &SessionId) -> bool {
        let Some((nonce, _)) = id
            .strip_prefix(PASSWORD_VERIFICATION_PREFIX)
            .and_then(|rest| rest.split_once('.'))
        else {
            return false;
        };
        let Ok(nonce) = URL_SAFE_NO_PAD.decode(nonce) else {
            return false;
        };
        let expected = self.password_verification_id(session, &nonce);
        expected.as_bytes().ct_eq(id.as_bytes()).into()
    }

    /// Starts a step-up by `method` for `session`.
    pub async fn start_identity_verification(
        &self,
        id: &AccountId,
        session: &SessionId,
        method: VerificationMethod,
        context: &CommandContext,
    ) -> Result<VerificationStarted, ServiceError> {
        let account = registered(self.account(id).await?)?;
        let target = account.step_up_target(method)?;
        if method == VerificationMethod::Password {
            let nonce: [u8; 16] = rand::rng().random();
            return Ok(VerificationStarted {
                verification_id: self.password_verification_id(session, &nonce),
                masked_target: None,
            });
        }
        let target = target.ok_or(DomainError::VerificationMethodUnavailable("code target"))?;
        self.admit_send(&target, "step_up", TargetLimit::CODES)
            .await?;
        let verification_id = Uuid::new_v4().to_string();
        let command = AccountCommand::StartIdentityVerification {
            verification_id: verification_id.clone(),
            method,
            session_id: session.clone(),
        };
        self.execute(id, command, context).await?;
        Ok(VerificationStarted {
            verification_id,
            masked_target: masked_target(&account, method),
        })
    }

    /// Completes a step-up; returns until when the session is verified.
    pub async fn confirm_identity(
        &self,
        id: &AccountId,
        session: &SessionId,
        verification_id: &str,
        proof: IdentityProof,
        context: &CommandContext,
    ) -> Result<DateTime<Utc>, ServiceError> {
        let committed = match proof {
            IdentityProof::Code(code) => {
                let command = AccountCommand::ConfirmIdentityWithCode {
                    verification_id: verification_id.to_owned(),
                    session_id: session.clone(),
                    code,
                };
                self.execute(id, command, context).await?
            }
            IdentityProof::Password(password) => {
                if !self.is_password_verification_of(verification_id, session) {
                    return Err(DomainError::CodeExpired.into());
                }
                let account = registered(self.account(id).await?)?;
                if let Some(until) = account.locked_until(self.now()) {
                    return Err(DomainError::Locked { until }.into());
                }
                self.retry_on_stale_check(|| async {
                    let account = self.account(id).await?.state;
                    let check = self.check_password(&account, &password).await?;
                    let command = AccountCommand::ConfirmIdentityWithPassword {
                        verification_id: verification_id.to_owned(),
                        session_id: session.clone(),
                        check,
                    };
                    self.execute(id, command, context).await
                })
                .await?
            }
        };
        committed
            .state
            .verified_until(session, self.now())
            .ok_or_else(|| DomainError::IdentityVerificationRequired.into())
    }
}
