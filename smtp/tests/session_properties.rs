//! Properties of the session layer over generated input: streams assembled from SMTP
//! fragments (commands in every state, DATA bodies with fake and real ends, BDAT
//! chunks, SASL lines, bare CR and LF, NUL, over-long lines, noise), fed whole and cut
//! at arbitrary points, with a deterministic fake server.
//!
//! - The session never panics (debug assertions included) and never consumes more
//!   than it was given.
//! - Every reply is well formed: lines of `ddd` and `-` or space, CRLF-terminated.
//! - It always makes progress: when it asks for input, the bytes it left unconsumed
//!   are fewer than a line it could still be waiting for.
//! - The transcript (replies and effects) does not depend on how the input is cut.

use lifeboat_smtp::parse::{Domain, EnhancedCode, ReplyCode};
use lifeboat_smtp::session::{
    AuthOutcome, Effect, Limits, Rejection, Session, SessionConfig, StateName,
};
use proptest::prelude::*;

const LINE_BYTES_MAX: usize = 512;
/// RFC 4954 §4's limit on SASL lines, which the session honours.
const SASL_LINE_BYTES_MAX: usize = 12_288;

fn config(auth_required: bool, plaintext_auth_allowed: bool) -> SessionConfig {
    SessionConfig {
        hostname: Domain::try_from("mx.example.test").unwrap(),
        client_ip: "192.0.2.10".parse().unwrap(),
        connection_id: 1,
        starttls_available: true,
        auth_required,
        plaintext_auth_allowed,
        limits: Limits {
            message_bytes_max: 300,
            recipients_max: 3,
            line_bytes_max: LINE_BYTES_MAX,
        },
    }
}

fn fragment() -> impl Strategy<Value = Vec<u8>> {
    let fixed: Vec<&'static [u8]> = vec![
        b"EHLO client.example\r\n",
        b"HELO client.example\r\n",
        b"MAIL FROM:<a@sender.example>\r\n",
        b"MAIL FROM:<> SIZE=1000\r\n",
        b"RCPT TO:<b@example.test>\r\n",
        b"RCPT TO:<unknown@example.test>\r\n",
        b"RCPT TO:<c@example.test>\r\n",
        b"DATA\r\n",
        b"Subject: x\r\n\r\nbody\r\n",
        b"\r\n.\r\n",
        b".\r\n",
        b"..\r\n",
        b"\n.\r\n",
        b"\r\n.\n",
        b"\r.\r\n",
        b"\n",
        b"\r",
        b"\0",
        b"BDAT 5\r\n",
        b"BDAT 0 LAST\r\n",
        b"BDAT 7 LAST\r\n",
        b"BDAT 400\r\n",
        b"RSET\r\n",
        b"NOOP\r\n",
        b"VRFY b\r\n",
        b"HELP\r\n",
        b"AUTH PLAIN\r\n",
        b"AUTH LOGIN\r\n",
        b"AUTH PLAIN AGFAZXhhbXBsZS50ZXN0AHB3\r\n",
        b"AGFAZXhhbXBsZS50ZXN0AHB3\r\n",
        b"*\r\n",
        b"STARTTLS\r\n",
    ];
    let transactions: Vec<&'static [u8]> = vec![
        b"MAIL FROM:<a@sender.example>\r\nRCPT TO:<b@example.test>\r\nDATA\r\nSubject: x\r\n\r\nbody\r\n.\r\n",
        b"MAIL FROM:<a@sender.example>\r\nRCPT TO:<b@example.test>\r\nDATA\r\nx\n.\r\nRSET\r\n.\r\n",
        b"MAIL FROM:<a@sender.example>\r\nRCPT TO:<b@example.test>\r\nBDAT 3\r\nabcBDAT 2 LAST\r\nde",
        b"EHLO client.example\r\nAUTH PLAIN AGFAZXhhbXBsZS50ZXN0AHB3\r\n",
    ];
    prop_oneof![
        8 => proptest::sample::select(fixed).prop_map(|bytes| bytes.to_vec()),
        4 => proptest::sample::select(transactions).prop_map(|bytes| bytes.to_vec()),
        1 => Just(b"QUIT\r\n".to_vec()),
        1 => proptest::collection::vec(any::<u8>(), 0..40),
        1 => (500usize..700).prop_map(|length| vec![b'x'; length]),
    ]
}

/// Runs the session over `input` cut at `cuts`, with a deterministic fake server.
/// Returns the transcript; stops at STARTTLS (the rest would be discarded) and at
/// close.
fn run(input: &[u8], cuts: &[usize], auth_required: bool, plaintext: bool) -> Vec<String> {
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
                    assert!(delivery.data_bytes <= 300);
                    transcript.push(format!(
                        "E:accept {:?}",
                        String::from_utf8_lossy(&delivery.message)
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

fn check_replies(out: &[u8]) {
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn any_input_in_any_chunks(
        fragments in proptest::collection::vec(fragment(), 0..40),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
        auth_required in any::<bool>(),
        plaintext in any::<bool>(),
    ) {
        let input = fragments.concat();
        let whole = run(&input, &[], auth_required, plaintext);
        let cut = run(&input, &cuts, auth_required, plaintext);
        prop_assert_eq!(whole, cut);
        let bytewise: Vec<usize> = (0..input.len()).collect();
        let one_by_one = run(&input, &bytewise, auth_required, plaintext);
        prop_assert_eq!(run(&input, &[], auth_required, plaintext), one_by_one);
    }
}
