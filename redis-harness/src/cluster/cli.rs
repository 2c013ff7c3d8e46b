//! Running `redis-cli --cluster ...` with a deadline, its output in a log file.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::wait::wait_until;

/// The message a test fails with when `redis-cli` (which joins and reshards clusters) is
/// missing.
pub const CLI_INSTALL_HINT: &str =
    "redis-cli not found: install it: apt-get install -y redis-tools";

/// Panics with [`CLI_INSTALL_HINT`] unless `redis-cli` is on the `PATH`.
pub(crate) fn require() {
    if !on_path("redis-cli") {
        panic!("{CLI_INSTALL_HINT}");
    }
}

/// Runs `redis-cli args...` and waits for it until `timeout`, killing it then. The output goes
/// to a fresh file in `dir` (a pipe could fill up: a reshard prints a line per slot and key
/// batch). Returns the output, as `Err` if it failed or timed out.
pub(crate) fn run(dir: &Path, args: &[String], timeout: Duration) -> Result<String, String> {
    require();
    let log = tempfile::Builder::new()
        .prefix("redis-cli-")
        .suffix(".log")
        .tempfile_in(dir)
        .map_err(|e| format!("cannot create a redis-cli log: {e}"))?;
    let out = log.reopen().map_err(|e| e.to_string())?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    // Like the servers: where `setpriv` exists, redis-cli dies with the test process.
    let mut command = if on_path("setpriv") {
        let mut c = Command::new("setpriv");
        c.args(["--pdeathsig", "KILL", "--", "redis-cli"]);
        c
    } else {
        Command::new("redis-cli")
    };
    let mut child = command
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot spawn redis-cli: {e}"))?;
    let mut status = None;
    let finished = wait_until(timeout, || match child.try_wait() {
        Ok(Some(s)) => {
            status = Some(s);
            true
        }
        Ok(None) => false,
        Err(_) => true,
    });
    if !finished {
        let _ = child.kill();
        let _ = child.wait();
    }
    let output = fs::read_to_string(log.path()).unwrap_or_default();
    let command = format!("redis-cli {}", args.join(" "));
    match status {
        Some(s) if s.success() => Ok(output),
        Some(s) => Err(format!("`{command}` failed ({s}):\n{}", tail(&output))),
        None => Err(format!(
            "`{command}` did not finish within {timeout:?}:\n{}",
            tail(&output)
        )),
    }
}

/// The last lines of `text`, for failure messages.
pub(crate) fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}
