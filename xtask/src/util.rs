//! Running commands: echo them, send their output to the terminal or to a
//! log file, and turn failure into an error that says what failed.

use std::fmt;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// An error for the user: one line (or a few) saying what went wrong.
#[derive(Debug)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for Error {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for Error {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

/// Where a command's output goes.
#[derive(Clone, Copy, Debug)]
pub enum Output<'a> {
    /// Straight to the terminal (interactive commands).
    Inherit,
    /// Appended to a log file (test steps; shown on failure).
    Log(&'a Path),
}

/// The command line as a user would type it.
pub fn describe(cmd: &Command) -> String {
    let mut line = String::new();
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            line.push_str(&format!(
                "{}={} ",
                key.to_string_lossy(),
                value.to_string_lossy()
            ));
        }
    }
    line.push_str(&cmd.get_program().to_string_lossy());
    for arg in cmd.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    if let Some(dir) = cmd.get_current_dir() {
        line = format!("(cd {} && {line})", dir.display());
    }
    line
}

fn open_log(path: &Path) -> Result<File, Error> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    File::options()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()).into())
}

/// Runs `cmd` to completion; an error if it cannot start or exits non-zero.
pub fn run(cmd: &mut Command, output: Output<'_>) -> Result<(), Error> {
    let line = describe(cmd);
    match output {
        Output::Inherit => eprintln!("$ {line}"),
        Output::Log(path) => {
            use std::io::Write;
            let mut log = open_log(path)?;
            let _ = writeln!(log, "$ {line}");
            let err = log
                .try_clone()
                .map_err(|e| format!("log {}: {e}", path.display()))?;
            cmd.stdout(Stdio::from(log)).stderr(Stdio::from(err));
        }
    }
    cmd.stdin(Stdio::null());
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start `{line}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{line}` failed ({status})").into())
    }
}

/// Runs `cmd` and returns whether it succeeded and its combined output,
/// for commands whose failure is the expected outcome.
pub fn run_capture(cmd: &mut Command) -> Result<(bool, String), Error> {
    let line = describe(cmd);
    cmd.stdin(Stdio::null());
    let out = cmd
        .output()
        .map_err(|e| format!("cannot start `{line}`: {e}"))?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok((out.status.success(), text))
}

/// `n` and the noun, singular for one: `1 line`, `3 lines`.
pub fn count(n: usize, singular: &str, plural: &str) -> String {
    if n == 1 {
        format!("1 {singular}")
    } else {
        format!("{n} {plural}")
    }
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    lines.get(start..).unwrap_or_default().join("\n")
}

/// A `cargo` command that uses the rustup proxy from PATH (so `+nightly`
/// works) and does not inherit the toolchain or target dir of the cargo
/// that runs xtask.
/// The dated nightly used for Miri and the stack-depth gate. Pinned because
/// both depend on the compiler (the stack sizes on its optimiser), and a
/// floating `nightly` changes under a running project; `.ci/run` installs
/// the same one.
pub const NIGHTLY: &str = "nightly-2026-10-30";

pub fn cargo(dir: &Path) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(dir);
    cmd.env_remove("RUSTUP_TOOLCHAIN");
    cmd.env_remove("CARGO");
    cmd.env_remove("RUSTC");
    cmd.env_remove("RUSTFLAGS");
    cmd.env_remove("CARGO_ENCODED_RUSTFLAGS");
    cmd.env_remove("CARGO_MANIFEST_DIR");
    // Logs are read as plain text.
    cmd.env("CARGO_TERM_COLOR", "never");
    cmd
}

/// Creates `dir` and its parents.
pub fn create_dir(dir: &Path) -> Result<PathBuf, Error> {
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir.to_path_buf())
}
