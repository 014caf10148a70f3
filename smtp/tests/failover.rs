//! The failover state machine, table-tested: every health transition, every way a
//! domain's mode is brought back in line with its upstream, flap damping, probes and
//! the once-only mode decisions (SPEC §1).

use lifeboat_smtp::relay::failover::{
    Decision, DomainView, Event, Health, Machine, Settings, FLAP_WINDOW_MS, MODE_PENDING_MS,
    PROBES_NEEDED_MAX, STABLE_MS,
};
use lifeboat_store::{Failover, Mode};

const UP: &str = "10.0.0.1:25";
const OTHER: &str = "10.0.0.2:25";
const SECOND: i64 = 1000;
const MINUTE: i64 = 60 * SECOND;

fn settings() -> Settings {
    Settings {
        down_after: 1,
        up_after: 2,
        probe_interval_ms: 15 * SECOND,
    }
}

fn domain(
    name: &str,
    upstream: &str,
    failover: Failover,
    mode: Mode,
    forced: Option<Mode>,
) -> DomainView {
    DomainView {
        name: name.into(),
        upstream: upstream.into(),
        failover,
        mode,
        forced,
    }
}

fn auto(name: &str, mode: Mode) -> DomainView {
    domain(name, UP, Failover::Auto, mode, None)
}

fn dir(domains: Vec<DomainView>) -> Event {
    Event::Directory(domains)
}

fn fail(upstream: &str) -> Event {
    Event::DeliveryFailed {
        upstream: upstream.into(),
        reason: "451 4.3.0 try later".into(),
    }
}

fn delivered(upstream: &str) -> Event {
    Event::Delivered {
        upstream: upstream.into(),
    }
}

fn probe_ok(upstream: &str) -> Event {
    Event::ProbeDone {
        upstream: upstream.into(),
        result: Ok(()),
    }
}

fn probe_bad(upstream: &str) -> Event {
    Event::ProbeDone {
        upstream: upstream.into(),
        result: Err("RCPT: 451 4.3.0 try later".into()),
    }
}

fn probe(upstream: &str, domain: &str) -> Decision {
    Decision::Probe {
        upstream: upstream.into(),
        domain: domain.into(),
    }
}

/// A SetMode decision; the reason is checked to name the upstream, not word by word.
fn set(domain: &str, mode: Mode) -> Decision {
    Decision::SetMode {
        domain: domain.into(),
        mode,
        reason: String::new(),
    }
}

fn without_reasons(decisions: Vec<Decision>) -> Vec<Decision> {
    decisions
        .into_iter()
        .map(|d| match d {
            Decision::SetMode {
                domain,
                mode,
                reason,
            } => {
                assert!(
                    reason.contains("upstream"),
                    "reason {reason:?} names the upstream"
                );
                Decision::SetMode {
                    domain,
                    mode,
                    reason: String::new(),
                }
            }
            other => other,
        })
        .collect()
}

/// One step: at a time, an event, the decisions expected.
type Step = (i64, Event, Vec<Decision>);

fn run(name: &str, settings: Settings, steps: Vec<Step>) -> Machine {
    let mut m = Machine::new(settings);
    for (i, (at, event, expected)) in steps.into_iter().enumerate() {
        let got = without_reasons(m.handle(at, event.clone()));
        assert_eq!(got, expected, "{name}: step {i} ({event:?} at {at} ms)");
    }
    m
}

fn health(m: &Machine, upstream: &str) -> Health {
    m.upstream(upstream).expect("upstream known").health
}

#[test]
fn health_transitions() {
    // (name, steps, health after)
    let cases: Vec<(&str, Vec<Step>, Health)> = vec![
        (
            "a new upstream is unknown and probed at once",
            vec![
                (0, dir(vec![auto("a.test", Mode::Normal)]), vec![]),
                (1, Event::Tick, vec![probe(UP, "a.test")]),
                // Not again while the probe runs.
                (2, Event::Tick, vec![]),
            ],
            Health::Unknown,
        ),
        (
            "unknown → up on a good probe, no mode change for a normal domain",
            vec![
                (0, dir(vec![auto("a.test", Mode::Normal)]), vec![]),
                (1, Event::Tick, vec![probe(UP, "a.test")]),
                (2, probe_ok(UP), vec![]),
                (20 * SECOND, Event::Tick, vec![]),
            ],
            Health::Up,
        ),
        (
            "unknown → up on a delivery",
            vec![
                (0, dir(vec![auto("a.test", Mode::Normal)]), vec![]),
                (1, delivered(UP), vec![]),
            ],
            Health::Up,
        ),
        (
            "unknown → down on a failed probe: emergency",
            vec![
                (0, dir(vec![auto("a.test", Mode::Normal)]), vec![]),
                (1, Event::Tick, vec![probe(UP, "a.test")]),
                (2, probe_bad(UP), vec![set("a.test", Mode::Emergency)]),
            ],
            Health::Down,
        ),
        (
            "up → down on a delivery failure: emergency",
            vec![
                (0, dir(vec![auto("a.test", Mode::Normal)]), vec![]),
                (1, delivered(UP), vec![]),
                (2, fail(UP), vec![set("a.test", Mode::Emergency)]),
            ],
            Health::Down,
        ),
        (
            "down → up after up_after good probes, not before: normal",
            vec![
                (0, dir(vec![auto("a.test", Mode::Normal)]), vec![]),
                (1, fail(UP), vec![set("a.test", Mode::Emergency)]),
                (2, dir(vec![auto("a.test", Mode::Emergency)]), vec![]),
                (10 * SECOND, Event::Tick, vec![]),
                (16 * SECOND, Event::Tick, vec![probe(UP, "a.test")]),
                (17 * SECOND, probe_ok(UP), vec![]),
                (20 * SECOND, Event::Tick, vec![]),
                (32 * SECOND, Event::Tick, vec![probe(UP, "a.test")]),
                (33 * SECOND, probe_ok(UP), vec![set("a.test", Mode::Normal)]),
            ],
            Health::Up,
        ),
        (
            "a failed probe in between starts the count again",
            vec![
                (0, dir(vec![auto("a.test", Mode::Emergency)]), vec![]),
                (1, Event::Tick, vec![probe(UP, "a.test")]),
                (2, probe_ok(UP), vec![]),
                (20 * SECOND, Event::Tick, vec![probe(UP, "a.test")]),
                (21 * SECOND, probe_bad(UP), vec![]),
                (40 * SECOND, Event::Tick, vec![probe(UP, "a.test")]),
                (41 * SECOND, probe_ok(UP), vec![]),
            ],
            Health::Down,
        ),
        (
            "a delivery failure while down resets the good probes",
            vec![
                (0, dir(vec![auto("a.test", Mode::Emergency)]), vec![]),
                (1, Event::Tick, vec![probe(UP, "a.test")]),
                (2, probe_ok(UP), vec![]),
                (3, fail(UP), vec![]),
                (20 * SECOND, Event::Tick, vec![probe(UP, "a.test")]),
                (21 * SECOND, probe_ok(UP), vec![]),
            ],
            Health::Down,
        ),
        (
            "a delivery through a down upstream counts as a good probe",
            vec![
                (0, dir(vec![auto("a.test", Mode::Emergency)]), vec![]),
                (1, delivered(UP), vec![]),
                (2, delivered(UP), vec![set("a.test", Mode::Normal)]),
            ],
            Health::Up,
        ),
    ];
    for (name, steps, expected) in cases {
        let m = run(name, settings(), steps);
        assert_eq!(health(&m, UP), expected, "{name}: health");
    }
}

#[test]
fn down_after_counts_consecutive_failures() {
    let s = Settings {
        down_after: 3,
        ..settings()
    };
    let m = run(
        "three failures in a row",
        s,
        vec![
            (0, dir(vec![auto("a.test", Mode::Normal)]), vec![]),
            (1, delivered(UP), vec![]),
            (2, fail(UP), vec![]),
            (3, fail(UP), vec![]),
            (4, delivered(UP), vec![]),
            (5, fail(UP), vec![]),
            (6, fail(UP), vec![]),
            (7, fail(UP), vec![set("a.test", Mode::Emergency)]),
        ],
    );
    assert_eq!(health(&m, UP), Health::Down);
}

#[test]
fn the_mode_follows_the_upstream_whatever_changed_the_domain() {
    let cases: Vec<(&str, Vec<Step>)> = vec![
        (
            "forced emergency with a healthy upstream, then released: back to normal at once",
            vec![
                (0, dir(vec![auto("a.test", Mode::Normal)]), vec![]),
                (1, delivered(UP), vec![]),
                (
                    2,
                    dir(vec![domain(
                        "a.test",
                        UP,
                        Failover::Auto,
                        Mode::Emergency,
                        Some(Mode::Emergency),
                    )]),
                    vec![],
                ),
                (3, Event::Tick, vec![]),
                (
                    4,
                    dir(vec![auto("a.test", Mode::Emergency)]),
                    vec![set("a.test", Mode::Normal)],
                ),
            ],
        ),
        (
            "forced normal with a dead upstream, then released: emergency at once",
            vec![
                (
                    0,
                    dir(vec![domain(
                        "a.test",
                        UP,
                        Failover::Auto,
                        Mode::Normal,
                        Some(Mode::Normal),
                    )]),
                    vec![],
                ),
                (1, fail(UP), vec![]),
                (
                    2,
                    dir(vec![auto("a.test", Mode::Normal)]),
                    vec![set("a.test", Mode::Emergency)],
                ),
            ],
        ),
        (
            "a forced domain is never switched, whatever the upstream does",
            vec![
                (
                    0,
                    dir(vec![domain(
                        "a.test",
                        UP,
                        Failover::Auto,
                        Mode::Normal,
                        Some(Mode::Normal),
                    )]),
                    vec![],
                ),
                (1, fail(UP), vec![]),
                (2, Event::Tick, vec![]),
                (20 * SECOND, Event::Tick, vec![probe(UP, "a.test")]),
                (21 * SECOND, probe_ok(UP), vec![]),
            ],
        ),
        (
            "a manual domain is never switched",
            vec![
                (
                    0,
                    dir(vec![domain(
                        "a.test",
                        UP,
                        Failover::Manual,
                        Mode::Normal,
                        None,
                    )]),
                    vec![],
                ),
                (1, fail(UP), vec![]),
                (
                    2,
                    dir(vec![domain(
                        "a.test",
                        UP,
                        Failover::Manual,
                        Mode::Emergency,
                        None,
                    )]),
                    vec![],
                ),
                (3, delivered(UP), vec![]),
            ],
        ),
        (
            "failover switched from manual to auto: the router decides at once",
            vec![
                (
                    0,
                    dir(vec![domain(
                        "a.test",
                        UP,
                        Failover::Manual,
                        Mode::Emergency,
                        None,
                    )]),
                    vec![],
                ),
                (1, delivered(UP), vec![]),
                (
                    2,
                    dir(vec![auto("a.test", Mode::Emergency)]),
                    vec![set("a.test", Mode::Normal)],
                ),
            ],
        ),
        (
            "an upstream changed while in emergency: the new one is probed at once",
            vec![
                (0, dir(vec![auto("a.test", Mode::Normal)]), vec![]),
                (1, fail(UP), vec![set("a.test", Mode::Emergency)]),
                (2, dir(vec![auto("a.test", Mode::Emergency)]), vec![]),
                (
                    3,
                    dir(vec![domain(
                        "a.test",
                        OTHER,
                        Failover::Auto,
                        Mode::Emergency,
                        None,
                    )]),
                    vec![],
                ),
                (4, Event::Tick, vec![probe(OTHER, "a.test")]),
                (5, probe_ok(OTHER), vec![set("a.test", Mode::Normal)]),
            ],
        ),
        (
            "a restart with a domain in emergency: its upstream is down until up_after probes",
            vec![
                (0, dir(vec![auto("a.test", Mode::Emergency)]), vec![]),
                (1, Event::Tick, vec![probe(UP, "a.test")]),
                (2, probe_ok(UP), vec![]),
                (20 * SECOND, Event::Tick, vec![probe(UP, "a.test")]),
                (21 * SECOND, probe_ok(UP), vec![set("a.test", Mode::Normal)]),
            ],
        ),
        (
            "a domain added later with an upstream already known follows it",
            vec![
                (0, dir(vec![auto("a.test", Mode::Normal)]), vec![]),
                (1, fail(UP), vec![set("a.test", Mode::Emergency)]),
                (
                    2,
                    dir(vec![
                        auto("a.test", Mode::Emergency),
                        auto("b.test", Mode::Normal),
                    ]),
                    vec![set("b.test", Mode::Emergency)],
                ),
            ],
        ),
        (
            "every auto domain of an upstream switches together",
            vec![
                (
                    0,
                    dir(vec![
                        auto("a.test", Mode::Normal),
                        auto("b.test", Mode::Normal),
                    ]),
                    vec![],
                ),
                (
                    1,
                    fail(UP),
                    vec![
                        set("a.test", Mode::Emergency),
                        set("b.test", Mode::Emergency),
                    ],
                ),
            ],
        ),
    ];
    for (name, steps) in cases {
        run(name, settings(), steps);
    }
}

#[test]
fn a_mode_change_is_decided_once_until_applied_or_stale() {
    let m = run(
        "pending",
        settings(),
        vec![
            (0, dir(vec![auto("a.test", Mode::Normal)]), vec![]),
            (1, fail(UP), vec![set("a.test", Mode::Emergency)]),
            // The store has not applied it yet: the same directory again decides nothing.
            (2, dir(vec![auto("a.test", Mode::Normal)]), vec![]),
            (3, Event::Tick, vec![]),
            // Not applied after MODE_PENDING_MS: decided again.
            (
                MODE_PENDING_MS + 10,
                Event::Tick,
                vec![set("a.test", Mode::Emergency)],
            ),
            (
                MODE_PENDING_MS + 20,
                dir(vec![auto("a.test", Mode::Emergency)]),
                vec![],
            ),
            (3 * MODE_PENDING_MS, Event::Tick, vec![probe(UP, "a.test")]),
        ],
    );
    assert_eq!(health(&m, UP), Health::Down);
}

#[test]
fn a_deleted_domain_forgets_its_upstream() {
    let mut m = run(
        "deleted",
        settings(),
        vec![
            (0, dir(vec![auto("a.test", Mode::Normal)]), vec![]),
            (1, fail(UP), vec![set("a.test", Mode::Emergency)]),
            (2, dir(vec![]), vec![]),
        ],
    );
    assert!(m.upstream(UP).is_none());
    assert_eq!(m.handle(30 * SECOND, Event::Tick), vec![]);
}

/// Takes an upstream that is down through `probes` good probes, one interval apart,
/// starting at `at`; returns the time after.
fn bring_up(m: &mut Machine, mut at: i64, probes: u32) -> i64 {
    for i in 0..probes {
        at += 15 * SECOND;
        assert_eq!(
            m.handle(at, Event::Tick),
            vec![probe(UP, "a.test")],
            "probe {i}"
        );
        at += 1;
        let decisions = without_reasons(m.handle(at, probe_ok(UP)));
        if i + 1 < probes {
            assert_eq!(decisions, vec![], "probe {i} of {probes} brings nothing");
            assert_eq!(health(m, UP), Health::Down);
        }
    }
    assert_eq!(health(m, UP), Health::Up, "up after {probes} probes");
    m.handle(at, dir(vec![auto("a.test", Mode::Normal)]));
    at
}

fn go_down(m: &mut Machine, at: i64) {
    m.handle(at, fail(UP));
    m.handle(at, dir(vec![auto("a.test", Mode::Emergency)]));
    assert_eq!(health(m, UP), Health::Down);
}

#[test]
fn flap_damping_doubles_the_probes_needed_up_to_the_maximum() {
    let s = settings();
    let mut m = Machine::new(s);
    m.handle(0, dir(vec![auto("a.test", Mode::Normal)]));
    m.handle(1, delivered(UP));
    go_down(&mut m, 2);
    let mut at = bring_up(&mut m, 2, 2);
    let mut needed = 2;
    // Down again within ten minutes of coming up, each time: 4, 8, 16, 32, 32.
    for expected in [4, 8, 16, 32, 32] {
        at += FLAP_WINDOW_MS - MINUTE;
        go_down(&mut m, at);
        let u = m.upstream(UP).unwrap();
        assert_eq!(
            u.probes_needed, expected,
            "after a flap with {needed} needed"
        );
        assert!(u.damped(&s));
        needed = expected;
        at = bring_up(&mut m, at, needed);
    }
    assert_eq!(needed, PROBES_NEEDED_MAX);
}

#[test]
fn flap_damping_rules_at_their_edges() {
    let s = settings();
    let start = |m: &mut Machine| {
        m.handle(0, dir(vec![auto("a.test", Mode::Normal)]));
        m.handle(1, delivered(UP));
        go_down(m, 2);
        let at = bring_up(m, 2, 2);
        go_down(m, at + MINUTE);
        assert_eq!(m.upstream(UP).unwrap().probes_needed, 4);
        bring_up(m, at + MINUTE, 4)
    };

    // Down again just after ten minutes: no doubling, no reset.
    let mut m = Machine::new(s);
    let at = start(&mut m);
    go_down(&mut m, at + FLAP_WINDOW_MS);
    assert_eq!(m.upstream(UP).unwrap().probes_needed, 4);

    // Down again after an hour up: back to up_after.
    let mut m = Machine::new(s);
    let at = start(&mut m);
    go_down(&mut m, at + STABLE_MS);
    assert_eq!(m.upstream(UP).unwrap().probes_needed, 2);

    // An hour up resets it even without going down (status shows it).
    let mut m = Machine::new(s);
    let at = start(&mut m);
    m.handle(at + STABLE_MS - 1, Event::Tick);
    assert_eq!(m.upstream(UP).unwrap().probes_needed, 4);
    m.handle(at + STABLE_MS, Event::Tick);
    let u = m.upstream(UP).unwrap();
    assert_eq!(u.probes_needed, 2);
    assert!(!u.damped(&s));
}

#[test]
fn a_large_up_after_is_not_cut_by_the_damping_maximum() {
    let s = Settings {
        up_after: 40,
        ..settings()
    };
    let mut m = Machine::new(s);
    m.handle(0, dir(vec![auto("a.test", Mode::Normal)]));
    m.handle(1, delivered(UP));
    go_down(&mut m, 2);
    assert_eq!(m.upstream(UP).unwrap().probes_needed, 40);
    let at = bring_up(&mut m, 2, 40);
    go_down(&mut m, at + MINUTE);
    assert_eq!(m.upstream(UP).unwrap().probes_needed, 40);
}

#[test]
fn status_records_the_last_probe_and_the_next() {
    let mut m = Machine::new(settings());
    m.handle(0, dir(vec![auto("a.test", Mode::Emergency)]));
    m.handle(5, Event::Tick);
    assert!(m.upstream(UP).unwrap().probing);
    m.handle(100, probe_bad(UP));
    let u = m.upstream(UP).unwrap();
    assert!(!u.probing);
    let last = u.last_probe.as_ref().expect("recorded");
    assert_eq!(last.at_ms, 100);
    assert!(last.failure.as_deref().unwrap().contains("451"));
    assert_eq!(u.next_probe_ms, Some(100 + 15 * SECOND));
    assert_eq!(u.since_ms, 0);
}
