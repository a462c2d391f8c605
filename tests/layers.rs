//! The architecture holds: every source file imports only its own layer or layers below it
//! (see the table at the top of `src/lib.rs` and the README's Architecture section), and no
//! files or top-level modules import each other in a circle. Reads the sources; checks the
//! checker on a small tree of its own first, so it can fail.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Layer of each top-level module, lowest first. A module imports only modules of its own
/// layer or below. Keep in sync with `src/lib.rs`.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "core",
        &[
            "units", "exit", "sample", "settings", "detect", "analyze", "gate", "observed",
            "baseline", "compare", "diagnose",
        ],
    ),
    (
        "edges",
        &[
            "clock", "files", "recording", "rundir", "probe", "target", "store", "publish",
            "fleet", "hook", "workload",
        ],
    ),
    ("render", &["render"]),
    ("session", &["session"]),
    ("commands", &["commands", "cli", "config", "schedule"]),
    ("binary", &["main"]),
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

/// Layer violations and import cycles of a tree of `(path under src/, text)`.
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

#[test]
fn the_checker_catches_an_upward_import_and_a_cycle() {
    let t = |files: &[(&str, &str)]| -> Vec<(String, String)> {
        files
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
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
