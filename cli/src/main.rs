//! The `switchyard` command.
//!
//! - `switchyard run <manifest.toml>`: hosts the WASM components a manifest declares,
//!   injects its messages and then newline-delimited JSON from stdin, prints replies, and
//!   prints a stats table at exit. Compiled components are kept in a compile cache
//!   (`--cache-dir`, default `switchyard-cache/` beside the storage file; `--no-cache`).
//! - `switchyard component new <core.wasm> -o <out.wasm>`: turns a canonical-ABI core
//!   module into a component of our world.
//! - `switchyard component inspect <file> [--manifest M]`: lists a component's imports and
//!   exports, says whether this host can run it, lists the WASI interfaces it imports with
//!   what each gets without a grant, and (with `--manifest`) what each component of M that
//!   uses the file is granted.
//! - `switchyard new guest|host NAME [--dir DIR] [--sdk PATH]`: writes a crate to start
//!   from: a guest component with its manifest, or a host that embeds the engine.
//! - `switchyard bench [--quick]`: the compare report against the async baseline.
//!
//! Exit status: 0 success; 1 the command could not do its job (bad manifest, missing file,
//! a component this host cannot run, ...); 2 bad command-line usage; 3 `run` finished but
//! rejected some input (malformed lines, unknown targets, full mailboxes).

mod bench;
mod component;
mod http;
mod manifest;
mod new;
mod observe;
mod payload;
mod run;
mod table;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Exit status when `run` rejected some of its input.
const EXIT_INPUT_REJECTED: u8 = 3;

#[derive(Parser)]
#[command(name = "switchyard", version, about = "Run, build and inspect switchyard components")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Host the components a manifest declares; inject its messages, then JSON lines from stdin.
    ///
    /// Each stdin line is `{"to": ID, "payload": STRING | BYTE ARRAY | JSON, "codec": NAME | NUMBER}`.
    /// Replies are printed to stdout as JSON lines; the stats table goes to stderr when the
    /// run ends (end of input, --duration, or Ctrl-C). Compiled components are kept in a compile
    /// cache (see --cache-dir) and reused by later runs, so a component file is compiled once.
    Run(Box<RunCmd>),
    /// Build or inspect components.
    #[command(subcommand)]
    Component(ComponentCmd),
    /// Write a new crate to start from: a guest component, or a host that embeds the engine.
    #[command(subcommand)]
    New(NewCmd),
    /// The compare report: switchyard against the async baseline and raw floors.
    Bench(BenchCmd),
}

#[derive(Subcommand)]
enum NewCmd {
    /// A guest component: a crate built for wasm32-wasip2, with the manifest that hosts it.
    ///
    /// Writes a library crate (a counter kept in storage, written with switchyard-guest)
    /// that `cargo build --release --target wasm32-wasip2` builds into a component, and
    /// NAME.toml, the manifest that `switchyard run NAME.toml` hosts it with.
    Guest(NewArgs),
    /// A host: a binary crate that embeds the engine and runs a typed component natively.
    ///
    /// The engine is built without its WebAssembly executor; `cargo run` runs the host.
    Host(NewArgs),
}

#[derive(Args)]
struct NewArgs {
    /// The crate's name: 1 to 64 lowercase ASCII letters, digits, '-' and '_', starting with
    /// a letter. The crate is written to the directory DIR/NAME, which must be new or empty.
    #[arg(value_parser = new::parse_name)]
    name: String,
    /// Create the crate in DIR/NAME [default: ./NAME].
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The crate to depend on by path: switchyard-guest (a checkout's guest/) for a guest,
    /// switchyard (a checkout's root) for a host [default: the checkout this binary was
    /// built from].
    #[arg(long, value_name = "PATH")]
    sdk: Option<PathBuf>,
}

#[derive(Args)]
struct RunCmd {
    /// The manifest (TOML).
    manifest: PathBuf,
    /// The redb file where components keep their state.
    #[arg(long, default_value = "switchyard.redb")]
    storage: PathBuf,
    /// Keep compiled components in DIR and reuse them in later runs, so a large component is
    /// compiled once, not on every start [default: $XDG_CACHE_HOME/switchyard/compile, else
    /// ~/.cache/switchyard/compile]. The directory must be private to this user: its files
    /// are native code.
    #[arg(long, value_name = "DIR", conflicts_with = "no_cache")]
    cache_dir: Option<PathBuf>,
    /// Compile every component file, keeping nothing across runs.
    #[arg(long)]
    no_cache: bool,
    /// Send each stdin line as a request and print its reply.
    #[arg(long)]
    request: bool,
    /// Stop after this long even if input continues (e.g. 30s, 500ms, 2m).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Read messages from stdin even when it is a terminal.
    #[arg(long)]
    interactive: bool,
    /// The NATS server of the manifest's [cluster], instead of its `url` (e.g.
    /// nats://10.0.0.5:4222).
    #[arg(long)]
    cluster_url: Option<String>,
    #[command(flatten)]
    cluster_security: ClusterFlags,
    /// Serve metrics in the Prometheus text format on http://ADDR/metrics, and the
    /// runtime's readiness on http://ADDR/health, while the run lasts (e.g. 127.0.0.1:9100).
    /// /health?probe=1 also asks each component (at most once a second). The endpoint has no
    /// authentication: bind it to a loopback address unless a proxy guards it.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
    /// Show the components' own reasons in /health?probe=1 answers (a guest's text; by
    /// default only its status is shown).
    #[arg(long, requires = "metrics")]
    health_details: bool,
    /// How status lines, engine events and guest log lines are written to stderr: text, or
    /// one JSON object per line.
    #[arg(long, value_enum, default_value_t = observe::LogFormat::Text)]
    log_format: observe::LogFormat,
    /// Redraw a live view of the counters on stdout while it is a terminal (nothing extra
    /// is printed when stdout is not a terminal).
    #[arg(long)]
    watch: bool,
}

/// TLS and credentials for the manifest's `[cluster]`, as its keys of the same names: TLS
/// flags replace its TLS keys, credential flags its credentials. Secrets come from files or
/// environment variables only (a value on the command line is visible to other users).
#[derive(Args)]
#[command(next_help_heading = "Cluster TLS and credentials (replace the manifest's [cluster] keys)")]
struct ClusterFlags {
    /// PEM file of the CAs the server's certificate must chain to (default: the system's).
    #[arg(long, value_name = "FILE")]
    cluster_tls_ca_file: Option<String>,
    /// This node's certificate (PEM), for a server that requires one (mutual TLS).
    #[arg(long, value_name = "FILE", requires = "cluster_tls_key_file")]
    cluster_tls_cert_file: Option<String>,
    /// The private key (PEM) of --cluster-tls-cert-file.
    #[arg(long, value_name = "FILE", requires = "cluster_tls_cert_file")]
    cluster_tls_key_file: Option<String>,
    /// The user name, with --cluster-password-file or --cluster-password-env.
    #[arg(long, value_name = "USER")]
    cluster_user: Option<String>,
    /// The file holding the user's password.
    #[arg(long, value_name = "FILE", requires = "cluster_user", conflicts_with = "cluster_password_env")]
    cluster_password_file: Option<String>,
    /// The environment variable holding the user's password.
    #[arg(long, value_name = "VAR", requires = "cluster_user")]
    cluster_password_env: Option<String>,
    /// The file holding the server's token.
    #[arg(long, value_name = "FILE", conflicts_with = "cluster_token_env")]
    cluster_token_file: Option<String>,
    /// The environment variable holding the server's token.
    #[arg(long, value_name = "VAR")]
    cluster_token_env: Option<String>,
    /// The file holding a user NKey seed (SU...).
    #[arg(long, value_name = "FILE", conflicts_with = "cluster_nkey_seed_env")]
    cluster_nkey_seed_file: Option<String>,
    /// The environment variable holding a user NKey seed (SU...).
    #[arg(long, value_name = "VAR")]
    cluster_nkey_seed_env: Option<String>,
    /// A .creds file (user JWT and NKey seed), for a server in operator mode.
    #[arg(long, value_name = "FILE")]
    cluster_creds_file: Option<String>,
}

impl ClusterFlags {
    /// The flags given, as `(manifest key, value)`.
    fn written(self) -> Vec<(&'static str, String)> {
        [
            ("tls_ca_file", self.cluster_tls_ca_file),
            ("tls_cert_file", self.cluster_tls_cert_file),
            ("tls_key_file", self.cluster_tls_key_file),
            ("user", self.cluster_user),
            ("password_file", self.cluster_password_file),
            ("password_env", self.cluster_password_env),
            ("token_file", self.cluster_token_file),
            ("token_env", self.cluster_token_env),
            ("nkey_seed_file", self.cluster_nkey_seed_file),
            ("nkey_seed_env", self.cluster_nkey_seed_env),
            ("creds_file", self.cluster_creds_file),
        ]
        .into_iter()
        .filter_map(|(key, value)| value.map(|v| (key, v)))
        .collect()
    }
}

#[derive(Subcommand)]
enum ComponentCmd {
    /// Turn a canonical-ABI core module (.wasm or .wat) into a component of our world.
    New {
        /// The core module.
        core: PathBuf,
        /// A WIT directory or file to take the world from (default: the embedded one).
        #[arg(long)]
        wit: Option<PathBuf>,
        /// Where to write the component.
        #[arg(short, long)]
        out: PathBuf,
    },
    /// Show a component's imports and exports and whether this host can run it.
    ///
    /// Exits with 0 when it can, 1 when it cannot.
    Inspect {
        /// The component (or core module) file.
        file: PathBuf,
        /// Compile through the compile cache in DIR (as `run --cache-dir DIR` does), so the
        /// component is compiled once and a later run finds it there. Default: no cache.
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
        /// Also say what each component of this manifest that uses FILE is granted through
        /// WASI (environment, arguments, directories, network).
        #[arg(long, value_name = "MANIFEST")]
        manifest: Option<PathBuf>,
    },
}

#[derive(Args)]
struct BenchCmd {
    /// Short runs (under a minute on 2 cores).
    #[arg(long)]
    quick: bool,
    /// Pin switchyard's worker threads to cores.
    #[arg(long)]
    pin: bool,
    /// Worker threads (default: available cores).
    #[arg(long)]
    workers: Option<usize>,
    /// Run one workload only (e.g. routing), for profiling.
    #[arg(long)]
    only: Option<String>,
    /// Also write the JSON report to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write PERF.md (machine, method, results, charts, notes) to this file, and its charts
    /// (SVG) to docs/perf/ beside it.
    #[arg(long)]
    write_perf: Option<PathBuf>,
    /// Also write the charts (SVG: latency distributions, throughput against components) to
    /// this folder.
    #[arg(long, value_name = "DIR")]
    charts: Option<PathBuf>,
    /// Also measure the cold start of this component file, with and without the compile
    /// cache (workload "wasm cold start"; it answers one request, payload "ping").
    #[arg(long, value_name = "FILE")]
    guest: Option<PathBuf>,
    /// Where workload "toolchain guests" finds the example guests that
    /// examples/guests/build.sh builds (default: examples/guests/build, if it exists).
    #[arg(long, value_name = "DIR")]
    guests: Option<PathBuf>,
    /// Internal: measure memory per component in this process (ENGINE N WORKERS).
    #[arg(long, hide = true, num_args = 3, value_names = ["ENGINE", "N", "WORKERS"])]
    memory_probe: Option<Vec<String>>,
}

/// Parses `30s`, `500ms`, `2m` or a plain number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: f64 = number.parse().map_err(|_| format!("{text:?} is not a duration (e.g. 30s, 500ms, 2m)"))?;
    let seconds = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        other => return Err(format!("unknown unit {other:?} (use ms, s, m or h)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    // Escaped: it may carry a component's own text (a failed start's reason).
    let message = message.to_string();
    let message = switchyard::text::printable(&message);
    if observe::json_logs() {
        tracing::error!(target: "switchyard::run", "{message}");
    } else {
        eprintln!("switchyard: error: {message}");
    }
    ExitCode::FAILURE
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(cmd) => {
            let cmd = *cmd;
            observe::init_logs(cmd.log_format);
            let cache = match (cmd.cache_dir, cmd.no_cache) {
                (_, true) => run::CacheChoice::Off,
                (Some(dir), false) => run::CacheChoice::At(dir),
                (None, false) => run::CacheChoice::UserCache,
            };
            let args = run::RunArgs {
                manifest: cmd.manifest,
                storage: cmd.storage,
                cache,
                request: cmd.request,
                duration: cmd.duration,
                interactive: cmd.interactive,
                cluster_url: cmd.cluster_url,
                cluster_security: cmd.cluster_security.written(),
                metrics: cmd.metrics,
                health_details: cmd.health_details,
                watch: cmd.watch,
            };
            match run::run(&args) {
                Ok(outcome) if outcome.rejected_inputs > 0 => ExitCode::from(EXIT_INPUT_REJECTED),
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => fail(e),
            }
        }
        Command::Component(ComponentCmd::New { core, wit, out }) => match component::new(&core, wit.as_deref(), &out) {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
        Command::Component(ComponentCmd::Inspect { file, cache_dir, manifest }) => {
            let grants = match manifest.as_deref().map(|m| component::manifest_grants(m, &file)).transpose() {
                Ok(grants) => grants.unwrap_or_default(),
                Err(e) => return fail(e),
            };
            match component::inspect(&file, cache_dir.as_deref(), &grants) {
                Ok(inspection) => {
                    print!("{}", inspection.text);
                    if inspection.satisfies { ExitCode::SUCCESS } else { ExitCode::FAILURE }
                }
                Err(e) => fail(e),
            }
        }
        Command::New(cmd) => {
            let (kind, args) = match cmd {
                NewCmd::Guest(args) => (new::Kind::Guest, args),
                NewCmd::Host(args) => (new::Kind::Host, args),
            };
            match new::new(&new::NewArgs { kind, name: args.name, dir: args.dir, sdk: args.sdk }) {
                Ok(text) => {
                    println!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        Command::Bench(cmd) => {
            if let Some(probe) = cmd.memory_probe {
                let parse =
                    |s: &String| s.parse::<usize>().map_err(|_| format!("--memory-probe: {s:?} is not a count"));
                return match (parse(&probe[1]), parse(&probe[2])) {
                    (Ok(n), Ok(workers)) => match bench::memory_probe_child(&probe[0], n, workers) {
                        Ok(()) => ExitCode::SUCCESS,
                        Err(e) => fail(e),
                    },
                    (Err(e), _) | (_, Err(e)) => fail(e),
                };
            }
            let args = bench::BenchArgs {
                quick: cmd.quick,
                pin: cmd.pin,
                workers: cmd.workers,
                only: cmd.only,
                json: cmd.json,
                write_perf: cmd.write_perf,
                charts: cmd.charts,
                guest: cmd.guest,
                guests: cmd.guests,
            };
            match bench::run(&args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3 weeks").is_err());
    }

    #[test]
    fn command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
