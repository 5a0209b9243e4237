//! `GET /api/v1/events/stream`: a tenant's events live as server-sent
//! events, filtered, resumable with Last-Event-ID with no gap and no
//! duplicate, with heartbeats, and a slow client dropped with a clear close.

use std::collections::VecDeque;
use std::time::Duration;

use events::TenantId;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::app::TestApp;
use crate::support::append_n;

/// One server-sent event.
#[derive(Debug, Clone)]
struct Sse {
    id: Option<String>,
    event: String,
    data: Value,
}

/// A feed connection, read a chunk at a time.
struct Feed {
    resp: reqwest::Response,
    buf: String,
    ready: VecDeque<Sse>,
    /// Comment lines seen (heartbeats).
    comments: Vec<String>,
    ended: bool,
}

impl Feed {
    async fn open(app: &TestApp, token: &str, query: &str, last_id: Option<&str>) -> Feed {
        let mut req = app
            .client
            .get(format!("{}/api/v1/events/stream{query}", app.base))
            .bearer_auth(token);
        if let Some(id) = last_id {
            req = req.header("Last-Event-ID", id);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        Feed {
            resp,
            buf: String::new(),
            ready: VecDeque::new(),
            comments: Vec::new(),
            ended: false,
        }
    }

    fn parse(&mut self) {
        while let Some(end) = self.buf.find("\n\n") {
            let block: String = self.buf.drain(..end + 2).collect();
            let (mut id, mut event, mut data) = (None, String::from("message"), String::new());
            let mut comment_only = true;
            for line in block.lines().filter(|l| !l.is_empty()) {
                if let Some(c) = line.strip_prefix(':') {
                    self.comments.push(c.trim().to_owned());
                    continue;
                }
                comment_only = false;
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                match field {
                    "id" => id = Some(value.to_owned()),
                    "event" => event = value.to_owned(),
                    "data" => data.push_str(value),
                    _ => {}
                }
            }
            if !comment_only {
                let data = serde_json::from_str(&data).unwrap_or(Value::String(data));
                self.ready.push_back(Sse { id, event, data });
            }
        }
    }

    /// The next event, or None when the stream ended or `wait` passed.
    async fn next(&mut self, wait: Duration) -> Option<Sse> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            self.parse();
            if let Some(e) = self.ready.pop_front() {
                return Some(e);
            }
            if self.ended {
                return None;
            }
            match tokio::time::timeout_at(deadline, self.resp.chunk()).await {
                Err(_) => return None,
                Ok(Ok(Some(bytes))) => self.buf.push_str(&String::from_utf8_lossy(&bytes)),
                Ok(_) => self.ended = true,
            }
        }
    }

    /// Events until one of type `last` (inclusive).
    async fn until(&mut self, last: &str) -> Vec<Sse> {
        let mut got = Vec::new();
        loop {
            let e = self
                .next(Duration::from_secs(10))
                .await
                .unwrap_or_else(|| panic!("no {last} in time; got {got:#?}"));
            let done = e.event == last;
            got.push(e);
            if done {
                return got;
            }
        }
    }
}

async fn provider(app: &TestApp, t: &str) -> String {
    app.twilio(t, "tok").await
}

async fn patch_limits(app: &TestApp, t: &str, concurrent: u32) {
    let r = app
        .patch(
            "/api/v1/call-limits",
            t,
            json!({"concurrent_max": concurrent}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

/// This tenant's events in the store, in global order, as (id, type).
async fn stored(app: &TestApp, tenant: TenantId) -> Vec<(String, String)> {
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT global_position, event_type FROM events WHERE tenant_id = $1 ORDER BY global_position",
    )
    .bind(tenant.uuid())
    .fetch_all(&app.env.pool)
    .await
    .unwrap();
    rows.into_iter().map(|(p, t)| (p.to_string(), t)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_streams_this_tenants_events_live_and_only_its_own() {
    let app = TestApp::spawn().await;
    let a = TenantId::new();
    let (ta, tb) = (app.admin(a), app.admin(TenantId::new()));
    let mut feed = Feed::open(&app, &ta, "", None).await;
    let pid = provider(&app, &tb).await;
    app.attach(&tb, "+12025550177", &pid, None).await;
    let pid = provider(&app, &ta).await;
    let r = app.attach(&ta, "+12025550123", &pid, None).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let got = feed.until("NumberAttached").await;
    let types: Vec<&str> = got.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        types,
        ["TenantKeyCreated", "ProviderCreated", "NumberAttached"]
    );
    let mut last = 0;
    for e in &got {
        assert_eq!(e.data["tenant_id"], a.to_string(), "another tenant's event");
        let id: i64 = e.id.as_deref().unwrap().parse().unwrap();
        assert_eq!(e.data["global_position"], id);
        assert_eq!(e.data["type"], e.event.as_str());
        assert!(e.data["hash"].is_string() && e.data["stream_id"].is_string());
        assert!(id > last);
        last = id;
    }
    assert_eq!(got[1].data["stream_id"], pid.as_str());
    // Credentials are masked in the feed as everywhere.
    assert!(!got[1].data.to_string().contains("tok\""));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_pick_stream_type_stream_and_event_type() {
    let app = TestApp::spawn().await;
    let t = app.admin(TenantId::new());
    let mut numbers = Feed::open(&app, &t, "?stream_type=number", None).await;
    let mut created = Feed::open(&app, &t, "?type=ProviderCreated", None).await;
    let pid = provider(&app, &t).await;
    let mut one = Feed::open(&app, &t, &format!("?stream_id={pid}"), None).await;
    let r = app.attach(&t, "+12025550123", &pid, None).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = app
        .patch(
            &format!("/api/v1/telephony/providers/{pid}"),
            &t,
            json!({"label": "renamed"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let n = numbers.next(Duration::from_secs(10)).await.unwrap();
    assert_eq!(n.event, "NumberAttached");
    let c = created.next(Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        (c.event.as_str(), c.data["stream_id"].as_str()),
        ("ProviderCreated", Some(pid.as_str()))
    );
    let o = one.next(Duration::from_secs(10)).await.unwrap();
    assert_eq!(o.data["stream_id"], pid.as_str());
    assert_ne!(o.event, "NumberAttached");
    // Nothing else matched.
    assert!(numbers.next(Duration::from_millis(300)).await.is_none());
    assert!(created.next(Duration::from_millis(100)).await.is_none());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_with_last_event_id_has_no_gap_and_no_duplicate() {
    let app = TestApp::spawn().await;
    let tenant = TenantId::new();
    let t = app.admin(tenant);
    patch_limits(&app, &t, 1).await;
    let mut feed = Feed::open(&app, &t, "?after=0", None).await;
    let mut seen: Vec<(String, String)> = Vec::new();
    // Writes go on the whole time, across the disconnect and the resume.
    let writer = {
        let (base, t) = (app.base.clone(), t.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            for i in 2..60u32 {
                let r = http
                    .patch(format!("{base}/api/v1/call-limits"))
                    .bearer_auth(&t)
                    .json(&json!({"concurrent_max": i}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
            }
        })
    };
    while seen.len() < 15 {
        let e = feed.next(Duration::from_secs(10)).await.expect("events");
        seen.push((e.id.unwrap(), e.event));
    }
    drop(feed);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let last = seen.last().unwrap().0.clone();
    let mut feed = Feed::open(&app, &t, "", Some(&last)).await;
    writer.await.unwrap();
    let want = stored(&app, tenant).await;
    while seen.len() < want.len() {
        let e = feed
            .next(Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("stopped at {} of {}", seen.len(), want.len()));
        seen.push((e.id.unwrap(), e.event));
    }
    assert_eq!(
        seen, want,
        "the two connections together are the store's order"
    );
    assert!(
        feed.next(Duration::from_millis(300)).await.is_none(),
        "a duplicate"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_keep_an_idle_feed_open() {
    let app = TestApp::spawn_with(&["--feed-heartbeat", "200ms"]).await;
    let t = app.admin(TenantId::new());
    let mut feed = Feed::open(&app, &t, "", None).await;
    let quiet = feed.next(Duration::from_millis(900)).await;
    assert!(quiet.is_none(), "{quiet:?}");
    assert!(
        feed.comments.iter().filter(|c| *c == "heartbeat").count() >= 2,
        "{:?}",
        feed.comments
    );
    assert!(!feed.ended);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_name_the_field() {
    use switchboard::auth::Scope;
    let app = TestApp::spawn().await;
    let tenant = TenantId::new();
    let t = app.admin(tenant);
    let cases: [(&str, Option<&str>, &str); 6] = [
        ("?stream_type=planet", None, "stream_type"),
        ("?stream_id=nope", None, "stream_id"),
        ("?type=no-such-thing!", None, "type"),
        ("?after=-1", None, "after"),
        ("", Some("abc"), "Last-Event-ID"),
        ("?limit=5", None, "limit"),
    ];
    for (query, header, field) in cases {
        let mut req = app
            .client
            .get(format!("{}/api/v1/events/stream{query}", app.base))
            .bearer_auth(&t);
        if let Some(h) = header {
            req = req.header("Last-Event-ID", h);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{query} {header:?}");
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/problem+json"));
        let body: Value = r.json().await.unwrap();
        assert!(
            body["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["field"] == field),
            "{query}: {body}"
        );
    }
    let calls_only = app.token(tenant, &[Scope::CallsWrite]);
    let r = app.get("/api/v1/events/stream", &calls_only).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .client
        .get(format!("{}/api/v1/events/stream", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_is_closed_with_where_to_resume_and_loses_nothing() {
    let app = TestApp::spawn_with(&["--feed-buffer", "64"]).await;
    let tenant = TenantId::new();
    let t = app.admin(tenant);
    let stream = Uuid::now_v7();
    let mut feed = Feed::open(&app, &t, "", None).await;
    // Far more than the channel and the sockets between hold, while the
    // client reads nothing.
    for chunk in 0..8 {
        append_n(&app.env.pool, tenant, stream, chunk * 5000, 5000).await;
    }
    let mut got = Vec::new();
    let closed = loop {
        let e = feed
            .next(Duration::from_secs(20))
            .await
            .expect("the feed ends with an overflow event");
        if e.event == "overflow" {
            break e;
        }
        got.push(e.id.unwrap());
    };
    assert!(got.len() < 40_000, "it was never dropped");
    assert!(
        feed.next(Duration::from_secs(5)).await.is_none(),
        "closed after it"
    );
    let resume = closed.data["resume_after"].as_str().unwrap().to_owned();
    // Where it stopped: its last event, or where it started (an empty
    // store) when the burst overran it before its first.
    let stopped = got.last().cloned().unwrap_or_else(|| "0".to_owned());
    assert_eq!(resume, stopped, "resume where it stopped");
    // Resuming there gets every other event, once.
    let mut feed = Feed::open(&app, &t, "", Some(&resume)).await;
    while got.len() < 40_000 {
        let e = feed.next(Duration::from_secs(20)).await.expect("the rest");
        assert_eq!(e.event, "ProviderDeleted");
        got.push(e.id.unwrap());
    }
    let want: Vec<String> = stored(&app, tenant)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(got, want);
    app.stop().await;
}
