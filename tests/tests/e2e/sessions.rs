//! Sessions a person can see and end (issue 15, docs/adr/0009): `GET /v1/me/sessions` lists the
//! account's live sessions with where they come from, `DELETE /v1/me/sessions/{id}` ends one of
//! the account's own, `DELETE /v1/me/sessions` ends every other one.

use serde_json::{json, Value};
use tests::{assert_problem, on_both_backends, spawn_app, Backend, TestApp, PASSWORD};

/// Signs in `login` from a client with `user_agent`; returns the bearer token.
async fn sign_in_from(app: &TestApp, login: &str, user_agent: &str) -> String {
    let answer = app
        .post_with(
            "/v1/sessions",
            None,
            &[("user-agent", user_agent)],
            json!({"login": login, "password": PASSWORD}),
        )
        .await;
    assert_eq!(answer.status, 201, "{answer:?}");
    answer.body["token"].as_str().expect("a token").to_owned()
}

async fn sessions(app: &TestApp, token: &str) -> Vec<Value> {
    let answer = app.get("/v1/me/sessions", Some(token)).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    answer.body["sessions"]
        .as_array()
        .expect("a list of sessions")
        .clone()
}

/// The id of the session opened with `user_agent`, as `token`'s list shows it.
async fn id_of(app: &TestApp, token: &str, user_agent: &str) -> String {
    sessions(app, token)
        .await
        .iter()
        .find(|s| s["user_agent"] == user_agent)
        .and_then(|s| s["id"].as_str())
        .unwrap_or_else(|| panic!("a session from {user_agent}"))
        .to_owned()
}

async fn a_person_sees_their_sessions_and_ends_one_or_all_others(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_up("ada@example.com", PASSWORD).await;
    app.sign_up("bob@example.com", PASSWORD).await;
    let laptop = sign_in_from(&app, "ada@example.com", "Laptop/1.0").await;
    let phone = sign_in_from(&app, "ada@example.com", "Phone/2.0").await;
    let tablet = sign_in_from(&app, "ada@example.com", "Tablet/3.0").await;
    let bob = sign_in_from(&app, "bob@example.com", "Bob/1.0").await;

    // The list: ada's three live sessions (not bob's), where they come from, which is this one.
    let listed = sessions(&app, &laptop).await;
    assert_eq!(listed.len(), 3, "{listed:#?}");
    let mut agents: Vec<&str> = listed
        .iter()
        .map(|s| s["user_agent"].as_str().expect("a user agent"))
        .collect();
    agents.sort_unstable();
    assert_eq!(agents, ["Laptop/1.0", "Phone/2.0", "Tablet/3.0"]);
    for s in &listed {
        let ip = s["ip"].as_str().expect("the client address");
        assert!(ip.parse::<std::net::IpAddr>().is_ok(), "{s}");
        assert!(
            s["created_at"].is_string() && s["last_used_at"].is_string(),
            "{s}"
        );
        assert_eq!(
            s["current"],
            s["user_agent"] == "Laptop/1.0",
            "only this request's session is current: {s}"
        );
        assert!(s.get("token").is_none(), "never a token: {s}");
    }
    let text = serde_json::to_string(&listed).unwrap();
    for token in [&laptop, &phone, &tablet] {
        assert!(!text.contains(token.as_str()), "no token in the list");
    }

    // Someone else's session, or an unknown one, is not found and stays live.
    let bobs = id_of(&app, &bob, "Bob/1.0").await;
    let foreign = app
        .delete(&format!("/v1/me/sessions/{bobs}"), Some(&laptop))
        .await;
    assert_problem(&foreign, 404, "not_found");
    assert_eq!(app.get("/v1/me", Some(&bob)).await.status, 200);
    let unknown = app
        .delete("/v1/me/sessions/no-such-session", Some(&laptop))
        .await;
    assert_problem(&unknown, 404, "not_found");

    // Ending one: that token stops working at once; ending it again finds nothing.
    let phones = id_of(&app, &laptop, "Phone/2.0").await;
    let ended = app
        .delete(&format!("/v1/me/sessions/{phones}"), Some(&laptop))
        .await;
    assert_eq!(ended.status, 204, "{ended:?}");
    assert_problem(
        &app.get("/v1/me", Some(&phone)).await,
        401,
        "unauthenticated",
    );
    let again = app
        .delete(&format!("/v1/me/sessions/{phones}"), Some(&laptop))
        .await;
    assert_problem(&again, 404, "not_found");

    // Ending every other one keeps this one (and bob's).
    let others = app.delete("/v1/me/sessions", Some(&laptop)).await;
    assert_eq!(others.status, 204, "{others:?}");
    assert_problem(
        &app.get("/v1/me", Some(&tablet)).await,
        401,
        "unauthenticated",
    );
    let left = sessions(&app, &laptop).await;
    assert_eq!(left.len(), 1, "{left:#?}");
    assert_eq!(left[0]["user_agent"], "Laptop/1.0");
    assert_eq!(left[0]["current"], true);
    assert_eq!(app.get("/v1/me", Some(&bob)).await.status, 200);

    // Without a session there is nothing to see.
    assert_problem(
        &app.get("/v1/me/sessions", None).await,
        401,
        "unauthenticated",
    );
    app.stop().await;
}
on_both_backends!(a_person_sees_their_sessions_and_ends_one_or_all_others);
