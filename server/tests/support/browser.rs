//! Headless Chromium driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`; `scripts/test` installs them), for the browser tests of the
//! control panel and webmail.
//!
//! `chromedriver` runs in a process group of its own, and Chromium in it: dropping a
//! [`Browser`] closes the WebDriver session and then ends that group, so a test stops
//! exactly what it started, also when it fails. The flags keep Chromium off the
//! network but for the pages it is sent to (this machine's network is closed).

#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// The W3C WebDriver key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A desktop screen and a phone's, in CSS pixels (width, height, pixel ratio).
pub const DESKTOP: (u32, u32, f64) = (1280, 800, 1.0);
pub const PHONE: (u32, u32, f64) = (390, 844, 2.0);

pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session.
    pub fn start() -> Browser {
        for program in [CHROMEDRIVER, CHROMIUM] {
            assert!(
                Path::new(program).exists(),
                "{program} is missing: scripts/test installs Debian's chromium and chromium-driver"
            );
        }
        let port = super::free_port();
        let profile = tempfile::tempdir().unwrap();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: Chromium's processes join it, and one signal to
            // the group ends them all.
            .process_group(0)
            .spawn()
            .expect("starting chromedriver");
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(60))
            .build();
        let base = format!("http://127.0.0.1:{port}");
        let mut browser = Browser {
            driver,
            base,
            session: String::new(),
            agent,
            _profile: profile,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = browser
                .agent
                .get(&format!("{}/status", browser.base))
                .call()
                .ok()
                .and_then(|r| r.into_json::<Value>().ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-crash-reporter",
            "--disable-breakpad",
            "--disable-features=Translate,OptimizationHints,MediaRouter",
            "--hide-scrollbars",
            // The tests' servers have self-signed certificates.
            "--ignore-certificate-errors",
            "--window-size=1280,800",
            &format!(
                "--user-data-dir={}",
                browser._profile.path().join("profile").display()
            ),
        ];
        let created = browser.call(
            "POST",
            "/session",
            Some(json!({
                "capabilities": {
                    "alwaysMatch": {
                        "browserName": "chrome",
                        "goog:chromeOptions": {
                            "binary": CHROMIUM,
                            "args": args,
                            "prefs": { "intl.accept_languages": "en-US,en" },
                        },
                    },
                },
            })),
        );
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {created}"))
            .to_string();
        browser
    }

    /// A WebDriver command; its `value`. Panics on a WebDriver error.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.try_call(method, path, body)
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"))
    }

    fn try_call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let request = self.agent.request(method, &url);
        let response = match body {
            Some(body) => request.send_json(body),
            None => request.call(),
        };
        match response {
            Ok(r) => {
                let v: Value = r.into_json().map_err(|e| e.to_string())?;
                Ok(v["value"].clone())
            }
            Err(ureq::Error::Status(code, r)) => {
                Err(format!("{code}: {}", r.into_string().unwrap_or_default()))
            }
            Err(e) => Err(e.to_string()),
        }
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Opens a URL and waits for the page to load.
    pub fn goto(&self, url: &str) {
        self.call(
            "POST",
            &self.session_path("/url"),
            Some(json!({ "url": url })),
        );
    }

    pub fn url(&self) -> String {
        self.call("GET", &self.session_path("/url"), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn title(&self) -> String {
        self.call("GET", &self.session_path("/title"), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The page's HTML as the browser has it now.
    pub fn source(&self) -> String {
        self.call("GET", &self.session_path("/source"), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The first element matching a CSS selector, if any.
    pub fn try_find(&self, css: &str) -> Option<String> {
        self.try_call(
            "POST",
            &self.session_path("/element"),
            Some(json!({ "using": "css selector", "value": css })),
        )
        .ok()
        .and_then(|v| v[ELEMENT].as_str().map(str::to_string))
    }

    /// The first element matching a CSS selector.
    #[track_caller]
    pub fn find(&self, css: &str) -> String {
        self.try_find(css)
            .unwrap_or_else(|| panic!("no element {css} on {}:\n{}", self.url(), self.text("body")))
    }

    /// Every element matching a CSS selector.
    pub fn find_all(&self, css: &str) -> Vec<String> {
        self.call(
            "POST",
            &self.session_path("/elements"),
            Some(json!({ "using": "css selector", "value": css })),
        )
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v[ELEMENT].as_str().map(str::to_string))
        .collect()
    }

    /// The visible text of the first element matching `css` (empty without one). One
    /// script, so a part of the page replaced meanwhile (live updates) is no error.
    pub fn text(&self, css: &str) -> String {
        self.execute(
            "const e = document.querySelector(arguments[0]); return e ? e.innerText.trim() : '';",
            json!([css]),
        )
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    pub fn element_text(&self, element: &str) -> String {
        self.call(
            "GET",
            &self.session_path(&format!("/element/{element}/text")),
            None,
        )
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    pub fn attribute(&self, element: &str, name: &str) -> Option<String> {
        self.call(
            "GET",
            &self.session_path(&format!("/element/{element}/attribute/{name}")),
            None,
        )
        .as_str()
        .map(str::to_string)
    }

    #[track_caller]
    pub fn click(&self, css: &str) {
        let element = self.find(css);
        self.click_element(&element);
    }

    pub fn click_element(&self, element: &str) {
        self.call(
            "POST",
            &self.session_path(&format!("/element/{element}/click")),
            Some(json!({})),
        );
    }

    /// Marks the current document, so [`Browser::wait_loaded`] can tell when another
    /// has replaced it.
    pub fn mark(&self) {
        self.execute("window.__oldPage = true;", json!([]));
    }

    /// Waits until a new document (since [`Browser::mark`]) has loaded.
    #[track_caller]
    pub fn wait_loaded(&self) {
        // What the page is at, for the message when it does not get there: the old
        // page still, or the new one and what it still loads.
        self.wait_until("the next page", |b| {
            let state = b.try_call(
                "POST",
                &b.session_path("/execute/sync"),
                Some(json!({
                    "script": "return {
                        old: !!window.__oldPage,
                        state: document.readyState,
                        loading: [...document.querySelectorAll('img, iframe, link[rel=stylesheet]')]
                            .filter(e => e.tagName === 'IMG' ? !e.complete
                                : e.tagName === 'LINK' ? !e.sheet
                                : e.contentDocument && e.contentDocument.readyState !== 'complete')
                            .map(e => e.src || e.href),
                    };",
                    "args": [],
                })),
            )?;
            if state["old"] == false && state["state"] == "complete" {
                Ok(())
            } else {
                Err(state.to_string())
            }
        });
    }

    /// Clicks what leads to another page (a link, a form's button) and waits for it.
    #[track_caller]
    pub fn click_to_load(&self, css: &str) {
        self.mark();
        self.click(css);
        self.wait_loaded();
    }

    /// Replaces the value of a form field.
    #[track_caller]
    pub fn fill(&self, css: &str, text: &str) {
        let element = self.find(css);
        self.call(
            "POST",
            &self.session_path(&format!("/element/{element}/clear")),
            Some(json!({})),
        );
        self.call(
            "POST",
            &self.session_path(&format!("/element/{element}/value")),
            Some(json!({ "text": text })),
        );
    }

    /// Makes the frame `css` the context of the next commands (WebDriver "switch to
    /// frame"), until [`Browser::leave_frame`].
    #[track_caller]
    pub fn enter_frame(&self, css: &str) {
        let mut reference = serde_json::Map::new();
        reference.insert(ELEMENT.to_string(), Value::String(self.find(css)));
        self.call(
            "POST",
            &self.session_path("/frame"),
            Some(json!({ "id": reference })),
        );
    }

    /// Back to the page around the frame.
    pub fn leave_frame(&self) {
        self.call("POST", &self.session_path("/frame/parent"), Some(json!({})));
    }

    /// Chooses a file for a file input (WebDriver types its path).
    #[track_caller]
    pub fn upload(&self, css: &str, path: &Path) {
        let element = self.find(css);
        self.call(
            "POST",
            &self.session_path(&format!("/element/{element}/value")),
            Some(json!({ "text": path.display().to_string() })),
        );
    }

    /// Sets a field's value by script (long text, where typing would be slow).
    pub fn set_value(&self, css: &str, text: &str) {
        self.execute(
            "document.querySelector(arguments[0]).value = arguments[1];",
            json!([css, text]),
        );
    }

    /// Chooses an option of a select by its value.
    pub fn select(&self, css: &str, value: &str) {
        self.click(&format!("{css} option[value=\"{value}\"]"));
    }

    /// Runs a script in the page; its result.
    pub fn execute(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            &self.session_path("/execute/sync"),
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// Runs a script that calls its last argument with the result.
    pub fn execute_async(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            &self.session_path("/execute/async"),
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// `fetch` from the page (with its cookies), redirects not followed: the status
    /// and the body.
    pub fn fetch(&self, method: &str, path: &str, form: Option<&str>) -> (u16, String) {
        let v = self.execute_async(
            "const [method, path, form, done] = arguments;
             const init = { method, credentials: 'same-origin', redirect: 'manual' };
             if (form !== null) {
               init.body = form;
               init.headers = { 'Content-Type': 'application/x-www-form-urlencoded' };
             }
             // A redirect is not followed; it reads as 303 (its status is hidden).
             fetch(path, init).then(async r =>
                 done([r.type === 'opaqueredirect' ? 303 : r.status, await r.text()]))
               .catch(e => done([0, String(e)]));",
            json!([method, path, form]),
        );
        (
            v[0].as_u64().unwrap_or(0) as u16,
            v[1].as_str().unwrap_or_default().to_string(),
        )
    }

    /// Opens a new tab and switches to it.
    pub fn new_tab(&self) {
        let opened = self.call(
            "POST",
            &self.session_path("/window/new"),
            Some(json!({ "type": "tab" })),
        );
        let handle = opened["handle"].as_str().expect("a new tab's handle");
        self.call(
            "POST",
            &self.session_path("/window"),
            Some(json!({ "handle": handle })),
        );
    }

    /// Reloads the page.
    pub fn refresh(&self) {
        self.call("POST", &self.session_path("/refresh"), Some(json!({})));
    }

    /// Accepts the open `confirm()` dialog.
    pub fn accept_dialog(&self) {
        self.call("POST", &self.session_path("/alert/accept"), Some(json!({})));
    }

    /// Whether a dialog (`alert`, `confirm`) is open.
    pub fn dialog_open(&self) -> bool {
        self.try_call("GET", &self.session_path("/alert/text"), None)
            .is_ok()
    }

    pub fn delete_cookies(&self) {
        self.call("DELETE", &self.session_path("/cookie"), None);
    }

    /// Waits until `cond` holds (up to 10 s).
    #[track_caller]
    pub fn wait_for(&self, what: &str, mut cond: impl FnMut(&Browser) -> bool) {
        self.wait_until(what, |b| cond(b).then_some(()).ok_or_else(String::new));
    }

    /// As [`Browser::wait_for`]; `check` says why not yet, and its last answer is in
    /// the message when the wait times out.
    #[track_caller]
    pub fn wait_until(&self, what: &str, mut check: impl FnMut(&Browser) -> Result<(), String>) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut why = String::new();
        while Instant::now() < deadline {
            match check(self) {
                Ok(()) => return,
                Err(e) => why = e,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let why = if why.is_empty() {
            why
        } else {
            format!(": {why}")
        };
        panic!("timed out waiting for {what} on {}{why}", self.url());
    }

    fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.call(
            "POST",
            &self.session_path("/goog/cdp/execute"),
            Some(json!({ "cmd": cmd, "params": params })),
        )
    }

    /// Emulates a screen of `width`×`height` CSS pixels (phones get touch and a
    /// mobile viewport).
    pub fn screen(&self, (width, height, scale): (u32, u32, f64)) {
        let mobile = width < 600;
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": scale, "mobile": mobile }),
        );
    }

    /// Writes a PNG of the whole page (not just the screen) to `path`.
    pub fn screenshot(&self, path: &Path) {
        let metrics = self.cdp("Page.getLayoutMetrics", json!({}));
        let size = &metrics["cssContentSize"];
        let viewport = &metrics["cssLayoutViewport"];
        let width = viewport["clientWidth"].as_f64().unwrap_or(1280.0);
        let height = size["height"].as_f64().unwrap_or(800.0).min(6000.0);
        let shot = self.cdp(
            "Page.captureScreenshot",
            json!({
                "format": "png",
                "captureBeyondViewport": true,
                "clip": { "x": 0, "y": 0, "width": width, "height": height, "scale": 1 },
            }),
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap_or_default())
            .expect("a base64 PNG");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self
                .agent
                .delete(&format!("{}/session/{}", self.base, self.session))
                .timeout(Duration::from_secs(10))
                .call();
        }
        // chromedriver leads its group (its pid is the group's id): end the group,
        // then make sure.
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.driver.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.wait();
        // Until no process of the group is left (signal 0 only asks).
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let alive = Command::new("kill")
                .args(["-0", "--", &group])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !alive {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Chromium's crash handler leaves the group (it daemonises) but names the
        // profile directory, which is this browser's alone; it exits with Chromium.
        let profile = self._profile.path().display().to_string();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left: Vec<String> = Command::new("pgrep")
                .args(["-f", &profile])
                .output()
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .split_whitespace()
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            if left.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                let _ = Command::new("kill").arg("-KILL").args(&left).status();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
