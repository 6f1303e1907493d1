//! A headless Chromium driven over WebDriver (Debian's `chromium` and `chromium-driver`), for
//! the tests of the HTML pages. The W3C WebDriver protocol is plain JSON over HTTP, so the few
//! calls the tests need are made with reqwest rather than a client crate.
//!
//! [`Browser::start`] runs a private `chromedriver` on a free loopback port and opens one
//! session with a fresh profile; dropping the [`Browser`] kills that Chromium (by the process ID
//! chromedriver reported) and that chromedriver (by its handle), and removes the profile.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

/// The key under which WebDriver returns an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One Chromium session.
pub struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`.
    session: String,
    driver: Child,
    /// The browser process of this session (`goog:processID`): chromedriver does not take it
    /// down when it is killed itself.
    chromium_pid: Option<u64>,
    profile: PathBuf,
}

/// The flags the brief of issue 14 names: headless, and nothing that reaches the network.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
];

impl Browser {
    /// Starts chromedriver (`ACCOUNTD_TEST_CHROMEDRIVER`, default `chromedriver` on the PATH) and
    /// a session of Chromium (`ACCOUNTD_TEST_CHROMIUM`, default `/usr/bin/chromium`).
    pub async fn start() -> Self {
        let driver_binary =
            std::env::var("ACCOUNTD_TEST_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let chromium =
            std::env::var("ACCOUNTD_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let driver = Command::new(&driver_binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{driver_binary} could not start ({e}): install Debian's chromium and \
                     chromium-driver (deploy/test.sh does when run as root)"
                )
            });
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        crate::poll("chromedriver to answer", Duration::from_secs(20), || {
            let http = http.clone();
            let status = format!("{base}/status");
            async move {
                let ready = http
                    .get(&status)
                    .send()
                    .await
                    .ok()?
                    .json::<Value>()
                    .await
                    .ok()?;
                ready["value"]["ready"].as_bool().filter(|r| *r)
            }
        })
        .await;
        let profile = std::env::temp_dir().join(format!(
            "accountd_chromium_{}",
            uuid::Uuid::new_v4().simple()
        ));
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| (*f).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let created: Value = http
            .post(format!("{base}/session"))
            .json(&json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": chromium, "args": args}
            }}}))
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .expect("a JSON answer");
        let id = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("Chromium did not start: {created}"));
        Self {
            chromium_pid: created["value"]["capabilities"]["goog:processID"].as_u64(),
            session: format!("{base}/session/{id}"),
            http,
            driver,
            profile,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .expect("a JSON answer");
        assert!(
            answer["value"]["error"].is_null(),
            "WebDriver {path}: {answer}"
        );
        answer["value"].clone()
    }

    /// Opens `url` and waits until it has loaded.
    pub async fn open(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    /// Runs `script` (a function body; `return` its result) in the page.
    pub async fn eval(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// Polls (with a deadline) until `condition`, a JavaScript expression, is true in the page.
    pub async fn wait_for(&self, condition: &str) {
        let script = format!("return Boolean({condition});");
        crate::poll(condition, Duration::from_secs(20), || async {
            self.eval(&script).await.as_bool().filter(|b| *b)
        })
        .await;
    }

    async fn element(&self, css: &str) -> String {
        let found = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}"))
            .to_owned()
    }

    /// Clicks the element `css` selects, as a person would.
    pub async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// Types `text` into the element `css` selects.
    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    /// The visible text of the element `css` selects.
    pub async fn text(&self, css: &str) -> String {
        let id = self.element(css).await;
        self.call(reqwest::Method::GET, &format!("/element/{id}/text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Synchronous on purpose: this also runs when a test panics. The browser process first
        // (its helpers exit with it), then chromedriver, whose exit lets init reap the browser.
        if let Some(pid) = self.chromium_pid {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        if let Some(pid) = self.chromium_pid {
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            let running = PathBuf::from(format!("/proc/{pid}"));
            while running.exists() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
