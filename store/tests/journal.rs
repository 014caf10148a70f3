//! The mode history and the audit log (store/src/journal.rs) through the public API:
//! recorded on apply, atomic with the change they describe, kept across checkpoints
//! and replay, removed by retention.

use lifeboat_store::*;

fn options() -> Options {
    Options {
        segment_bytes_max: 16 << 10,
        checkpoint_every_bytes: u64::MAX,
        group_bytes_max: 1 << 20,
        ..Options::default()
    }
}

fn add_domain(store: &Store, name: &str) {
    let mut batch = Batch::new();
    batch.push(Op::PutDomain(DomainSettings {
        name: name.into(),
        upstream: "127.0.0.1:2526".into(),
        coverage: Coverage::All,
        failover: Failover::Auto,
    }));
    assert_eq!(store.commit(batch).unwrap(), vec![Ok(OpResult::Done)]);
}

fn set_mode(store: &Store, domain: &str, mode: Mode, forced: Option<Mode>, reason: &str, at: i64) {
    let mut batch = Batch::new();
    batch.push(Op::SetMode {
        domain: domain.into(),
        mode,
        forced,
        reason: reason.into(),
        at,
    });
    assert_eq!(store.commit(batch).unwrap(), vec![Ok(OpResult::Done)]);
}

fn audit(action: &str, object: &str, at: i64) -> AuditRecord {
    AuditRecord {
        actor: "admin token".into(),
        source: "127.0.0.1".into(),
        action: action.into(),
        object: object.into(),
        domain: Some("example.test".into()),
        before: None,
        after: Some("role=user".into()),
        at,
    }
}

/// (from, to, forced, reason) of a domain's transitions, newest first.
fn history(store: &Store, domain: &str) -> Vec<(Option<Mode>, Mode, Option<Mode>, String)> {
    store.read(|s| {
        s.mode_history(domain, 100)
            .into_iter()
            .map(|c| (c.from, c.to, c.forced, c.reason.clone()))
            .collect()
    })
}

#[test]
fn every_transition_is_recorded_with_its_reason_and_survives_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let expected = {
        let store = Store::open(dir.path(), options()).unwrap();
        add_domain(&store, "example.test");
        add_domain(&store, "other.test");
        set_mode(
            &store,
            "example.test",
            Mode::Emergency,
            None,
            "upstream down",
            100,
        );
        // The same mode again (a router repeating itself) is no transition.
        set_mode(
            &store,
            "example.test",
            Mode::Emergency,
            None,
            "still down",
            110,
        );
        set_mode(
            &store,
            "example.test",
            Mode::Emergency,
            Some(Mode::Emergency),
            "forced emergency by an admin",
            120,
        );
        set_mode(
            &store,
            "example.test",
            Mode::Normal,
            None,
            "upstream back up",
            130,
        );
        // Changing a domain's settings is no transition either.
        add_domain(&store, "example.test");
        let h = history(&store, "example.test");
        assert_eq!(
            h,
            vec![
                (
                    Some(Mode::Emergency),
                    Mode::Normal,
                    None,
                    "upstream back up".to_string()
                ),
                (
                    Some(Mode::Emergency),
                    Mode::Emergency,
                    Some(Mode::Emergency),
                    "forced emergency by an admin".to_string()
                ),
                (
                    Some(Mode::Normal),
                    Mode::Emergency,
                    None,
                    "upstream down".to_string()
                ),
                (None, Mode::Normal, None, "domain added".to_string()),
            ]
        );
        let times: Vec<i64> = store.read(|s| {
            s.mode_history("example.test", 3)
                .iter()
                .map(|c| c.at)
                .collect()
        });
        assert_eq!(times, vec![130, 120, 100]);
        assert_eq!(history(&store, "other.test").len(), 1);
        h
    };
    // Replay from the log alone (no checkpoint was written while it ran: the close
    // writes one, so remove it first by reopening from a copy without it).
    let copy = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "checkpoint" {
            std::fs::copy(entry.path(), copy.path().join(entry.file_name())).unwrap();
        }
    }
    let replayed = Store::open(copy.path(), options()).unwrap();
    assert_eq!(history(&replayed, "example.test"), expected);
    // And from the checkpoint the close wrote.
    let reopened = Store::open(dir.path(), options()).unwrap();
    assert_eq!(reopened.stats().replayed_at_open, 0);
    assert_eq!(history(&reopened, "example.test"), expected);
}

#[test]
fn audit_entries_are_kept_only_with_the_change_they_describe() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    add_domain(&store, "example.test");

    let mut batch = Batch::new();
    batch.push(Op::AddAccount {
        address: "alice@example.test".into(),
        password_hash: "x".into(),
        role: Role::User,
        covered: false,
        recovery: None,
    });
    batch.push(Op::Audit(audit("account.add", "alice@example.test", 50)));
    assert_eq!(
        store.commit(batch).unwrap(),
        vec![Ok(OpResult::Done), Ok(OpResult::Done)]
    );

    // The account exists already: the add fails, so its audit entry is not kept.
    let mut batch = Batch::new();
    batch.push(Op::AddAccount {
        address: "alice@example.test".into(),
        password_hash: "x".into(),
        role: Role::Admin,
        covered: false,
        recovery: None,
    });
    batch.push(Op::Audit(audit("account.add", "alice@example.test", 60)));
    let results = store.commit(batch).unwrap();
    assert!(
        matches!(results[0], Err(OpError::AccountExists(_))),
        "{results:?}"
    );
    assert!(
        matches!(results[1], Err(OpError::AuditAfterFailure)),
        "{results:?}"
    );

    let entries: Vec<(u64, String, i64)> = store.read(|s| {
        s.journal()
            .audit()
            .map(|e| (e.id, e.record.action.clone(), e.record.at))
            .collect()
    });
    assert_eq!(entries, vec![(1, "account.add".to_string(), 50)]);
    drop(store);
    let store = Store::open(dir.path(), options()).unwrap();
    let after: Vec<u64> = store.read(|s| s.journal().audit().map(|e| e.id).collect());
    assert_eq!(after, vec![1]);
}

#[test]
fn retention_removes_old_history_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    add_domain(&store, "example.test");
    let day = 86_400;
    let now = 1_000 * day;
    let mut batch = Batch::new();
    for (i, age_days) in [100, 91, 89, 1].into_iter().enumerate() {
        batch.push(Op::Audit(audit(
            "domain.update",
            &format!("#{i}"),
            now - age_days * day,
        )));
    }
    store.commit(batch).unwrap();
    set_mode(
        &store,
        "example.test",
        Mode::Emergency,
        None,
        "old",
        now - 95 * day,
    );
    set_mode(
        &store,
        "example.test",
        Mode::Normal,
        None,
        "recent",
        now - day,
    );

    // "domain added" was recorded at the commit's real time, decades after `now`.
    assert_eq!(store.expire_history(now, 90).unwrap(), 3);
    assert_eq!(store.expire_history(now, 90).unwrap(), 0);
    let objects: Vec<String> = store.read(|s| {
        s.journal()
            .audit()
            .map(|e| e.record.object.clone())
            .collect()
    });
    assert_eq!(objects, vec!["#2", "#3"]);
    let reasons: Vec<String> = history(&store, "example.test")
        .into_iter()
        .map(|(_, _, _, r)| r)
        .collect();
    assert_eq!(reasons, vec!["recent", "domain added"]);
}

/// The router's decisions apply only while no admin holds a mode and the domain fails
/// over automatically: one made just before an admin's force never undoes it.
#[test]
fn a_router_decision_never_undoes_an_admin_force_or_manual_failover() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), options()).unwrap();
    add_domain(&store, "example.test");
    let router = |mode: Mode, at: i64| {
        let mut batch = Batch::new();
        batch.push(Op::RouterSetMode {
            domain: "example.test".into(),
            mode,
            reason: "upstream health".into(),
            at,
        });
        assert_eq!(store.commit(batch).unwrap(), vec![Ok(OpResult::Done)]);
    };
    let mode = || {
        store.read(|s| {
            let d = s.domain("example.test").unwrap();
            (d.mode, d.forced)
        })
    };
    router(Mode::Emergency, 10);
    assert_eq!(mode(), (Mode::Emergency, None));
    set_mode(
        &store,
        "example.test",
        Mode::Normal,
        Some(Mode::Normal),
        "forced normal by an admin",
        20,
    );
    router(Mode::Emergency, 30);
    assert_eq!(
        mode(),
        (Mode::Normal, Some(Mode::Normal)),
        "the force stands"
    );
    set_mode(&store, "example.test", Mode::Normal, None, "released", 40);
    let mut batch = Batch::new();
    batch.push(Op::PutDomain(DomainSettings {
        name: "example.test".into(),
        upstream: "127.0.0.1:2526".into(),
        coverage: Coverage::All,
        failover: Failover::Manual,
    }));
    store.commit(batch).unwrap();
    router(Mode::Emergency, 50);
    assert_eq!(
        mode(),
        (Mode::Normal, None),
        "manual failover: the router does not decide"
    );
    let reasons: Vec<String> = history(&store, "example.test")
        .into_iter()
        .map(|(_, _, _, reason)| reason)
        .take(3)
        .collect();
    // Newest first: the two refused decisions left no trace.
    assert_eq!(
        reasons,
        ["released", "forced normal by an admin", "upstream health"]
    );
}
