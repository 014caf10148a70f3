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
//!
//! The checks live in `lifeboat_smtp::session::check`, which the `smtp_session` fuzz
//! target runs too.

use lifeboat_smtp::session::check::run;
use proptest::prelude::*;

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
