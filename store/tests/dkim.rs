//! Domains' DKIM keys (SPEC §12) through the public API: rotation retires the set in
//! use, signing cannot start without keys, a domain's removal takes its keys, and all
//! of it survives replay from the log and a checkpoint.

use lifeboat_store::*;

fn options() -> Options {
    Options {
        segment_bytes_max: 16 << 10,
        checkpoint_every_bytes: u64::MAX,
        group_bytes_max: 1 << 20,
        ..Options::default()
    }
}

fn commit(store: &Store, ops: Vec<Op>) -> Vec<Result<OpResult, OpError>> {
    let mut batch = Batch::new();
    for op in ops {
        batch.push(op);
    }
    store.commit(batch).unwrap()
}

fn domain(name: &str) -> Op {
    Op::PutDomain(DomainSettings {
        name: name.into(),
        upstream: "127.0.0.1:2526".into(),
        coverage: Coverage::All,
        failover: Failover::Auto,
    })
}

fn key(selector: &str) -> DkimKey {
    DkimKey {
        selector: selector.into(),
        algorithm: DkimAlgorithm::Ed25519Sha256,
        private_der: selector.as_bytes().to_vec(),
        public: vec![7; 32],
        created: 100,
    }
}

fn keys(domain: &str, selectors: &[&str]) -> Op {
    Op::SetDkimKeys {
        domain: domain.into(),
        keys: selectors.iter().map(|s| key(s)).collect(),
    }
}

fn enable(domain: &str, enabled: bool) -> Op {
    Op::SetDkimEnabled {
        domain: domain.into(),
        enabled,
    }
}

#[test]
fn keys_rotate_enable_and_go_with_their_domain_across_replay_and_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let expected = {
        let store = Store::open(dir.path(), options()).unwrap();
        let results = commit(
            &store,
            vec![
                domain("example.test"),
                domain("other.test"),
                enable("example.test", true),
                keys("nowhere.test", &["a"]),
                enable("example.test", false),
            ],
        );
        assert_eq!(results[2], Err(OpError::NoDkimKeys("example.test".into())));
        assert_eq!(results[3], Err(OpError::NoDomain("nowhere.test".into())));
        // Disabling what does not sign is no error.
        assert_eq!(results[4], Ok(OpResult::Done));

        commit(
            &store,
            vec![keys("example.test", &["one"]), enable("example.test", true)],
        );
        commit(&store, vec![keys("example.test", &["two"])]);
        commit(
            &store,
            vec![
                keys("other.test", &["x"]),
                Op::DeleteDomain("other.test".into()),
            ],
        );
        let dkim = store.read(|s| s.dkim("EXAMPLE.test").cloned()).unwrap();
        assert!(dkim.enabled);
        assert_eq!(dkim.keys, vec![key("two")]);
        assert_eq!(dkim.retired, vec![key("one")]);
        assert_eq!(store.read(|s| s.dkim("other.test").cloned()), None);
        // Its Debug never shows the private key.
        assert!(!format!("{dkim:?}").contains("private_der"), "{dkim:?}");
        dkim
    };
    // Replay from the log alone (the close wrote a checkpoint: leave it out).
    let copy = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "checkpoint" {
            std::fs::copy(entry.path(), copy.path().join(entry.file_name())).unwrap();
        }
    }
    let replayed = Store::open(copy.path(), options()).unwrap();
    assert_eq!(
        replayed.read(|s| s.dkim("example.test").cloned()),
        Some(expected.clone())
    );
    // And from the checkpoint.
    let reopened = Store::open(dir.path(), options()).unwrap();
    assert_eq!(reopened.stats().replayed_at_open, 0);
    assert_eq!(
        reopened.read(|s| s.dkim("example.test").cloned()),
        Some(expected)
    );
    assert_eq!(
        reopened.read(|s| s.digest()),
        replayed.read(|s| s.digest()),
        "the same state either way"
    );
}
