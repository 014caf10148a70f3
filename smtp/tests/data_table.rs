//! The DATA decoder tested as ARCHITECTURE.md §6 asks: a table of bodies and expected
//! results (including the SMTP smuggling payloads of CVE-2023-51764), the same table
//! replayed in chunks of 1, 2, 4 … 512 bytes, and a round trip through `encode_data`.

use lifeboat_smtp::parse::check::{check_data_round_trip, check_data_stream, chunks, decode_data};
use lifeboat_smtp::parse::{DataDecoder, DataError, DataStatus};

const MAX: u64 = 1 << 20;

fn end(consumed: usize, outcome: Result<u64, DataError>) -> DataStatus {
    DataStatus::End { consumed, outcome }
}

/// (body as sent after the DATA line, size limit, expected status, expected output)
fn table() -> Vec<(Vec<u8>, u64, DataStatus, Vec<u8>)> {
    let mut cases = Vec::new();
    let mut case = |input: &[u8], max: u64, status: DataStatus, out: &[u8]| {
        cases.push((input.to_vec(), max, status, out.to_vec()));
    };

    // Accepted bodies.
    case(b"Hello\r\n.\r\n", MAX, end(10, Ok(7)), b"Hello\r\n");
    case(b".\r\n", MAX, end(3, Ok(0)), b"");
    case(b"\r\n.\r\n", MAX, end(5, Ok(2)), b"\r\n");
    case(b"..\r\n.\r\n", MAX, end(7, Ok(3)), b".\r\n");
    case(
        b"a\r\n..b\r\n.c\r\n...\r\n.\r\n",
        MAX,
        end(20, Ok(14)),
        b"a\r\n.b\r\nc\r\n..\r\n",
    );
    case(
        b"Subject: x\r\n\r\nbody . with dots.\r\n.\r\nQUIT\r\n",
        MAX,
        end(36, Ok(33)),
        b"Subject: x\r\n\r\nbody . with dots.\r\n",
    );
    case(
        "caf\u{e9} \u{1f600}\r\n.\r\n".as_bytes(),
        MAX,
        end(15, Ok(12)),
        "caf\u{e9} \u{1f600}\r\n".as_bytes(),
    );
    // The terminator followed by pipelined commands: only the body is consumed.
    case(
        b"x\r\n.\r\nMAIL FROM:<a@b.c>\r\n",
        MAX,
        end(6, Ok(3)),
        b"x\r\n",
    );

    // Not yet complete.
    case(b"Hello\r\n", MAX, DataStatus::NeedMore, b"Hello\r\n");
    case(b"Hello\r\n.", MAX, DataStatus::NeedMore, b"Hello\r\n");
    case(b"Hello\r\n.\r", MAX, DataStatus::NeedMore, b"Hello\r\n");
    case(b"", MAX, DataStatus::NeedMore, b"");

    // Bare line endings and NUL: refused, and the real end of data is still found.
    case(
        b"a\nb\r\n.\r\n",
        MAX,
        end(8, Err(DataError::BareLineFeed)),
        b"a",
    );
    case(
        b"a\rb\r\n.\r\n",
        MAX,
        end(8, Err(DataError::BareCarriageReturn)),
        b"a\r",
    );
    case(
        b"abc\r\r\n.\r\n",
        MAX,
        end(9, Err(DataError::BareCarriageReturn)),
        b"abc\r",
    );
    case(b"a\0b\r\n.\r\n", MAX, end(8, Err(DataError::Nul)), b"a");
    case(b"\n.\r\n", MAX, DataStatus::NeedMore, b"");
    // SMTP smuggling (CVE-2023-51764): "<LF>.<CRLF>", "<CR>.<CRLF>", "<CRLF>.<LF>",
    // "<LF>.<LF>" and "<CR>.<CR>" end nothing; what follows them is message data,
    // and only the real "<CRLF>.<CRLF>" ends it.
    let smuggled =
        b"MAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\nforged\r\n";
    for (separator, error, kept) in [
        (&b"\n.\r\n"[..], DataError::BareLineFeed, &b"Hi\r\n"[..]),
        (b"\r.\r\n", DataError::BareCarriageReturn, b"Hi\r\n\r"),
        (b"\r\n.\n", DataError::BareLineFeed, b"Hi\r\n\r\n"),
        (b"\n.\n", DataError::BareLineFeed, b"Hi\r\n"),
        (b"\r.\r", DataError::BareCarriageReturn, b"Hi\r\n\r"),
        (b"\r\n.\r", DataError::BareCarriageReturn, b"Hi\r\n\r\n"),
    ] {
        let mut input = b"Hi\r\n".to_vec();
        input.extend_from_slice(separator);
        input.extend_from_slice(smuggled);
        input.extend_from_slice(b".\r\nQUIT\r\n");
        let consumed = input.len() - b"QUIT\r\n".len();
        case(&input, MAX, end(consumed, Err(error)), kept);
    }
    // A smuggling attempt where the "end" comes first in the body.
    case(
        b"\n.\r\nRSET\r\n.\r\n",
        MAX,
        end(13, Err(DataError::BareLineFeed)),
        b"",
    );
    // After a failure, CR runs still find the end: "\r\r\n.\r\n".
    case(
        b"a\nb\r\r\n.\r\n",
        MAX,
        end(9, Err(DataError::BareLineFeed)),
        b"a",
    );
    case(
        b"a\nb\r\n.\r\r\n.\r\n",
        MAX,
        end(12, Err(DataError::BareLineFeed)),
        b"a",
    );

    // Size limit: counted after un-stuffing; exactly the limit passes.
    case(b"123\r\n.\r\n", 5, end(8, Ok(5)), b"123\r\n");
    case(b"..\r\n.\r\n", 3, end(7, Ok(3)), b".\r\n");
    case(
        b"123456\r\n.\r\n",
        5,
        end(11, Err(DataError::TooBig)),
        b"12345",
    );
    case(
        b"1234\r\n.\r\n",
        5,
        end(9, Err(DataError::TooBig)),
        b"1234\r",
    );
    // The first failure wins: too big before the bare LF, bare LF before too big.
    case(
        b"1234567\n\r\n.\r\n",
        5,
        end(13, Err(DataError::TooBig)),
        b"12345",
    );
    case(
        b"12\n34567\r\n.\r\n",
        5,
        end(13, Err(DataError::BareLineFeed)),
        b"12",
    );
    case(b"x\r\n.\r\n", 0, end(6, Err(DataError::TooBig)), b"");
    case(b".\r\n", 0, end(3, Ok(0)), b"");
    cases
}

#[test]
fn table_whole() {
    for (input, max, status, out) in table() {
        let result = decode_data([input.as_slice()], max);
        assert_eq!(
            result,
            (status, out),
            "input {:?}",
            String::from_utf8_lossy(&input)
        );
    }
}

#[test]
fn table_in_chunks() {
    for (input, max, status, out) in table() {
        for shift in 0..=9 {
            let size = 1usize << shift;
            let result = decode_data(chunks(&input, &[size]), max);
            assert_eq!(
                result,
                (status, out.clone()),
                "input {:?} in chunks of {size}",
                String::from_utf8_lossy(&input)
            );
        }
    }
}

#[test]
fn table_against_reference() {
    for (input, ..) in table() {
        // The fuzz check takes the limit from its first byte: 0 is unlimited, n is
        // 4^n. Run every case through it with each setting.
        for control in 0..8u8 {
            let mut fuzz_input = vec![control];
            fuzz_input.extend_from_slice(&input);
            check_data_stream(&fuzz_input);
        }
    }
}

#[test]
fn round_trip() {
    for (_, _, status, out) in table() {
        if let DataStatus::End { outcome: Ok(_), .. } = status {
            check_data_round_trip(&out);
        }
    }
    check_data_round_trip(b".\r\n..\r\n.x\r\n\r\n");
}

#[test]
fn error_is_visible_before_the_end() {
    let mut decoder = DataDecoder::new(MAX);
    let mut out = Vec::new();
    assert_eq!(decoder.decode(b"a\nb", &mut out), DataStatus::NeedMore);
    assert_eq!(decoder.error(), Some(DataError::BareLineFeed));
    assert!(!decoder.is_done());
    assert_eq!(
        decoder.decode(b"\r\n.\r\nNOOP\r\n", &mut out),
        end(5, Err(DataError::BareLineFeed))
    );
    let (code, enhanced, _) = DataError::BareLineFeed.reply();
    assert_eq!((code.get(), enhanced.to_string().as_str()), (554, "5.6.0"));
    let (code, enhanced, _) = DataError::TooBig.reply();
    assert_eq!((code.get(), enhanced.to_string().as_str()), (552, "5.3.4"));
}

#[test]
fn nul_can_be_allowed() {
    let mut decoder = DataDecoder::new(MAX).with_nul_allowed(true);
    let mut out = Vec::new();
    assert_eq!(decoder.decode(b"a\0b\r\n.\r\n", &mut out), end(8, Ok(5)));
    assert_eq!(out, b"a\0b\r\n");
}
