//! The architecture holds: every source file imports only its own layer or layers below it
//! (see the table at the top of `src/lib.rs` and `docs/architecture.md`), no files
//! or top-level modules import each other in a circle, and the core layer is pure: none of its
//! files (their `#[cfg(test)]` modules included) touches the system — files, network,
//! processes, environment, clock, threads, terminal, host time zone, OS entropy — directly or
//! through a crate that does ([`CORE_FORBIDDEN`]). Reads the sources; checks the checker on a
//! small tree of its own first, so it can fail.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Layer of each top-level module, lowest first. A module imports only modules of its own
/// layer or below. Keep in sync with `src/lib.rs`.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "core",
        &[
            "units",
            "exit",
            "sample",
            "settings",
            "detect",
            "analyze",
            "gate",
            "observed",
            "baseline",
            "compare",
            "history",
            "diagnose",
            "attribution",
            "gauges",
            "thinned",
        ],
    ),
    (
        "edges",
        &[
            "clock",
            "files",
            "recording",
            "rundir",
            "probe",
            "target",
            "store",
            "publish",
            "fleet",
            "hook",
            "workload",
            "profiler",
        ],
    ),
    ("render", &["render"]),
    ("session", &["session"]),
    ("commands", &["commands", "cli", "config", "schedule"]),
    ("binary", &["main"]),
];

/// Paths core files may not use (a path matches when it starts with one of these, segment by
/// segment; `use` groups are expanded), with why. The math, parsing and data crates
/// (`serde`, `serde_json`, `thiserror`, `anyhow`, `rand` with a given seed, `rand_distr`,
/// `chrono` dates without the local zone, `csv` over a given reader, `toml`, `humantime`) and
/// `std::io`'s traits and in-memory readers stay allowed: they turn data into data.
const CORE_FORBIDDEN: &[(&str, &str)] = &[
    ("std::fs", "files"),
    ("std::net", "the network"),
    ("std::process", "processes"),
    ("std::env", "the environment"),
    ("std::os", "OS-specific I/O"),
    ("std::thread", "threads and sleeping"),
    ("std::time::Instant", "the clock"),
    ("std::time::SystemTime", "the clock"),
    ("std::time::UNIX_EPOCH", "the clock"),
    ("std::io::stdin", "the terminal"),
    ("std::io::stdout", "the terminal"),
    ("std::io::stderr", "the terminal"),
    ("chrono::Local", "the host's time zone"),
    ("chrono::Utc::now", "the clock"),
    ("rand::rng", "OS entropy"),
    ("rand::thread_rng", "OS entropy"),
    ("rand::rngs::OsRng", "OS entropy"),
    ("rand::rngs::ThreadRng", "OS entropy"),
    ("csv::Reader::from_path", "files"),
    ("rusqlite", "the database"),
    ("procfs", "/proc"),
    ("libc", "system calls"),
    ("nix", "system calls"),
    ("rustix", "system calls"),
    ("signal_hook", "signals"),
    ("ureq", "the network"),
    ("rustls", "the network"),
    ("webpki_root_certs", "the network"),
    ("tiny_http", "the network"),
    ("tempfile", "files"),
    ("indicatif", "the terminal"),
];

/// Names core files may not mention even without a path (an alias such as `use std::time as t`
/// would hide `t::Instant` from the path check), and the printing macros.
const CORE_FORBIDDEN_WORDS: &[(&str, &str)] = &[
    ("Instant", "the clock"),
    ("SystemTime", "the clock"),
    ("println!", "the terminal"),
    ("print!", "the terminal"),
    ("eprintln!", "the terminal"),
    ("eprint!", "the terminal"),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, ms)| ms.contains(&module))
}

/// Module path of a source file relative to `src/` (`session/check.rs` → [session, check]).
fn module_path(rel: &str) -> Vec<String> {
    let rel = rel.trim_end_matches(".rs");
    let mut parts: Vec<String> = rel.split('/').map(str::to_string).collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts.len() == 1 && parts[0] == "lib" {
        parts.clear();
    }
    parts
}

/// Every `crate::…` / `super::…` path a file uses, as absolute module paths. `use` groups
/// (`use crate::{a, b::c}`) are expanded one level.
fn imports(rel: &str, text: &str) -> Vec<Vec<String>> {
    let me = module_path(rel);
    let is_mod_file = rel.ends_with("mod.rs") || rel == "lib.rs" || rel == "main.rs";
    // The module `super` names: the parent of this module (mod.rs files are their folder).
    let parent: Vec<String> = if is_mod_file || me.is_empty() {
        me.iter()
            .take(me.len().saturating_sub(1))
            .cloned()
            .collect()
    } else {
        me[..me.len() - 1].to_vec()
    };
    let mut out = Vec::new();
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let bytes = code.as_bytes();
    for (root, base) in [("crate::", Vec::new()), ("super::", parent.clone())] {
        let mut from = 0;
        while let Some(i) = code[from..].find(root) {
            let at = from + i;
            from = at + root.len();
            // Skip identifiers that merely end in "crate"/"super" (e.g. `my_crate::`).
            if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
                continue;
            }
            let rest = &code[from..];
            if let Some(group) = rest.strip_prefix('{') {
                // `use crate::{a::b, c}`: the first segment of each top-level item.
                let mut depth = 0;
                let mut item = String::new();
                for ch in group.chars() {
                    match ch {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            push_path(&mut out, &base, &item);
                            item.clear();
                            continue;
                        }
                        _ => {}
                    }
                    if depth == 0 {
                        item.push(ch);
                    }
                }
                push_path(&mut out, &base, &item);
            } else {
                let path: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                push_path(&mut out, &base, &path);
            }
        }
    }
    out
}

fn push_path(out: &mut Vec<Vec<String>>, base: &[String], item: &str) {
    let segs: Vec<String> = item
        .trim()
        .split("::")
        .map(|s| s.trim().to_string())
        .take_while(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .collect();
    if segs.first().is_some_and(|s| s == "self") || (segs.is_empty() && base.is_empty()) {
        return;
    }
    let mut p = base.to_vec();
    p.extend(segs);
    if !p.is_empty() {
        out.push(p);
    }
}

/// The file a module path lands in: the longest prefix that is a file of the tree.
fn resolve(files: &BTreeSet<Vec<String>>, path: &[String]) -> Option<Vec<String>> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| files.contains(p))
}

/// Rust text with comments, string literals and char literals blanked out (kept as spaces, so
/// what remains is code only): a message or a doc line naming `std::fs` is no use of it.
fn code_only(text: &str) -> String {
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < c.len() {
        let rest = |k: usize| c.get(i + k).copied();
        if c[i] == '/' && rest(1) == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if c[i] == '/' && rest(1) == Some('*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if c[i] == 'r'
            && (rest(1) == Some('"') || rest(1) == Some('#'))
            && (i == 0 || !ident(c[i - 1]) || (c[i - 1] == 'b' && (i < 2 || !ident(c[i - 2]))))
        {
            // A raw string r"…" or r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if c.get(j) != Some(&'"') {
                out.push(c[i]);
                i += 1;
                continue;
            }
            j += 1;
            while j < c.len() {
                if c[j] == '"' && (1..=hashes).all(|h| c.get(j + h) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            i = j;
            out.push_str("\"\"");
        } else if c[i] == '"' {
            i += 1;
            while i < c.len() && c[i] != '"' {
                i += if c[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if c[i] == '\'' && rest(1) == Some('\\') {
            // '\n', '\'', '\\', '\u{…}'
            i += 3;
            while i < c.len() && c[i] != '\'' {
                i += 1;
            }
            i += 1;
            out.push_str("' '");
        } else if c[i] == '\'' && rest(2) == Some('\'') {
            i += 3;
            out.push_str("' '");
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// Every path of two or more segments in `code` (`a::b::c`, a leading `::` dropped), with
/// `use` groups expanded (`std::{fs, time::Instant}` → `std::fs`, `std::time::Instant`).
fn paths(code: &str) -> Vec<String> {
    let c: Vec<char> = code.chars().collect();
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        // A path's later segments are consumed with it, so an identifier after `::` here
        // starts a path (`::std::fs`).
        if ident(c[i]) && (i == 0 || !ident(c[i - 1])) {
            expand(&c, &mut i, String::new(), &mut out);
        } else {
            i += 1;
        }
    }
    out.retain(|p| p.contains("::"));
    out
}

/// Reads the path at `c[*i]` onto `prefix`, pushing each full path (and recursing into groups).
fn expand(c: &[char], i: &mut usize, prefix: String, out: &mut Vec<String>) {
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut path = prefix;
    loop {
        while *i < c.len() && c[*i].is_whitespace() {
            *i += 1;
        }
        let start = *i;
        while *i < c.len() && ident(c[*i]) {
            *i += 1;
        }
        let segment: String = c[start..*i].iter().collect();
        let mut j = *i;
        while j < c.len() && c[j].is_whitespace() {
            j += 1;
        }
        // `use ::std::fs`: a keyword before a leading `::` is no segment of the path.
        const KEYWORDS: &[&str] = &[
            "use", "pub", "as", "in", "let", "return", "mut", "ref", "dyn", "impl", "for", "where",
        ];
        if path.is_empty() && KEYWORDS.contains(&segment.as_str()) {
            if c.get(j) == Some(&':') && c.get(j + 1) == Some(&':') {
                *i = j + 2;
                continue;
            }
            return;
        }
        path.push_str(&segment);
        if c.get(j) == Some(&':') && c.get(j + 1) == Some(&':') {
            *i = j + 2;
            path.push_str("::");
            while *i < c.len() && c[*i].is_whitespace() {
                *i += 1;
            }
            if c.get(*i) == Some(&'{') {
                *i += 1;
                loop {
                    while *i < c.len() && (c[*i].is_whitespace() || c[*i] == ',') {
                        *i += 1;
                    }
                    match c.get(*i) {
                        None => return,
                        Some('}') => {
                            *i += 1;
                            return;
                        }
                        Some(ch) if ident(*ch) => expand(c, i, path.clone(), out),
                        Some(_) => *i += 1,
                    }
                }
            }
            if !c.get(*i).is_some_and(|ch| ident(*ch)) {
                out.push(path.trim_end_matches("::").to_string());
                return;
            }
        } else {
            out.push(path);
            return;
        }
    }
}

/// Uses of the system in a core file: forbidden paths and words, one line each.
fn impurities(rel: &str, text: &str) -> Vec<String> {
    let code = code_only(text);
    let mut found = BTreeSet::new();
    for p in paths(&code) {
        let p = p.trim_end_matches("::self");
        for (bad, what) in CORE_FORBIDDEN {
            if p == *bad || p.starts_with(&format!("{bad}::")) {
                found.insert(format!(
                    "{rel} (core) uses {p} ({what}): core takes data, the edges touch the system"
                ));
            }
        }
    }
    let c: Vec<char> = code.chars().collect();
    for (word, what) in CORE_FORBIDDEN_WORDS {
        let w: Vec<char> = word.chars().collect();
        let ident = |ch: &char| ch.is_alphanumeric() || *ch == '_';
        let hit = (0..c.len().saturating_sub(w.len() - 1)).any(|i| {
            c[i..i + w.len()] == w[..]
                && (i == 0 || !ident(&c[i - 1]))
                && (word.ends_with('!') || c.get(i + w.len()).is_none_or(|n| !ident(n)))
        });
        if hit {
            found.insert(format!(
                "{rel} (core) uses {word} ({what}): core takes data, the edges touch the system"
            ));
        }
    }
    found.into_iter().collect()
}

/// Layer violations, import cycles and impure core files of a tree of `(path under src/, text)`.
fn check(tree: &[(String, String)]) -> Vec<String> {
    let files: BTreeSet<Vec<String>> = tree.iter().map(|(r, _)| module_path(r)).collect();
    let mut problems = Vec::new();
    let mut file_edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    let mut top_edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, text) in tree {
        let me = module_path(rel);
        let my_top = if rel == "main.rs" {
            "main".to_string()
        } else {
            me.first().cloned().unwrap_or_default()
        };
        if my_top.is_empty() {
            continue; // lib.rs declares the modules and imports nothing
        }
        let Some(my_layer) = layer_of(&my_top) else {
            problems.push(format!("{rel}: module '{my_top}' has no layer in LAYERS"));
            continue;
        };
        if my_layer == 0 {
            problems.extend(impurities(rel, text));
        }
        for imp in imports(rel, text) {
            let top = &imp[0];
            if *top == my_top {
                if let Some(f) = resolve(&files, &imp) {
                    if f != me {
                        file_edges.entry(me.clone()).or_default().insert(f);
                    }
                }
                continue;
            }
            match layer_of(top) {
                Some(l) if l > my_layer => problems.push(format!(
                    "{rel} ({}) imports {} ({}): a lower layer must not import a higher one",
                    LAYERS[my_layer].0,
                    imp.join("::"),
                    LAYERS[l].0
                )),
                Some(_) => {
                    top_edges
                        .entry(my_top.clone())
                        .or_default()
                        .insert(top.clone());
                    if let Some(f) = resolve(&files, &imp) {
                        file_edges.entry(me.clone()).or_default().insert(f);
                    }
                }
                None => {} // an external crate or a std path written as crate-relative
            }
        }
    }
    problems.extend(
        cycles(&top_edges)
            .into_iter()
            .map(|c| format!("module cycle: {c}")),
    );
    let file_edges: BTreeMap<String, BTreeSet<String>> = file_edges
        .into_iter()
        .map(|(k, v)| (k.join("::"), v.into_iter().map(|p| p.join("::")).collect()))
        .collect();
    problems.extend(
        cycles(&file_edges)
            .into_iter()
            .map(|c| format!("file cycle: {c}")),
    );
    problems
}

/// One description per strongly connected group of more than one node (DFS over each node).
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut found = BTreeSet::new();
    for start in edges.keys() {
        // Nodes reachable from `start`; a cycle through `start` exists when one leads back.
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((n, path)) = stack.pop() {
            for next in edges.get(&n).into_iter().flatten() {
                if next == start {
                    let mut c = path.clone();
                    let min = c.iter().min().cloned().unwrap_or_default();
                    let pos = c.iter().position(|x| *x == min).unwrap_or(0);
                    c.rotate_left(pos);
                    found.insert(c.join(" → "));
                } else if seen.insert(next.clone()) {
                    let mut p = path.clone();
                    p.push(next.clone());
                    stack.push((next.clone(), p));
                }
            }
        }
    }
    found.into_iter().collect()
}

fn source_tree(src: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("read src") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let rel = p
                    .strip_prefix(src)
                    .expect("under src")
                    .to_string_lossy()
                    .into_owned();
                out.push((rel, std::fs::read_to_string(&p).expect("read file")));
            }
        }
    }
    out.sort();
    out
}

/// A tree of `(path under src/, text)` for the checker's own tests.
fn t(files: &[(&str, &str)]) -> Vec<(String, String)> {
    files
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn the_checker_catches_an_upward_import_and_a_cycle() {
    let good = t(&[
        ("gate.rs", "use crate::detect::Verdict;"),
        ("session/mod.rs", "mod driver; pub use driver::run;"),
        (
            "session/driver.rs",
            "use crate::gate::judge_run; use super::view::View;",
        ),
        ("session/view.rs", "use crate::{sample::Metric, settings};"),
    ]);
    assert_eq!(check(&good), Vec::<String>::new());
    let up = t(&[("gate.rs", "use crate::{detect, session::driver::Session};")]);
    let p = check(&up);
    assert!(
        p.iter()
            .any(|x| x.contains("gate.rs (core) imports session::driver::Session")),
        "{p:?}"
    );
    let circle = t(&[
        ("session/driver.rs", "use super::check::x;"),
        ("session/check.rs", "use super::driver::Session;"),
        ("store/mod.rs", "use crate::target::T;"),
        ("target.rs", "use crate::store::Store;"),
    ]);
    let p = check(&circle);
    assert!(
        p.iter()
            .any(|x| x.starts_with("file cycle: session::check")),
        "{p:?}"
    );
    assert!(
        p.iter().any(|x| x == "module cycle: store → target"),
        "{p:?}"
    );
}

#[test]
fn the_checker_catches_a_core_file_that_touches_the_system() {
    // Pure: Duration, io traits over given bytes, serde; a message, a comment and a doc line
    // that name I/O; a lifetime and char literals; and an edge that does I/O.
    let good = t(&[
        (
            "analyze.rs",
            r##"//! Reads nothing: `recording` uses std::fs and calls Instant::now().
use std::io::{BufRead, Read};
use std::time::Duration;
use serde::Serialize;
/* std::process::exit(1) */
fn f<'a>(r: impl Read, s: &'a str) -> &'a str {
    let _ = ('"', '\'', "std::env::var(\"X\")", r"println!()", r#"std::fs"#);
    let _ = Duration::from_secs(1); // SystemTime::now()
    let instantly = 1; let _ = instantly;
    s
}"##,
        ),
        (
            "store/mod.rs",
            "use rusqlite::Connection; use std::{fs, time::Instant};",
        ),
    ]);
    assert_eq!(check(&good), Vec::<String>::new());
    let bad = t(&[
        ("analyze.rs", "use std::{fs::File, io::Read};"),
        ("analyze/peers.rs", "fn p() -> u64 { procfs::page_size() }"),
        ("gate.rs", "use std::time::{Duration, Instant};"),
        ("units.rs", "fn z() { let _ = chrono::Local::now(); }"),
        (
            "detect/mod.rs",
            "use ::std::process; use std :: env :: var;",
        ),
        (
            "diagnose/fds.rs",
            "use std::time as t; fn f() { t::SystemTime::now(); }",
        ),
        ("baseline.rs", "fn f() { eprintln!(\"x\"); }"),
        ("compare.rs", "use rusqlite::{self, Connection};"),
    ]);
    let p = check(&bad);
    for needle in [
        "analyze.rs (core) uses std::fs::File (files)",
        "analyze/peers.rs (core) uses procfs::page_size (/proc)",
        "gate.rs (core) uses std::time::Instant (the clock)",
        "units.rs (core) uses chrono::Local::now (the host's time zone)",
        "detect/mod.rs (core) uses std::process (processes)",
        "detect/mod.rs (core) uses std::env::var (the environment)",
        "diagnose/fds.rs (core) uses SystemTime (the clock)",
        "baseline.rs (core) uses eprintln! (the terminal)",
        "compare.rs (core) uses rusqlite (the database)",
    ] {
        assert!(p.iter().any(|x| x.starts_with(needle)), "{needle}: {p:#?}");
    }
    assert!(
        !p.iter()
            .any(|x| x.contains("std::io::Read") || x.contains("Duration")),
        "{p:#?}"
    );
}

#[test]
fn layers_point_one_way_and_nothing_imports_in_a_circle() {
    let tree = source_tree(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(tree.len() > 40, "found the sources");
    let problems = check(&tree);
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn every_module_of_lib_rs_has_a_layer() {
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs"))
        .expect("lib.rs");
    for line in lib.lines() {
        if let Some(m) = line
            .strip_prefix("pub mod ")
            .and_then(|r| r.strip_suffix(';'))
        {
            assert!(layer_of(m).is_some(), "module '{m}' of lib.rs has no layer");
        }
    }
}
