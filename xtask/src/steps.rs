//! `cargo xtask test`: every gate, each a timed step, then a summary; and
//! `cargo xtask systest`: only the steps some system tests need.
//!
//! Steps run in dependency order; a step whose input failed is reported as
//! failed ("needs ...") rather than skipped silently, so the final count is
//! honest. Command output goes to `build/logs/<step>.log`; a failed step
//! prints the tail of its log (and, for a boot, the tail of each serial
//! port and every unmet expectation). System boots are independent and run
//! two at a time (the machines have two cores). The last line is exactly
//! `N passed, N failed`, which CI reads; the exit code is non-zero on any
//! failure. `systest` shares the image and boot steps and the summary, so
//! a system test judged alone is judged exactly as in the full run.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use crate::bochs::{self, BootOptions, Ending};
use crate::pipeline::{self, Paths, Variant};
use crate::prereq;
use crate::run;
use crate::systest::{self, TestDef};
use crate::util::{self, Error, Output};

/// Outcome of one step.
struct StepResult {
    name: String,
    ok: bool,
    time: Duration,
}

/// Runs steps, records and prints their results.
struct Runner {
    logs: PathBuf,
    results: Vec<StepResult>,
}

fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Runner {
    fn log_path(&self, name: &str) -> PathBuf {
        self.logs.join(format!("{}.log", slug(name)))
    }

    fn record(&mut self, name: &str, ok: bool, time: Duration, detail: &str) {
        let verdict = if ok { "PASS" } else { "FAIL" };
        println!("{verdict}  {name}  ({:.1} s)", time.as_secs_f64());
        if !ok && !detail.is_empty() {
            for line in detail.lines() {
                println!("      {line}");
            }
        }
        self.results.push(StepResult {
            name: name.to_owned(),
            ok,
            time,
        });
    }

    /// Runs `body` with a log file; returns its value if it succeeded.
    fn step<T>(
        &mut self,
        name: &str,
        body: impl FnOnce(Output<'_>) -> Result<T, Error>,
    ) -> Option<T> {
        let log = self.log_path(name);
        let _ = fs::remove_file(&log);
        println!("....  {name}");
        let start = Instant::now();
        let result = body(Output::Log(&log));
        let time = start.elapsed();
        match result {
            Ok(value) => {
                self.record(name, true, time, "");
                Some(value)
            }
            Err(error) => {
                let logged = fs::read_to_string(&log).unwrap_or_default();
                let mut detail = format!("{error}\n");
                if !logged.is_empty() {
                    detail.push_str(&format!(
                        "last lines of {}:\n{}",
                        log.display(),
                        util::tail(&logged, 40)
                    ));
                }
                self.record(name, false, time, &detail);
                None
            }
        }
    }

    /// Records a step that could not run because `needs` failed.
    fn blocked(&mut self, name: &str, needs: &str) {
        self.record(
            name,
            false,
            Duration::ZERO,
            &format!("not run: needs {needs}"),
        );
    }

    fn summary(&self) -> ExitCode {
        let passed = self.results.iter().filter(|r| r.ok).count();
        let failed = self.results.len() - passed;
        let total: Duration = self.results.iter().map(|r| r.time).sum();
        println!();
        println!("summary ({:.0} s of steps):", total.as_secs_f64());
        for r in &self.results {
            println!(
                "  {}  {:<40} {:>7.1} s",
                if r.ok { "PASS" } else { "FAIL" },
                r.name,
                r.time.as_secs_f64()
            );
        }
        println!("{passed} passed, {failed} failed");
        if failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}

fn cargo_step(dir: &Path, args: &[&str], output: Output<'_>) -> Result<(), Error> {
    let mut cmd = util::cargo(dir);
    cmd.args(args);
    util::run(&mut cmd, output)
}

/// Options of `cargo xtask test`.
struct TestArgs {
    skip_miri: bool,
    only: Vec<String>,
}

fn parse_args(args: &[String]) -> Result<TestArgs, Error> {
    let mut parsed = TestArgs {
        skip_miri: false,
        only: Vec::new(),
    };
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--skip-miri" => parsed.skip_miri = true,
            "--only" => parsed
                .only
                .push(iter.next().ok_or("--only needs a system name")?.clone()),
            other => return Err(format!("test: unknown argument {other}").into()),
        }
    }
    Ok(parsed)
}

/// One boot to run: a name, an image directory and what to expect.
struct BootJob {
    name: String,
    /// Bochs' working directory (see [`pipeline::boot_dir`]).
    dir: PathBuf,
    def: TestDef,
}

struct BootOutcome {
    failures: Vec<String>,
    detail: String,
    time: Duration,
}

fn run_boot(job: &BootJob) -> BootOutcome {
    let options = BootOptions {
        timeout: Duration::from_secs(job.def.timeout),
        stream: false,
        stop_on: job.def.stop_on.clone(),
        stop_grace: Duration::from_secs(job.def.stop_grace),
    };
    let start = Instant::now();
    let boot = match job
        .def
        .emulator
        .boot_with(&job.dir, &options, &job.def.input())
    {
        Ok(boot) => boot,
        Err(e) => {
            return BootOutcome {
                failures: vec![e.0],
                detail: String::new(),
                time: start.elapsed(),
            };
        }
    };
    let mut failures = systest::check(&job.def, &boot.com1, &boot.com2);
    if boot.ending == Ending::TimedOut && job.def.stop_on.is_none() {
        failures.push(format!(
            "{} after {} s (no power off)",
            boot.ending, job.def.timeout
        ));
    }
    let mut detail = String::new();
    if !failures.is_empty() {
        detail.push_str(&format!("{}\n", boot.ending));
        for f in &failures {
            detail.push_str(&format!("unmet: {f}\n"));
        }
        let com2 = bochs::symbolize(&job.dir.join("composed"), &boot.com2);
        for (port, text) in [("com1", &boot.com1), ("com2", &com2)] {
            detail.push_str(&format!(
                "--- last lines of {port} ---\n{}\n",
                util::tail(text, 25)
            ));
        }
        let log = fs::read_to_string(job.dir.join("bochs.log")).unwrap_or_default();
        let panics: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("PANIC") || l.contains("ERROR"))
            .collect();
        if !panics.is_empty() {
            detail.push_str(&format!(
                "--- bochs.log errors (last 10) ---\n{}\n",
                util::tail(&panics.join("\n"), 10)
            ));
        }
        detail.push_str(&format!(
            "files: {}/{{com1.txt,com2.txt,bochs.log}}",
            job.dir.display()
        ));
    }
    BootOutcome {
        failures,
        detail,
        time: start.elapsed(),
    }
}

/// Boots every job, `parallel` at a time, returning outcomes in job order.
fn boot_all(jobs: &[BootJob], parallel: usize) -> Vec<BootOutcome> {
    let next = Mutex::new(0usize);
    let results: Mutex<BTreeMap<usize, BootOutcome>> = Mutex::new(BTreeMap::new());
    thread::scope(|scope| {
        for _ in 0..parallel.max(1) {
            scope.spawn(|| {
                loop {
                    let index = {
                        let Ok(mut n) = next.lock() else { return };
                        let i = *n;
                        *n += 1;
                        i
                    };
                    let Some(job) = jobs.get(index) else { return };
                    println!("....  boot {} (in {})", job.name, job.def.emulator.name());
                    let outcome = run_boot(job);
                    if let Ok(mut r) = results.lock() {
                        r.insert(index, outcome);
                    }
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_default()
        .into_values()
        .collect()
}

/// The expected linker error of the `panic-probe` build (kernel/src/main.rs:
/// its panic handler calls this never-defined symbol).
const PANIC_PROBE_SYMBOL: &str = "septum_panic_is_reachable";

/// `cargo xtask test`.
pub fn test(paths: &Paths, args: &[String]) -> Result<ExitCode, Error> {
    let args = parse_args(args)?;
    // Discovered first: a malformed definition or an unknown `--only` name
    // stops before any step runs.
    let mut tests = systest::discover(paths)?;
    if let Some(unknown) = args
        .only
        .iter()
        .find(|only| !tests.iter().any(|(name, _, _)| name == *only))
    {
        return Err(format!("test --only {unknown}: no systems/{unknown}.test.toml").into());
    }
    if !args.only.is_empty() {
        tests.retain(|(name, _, _)| args.only.contains(name));
    }
    let logs = util::create_dir(&paths.build.join("logs"))?;
    let mut r = Runner {
        logs,
        results: Vec::new(),
    };
    let root = paths.root.clone();

    r.step("prerequisites", |out| prereq::ensure(!args.skip_miri, out));
    r.step("fmt host workspace", |out| {
        cargo_step(
            &root,
            &["fmt", "--all", "--check", "--", "--color", "never"],
            out,
        )
    });
    r.step("fmt kernel", |out| {
        cargo_step(
            &root.join("kernel"),
            &["fmt", "--check", "--", "--color", "never"],
            out,
        )
    });
    r.step("fmt subjects", |out| {
        cargo_step(
            &root.join("subjects"),
            &["fmt", "--check", "--", "--color", "never"],
            out,
        )
    });

    let (host, binaries) = build_steps(&mut r, paths);

    // Images: every system test, plus the demo with a debug-profile kernel.
    let mut image_jobs: Vec<ImageJob> = tests.iter().map(ImageJob::of_test).collect();
    if let Some((_, path, demo)) = tests.iter().find(|(name, _, _)| name == "demo") {
        image_jobs.push(ImageJob {
            name: "demo (debug kernel)".to_owned(),
            policy: systest::policy_of(path, demo),
            variant: Variant {
                debug: true,
                features: Vec::new(),
            },
            def: demo.clone(),
        });
    }
    let (jobs, check_composed) = image_steps(&mut r, paths, host, binaries.as_ref(), image_jobs);

    r.step("clippy host workspace", |out| {
        cargo_step(
            &root,
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
            out,
        )
    });
    match &check_composed {
        Some(composed) => {
            let spec = composed.join("spec.rs");
            r.step("clippy kernel", |out| {
                let mut cmd = pipeline::kernel_command(paths, &spec, &Variant::release(), "clippy");
                cmd.args(["--", "-D", "warnings"]);
                util::run(&mut cmd, out)
            });
            if !args.skip_miri {
                // Needs the pinned nightly (emit-stack-sizes, build-std),
                // installed by the prerequisites step with Miri.
                r.step("kernel stack depth", |out| {
                    let mut cmd = std::process::Command::new("python3");
                    cmd.current_dir(&root);
                    cmd.env_remove("RUSTUP_TOOLCHAIN");
                    cmd.arg(root.join("kernel/tools/stack_depth.py"));
                    cmd.arg("--spec").arg(&spec);
                    cmd.arg("--target-dir")
                        .arg(paths.build.join("target").join("kernel-stack"));
                    cmd.args(["--toolchain", util::NIGHTLY, "--self-test"]);
                    util::run(&mut cmd, out)
                });
            }
            r.step("no-panic link (panic-probe must fail to link)", |out| {
                let probe = Variant { debug: false, features: vec!["panic-probe".to_owned()] };
                let mut cmd = pipeline::kernel_command(paths, &spec, &probe, "build");
                let (ok, text) = util::run_capture(&mut cmd)?;
                if let Output::Log(log) = out {
                    let _ = fs::write(log, format!("$ {}\n{text}", util::describe(&cmd)));
                }
                match (ok, text.contains(PANIC_PROBE_SYMBOL)) {
                    (false, true) => Ok(()),
                    (true, _) => Err("the panic-probe kernel linked: a panic path is not caught".into()),
                    (false, false) => Err(format!(
                        "the panic-probe build failed, but not with the undefined `{PANIC_PROBE_SYMBOL}`"
                    )
                    .into()),
                }
            });
        }
        None => {
            r.blocked("kernel stack depth", "a built image (its spec)");
            r.blocked("clippy kernel", "a built image (its spec)");
            r.blocked(
                "no-panic link (panic-probe must fail to link)",
                "a built image (its spec)",
            );
        }
    }
    r.step("clippy subjects and bare-metal sdk", |out| {
        let mut cmd = util::cargo(&root.join("subjects"));
        cmd.env_remove("CARGO_TARGET_DIR");
        cmd.args(["clippy", "--release", "--target-dir"])
            .arg(paths.subjects_target());
        cmd.args(["--", "-D", "warnings"]);
        util::run(&mut cmd, out)?;
        // The SDK's `_start` and panic handler only exist for the bare-metal
        // target, which the host workspace's clippy never sees.
        let mut sdk = util::cargo(&root);
        sdk.args([
            "clippy",
            "-p",
            "septum-sdk",
            "--target",
            "x86_64-unknown-none",
        ]);
        sdk.arg("--target-dir")
            .arg(paths.build.join("target").join("sdk"));
        sdk.args(["--", "-D", "warnings"]);
        util::run(&mut sdk, out)
    });
    r.step("test host workspace", |out| {
        cargo_step(&root, &["test", "--workspace"], out)
    });
    if !args.skip_miri {
        r.step("miri (abi, kerncore, sdk)", |out| {
            let mut cmd = util::cargo(&root);
            cmd.arg(format!("+{}", util::NIGHTLY));
            cmd.args([
                "miri",
                "test",
                "-p",
                "septum-abi",
                "-p",
                "septum-kerncore",
                "-p",
                "septum-sdk",
            ]);
            // Keep Miri's build apart from the stable host build, and per
            // nightly: artifacts of another nightly confuse its runner.
            cmd.env(
                "CARGO_TARGET_DIR",
                paths
                    .build
                    .join("target")
                    .join(format!("miri-{}", util::NIGHTLY)),
            );
            util::run(&mut cmd, out)
        });
    }

    boot_steps(&mut r, &jobs);
    Ok(r.summary())
}

/// `cargo xtask systest NAME...`: prerequisites (without nightly), the
/// host tool, the subjects, then each named test's image and boot; no
/// other gate.
pub fn systest(paths: &Paths, args: &[String]) -> Result<ExitCode, Error> {
    if let Some(flag) = args.iter().find(|a| a.starts_with('-')) {
        return Err(format!("systest: unknown option {flag}").into());
    }
    if args.is_empty() {
        return Err(
            "systest needs a NAME: a system test in systems/ (e.g. demo) or a path to a .test.toml"
                .into(),
        );
    }
    let cwd =
        std::env::current_dir().map_err(|e| format!("cannot read the current directory: {e}"))?;
    // Every name is resolved before anything is built, so a typo costs
    // nothing.
    let mut image_jobs = Vec::new();
    for name in args {
        let target = run::resolve(paths, &cwd, name)?;
        let Some((path, def)) = target.test else {
            return Err(format!(
                "`{name}` has a policy but no system test (systems/{name}.test.toml); \
                 `cargo xtask run {name}` boots it"
            )
            .into());
        };
        let stem = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".test.toml"))
            .unwrap_or(name)
            .to_owned();
        // Twice the same test would boot twice in one directory at once.
        if !image_jobs.iter().any(|j: &ImageJob| j.name == stem) {
            image_jobs.push(ImageJob::of_test(&(stem, path, def)));
        }
    }
    let mut r = Runner {
        logs: util::create_dir(&paths.build.join("logs"))?,
        results: Vec::new(),
    };
    r.step("prerequisites", |out| prereq::ensure(false, out));
    let (host, binaries) = build_steps(&mut r, paths);
    let (jobs, _) = image_steps(&mut r, paths, host, binaries.as_ref(), image_jobs);
    boot_steps(&mut r, &jobs);
    Ok(r.summary())
}

/// One image to build for a boot.
struct ImageJob {
    /// The boot's name in the step list.
    name: String,
    policy: PathBuf,
    variant: Variant,
    def: TestDef,
}

impl ImageJob {
    /// The image of a system test as `discover` lists it.
    fn of_test((name, path, def): &(String, PathBuf, TestDef)) -> Self {
        Self {
            name: name.clone(),
            policy: systest::policy_of(path, def),
            variant: Variant {
                debug: false,
                features: def.features.clone(),
            },
            def: def.clone(),
        }
    }
}

/// The two builds every image needs, as steps: the `septum` tool (whether
/// it built) and the subjects (their binaries' directory).
fn build_steps(r: &mut Runner, paths: &Paths) -> (bool, Option<PathBuf>) {
    let host = r
        .step("build septum (release)", |out| {
            pipeline::build_host(paths, out)
        })
        .is_some();
    let binaries = r.step("build subjects (release)", |out| {
        pipeline::build_subjects(paths, out)
    });
    (host, binaries)
}

/// Builds each image as a step `image NAME` (a failed one blocks its
/// boot). Returns the boots to run and the composed directory whose spec
/// the kernel's own checks use: the demo's, else the first image's.
fn image_steps(
    r: &mut Runner,
    paths: &Paths,
    host: bool,
    binaries: Option<&PathBuf>,
    image_jobs: Vec<ImageJob>,
) -> (Vec<BootJob>, Option<PathBuf>) {
    let mut jobs = Vec::new();
    let mut check_composed = None;
    for ImageJob {
        name,
        policy,
        variant,
        def,
    } in image_jobs
    {
        let step = format!("image {name}");
        let (true, Some(bins)) = (host, binaries) else {
            r.blocked(&step, "septum and the subjects");
            continue;
        };
        let built = r.step(&step, |out| {
            let policy = policy
                .to_str()
                .ok_or_else(|| format!("policy path {} is not UTF-8", policy.display()))?;
            let image = pipeline::image_from_parts(paths, policy, &variant, bins, out)?;
            let dir = pipeline::boot_dir(paths, &image, &crate::bochs::Machine::of(Some(&def)))?;
            Ok((image, dir))
        });
        if let Some((image, dir)) = built {
            if name == "demo" || check_composed.is_none() {
                check_composed = Some(image.composed.clone());
            }
            jobs.push(BootJob { name, dir, def });
        } else {
            // Recorded as failed; its boot cannot run.
            r.blocked(&format!("boot {name}"), &step);
        }
    }
    (jobs, check_composed)
}

/// Boots every job, two at a time, and records each as `boot NAME`.
fn boot_steps(r: &mut Runner, jobs: &[BootJob]) {
    let outcomes = boot_all(jobs, 2);
    for (job, outcome) in jobs.iter().zip(outcomes) {
        let ok = outcome.failures.is_empty();
        r.record(
            &format!("boot {}", job.name),
            ok,
            outcome.time,
            &outcome.detail,
        );
    }
}
