//! The command line as the user typed it (clap derive). Values stay strings where they need
//! units; `config` resolves them into validated settings.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Soak-test a program for hours and tell, with evidence, whether its memory, file descriptors
/// or threads leak.
#[derive(Debug, Parser)]
#[command(name = "leak-sentinel", version, about, max_term_width = 100)]
pub struct Cli {
    /// Where runs, the database and reports live.
    #[arg(
        long,
        global = true,
        env = "LEAK_SENTINEL_DIR",
        default_value = ".leak-sentinel"
    )]
    pub state_dir: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of SPEC.md.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Soak-test a target: sample it, check for leaks, pass or fail.
    Run(Box<RunArgs>),
    /// Show the live status of a run (the most recent when NAME is omitted).
    Status {
        /// Run name.
        name: Option<String>,
        /// Print status.json.
        #[arg(long)]
        json: bool,
    },
    /// List runs.
    List {
        /// JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Continue a run that was killed or interrupted.
    Resume {
        /// Run name.
        name: String,
    },
    /// Show the report of a run; export its samples.
    Report {
        /// Run name.
        name: String,
        /// Print the JSON report.
        #[arg(long)]
        json: bool,
        /// Write the samples as CSV (the `analyze` format).
        #[arg(long, value_name = "FILE")]
        csv: Option<PathBuf>,
        /// Compare with a baseline saved by `baseline save`.
        #[arg(long, value_name = "FILE")]
        baseline: Option<PathBuf>,
        /// Write a self-contained HTML report with charts.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        /// Level change that counts as a regression, percent.
        #[arg(long, default_value_t = 10.0)]
        tolerance: f64,
        /// On a live run with --attribute: take a snapshot now and diff it with the run's
        /// baseline (the classes or allocation sites grown since the end of warm-up).
        #[arg(long, conflicts_with_all = ["csv", "html", "baseline"])]
        attribute: bool,
    },
    /// Judge a CSV of samples.
    Analyze(AnalyzeArgs),
    /// Two runs side by side: settings, levels and rates, what changed beyond noise.
    Compare {
        /// The earlier run (a).
        a: String,
        /// The later run (b).
        b: String,
        /// JSON.
        #[arg(long)]
        json: bool,
    },
    /// The nights of a tagged soak: outcomes, growth rates of the last check, and the night a
    /// rate's level changed beyond the nights' scatter.
    #[command(
        override_usage = "leak-sentinel history TAG [--url URL [--range DURATION] [--ca-file FILE]] [--json] [--html FILE] [--last N]"
    )]
    History {
        /// The tag: `--tag` of the runs, else their name without the trailing date
        /// (`api` for `api-20261201`); `*` matches any characters (`api*`).
        tag: String,
        /// JSON.
        #[arg(long)]
        json: bool,
        /// Write a self-contained HTML page with a chart of each rate across the nights.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        /// Only the latest N nights (1 to 10000).
        #[arg(long, value_name = "N", default_value_t = 60)]
        last: usize,
        /// Read the nights from the series runs pushed by remote write, at this Prometheus
        /// API base URL (http://prometheus:9090), instead of the local store.
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// With --url: how far back to look.
        #[arg(long, value_name = "DURATION", requires = "url", default_value = "90d")]
        range: String,
        /// With --url: certificate authorities for https, besides the built-in roots.
        #[arg(long, value_name = "FILE", requires = "url")]
        ca_file: Option<PathBuf>,
    },
    /// One look at a process or cgroup now: memory, FDs against their limit, threads, top groups.
    #[command(
        override_usage = "leak-sentinel health (--pid PID | --cgroup DIR) [--json]",
        group(clap::ArgGroup::new("what").required(true).args(["pid", "cgroup"]))
    )]
    Health {
        /// The process (and its descendants).
        #[arg(long)]
        pid: Option<i32>,
        /// A cgroup v2 directory.
        #[arg(long)]
        cgroup: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Judge every series of a PromQL range query (Prometheus, VictoriaMetrics, Thanos, Mimir).
    Scan(Box<ScanArgs>),
    /// Put a milestone annotation on Grafana (e.g. "W2 GC Optimization Deployed").
    Annotate {
        /// Annotation text.
        #[arg(long)]
        text: String,
        /// Comma-separated tags.
        #[arg(long, default_value = "leak-sentinel")]
        tags: String,
        /// Grafana base URL.
        #[arg(long, env = "GRAFANA_URL")]
        grafana_url: String,
        /// File whose first line is the API token (else GRAFANA_TOKEN).
        #[arg(long)]
        grafana_token_file: Option<PathBuf>,
        /// PEM file of certificate authorities to trust for https, besides the built-in roots
        /// (else LEAK_SENTINEL_CA_FILE).
        #[arg(long, value_name = "FILE", env = "LEAK_SENTINEL_CA_FILE")]
        ca_file: Option<PathBuf>,
    },
    /// Grafana files: the annotation templates and a dashboard for the exported metrics.
    #[command(subcommand)]
    Grafana(GrafanaCmd),
    /// Nightly schedules: cron line, systemd units, dated runs.
    #[command(subcommand)]
    Schedule(ScheduleCmd),
    /// Baselines: steady-state levels and rates of a run, for later comparison.
    #[command(subcommand)]
    Baseline(BaselineCmd),
    /// Built-in workloads for demos and tests (a leaky and a clean program).
    #[command(hide = true)]
    Workload(WorkloadArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(
        after_help = "Load it now:  source <(leak-sentinel completions bash)\n\
        Install:  leak-sentinel completions bash > ~/.local/share/bash-completion/completions/leak-sentinel\n\
        zsh: write _leak-sentinel into a directory of $fpath; fish: ~/.config/fish/completions/leak-sentinel.fish"
    )]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or write one page per subcommand into a directory.
    Man {
        /// Write leak-sentinel.1 and leak-sentinel-SUBCOMMAND.1 pages into this directory.
        #[arg(short = 'o', long = "output", value_name = "DIR")]
        output: Option<PathBuf>,
    },
    /// Two short soak tests that catch a real leak and pass a clean program.
    Demo {
        /// Seconds each demo run lasts after warm-up (default 40).
        #[arg(long, default_value = "40s")]
        duration: String,
    },
}

/// `analyze FILE.csv`.
#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// CSV with `t_seconds` or `timestamp` and metric columns.
    pub file: PathBuf,
    /// Memory threshold (e.g. 0.1, 100KiB/min, 2MiB/h).
    #[arg(long, default_value = "0.1")]
    pub memory_threshold: String,
    /// FD threshold per minute.
    #[arg(long, default_value = "0.1")]
    pub fd_threshold: String,
    /// Thread threshold per minute.
    #[arg(long, default_value = "0.1")]
    pub thread_threshold: String,
    /// Threshold for one column, `NAME=RATE` (repeatable).
    #[arg(long = "threshold", value_name = "NAME=RATE")]
    pub thresholds: Vec<String>,
    /// Warm-up not judged (default 10 % of the span).
    #[arg(long)]
    pub warmup: Option<String>,
    /// Confidence of the interval, in (0, 1).
    #[arg(long, default_value_t = 0.95)]
    pub confidence: f64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Also write a self-contained HTML report with charts.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Replay a soak run on the recording: a check every --check-every after warm-up, the
    /// run-level rule, the clean streak against --duration (exit 0 passed, 1 failed,
    /// 3 inconclusive).
    #[arg(long)]
    pub as_run: bool,
    /// With --as-run: quick, standard or production (defaults for the flags below).
    #[arg(long, requires = "as_run")]
    pub profile: Option<String>,
    /// With --as-run: seconds between checks (default from the profile).
    #[arg(long, requires = "as_run")]
    pub check_every: Option<String>,
    /// With --as-run: clean streak needed to pass (default from the profile).
    #[arg(long, requires = "as_run")]
    pub duration: Option<String>,
    /// With --as-run: failed checks tolerated.
    #[arg(long, requires = "as_run", default_value_t = 0)]
    pub max_failed_checks: u32,
    /// Write a JUnit XML test report (one testcase per gate column).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write a markdown summary; also appended to $GITHUB_STEP_SUMMARY when set.
    #[arg(long, value_name = "FILE")]
    pub summary_md: Option<PathBuf>,
}

/// `run`.
#[derive(Debug, Args, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RunArgs {
    /// Run name (a tag such as W3-Production); default: the profile and a timestamp.
    #[arg(long)]
    pub name: Option<String>,
    /// quick, standard or production.
    #[arg(long)]
    pub profile: Option<String>,
    /// Clean time needed to pass (e.g. 6h).
    #[arg(long)]
    pub duration: Option<String>,
    /// Time between checks.
    #[arg(long)]
    pub check_every: Option<String>,
    /// Time between samples.
    #[arg(long)]
    pub sample_every: Option<String>,
    /// Time between expensive samples (PSS/USS, FD kinds).
    #[arg(long)]
    pub detail_every: Option<String>,
    /// Warm-up not judged.
    #[arg(long)]
    pub warmup: Option<String>,
    /// Memory threshold (e.g. 0.1, 100KiB/min).
    #[arg(long)]
    pub memory_threshold: Option<String>,
    /// Memory that gates the run: private (anonymous + swap, default), rss, pss or cgroup.
    #[arg(long, value_name = "private|rss|pss|cgroup")]
    pub memory_metric: Option<String>,
    /// FD threshold per minute.
    #[arg(long)]
    pub fd_threshold: Option<String>,
    /// Thread threshold per minute.
    #[arg(long)]
    pub thread_threshold: Option<String>,
    /// Failed checks tolerated before the run fails.
    #[arg(long)]
    pub max_failed_checks: Option<u32>,
    /// Hard stop: the run ends as interrupted (exit 5) after this long.
    #[arg(long)]
    pub timeout: Option<String>,
    /// TOML config file.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Attach to a running process.
    #[arg(long, group = "target")]
    pub pid: Option<i32>,
    /// Attach to the process whose PID is in this file.
    #[arg(long, group = "target")]
    pub pid_file: Option<PathBuf>,
    /// Measure a cgroup v2 directory.
    #[arg(long, group = "target")]
    pub cgroup: Option<PathBuf>,
    /// With --pid/--pid-file: measure only that process, not its descendants.
    #[arg(long)]
    pub no_children: bool,
    /// Before each check, ask the target's JVMs for a full GC (jcmd GC.run, through the attach
    /// mechanism) so the live set is measured even when no old-space collection comes.
    /// Intrusive: a full stop-the-world collection per check.
    #[arg(long)]
    pub jvm_gc_before_check: bool,
    /// Run this once when the run fails on a leak, e.g. 'gcore -o {dir}/core {pid}'
    /// ({pid}: the target's PID, {dir}: a fresh snapshot directory); output recorded in the report.
    #[arg(long, value_name = "CMD")]
    pub on_leak: Option<String>,
    /// Time limit of the --on-leak command.
    #[arg(long, value_name = "DUR")]
    pub on_leak_timeout: Option<String>,
    /// Name the leaking code: snapshot classes (JVM: jcmd GC.class_histogram) or allocation sites
    /// (spawned CPython: tracemalloc) at the end of warm-up and at the end; the report lists the
    /// top growers. Costs the target time (see docs/attribution.md); never changes the verdict.
    #[arg(long)]
    pub attribute: bool,
    /// Time limit of one attribution snapshot (default 60s).
    #[arg(long, value_name = "DUR")]
    pub attribute_timeout: Option<String>,
    /// The target's own Prometheus/OpenMetrics endpoint, read every sample: its gauges are
    /// judged with the same gate (go_goroutines, process_open_fds, nodejs_heap_size_used_bytes
    /// and jvm_memory_used_bytes{area="heap"} when it has them, or those of --target-gauge).
    #[arg(long, value_name = "URL")]
    pub target_metrics: Option<String>,
    /// A gauge of --target-metrics to judge: NAME, NAME{label="value"}, with =RATE for its
    /// threshold per minute (e.g. app_sessions=2, cache_bytes=1MiB/min); repeatable.
    #[arg(long = "target-gauge", value_name = "SELECTOR[=RATE]")]
    pub target_gauge: Vec<String>,
    /// A Go target's heap profile: its base URL (http://127.0.0.1:6060, the path
    /// /debug/pprof/heap is added) or the profile's own URL. Attribution (implied) diffs its
    /// in-use space by allocation site; the program must import net/http/pprof.
    #[arg(long, value_name = "URL")]
    pub pprof: Option<String>,
    /// Serve Prometheus metrics on ADDR (127.0.0.1:9464 when given without a value).
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:9464")]
    pub metrics_addr: Option<String>,
    /// Webhook URL notified on start, failed check, completion and crash (repeatable).
    #[arg(long = "notify", value_name = "URL")]
    pub notify: Vec<String>,
    /// Webhook body: json (default) or slack.
    #[arg(long, value_name = "FORMAT")]
    pub notify_format: Option<String>,
    /// Grafana base URL for annotations (token from GRAFANA_TOKEN or --grafana-token-file).
    #[arg(long, value_name = "URL", env = "GRAFANA_URL")]
    pub grafana_url: Option<String>,
    /// File whose first line is the Grafana API token.
    #[arg(long, value_name = "FILE")]
    pub grafana_token_file: Option<PathBuf>,
    /// PEM file of certificate authorities to trust for https webhooks and Grafana, besides the
    /// built-in roots (else LEAK_SENTINEL_CA_FILE).
    #[arg(long, value_name = "FILE", env = "LEAK_SENTINEL_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Push the run's samples, checks and outcome to this Prometheus remote-write URL
    /// (repeatable), e.g. http://prometheus:9090/api/v1/write (credentials from
    /// LEAK_SENTINEL_REMOTE_WRITE_TOKEN / LEAK_SENTINEL_REMOTE_WRITE_BASIC_AUTH or a file).
    #[arg(long = "remote-write", value_name = "URL")]
    pub remote_write: Vec<String>,
    /// A label added to every pushed series, `KEY=VALUE` (repeatable), e.g. commit=abc123.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// The `tag` label of pushed series (default: the run name without a trailing date).
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,
    /// Points each remote-write queue holds at most while the receiver is slow or down
    /// (default 100000; the oldest are dropped and counted beyond it).
    #[arg(long, value_name = "POINTS")]
    pub remote_write_queue: Option<usize>,
    /// File whose first line is the bearer token for --remote-write.
    #[arg(long, value_name = "FILE")]
    pub remote_write_token_file: Option<PathBuf>,
    /// File whose first line is `user:password` for --remote-write (HTTP basic auth).
    #[arg(long, value_name = "FILE")]
    pub remote_write_basic_auth_file: Option<PathBuf>,
    /// Environment for a spawned target, `K=V` (repeatable).
    #[arg(long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Send a spawned target's stdout and stderr to FILE (appended; default: the terminal).
    #[arg(long, value_name = "FILE")]
    pub target_output: Option<PathBuf>,
    /// Compare the run with a baseline saved by `baseline save` (report section, not the exit code).
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Write a JUnit XML test report at the end (one testcase per gate metric), for CI.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write a markdown summary (verdict table) at the end; also appended to
    /// $GITHUB_STEP_SUMMARY when that is set.
    #[arg(long, value_name = "FILE")]
    pub summary_md: Option<PathBuf>,
    /// Print plain log lines even on a terminal.
    #[arg(long)]
    pub plain: bool,
    /// The command to spawn and measure (after `--`).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Hidden `workload` subcommand.
#[derive(Debug, Args)]
pub struct WorkloadArgs {
    /// leaky (memory and FDs grow), clean (churns, bounded), noisy (bounded, jumpy) or single
    /// (leaks only what --leak says).
    pub kind: String,
    /// How long to run (default: until killed).
    #[arg(long)]
    pub seconds: Option<f64>,
    /// Leak rate of the leaky workload, MiB per minute.
    #[arg(long, default_value_t = 6.0)]
    pub mib_per_min: f64,
    /// FD leak rate of the leaky workload, per minute.
    #[arg(long, default_value_t = 30.0)]
    pub fds_per_min: f64,
    /// Exit with this code after --seconds (to simulate a crash).
    #[arg(long)]
    pub exit_code: Option<i32>,
    /// Working set of the clean workload, MiB.
    #[arg(long, default_value_t = 16)]
    pub cache_mib: usize,
    /// What a `single` workload leaks: tcp:HOST:PORT, files:DIR, pipes, eventfd, threads, anon.
    #[arg(long)]
    pub leak: Option<String>,
    /// Leaked objects per minute for --leak (anon: MiB per minute).
    #[arg(long, default_value_t = 120.0)]
    pub per_min: f64,
}

/// `schedule …`.
#[derive(Debug, Subcommand)]
pub enum ScheduleCmd {
    /// Write a schedule, print its next fire times and crontab line (and systemd units).
    Create {
        /// Schedule name (runs are named NAME-YYYYMMDD). Its own id: the flattened run flags
        /// have a `--name` too (clap's debug builds refuse two arguments with one id).
        #[arg(id = "schedule_name", value_name = "NAME")]
        name: String,
        /// Cron expression, five fields (e.g. "0 3 * * *").
        #[arg(long)]
        cron: String,
        /// Write NAME.service and NAME.timer into this directory.
        #[arg(long, value_name = "DIR")]
        systemd: Option<PathBuf>,
        /// Replace a schedule of the same name (and rewrite its units with --systemd).
        #[arg(long)]
        force: bool,
        /// The run's flags and target (as for `run`).
        #[command(flatten)]
        run: Box<RunArgs>,
    },
    /// List schedules.
    List {
        /// JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a schedule, its next fire times, crontab line and units.
    Show {
        /// Schedule name.
        name: String,
    },
    /// Run a schedule now (what cron and systemd call).
    Run {
        /// Schedule name.
        name: String,
    },
}

/// `baseline …`.
#[derive(Debug, Subcommand)]
pub enum BaselineCmd {
    /// Save a run's steady-state summary as a baseline file.
    Save {
        /// Run name.
        run: String,
        /// Output file.
        #[arg(short = 'o', long = "output", value_name = "FILE")]
        output: PathBuf,
    },
}

/// `grafana …`.
#[derive(Debug, Subcommand)]
pub enum GrafanaCmd {
    /// Write the annotation templates (milestone, optimisation, alert) and a webhook example.
    Templates {
        /// Output file (default: stdout).
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
    },
    /// Write a Grafana dashboard JSON for the metrics `run --metrics-addr` exports (with
    /// --pushed: for the series `run --remote-write` pushes, runs across nights and hosts).
    Dashboard {
        /// Output file (default: stdout).
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
        /// The dashboard over pushed series: tag, host and run selectors, outcomes and
        /// failed checks as markers.
        #[arg(long)]
        pushed: bool,
    },
}

/// `scan`.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Base URL of the Prometheus-compatible API (e.g. http://127.0.0.1:9090).
    #[arg(long)]
    pub url: String,
    /// PromQL selecting the series, e.g. process_resident_memory_bytes{job="api"}.
    #[arg(long)]
    pub query: String,
    /// How far back from --end.
    #[arg(long, default_value = "6h")]
    pub range: String,
    /// End of the range: RFC 3339, Unix seconds, or now (default).
    #[arg(long)]
    pub end: Option<String>,
    /// Resolution of the query.
    #[arg(long, default_value = "30s")]
    pub step: String,
    /// Threshold per minute (memory: e.g. 0.1, 100KiB/min).
    #[arg(long)]
    pub threshold: Option<String>,
    /// memory (bytes, judged in MiB/min), fds, threads or generic (default: memory, or the
    /// kind of the series `run --remote-write` pushes that the query names, e.g. fds for
    /// leak_sentinel_open_fds).
    #[arg(long)]
    pub kind: Option<String>,
    /// Warm-up excluded at the start of each series (default: 10 % of --range).
    #[arg(long)]
    pub warmup: Option<String>,
    /// Points per series the server returns at most per answer (Prometheus: 11,000).
    #[arg(long, default_value_t = 11_000)]
    pub max_points: usize,
    /// Bytes read from one answer at most, e.g. 64MiB (default 512MiB; else
    /// LEAK_SENTINEL_SCAN_MAX_BYTES).
    #[arg(long, value_name = "SIZE")]
    pub max_bytes: Option<String>,
    /// Points held over the whole scan at most, all series together (default 20000000; else
    /// LEAK_SENTINEL_SCAN_MAX_POINTS).
    #[arg(long, value_name = "N")]
    pub max_points_total: Option<String>,
    /// Deadline of one request, body included (default 120s; else LEAK_SENTINEL_SCAN_TIMEOUT).
    #[arg(long, value_name = "DUR")]
    pub timeout: Option<String>,
    /// PEM file of certificate authorities to trust for https, besides the built-in roots
    /// (else LEAK_SENTINEL_CA_FILE).
    #[arg(long, value_name = "FILE", env = "LEAK_SENTINEL_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Write a JUnit XML test report: one testsuite per series.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write a markdown summary (verdict table); also appended to $GITHUB_STEP_SUMMARY when set.
    #[arg(long, value_name = "FILE")]
    pub summary_md: Option<PathBuf>,
    /// Concurrent requests.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
    /// Also write an HTML report of the most severe series.
    #[arg(long, value_name = "FILE")]
    pub html: Option<std::path::PathBuf>,
    /// Repeat every INTERVAL and print only changes of verdict.
    #[arg(long, value_name = "INTERVAL")]
    pub watch: Option<String>,
    /// Stop --watch after N rounds (for tests and cron).
    #[arg(long, hide = true)]
    pub watch_count: Option<u64>,
}
