//! The septum command-line tool.
//!
//! - `septum validate FILE... [--format text|json] [--hardware]`: check
//!   policies, or hardware descriptions alone (implemented in [`validate`]).
//! - `septum compose POLICY --binaries DIR --out DIR`: validate, then
//!   allocate, build every table and write the kernel spec, the image
//!   regions and the report (see docs/compose.md).
//! - `septum pack --composed DIR --kernel KERNEL --out system.elf [--iso
//!   system.iso]`: the bootable multiboot2 ELF and, optionally, its GRUB ISO.
//! - `septum flows POLICY [--format text|json|dot|svg]`: every path by which
//!   information can move between subjects (implemented in [`flows`], see
//!   docs/flows.md).
//! - `septum crash decode DUMP [--format text|json] [--policy-hash HEX]`:
//!   the crash-audit records in a dump of the region (implemented in
//!   [`crash`], see docs/crash.md).
//!
//! - `septum symbolize COMPOSED_DIR [FILE]`: copy a debug console log
//!   (FILE or stdin) to stdout, appending the function and source line of
//!   `rip` to each subject fault line, from the composed directory's
//!   symbol maps (docs/compose.md, "Symbol maps").
//!
//! Policy problems are rendered by the policy crate's diagnostics layer
//! (`file:line:col: error[rule]: message`, the source line and a caret);
//! everything else (I/O, composition limits, packing checks) is one
//! `error: ...` line with its context chain. Exit status: 0 on success,
//! 1 on any error; nothing panics on bad input.

mod crash;
mod flows;
mod validate;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use septum_compose::from_policy::BinaryDir;
use septum_compose::{Failure, output, pack};
use septum_policy::Severity;
use septum_policy::diag::{TEXT_LIMIT, omitted_line, render_json, render_text};

#[derive(Parser)]
#[command(
    name = "septum",
    version,
    about = "The Septum separation kernel toolchain"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Check system policies; prints one line per valid file.
    Validate {
        /// Policy files (hardware descriptions with --hardware).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Diagnostics format.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// The files are hardware descriptions (root <hardware>): check each
        /// alone with the loader's checks and the hardware and device rules.
        #[arg(long)]
        hardware: bool,
    },
    /// Validate a policy and compose it: spec.rs, regions, report.
    Compose {
        /// The system policy.
        policy: PathBuf,
        /// Directory holding the subjects' ELF files (named by `binary`).
        #[arg(long)]
        binaries: PathBuf,
        /// Output directory (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Diagnostics format.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Pack the kernel and a composed directory into one multiboot2 ELF.
    Pack {
        /// Directory written by `septum compose`.
        #[arg(long)]
        composed: PathBuf,
        /// The kernel ELF built with that directory's spec.rs.
        #[arg(long)]
        kernel: PathBuf,
        /// The system ELF to write.
        #[arg(long)]
        out: PathBuf,
        /// Also write a GRUB ISO here (needs grub-mkrescue and xorriso).
        #[arg(long)]
        iso: Option<PathBuf>,
    },
    /// Every path by which information can move between subjects
    /// (docs/flows.md).
    Flows {
        /// The system policy.
        policy: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: flows::FlowFormat,
    },
    /// Copy a debug console log to stdout, naming the function and source
    /// line of `rip` in each subject fault line.
    Symbolize {
        /// Directory written by `septum compose` (its `symbols/`).
        composed: PathBuf,
        /// The log (COM2 output); stdin if absent.
        log: Option<PathBuf>,
    },
    /// Crash-audit records (docs/crash.md).
    Crash {
        #[command(subcommand)]
        command: CrashCommand,
    },
}

#[derive(Subcommand)]
enum CrashCommand {
    /// Decode a dump of the crash-audit region (or one record): every
    /// slot, valid, from another image, invalid (with why) or empty.
    Decode {
        /// The dump: the region's raw bytes from its first byte.
        dump: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// The policy hash of the image the records should come from (the
        /// report's `policy hash`); default: the region header's.
        #[arg(long, value_parser = crash::parse_hash)]
        policy_hash: Option<u64>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate {
            files,
            format,
            hardware,
        } => {
            return validate::run(&files, matches!(format, Format::Json), hardware);
        }
        Command::Compose {
            policy,
            binaries,
            out,
            format,
        } => compose(&policy, &binaries, &out, matches!(format, Format::Json)),
        Command::Pack {
            composed,
            kernel,
            out,
            iso,
        } => pack_cmd(&composed, &kernel, &out, iso.as_deref()),
        Command::Flows { policy, format } => return flows::run(&policy, format),
        Command::Symbolize { composed, log } => symbolize(&composed, log.as_deref()),
        Command::Crash {
            command:
                CrashCommand::Decode {
                    dump,
                    format,
                    policy_hash,
                },
        } => crash::decode(&dump, matches!(format, Format::Json), policy_hash),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn symbolize(composed: &Path, log: Option<&Path>) -> Result<ExitCode> {
    use std::collections::HashMap;
    use std::io::{BufRead, Write};

    if !composed.join(septum_compose::symbols::DIR).is_dir() {
        bail!(
            "{} has no {}/ directory (compose it with this septum)",
            composed.display(),
            septum_compose::symbols::DIR
        );
    }
    let input: Box<dyn BufRead> = match log {
        Some(path) => Box::new(std::io::BufReader::new(
            std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?,
        )),
        None => Box::new(std::io::stdin().lock()),
    };
    let mut maps: HashMap<String, Option<septum_compose::symbols::SymbolMap>> = HashMap::new();
    let mut out = std::io::stdout().lock();
    for line in input.split(b'\n') {
        let line = line.context("cannot read the log")?;
        let text = String::from_utf8_lossy(&line);
        let shown = septum_compose::symbols::symbolize_line(&text, |name| {
            maps.entry(name.to_owned())
                .or_insert_with(|| output::read_symbols(composed, name))
                .as_ref()
        });
        writeln!(out, "{shown}").context("cannot write to stdout")?;
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Text: the first 50 diagnostics on stderr with their source lines, then
/// a count of the rest. JSON: one array on stdout with all of them (empty
/// when there is nothing to say), like `septum validate`.
fn print_diagnostics(
    diagnostics: &[septum_policy::Diagnostic],
    sources: &septum_policy::SourceMap,
    json: bool,
) {
    if json {
        println!("{}", render_json(diagnostics, sources));
    } else {
        for d in diagnostics.iter().take(TEXT_LIMIT) {
            eprintln!("{}", render_text(d, sources).trim_end());
        }
        if let Some(rest) = diagnostics.get(TEXT_LIMIT..).filter(|r| !r.is_empty()) {
            let errors = rest
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .count();
            eprintln!("{}", omitted_line(errors, rest.len() - errors));
        }
    }
}

fn compose(policy: &Path, binaries: &Path, out: &Path, json: bool) -> Result<ExitCode> {
    let loaded = septum_policy::check(policy);
    let mut diagnostics = loaded.diagnostics.as_slice().to_vec();
    let warnings = loaded.diagnostics.warning_count();
    let Some(model) = loaded.valid_policy() else {
        print_diagnostics(&diagnostics, &loaded.sources, json);
        eprintln!(
            "error: {}, {}",
            plural(loaded.diagnostics.error_count(), "error", "errors"),
            plural(warnings, "warning", "warnings")
        );
        return Ok(ExitCode::FAILURE);
    };
    if !binaries.is_dir() {
        print_diagnostics(&diagnostics, &loaded.sources, json);
        bail!("binaries directory {} does not exist", binaries.display());
    }
    let composed = match septum_compose::compose_policy_with_sources(
        model,
        &loaded.sources,
        &BinaryDir(binaries),
    ) {
        Ok(c) => c,
        Err(Failure::Policy(errors)) => {
            let count = errors.len();
            diagnostics.extend(errors);
            print_diagnostics(&diagnostics, &loaded.sources, json);
            eprintln!(
                "error: {}, {}",
                plural(count, "error", "errors"),
                plural(warnings, "warning", "warnings")
            );
            return Ok(ExitCode::FAILURE);
        }
        Err(Failure::Compose(message)) => {
            print_diagnostics(&diagnostics, &loaded.sources, json);
            bail!("cannot compose {}: {message}", policy.display())
        }
    };
    diagnostics.extend(composed.warnings.iter().cloned());
    print_diagnostics(&diagnostics, &loaded.sources, json);
    output::write_dir(out, &composed.composition, &composed.spec)
        .and_then(|()| output::write_symbols(out, &composed.symbols))
        .with_context(|| format!("cannot write the composed system to {}", out.display()))?;
    let c = &composed.composition;
    let bytes: u64 = c.regions.iter().map(|r| r.size).sum();
    let line = format!(
        "composed \"{}\": {} subjects, {} regions ({} KiB) -> {}",
        c.name,
        c.subjects.len(),
        c.regions.len(),
        bytes / 1024,
        out.display()
    );
    // Keep stdout a single JSON document in JSON mode.
    if json {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

fn pack_cmd(composed: &Path, kernel: &Path, out: &Path, iso: Option<&Path>) -> Result<ExitCode> {
    let (regions, blob) = output::read_regions(composed)?;
    let kernel_bytes = std::fs::read(kernel)
        .with_context(|| format!("cannot read kernel {}", kernel.display()))?;
    let elf = pack::pack(
        &kernel.display().to_string(),
        &kernel_bytes,
        &regions,
        &blob,
    )?;
    std::fs::write(out, &elf).with_context(|| format!("cannot write {}", out.display()))?;
    println!("packed {} ({} bytes)", out.display(), elf.len());
    if let Some(iso) = iso {
        let work = iso.with_extension("isodir");
        pack::make_iso(out, iso, &work)?;
        println!("wrote {}", iso.display());
    }
    Ok(ExitCode::SUCCESS)
}
