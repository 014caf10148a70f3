//! The `lifeboat` binary: `serve` runs the service; every other command is a client
//! of the running server's admin API (SPEC §7).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod cli;
mod cluster;
mod demo;
mod serve;

use lifeboat::config;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "lifeboat",
    version,
    about = "Email continuity: MX relay with failover to portal mailboxes"
)]
pub struct Cli {
    /// Configuration file (the embedded defaults when absent).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Admin API address, overriding the configuration (e.g. http://127.0.0.1:8025).
    #[arg(long, global = true, value_name = "URL")]
    pub server: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Runs Lifeboat.
    Serve,
    /// Manages protected domains.
    #[command(subcommand)]
    Domain(DomainCommand),
    /// Manages mailbox accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Forces a domain's mode, or releases it (`auto`).
    Mode {
        /// The domain.
        domain: String,
        /// normal, emergency or auto.
        #[arg(value_parser = ["normal", "emergency", "auto"])]
        mode: String,
    },
    /// Searches, shows and re-delivers archived mail.
    #[command(subcommand)]
    Archive(ArchiveCommand),
    /// Shows each domain's mode, upstream health, queue depth and portal counts.
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Shows the continuity loop on this machine: a server and a demo upstream in a
    /// temporary directory, relay, failover, the portal over IMAP, recovery and the
    /// drain; then keeps running with URLs and credentials until Ctrl-C.
    Demo {
        /// Exit after the steps instead of staying up.
        #[arg(long)]
        exit: bool,
    },
    /// Shows the audit log, newest first: every change made through the API, the
    /// command line and the control panel (SPEC §11).
    Audit {
        /// Only changes on or after this date (YYYY-MM-DD) or Unix time.
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
        /// Most entries.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Writes a consistent copy of the running server's store into DIR, a new
    /// directory that `lifeboat serve` starts from as its data_dir (SPEC §11).
    Backup {
        /// Where: a directory that does not exist yet, or an empty one.
        dir: PathBuf,
    },
    /// Shows the life of the messages a Message-ID, an archive id or an address
    /// names: accepted, archived, queued, delivery attempts with the remote reply,
    /// portal placement, what users did, the drain, DSNs (SPEC §11).
    Trace {
        /// A Message-ID (`<…>` or bare), an archive id, or an address.
        query: String,
        /// Only messages accepted on or after this date (YYYY-MM-DD) or Unix time.
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum DomainCommand {
    /// Protects a domain.
    Add {
        /// The domain.
        domain: String,
        /// The customer's mail server.
        #[arg(long, value_name = "HOST:PORT")]
        upstream: String,
        /// Which mailboxes are protected.
        #[arg(long, value_parser = ["all", "selected"])]
        coverage: Option<String>,
        /// Who switches modes.
        #[arg(long, value_parser = ["auto", "manual"])]
        failover: Option<String>,
    },
    /// Changes a domain's settings.
    Set {
        /// The domain.
        domain: String,
        /// The customer's mail server.
        #[arg(long, value_name = "HOST:PORT")]
        upstream: Option<String>,
        /// Which mailboxes are protected.
        #[arg(long, value_parser = ["all", "selected"])]
        coverage: Option<String>,
        /// Who switches modes.
        #[arg(long, value_parser = ["auto", "manual"])]
        failover: Option<String>,
    },
    /// Lists domains.
    List {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Shows a domain's DKIM keys and the DNS TXT records to publish, making an
    /// Ed25519 and an RSA-2048 key under a new selector if it has none (SPEC §12).
    Dkim {
        /// The domain.
        domain: String,
        /// Sign mail portal users send (making keys first if there are none).
        #[arg(long, group = "dkim_action")]
        enable: bool,
        /// Stop signing (the keys are kept).
        #[arg(long, group = "dkim_action")]
        disable: bool,
        /// New keys under a new selector; the current ones are retired.
        #[arg(long, group = "dkim_action")]
        rotate: bool,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

/// `lifeboat archive search`: every filter is optional.
#[derive(Args, Debug)]
pub struct ArchiveSearch {
    /// Sender (From header or envelope), substring.
    #[arg(long)]
    pub from: Option<String>,
    /// Recipient (To/Cc or envelope), substring.
    #[arg(long)]
    pub to: Option<String>,
    /// Subject, substring.
    #[arg(long)]
    pub subject: Option<String>,
    /// Text anywhere in the message.
    #[arg(long)]
    pub text: Option<String>,
    /// Accepted on or after this date (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Accepted before this date (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,
    /// in or out.
    #[arg(long, value_parser = ["in", "out"])]
    pub direction: Option<String>,
    /// Most results.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum ArchiveCommand {
    /// Searches archived mail, newest first.
    Search(ArchiveSearch),
    /// Shows one archived message: header, text, attachments.
    Show {
        /// Archive id (from search).
        id: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Delivers an archived message again: inbound to its recipients, outbound to its
    /// sender (upstream in normal mode, portal INBOX in emergency).
    Redeliver {
        /// Archive id (from search).
        id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Adds a mailbox account.
    Add {
        /// Full address.
        address: String,
        /// Read the password from standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
        /// What the account may do.
        #[arg(long, value_parser = ["user", "domain-admin", "admin"])]
        role: Option<String>,
        /// Protected under `coverage = selected`.
        #[arg(long)]
        covered: bool,
        /// Where password-reset mail goes (an address on another domain).
        #[arg(long, value_name = "ADDRESS")]
        recovery: Option<String>,
    },
    /// Sets an account's password.
    Passwd {
        /// Full address.
        address: String,
        /// Read the password from standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Lists accounts, of one domain or all.
    List {
        /// Only this domain.
        domain: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Removes an account and its portal mailbox.
    Del {
        /// Full address.
        address: String,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return ExitCode::from(2);
            }
            // One line: clap's first line, without the usage block.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!(
                "lifeboat: {} (see lifeboat --help)",
                first.trim_start_matches("error: ")
            );
            return ExitCode::from(2);
        }
    };
    let config = match &cli.config {
        Some(path) => config::Config::load(path),
        None => Ok(config::Config::embedded()),
    };
    let config = match config {
        Ok(config) => config,
        Err(e) => {
            eprintln!("lifeboat: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Serve => serve::run(config),
        Command::Demo { exit } => demo::run(!exit),
        command => cli::run(&config, cli.server.as_deref(), command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lifeboat: {e}");
            ExitCode::FAILURE
        }
    }
}
