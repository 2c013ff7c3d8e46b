//! The generic core: spawn `redis-server` with given config lines in its own temp dir, wait
//! until it answers, kill it on drop. Standalone servers, replicas and sentinels all start
//! through here.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tempfile::TempDir;

use crate::port::free_port;
use crate::tls::TlsFiles;
use crate::wait::{wait_until, READY_TIMEOUT};

/// The message a test fails with when the server binary is missing.
pub const INSTALL_HINT: &str =
    "redis-server not found: install it: apt-get install -y redis-server";

/// How many fresh ports [`Process::start`] tries when another process took the port first.
const PORT_ATTEMPTS: usize = 8;

/// What to run: config lines for a `redis-server` config file, plus extra arguments (such as
/// `--sentinel`). The port, directory and log are added by [`Process`], and the TLS port
/// when [`tls`](Self::tls) asks for one.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    lines: Vec<String>,
    args: Vec<String>,
    password: Option<String>,
    tls: Option<Arc<TlsFiles>>,
}

impl ServerSpec {
    /// A loopback-only server without persistence: `bind 127.0.0.1`, `save ""`,
    /// `appendonly no`, `daemonize no`, `protected-mode no` (safe: loopback only).
    pub fn redis() -> Self {
        ServerSpec {
            lines: [
                "bind 127.0.0.1",
                "save \"\"",
                "appendonly no",
                "daemonize no",
                "protected-mode no",
            ]
            .map(String::from)
            .to_vec(),
            args: Vec::new(),
            password: None,
            tls: None,
        }
    }

    /// Adds a config file line, e.g. `"maxmemory 10mb"` or `"user alice on >pw ~* &* +@all"`.
    pub fn config(mut self, line: impl Into<String>) -> Self {
        self.lines.push(line.into());
        self
    }

    /// Adds a command-line argument after the config file path (e.g. `--sentinel`).
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Requires this password for the default user (`requirepass`); the harness's own
    /// clients authenticate with it.
    pub fn requirepass(mut self, password: impl Into<String>) -> Self {
        let password = password.into();
        self.lines.push(format!("requirepass {password}"));
        self.password = Some(password);
        self
    }

    /// The default user's password, if [`requirepass`](Self::requirepass) set one.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// Also serves TLS, with `files`' server certificate, on a second free loopback port
    /// ([`Process::tls_port`]); clients are not asked for certificates. The plain port stays
    /// open for the harness's own readiness checks and assertions, which speak plain text.
    pub fn tls(mut self, files: Arc<TlsFiles>) -> Self {
        self.tls = Some(files);
        self
    }

    /// The TLS files, if [`tls`](Self::tls) set them.
    pub fn tls_files(&self) -> Option<&Arc<TlsFiles>> {
        self.tls.as_ref()
    }

    fn config_text(&self, port: u16, tls_port: Option<u16>, dir: &Path) -> String {
        let mut text = format!("port {port}\ndir {}\n", dir.display());
        let tls_lines = match (&self.tls, tls_port) {
            (Some(files), Some(tls_port)) => files.server_lines(tls_port),
            _ => Vec::new(),
        };
        for line in self.lines.iter().chain(&tls_lines) {
            text.push_str(line);
            text.push('\n');
        }
        text
    }
}

/// A running `redis-server` child process with its own temp dir. Dropping it kills the
/// process (SIGKILL), waits for it, and removes the directory.
///
/// As a second line of defence, where `setpriv` exists the child gets a parent-death signal,
/// so servers die with the test process even if it is killed before drops run. Linux sends
/// that signal when the *thread* that spawned the child exits, so start servers on the test's
/// own thread (or a runtime worker), not inside `spawn_blocking`.
#[derive(Debug)]
pub struct Process {
    spec: ServerSpec,
    port: u16,
    tls_port: Option<u16>,
    child: Option<Child>,
    // Dropped after `child` is killed (see Drop), so redis never writes into a removed dir.
    dir: TempDir,
}

impl Process {
    /// Starts `spec` on a free loopback port and waits until it answers `PING`; retries on
    /// another port if the chosen one was taken meanwhile.
    ///
    /// # Panics
    /// If `redis-server` is missing ([`INSTALL_HINT`]) or the server does not come up.
    pub fn start(spec: ServerSpec) -> Process {
        let dir = tempfile::Builder::new()
            .prefix("redis-harness-")
            .tempdir()
            .expect("cannot create a temp dir for redis-server");
        let mut last_log = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            let tls_port = spec.tls.as_ref().map(|_| loop {
                let tls_port = free_port();
                if tls_port != port {
                    break tls_port;
                }
            });
            match spawn_ready(&spec, port, tls_port, dir.path()) {
                Ok(child) => {
                    return Process {
                        spec,
                        port,
                        tls_port,
                        child: Some(child),
                        dir,
                    }
                }
                Err(Failure::PortTaken(log)) => last_log = log,
                Err(Failure::Other(message)) => panic!("{message}"),
            }
        }
        panic!("redis-server could not bind a free port in {PORT_ATTEMPTS} attempts:\n{last_log}");
    }

    /// The loopback port the server listens on (plain text).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The loopback port the server serves TLS on, if its spec asked for TLS
    /// ([`ServerSpec::tls`]).
    pub fn tls_port(&self) -> Option<u16> {
        self.tls_port
    }

    /// The server's own directory (config file, log, and whatever it writes).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The spec the server was started with.
    pub fn spec(&self) -> &ServerSpec {
        &self.spec
    }

    /// The process id while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kills the server with SIGKILL (no shutdown, no save) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (and TLS port) and directory, after [`kill`](Self::kill)
    /// (kills it first if it is still running). Retries binding until [`READY_TIMEOUT`], since
    /// the old socket may take a moment to be released.
    ///
    /// # Panics
    /// If the port stays taken or the server does not come up.
    pub fn restart(&mut self) {
        self.kill();
        let mut last = String::new();
        let ok = wait_until(READY_TIMEOUT, || {
            match spawn_ready(&self.spec, self.port, self.tls_port, self.dir.path()) {
                Ok(child) => {
                    self.child = Some(child);
                    true
                }
                Err(Failure::PortTaken(log)) => {
                    last = log;
                    false
                }
                Err(Failure::Other(message)) => panic!("{message}"),
            }
        });
        assert!(
            ok,
            "redis-server could not rebind port {}:\n{last}",
            self.port
        );
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        fs::read_to_string(log_path(self.dir.path())).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

enum Failure {
    PortTaken(String),
    Other(String),
}

fn log_path(dir: &Path) -> PathBuf {
    dir.join("redis.log")
}

/// Spawns the server and waits for `PING`; kills it again on failure.
fn spawn_ready(
    spec: &ServerSpec,
    port: u16,
    tls_port: Option<u16>,
    dir: &Path,
) -> Result<Child, Failure> {
    // Checked up front: through `setpriv` a missing binary would only show in the log.
    if !on_path("redis-server") {
        panic!("{INSTALL_HINT}");
    }
    let conf = dir.join("redis.conf");
    fs::write(&conf, spec.config_text(port, tls_port, dir))
        .map_err(|e| Failure::Other(format!("cannot write {}: {e}", conf.display())))?;
    let log = File::create(log_path(dir))
        .map_err(|e| Failure::Other(format!("cannot create the redis log: {e}")))?;
    let log_err = log
        .try_clone()
        .map_err(|e| Failure::Other(format!("log handle: {e}")))?;

    let mut command = if has_setpriv() {
        let mut c = Command::new("setpriv");
        c.args(["--pdeathsig", "KILL", "--", "redis-server"]);
        c
    } else {
        Command::new("redis-server")
    };
    command
        .arg(&conf)
        .args(&spec.args)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!("{INSTALL_HINT}"),
        Err(e) => return Err(Failure::Other(format!("cannot spawn redis-server: {e}"))),
    };

    let mut exited = false;
    let ready = wait_until(READY_TIMEOUT, || {
        if matches!(child.try_wait(), Ok(Some(_))) {
            exited = true;
            return true;
        }
        answers_ping(port)
    });
    if ready && !exited {
        return Ok(child);
    }
    let _ = child.kill();
    let _ = child.wait();
    let log = fs::read_to_string(log_path(dir)).unwrap_or_default();
    if log.contains("Address already in use") {
        return Err(Failure::PortTaken(log));
    }
    let why = if exited {
        "exited during startup"
    } else {
        "did not answer PING in time"
    };
    Err(Failure::Other(format!(
        "redis-server on port {port} {why}; its log:\n{log}"
    )))
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

fn has_setpriv() -> bool {
    on_path("setpriv")
}

/// One raw `PING`: ready when the server answers `+PONG`, or `-NOAUTH` when a password is
/// required (it is then up, just not talking to strangers). `-LOADING` is not ready.
fn answers_ping(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut line = String::new();
    if BufReader::new(stream).read_line(&mut line).is_err() {
        return false;
    }
    line.starts_with("+PONG") || line.starts_with("-NOAUTH")
}
