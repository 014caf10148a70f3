//! `lifeboat-bench`: load generator for SMTP, IMAP and POP3 servers.
//!
//! The command line only turns options into the library's configurations, runs the
//! load on a multi-threaded runtime, prints a progress line on stderr once a second
//! and the report (table or `--json`) on stdout. Exit status: 0 when the run
//! completed (errors are in the report), 2 for a usage or set-up error.

use clap::{Args, Parser, Subcommand, ValueEnum};
use lifeboat_bench::conn::{Security, Timeouts};
use lifeboat_bench::imap::{self, ImapConfig, Mix};
use lifeboat_bench::load::{stop_channel, Plan, RunResult, Schedule, SESSIONS_MAX};
use lifeboat_bench::message::write_maildir;
use lifeboat_bench::pattern::AddressPattern;
use lifeboat_bench::pop3::{self, Pop3Config};
use lifeboat_bench::report::Report;
use lifeboat_bench::smtp::{self, SmtpConfig, RECIPIENTS_MAX};
use lifeboat_bench::stats::{Operation, Progress};
use lifeboat_bench::tls::{TlsClient, Verification};
use lifeboat_bench::units::{parse_duration, parse_size};
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How often the progress line is refreshed.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// Run length for IMAP and POP3 when neither --count nor --duration is given.
const DEFAULT_DURATION: Duration = Duration::from_secs(10);

#[derive(Parser, Debug)]
#[command(
    name = "lifeboat-bench",
    version,
    about = "Load generator for SMTP, IMAP and POP3 servers",
    long_about = "Load generator for SMTP, IMAP and POP3 servers (Lifeboat or any other).\n\
                  Closed loop by default (N sessions, each starting its next unit as soon \
                  as the last one ends); --rate R gives an open loop with R arrivals per \
                  second, latency measured from each arrival's intended start."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Send messages over SMTP (unit of work: one message)
    Smtp(SmtpArgs),
    /// Run an IMAP command mix, plus optional IDLE holders (unit: one command)
    Imap(ImapArgs),
    /// Log in, STAT, RETR every message, QUIT (unit: one session)
    Pop3(Pop3Args),
    /// Write a maildir of generated messages (to pre-fill servers under test)
    Maildir(MaildirArgs),
}

/// What generated messages' bodies are made of.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum BodyArg {
    /// One line of about 30 words, over and over (12 times compressible)
    Repeated,
    /// Made-up words, common ones often and rare ones seldom, a text of its own in every
    /// message (about twice compressible, like prose; hundreds of distinct words)
    Text,
}

impl BodyArg {
    fn body(self) -> lifeboat_bench::message::Body {
        match self {
            BodyArg::Repeated => lifeboat_bench::message::Body::Repeated,
            BodyArg::Text => lifeboat_bench::message::Body::Text { seed: 1 },
        }
    }
}

/// A switch: `--reuse on`, `--reuse off`, or `--reuse` alone for on.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum OnOff {
    On,
    Off,
}

impl OnOff {
    fn on(self) -> bool {
        self == OnOff::On
    }
}

#[derive(Args, Debug)]
struct LoadArgs {
    /// Server address, HOST:PORT [default: Lifeboat's loopback listener of the protocol]
    #[arg(long, short = 's')]
    server: Option<String>,
    /// Concurrent sessions (connections); in an open loop, the most in progress at once
    #[arg(long, short = 'c', visible_alias = "clients", default_value_t = 10)]
    sessions: usize,
    /// Units of work in total (messages, commands, sessions)
    #[arg(long, short = 'n')]
    count: Option<u64>,
    /// Run for this long (e.g. 30s, 2m); no unit starts after it
    #[arg(long, short = 'd', value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Open loop: units arriving per second (latency from the intended start)
    #[arg(long)]
    rate: Option<f64>,
    /// TCP connect timeout
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    connect_timeout: Duration,
    /// Timeout of every read and write
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    timeout: Duration,
    /// Upgrade with STARTTLS (STLS for POP3) after the greeting
    #[arg(long, value_enum, default_value_t = OnOff::Off, num_args = 0..=1, default_missing_value = "on")]
    starttls: OnOff,
    /// TLS from the first byte (SMTPS, IMAPS, POP3S)
    #[arg(long, conflicts_with = "starttls")]
    implicit_tls: bool,
    /// Accept any server certificate (self-signed test servers)
    #[arg(long)]
    tls_no_verify: bool,
    /// Trust the CA certificates in this PEM file
    #[arg(long, conflicts_with = "tls_no_verify")]
    tls_ca: Option<PathBuf>,
    /// Name expected in the server certificate [default: the host of --server]
    #[arg(long)]
    tls_server_name: Option<String>,
    /// Worker threads of the load generator (0: one per core)
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Print the report as JSON
    #[arg(long)]
    json: bool,
    /// No progress line on stderr
    #[arg(long, short = 'q')]
    quiet: bool,
}

#[derive(Args, Debug)]
struct SmtpArgs {
    #[command(flatten)]
    load: LoadArgs,
    /// Messages each session sends when neither --count nor --duration is given
    #[arg(long, short = 'm', default_value_t = 100)]
    messages_per_session: u64,
    /// Message size, headers included (e.g. 10KiB)
    #[arg(long, default_value = "10KiB", value_parser = parse_size)]
    size: u64,
    /// What the bodies are made of
    #[arg(long, value_enum, default_value_t = BodyArg::Repeated)]
    body: BodyArg,
    /// RCPT TO per message
    #[arg(long, short = 'r', default_value_t = 1)]
    recipients: u32,
    /// Pipeline MAIL/RCPT/DATA when the server offers PIPELINING
    #[arg(long, value_enum, default_value_t = OnOff::On, num_args = 0..=1, default_missing_value = "on")]
    pipelining: OnOff,
    /// Reuse each connection for the next message (off: one connection per message)
    #[arg(long, value_enum, default_value_t = OnOff::Off, num_args = 0..=1, default_missing_value = "on")]
    reuse: OnOff,
    /// Envelope sender
    #[arg(long, default_value = "bench@lifeboat-bench.test")]
    from: String,
    /// Recipient address; the number placeholder (see the default) takes 1..=--users in turn
    #[arg(long, default_value = "user{n}@example.test")]
    to: String,
    /// How many numbers the placeholder in --to cycles through
    #[arg(long, default_value_t = 100)]
    users: u64,
    /// Name sent with EHLO
    #[arg(long, default_value = "lifeboat-bench.test")]
    ehlo: String,
}

#[derive(Args, Debug)]
struct ImapArgs {
    #[command(flatten)]
    load: LoadArgs,
    /// Login name; the number placeholder (see the default) becomes the client's user number
    #[arg(long, short = 'u', default_value = "user{n}@example.test")]
    user: String,
    /// Password of every user
    #[arg(long, short = 'p', default_value = "password")]
    password: String,
    /// Number of distinct users (client i is user i % users + 1) [default: one per session and IDLE holder]
    #[arg(long)]
    users: Option<u64>,
    /// Command mix as command=weight,... (select, fetch-headers, fetch-body, search, store, append, noop)
    #[arg(long, default_value = imap::DEFAULT_MIX)]
    mix: String,
    /// Mailbox to select
    #[arg(long, default_value = "INBOX")]
    mailbox: String,
    /// Extra connections that stay in IDLE for the whole run
    #[arg(long, default_value_t = 0)]
    idle: usize,
    /// Messages per fetch-headers
    #[arg(long, default_value_t = 10)]
    fetch_count: u32,
    /// Size of appended messages
    #[arg(long, default_value = "4KiB", value_parser = parse_size)]
    append_size: u64,
    /// What appended messages' bodies are made of
    #[arg(long, value_enum, default_value_t = BodyArg::Repeated)]
    body: BodyArg,
    /// SEARCH criteria, sent as given
    #[arg(long, default_value = "SUBJECT \"lifeboat\"")]
    search: String,
    /// Before the run, APPEND until each user's mailbox holds this many messages
    #[arg(long, default_value_t = 0)]
    fill: u32,
    /// Run imaptest's default stress cycle instead of --mix: LOGIN as a random user of
    /// 1..=--users, SELECT, FETCH, FETCH body, SEARCH, STORE, STORE \Deleted, EXPUNGE,
    /// APPEND, LOGOUT, over and over (one command per unit)
    #[arg(long)]
    stress: bool,
    /// Turn on COMPRESS=DEFLATE (RFC 4978) after login when the server offers it
    #[arg(long)]
    compress: bool,
    /// Seed of the stress cycle's random choices
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Args, Debug)]
struct Pop3Args {
    #[command(flatten)]
    load: LoadArgs,
    /// Login name; the number placeholder (see the default) becomes the client's user number
    #[arg(long, short = 'u', default_value = "user{n}@example.test")]
    user: String,
    /// Password of every user
    #[arg(long, short = 'p', default_value = "password")]
    password: String,
    /// Number of distinct users (client i is user i % users + 1) [default: one per session]
    #[arg(long)]
    users: Option<u64>,
    /// Retrieve at most this many messages per session [default: all]
    #[arg(long)]
    retr_max: Option<u32>,
}

#[derive(Args, Debug)]
struct MaildirArgs {
    /// Maildir to create or add to (cur/, new/, tmp/ are created)
    directory: PathBuf,
    /// Number of messages
    #[arg(long, default_value_t = 200)]
    messages: u32,
    /// Smallest message size
    #[arg(long, default_value = "2KiB", value_parser = parse_size)]
    size_min: u64,
    /// Largest message size
    #[arg(long, default_value = "20KiB", value_parser = parse_size)]
    size_max: u64,
    /// To: header of the messages
    #[arg(long, default_value = "user@example.test")]
    to: String,
    /// Seed of the size sequence (same seed, same sizes)
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// A usage or set-up error: printed on one line, exit status 2.
#[derive(Debug)]
struct SetupError(String);

impl<E: std::fmt::Display> From<E> for SetupError {
    fn from(error: E) -> Self {
        SetupError(error.to_string())
    }
}

fn main() {
    let cli = Cli::parse();
    if let Err(SetupError(message)) = run(cli) {
        eprintln!("lifeboat-bench: {message}");
        std::process::exit(2);
    }
}

fn run(cli: Cli) -> Result<(), SetupError> {
    let load = match &cli.command {
        Command::Smtp(args) => &args.load,
        Command::Imap(args) => &args.load,
        Command::Pop3(args) => &args.load,
        Command::Maildir(args) => {
            let summary = write_maildir(
                &args.directory,
                args.messages,
                usize::try_from(args.size_min)?,
                usize::try_from(args.size_max)?,
                &args.to,
                args.seed,
            )
            .map_err(|error| format!("{}: {error}", args.directory.display()))?;
            println!(
                "{}: {} messages, {} bytes",
                args.directory.display(),
                summary.messages,
                summary.wire_bytes
            );
            return Ok(());
        }
    };
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if load.threads > 0 {
        runtime.worker_threads(load.threads);
    }
    let runtime = runtime.build()?;
    runtime.block_on(run_load(cli.command))
}

/// Checks the options every protocol shares and builds the plan.
fn plan(load: &LoadArgs, default_count: Option<u64>) -> Result<Plan, SetupError> {
    if load.sessions == 0 || load.sessions > SESSIONS_MAX {
        return Err(SetupError(format!(
            "--sessions must be between 1 and {SESSIONS_MAX}"
        )));
    }
    if let Some(rate) = load.rate {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(SetupError("--rate must be a positive number".into()));
        }
    }
    let (count, duration) = match (load.count, load.duration) {
        (None, None) => match default_count {
            Some(count) => (Some(count), None),
            None => (None, Some(DEFAULT_DURATION)),
        },
        given => given,
    };
    Ok(Plan {
        sessions: load.sessions,
        count,
        duration,
        rate_per_second: load.rate,
    })
}

/// Resolves the server address and the TLS settings.
async fn endpoint(
    load: &LoadArgs,
    default_server: &str,
) -> Result<(String, SocketAddr, Security, Timeouts), SetupError> {
    let server = load
        .server
        .clone()
        .unwrap_or_else(|| default_server.to_string());
    let address = tokio::net::lookup_host(&server)
        .await
        .map_err(|error| format!("cannot resolve {server}: {error}"))?
        .next()
        .ok_or_else(|| format!("{server} has no address"))?;
    let wants_tls = load.starttls.on() || load.implicit_tls;
    let security = if wants_tls {
        let verification = match (&load.tls_ca, load.tls_no_verify) {
            (Some(path), _) => Verification::CaFile(path.clone()),
            (None, true) => Verification::None,
            (None, false) => {
                return Err(SetupError(
                    "TLS needs --tls-ca FILE or --tls-no-verify".into(),
                ))
            }
        };
        let host = server
            .rsplit_once(':')
            .map_or(server.as_str(), |(host, _port)| host)
            .trim_start_matches('[')
            .trim_end_matches(']');
        let name = load.tls_server_name.as_deref().unwrap_or(host);
        let client = Arc::new(TlsClient::new(&verification, name)?);
        if load.implicit_tls {
            Security::Implicit(client)
        } else {
            Security::StartTls(client)
        }
    } else {
        Security::Plain
    };
    let timeouts = Timeouts {
        connect: load.connect_timeout,
        io: load.timeout,
    };
    Ok((server, address, security, timeouts))
}

async fn run_load(command: Command) -> Result<(), SetupError> {
    let progress = Arc::new(Progress::default());
    let (stop, stopped) = stop_channel();
    let (protocol, load, server, plan, run, units): (
        &'static str,
        &LoadArgs,
        String,
        Plan,
        LoadRun,
        Vec<Operation>,
    ) = match &command {
        Command::Smtp(args) => {
            let load = &args.load;
            let plan = plan(
                load,
                Some(
                    args.messages_per_session
                        .saturating_mul(load.sessions as u64),
                ),
            )?;
            let (server, address, security, timeouts) = endpoint(load, "127.0.0.1:2525").await?;
            if args.recipients == 0 || args.recipients > RECIPIENTS_MAX {
                return Err(SetupError(format!(
                    "--recipients must be between 1 and {RECIPIENTS_MAX}"
                )));
            }
            let config = SmtpConfig {
                server: address,
                timeouts,
                security,
                ehlo_name: args.ehlo.clone(),
                from: args.from.clone(),
                to: AddressPattern::new(args.to.clone()),
                users: args.users.max(1),
                recipients: args.recipients,
                size_bytes: usize::try_from(args.size)?,
                body: args.body.body(),
                pipelining: args.pipelining.on(),
                reuse: args.reuse.on(),
            };
            let run = LoadRun::Smtp(Arc::new(config));
            ("smtp", load, server, plan, run, smtp::UNITS.to_vec())
        }
        Command::Imap(args) => {
            let load = &args.load;
            let plan = plan(load, None)?;
            let (server, address, security, timeouts) = endpoint(load, "127.0.0.1:2143").await?;
            let mix: Mix = args.mix.parse()?;
            let units = if args.stress {
                imap::STRESS_UNITS.to_vec()
            } else {
                mix.operations()
            };
            let config = ImapConfig {
                server: address,
                timeouts,
                security,
                user: AddressPattern::new(args.user.clone()),
                users: args
                    .users
                    .unwrap_or((load.sessions + args.idle) as u64)
                    .max(1),
                password: args.password.clone(),
                mailbox: args.mailbox.clone(),
                mix,
                idle_holders: args.idle,
                fetch_count: args.fetch_count,
                append_size_bytes: usize::try_from(args.append_size)?,
                append_body: args.body.body(),
                search_query: args.search.clone(),
                fill: args.fill,
                stress: args.stress,
                compress: args.compress,
                seed: args.seed,
            };
            let run = LoadRun::Imap(Arc::new(config));
            ("imap", load, server, plan, run, units)
        }
        Command::Pop3(args) => {
            let load = &args.load;
            let plan = plan(load, None)?;
            let (server, address, security, timeouts) = endpoint(load, "127.0.0.1:2110").await?;
            let config = Pop3Config {
                server: address,
                timeouts,
                security,
                user: AddressPattern::new(args.user.clone()),
                users: args.users.unwrap_or(load.sessions as u64).max(1),
                password: args.password.clone(),
                retr_max: args.retr_max,
            };
            let run = LoadRun::Pop3(Arc::new(config));
            ("pop3", load, server, plan, run, pop3::UNITS.to_vec())
        }
        Command::Maildir(_) => unreachable!("handled before the runtime starts"),
    };

    let schedule = Arc::new(Schedule::new(plan, stopped));
    let progress_task = (!load.quiet).then(|| {
        tokio::spawn(progress_line(
            protocol,
            server.clone(),
            progress.clone(),
            schedule.clone(),
        ))
    });
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\nlifeboat-bench: interrupted, finishing the units in progress");
            stop.send_replace(true);
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });

    let result: RunResult = match run {
        LoadRun::Smtp(config) => smtp::run(config, schedule.clone(), progress.clone()).await,
        LoadRun::Imap(config) => imap::run(config, schedule.clone(), progress.clone()).await,
        LoadRun::Pop3(config) => pop3::run(config, schedule.clone(), progress.clone()).await,
    };
    if let Some(task) = progress_task {
        task.abort();
        if std::io::stderr().is_terminal() {
            eprintln!();
        }
    }
    let report = Report::new(
        protocol,
        server,
        &plan,
        result.elapsed,
        &result.stats,
        &units,
    );
    let text = if load.json {
        report.to_json() + "\n"
    } else {
        report.to_table()
    };
    // A closed pipe (`| head`) is the reader's choice, not an error worth a panic.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(())
}

/// The configured load, ready to run.
enum LoadRun {
    Smtp(Arc<SmtpConfig>),
    Imap(Arc<ImapConfig>),
    Pop3(Arc<Pop3Config>),
}

/// Prints totals and the rate of the last interval on stderr, once a second; on a
/// terminal the line is rewritten in place.
async fn progress_line(
    protocol: &'static str,
    server: String,
    progress: Arc<Progress>,
    schedule: Arc<Schedule>,
) {
    let terminal = std::io::stderr().is_terminal();
    let mut ticker = tokio::time::interval(PROGRESS_INTERVAL);
    ticker.tick().await;
    let mut previous = progress.snapshot();
    loop {
        ticker.tick().await;
        let now = progress.snapshot();
        let seconds = PROGRESS_INTERVAL.as_secs_f64();
        let line = format!(
            "[{:>4.0}s] {protocol} {server}: ops {} ({:.0}/s), errors {} ({:.0}/s), messages {} ({:.0}/s), {:.1} MB",
            schedule.elapsed().as_secs_f64(),
            now.ok,
            (now.ok - previous.ok) as f64 / seconds,
            now.errors,
            (now.errors - previous.errors) as f64 / seconds,
            now.messages,
            (now.messages - previous.messages) as f64 / seconds,
            now.bytes as f64 / 1e6,
        );
        if terminal {
            eprint!("\r{line}\x1b[K");
        } else {
            eprintln!("{line}");
        }
        previous = now;
    }
}
