//! The dashboard (SPEC §9): per domain the mode, forced or automatic, upstream health,
//! queue depth, portal INBOX count and the timeline of mode changes; kept up to date
//! by server-sent events.
//!
//! The live part is one template rendered both into the page and into each event, so
//! the page without JavaScript and the page with it show the same. An event is sent
//! only when the rendering changed; the stream looks again when the store's directory
//! or queue moves, or every [`LIVE_INTERVAL`] (upstream health lives in the router),
//! and ends with the session or the server.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use lifeboat_store::{Address, Mode, INBOX};

use super::{ago, here, panel_scope, render, when, Layout, Section, Shared};
use crate::i18n::{fill, Lang, Texts};
use crate::session::Session;
use crate::{AppState, Scope};

/// How often the live part is looked at when nothing in the store moved.
const LIVE_INTERVAL: Duration = Duration::from_secs(2);
/// Shortest time between two looks at the live part (the queue may move thousands of
/// times a second under load).
const LIVE_GAP: Duration = Duration::from_secs(1);
/// Mode changes shown per domain.
const TIMELINE_ITEMS: usize = 6;

/// One mode change of the timeline.
pub(crate) struct TimelineItem {
    pub(crate) when: String,
    pub(crate) ago: String,
    pub(crate) to: &'static str,
    pub(crate) to_label: &'static str,
    pub(crate) forced: bool,
    pub(crate) reason: String,
}

/// One domain's card.
pub(crate) struct Card {
    pub(crate) name: String,
    pub(crate) upstream: String,
    pub(crate) mode: &'static str,
    pub(crate) mode_label: &'static str,
    pub(crate) control: &'static str,
    pub(crate) forced: bool,
    pub(crate) since: String,
    pub(crate) health: String,
    pub(crate) health_label: &'static str,
    pub(crate) health_since: String,
    pub(crate) queue: usize,
    pub(crate) portal: usize,
    pub(crate) accounts: usize,
    pub(crate) timeline: Vec<TimelineItem>,
}

#[derive(Template)]
#[template(path = "dashboard_live.html")]
pub(crate) struct Live {
    t: &'static Texts,
    cards: Vec<Card>,
    domains: usize,
    in_emergency: usize,
    queued: usize,
    portal: usize,
    updated: String,
    /// What keeps mail out, for everyone who sees the dashboard.
    alerts: Vec<String>,
}

pub(crate) fn mode_label(t: &Texts, mode: Mode) -> &'static str {
    match mode {
        Mode::Normal => t.mode_normal,
        Mode::Emergency => t.mode_emergency,
    }
}

pub(crate) fn health_label(t: &Texts, health: &str) -> &'static str {
    match health {
        "up" => t.health_up,
        "down" => t.health_down,
        _ => t.health_unknown,
    }
}

/// The live part for `scope`.
pub(crate) fn live(state: &AppState, t: &'static Texts, scope: &Scope) -> Live {
    let mut cards: Vec<Card> = state.store.read(|s| {
        let mut queue: BTreeMap<&str, usize> = BTreeMap::new();
        for entry in s.queue() {
            *queue
                .entry(Address::domain_of(&entry.recipient))
                .or_default() += 1;
        }
        // One pass over the accounts for every domain's figures.
        let mut mailboxes: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for a in s.accounts(None) {
            let domain = Address::domain_of(&a.address);
            if !scope.sees_domain(domain) {
                continue;
            }
            let inbox = a
                .folders
                .get(INBOX)
                .and_then(|id| s.folder(*id))
                .map_or(0, |f| f.messages.len());
            let figures = mailboxes.entry(domain).or_default();
            figures.0 += 1;
            figures.1 += inbox;
        }
        s.domains()
            .filter(|d| scope.sees_domain(&d.name))
            .map(|d| {
                let (accounts, portal) =
                    mailboxes.get(d.name.as_str()).copied().unwrap_or_default();
                let timeline = s
                    .mode_history(&d.name, TIMELINE_ITEMS)
                    .into_iter()
                    .map(|c| TimelineItem {
                        when: when(c.at),
                        ago: ago(t, c.at),
                        to: c.to.as_str(),
                        to_label: mode_label(t, c.to),
                        forced: c.forced.is_some(),
                        reason: c.reason.clone(),
                    })
                    .collect();
                Card {
                    name: d.name.clone(),
                    upstream: d.upstream.clone(),
                    mode: d.mode.as_str(),
                    mode_label: mode_label(t, d.mode),
                    control: match (d.forced, d.failover) {
                        (Some(_), _) => t.control_forced,
                        (None, lifeboat_store::Failover::Auto) => t.control_auto,
                        (None, lifeboat_store::Failover::Manual) => t.control_manual,
                    },
                    forced: d.forced.is_some(),
                    since: fill(t.since, &[&ago(t, d.mode_since)]),
                    health: String::new(),
                    health_label: t.health_unknown,
                    health_since: String::new(),
                    queue: queue.get(d.name.as_str()).copied().unwrap_or(0),
                    portal,
                    accounts,
                    timeline,
                }
            })
            .collect()
    });
    for card in &mut cards {
        let (health, since) = state
            .status
            .as_ref()
            .map(|st| st.upstream_health(&card.upstream))
            .unwrap_or_else(|| ("unknown".to_string(), 0));
        card.health_label = health_label(t, &health);
        card.health_since = if since > 0 {
            fill(t.since, &[&ago(t, since)])
        } else {
            String::new()
        };
        card.health = health;
    }
    // Domains in an emergency first: they are what the reader came for.
    cards.sort_by_key(|c| (c.mode != "emergency", c.name.clone()));
    let mut alerts = Vec::new();
    if let Some(why) = state.store.poisoned() {
        alerts.push(fill(t.alert_store_refuses, &[&why]));
    }
    if state.store.space_left() == Some(0) {
        alerts.push(t.alert_disk_reserve.to_string());
    }
    Live {
        t,
        domains: cards.len(),
        in_emergency: cards.iter().filter(|c| c.mode == "emergency").count(),
        queued: cards.iter().map(|c| c.queue).sum(),
        portal: cards.iter().map(|c| c.portal).sum(),
        cards,
        updated: when(lifeboat_store::now()),
        alerts,
    }
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    layout: Layout,
    t: &'static Texts,
    live: String,
}

/// `GET /panel`.
pub(crate) async fn page(
    State(state): State<Shared>,
    session: Session,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let scope = match panel_scope(&session, &headers) {
        Ok(scope) => scope,
        Err(hidden) => return hidden.into_response(),
    };
    let t = Lang::of(&headers).texts();
    let live = live(&state, t, &scope).render().unwrap_or_default();
    let page = DashboardPage {
        layout: Layout::new(
            &state,
            &session,
            &headers,
            &here(&uri),
            Section::Dashboard,
            t.nav_dashboard,
        ),
        t,
        live,
    };
    render(&page)
}

/// `GET /panel/events`: the live part, each time it changes.
pub(crate) async fn events(
    State(state): State<Shared>,
    session: Session,
    headers: HeaderMap,
) -> Response {
    let scope = match panel_scope(&session, &headers) {
        Ok(scope) => scope,
        Err(hidden) => return hidden.into_response(),
    };
    let t = Lang::of(&headers).texts();
    let directory = state.store.directory_signal();
    let queue = state.store.queue_signal();
    let stopping = state.stopping.subscribe();
    struct Stream {
        state: Shared,
        key: [u8; 32],
        scope: Scope,
        t: &'static Texts,
        last: String,
        directory: std::sync::Arc<lifeboat_store::Signal>,
        queue: std::sync::Arc<lifeboat_store::Signal>,
        stopping: tokio::sync::watch::Receiver<bool>,
        ended: bool,
        looked: Option<tokio::time::Instant>,
    }
    let start = Stream {
        state: state.clone(),
        key: session.key,
        scope,
        t,
        last: String::new(),
        directory,
        queue,
        stopping,
        ended: false,
        looked: None,
    };
    let stream = futures_util::stream::unfold(start, |mut s| async move {
        loop {
            if s.ended || *s.stopping.borrow() {
                return None;
            }
            if !s.state.sessions.alive(&s.key, &s.state.store) {
                // The page reloads, which shows the login page.
                s.ended = true;
                return Some((
                    Ok::<_, Infallible>(Event::default().event("ended").data("")),
                    s,
                ));
            }
            if let Some(looked) = s.looked {
                tokio::time::sleep_until(looked + LIVE_GAP).await;
            }
            s.looked = Some(tokio::time::Instant::now());
            let (seen_directory, seen_queue) = (s.directory.version(), s.queue.version());
            let html = live(&s.state, s.t, &s.scope).render().unwrap_or_default();
            // The time stamp changes every time: compare without it.
            let key = html.replace(&when(lifeboat_store::now()), "");
            if key != s.last {
                s.last = key;
                return Some((Ok(Event::default().event("dashboard").data(html)), s));
            }
            tokio::select! {
                _ = s.directory.changed(seen_directory) => {}
                _ = s.queue.changed(seen_queue) => {}
                _ = tokio::time::sleep(LIVE_INTERVAL) => {}
                _ = s.stopping.changed() => return None,
            }
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
