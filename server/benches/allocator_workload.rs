// The allocation-heavy part of accepting a message, shared by the two allocator
// benches: header extraction (mail-parser), building and encoding a store batch, and
// the small strings and vectors a session makes per command.

use lifeboat_store::{Batch, BodyRef, Direction, NewArchiveEntry, NewQueueEntry, Op};

pub fn message(i: usize) -> Vec<u8> {
    let mut m = format!(
        "From: Sender {i} <sender{i}@remote.test>\r\nTo: user{i}@example.test\r\n\
         Subject: =?UTF-8?B?w4RwZmVs?= report {i}\r\nMessage-ID: <{i}@remote.test>\r\n\
         Date: Fri, 27 Nov 2026 01:28:32 +0000\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n"
    )
    .into_bytes();
    while m.len() < 10 * 1024 {
        m.extend_from_slice(b"The quick brown fox jumps over the lazy dog.\r\n");
    }
    m
}

pub fn accept_path(message: &[u8]) -> usize {
    let headers = lifeboat_smtp::relay::header_fields(message);
    let mut batch = Batch::new();
    let body: BodyRef = batch.put_body(message.to_vec());
    batch.push(Op::Archive(NewArchiveEntry {
        body,
        direction: Direction::In,
        mail_from: "sender@remote.test".into(),
        rcpt_to: vec!["user@example.test".into()],
        date: 0,
        headers,
    }));
    for r in 0..4 {
        batch.push(Op::Enqueue(NewQueueEntry {
            body,
            sender: "sender@remote.test".into(),
            recipient: format!("user{r}@example.test"),
            destination: lifeboat_store::Destination::Upstream("example.test".into()),
            next_attempt: 0,
            created: 0,
            portal: None,
        }));
    }
    let words: Vec<String> = (0..32).map(|i| format!("CMD{i} ARG")).collect();
    batch.len() + words.len()
}
