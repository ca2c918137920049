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
//! The watchdog is xtask itself: it follows the serial output, streams new
//! lines when asked to, and kills Bochs (by its process id) at the deadline
//! or a grace period after a configured stop line. Ctrl-C reaches Bochs
//! directly (same process group), so nothing is left behind.
//!
//! Two ways to follow the ports. A test boot (not streamed) polls the
//! files `com1.txt`/`com2.txt` every 50 ms, as the `bochsrc` written with
//! the image says. A streamed boot (`run`) must show both ports as one
//! stream in the order the lines were written, which polling two files
//! cannot do (everything one poll finds on COM1 would print before what it
//! finds on COM2). So it boots with `bochsrc.live`, the same configuration
//! with both ports in Bochs' `socket-client` mode: Bochs connects to two
//! listening sockets of xtask and sends each byte as the guest transmits
//! it; one reader thread per port forwards what arrives to one channel, and
//! lines are printed (`COM1 | `, `COM2 | `) in the order they complete.
//! The bytes are also written to `com1.txt`/`com2.txt`, so both kinds of
//! boot leave the same files behind.
//!
//! Typing into a boot ([`Input`], [`boot_with`]): a system test's
//! `[[send]]` entries (bytes to send once a line matching a pattern has
//! appeared on a port) and `run`'s terminal (standard input forwarded, a
//! line at a time, to the port of the kernel's console) need the receive
//! side of a port. Both boot with `bochsrc.live`, whose socket is two-way:
//! what xtask writes into it arrives at the guest's UART. A test boot with
//! sends does not print its lines.
//!
//! A subject fault line printed live (`COM2 | ... subject "NAME" fault:
//! ... rip=0x..`) is passed through `septum symbolize` with the image's
//! composed directory, so it names the function and source line of `rip`
//! ([`symbolize`]); the recorded output (`com2.txt`, what tests match) is
//! left as the kernel wrote it.

use std::fmt;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::systest::Pattern;
use crate::util::Error;

const BOCHSRC: &str = "\
# Written by cargo xtask: Bochs 2.7, VT-x (@MODEL@), headless.
megs: 256
romimage: file=/usr/share/bochs/BIOS-bochs-latest
vgaromimage: file=/usr/share/bochs/VGABIOS-lgpl-latest
cpu: model=@MODEL@, count=@COUNT@, ips=10000000, reset_on_triple_fault=0, ignore_bad_msrs=0
ata0-master: type=cdrom, path=system.iso, status=inserted
boot: cdrom
@NIC@display_library: sdl2
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

/// A network card plugged into the Bochs machine (a system test's `nic`).
/// None by default: every other test runs on the machine it always ran
/// on.
#[derive(Clone, Copy, Debug, Default, serde::Deserialize, PartialEq, Eq)]
pub enum Nic {
    /// No network card.
    #[default]
    #[serde(rename = "none")]
    None,
    /// Bochs' Intel 82540EM (`libbx_e1000`) in PCI slot 1, which Bochs
    /// places at 00:02.0; the BIOS gives it BAR0 0xc0000000 (128 KiB
    /// MMIO), BAR1 0xc040 (I/O) and legacy IRQ 9 (PIRQB#), level-triggered
    /// (hardware/bochs-tigerlake-e1000.xml). No host network (`ethmod=null`).
    #[serde(rename = "e1000")]
    E1000,
}

impl Nic {
    /// The `bochsrc` lines that plug the card in (empty for none).
    fn config_lines(self) -> &'static str {
        match self {
            Nic::None => "",
            Nic::E1000 => {
                "pci: enabled=1, chipset=i440fx, slot1=e1000\n\
                 e1000: enabled=1, mac=52:54:00:12:34:56, ethmod=null\n"
            }
        }
    }

    /// Suffix of a boot directory with this card (see
    /// `pipeline::boot_dir`).
    pub fn dir_suffix(self) -> &'static str {
        match self {
            Nic::None => "",
            Nic::E1000 => "-e1000",
        }
    }
}

/// The Bochs machine a boot runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Machine<'a> {
    /// Bochs CPU model.
    pub cpu_model: &'a str,
    /// Network card, if any.
    pub nic: Nic,
}

impl<'a> Machine<'a> {
    /// The machine every test without `cpu_model` and `nic` runs on.
    pub const DEFAULT: Machine<'static> = Machine {
        cpu_model: DEFAULT_CPU_MODEL,
        nic: Nic::None,
    };

    /// The machine of a system test (the default without one).
    pub fn of(def: Option<&'a crate::systest::TestDef>) -> Self {
        def.map_or(Machine::DEFAULT, |d| Machine {
            cpu_model: d.cpu_model.get_ref().as_str(),
            nic: d.nic,
        })
    }

    /// Whether this is [`Machine::DEFAULT`].
    pub fn is_default(&self) -> bool {
        *self == Machine::DEFAULT
    }
}

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

/// Writes `bochsrc` (for `machine`'s CPU model and network card, with as
/// many CPUs as the composed plan in `dir` uses) and `dbg.rc` into `dir`
/// (next to `system.iso`).
pub fn write_config(dir: &Path, machine: &Machine<'_>) -> Result<(), Error> {
    let cpu_model = machine.cpu_model;
    if !valid_cpu_model(cpu_model) {
        return Err(format!("invalid Bochs CPU model `{cpu_model}`").into());
    }
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        fs::write(&path, text).map_err(|e| Error(format!("cannot write {}: {e}", path.display())))
    };
    let rc = BOCHSRC
        .replace("@MODEL@", cpu_model)
        .replace("@COUNT@", &plan_cpus(dir).to_string())
        .replace("@NIC@", machine.nic.config_lines());
    write("bochsrc", &rc)?;
    write("dbg.rc", "c\nquit\n")
}

/// How to run one boot.
#[derive(Clone, Debug)]
pub struct BootOptions {
    /// Wall-clock limit.
    pub timeout: Duration,
    /// Print serial lines as they arrive, both ports as one stream in time
    /// order (prefixed `COM1 | `, `COM2 | `).
    pub stream: bool,
    /// End the run this long after a line containing `stop_on` appears.
    pub stop_on: Option<String>,
    /// See `stop_on`.
    pub stop_grace: Duration,
}

/// Bytes to type into a port once a line has appeared (a system test's
/// `[[send]]`).
#[derive(Clone, Debug)]
pub struct Send {
    /// The port typed into and watched (0 = COM1).
    pub port: usize,
    /// Send once a line of `port` matches this (a line completed after
    /// the previous send, if any, went out).
    pub after: Pattern,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// What is typed into a boot.
#[derive(Clone, Debug, Default)]
pub struct Input {
    /// Sent in order, each once, when its line has appeared.
    pub sends: Vec<Send>,
    /// Forward standard input, a line at a time, to this port (0 = COM1).
    pub stdin_to: Option<usize>,
    /// Lines of standard input forwarded so far.
    pub typed: Arc<AtomicUsize>,
}

impl Input {
    /// Whether anything is typed at all (the boot then needs the two-way
    /// sockets of `bochsrc.live`).
    pub fn any(&self) -> bool {
        !self.sends.is_empty() || self.stdin_to.is_some()
    }
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
    /// QEMU exited (`crate::qemu`; the probe ends it through
    /// isa-debug-exit, exit code `2 * value + 1`).
    QemuExited(Option<i32>),
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
            Self::QemuExited(Some(code)) => write!(f, "QEMU exited (code {code})"),
            Self::QemuExited(None) => write!(f, "QEMU was killed by a signal"),
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

/// The two serial ports, as named in the stream.
const PORT_PREFIXES: [&str; 2] = ["COM1 | ", "COM2 | "];

/// How often the file follower looks, and how long the live follower
/// waits for bytes before the watchdog looks at Bochs again.
const POLL: Duration = Duration::from_millis(50);

/// Splits complete lines off one port's bytes.
#[derive(Default)]
struct Lines {
    bytes: Vec<u8>,
    /// Bytes already returned as lines.
    seen: usize,
}

impl Lines {
    /// The complete lines not returned yet (`\r` removed).
    fn take(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        while let Some(end) = self
            .bytes
            .get(self.seen..)
            .and_then(|rest| rest.iter().position(|b| *b == b'\n'))
        {
            let line = self
                .bytes
                .get(self.seen..self.seen + end)
                .unwrap_or_default();
            lines.push(
                String::from_utf8_lossy(line)
                    .trim_end_matches('\r')
                    .to_owned(),
            );
            self.seen += end + 1;
        }
        lines
    }

    /// The unterminated rest, if any (at the end of a boot).
    fn rest(&self) -> Option<String> {
        let rest = self.bytes.get(self.seen..).unwrap_or_default();
        let rest = String::from_utf8_lossy(rest)
            .trim_end_matches('\r')
            .to_owned();
        (!rest.is_empty()).then_some(rest)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// Prints `line` of port `port` (0 = COM1) to the one stream; a subject
/// fault line symbolized with the image in `dir`.
fn print_line(port: usize, line: &str, dir: &Path) {
    let prefix = PORT_PREFIXES.get(port).copied().unwrap_or("COM? | ");
    let shown = symbolize(&dir.join("composed"), line);
    println!("{prefix}{}", shown.trim_end_matches('\n'));
}

/// `text` with every subject fault line (`subject "NAME" fault: ...
/// rip=0x..`) extended by ` in FUNCTION+0x.. (FILE:LINE)`, by `septum
/// symbolize` with the symbol maps in `composed` (docs/compose.md, "Symbol
/// maps"). `text` unchanged if it has no fault line or that fails.
pub fn symbolize(composed: &Path, text: &str) -> String {
    if !text.contains("\" fault:") {
        return text.to_owned();
    }
    let Ok(paths) = crate::pipeline::Paths::discover() else {
        return text.to_owned();
    };
    let child = Command::new(paths.septum())
        .arg("symbolize")
        .arg(composed)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        return text.to_owned();
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(text.as_bytes());
    }
    match child.wait_with_output() {
        Ok(out) if out.status.success() => {
            let mut shown = String::from_utf8_lossy(&out.stdout).into_owned();
            if !text.ends_with('\n') && shown.ends_with('\n') {
                shown.pop();
            }
            shown
        }
        _ => text.to_owned(),
    }
}

/// Follows the serial output of a boot.
enum Serial {
    /// Polls `com1.txt` and `com2.txt` (test boots).
    Files {
        paths: [PathBuf; 2],
        ports: [Lines; 2],
    },
    /// Bytes from the reader threads of `bochsrc.live` (streamed boots
    /// and boots that type).
    Live {
        bytes: Receiver<(usize, Vec<u8>)>,
        files: [Option<fs::File>; 2],
        ports: [Lines; 2],
        /// Tells the accepting threads to give up (Bochs is gone).
        stop: Arc<AtomicBool>,
        /// The write side of each port's connection, once Bochs connected.
        writers: [Writer; 2],
    },
}

/// The write side of one port's socket (`None` until Bochs connects).
type Writer = Arc<Mutex<Option<TcpStream>>>;

/// Pause between two typed bytes. The kernel reads the console UART's
/// receive side only while the console input owner runs (another
/// partition must not learn when keys are typed), and the UART holds 16
/// bytes meanwhile: a line written at once could overflow it during a
/// neighbour's frame. Typed like a fast typist, a byte per 5 ms, nothing is
/// lost (docs/kernel.md, "Console input").
const TYPE_GAP: Duration = Duration::from_millis(5);

/// Writes `bytes` into `writer`'s port, one byte per [`TYPE_GAP`]; false if
/// Bochs is not connected or a write failed.
fn type_into(writer: &Writer, bytes: &[u8]) -> bool {
    let Ok(mut guard) = writer.lock() else {
        return false;
    };
    guard.as_mut().is_some_and(|stream| {
        let _ = stream.set_nodelay(true);
        bytes.iter().enumerate().all(|(i, byte)| {
            if i > 0 {
                thread::sleep(TYPE_GAP);
            }
            stream
                .write_all(&[*byte])
                .and_then(|()| stream.flush())
                .is_ok()
        })
    })
}

impl Serial {
    /// Waits up to [`POLL`] and returns the new complete lines, printing
    /// them when `stream`, in the order they completed.
    fn poll(&mut self, stream: bool, dir: &Path) -> Vec<(usize, String)> {
        let mut new = Vec::new();
        match self {
            Self::Files { paths, ports } => {
                thread::sleep(POLL);
                for (port, (path, lines)) in paths.iter().zip(ports.iter_mut()).enumerate() {
                    if let Ok(bytes) = fs::read(path) {
                        lines.bytes = bytes;
                    }
                    for line in lines.take() {
                        if stream {
                            print_line(port, &line, dir);
                        }
                        new.push((port, line));
                    }
                }
            }
            Self::Live {
                bytes,
                files,
                ports,
                ..
            } => {
                let deadline = Instant::now() + POLL;
                loop {
                    let wait = deadline.saturating_duration_since(Instant::now());
                    let (port, chunk) = match bytes.recv_timeout(wait) {
                        Ok(received) => received,
                        Err(RecvTimeoutError::Timeout) => break,
                        // Both ports closed: nothing more will come, but
                        // the watchdog still paces itself.
                        Err(RecvTimeoutError::Disconnected) => {
                            thread::sleep(wait);
                            break;
                        }
                    };
                    if let Some(Some(file)) = files.get_mut(port) {
                        let _ = file.write_all(&chunk);
                    }
                    let Some(lines) = ports.get_mut(port) else {
                        continue;
                    };
                    lines.bytes.extend_from_slice(&chunk);
                    for line in lines.take() {
                        if stream {
                            print_line(port, &line, dir);
                        }
                        new.push((port, line));
                    }
                }
            }
        }
        new
    }

    /// After Bochs is gone: the last lines (and an unterminated rest) and
    /// everything each port received.
    fn finish(mut self, stream: bool, dir: &Path) -> (String, String) {
        if let Self::Live { stop, .. } = &self {
            stop.store(true, Ordering::Relaxed);
        }
        // What was sent just before the end is still in flight.
        self.poll(stream, dir);
        let ports = match &self {
            Self::Files { ports, .. } | Self::Live { ports, .. } => ports,
        };
        for (port, lines) in ports.iter().enumerate() {
            if stream && let Some(rest) = lines.rest() {
                print_line(port, &rest, dir);
            }
        }
        let [com1, com2] = ports;
        (com1.text(), com2.text())
    }
}

/// `bochsrc` with both ports sending to `127.0.0.1:PORT` instead of files.
fn live_config(bochsrc: &str, tcp_ports: [u16; 2]) -> String {
    bochsrc
        .lines()
        .map(|line| {
            for (n, tcp) in tcp_ports.iter().enumerate() {
                if line.starts_with(&format!("com{}:", n + 1)) {
                    return format!(
                        "com{}: enabled=1, mode=socket-client, dev=127.0.0.1:{tcp}\n",
                        n + 1
                    );
                }
            }
            format!("{line}\n")
        })
        .collect()
}

/// Accepts Bochs' connection on `listener` and forwards what it sends as
/// port `port`, until Bochs closes it or `stop` is set before it connects.
fn forward(
    listener: TcpListener,
    port: usize,
    to: Sender<(usize, Vec<u8>)>,
    stop: Arc<AtomicBool>,
    writer: Writer,
) {
    let stream: TcpStream = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(_) if !stop.load(Ordering::Relaxed) => thread::sleep(Duration::from_millis(5)),
            Err(_) => return,
        }
    };
    let mut stream = stream;
    if stream.set_nonblocking(false).is_err() {
        return;
    }
    if let (Ok(write_side), Ok(mut slot)) = (stream.try_clone(), writer.lock()) {
        *slot = Some(write_side);
    }
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let chunk = buffer.get(..n).unwrap_or_default().to_vec();
                if to.send((port, chunk)).is_err() {
                    return;
                }
            }
        }
    }
}

/// Sets up the live follower: two listening sockets, their reader threads,
/// `bochsrc.live` naming them, and fresh `com1.txt`/`com2.txt`.
fn live(dir: &Path) -> Result<Serial, Error> {
    let bochsrc = fs::read_to_string(dir.join("bochsrc"))
        .map_err(|e| format!("cannot read {}/bochsrc: {e}", dir.display()))?;
    let (to, bytes) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tcp_ports = [0u16; 2];
    let writers: [Writer; 2] = Default::default();
    for (port, tcp) in tcp_ports.iter_mut().enumerate() {
        let listener = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| format!("cannot listen for Bochs' serial ports: {e}"))?;
        *tcp = listener
            .local_addr()
            .map_err(|e| format!("listening socket: {e}"))?
            .port();
        let (to, stop) = (to.clone(), Arc::clone(&stop));
        let writer = writers.get(port).map(Arc::clone).unwrap_or_default();
        thread::spawn(move || forward(listener, port, to, stop, writer));
    }
    let config = dir.join("bochsrc.live");
    fs::write(&config, live_config(&bochsrc, tcp_ports))
        .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
    let files = ["com1.txt", "com2.txt"].map(|name| fs::File::create(dir.join(name)).ok());
    Ok(Serial::Live {
        bytes,
        files,
        ports: Default::default(),
        stop,
        writers,
    })
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Forwards standard input, a line at a time, into `writer` (until stdin
/// ends; the thread is left behind when the boot ends first). A line
/// typed before Bochs has connected is sent once it has.
fn forward_stdin(writer: Writer, typed: Arc<AtomicUsize>) {
    thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut line = String::new();
        loop {
            line.clear();
            match stdin.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    // A line typed before Bochs connects waits for it.
                    while !type_into(&writer, line.as_bytes()) {
                        thread::sleep(POLL);
                    }
                    typed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
}

/// Boots the image in `dir` (which holds `bochsrc`, `dbg.rc`,
/// `system.iso`).
pub fn boot(dir: &Path, options: &BootOptions) -> Result<Boot, Error> {
    boot_with(dir, options, &Input::default())
}

/// [`boot`], typing `input` into the guest's serial ports.
pub fn boot_with(dir: &Path, options: &BootOptions, input: &Input) -> Result<Boot, Error> {
    for name in ["com1.txt", "com2.txt", "bochs.log"] {
        let _ = fs::remove_file(dir.join(name));
    }
    let (mut serial, config) = if options.stream || input.any() {
        (live(dir)?, "bochsrc.live")
    } else {
        let paths = [dir.join("com1.txt"), dir.join("com2.txt")];
        let ports = Default::default();
        (Serial::Files { paths, ports }, "bochsrc")
    };
    let out = fs::File::create(dir.join("bochs.out"))
        .map_err(|e| format!("cannot create {}/bochs.out: {e}", dir.display()))?;
    let err = out.try_clone().map_err(|e| format!("bochs.out: {e}"))?;
    let start = Instant::now();
    let mut child = Command::new("bochs")
        .args(["-q", "-f", config, "-rc", "dbg.rc"])
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

    let writers = match &serial {
        Serial::Live { writers, .. } => writers.clone(),
        Serial::Files { .. } => Default::default(),
    };
    if let Some(writer) = input.stdin_to.and_then(|port| writers.get(port)) {
        forward_stdin(Arc::clone(writer), Arc::clone(&input.typed));
    }
    let mut sends = input.sends.iter().peekable();
    let mut stop_at: Option<Instant> = None;
    let ending = loop {
        let new_lines = serial.poll(options.stream, dir);
        for (port, line) in &new_lines {
            if let Some(send) = sends.peek()
                && send.port == *port
                && send.after.matches(line)
            {
                if let Some(writer) = writers.get(send.port) {
                    type_into(writer, &send.bytes);
                }
                sends.next();
            }
        }
        if stop_at.is_none()
            && let Some(stop) = &options.stop_on
            && new_lines.iter().any(|(_, l)| l.contains(stop.as_str()))
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
    };
    let (com1, com2) = serial.finish(options.stream, dir);
    Ok(Boot {
        com1,
        com2,
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
        let machine = Machine {
            cpu_model: "core2_penryn_t9600",
            nic: Nic::None,
        };
        write_config(&dir, &machine).unwrap();
        let rc = fs::read_to_string(dir.join("bochsrc")).unwrap();
        assert!(
            rc.contains("cpu: model=core2_penryn_t9600, count=1,"),
            "{rc}"
        );
        assert!(!rc.contains("@MODEL@"));
        assert!(!rc.contains("@NIC@") && !rc.contains("e1000"), "{rc}");
        let bad = Machine {
            cpu_model: "x, ips=1",
            nic: Nic::None,
        };
        assert!(write_config(&dir, &bad).is_err());
        let nic = Machine {
            nic: Nic::E1000,
            ..Machine::DEFAULT
        };
        write_config(&dir, &nic).unwrap();
        let rc = fs::read_to_string(dir.join("bochsrc")).unwrap();
        assert!(
            rc.contains("\npci: enabled=1, chipset=i440fx, slot1=e1000\n"),
            "{rc}"
        );
        assert!(
            rc.contains("\ne1000: enabled=1, mac=52:54:00:12:34:56, ethmod=null\n"),
            "{rc}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn lines_are_split_across_chunks() {
        let mut lines = Lines::default();
        lines.bytes.extend_from_slice(b"one\r\ntw");
        assert_eq!(lines.take(), ["one"]);
        assert_eq!(lines.rest().as_deref(), Some("tw"));
        lines.bytes.extend_from_slice(b"o\n\nthree");
        assert_eq!(lines.take(), ["two", ""]);
        assert_eq!(lines.rest().as_deref(), Some("three"));
        assert_eq!(lines.text(), "one\r\ntwo\n\nthree");
    }

    #[test]
    fn live_config_sends_both_ports_to_sockets() {
        let rc = BOCHSRC
            .replace("@MODEL@", DEFAULT_CPU_MODEL)
            .replace("@COUNT@", "1");
        let live = live_config(&rc, [4001, 4002]);
        assert!(
            live.contains("\ncom1: enabled=1, mode=socket-client, dev=127.0.0.1:4001\n"),
            "{live}"
        );
        assert!(
            live.contains("\ncom2: enabled=1, mode=socket-client, dev=127.0.0.1:4002\n"),
            "{live}"
        );
        assert!(!live.contains("mode=file"), "{live}");
        assert_eq!(live.lines().count(), rc.lines().count());
        assert!(live.contains("cpu: model=tigerlake, count=1,"), "{live}");
    }

    #[test]
    fn sends_type_into_the_port_after_their_line() {
        let dir = std::env::temp_dir().join(format!("xtask-type-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        write_config(&dir, &Machine::DEFAULT).unwrap();
        let mut serial = live(&dir).unwrap();
        let live_rc = fs::read_to_string(dir.join("bochsrc.live")).unwrap();
        let line = live_rc.lines().find(|l| l.starts_with("com2:")).unwrap();
        let tcp: u16 = line.rsplit(':').next().unwrap().parse().unwrap();
        // Stand in for Bochs' COM2: connect, then wait for the write side.
        let mut guest = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
        let Serial::Live { writers, .. } = &serial else {
            panic!("live");
        };
        let writer = Arc::clone(&writers[1]);
        let mut connected = false;
        for _ in 0..100 {
            if writer.lock().unwrap().is_some() {
                connected = true;
                break;
            }
            thread::sleep(Duration::from_millis(10));
        }
        assert!(connected);
        assert!(!type_into(&writers[0], b"x"), "COM1 never connected");
        assert!(type_into(&writer, b"echo hi\n"));
        let mut got = [0u8; 8];
        guest.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"echo hi\n");
        // The guest's output still arrives as lines.
        guest.write_all(b"hi\n").unwrap();
        thread::sleep(Duration::from_millis(100));
        let lines = serial.poll(false, Path::new(""));
        assert_eq!(lines, [(1, "hi".to_owned())]);
        drop(guest);
        serial.finish(false, Path::new(""));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn live_serial_keeps_the_order_lines_complete_in() {
        let dir = std::env::temp_dir().join(format!("xtask-live-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        write_config(&dir, &Machine::DEFAULT).unwrap();
        let mut serial = live(&dir).unwrap();
        let live_rc = fs::read_to_string(dir.join("bochsrc.live")).unwrap();
        let tcp_port = |com: &str| -> u16 {
            let line = live_rc.lines().find(|l| l.starts_with(com)).unwrap();
            line.rsplit(':').next().unwrap().parse().unwrap()
        };
        // Stand in for Bochs: COM2 starts a line, COM1 writes a whole one,
        // COM2 ends its line.
        let mut com1 = TcpStream::connect(("127.0.0.1", tcp_port("com1:"))).unwrap();
        let mut com2 = TcpStream::connect(("127.0.0.1", tcp_port("com2:"))).unwrap();
        com2.write_all(b"kernel: boo").unwrap();
        thread::sleep(Duration::from_millis(100));
        com1.write_all(b"subject: hello\n").unwrap();
        thread::sleep(Duration::from_millis(100));
        com2.write_all(b"ting\nkernel: tail").unwrap();
        thread::sleep(Duration::from_millis(100));
        drop((com1, com2));
        let mut seen = Vec::new();
        for _ in 0..10 {
            seen.extend(
                serial
                    .poll(false, Path::new(""))
                    .into_iter()
                    .map(|(_, l)| l),
            );
        }
        assert_eq!(seen, ["subject: hello", "kernel: booting"]);
        let (text1, text2) = serial.finish(false, Path::new(""));
        assert_eq!(text1, "subject: hello\n");
        assert_eq!(text2, "kernel: booting\nkernel: tail");
        assert_eq!(fs::read_to_string(dir.join("com2.txt")).unwrap(), text2);
        fs::remove_dir_all(&dir).unwrap();
    }
}
