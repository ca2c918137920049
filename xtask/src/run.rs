//! `cargo xtask run` and `cargo xtask image`: one system, built and (for
//! `run`) booted with its serial ports streamed live.
//!
//! What `SYSTEM` names is decided in one place, [`resolve`], so `run`,
//! `image` and the docs agree: a name in `systems/` (a system test's name
//! means its policy, CPU model, kernel features and timeout), a path to a
//! policy `.xml` anywhere on disk (with the system test next to it, if one
//! names it), or a path to a `.test.toml` anywhere. Paths are taken
//! relative to the directory the command was typed in, because that is
//! what a user means by a path; the repository root is tried second so
//! that `systems/demo.xml` works from any directory of the checkout. A
//! policy's own references (`<hardware href>`, `<include href>`) are
//! resolved by the policy loader relative to the policy file, never by
//! xtask, so a policy moves with its hardware file and needs no rewriting.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::bochs;
use crate::pipeline::{self, Paths, Variant};
use crate::prereq;
use crate::systest::{self, TestDef};
use crate::util::{Error, Output};

/// What `run` boots without a `SYSTEM`: the demo with the debug server,
/// which prints every subject's log on COM1 (`systems/debug.xml`).
pub const DEFAULT_SYSTEM: &str = "debug";

/// `run`'s watchdog when `SYSTEM` has no system test.
const DEFAULT_RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// What `SYSTEM` resolved to.
#[derive(Clone, Debug)]
pub struct Target {
    /// The policy file.
    pub policy: PathBuf,
    /// The system test (its file and definition), if `SYSTEM` has one.
    pub test: Option<(PathBuf, TestDef)>,
}

impl Target {
    /// The test definition, if any.
    pub fn def(&self) -> Option<&TestDef> {
        self.test.as_ref().map(|(_, def)| def)
    }
}

/// An existing file named by the user: relative to `cwd`, else to the
/// repository root.
fn locate(paths: &Paths, cwd: &Path, given: &str) -> Result<PathBuf, Error> {
    let candidates = [cwd.join(given), paths.root.join(given)];
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            format!(
                "no file {given} (looked in {} and {})",
                cwd.display(),
                paths.root.display()
            )
            .into()
        })
}

/// The system test next to `policy` (`DIR/STEM.test.toml`) if its
/// `policy` names that file.
fn sibling_test(policy: &Path) -> Result<Option<(PathBuf, TestDef)>, Error> {
    let (Some(dir), Some(stem)) = (policy.parent(), policy.file_stem()) else {
        return Ok(None);
    };
    let path = dir.join(format!("{}.test.toml", stem.to_string_lossy()));
    if !path.is_file() {
        return Ok(None);
    }
    let def = systest::load(&path)?;
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    Ok(same(&systest::policy_of(&path, &def), policy).then_some((path, def)))
}

/// Resolves `SYSTEM` as `run`, `image` and `systest` take it (see the
/// module docs).
pub fn resolve(paths: &Paths, cwd: &Path, system: &str) -> Result<Target, Error> {
    if system.ends_with(".test.toml") {
        let path = locate(paths, cwd, system)?;
        let def = systest::load(&path)?;
        let policy = systest::policy_of(&path, &def);
        return Ok(Target {
            policy,
            test: Some((path, def)),
        });
    }
    if system.ends_with(".xml") {
        let policy = locate(paths, cwd, system)?;
        let test = sibling_test(&policy)?;
        return Ok(Target { policy, test });
    }
    if system.is_empty() || system.contains(['/', '\\']) || system.starts_with('.') {
        return Err(format!(
            "`{system}`: SYSTEM is a name in systems/ or a path ending in .xml or .test.toml"
        )
        .into());
    }
    let systems = paths.root.join("systems");
    let test_path = systems.join(format!("{system}.test.toml"));
    if test_path.is_file() {
        let def = systest::load(&test_path)?;
        let policy = systest::policy_of(&test_path, &def);
        return Ok(Target {
            policy,
            test: Some((test_path, def)),
        });
    }
    let policy = systems.join(format!("{system}.xml"));
    if policy.is_file() {
        return Ok(Target { policy, test: None });
    }
    Err(format!(
        "no system `{system}`: neither {} nor {} exists",
        policy.display(),
        test_path.display()
    )
    .into())
}

/// Options shared by `run` and `image`.
struct ImageArgs {
    system: Option<String>,
    debug: bool,
    features: Vec<String>,
    timeout: Option<Duration>,
}

fn parse_image_args(args: &[String]) -> Result<ImageArgs, Error> {
    let mut parsed = ImageArgs {
        system: None,
        debug: false,
        features: Vec::new(),
        timeout: None,
    };
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--debug" => parsed.debug = true,
            "--features" => {
                let list = iter.next().ok_or("--features needs a value")?;
                parsed.features = list
                    .split(',')
                    .filter(|f| !f.is_empty())
                    .map(str::to_owned)
                    .collect();
            }
            "--timeout" => {
                let secs = iter.next().ok_or("--timeout needs a value in seconds")?;
                let secs: u64 = secs
                    .parse()
                    .map_err(|_| format!("--timeout {secs}: not a number of seconds"))?;
                parsed.timeout = Some(Duration::from_secs(secs));
            }
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}").into()),
            system if parsed.system.is_none() => parsed.system = Some(system.to_owned()),
            extra => return Err(format!("unexpected argument {extra}").into()),
        }
    }
    Ok(parsed)
}

/// The kernel variant: the test's features, then those given with
/// `--features` (each once).
fn variant(args: &ImageArgs, def: Option<&TestDef>) -> Variant {
    let mut features: Vec<String> = def.map(|d| d.features.clone()).unwrap_or_default();
    for f in &args.features {
        if !features.contains(f) {
            features.push(f.clone());
        }
    }
    Variant {
        debug: args.debug,
        features,
    }
}

/// The watchdog of `run`: `--timeout`, else the test's, else 120 s.
fn run_timeout(args: &ImageArgs, def: Option<&TestDef>) -> Duration {
    args.timeout
        .or_else(|| def.map(|d| Duration::from_secs(d.timeout)))
        .unwrap_or(DEFAULT_RUN_TIMEOUT)
}

/// The policy as the pipeline takes it.
fn policy_arg(target: &Target) -> Result<&str, Error> {
    target
        .policy
        .to_str()
        .ok_or_else(|| format!("policy path {} is not valid UTF-8", target.policy.display()).into())
}

fn current_dir() -> Result<PathBuf, Error> {
    std::env::current_dir().map_err(|e| format!("cannot read the current directory: {e}").into())
}

/// `cargo xtask run`.
pub fn run(paths: &Paths, args: &[String]) -> Result<ExitCode, Error> {
    let a = parse_image_args(args)?;
    let system = a.system.as_deref().unwrap_or(DEFAULT_SYSTEM);
    let target = resolve(paths, &current_dir()?, system)?;
    let def = target.def();
    let machine = bochs::Machine::of(def);
    let timeout = run_timeout(&a, def);
    prereq::ensure(false, Output::Inherit)?;
    let image = pipeline::build_image(
        paths,
        policy_arg(&target)?,
        &variant(&a, def),
        Output::Inherit,
    )?;
    let dir = pipeline::boot_dir(paths, &image, &machine)?;
    let options = bochs::BootOptions {
        timeout,
        stream: true,
        stop_on: def.and_then(|d| d.stop_on.clone()),
        stop_grace: Duration::from_secs(def.map_or(3, |d| d.stop_grace)),
    };
    eprintln!(
        "xtask: booting {} in Bochs, watchdog {} s (Ctrl-C to stop)",
        image.iso.display(),
        timeout.as_secs()
    );
    let emulator = def.map_or(systest::Emulator::Bochs, |d| d.emulator);
    let input = bochs::Input {
        stdin_to: console_input_port(&dir),
        ..bochs::Input::default()
    };
    if let Some(port) = input.stdin_to {
        eprintln!(
            "xtask: the terminal types into COM{} (the kernel's console, read by the \
             policy's consoleInput subject): a line goes out when you press Enter; \
             Ctrl-C leaves",
            port + 1
        );
    }
    let boot = emulator.boot_with(&dir, &options, &input)?;
    eprintln!(
        "xtask: {} after {:.1} s",
        boot.ending,
        boot.wall.as_secs_f64()
    );
    let mut ok = boot.ending.is_clean();
    let typed = input.typed.load(std::sync::atomic::Ordering::Relaxed);
    if let Some((path, def)) = &target.test
        && (!def.send.is_empty() || typed != 0)
    {
        eprintln!(
            "xtask: expectations of {} not checked: {}; `cargo xtask systest` checks them",
            path.display(),
            if typed != 0 {
                "you typed into the system"
            } else {
                "the test types into the system ([[send]]) and `run` leaves that to you"
            }
        );
    } else if let Some((path, def)) = &target.test {
        let unmet = systest::check(def, &boot.com1, &boot.com2);
        if unmet.is_empty() {
            eprintln!("xtask: every expectation of {} is met", path.display());
        } else {
            ok = false;
            for failure in unmet {
                eprintln!("xtask: unmet: {failure}");
            }
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The serial port (0 = COM1) to forward the terminal to: the kernel's
/// console, if the composed spec in `dir` names a console input owner
/// (`<kernel consoleInput>`); else none, and standard input stays unread.
fn console_input_port(dir: &Path) -> Option<usize> {
    let spec = std::fs::read_to_string(dir.join("composed").join("spec.rs")).ok()?;
    if !spec.contains("pub const CONSOLE_INPUT: Option<septum_abi::SubjectId> = Some(") {
        return None;
    }
    let port = spec.lines().find_map(|line| {
        let hex = line.trim().strip_prefix("debug_uart_port: 0x")?;
        u16::from_str_radix(hex.strip_suffix(',')?, 16).ok()
    })?;
    match port {
        0x3f8 => Some(0),
        0x2f8 => Some(1),
        _ => None,
    }
}

/// `cargo xtask image`.
pub fn image(paths: &Paths, args: &[String]) -> Result<ExitCode, Error> {
    let a = parse_image_args(args)?;
    let system = a
        .system
        .as_deref()
        .ok_or("image needs a SYSTEM (e.g. demo)")?;
    if a.timeout.is_some() {
        return Err("image boots nothing: --timeout is for run".into());
    }
    let target = resolve(paths, &current_dir()?, system)?;
    let def = target.def();
    prereq::ensure(false, Output::Inherit)?;
    let image = pipeline::build_image(
        paths,
        policy_arg(&target)?,
        &variant(&a, def),
        Output::Inherit,
    )?;
    let dir = pipeline::boot_dir(paths, &image, &bochs::Machine::of(def))?;
    println!("{}", dir.join("system.iso").display());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// A scratch repository root with `systems/` and an outside directory.
    fn scratch(tag: &str) -> (Paths, PathBuf) {
        let root = std::env::temp_dir().join(format!("xtask-run-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let systems = root.join("repo").join("systems");
        fs::create_dir_all(&systems).unwrap();
        fs::write(systems.join("demo.xml"), "<system/>").unwrap();
        fs::write(
            systems.join("demo.test.toml"),
            "policy = \"demo.xml\"\ntimeout = 30\n",
        )
        .unwrap();
        fs::write(
            systems.join("probe.test.toml"),
            "policy = \"demo.xml\"\nfeatures = [\"root-fault-probe\"]\n\
             cpu_model = \"core2_penryn_t9600\"\n",
        )
        .unwrap();
        fs::write(systems.join("plain.xml"), "<system/>").unwrap();
        let outside = root.join("elsewhere");
        fs::create_dir_all(&outside).unwrap();
        let repo = root.join("repo");
        let paths = Paths {
            build: repo.join("build"),
            host_target: repo.join("target"),
            root: repo,
        };
        (paths, outside)
    }

    #[test]
    fn names_paths_and_tests_resolve() {
        let (paths, outside) = scratch("resolve");
        let systems = paths.root.join("systems");

        let t = resolve(&paths, &outside, "demo").unwrap();
        assert_eq!(t.policy, systems.join("demo.xml"));
        assert_eq!(t.def().map(|d| d.timeout), Some(30));

        let t = resolve(&paths, &outside, "probe").unwrap();
        assert_eq!(t.policy, systems.join("demo.xml"));
        assert_eq!(
            t.def().map(|d| d.features.clone()),
            Some(vec!["root-fault-probe".to_owned()])
        );

        let t = resolve(&paths, &outside, "plain").unwrap();
        assert_eq!(t.policy, systems.join("plain.xml"));
        assert!(t.test.is_none());

        // A path relative to the repository root still works from elsewhere,
        // and finds the test that names the policy.
        let t = resolve(&paths, &outside, "systems/demo.xml").unwrap();
        assert_eq!(t.policy, paths.root.join("systems/demo.xml"));
        assert!(t.test.is_some());

        // A policy outside systems/, with and without a test next to it.
        fs::write(outside.join("mine.xml"), "<system/>").unwrap();
        let t = resolve(&paths, &outside, "mine.xml").unwrap();
        assert_eq!(t.policy, outside.join("mine.xml"));
        assert!(t.test.is_none());
        fs::write(
            outside.join("mine.test.toml"),
            "policy = \"mine.xml\"\ntimeout = 7\n",
        )
        .unwrap();
        let t = resolve(&paths, &outside, "mine.xml").unwrap();
        assert_eq!(t.def().map(|d| d.timeout), Some(7));
        let t = resolve(
            &paths,
            &paths.root,
            &outside.join("mine.test.toml").display().to_string(),
        )
        .unwrap();
        assert_eq!(t.policy, outside.join("mine.xml"));

        // A policy whose neighbour test names another policy has no test.
        fs::write(outside.join("other.xml"), "<system/>").unwrap();
        fs::write(outside.join("other.test.toml"), "policy = \"mine.xml\"\n").unwrap();
        assert!(
            resolve(&paths, &outside, "other.xml")
                .unwrap()
                .test
                .is_none()
        );

        // A policy elsewhere named like a shipped system does not pick up
        // the shipped system's test.
        fs::write(outside.join("demo.xml"), "<system/>").unwrap();
        let t = resolve(&paths, &outside, "demo.xml").unwrap();
        assert_eq!(t.policy, outside.join("demo.xml"));
        assert!(t.test.is_none());

        for bad in ["nothere", "no/such", "", "missing.xml", "gone.test.toml"] {
            assert!(resolve(&paths, &outside, bad).is_err(), "{bad}");
        }
        fs::remove_dir_all(paths.root.parent().unwrap()).unwrap();
    }

    #[test]
    fn timeout_and_features_come_from_the_test() {
        let def = systest::parse(
            Path::new("t.test.toml"),
            "policy = \"demo.xml\"\ntimeout = 45\nfeatures = [\"a\"]\n",
        )
        .unwrap();
        let args = |list: &[&str]| {
            parse_image_args(&list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).unwrap()
        };
        let plain = args(&["demo"]);
        assert_eq!(run_timeout(&plain, Some(&def)), Duration::from_secs(45));
        assert_eq!(run_timeout(&plain, None), DEFAULT_RUN_TIMEOUT);
        let given = args(&["demo", "--timeout", "5", "--features", "b,a"]);
        assert_eq!(run_timeout(&given, Some(&def)), Duration::from_secs(5));
        assert_eq!(variant(&given, Some(&def)).features, ["a", "b"]);
        assert_eq!(variant(&plain, None), Variant::release());
    }
}
