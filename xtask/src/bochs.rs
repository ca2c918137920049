//! Booting an image in Bochs, headless, under a watchdog.
//!
//! Configuration per docs/building.md (measured facts in the design
//! notes): cpu model tigerlake (a system test may name another Bochs model
//! to check how the kernel refuses a CPU), `ips=10000000` (the hardware description's
//! 10 MHz TSC), `ignore_bad_msrs=0`, COM1/COM2 to `com1.txt`/`com2.txt`,
//! the SDL2 display with `SDL_VIDEODRIVER=dummy` (no window, no socket),
//! and an rc file holding `c` and `quit` because Debian's Bochs starts in
//! its debugger. Bochs' exit code says little (power off gives 1), so a run
//! is judged by its serial output.
//!
//! The watchdog is xtask itself: it polls the serial files every 50 ms,
//! streams new lines when asked to, and kills Bochs (by its process id) at
//! the deadline or a grace period after a configured stop line. Ctrl-C
//! reaches Bochs directly (same process group), so nothing is left behind.

use std::fmt;
use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::util::Error;

const BOCHSRC: &str = "\
# Written by cargo xtask: Bochs 2.7, VT-x (@MODEL@), headless.
megs: 256
romimage: file=/usr/share/bochs/BIOS-bochs-latest
vgaromimage: file=/usr/share/bochs/VGABIOS-lgpl-latest
cpu: model=@MODEL@, count=@COUNT@, ips=10000000, reset_on_triple_fault=0, ignore_bad_msrs=0
ata0-master: type=cdrom, path=system.iso, status=inserted
boot: cdrom
display_library: sdl2
com1: enabled=1, mode=file, dev=com1.txt
com2: enabled=1, mode=file, dev=com2.txt
port_e9_hack: enabled=1
magic_break: enabled=1
clock: sync=none, time0=local
log: bochs.log
panic: action=fatal
error: action=report
";

/// The CPU model of every boot unless a test names another.
pub const DEFAULT_CPU_MODEL: &str = "tigerlake";

/// Whether `model` can be a Bochs CPU model name: non-empty, lowercase
/// letters, digits and `_` only (so it cannot break the configuration
/// line it is written into). Bochs itself rejects unknown names.
pub fn valid_cpu_model(model: &str) -> bool {
    !model.is_empty()
        && model
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Bochs CPUs for the image in `dir`: the number of CPUs the composed plan
/// uses (the `cpu_count: N,` line of `dir/composed/spec.rs`), 1 without a
/// composed spec there (a copy for another CPU model) or for a number
/// outside 1..=8.
fn plan_cpus(dir: &Path) -> u32 {
    fs::read_to_string(dir.join("composed").join("spec.rs"))
        .ok()
        .and_then(|spec| {
            spec.lines().find_map(|line| {
                line.trim()
                    .strip_prefix("cpu_count: ")?
                    .strip_suffix(',')?
                    .parse()
                    .ok()
            })
        })
        .filter(|count| (1..=8).contains(count))
        .unwrap_or(1)
}

/// Writes `bochsrc` (for CPU model `cpu_model`, with as many CPUs as the
/// composed plan in `dir` uses) and `dbg.rc` into `dir` (next to
/// `system.iso`).
pub fn write_config(dir: &Path, cpu_model: &str) -> Result<(), Error> {
    if !valid_cpu_model(cpu_model) {
        return Err(format!("invalid Bochs CPU model `{cpu_model}`").into());
    }
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        fs::write(&path, text).map_err(|e| Error(format!("cannot write {}: {e}", path.display())))
    };
    let rc = BOCHSRC
        .replace("@MODEL@", cpu_model)
        .replace("@COUNT@", &plan_cpus(dir).to_string());
    write("bochsrc", &rc)?;
    write("dbg.rc", "c\nquit\n")
}

/// How to run one boot.
#[derive(Clone, Debug)]
pub struct BootOptions {
    /// Wall-clock limit.
    pub timeout: Duration,
    /// Print serial lines as they arrive (prefixed `com1| `, `com2| `).
    pub stream: bool,
    /// End the run this long after a line containing `stop_on` appears.
    pub stop_on: Option<String>,
    /// See `stop_on`.
    pub stop_grace: Duration,
}

/// Why a boot ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The guest powered the machine off (Bochs' shutdown port).
    PoweredOff,
    /// Bochs exited by itself for another reason (see bochs.out).
    Exited(Option<i32>),
    /// The watchdog fired.
    TimedOut,
    /// The stop line was seen and the grace period passed.
    StopLine,
}

impl Ending {
    /// Whether the run ended the way a finished system ends.
    pub fn is_clean(&self) -> bool {
        !matches!(self, Self::TimedOut)
    }
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PoweredOff => write!(f, "powered off"),
            Self::Exited(Some(code)) => write!(f, "Bochs exited (code {code})"),
            Self::Exited(None) => write!(f, "Bochs was killed by a signal"),
            Self::TimedOut => write!(f, "watchdog timeout: Bochs killed"),
            Self::StopLine => write!(f, "stop line seen: Bochs stopped"),
        }
    }
}

/// The result of a boot.
#[derive(Clone, Debug)]
pub struct Boot {
    /// Everything COM1 received.
    pub com1: String,
    /// Everything COM2 (the kernel's debug console) received.
    pub com2: String,
    /// Why it ended.
    pub ending: Ending,
    /// Wall time.
    pub wall: Duration,
}

/// Follows one serial file, yielding complete new lines.
struct Follower {
    path: std::path::PathBuf,
    prefix: &'static str,
    seen: usize,
    text: String,
}

impl Follower {
    fn poll(&mut self, stream: bool) -> Vec<String> {
        let Ok(bytes) = fs::read(&self.path) else {
            return Vec::new();
        };
        self.text = String::from_utf8_lossy(&bytes).into_owned();
        let mut lines = Vec::new();
        while let Some(end) = self.text.get(self.seen..).and_then(|rest| rest.find('\n')) {
            let line = self
                .text
                .get(self.seen..self.seen + end)
                .unwrap_or_default();
            let line = line.trim_end_matches('\r').to_owned();
            if stream {
                println!("{}{line}", self.prefix);
            }
            lines.push(line);
            self.seen += end + 1;
        }
        lines
    }

    fn finish(&mut self, stream: bool) {
        self.poll(stream);
        let rest = self
            .text
            .get(self.seen..)
            .unwrap_or_default()
            .trim_end_matches('\r');
        if stream && !rest.is_empty() {
            println!("{}{rest}", self.prefix);
        }
    }
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Boots the image in `dir` (which holds `bochsrc`, `dbg.rc`,
/// `system.iso`).
pub fn boot(dir: &Path, options: &BootOptions) -> Result<Boot, Error> {
    for name in ["com1.txt", "com2.txt", "bochs.log"] {
        let _ = fs::remove_file(dir.join(name));
    }
    let out = fs::File::create(dir.join("bochs.out"))
        .map_err(|e| format!("cannot create {}/bochs.out: {e}", dir.display()))?;
    let err = out.try_clone().map_err(|e| format!("bochs.out: {e}"))?;
    let start = Instant::now();
    let mut child = Command::new("bochs")
        .args(["-q", "-f", "bochsrc", "-rc", "dbg.rc"])
        .current_dir(dir)
        .env("SDL_VIDEODRIVER", "dummy")
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .map_err(|e| {
            format!(
                "cannot start bochs in {}: {e} (is it installed?)",
                dir.display()
            )
        })?;

    let mut com1 = Follower {
        path: dir.join("com1.txt"),
        prefix: "com1| ",
        seen: 0,
        text: String::new(),
    };
    let mut com2 = Follower {
        path: dir.join("com2.txt"),
        prefix: "com2| ",
        seen: 0,
        text: String::new(),
    };
    let mut stop_at: Option<Instant> = None;
    let ending = loop {
        let mut new_lines = com1.poll(options.stream);
        new_lines.extend(com2.poll(options.stream));
        if stop_at.is_none()
            && let Some(stop) = &options.stop_on
            && new_lines.iter().any(|l| l.contains(stop.as_str()))
        {
            stop_at = Some(Instant::now() + options.stop_grace);
        }
        match child.try_wait() {
            Ok(Some(status)) => {
                let said = fs::read_to_string(dir.join("bochs.out")).unwrap_or_default();
                if said.contains("Shutdown port: shutdown requested") {
                    break Ending::PoweredOff;
                }
                break Ending::Exited(status.code());
            }
            Ok(None) => {}
            Err(e) => {
                kill(&mut child);
                return Err(format!("waiting for bochs: {e}").into());
            }
        }
        if stop_at.is_some_and(|t| Instant::now() >= t) {
            kill(&mut child);
            break Ending::StopLine;
        }
        if start.elapsed() >= options.timeout {
            kill(&mut child);
            break Ending::TimedOut;
        }
        thread::sleep(Duration::from_millis(50));
    };
    com1.finish(options.stream);
    com2.finish(options.stream);
    Ok(Boot {
        com1: com1.text,
        com2: com2.text,
        ending,
        wall: start.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_model_names() {
        assert!(valid_cpu_model(DEFAULT_CPU_MODEL));
        assert!(valid_cpu_model("core2_penryn_t9600"));
        for bad in ["", "tigerlake, count=2", "Tigerlake", "a\nb"] {
            assert!(!valid_cpu_model(bad), "{bad:?}");
        }
    }

    #[test]
    fn config_names_the_model() {
        let dir = std::env::temp_dir().join(format!("xtask-bochsrc-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        write_config(&dir, "core2_penryn_t9600").unwrap();
        let rc = fs::read_to_string(dir.join("bochsrc")).unwrap();
        assert!(
            rc.contains("cpu: model=core2_penryn_t9600, count=1,"),
            "{rc}"
        );
        assert!(!rc.contains("@MODEL@"));
        assert!(write_config(&dir, "x, ips=1").is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
