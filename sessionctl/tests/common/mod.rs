//! Running the built `sessionctl` against real `redis-server`s started by the harness.
#![allow(dead_code)] // each test binary uses part of it

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use redis_harness::RedisServer;
use session_store::SessionId;

/// What one run printed and how it exited.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout as JSON (panics with both streams if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }
}

/// The binary with a clean environment: only what the test passes reaches it.
pub fn command(env: &[(&str, String)], args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sessionctl"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn finish(output: Output) -> Run {
    Run {
        code: output.status.code().expect("exited, not killed"),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `sessionctl ARGS` with `env` only.
pub fn run(env: &[(&str, String)], args: &[&str]) -> Run {
    finish(command(env, args).output().expect("sessionctl runs"))
}

/// Runs `sessionctl ARGS` with `stdin` piped in.
pub fn run_with_stdin(env: &[(&str, String)], args: &[&str], stdin: &str) -> Run {
    let mut child = command(env, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sessionctl runs");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(stdin.as_bytes())
        .expect("stdin written");
    finish(child.wait_with_output().expect("sessionctl exits"))
}

/// The environment the services read, pointing at `server`.
pub fn redis_env(server: &RedisServer) -> Vec<(&'static str, String)> {
    vec![
        ("SESSION_BACKEND", "redis".into()),
        ("REDIS_HOST", "127.0.0.1".into()),
        ("REDIS_PORT", server.port().to_string()),
    ]
}

/// `redis://127.0.0.1:PORT/0`.
pub fn url(server: &RedisServer) -> String {
    format!("redis://127.0.0.1:{}/0", server.port())
}

/// A fresh token.
pub fn token() -> String {
    SessionId::generate().expose_token().to_owned()
}

/// `json.dumps(value)` as the existing Python service writes it: `", "` and `": "` between
/// members, `\uXXXX` for everything outside ASCII.
pub fn python_dumps(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let members: Vec<String> = map
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{}: {}",
                        python_dumps(&Value::String(k.clone())),
                        python_dumps(v)
                    )
                })
                .collect();
            format!("{{{}}}", members.join(", "))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(python_dumps).collect();
            format!("[{}]", items.join(", "))
        }
        Value::String(_) => {
            let mut out = String::new();
            for ch in value.to_string().chars() {
                if ch.is_ascii() {
                    out.push(ch);
                } else {
                    let mut units = [0u16; 2];
                    for unit in ch.encode_utf16(&mut units) {
                        out.push_str(&format!("\\u{unit:04x}"));
                    }
                }
            }
            out
        }
        other => other.to_string(),
    }
}
