//! Where outbound mail for a domain goes (RFC 5321 §5.1): its MX hosts by preference,
//! or, without MX records, the domain's own addresses (the implicit MX). A null MX
//! (RFC 7505) or a domain that does not exist fails the message permanently; a DNS
//! error is temporary.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig, ResolverOpts};
use hickory_resolver::error::{ResolveError, ResolveErrorKind};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::TokioAsyncResolver;

use super::client::{Failure, Kind, Reply};

/// MX hosts tried per domain.
const MX_HOSTS_MAX: usize = 10;
/// Addresses tried per host.
const ADDRESSES_PER_HOST_MAX: usize = 4;
/// How long one DNS question may take.
const DNS_TIMEOUT: Duration = Duration::from_secs(10);

/// A DNS resolver for MX lookups.
pub struct MxResolver {
    resolver: TokioAsyncResolver,
    port: u16,
}

fn permanent(text: String) -> Failure {
    Failure::Permanent(Reply {
        code: 550,
        lines: vec![text],
    })
}

/// Whether the error says the name does not exist (as opposed to a failing lookup).
fn is_nxdomain(error: &ResolveError) -> bool {
    matches!(
        error.kind(),
        ResolveErrorKind::NoRecordsFound { response_code, .. } if *response_code == ResponseCode::NXDomain
    )
}

fn no_records(error: &ResolveError) -> bool {
    matches!(error.kind(), ResolveErrorKind::NoRecordsFound { .. })
}

impl MxResolver {
    /// The system's resolver (/etc/resolv.conf), or the given name servers (UDP and
    /// TCP); mail servers are reached on `port` (25 but in tests).
    pub fn new(servers: &[SocketAddr], port: u16) -> MxResolver {
        let mut opts = ResolverOpts::default();
        opts.timeout = DNS_TIMEOUT;
        opts.attempts = 2;
        let resolver = if servers.is_empty() {
            match hickory_resolver::system_conf::read_system_conf() {
                Ok((config, mut system_opts)) => {
                    system_opts.timeout = DNS_TIMEOUT;
                    TokioAsyncResolver::tokio(config, system_opts)
                }
                Err(e) => {
                    tracing::warn!(
                        "cannot read the system's DNS configuration ({e}); MX lookups will fail"
                    );
                    TokioAsyncResolver::tokio(ResolverConfig::new(), opts)
                }
            }
        } else {
            let ips: Vec<std::net::IpAddr> = servers.iter().map(|s| s.ip()).collect();
            let group = NameServerConfigGroup::from_ips_clear(&ips, servers[0].port(), true);
            TokioAsyncResolver::tokio(ResolverConfig::from_parts(None, vec![], group), opts)
        };
        MxResolver { resolver, port }
    }

    /// The addresses to try for mail to `domain`, best first.
    pub async fn targets(&self, domain: &str) -> Result<Vec<SocketAddr>, Failure> {
        let fqdn = format!("{}.", domain.trim_end_matches('.'));
        let hosts: Vec<String> = match self.resolver.mx_lookup(fqdn.as_str()).await {
            Ok(mx) => {
                let mut records: Vec<(u16, String)> = mx
                    .iter()
                    .map(|r| (r.preference(), r.exchange().to_utf8()))
                    .collect();
                records.sort();
                // RFC 7505: a single MX of "." says the domain takes no mail.
                if records.len() == 1 && records[0].1 == "." {
                    return Err(permanent(format!(
                        "5.1.10 {domain} accepts no mail (null MX)"
                    )));
                }
                records
                    .into_iter()
                    .take(MX_HOSTS_MAX)
                    .map(|(_, host)| host)
                    .collect()
            }
            Err(e) if is_nxdomain(&e) => {
                return Err(permanent(format!("5.1.2 domain {domain} does not exist")));
            }
            // RFC 5321 §5.1: no MX records, the domain itself is the mail server.
            Err(e) if no_records(&e) => vec![fqdn.clone()],
            Err(e) => {
                return Err(Failure::Temporary(
                    Kind::Lookup,
                    format!("MX lookup for {domain}: {e}"),
                ))
            }
        };
        let mut addrs = Vec::new();
        let mut last_error = None;
        for host in &hosts {
            match self.resolver.lookup_ip(host.as_str()).await {
                Ok(ips) => addrs.extend(
                    ips.iter()
                        .take(ADDRESSES_PER_HOST_MAX)
                        .map(|ip| SocketAddr::new(ip, self.port)),
                ),
                Err(e) => last_error = Some(e),
            }
        }
        if addrs.is_empty() {
            return Err(match last_error {
                Some(e) if no_records(&e) => {
                    permanent(format!("5.1.2 no address for the mail servers of {domain}"))
                }
                Some(e) => {
                    Failure::Temporary(Kind::Lookup, format!("address lookup for {domain}: {e}"))
                }
                None => permanent(format!("5.1.2 no mail servers for {domain}")),
            });
        }
        Ok(addrs)
    }
}
