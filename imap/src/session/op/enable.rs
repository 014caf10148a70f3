//! ENABLE — RFC 5161 §3.1: CONDSTORE (RFC 7162 §3.1), QRESYNC (RFC 7162 §3.2.3, which
//! enables CONDSTORE too), UTF8=ACCEPT (RFC 6855 §3) and IMAP4rev2 (RFC 9051 §6.3.1).
//! Other names are ignored, as the RFC asks for extensions the server does not know;
//! each name is reported once, and only the first time it is enabled.

use super::super::{Core, Reply};
use crate::types::{Capability, Data, Response};

pub(crate) fn run(core: &mut Core, capabilities: &[Capability<'_>], out: &mut Vec<u8>) -> Reply {
    let mut enabled: Vec<Capability<'static>> = Vec::new();
    for capability in capabilities {
        let newly = match capability {
            Capability::CondStore => !std::mem::replace(&mut core.condstore, true),
            Capability::QResync => {
                core.condstore = true;
                !std::mem::replace(&mut core.qresync, true)
            }
            Capability::Utf8Accept => {
                let before = core.utf8_accept;
                core.utf8_accept = true;
                core.utf8 = true;
                !before
            }
            Capability::Imap4Rev2 => {
                core.utf8 = true;
                !std::mem::replace(&mut core.rev2, true)
            }
            _ => false,
        };
        if newly {
            enabled.push(match capability {
                Capability::CondStore => Capability::CondStore,
                Capability::QResync => Capability::QResync,
                Capability::Utf8Accept => Capability::Utf8Accept,
                _ => Capability::Imap4Rev2,
            });
        }
    }
    Response::Data(Data::Enabled(enabled)).encode(out);
    Reply::ok("ENABLE completed")
}
