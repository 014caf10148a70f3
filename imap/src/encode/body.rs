//! ENVELOPE and BODYSTRUCTURE to bytes — RFC 3501 §7.4.2 and §9.
//!
//! Recursion through nested messages and multiparts is bounded by the explicit
//! `depth` argument ([`crate::types::BODY_NESTING_MAX`] at the top).

use super::core::Out;
use crate::types::{
    Address, BasicFields, BodyStructure, Disposition, Envelope, IString, SpecificFields,
};

/// `envelope` — RFC 3501 §9
pub(crate) fn envelope(out: &mut Out<'_>, envelope: &Envelope<'_>) {
    out.byte(b'(')
        .nstring(envelope.date.as_ref())
        .sp()
        .nstring(envelope.subject.as_ref())
        .sp();
    for addresses in [
        &envelope.from,
        &envelope.sender,
        &envelope.reply_to,
        &envelope.to,
        &envelope.cc,
        &envelope.bcc,
    ] {
        address_list(out, addresses);
        out.sp();
    }
    out.nstring(envelope.in_reply_to.as_ref())
        .sp()
        .nstring(envelope.message_id.as_ref())
        .byte(b')');
}

/// `env-from = "(" 1*address ")" / nil` (and the other address lists) — RFC 3501 §9
fn address_list(out: &mut Out<'_>, addresses: &[Address<'_>]) {
    if addresses.is_empty() {
        out.nil();
        return;
    }
    out.byte(b'(');
    for address in addresses {
        out.byte(b'(')
            .nstring(address.name.as_ref())
            .sp()
            .nstring(address.adl.as_ref())
            .sp()
            .nstring(address.mailbox.as_ref())
            .sp()
            .nstring(address.host.as_ref())
            .byte(b')');
    }
    out.byte(b')');
}

/// `body-fld-param = "(" string SP string *(SP string SP string) ")" / nil`
fn parameters(out: &mut Out<'_>, parameters: &[(IString<'_>, IString<'_>)]) {
    if parameters.is_empty() {
        out.nil();
        return;
    }
    out.list(parameters, |out, (name, value)| {
        out.istring(name).sp().istring(value);
    });
}

/// `body-fields = body-fld-param SP body-fld-id SP body-fld-desc SP body-fld-enc SP
/// body-fld-octets`
fn body_fields(out: &mut Out<'_>, fields: &BasicFields<'_>) {
    parameters(out, &fields.parameters);
    out.sp()
        .nstring(fields.id.as_ref())
        .sp()
        .nstring(fields.description.as_ref())
        .sp()
        .istring(&fields.content_transfer_encoding)
        .sp()
        .number(u64::from(fields.size_bytes));
}

/// `body-fld-dsp = "(" string SP body-fld-param ")" / nil`
fn disposition(out: &mut Out<'_>, disposition: Option<&Disposition<'_>>) {
    match disposition {
        None => {
            out.nil();
        }
        Some(disposition) => {
            out.byte(b'(').istring(&disposition.kind).sp();
            parameters(out, &disposition.parameters);
            out.byte(b')');
        }
    }
}

/// `body-fld-lang = nstring / "(" string *(SP string) ")"`
fn language(out: &mut Out<'_>, languages: &[IString<'_>]) {
    match languages {
        [] => {
            out.nil();
        }
        [single] => {
            out.istring(single);
        }
        many => {
            out.list(many, |out, language| {
                out.istring(language);
            });
        }
    }
}

/// What replaces parts nested deeper than [`crate::types::BODY_NESTING_MAX`] (or an empty
/// multipart, which the grammar cannot express).
const PLACEHOLDER_PART: &[u8] = b"(\"APPLICATION\" \"OCTET-STREAM\" NIL NIL NIL \"7BIT\" 0)";

/// `body = "(" (body-type-1part / body-type-mpart) ")"` — RFC 3501 §9; extension data
/// only when `extensible` (BODYSTRUCTURE, not BODY).
pub(crate) fn body_structure(
    out: &mut Out<'_>,
    structure: &BodyStructure<'_>,
    extensible: bool,
    depth: usize,
) {
    if depth == 0 {
        out.raw(PLACEHOLDER_PART);
        return;
    }
    match structure {
        BodyStructure::Single { body, extension } => {
            out.byte(b'(');
            match &body.specific {
                SpecificFields::Basic {
                    media_type,
                    subtype,
                } => {
                    out.istring(media_type).sp().istring(subtype).sp();
                    body_fields(out, &body.basic);
                }
                SpecificFields::Message {
                    envelope: inner_envelope,
                    body_structure: inner,
                    lines,
                } => {
                    out.raw(b"\"MESSAGE\" \"RFC822\" ");
                    body_fields(out, &body.basic);
                    out.sp();
                    envelope(out, inner_envelope);
                    out.sp();
                    body_structure(out, inner, extensible, depth - 1);
                    out.sp().number(u64::from(*lines));
                }
                SpecificFields::Text { subtype, lines } => {
                    out.raw(b"\"TEXT\" ").istring(subtype).sp();
                    body_fields(out, &body.basic);
                    out.sp().number(u64::from(*lines));
                }
            }
            if extensible {
                out.sp().nstring(extension.md5.as_ref()).sp();
                disposition(out, extension.disposition.as_ref());
                out.sp();
                language(out, &extension.language);
                out.sp().nstring(extension.location.as_ref());
            }
            out.byte(b')');
        }
        BodyStructure::Multi {
            bodies,
            subtype,
            extension,
        } => {
            out.byte(b'(');
            if bodies.is_empty() {
                out.raw(PLACEHOLDER_PART);
            }
            for part in bodies {
                body_structure(out, part, extensible, depth - 1);
            }
            out.sp().istring(subtype);
            if extensible {
                out.sp();
                parameters(out, &extension.parameters);
                out.sp();
                disposition(out, extension.disposition.as_ref());
                out.sp();
                language(out, &extension.language);
                out.sp().nstring(extension.location.as_ref());
            }
            out.byte(b')');
        }
    }
}
