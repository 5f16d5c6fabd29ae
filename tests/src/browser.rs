//! A real browser for the console's tests: Debian's `chromium`, headless, driven through
//! `chromedriver` over the W3C WebDriver protocol (plain HTTP and JSON, spoken with reqwest).

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// The key under which WebDriver names an element.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A `chromedriver` process and one browser session in it; both end on drop.
#[derive(Debug)]
pub struct Browser {
    driver: tokio::process::Child,
    http: reqwest::Client,
    session: String,
    base: String,
}

/// A program on the `PATH` or at one of the usual places.
fn find(names: &[&str]) -> Option<String> {
    let path = std::env::var("PATH").unwrap_or_default();
    for name in names {
        for dir in path.split(':').chain(["/usr/bin", "/usr/lib/chromium"]) {
            let candidate = Path::new(dir).join(name);
            if candidate.is_file() {
                return Some(candidate.to_string_lossy().into_owned());
            }
        }
    }
    None
}

impl Browser {
    /// Starts `chromedriver` on a free port and opens a headless Chromium at `width` ×
    /// `height`, recording the page's console messages.
    ///
    /// # Panics
    /// When Chromium or its driver is not installed (`scripts/test` installs Debian's
    /// `chromium` and `chromium-driver`), or does not start.
    pub async fn start(width: u32, height: u32) -> Self {
        let driver_bin = find(&["chromedriver"]).expect(
            "chromedriver not found: install Debian's chromium and chromium-driver \
             (scripts/test does so as root)",
        );
        let chromium = find(&["chromium", "chromium-browser", "google-chrome"])
            .expect("chromium not found: install Debian's chromium");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = tokio::process::Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = http
                .get(format!("{base}/status"))
                .send()
                .await
                .ok()
                .map(|r| r.status().is_success());
            if ready == Some(true) {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not answer");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--no-first-run",
                         format!("--window-size={width},{height}")],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let created: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("new session sent")
            .json()
            .await
            .expect("new session answered");
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {created}"))
            .to_owned();
        Self {
            driver,
            http,
            session,
            base,
        }
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let reply: Value = req
            .send()
            .await
            .expect("WebDriver command sent")
            .json()
            .await
            .expect("WebDriver answered JSON");
        if let Some(error) = reply["value"]["error"].as_str() {
            panic!(
                "WebDriver {path}: {error}: {}",
                reply["value"]["message"].as_str().unwrap_or_default()
            );
        }
        reply["value"].clone()
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its result.
    pub async fn eval(&self, script: &str, args: Value) -> Value {
        self.command(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// Waits until `script` returns `true`, polling; panics with `what` after `limit`.
    pub async fn wait_for(&self, what: &str, script: &str, args: Value, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if self.eval(script, args.clone()).await == Value::Bool(true) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "waited {limit:?} for {what}; the page shows:\n{}",
                self.text().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until an element matches the CSS `selector`.
    pub async fn wait_for_element(&self, selector: &str, limit: Duration) {
        self.wait_for(
            &format!("`{selector}`"),
            "return document.querySelector(arguments[0]) !== null;",
            json!([selector]),
            limit,
        )
        .await;
    }

    async fn element(&self, selector: &str) -> String {
        let found = self
            .command(
                reqwest::Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": selector })),
            )
            .await;
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element `{selector}`: {found}"))
            .to_owned()
    }

    /// Clicks the element `selector` matches, as a user would (it must be visible). A page
    /// that re-rendered between finding and clicking (a stale element) is asked again.
    pub async fn click(&self, selector: &str) {
        for attempt in 1.. {
            let id = self.element(selector).await;
            let url = format!("{}/session/{}/element/{id}/click", self.base, self.session);
            let reply: Value = self
                .http
                .post(url)
                .json(&json!({}))
                .send()
                .await
                .expect("WebDriver command sent")
                .json()
                .await
                .expect("WebDriver answered JSON");
            match reply["value"]["error"].as_str() {
                None => return,
                Some("stale element reference") if attempt < 5 => continue,
                Some(error) => panic!(
                    "WebDriver click on `{selector}`: {error}: {}",
                    reply["value"]["message"].as_str().unwrap_or_default()
                ),
            }
        }
    }

    /// Types `text` into the element `selector` matches.
    pub async fn type_into(&self, selector: &str, text: &str) {
        let id = self.element(selector).await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// The visible text of the page.
    pub async fn text(&self) -> String {
        self.eval(
            "return document.body ? document.body.innerText : '';",
            json!([]),
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// Sets the window's size.
    pub async fn resize(&self, width: u32, height: u32) {
        self.command(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        )
        .await;
    }

    /// A PNG of the window.
    pub async fn screenshot(&self) -> Vec<u8> {
        let data = self
            .command(reqwest::Method::GET, "/screenshot", None)
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(data.as_str().expect("a base64 screenshot"))
            .expect("base64")
    }

    /// The page's console messages and errors since the last call, as
    /// `(level, message)` (Chromium's levels: `SEVERE` for errors).
    pub async fn console(&self) -> Vec<(String, String)> {
        let logs = self
            .command(
                reqwest::Method::POST,
                "/se/log",
                Some(json!({ "type": "browser" })),
            )
            .await;
        logs.as_array()
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| {
                        (
                            e["level"].as_str().unwrap_or_default().to_owned(),
                            e["message"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Ends the session and the driver.
    pub async fn quit(mut self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send()
            .await;
        let _ = self.driver.kill().await;
    }
}
