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

/// The anchors GitHub gives a markdown document's headings: lower case, spaces to dashes, and
/// punctuation other than `-` and `_` dropped.
fn anchors(doc: &str) -> std::collections::HashSet<String> {
    doc.lines()
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
        .collect()
}

/// Every markdown link target in a document (`[text](target)`), in order.
fn link_targets(doc: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut rest = doc;
    while let Some(at) = rest.find("](") {
        let tail = &rest[at + 2..];
        let end = tail.find(')').expect("a closed link");
        targets.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    targets
}

/// The documents a newcomer reads are whole: no merge left its conflict markers in them; every
/// link into the repository points at a file that exists and, with `#anchor`, at a heading that
/// exists there; and nothing points outside the repository by a relative path.
#[test]
fn readme_changelog_and_docs_have_no_conflict_markers_and_no_dangling_links() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut docs = vec![root.join("README.md"), root.join("CHANGELOG.md")];
    let mut in_docs: Vec<_> = std::fs::read_dir(root.join("docs"))
        .expect("a docs/ folder")
        .map(|e| e.expect("a docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    in_docs.sort();
    assert!(
        in_docs.len() >= 4,
        "docs/ holds the method, calibration, cost and architecture: {in_docs:?}"
    );
    docs.extend(in_docs);
    for path in &docs {
        let name = path.display();
        let text = std::fs::read_to_string(path).expect("read the document");
        for (i, line) in text.lines().enumerate() {
            let marker = ["<<<<<<< ", ">>>>>>> ", "======="]
                .iter()
                .any(|m| line.starts_with(m) && (m.ends_with(' ') || line.trim_end() == *m));
            assert!(!marker, "{name}:{}: conflict marker {line:?}", i + 1);
        }
        let dir = path.parent().expect("a folder");
        for target in link_targets(&text) {
            if target.starts_with("http://") || target.starts_with("https://") {
                continue;
            }
            let (file, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let linked = if file.is_empty() {
                path.clone()
            } else {
                dir.join(file)
            };
            let linked = linked
                .canonicalize()
                .unwrap_or_else(|e| panic!("{name} links to {target:?}, which is missing: {e}"));
            assert!(
                linked.starts_with(root),
                "{name} links outside the repository: {target:?}"
            );
            if !anchor.is_empty() {
                let doc = std::fs::read_to_string(&linked).expect("read the linked document");
                assert!(
                    anchors(&doc).contains(anchor),
                    "{name} links to a missing section {target:?}"
                );
            }
        }
        assert!(
            !text.contains("../shared"),
            "{name} points at documents outside the repository"
        );
    }
    let readme = std::fs::read_to_string(root.join("README.md")).expect("read README");
    for section in [
        "## Install",
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
