//! POP3 command lines (RFC 1939 §4–§7, RFC 2449 §5, RFC 2595 §4, RFC 5034 §4): the
//! [`Command`] value, its decoder [`decode_command`] and its encoder
//! [`Command::encode`].

use lifeboat_net::wire::{base64_decode, base64_encode, decode_line, is_base64_text};
use nom::bytes::streaming::{tag, take_while1};
use nom::combinator::opt;
use nom::sequence::preceded;
use nom::Parser;

use super::error::{DecodeError, Reason};
use super::limits::{LINE_COUNT_DIGITS_MAX, MESSAGE_NUMBER_DIGITS_MAX};
use super::primitives::{crlf, failure, is_name_char, is_vchar, number, param, sp, Failure, Res};
use super::types::{ApopDigest, Mechanism, MessageNumber, Password, UserName};

/// One POP3 command.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// `USER name` (RFC 1939 §7).
    User {
        /// The mailbox, here the account's address.
        name: UserName,
    },
    /// `PASS string` (RFC 1939 §7).
    Pass {
        /// The password; may contain spaces.
        password: Password,
    },
    /// `APOP name digest` (RFC 1939 §7).
    Apop {
        /// The mailbox.
        name: UserName,
        /// MD5 of the greeting's timestamp and the shared secret.
        digest: ApopDigest,
    },
    /// `AUTH mechanism [initial-response]` (RFC 5034 §4).
    Auth {
        /// The SASL mechanism.
        mechanism: Mechanism,
        /// The decoded initial response; `Some(empty)` for `=`.
        initial_response: Option<Vec<u8>>,
    },
    /// `AUTH` without arguments: list the SASL mechanisms. Not in RFC 5034; sent by
    /// clients written to the drafts before RFC 1734, and answered by common servers.
    AuthMechanisms,
    /// `STLS` (RFC 2595 §4).
    Stls,
    /// `CAPA` (RFC 2449 §5).
    Capa,
    /// `QUIT` (RFC 1939 §4, §6).
    Quit,
    /// `STAT` (RFC 1939 §5).
    Stat,
    /// `LIST [msg]` (RFC 1939 §5).
    List {
        /// One message, or the whole maildrop.
        message: Option<MessageNumber>,
    },
    /// `RETR msg` (RFC 1939 §5).
    Retr {
        /// The message.
        message: MessageNumber,
    },
    /// `DELE msg` (RFC 1939 §5).
    Dele {
        /// The message.
        message: MessageNumber,
    },
    /// `NOOP` (RFC 1939 §5).
    Noop,
    /// `RSET` (RFC 1939 §5).
    Rset,
    /// `TOP msg n` (RFC 1939 §7).
    Top {
        /// The message.
        message: MessageNumber,
        /// Body lines to send after the header.
        lines: u64,
    },
    /// `UIDL [msg]` (RFC 1939 §7).
    Uidl {
        /// One message, or the whole maildrop.
        message: Option<MessageNumber>,
    },
}

/// A command without its arguments: what the session's table of legal commands per
/// state is keyed by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Verb {
    /// `USER`
    User,
    /// `PASS`
    Pass,
    /// `APOP`
    Apop,
    /// `AUTH`
    Auth,
    /// `STLS`
    Stls,
    /// `CAPA`
    Capa,
    /// `QUIT`
    Quit,
    /// `STAT`
    Stat,
    /// `LIST`
    List,
    /// `RETR`
    Retr,
    /// `DELE`
    Dele,
    /// `NOOP`
    Noop,
    /// `RSET`
    Rset,
    /// `TOP`
    Top,
    /// `UIDL`
    Uidl,
}

impl Verb {
    /// Every verb.
    pub const ALL: [Verb; 15] = [
        Verb::User,
        Verb::Pass,
        Verb::Apop,
        Verb::Auth,
        Verb::Stls,
        Verb::Capa,
        Verb::Quit,
        Verb::Stat,
        Verb::List,
        Verb::Retr,
        Verb::Dele,
        Verb::Noop,
        Verb::Rset,
        Verb::Top,
        Verb::Uidl,
    ];

    /// The keyword, upper case.
    pub fn keyword(self) -> &'static str {
        match self {
            Verb::User => "USER",
            Verb::Pass => "PASS",
            Verb::Apop => "APOP",
            Verb::Auth => "AUTH",
            Verb::Stls => "STLS",
            Verb::Capa => "CAPA",
            Verb::Quit => "QUIT",
            Verb::Stat => "STAT",
            Verb::List => "LIST",
            Verb::Retr => "RETR",
            Verb::Dele => "DELE",
            Verb::Noop => "NOOP",
            Verb::Rset => "RSET",
            Verb::Top => "TOP",
            Verb::Uidl => "UIDL",
        }
    }

    /// The verb of a keyword, which is case-insensitive (RFC 1939 §3).
    pub fn from_keyword(keyword: &[u8]) -> Option<Verb> {
        Verb::ALL
            .into_iter()
            .find(|verb| keyword.eq_ignore_ascii_case(verb.keyword().as_bytes()))
    }
}

impl Command {
    /// The command's verb.
    pub fn verb(&self) -> Verb {
        match self {
            Command::User { .. } => Verb::User,
            Command::Pass { .. } => Verb::Pass,
            Command::Apop { .. } => Verb::Apop,
            Command::Auth { .. } | Command::AuthMechanisms => Verb::Auth,
            Command::Stls => Verb::Stls,
            Command::Capa => Verb::Capa,
            Command::Quit => Verb::Quit,
            Command::Stat => Verb::Stat,
            Command::List { .. } => Verb::List,
            Command::Retr { .. } => Verb::Retr,
            Command::Dele { .. } => Verb::Dele,
            Command::Noop => Verb::Noop,
            Command::Rset => Verb::Rset,
            Command::Top { .. } => Verb::Top,
            Command::Uidl { .. } => Verb::Uidl,
        }
    }

    /// Appends the command line, CRLF included, with an upper-case keyword. Decoding
    /// the output gives back an equal command.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.verb().keyword().as_bytes());
        let mut arg = |text: &str| {
            out.push(b' ');
            out.extend_from_slice(text.as_bytes());
        };
        match self {
            Command::User { name } => arg(name.as_str()),
            Command::Pass { password } => arg(password.as_str()),
            Command::Apop { name, digest } => {
                arg(name.as_str());
                arg(digest.as_str());
            }
            Command::Auth {
                mechanism,
                initial_response,
            } => {
                arg(mechanism.as_str());
                match initial_response {
                    Some(response) if response.is_empty() => arg("="),
                    Some(response) => {
                        out.push(b' ');
                        base64_encode(response, out);
                    }
                    None => {}
                }
            }
            Command::List { message: Some(m) }
            | Command::Uidl { message: Some(m) }
            | Command::Retr { message: m }
            | Command::Dele { message: m } => arg(&m.to_string()),
            Command::Top { message, lines } => {
                arg(&message.to_string());
                arg(&lines.to_string());
            }
            Command::AuthMechanisms
            | Command::Stls
            | Command::Capa
            | Command::Quit
            | Command::Stat
            | Command::List { message: None }
            | Command::Noop
            | Command::Rset
            | Command::Uidl { message: None } => {}
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// Decodes the first command line of `input`.
///
/// `line_bytes_max` bounds the line including its CRLF: RFC 2449 §4 allows 255
/// octets ([`COMMAND_LINE_BYTES_MAX`](super::limits::COMMAND_LINE_BYTES_MAX)). On
/// success returns the command and the bytes it took; the rest of `input` is the next
/// command (RFC 2449 §6.6 pipelining). See [`DecodeError`] for what to do on errors.
pub fn decode_command(
    input: &[u8],
    line_bytes_max: usize,
) -> Result<(Command, usize), DecodeError> {
    decode_line(input, line_bytes_max, command)
}

/// `command = keyword *(SP param) CRLF` — RFC 2449 §3, with the arguments of each
/// command as RFC 1939 §4–§7, RFC 2595 §4 and RFC 5034 §4 define them.
fn command(input: &[u8]) -> Res<'_, Command> {
    let (rest, verb) = keyword(input)?;
    match verb {
        Verb::User => user(rest),
        Verb::Pass => pass(rest),
        Verb::Apop => apop(rest),
        Verb::Auth => auth_command(rest),
        Verb::Stls => no_arguments(rest, Command::Stls),
        Verb::Capa => no_arguments(rest, Command::Capa),
        Verb::Quit => no_arguments(rest, Command::Quit),
        Verb::Stat => no_arguments(rest, Command::Stat),
        Verb::Noop => no_arguments(rest, Command::Noop),
        Verb::Rset => no_arguments(rest, Command::Rset),
        Verb::List => optional_msg(rest).map(|(r, message)| (r, Command::List { message })),
        Verb::Uidl => optional_msg(rest).map(|(r, message)| (r, Command::Uidl { message })),
        Verb::Retr => required_msg(rest).map(|(r, message)| (r, Command::Retr { message })),
        Verb::Dele => required_msg(rest).map(|(r, message)| (r, Command::Dele { message })),
        Verb::Top => top(rest),
    }
}

/// `keyword = 3*4VCHAR` — RFC 2449 §3; case-insensitive (RFC 1939 §3). A keyword
/// that is not a known command fails with [`Reason::UnknownCommand`].
fn keyword(input: &[u8]) -> Res<'_, Verb> {
    match take_while1::<_, _, Failure<Reason>>(is_vchar).parse(input) {
        Ok((rest, word)) => match Verb::from_keyword(word) {
            Some(verb) => Ok((rest, verb)),
            None => failure(Reason::UnknownCommand),
        },
        Err(_) => failure(Reason::UnknownCommand),
    }
}

/// A command without arguments: `CRLF` right after the keyword.
fn no_arguments(input: &[u8], command: Command) -> Res<'_, Command> {
    let (rest, ()) = crlf(input)?;
    Ok((rest, command))
}

/// `msg`: a message number, `1*DIGIT` counting from 1 — RFC 1939 §5. Message 0 fails
/// with [`Reason::InvalidMessageNumber`].
fn msg(input: &[u8]) -> Res<'_, MessageNumber> {
    let (rest, value) = number(input, MESSAGE_NUMBER_DIGITS_MAX)?;
    match MessageNumber::try_from(value) {
        Ok(message) => Ok((rest, message)),
        Err(reason) => failure(reason),
    }
}

/// `[SP msg] CRLF`: the argument of `LIST [msg]` and `UIDL [msg]` — RFC 1939 §5, §7.
fn optional_msg(input: &[u8]) -> Res<'_, Option<MessageNumber>> {
    let (rest, message) = opt(preceded(sp, msg)).parse(input)?;
    let (rest, ()) = crlf(rest)?;
    Ok((rest, message))
}

/// `SP msg CRLF`: the argument of `RETR msg` and `DELE msg` — RFC 1939 §5.
fn required_msg(input: &[u8]) -> Res<'_, MessageNumber> {
    let (rest, message) = preceded(sp, msg).parse(input)?;
    let (rest, ()) = crlf(rest)?;
    Ok((rest, message))
}

/// `TOP msg n`, `n` a non-negative number of lines — RFC 1939 §7.
fn top(input: &[u8]) -> Res<'_, Command> {
    let (rest, message) = preceded(sp, msg).parse(input)?;
    let (rest, lines) = preceded(sp, |i| number(i, LINE_COUNT_DIGITS_MAX)).parse(rest)?;
    let (rest, ()) = crlf(rest)?;
    Ok((rest, Command::Top { message, lines }))
}

/// `name`: the mailbox argument of `USER name` and `APOP name digest` — RFC 1939 §7,
/// a `param` (RFC 2449 §3) widened to UTF-8.
fn name(input: &[u8]) -> Res<'_, UserName> {
    let (rest, bytes) = take_while1(is_name_char).parse(input)?;
    match UserName::try_from(bytes) {
        Ok(name) => Ok((rest, name)),
        Err(reason) => failure(reason),
    }
}

/// `USER name` — RFC 1939 §7.
fn user(input: &[u8]) -> Res<'_, Command> {
    let (rest, name) = preceded(sp, name).parse(input)?;
    let (rest, ()) = crlf(rest)?;
    Ok((rest, Command::User { name }))
}

/// `PASS string` — RFC 1939 §7: "Since the PASS command has exactly one argument, a
/// POP3 server may treat spaces in the argument as part of the password". The
/// argument is everything up to the CRLF.
fn pass(input: &[u8]) -> Res<'_, Command> {
    let (rest, ()) = sp(input)?;
    let (rest, bytes) = take_while1(|b| b != b'\r').parse(rest)?;
    let password = match Password::try_from(bytes) {
        Ok(password) => password,
        Err(reason) => return failure(reason),
    };
    let (rest, ()) = crlf(rest)?;
    Ok((rest, Command::Pass { password }))
}

/// `APOP name digest` — RFC 1939 §7.
fn apop(input: &[u8]) -> Res<'_, Command> {
    let (rest, name) = preceded(sp, name).parse(input)?;
    let (rest, digest) = preceded(sp, param).parse(rest)?;
    let digest = match ApopDigest::try_from(digest) {
        Ok(digest) => digest,
        Err(reason) => return failure(reason),
    };
    let (rest, ()) = crlf(rest)?;
    Ok((rest, Command::Apop { name, digest }))
}

/// `sasl-mech = 1*20mech-char` — RFC 4422 §3.1 (upper-cased here).
fn sasl_mech(input: &[u8]) -> Res<'_, Mechanism> {
    let (rest, bytes) = param(input)?;
    match Mechanism::try_from(bytes) {
        Ok(mechanism) => Ok((rest, mechanism)),
        Err(reason) => failure(reason),
    }
}

/// `initial-response = base64 / "="` — RFC 5034 §6; `=` is the empty response.
fn initial_response(input: &[u8]) -> Res<'_, Vec<u8>> {
    let (rest, text) = take_while1(is_base64_text).parse(input)?;
    if text == b"=" {
        return Ok((rest, Vec::new()));
    }
    match base64_decode(text) {
        Some(bytes) => Ok((rest, bytes)),
        None => failure(Reason::InvalidBase64),
    }
}

/// `auth-command = "AUTH" SP sasl-mech [SP initial-response] ...` — RFC 5034 §6 (the
/// continuation lines are decoded by
/// [`decode_sasl_response`](super::decode_sasl_response)), and a bare `AUTH`.
fn auth_command(input: &[u8]) -> Res<'_, Command> {
    if let Ok((rest, ())) = crlf(input) {
        return Ok((rest, Command::AuthMechanisms));
    }
    let (rest, mechanism) = preceded(sp, sasl_mech).parse(input)?;
    let (rest, initial_response) = opt(preceded(sp, initial_response)).parse(rest)?;
    let (rest, _) = tag(&b"\r\n"[..]).parse(rest)?;
    Ok((
        rest,
        Command::Auth {
            mechanism,
            initial_response,
        },
    ))
}
