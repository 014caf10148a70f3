//! The command decoder tested three ways (ARCHITECTURE.md §6): a table of inputs and
//! expected results, a round trip through `Command::encode`, and the same table replayed
//! in chunks of 1, 2, 4 … 512 bytes.

use std::net::Ipv4Addr;

use lifeboat_smtp::parse::check::{
    check_command_round_trip, chunks, decode_commands, CommandEvent,
};
use lifeboat_smtp::parse::limits::COMMAND_LINE_BYTES_MAX;
use lifeboat_smtp::parse::{
    decode_command, Address, AddressLiteral, AuthIdentity, Body, Command, DecodeError, Domain,
    EnvelopeId, ErrorReply, ForwardPath, Host, MailAuth, MailParameters, Mechanism, Notify,
    NotifyWhen, OriginalRecipient, RcptParameters, Reason, Ret, ReversePath, Text,
};

fn domain(text: &str) -> Host {
    Host::Domain(Domain::try_from(text).unwrap())
}

fn address(text: &str) -> Address {
    Address::try_from(text).unwrap()
}

fn mail(from: &str) -> Command {
    mail_with(from, MailParameters::default())
}

fn mail_with(from: &str, parameters: MailParameters) -> Command {
    let from = if from.is_empty() {
        ReversePath::Null
    } else {
        ReversePath::Mailbox(address(from))
    };
    Command::Mail { from, parameters }
}

fn rcpt(to: &str) -> Command {
    rcpt_with(to, RcptParameters::default())
}

fn rcpt_with(to: &str, parameters: RcptParameters) -> Command {
    Command::Rcpt {
        to: ForwardPath::Mailbox(address(to)),
        parameters,
    }
}

fn text(text: &str) -> Text {
    Text::try_from(text).unwrap()
}

fn ok(command: Command) -> Vec<CommandEvent> {
    vec![CommandEvent::Command(command)]
}

fn failed(reason: Reason) -> Vec<CommandEvent> {
    vec![CommandEvent::Failed(reason)]
}

/// (input, expected events, bytes left over) at the RFC line limit of 512.
fn table() -> Vec<(Vec<u8>, Vec<CommandEvent>, usize)> {
    let mut cases: Vec<(Vec<u8>, Vec<CommandEvent>, usize)> = Vec::new();
    let mut case = |input: &[u8], events: Vec<CommandEvent>| {
        cases.push((input.to_vec(), events, 0));
    };

    // EHLO / HELO.
    case(
        b"EHLO client.example.com\r\n",
        ok(Command::Ehlo {
            host: domain("client.example.com"),
        }),
    );
    case(
        b"ehlo [192.0.2.1]\r\n",
        ok(Command::Ehlo {
            host: Host::Literal(AddressLiteral::Ipv4(Ipv4Addr::new(192, 0, 2, 1))),
        }),
    );
    case(
        b"EHLO [IPv6:2001:db8::1]\r\n",
        ok(Command::Ehlo {
            host: Host::Literal(AddressLiteral::Ipv6("2001:db8::1".parse().unwrap())),
        }),
    );
    case(
        "EHLO bücher.example\r\n".as_bytes(),
        ok(Command::Ehlo {
            host: domain("bücher.example"),
        }),
    );
    case(
        b"HELO client\r\n",
        ok(Command::Helo {
            host: domain("client"),
        }),
    );
    case(b"EHLO\r\n", failed(Reason::Syntax));
    case(b"EHLO bad_host\r\n", failed(Reason::Syntax));
    case(b"EHLO a b\r\n", failed(Reason::Syntax));
    case(b"EHLO [300.1.1.1]\r\n", failed(Reason::AddressLiteral));
    case(b"EHLO [x-tag:data]\r\n", failed(Reason::AddressLiteral));

    // MAIL.
    case(b"MAIL FROM:<>\r\n", ok(mail("")));
    case(
        b"MAIL FROM:<user@example.com>\r\n",
        ok(mail("user@example.com")),
    );
    case(
        b"MAIL FROM: <user@example.com>\r\n",
        ok(mail("user@example.com")),
    );
    case(
        b"mail from:<user@example.com>  \r\n",
        ok(mail("user@example.com")),
    );
    case(
        b"MAIL FROM:<@a.example,@b.example:user@example.com>\r\n",
        ok(mail("user@example.com")),
    );
    case(
        b"MAIL FROM:<\"john doe\"@example.com>\r\n",
        ok(mail("\"john doe\"@example.com")),
    );
    case(
        b"MAIL FROM:<\"john\"@example.com>\r\n",
        ok(mail("john@example.com")),
    );
    case(
        b"MAIL FROM:<\"a\\\"b\\\\c\"@example.com>\r\n",
        ok(mail("\"a\\\"b\\\\c\"@example.com")),
    );
    case(
        b"MAIL FROM:<user@[192.0.2.1]>\r\n",
        ok(mail("user@[192.0.2.1]")),
    );
    case(
        b"MAIL FROM:<user@[IPv6:::1]>\r\n",
        ok(mail("user@[IPv6:::1]")),
    );
    case(
        b"MAIL FROM:<user@example.com> SIZE=1000 BODY=8BITMIME\r\n",
        ok(mail_with(
            "user@example.com",
            MailParameters {
                size_bytes: Some(1000),
                body: Some(Body::EightBitMime),
                ..MailParameters::default()
            },
        )),
    );
    case(
        b"mail from:<> size=0 body=binarymime smtputf8 ret=hdrs envid=QQ+2B1 auth=<>\r\n",
        ok(mail_with(
            "",
            MailParameters {
                size_bytes: Some(0),
                body: Some(Body::BinaryMime),
                smtputf8: true,
                ret: Some(Ret::Headers),
                envelope_id: Some(EnvelopeId::try_from("QQ+1").unwrap()),
                auth: Some(MailAuth::Unknown),
            },
        )),
    );
    case(
        b"MAIL FROM:<user@example.com> AUTH=user+2Bx@example.com BODY=7BIT RET=FULL\r\n",
        ok(mail_with(
            "user@example.com",
            MailParameters {
                body: Some(Body::SevenBit),
                ret: Some(Ret::Full),
                auth: Some(MailAuth::Identity(
                    AuthIdentity::try_from("user+x@example.com").unwrap(),
                )),
                ..MailParameters::default()
            },
        )),
    );
    case(
        "MAIL FROM:<用户@例子.测试> SMTPUTF8\r\n".as_bytes(),
        ok(mail_with(
            "用户@例子.测试",
            MailParameters {
                smtputf8: true,
                ..MailParameters::default()
            },
        )),
    );
    case(
        "MAIL FROM:<\"jöhn doe\"@example.com> SMTPUTF8\r\n".as_bytes(),
        ok(mail_with(
            "\"jöhn doe\"@example.com",
            MailParameters {
                smtputf8: true,
                ..MailParameters::default()
            },
        )),
    );
    case(
        b"MAIL FROM:user@example.com\r\n",
        failed(Reason::InvalidAddress),
    );
    case(
        b"MAIL FROM:<user@example.com\r\n",
        failed(Reason::InvalidAddress),
    );
    case(
        b"MAIL FROM:<user@@example.com>\r\n",
        failed(Reason::InvalidAddress),
    );
    case(
        b"MAIL FROM:<user.@example.com>\r\n",
        failed(Reason::InvalidAddress),
    );
    case(
        b"MAIL FROM:<.user@example.com>\r\n",
        failed(Reason::InvalidAddress),
    );
    case(
        b"MAIL FROM:<a..b@example.com>\r\n",
        failed(Reason::InvalidAddress),
    );
    case(
        b"MAIL FROM:<user@-example.com>\r\n",
        failed(Reason::InvalidAddress),
    );
    case(
        b"MAIL FROM:<user@example.com.>\r\n",
        failed(Reason::InvalidAddress),
    );
    case(b"MAIL FROM:<user>\r\n", failed(Reason::InvalidAddress));
    case(
        b"MAIL FROM:<@example.com>\r\n",
        failed(Reason::InvalidAddress),
    );
    case(b"MAIL FROM:<user@>\r\n", failed(Reason::InvalidAddress));
    case(
        b"MAIL FROM:<user name@example.com>\r\n",
        failed(Reason::InvalidAddress),
    );
    case(
        b"MAIL FROM:<\"open@example.com>\r\n",
        failed(Reason::InvalidAddress),
    );
    case(
        b"MAIL FROM:<\"a\\\tb\"@example.com>\r\n",
        failed(Reason::InvalidAddress),
    );
    case(
        b"MAIL FROM:<user@[1.2.3.256]>\r\n",
        failed(Reason::AddressLiteral),
    );
    case(
        b"MAIL FROM:<user@[IPv6:1::2::3]>\r\n",
        failed(Reason::AddressLiteral),
    );
    case(b"MAIL TO:<user@example.com>\r\n", failed(Reason::Syntax));
    case(
        b"MAIL FROM:<> FOO=bar\r\n",
        failed(Reason::UnknownParameter),
    );
    case(
        b"MAIL FROM:<> SIZE=10 SIZE=20\r\n",
        failed(Reason::DuplicateParameter),
    );
    case(
        b"MAIL FROM:<> SMTPUTF8 SMTPUTF8\r\n",
        failed(Reason::DuplicateParameter),
    );
    case(
        b"MAIL FROM:<> SIZE=abc\r\n",
        failed(Reason::InvalidParameterValue),
    );
    case(
        b"MAIL FROM:<> SIZE\r\n",
        failed(Reason::InvalidParameterValue),
    );
    case(
        b"MAIL FROM:<> SIZE=123456789012345678901\r\n",
        failed(Reason::NumberTooLarge),
    );
    case(
        b"MAIL FROM:<> BODY=9BIT\r\n",
        failed(Reason::InvalidParameterValue),
    );
    case(
        b"MAIL FROM:<> SMTPUTF8=yes\r\n",
        failed(Reason::InvalidParameterValue),
    );
    case(
        b"MAIL FROM:<> RET=ALL\r\n",
        failed(Reason::InvalidParameterValue),
    );
    case(
        b"MAIL FROM:<> ENVID=a+4\r\n",
        failed(Reason::InvalidParameterValue),
    );
    case(
        b"MAIL FROM:<> ENVID=a+0Ab\r\n",
        failed(Reason::InvalidParameterValue),
    );
    case(b"MAIL FROM:<> =x\r\n", failed(Reason::Syntax));
    case(
        "MAIL FROM:<用户@example.com>\r\n".as_bytes(),
        failed(Reason::Utf8WithoutSmtpUtf8),
    );
    case(
        "MAIL FROM:<user@bücher.example>\r\n".as_bytes(),
        failed(Reason::Utf8WithoutSmtpUtf8),
    );
    case(
        b"MAIL FROM:<\xff@example.com> SMTPUTF8\r\n",
        failed(Reason::InvalidUtf8),
    );
    case(
        b"MAIL FROM:<user@\xc3\x28.example> SMTPUTF8\r\n",
        failed(Reason::InvalidUtf8),
    );
    // Overlong encoding of "/" and an encoded surrogate: not UTF-8 (RFC 3629 §3).
    case(
        b"MAIL FROM:<\xc0\xaf@example.com> SMTPUTF8\r\n",
        failed(Reason::InvalidUtf8),
    );
    case(
        b"MAIL FROM:<\xed\xa0\x80@example.com> SMTPUTF8\r\n",
        failed(Reason::InvalidUtf8),
    );
    case(
        b"MAIL FROM:<\"\xe9\"@example.com> SMTPUTF8\r\n",
        failed(Reason::InvalidUtf8),
    );

    // Limits of RFC 5321 §4.5.3.1.
    let local_64 = "l".repeat(64);
    let local_65 = "l".repeat(65);
    case(
        format!("MAIL FROM:<{local_64}@example.com>\r\n").as_bytes(),
        ok(mail(&format!("{local_64}@example.com"))),
    );
    case(
        format!("MAIL FROM:<{local_65}@example.com>\r\n").as_bytes(),
        failed(Reason::LocalPartTooLong),
    );
    let label_64 = "d".repeat(64);
    case(
        format!("MAIL FROM:<user@{label_64}.example>\r\n").as_bytes(),
        failed(Reason::LabelTooLong),
    );
    let long_domain = [&*"d".repeat(63); 4].join(".");
    case(
        format!("RCPT TO:<u@{long_domain}x>\r\n").as_bytes(),
        failed(Reason::LabelTooLong),
    );
    case(
        format!("RCPT TO:<u@{long_domain}.x>\r\n").as_bytes(),
        failed(Reason::DomainTooLong),
    );
    case(
        format!("RCPT TO:<{local_64}@{long_domain}>\r\n").as_bytes(),
        failed(Reason::PathTooLong),
    );
    let route = format!("@{},@{}", "r".repeat(63), "s".repeat(63));
    let domain_120 = format!("{}.{}", "d".repeat(60), "e".repeat(59));
    case(
        format!("RCPT TO:<{route}:{local_64}@{domain_120}>\r\n").as_bytes(),
        failed(Reason::PathTooLong),
    );
    case(
        format!("RCPT TO:<{local_64}@{domain_120}>\r\n").as_bytes(),
        ok(rcpt(&format!("{local_64}@{domain_120}"))),
    );

    // RCPT.
    case(
        b"RCPT TO:<Postmaster>\r\n",
        ok(Command::Rcpt {
            to: ForwardPath::Postmaster,
            parameters: RcptParameters::default(),
        }),
    );
    case(
        b"rcpt to:<POSTMASTER>\r\n",
        ok(Command::Rcpt {
            to: ForwardPath::Postmaster,
            parameters: RcptParameters::default(),
        }),
    );
    case(
        b"RCPT TO:<postmaster@example.com>\r\n",
        ok(rcpt("postmaster@example.com")),
    );
    case(
        b"RCPT TO:<user@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;user+40example.com\r\n",
        ok(rcpt_with(
            "user@example.com",
            RcptParameters {
                notify: Some(Notify::When(NotifyWhen::new(true, true, false).unwrap())),
                original_recipient: Some(
                    OriginalRecipient::new("rfc822", "user@example.com").unwrap(),
                ),
            },
        )),
    );
    case(
        b"RCPT TO:<user@example.com> notify=never\r\n",
        ok(rcpt_with(
            "user@example.com",
            RcptParameters {
                notify: Some(Notify::Never),
                original_recipient: None,
            },
        )),
    );
    case(
        b"RCPT TO:<@relay.example:user@example.com>\r\n",
        ok(rcpt("user@example.com")),
    );
    case(b"RCPT TO:<>\r\n", failed(Reason::InvalidAddress));
    case(b"RCPT TO:<Postmaster\r\n", failed(Reason::InvalidAddress));
    case(
        b"RCPT TO:<u@example.com> SIZE=10\r\n",
        failed(Reason::UnknownParameter),
    );
    case(
        b"RCPT TO:<u@example.com> NOTIFY=NEVER,SUCCESS\r\n",
        failed(Reason::InvalidParameterValue),
    );
    case(
        b"RCPT TO:<u@example.com> ORCPT=rfc822\r\n",
        failed(Reason::InvalidParameterValue),
    );
    // A UTF-8 forward-path decodes; the session checks it against the MAIL command.
    case(
        "RCPT TO:<δοκιμή@παράδειγμα.δοκιμή>\r\n".as_bytes(),
        ok(rcpt("δοκιμή@παράδειγμα.δοκιμή")),
    );

    // DATA, BDAT and the commands without arguments.
    case(b"DATA\r\n", ok(Command::Data));
    case(b"data \t \r\n", ok(Command::Data));
    case(b"DATA x\r\n", failed(Reason::Syntax));
    case(
        b"BDAT 1000\r\n",
        ok(Command::Bdat {
            chunk_bytes: 1000,
            last: false,
        }),
    );
    case(
        b"BDAT 0 LAST\r\n",
        ok(Command::Bdat {
            chunk_bytes: 0,
            last: true,
        }),
    );
    case(
        b"bdat 18446744073709551615 last\r\n",
        ok(Command::Bdat {
            chunk_bytes: u64::MAX,
            last: true,
        }),
    );
    case(b"BDAT\r\n", failed(Reason::Syntax));
    case(b"BDAT x\r\n", failed(Reason::Syntax));
    case(b"BDAT 10 FIRST\r\n", failed(Reason::Syntax));
    case(
        b"BDAT 18446744073709551616\r\n",
        failed(Reason::NumberTooLarge),
    );
    case(
        b"BDAT 123456789012345678901\r\n",
        failed(Reason::NumberTooLarge),
    );
    case(b"RSET\r\n", ok(Command::Rset));
    case(b"QUIT\r\n", ok(Command::Quit));
    case(b"QUIT now\r\n", failed(Reason::Syntax));
    case(b"STARTTLS\r\n", ok(Command::StartTls));
    case(b"NOOP\r\n", ok(Command::Noop { text: None }));
    case(b"NOOP   \r\n", ok(Command::Noop { text: None }));
    case(
        b"NOOP hello  world \r\n",
        ok(Command::Noop {
            text: Some(text("hello  world")),
        }),
    );
    case(b"NOOP \x01\r\n", failed(Reason::Syntax));
    case(
        b"VRFY user@example.com\r\n",
        ok(Command::Vrfy {
            text: text("user@example.com"),
        }),
    );
    case(b"VRFY\r\n", failed(Reason::Syntax));
    case(b"VRFY \r\n", failed(Reason::InvalidText));
    case(
        b"EXPN staff\r\n",
        ok(Command::Expn {
            text: text("staff"),
        }),
    );
    case(b"HELP\r\n", ok(Command::Help { topic: None }));
    case(
        b"HELP MAIL\r\n",
        ok(Command::Help {
            topic: Some(text("MAIL")),
        }),
    );

    // AUTH (RFC 4954).
    case(
        b"AUTH PLAIN\r\n",
        ok(Command::Auth {
            mechanism: Mechanism::plain(),
            initial_response: None,
        }),
    );
    case(
        b"AUTH PLAIN AHVzZXIAcGFzcw==\r\n",
        ok(Command::Auth {
            mechanism: Mechanism::plain(),
            initial_response: Some(b"\0user\0pass".to_vec()),
        }),
    );
    case(
        b"AUTH PLAIN =\r\n",
        ok(Command::Auth {
            mechanism: Mechanism::plain(),
            initial_response: Some(Vec::new()),
        }),
    );
    case(
        b"auth login dXNlcg==\r\n",
        ok(Command::Auth {
            mechanism: Mechanism::login(),
            initial_response: Some(b"user".to_vec()),
        }),
    );
    case(
        b"AUTH SCRAM-SHA-256 \r\n",
        ok(Command::Auth {
            mechanism: Mechanism::try_from("SCRAM-SHA-256").unwrap(),
            initial_response: None,
        }),
    );
    case(b"AUTH\r\n", failed(Reason::Syntax));
    case(b"AUTH PLAIN abc\r\n", failed(Reason::InvalidBase64));
    case(b"AUTH PLAIN Zg=\r\n", failed(Reason::InvalidBase64));
    case(b"AUTH PLAIN ==\r\n", failed(Reason::InvalidBase64));
    case(
        b"AUTH THIS-NAME-IS-LONGER-THAN-20\r\n",
        failed(Reason::InvalidMechanism),
    );

    // Unknown commands, line endings and control characters.
    case(b"\r\n", failed(Reason::UnknownCommand));
    case(b"FOO bar\r\n", failed(Reason::UnknownCommand));
    case(b"DATAX\r\n", failed(Reason::UnknownCommand));
    case(b" QUIT\r\n", failed(Reason::UnknownCommand));
    case(b"EHLO host\n", failed(Reason::BareLineFeed));
    case(b"DATA\n", failed(Reason::BareLineFeed));
    case(b"\n", failed(Reason::BareLineFeed));
    case(b"NOOP a\rb\r\n", failed(Reason::ControlCharacter));
    case(b"QUIT\r\r\n", failed(Reason::ControlCharacter));
    case(b"NOOP a\0b\r\n", failed(Reason::ControlCharacter));
    case(b"\0QUIT\r\n", failed(Reason::ControlCharacter));

    // Line length: 512 octets with the CRLF is the most RFC 5321 §4.5.3.1.4 needs.
    let noop_512 = format!("NOOP {}\r\n", "x".repeat(505));
    assert_eq!(noop_512.len(), COMMAND_LINE_BYTES_MAX);
    case(
        noop_512.as_bytes(),
        ok(Command::Noop {
            text: Some(text(&"x".repeat(505))),
        }),
    );
    case(
        format!("NOOP {}\r\nQUIT\r\n", "x".repeat(506)).as_bytes(),
        vec![
            CommandEvent::LineTooLong,
            CommandEvent::Command(Command::Quit),
        ],
    );
    case(
        format!("NOOP {}\r\nQUIT\r\n", "x".repeat(5000)).as_bytes(),
        vec![
            CommandEvent::LineTooLong,
            CommandEvent::Command(Command::Quit),
        ],
    );

    // Pipelining (RFC 2920): several commands in one read.
    case(
        b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nFOO\r\nRCPT TO:<e@f.example>\r\nDATA\r\n",
        vec![
            CommandEvent::Command(mail("a@b.example")),
            CommandEvent::Command(rcpt("c@d.example")),
            CommandEvent::Failed(Reason::UnknownCommand),
            CommandEvent::Command(rcpt("e@f.example")),
            CommandEvent::Command(Command::Data),
        ],
    );

    // Incomplete lines are left over, not decoded.
    cases.push((b"QUIT".to_vec(), vec![], 4));
    cases.push((b"QUIT\r".to_vec(), vec![], 5));
    cases.push((b"NOOP\r\nQUI".to_vec(), ok(Command::Noop { text: None }), 3));
    cases
}

#[test]
fn table_whole() {
    for (input, expected, left_over) in table() {
        let result = decode_commands([input.as_slice()], COMMAND_LINE_BYTES_MAX);
        assert_eq!(
            result,
            (expected, left_over),
            "input {:?}",
            String::from_utf8_lossy(&input)
        );
    }
}

#[test]
fn table_in_chunks() {
    for (input, expected, left_over) in table() {
        for shift in 0..=9 {
            let size = 1usize << shift;
            let result = decode_commands(chunks(&input, &[size]), COMMAND_LINE_BYTES_MAX);
            assert_eq!(
                result,
                (expected.clone(), left_over),
                "input {:?} in chunks of {size}",
                String::from_utf8_lossy(&input)
            );
        }
    }
}

#[test]
fn table_round_trip() {
    for (_, expected, _) in table() {
        for event in expected {
            if let CommandEvent::Command(command) = event {
                check_command_round_trip(&command);
            }
        }
    }
}

#[test]
fn encoding_is_canonical() {
    let cases: [(&[u8], &[u8]); 6] = [
        (
            b"mail from: <\"john\"@example.com>  size=10\r\n",
            b"MAIL FROM:<john@example.com> SIZE=10\r\n",
        ),
        (
            b"MAIL FROM:<@a,@b:\"x y\"@[001.2.3.4]> envid=a+2Bb\r\n",
            b"MAIL FROM:<\"x y\"@[1.2.3.4]> ENVID=a+2Bb\r\n",
        ),
        (b"rcpt to:<postmaster>\r\n", b"RCPT TO:<Postmaster>\r\n"),
        (
            b"RCPT TO:<a@b.c> orcpt=rfc822;a+40b.c notify=delay,success\r\n",
            b"RCPT TO:<a@b.c> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;a@b.c\r\n",
        ),
        (b"bdat 007 last\r\n", b"BDAT 7 LAST\r\n"),
        (b"auth plain =\r\n", b"AUTH PLAIN =\r\n"),
    ];
    for (input, canonical) in cases {
        let (command, consumed) = decode_command(input, COMMAND_LINE_BYTES_MAX).unwrap();
        assert_eq!(consumed, input.len());
        let mut out = Vec::new();
        command.encode(&mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(canonical)
        );
    }
}

#[test]
fn configurable_line_limit() {
    let line = format!("NOOP {}\r\n", "x".repeat(1000));
    assert_eq!(
        decode_command(line.as_bytes(), COMMAND_LINE_BYTES_MAX),
        Err(DecodeError::LineTooLong)
    );
    assert!(matches!(
        decode_command(line.as_bytes(), 4096),
        Ok((Command::Noop { .. }, 1007))
    ));
    // A line that cannot be complete within the limit is too long as soon as the limit
    // is reached, without waiting for its end.
    assert_eq!(
        decode_command(&[b'x'; 512], 512),
        Err(DecodeError::LineTooLong)
    );
    assert_eq!(
        decode_command(&[b'x'; 511], 512),
        Err(DecodeError::Incomplete)
    );
}

#[test]
fn errors_map_to_replies() {
    let (code, enhanced, _) = Reason::UnknownParameter.reply();
    assert_eq!((code.get(), enhanced.to_string().as_str()), (555, "5.5.4"));
    let (code, enhanced, _) = DecodeError::LineTooLong.reply();
    assert_eq!((code.get(), enhanced.to_string().as_str()), (500, "5.5.2"));
    let (code, enhanced, _) = Reason::Utf8WithoutSmtpUtf8.reply();
    assert_eq!((code.get(), enhanced.to_string().as_str()), (553, "5.6.7"));
}
