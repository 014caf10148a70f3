//! The response encoder against golden server lines (RFC 3501 §7 and §8 examples
//! where they exist), written as `S:` transcripts.

use std::borrow::Cow;
use std::num::{NonZeroU32, NonZeroU64};

use lifeboat_imap::types::*;

fn nz(value: u32) -> NonZeroU32 {
    NonZeroU32::new(value).unwrap()
}

fn text(value: &str) -> Text<'_> {
    Text::try_from(value).unwrap()
}

fn s(value: &str) -> IString<'_> {
    IString::try_from(value).unwrap()
}

fn tag(value: &str) -> Tag<'_> {
    Tag::try_from(value).unwrap()
}

/// Encodes every response and compares with the transcript, one `S: ` line each.
fn assert_transcript(responses: &[Response<'_>], transcript: &str) {
    let mut out = Vec::new();
    for response in responses {
        response.encode(&mut out);
    }
    let expected: String = transcript
        .lines()
        .map(str::trim_start)
        .filter(|line| !line.is_empty())
        .map(|line| {
            let line = line
                .strip_prefix("S: ")
                .unwrap_or_else(|| panic!("not S: {line}"));
            format!("{line}\r\n")
        })
        .collect();
    assert_eq!(String::from_utf8_lossy(&out), expected);
}

#[test]
fn greeting_status_and_codes() {
    assert_transcript(
        &[
            Response::Status(Status::untagged(
                Condition::Ok,
                Some(Code::Capability(vec![
                    Capability::Imap4Rev1,
                    Capability::LiteralPlus,
                    Capability::SaslIr,
                    Capability::Auth(Atom::try_from("PLAIN").unwrap()),
                    Capability::StartTls,
                ])),
                text("Lifeboat ready"),
            )),
            Response::Status(Status::PreAuth {
                code: None,
                text: text("logged in as fred"),
            }),
            Response::Status(Status::tagged(
                tag("a1"),
                Condition::Ok,
                Some(Code::ReadWrite),
                text("SELECT completed"),
            )),
            Response::Status(Status::tagged(
                tag("a2"),
                Condition::No,
                Some(Code::TryCreate),
                text("no such mailbox"),
            )),
            Response::Status(Status::tagged(
                tag("a3"),
                Condition::Ok,
                Some(Code::AppendUid {
                    uid_validity: nz(38505),
                    uids: SequenceSet::single(nz(3955)),
                }),
                text("APPEND completed"),
            )),
            Response::Status(Status::tagged(
                tag("a4"),
                Condition::Ok,
                Some(Code::CopyUid {
                    uid_validity: nz(38505),
                    source: SequenceSet::try_from("304,319:320").unwrap(),
                    destination: SequenceSet::try_from("3956:3958").unwrap(),
                }),
                text("Done"),
            )),
            Response::Status(Status::untagged(
                Condition::Ok,
                Some(Code::PermanentFlags(vec![
                    FlagPerm::Flag(Flag::Deleted),
                    FlagPerm::Flag(Flag::Seen),
                    FlagPerm::Asterisk,
                ])),
                text("Limited"),
            )),
            Response::Status(Status::untagged(
                Condition::Ok,
                Some(Code::UidValidity(nz(3857529045))),
                text("UIDs valid"),
            )),
            Response::Status(Status::untagged(
                Condition::Ok,
                Some(Code::UidNext(nz(4392))),
                text("Predicted next UID"),
            )),
            Response::Status(Status::untagged(
                Condition::Ok,
                Some(Code::HighestModSeq(NonZeroU64::new(715194045007).unwrap())),
                text("Highest"),
            )),
            Response::Status(Status::untagged(
                Condition::Ok,
                Some(Code::Unseen(nz(12))),
                text("first"),
            )),
            Response::Status(Status::untagged(
                Condition::No,
                Some(Code::Alert),
                text("Disk full"),
            )),
            Response::Status(Status::tagged(
                tag("a5"),
                Condition::No,
                Some(Code::BadCharset(vec![s("UTF-8"), s("US-ASCII")])),
                text("unsupported charset"),
            )),
            Response::Status(Status::tagged(
                tag("a6"),
                Condition::No,
                Some(Code::AuthenticationFailed),
                text("Invalid credentials"),
            )),
            Response::Status(Status::tagged(
                tag("a7"),
                Condition::Ok,
                Some(Code::Modified(SequenceSet::try_from("7,9").unwrap())),
                text("Conditional STORE failed"),
            )),
            Response::Status(Status::tagged(
                tag("a8"),
                Condition::Bad,
                None,
                text("Syntax error"),
            )),
            Response::Status(Status::Bye {
                code: None,
                text: text("Lifeboat logging out"),
            }),
        ],
        r#"
        S: * OK [CAPABILITY IMAP4rev1 LITERAL+ SASL-IR AUTH=PLAIN STARTTLS] Lifeboat ready
        S: * PREAUTH logged in as fred
        S: a1 OK [READ-WRITE] SELECT completed
        S: a2 NO [TRYCREATE] no such mailbox
        S: a3 OK [APPENDUID 38505 3955] APPEND completed
        S: a4 OK [COPYUID 38505 304,319:320 3956:3958] Done
        S: * OK [PERMANENTFLAGS (\Deleted \Seen \*)] Limited
        S: * OK [UIDVALIDITY 3857529045] UIDs valid
        S: * OK [UIDNEXT 4392] Predicted next UID
        S: * OK [HIGHESTMODSEQ 715194045007] Highest
        S: * OK [UNSEEN 12] first
        S: * NO [ALERT] Disk full
        S: a5 NO [BADCHARSET (UTF-8 US-ASCII)] unsupported charset
        S: a6 NO [AUTHENTICATIONFAILED] Invalid credentials
        S: a7 OK [MODIFIED 7,9] Conditional STORE failed
        S: a8 BAD Syntax error
        S: * BYE Lifeboat logging out
        "#,
    );
}

#[test]
fn mailbox_data() {
    let delimiter = Some(Delimiter::try_from('/').unwrap());
    assert_transcript(
        &[
            Response::Data(Data::Flags(vec![
                Flag::Answered,
                Flag::Flagged,
                Flag::Deleted,
                Flag::Seen,
                Flag::Draft,
                Flag::Keyword(Atom::try_from("$Forwarded").unwrap()),
            ])),
            Response::Data(Data::Exists(172)),
            Response::Data(Data::Recent(1)),
            Response::Data(Data::Expunge(nz(3))),
            Response::Data(Data::List(ListItem {
                attributes: vec![ListAttribute::HasNoChildren, ListAttribute::Sent],
                delimiter,
                mailbox: Mailbox::try_from("Sent Items").unwrap(),
                extended: vec![],
            })),
            Response::Data(Data::List(ListItem {
                attributes: vec![ListAttribute::NoSelect],
                delimiter,
                mailbox: Mailbox::try_from("").unwrap(),
                extended: vec![],
            })),
            Response::Data(Data::List(ListItem {
                attributes: vec![],
                delimiter: Some(Delimiter::try_from('"').unwrap()),
                mailbox: Mailbox::from_utf8("Entwürfe").unwrap(),
                extended: vec![],
            })),
            Response::Data(Data::Lsub(ListItem {
                attributes: vec![],
                delimiter: None,
                mailbox: Mailbox::Inbox,
                extended: vec![],
            })),
            Response::Data(Data::Status {
                mailbox: Mailbox::try_from("blurdybloop").unwrap(),
                items: vec![
                    StatusItem::Messages(231),
                    StatusItem::UidNext(nz(44292)),
                    StatusItem::HighestModSeq(7011231777),
                ],
            }),
            Response::Data(Data::Search {
                numbers: vec![nz(2), nz(84), nz(882)],
                modseq: None,
            }),
            Response::Data(Data::Search {
                numbers: vec![],
                modseq: None,
            }),
            Response::Data(Data::Search {
                numbers: vec![nz(2), nz(5)],
                modseq: Some(NonZeroU64::new(917162500).unwrap()),
            }),
            Response::Data(Data::ESearch {
                tag: Some(tag("A282")),
                uid: true,
                items: vec![
                    ESearchItem::Min(nz(2)),
                    ESearchItem::Count(3),
                    ESearchItem::All(SequenceSet::try_from("2,10:11").unwrap()),
                ],
            }),
            Response::Data(Data::ESearch {
                tag: Some(tag("A283")),
                uid: false,
                items: vec![],
            }),
            Response::Data(Data::Capability(vec![
                Capability::Imap4Rev1,
                Capability::Idle,
                Capability::Other(Atom::try_from("X-LIFEBOAT").unwrap()),
            ])),
            Response::Data(Data::Enabled(vec![Capability::CondStore])),
            Response::Data(Data::Namespace {
                personal: vec![NamespaceDescription {
                    prefix: s(""),
                    delimiter,
                }],
                other_users: vec![],
                shared: vec![],
            }),
            Response::Data(Data::Id(Some(vec![
                (s("name"), Some(s("Lifeboat"))),
                (s("support-url"), None),
            ]))),
            Response::Data(Data::Id(None)),
            // RFC 5258 §4 (CHILDINFO), RFC 9051 §6.3.9 (OLDNAME)
            Response::Data(Data::List(ListItem {
                attributes: vec![ListAttribute::NonExistent],
                delimiter,
                mailbox: Mailbox::try_from("Foo").unwrap(),
                extended: vec![ListExtendedItem::ChildInfo(vec![
                    ListSelectOption::Subscribed,
                ])],
            })),
            Response::Data(Data::List(ListItem {
                attributes: vec![],
                delimiter,
                mailbox: Mailbox::try_from("New").unwrap(),
                extended: vec![ListExtendedItem::OldName(Mailbox::try_from("Old").unwrap())],
            })),
            // RFC 7162 §3.2.10
            Response::Data(Data::Vanished {
                earlier: true,
                uids: SequenceSet::try_from("41,43:116").unwrap(),
            }),
            Response::Data(Data::Vanished {
                earlier: false,
                uids: SequenceSet::try_from("405").unwrap(),
            }),
            // RFC 8438 §3, RFC 9051 §6.3.11
            Response::Data(Data::Status {
                mailbox: Mailbox::Inbox,
                items: vec![StatusItem::Size(44_421), StatusItem::Deleted(2)],
            }),
            Response::Data(Data::Capability(vec![
                Capability::Imap4Rev1,
                Capability::Imap4Rev2,
                Capability::QResync,
                Capability::Binary,
                Capability::SearchRes,
                Capability::StatusSize,
                Capability::Utf8Accept,
                Capability::CompressDeflate,
            ])),
            Response::Continue(Continue::Text {
                code: None,
                text: text("OK"),
            }),
            Response::Continue(Continue::Base64(Cow::Borrowed(b""))),
            Response::Continue(Continue::Base64(Cow::Borrowed(b"challenge"))),
        ],
        r#"
        S: * FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Forwarded)
        S: * 172 EXISTS
        S: * 1 RECENT
        S: * 3 EXPUNGE
        S: * LIST (\HasNoChildren \Sent) "/" "Sent Items"
        S: * LIST (\Noselect) "/" ""
        S: * LIST () "\"" Entw&APw-rfe
        S: * LSUB () NIL INBOX
        S: * STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292 HIGHESTMODSEQ 7011231777)
        S: * SEARCH 2 84 882
        S: * SEARCH
        S: * SEARCH 2 5 (MODSEQ 917162500)
        S: * ESEARCH (TAG "A282") UID MIN 2 COUNT 3 ALL 2,10:11
        S: * ESEARCH (TAG "A283")
        S: * CAPABILITY IMAP4rev1 IDLE X-LIFEBOAT
        S: * ENABLED CONDSTORE
        S: * NAMESPACE (("" "/")) NIL NIL
        S: * ID ("name" "Lifeboat" "support-url" NIL)
        S: * ID NIL
        S: * LIST (\NonExistent) "/" Foo ("CHILDINFO" ("SUBSCRIBED"))
        S: * LIST () "/" New ("OLDNAME" (Old))
        S: * VANISHED (EARLIER) 41,43:116
        S: * VANISHED 405
        S: * STATUS INBOX (SIZE 44421 DELETED 2)
        S: * CAPABILITY IMAP4rev1 IMAP4rev2 QRESYNC BINARY SEARCHRES STATUS=SIZE UTF8=ACCEPT COMPRESS=DEFLATE
        S: + OK
        S: + 
        S: + Y2hhbGxlbmdl
        "#,
    );
}

fn address<'a>(name: Option<&'a str>, mailbox: &'a str, host: &'a str) -> Address<'a> {
    Address {
        name: name.map(s),
        adl: None,
        mailbox: Some(s(mailbox)),
        host: Some(s(host)),
    }
}

fn text_plain(size_bytes: u32, lines: u32) -> BodyStructure<'static> {
    BodyStructure::Single {
        body: Body {
            basic: BasicFields {
                parameters: vec![(s("CHARSET"), s("US-ASCII"))],
                id: None,
                description: None,
                content_transfer_encoding: s("7BIT"),
                size_bytes,
            },
            specific: SpecificFields::Text {
                subtype: s("PLAIN"),
                lines,
            },
        },
        extension: SinglePartExtension::default(),
    }
}

#[test]
fn fetch_data() {
    // RFC 3501 §8 sample FETCH response.
    let envelope = Envelope {
        date: Some(s("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)")),
        subject: Some(s("IMAP4rev1 WG mtg summary and minutes")),
        from: vec![address(Some("Terry Gray"), "gray", "cac.washington.edu")],
        sender: vec![address(Some("Terry Gray"), "gray", "cac.washington.edu")],
        reply_to: vec![address(Some("Terry Gray"), "gray", "cac.washington.edu")],
        to: vec![address(None, "imap", "cac.washington.edu")],
        cc: vec![
            address(None, "minutes", "CNRI.Reston.VA.US"),
            address(Some("John Klensin"), "KLENSIN", "MIT.EDU"),
        ],
        bcc: vec![],
        in_reply_to: None,
        message_id: Some(s("<B27397-0100000@cac.washington.edu>")),
    };
    let date = DateTime::new(Date::new(1996, 7, 17).unwrap(), 2, 44, 25, -7 * 60).unwrap();
    assert_transcript(
        &[Response::Data(Data::Fetch {
            sequence_number: nz(12),
            items: vec![
                FetchData::Flags(vec![FlagFetch::Flag(Flag::Seen)]),
                FetchData::InternalDate(date),
                FetchData::Rfc822Size(4286),
                FetchData::Envelope(envelope),
                FetchData::Body(text_plain(3028, 92)),
            ],
        })],
        r#"
        S: * 12 FETCH (FLAGS (\Seen) INTERNALDATE "17-Jul-1996 02:44:25 -0700" RFC822.SIZE 4286 ENVELOPE ("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" "IMAP4rev1 WG mtg summary and minutes" (("Terry Gray" NIL "gray" "cac.washington.edu")) (("Terry Gray" NIL "gray" "cac.washington.edu")) (("Terry Gray" NIL "gray" "cac.washington.edu")) ((NIL NIL "imap" "cac.washington.edu")) ((NIL NIL "minutes" "CNRI.Reston.VA.US")("John Klensin" NIL "KLENSIN" "MIT.EDU")) NIL NIL "<B27397-0100000@cac.washington.edu>") BODY ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 3028 92))
        "#,
    );
}

/// RFC 3516 §4.2: BINARY data as a literal, or a literal8 when it holds NUL;
/// BINARY.SIZE; the response codes of BINARY, COMPRESS and SEARCHRES.
#[test]
fn binary_data_and_extension_codes() {
    let part = Part::new(vec![nz(1), nz(2)]);
    assert_transcript(
        &[
            Response::Data(Data::Fetch {
                sequence_number: nz(3),
                items: vec![
                    FetchData::Binary {
                        part: part.clone(),
                        origin: None,
                        data: Some(Cow::Borrowed(b"a\0b")),
                    },
                    FetchData::Binary {
                        part: None,
                        origin: Some(4),
                        data: Some(Cow::Borrowed(b"text")),
                    },
                    FetchData::BinarySize { part, size: 4711 },
                ],
            }),
            Response::Status(Status::tagged(
                tag("b1"),
                Condition::No,
                Some(Code::UnknownCte),
                text("Cannot decode"),
            )),
            Response::Status(Status::tagged(
                tag("b2"),
                Condition::No,
                Some(Code::CompressionActive),
                text("Already"),
            )),
            Response::Status(Status::tagged(
                tag("b3"),
                Condition::No,
                Some(Code::NotSaved),
                text("Nothing saved"),
            )),
        ],
        "
        S: * 3 FETCH (BINARY[1.2] ~{3}
        S: a\0b BINARY[]<4> {4}
        S: text BINARY.SIZE[1.2] 4711)
        S: b1 NO [UNKNOWN-CTE] Cannot decode
        S: b2 NO [COMPRESSIONACTIVE] Already
        S: b3 NO [NOTSAVED] Nothing saved
        ",
    );
}

#[test]
fn body_structure_with_extensions_and_sections() {
    let attachment = BodyStructure::Single {
        body: Body {
            basic: BasicFields {
                parameters: vec![(s("NAME"), s("a.pdf"))],
                id: Some(s("<part@x>")),
                description: None,
                content_transfer_encoding: s("BASE64"),
                size_bytes: 1024,
            },
            specific: SpecificFields::Basic {
                media_type: s("APPLICATION"),
                subtype: s("PDF"),
            },
        },
        extension: SinglePartExtension {
            md5: None,
            disposition: Some(Disposition {
                kind: s("attachment"),
                parameters: vec![(s("filename"), s("a.pdf"))],
            }),
            language: vec![s("en"), s("de")],
            location: None,
        },
    };
    let inner = BodyStructure::Single {
        body: Body {
            basic: BasicFields {
                parameters: vec![],
                id: None,
                description: None,
                content_transfer_encoding: s("7BIT"),
                size_bytes: 300,
            },
            specific: SpecificFields::Message {
                envelope: Box::default(),
                body_structure: Box::new(text_plain(100, 4)),
                lines: 10,
            },
        },
        extension: SinglePartExtension::default(),
    };
    let mixed = BodyStructure::Multi {
        bodies: vec![text_plain(10, 1), attachment, inner],
        subtype: s("MIXED"),
        extension: MultiPartExtension {
            parameters: vec![(s("BOUNDARY"), s("xyz"))],
            disposition: None,
            language: vec![],
            location: None,
        },
    };
    let message = b"Subject: hi\r\n\r\nbody\0with NUL\r\n";
    assert_transcript(
        &[
            Response::Data(Data::Fetch {
                sequence_number: nz(1),
                items: vec![
                    FetchData::Uid(nz(42)),
                    FetchData::ModSeq(NonZeroU64::new(12121231000).unwrap()),
                    FetchData::BodyStructure(mixed.clone()),
                ],
            }),
            Response::Data(Data::Fetch {
                sequence_number: nz(1),
                items: vec![FetchData::Body(mixed)],
            }),
        ],
        r#"
        S: * 1 FETCH (UID 42 MODSEQ (12121231000) BODYSTRUCTURE (("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 10 1 NIL NIL NIL NIL)("APPLICATION" "PDF" ("NAME" "a.pdf") "<part@x>" NIL "BASE64" 1024 NIL ("attachment" ("filename" "a.pdf")) ("en" "de") NIL)("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 300 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 100 4 NIL NIL NIL NIL) 10 NIL NIL NIL NIL) "MIXED" ("BOUNDARY" "xyz") NIL NIL NIL))
        S: * 1 FETCH (BODY (("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 10 1)("APPLICATION" "PDF" ("NAME" "a.pdf") "<part@x>" NIL "BASE64" 1024)("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 300 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 100 4) 10) "MIXED"))
        "#,
    );

    let section = Section::HeaderFields(None, vec![s("From"), s("Subject Line")]);
    let response = Response::Data(Data::Fetch {
        sequence_number: nz(2),
        items: vec![
            FetchData::BodySection {
                section: Some(section),
                origin: None,
                data: Some(Cow::Borrowed(b"From: a\r\n\r\n")),
            },
            FetchData::BodySection {
                section: None,
                origin: Some(10),
                data: Some(Cow::Borrowed(message)),
            },
            FetchData::BodySection {
                section: Some(Section::Mime(Part::new(vec![nz(1), nz(2)]).unwrap())),
                origin: None,
                data: None,
            },
            FetchData::Rfc822Text(Some(Cow::Borrowed(b""))),
        ],
    });
    let mut expected = b"* 2 FETCH (BODY[HEADER.FIELDS (From \"Subject Line\")] {11}\r\nFrom: a\r\n\r\n BODY[]<10> {30}\r\n".to_vec();
    expected.extend_from_slice(message);
    expected.extend_from_slice(b" BODY[1.2.MIME] NIL RFC822.TEXT \"\")\r\n");
    assert_eq!(
        String::from_utf8_lossy(&response.to_bytes()),
        String::from_utf8_lossy(&expected)
    );
}

#[test]
fn strings_take_the_form_their_content_needs() {
    let list = |name: &[u8]| {
        Response::Data(Data::Lsub(ListItem {
            attributes: vec![],
            delimiter: None,
            mailbox: Mailbox::try_from(name.to_vec()).unwrap(),
            extended: vec![],
        }))
        .to_bytes()
    };
    assert_eq!(list(b"plain"), b"* LSUB () NIL plain\r\n");
    assert_eq!(list(b"with space"), b"* LSUB () NIL \"with space\"\r\n");
    assert_eq!(list(b"q\"uo\\te"), b"* LSUB () NIL \"q\\\"uo\\\\te\"\r\n");
    assert_eq!(
        list("ünï".as_bytes()),
        "* LSUB () NIL {5}\r\nünï\r\n".as_bytes()
    );
    assert_eq!(list(b"NIL"), b"* LSUB () NIL NIL\r\n");
    let long = vec![b'a'; 1000];
    assert!(list(&long).starts_with(b"* LSUB () NIL aaaa"));
    let id = |value: Vec<u8>| {
        Response::Data(Data::Id(Some(vec![(
            s("k"),
            Some(IString::try_from(value).unwrap()),
        )])))
        .to_bytes()
    };
    assert!(id(vec![b' '; 1024]).starts_with(b"* ID (\"k\" \"  "));
    assert!(id(vec![b' '; 1025]).starts_with(b"* ID (\"k\" {1025}\r\n  "));
    assert_eq!(id(b"a\r\nb".to_vec()), b"* ID (\"k\" {4}\r\na\r\nb)\r\n");
}

#[test]
fn deep_body_structures_are_cut_off() {
    let mut structure = text_plain(1, 1);
    for _ in 0..10_000 {
        structure = BodyStructure::Multi {
            bodies: vec![structure],
            subtype: s("MIXED"),
            extension: MultiPartExtension::default(),
        };
    }
    // Runs on a small stack: the encoder's recursion is bounded.
    let handle = std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(move || {
            let response = Response::Data(Data::Fetch {
                sequence_number: nz(1),
                items: vec![FetchData::BodyStructure(structure)],
            });
            let bytes = response.to_bytes();
            // Dropping 10 000 nested values recursively would overflow the stack.
            let Response::Data(Data::Fetch { mut items, .. }) = response else {
                unreachable!()
            };
            let Some(FetchData::BodyStructure(mut current)) = items.pop() else {
                unreachable!()
            };
            while let BodyStructure::Multi { mut bodies, .. } = current {
                current = bodies.pop().unwrap();
            }
            bytes
        })
        .unwrap();
    let bytes = handle.join().unwrap();
    let opened = bytes.iter().filter(|&&byte| byte == b'(').count();
    let closed = bytes.iter().filter(|&&byte| byte == b')').count();
    assert_eq!(opened, closed);
    assert!(opened < 200, "{opened}");
    assert!(bytes
        .windows(14)
        .any(|window| window == b"\"OCTET-STREAM\""));
}
