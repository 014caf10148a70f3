//! AUTHENTICATE — RFC 3501 §6.2.2 with the PLAIN mechanism (RFC 4616) and an
//! optional initial response (SASL-IR, RFC 4959). Also the credential check LOGIN
//! shares: through the [`Authenticator`](lifeboat_store::auth::Authenticator), whose
//! rate limits answer `NO [UNAVAILABLE]`.

use std::borrow::Cow;

use lifeboat_store::auth::AuthError;

use super::super::{Authenticated, Core, Exchange, Output, Reply, State};
use crate::parse::DecodeError;
use crate::types::{
    AuthMechanism, AuthenticateData, Code, Condition, Continue, Response, Secret, Tag,
};

/// How the client logged in, for logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    Login,
    Plain,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Login => "login",
            Method::Plain => "authenticate-plain",
        }
    }
}

pub(crate) async fn run(
    core: &mut Core,
    tag: &Tag<'_>,
    mechanism: AuthMechanism<'_>,
    initial_response: Option<Secret<Cow<'_, [u8]>>>,
    out: &mut dyn Output,
) -> Reply {
    if mechanism != AuthMechanism::Plain {
        return Reply::no(None, "Unsupported authentication mechanism");
    }
    if !core.login_allowed() {
        return Reply::no(
            Some(Code::PrivacyRequired),
            "Plaintext authentication refused: use STARTTLS or the imaps port",
        );
    }
    match initial_response {
        Some(response) => plain(core, response.expose()).await,
        None => {
            // RFC 4616 §2: the server's challenge is empty.
            Response::Continue(Continue::Base64(Cow::Borrowed(b""))).encode(out.buffer());
            core.exchange = Some(Exchange::Authenticate {
                tag: tag.clone().into_owned(),
            });
            Reply::Continues
        }
    }
}

/// The client's line after the challenge.
pub(crate) async fn response(
    core: &mut Core,
    data: Result<(usize, AuthenticateData), DecodeError<'_>>,
) -> Reply {
    match data {
        Ok((_, AuthenticateData::Response(response))) => plain(core, response.expose()).await,
        // RFC 3501 §6.2.2: a cancelled exchange is answered BAD.
        Ok((_, AuthenticateData::Cancel)) => Reply::bad("AUTHENTICATE cancelled"),
        Err(_) => Reply::bad("Invalid base64 response"),
    }
}

/// `message = [authzid] UTF8NUL authcid UTF8NUL passwd` — RFC 4616 §2.
async fn plain(core: &mut Core, message: &[u8]) -> Reply {
    let mut pieces = message.split(|&byte| byte == 0);
    let (Some(authzid), Some(authcid), Some(password), None) =
        (pieces.next(), pieces.next(), pieces.next(), pieces.next())
    else {
        return Reply::bad("Malformed PLAIN response");
    };
    let (Ok(authzid), Ok(user), Ok(password)) = (
        std::str::from_utf8(authzid),
        std::str::from_utf8(authcid),
        std::str::from_utf8(password),
    ) else {
        core.login_failures += 1;
        return Reply::no(Some(Code::AuthenticationFailed), "Invalid credentials");
    };
    // Acting for another account is not offered: the authorization identity, when
    // given, must be the account itself.
    if !authzid.is_empty() && !authzid.eq_ignore_ascii_case(user) {
        core.login_failures += 1;
        return Reply::no(
            Some(Code::AuthorizationFailed),
            "Cannot act as another user",
        );
    }
    check(core, user, password, Method::Plain).await
}

/// Checks credentials and logs in.
pub(crate) async fn check(core: &mut Core, user: &str, password: &str, method: Method) -> Reply {
    let client = core.config.client;
    match core.auth.login(user, password, client).await {
        Ok(account) => {
            tracing::info!(account = %account.address, %client, method = method.as_str(), "imap login");
            core.state = State::Authenticated(Authenticated {
                account: account.address,
            });
            Reply::Done {
                condition: Condition::Ok,
                code: Some(Code::Capability(core.capabilities())),
                text: Cow::Borrowed("Logged in"),
                updates: super::super::Updates::All,
            }
        }
        Err(error) => {
            core.login_failures += 1;
            tracing::info!(user, %client, method = method.as_str(), %error, "imap login failed");
            match error {
                AuthError::Invalid => {
                    Reply::no(Some(Code::AuthenticationFailed), "Invalid credentials")
                }
                AuthError::RateLimited => Reply::no(
                    Some(Code::Unavailable),
                    "Too many failed logins, try again later",
                ),
                AuthError::Unavailable => Reply::no(
                    Some(Code::Unavailable),
                    "Authentication temporarily unavailable",
                ),
            }
        }
    }
}
