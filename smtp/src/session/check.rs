//! Invariant checks of the session over arbitrary client input, shared by the
//! `smtp_session` fuzz target and the session property tests
//! (tests/session_properties.rs). [`run`] feeds a stream to a session with a
//! deterministic fake server and panics when an invariant of the module docs does not
//! hold:
//!
//! - The session never panics (debug assertions included) and never consumes more
//!   than it was given.
//! - Every reply is well formed: lines of `ddd` and `-` or space, CRLF-terminated.
//! - It always makes progress: when it asks for input, the bytes it left unconsumed
//!   are fewer than a line it could still be waiting for.
//! - A message is accepted only with a recipient and within the size limit.
//!
//! [`check_session_stream`] adds the last one: the transcript (replies and effects)
//! does not depend on how the input is cut.

use crate::parse::{Domain, EnhancedCode, ReplyCode};

use super::{AuthOutcome, Effect, Limits, Rejection, Session, SessionConfig, StateName};

/// The line limit of the sessions [`run`] drives.
pub const LINE_BYTES_MAX: usize = 512;
/// RFC 4954 §4's limit on SASL lines, which the session honours.
pub const SASL_LINE_BYTES_MAX: usize = 12_288;
/// The message size limit of the sessions [`run`] drives: small, so that fuzzed
/// input reaches it.
pub const MESSAGE_BYTES_MAX: u64 = 300;

/// The configuration [`run`] uses: recipients `unknown@…` are refused, at most 3
/// recipients, messages up to [`MESSAGE_BYTES_MAX`].
pub fn config(auth_required: bool, plaintext_auth_allowed: bool) -> SessionConfig {
    SessionConfig {
        hostname: Domain::try_from("mx.example.test").unwrap_or_else(|_| unreachable!()),
        client_ip: std::net::Ipv4Addr::new(192, 0, 2, 10).into(),
        connection_id: 1,
        starttls_available: true,
        auth_required,
        plaintext_auth_allowed,
        limits: Limits {
            message_bytes_max: MESSAGE_BYTES_MAX,
            recipients_max: 3,
            line_bytes_max: LINE_BYTES_MAX,
        },
    }
}

/// Runs the session over `input` cut at `cuts` (positions, taken modulo the input
/// length plus one), with a deterministic fake server: recipients `unknown@…` are
/// refused, the password `pw` logs anyone in, every message is accepted. Returns the
/// transcript (`S:` replies, `E:` effects); stops at STARTTLS (the rest would be
/// discarded) and at close.
pub fn run(input: &[u8], cuts: &[usize], auth_required: bool, plaintext: bool) -> Vec<String> {
    let mut session = Session::new(config(auth_required, plaintext), false);
    let mut transcript = Vec::new();
    let mut out = Vec::new();
    session.greeting(&mut out);
    let mut buffer = Vec::new();
    let mut bounds: Vec<usize> = cuts.iter().map(|&cut| cut % (input.len() + 1)).collect();
    bounds.push(input.len());
    bounds.sort_unstable();
    let mut fed = 0;
    let mut accepted = 0;
    for bound in bounds {
        if bound <= fed {
            continue;
        }
        buffer.extend_from_slice(&input[fed..bound]);
        fed = bound;
        loop {
            let progress = session.receive(&buffer, 1_700_000_000, &mut out);
            assert!(progress.consumed <= buffer.len());
            buffer.drain(..progress.consumed);
            check_replies(&out);
            transcript.push(format!("S:{}", String::from_utf8_lossy(&out)));
            out.clear();
            match progress.effect {
                Effect::NeedInput => {
                    let waiting_for_line = match session.state() {
                        StateName::Sasl => SASL_LINE_BYTES_MAX,
                        StateName::Data | StateName::BdatChunk => 0,
                        _ => LINE_BYTES_MAX,
                    };
                    assert!(
                        buffer.len() <= waiting_for_line && !buffer.contains(&b'\n'),
                        "stalled in {:?} with {} bytes: {:?}",
                        session.state(),
                        buffer.len(),
                        String::from_utf8_lossy(&buffer)
                    );
                    break;
                }
                Effect::CheckRecipient(check) => {
                    transcript.push(format!("E:check {}", check.recipient));
                    let result = if check.recipient.starts_with("unknown@") {
                        Err(Rejection {
                            code: ReplyCode::MAILBOX_UNAVAILABLE,
                            enhanced: EnhancedCode::BAD_RECIPIENT,
                            text: "no such mailbox".into(),
                        })
                    } else {
                        Ok(())
                    };
                    session.recipient_checked(result, &mut out);
                }
                Effect::Accept(delivery) => {
                    assert!(!delivery.recipients.is_empty());
                    assert!(delivery.data_bytes <= MESSAGE_BYTES_MAX);
                    transcript.push(format!(
                        "E:accept {:?}",
                        String::from_utf8_lossy(
                            &delivery
                                .message
                                .with_bytes(<[u8]>::to_vec)
                                .expect("in memory")
                        )
                    ));
                    accepted += 1;
                    session.accepted(Ok(accepted.to_string()), &mut out);
                }
                Effect::Authenticate(credentials) => {
                    transcript.push(format!("E:auth {}", credentials.username));
                    let outcome = if credentials.password == "pw" {
                        AuthOutcome::Authenticated(credentials.username)
                    } else {
                        AuthOutcome::Invalid
                    };
                    session.authenticated(outcome, &mut out);
                }
                Effect::StartTls => {
                    transcript.push("E:starttls".into());
                    return normalize(transcript);
                }
                Effect::Close => {
                    transcript.push("E:close".into());
                    return normalize(transcript);
                }
            }
        }
    }
    normalize(transcript)
}

/// Joins consecutive reply chunks, which depend on how often the session was called.
fn normalize(transcript: Vec<String>) -> Vec<String> {
    let mut joined: Vec<String> = Vec::new();
    for item in transcript {
        match (joined.last_mut(), item.strip_prefix("S:")) {
            (Some(last), Some(replies)) if last.starts_with("S:") => last.push_str(replies),
            _ => joined.push(item),
        }
    }
    joined.retain(|item| item != "S:");
    joined
}

/// Every line of `out` is a reply line: `ddd`, then nothing, `-` or a space, at most
/// 510 octets before its CRLF, no CR inside.
pub fn check_replies(out: &[u8]) {
    if out.is_empty() {
        return;
    }
    assert!(out.ends_with(b"\r\n"), "{out:?}");
    for line in out[..out.len() - 2].split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        assert!(line.len() >= 3 && line.len() <= 510, "{line:?}");
        assert!(line[..3].iter().all(u8::is_ascii_digit), "{line:?}");
        assert!(
            line.len() == 3 || line[3] == b' ' || line[3] == b'-',
            "{line:?}"
        );
        assert!(!line.contains(&b'\r'), "{line:?}");
    }
}

/// The `smtp_session` fuzz target. The first byte picks whether AUTH is required, whether
/// plaintext AUTH is allowed, and where the input is cut; the rest is what a client
/// sends. Runs [`run`] over the stream whole, cut at seeded places and byte by byte,
/// and checks that the transcripts are the same.
pub fn check_session_stream(input: &[u8]) {
    let Some((&control, stream)) = input.split_first() else {
        return;
    };
    let auth_required = control & 1 != 0;
    let plaintext = control & 2 != 0;
    let whole = run(stream, &[], auth_required, plaintext);
    let mut state = u32::from(control) | 0x100;
    let cuts: Vec<usize> = (0..12)
        .map(|_| {
            // xorshift32: deterministic cut positions.
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as usize
        })
        .collect();
    assert_eq!(
        run(stream, &cuts, auth_required, plaintext),
        whole,
        "cutting the input changed the transcript"
    );
    let bytewise: Vec<usize> = (0..stream.len()).collect();
    assert_eq!(
        run(stream, &bytewise, auth_required, plaintext),
        whole,
        "byte-at-a-time input changed the transcript"
    );
}
