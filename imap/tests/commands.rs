//! The command parser tested three ways (ARCHITECTURE.md §6): a table of (input,
//! expected) cases, including rejections; a round trip decode → encode → decode; and
//! the table replayed through the framer in chunks of 1, 2, 4 … 512 bytes.
//!
//! Expected values are canonical encodings (`Command::encode`), so each case reads
//! like a transcript line: what the client sent, what the server understood.

use lifeboat_imap::parse::framer::{Frame, Framer};
use lifeboat_imap::parse::{self, DecodeError, Limits, Reason};
use lifeboat_imap::types::{Command, LiteralMode};

/// Small limits so that limit cases stay short.
const LIMITS: Limits = Limits {
    line_bytes_max: 1000,
    literal_bytes_max: 100,
    command_bytes_max: 2000,
    nesting_max: 10,
};

#[derive(Clone, Debug, PartialEq)]
enum Expect {
    /// Parses; re-encodes to these bytes.
    Ok(Vec<u8>),
    /// Refused for this reason.
    Reject(Reason),
    /// A valid prefix.
    Incomplete,
    /// Stops at a literal header.
    Literal(u32, LiteralMode),
}

fn ok(canonical: &[u8]) -> Expect {
    Expect::Ok(canonical.to_vec())
}

fn same(input: &[u8]) -> (Vec<u8>, Expect) {
    (input.to_vec(), ok(input))
}

fn case(input: &[u8], expect: Expect) -> (Vec<u8>, Expect) {
    (input.to_vec(), expect)
}

fn cases() -> Vec<(Vec<u8>, Expect)> {
    let mut cases = vec![
        // command-any, command-nonauth — RFC 3501 §6.1, §6.2
        same(b"a1 CAPABILITY\r\n"),
        case(b"a2 noop\r\n", ok(b"a2 NOOP\r\n")),
        same(b"a3 LOGOUT\r\n"),
        same(b"a4 STARTTLS\r\n"),
        same(b"a5 LOGIN fred \"pass word\"\r\n"),
        case(b"a6 LOGIN {4}\r\nfred {8}\r\npassword\r\n", ok(b"a6 LOGIN fred password\r\n")),
        case(b"a7 LOGIN {4+}\r\nfred \"a\\\"b\\\\\"\r\n", ok(b"a7 LOGIN fred \"a\\\"b\\\\\"\r\n")),
        case(b"a8 login \"\" \"\"\r\n", ok(b"a8 LOGIN \"\" \"\"\r\n")),
        same(b"a9 AUTHENTICATE PLAIN\r\n"),
        same(b"b1 AUTHENTICATE PLAIN AHVzZXIAcGFzcw==\r\n"),
        case(b"b2 authenticate plain =\r\n", ok(b"b2 AUTHENTICATE PLAIN =\r\n")),
        same(b"b3 AUTHENTICATE XOAUTH2 dXNlcj1h\r\n"),
        // command-auth — RFC 3501 §6.3
        case(b"c1 SELECT inbox\r\n", ok(b"c1 SELECT INBOX\r\n")),
        same(b"c2 SELECT \"Sent Items\" (CONDSTORE)\r\n"),
        case(b"c3 examine \"Archive\"\r\n", ok(b"c3 EXAMINE Archive\r\n")),
        case(b"c4 CREATE \"Entw&APw-rfe\"\r\n", ok(b"c4 CREATE Entw&APw-rfe\r\n")),
        same(b"c5 DELETE foo/bar\r\n"),
        same(b"c6 RENAME old \"new name\"\r\n"),
        same(b"c7 SUBSCRIBE INBOX.Sent\r\n"),
        same(b"c8 UNSUBSCRIBE INBOX.Sent\r\n"),
        same(b"c9 LIST \"\" *\r\n"),
        case(b"d1 LIST \"\" \"%\"\r\n", ok(b"d1 LIST \"\" %\r\n")),
        case(b"d2 LIST \"~/Mail/\" \"%\"\r\n", ok(b"d2 LIST ~/Mail/ %\r\n")),
        case(
            b"d3 LIST (SPECIAL-USE) \"\" \"*\" RETURN (SPECIAL-USE)\r\n",
            ok(b"d3 LIST (SPECIAL-USE) \"\" * RETURN (SPECIAL-USE)\r\n"),
        ),
        case(
            b"d4 list (subscribed recursivematch) \"\" (\"INBOX\" \"Sent\") return (children status (messages unseen))\r\n",
            ok(b"d4 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (INBOX Sent) RETURN (CHILDREN STATUS (MESSAGES UNSEEN))\r\n"),
        ),
        case(b"d5 LIST \"\" \"\"\r\n", ok(b"d5 LIST \"\" \"\"\r\n")),
        case(b"d6 LSUB \"#news.\" \"comp.mail.*\"\r\n", ok(b"d6 LSUB #news. comp.mail.*\r\n")),
        same(b"d7 STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)\r\n"),
        case(
            b"d8 APPEND saved-messages (\\Seen) \" 7-Feb-1994 21:52:25 -0800\" {5}\r\nhello\r\n",
            ok(b"d8 APPEND saved-messages (\\Seen) \"07-Feb-1994 21:52:25 -0800\" {5}\r\nhello\r\n"),
        ),
        case(b"d9 APPEND Drafts () {3+}\r\nabc\r\n", ok(b"d9 APPEND Drafts {3}\r\nabc\r\n")),
        // Message data may hold NUL: it is not a string (see parse::command::append).
        same(b"e1 APPEND Drafts (\\Draft $Work) {3}\r\na\0c\r\n"),
        same(b"e2 APPEND INBOX \"29-Feb-2024 00:00:00 +0000\" {0}\r\n\r\n"),
        same(b"e3 IDLE\r\n"),
        same(b"e4 NAMESPACE\r\n"),
        case(b"e5 ENABLE condstore x-foo\r\n", ok(b"e5 ENABLE CONDSTORE x-foo\r\n")),
        same(b"e6 ID (\"name\" \"Thunderbird\" \"version\" NIL)\r\n"),
        case(b"e7 id nil\r\n", ok(b"e7 ID NIL\r\n")),
        same(b"e8 ID ()\r\n"),
        // command-select — RFC 3501 §6.4
        same(b"f1 CHECK\r\n"),
        same(b"f2 CLOSE\r\n"),
        same(b"f3 EXPUNGE\r\n"),
        same(b"f4 UNSELECT\r\n"),
        same(b"f5 UID EXPUNGE 3:5,7\r\n"),
        same(b"g1 SEARCH ALL\r\n"),
        same("g2 SEARCH CHARSET UTF-8 TEXT {7}\r\nZürich\r\n".as_bytes()),
        case(
            b"g3 search flagged since 1-Feb-1994 not from \"Smith\"\r\n",
            ok(b"g3 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM Smith\r\n"),
        ),
        same(b"g4 SEARCH OR (SEEN UNDELETED) NOT (ANSWERED OR DRAFT DELETED) 1:5,*\r\n"),
        case(
            b"g5 SEARCH HEADER \"Message-ID\" \"<x@y>\" LARGER 100 SMALLER 2000 UID 1:* BEFORE \"1-Jan-2024\" ON 29-Feb-2024\r\n",
            ok(b"g5 SEARCH HEADER Message-ID <x@y> LARGER 100 SMALLER 2000 UID 1:* BEFORE 1-Jan-2024 ON 29-Feb-2024\r\n"),
        ),
        same(b"g6 SEARCH ANSWERED BCC b BODY x CC c DELETED DRAFT FLAGGED KEYWORD $Junk NEW OLD RECENT SEEN SENTBEFORE 1-Jan-2020 SENTON 2-Jan-2020 SENTSINCE 3-Jan-2020 SUBJECT \"hello world\" TO t UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNKEYWORD $Junk UNSEEN\r\n"),
        same(b"g7 SEARCH RETURN (MIN MAX COUNT ALL) UNSEEN\r\n"),
        same(b"g8 UID SEARCH RETURN () ALL\r\n"),
        case(
            b"g9 UID SEARCH MODSEQ \"/flags/\\\\draft\" all 620162338\r\n",
            ok(b"g9 UID SEARCH MODSEQ \"/flags/\\\\Draft\" all 620162338\r\n"),
        ),
        same(b"h1 SEARCH MODSEQ 0 ((((ALL))))\r\n"),
        same(b"h2 SEARCH 2:4,9:* NOT 3\r\n"),
        same(b"h3 SEARCH SUBJECT {4}\r\na\r\nb\r\n"),
        // FETCH — RFC 3501 §6.4.5
        same(b"i1 FETCH 1:* ALL\r\n"),
        case(b"i2 fetch 1 fast\r\n", ok(b"i2 FETCH 1 FAST\r\n")),
        same(b"i3 FETCH * FULL\r\n"),
        same(b"i4 FETCH 2 (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY BODYSTRUCTURE UID RFC822 RFC822.HEADER RFC822.TEXT MODSEQ)\r\n"),
        case(
            b"i5 fetch 4:2 body[header.fields (From To \"Subject\")]\r\n",
            ok(b"i5 FETCH 4:2 BODY[HEADER.FIELDS (From To Subject)]\r\n"),
        ),
        same(b"i6 FETCH 1 (BODY.PEEK[1.2.HEADER.FIELDS.NOT (Received)]<0.1024> BODY[] BODY[1.MIME] BODY[2.TEXT] BODY[3] BODY[TEXT]<10.20> BODY[HEADER] BODY[4.2.1])\r\n"),
        case(
            b"i7 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)\r\n",
            ok(b"i7 UID FETCH 1:* FLAGS (CHANGEDSINCE 12345)\r\n"),
        ),
        same(b"i8 UID FETCH 100:200 (UID BODY.PEEK[])\r\n"),
        // STORE, COPY, MOVE — RFC 3501 §6.4.6-7, RFC 6851, RFC 7162
        same(b"j1 STORE 2:4 +FLAGS (\\Deleted)\r\n"),
        case(
            b"j2 STORE 1 -flags.silent \\seen $Junk\r\n",
            ok(b"j2 STORE 1 -FLAGS.SILENT (\\Seen $Junk)\r\n"),
        ),
        same(b"j3 UID STORE 5 (UNCHANGEDSINCE 320162338) FLAGS.SILENT ()\r\n"),
        same(b"j4 STORE 1 FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\Custom)\r\n"),
        same(b"j5 COPY 2:4 MEETING\r\n"),
        case(b"j6 UID MOVE 42 \"Trash\"\r\n", ok(b"j6 UID MOVE 42 Trash\r\n")),
        same(b"j7 MOVE 1,3,5:7 INBOX\r\n"),
        same(b"j8 UID COPY 4294967295 \"a b\"\r\n"),
        // QRESYNC — RFC 7162 §3.2.5, §3.2.6 (the examples of §3.2.5)
        same(b"k1 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\r\n"),
        same(b"k2 SELECT INBOX (QRESYNC (67890007 90060115194045000 1:29997 (5000,7500,9000,9990:9999 15000,22500,27000,29970,29973)))\r\n"),
        case(
            b"k3 examine \"Sent\" (condstore qresync (1 2 (1 5)))\r\n",
            ok(b"k3 EXAMINE Sent (CONDSTORE QRESYNC (1 2 (1 5)))\r\n"),
        ),
        case(
            b"k4 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\n",
            ok(b"k4 UID FETCH 300:500 FLAGS (CHANGEDSINCE 12345 VANISHED)\r\n"),
        ),
        // BINARY — RFC 3516 §4.1, §4.4
        same(b"k5 FETCH 1 (BINARY[1.2] BINARY.PEEK[]<0.100> BINARY.SIZE[3] BINARY.SIZE[])\r\n"),
        same(b"k6 APPEND INBOX ~{3}\r\na\0c\r\n"),
        case(b"k7 APPEND INBOX (\\Seen) ~{3+}\r\nabc\r\n", ok(b"k7 APPEND INBOX (\\Seen) ~{3}\r\nabc\r\n")),
        // UTF8=ACCEPT — RFC 6855 §4
        same("k8 APPEND INBOX UTF8 (~{9}\r\nSub: é\r\n)\r\n".as_bytes()),
        // COMPRESS — RFC 4978 §3; ENABLE of the extensions this server knows
        same(b"k9 COMPRESS DEFLATE\r\n"),
        case(
            b"l1 enable qresync utf8=accept imap4rev2\r\n",
            ok(b"l1 ENABLE QRESYNC UTF8=ACCEPT IMAP4rev2\r\n"),
        ),
        // SEARCHRES — RFC 5182 §2.1, §2.2
        same(b"l2 SEARCH RETURN (SAVE) UNSEEN\r\n"),
        same(b"l3 FETCH $ (FLAGS UID)\r\n"),
        same(b"l4 UID STORE $ +FLAGS (\\Seen)\r\n"),
        same(b"l5 UID COPY $ Trash\r\n"),
        same(b"l6 UID SEARCH UID $ NOT $\r\n"),
        same(b"l7 UID EXPUNGE $\r\n"),
        same(b"l8 UID SEARCH RETURN (MIN MAX SAVE) FLAGGED\r\n"),
        // A UTF-8 mailbox name as a bare atom, as clients in UTF-8 mode send it (RFC
        // 6855); it is written back as a string.
        case(
            "l0 SELECT Entwürfe\r\n".as_bytes(),
            ok("l0 SELECT {9}\r\nEntwürfe\r\n".as_bytes()),
        ),
        // STATUS=SIZE — RFC 8438 §3; DELETED — RFC 9051 §6.3.11
        same(b"l9 STATUS INBOX (SIZE DELETED MESSAGES)\r\n"),
        // Rejections. NUL in strings — RFC 3501 §9 CHAR8, CVE-2019-11500:
        case(b"r1 LOGIN \"fr\0ed\" x\r\n", Expect::Reject(Reason::NulByte)),
        case(b"r2 LOGIN {5}\r\nfr\0ed x\r\n", Expect::Reject(Reason::NulByte)),
        case(b"r3 LOGIN \"a\\\0\" x\r\n", Expect::Reject(Reason::NulByte)),
        case(b"r4 SELECT {3+}\r\na\0b\r\n", Expect::Reject(Reason::NulByte)),
        case(b"r5 FOO\r\n", Expect::Reject(Reason::UnknownCommand)),
        case(b"r6 UID FOO 1\r\n", Expect::Reject(Reason::UnknownCommand)),
        case(b"r7 FETCH 0 FLAGS\r\n", Expect::Reject(Reason::Syntax)),
        case(b"r8 FETCH 1 BODY.PEEK\r\n", Expect::Reject(Reason::Syntax)),
        case(b"r9 SELECT\r\n", Expect::Reject(Reason::Syntax)),
        case(b"s1 SEARCH BEFORE 30-Feb-2024\r\n", Expect::Reject(Reason::Syntax)),
        case(b"s2 LOGIN a b\n", Expect::Reject(Reason::Syntax)),
        case(b"s3 CREATE {4}\r\na\r\nb\r\n", Expect::Reject(Reason::InvalidMailbox)),
        // A literal8 is message data only (RFC 3516 §4.1): never a string.
        case(b"s4 LOGIN ~{3}\r\nabc x\r\n", Expect::Reject(Reason::Syntax)),
        case(b"s5 AUTHENTICATE PLAIN Zm9=\r\n", Expect::Reject(Reason::Syntax)),
        case(b"s6 LOGIN \"unterminated\r\n", Expect::Reject(Reason::Syntax)),
        case(b"s7 SELECT INBOX (QRESYNC)\r\n", Expect::Reject(Reason::Syntax)),
        case(b"s8 FETCH 1 (FLAGS\r\n", Expect::Reject(Reason::Syntax)),
        case(b"s9 NOOP extra\r\n", Expect::Reject(Reason::Syntax)),
        case(b"t1 FETCH 1 BODY[MIME]\r\n", Expect::Reject(Reason::Syntax)),
        case(b"t2 FETCH 1 BODY[1.]\r\n", Expect::Reject(Reason::Syntax)),
        case(b"t3 STORE 1 FLAGS \\*\r\n", Expect::Reject(Reason::Syntax)),
        case(b"t4 LOGIN a \"b\\c\"\r\n", Expect::Reject(Reason::Syntax)),
        case(b"t5 FETCH 4294967296 FLAGS\r\n", Expect::Reject(Reason::Syntax)),
        case(b"t6 APPEND INBOX \"31-Apr-2024 00:00:00 +0000\" {1}\r\nx\r\n", Expect::Reject(Reason::Syntax)),
        case(b"+t7 NOOP\r\n", Expect::Reject(Reason::InvalidTag)),
        case(b"\r\n", Expect::Reject(Reason::InvalidTag)),
        case(b"t8\r\n", Expect::Reject(Reason::InvalidTag)),
        // `$` stands alone (RFC 5182 §2.1); VANISHED needs CHANGEDSINCE and UID FETCH
        // (RFC 7162 §3.2.6); a select parameter once.
        case(b"w1 FETCH 1,$ FLAGS\r\n", Expect::Reject(Reason::Syntax)),
        case(b"w2 UID FETCH 1 FLAGS (VANISHED)\r\n", Expect::Reject(Reason::Syntax)),
        case(b"w3 FETCH 1 FLAGS (CHANGEDSINCE 1 VANISHED)\r\n", Expect::Reject(Reason::Syntax)),
        case(b"w4 SELECT INBOX (CONDSTORE CONDSTORE)\r\n", Expect::Reject(Reason::Syntax)),
        case(b"w5 FETCH 1 BINARY[1.TEXT]\r\n", Expect::Reject(Reason::Syntax)),
        case(b"w6 APPEND INBOX UTF8 ({3}\r\nabc)\r\n", Expect::Reject(Reason::Syntax)),
        // Limits.
        case(
            b"u1 APPEND INBOX {200}\r\n",
            Expect::Reject(Reason::LiteralTooLarge {
                length_bytes: 200,
                mode: LiteralMode::Sync,
            }),
        ),
        case(
            b"u2 LOGIN {4294967296}\r\n",
            Expect::Reject(Reason::LiteralTooLarge {
                length_bytes: u64::MAX,
                mode: LiteralMode::Sync,
            }),
        ),
    ];
    let mut id_pairs = b"t9 ID (".to_vec();
    for index in 0..31 {
        if index > 0 {
            id_pairs.push(b' ');
        }
        id_pairs.extend_from_slice(format!("\"f{index}\" NIL").as_bytes());
    }
    id_pairs.extend_from_slice(b")\r\n");
    cases.push((id_pairs, Expect::Reject(Reason::Syntax)));

    // RFC 2971 §3.3: 30 pairs with values of 1,024 octets are valid, however much
    // longer than `line_bytes_max` the line is; a field of 31 octets or a value of
    // 1,025 is not.
    let value = "v".repeat(1024);
    let mut id_long = b"x1 ID (".to_vec();
    for index in 0..30 {
        if index > 0 {
            id_long.push(b' ');
        }
        id_long.extend_from_slice(format!("\"field{index:02}\" \"{value}\"").as_bytes());
    }
    id_long.extend_from_slice(b")\r\n");
    assert!(id_long.len() > 30 * 1024);
    cases.push((id_long.clone(), Expect::Ok(id_long)));
    let long_field = format!("x2 ID (\"{}\" NIL)\r\n", "f".repeat(31));
    cases.push((long_field.into_bytes(), Expect::Reject(Reason::Syntax)));
    let long_value = format!("x3 ID (\"name\" \"{}\")\r\n", "v".repeat(1025));
    cases.push((long_value.into_bytes(), Expect::Reject(Reason::Syntax)));
    // Still a bound: an ID line past the longest the RFC allows.
    let mut id_garbage = b"x4 ID (".to_vec();
    id_garbage.extend(std::iter::repeat_n(b'x', parse::ID_LINE_BYTES_MAX));
    id_garbage.extend_from_slice(b")\r\n");
    cases.push((id_garbage, Expect::Reject(Reason::LineTooLong)));

    // A non-synchronizing literal that is too large: its data, which looks like
    // commands, must never run.
    let mut smuggled = b"u3 APPEND INBOX {200+}\r\n".to_vec();
    while smuggled.len() < 24 + 200 {
        smuggled.extend_from_slice(b"x LOGOUT\r\n");
    }
    smuggled.truncate(24 + 200);
    smuggled.extend_from_slice(b" rest of the line\r\n");
    cases.push((
        smuggled,
        Expect::Reject(Reason::LiteralTooLarge {
            length_bytes: 200,
            mode: LiteralMode::NonSync,
        }),
    ));

    let mut long_line = b"u4 NOOP ".to_vec();
    long_line.extend(std::iter::repeat_n(b'x', 1200));
    long_line.extend_from_slice(b"\r\n");
    cases.push((long_line, Expect::Reject(Reason::LineTooLong)));

    let mut many_literals = b"u5 SEARCH".to_vec();
    for _ in 0..30 {
        many_literals.extend_from_slice(b" TEXT {90+}\r\n");
        many_literals.extend(std::iter::repeat_n(b'y', 90));
    }
    many_literals.extend_from_slice(b"\r\n");
    cases.push((many_literals, Expect::Reject(Reason::CommandTooLarge)));

    let deep_not = format!("u6 SEARCH {}ALL\r\n", "NOT ".repeat(10));
    cases.push((
        deep_not.into_bytes(),
        Expect::Reject(Reason::NestingTooDeep),
    ));
    let ok_not = format!("u7 SEARCH {}ALL\r\n", "NOT ".repeat(9));
    cases.push((ok_not.clone().into_bytes(), Expect::Ok(ok_not.into_bytes())));
    let deep_parens = format!("u8 SEARCH {}ALL{}\r\n", "(".repeat(10), ")".repeat(10));
    cases.push((
        deep_parens.into_bytes(),
        Expect::Reject(Reason::NestingTooDeep),
    ));
    let deep_or = format!("u9 SEARCH {}ALL{}\r\n", "OR ALL ".repeat(12), "");
    cases.push((deep_or.into_bytes(), Expect::Reject(Reason::NestingTooDeep)));

    // Prefixes: not replayed through the framer (they would merge with the next case).
    cases.extend([
        case(b"v1 NOOP", Expect::Incomplete),
        case(b"v2 FET", Expect::Incomplete),
        case(b"v3 LOGIN {5}\r\n", Expect::Literal(5, LiteralMode::Sync)),
        case(
            b"v4 LOGIN {5+}\r\n",
            Expect::Literal(5, LiteralMode::NonSync),
        ),
        case(b"v5 LOGIN {5}\r\nab", Expect::Incomplete),
        case(b"v6 LOGIN \"abc", Expect::Incomplete),
        case(b"", Expect::Incomplete),
        case(b"v7 SEARCH NOT", Expect::Incomplete),
        case(b"v8 NOOP\r", Expect::Incomplete),
    ]);
    cases
}

fn tag_of_case(input: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(input.split(|&byte| byte == b' ').next()?).ok()?;
    lifeboat_imap::types::Tag::try_from(text).ok().map(|_| text)
}

fn encode(command: &Command<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    command.encode(&mut out);
    out
}

fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).escape_debug().to_string()
}

#[test]
fn table() {
    for (input, expect) in cases() {
        let result = parse::command(&input, &LIMITS);
        match (&expect, &result) {
            (Expect::Ok(canonical), Ok((used, command))) => {
                assert_eq!(*used, input.len(), "{}", show(&input));
                assert_eq!(show(&encode(command)), show(canonical), "{}", show(&input));
            }
            (Expect::Reject(reason), Err(DecodeError::Failed { tag, reason: got })) => {
                assert_eq!(got, reason, "{}", show(&input));
                let tag = tag.as_ref().map(|tag| tag.as_str());
                if *reason != Reason::InvalidTag {
                    assert_eq!(tag, tag_of_case(&input), "{}", show(&input));
                }
            }
            (Expect::Incomplete, Err(DecodeError::Incomplete)) => {}
            (
                Expect::Literal(length, mode),
                Err(DecodeError::Literal {
                    length: got,
                    mode: got_mode,
                    tag,
                }),
            ) => {
                assert_eq!((length, mode), (got, got_mode), "{}", show(&input));
                assert_eq!(Some(tag.as_str()), tag_of_case(&input));
            }
            _ => panic!("{}: expected {expect:?}, got {result:?}", show(&input)),
        }
    }
}

#[test]
fn every_prefix_of_a_valid_command_is_incomplete() {
    for (input, expect) in cases() {
        if !matches!(expect, Expect::Ok(_)) {
            continue;
        }
        for end in 0..input.len() {
            let result = parse::command(&input[..end], &LIMITS);
            assert!(
                matches!(
                    result,
                    Err(DecodeError::Incomplete | DecodeError::Literal { .. })
                ),
                "{} at {end}: {result:?}",
                show(&input)
            );
        }
    }
}

#[test]
fn round_trip() {
    for (input, expect) in cases() {
        if !matches!(expect, Expect::Ok(_)) {
            continue;
        }
        let (_, first) = parse::command(&input, &LIMITS).unwrap();
        for mode in [LiteralMode::Sync, LiteralMode::NonSync] {
            let mut encoded = Vec::new();
            first.encode_with(&mut encoded, mode);
            let (used, second) = parse::command(&encoded, &LIMITS)
                .unwrap_or_else(|error| panic!("{}: {error:?}", show(&encoded)));
            assert_eq!(used, encoded.len());
            assert_eq!(first, second, "{}", show(&input));
        }
    }
}

/// What the server sees, whatever the chunking.
#[derive(Clone, Debug, PartialEq)]
enum Event {
    Command(String),
    Failed(Reason),
    Continue(u32),
}

fn replay(stream: &[u8], chunk_bytes: usize) -> Vec<Event> {
    let mut framer = Framer::new(LIMITS);
    let mut events = Vec::new();
    for chunk in stream.chunks(chunk_bytes) {
        framer.push(chunk);
        loop {
            match framer.next() {
                Frame::NeedMore => break,
                Frame::Unit(unit) => match parse::command(unit, &LIMITS) {
                    Ok((used, command)) => {
                        assert_eq!(used, unit.len());
                        events.push(Event::Command(show(&encode(&command))));
                    }
                    Err(DecodeError::Failed { reason, .. }) => events.push(Event::Failed(reason)),
                    Err(other) => panic!("a framed unit gave {other:?}"),
                },
                Frame::Continue { length, .. } => events.push(Event::Continue(length)),
                Frame::Rejected { reason, .. } => events.push(Event::Failed(reason)),
                Frame::Fatal { reason } => panic!("fatal {reason:?}"),
            }
        }
    }
    assert_eq!(framer.buffered_len(), 0, "bytes left over");
    events
}

#[test]
fn chunked_replay_through_the_framer() {
    let mut stream = Vec::new();
    let mut expected = Vec::new();
    for (input, expect) in cases() {
        match expect {
            Expect::Ok(canonical) => expected.push(Event::Command(show(&canonical))),
            Expect::Reject(reason) => expected.push(Event::Failed(reason)),
            Expect::Incomplete | Expect::Literal(..) => continue,
        }
        stream.extend_from_slice(&input);
    }
    let whole = replay(&stream, stream.len());
    let without_continue: Vec<Event> = whole
        .iter()
        .filter(|event| !matches!(event, Event::Continue(_)))
        .cloned()
        .collect();
    assert_eq!(without_continue, expected);
    assert!(whole.contains(&Event::Continue(4)));
    let mut chunk_bytes = 1;
    while chunk_bytes <= 512 {
        assert_eq!(
            replay(&stream, chunk_bytes),
            whole,
            "chunks of {chunk_bytes}"
        );
        chunk_bytes *= 2;
    }
}

#[test]
fn idle_and_authenticate_lines() {
    assert_eq!(parse::idle_done(b"DONE\r\n", &LIMITS), Ok(6));
    assert_eq!(parse::idle_done(b"done\r\nA1 NOOP\r\n", &LIMITS), Ok(6));
    assert_eq!(
        parse::idle_done(b"DON", &LIMITS),
        Err(DecodeError::Incomplete)
    );
    assert!(matches!(
        parse::idle_done(b"DONE NOW\r\n", &LIMITS),
        Err(DecodeError::Failed {
            tag: None,
            reason: Reason::Syntax
        })
    ));
    assert!(matches!(
        parse::idle_done(b"DONE {5}\r\n", &LIMITS),
        Err(DecodeError::Failed { tag: None, .. })
    ));
    use lifeboat_imap::types::AuthenticateData;
    let (used, data) = parse::authenticate_data(b"AHVzZXIAcGFzcw==\r\n", &LIMITS).unwrap();
    assert_eq!(used, 18);
    assert!(
        matches!(&data, AuthenticateData::Response(secret) if secret.expose() == b"\0user\0pass")
    );
    assert_eq!(
        parse::authenticate_data(b"*\r\n", &LIMITS),
        Ok((3, AuthenticateData::Cancel))
    );
    assert!(matches!(
        parse::authenticate_data(b"\r\n", &LIMITS),
        Ok((2, AuthenticateData::Response(secret))) if secret.expose().is_empty()
    ));
    assert!(matches!(
        parse::authenticate_data(b"not base64!\r\n", &LIMITS),
        Err(DecodeError::Failed { tag: None, .. })
    ));
}

#[test]
fn values_are_what_the_client_meant() {
    use lifeboat_imap::types::{CommandBody, Mailbox, SearchKey};
    let (_, command) = parse::command(b"a LOGIN {4+}\r\nfred \"se\\\"cret\"\r\n", &LIMITS).unwrap();
    let CommandBody::Login { username, password } = command.body else {
        panic!("not LOGIN")
    };
    assert_eq!(username.as_bytes(), b"fred");
    assert_eq!(password.expose().as_bytes(), b"se\"cret");
    assert_eq!(format!("{password:?}"), "Secret(..)");

    let (_, command) = parse::command(b"a SELECT \"&ZeVnLIqe-\"\r\n", &LIMITS).unwrap();
    let CommandBody::Select {
        mailbox,
        condstore: false,
        qresync: None,
    } = command.body
    else {
        panic!("not SELECT")
    };
    assert_eq!(mailbox.to_utf8().unwrap(), "日本語");
    assert_eq!(mailbox, Mailbox::from_utf8("日本語").unwrap());

    let (_, command) = parse::command(b"a SEARCH OR FROM x TO y\r\n", &LIMITS).unwrap();
    let CommandBody::Search { criteria, .. } = command.body else {
        panic!("not SEARCH")
    };
    assert!(matches!(criteria.as_slice(), [SearchKey::Or(left, right)]
        if matches!(**left, SearchKey::From(_)) && matches!(**right, SearchKey::To(_))));
}
