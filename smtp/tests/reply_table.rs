//! The reply decoder the relay's client reads servers with, tested as ARCHITECTURE.md
//! §6 asks: a table of server byte streams and the replies (or the failure) a client
//! reads from them, the same table replayed in chunks of 1, 2, 4 … 512 bytes, and a
//! round trip through the server's own `encode_reply`.

use lifeboat_smtp::parse::check::{
    check_reply_round_trip, check_reply_stream, chunks, decode_replies, reference_replies,
    ReplyEvent,
};
use lifeboat_smtp::parse::{
    decode_reply, encode_ehlo_reply, encode_reply, Domain, EhloKeyword, EnhancedCode, Mechanism,
    ReplyCode, ReplyError, ReplyFault,
};

/// The relay client's limits.
const LINE_BYTES_MAX: usize = 2048;
const LINES_MAX: usize = 100;

fn code(code: u16) -> ReplyCode {
    ReplyCode::try_from(code).unwrap()
}

fn reply(number: u16, lines: &[&str], consumed: usize) -> ReplyEvent {
    ReplyEvent::Reply {
        code: code(number),
        lines: lines.iter().map(|line| line.as_bytes().to_vec()).collect(),
        consumed,
    }
}

fn failed(fault: ReplyFault) -> ReplyEvent {
    ReplyEvent::Failed(fault)
}

/// (what the server sends, what the client reads from it)
fn table() -> Vec<(Vec<u8>, Vec<ReplyEvent>)> {
    let mut cases: Vec<(Vec<u8>, Vec<ReplyEvent>)> = Vec::new();
    let mut case = |input: &[u8], events: Vec<ReplyEvent>| cases.push((input.to_vec(), events));

    // RFC 5321 §4.2 as written.
    case(
        b"220 mx.example.test ESMTP\r\n",
        vec![reply(220, &["mx.example.test ESMTP"], 27)],
    );
    case(
        b"250-mx.example.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 STARTTLS\r\n",
        vec![reply(
            250,
            &["mx.example.test", "PIPELINING", "SIZE 10240000", "STARTTLS"],
            70,
        )],
    );
    case(
        b"550 5.1.1 <nobody@example.test>: Recipient address rejected\r\n",
        vec![reply(
            550,
            &["5.1.1 <nobody@example.test>: Recipient address rejected"],
            61,
        )],
    );
    case(b"250\r\n", vec![reply(250, &[""], 5)]);
    case(
        b"250-\r\n250-a\r\n250 b\r\n",
        vec![reply(250, &["", "a", "b"], 20)],
    );
    case(
        b"354 \tEnd\twith .\r\n",
        vec![reply(354, &["\tEnd\twith ."], 17)],
    );
    // Pipelined replies (RFC 2920): each is read on its own, in order.
    case(
        b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data\r\n",
        vec![
            reply(250, &["2.1.0 Ok"], 14),
            reply(250, &["2.1.5 Ok"], 14),
            reply(354, &["End data"], 14),
        ],
    );
    // The first and last codes allowed: %x32-35 %x30-35 %x30-39.
    case(
        b"200 x\r\n559 y\r\n",
        vec![reply(200, &["x"], 7), reply(559, &["y"], 7)],
    );

    // Tolerated sloppiness: bare LF line ends (also mixed with CRLF), a space and
    // nothing, 8-bit text.
    case(b"220 hello\n", vec![reply(220, &["hello"], 10)]);
    case(
        b"250-a\n250-b\r\n250 c\n",
        vec![reply(250, &["a", "b", "c"], 19)],
    );
    case(b"250 \r\n", vec![reply(250, &[""], 6)]);
    case(
        "220 Grüße aus München\r\n".as_bytes(),
        vec![reply(220, &["Grüße aus München"], 26)],
    );
    case(
        b"220 Gr\xfc\xdfe (Latin-1)\r\n",
        vec![ReplyEvent::Reply {
            code: code(220),
            lines: vec![b"Gr\xfc\xdfe (Latin-1)".to_vec()],
            consumed: 21,
        }],
    );

    // Not complete yet: no event, nothing consumed.
    case(b"", vec![]);
    case(b"25", vec![]);
    case(b"250 ok", vec![]);
    case(b"250 ok\r", vec![]);
    case(b"250-first\r\n", vec![]);
    case(b"250-first\r\n250 last", vec![]);
    case(b"250 a\r\n251", vec![reply(250, &["a"], 7)]);

    // Not a reply.
    case(b"\r\n", vec![failed(ReplyFault::Code)]);
    case(b"25\r\n", vec![failed(ReplyFault::Code)]);
    case(b"hello\r\n", vec![failed(ReplyFault::Code)]);
    case(b"+OK POP3 ready\r\n", vec![failed(ReplyFault::Code)]);
    case(b"* OK IMAP4rev1\r\n", vec![failed(ReplyFault::Code)]);
    case(b"150 x\r\n", vec![failed(ReplyFault::Code)]);
    case(b"600 x\r\n", vec![failed(ReplyFault::Code)]);
    case(b"260 x\r\n", vec![failed(ReplyFault::Code)]);
    case(b"2a0 x\r\n", vec![failed(ReplyFault::Code)]);
    case(b" 250 x\r\n", vec![failed(ReplyFault::Code)]);
    case(b"250Ok\r\n", vec![failed(ReplyFault::Separator)]);
    case(b"250_x\r\n", vec![failed(ReplyFault::Separator)]);
    case(b"2500 x\r\n", vec![failed(ReplyFault::Separator)]);
    case(b"250\tx\r\n", vec![failed(ReplyFault::Separator)]);
    // A CR inside a line, NUL and other controls could pass for a line of their own
    // in a log or a DSN.
    case(b"250 a\rb\r\n", vec![failed(ReplyFault::ControlCharacter)]);
    case(b"250 ok\r\r\n", vec![failed(ReplyFault::ControlCharacter)]);
    case(b"250 a\0b\r\n", vec![failed(ReplyFault::ControlCharacter)]);
    case(
        b"250 \x1b[31mred\r\n",
        vec![failed(ReplyFault::ControlCharacter)],
    );
    case(
        b"250 del\x7f\r\n",
        vec![failed(ReplyFault::ControlCharacter)],
    );
    // RFC 5321 §4.2.1: every line carries the same code.
    case(
        b"250-mx.example.test\r\n550 no\r\n",
        vec![failed(ReplyFault::CodeMismatch)],
    );
    case(
        b"250-a\r\n251-b\r\n250 c\r\n",
        vec![failed(ReplyFault::CodeMismatch)],
    );
    // A failure ends reading: what follows is not looked at.
    case(
        b"250 ok\r\nnonsense\r\n250 ok\r\n",
        vec![reply(250, &["ok"], 8), failed(ReplyFault::Code)],
    );

    // Limits: 2048 bytes a line with its line end, 100 lines a reply.
    let mut longest = b"250 ".to_vec();
    longest.resize(LINE_BYTES_MAX - 2, b'x');
    longest.extend_from_slice(b"\r\n");
    let text = "x".repeat(LINE_BYTES_MAX - 6);
    case(&longest, vec![reply(250, &[text.as_str()], LINE_BYTES_MAX)]);
    let mut too_long = b"250 ".to_vec();
    too_long.resize(LINE_BYTES_MAX - 1, b'x');
    too_long.extend_from_slice(b"\r\n");
    case(&too_long, vec![failed(ReplyFault::LineTooLong)]);
    // Failed as soon as the limit passes without an LF, before the line ends.
    case(
        &vec![b'x'; LINE_BYTES_MAX],
        vec![failed(ReplyFault::LineTooLong)],
    );
    case(&vec![b'x'; LINE_BYTES_MAX - 1], vec![]);
    let mut most_lines = b"250-x\r\n".repeat(LINES_MAX - 1);
    most_lines.extend_from_slice(b"250 x\r\n");
    case(
        &most_lines,
        vec![reply(250, &["x"; LINES_MAX], 7 * LINES_MAX)],
    );
    let too_many = b"250-x\r\n".repeat(LINES_MAX);
    case(&too_many, vec![failed(ReplyFault::TooManyLines)]);
    case(&too_many[..too_many.len() - 1], vec![]);

    cases
}

fn show(input: &[u8]) -> String {
    let text = String::from_utf8_lossy(input);
    if text.len() > 80 {
        format!("{:?}… ({} bytes)", &text[..60], input.len())
    } else {
        format!("{text:?}")
    }
}

#[test]
fn table_whole() {
    for (input, expected) in table() {
        let events = decode_replies([input.as_slice()], LINE_BYTES_MAX, LINES_MAX);
        assert_eq!(events, expected, "input {}", show(&input));
        assert_eq!(
            reference_replies(&input, LINE_BYTES_MAX, LINES_MAX),
            expected,
            "reference, input {}",
            show(&input)
        );
    }
}

#[test]
fn table_in_chunks() {
    for (input, expected) in table() {
        for size in [1, 2, 4, 8, 16, 32, 64, 128, 256, 512] {
            let events = decode_replies(chunks(&input, &[size]), LINE_BYTES_MAX, LINES_MAX);
            assert_eq!(
                events,
                expected,
                "input {} in chunks of {size}",
                show(&input)
            );
        }
    }
}

#[test]
fn incomplete_consumes_nothing_and_prefixes_are_incomplete() {
    for (input, expected) in table() {
        let Some(ReplyEvent::Reply { consumed, .. }) = expected.first() else {
            continue;
        };
        for end in 0..*consumed {
            assert_eq!(
                decode_reply(&input[..end], LINE_BYTES_MAX, LINES_MAX),
                Err(ReplyError::Incomplete),
                "{} cut at {end}",
                show(&input)
            );
        }
    }
}

#[test]
fn table_round_trip() {
    for (_, events) in table() {
        for event in events {
            if let ReplyEvent::Reply { code, lines, .. } = event {
                check_reply_round_trip(code, &lines);
            }
        }
    }
}

/// What the server side writes, the client side reads back: every reply this crate's
/// sessions send, with and without enhanced codes, and the EHLO reply.
#[test]
fn encoded_replies_decode() {
    let replies: &[(ReplyCode, Option<EnhancedCode>, &[&str])] = &[
        (ReplyCode::SERVICE_READY, None, &["mx.example.test ESMTP"]),
        (ReplyCode::OK, Some(EnhancedCode::OK), &["Ok"]),
        (ReplyCode::OK, None, &[]),
        (ReplyCode::OK, Some(EnhancedCode::OK), &[]),
        (ReplyCode::HELP, Some(EnhancedCode::OK), &["a", "", "c"]),
        (
            ReplyCode::START_MAIL_INPUT,
            None,
            &["End data with <CR><LF>.<CR><LF>"],
        ),
        (
            ReplyCode::MAILBOX_UNAVAILABLE,
            Some(EnhancedCode::BAD_RECIPIENT),
            &["No such user"],
        ),
        (ReplyCode::AUTH_CHALLENGE, None, &[""]),
        (ReplyCode::AUTH_CHALLENGE, None, &["VXNlcm5hbWU6"]),
    ];
    for &(code, enhanced, lines) in replies {
        let mut encoded = Vec::new();
        encode_reply(code, enhanced, lines, &mut encoded);
        let (reply, consumed) = decode_reply(&encoded, LINE_BYTES_MAX, LINES_MAX).unwrap();
        assert_eq!(consumed, encoded.len());
        assert_eq!(reply.code(), code);
        let expected: Vec<String> = if lines.is_empty() {
            vec![enhanced.map_or_else(String::new, |e| e.to_string())]
        } else {
            lines
                .iter()
                .map(|line| match (enhanced, line.is_empty()) {
                    (Some(e), false) => format!("{e} {line}"),
                    (Some(e), true) => e.to_string(),
                    (None, _) => line.to_string(),
                })
                .collect()
        };
        let decoded: Vec<String> = reply
            .lines()
            .iter()
            .map(|line| String::from_utf8(line.to_vec()).unwrap())
            .collect();
        assert_eq!(decoded, expected, "{}", show(&encoded));
    }

    // Text that would break a line is made safe by the encoder, and still decodes.
    let mut encoded = Vec::new();
    encode_reply(
        ReplyCode::OK,
        None,
        &["ok\r\n250 injected", &"y".repeat(3000)],
        &mut encoded,
    );
    let (reply, consumed) = decode_reply(&encoded, LINE_BYTES_MAX, LINES_MAX).unwrap();
    assert_eq!(consumed, encoded.len());
    assert_eq!(reply.lines().len(), 2);
    assert_eq!(reply.lines()[0], b"ok??250 injected");

    let server = Domain::try_from("mx.example.test").unwrap();
    let mechanisms = [Mechanism::plain()];
    let mut encoded = Vec::new();
    encode_ehlo_reply(
        &server,
        "greets you",
        &[
            EhloKeyword::Pipelining,
            EhloKeyword::Size(Some(1000)),
            EhloKeyword::Auth(&mechanisms),
            EhloKeyword::StartTls,
        ],
        &mut encoded,
    );
    let (reply, _) = decode_reply(&encoded, LINE_BYTES_MAX, LINES_MAX).unwrap();
    assert_eq!(reply.code(), ReplyCode::OK);
    assert_eq!(
        reply.lines(),
        [
            &b"mx.example.test greets you"[..],
            b"PIPELINING",
            b"SIZE 1000",
            b"AUTH PLAIN",
            b"STARTTLS"
        ]
    );
}

/// The fuzz target's whole check passes on every table input, under every control
/// byte (limits and chunkings).
#[test]
fn fuzz_check_on_the_table() {
    for (input, _) in table() {
        for control in [0u8, 1, 0x1f, 0x20, 0x7f, 0xa5, 0xff] {
            let mut data = vec![control];
            data.extend_from_slice(&input);
            check_reply_stream(&data);
        }
    }
}
