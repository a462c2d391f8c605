//! The live terminal view of a run: a progress bar (indicatif) on a terminal, timestamped plain
//! lines otherwise (CI, `nohup`, `--plain`).

use crate::sample::Metric;
use crate::settings::RunSettings;
use std::io::IsTerminal;

/// Live terminal view (indicatif) or plain log lines.
pub enum View {
    /// On a terminal.
    Bar(indicatif::ProgressBar),
    /// Log lines only.
    Plain,
}

impl View {
    /// The view for a run: plain when asked or when stdout is not a terminal.
    pub fn new(plain: bool, s: &RunSettings) -> View {
        if plain || !std::io::stdout().is_terminal() {
            return View::Plain;
        }
        let bar = indicatif::ProgressBar::new(s.duration_s.max(1.0) as u64);
        let style =
            indicatif::ProgressStyle::with_template("{prefix:.bold} {bar:30.green/white} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("█▉▊▋▌▍▎▏ ");
        bar.set_style(style);
        bar.set_prefix(s.name.clone());
        View::Bar(bar)
    }

    /// One timestamped line.
    pub fn log(&self, line: &str) {
        let stamp = chrono::Local::now().format("%Y-%m-%dT%H:%M:%S%:z");
        match self {
            View::Bar(b) => b.println(format!("{stamp} {line}")),
            View::Plain => println!("{stamp} {line}"),
        }
    }

    /// Moves the bar to `streak` seconds with a message.
    pub fn progress(&self, streak: f64, msg: String) {
        if let View::Bar(b) = self {
            b.set_position(streak.max(0.0) as u64);
            b.set_message(msg);
        }
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if let View::Bar(b) = self {
            b.finish_and_clear();
        }
    }
}

/// A sampled value for the bar: MiB for memory, a count otherwise.
pub fn fmt_value(m: Metric, v: f64) -> String {
    if m.name().ends_with("_bytes") {
        format!("{:.1} MiB", v / crate::units::MIB)
    } else {
        format!("{v:.0}")
    }
}
