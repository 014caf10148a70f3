//! DKIM verification (RFC 6376, RFC 8463) with mail-auth, against DNS records the test
//! supplies instead of a resolver: what a receiving server would conclude of the
//! signatures on a message, if those records were published.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Instant;

use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use mail_auth::hickory_resolver::config::{ResolverConfig, ResolverOpts};
use mail_auth::{
    AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters, ResolverCache, Txt,
};

/// TXT records by owner name; nothing else is ever looked up.
struct Records(Mutex<HashMap<String, Txt>>);

impl ResolverCache<String, Txt> for Records {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        String: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.lock().unwrap().get(name).cloned()
    }

    fn remove<Q>(&self, name: &Q) -> Option<Txt>
    where
        String: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.lock().unwrap().remove(name)
    }

    fn insert(&self, key: String, value: Txt, _: Instant) {
        self.0.lock().unwrap().insert(key, value);
    }
}

/// The outcome of each `DKIM-Signature` of `message`, in order: `"pass"`, or what
/// failed. `records` are `(owner name, TXT text)` pairs as a domain publishes them.
pub fn verify(message: &[u8], records: &[(String, String)]) -> Vec<String> {
    let cache = Records(Mutex::new(HashMap::new()));
    for (name, text) in records {
        let key = DomainKey::parse(text.as_bytes())
            .unwrap_or_else(|e| panic!("record {name} does not parse: {e:?}: {text}"));
        let fqdn = format!("{}.", name.trim_end_matches('.').to_lowercase());
        cache.insert(fqdn, Txt::from(key), Instant::now());
    }
    let message = AuthenticatedMessage::parse(message).expect("the message parses");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let authenticator =
            MessageAuthenticator::new(ResolverConfig::default(), ResolverOpts::default())
                .expect("a resolver");
        authenticator
            .verify_dkim(Parameters::new(&message).with_txt_cache(&cache))
            .await
            .iter()
            .map(|output| match output.result() {
                DkimResult::Pass => "pass".to_string(),
                other => format!("{other:?}"),
            })
            .collect()
    })
}
