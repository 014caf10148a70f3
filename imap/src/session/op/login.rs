//! LOGIN — RFC 3501 §6.2.3, refused without TLS unless the connection may log in in
//! plaintext (SPEC §6; CAPABILITY then says LOGINDISABLED, RFC 3501 §6.2.3).

use super::super::{Core, Reply};
use super::authenticate::{check, Method};
use crate::types::{Code, IString, Secret};

pub(crate) async fn run(
    core: &mut Core,
    username: IString<'_>,
    password: Secret<IString<'_>>,
) -> Reply {
    if !core.login_allowed() {
        return Reply::no(
            Some(Code::PrivacyRequired),
            "Plaintext login refused: use STARTTLS or the imaps port",
        );
    }
    let (Some(user), Some(password)) = (username.as_str(), password.expose().as_str()) else {
        // Credentials are UTF-8; anything else cannot match an account.
        core.login_failures += 1;
        return Reply::no(Some(Code::AuthenticationFailed), "Invalid credentials");
    };
    check(core, user, password, Method::Login).await
}
