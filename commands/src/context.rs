//! Who asked for a command and from where: it becomes every event's metadata (SPEC §4).

use std::net::IpAddr;

use serde_json::{Map, Value};

/// The one who caused an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The account holder (or someone proving to be them, e.g. at sign-up or reset).
    Account(String),
    /// An internal service by role (`compute`, `support`, `notifier`, `auditor`).
    Service(String),
    /// accountd itself (the reminder sweep).
    System,
    /// Someone not signed in (sign-up, sign-in, recovery, reset): recorded as the account the
    /// command acts on, since only its holder can complete these flows.
    Anonymous,
}

impl Actor {
    pub fn as_metadata(&self) -> String {
        match self {
            Self::Account(id) => format!("account:{id}"),
            Self::Service(role) => format!("service:{role}"),
            Self::System => "service:accountd".to_owned(),
            Self::Anonymous => "anonymous".to_owned(),
        }
    }
}

/// Where a command came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandContext {
    pub actor: Actor,
    pub request_id: Option<String>,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl CommandContext {
    pub fn system() -> Self {
        Self {
            actor: Actor::System,
            request_id: None,
            ip: None,
            user_agent: None,
        }
    }

    pub fn of(actor: Actor) -> Self {
        Self {
            actor,
            ..Self::system()
        }
    }

    /// The metadata of one event, without its chain hash.
    pub(crate) fn metadata(&self, event_id: &str, occurred_at: &str) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("event_id".into(), event_id.into());
        map.insert("occurred_at".into(), occurred_at.into());
        map.insert("actor".into(), self.actor.as_metadata().into());
        if let Some(id) = &self.request_id {
            map.insert("request_id".into(), id.as_str().into());
        }
        if let Some(ip) = self.ip {
            map.insert("ip".into(), ip.to_string().into());
        }
        if let Some(agent) = &self.user_agent {
            map.insert("user_agent".into(), agent.as_str().into());
        }
        map
    }
}
