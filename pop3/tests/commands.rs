//! The command and SASL response decoders tested three ways (ARCHITECTURE.md §6): a
//! table of (input, expected) cases; the same table replayed as one stream split into
//! chunks of 1, 2, 4 … 512 bytes, which must give identical results; and a round trip
//! (encode → decode) over every command the table decodes and over generated ones.

use lifeboat_pop3::parse::limits::{COMMAND_LINE_BYTES_MAX, SASL_RESPONSE_LINE_BYTES_MAX};
use lifeboat_pop3::parse::{
    decode_command, decode_plain, decode_sasl_response, encode_plain, skip_line, ApopDigest,
    Command, DecodeError, Mechanism, MessageNumber, Password, PlainCredentials, Reason,
    SaslResponse, UserName,
};

fn msg(n: u64) -> MessageNumber {
    MessageNumber::try_from(n).unwrap()
}

fn user(name: &str) -> Command {
    Command::User {
        name: UserName::try_from(name).unwrap(),
    }
}

fn pass(password: &str) -> Command {
    Command::Pass {
        password: Password::try_from(password).unwrap(),
    }
}

fn auth(mechanism: &str, initial_response: Option<&[u8]>) -> Command {
    Command::Auth {
        mechanism: Mechanism::try_from(mechanism).unwrap(),
        initial_response: initial_response.map(<[u8]>::to_vec),
    }
}

fn failed(reason: Reason, line: &[u8]) -> Result<Command, DecodeError> {
    Err(DecodeError::Failed {
        reason,
        line_bytes: line.len(),
    })
}

/// (input line, expected result). Every input is one complete line.
fn table() -> Vec<(Vec<u8>, Result<Command, DecodeError>)> {
    let long_password = "p".repeat(COMMAND_LINE_BYTES_MAX - 7);
    let mut cases: Vec<(Vec<u8>, Result<Command, DecodeError>)> = vec![
        // RFC 1939 §4–§7, keywords case-insensitive (§3).
        (
            b"USER alice@example.test\r\n".to_vec(),
            Ok(user("alice@example.test")),
        ),
        (
            b"user Alice@Example.Test\r\n".to_vec(),
            Ok(user("Alice@Example.Test")),
        ),
        (
            "USER jos\u{e9}@example.test\r\n".as_bytes().to_vec(),
            Ok(user("jos\u{e9}@example.test")),
        ),
        (b"PASS secret\r\n".to_vec(), Ok(pass("secret"))),
        // RFC 1939 §7: spaces are part of the password.
        (
            b"PASS correct horse  battery \r\n".to_vec(),
            Ok(pass("correct horse  battery ")),
        ),
        (b"pAsS x\r\n".to_vec(), Ok(pass("x"))),
        (
            format!("PASS {long_password}\r\n").into_bytes(),
            Ok(pass(&long_password)),
        ),
        (b"QUIT\r\n".to_vec(), Ok(Command::Quit)),
        (b"quit\r\n".to_vec(), Ok(Command::Quit)),
        (b"STAT\r\n".to_vec(), Ok(Command::Stat)),
        (b"LIST\r\n".to_vec(), Ok(Command::List { message: None })),
        (
            b"LIST 2\r\n".to_vec(),
            Ok(Command::List {
                message: Some(msg(2)),
            }),
        ),
        (
            b"list 0042\r\n".to_vec(),
            Ok(Command::List {
                message: Some(msg(42)),
            }),
        ),
        (
            b"RETR 1\r\n".to_vec(),
            Ok(Command::Retr { message: msg(1) }),
        ),
        (
            b"RETR 4294967295\r\n".to_vec(),
            Ok(Command::Retr {
                message: msg(u64::from(u32::MAX)),
            }),
        ),
        (
            b"DELE 17\r\n".to_vec(),
            Ok(Command::Dele { message: msg(17) }),
        ),
        (b"NOOP\r\n".to_vec(), Ok(Command::Noop)),
        (b"RSET\r\n".to_vec(), Ok(Command::Rset)),
        (
            b"TOP 1 0\r\n".to_vec(),
            Ok(Command::Top {
                message: msg(1),
                lines: 0,
            }),
        ),
        (
            b"top 3 10\r\n".to_vec(),
            Ok(Command::Top {
                message: msg(3),
                lines: 10,
            }),
        ),
        (
            b"TOP 3 18446744073709551615\r\n".to_vec(),
            Ok(Command::Top {
                message: msg(3),
                lines: u64::MAX,
            }),
        ),
        (b"UIDL\r\n".to_vec(), Ok(Command::Uidl { message: None })),
        (
            b"UIDL 9\r\n".to_vec(),
            Ok(Command::Uidl {
                message: Some(msg(9)),
            }),
        ),
        (
            b"APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n".to_vec(),
            Ok(Command::Apop {
                name: UserName::try_from("mrose").unwrap(),
                digest: ApopDigest::try_from("c4c9334bac560ecc979e58001b3e22fb").unwrap(),
            }),
        ),
        // RFC 2449 §5, RFC 2595 §4.
        (b"CAPA\r\n".to_vec(), Ok(Command::Capa)),
        (b"STLS\r\n".to_vec(), Ok(Command::Stls)),
        (b"stls\r\n".to_vec(), Ok(Command::Stls)),
        // RFC 5034 §4.
        (b"AUTH PLAIN\r\n".to_vec(), Ok(auth("PLAIN", None))),
        (b"auth plain\r\n".to_vec(), Ok(auth("PLAIN", None))),
        (b"AUTH PLAIN =\r\n".to_vec(), Ok(auth("PLAIN", Some(b"")))),
        (
            b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n".to_vec(),
            Ok(auth("PLAIN", Some(b"\0alice\0secret"))),
        ),
        (b"AUTH CRAM-MD5\r\n".to_vec(), Ok(auth("CRAM-MD5", None))),
        (b"AUTH X_OAUTH-2\r\n".to_vec(), Ok(auth("X_OAUTH-2", None))),
        (b"AUTH\r\n".to_vec(), Ok(Command::AuthMechanisms)),
    ];
    let rejections: Vec<(&[u8], Reason)> = vec![
        (b"\r\n", Reason::UnknownCommand),
        (b"HELO\r\n", Reason::UnknownCommand),
        (b"STATS\r\n", Reason::UnknownCommand),
        (b"ST\r\n", Reason::UnknownCommand),
        (b" STAT\r\n", Reason::UnknownCommand),
        (b"STARTTLS\r\n", Reason::UnknownCommand),
        (b"STAT \r\n", Reason::Syntax),
        (b"STAT 1\r\n", Reason::Syntax),
        (b"QUIT now\r\n", Reason::Syntax),
        (b"LIST  1\r\n", Reason::Syntax),
        (b"LIST 1 \r\n", Reason::Syntax),
        (b"LIST x\r\n", Reason::Syntax),
        (b"LIST -1\r\n", Reason::Syntax),
        (b"LIST 0\r\n", Reason::InvalidMessageNumber),
        (b"RETR 00\r\n", Reason::InvalidMessageNumber),
        (b"RETR 4294967296\r\n", Reason::NumberTooLarge),
        (b"RETR 12345678901\r\n", Reason::NumberTooLarge),
        (b"RETR\r\n", Reason::Syntax),
        (b"RETR 1 2\r\n", Reason::Syntax),
        (b"DELE\r\n", Reason::Syntax),
        (b"TOP 1\r\n", Reason::Syntax),
        (b"TOP 1 -1\r\n", Reason::Syntax),
        (b"TOP 1 18446744073709551616\r\n", Reason::NumberTooLarge),
        (b"USER\r\n", Reason::Syntax),
        (b"USER \r\n", Reason::Syntax),
        (b"USER a b\r\n", Reason::Syntax),
        (b"USER \xff\xfe\r\n", Reason::InvalidUtf8),
        (b"PASS\r\n", Reason::Syntax),
        (b"PASS \r\n", Reason::Syntax),
        (b"PASS \xc3\x28\r\n", Reason::InvalidUtf8),
        (
            b"APOP mrose C4C9334BAC560ECC979E58001B3E22FB\r\n",
            Reason::Syntax,
        ),
        (b"APOP mrose c4c9\r\n", Reason::Syntax),
        (b"AUTH PLAIN AGFsaWNl\x41\r\n", Reason::InvalidBase64),
        (b"AUTH PLAIN Zg\r\n", Reason::InvalidBase64),
        (b"AUTH PLAIN ==\r\n", Reason::InvalidBase64),
        (b"AUTH PLAIN \r\n", Reason::Syntax),
        (b"AUTH PLAIN = =\r\n", Reason::Syntax),
        (b"AUTH ABCDEFGHIJKLMNOPQRSTU\r\n", Reason::InvalidMechanism),
        (b"AUTH PL@IN\r\n", Reason::InvalidMechanism),
        // RFC 1939 §3: CRLF only. A bare LF ends a line as a failure.
        (b"STAT\n", Reason::BareLineFeed),
        (b"\n", Reason::BareLineFeed),
        (b"STAT\r\r\n", Reason::ControlCharacter),
        (b"PASS a\rb\r\n", Reason::ControlCharacter),
        (b"PASS a\0b\r\n", Reason::ControlCharacter),
        (b"USER a\0\r\n", Reason::ControlCharacter),
    ];
    for (line, reason) in rejections {
        cases.push((line.to_vec(), failed(reason, line)));
    }
    cases
}

#[test]
fn command_table() {
    for (input, expected) in table() {
        let got = decode_command(&input, COMMAND_LINE_BYTES_MAX).map(|(command, consumed)| {
            assert_eq!(consumed, input.len(), "{}", String::from_utf8_lossy(&input));
            command
        });
        assert_eq!(got, expected, "{:?}", String::from_utf8_lossy(&input));
    }
}

#[test]
fn incomplete_and_too_long() {
    for partial in [&b""[..], b"S", b"STAT", b"STAT\r", b"PASS secret"] {
        assert_eq!(
            decode_command(partial, COMMAND_LINE_BYTES_MAX),
            Err(DecodeError::Incomplete)
        );
    }
    // RFC 2449 §4: 255 octets including CRLF is the most a command may have.
    let at_limit = format!("PASS {}\r\n", "x".repeat(COMMAND_LINE_BYTES_MAX - 7));
    assert_eq!(at_limit.len(), COMMAND_LINE_BYTES_MAX);
    assert!(decode_command(at_limit.as_bytes(), COMMAND_LINE_BYTES_MAX).is_ok());
    let over = format!("PASS {}\r\n", "x".repeat(COMMAND_LINE_BYTES_MAX - 6));
    assert_eq!(
        decode_command(over.as_bytes(), COMMAND_LINE_BYTES_MAX),
        Err(DecodeError::LineTooLong)
    );
    // No line end within the limit: too long even before the rest arrives.
    let endless = vec![b'A'; COMMAND_LINE_BYTES_MAX];
    assert_eq!(
        decode_command(&endless, COMMAND_LINE_BYTES_MAX),
        Err(DecodeError::LineTooLong)
    );
    assert_eq!(skip_line(&endless), None);
    assert_eq!(skip_line(b"xx\r\nSTAT\r\n"), Some(4));
}

/// Decodes a stream the way a server does: line after line, resynchronising after a
/// line that is too long.
fn decode_stream(chunks: &mut dyn Iterator<Item = &[u8]>) -> Vec<Result<Command, DecodeError>> {
    lifeboat_pop3::fuzz_support::decode_stream(chunks, |buffer| {
        decode_command(buffer, COMMAND_LINE_BYTES_MAX)
    })
}

#[test]
fn chunked_replay_gives_identical_results() {
    let table = table();
    let mut stream = Vec::new();
    let mut expected = Vec::new();
    for (input, result) in &table {
        stream.extend_from_slice(input);
        expected.push(result.clone());
    }
    // A line too long in the middle: one error, then decoding resumes.
    stream.extend_from_slice(&vec![b'X'; COMMAND_LINE_BYTES_MAX * 3]);
    stream.extend_from_slice(b"\r\nNOOP\r\n");
    expected.push(Err(DecodeError::LineTooLong));
    expected.push(Ok(Command::Noop));

    let whole = decode_stream(&mut std::iter::once(&stream[..]));
    assert_eq!(whole, expected);
    let mut size = 1;
    while size <= 512 {
        let got = decode_stream(&mut stream.chunks(size));
        assert_eq!(got, expected, "chunks of {size} bytes");
        size *= 2;
    }
}

#[test]
fn round_trip_of_the_table() {
    for (_, expected) in table() {
        let Ok(command) = expected else { continue };
        let mut line = Vec::new();
        command.encode(&mut line);
        let (decoded, consumed) = decode_command(&line, COMMAND_LINE_BYTES_MAX).unwrap();
        assert_eq!(decoded, command);
        assert_eq!(consumed, line.len());
    }
}

#[test]
fn round_trip_of_generated_commands() {
    // A small deterministic generator: every verb with arguments at their edges.
    let names = [
        "a",
        "alice@example.test",
        "\u{e9}t\u{e9}@example.test",
        "x!#$%&'*+-/=?^_`{|}~",
    ];
    let passwords = [
        "p",
        "with space",
        " leading",
        "trailing ",
        "\u{1f512}\u{e9}",
        "a:b;c\t",
    ];
    let numbers = [1u64, 9, 10, 4_294_967_295];
    let responses: [&[u8]; 5] = [b"", b"\0", b"\0u\0p", b"\xff\x00\xfe", &[7u8; 150]];
    let mut commands = vec![
        Command::Stls,
        Command::Capa,
        Command::Quit,
        Command::Stat,
        Command::Noop,
        Command::Rset,
        Command::AuthMechanisms,
        Command::List { message: None },
        Command::Uidl { message: None },
    ];
    for name in names {
        commands.push(user(name));
        commands.push(Command::Apop {
            name: UserName::try_from(name).unwrap(),
            digest: ApopDigest::try_from("0123456789abcdef0123456789abcdef").unwrap(),
        });
    }
    for password in passwords {
        commands.push(pass(password));
    }
    for n in numbers {
        commands.push(Command::List {
            message: Some(msg(n)),
        });
        commands.push(Command::Uidl {
            message: Some(msg(n)),
        });
        commands.push(Command::Retr { message: msg(n) });
        commands.push(Command::Dele { message: msg(n) });
        for lines in [0, 1, u64::MAX] {
            commands.push(Command::Top {
                message: msg(n),
                lines,
            });
        }
    }
    for mechanism in ["PLAIN", "LOGIN", "SCRAM-SHA-256", "X_Y"] {
        commands.push(auth(mechanism, None));
        for response in responses {
            commands.push(auth(mechanism, Some(response)));
        }
    }
    for command in commands {
        let mut line = Vec::new();
        command.encode(&mut line);
        assert_eq!(
            decode_command(&line, COMMAND_LINE_BYTES_MAX),
            Ok((command.clone(), line.len())),
            "{}",
            String::from_utf8_lossy(&line)
        );
    }
}

#[test]
fn sasl_response_lines() {
    let limit = SASL_RESPONSE_LINE_BYTES_MAX;
    assert_eq!(
        decode_sasl_response(b"*\r\n", limit),
        Ok((SaslResponse::Cancel, 3))
    );
    assert_eq!(
        decode_sasl_response(b"\r\n", limit),
        Ok((SaslResponse::Data(Vec::new()), 2))
    );
    assert_eq!(
        decode_sasl_response(b"AGFsaWNlAHNlY3JldA==\r\nSTAT\r\n", limit),
        Ok((SaslResponse::Data(b"\0alice\0secret".to_vec()), 22))
    );
    assert_eq!(
        decode_sasl_response(b"AGFs", limit),
        Err(DecodeError::Incomplete)
    );
    for (bad, reason) in [
        (&b"**\r\n"[..], Reason::Syntax),
        (b"* \r\n", Reason::Syntax),
        (b"=\r\n", Reason::InvalidBase64),
        (b"AGFsa\r\n", Reason::InvalidBase64),
        (b"AG Fs\r\n", Reason::Syntax),
        (b"AGFs\n", Reason::BareLineFeed),
    ] {
        assert_eq!(
            decode_sasl_response(bad, limit),
            Err(DecodeError::Failed {
                reason,
                line_bytes: bad.len()
            }),
            "{bad:?}"
        );
    }
    // Responses may be longer than a command line (RFC 5034 §4).
    let mut long = Vec::new();
    SaslResponse::Data(vec![b'x'; 2000]).encode(&mut long);
    assert!(long.len() > COMMAND_LINE_BYTES_MAX);
    assert_eq!(
        decode_sasl_response(&long, limit),
        Ok((SaslResponse::Data(vec![b'x'; 2000]), long.len()))
    );
    let too_long = vec![b'A'; limit];
    assert_eq!(
        decode_sasl_response(&too_long, limit),
        Err(DecodeError::LineTooLong)
    );
    // Round trip, whole and chunked.
    for response in [
        SaslResponse::Cancel,
        SaslResponse::Data(Vec::new()),
        SaslResponse::Data(b"\0alice@example.test\0pass word".to_vec()),
        SaslResponse::Data((0..=255).collect()),
    ] {
        let mut line = Vec::new();
        response.encode(&mut line);
        assert_eq!(
            decode_sasl_response(&line, limit),
            Ok((response.clone(), line.len()))
        );
        for split in 0..line.len() {
            assert_eq!(
                decode_sasl_response(&line[..split], limit),
                Err(DecodeError::Incomplete)
            );
        }
    }
}

#[test]
fn plain_messages() {
    // RFC 4616 §4 examples.
    let credentials = decode_plain(b"\0tim\0tanstaaftanstaaf").unwrap();
    assert_eq!(credentials.authzid, None);
    assert_eq!(credentials.authcid.as_str(), "tim");
    assert_eq!(credentials.password.as_str(), "tanstaaftanstaaf");
    let credentials = decode_plain(b"Ursel\0Kurt\0xipj3plmq").unwrap();
    assert_eq!(credentials.authzid.unwrap().as_str(), "Ursel");
    for bad in [
        &b""[..],
        b"\0",
        b"\0user",
        b"\0user\0",
        b"\0\0pass",
        b"\0us er\0pass",
        b"\0user\0pa\0ss",
        b"\0user\0pa\r\nss",
        b"\0\xff\0pass",
    ] {
        assert!(decode_plain(bad).is_err(), "{bad:?}");
    }
    let long_identity = vec![b'u'; 256];
    let mut message = vec![0];
    message.extend_from_slice(&long_identity);
    message.extend_from_slice(b"\0pass");
    assert_eq!(decode_plain(&message), Err(Reason::TooLong));
    let credentials = PlainCredentials {
        authzid: Some(UserName::try_from("a@example.test").unwrap()),
        authcid: UserName::try_from("a@example.test").unwrap(),
        password: Password::try_from("with space").unwrap(),
    };
    assert_eq!(decode_plain(&encode_plain(&credentials)), Ok(credentials));
}

#[test]
fn validated_types_reject_invalid_values() {
    assert_eq!(
        MessageNumber::try_from(0),
        Err(Reason::InvalidMessageNumber)
    );
    assert_eq!(
        MessageNumber::try_from(u64::from(u32::MAX) + 1),
        Err(Reason::NumberTooLarge)
    );
    assert!(UserName::try_from("").is_err());
    assert!(UserName::try_from("a b").is_err());
    assert!(UserName::try_from("u".repeat(256).as_str()).is_err());
    assert!(Password::try_from("").is_err());
    assert!(Password::try_from("a\r\nQUIT").is_err());
    assert!(Password::try_from("x".repeat(1025).as_str()).is_err());
    assert!(Mechanism::try_from("").is_err());
    assert!(Mechanism::try_from("A".repeat(21).as_str()).is_err());
    assert_eq!(Mechanism::try_from("plain").unwrap(), Mechanism::plain());
    assert!(ApopDigest::try_from("0123").is_err());
    // The password limit is the store's.
    assert_eq!(
        lifeboat_pop3::parse::limits::PASSWORD_BYTES_MAX,
        lifeboat_store::password::PASSWORD_BYTES_MAX
    );
    // Debug never shows a password.
    let shown = format!("{:?}", pass("hunter2 secret"));
    assert!(!shown.contains("hunter2"), "{shown}");
}
