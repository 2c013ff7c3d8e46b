//! Real processes for the browser tests: the demo binary, chromedriver and headless Chromium,
//! each killed on drop (also when a test panics).

use std::io::{BufRead as _, BufReader, Read as _};
use std::net::TcpStream;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use redis_harness::{free_port, wait_until, RedisServer};
use serde_json::json;
use tempfile::TempDir;

/// How to get the browser and its driver.
pub const INSTALL_HINT: &str = "install them: apt-get install -y chromium chromium-driver";
/// How long a process may take to start, or a page to show what a test waits for.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The flags this machine needs: running as root (no sandbox), no network beyond loopback
/// (nothing in the background may phone home), a fresh profile per browser.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1000,700",
];

/// Serializes the browser tests: each runs one to three Chromium processes, and the machine
/// has two cores.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `$VAR` if set, else the first of `names` on `PATH`; panics with the install hint.
fn find_binary(var: &str, names: &[&str]) -> PathBuf {
    if let Some(path) = std::env::var_os(var) {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "{var}={} is not a file", path.display());
        return path;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in names {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "{} not found on PATH (or set {var}); {INSTALL_HINT}",
        names.join(" / ")
    );
}

/// Where screenshots go: `<cargo target dir>/browser-screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    // The binary is <target>/<profile>/session-demo.
    let bin = Path::new(env!("CARGO_BIN_EXE_session-demo"));
    let target = bin.parent().and_then(Path::parent).expect("target dir");
    let dir = target.join("browser-screenshots");
    std::fs::create_dir_all(&dir).expect("create the screenshot dir");
    dir
}

/// The environment that puts the demo on `server`.
pub fn redis_env(server: &RedisServer) -> Vec<(&'static str, String)> {
    vec![
        ("SESSION_BACKEND", "redis".to_owned()),
        ("REDIS_HOST", "127.0.0.1".to_owned()),
        ("REDIS_PORT", server.port().to_string()),
    ]
}

/// The demo binary as a child process.
pub struct DemoProcess {
    child: Child,
    url: String,
    log: PathBuf,
    _dir: TempDir,
}

impl DemoProcess {
    /// Starts the demo on a free loopback port with `env` (and none of the session, Redis or
    /// demo variables of the test's own environment).
    pub fn start(env: &[(&str, String)]) -> Self {
        Self::start_on("127.0.0.1:0", env)
    }

    /// Starts the demo on `addr` (`127.0.0.1:PORT`, e.g. the port of a process just killed).
    pub fn start_on(addr: &str, env: &[(&str, String)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("stderr.log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_session-demo"));
        for (name, _) in std::env::vars() {
            if ["SESSION_", "REDIS_", "DEMO_"]
                .iter()
                .any(|p| name.starts_with(p))
            {
                command.env_remove(name);
            }
        }
        command
            .env("DEMO_ADDR", addr)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"));
        let mut child = command.spawn().expect("start the session-demo binary");

        // Read stdout on a thread until EOF, so the pipe never fills; hand over the URL.
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let mut demo = DemoProcess {
            child,
            url: String::new(),
            log,
            _dir: dir,
        };
        match rx.recv_timeout(TIMEOUT) {
            Ok(url) => demo.url = url,
            Err(_) => panic!(
                "session-demo printed no `listening on` line within {TIMEOUT:?}; stderr:\n{}",
                demo.log()
            ),
        }
        demo
    }

    /// `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `127.0.0.1:PORT`, to start a successor on the same address.
    pub fn addr(&self) -> String {
        self.url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned()
    }

    /// A path under the demo's URL.
    pub fn at(&self, path: &str) -> String {
        format!("{}{}", self.url, path.trim_start_matches('/'))
    }

    /// What the demo wrote to stderr.
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(&self.log) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    /// Kills the process (SIGKILL: no graceful shutdown, like a crash) and waits for it.
    pub fn kill(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for DemoProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A chromedriver on a free loopback port, in its own process group so that dropping it also
/// kills every Chromium it started.
pub struct Chromedriver {
    child: Child,
    url: String,
    chromium: PathBuf,
    profiles: Mutex<Vec<TempDir>>,
}

impl Chromedriver {
    /// Starts chromedriver and waits until it accepts connections.
    pub fn start() -> Self {
        let driver = find_binary("CHROMEDRIVER", &["chromedriver"]);
        let chromium = find_binary("CHROMIUM", &["chromium", "chromium-browser"]);
        // The port was free a moment ago; if another process takes it first, chromedriver
        // exits and we try another.
        for _ in 0..3 {
            let port = free_port();
            let mut child = Command::new(&driver)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}; {INSTALL_HINT}", driver.display()));
            let mut exited = false;
            let ready = wait_until(TIMEOUT, || {
                exited = matches!(child.try_wait(), Ok(Some(_)));
                exited || TcpStream::connect(("127.0.0.1", port)).is_ok()
            });
            if ready && !exited {
                return Chromedriver {
                    child,
                    url: format!("http://127.0.0.1:{port}"),
                    chromium,
                    profiles: Mutex::new(Vec::new()),
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("chromedriver did not start listening within {TIMEOUT:?}; {INSTALL_HINT}");
    }

    /// A new browser: its own Chromium with a fresh, empty profile (its own cookie jar).
    pub async fn browser(&self) -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| f.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": self.chromium, "args": args }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| {
                panic!("chromedriver could not start Chromium: {e}; {INSTALL_HINT}")
            });
        self.profiles.lock().unwrap().push(profile);
        Browser { client }
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let pgid = Pid::from_raw(i32::try_from(self.child.id()).expect("pid fits i32"));
        let _ = killpg(pgid, Signal::SIGKILL);
        let _ = self.child.wait();
        // The profiles go after the browsers using them.
    }
}

/// One browser session.
pub struct Browser {
    client: Client,
}

impl Browser {
    /// Opens `url` (waits for the page load).
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("goto {url}: {e}"));
    }

    /// Reloads the page.
    pub async fn reload(&self) {
        self.client.refresh().await.expect("reload");
    }

    /// Waits until an element matching `css` is on the page.
    pub async fn wait_for(&self, css: &str) -> Element {
        match self
            .client
            .wait()
            .at_most(TIMEOUT)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(e) => panic!(
                "no {css} on the page within {TIMEOUT:?} ({e}); page:\n{}",
                self.source().await
            ),
        }
    }

    /// Whether an element matching `css` is on the page now.
    pub async fn has(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .expect("find")
            .is_empty()
    }

    /// The text of the first element matching `css` (waiting for it).
    pub async fn text(&self, css: &str) -> String {
        self.wait_for(css).await.text().await.expect("element text")
    }

    /// Types `text` into the field matching `css`.
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.wait_for(css).await;
        field.clear().await.expect("clear field");
        field.send_keys(text).await.expect("type into field");
    }

    /// Clicks the element matching `css`.
    pub async fn click(&self, css: &str) {
        self.wait_for(css).await.click().await.expect("click");
    }

    /// Runs a script in the page (tests only: the demo itself has no JavaScript).
    pub async fn script(&self, script: &str) {
        self.client
            .execute(script, vec![])
            .await
            .expect("execute script");
    }

    /// Fills the login form on the current page and submits it.
    pub async fn submit_login(&self, user: &str, password: &str) {
        self.wait_for("#login-form").await;
        self.fill("#username", user).await;
        self.fill("#password", password).await;
        self.click("#login").await;
    }

    /// Opens `base`, logs in, and waits for the page showing the user.
    pub async fn login(&self, base: &str, user: &str, password: &str) {
        self.goto(base).await;
        self.submit_login(user, password).await;
        let shown = self.text("#current-user").await;
        assert_eq!(shown, user, "logged in as {user}");
    }

    /// The page source, for failure messages.
    pub async fn source(&self) -> String {
        self.client.source().await.unwrap_or_default()
    }

    /// Saves a PNG screenshot as `<target>/browser-screenshots/<name>.png` and returns the path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let path = screenshot_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// Saves a PNG screenshot of just the element matching `css` (waiting for it) as
    /// `<target>/browser-screenshots/<name>.png` and returns the path.
    pub async fn screenshot_element(&self, css: &str, name: &str) -> PathBuf {
        let png = self
            .wait_for(css)
            .await
            .screenshot()
            .await
            .expect("element screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let path = screenshot_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// Resizes the browser window (the viewport a screenshot shows).
    pub async fn set_window_size(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("set the window size");
    }

    /// Ends the browser session (Chromium exits).
    pub async fn close(self) {
        self.client.close().await.expect("close the browser");
    }
}
