//! SMTP command lines (RFC 5321 §4.1.1 and the extensions listed in the module docs):
//! the [`Command`] value, its decoder [`decode_command`] and its encoder
//! [`Command::encode`].

use std::fmt;

use lifeboat_net::wire::{base64_encode, decode_line};
use nom::branch::alt;
use nom::bytes::streaming::{tag, tag_no_case, take_while, take_while1};
use nom::combinator::{opt, peek, verify};
use nom::multi::many1_count;
use nom::sequence::preceded;
use nom::Parser;

use super::address::{forward_path, host, reverse_path, ForwardPath, Host, ReversePath};
use super::auth::{base64, sasl_mech, Mechanism};
use super::error::{DecodeError, Reason};
use super::limits::CHUNK_SIZE_DIGITS_MAX;
use super::parameters::{mail_parameters, rcpt_parameters, MailParameters, RcptParameters};
use super::primitives::{
    end_of_line, failure, is_alpha, is_digit, is_text_char, parse_all, sp, utf8, Failure, Res,
};

/// The free text argument of NOOP, HELP, VRFY and EXPN: non-empty, visible characters,
/// spaces and tabs (UTF-8 allowed), not ending in white space.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Text(String);

impl Text {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for Text {
    type Error = Reason;

    fn try_from(text: &str) -> Result<Self, Reason> {
        parse_all(text.as_bytes(), string)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One SMTP command.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Command {
    /// `EHLO host` (RFC 5321 §4.1.1.1).
    Ehlo {
        /// The client's name for itself.
        host: Host,
    },
    /// `HELO host` (RFC 5321 §4.1.1.1).
    Helo {
        /// The client's name for itself.
        host: Host,
    },
    /// `MAIL FROM:<path> [parameters]` (RFC 5321 §4.1.1.2).
    Mail {
        /// The reverse-path.
        from: ReversePath,
        /// The ESMTP parameters.
        parameters: MailParameters,
    },
    /// `RCPT TO:<path> [parameters]` (RFC 5321 §4.1.1.3).
    Rcpt {
        /// The forward-path.
        to: ForwardPath,
        /// The ESMTP parameters.
        parameters: RcptParameters,
    },
    /// `DATA` (RFC 5321 §4.1.1.4).
    Data,
    /// `BDAT size [LAST]` (RFC 3030 §2): the next `chunk_bytes` octets are message data.
    Bdat {
        /// Size of the chunk that follows the line.
        chunk_bytes: u64,
        /// True for the last chunk.
        last: bool,
    },
    /// `RSET` (RFC 5321 §4.1.1.5).
    Rset,
    /// `NOOP [text]` (RFC 5321 §4.1.1.9).
    Noop {
        /// Ignored argument.
        text: Option<Text>,
    },
    /// `QUIT` (RFC 5321 §4.1.1.10).
    Quit,
    /// `VRFY text` (RFC 5321 §4.1.1.6).
    Vrfy {
        /// The user name or mailbox to verify.
        text: Text,
    },
    /// `EXPN text` (RFC 5321 §4.1.1.7).
    Expn {
        /// The list to expand.
        text: Text,
    },
    /// `HELP [topic]` (RFC 5321 §4.1.1.8).
    Help {
        /// The topic asked about.
        topic: Option<Text>,
    },
    /// `STARTTLS` (RFC 3207 §4).
    StartTls,
    /// `AUTH mechanism [initial-response]` (RFC 4954 §4).
    Auth {
        /// The SASL mechanism.
        mechanism: Mechanism,
        /// The decoded initial response; `Some(empty)` for `=`.
        initial_response: Option<Vec<u8>>,
    },
}

impl Command {
    /// The command word, upper case.
    pub fn verb(&self) -> &'static str {
        match self {
            Command::Ehlo { .. } => "EHLO",
            Command::Helo { .. } => "HELO",
            Command::Mail { .. } => "MAIL",
            Command::Rcpt { .. } => "RCPT",
            Command::Data => "DATA",
            Command::Bdat { .. } => "BDAT",
            Command::Rset => "RSET",
            Command::Noop { .. } => "NOOP",
            Command::Quit => "QUIT",
            Command::Vrfy { .. } => "VRFY",
            Command::Expn { .. } => "EXPN",
            Command::Help { .. } => "HELP",
            Command::StartTls => "STARTTLS",
            Command::Auth { .. } => "AUTH",
        }
    }

    /// Append the command line, CRLF included, in the form RFC 5321 recommends (upper
    /// case verbs and keywords, least quoting). Decoding the output gives back an equal
    /// command.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Command::Ehlo { host } | Command::Helo { host } => {
                out.extend_from_slice(self.verb().as_bytes());
                out.push(b' ');
                out.extend_from_slice(host.to_string().as_bytes());
            }
            Command::Mail { from, parameters } => {
                out.extend_from_slice(b"MAIL FROM:");
                from.encode(out);
                parameters.encode(out);
            }
            Command::Rcpt { to, parameters } => {
                out.extend_from_slice(b"RCPT TO:");
                to.encode(out);
                parameters.encode(out);
            }
            Command::Bdat { chunk_bytes, last } => {
                out.extend_from_slice(format!("BDAT {chunk_bytes}").as_bytes());
                if *last {
                    out.extend_from_slice(b" LAST");
                }
            }
            Command::Noop { text: Some(text) }
            | Command::Vrfy { text }
            | Command::Expn { text }
            | Command::Help { topic: Some(text) } => {
                out.extend_from_slice(self.verb().as_bytes());
                out.push(b' ');
                out.extend_from_slice(text.as_str().as_bytes());
            }
            Command::Auth {
                mechanism,
                initial_response,
            } => {
                out.extend_from_slice(b"AUTH ");
                out.extend_from_slice(mechanism.as_str().as_bytes());
                match initial_response {
                    Some(response) if response.is_empty() => out.extend_from_slice(b" ="),
                    Some(response) => {
                        out.push(b' ');
                        base64_encode(response, out);
                    }
                    None => {}
                }
            }
            Command::Data
            | Command::Rset
            | Command::Noop { text: None }
            | Command::Quit
            | Command::Help { topic: None }
            | Command::StartTls => out.extend_from_slice(self.verb().as_bytes()),
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// Decode the first command line of `input`.
///
/// `line_bytes_max` bounds the line including its CRLF; RFC 5321 §4.5.3.1.4 requires
/// at least [`COMMAND_LINE_BYTES_MAX`](super::limits::COMMAND_LINE_BYTES_MAX) (512).
/// On success returns the command and the number of bytes it took; the rest of `input`
/// is the next command (RFC 2920 pipelining) or, after BDAT, the chunk. See
/// [`DecodeError`] for what to do on each error.
pub fn decode_command(
    input: &[u8],
    line_bytes_max: usize,
) -> Result<(Command, usize), DecodeError> {
    decode_line(input, line_bytes_max, command)
}

/// `command = ehlo / helo / mail / rcpt / data / rset / vrfy / expn / help / noop /
/// quit` (RFC 5321 §4.1.1) plus `bdat-cmd` (RFC 3030 §2), `starttls` (RFC 3207 §4) and
/// `auth-command` (RFC 4954 §4). Command words are case-insensitive (§2.4).
fn command(input: &[u8]) -> Res<'_, Command> {
    let verb = match take_while1::<_, _, Failure<Reason>>(is_alpha).parse(input) {
        Ok((_, verb)) => verb,
        Err(_) => return failure(Reason::UnknownCommand),
    };
    let is = |word: &[u8]| verb.eq_ignore_ascii_case(word);
    if is(b"EHLO") {
        ehlo(input)
    } else if is(b"HELO") {
        helo(input)
    } else if is(b"MAIL") {
        mail(input)
    } else if is(b"RCPT") {
        rcpt(input)
    } else if is(b"DATA") {
        data(input)
    } else if is(b"BDAT") {
        bdat_cmd(input)
    } else if is(b"RSET") {
        rset(input)
    } else if is(b"NOOP") {
        noop(input)
    } else if is(b"QUIT") {
        quit(input)
    } else if is(b"VRFY") {
        vrfy(input)
    } else if is(b"EXPN") {
        expn(input)
    } else if is(b"HELP") {
        help(input)
    } else if is(b"STARTTLS") {
        starttls(input)
    } else if is(b"AUTH") {
        auth_command(input)
    } else {
        failure(Reason::UnknownCommand)
    }
}

/// `ehlo = "EHLO" SP ( Domain / address-literal ) CRLF` — RFC 5321 §4.1.1.1
fn ehlo(input: &[u8]) -> Res<'_, Command> {
    (tag_no_case(&b"EHLO"[..]), sp, host, end_of_line)
        .map(|(_, _, host, _)| Command::Ehlo { host })
        .parse(input)
}

/// `helo = "HELO" SP Domain CRLF` — RFC 5321 §4.1.1.1. An address literal is accepted
/// as well, as for EHLO: clients without a name send one.
fn helo(input: &[u8]) -> Res<'_, Command> {
    (tag_no_case(&b"HELO"[..]), sp, host, end_of_line)
        .map(|(_, _, host, _)| Command::Helo { host })
        .parse(input)
}

/// `mail = "MAIL FROM:" Reverse-path [SP Mail-parameters] CRLF` — RFC 5321 §4.1.1.2.
/// A space after the colon is accepted: the grammar has none, but many clients send
/// one. A non-ASCII reverse-path needs the SMTPUTF8 parameter (RFC 6531 §3.4).
fn mail(input: &[u8]) -> Res<'_, Command> {
    let (rest, _) = tag_no_case(&b"MAIL FROM:"[..]).parse(input)?;
    let (rest, _) = opt(sp).parse(rest)?;
    let (rest, from) = reverse_path(rest)?;
    let (rest, parameters) = opt(preceded(many1_count(sp), mail_parameters)).parse(rest)?;
    let (rest, _) = end_of_line(rest)?;
    let parameters = parameters.unwrap_or_default();
    if !from.is_ascii() && !parameters.smtputf8 {
        return failure(Reason::Utf8WithoutSmtpUtf8);
    }
    Ok((rest, Command::Mail { from, parameters }))
}

/// `rcpt = "RCPT TO:" ( "<Postmaster@" Domain ">" / "<Postmaster>" / Forward-path )
/// [SP Rcpt-parameters] CRLF` — RFC 5321 §4.1.1.3. A space after the colon is accepted
/// as for MAIL. Whether a non-ASCII forward-path is allowed depends on the MAIL command
/// of the transaction, so the session checks it ([`ForwardPath::is_ascii`]).
fn rcpt(input: &[u8]) -> Res<'_, Command> {
    let (rest, _) = tag_no_case(&b"RCPT TO:"[..]).parse(input)?;
    let (rest, _) = opt(sp).parse(rest)?;
    let (rest, to) = forward_path(rest)?;
    let (rest, parameters) = opt(preceded(many1_count(sp), rcpt_parameters)).parse(rest)?;
    let (rest, _) = end_of_line(rest)?;
    let parameters = parameters.unwrap_or_default();
    Ok((rest, Command::Rcpt { to, parameters }))
}

/// `data = "DATA" CRLF` — RFC 5321 §4.1.1.4
fn data(input: &[u8]) -> Res<'_, Command> {
    (tag_no_case(&b"DATA"[..]), end_of_line)
        .map(|_| Command::Data)
        .parse(input)
}

/// `chunk-size ::= 1*DIGIT` — RFC 3030 §2, at most 20 digits and 64 bits.
fn chunk_size(input: &[u8]) -> Res<'_, u64> {
    let (rest, digits) = take_while1(is_digit).parse(input)?;
    if digits.len() > CHUNK_SIZE_DIGITS_MAX {
        return failure(Reason::NumberTooLarge);
    }
    let number = digits.iter().try_fold(0u64, |number, &digit| {
        number.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
    });
    match number {
        Some(number) => Ok((rest, number)),
        None => failure(Reason::NumberTooLarge),
    }
}

/// `bdat-cmd ::= "BDAT" SP chunk-size [ SP end-marker ] CR LF` with
/// `end-marker ::= "LAST"` — RFC 3030 §2
fn bdat_cmd(input: &[u8]) -> Res<'_, Command> {
    (
        tag_no_case(&b"BDAT"[..]),
        sp,
        chunk_size,
        opt(preceded(sp, tag_no_case(&b"LAST"[..]))),
        end_of_line,
    )
        .map(|(_, _, chunk_bytes, last, _)| Command::Bdat {
            chunk_bytes,
            last: last.is_some(),
        })
        .parse(input)
}

/// `rset = "RSET" CRLF` — RFC 5321 §4.1.1.5
fn rset(input: &[u8]) -> Res<'_, Command> {
    (tag_no_case(&b"RSET"[..]), end_of_line)
        .map(|_| Command::Rset)
        .parse(input)
}

/// `String = Atom / Quoted-string` — RFC 5321 §4.1.2, read leniently as free text up
/// to the end of the line (less trailing white space): VRFY and EXPN arguments are
/// commonly mailboxes (`user@example.com`), which are neither.
fn string(input: &[u8]) -> Res<'_, Text> {
    let (_, run) = take_while(is_text_char).parse(input)?;
    let trailing = run
        .iter()
        .rev()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    let text = &run[..run.len() - trailing];
    if text.is_empty() {
        return Err(nom::Err::Error(Failure(Reason::InvalidText)));
    }
    let text = utf8(text).map_err(nom::Err::Failure)?;
    Ok((&input[text.len()..], Text(text.to_owned())))
}

/// `noop = "NOOP" [ SP String ] CRLF` — RFC 5321 §4.1.1.9
fn noop(input: &[u8]) -> Res<'_, Command> {
    (
        tag_no_case(&b"NOOP"[..]),
        opt(preceded(sp, string)),
        end_of_line,
    )
        .map(|(_, text, _)| Command::Noop { text })
        .parse(input)
}

/// `quit = "QUIT" CRLF` — RFC 5321 §4.1.1.10
fn quit(input: &[u8]) -> Res<'_, Command> {
    (tag_no_case(&b"QUIT"[..]), end_of_line)
        .map(|_| Command::Quit)
        .parse(input)
}

/// `vrfy = "VRFY" SP String CRLF` — RFC 5321 §4.1.1.6
fn vrfy(input: &[u8]) -> Res<'_, Command> {
    (tag_no_case(&b"VRFY"[..]), sp, string, end_of_line)
        .map(|(_, _, text, _)| Command::Vrfy { text })
        .parse(input)
}

/// `expn = "EXPN" SP String CRLF` — RFC 5321 §4.1.1.7
fn expn(input: &[u8]) -> Res<'_, Command> {
    (tag_no_case(&b"EXPN"[..]), sp, string, end_of_line)
        .map(|(_, _, text, _)| Command::Expn { text })
        .parse(input)
}

/// `help = "HELP" [ SP String ] CRLF` — RFC 5321 §4.1.1.8
fn help(input: &[u8]) -> Res<'_, Command> {
    (
        tag_no_case(&b"HELP"[..]),
        opt(preceded(sp, string)),
        end_of_line,
    )
        .map(|(_, topic, _)| Command::Help { topic })
        .parse(input)
}

/// `starttls = "STARTTLS" CRLF` — RFC 3207 §4
fn starttls(input: &[u8]) -> Res<'_, Command> {
    (tag_no_case(&b"STARTTLS"[..]), end_of_line)
        .map(|_| Command::StartTls)
        .parse(input)
}

/// `initial-response = base64 / "="` — RFC 4954 §4; `=` is the empty response. The
/// base64 branch must not match an empty string, which would read `AUTH PLAIN ` (a
/// trailing space) as an empty response.
fn initial_response(input: &[u8]) -> Res<'_, Vec<u8>> {
    alt((
        (tag(&b"="[..]), peek(end_of_line)).map(|_| Vec::new()),
        verify(base64, |decoded: &[u8]| !decoded.is_empty()),
    ))
    .parse(input)
}

/// `"AUTH" SP sasl-mech [SP initial-response] CRLF` — RFC 4954 §4
fn auth_command(input: &[u8]) -> Res<'_, Command> {
    (
        tag_no_case(&b"AUTH"[..]),
        sp,
        sasl_mech,
        opt(preceded(sp, initial_response)),
        end_of_line,
    )
        .map(|(_, _, mechanism, initial_response, _)| Command::Auth {
            mechanism,
            initial_response,
        })
        .parse(input)
}
