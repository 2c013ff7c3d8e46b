//! `GET /metrics` of the real binary (started by the browser tests' support code, on the
//! memory backend), scraped over HTTP after a login: no browser needed.

// The browser tests' support module; this test uses only `DemoProcess`.
#[allow(dead_code)]
mod support;

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use session_demo::cookies::COOKIE_NAME;
use support::{DemoProcess, TIMEOUT};

struct Reply {
    status: StatusCode,
    content_type: String,
    cookie: Option<String>,
    body: String,
}

struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Http {
    fn new() -> Self {
        Http {
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    async fn send(&self, method: Method, url: &str, cookie: Option<&str>, form: &str) -> Reply {
        let mut request = Request::builder().method(method).uri(url);
        if let Some(token) = cookie {
            request = request.header(header::COOKIE, format!("{COOKIE_NAME}={token}"));
        }
        if !form.is_empty() {
            request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        let request = request
            .body(Full::new(Bytes::from(form.to_owned())))
            .unwrap();
        let response = self
            .client
            .request(request)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        let status = response.status();
        let header = |name| {
            response
                .headers()
                .get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        let content_type = header(header::CONTENT_TYPE).concat();
        let cookie = header(header::SET_COOKIE).iter().find_map(|c| {
            let value = c.strip_prefix(&format!("{COOKIE_NAME}="))?;
            Some(value.split(';').next().unwrap().to_owned())
        });
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            content_type,
            cookie,
            body: String::from_utf8(body.to_vec()).unwrap(),
        }
    }
}

/// The CSRF token in the page's first form.
fn csrf(page: &str) -> String {
    let marker = r#"name="csrf_token" value=""#;
    let start = page.find(marker).expect("a CSRF field") + marker.len();
    let len = page[start..].find('"').unwrap();
    page[start..start + len].to_owned()
}

/// The value of the sample `name{labels…}` whose labels include every one of `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (series_name, rest) = series.split_once('{')?;
        let series_labels: Vec<&str> = rest.strip_suffix('}')?.split(',').collect();
        let all = labels
            .iter()
            .all(|(k, v)| series_labels.contains(&format!("{k}=\"{v}\"").as_str()));
        (series_name == name && all).then(|| value.parse().unwrap())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_a_logins_store_calls_on_the_memory_backend() {
    // Cleanup every second, so the live-sessions gauge is set without an admin visit.
    let demo = DemoProcess::start(&[("DEMO_CLEANUP_SECONDS", "1".to_owned())]);
    let http = Http::new();

    let first = http.send(Method::GET, demo.url(), None, "").await;
    assert_eq!(first.status, StatusCode::OK);
    let anonymous = first.cookie.expect("the first visit sets a cookie");
    let form = format!(
        "username=alice&password=demo-alice&csrf_token={}",
        csrf(&first.body)
    );
    let login = http
        .send(Method::POST, &demo.at("/login"), Some(&anonymous), &form)
        .await;
    assert_eq!(login.status, StatusCode::SEE_OTHER, "{}", login.body);
    let logged_in = login.cookie.expect("login sets the rotated cookie");

    // Wait for a cleanup pass after the login to set the gauge to the one live session.
    let memory = [("backend", "memory")];
    let started = Instant::now();
    let scrape = loop {
        let scrape = http.send(Method::GET, &demo.at("/metrics"), None, "").await;
        assert_eq!(scrape.status, StatusCode::OK, "{}", scrape.body);
        let live = sample(&scrape.body, "session_store_live_sessions", &memory);
        if live == Some(1.0) {
            break scrape;
        }
        assert!(
            started.elapsed() < TIMEOUT,
            "no live-sessions gauge of 1 within {TIMEOUT:?}:\n{}\nstderr:\n{}",
            scrape.body,
            demo.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        scrape.content_type.starts_with("text/plain; version=0.0.4"),
        "{}",
        scrape.content_type
    );
    let text = &scrape.body;

    // The first visit created the session; the login rotated it and stored the user.
    let calls = |op: &str| {
        let labels = [("backend", "memory"), ("op", op), ("outcome", "ok")];
        sample(text, "session_store_calls_total", &labels)
    };
    assert_eq!(calls("put_create"), Some(1.0), "{text}");
    assert_eq!(calls("rotate"), Some(1.0), "{text}");
    assert_eq!(calls("put_if_version"), Some(1.0), "{text}");
    assert!(calls("cleanup").unwrap_or(0.0) >= 1.0, "{text}");

    // Every call timed, as a Prometheus histogram with buckets.
    assert!(
        text.contains("# TYPE session_store_call_seconds histogram"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE session_store_calls_total counter"),
        "{text}"
    );
    let rotate = [("backend", "memory"), ("op", "rotate")];
    assert_eq!(
        sample(text, "session_store_call_seconds_count", &rotate),
        Some(1.0),
        "{text}"
    );
    let inf = [("backend", "memory"), ("op", "rotate"), ("le", "+Inf")];
    assert_eq!(
        sample(text, "session_store_call_seconds_bucket", &inf),
        Some(1.0),
        "{text}"
    );

    // Labels name backends and operations, never sessions.
    for token in [&anonymous, &logged_in] {
        assert!(!text.contains(token.as_str()));
    }
    assert!(!text.contains("alice"));
}
