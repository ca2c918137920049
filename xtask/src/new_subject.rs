//! `cargo xtask new-subject NAME`: a new native subject crate that builds.
//!
//! A subject crate is small, but its `Cargo.toml` has sections that are
//! easy to get wrong by hand (the `[[bin]]` without test harness, the
//! fields and lints inherited from the subjects workspace, the SDK
//! dependency), and it must be a member of `subjects/Cargo.toml`. The
//! generator copies the annotated template in `xtask/templates/subject/`
//! (embedded at compile time) with the name filled in. [`generate`] is
//! pure file work on a given `subjects/` directory, checked before it
//! writes anything, so a refused name leaves no trace and the host tests
//! run it in a scratch directory; [`command`] then builds the new crate
//! so the user ends with an ELF a policy can name (`binary="NAME"`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::pipeline::Paths;
use crate::util::{self, Error, Output};

/// The template's `Cargo.toml`; `@NAME@` is the subject's name.
const CARGO_TEMPLATE: &str = include_str!("../templates/subject/Cargo.toml.template");
/// The template's `src/main.rs`.
const MAIN_TEMPLATE: &str = include_str!("../templates/subject/main.rs.template");

/// Names a subject crate may not have: Rust keywords and names cargo or the
/// toolchain reserve for crates or target directories.
const RESERVED: &[&str] = &[
    "as",
    "async",
    "await",
    "break",
    "const",
    "continue",
    "crate",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "fn",
    "for",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "match",
    "mod",
    "move",
    "mut",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "type",
    "unsafe",
    "use",
    "where",
    "while",
    "abstract",
    "become",
    "box",
    "do",
    "final",
    "gen",
    "macro",
    "override",
    "priv",
    "try",
    "typeof",
    "unsized",
    "virtual",
    "yield",
    "core",
    "std",
    "alloc",
    "proc_macro",
    "test",
    "build",
    "deps",
    "examples",
    "incremental",
];

/// Longest name accepted (a subject's name also appears in policies and
/// serial output).
const MAX_NAME: usize = 48;

/// Checks `name` as a subject crate (and binary) name: a lowercase ASCII
/// letter, then lowercase letters, digits or `_`; not reserved; not the
/// SDK's prefix. The message says what is wrong and what would do.
pub fn check_name(name: &str) -> Result<(), Error> {
    let hint = "a subject name is a lowercase letter followed by lowercase letters, \
                digits or `_` (e.g. `sensor` or `display_2`)";
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Err(format!("new-subject needs a NAME: {hint}").into());
    };
    if !first.is_ascii_lowercase() {
        return Err(format!("`{name}` is not a valid subject name: {hint}").into());
    }
    if let Some(bad) = chars.find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        return Err(format!(
            "`{name}` is not a valid subject name (`{bad}` is not allowed): {hint}"
        )
        .into());
    }
    if name.len() > MAX_NAME {
        return Err(format!("`{name}` is longer than {MAX_NAME} characters").into());
    }
    if RESERVED.contains(&name) {
        return Err(
            format!("`{name}` is a Rust keyword or a name cargo reserves; choose another").into(),
        );
    }
    if name.starts_with("septum") {
        return Err(format!("`{name}`: names starting with `septum` are the project's own").into());
    }
    Ok(())
}

/// `text` (the subjects workspace manifest) with `"name"` appended to
/// `members`, keeping every comment and the layout.
fn add_member(text: &str, name: &str) -> Result<String, Error> {
    let not_found = "subjects/Cargo.toml has no `members = [ ... ]` list in [workspace]";
    let start = text.find("members = [").ok_or(not_found)?;
    let close = text
        .get(start..)
        .and_then(|rest| rest.find(']'))
        .map(|i| start + i)
        .ok_or(not_found)?;
    let before = text.get(..close).ok_or(not_found)?;
    let after = text.get(close..).ok_or(not_found)?;
    // One line per member, as the file lists them.
    let mut out = before.trim_end().to_owned();
    if !out.ends_with('[') && !out.ends_with(',') {
        out.push(',');
    }
    out.push_str(&format!("\n    \"{name}\",\n"));
    out.push_str(after);
    // The result must still be a manifest listing the new member.
    let parsed: toml::Table =
        toml::from_str(&out).map_err(|e| format!("subjects/Cargo.toml after the edit: {e}"))?;
    let listed = parsed
        .get("workspace")
        .and_then(|w| w.get("members"))
        .and_then(|m| m.as_array())
        .is_some_and(|m| m.iter().any(|v| v.as_str() == Some(name)));
    if !listed {
        return Err(format!("could not add `{name}` to the members of subjects/Cargo.toml").into());
    }
    Ok(out)
}

/// Whether the workspace manifest already lists `name` as a member.
fn is_member(text: &str, name: &str) -> bool {
    toml::from_str::<toml::Table>(text)
        .ok()
        .and_then(|t| {
            t.get("workspace")?
                .get("members")?
                .as_array()
                .map(|m| m.iter().any(|v| v.as_str() == Some(name)))
        })
        .unwrap_or(false)
}

/// Creates `subjects/NAME/{Cargo.toml,src/main.rs}` under `subjects` and
/// adds the crate to `subjects/Cargo.toml`. Nothing is written if the name
/// is invalid or taken. Returns the new crate's directory.
pub fn generate(subjects: &Path, name: &str) -> Result<PathBuf, Error> {
    check_name(name)?;
    let dir = subjects.join(name);
    if dir.exists() {
        return Err(format!(
            "{} already exists: choose another name (or remove it first)",
            dir.display()
        )
        .into());
    }
    let manifest = subjects.join("Cargo.toml");
    let text = fs::read_to_string(&manifest)
        .map_err(|e| format!("cannot read {}: {e}", manifest.display()))?;
    if is_member(&text, name) {
        return Err(format!(
            "`{name}` is already a member of {} (but has no directory)",
            manifest.display()
        )
        .into());
    }
    let new_manifest = add_member(&text, name)?;
    let write = |path: &Path, text: &str| {
        fs::write(path, text).map_err(|e| Error(format!("cannot write {}: {e}", path.display())))
    };
    util::create_dir(&dir.join("src"))?;
    write(
        &dir.join("Cargo.toml"),
        &CARGO_TEMPLATE.replace("@NAME@", name),
    )?;
    write(
        &dir.join("src").join("main.rs"),
        &MAIN_TEMPLATE.replace("@NAME@", name),
    )?;
    write(&manifest, &new_manifest)?;
    Ok(dir)
}

/// The command that builds subject `name` in the workspace `subjects`
/// into `target_dir`.
fn build_command(subjects: &Path, name: &str, target_dir: &Path) -> std::process::Command {
    let mut cmd = util::cargo(subjects);
    cmd.env_remove("CARGO_TARGET_DIR");
    cmd.args(["build", "--release", "-p", name, "--target-dir"])
        .arg(target_dir);
    cmd
}

/// `cargo xtask new-subject NAME`.
pub fn command(paths: &Paths, args: &[String]) -> Result<ExitCode, Error> {
    let name = match args {
        [name] if !name.starts_with('-') => name,
        [] => {
            return Err("new-subject needs a NAME (e.g. `cargo xtask new-subject sensor`)".into());
        }
        _ => return Err("new-subject takes exactly one NAME".into()),
    };
    let subjects = paths.root.join("subjects");
    let dir = generate(&subjects, name)?;
    eprintln!(
        "xtask: created {} and added it to subjects/Cargo.toml",
        dir.display()
    );
    util::run(
        &mut build_command(&subjects, name, &paths.subjects_target()),
        Output::Inherit,
    )?;
    println!("{}", paths.subject_binaries().join(name).display());
    eprintln!(
        "xtask: next: give a policy a <subject name=\"...\" profile=\"native\" binary=\"{name}\"> \
         with a `uart` device and a `yield` event (docs/policy.md), then `cargo xtask run POLICY.xml`"
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch `subjects/` holding a copy of the real workspace manifest.
    fn scratch(tag: &str) -> PathBuf {
        let paths = Paths::discover().unwrap();
        let dir = std::env::temp_dir()
            .join(format!("xtask-new-subject-{tag}-{}", std::process::id()))
            .join("subjects");
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::copy(
            paths.root.join("subjects").join("Cargo.toml"),
            dir.join("Cargo.toml"),
        )
        .unwrap();
        dir
    }

    #[test]
    fn names_are_checked_with_a_clear_message() {
        for good in ["sensor", "display_2", "a"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for (bad, says) in [
            ("", "needs a NAME"),
            ("Sensor", "not a valid subject name"),
            ("2nd", "not a valid subject name"),
            ("my-sensor", "`-` is not allowed"),
            ("sen sor", "` ` is not allowed"),
            ("../x", "not a valid subject name"),
            ("fn", "Rust keyword"),
            ("build", "reserves"),
            ("septum_sdk", "project's own"),
        ] {
            let err = check_name(bad).unwrap_err();
            assert!(err.0.contains(says), "{bad}: {}", err.0);
        }
        assert!(check_name(&"x".repeat(MAX_NAME + 1)).is_err());
    }

    #[test]
    fn generates_a_member_crate_and_refuses_a_taken_name() {
        let subjects = scratch("gen");
        let before = fs::read_to_string(subjects.join("Cargo.toml")).unwrap();
        let dir = generate(&subjects, "sensor").unwrap();
        assert_eq!(dir, subjects.join("sensor"));

        let manifest = fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        let parsed: toml::Table = toml::from_str(&manifest).unwrap();
        assert_eq!(parsed["package"]["name"].as_str(), Some("sensor"));
        assert_eq!(parsed["bin"][0]["name"].as_str(), Some("sensor"));
        assert_eq!(parsed["bin"][0]["test"].as_bool(), Some(false));
        assert!(parsed["dependencies"].get("septum-sdk").is_some());
        assert_eq!(parsed["lints"]["workspace"].as_bool(), Some(true));
        let main = fs::read_to_string(dir.join("src/main.rs")).unwrap();
        assert!(main.contains("septum_sdk::entry!(main);"), "{main}");
        assert!(main.contains(r#"no device \"uart\""#), "{main}");
        assert!(!main.contains("@NAME@") && !manifest.contains("@NAME@"));

        // The workspace lists it, after the existing members, with its
        // comments intact.
        let after = fs::read_to_string(subjects.join("Cargo.toml")).unwrap();
        assert!(is_member(&after, "sensor"));
        assert!(is_member(&after, "producer"));
        let comments = |t: &str| t.lines().filter(|l| l.starts_with('#')).count();
        assert_eq!(comments(&after), comments(&before));
        assert_eq!(after.lines().count(), before.lines().count() + 1);

        // Taken: the directory exists.
        let err = generate(&subjects, "sensor").unwrap_err();
        assert!(err.0.contains("already exists"), "{}", err.0);
        // Taken: listed without a directory. Nothing is written.
        let err = generate(&subjects, "producer").unwrap_err();
        assert!(err.0.contains("already a member"), "{}", err.0);
        assert!(!subjects.join("producer").exists());
        // Invalid: nothing is written either.
        assert!(generate(&subjects, "Bad").is_err());
        assert!(!subjects.join("Bad").exists());
        assert_eq!(
            fs::read_to_string(subjects.join("Cargo.toml")).unwrap(),
            after
        );
        fs::remove_dir_all(subjects.parent().unwrap()).unwrap();
    }

    #[test]
    fn members_are_added_whatever_the_layout() {
        let one_line = "[workspace]\nmembers = [\"a\", \"b\"]\n";
        let out = add_member(one_line, "c").unwrap();
        assert!(is_member(&out, "a") && is_member(&out, "c"), "{out}");
        let empty = "[workspace]\nmembers = []\n";
        let out = add_member(empty, "c").unwrap();
        assert!(is_member(&out, "c"), "{out}");
        let no_trailing_comma = "[workspace]\nmembers = [\n    \"a\"\n]\n";
        let out = add_member(no_trailing_comma, "c").unwrap();
        assert!(is_member(&out, "a") && is_member(&out, "c"), "{out}");
        assert!(add_member("[package]\nname = \"x\"\n", "c").is_err());
    }

    /// The generated crate builds for the subjects' target and is
    /// rustfmt-clean: a throwaway workspace under `build/` (so the
    /// repository's toolchain file applies) with only the new crate, the
    /// subjects' `.cargo/config.toml` and profile, and the SDK by absolute
    /// path; its own target directory, so it never waits on other builds.
    #[test]
    fn generated_crate_builds() {
        let paths = Paths::discover().unwrap();
        let real = paths.root.join("subjects");
        let work = paths.build.join("new-subject-test");
        let subjects = work.join("subjects");
        let _ = fs::remove_dir_all(&subjects);
        fs::create_dir_all(subjects.join(".cargo")).unwrap();
        fs::copy(
            real.join(".cargo/config.toml"),
            subjects.join(".cargo/config.toml"),
        )
        .unwrap();
        fs::copy(real.join("Cargo.lock"), subjects.join("Cargo.lock")).unwrap();
        let manifest = fs::read_to_string(real.join("Cargo.toml")).unwrap();
        let start = manifest.find("members = [").unwrap();
        let end = start + manifest[start..].find(']').unwrap();
        let manifest = format!("{}members = []{}", &manifest[..start], &manifest[end + 1..])
            .replace("\"../sdk\"", &format!("{:?}", paths.root.join("sdk")))
            .replace(
                "\"../lib/abi\"",
                &format!("{:?}", paths.root.join("lib/abi")),
            );
        fs::write(subjects.join("Cargo.toml"), manifest).unwrap();

        let dir = generate(&subjects, "probe_subject").unwrap();
        let mut build = build_command(&subjects, "probe_subject", &work.join("target"));
        let (ok, text) = util::run_capture(&mut build).unwrap();
        assert!(ok, "{text}");
        let elf = work
            .join("target/x86_64-unknown-none/release")
            .join("probe_subject");
        assert!(elf.is_file(), "{}", elf.display());
        assert!(!text.contains("warning"), "{text}");

        let mut fmt = util::cargo(&dir);
        fmt.args(["fmt", "--check", "--", "--color", "never"]);
        let (ok, text) = util::run_capture(&mut fmt).unwrap();
        assert!(ok, "the template is not rustfmt-clean:\n{text}");
        fs::remove_dir_all(&subjects).unwrap();
    }
}
