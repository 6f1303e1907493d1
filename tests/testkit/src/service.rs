//! The write side wired as the gateway wires it (a fixed keyring, a small Argon2 pool, an
//! injectable clock), and accounts registered without Argon2 work.

use std::sync::Arc;

use commands::hasher::PasswordHasher;
use commands::{CommandContext, CommandService, Executor, Store};
use domain::password::PasswordPolicy;
use domain::values::AccountId;
use domain::{Account, AccountCommand, Clock, DomainServices, SystemClock};

use crate::values::{instance_id, keyring, mobile, server_ip};

/// The service on `store` with the wall clock.
pub fn service(store: &Store) -> CommandService {
    service_with_clock(store, Arc::new(SystemClock))
}

/// The service on `store` with the clock given.
pub fn service_with_clock(store: &Store, clock: Arc<dyn Clock>) -> CommandService {
    let keyring = keyring();
    let services = DomainServices {
        clock,
        secrets: Arc::new(keyring.clone()),
        password_policy: PasswordPolicy::default(),
    };
    CommandService::with_services(store.clone(), keyring, PasswordHasher::new(2, 64), services)
}

/// The executor of a service on `store` (wall clock).
pub fn executor(store: &Store) -> Executor {
    service(store).executor().clone()
}

/// Registers one account by mobile `mobile(n)` (no Argon2 work) under a fresh id.
pub async fn register_by_mobile(executor: &Executor, n: u32) -> AccountId {
    let number = executor
        .store()
        .next_account_number()
        .await
        .expect("an account id");
    let id = AccountId::from_number(number).expect("ids are 12 digits");
    executor
        .execute::<Account>(
            id.as_str(),
            AccountCommand::RegisterWithMobile {
                account_id: id.clone(),
                mobile: mobile(n),
            },
            &CommandContext::system(),
        )
        .await
        .expect("registration by mobile commits");
    id
}

/// Registers `count` accounts by mobile.
pub async fn register_many(executor: &Executor, count: u32) -> Vec<AccountId> {
    let mut ids = Vec::with_capacity(count as usize);
    for n in 0..count {
        ids.push(register_by_mobile(executor, n).await);
    }
    ids
}

/// The command recording server `n` (instance `i-n`, IP `server_ip(n)`).
pub fn assign_server(n: u32) -> AccountCommand {
    AccountCommand::AssignServerIp {
        instance_id: instance_id(n),
        ip: server_ip(n),
    }
}
