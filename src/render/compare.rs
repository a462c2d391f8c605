//! `compare`'s table for people, from the comparison JSON.

use serde_json::Value;

/// The comparison for people.
pub fn to_text(c: &Value) -> String {
    let mut out = format!(
        "compare {} (a) → {} (b)\n",
        c["a"].as_str().unwrap_or(""),
        c["b"].as_str().unwrap_or("")
    );
    if let Some(s) = c["settings_changed"].as_object() {
        for (k, v) in s {
            out.push_str(&format!("  setting {k}: {} → {}\n", v["a"], v["b"]));
        }
    }
    out.push_str(&format!(
        "  {:<12} {:>14} {:>14} {:>9} {:>22} {:>22}\n",
        "metric", "level a", "level b", "change", "rate a (/min)", "rate b (/min)"
    ));
    if let Some(ms) = c["metrics"].as_object() {
        for (name, m) in ms {
            let lvl = |v: &Value| {
                let x = v.as_f64().unwrap_or(0.0);
                if name.ends_with("_bytes") {
                    format!("{:.1} MiB", x / crate::units::MIB)
                } else {
                    format!("{x:.0}")
                }
            };
            let rate = |r: &Value| {
                format!(
                    "{:.3} {}",
                    r["slope_per_min"].as_f64().unwrap_or(0.0),
                    r["verdict"].as_str().unwrap_or("")
                )
            };
            out.push_str(&format!(
                "  {:<12} {:>14} {:>14} {:>8}{} {:>22} {:>21}{}\n",
                name,
                lvl(&m["level_a"]),
                lvl(&m["level_b"]),
                m["level_change_pct"]
                    .as_f64()
                    .map_or("-".into(), |p| format!("{p:+.1}%")),
                if m["level_beyond_noise"].as_bool() == Some(true) {
                    "*"
                } else {
                    " "
                },
                rate(&m["rate_a"]),
                rate(&m["rate_b"]),
                if m["rate_beyond_noise"].as_bool() == Some(true) {
                    "*"
                } else {
                    " "
                },
            ));
        }
    }
    out.push_str("  * beyond noise (levels: more than either run's interquartile range; rates: intervals apart)\n");
    out
}
