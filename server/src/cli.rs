//! Management commands: clients of the running server's admin API (SPEC §7), using
//! the token `serve` wrote to `DATA_DIR/admin.token`.

use std::io::{BufRead, IsTerminal};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use serde_json::{json, Value};

use crate::serve::serves_https;
use crate::{ArchiveCommand, ArchiveSearch, Command, DomainCommand, UserCommand};
use lifeboat::config::Config;

/// How long a management request may take (adding a user hashes a password).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

struct Client {
    base: String,
    token: String,
    agent: ureq::Agent,
    /// For long answers (a backup): a timeout per read, none for the whole.
    streaming: ureq::Agent,
}

impl Client {
    fn new(config: &Config, server: Option<&str>) -> Result<Client, String> {
        let base = match server {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => match config.listen.http {
                Some(addr) => {
                    let scheme = if serves_https(addr) { "https" } else { "http" };
                    // A listener on every address is reached here on loopback.
                    let ip = match addr.ip() {
                        ip if !ip.is_unspecified() => ip,
                        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
                    };
                    format!("{scheme}://{}", SocketAddr::new(ip, addr.port()))
                }
                None => {
                    return Err(format!(
                        "{}: the http listener is disabled (`listen.http`), so there is no API to talk to; pass --server URL",
                        config.origin
                    ))
                }
            },
        };
        let path = config.token_path();
        let token = std::fs::read_to_string(&path)
            .map_err(|e| {
                format!(
                    "cannot read the admin token {}: {e} (is `lifeboat serve` using this data_dir? pass the same --config)",
                    path.display()
                )
            })?
            .trim()
            .to_string();
        let mut agent = ureq::AgentBuilder::new().timeout(REQUEST_TIMEOUT);
        let mut streaming = ureq::AgentBuilder::new()
            .timeout_connect(REQUEST_TIMEOUT)
            .timeout_read(REQUEST_TIMEOUT);
        if base.starts_with("https://") {
            let tls = pinned_tls(&config.cert_path())?;
            agent = agent.tls_config(tls.clone());
            streaming = streaming.tls_config(tls);
        }
        Ok(Client {
            base,
            token,
            agent: agent.build(),
            streaming: streaming.build(),
        })
    }

    /// A `GET` whose answer is read as it comes.
    fn stream(&self, path: &str) -> Result<Box<dyn std::io::Read + Send + Sync>, String> {
        let url = format!("{}/api/v1{path}", self.base);
        let response = self
            .streaming
            .get(&url)
            .set("Authorization", &format!("Bearer {}", self.token))
            .call();
        match response {
            Ok(response) => Ok(response.into_reader()),
            Err(ureq::Error::Status(code, response)) => Err(response
                .into_json::<Value>()
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or_else(|| format!("HTTP {code}"))),
            Err(ureq::Error::Transport(e)) => Err(format!(
                "cannot reach the server at {}: {e} (is `lifeboat serve` running?)",
                self.base
            )),
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}/api/v1{path}", self.base);
        let request = self
            .agent
            .request(method, &url)
            .set("Authorization", &format!("Bearer {}", self.token));
        let response = match body {
            Some(body) => request.send_json(body),
            None => request.call(),
        };
        match response {
            Ok(response) => response
                .into_json()
                .map_err(|e| format!("{url}: unreadable answer: {e}")),
            Err(ureq::Error::Status(code, response)) => {
                let message = response
                    .into_json::<Value>()
                    .ok()
                    .and_then(|v| v["error"].as_str().map(str::to_string))
                    .unwrap_or_else(|| format!("HTTP {code}"));
                Err(message)
            }
            Err(ureq::Error::Transport(e)) => Err(format!(
                "cannot reach the server at {}: {e} (is `lifeboat serve` running?)",
                self.base
            )),
        }
    }
}

/// A TLS client configuration that trusts exactly the server's own certificate (the
/// commands run beside the server and read its token from the same data directory, so
/// they can read its certificate too: self-signed or not, under any name).
fn pinned_tls(cert: &Path) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    let pinned = CertificateDer::from_pem_file(cert).map_err(|e| {
        format!(
            "cannot read the server certificate {} to check the API's TLS: {e} (pass the same --config as `serve`)",
            cert.display()
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned { pinned, provider }))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[derive(Debug)]
struct Pinned {
    pinned: CertificateDer<'static>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.pinned.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the server's certificate is not the one in the configuration".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn password(address: &str, from_stdin: bool) -> Result<String, String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("reading the password from standard input: {e}"))?;
        let password = line.trim_end_matches(['\r', '\n']).to_string();
        if password.is_empty() {
            return Err("no password on standard input".into());
        }
        return Ok(password);
    }
    if !std::io::stdin().is_terminal() {
        return Err("no terminal to ask for the password: use --password-stdin".into());
    }
    let first = rpassword::prompt_password(format!("Password for {address}: "))
        .map_err(|e| e.to_string())?;
    let second = rpassword::prompt_password("Again: ").map_err(|e| e.to_string())?;
    if first != second {
        return Err("the passwords do not match".into());
    }
    Ok(first)
}

/// Percent-encodes one path segment (addresses may hold `/`, `?`, `%`, `+`).
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn ago(unix: &Value) -> String {
    let Some(t) = unix.as_i64() else {
        return "-".into();
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(t);
    let secs = (now - t).max(0);
    match secs {
        0..=119 => format!("{secs}s ago"),
        120..=7199 => format!("{}m ago", secs / 60),
        7200..=172_799 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86_400),
    }
}

fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row);
    }
}

/// A Unix time as `YYYY-MM-DD HH:MM:SS` (UTC).
fn utc(unix: &Value) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    unix.as_i64()
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|t| t.format(FORMAT).ok())
        .unwrap_or_else(|| "-".into())
}

/// A domain's mode, marked when an admin forced it.
fn mode_text(domain: &Value) -> String {
    match domain["forced"].as_str() {
        Some(_) => format!("{} (forced)", s(&domain["mode"])),
        None => s(&domain["mode"]),
    }
}

/// A table of a JSON array, one row per element.
fn list(items: &Value, headers: &[&str], row: impl Fn(&Value) -> Vec<String>) {
    table(
        headers,
        items.as_array().into_iter().flatten().map(row).collect(),
    );
}

/// Prints a JSON array as JSON, or as a table.
fn print_list(items: &Value, json: bool, headers: &[&str], row: impl Fn(&Value) -> Vec<String>) {
    if json {
        print_json(items);
    } else {
        list(items, headers, row);
    }
}

fn domain_row(d: &Value) -> Vec<String> {
    vec![
        s(&d["name"]),
        s(&d["upstream"]),
        s(&d["coverage"]),
        s(&d["failover"]),
        mode_text(d),
    ]
}

/// Runs one management command.
pub fn run(config: &Config, server: Option<&str>, command: Command) -> Result<(), String> {
    let client = Client::new(config, server)?;
    match command {
        Command::Serve | Command::Demo { .. } => unreachable!("handled by main"),
        Command::Domain(DomainCommand::Add {
            domain,
            upstream,
            coverage,
            failover,
        }) => domain_add(&client, domain, upstream, coverage, failover),
        Command::Domain(DomainCommand::Set {
            domain,
            upstream,
            coverage,
            failover,
        }) => domain_set(&client, &domain, upstream, coverage, failover),
        Command::Domain(DomainCommand::List { json }) => domain_list(&client, json),
        Command::Domain(DomainCommand::Dkim {
            domain,
            enable,
            disable,
            rotate,
            json,
        }) => {
            let action = match (enable, disable, rotate) {
                (true, _, _) => "enable",
                (_, true, _) => "disable",
                (_, _, true) => "rotate",
                _ => "keys",
            };
            domain_dkim(&client, &domain, action, json)
        }
        Command::User(UserCommand::Add {
            address,
            password_stdin,
            role,
            covered,
            recovery,
        }) => user_add(&client, address, password_stdin, role, covered, recovery),
        Command::User(UserCommand::Passwd {
            address,
            password_stdin,
        }) => user_passwd(&client, &address, password_stdin),
        Command::User(UserCommand::List { domain, json }) => user_list(&client, domain, json),
        Command::User(UserCommand::Del { address }) => user_del(&client, &address),
        Command::Mode { domain, mode } => set_mode(&client, &domain, &mode),
        Command::Archive(ArchiveCommand::Search(search)) => archive_search(&client, search),
        Command::Archive(ArchiveCommand::Show { id, json }) => archive_show(&client, &id, json),
        Command::Archive(ArchiveCommand::Redeliver { id }) => archive_redeliver(&client, &id),
        Command::Status { json } => status(&client, json),
        Command::Audit { since, limit, json } => audit(&client, since, limit, json),
        Command::Trace { query, since, json } => trace(&client, &query, since, json),
        Command::Backup { dir } => backup(&client, config, &dir),
    }
}

/// What of a data directory a backup copies besides the store, when `serve` keeps it
/// there: the admin token, the self-signed certificate and its key (without them a
/// restored server makes new ones). The archive's text index is derived: a server
/// started on the copy rebuilds it.
const DATA_DIR_FILES: [&str; 3] = [
    "admin.token",
    lifeboat_net::tls::CERT_FILE_NAME,
    lifeboat_net::tls::KEY_FILE_NAME,
];

/// `lifeboat backup DIR`: the running server streams a snapshot of its store, which is
/// restored into `DIR/store` (verified, synced, renamed into place) and opened once to
/// check it; `DIR` is then a data directory `serve` starts from.
fn backup(client: &Client, config: &Config, dir: &Path) -> Result<(), String> {
    let started = std::time::Instant::now();
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(format!(
                    "{} is not empty: a backup goes into a new or empty directory",
                    dir.display()
                ));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{}: {e}", dir.display())),
    }
    lifeboat_store::io::create_dir_all_durable(dir)
        .map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let snapshot = client.stream("/backup")?;
    let store_dir = dir.join("store");
    lifeboat_store::Store::restore(&store_dir, snapshot).map_err(|e| {
        let _ = std::fs::remove_dir_all(dir.join("store.restoring"));
        format!("backup failed, nothing written to {}: {e}", dir.display())
    })?;
    let mut copied = Vec::new();
    for name in DATA_DIR_FILES {
        let from = config.server.data_dir.join(name);
        let Ok(bytes) = std::fs::read(&from) else {
            continue;
        };
        lifeboat_store::io::write_file_durable(&dir.join(name), &bytes, 0o600)
            .map_err(|e| format!("writing {}: {e}", dir.join(name).display()))?;
        copied.push(name);
    }
    // Opening it is the check that `serve` will start from it.
    let store = lifeboat_store::Store::open(&store_dir, lifeboat_store::Options::default())
        .map_err(|e| format!("the copy in {} does not open: {e}", store_dir.display()))?;
    let (domains, accounts, archived, queued) = store.read(|s| {
        (
            s.domains().count(),
            s.accounts(None).count(),
            s.archive().count(),
            s.queue().count(),
        )
    });
    drop(store);
    println!(
        "backup in {} ({:.1} s): {domains} domains, {accounts} accounts, {archived} archived messages, {queued} queued; store{}",
        dir.display(),
        started.elapsed().as_secs_f64(),
        copied.iter().map(|n| format!(", {n}")).collect::<String>(),
    );
    println!(
        "to start from it: lifeboat serve with server.data_dir = \"{}\"",
        dir.display()
    );
    Ok(())
}

/// `lifeboat trace`
fn trace(client: &Client, query: &str, since: Option<String>, json: bool) -> Result<(), String> {
    let mut path = format!("/trace?q={}", segment(query));
    if let Some(since) = since {
        path.push_str(&format!("&since={}", segment(&since)));
    }
    let v = client.call("GET", &path, None)?;
    if json {
        print_json(&v);
        return Ok(());
    }
    let messages = v.as_array().map(Vec::as_slice).unwrap_or_default();
    if messages.is_empty() {
        return Err(format!("no archived message matches {query}"));
    }
    for (i, m) in messages.iter().enumerate() {
        if i > 0 {
            println!();
        }
        let a = &m["archive"];
        println!(
            "archive {}  {}  <{}>  from {}  to {}  {:?}",
            s(&a["id"]),
            utc(&a["date"]),
            s(&a["message_id"]),
            s(&a["mail_from"]),
            a["rcpt_to"]
                .as_array()
                .map(|r| r.iter().map(s).collect::<Vec<_>>().join(", "))
                .unwrap_or_default(),
            s(&a["subject"]),
        );
        if m["traced"] != Value::Bool(true) {
            println!("  (no trace: archived before traces were kept, or not received here)");
        }
        for step in m["steps"].as_array().map(Vec::as_slice).unwrap_or_default() {
            println!("  {}  {}", utc(&step["at"]), s(&step["detail"]));
        }
        if m["omitted"].as_u64().is_some_and(|n| n > 0) {
            println!("  ({} steps in the middle left out)", m["omitted"]);
        }
    }
    Ok(())
}

/// `lifeboat audit`
fn audit(client: &Client, since: Option<String>, limit: usize, json: bool) -> Result<(), String> {
    let mut path = format!("/audit?limit={limit}");
    if let Some(since) = since {
        path.push_str(&format!("&since={}", segment(&since)));
    }
    let v = client.call("GET", &path, None)?;
    print_list(
        &v,
        json,
        &["WHEN (UTC)", "ACTOR", "FROM", "ACTION", "OBJECT", "CHANGE"],
        |e| {
            let change = match (e["before"].as_str(), e["after"].as_str()) {
                (Some(b), Some(a)) => format!("{b} -> {a}"),
                (None, Some(a)) => a.to_string(),
                (Some(b), None) => format!("{b} -> (removed)"),
                (None, None) => String::new(),
            };
            vec![
                utc(&e["at"]),
                s(&e["actor"]),
                s(&e["source"]),
                s(&e["action"]),
                s(&e["object"]),
                change,
            ]
        },
    );
    Ok(())
}

/// `lifeboat domain add`
fn domain_add(
    client: &Client,
    domain: String,
    upstream: String,
    coverage: Option<String>,
    failover: Option<String>,
) -> Result<(), String> {
    let v = client.call(
        "POST",
        "/domains",
        Some(json!({ "name": domain, "upstream": upstream, "coverage": coverage, "failover": failover })),
    )?;
    println!("added {} ({})", s(&v["name"]), domain_settings(&v));
    Ok(())
}

/// `lifeboat domain set`
fn domain_set(
    client: &Client,
    domain: &str,
    upstream: Option<String>,
    coverage: Option<String>,
    failover: Option<String>,
) -> Result<(), String> {
    if upstream.is_none() && coverage.is_none() && failover.is_none() {
        return Err("nothing to change: give --upstream, --coverage or --failover".into());
    }
    let mut body = serde_json::Map::new();
    for (key, value) in [
        ("upstream", upstream),
        ("coverage", coverage),
        ("failover", failover),
    ] {
        if let Some(value) = value {
            body.insert(key.into(), Value::String(value));
        }
    }
    let v = client.call(
        "PATCH",
        &format!("/domains/{}", segment(domain)),
        Some(Value::Object(body)),
    )?;
    println!("{}: {}", s(&v["name"]), domain_settings(&v));
    Ok(())
}

/// `upstream U, coverage C, failover F`
fn domain_settings(v: &Value) -> String {
    format!(
        "upstream {}, coverage {}, failover {}",
        s(&v["upstream"]),
        s(&v["coverage"]),
        s(&v["failover"])
    )
}

/// `lifeboat domain list`
fn domain_list(client: &Client, json: bool) -> Result<(), String> {
    let v = client.call("GET", "/domains", None)?;
    print_list(
        &v,
        json,
        &["DOMAIN", "UPSTREAM", "COVERAGE", "FAILOVER", "MODE"],
        domain_row,
    );
    Ok(())
}

/// `lifeboat domain dkim`: the keys after the change, and the records to publish.
fn domain_dkim(client: &Client, domain: &str, action: &str, json: bool) -> Result<(), String> {
    let v = client.call(
        "POST",
        &format!("/domains/{}/dkim", segment(domain)),
        Some(json!({ "action": action })),
    )?;
    if json {
        print_json(&v);
        return Ok(());
    }
    let signing = v["signing"].as_bool() == Some(true);
    println!(
        "{}: DKIM signing {}",
        s(&v["domain"]),
        if signing {
            "on"
        } else {
            "off (enable with --enable)"
        }
    );
    let keys = v["keys"].as_array().cloned().unwrap_or_default();
    if !keys.is_empty() {
        println!("\nPublish these DNS TXT records (before enabling, if signing is off):");
        for key in &keys {
            println!(
                "\n; {} key, made {}",
                s(&key["algorithm"]),
                utc(&key["created"])
            );
            println!("{}", s(&key["record"]["zone"]));
        }
    }
    let retired = v["retired"].as_array().cloned().unwrap_or_default();
    if !retired.is_empty() {
        println!("\nRetired keys: keep their records published for a few days, until mail signed with them has been delivered:");
        for key in &retired {
            println!("  {}", s(&key["record"]["name"]));
        }
    }
    Ok(())
}

/// `lifeboat user add`
fn user_add(
    client: &Client,
    address: String,
    password_stdin: bool,
    role: Option<String>,
    covered: bool,
    recovery: Option<String>,
) -> Result<(), String> {
    let password = password(&address, password_stdin)?;
    let v = client.call(
        "POST",
        "/accounts",
        Some(json!({
            "address": address, "password": password, "role": role,
            "covered": covered, "recovery": recovery,
        })),
    )?;
    println!("added {} ({})", s(&v["address"]), s(&v["role"]));
    Ok(())
}

/// `lifeboat user passwd`
fn user_passwd(client: &Client, address: &str, password_stdin: bool) -> Result<(), String> {
    let password = password(address, password_stdin)?;
    let v = client.call(
        "PUT",
        &format!("/accounts/{}/password", segment(address)),
        Some(json!({ "password": password })),
    )?;
    println!("password of {} changed", s(&v["address"]));
    Ok(())
}

/// `lifeboat user list`
fn user_list(client: &Client, domain: Option<String>, json: bool) -> Result<(), String> {
    let path = match &domain {
        Some(d) => format!("/accounts?domain={}", segment(d)),
        None => "/accounts".to_string(),
    };
    let v = client.call("GET", &path, None)?;
    print_list(&v, json, &["ADDRESS", "ROLE", "COVERED", "RECOVERY"], |a| {
        let covered = if a["covered"].as_bool() == Some(true) {
            "yes"
        } else {
            "no"
        };
        vec![
            s(&a["address"]),
            s(&a["role"]),
            covered.to_string(),
            s(&a["recovery"]),
        ]
    });
    Ok(())
}

/// `lifeboat user del`
fn user_del(client: &Client, address: &str) -> Result<(), String> {
    let v = client.call("DELETE", &format!("/accounts/{}", segment(address)), None)?;
    println!("removed {}", s(&v["deleted"]));
    Ok(())
}

/// `lifeboat mode`
fn set_mode(client: &Client, domain: &str, mode: &str) -> Result<(), String> {
    let v = client.call(
        "PUT",
        &format!("/domains/{}/mode", segment(domain)),
        Some(json!({ "mode": mode })),
    )?;
    let forced = if v["forced"].is_null() {
        ""
    } else {
        " (forced)"
    };
    println!("{}: {}{forced}", s(&v["name"]), s(&v["mode"]));
    Ok(())
}

/// `lifeboat archive search`
fn archive_search(client: &Client, search: ArchiveSearch) -> Result<(), String> {
    let ArchiveSearch {
        from,
        to,
        subject,
        text,
        since,
        until,
        direction,
        limit,
        json,
    } = search;
    let mut query = vec![format!("limit={limit}")];
    for (key, value) in [
        ("from", from),
        ("to", to),
        ("subject", subject),
        ("text", text),
        ("since", since),
        ("until", until),
        ("direction", direction),
    ] {
        if let Some(value) = value {
            query.push(format!("{key}={}", segment(&value)));
        }
    }
    let v = client.call("GET", &format!("/archive?{}", query.join("&")), None)?;
    print_list(
        &v,
        json,
        &["ID", "WHEN", "DIR", "FROM", "TO", "SUBJECT"],
        |e| {
            let to = e["rcpt_to"].as_array().into_iter().flatten().map(s);
            vec![
                s(&e["id"]),
                ago(&e["date"]),
                s(&e["direction"]),
                s(&e["mail_from"]),
                to.collect::<Vec<_>>().join(","),
                s(&e["subject"]),
            ]
        },
    );
    Ok(())
}

/// `lifeboat archive show`
fn archive_show(client: &Client, id: &str, json: bool) -> Result<(), String> {
    let v = client.call("GET", &format!("/archive/{}", segment(id)), None)?;
    if json {
        print_json(&v);
        return Ok(());
    }
    print!("{}", v["header"].as_str().unwrap_or_default());
    println!();
    println!("{}", v["text"].as_str().unwrap_or_default());
    for a in v["attachments"].as_array().into_iter().flatten() {
        println!(
            "[attachment] {} ({}, {} bytes)",
            a["name"].as_str().unwrap_or("unnamed"),
            s(&a["type"]),
            s(&a["size"])
        );
    }
    Ok(())
}

/// `lifeboat archive redeliver`
fn archive_redeliver(client: &Client, id: &str) -> Result<(), String> {
    let v = client.call("POST", &format!("/archive/{}/redeliver", segment(id)), None)?;
    let to: Vec<String> = v["redelivered_to"]
        .as_array()
        .into_iter()
        .flatten()
        .map(s)
        .collect();
    println!(
        "archived message {} re-delivered to {}",
        s(&v["id"]),
        to.join(", ")
    );
    Ok(())
}

/// `lifeboat status`
fn status(client: &Client, json: bool) -> Result<(), String> {
    let v = client.call("GET", "/status", None)?;
    if json {
        print_json(&v);
        return Ok(());
    }
    println!(
        "lifeboat {} up {}s, io {}",
        s(&v["version"]),
        s(&v["uptime_seconds"]),
        s(&v["io_backend"])
    );
    // What stops mail coming in, first.
    if let Some(why) = v["store"]["poisoned"].as_str() {
        println!("store: refuses writes ({why}): restart the server");
    }
    if v["store"]["space_left"].as_u64() == Some(0) {
        println!("disk: less free than limits.disk_free_min: new messages are refused");
    }
    let headers = [
        "DOMAIN",
        "MODE",
        "UPSTREAM",
        "QUEUE",
        "PORTAL INBOX",
        "LAST CHANGE",
    ];
    list(&v["domains"], &headers, |d| {
        vec![
            s(&d["name"]),
            mode_text(d),
            upstream_text(d),
            s(&d["queue_depth"]),
            s(&d["portal_inbox_messages"]),
            format!("{} ({})", ago(&d["mode_since"]), s(&d["mode_reason"])),
        ]
    });
    // Each domain's last transitions, newest first.
    for d in v["domains"].as_array().into_iter().flatten() {
        let history = d["mode_history"].as_array().cloned().unwrap_or_default();
        if history.is_empty() {
            continue;
        }
        println!("\n{} mode changes:", s(&d["name"]));
        for m in history {
            let forced = if m["forced"].is_null() {
                ""
            } else {
                " (forced)"
            };
            println!(
                "  {}  {} -> {}{forced}: {}",
                utc(&m["at"]),
                m["from"].as_str().unwrap_or("-"),
                s(&m["to"]),
                s(&m["reason"])
            );
        }
    }
    if let Some(cluster) = v["cluster"].as_object() {
        println!(
            "\ncluster: this node {}, leader {}, log {}..{}",
            s(&v["cluster"]["node"]),
            cluster.get("leader").map(s).unwrap_or_default(),
            s(&v["cluster"]["log_first"]),
            s(&v["cluster"]["log_last"])
        );
        list(
            &v["cluster"]["nodes"],
            &["NODE", "APPLIED", "LAG", "LEADER"],
            |n| {
                vec![
                    s(&n["name"]),
                    s(&n["applied"]),
                    s(&n["lag"]),
                    if n["leader"].as_bool() == Some(true) {
                        "yes"
                    } else {
                        ""
                    }
                    .to_string(),
                ]
            },
        );
    }
    Ok(())
}

/// An upstream's health, with what the router is waiting for while it is down.
fn upstream_text(d: &Value) -> String {
    let health = s(&d["upstream_health"]);
    let router = &d["upstream_router"];
    if health != "down" || router.is_null() {
        return health;
    }
    let mut text = format!(
        "down, {}/{} good probes",
        s(&router["good_probes"]),
        s(&router["probes_needed"])
    );
    if router["damped"].as_bool() == Some(true) {
        text.push_str(" (damped: it flapped)");
    }
    text
}
