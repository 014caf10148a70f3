//! Throughput of the SMTP codecs: commands per second for the command decoder, and
//! bytes per second for the DATA decoder on a 10 KiB and a 1 MiB message, fed whole
//! and in 16 KiB reads (a typical socket buffer).

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lifeboat_smtp::parse::limits::COMMAND_LINE_BYTES_MAX;
use lifeboat_smtp::parse::{decode_command, encode_data, DataDecoder, DataStatus};

/// One pipelined transaction of a typical inbound delivery.
const TRANSACTION: &[&[u8]] = &[
    b"EHLO mail-out.sender.example\r\n",
    b"MAIL FROM:<newsletter+bounces-1234@sender.example> SIZE=48213 BODY=8BITMIME\r\n",
    b"RCPT TO:<alice@customer.example>\r\n",
    b"RCPT TO:<bob.smith@customer.example> NOTIFY=FAILURE,DELAY ORCPT=rfc822;bob.smith@customer.example\r\n",
    b"RCPT TO:<\"carol jones\"@customer.example>\r\n",
    b"DATA\r\n",
    b"RSET\r\n",
    b"NOOP\r\n",
    b"QUIT\r\n",
];

fn commands(c: &mut Criterion) {
    let stream: Vec<u8> = TRANSACTION.concat();
    let mut group = c.benchmark_group("smtp_command");
    group.throughput(Throughput::Elements(TRANSACTION.len() as u64));
    group.bench_function("transaction", |b| {
        b.iter(|| {
            let mut rest = stream.as_slice();
            while !rest.is_empty() {
                let (command, consumed) =
                    decode_command(black_box(rest), COMMAND_LINE_BYTES_MAX).unwrap();
                black_box(command);
                rest = &rest[consumed..];
            }
        })
    });
    group.finish();
}

/// A message of about `size_bytes`: headers, then 76-column text lines, every
/// twentieth starting with a dot, dot-stuffed and terminated as sent after DATA.
fn data_body(size_bytes: usize) -> (Vec<u8>, usize) {
    let mut message = b"From: Sender <sender@sender.example>\r\n\
To: alice@customer.example\r\n\
Subject: Quarterly report\r\n\
Message-ID: <1234.5678@sender.example>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\n"
        .to_vec();
    let mut line_number = 0;
    while message.len() < size_bytes {
        if line_number % 20 == 0 {
            message.push(b'.');
        }
        let line = format!("{line_number:06} The quick brown fox jumps over the lazy dog; \u{e9}t\u{e9} caf\u{e9}.");
        message.extend_from_slice(&line.as_bytes()[..line.len().min(74)]);
        message.extend_from_slice(b"\r\n");
        line_number += 1;
    }
    let mut body = Vec::with_capacity(message.len() + message.len() / 20);
    encode_data(&message, &mut body);
    (body, message.len())
}

fn data(c: &mut Criterion) {
    let mut group = c.benchmark_group("smtp_data");
    for (name, size_bytes) in [("10KiB", 10 * 1024), ("1MiB", 1024 * 1024)] {
        let (body, message_bytes) = data_body(size_bytes);
        let mut out = Vec::with_capacity(message_bytes);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::new("whole", name), &body, |b, body| {
            b.iter(|| {
                out.clear();
                let mut decoder = DataDecoder::new(u64::MAX);
                let status = decoder.decode(black_box(body), &mut out);
                assert!(matches!(status, DataStatus::End { outcome: Ok(_), .. }));
            })
        });
        group.bench_with_input(BenchmarkId::new("16KiB_reads", name), &body, |b, body| {
            b.iter(|| {
                out.clear();
                let mut decoder = DataDecoder::new(u64::MAX);
                for chunk in body.chunks(16 * 1024) {
                    if let DataStatus::End { outcome, .. } =
                        decoder.decode(black_box(chunk), &mut out)
                    {
                        assert!(outcome.is_ok());
                    }
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, commands, data);
criterion_main!(benches);
