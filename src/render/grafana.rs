//! Grafana files: the seed's annotation template file (milestone, optimisation and alert
//! templates plus a webhook example), a dashboard for the metrics the exporter serves, and one
//! for the series runs push by remote write (runs across nights and hosts).

use serde_json::{Value, json};

/// The annotation templates (the seed's `monitoring/grafana_annotations.json` role).
pub fn templates() -> Value {
    json!({
        "schema_version": 1,
        "templates": {
            "milestone": {"text": "{title}", "tags": ["leak-sentinel", "milestone"],
                          "example": "leak-sentinel annotate --text \"W3 Leak Sentinel Started\" --tags leak-sentinel,milestone"},
            "optimization": {"text": "{title}: {improvement}", "tags": ["leak-sentinel", "optimization"],
                             "example": "leak-sentinel annotate --text \"W2 GC Optimization Deployed (70.8% improvement)\" --tags milestone,optimization"},
            "alert": {"text": "leak detected in {run}: {reason}", "tags": ["leak-sentinel", "alert"],
                      "example": "sent automatically by 'leak-sentinel run --grafana-url URL' on a failed check"}
        },
        "milestones": [
            {"text": "W2 GC Optimization Deployed", "tags": ["milestone", "optimization", "W2"]},
            {"text": "W3 Leak Sentinel Started", "tags": ["milestone", "leak-sentinel", "W3"]}
        ],
        "webhook_example": {
            "method": "POST",
            "url": "$GRAFANA_URL/api/annotations",
            "headers": {"Authorization": "Bearer $GRAFANA_TOKEN", "Content-Type": "application/json"},
            "body": {"time": 1748089500000_i64, "tags": ["leak-sentinel", "milestone"], "text": "W3 Leak Sentinel Started"},
            "curl": "curl -s -X POST \"$GRAFANA_URL/api/annotations\" -H \"Authorization: Bearer $GRAFANA_TOKEN\" -H 'Content-Type: application/json' -d '{\"tags\":[\"leak-sentinel\",\"milestone\"],\"text\":\"W3 Leak Sentinel Started\"}'"
        },
        "notes": "The token comes from GRAFANA_TOKEN or --grafana-token-file and is never written to disk by leak-sentinel."
    })
}

fn panel(id: u32, title: &str, exprs: &[(&str, &str)], unit: &str, x: u32, y: u32) -> Value {
    json!({
        "id": id, "type": "timeseries", "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": exprs.iter().enumerate().map(|(i, (e, legend))| json!({
            "refId": ((b'A' + i as u8) as char).to_string(), "expr": e, "legendFormat": legend
        })).collect::<Vec<_>>()
    })
}

/// A dashboard over the exported metrics, with the run's annotations. Every query names only
/// series a live `/metrics` serves (tests/monitoring.rs checks each one against a real run).
pub fn dashboard() -> Value {
    let sel = "run=~\"$run\"";
    let q = |name: &str, matchers: &str| {
        if matchers.is_empty() {
            format!("{name}{{{sel}}}")
        } else {
            format!("{name}{{{matchers},{sel}}}")
        }
    };
    let panels = vec![
        panel(
            1,
            "Memory by kind",
            &[(&q("leak_sentinel_memory_bytes", ""), "{{run}} {{kind}}")],
            "bytes",
            0,
            0,
        ),
        panel(
            2,
            "Open file descriptors",
            &[
                (&q("leak_sentinel_open_fds", "kind=\"all\""), "{{run}} all"),
                (
                    &q("leak_sentinel_open_fds", "kind!=\"all\""),
                    "{{run}} {{kind}}",
                ),
            ],
            "short",
            12,
            0,
        ),
        panel(
            3,
            "Threads and processes",
            &[
                (&q("leak_sentinel_threads", ""), "{{run}} threads"),
                (&q("leak_sentinel_processes", ""), "{{run}} processes"),
            ],
            "short",
            0,
            8,
        ),
        panel(
            4,
            "Memory growth and threshold (bytes/s)",
            &[
                (
                    &q("leak_sentinel_memory_growth_bytes_per_second", ""),
                    "{{run}} {{kind}} {{bound}}",
                ),
                (
                    &q("leak_sentinel_memory_growth_threshold_bytes_per_second", ""),
                    "{{run}} {{kind}} threshold",
                ),
            ],
            "Bps",
            12,
            8,
        ),
        panel(
            5,
            "FD growth and threshold (per second)",
            &[
                (
                    &q("leak_sentinel_fd_growth_per_second", ""),
                    "{{run}} {{kind}} {{bound}}",
                ),
                (
                    &q("leak_sentinel_fd_growth_threshold_per_second", ""),
                    "{{run}} {{kind}} threshold",
                ),
            ],
            "short",
            0,
            16,
        ),
        panel(
            6,
            "Thread growth and threshold (per second)",
            &[
                (
                    &q("leak_sentinel_thread_growth_per_second", ""),
                    "{{run}} {{bound}}",
                ),
                (
                    &q("leak_sentinel_thread_growth_threshold_per_second", ""),
                    "{{run}} threshold",
                ),
            ],
            "short",
            12,
            16,
        ),
        panel(
            7,
            "Clean streak",
            &[
                (
                    &q("leak_sentinel_clean_streak_seconds", ""),
                    "{{run}} streak",
                ),
                (
                    &q("leak_sentinel_target_clean_seconds", ""),
                    "{{run}} needed",
                ),
            ],
            "s",
            0,
            24,
        ),
        panel(
            8,
            "Checks",
            &[(&q("leak_sentinel_checks_total", ""), "{{run}} {{result}}")],
            "short",
            12,
            24,
        ),
        panel(
            9,
            "Run state and verdicts",
            &[
                (
                    &format!("{} == 1", q("leak_sentinel_run_state", "")),
                    "{{run}} {{state}}",
                ),
                (
                    &format!("{} == 1", q("leak_sentinel_metric_verdict", "")),
                    "{{run}} {{resource}} {{kind}} {{verdict}}",
                ),
            ],
            "short",
            0,
            32,
        ),
        panel(
            10,
            "Sampling: samples per second, seconds since the last sample, target stopped",
            &[
                (
                    &format!("rate({}[5m])", q("leak_sentinel_samples_total", "")),
                    "{{run}} samples/s",
                ),
                (
                    &format!(
                        "time() - {}",
                        q("leak_sentinel_last_sample_timestamp_seconds", "")
                    ),
                    "{{run}} since last sample",
                ),
                (
                    &q("leak_sentinel_target_stopped", ""),
                    "{{run}} target stopped",
                ),
            ],
            "short",
            12,
            32,
        ),
        panel(
            11,
            "Exporter errors (per second)",
            &[(
                &format!("rate({}[5m])", q("leak_sentinel_exporter_errors_total", "")),
                "{{run}} {{reason}}",
            )],
            "short",
            0,
            40,
        ),
    ];
    json!({
        "title": "leak-sentinel soak tests",
        "uid": "leak-sentinel",
        "schemaVersion": 39,
        "version": 2,
        "tags": ["leak-sentinel"],
        "time": {"from": "now-12h", "to": "now"},
        "refresh": "30s",
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus"},
            {"name": "run", "type": "query", "datasource": {"type": "prometheus", "uid": "${datasource}"},
             "query": "label_values(leak_sentinel_samples_total, run)", "includeAll": true, "multi": true}
        ]},
        "annotations": {"list": [
            {"name": "leak-sentinel", "enable": true, "iconColor": "red",
             "datasource": {"type": "grafana", "uid": "-- Grafana --"},
             "target": {"type": "tags", "tags": ["leak-sentinel"], "matchAny": true, "limit": 500}}
        ]},
        "panels": panels
    })
}

/// A table of one instant query per row set (the latest value of each series in the range).
fn table(id: u32, title: &str, expr: &str, x: u32, y: u32, w: u32) -> Value {
    json!({
        "id": id, "type": "table", "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": w, "x": x, "y": y},
        "targets": [{"refId": "A", "expr": expr, "instant": true, "format": "table"}],
        "transformations": [{"id": "organize", "options": {
            "excludeByName": {"Time": true, "__name__": true}}}]
    })
}

/// A dashboard over the series `run --remote-write` pushes (`publish::pushed`): `tag`, `host`
/// and `run` selectors, the gate memory, FDs and threads of every selected run across nights
/// and hosts, the growth each check estimated, a table of each run's outcome and final growth,
/// and the outcomes and failed checks as markers on every panel. Every query names only
/// pushed families and labels (tests/remote_write.rs runs each against a real engine).
pub fn pushed_dashboard() -> Value {
    let sel = "tag=~\"$tag\",host=~\"$host\",run=~\"$run\"";
    let q = |name: &str, matchers: &str| {
        if matchers.is_empty() {
            format!("{name}{{{sel}}}")
        } else {
            format!("{name}{{{matchers},{sel}}}")
        }
    };
    let panels = vec![
        panel(
            1,
            "Gate memory (private) of each run",
            &[(
                &q("leak_sentinel_memory_bytes", "kind=\"private\""),
                "{{run}} {{host}}",
            )],
            "bytes",
            0,
            0,
        ),
        panel(
            2,
            "Open file descriptors of each run",
            &[(
                &q("leak_sentinel_open_fds", "kind=\"all\""),
                "{{run}} {{host}}",
            )],
            "short",
            12,
            0,
        ),
        panel(
            3,
            "Threads of each run",
            &[(&q("leak_sentinel_threads", ""), "{{run}} {{host}}")],
            "short",
            0,
            8,
        ),
        panel(
            4,
            "Memory growth at each check (MiB/min) and threshold",
            &[
                (
                    &format!(
                        "{} * 60 / 1048576",
                        q(
                            "leak_sentinel_memory_growth_bytes_per_second",
                            "bound=\"estimate\""
                        )
                    ),
                    "{{run}} {{kind}}",
                ),
                (
                    &format!(
                        "{} * 60 / 1048576",
                        q("leak_sentinel_memory_growth_threshold_bytes_per_second", "")
                    ),
                    "{{run}} threshold",
                ),
            ],
            "short",
            12,
            8,
        ),
        table(
            5,
            "Outcome of each run",
            &format!(
                "last_over_time({}[$__range]) == 1",
                q("leak_sentinel_run_outcome", "")
            ),
            0,
            16,
            12,
        ),
        table(
            6,
            "Final memory growth of each run (MiB/min)",
            &format!(
                "last_over_time({}[$__range]) * 60 / 1048576",
                q(
                    "leak_sentinel_memory_growth_bytes_per_second",
                    "bound=\"estimate\""
                )
            ),
            12,
            16,
            12,
        ),
        panel(
            7,
            "Failed checks",
            &[(
                &format!("{} == 1", q("leak_sentinel_check_failed", "")),
                "{{run}} failed check",
            )],
            "short",
            0,
            24,
        ),
        panel(
            8,
            "Clean streak",
            &[(
                &q("leak_sentinel_clean_streak_seconds", ""),
                "{{run}} streak",
            )],
            "s",
            12,
            24,
        ),
    ];
    let var = |name: &str, query: &str| {
        json!({"name": name, "type": "query",
               "datasource": {"type": "prometheus", "uid": "${datasource}"},
               "query": query, "refresh": 2, "includeAll": true, "multi": true,
               "allValue": ".*", "current": {"text": "All", "value": "$__all"}})
    };
    let marker = |name: &str, expr: String, title: &str, color: &str| {
        json!({"name": name, "enable": true, "iconColor": color,
               "datasource": {"type": "prometheus", "uid": "${datasource}"},
               "expr": expr, "step": "10s", "titleFormat": title,
               "tagKeys": "run,tag,host", "useValueForTime": false})
    };
    json!({
        "title": "leak-sentinel runs (pushed)",
        "uid": "leak-sentinel-pushed",
        "schemaVersion": 39,
        "version": 1,
        "tags": ["leak-sentinel"],
        "time": {"from": "now-30d", "to": "now"},
        "refresh": "5m",
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus"},
            var("tag", "label_values(leak_sentinel_memory_bytes, tag)"),
            var("host", "label_values(leak_sentinel_memory_bytes{tag=~\"$tag\"}, host)"),
            var("run", "label_values(leak_sentinel_memory_bytes{tag=~\"$tag\",host=~\"$host\"}, run)")
        ]},
        "annotations": {"list": [
            marker(
                "outcome",
                format!("{} == 1", q("leak_sentinel_run_outcome", "")),
                "{{run}}: {{outcome}}",
                "purple",
            ),
            marker(
                "failed check",
                format!("{} == 1", q("leak_sentinel_check_failed", "")),
                "{{run}}: check failed",
                "red",
            ),
            {"name": "leak-sentinel", "enable": true, "iconColor": "orange",
             "datasource": {"type": "grafana", "uid": "-- Grafana --"},
             "target": {"type": "tags", "tags": ["leak-sentinel"], "matchAny": true, "limit": 500}}
        ]},
        "panels": panels
    })
}
