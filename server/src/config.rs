//! Configuration (SPEC §8): TOML, every key with an embedded default, unknown keys and
//! bad values rejected with an error naming the file and the key.
//!
//! The embedded defaults are `default.toml`, which is exactly SPEC §8's file, plus
//! `extensions.toml` (the `[log]` section, which SPEC §8 does not list). A user
//! file is merged over them key by key, so it only needs the keys it changes.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use lifeboat_net::IoMode;

/// The embedded defaults.
pub const DEFAULT_TOML: &str = include_str!("default.toml");

/// Sections beyond SPEC §8's file (`[log]`), with their defaults; a user file may set
/// them like any other key.
pub const EXTENSIONS_TOML: &str = include_str!("extensions.toml");

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
#[derive(Debug, Clone)]
pub struct ServerSection {
    /// Name in greetings and Received headers.
    pub hostname: String,
    /// Store, certificate and admin token live here.
    pub data_dir: PathBuf,
    /// I/O threads; 0 = one per core.
    pub threads: usize,
    /// I/O backend.
    pub io: IoMode,
}

/// `[listen]`: `None` = disabled.
#[derive(Debug, Clone)]
pub struct ListenSection {
    /// MX, inbound and smart host.
    pub smtp: Option<SocketAddr>,
    /// Submission with STARTTLS.
    pub submission: Option<SocketAddr>,
    /// Submission with implicit TLS.
    pub submissions: Option<SocketAddr>,
    /// IMAP with STARTTLS.
    pub imap: Option<SocketAddr>,
    /// IMAP with implicit TLS.
    pub imaps: Option<SocketAddr>,
    /// POP3 with STLS.
    pub pop3: Option<SocketAddr>,
    /// POP3 with implicit TLS.
    pub pop3s: Option<SocketAddr>,
    /// Control panel, webmail, API, metrics.
    pub http: Option<SocketAddr>,
}

/// `[tls]`
#[derive(Debug, Clone)]
pub struct TlsSection {
    /// PEM certificate chain; `None` = self-signed in data_dir.
    pub cert: Option<PathBuf>,
    /// PEM private key.
    pub key: Option<PathBuf>,
}

/// `[auth]`
#[derive(Debug, Clone)]
pub struct AuthSection {
    /// Allow plaintext logins before TLS from loopback clients.
    pub allow_plaintext_loopback: bool,
}

/// `[limits]`
#[derive(Debug, Clone)]
pub struct LimitsSection {
    /// Largest message accepted, bytes.
    pub message_size_max: u64,
    /// Recipients per message.
    pub recipients_max: usize,
    /// Longest protocol line, bytes.
    pub line_bytes_max: usize,
    /// Connections per listener.
    pub connections_max: usize,
    /// Connections per client address.
    pub connections_per_ip_max: usize,
    /// Idle connections are closed after this.
    pub idle_timeout: Duration,
}

/// `[router]`
#[derive(Debug, Clone)]
pub struct RouterSection {
    /// Consecutive failures that mark an upstream down.
    pub down_after: u32,
    /// Consecutive good probes that mark it up.
    pub up_after: u32,
    /// Time between probes.
    pub probe_interval: Duration,
    /// Connect timeout to upstreams.
    pub connect_timeout: Duration,
    /// Per-command timeout to upstreams.
    pub command_timeout: Duration,
    /// Normal-mode recipient verification cache lifetime.
    pub verify_cache_ttl: Duration,
}

/// `[queue]`
#[derive(Debug, Clone)]
pub struct QueueSection {
    /// Retry intervals; the last repeats.
    pub retry: Vec<Duration>,
    /// Undelivered mail bounces after this.
    pub lifetime: Duration,
}

/// `[archive]`
#[derive(Debug, Clone)]
pub struct ArchiveSection {
    /// Days archived mail is kept.
    pub retention_days: u32,
}

/// `[outbound]`
#[derive(Debug, Clone)]
pub struct OutboundSection {
    /// Client networks that may relay through the smtp listener.
    pub relay_networks: Vec<IpNet>,
    /// `host:port` for all outbound mail; `None` = MX lookup.
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
#[derive(Debug, Clone)]
pub struct LogSection {
    /// Format.
    pub format: LogFormat,
    /// A tracing filter (`info`, `lifeboat=debug,info`, ...).
    pub level: String,
}

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it came from, for messages.
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
        _ => return None,
    };
    n.checked_mul(factor)
}

struct Reader<'a> {
    origin: &'a str,
    table: &'a toml::Table,
}

impl Reader<'_> {
    fn err(&self, key: &str, expected: &str, got: &toml::Value) -> ConfigError {
        ConfigError {
            origin: self.origin.to_string(),
            message: format!("invalid value for `{key}`: expected {expected}, got {got}"),
        }
    }

    fn value(&self, key: &str) -> &toml::Value {
        let (section, name) = key.split_once('.').expect("section.key");
        &self.table[section][name]
    }

    fn string(&self, key: &str) -> Result<String, ConfigError> {
        let v = self.value(key);
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| self.err(key, "a string", v))
    }

    fn bool(&self, key: &str) -> Result<bool, ConfigError> {
        let v = self.value(key);
        v.as_bool().ok_or_else(|| self.err(key, "true or false", v))
    }

    fn int(&self, key: &str, min: i64, max: i64) -> Result<i64, ConfigError> {
        let v = self.value(key);
        match v.as_integer() {
            Some(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(self.err(key, &format!("an integer from {min} to {max}"), v)),
        }
    }

    fn duration(&self, key: &str) -> Result<Duration, ConfigError> {
        let v = self.value(key);
        v.as_str()
            .and_then(parse_duration)
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                self.err(
                    key,
                    "a duration such as \"500ms\", \"15s\", \"5m\", \"2h\" or \"5d\"",
                    v,
                )
            })
    }

    fn size(&self, key: &str) -> Result<u64, ConfigError> {
        let v = self.value(key);
        let size = match v {
            toml::Value::Integer(n) if *n > 0 => Some(*n as u64),
            toml::Value::String(s) => parse_size(s).filter(|n| *n > 0),
            _ => None,
        };
        size.ok_or_else(|| self.err(key, "a size in bytes or with a unit, such as \"50MiB\"", v))
    }

    fn listener(&self, key: &str) -> Result<Option<SocketAddr>, ConfigError> {
        let s = self.string(key)?;
        if s.is_empty() {
            return Ok(None);
        }
        s.parse().map(Some).map_err(|_| {
            self.err(
                key,
                "\"IP:PORT\" (e.g. \"0.0.0.0:25\") or \"\" to disable",
                self.value(key),
            )
        })
    }

    fn path(&self, key: &str) -> Result<Option<PathBuf>, ConfigError> {
        let s = self.string(key)?;
        Ok((!s.is_empty()).then(|| PathBuf::from(s)))
    }
}

fn is_host_port(s: &str) -> bool {
    match s.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0),
        None => false,
    }
}

impl Config {
    /// The embedded defaults.
    pub fn embedded() -> Config {
        Config::parse(DEFAULT_TOML, "embedded defaults").expect("the embedded defaults are valid")
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
        let mut merged: toml::Table = DEFAULT_TOML
            .parse()
            .expect("the embedded defaults are TOML");
        let extensions: toml::Table = EXTENSIONS_TOML
            .parse()
            .expect("the embedded extension defaults are TOML");
        merged.extend(extensions);
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
        let r = Reader {
            origin,
            table: &merged,
        };

        let io = match r.string("server.io")?.as_str() {
            "auto" => IoMode::Auto,
            "uring" => IoMode::Uring,
            "epoll" => IoMode::Epoll,
            _ => {
                return Err(r.err(
                    "server.io",
                    "\"auto\", \"uring\" or \"epoll\"",
                    r.value("server.io"),
                ))
            }
        };
        let hostname = r.string("server.hostname")?;
        if hostname.is_empty() || hostname.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(r.err("server.hostname", "a host name", r.value("server.hostname")));
        }
        let data_dir = r.string("server.data_dir")?;
        if data_dir.is_empty() {
            return Err(r.err("server.data_dir", "a directory", r.value("server.data_dir")));
        }
        let server = ServerSection {
            hostname,
            data_dir: PathBuf::from(data_dir),
            threads: r.int("server.threads", 0, 1024)? as usize,
            io,
        };
        let listen = ListenSection {
            smtp: r.listener("listen.smtp")?,
            submission: r.listener("listen.submission")?,
            submissions: r.listener("listen.submissions")?,
            imap: r.listener("listen.imap")?,
            imaps: r.listener("listen.imaps")?,
            pop3: r.listener("listen.pop3")?,
            pop3s: r.listener("listen.pop3s")?,
            http: r.listener("listen.http")?,
        };
        let tls = TlsSection {
            cert: r.path("tls.cert")?,
            key: r.path("tls.key")?,
        };
        if tls.cert.is_some() != tls.key.is_some() {
            return Err(fail(
                "`tls.cert` and `tls.key` must be set together (or both left empty for a self-signed certificate)"
                    .into(),
            ));
        }
        let limits = LimitsSection {
            message_size_max: r.size("limits.message_size_max")?,
            recipients_max: r.int("limits.recipients_max", 1, 100_000)? as usize,
            line_bytes_max: r.int("limits.line_bytes_max", 512, 1 << 20)? as usize,
            connections_max: r.int("limits.connections_max", 1, 10_000_000)? as usize,
            connections_per_ip_max: r.int("limits.connections_per_ip_max", 1, 10_000_000)? as usize,
            idle_timeout: r.duration("limits.idle_timeout")?,
        };
        let router = RouterSection {
            down_after: r.int("router.down_after", 1, 1000)? as u32,
            up_after: r.int("router.up_after", 1, 1000)? as u32,
            probe_interval: r.duration("router.probe_interval")?,
            connect_timeout: r.duration("router.connect_timeout")?,
            command_timeout: r.duration("router.command_timeout")?,
            verify_cache_ttl: r.duration("router.verify_cache_ttl")?,
        };
        let retry_value = r.value("queue.retry");
        let retry: Vec<Duration> = retry_value
            .as_array()
            .filter(|a| !a.is_empty())
            .and_then(|a| {
                a.iter()
                    .map(|v| v.as_str().and_then(parse_duration))
                    .collect()
            })
            .ok_or_else(|| {
                r.err(
                    "queue.retry",
                    "a non-empty list of durations such as [\"1m\", \"5m\"]",
                    retry_value,
                )
            })?;
        let queue = QueueSection {
            retry,
            lifetime: r.duration("queue.lifetime")?,
        };
        let archive = ArchiveSection {
            retention_days: r.int("archive.retention_days", 1, 36_500)? as u32,
        };
        let networks_value = r.value("outbound.relay_networks");
        let relay_networks: Vec<IpNet> = networks_value
            .as_array()
            .and_then(|a| {
                a.iter()
                    .map(|v| {
                        let s = v.as_str()?;
                        s.parse::<IpNet>()
                            .ok()
                            .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
                    })
                    .collect()
            })
            .ok_or_else(|| {
                r.err(
                    "outbound.relay_networks",
                    "a list of networks such as [\"10.0.0.0/8\"]",
                    networks_value,
                )
            })?;
        let next_hop = r.string("outbound.next_hop")?;
        if !next_hop.is_empty() && !is_host_port(&next_hop) {
            return Err(r.err(
                "outbound.next_hop",
                "\"host:port\" or \"\"",
                r.value("outbound.next_hop"),
            ));
        }
        let outbound = OutboundSection {
            relay_networks,
            next_hop: (!next_hop.is_empty()).then_some(next_hop),
        };
        let log = LogSection {
            format: match r.string("log.format")?.as_str() {
                "human" => LogFormat::Human,
                "json" => LogFormat::Json,
                _ => {
                    return Err(r.err("log.format", "\"human\" or \"json\"", r.value("log.format")))
                }
            },
            level: {
                let level = r.string("log.level")?;
                if tracing_subscriber::EnvFilter::try_new(&level).is_err() {
                    return Err(r.err(
                        "log.level",
                        "a level or tracing filter such as \"info\"",
                        r.value("log.level"),
                    ));
                }
                level
            },
        };
        Ok(Config {
            origin: origin.to_string(),
            server,
            listen,
            tls,
            auth: AuthSection {
                allow_plaintext_loopback: r.bool("auth.allow_plaintext_loopback")?,
            },
            limits,
            router,
            queue,
            archive,
            outbound,
            log,
        })
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
    }

    /// The embedded defaults are exactly SPEC §8's file.
    #[test]
    fn embedded_defaults_match_the_spec() {
        let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/SPEC.md");
        let Ok(spec) = std::fs::read_to_string(&spec) else {
            eprintln!("SPEC.md not beside the checkout; skipped");
            return;
        };
        let section = &spec[spec.find("## 8.").expect("SPEC has §8")..];
        let start = section.find("```toml\n").expect("a toml block") + "```toml\n".len();
        let block = &section[start..];
        let block = &block[..block.find("```").expect("block ends")];
        assert_eq!(block, DEFAULT_TOML);
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
        ];
        for (text, expected) in cases {
            let err = Config::parse(text, "test.toml").unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
            assert!(err.starts_with("test.toml: "), "{err}");
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
        assert_eq!(parse_size("1TiB"), None);
    }
}
