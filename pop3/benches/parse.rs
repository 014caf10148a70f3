//! Throughput of the POP3 codecs: commands per second for the command decoder over a
//! typical pipelined download session, and bytes per second for the RETR encoder
//! (line-end normalisation and byte-stuffing) on a 10 KiB and a 1 MiB message, in the
//! server's send chunks.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lifeboat_pop3::encode::{message_size, MessageEncoder};
use lifeboat_pop3::parse::limits::COMMAND_LINE_BYTES_MAX;
use lifeboat_pop3::parse::{decode_command, Command};
use lifeboat_pop3::server::SEND_CHUNK_BYTES;

/// What a mail client sends to download and delete three messages.
const SESSION: &[&[u8]] = &[
    b"CAPA\r\n",
    b"USER alice.smith@customer.example\r\n",
    b"PASS correct horse battery staple\r\n",
    b"STAT\r\n",
    b"UIDL\r\n",
    b"LIST\r\n",
    b"RETR 1\r\n",
    b"DELE 1\r\n",
    b"RETR 2\r\n",
    b"DELE 2\r\n",
    b"TOP 3 0\r\n",
    b"RETR 3\r\n",
    b"DELE 3\r\n",
    b"NOOP\r\n",
    b"QUIT\r\n",
];

fn commands(c: &mut Criterion) {
    let stream: Vec<u8> = SESSION.concat();
    let mut group = c.benchmark_group("pop3_command");
    group.throughput(Throughput::Elements(SESSION.len() as u64));
    group.bench_function("session", |b| {
        b.iter(|| {
            let mut rest = stream.as_slice();
            while !rest.is_empty() {
                let (command, consumed) =
                    decode_command(black_box(rest), COMMAND_LINE_BYTES_MAX).unwrap();
                black_box(&command);
                rest = &rest[consumed..];
            }
        })
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("auth_plain", |b| {
        b.iter(|| {
            let (command, _) = decode_command(
                black_box(
                    b"AUTH PLAIN AGFsaWNlLnNtaXRoQGN1c3RvbWVyLmV4YW1wbGUAY29ycmVjdCBob3JzZQ==\r\n",
                ),
                COMMAND_LINE_BYTES_MAX,
            )
            .unwrap();
            assert!(matches!(command, Command::Auth { .. }));
        })
    });
    group.finish();
}

/// A message of about `size_bytes`: headers, then 76-column text lines with CRLF
/// line ends, every twentieth starting with a dot.
fn message(size_bytes: usize) -> Vec<u8> {
    let mut message = b"From: Sender <sender@sender.example>\r\n\
To: alice@customer.example\r\n\
Subject: Quarterly report\r\n\
Message-ID: <1234.5678@sender.example>\r\n\r\n"
        .to_vec();
    let mut line_number = 0;
    while message.len() < size_bytes {
        if line_number % 20 == 0 {
            message.push(b'.');
        }
        let line = format!(
            "{line_number:06} The quick brown fox jumps over the lazy dog, again and again."
        );
        message.extend_from_slice(&line.as_bytes()[..line.len().min(74)]);
        message.extend_from_slice(b"\r\n");
        line_number += 1;
    }
    message
}

fn retr(c: &mut Criterion) {
    let mut group = c.benchmark_group("pop3_retr");
    for (name, size_bytes) in [("10KiB", 10 * 1024), ("1MiB", 1024 * 1024)] {
        let message = message(size_bytes);
        let mut chunk = Vec::with_capacity(SEND_CHUNK_BYTES + 16);
        group.throughput(Throughput::Bytes(message.len() as u64));
        group.bench_with_input(BenchmarkId::new("encode", name), &message, |b, message| {
            b.iter(|| {
                let mut encoder = MessageEncoder::retr();
                loop {
                    chunk.clear();
                    if encoder.encode(black_box(message), &mut chunk, SEND_CHUNK_BYTES) {
                        break;
                    }
                    black_box(&chunk);
                }
            })
        });
        group.bench_with_input(BenchmarkId::new("size", name), &message, |b, message| {
            b.iter(|| black_box(message_size(black_box(message))))
        });
    }
    group.finish();
}

criterion_group!(benches, commands, retr);
criterion_main!(benches);
