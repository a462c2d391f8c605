//! Grafana files: the seed's annotation template file (milestone, optimisation and alert
//! templates plus a webhook example) and a dashboard for the metrics the exporter serves.

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

/// A dashboard over the exported metrics, with the run's annotations.
pub fn dashboard() -> Value {
    let sel = "run=~\"$run\"";
    let panels = vec![
        panel(
            1,
            "Resident memory",
            &[
                (
                    &format!("leak_sentinel_target_value{{field=\"rss_bytes\",{sel}}}"),
                    "{{run}} RSS",
                ),
                (
                    &format!("leak_sentinel_target_value{{field=\"pss_bytes\",{sel}}}"),
                    "{{run}} PSS",
                ),
            ],
            "bytes",
            0,
            0,
        ),
        panel(
            2,
            "Open file descriptors",
            &[(
                &format!("leak_sentinel_target_value{{field=\"fds\",{sel}}}"),
                "{{run}}",
            )],
            "short",
            12,
            0,
        ),
        panel(
            3,
            "Threads",
            &[(
                &format!("leak_sentinel_target_value{{field=\"threads\",{sel}}}"),
                "{{run}}",
            )],
            "short",
            0,
            8,
        ),
        panel(
            4,
            "Growth rate and interval (per second)",
            &[
                (
                    &format!("leak_sentinel_growth_per_second{{{sel}}}"),
                    "{{run}} {{field}} {{bound}}",
                ),
                (
                    &format!("leak_sentinel_threshold_per_second{{{sel}}}"),
                    "{{run}} {{field}} threshold",
                ),
            ],
            "short",
            12,
            8,
        ),
        panel(
            5,
            "Clean streak",
            &[
                (
                    &format!("leak_sentinel_clean_streak_seconds{{{sel}}}"),
                    "{{run}} streak",
                ),
                (
                    &format!("leak_sentinel_target_clean_seconds{{{sel}}}"),
                    "{{run}} needed",
                ),
            ],
            "s",
            0,
            16,
        ),
        panel(
            6,
            "Checks",
            &[(
                &format!("leak_sentinel_checks_total{{{sel}}}"),
                "{{run}} {{result}}",
            )],
            "short",
            12,
            16,
        ),
        panel(
            7,
            "Run state and verdicts",
            &[
                (
                    &format!("leak_sentinel_run_state{{{sel}}} == 1"),
                    "{{run}} {{state}}",
                ),
                (
                    &format!("leak_sentinel_metric_verdict{{{sel}}} == 1"),
                    "{{run}} {{field}} {{verdict}}",
                ),
            ],
            "short",
            0,
            24,
        ),
        panel(
            8,
            "Samples per second",
            &[(
                &format!("rate(leak_sentinel_samples_total{{{sel}}}[5m])"),
                "{{run}}",
            )],
            "short",
            12,
            24,
        ),
    ];
    json!({
        "title": "leak-sentinel soak tests",
        "uid": "leak-sentinel",
        "schemaVersion": 39,
        "version": 1,
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
