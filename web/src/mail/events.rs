//! `GET /mail/events`: server-sent events that say the account's mailbox changed
//! (new mail, or a change by IMAP, POP3 or another page), from the store's account
//! change signal — the one IMAP IDLE waits on. The page then fetches itself again and
//! swaps its list and folder counts in place (`static/panel.js`).
//!
//! An event carries the total unread count of INBOX; a burst of changes makes one
//! event at most every [`EVENT_GAP`]. The stream ends with the session (an `ended`
//! event, upon which the page reloads to the login page) or the server.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use lifeboat_store::{Signal, SystemFlags, INBOX};

use crate::panel::Shared;
use crate::session::Session;

/// Shortest time between two events.
const EVENT_GAP: Duration = Duration::from_millis(500);
/// How often the session is looked at when nothing changes.
const SESSION_CHECK_INTERVAL: Duration = Duration::from_secs(30);

pub(crate) async fn events(State(state): State<Shared>, session: Session) -> Response {
    let signal = state.store.account_signal(&session.account.address);
    struct Stream {
        state: Shared,
        key: [u8; 32],
        address: String,
        signal: Arc<Signal>,
        seen: u64,
        stopping: tokio::sync::watch::Receiver<bool>,
        ended: bool,
        first: bool,
    }
    let start = Stream {
        state: state.clone(),
        key: session.key,
        address: session.account.address.clone(),
        seen: signal.version(),
        signal,
        stopping: state.stopping.subscribe(),
        ended: false,
        first: true,
    };
    let stream = futures_util::stream::unfold(start, |mut s| async move {
        loop {
            if s.ended || *s.stopping.borrow() {
                return None;
            }
            if !s.state.sessions.alive(&s.key, &s.state.store) {
                s.ended = true;
                return Some((
                    Ok::<_, Infallible>(Event::default().event("ended").data("")),
                    s,
                ));
            }
            if s.first {
                // Tells the page the stream is up (a change between its load and now
                // is then fetched at once).
                s.first = false;
                return Some((Ok(Event::default().event("ready").data("")), s));
            }
            tokio::select! {
                version = s.signal.changed(s.seen) => {
                    s.seen = version;
                    tokio::time::sleep(EVENT_GAP).await;
                    s.seen = s.signal.version();
                    let unread = s.state.store.read(|st| {
                        st.folder_by_name(&s.address, INBOX).map_or(0, |f| {
                            f.messages
                                .values()
                                .filter(|m| !m.flags.system.contains(SystemFlags::SEEN))
                                .count()
                        })
                    });
                    return Some((
                        Ok(Event::default().event("mail").data(unread.to_string())),
                        s,
                    ));
                }
                _ = tokio::time::sleep(SESSION_CHECK_INTERVAL) => {}
                _ = s.stopping.changed() => return None,
            }
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
