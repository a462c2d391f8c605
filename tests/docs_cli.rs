//! `completions SHELL` and `man`: generated from the clap definitions, loaded by the real shell
//! (bash) and rendered by the real roff formatter (groff or man).

mod common;

use common::bin;
use std::process::Command;

fn out(args: &[&str]) -> String {
    let o = Command::new(bin()).args(args).output().expect("runs");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).expect("utf-8")
}

#[test]
fn bash_completion_loads_in_bash_and_completes_subcommands() {
    let script = format!(
        "source <('{}' completions bash) && complete -p leak-sentinel && \
         COMP_WORDS=(leak-sentinel sc) COMP_CWORD=1 COMP_LINE='leak-sentinel sc' COMP_POINT=16 && \
         _leak__sentinel leak-sentinel sc leak-sentinel && printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        bin().display()
    );
    let o = Command::new("bash")
        .args(["-c", &script])
        .output()
        .expect("bash");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        text.contains("complete") && text.contains("leak-sentinel"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l == "scan"),
        "`sc<TAB>` completes scan: {text}"
    );
    assert!(text.lines().any(|l| l == "schedule"), "{text}");
}

#[test]
fn zsh_and_fish_completions_name_the_subcommands_and_flags() {
    for shell in ["zsh", "fish"] {
        let s = out(&["completions", shell]);
        assert!(!s.is_empty(), "{shell}");
        for word in [
            "run",
            "scan",
            "analyze",
            "resume",
            "junit",
            "summary-md",
            "max-points-total",
        ] {
            assert!(s.contains(word), "{shell} completion mentions {word}");
        }
    }
    let o = Command::new(bin())
        .args(["completions", "tcsh"])
        .output()
        .expect("runs");
    assert_eq!(
        o.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

/// Renders roff with groff (warnings on) or `man -l`; fails on any warning or error.
fn render_roff(path: &std::path::Path) -> String {
    let o = if Command::new("groff").arg("-v").output().is_ok() {
        Command::new("groff")
            .args(["-Tutf8", "-man", "-ww", "-z"])
            .arg(path)
            .output()
            .expect("groff")
    } else {
        Command::new("man")
            .arg("-l")
            .arg(path)
            .env("MANWIDTH", "100")
            .env("MAN_KEEP_FORMATTING", "0")
            .output()
            .expect("man -l (or groff) is installed")
    };
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(
        o.status.success() && err.trim().is_empty(),
        "{}: {err}",
        path.display()
    );
    Command::new("groff")
        .args(["-Tutf8", "-man"])
        .arg(path)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default()
}

#[test]
fn man_pages_are_valid_roff_one_per_subcommand() {
    let dir = tempfile::tempdir().expect("tempdir");
    let main = dir.path().join("stdout.1");
    std::fs::write(&main, out(&["man"])).expect("write");
    let text = render_roff(&main);
    assert!(
        text.contains("NAME") && text.contains("leak-sentinel"),
        "{text}"
    );
    assert!(
        text.contains("scan") && text.contains("completions"),
        "{text}"
    );
    let pages = dir.path().join("man1");
    std::fs::create_dir(&pages).expect("mkdir");
    out(&["man", "-o", pages.to_str().expect("utf-8")]);
    let mut names: Vec<String> = std::fs::read_dir(&pages)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for want in [
        "leak-sentinel.1",
        "leak-sentinel-run.1",
        "leak-sentinel-scan.1",
        "leak-sentinel-schedule-create.1",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    assert!(
        !names.iter().any(|n| n.contains("workload")),
        "hidden commands have no page"
    );
    for n in &names {
        render_roff(&pages.join(n));
    }
    let run = render_roff(&pages.join("leak-sentinel-run.1"));
    assert!(run.contains("JUnit XML test report"), "{run}");
    let roff = std::fs::read_to_string(pages.join("leak-sentinel-run.1")).expect("read");
    assert!(roff.contains("junit") && roff.contains("summary"), "{roff}");
    // -o into a missing directory: one line, exit 2.
    let o = Command::new(bin())
        .args(["man", "-o", "/no/such/dir"])
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(2));
}

/// The documents a newcomer reads are whole: no merge left its conflict markers in them, and every
/// link into the README's own sections points at a heading that exists.
#[test]
fn readme_and_changelog_have_no_conflict_markers_and_no_dangling_section_links() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for name in ["README.md", "CHANGELOG.md"] {
        let text = std::fs::read_to_string(root.join(name)).expect("read the document");
        for (i, line) in text.lines().enumerate() {
            let marker = ["<<<<<<< ", ">>>>>>> ", "======="]
                .iter()
                .any(|m| line.starts_with(m) && (m.ends_with(' ') || line.trim_end() == *m));
            assert!(!marker, "{name}:{}: conflict marker {line:?}", i + 1);
        }
    }
    let readme = std::fs::read_to_string(root.join("README.md")).expect("read README");
    let anchors: std::collections::HashSet<String> = readme
        .lines()
        .filter(|l| l.starts_with('#') && l.contains("# "))
        .map(|l| {
            l.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == '-' || *c == ' ' || *c == '_')
                .map(|c| if c == ' ' { '-' } else { c })
                .collect()
        })
        .collect();
    let mut rest = readme.as_str();
    while let Some(at) = rest.find("](#") {
        let tail = &rest[at + 3..];
        let end = tail.find(')').expect("a closed link");
        let anchor = &tail[..end];
        assert!(
            anchors.contains(anchor),
            "README links to a missing section #{anchor}"
        );
        rest = &tail[end..];
    }
    for section in [
        "## Prometheus, Grafana, webhooks",
        "## Config file",
        "## Baselines",
    ] {
        assert!(
            readme.contains(section),
            "README lost its section {section:?}"
        );
    }
}
