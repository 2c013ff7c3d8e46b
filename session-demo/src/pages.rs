//! The HTML pages, rendered with `maud`, which escapes every interpolated value.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use maud::{html, Markup, DOCTYPE};
use session_store::{Session, Timestamp};

use crate::admin::AdminStats;
use crate::chart;
use crate::csrf::FORM_FIELD;
use crate::state::SessionUser;
use crate::users::DEMO_USERS;

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;\
padding:0 1rem;color:#222}header{display:flex;gap:1rem;align-items:center;\
border-bottom:1px solid #ccc;padding-bottom:.5rem}header form{margin-left:auto}\
.notice{background:#e8f5e9;padding:.5rem 1rem}.error{background:#fdecea;padding:.5rem 1rem}\
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}\
label{display:block;margin:.5rem 0}form.inline{display:inline}button{margin:.25rem 0}\
figure{margin:.5rem 0}figure svg{display:block;box-sizing:border-box;border:1px solid #ddd}\
figcaption,.small{font-size:.85rem;color:#555}td.num{text-align:right}tr.idle td{color:#777}";

/// A one-line message shown above a page after a redirect; chosen from a fixed set, so a
/// query string never puts text of its own on the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// After logging out.
    LoggedOut,
    /// After "log out everywhere", with how many sessions ended.
    EndedAll(u64),
}

/// The page frame: title, navigation, and a logout button when someone is logged in.
fn layout(title: &str, user: Option<&SessionUser>, csrf: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · session-demo" }
                style { (STYLE) }
            }
            body {
                header {
                    strong { "session-demo" }
                    a href="/" { "Home" }
                    @if user.is_some_and(SessionUser::is_admin) {
                        a id="admin-link" href="/admin" { "Admin" }
                    }
                    @if let Some(user) = user {
                        form.inline id="logout-form" method="post" action="/logout" {
                            input type="hidden" name=(FORM_FIELD) value=(csrf);
                            span id="current-user" { (user.username) } " "
                            button id="logout" type="submit" { "Log out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The start page: a login form, or who is logged in.
pub fn home(session: &Session, csrf: &str, notice: Option<Notice>, backend: &str) -> Markup {
    let user = SessionUser::of(session);
    let body = html! {
        @match notice {
            Some(Notice::LoggedOut) => p.notice id="notice" { "You are logged out." },
            Some(Notice::EndedAll(n)) => p.notice id="notice" {
                "Logged out everywhere: " (n) " session(s) ended."
            },
            None => {},
        }
        @match &user {
            Some(user) => (account(user, session, csrf, backend)),
            None => (login_form(csrf, None)),
        }
    };
    layout(
        if user.is_some() { "Account" } else { "Log in" },
        user.as_ref(),
        csrf,
        body,
    )
}

fn account(user: &SessionUser, session: &Session, csrf: &str, backend: &str) -> Markup {
    let lifetime = session.lifetime();
    html! {
        h1 { "Hello, " span id="greeting-user" { (user.username) } }
        table {
            tr { th { "User name" } td id="user-name" { (user.username) } }
            tr { th { "E-mail" } td { (user.email) } }
            tr { th { "Role" } td id="user-role" { (user.role) } }
            tr { th { "Subject" } td { (user.sub) } }
            tr { th { "This session" } td { (session.id().fingerprint()) } }
            tr { th { "Started" } td { (when(lifetime.created_at)) } }
            tr { th { "Idle expiry" } td { (when(lifetime.idle_expires_at)) } }
            tr { th { "Backend" } td id="backend" { (backend) } }
        }
        (logout_everywhere(csrf))
    }
}

fn logout_everywhere(csrf: &str) -> Markup {
    html! {
        form id="logout-everywhere-form" method="post" action="/logout-everywhere" {
            input type="hidden" name=(FORM_FIELD) value=(csrf);
            button id="logout-everywhere" type="submit" { "Log out everywhere" }
            " (ends all your sessions, in every browser)"
        }
    }
}

fn login_form(csrf: &str, error: Option<&str>) -> Markup {
    html! {
        h1 { "Log in" }
        @if let Some(error) = error {
            p.error id="error" { (error) }
        }
        form id="login-form" method="post" action="/login" {
            input type="hidden" name=(FORM_FIELD) value=(csrf);
            label { "User name " input id="username" name="username" autocomplete="username" required; }
            label { "Password " input id="password" name="password" type="password" autocomplete="current-password" required; }
            button id="login" type="submit" { "Log in" }
        }
        p {
            "Demo users: "
            @for (i, user) in DEMO_USERS.iter().enumerate() {
                @if i > 0 { ", " }
                code { (user.username) } " (" (user.role.as_str()) ")"
            }
            ". Their passwords are printed when the service starts."
        }
    }
}

/// The login page again after a refused login (401).
pub fn login_refused(csrf: &str) -> Markup {
    layout(
        "Log in",
        None,
        csrf,
        login_form(csrf, Some("Wrong user name or password.")),
    )
}

/// The admin page: the count, the last hour's chart, the users, your sessions.
pub fn admin(user: &SessionUser, session: &Session, csrf: &str, stats: &AdminStats) -> Markup {
    let current = session.id().handle();
    let minutes = stats.window.as_secs() / 60;
    let body = html! {
        h1 { "Sessions" }
        p { "Backend " code { (stats.backend) } ": "
            strong id="session-count" { (stats.count) } " live session(s)." }
        @if stats.truncated {
            p.error id="scan-capped" {
                "Only the first " (stats.scanned) " sessions were read (the limit, "
                code { "DEMO_ADMIN_SCAN_LIMIT" } " = " (stats.scan_limit)
                "): the logins and the users below cover those sessions only."
            }
        }
        h2 { "Last hour" }
        figure id="activity" {
            (chart::svg(&stats.chart))
            figcaption {
                "Logins: the live sessions by the minute of their login (exact, read from the \
                 store, so they survive a restart; sessions that have ended no longer count). \
                 Live sessions: the session count sampled by this process, by its cleanup task \
                 (every " code { "DEMO_CLEANUP_SECONDS" } ") and on each view of this page, \
                 kept in memory for an hour (a restart starts it afresh)."
            }
        }
        (chart_data(stats))
        h2 { "Users" }
        p.small id="users-summary" {
            (stats.users_total) " user(s) with live sessions, " (stats.users_active)
            " active in the last " (minutes) " minutes; most recent activity first."
            @if stats.users.len() < stats.users_total {
                " Showing the first " (stats.users.len()) "."
            }
        }
        table id="users" {
            tr {
                th { "User" } th { "Live sessions" } th { "Last activity" }
                th { "First login" } th { "Last login" }
            }
            @for u in &stats.users {
                tr class=(if u.active { "active" } else { "idle" }) {
                    td.user { (u.name) }
                    td.num { (u.sessions) }
                    td { (ago(u.last_activity)) }
                    td { (ago(u.first_login)) }
                    td { (ago(u.last_login)) }
                }
            }
        }
        h2 { "Your sessions" }
        table id="my-sessions" {
            tr { th { "Session" } th { "Started" } th { "Last activity" } th { "Expires" } }
            @for s in &stats.mine {
                tr {
                    td { (s.handle.fingerprint()) @if s.handle == current { " (this one)" } }
                    td { (when(s.lifetime.created_at)) }
                    td { (when(crate::admin::last_activity(&s.lifetime))) }
                    td { (when(s.lifetime.expires_at())) }
                }
            }
        }
        (logout_everywhere(csrf))
        p.small { "From " (stats.scanned) " session(s) read"
            @if stats.truncated { " (stopped at the limit, DEMO_ADMIN_SCAN_LIMIT)" } "." }
    };
    layout("Admin", Some(user), csrf, body)
}

/// The chart's numbers as a table, for whoever cannot see the chart: the minutes with data.
fn chart_data(stats: &AdminStats) -> Markup {
    let chart = &stats.chart;
    let rows: Vec<(usize, Option<u64>, u64)> = (0..chart.buckets())
        .map(|i| {
            let live = chart.live.get(i).copied().flatten();
            let logins = chart.logins.get(i).copied().unwrap_or(0);
            (i, live, logins)
        })
        .filter(|(_, live, logins)| live.is_some() || *logins > 0)
        .collect();
    html! {
        details id="chart-data" {
            summary { "The chart's numbers (" (rows.len()) " minute(s) with data)" }
            table {
                tr { th { "Minute (UTC)" } th { "Live sessions" } th { "Logins" } }
                @for (i, live, logins) in &rows {
                    tr {
                        td { (chart::clock(chart.bucket_start(*i))) }
                        td.num { @match live { Some(n) => (n), None => "–" } }
                        td.num { (logins) }
                    }
                }
            }
        }
    }
}

/// A page for an error status, with a way back.
pub fn error_page(status: StatusCode, message: &str) -> Markup {
    let title = status.canonical_reason().unwrap_or("Error");
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (status.as_u16()) " " (title) " · session-demo" }
                style { (STYLE) }
            }
            body {
                h1 { (status.as_u16()) " " (title) }
                p.error id="error" { (message) }
                p { a href="/" { "Back to the start page" } }
            }
        }
    }
}

/// A timestamp as `2026-11-27T21:25:59Z (in 1h 59m)` / `(3m ago)`.
fn when(at: Timestamp) -> String {
    let (stamp, relative) = stamp_and_relative(at);
    format!("{stamp} ({relative})")
}

/// A timestamp as `3m 5s ago`, in a `<time>` with the full stamp as its `datetime` and its
/// tooltip.
fn ago(at: Timestamp) -> Markup {
    let (stamp, relative) = stamp_and_relative(at);
    html! { time datetime=(stamp) title=(stamp) { (relative) } }
}

/// `2026-11-27T21:25:59Z` and `in 1h 59m` / `3m ago` / `just now`.
fn stamp_and_relative(at: Timestamp) -> (String, String) {
    let time = UNIX_EPOCH + Duration::from_millis(at.as_millis());
    let stamp = humantime::format_rfc3339_seconds(time).to_string();
    let rounded = |d: Duration| humantime::format_duration(Duration::from_secs(d.as_secs()));
    let relative = match time.duration_since(SystemTime::now()) {
        Ok(ahead) if ahead >= Duration::from_secs(1) => format!("in {}", rounded(ahead)),
        Err(behind) if behind.duration() >= Duration::from_secs(1) => {
            format!("{} ago", rounded(behind.duration()))
        }
        _ => "just now".to_owned(),
    };
    (stamp, relative)
}
