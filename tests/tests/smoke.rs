//! The first flow through HTTP on both backends: sign up, sign in, read the profile.

use serde_json::json;
use tests::{spawn_app, Backend};

async fn sign_up_sign_in_and_read_the_profile(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = app.sign_up("ada@example.com", "Tq7#vLm2!x").await;
    assert!(id.len() == 12 && id.starts_with("1000000000"), "{id}");
    let token = app.sign_in("ada@example.com", "Tq7#vLm2!x").await;
    let me = app.get("/v1/me", Some(&token)).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["account_id"], id.as_str());
    assert_eq!(me.body["login_email"], "ada@example.com");
    assert_eq!(
        me.body["contact_email"],
        json!({"value": "ada@example.com", "verified": false})
    );
    assert!(me.header("x-request-id").is_some());

    let taken = app
        .post(
            "/v1/accounts",
            None,
            json!({"login_email": "ada@example.com", "password": "Tq7#vLm2!x"}),
        )
        .await;
    assert_eq!((taken.status, taken.code()), (409, Some("conflict")));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_sign_in_and_read_the_profile_on_postgres() {
    sign_up_sign_in_and_read_the_profile(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_sign_in_and_read_the_profile_on_the_embedded_store() {
    sign_up_sign_in_and_read_the_profile(Backend::Embedded).await;
}
