//! The cluster crate against real nats-server processes (three, clustered, JetStream):
//! the replicated log keeps its order and every acknowledged message through the loss
//! of a server, refuses to acknowledge without a majority and resumes by itself; the
//! membership elects exactly one leader and replaces a dead one.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use lifeboat_cluster::log::ReplicatedLog;
use lifeboat_cluster::membership::Membership;
use lifeboat_cluster::{Config, Connection, Error};
use lifeboat_testkit::nats::NatsCluster;

fn runtime() -> tokio::runtime::Runtime {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("LIFEBOAT_LOG"))
        .with_test_writer()
        .try_init();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn config(nats: &NatsCluster, node: &str) -> Config {
    let mut config = Config::new(nats.urls(), node, 3);
    config.publish_timeout = Duration::from_secs(3);
    config.lease = Duration::from_secs(3);
    config
}

async fn connect(nats: &NatsCluster, node: &str) -> Connection {
    Connection::connect(config(nats, node), Duration::from_secs(20))
        .await
        .unwrap()
}

async fn read_all(log: &ReplicatedLog, from: u64, n: usize) -> Vec<(u64, Bytes)> {
    let mut reader = log.read_from(from).await.unwrap();
    let mut out = Vec::new();
    while out.len() < n {
        // Generous: after a server loss JetStream elects new leaders first, slowly on a
        // busy machine.
        let next = tokio::time::timeout(Duration::from_secs(90), reader.next())
            .await
            .expect("the reader delivers")
            .unwrap();
        out.push(next);
    }
    out
}

#[test]
fn the_log_keeps_order_and_acknowledged_messages_through_a_server_loss() {
    let mut nats = NatsCluster::start(3);
    let rt = runtime();
    let (a, b) = rt.block_on(async { (connect(&nats, "a").await, connect(&nats, "b").await) });
    let (log_a, log_b) = rt.block_on(async {
        (
            ReplicatedLog::open(&a).await.unwrap(),
            ReplicatedLog::open(&b).await.unwrap(),
        )
    });
    // Two publishers at once.
    let acked: Vec<(u64, String)> = rt.block_on(async {
        let mut tasks = Vec::new();
        for (name, log) in [("a", log_a.clone()), ("b", log_b.clone())] {
            tasks.push(tokio::spawn(async move {
                let mut acked = Vec::new();
                for i in 0..100 {
                    let body = format!("{name}{i}");
                    let seq = log.publish(Bytes::from(body.clone())).await.unwrap();
                    acked.push((seq, body));
                }
                acked
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all.sort();
        all
    });
    assert_eq!(acked.len(), 200);
    // Both readers see the same 200 messages in sequence order.
    let seen_a = rt.block_on(read_all(&log_a, 1, 200));
    let seen_b = rt.block_on(read_all(&log_b, 1, 200));
    assert_eq!(seen_a, seen_b);
    let seen: Vec<(u64, String)> = seen_a
        .iter()
        .map(|(s, b)| (*s, String::from_utf8(b.to_vec()).unwrap()))
        .collect();
    assert_eq!(seen, acked, "every acknowledged message, at its sequence");

    // One server dies: publishing goes on, and nothing acknowledged is lost.
    nats.kill(0);
    let more: Vec<u64> = rt.block_on(async {
        let mut seqs = Vec::new();
        for i in 0..50 {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                match log_b.publish(Bytes::from(format!("after{i}"))).await {
                    Ok(seq) => {
                        seqs.push(seq);
                        break;
                    }
                    // While the stream elects a new leader.
                    Err(Error::Unavailable(_)) if Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(100)).await
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        }
        seqs
    });
    let all = rt.block_on(read_all(&log_b, 1, 250));
    assert_eq!(&all[..200], &seen_b[..]);
    let tail: Vec<u64> = all[200..].iter().map(|(s, _)| *s).collect();
    assert_eq!(tail, more);
    let (first, last) = rt.block_on(log_b.bounds()).unwrap();
    assert_eq!((first, last), (1, *more.last().unwrap()));

    // Trimmed: reading from before the start is refused.
    rt.block_on(log_b.trim_before(101)).unwrap();
    let err = rt.block_on(log_b.read_from(50)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Trimmed {
                wanted: 50,
                first: 101
            }
        ),
        "{err}"
    );
    let from_101 = rt.block_on(read_all(&log_b, 101, 150));
    assert_eq!(from_101[0].0, 101);
}

#[test]
fn without_a_majority_nothing_is_acknowledged_and_it_resumes_by_itself() {
    let mut nats = NatsCluster::start(3);
    let rt = runtime();
    let a = rt.block_on(connect(&nats, "a"));
    let log = rt.block_on(ReplicatedLog::open(&a)).unwrap();
    rt.block_on(log.publish(Bytes::from_static(b"before")))
        .unwrap();
    nats.kill(1);
    nats.kill(2);
    let started = Instant::now();
    let err = rt
        .block_on(log.publish(Bytes::from_static(b"lost?")))
        .unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err}");
    eprintln!("refused after {:?}", started.elapsed());
    nats.restart(1);
    nats.restart(2);
    let seq = rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match log.publish(Bytes::from_static(b"after")).await {
                Ok(seq) => break seq,
                Err(e) if Instant::now() < deadline => {
                    tracing::debug!("{e}");
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                Err(e) => panic!("never resumed: {e}"),
            }
        }
    });
    // The refused message may or may not have been stored (a timeout is not a "no"),
    // but what was acknowledged is there, in order, at its sequence.
    let all = rt.block_on(read_all(&log, 1, seq as usize));
    assert_eq!(all[0], (1, Bytes::from_static(b"before")));
    assert_eq!(all.last().unwrap(), &(seq, Bytes::from_static(b"after")));
}

#[test]
fn one_leader_and_a_dead_one_is_replaced() {
    let nats = NatsCluster::start(3);
    let rt = runtime();
    let members: Vec<Membership> = rt.block_on(async {
        let mut members = Vec::new();
        for name in ["n1", "n2", "n3"] {
            let c = connect(&nats, name).await;
            members.push(
                Membership::join(&c, Arc::new(AtomicU64::new(7)))
                    .await
                    .unwrap(),
            );
        }
        members
    });
    let settled = |members: &[Membership], n: usize| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let views: Vec<_> = members.iter().map(|m| m.view()).collect();
            let agree = views
                .windows(2)
                .all(|w| w[0].live() == w[1].live() && w[0].leader == w[1].leader);
            if agree && views[0].nodes.len() == n && views[0].leader.is_some() {
                return views[0].clone();
            }
            assert!(Instant::now() < deadline, "no agreement: {views:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let view = settled(&members, 3);
    assert_eq!(view.live(), vec!["n1", "n2", "n3"]);
    assert!(view.nodes.iter().all(|n| n.applied == 7));
    assert_eq!(members.iter().filter(|m| m.is_leader()).count(), 1);
    // Every queue entry has exactly one owner, and all three get a share.
    let mut shares = std::collections::BTreeMap::new();
    for id in 0..300u64 {
        *shares
            .entry(view.owner(id).unwrap().to_string())
            .or_insert(0) += 1;
    }
    assert_eq!(shares.len(), 3, "{shares:?}");
    assert!(shares.values().all(|n| *n >= 50), "{shares:?}");

    // The leader dies without a word (its process is gone: no renewals).
    let leader = view.leader.clone().unwrap();
    let (dead, alive): (Vec<Membership>, Vec<Membership>) =
        members.into_iter().partition(|m| m.name() == leader);
    drop(dead);
    let started = Instant::now();
    let view = settled(&alive, 2);
    assert_ne!(view.leader.as_deref(), Some(leader.as_str()));
    assert_eq!(alive.iter().filter(|m| m.is_leader()).count(), 1);
    eprintln!("new leader after {:?}", started.elapsed());
    // Leaving says so at once.
    rt.block_on(async {
        let mut alive = alive;
        let last = alive.pop().unwrap();
        last.leave().await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive[0].view().nodes.len() != 1 {
            assert!(Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}
