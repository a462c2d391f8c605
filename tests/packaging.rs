//! The parts of the Debian package kept in the repository: the example systemd units under
//! `packaging/` say what `schedule create --systemd` writes for the schedule their comment
//! creates, `systemd-analyze verify` accepts them with this binary in place of
//! /usr/bin/leak-sentinel, and every asset `[package.metadata.deb]` takes from the repository
//! exists. `.ci/run` builds, installs and checks the package itself.

mod common;

use assert_cmd::prelude::*;
use common::{bin, ls};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The example unit `packaging/NAME` as text.
fn example(name: &str) -> String {
    std::fs::read_to_string(repo().join("packaging").join(name)).expect("read the example unit")
}

/// `Key=value` settings of a unit file, comments left out (a key set twice keeps the last).
fn settings(unit: &str) -> BTreeMap<String, String> {
    unit.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Words with every existing path made canonical, so that a link in the temporary or target
/// directory's path does not make two spellings of one file differ.
fn canonical(words: &[String]) -> Vec<String> {
    words
        .iter()
        .map(|w| match std::fs::canonicalize(w) {
            Ok(p) if w.starts_with('/') => p.display().to_string(),
            _ => w.clone(),
        })
        .collect()
}

/// The installed binary's path and state directory of the example service.
const INSTALLED_BIN: &str = "/usr/bin/leak-sentinel";
const INSTALLED_STATE: &str = "/var/lib/leak-sentinel";

#[test]
fn example_units_match_what_schedule_create_writes_for_their_schedule() {
    // The schedule of the service's comment: nightly at 03:00, at most 7 h.
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let units = dir.path().join("units");
    ls(&state)
        .args(["schedule", "create", "nightly", "--cron", "0 3 * * *"])
        .args(["--timeout", "7h", "--systemd"])
        .arg(&units)
        .args(["--", "true"])
        .assert()
        .success();
    let made = |ext: &str| {
        settings(
            &std::fs::read_to_string(units.join(format!("leak-sentinel-nightly.{ext}")))
                .expect("schedule create --systemd wrote the unit"),
        )
    };
    let (service, timer) = (made("service"), made("timer"));
    let (ex_service, ex_timer) = (
        settings(&example("leak-sentinel@.service")),
        settings(&example("leak-sentinel@.timer")),
    );

    // ExecStart: the same words once the instance is `nightly` and the paths are this test's.
    let state_text = state.display().to_string();
    let bin_text = bin().display().to_string();
    let example_words: Vec<String> = ex_service["ExecStart"]
        .split_whitespace()
        .map(|w| match w {
            INSTALLED_BIN => bin_text.clone(),
            INSTALLED_STATE => state_text.clone(),
            "%i" => "nightly".to_string(),
            other => other.to_string(),
        })
        .collect();
    let made_words: Vec<String> = service["ExecStart"]
        .split("\" \"")
        .map(|w| w.trim_matches('"').to_string())
        .collect();
    assert_eq!(canonical(&example_words), canonical(&made_words));

    // The backstop: the timeout + 5 minutes, as `schedule create` computes it.
    let example_max = humantime::parse_duration(&ex_service["RuntimeMaxSec"])
        .expect("RuntimeMaxSec is a time span");
    assert_eq!(
        example_max.as_secs().to_string(),
        service["RuntimeMaxSec"],
        "RuntimeMaxSec"
    );
    for key in ["Type", "After"] {
        assert_eq!(ex_service.get(key), service.get(key), "{key}=");
    }
    for key in ["OnCalendar", "Persistent", "WantedBy"] {
        assert_eq!(ex_timer.get(key), timer.get(key), "{key}=");
    }
}

#[test]
fn example_units_pass_systemd_analyze_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    // verify checks that ExecStart's program exists: this binary stands in for the installed one.
    let exe = leak_sentinel::schedule::systemd_quote(&bin().display().to_string());
    let files: Vec<PathBuf> = ["leak-sentinel@.service", "leak-sentinel@.timer"]
        .iter()
        .map(|name| {
            let text = example(name).replace(INSTALLED_BIN, &exe);
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write the unit");
            path
        })
        .collect();
    // verify also runs `man` for each `Documentation=man:…`: the pages this binary writes.
    let man = dir.path().join("man");
    std::fs::create_dir_all(man.join("man1")).expect("mkdir");
    Command::new(bin())
        .args(["man", "-o"])
        .arg(man.join("man1"))
        .assert()
        .success();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(&files)
        .env("MANPATH", &man)
        .output()
        .expect("systemd-analyze is installed (.ci/run installs systemd)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // A setting systemd cannot parse is only a warning (the setting is ignored): none may name
    // our units. Lines about the host's own units are not ours to judge.
    let ours: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("leak-sentinel@"))
        .collect();
    assert!(ours.is_empty(), "{}", ours.join("\n"));
}

#[test]
fn every_asset_taken_from_the_repository_exists() {
    let manifest: toml::Table = std::fs::read_to_string(repo().join("Cargo.toml"))
        .expect("read Cargo.toml")
        .parse()
        .expect("Cargo.toml is TOML");
    let assets = manifest["package"]["metadata"]["deb"]["assets"]
        .as_array()
        .expect("[package.metadata.deb] lists its assets");
    let mut from_repo = 0;
    for asset in assets {
        let source = asset[0].as_str().expect("an asset's source is a path");
        // target/…: the binary and what packaging/build-deb.sh generates with it.
        if source.starts_with("target/") {
            continue;
        }
        // `docs/*.md`: a glob over one folder, which must match at least one file.
        match source.split_once("/*.") {
            Some((dir, ext)) => {
                let matched = std::fs::read_dir(repo().join(dir))
                    .unwrap_or_else(|e| panic!("asset {source}: {e}"))
                    .filter_map(Result::ok)
                    .filter(|e| e.path().extension().is_some_and(|x| x == ext))
                    .count();
                assert!(matched > 0, "asset {source} matches no file");
            }
            None => assert!(repo().join(source).is_file(), "asset {source} is missing"),
        }
        from_repo += 1;
    }
    assert!(from_repo >= 3, "README and the example units: {assets:?}");
}
