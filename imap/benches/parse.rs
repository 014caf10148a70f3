//! Parser throughput: commands per second for typical commands, and megabytes per
//! second for APPEND literals going through the framer and the parser (10 KiB and
//! 1 MiB messages, read in 16 KiB chunks as from a socket).
//!
//! Run with `cargo bench -p lifeboat-imap --bench parse`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lifeboat_imap::parse::framer::{Frame, Framer};
use lifeboat_imap::parse::{self, Limits};

const COMMANDS: &[(&str, &[u8])] = &[
    ("noop", b"a1 NOOP\r\n"),
    ("login", b"a2 LOGIN fred@example.com \"correct horse\"\r\n"),
    ("select", b"a3 SELECT INBOX (CONDSTORE)\r\n"),
    (
        "uid_fetch",
        b"a4 UID FETCH 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Subject Date Message-ID Priority X-Priority References Newsgroups In-Reply-To Content-Type Reply-To)]) (CHANGEDSINCE 12345)\r\n",
    ),
    (
        "uid_search",
        b"a5 UID SEARCH RETURN (ALL COUNT) CHARSET UTF-8 OR (FROM alice SUBJECT \"status report\") NOT (SEEN DELETED) SINCE 1-Jan-2024 UID 1:*\r\n",
    ),
    ("uid_store", b"a6 UID STORE 1:20,25,30:* +FLAGS.SILENT (\\Seen \\Flagged $Work)\r\n"),
];

fn commands(criterion: &mut Criterion) {
    let limits = Limits::default();
    let mut group = criterion.benchmark_group("command");
    group.throughput(Throughput::Elements(1));
    for (name, input) in COMMANDS {
        group.bench_function(*name, |bencher| {
            bencher.iter(|| {
                let parsed = parse::command(black_box(input), &limits);
                assert!(parsed.is_ok());
                black_box(parsed.is_ok())
            })
        });
    }
    group.finish();
}

fn append_stream(message_bytes: usize) -> Vec<u8> {
    let mut stream = format!("a1 APPEND INBOX (\\Seen) {{{message_bytes}+}}\r\n").into_bytes();
    let line = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\r\n";
    while stream.len() < message_bytes + 40 {
        stream.extend_from_slice(line);
    }
    let header_bytes = stream.iter().position(|&byte| byte == b'\n').unwrap() + 1;
    stream.truncate(header_bytes + message_bytes);
    stream.extend_from_slice(b"\r\n");
    stream
}

/// Socket reads of 16 KiB, through the framer, then the parser.
fn frame_and_parse(stream: &[u8], limits: &Limits) -> usize {
    let mut framer = Framer::new(*limits);
    let mut parsed_bytes = 0;
    for chunk in stream.chunks(16 * 1024) {
        framer.push(chunk);
        loop {
            match framer.next() {
                Frame::Unit(unit) => {
                    let (used, command) = parse::command(unit, limits).unwrap();
                    black_box(&command);
                    parsed_bytes += used;
                }
                Frame::NeedMore => break,
                other => panic!("{other:?}"),
            }
        }
    }
    parsed_bytes
}

fn literals(criterion: &mut Criterion) {
    let limits = Limits::default();
    let mut group = criterion.benchmark_group("append_literal");
    for (name, message_bytes) in [("10KiB", 10 * 1024), ("1MiB", 1024 * 1024)] {
        let stream = append_stream(message_bytes);
        group.throughput(Throughput::Bytes(stream.len() as u64));
        group.bench_function(name, |bencher| {
            bencher.iter(|| {
                let parsed = frame_and_parse(black_box(&stream), &limits);
                assert_eq!(parsed, stream.len());
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = commands, literals
}
criterion_main!(benches);
