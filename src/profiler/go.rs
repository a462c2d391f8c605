//! Go targets, through the heap profile they serve themselves (`import _ "net/http/pprof"`):
//! `run --pprof URL` names it, and a snapshot is one GET of `URL?debug=1` — the legacy text
//! form of the profile (no gzip, no protobuf), bounded in time (the attribution time limit) and
//! size ([`super::MAX_OUTPUT`]). Its `inuse` counts are summed by allocation site (the first
//! frame of each stack outside the Go runtime) after scaling each record up from the sampled
//! allocations it stands for, as Go's own protobuf writer does ([`scale`]).
//!
//! A read changes nothing in the target: the runtime samples allocations all the time (one
//! every 512 KiB on average, `runtime.MemProfileRate`) whether anyone reads the profile or not.
//! What it returns is the heap as of the last completed garbage collection, not of this instant.
//! Any process can be attributed this way, spawned or attached, as long as it serves the URL.

use super::Place;
use crate::attribution::{Entry, bound};
use anyhow::{Result, anyhow};
use std::collections::HashMap;
use std::time::Duration;

/// The mechanism, in the report's words: Go's pprof heap profile, its in-use space.
pub const MECHANISM: &str = "pprof inuse_space";
/// Where `net/http/pprof` serves the heap profile, appended to a base URL.
pub const HEAP_PATH: &str = "/debug/pprof/heap";
/// Records read from one profile. Go lists them largest first (by in-use bytes), so those past
/// the bound are the smallest; a real service has a few thousand.
pub const MAX_RECORDS: usize = 200_000;

/// The heap profile's URL from what the user gave (`--pprof`): a base URL
/// (`http://127.0.0.1:6060`, `…/debug/pprof/`) gets [`HEAP_PATH`]; a URL whose path ends in
/// `/heap` is taken as it is (a service that mounts the handlers elsewhere). http and https
/// only; no query (the sentinel adds `debug=1`), no fragment, no credentials (the URL is stored
/// with the run's settings). The error is one line for the user.
pub fn heap_url(u: &str) -> Result<String, String> {
    let bad = |why: &str| format!("--pprof: '{u}' {why}");
    if u.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("contains white space"));
    }
    let rest = u
        .strip_prefix("http://")
        .or_else(|| u.strip_prefix("https://"))
        .ok_or_else(|| bad("is not an http(s) URL (e.g. http://127.0.0.1:6060)"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if authority.is_empty() || authority.starts_with(':') {
        return Err(bad("has no host"));
    }
    if authority.contains('@') {
        return Err(
            "--pprof: the URL carries credentials, which would be stored with the run: serve the profile on a loopback or private address instead"
                .into(),
        );
    }
    if authority.contains(['?', '#']) || path.contains(['?', '#']) {
        return Err(bad(
            "has a query or fragment; give the base URL (http://HOST:PORT) or the profile's path (…/debug/pprof/heap)",
        ));
    }
    if let Some((_, port)) = authority.rsplit_once(':')
        && !authority.ends_with(']')
        && port.parse::<u16>().is_err()
    {
        return Err(bad("has a port that is not a number from 0 to 65535"));
    }
    let scheme = &u[..u.len() - rest.len()];
    let path = path.trim_end_matches('/');
    let path = if path.is_empty() {
        HEAP_PATH.to_string()
    } else if path.ends_with("/debug/pprof") {
        format!("{path}/heap")
    } else if path.ends_with("/heap") {
        path.to_string()
    } else {
        return Err(bad(
            "is neither a base URL (http://HOST:PORT) nor a heap profile's URL (…/debug/pprof/heap)",
        ));
    };
    Ok(format!("{scheme}{authority}{path}"))
}

/// One snapshot: the heap profile at `place`'s URL, fetched within `limit` and summed by site.
pub fn snapshot(place: &Place, limit: Duration) -> Result<Vec<Entry>> {
    let Some(url) = place.pprof.as_deref() else {
        anyhow::bail!(super::unsupported(crate::diagnose::Runtime::Go));
    };
    let text = fetch(url, place.ca_file.as_deref(), limit)?;
    parse_heap_profile(&text).map_err(|e| anyhow!("{url}: {e}"))
}

/// The text of `URL?debug=1`, at most [`super::MAX_OUTPUT`] bytes (cut after its last complete
/// record when longer: the records come largest first).
fn fetch(url: &str, ca_file: Option<&std::path::Path>, limit: Duration) -> Result<String> {
    use crate::publish::tls;
    let ca = ca_file.map(tls::CaBundle::load).transpose()?;
    let agent = tls::agent(ca.as_ref(), limit);
    let mut resp = agent.get(url).query("debug", "1").call().map_err(|e| {
        match tls::untrusted(&e, url, ca.as_ref()) {
            Some(u) => anyhow::Error::new(u),
            None => match e {
                ureq::Error::Timeout(_) => anyhow!(
                    "{url} did not answer within {}",
                    crate::detect::human_secs(limit.as_secs_f64())
                ),
                e => anyhow!("cannot reach {url}: {e}"),
            },
        }
    })?;
    let status = resp.status().as_u16();
    if status != 200 {
        anyhow::bail!(
            "{url} answered HTTP {status}: does the target serve its heap profile there (import _ \"net/http/pprof\")?"
        );
    }
    let (mut body, over) = tls::body_bounded(&mut resp, super::MAX_OUTPUT)
        .map_err(|e| anyhow!("reading the heap profile from {url}: {e}"))?;
    if over {
        // A record ends with an empty line: what follows the last one is cut short.
        let end = body
            .windows(2)
            .rposition(|w| w == b"\n\n")
            .map_or(0, |i| i + 1);
        body.truncate(end);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// The factor by which a record of `objects` sampled objects holding `bytes` is scaled up to
/// the allocations it stands for, when one is sampled every `rate` bytes on average: an
/// allocation of size `s` is sampled with probability `1 - exp(-s / rate)` (Go samples at
/// exponentially distributed byte intervals), so each sampled one stands for
/// `1 / (1 - exp(-s / rate))` of its kind, with `s` the record's average size. The same rule as
/// `scaleHeapSample` in Go's `runtime/pprof/protomem.go`; a rate of 1 or less means every
/// allocation was recorded (1) or the rate is unknown: no scaling.
pub fn scale(objects: u64, bytes: u64, rate: u64) -> f64 {
    if objects == 0 || bytes == 0 || rate <= 1 {
        return 1.0;
    }
    let avg = bytes as f64 / objects as f64;
    1.0 / (1.0 - (-avg / rate as f64).exp())
}

/// Parses a Go heap profile in its text form (`/debug/pprof/heap?debug=1`):
/// ```text
/// heap profile: 11: 606720 [19: 1114624] @ heap/1048576
/// 2: 131072 [2: 131072] @ 0x67268c 0x672dcd 0x46b201
/// #   0x67268b    main.rememberOrder+0x2b    /src/service.go:42
/// #   0x672dcc    main.every.func1+0x6c      /src/service.go:88
///
/// # runtime.MemStats
/// ```
/// Each record is `in-use objects: in-use bytes [allocated objects: allocated bytes] @ stack`,
/// then its frames (columns separated by tabs). Counts are of the sampled allocations; the header's `heap/N` is twice the
/// sampling rate (Go prints `2*MemProfileRate` for the tools that read the old C++ profiler's
/// format), so the rate is `N / 2`. Every record is scaled ([`scale`]) and its in-use space
/// summed under its site: the first frame outside the Go runtime, `function (file:line)` with
/// the file's base name (`main.rememberOrder (service.go:42)`); the first frame when all are the
/// runtime's; its address when Go could not name it. Fails when the text is not a heap profile
/// (a proxy's error page, another profile) or a record is malformed.
pub fn parse_heap_profile(text: &str) -> Result<Vec<Entry>, String> {
    let mut lines = text.lines().enumerate();
    let first = lines
        .by_ref()
        .map(|(_, l)| l.trim())
        .find(|l| !l.is_empty())
        .unwrap_or("no output");
    let not_one = || {
        format!(
            "not a Go heap profile: {}",
            first.chars().take(200).collect::<String>()
        )
    };
    let header = first.strip_prefix("heap profile:").ok_or_else(not_one)?;
    let rate = header
        .rsplit_once("@ heap/")
        .and_then(|(_, n)| n.trim().parse::<u64>().ok())
        .ok_or_else(not_one)?
        / 2;
    let mut sites: HashMap<String, (f64, f64)> = HashMap::new();
    let mut open: Option<Record> = None;
    let mut records = 0usize;
    for (i, line) in lines {
        if line.trim().is_empty() {
            close(&mut open, &mut sites);
            continue;
        }
        if let Some(frame) = line.strip_prefix('#') {
            let Some(r) = open.as_mut() else {
                // The MemStats trailer (`# Alloc = …`) and other comments.
                continue;
            };
            if r.settled {
                continue;
            }
            let Some((name, runtime)) = frame_site(frame) else {
                return Err(format!(
                    "line {}: not a stack frame: {}",
                    i + 1,
                    line.chars().take(200).collect::<String>()
                ));
            };
            if r.site.is_none() || !runtime {
                r.site = Some(name);
            }
            r.settled = !runtime;
            continue;
        }
        close(&mut open, &mut sites);
        if records == MAX_RECORDS {
            break;
        }
        let (objects, bytes) = record_counts(line).ok_or_else(|| {
            format!(
                "line {}: not a heap profile record: {}",
                i + 1,
                line.chars().take(200).collect::<String>()
            )
        })?;
        records += 1;
        let k = scale(objects, bytes, rate);
        open = Some(Record {
            bytes: bytes as f64 * k,
            objects: objects as f64 * k,
            site: None,
            settled: false,
        });
    }
    close(&mut open, &mut sites);
    let entries = sites
        .into_iter()
        .filter(|(_, (b, _))| *b >= 0.5)
        .map(|(site, (b, o))| Entry {
            site,
            bytes: b.round() as u64,
            objects: o.round() as u64,
        })
        .collect();
    Ok(bound(entries))
}

/// The record whose frames are being read.
struct Record {
    /// In-use bytes, scaled.
    bytes: f64,
    /// In-use objects, scaled.
    objects: f64,
    /// Its site so far: the first frame outside the runtime, else the first frame.
    site: Option<String>,
    /// Whether the site is final (a frame outside the runtime was seen).
    settled: bool,
}

/// Adds the record being read, if any, to its site.
fn close(open: &mut Option<Record>, sites: &mut HashMap<String, (f64, f64)>) {
    if let Some(r) = open.take() {
        let v = sites
            .entry(r.site.unwrap_or_else(|| "(no frames)".into()))
            .or_default();
        v.0 += r.bytes;
        v.1 += r.objects;
    }
}

/// The in-use objects and bytes of a record line (`3: 245760 [4: 327680] @ 0x6734a5 …`).
fn record_counts(line: &str) -> Option<(u64, u64)> {
    let (counts, stack) = line.split_once('@')?;
    if !stack.trim_start().starts_with("0x") && !stack.trim().is_empty() {
        return None;
    }
    let (inuse, alloc) = counts.split_once('[')?;
    alloc.trim_end().strip_suffix(']')?;
    let (objects, bytes) = inuse.split_once(':')?;
    Some((objects.trim().parse().ok()?, bytes.trim().parse().ok()?))
}

/// The site a frame line names (`#\t0x67268b\tmain.rememberOrder+0x2b\t/src/service.go:42`,
/// columns padded with tabs) and whether it is the Go runtime's; `None` when it is not a frame.
fn frame_site(frame: &str) -> Option<(String, bool)> {
    let mut cols = frame.split('\t').map(str::trim).filter(|c| !c.is_empty());
    let addr = cols.next()?;
    if !addr.starts_with("0x") {
        return None;
    }
    let Some(func) = cols.next() else {
        // A frame Go could not symbolise: its address is all there is.
        return Some((addr.to_string(), false));
    };
    let func = func.rsplit_once("+0x").map_or(func, |(f, _)| f);
    let file = cols.collect::<Vec<_>>().join(" ");
    let base = file.rsplit('/').next().unwrap_or(&file);
    let runtime = func.starts_with("runtime.");
    Some((format!("{func} ({base})"), runtime))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A profile as Go 1.19 writes it (tabwriter-padded frames, the MemStats trailer), sampled
    /// at the default rate (`heap/1048576`: 512 KiB).
    const P: &str = "heap profile: 11: 606720 [19: 1114624] @ heap/1048576
3: 245760 [4: 327680] @ 0x6734a5 0x46b201
#\t0x6734a4\tmain.main.func3.1+0x84\t/src/service.go:132

2: 131072 [2: 131072] @ 0x67268c 0x672dcd 0x46b201
#\t0x67268b\tmain.rememberOrder+0x2b\t/src/service.go:42
#\t0x672dcc\tmain.every.func1+0x6c\t/src/service.go:88

1: 65536 [2: 131072] @ 0x67268c 0x672dcd 0x46b201
#\t0x67268b\tmain.rememberOrder+0x2b\t/src/service.go:42
#\t0x672dcc\tmain.every.func1+0x6c\t/src/service.go:88

1: 416 [1: 416] @ 0x4433c8 0x44367e 0x4435a5 0x469049
#\t0x4433c7\truntime.malg+0x27\t\t/usr/lib/go/src/runtime/proc.go:4076
#\t0x44367d\truntime.newproc1+0x7d\t\t/usr/lib/go/src/runtime/proc.go:4123

1: 4096 [1: 4096] @ 0x4433c8 0x5f0000
#\t0x4433c7\truntime.makeslice+0x27\t/usr/lib/go/src/runtime/slice.go:103
#\t0x5effff\tbufio.NewReaderSize+0x1ff\t/usr/lib/go/src/bufio/bufio.go:57

0: 0 [1: 57344] @ 0x6734a5 0x46b201
#\t0x6734a4\tmain.main.func3.1+0x84\t/src/service.go:132


# runtime.MemStats
# Alloc = 1402136
# NumGC = 12
";

    #[test]
    fn the_scale_is_gos_own_rule() {
        // One 64 KiB object at 512 KiB: sampled with probability 1 - e^(-1/8) = 0.1175.
        let k = scale(1, 64 << 10, 512 << 10);
        assert!((k - 1.0 / (1.0 - (-0.125f64).exp())).abs() < 1e-12, "{k}");
        assert!((k - 8.510_4).abs() < 1e-3, "{k}");
        // Large objects are nearly always sampled; small ones stand for many.
        assert!((scale(1, 64 << 20, 512 << 10) - 1.0).abs() < 1e-12);
        assert!((scale(1, 16, 512 << 10) - 32_768.5).abs() < 0.01);
        // The average size counts, not the total: 4 objects of 16 KiB.
        assert_eq!(scale(4, 64 << 10, 512 << 10), scale(1, 16 << 10, 512 << 10));
        // Nothing sampled, every allocation recorded, or an unknown rate: as it is.
        assert_eq!(scale(0, 0, 512 << 10), 1.0);
        assert_eq!(scale(3, 99, 1), 1.0);
        assert_eq!(scale(3, 99, 0), 1.0);
    }

    #[test]
    fn a_profile_sums_scaled_records_by_their_first_frame_outside_the_runtime() {
        let v = parse_heap_profile(P).expect("parses");
        let get = |site: &str| {
            v.iter()
                .find(|e| e.site == site)
                .unwrap_or_else(|| panic!("no {site} in {v:?}"))
        };
        // Two records of rememberOrder, 64 KiB objects: (2 + 1) × 65536 × 8.5104.
        let k = scale(1, 64 << 10, 512 << 10);
        let r = get("main.rememberOrder (service.go:42)");
        assert_eq!(r.bytes, (196_608.0 * k).round() as u64);
        assert_eq!(r.objects, (3.0 * k).round() as u64);
        // Averaged per record: 3 objects of 80 KiB.
        let c = get("main.main.func3.1 (service.go:132)");
        assert_eq!(
            c.bytes,
            (245_760.0 * scale(3, 245_760, 512 << 10)).round() as u64
        );
        // Runtime frames are skipped; a stack of the runtime alone is named by its first frame.
        get("bufio.NewReaderSize (bufio.go:57)");
        get("runtime.malg (proc.go:4076)");
        assert_eq!(v.len(), 4, "{v:?}");
        assert!(
            v.windows(2).all(|w| w[0].bytes >= w[1].bytes),
            "largest first"
        );
        // The header's heap/N is twice the rate: taken as N, every figure would be larger.
        let as_n = scale(1, 64 << 10, 1 << 20);
        assert!(as_n > 1.9 * k);
    }

    #[test]
    fn what_is_not_a_heap_profile_is_a_one_line_error() {
        for (text, want) in [
            ("", "not a Go heap profile: no output"),
            (
                "<html>502 Bad Gateway</html>\n",
                "not a Go heap profile: <html>",
            ),
            (
                "goroutine profile: total 4\n4 @ 0x1\n",
                "not a Go heap profile: goroutine",
            ),
            (
                "heap profile: 1: 2 [3: 4] @ heap/x\n",
                "not a Go heap profile",
            ),
            (
                "heap profile: 1: 2 [3: 4] @ heap/1048576\n1: two [1: 2] @ 0x1\n",
                "line 2: not a heap profile record",
            ),
            (
                "heap profile: 1: 2 [3: 4] @ heap/1048576\n1: 2 [1: 2] @ 0x1\n#\tmain.f\n",
                "line 3: not a stack frame",
            ),
        ] {
            let e = parse_heap_profile(text).expect_err(text);
            assert!(e.contains(want), "{e} (wanted {want})");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
        // A profile without records (nothing sampled yet) is empty, not an error.
        assert_eq!(
            parse_heap_profile("heap profile: 0: 0 [0: 0] @ heap/1048576\n\n# runtime.MemStats\n"),
            Ok(vec![])
        );
    }

    #[test]
    fn a_base_url_gets_the_heap_path_and_bad_ones_are_refused() {
        for (given, want) in [
            (
                "http://127.0.0.1:6060",
                "http://127.0.0.1:6060/debug/pprof/heap",
            ),
            (
                "http://127.0.0.1:6060/",
                "http://127.0.0.1:6060/debug/pprof/heap",
            ),
            (
                "http://localhost:6060/debug/pprof/",
                "http://localhost:6060/debug/pprof/heap",
            ),
            (
                "https://svc:8443/debug/pprof/heap",
                "https://svc:8443/debug/pprof/heap",
            ),
            (
                "http://svc/admin/debug/pprof",
                "http://svc/admin/debug/pprof/heap",
            ),
            ("http://[::1]:6060", "http://[::1]:6060/debug/pprof/heap"),
            ("http://svc:1/internal/heap", "http://svc:1/internal/heap"),
        ] {
            assert_eq!(heap_url(given).as_deref(), Ok(want), "{given}");
        }
        for (given, why) in [
            ("127.0.0.1:6060", "not an http(s) URL"),
            ("ftp://h/debug/pprof/heap", "not an http(s) URL"),
            ("http://", "no host"),
            ("http://:6060", "no host"),
            ("http://h:60x/", "port"),
            ("http://u:secret@h:6060", "credentials"),
            ("http://h:6060/debug/pprof/heap?debug=1", "query"),
            ("http://h:6060/metrics", "neither"),
            ("http://h:6060/a b", "white space"),
        ] {
            let e = heap_url(given).expect_err(given);
            assert!(e.contains(why), "{given}: {e}");
            assert!(!e.contains("secret"), "{e}");
        }
    }
}
