//! Configuration (SPEC §8, §8.1): TOML, every key with an embedded default, unknown keys
//! and bad values rejected with an error naming the file and the key.
//!
//! The embedded defaults are `default.toml`, which is exactly SPEC §8's file, followed
//! by `extensions.toml`, exactly §8.1's, and `additions.toml`, the keys this version
//! has beyond them. A user file is merged over them key by key, so
//! it only needs the keys it changes; the merged table is then deserialized into
//! [`Config`], whose types say what each key holds and check it (durations and sizes
//! with units, ranges, addresses). The types are also the reference: their doc comments
//! and the embedded defaults make README's configuration table ([`markdown_table`]).

use std::fmt::Display;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use documented::DocumentedFields;
use ipnet::IpNet;
use lifeboat_net::IoMode;
use serde::de::{Deserializer, Error as _};
use serde::Deserialize;

/// SPEC §8's file: the embedded defaults of its keys.
pub const DEFAULT_TOML: &str = include_str!("default.toml");

/// SPEC §8.1's file: the keys added after §8, with their defaults; a user file may set
/// them like any other key.
pub const EXTENSIONS_TOML: &str = include_str!("extensions.toml");

/// Keys beyond SPEC §8 and §8.1, with their defaults.
pub const ADDITIONS_TOML: &str = include_str!("additions.toml");

/// A configuration error: the file (or "embedded defaults") and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {message}")]
pub struct ConfigError {
    /// The file.
    pub origin: String,
    /// What is wrong, naming the key.
    pub message: String,
}

/// `[server]`
#[derive(Debug, Clone, Deserialize, DocumentedFields)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Name in greetings, Received headers and bounces.
    #[serde(deserialize_with = "host_name")]
    pub hostname: String,
    /// Store, archive text index, certificate, admin token.
    #[serde(deserialize_with = "directory")]
    pub data_dir: PathBuf,
    /// I/O threads; 0 = one per core.
    #[serde(deserialize_with = "int::<_, _, 0, 1024>")]
    pub threads: usize,
    /// `auto` (io_uring, falling back to epoll where it is blocked), `uring`, `epoll`.
    #[serde(deserialize_with = "io_mode")]
    pub io: IoMode,
}

/// `[listen]`: each `IP:PORT`, or `None` (`""`) for a disabled listener.
#[derive(Debug, Clone, Deserialize, DocumentedFields)]
#[serde(deny_unknown_fields)]
pub struct ListenSection {
    /// MX: inbound mail and smart host (STARTTLS); `""` disables any listener.
    #[serde(deserialize_with = "listener")]
    pub smtp: Option<SocketAddr>,
    /// Submission with STARTTLS, AUTH required.
    #[serde(deserialize_with = "listener")]
    pub submission: Option<SocketAddr>,
    /// Submission with implicit TLS.
    #[serde(deserialize_with = "listener")]
    pub submissions: Option<SocketAddr>,
    /// IMAP with STARTTLS.
    #[serde(deserialize_with = "listener")]
    pub imap: Option<SocketAddr>,
    /// IMAP with implicit TLS.
    #[serde(deserialize_with = "listener")]
    pub imaps: Option<SocketAddr>,
    /// POP3 with STLS.
    #[serde(deserialize_with = "listener")]
    pub pop3: Option<SocketAddr>,
    /// POP3 with implicit TLS.
    #[serde(deserialize_with = "listener")]
    pub pop3s: Option<SocketAddr>,
    /// Control panel, webmail and API; plain HTTP on loopback, HTTPS (the `[tls]`
    /// certificate) on any other address.
    #[serde(deserialize_with = "listener")]
    pub http: Option<SocketAddr>,
}

/// `[tls]`
#[derive(Debug, Clone, Deserialize, DocumentedFields)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// PEM certificate chain, set together with `tls.key`; empty = a self-signed
    /// certificate generated into data_dir.
    #[serde(deserialize_with = "optional_path")]
    pub cert: Option<PathBuf>,
    /// PEM private key of `tls.cert`.
    #[serde(deserialize_with = "optional_path")]
    pub key: Option<PathBuf>,
}

/// `[auth]`
#[derive(Debug, Clone, Deserialize, DocumentedFields)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    /// Allow password logins before TLS from loopback clients.
    #[serde(deserialize_with = "boolean")]
    pub allow_plaintext_loopback: bool,
}

/// `[limits]`
#[derive(Debug, Clone, Deserialize, DocumentedFields)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Largest message accepted.
    #[serde(deserialize_with = "size")]
    pub message_size_max: u64,
    /// Recipients per message.
    #[serde(deserialize_with = "int::<_, _, 1, 100_000>")]
    pub recipients_max: usize,
    /// Longest SMTP/POP3 command line (IMAP accepts at least 8192, RFC 7162).
    #[serde(deserialize_with = "int::<_, _, 512, 1_048_576>")]
    pub line_bytes_max: usize,
    /// Connections per listener.
    #[serde(deserialize_with = "int::<_, _, 1, 10_000_000>")]
    pub connections_max: usize,
    /// Connections per client address (IPv6: per /64), on each listener (HTTP too).
    #[serde(deserialize_with = "int::<_, _, 1, 10_000_000>")]
    pub connections_per_ip_max: usize,
    /// Idle connections are closed after this. (IMAP and POP3 clients that have not
    /// logged in are closed 3 minutes after connecting in any case.)
    #[serde(deserialize_with = "duration")]
    pub idle_timeout: Duration,
    /// Message bytes all SMTP sessions and IMAP APPENDs together hold in memory while
    /// receiving. A message that would pass it continues in an unlinked file in
    /// `data_dir/spill` and is committed from there; if that file cannot be written,
    /// SMTP answers `451 4.3.0` and IMAP `NO [LIMIT]` (`452 4.3.1` and
    /// `NO [OVERQUOTA]` if the disk is full). At least `message_size_max`.
    #[serde(deserialize_with = "size")]
    pub message_memory_max: u64,
    /// Disk space kept free on `data_dir`'s file system: while less is free, nothing
    /// that adds a message is taken (MAIL is refused with `452 4.3.1`, also when less
    /// than a size declared with it is free on top, IMAP APPEND with
    /// `NO [OVERQUOTA]`), while reading, flags, deletions and deliveries go on. 0
    /// turns the check off.
    #[serde(deserialize_with = "size_or_off")]
    pub disk_free_min: u64,
}

/// `[router]`
#[derive(Debug, Clone, Deserialize, DocumentedFields)]
#[serde(deny_unknown_fields)]
pub struct RouterSection {
    /// Consecutive failures (timeout, refused, reset, 4xx) that mark an upstream down.
    #[serde(deserialize_with = "int::<_, _, 1, 1000>")]
    pub down_after: u32,
    /// Consecutive good probes that mark it up.
    #[serde(deserialize_with = "int::<_, _, 1, 1000>")]
    pub up_after: u32,
    /// Time between probes of a down upstream.
    #[serde(deserialize_with = "duration")]
    pub probe_interval: Duration,
    /// Connecting to upstreams.
    #[serde(deserialize_with = "duration")]
    pub connect_timeout: Duration,
    /// Each reply from upstreams, and each 64 KiB of a message written to them. The
    /// reply to the end of a message's data is waited for 10 minutes when this is
    /// shorter (RFC 5321 §4.5.3.2.6: the upstream may be scanning it).
    #[serde(deserialize_with = "duration")]
    pub command_timeout: Duration,
    /// Normal-mode recipient verification cache.
    #[serde(deserialize_with = "duration")]
    pub verify_cache_ttl: Duration,
}

/// `[queue]`
#[derive(Debug, Clone, Deserialize, DocumentedFields)]
#[serde(deny_unknown_fields)]
pub struct QueueSection {
    /// Retry intervals; the last repeats.
    #[serde(deserialize_with = "durations")]
    pub retry: Vec<Duration>,
    /// Undeliverable mail bounces after this.
    #[serde(deserialize_with = "duration")]
    pub lifetime: Duration,
}

/// `[archive]`
#[derive(Debug, Clone, Deserialize, DocumentedFields)]
#[serde(deny_unknown_fields)]
pub struct ArchiveSection {
    /// Archived mail is removed after this many days (checked hourly).
    #[serde(deserialize_with = "int::<_, _, 1, 36_500>")]
    pub retention_days: u32,
}

/// `[outbound]`
#[derive(Debug, Clone, Deserialize, DocumentedFields)]
#[serde(deny_unknown_fields)]
pub struct OutboundSection {
    /// Client networks that may use the smtp listener as smart host.
    #[serde(deserialize_with = "networks")]
    pub relay_networks: Vec<IpNet>,
    /// `host:port` for all outbound mail; empty = MX lookup (the system's resolver),
    /// port 25.
    #[serde(deserialize_with = "next_hop")]
    pub next_hop: Option<String>,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// `[log]`
#[derive(Debug, Clone, Deserialize, DocumentedFields)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// `human` or `json` (one object per line, on stderr).
    #[serde(deserialize_with = "log_format")]
    pub format: LogFormat,
    /// A level or tracing filter (`info`, `lifeboat=debug,info`); the `LIFEBOAT_LOG`
    /// variable overrides it.
    #[serde(deserialize_with = "log_level")]
    pub level: String,
}

/// `[web]`
#[derive(Debug, Clone, Deserialize, DocumentedFields)]
#[serde(deny_unknown_fields)]
pub struct WebSection {
    /// Control panel and webmail sessions end after this idle time.
    #[serde(deserialize_with = "duration")]
    pub session_idle: Duration,
    /// And after this in any case (not shorter than `web.session_idle`).
    #[serde(deserialize_with = "duration")]
    pub session_max: Duration,
}

/// `[cluster]`. Parsing resolves an empty `node` to `server.hostname`.
#[derive(Debug, Clone, Deserialize, DocumentedFields)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// NATS JetStream server URLs (`nats://host:port`); empty = a single node.
    #[serde(deserialize_with = "nats_urls")]
    pub nats: Vec<String>,
    /// This node's name in the cluster (letters, digits, `.`, `-`, `_`); empty =
    /// `server.hostname`.
    #[serde(deserialize_with = "node_name")]
    pub node: String,
    /// JetStream replicas of the mail log: 1, 3 or 5.
    #[serde(deserialize_with = "replicas")]
    pub replicas: u8,
    /// How often the leader stores a snapshot of the store in JetStream (when mail
    /// arrived since the last); the mail log is trimmed behind them, and a node whose
    /// store is behind the log's start loads the latest.
    #[serde(deserialize_with = "duration")]
    pub snapshot_interval: Duration,
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, DocumentedFields)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where it came from, for messages.
    #[serde(skip)]
    pub origin: String,
    /// `[server]`
    pub server: ServerSection,
    /// `[listen]`
    pub listen: ListenSection,
    /// `[tls]`
    pub tls: TlsSection,
    /// `[auth]`
    pub auth: AuthSection,
    /// `[limits]`
    pub limits: LimitsSection,
    /// `[router]`
    pub router: RouterSection,
    /// `[queue]`
    pub queue: QueueSection,
    /// `[archive]`
    pub archive: ArchiveSection,
    /// `[outbound]`
    pub outbound: OutboundSection,
    /// `[log]`
    pub log: LogSection,
    /// `[web]`
    pub web: WebSection,
    /// `[cluster]`
    pub cluster: ClusterSection,
}

/// Parses `"500ms"`, `"15s"`, `"5m"`, `"2h"`, `"5d"`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = s.split_at(split);
    let n: u64 = number.parse().ok()?;
    let ms = match unit {
        "ms" => n,
        "s" => n.checked_mul(1000)?,
        "m" => n.checked_mul(60_000)?,
        "h" => n.checked_mul(3_600_000)?,
        "d" => n.checked_mul(86_400_000)?,
        _ => return None,
    };
    Some(Duration::from_millis(ms))
}

/// Parses a size: bytes as a number, or a string with a unit (`"50MiB"`, `"10KB"`).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number.parse().ok()?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1000,
        "KiB" => 1 << 10,
        "MB" => 1_000_000,
        "MiB" => 1 << 20,
        "GB" => 1_000_000_000,
        "GiB" => 1 << 30,
        "TB" => 1_000_000_000_000,
        "TiB" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(factor)
}

// The field deserializers. Each reads the TOML value and checks it, so that an error
// says what was expected and what the file holds; `Config::parse` adds the key.

/// Reads a TOML value and turns it into `T` with `convert`, or fails with "expected
/// `expected`, got VALUE".
fn checked<'de, D, T>(
    deserializer: D,
    expected: impl Display,
    convert: impl FnOnce(&toml::Value) -> Option<T>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    let value = toml::Value::deserialize(deserializer)?;
    convert(&value).ok_or_else(|| D::Error::custom(format!("expected {expected}, got {value}")))
}

fn int<'de, D, T, const MIN: i64, const MAX: i64>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
{
    checked(
        deserializer,
        format_args!("an integer from {MIN} to {MAX}"),
        |value| {
            value
                .as_integer()
                .filter(|n| (MIN..=MAX).contains(n))
                .and_then(|n| T::try_from(n).ok())
        },
    )
}

fn boolean<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    checked(deserializer, "true or false", toml::Value::as_bool)
}

fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    checked(
        deserializer,
        "a duration such as \"500ms\", \"15s\", \"5m\", \"2h\" or \"5d\"",
        |value| {
            value
                .as_str()
                .and_then(parse_duration)
                .filter(|d| !d.is_zero())
        },
    )
}

fn durations<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Duration>, D::Error> {
    checked(
        deserializer,
        "a non-empty list of durations such as [\"1m\", \"5m\"]",
        |value| {
            value.as_array().filter(|a| !a.is_empty()).and_then(|a| {
                a.iter()
                    .map(|v| v.as_str().and_then(parse_duration))
                    .collect()
            })
        },
    )
}

fn size<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    checked(
        deserializer,
        "a size in bytes or with a unit, such as \"50MiB\"",
        |value| match value {
            toml::Value::Integer(n) => u64::try_from(*n).ok().filter(|n| *n > 0),
            toml::Value::String(s) => parse_size(s).filter(|n| *n > 0),
            _ => None,
        },
    )
}

/// A size where 0 turns something off.
fn size_or_off<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    checked(
        deserializer,
        "a size in bytes or with a unit, such as \"50MiB\", or 0 (off)",
        |value| match value {
            toml::Value::Integer(n) => u64::try_from(*n).ok(),
            toml::Value::String(s) => parse_size(s),
            _ => None,
        },
    )
}

fn host_name<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    checked(deserializer, "a host name", |value| {
        value
            .as_str()
            .filter(|s| !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || c.is_control()))
            .map(str::to_string)
    })
}

fn directory<'de, D: Deserializer<'de>>(deserializer: D) -> Result<PathBuf, D::Error> {
    checked(deserializer, "a directory", |value| {
        value.as_str().filter(|s| !s.is_empty()).map(PathBuf::from)
    })
}

fn optional_path<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<PathBuf>, D::Error> {
    checked(deserializer, "a string", |value| {
        value
            .as_str()
            .map(|s| (!s.is_empty()).then(|| PathBuf::from(s)))
    })
}

fn io_mode<'de, D: Deserializer<'de>>(deserializer: D) -> Result<IoMode, D::Error> {
    checked(
        deserializer,
        "\"auto\", \"uring\" or \"epoll\"",
        |value| match value.as_str()? {
            "auto" => Some(IoMode::Auto),
            "uring" => Some(IoMode::Uring),
            "epoll" => Some(IoMode::Epoll),
            _ => None,
        },
    )
}

fn listener<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<SocketAddr>, D::Error> {
    checked(
        deserializer,
        "\"IP:PORT\" (e.g. \"0.0.0.0:25\") or \"\" to disable",
        |value| match value.as_str()? {
            "" => Some(None),
            s => s.parse().ok().map(Some),
        },
    )
}

fn networks<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<IpNet>, D::Error> {
    checked(
        deserializer,
        "a list of networks such as [\"10.0.0.0/8\"]",
        |value| {
            value
                .as_array()?
                .iter()
                .map(|v| {
                    let s = v.as_str()?;
                    s.parse::<IpNet>()
                        .ok()
                        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
                })
                .collect()
        },
    )
}

fn next_hop<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    checked(deserializer, "\"host:port\" or \"\"", |value| {
        match value.as_str()? {
            "" => Some(None),
            s => is_host_port(s).then(|| Some(s.to_string())),
        }
    })
}

fn log_format<'de, D: Deserializer<'de>>(deserializer: D) -> Result<LogFormat, D::Error> {
    checked(deserializer, "\"human\" or \"json\"", |value| {
        match value.as_str()? {
            "human" => Some(LogFormat::Human),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    })
}

fn log_level<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    checked(
        deserializer,
        "a level or tracing filter such as \"info\"",
        |value| {
            value
                .as_str()
                .filter(|s| tracing_subscriber::EnvFilter::try_new(s).is_ok())
                .map(str::to_string)
        },
    )
}

fn nats_urls<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    checked(
        deserializer,
        "a list of NATS server URLs such as [\"nats://10.0.0.1:4222\"]",
        |value| {
            value
                .as_array()?
                .iter()
                .map(|v| v.as_str().filter(|s| is_nats_url(s)).map(str::to_string))
                .collect()
        },
    )
}

fn node_name<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    checked(
        deserializer,
        "a name of letters, digits, \".\", \"-\" and \"_\", or \"\"",
        |value| {
            value
                .as_str()
                .filter(|s| {
                    s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
                })
                .map(str::to_string)
        },
    )
}

fn replicas<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u8, D::Error> {
    checked(deserializer, "1, 3 or 5", |value| {
        match value.as_integer()? {
            1 => Some(1),
            3 => Some(3),
            5 => Some(5),
            _ => None,
        }
    })
}

fn is_host_port(s: &str) -> bool {
    match s.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0),
        None => false,
    }
}

/// `[nats://|tls://|ws://|wss://][user[:password]@]host[:port]`, as NATS clients take
/// server URLs.
fn is_nats_url(s: &str) -> bool {
    let rest = match s.split_once("://") {
        Some(("nats" | "tls" | "ws" | "wss", rest)) => rest,
        Some(_) => return false,
        None => s,
    };
    let host_port = rest
        .rsplit_once('@')
        .map_or(rest, |(_, host_port)| host_port);
    if host_port.is_empty() || host_port.contains(|c: char| c.is_whitespace() || c == '/') {
        return false;
    }
    if host_port.ends_with(']') {
        return host_port.starts_with('[');
    }
    match host_port.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0),
        None => true,
    }
}

impl Config {
    /// The embedded defaults.
    pub fn embedded() -> Config {
        Config::parse("", "embedded defaults").expect("the embedded defaults are valid")
    }

    /// Reads a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            origin: origin.clone(),
            message: format!("cannot read the configuration file: {e}"),
        })?;
        Config::parse(&text, &origin)
    }

    /// Parses configuration text merged over the embedded defaults.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let fail = |message: String| ConfigError {
            origin: origin.to_string(),
            message,
        };
        let user: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            fail(format!("not valid TOML: {}", e.to_string().trim_end()))
        })?;
        let mut merged = defaults();
        for (section, values) in user {
            let Some(defaults) = merged.get_mut(&section).and_then(|v| v.as_table_mut()) else {
                return Err(fail(format!("unknown section [{section}]")));
            };
            let toml::Value::Table(values) = values else {
                return Err(fail(format!("`{section}` must be a section ([{section}])")));
            };
            for (key, value) in values {
                if !defaults.contains_key(&key) {
                    let known: Vec<&str> = defaults.keys().map(String::as_str).collect();
                    return Err(fail(format!(
                        "unknown key `{section}.{key}` (known keys of [{section}]: {})",
                        known.join(", ")
                    )));
                }
                defaults.insert(key, value);
            }
        }
        let mut config: Config = serde_path_to_error::deserialize(toml::Value::Table(merged))
            .map_err(|e| {
                fail(format!(
                    "invalid value for `{}`: {}",
                    e.path(),
                    e.inner().message()
                ))
            })?;
        config.origin = origin.to_string();
        if config.tls.cert.is_some() != config.tls.key.is_some() {
            return Err(fail(
                "`tls.cert` and `tls.key` must be set together (or both left empty for a self-signed certificate)"
                    .into(),
            ));
        }
        if config.web.session_idle > config.web.session_max {
            return Err(fail(
                "`web.session_idle` must not be longer than `web.session_max`".into(),
            ));
        }
        if config.limits.message_memory_max < config.limits.message_size_max {
            return Err(fail(format!(
                "`limits.message_memory_max` ({} bytes) must not be smaller than `limits.message_size_max` ({} bytes): no message that size could be received",
                config.limits.message_memory_max, config.limits.message_size_max
            )));
        }
        if config.cluster.node.is_empty() {
            config.cluster.node = config.server.hostname.clone();
        }
        Ok(config)
    }

    /// The store's options: its disk reserve is `limits.disk_free_min`.
    pub fn store_options(&self) -> lifeboat_store::Options {
        lifeboat_store::Options {
            disk_free_min: self.limits.disk_free_min,
            ..lifeboat_store::Options::default()
        }
    }

    /// Where SMTP sessions spill messages once `limits.message_memory_max` is spent.
    pub fn spill_dir(&self) -> PathBuf {
        self.server.data_dir.join("spill")
    }

    /// Where the admin token is.
    pub fn token_path(&self) -> PathBuf {
        self.server.data_dir.join("admin.token")
    }

    /// The server's certificate: `tls.cert`, or the self-signed one in `data_dir`.
    pub fn cert_path(&self) -> PathBuf {
        self.tls
            .cert
            .clone()
            .unwrap_or_else(|| self.server.data_dir.join(lifeboat_net::tls::CERT_FILE_NAME))
    }
}

/// The embedded defaults as one table: §8's file, then §8.1's, then the additions.
fn defaults() -> toml::Table {
    let mut table = toml::Table::new();
    for file in [DEFAULT_TOML, EXTENSIONS_TOML, ADDITIONS_TOML] {
        let more: toml::Table = file.parse().expect("the embedded defaults are TOML");
        for (key, value) in more {
            match (table.get_mut(&key), value) {
                (Some(toml::Value::Table(section)), toml::Value::Table(keys)) => {
                    section.extend(keys)
                }
                (_, value) => {
                    table.insert(key, value);
                }
            }
        }
    }
    table
}

/// README's configuration table: a row per key, in the order of the types, with its
/// embedded default and the doc comment of its field.
pub fn markdown_table() -> String {
    let defaults = defaults();
    let mut table = String::from("| key | default | meaning |\n|---|---|---|\n");
    let mut section = |name: &str, fields: &[&str], docs: &[&str]| {
        for (field, doc) in fields.iter().zip(docs) {
            let default = &defaults[name][*field];
            let doc = doc.replace('\n', " ").replace('|', "\\|");
            table.push_str(&format!("| `{name}.{field}` | `{default}` | {doc} |\n"));
        }
    };
    section(
        "server",
        ServerSection::FIELD_NAMES,
        ServerSection::FIELD_DOCS,
    );
    section(
        "listen",
        ListenSection::FIELD_NAMES,
        ListenSection::FIELD_DOCS,
    );
    section("tls", TlsSection::FIELD_NAMES, TlsSection::FIELD_DOCS);
    section("auth", AuthSection::FIELD_NAMES, AuthSection::FIELD_DOCS);
    section(
        "limits",
        LimitsSection::FIELD_NAMES,
        LimitsSection::FIELD_DOCS,
    );
    section(
        "router",
        RouterSection::FIELD_NAMES,
        RouterSection::FIELD_DOCS,
    );
    section("queue", QueueSection::FIELD_NAMES, QueueSection::FIELD_DOCS);
    section(
        "archive",
        ArchiveSection::FIELD_NAMES,
        ArchiveSection::FIELD_DOCS,
    );
    section(
        "outbound",
        OutboundSection::FIELD_NAMES,
        OutboundSection::FIELD_DOCS,
    );
    section("log", LogSection::FIELD_NAMES, LogSection::FIELD_DOCS);
    section("web", WebSection::FIELD_NAMES, WebSection::FIELD_DOCS);
    section(
        "cluster",
        ClusterSection::FIELD_NAMES,
        ClusterSection::FIELD_DOCS,
    );
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_parse() {
        let c = Config::embedded();
        assert_eq!(c.listen.smtp, Some("127.0.0.1:2525".parse().unwrap()));
        assert_eq!(c.limits.message_size_max, 50 << 20);
        assert_eq!(c.limits.idle_timeout, Duration::from_secs(300));
        assert_eq!(c.queue.retry.len(), 5);
        assert_eq!(c.queue.lifetime, Duration::from_secs(5 * 86400));
        assert!(c.auth.allow_plaintext_loopback);
        assert_eq!(c.outbound.next_hop, None);
        assert_eq!(c.log.format, LogFormat::Human);
        assert_eq!(c.web.session_idle, Duration::from_secs(30 * 60));
        assert_eq!(c.web.session_max, Duration::from_secs(12 * 3600));
        assert!(c.cluster.nats.is_empty());
        assert_eq!(c.cluster.node, "localhost", "empty = server.hostname");
        assert_eq!(c.cluster.replicas, 3);
        assert_eq!(c.cluster.snapshot_interval, Duration::from_secs(15 * 60));
    }

    /// The embedded defaults are exactly SPEC §8's file followed by §8.1's.
    #[test]
    fn embedded_defaults_match_the_spec() {
        let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/SPEC.md");
        let Ok(spec) = std::fs::read_to_string(&spec) else {
            eprintln!("SPEC.md not beside the checkout; skipped");
            return;
        };
        let first_block = |heading: &str| {
            let section = &spec[spec.find(heading).expect("SPEC has the section")..];
            let start = section.find("```toml\n").expect("a toml block") + "```toml\n".len();
            let block = &section[start..];
            block[..block.find("```").expect("block ends")].to_string()
        };
        assert_eq!(first_block("## 8."), DEFAULT_TOML);
        assert_eq!(first_block("### 8.1"), EXTENSIONS_TOML);
    }

    #[test]
    fn web_and_cluster_keys() {
        let c = Config::parse(
            "[server]\nhostname = \"mx1.example.com\"\n[web]\nsession_idle = \"10m\"\nsession_max = \"1d\"\n\
             [cluster]\nnats = [\"nats://10.0.0.1:4222\", \"tls://nats.example.com\", \"[::1]:4222\"]\nreplicas = 5\n",
            "test.toml",
        )
        .unwrap();
        assert_eq!(c.web.session_idle, Duration::from_secs(600));
        assert_eq!(c.web.session_max, Duration::from_secs(86_400));
        assert_eq!(c.cluster.nats.len(), 3);
        assert_eq!(c.cluster.node, "mx1.example.com");
        assert_eq!(c.cluster.replicas, 5);
        let named = Config::parse("[cluster]\nnode = \"node-2\"\n", "test.toml").unwrap();
        assert_eq!(named.cluster.node, "node-2");
    }

    /// Cluster mode is not built yet: a configuration that asks for it cannot serve.
    #[test]
    fn cluster_keys_give_a_node_its_cluster() {
        let c = Config::parse(
            "[server]\nhostname = \"mx1.example.net\"\n[cluster]\nnats = [\"nats://127.0.0.1:4222\", \"nats://127.0.0.1:4223\"]\nreplicas = 1\n",
            "test.toml",
        )
        .unwrap();
        assert_eq!(c.cluster.nats.len(), 2);
        assert_eq!(
            c.cluster.node, "mx1.example.net",
            "the host name by default"
        );
        assert_eq!(c.cluster.replicas, 1);
    }

    #[test]
    fn user_values_merge_over_defaults() {
        let c = Config::parse(
            "[limits]\nmessage_size_max = 1000\nidle_timeout = \"90s\"\n[listen]\nimap = \"\"\n",
            "test.toml",
        )
        .unwrap();
        assert_eq!(c.limits.message_size_max, 1000);
        assert_eq!(c.limits.idle_timeout, Duration::from_secs(90));
        assert_eq!(c.listen.imap, None);
        assert_eq!(c.limits.recipients_max, 100);
        // 0 turns the disk reserve off, as a number or a string; other sizes are > 0.
        for zero in ["0", "\"0\"", "\"0MiB\""] {
            let text = format!("[limits]\ndisk_free_min = {zero}\n");
            let c = Config::parse(&text, "test.toml").unwrap();
            assert_eq!(c.limits.disk_free_min, 0, "{zero}");
            assert_eq!(c.store_options().disk_free_min, 0);
        }
        let text = "[limits]\nmessage_size_max = 0\n";
        assert!(Config::parse(text, "test.toml").is_err());
    }

    #[test]
    fn errors_name_the_file_and_key() {
        let cases = [
            ("[limits]\nfoo = 1\n", "test.toml: unknown key `limits.foo`"),
            ("[nope]\nx = 1\n", "test.toml: unknown section [nope]"),
            (
                "[limits]\nidle_timeout = \"5 minutes\"\n",
                "invalid value for `limits.idle_timeout`",
            ),
            (
                "[limits]\nmessage_size_max = \"lots\"\n",
                "invalid value for `limits.message_size_max`",
            ),
            (
                "[limits]\nrecipients_max = 0\n",
                "invalid value for `limits.recipients_max`",
            ),
            (
                "[server]\nio = \"kqueue\"\n",
                "invalid value for `server.io`",
            ),
            (
                "[listen]\nsmtp = \"localhost\"\n",
                "invalid value for `listen.smtp`",
            ),
            ("[queue]\nretry = []\n", "invalid value for `queue.retry`"),
            (
                "[outbound]\nrelay_networks = [\"10.0.0.0/33\"]\n",
                "`outbound.relay_networks`",
            ),
            (
                "[outbound]\nnext_hop = \"mail.example.com\"\n",
                "`outbound.next_hop`",
            ),
            ("[tls]\ncert = \"a.pem\"\n", "`tls.cert` and `tls.key`"),
            (
                "[auth]\nallow_plaintext_loopback = \"yes\"\n",
                "`auth.allow_plaintext_loopback`",
            ),
            ("[log]\nformat = \"xml\"\n", "`log.format`"),
            ("server = 1\n", "`server` must be a section"),
            ("[limits\n", "test.toml: not valid TOML"),
            ("[web]\nsession_idle = \"0s\"\n", "`web.session_idle`"),
            ("[web]\nsession_max = 30\n", "`web.session_max`"),
            (
                "[limits]\nmessage_memory_max = \"10MiB\"\n",
                "`limits.message_memory_max` (10485760 bytes) must not be smaller than `limits.message_size_max`",
            ),
            (
                "[web]\nsession_idle = \"2d\"\n",
                "`web.session_idle` must not be longer than `web.session_max`",
            ),
            (
                "[cluster]\nreplicas = 2\n",
                "invalid value for `cluster.replicas`",
            ),
            ("[cluster]\nreplicas = 7\n", "expected 1, 3 or 5, got 7"),
            ("[cluster]\nnats = \"nats://a:4222\"\n", "`cluster.nats`"),
            ("[cluster]\nnats = [\"http://a:4222\"]\n", "`cluster.nats`"),
            ("[cluster]\nnats = [\"nats://a:99999\"]\n", "`cluster.nats`"),
            ("[cluster]\nnode = \"two words\"\n", "`cluster.node`"),
            ("[cluster]\nleader = true\n", "unknown key `cluster.leader`"),
        ];
        for (text, expected) in cases {
            let err = Config::parse(text, "test.toml").unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
            assert!(err.starts_with("test.toml: "), "{err}");
            if !expected.contains("not valid TOML") {
                assert_eq!(err.lines().count(), 1, "{err}");
            }
        }
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("5d"), Some(Duration::from_secs(432_000)));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("m"), None);
        assert_eq!(parse_size("50MiB"), Some(50 << 20));
        assert_eq!(parse_size("10KB"), Some(10_000));
        assert_eq!(parse_size("123"), Some(123));
        assert_eq!(parse_size("1TiB"), Some(1 << 40));
        assert_eq!(parse_size("1PiB"), None);
    }

    /// README.md's configuration table is the one [`markdown_table`] makes from the
    /// types. To rewrite it after changing them (then review the diff):
    /// `CONFIG_TABLE_BLESS=1 cargo test -p lifeboat --lib readme`.
    #[test]
    fn readme_configuration_table_is_generated_from_the_types() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
        let readme = std::fs::read_to_string(&path).unwrap();
        let start = readme
            .find("| key | default | meaning |\n")
            .expect("README has the configuration table");
        let length: usize = readme[start..]
            .split_inclusive('\n')
            .take_while(|line| line.starts_with('|'))
            .map(str::len)
            .sum();
        let generated = markdown_table();
        if std::env::var_os("CONFIG_TABLE_BLESS").is_some() {
            let rewritten = format!(
                "{}{generated}{}",
                &readme[..start],
                &readme[start + length..]
            );
            std::fs::write(&path, rewritten).unwrap();
            return;
        }
        assert!(
            readme[start..start + length] == generated,
            "README.md's configuration table differs from the configuration types; \
             rewrite it with CONFIG_TABLE_BLESS=1 cargo test -p lifeboat --lib readme\n\
             generated:\n{generated}"
        );
    }

    /// The table has every section of [`Config`] and every key of the embedded
    /// defaults, once.
    #[test]
    fn the_table_covers_every_key() {
        let table = markdown_table();
        let sections: Vec<&str> = Config::FIELD_NAMES
            .iter()
            .copied()
            .filter(|name| *name != "origin")
            .collect();
        let defaults = defaults();
        let mut keys = Vec::new();
        for section in &sections {
            for key in defaults[*section].as_table().unwrap().keys() {
                keys.push(format!("`{section}.{key}`"));
            }
        }
        assert_eq!(
            keys.len(),
            defaults
                .values()
                .map(|v| v.as_table().unwrap().len())
                .sum::<usize>()
        );
        assert_eq!(table.lines().count(), 2 + keys.len(), "{table}");
        for key in keys {
            assert_eq!(table.matches(&format!("| {key} |")).count(), 1, "{key}");
        }
    }
}
