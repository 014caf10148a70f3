//! ENVELOPE and BODYSTRUCTURE data — RFC 3501 §7.4.2.
//!
//! Plain data filled by the session from the parsed message; this crate never parses
//! MIME. Nesting (`message/rfc822` and multipart) is recursive; the encoder writes at
//! most [`BODY_NESTING_MAX`] levels and replaces deeper parts by an empty
//! `application/octet-stream` part, so a hostile message cannot exhaust the stack.

use super::core::{IString, NString};

/// Deepest body structure the encoder writes.
pub const BODY_NESTING_MAX: usize = 64;

/// `envelope` — RFC 3501 §9. Empty address lists encode as NIL.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Envelope<'a> {
    pub date: NString<'a>,
    pub subject: NString<'a>,
    pub from: Vec<Address<'a>>,
    pub sender: Vec<Address<'a>>,
    pub reply_to: Vec<Address<'a>>,
    pub to: Vec<Address<'a>>,
    pub cc: Vec<Address<'a>>,
    pub bcc: Vec<Address<'a>>,
    pub in_reply_to: NString<'a>,
    pub message_id: NString<'a>,
}

/// `address = "(" addr-name SP addr-adl SP addr-mailbox SP addr-host ")"` — RFC 3501
/// §9. A group start is `host: None, mailbox: Some(group name)`; a group end has
/// both `None` (RFC 3501 §7.4.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Address<'a> {
    pub name: NString<'a>,
    pub adl: NString<'a>,
    pub mailbox: NString<'a>,
    pub host: NString<'a>,
}

/// `body = "(" (body-type-1part / body-type-mpart) ")"` — RFC 3501 §9
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyStructure<'a> {
    Single {
        body: Body<'a>,
        /// Written only for BODYSTRUCTURE.
        extension: SinglePartExtension<'a>,
    },
    Multi {
        /// One or more parts.
        bodies: Vec<BodyStructure<'a>>,
        subtype: IString<'a>,
        /// Written only for BODYSTRUCTURE.
        extension: MultiPartExtension<'a>,
    },
}

/// `body-type-1part` without extension data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Body<'a> {
    pub basic: BasicFields<'a>,
    pub specific: SpecificFields<'a>,
}

/// `body-fields = body-fld-param SP body-fld-id SP body-fld-desc SP body-fld-enc SP
/// body-fld-octets` — RFC 3501 §9
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BasicFields<'a> {
    /// `body-fld-param`; empty encodes as NIL.
    pub parameters: Vec<(IString<'a>, IString<'a>)>,
    pub id: NString<'a>,
    pub description: NString<'a>,
    /// `body-fld-enc`, e.g. `7BIT`, `BASE64`.
    pub content_transfer_encoding: IString<'a>,
    pub size_bytes: u32,
}

/// The type-specific part of `body-type-1part` — RFC 3501 §9.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpecificFields<'a> {
    /// `body-type-basic = media-basic SP body-fields`
    Basic {
        media_type: IString<'a>,
        subtype: IString<'a>,
    },
    /// `body-type-msg = media-message SP body-fields SP envelope SP body SP
    /// body-fld-lines` (`message/rfc822`)
    Message {
        envelope: Box<Envelope<'a>>,
        body_structure: Box<BodyStructure<'a>>,
        lines: u32,
    },
    /// `body-type-text = media-text SP body-fields SP body-fld-lines`
    Text { subtype: IString<'a>, lines: u32 },
}

/// `body-ext-1part = body-fld-md5 [SP body-fld-dsp [SP body-fld-lang [SP
/// body-fld-loc *(SP body-extension)]]]` — RFC 3501 §9
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SinglePartExtension<'a> {
    pub md5: NString<'a>,
    pub disposition: Option<Disposition<'a>>,
    /// `body-fld-lang`; empty encodes as NIL.
    pub language: Vec<IString<'a>>,
    pub location: NString<'a>,
}

/// `body-ext-mpart = body-fld-param [SP body-fld-dsp [SP body-fld-lang [SP
/// body-fld-loc *(SP body-extension)]]]` — RFC 3501 §9
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MultiPartExtension<'a> {
    pub parameters: Vec<(IString<'a>, IString<'a>)>,
    pub disposition: Option<Disposition<'a>>,
    pub language: Vec<IString<'a>>,
    pub location: NString<'a>,
}

/// `body-fld-dsp = "(" string SP body-fld-param ")" / nil` — RFC 3501 §9
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disposition<'a> {
    pub kind: IString<'a>,
    pub parameters: Vec<(IString<'a>, IString<'a>)>,
}
