//! Webmail over HTTP against a real store (no browser): what each page shows and what
//! each change commits, as IMAP would see it; the checks that keep one account out of
//! another's folders, forms without their CSRF token, and uploads over the size limit.
//! Sending goes to a stand-in relay that records the message and commits the ops it
//! is given (the real relay is exercised by `server/tests/webmail.rs`).

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lifeboat_store::auth::Authenticator;
use lifeboat_store::password::hash_password;
use lifeboat_store::*;
use lifeboat_web::{Scope, StatusSource, WebConfig, WebServer};

const PASSWORD: &str = "correct horse battery";

/// One message webmail sent: account, recipients, octets, how many ops went with it.
type Sent = (String, Vec<String>, Vec<u8>, usize);

/// Records what webmail sends and commits the ops that go with it.
struct Relay {
    store: Store,
    sent: Mutex<Vec<Sent>>,
}

type Boxed<'a, T> = Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

impl StatusSource for Relay {
    fn upstream_health(&self, _: &str) -> (String, i64) {
        ("up".into(), 0)
    }
    fn counters(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }
    fn redeliver<'a>(
        &'a self,
        _: ArchiveId,
        _: &'a Scope,
        _: &'a (dyn Fn(&[String]) -> Vec<Op> + Send + Sync),
    ) -> Boxed<'a, Result<Vec<String>, String>> {
        Box::pin(async { Err("not here".into()) })
    }
    fn send_notice<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: &'a str,
    ) -> Boxed<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
    fn submit<'a>(
        &'a self,
        account: &'a str,
        rcpts: &'a [String],
        message: Vec<u8>,
        also: Vec<Op>,
    ) -> Boxed<'a, Result<String, String>> {
        Box::pin(async move {
            let count = also.len();
            let mut batch = Batch::new();
            for op in also {
                batch.push(op);
            }
            if !batch.is_empty() {
                self.store.commit(batch).map_err(|e| e.to_string())?;
            }
            self.sent
                .lock()
                .unwrap()
                .push((account.to_string(), rcpts.to_vec(), message, count));
            Ok("1".into())
        })
    }
}

struct Response {
    status: u16,
    head: String,
    body: String,
}

impl Response {
    fn location(&self) -> String {
        self.head
            .lines()
            .find_map(|l| l.strip_prefix("location: "))
            .unwrap_or_default()
            .to_string()
    }
}

fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    cookie: &str,
    kind: &str,
    body: &[u8],
) -> Response {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nConnection: close\r\n\
         Content-Type: {kind}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Response {
        status: head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0),
        head: head.to_ascii_lowercase(),
        body: body.to_string(),
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    store: Store,
    web: WebServer,
    relay: Arc<Relay>,
}

impl Setup {
    fn new(message_bytes_max: usize) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Options::default()).unwrap();
        let mut batch = Batch::new();
        batch.push(Op::PutDomain(DomainSettings {
            name: "example.test".into(),
            upstream: "127.0.0.1:25".into(),
            coverage: Coverage::All,
            failover: Failover::Auto,
        }));
        for address in ["alice@example.test", "bob@example.test"] {
            batch.push(Op::AddAccount {
                address: address.into(),
                password_hash: hash_password(PASSWORD).unwrap(),
                role: Role::User,
                covered: true,
                recovery: None,
            });
        }
        store.commit(batch).unwrap();
        let relay = Arc::new(Relay {
            store: store.clone(),
            sent: Mutex::new(Vec::new()),
        });
        let web = WebServer::start(
            store.clone(),
            WebConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                admin_token: "t".repeat(64),
                io_backend: "test".into(),
                status: Some(relay.clone()),
                archive_index: None,
                tls: None,
                auth: Some(Authenticator::new(store.clone())),
                allow_plaintext_loopback: true,
                session_idle: lifeboat_web::SESSION_IDLE_DEFAULT,
                session_max: lifeboat_web::SESSION_MAX_DEFAULT,
                message_bytes_max,
                recipients_max: 3,
                // Every body here is sent at once, except by the test of a silent one.
                body_idle: Duration::from_secs(2),
                connections_per_ip_max: 100,
            },
        )
        .unwrap();
        Setup {
            _dir: dir,
            store,
            web,
            relay,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.web.local_addr()
    }

    /// Logs in: the session cookie and its CSRF token.
    fn login(&self, address: &str) -> (String, String) {
        let page = http(self.addr(), "GET", "/", "", "text/plain", b"");
        let form = page
            .head
            .lines()
            .filter_map(|l| l.strip_prefix("set-cookie: "))
            .find(|c| c.starts_with("lifeboat_form="))
            .and_then(|c| c.split(';').next())
            .unwrap()
            .to_string();
        let token = form.split_once('=').unwrap().1.to_string();
        let response = http(
            self.addr(),
            "POST",
            "/login",
            &form,
            "application/x-www-form-urlencoded",
            format!(
                "_csrf={token}&address={}&password=correct+horse+battery",
                address.replace('@', "%40")
            )
            .as_bytes(),
        );
        assert_eq!(response.status, 303, "{}", response.body);
        assert_eq!(response.location(), "/mail");
        let cookie = response
            .head
            .lines()
            .filter_map(|l| l.strip_prefix("set-cookie: "))
            .find(|c| c.starts_with("lifeboat_session="))
            .and_then(|c| c.split(';').next())
            .unwrap()
            .to_string();
        let mail = http(self.addr(), "GET", "/mail", &cookie, "text/plain", b"");
        let csrf = mail
            .body
            .split("name=\"_csrf\" value=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap()
            .to_string();
        (cookie, csrf)
    }

    fn folder(&self, account: &str, name: &str) -> FolderId {
        self.store
            .read(|s| s.folder_by_name(account, name).map(|f| f.id))
            .unwrap()
    }

    fn deliver(&self, account: &str, message: &str) -> u32 {
        let inbox = self.folder(account, INBOX);
        let mut batch = Batch::new();
        let body = batch.put_body(message.as_bytes().to_vec());
        batch.push(Op::Append {
            folder: inbox,
            body,
            flags: Flags::default(),
            internal_date: now(),
        });
        match self.store.commit(batch).unwrap().pop() {
            Some(Ok(OpResult::Appended { uid, .. })) => uid,
            other => panic!("{other:?}"),
        }
    }

    fn flags(&self, folder: FolderId, uid: u32) -> SystemFlags {
        self.store
            .read(|s| s.folder(folder).unwrap().messages[&uid].flags.system)
    }

    fn subjects(&self, folder: FolderId) -> usize {
        self.store
            .read(|s| s.folder(folder).unwrap().messages.len())
    }
}

fn mail(from: &str, subject: &str, text: &str) -> String {
    format!(
        "From: {from}\r\nTo: alice@example.test\r\nSubject: {subject}\r\n\
         Message-ID: <{}@remote.test>\r\n\r\n{text}\r\n",
        subject.replace(' ', ".")
    )
}

fn multipart(fields: &[(&str, &str)], files: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----lifeboat-test-boundary";
    let mut body = Vec::new();
    for (name, value) in fields {
        write!(
            body,
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        )
        .unwrap();
    }
    for (name, bytes) in files {
        write!(
            body,
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .unwrap();
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    write!(body, "--{boundary}--\r\n").unwrap();
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[test]
fn an_account_sees_and_changes_only_its_own_folders() {
    let setup = Setup::new(50 << 20);
    let (alice, csrf) = setup.login("alice@example.test");
    let (bob, bob_csrf) = setup.login("bob@example.test");
    let uid = setup.deliver(
        "alice@example.test",
        &mail("carol@remote.test", "For Alice", "hi"),
    );
    let inbox = setup.folder("alice@example.test", INBOX);
    let addr = setup.addr();

    let page = http(addr, "GET", &format!("/mail/f/{inbox}"), &alice, "", b"");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("For Alice"));
    for path in [
        format!("/mail/f/{inbox}"),
        format!("/mail/f/{inbox}/m/{uid}"),
        format!("/mail/f/{inbox}/m/{uid}/html"),
        format!("/mail/f/{inbox}/m/{uid}/attachments/0"),
        format!("/mail/compose?reply={inbox}:{uid}"),
    ] {
        let r = http(addr, "GET", &path, &bob, "", b"");
        assert!(
            r.status == 404 || !r.body.contains("For Alice"),
            "{path}: {}",
            r.status
        );
    }
    // Bob cannot change Alice's message, even with his own token.
    let r = http(
        addr,
        "POST",
        &format!("/mail/f/{inbox}/act"),
        &bob,
        "application/x-www-form-urlencoded",
        format!("_csrf={bob_csrf}&uid={uid}&action=delete").as_bytes(),
    );
    assert_eq!(r.status, 404);
    assert_eq!(setup.subjects(inbox), 1);
    // Alice's own change without her token is refused.
    let r = http(
        addr,
        "POST",
        &format!("/mail/f/{inbox}/act"),
        &alice,
        "application/x-www-form-urlencoded",
        format!("uid={uid}&action=delete").as_bytes(),
    );
    assert_eq!(r.status, 403);
    let (kind, body) = multipart(&[("to", "x@remote.test"), ("action", "send")], &[]);
    let r = http(addr, "POST", "/mail/send", &alice, &kind, &body);
    assert_eq!(r.status, 403, "an upload without the token in its address");
    assert!(setup.relay.sent.lock().unwrap().is_empty());
    let r = http(
        addr,
        "POST",
        &format!("/mail/send?_csrf={}", "0".repeat(64)),
        &alice,
        &kind,
        &body,
    );
    assert_eq!(r.status, 403, "an upload with a wrong token");
    // With it, the change is made.
    let r = http(
        addr,
        "POST",
        &format!("/mail/f/{inbox}/act"),
        &alice,
        "application/x-www-form-urlencoded",
        format!("_csrf={csrf}&uid={uid}&action=flag").as_bytes(),
    );
    assert_eq!(r.status, 303);
    assert!(setup.flags(inbox, uid).contains(SystemFlags::FLAGGED));
    setup.web.shutdown(Duration::from_secs(1));
}

/// Webmail makes no more folders than IMAP would (`FOLDERS_PER_ACCOUNT_MAX`).
#[test]
fn an_account_has_at_most_so_many_folders() {
    let setup = Setup::new(50 << 20);
    let (bob, csrf) = setup.login("bob@example.test");
    let have = setup.store.read(|s| s.folders_of("bob@example.test").len());
    let mut batch = Batch::new();
    for n in have..FOLDERS_PER_ACCOUNT_MAX {
        batch.push(Op::CreateFolder {
            account: "bob@example.test".into(),
            name: format!("F{n}"),
            special_use: None,
        });
    }
    setup.store.commit(batch).unwrap();
    let create = || {
        http(
            setup.addr(),
            "POST",
            "/mail/folders",
            &bob,
            "application/x-www-form-urlencoded",
            format!("_csrf={csrf}&name=One+more").as_bytes(),
        )
    };
    assert_eq!(create().status, 303);
    let list = http(setup.addr(), "GET", "/mail/folders", &bob, "", b"");
    assert!(list.body.contains("at most 1000 folders"), "{}", list.body);
    assert!(setup
        .store
        .read(|s| s.folder_by_name("bob@example.test", "One more").is_none()));
    // One fewer, and it is made.
    let mut batch = Batch::new();
    batch.push(Op::DeleteFolder {
        account: "bob@example.test".into(),
        name: format!("F{}", FOLDERS_PER_ACCOUNT_MAX - 1),
    });
    setup.store.commit(batch).unwrap();
    assert_eq!(create().status, 303);
    assert!(setup
        .store
        .read(|s| s.folder_by_name("bob@example.test", "One more").is_some()));
    setup.web.shutdown(Duration::from_secs(1));
}

/// A client that announces a body and stops sending it does not hold its connection
/// (one of the server's slots) and the request's handler: the form is refused with
/// 408 once the body has been silent for `body_idle`, the upload fails, and the
/// connection closes.
#[test]
fn a_body_that_stops_coming_is_given_up() {
    let setup = Setup::new(50 << 20);
    let (alice, csrf) = setup.login("alice@example.test");
    let started = std::time::Instant::now();
    for (path, kind) in [
        (
            "/mail/folders".to_string(),
            "application/x-www-form-urlencoded",
        ),
        (
            format!("/mail/send?_csrf={csrf}"),
            "multipart/form-data; boundary=b",
        ),
    ] {
        let mut s = std::net::TcpStream::connect(setup.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: x\r\nCookie: {alice}\r\nContent-Type: {kind}\r\n\
             Content-Length: 1000\r\n\r\n_csrf={csrf}&na"
        )
        .unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("HTTP/1.1 4"), "{path}: {text}");
        if kind.starts_with("application") {
            assert!(text.starts_with("HTTP/1.1 408"), "{text}");
            assert!(text.contains("did not arrive in time"), "{text}");
        }
    }
    assert!(started.elapsed() < Duration::from_secs(25));
    assert!(setup.relay.sent.lock().unwrap().is_empty());
    setup.web.shutdown(Duration::from_secs(1));
}

#[test]
fn reading_paging_searching_and_actions_are_the_stores() {
    let setup = Setup::new(50 << 20);
    let (alice, csrf) = setup.login("alice@example.test");
    let addr = setup.addr();
    let inbox = setup.folder("alice@example.test", INBOX);
    let trash = setup.folder("alice@example.test", "Trash");
    let mut uids = Vec::new();
    for i in 0..120 {
        uids.push(setup.deliver(
            "alice@example.test",
            &mail(
                &format!("Sender {i} <s{i}@remote.test>"),
                &format!("Message {i:03}"),
                &format!("body word{i}"),
            ),
        ));
    }
    // Newest first, 50 a page.
    let first = http(addr, "GET", &format!("/mail/f/{inbox}"), &alice, "", b"");
    assert!(first.body.contains("Message 119") && !first.body.contains("Message 069"));
    assert!(first.body.contains("1–50 of 120"), "the pager");
    assert!(first.body.contains(">120</span>"), "the unread count");
    let third = http(
        addr,
        "GET",
        &format!("/mail/f/{inbox}?page=3"),
        &alice,
        "",
        b"",
    );
    assert_eq!(third.body.matches("class=\"mail-row").count(), 20);
    assert!(third.body.contains("Message 000"));
    // Search by sender, subject and text.
    for (query, field, hit) in [
        ("s7%40remote", "from", "Message 007"),
        ("Message+042", "subject", "Message 042"),
        ("word99", "text", "Message 099"),
        ("word99", "all", "Message 099"),
    ] {
        let r = http(
            addr,
            "GET",
            &format!("/mail/f/{inbox}?q={query}&field={field}"),
            &alice,
            "",
            b"",
        );
        assert!(r.body.contains(hit), "{query} in {field}");
        assert!(
            r.body.matches("class=\"mail-row").count() <= 11,
            "{query} in {field} matches few"
        );
    }
    // Opening a message sets \Seen, as IMAP sees it.
    let uid = uids[5];
    assert!(!setup.flags(inbox, uid).contains(SystemFlags::SEEN));
    let page = http(
        addr,
        "GET",
        &format!("/mail/f/{inbox}/m/{uid}"),
        &alice,
        "",
        b"",
    );
    assert_eq!(page.status, 200);
    assert!(page.body.contains("body word5"));
    assert!(setup.flags(inbox, uid).contains(SystemFlags::SEEN));
    // Several at once: unread, then delete to Trash, then for good from Trash.
    let act = |folder: FolderId, form: String| {
        http(
            addr,
            "POST",
            &format!("/mail/f/{folder}/act"),
            &alice,
            "application/x-www-form-urlencoded",
            format!("_csrf={csrf}&{form}").as_bytes(),
        )
    };
    let r = act(
        inbox,
        format!("uid={uid}&action=unread&back=/mail/f/{inbox}/m/{uid}"),
    );
    assert_eq!(
        r.location(),
        format!("/mail/f/{inbox}"),
        "not back to a page that marks it read"
    );
    assert!(!setup.flags(inbox, uid).contains(SystemFlags::SEEN));
    let r = act(
        inbox,
        format!("uid={}&uid={}&action=delete", uids[0], uids[1]),
    );
    assert_eq!(r.status, 303);
    assert_eq!(setup.subjects(inbox), 118);
    assert_eq!(setup.subjects(trash), 2);
    let in_trash: Vec<u32> = setup
        .store
        .read(|s| s.folder(trash).unwrap().messages.keys().copied().collect());
    act(trash, format!("uid={}&action=delete", in_trash[0]));
    assert_eq!(setup.subjects(trash), 1);
    // Folders: create, move into, rename, delete; the standard ones stay.
    let form = |path: &str, body: String| {
        http(
            addr,
            "POST",
            path,
            &alice,
            "application/x-www-form-urlencoded",
            format!("_csrf={csrf}&{body}").as_bytes(),
        )
    };
    form("/mail/folders", "name=Projects%2F2026".into());
    let projects = setup.folder("alice@example.test", "Projects/2026");
    act(inbox, format!("uid={}&action=move&to={projects}", uids[2]));
    assert_eq!(setup.subjects(projects), 1);
    form(&format!("/mail/f/{projects}/rename"), "name=Done".into());
    assert_eq!(setup.folder("alice@example.test", "Done"), projects);
    form(&format!("/mail/f/{trash}/rename"), "name=Bin".into());
    assert_eq!(setup.folder("alice@example.test", "Trash"), trash);
    form(&format!("/mail/f/{inbox}/delete"), String::new());
    assert_eq!(setup.folder("alice@example.test", INBOX), inbox);
    form(&format!("/mail/f/{projects}/delete"), String::new());
    assert!(setup
        .store
        .read(|s| s.folder_by_name("alice@example.test", "Done").is_none()));
    let list = http(addr, "GET", "/mail/folders", &alice, "", b"");
    assert!(list.body.contains("Folder Done deleted."), "{}", list.body);
    setup.web.shutdown(Duration::from_secs(1));
}

#[test]
fn replies_drafts_and_uploads() {
    let setup = Setup::new(64 * 1024);
    let (alice, csrf) = setup.login("alice@example.test");
    let addr = setup.addr();
    let inbox = setup.folder("alice@example.test", INBOX);
    let drafts = setup.folder("alice@example.test", "Drafts");
    let uid = setup.deliver(
        "alice@example.test",
        "From: Bob <bob@remote.test>\r\nTo: alice@example.test, carol@remote.test\r\n\
         Cc: dave@remote.test\r\nSubject: Plans\r\nMessage-ID: <plans@remote.test>\r\n\
         References: <earlier@remote.test>\r\n\r\nWhat now?\r\n",
    );
    // Reply all: the sender, the other recipients, not oneself; the thread's ids.
    let page = http(
        addr,
        "GET",
        &format!("/mail/compose?reply={inbox}:{uid}&all=1"),
        &alice,
        "",
        b"",
    );
    assert!(page
        .body
        .contains("value=\"bob@remote.test, carol@remote.test\""));
    assert!(page.body.contains("value=\"dave@remote.test\""));
    assert!(page.body.contains("value=\"Re: Plans\""));
    assert!(
        page.body
            .contains("&#60;earlier@remote.test&#62; &#60;plans@remote.test&#62;"),
        "{}",
        page.body
    );
    assert!(page.body.contains("&#62; What now?"));
    let send = |fields: &[(&str, &str)], files: &[(&str, &[u8])]| {
        let (kind, body) = multipart(fields, files);
        http(
            addr,
            "POST",
            &format!("/mail/send?_csrf={csrf}"),
            &alice,
            &kind,
            &body,
        )
    };
    let reply_of = format!("{inbox}:{uid}");
    let attachment: Vec<u8> = (0..=255u8).collect();
    let r = send(
        &[
            ("to", "bob@remote.test"),
            ("bcc", "eve@remote.test"),
            ("subject", "Re: Plans"),
            ("body", "Let us meet."),
            ("in_reply_to", "<plans@remote.test>"),
            ("references", "<earlier@remote.test> <plans@remote.test>"),
            ("reply_of", &reply_of),
            ("action", "send"),
        ],
        &[("notes.bin", &attachment)],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    {
        let sent = setup.relay.sent.lock().unwrap();
        let (account, rcpts, message, also) = &sent[0];
        assert_eq!(account, "alice@example.test");
        assert_eq!(rcpts, &["bob@remote.test", "eve@remote.test"]);
        assert_eq!(
            *also, 2,
            "the \\Answered flag goes with it, and the draft that kept the upload goes"
        );
        let text = String::from_utf8_lossy(message);
        assert!(text.contains("In-Reply-To: <plans@remote.test>"), "{text}");
        assert!(
            text.contains("References: <earlier@remote.test> <plans@remote.test>"),
            "{text}"
        );
        assert!(
            text.contains("From: <alice@example.test>")
                || text.contains("From: alice@example.test"),
            "{text}"
        );
        assert!(
            !text.contains("eve@remote.test"),
            "Bcc stays out of the header: {text}"
        );
        assert!(text.contains("notes.bin"), "{text}");
    }
    assert!(setup.flags(inbox, uid).contains(SystemFlags::ANSWERED));
    assert!(
        setup
            .store
            .read(|s| s.folder(drafts).unwrap().messages.is_empty()),
        "the draft that kept the upload went with the sending"
    );
    // A refused sending keeps what was uploaded: the composer comes back on a draft
    // that holds it, and sending that draft takes the file along.
    let r = send(
        &[
            ("to", "not an address"),
            ("subject", "With a file"),
            ("action", "send"),
        ],
        &[("kept.bin", b"keep me")],
    );
    assert_eq!(r.status, 422);
    assert!(r.body.contains("kept.bin"), "{}", r.body);
    let kept_uid = setup
        .store
        .read(|s| *s.folder(drafts).unwrap().messages.keys().next().unwrap());
    let kept_ref = format!("{drafts}:{kept_uid}");
    assert!(
        r.body
            .contains(&format!("name=\"draft_of\" value=\"{kept_ref}\"")),
        "{}",
        r.body
    );
    let r = send(
        &[
            ("to", "bob@remote.test"),
            ("subject", "With a file"),
            ("draft_of", &kept_ref),
            ("forward_of", &kept_ref),
            ("action", "send"),
        ],
        &[],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    {
        let sent = setup.relay.sent.lock().unwrap();
        let text = String::from_utf8_lossy(&sent.last().unwrap().2);
        assert!(
            text.contains("kept.bin") && text.contains("a2VlcCBtZQ"),
            "{text}"
        );
    }
    assert!(setup
        .store
        .read(|s| s.folder(drafts).unwrap().messages.is_empty()));
    setup.relay.sent.lock().unwrap().pop();
    // A forward keeps the original's attachments.
    let with_file = setup.deliver(
        "alice@example.test",
        "From: carol@remote.test\r\nTo: alice@example.test\r\nSubject: Slides\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n\
         --b\r\nContent-Type: application/pdf\r\n\
         Content-Disposition: attachment; filename=\"=?utf-8?q?pr=C3=A9sentation.pdf?=\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n",
    );
    let page = http(
        addr,
        "GET",
        &format!("/mail/compose?forward={inbox}:{with_file}"),
        &alice,
        "",
        b"",
    );
    assert!(page.body.contains("value=\"Fwd: Slides\""));
    assert!(
        page.body.contains("présentation.pdf"),
        "RFC 2047 name decoded"
    );
    let forward_of = format!("{inbox}:{with_file}");
    let r = send(
        &[
            ("to", "dave@remote.test"),
            ("subject", "Fwd: Slides"),
            ("body", "FYI"),
            ("forward_of", &forward_of),
            ("action", "send"),
        ],
        &[],
    );
    assert_eq!(
        r.status,
        303,
        "{}",
        r.body.split("compose-error\">").nth(1).unwrap_or("")
    );
    {
        let sent = setup.relay.sent.lock().unwrap();
        let message = &sent.last().unwrap().2;
        let text = String::from_utf8_lossy(message);
        assert!(text.contains("JVBERi0xLjQK"), "the PDF goes along: {text}");
        assert!(text.contains("application/pdf"), "{text}");
    }
    // Too many recipients, a bad address: the form comes back with what was typed.
    let r = send(
        &[
            ("to", "a@x.test, b@x.test, c@x.test, d@x.test"),
            ("subject", "Many"),
            ("action", "send"),
        ],
        &[],
    );
    assert_eq!(r.status, 422);
    assert!(r.body.contains("too many recipients") && r.body.contains("value=\"Many\""));
    let r = send(&[("to", "not an address"), ("action", "send")], &[]);
    assert_eq!(r.status, 422);
    assert!(r.body.contains("not an address"));
    // An upload over the limit is refused before anything is stored.
    let big = vec![b'x'; 70 * 1024];
    let r = send(
        &[("to", "bob@remote.test"), ("action", "send")],
        &[("big.bin", &big)],
    );
    assert_eq!(r.status, 413);
    assert_eq!(setup.relay.sent.lock().unwrap().len(), 2);
    // One within the limit as uploaded but not once encoded is not kept in Drafts.
    let drafts_before = setup.subjects(drafts);
    let within: Vec<u8> = (0..60 * 1024).map(|n| (n % 251) as u8).collect();
    let r = send(
        &[("to", "bob@remote.test"), ("action", "send")],
        &[("within.bin", &within)],
    );
    assert_eq!(r.status, 413);
    assert!(r.body.contains("larger than"), "{}", r.body);
    assert_eq!(setup.subjects(drafts), drafts_before);
    assert_eq!(setup.relay.sent.lock().unwrap().len(), 2);
    // A draft is saved to Drafts, taken up again, and goes when sent.
    let r = send(
        &[
            ("to", "bob@remote.test"),
            ("subject", "Unfinished"),
            ("body", "Half"),
            ("in_reply_to", "<plans@remote.test>"),
            ("action", "draft"),
        ],
        &[("part.bin", b"abc")],
    );
    assert_eq!(r.location(), format!("/mail/f/{drafts}"));
    let draft_uid = setup
        .store
        .read(|s| *s.folder(drafts).unwrap().messages.keys().next().unwrap());
    assert!(setup.flags(drafts, draft_uid).contains(SystemFlags::DRAFT));
    let page = http(
        addr,
        "GET",
        &format!("/mail/compose?draft={drafts}:{draft_uid}"),
        &alice,
        "",
        b"",
    );
    assert!(page.body.contains("value=\"Unfinished\"") && page.body.contains("part.bin"));
    assert!(
        page.body
            .contains("name=\"in_reply_to\" value=\"&#60;plans@remote.test&#62;\""),
        "a draft of a reply stays in the thread"
    );
    let draft_of = format!("{drafts}:{draft_uid}");
    let r = send(
        &[
            ("to", "bob@remote.test"),
            ("subject", "Finished"),
            ("body", "Whole"),
            ("draft_of", &draft_of),
            ("forward_of", &draft_of),
            ("action", "send"),
        ],
        &[],
    );
    assert_eq!(r.status, 303);
    assert_eq!(setup.subjects(drafts), 0, "the draft went with the sending");
    let sent = setup.relay.sent.lock().unwrap();
    let text = String::from_utf8_lossy(&sent[2].2);
    assert!(
        text.contains("part.bin"),
        "the draft's attachment is kept: {text}"
    );
    drop(sent);
    setup.web.shutdown(Duration::from_secs(1));
}

#[test]
fn a_message_that_cannot_be_taken_apart_is_shown_raw() {
    let setup = Setup::new(50 << 20);
    let (alice, _) = setup.login("alice@example.test");
    let inbox = setup.folder("alice@example.test", INBOX);
    // More nested messages than a view takes apart.
    let nested = "Content-Type: message/rfc822\r\n".repeat(70);
    let uid = setup.deliver(
        "alice@example.test",
        &format!("From: x@remote.test\r\nSubject: Deep\r\n{nested}\r\nraw <b>text</b> here\r\n"),
    );
    let page = http(
        setup.addr(),
        "GET",
        &format!("/mail/f/{inbox}/m/{uid}"),
        &alice,
        "",
        b"",
    );
    assert_eq!(page.status, 200);
    assert!(page.body.contains("id=\"unparsed\""));
    assert!(
        page.body.contains("raw &#60;b&#62;text&#60;/b&#62; here"),
        "escaped raw text: {}",
        page.body
    );
    setup.web.shutdown(Duration::from_secs(1));
}
