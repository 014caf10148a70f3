//! ESMTP parameters of MAIL and RCPT (RFC 5321 §4.1.2 `esmtp-param`) for the
//! extensions this server implements: SIZE (RFC 1870), BODY (RFC 6152, RFC 3030),
//! SMTPUTF8 (RFC 6531), RET / ENVID / NOTIFY / ORCPT (RFC 3461) and AUTH (RFC 4954 §5).
//!
//! Any other parameter is [`Reason::UnknownParameter`] (answered with 555, RFC 5321
//! §4.1.1.11); a parameter given twice is [`Reason::DuplicateParameter`]. Values that
//! are xtext (RFC 3461 §4) are held decoded and re-encoded by the encoders.

use nom::bytes::streaming::{tag, take_while, take_while1, take_while_m_n};
use nom::combinator::{opt, recognize};
use nom::multi::{many1_count, separated_list1};
use nom::sequence::preceded;
use nom::Parser;

use super::error::Reason;
use super::limits::{ENVELOPE_ID_BYTES_MAX, ORIGINAL_RECIPIENT_BYTES_MAX, SIZE_DIGITS_MAX};
use super::primitives::{failure, is_atext, is_esmtp_value_char, is_let_dig, sp, Res};

/// `BODY=` values: RFC 6152 §2 (`7BIT`, `8BITMIME`) and RFC 3030 §3 (`BINARYMIME`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Body {
    /// `7BIT`
    SevenBit,
    /// `8BITMIME`
    EightBitMime,
    /// `BINARYMIME`: the message must be sent with BDAT (RFC 3030 §3).
    BinaryMime,
}

impl Body {
    fn keyword(self) -> &'static str {
        match self {
            Body::SevenBit => "7BIT",
            Body::EightBitMime => "8BITMIME",
            Body::BinaryMime => "BINARYMIME",
        }
    }
}

/// `RET=` values (RFC 3461 §4.3): what a failure DSN should return.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ret {
    /// `FULL`: the whole message.
    Full,
    /// `HDRS`: the headers only.
    Headers,
}

/// A decoded `ENVID=` value (RFC 3461 §4.4): 1 to 100 octets of text without control
/// characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EnvelopeId(String);

impl EnvelopeId {
    /// The envelope identifier, decoded from xtext.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for EnvelopeId {
    type Error = Reason;

    fn try_from(text: &str) -> Result<Self, Reason> {
        if text.is_empty() || text.len() > ENVELOPE_ID_BYTES_MAX || has_control(text) {
            return Err(Reason::InvalidParameterValue);
        }
        Ok(EnvelopeId(text.to_owned()))
    }
}

/// A decoded `AUTH=` mailbox (RFC 4954 §5): non-empty text without control characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AuthIdentity(String);

impl AuthIdentity {
    /// The identity, decoded from xtext.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for AuthIdentity {
    type Error = Reason;

    fn try_from(text: &str) -> Result<Self, Reason> {
        if text.is_empty() || has_control(text) {
            return Err(Reason::InvalidParameterValue);
        }
        Ok(AuthIdentity(text.to_owned()))
    }
}

/// The `AUTH=` parameter of MAIL (RFC 4954 §5).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MailAuth {
    /// `AUTH=<>`: the original submitter is unknown or not authenticated.
    Unknown,
    /// The authenticated submitter, as claimed by the client.
    Identity(AuthIdentity),
}

/// The parameters of a MAIL command this server implements.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct MailParameters {
    /// `SIZE=`: the client's estimate of the message size (RFC 1870 §3). A value that
    /// does not fit 64 bits is held as `u64::MAX`: it exceeds any limit either way.
    pub size_bytes: Option<u64>,
    /// `BODY=`
    pub body: Option<Body>,
    /// `SMTPUTF8` (RFC 6531 §3.4).
    pub smtputf8: bool,
    /// `RET=` (RFC 3461 §4.3).
    pub ret: Option<Ret>,
    /// `ENVID=` (RFC 3461 §4.4).
    pub envelope_id: Option<EnvelopeId>,
    /// `AUTH=` (RFC 4954 §5).
    pub auth: Option<MailAuth>,
}

impl MailParameters {
    /// True when no parameter was given.
    pub fn is_empty(&self) -> bool {
        *self == MailParameters::default()
    }

    /// Append the parameters, each preceded by a space.
    pub fn encode(&self, out: &mut Vec<u8>) {
        if let Some(size_bytes) = self.size_bytes {
            out.extend_from_slice(format!(" SIZE={size_bytes}").as_bytes());
        }
        if let Some(body) = self.body {
            out.extend_from_slice(b" BODY=");
            out.extend_from_slice(body.keyword().as_bytes());
        }
        if self.smtputf8 {
            out.extend_from_slice(b" SMTPUTF8");
        }
        match self.ret {
            Some(Ret::Full) => out.extend_from_slice(b" RET=FULL"),
            Some(Ret::Headers) => out.extend_from_slice(b" RET=HDRS"),
            None => {}
        }
        if let Some(envelope_id) = &self.envelope_id {
            out.extend_from_slice(b" ENVID=");
            encode_xtext(envelope_id.as_str().as_bytes(), out);
        }
        match &self.auth {
            Some(MailAuth::Unknown) => out.extend_from_slice(b" AUTH=<>"),
            Some(MailAuth::Identity(identity)) => {
                out.extend_from_slice(b" AUTH=");
                if identity.as_str() == "<>" {
                    // Written raw it would read back as `MailAuth::Unknown`.
                    out.extend_from_slice(b"+3C+3E");
                } else {
                    encode_xtext(identity.as_str().as_bytes(), out);
                }
            }
            None => {}
        }
    }
}

/// When to send delivery status notifications (RFC 3461 §4.1 `NOTIFY=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Notify {
    /// `NEVER`
    Never,
    /// A non-empty set of `SUCCESS`, `FAILURE`, `DELAY`.
    When(NotifyWhen),
}

/// A non-empty set of the conditions of `NOTIFY=` (RFC 3461 §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NotifyWhen {
    success: bool,
    failure: bool,
    delay: bool,
}

impl NotifyWhen {
    /// The set of the conditions that are true; `None` when all are false (which RFC
    /// 3461 spells `NEVER`).
    pub fn new(success: bool, failure: bool, delay: bool) -> Option<Self> {
        (success || failure || delay).then_some(NotifyWhen {
            success,
            failure,
            delay,
        })
    }

    /// Notify on successful delivery.
    pub fn success(&self) -> bool {
        self.success
    }

    /// Notify on failure.
    pub fn failure(&self) -> bool {
        self.failure
    }

    /// Notify on delay.
    pub fn delay(&self) -> bool {
        self.delay
    }
}

/// `ORCPT=` (RFC 3461 §4.2): the original recipient, `addr-type ";" xtext`, held
/// decoded. Encoded, it is at most 500 octets.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OriginalRecipient {
    address_type: String,
    address: String,
}

impl OriginalRecipient {
    /// Build from an address type (an atom such as `rfc822` or `utf-8`) and the
    /// decoded address.
    pub fn new(address_type: &str, address: &str) -> Result<Self, Reason> {
        let type_ok =
            !address_type.is_empty() && address_type.bytes().all(|b| b.is_ascii() && is_atext(b));
        if !type_ok || address.is_empty() || has_control(address) {
            return Err(Reason::InvalidParameterValue);
        }
        let value_bytes = address_type.len() + 1 + xtext_len(address.as_bytes());
        if value_bytes > ORIGINAL_RECIPIENT_BYTES_MAX {
            return Err(Reason::InvalidParameterValue);
        }
        Ok(OriginalRecipient {
            address_type: address_type.to_owned(),
            address: address.to_owned(),
        })
    }

    /// The address type, as sent (compare case-insensitively).
    pub fn address_type(&self) -> &str {
        &self.address_type
    }

    /// The original recipient address, decoded from xtext.
    pub fn address(&self) -> &str {
        &self.address
    }
}

/// The parameters of a RCPT command this server implements.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RcptParameters {
    /// `NOTIFY=` (RFC 3461 §4.1).
    pub notify: Option<Notify>,
    /// `ORCPT=` (RFC 3461 §4.2).
    pub original_recipient: Option<OriginalRecipient>,
}

impl RcptParameters {
    /// True when no parameter was given.
    pub fn is_empty(&self) -> bool {
        *self == RcptParameters::default()
    }

    /// Append the parameters, each preceded by a space.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self.notify {
            Some(Notify::Never) => out.extend_from_slice(b" NOTIFY=NEVER"),
            Some(Notify::When(when)) => {
                out.extend_from_slice(b" NOTIFY=");
                let names = [
                    (when.success, "SUCCESS"),
                    (when.failure, "FAILURE"),
                    (when.delay, "DELAY"),
                ];
                let list: Vec<&str> = names
                    .iter()
                    .filter(|(on, _)| *on)
                    .map(|(_, name)| *name)
                    .collect();
                out.extend_from_slice(list.join(",").as_bytes());
            }
            None => {}
        }
        if let Some(original) = &self.original_recipient {
            out.extend_from_slice(b" ORCPT=");
            out.extend_from_slice(original.address_type.as_bytes());
            out.push(b';');
            encode_xtext(original.address.as_bytes(), out);
        }
    }
}

fn has_control(text: &str) -> bool {
    text.chars().any(char::is_control)
}

/// `esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")` — RFC 5321 §4.1.2
fn esmtp_keyword(input: &[u8]) -> Res<'_, &[u8]> {
    recognize((
        take_while_m_n(1, 1, is_let_dig),
        take_while(|b| is_let_dig(b) || b == b'-'),
    ))
    .parse(input)
}

/// `esmtp-value = 1*(%d33-60 / %d62-126)` — RFC 5321 §4.1.2, extended by
/// `esmtp-value =/ UTF8-non-ascii` — RFC 6531 §3.3
fn esmtp_value(input: &[u8]) -> Res<'_, &[u8]> {
    take_while1(is_esmtp_value_char).parse(input)
}

/// One parameter as sent: keyword and optional value.
type EsmtpParam<'a> = (&'a [u8], Option<&'a [u8]>);

/// `esmtp-param = esmtp-keyword ["=" esmtp-value]` — RFC 5321 §4.1.2
fn esmtp_param(input: &[u8]) -> Res<'_, EsmtpParam<'_>> {
    (esmtp_keyword, opt(preceded(tag(&b"="[..]), esmtp_value))).parse(input)
}

/// `*(SP esmtp-param)` list shared by MAIL and RCPT. More than one space between
/// parameters is accepted: it carries nothing and some clients send it.
fn esmtp_params(input: &[u8]) -> Res<'_, Vec<EsmtpParam<'_>>> {
    separated_list1(many1_count(sp), esmtp_param).parse(input)
}

fn set_once<T>(slot: &mut Option<T>, value: T) -> Result<(), Reason> {
    if slot.is_some() {
        return Err(Reason::DuplicateParameter);
    }
    *slot = Some(value);
    Ok(())
}

fn required(value: Option<&[u8]>) -> Result<&[u8], Reason> {
    value.ok_or(Reason::InvalidParameterValue)
}

/// `Mail-parameters = esmtp-param *(SP esmtp-param)` — RFC 5321 §4.1.2
pub(crate) fn mail_parameters(input: &[u8]) -> Res<'_, MailParameters> {
    let (rest, list) = esmtp_params(input)?;
    match interpret_mail_parameters(&list) {
        Ok(parameters) => Ok((rest, parameters)),
        Err(reason) => failure(reason),
    }
}

fn interpret_mail_parameters(list: &[EsmtpParam<'_>]) -> Result<MailParameters, Reason> {
    let mut parameters = MailParameters::default();
    let mut smtputf8 = None;
    for &(keyword, value) in list {
        if keyword.eq_ignore_ascii_case(b"SIZE") {
            set_once(&mut parameters.size_bytes, size_value(required(value)?)?)?;
        } else if keyword.eq_ignore_ascii_case(b"BODY") {
            set_once(&mut parameters.body, body_value(required(value)?)?)?;
        } else if keyword.eq_ignore_ascii_case(b"SMTPUTF8") {
            // RFC 6531 §3.4: the parameter has no value.
            if value.is_some() {
                return Err(Reason::InvalidParameterValue);
            }
            set_once(&mut smtputf8, ())?;
        } else if keyword.eq_ignore_ascii_case(b"RET") {
            set_once(&mut parameters.ret, ret_value(required(value)?)?)?;
        } else if keyword.eq_ignore_ascii_case(b"ENVID") {
            set_once(&mut parameters.envelope_id, envid_value(required(value)?)?)?;
        } else if keyword.eq_ignore_ascii_case(b"AUTH") {
            set_once(&mut parameters.auth, auth_param_value(required(value)?)?)?;
        } else {
            return Err(Reason::UnknownParameter);
        }
    }
    parameters.smtputf8 = smtputf8.is_some();
    Ok(parameters)
}

/// `Rcpt-parameters = esmtp-param *(SP esmtp-param)` — RFC 5321 §4.1.2
pub(crate) fn rcpt_parameters(input: &[u8]) -> Res<'_, RcptParameters> {
    let (rest, list) = esmtp_params(input)?;
    match interpret_rcpt_parameters(&list) {
        Ok(parameters) => Ok((rest, parameters)),
        Err(reason) => failure(reason),
    }
}

fn interpret_rcpt_parameters(list: &[EsmtpParam<'_>]) -> Result<RcptParameters, Reason> {
    let mut parameters = RcptParameters::default();
    for &(keyword, value) in list {
        if keyword.eq_ignore_ascii_case(b"NOTIFY") {
            set_once(
                &mut parameters.notify,
                notify_esmtp_value(required(value)?)?,
            )?;
        } else if keyword.eq_ignore_ascii_case(b"ORCPT") {
            set_once(
                &mut parameters.original_recipient,
                original_recipient_address(required(value)?)?,
            )?;
        } else {
            return Err(Reason::UnknownParameter);
        }
    }
    Ok(parameters)
}

/// `size-value ::= 1*20DIGIT` — RFC 1870 §3
fn size_value(value: &[u8]) -> Result<u64, Reason> {
    if value.len() > SIZE_DIGITS_MAX {
        return Err(Reason::NumberTooLarge);
    }
    if !value.iter().all(u8::is_ascii_digit) {
        return Err(Reason::InvalidParameterValue);
    }
    // Twenty digits can exceed u64; such a size exceeds every limit anyway.
    Ok(value.iter().fold(0u64, |number, &digit| {
        number
            .saturating_mul(10)
            .saturating_add(u64::from(digit - b'0'))
    }))
}

/// `body-value ::= "7BIT" / "8BITMIME"` — RFC 6152 §2, extended with `"BINARYMIME"` —
/// RFC 3030 §3
fn body_value(value: &[u8]) -> Result<Body, Reason> {
    [Body::SevenBit, Body::EightBitMime, Body::BinaryMime]
        .into_iter()
        .find(|body| value.eq_ignore_ascii_case(body.keyword().as_bytes()))
        .ok_or(Reason::InvalidParameterValue)
}

/// `ret-value = "FULL" / "HDRS"` — RFC 3461 §4.3
fn ret_value(value: &[u8]) -> Result<Ret, Reason> {
    if value.eq_ignore_ascii_case(b"FULL") {
        Ok(Ret::Full)
    } else if value.eq_ignore_ascii_case(b"HDRS") {
        Ok(Ret::Headers)
    } else {
        Err(Reason::InvalidParameterValue)
    }
}

/// `envid-parameter = "ENVID=" xtext` — RFC 3461 §4.4
fn envid_value(value: &[u8]) -> Result<EnvelopeId, Reason> {
    let decoded = xtext(value)?;
    EnvelopeId::try_from(decoded.as_str())
}

/// `auth-param = "AUTH=" xtext` — RFC 4954 §5, where the decoded value is an
/// `addr-spec` or `<>`.
fn auth_param_value(value: &[u8]) -> Result<MailAuth, Reason> {
    if value == b"<>" {
        return Ok(MailAuth::Unknown);
    }
    let decoded = xtext(value)?;
    AuthIdentity::try_from(decoded.as_str()).map(MailAuth::Identity)
}

/// `notify-esmtp-value = "NEVER" / 1#notify-list-element` with
/// `notify-list-element = "SUCCESS" / "FAILURE" / "DELAY"` — RFC 3461 §4.1. NEVER may
/// not be combined with the others.
fn notify_esmtp_value(value: &[u8]) -> Result<Notify, Reason> {
    if value.eq_ignore_ascii_case(b"NEVER") {
        return Ok(Notify::Never);
    }
    let (mut success, mut failure, mut delay) = (false, false, false);
    for element in value.split(|&b| b == b',') {
        if element.eq_ignore_ascii_case(b"SUCCESS") {
            success = true;
        } else if element.eq_ignore_ascii_case(b"FAILURE") {
            failure = true;
        } else if element.eq_ignore_ascii_case(b"DELAY") {
            delay = true;
        } else {
            return Err(Reason::InvalidParameterValue);
        }
    }
    NotifyWhen::new(success, failure, delay)
        .map(Notify::When)
        .ok_or(Reason::InvalidParameterValue)
}

/// `original-recipient-address = addr-type ";" xtext` with `addr-type = atom` —
/// RFC 3461 §4.2
fn original_recipient_address(value: &[u8]) -> Result<OriginalRecipient, Reason> {
    if value.len() > ORIGINAL_RECIPIENT_BYTES_MAX {
        return Err(Reason::InvalidParameterValue);
    }
    let semicolon = value
        .iter()
        .position(|&b| b == b';')
        .ok_or(Reason::InvalidParameterValue)?;
    let address_type =
        std::str::from_utf8(&value[..semicolon]).map_err(|_| Reason::InvalidParameterValue)?;
    let address = xtext(&value[semicolon + 1..])?;
    OriginalRecipient::new(address_type, &address)
}

/// `xtext = *( xchar / hexchar )` — RFC 3461 §4, with `xchar` any of `!` to `~` but
/// `+` and `=`, and `hexchar = "+" 2(%x30-39 / %x41-46)`; UTF-8 passes through
/// unencoded (RFC 6531 §3.3 `esmtp-value =/ UTF8-non-ascii`). Lower-case hex digits are
/// accepted too. The decoded text must be valid UTF-8.
fn xtext(value: &[u8]) -> Result<String, Reason> {
    let mut decoded = Vec::with_capacity(value.len());
    let mut rest = value;
    while let Some((&byte, after)) = rest.split_first() {
        match byte {
            b'+' => {
                let [high, low, ..] = *after else {
                    return Err(Reason::InvalidParameterValue);
                };
                let (Some(high), Some(low)) = (hex_digit(high), hex_digit(low)) else {
                    return Err(Reason::InvalidParameterValue);
                };
                decoded.push(high << 4 | low);
                rest = &after[2..];
            }
            b'=' => return Err(Reason::InvalidParameterValue),
            byte if is_esmtp_value_char(byte) => {
                decoded.push(byte);
                rest = after;
            }
            _ => return Err(Reason::InvalidParameterValue),
        }
    }
    String::from_utf8(decoded).map_err(|_| Reason::InvalidUtf8)
}

fn hex_digit(byte: u8) -> Option<u8> {
    char::from(byte)
        .to_digit(16)
        .and_then(|digit| u8::try_from(digit).ok())
}

fn is_xchar(byte: u8) -> bool {
    matches!(byte, b'!'..=b'~') && byte != b'+' && byte != b'='
}

/// Append `bytes` as xtext (RFC 3461 §4): everything but `xchar` as `+HH`, so the
/// result is plain ASCII whatever the peer supports.
fn encode_xtext(bytes: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in bytes {
        if is_xchar(byte) {
            out.push(byte);
        } else {
            out.extend_from_slice(&[
                b'+',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 15)],
            ]);
        }
    }
}

fn xtext_len(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .map(|&byte| if is_xchar(byte) { 1 } else { 3 })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xtext_decodes_and_round_trips() {
        assert_eq!(xtext(b"a+2Bb+3Dc").unwrap(), "a+b=c");
        assert_eq!(xtext(b"a+2bb").unwrap(), "a+b");
        assert_eq!(xtext(b"a+2").unwrap_err(), Reason::InvalidParameterValue);
        assert_eq!(xtext(b"a+zz").unwrap_err(), Reason::InvalidParameterValue);
        assert_eq!(xtext(b"+FF").unwrap_err(), Reason::InvalidUtf8);
        let mut out = Vec::new();
        encode_xtext("a b+c=d\u{e9}".as_bytes(), &mut out);
        assert_eq!(out, b"a+20b+2Bc+3Dd+C3+A9");
        assert_eq!(xtext(&out).unwrap(), "a b+c=d\u{e9}");
        assert_eq!(xtext_len("a b+c=d\u{e9}".as_bytes()), out.len());
    }

    #[test]
    fn notify_values() {
        assert_eq!(notify_esmtp_value(b"never"), Ok(Notify::Never));
        assert_eq!(
            notify_esmtp_value(b"SUCCESS,DELAY"),
            Ok(Notify::When(NotifyWhen::new(true, false, true).unwrap()))
        );
        assert!(notify_esmtp_value(b"NEVER,SUCCESS").is_err());
        assert!(notify_esmtp_value(b"SUCCESS,").is_err());
        assert!(notify_esmtp_value(b"SOMETIMES").is_err());
    }

    #[test]
    fn size_values() {
        assert_eq!(size_value(b"0"), Ok(0));
        assert_eq!(size_value(b"52428800"), Ok(52_428_800));
        assert_eq!(size_value(b"99999999999999999999"), Ok(u64::MAX));
        assert_eq!(
            size_value(b"999999999999999999999"),
            Err(Reason::NumberTooLarge)
        );
        assert_eq!(size_value(b"12a"), Err(Reason::InvalidParameterValue));
    }
}
