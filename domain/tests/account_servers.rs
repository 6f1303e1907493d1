//! Public IPs of the account's servers, as the compute service reports them.

mod support;

use chrono::Duration;
use domain::{AccountCommand, AccountEvent, DomainError};

use support::*;

fn assign(instance_id: &str, public_ip: &str) -> AccountCommand {
    AccountCommand::AssignServerIp {
        instance_id: instance_id.into(),
        ip: ip(public_ip),
    }
}

fn release(instance_id: &str) -> AccountCommand {
    AccountCommand::ReleaseServerIp {
        instance_id: instance_id.into(),
    }
}

#[test]
fn assigning_a_server_ip_records_it() {
    let story = Story::email_account();
    story.advance(Duration::hours(1));
    story
        .given()
        .when(assign("ins-1", "203.0.113.7"))
        .then_expect_events(vec![AccountEvent::ServerIpAssigned {
            instance_id: "ins-1".into(),
            public_ip: ip("203.0.113.7"),
            assigned_at: t0() + Duration::hours(1),
        }]);
}

#[test]
fn an_ipv6_server_ip_is_assigned_too() {
    let mut story = Story::email_account();
    story.exec(assign("ins-6", "2001:db8::7"));
    let state = story.state();
    assert_eq!(state.servers.len(), 1);
    assert_eq!(state.servers[0].public_ip, ip("2001:db8::7"));
}

#[test]
fn an_instance_id_already_recorded_is_taken() {
    let mut story = Story::email_account();
    story.exec(assign("ins-1", "203.0.113.7"));
    story
        .given()
        .when(assign("ins-1", "203.0.113.8"))
        .then_expect_error(DomainError::ServerInstanceTaken);
}

#[test]
fn an_instance_id_stays_taken_after_its_release() {
    let mut story = Story::email_account();
    story.exec(assign("ins-1", "203.0.113.7"));
    story.exec(release("ins-1"));
    story
        .given()
        .when(assign("ins-1", "203.0.113.7"))
        .then_expect_error(DomainError::ServerInstanceTaken);
}

#[test]
fn the_same_ip_twice_in_the_account_is_a_conflict() {
    let mut story = Story::email_account();
    story.exec(assign("ins-1", "203.0.113.7"));
    story
        .given()
        .when(assign("ins-2", "203.0.113.7"))
        .then_expect_error(DomainError::Conflict);
}

#[test]
fn a_released_ip_can_be_assigned_to_a_new_instance() {
    let mut story = Story::email_account();
    story.exec(assign("ins-1", "203.0.113.7"));
    story.exec(release("ins-1"));
    assert!(story.run(assign("ins-2", "203.0.113.7")).is_ok());
}

#[test]
fn releasing_an_unknown_instance_is_not_found() {
    let mut story = Story::email_account();
    story
        .given()
        .when(release("ins-1"))
        .then_expect_error(DomainError::ServerNotFound);
    story.exec(assign("ins-1", "203.0.113.7"));
    story.exec(release("ins-1"));
    story
        .given()
        .when(release("ins-1"))
        .then_expect_error(DomainError::ServerNotFound);
}

#[test]
fn releasing_a_server_records_its_ip_and_removes_it() {
    let mut story = Story::email_account();
    story.exec(assign("ins-1", "203.0.113.7"));
    story.exec(assign("ins-2", "203.0.113.8"));
    story.advance(Duration::minutes(30));
    let events = story.exec(release("ins-1"));
    assert_eq!(
        events,
        vec![AccountEvent::ServerIpReleased {
            instance_id: "ins-1".into(),
            public_ip: ip("203.0.113.7"),
            released_at: story.now(),
        }]
    );
    let state = story.state();
    let left: Vec<_> = state
        .servers
        .iter()
        .map(|s| s.instance_id.as_str())
        .collect();
    assert_eq!(left, vec!["ins-2"]);
}
