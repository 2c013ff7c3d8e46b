//! End-to-end tests: headless Chromium, driven over WebDriver (`fantoccini` + the system
//! `chromedriver`), against the real `session-demo` binary on loopback, on the memory backend
//! and on a real `redis-server` started by `redis-harness`.
//!
//! Needs `chromium` and `chromedriver` (`apt-get install -y chromium chromium-driver`; or set
//! `CHROMIUM` / `CHROMEDRIVER`) and `redis-server`. Each test saves a screenshot of its final
//! page under `<cargo target dir>/browser-screenshots/`.

mod support;

use redis_harness::RedisServer;
use support::{redis_env, Chromedriver, DemoProcess, SERIAL};

#[tokio::test]
async fn login_reload_wrong_password_and_missing_csrf_token() {
    let _serial = SERIAL.lock().await;
    let demo = DemoProcess::start(&[]);
    let driver = Chromedriver::start();
    let browser = driver.browser().await;

    // A wrong password is refused, and says so.
    browser.goto(demo.url()).await;
    browser.submit_login("alice", "not-her-password").await;
    let error = browser.text("#error").await;
    assert!(error.contains("Wrong user name or password"), "{error}");
    assert!(!browser.has("#current-user").await);

    // The right one logs in; a reload still shows the user.
    browser.submit_login("alice", "demo-alice").await;
    assert_eq!(browser.text("#current-user").await, "alice");
    browser.reload().await;
    assert_eq!(browser.text("#current-user").await, "alice");
    assert_eq!(browser.text("#backend").await, "memory");

    // A POST without the CSRF token (the hidden field removed) is refused with a clear page,
    // and changes nothing.
    browser
        .script("document.querySelector('#logout-form input[name=csrf_token]').remove()")
        .await;
    browser.click("#logout").await;
    let error = browser.text("#error").await;
    assert!(error.contains("CSRF"), "{error}");
    assert!(browser.text("h1").await.contains("403"));
    browser.screenshot("csrf-refused").await;

    browser.goto(demo.url()).await;
    assert_eq!(browser.text("#current-user").await, "alice");
    let shot = browser.screenshot("login-reload").await;
    assert!(shot.is_file());
    browser.close().await;
}

#[tokio::test]
async fn on_redis_a_login_survives_a_restart_of_the_service() {
    let _serial = SERIAL.lock().await;
    let redis = RedisServer::start();
    let env = redis_env(&redis);
    let demo = DemoProcess::start(&env);
    let driver = Chromedriver::start();
    let browser = driver.browser().await;

    browser.login(demo.url(), "aaron", "demo-aaron").await;
    assert_eq!(browser.text("#backend").await, "redis");

    // Kill the service (no graceful shutdown) and start a new one on the same address.
    let addr = demo.addr();
    demo.kill();
    let demo = DemoProcess::start_on(&addr, &env);
    browser.reload().await;
    assert_eq!(browser.text("#current-user").await, "aaron");
    browser.goto(&demo.at("/admin")).await;
    assert_eq!(browser.text("#session-count").await, "1");
    browser.screenshot("redis-restart").await;
    browser.close().await;
}

#[tokio::test]
async fn two_services_sharing_redis_share_logins_and_logouts() {
    let _serial = SERIAL.lock().await;
    let redis = RedisServer::start();
    let env = redis_env(&redis);
    let one = DemoProcess::start(&env);
    let two = DemoProcess::start(&env);
    assert_ne!(one.url(), two.url());
    let driver = Chromedriver::start();
    let browser = driver.browser().await;

    // Cookies are per host, not per port: both services see the browser's session.
    browser.login(one.url(), "bob", "demo-bob").await;
    browser.goto(two.url()).await;
    assert_eq!(browser.text("#current-user").await, "bob");

    // Log out on the second; the first no longer knows the session either.
    browser.click("#logout").await;
    browser.wait_for("#notice").await;
    browser.goto(one.url()).await;
    browser.wait_for("#login-form").await;
    assert!(!browser.has("#current-user").await);
    browser.screenshot("two-services-logout").await;
    browser.close().await;
}

#[tokio::test]
async fn log_out_everywhere_ends_the_users_session_in_another_browser() {
    let _serial = SERIAL.lock().await;
    let redis = RedisServer::start();
    let demo = DemoProcess::start(&redis_env(&redis));
    let driver = Chromedriver::start();
    // Two browsers with separate profiles: two cookie jars, two sessions.
    let laptop = driver.browser().await;
    let phone = driver.browser().await;
    let other_user = driver.browser().await;

    laptop.login(demo.url(), "aaron", "demo-aaron").await;
    phone.login(demo.url(), "aaron", "demo-aaron").await;
    other_user.login(demo.url(), "alice", "demo-alice").await;
    laptop.goto(&demo.at("/admin")).await;
    assert_eq!(laptop.text("#session-count").await, "3");
    let mine = laptop.text("#my-sessions").await;
    assert_eq!(
        mine.matches("sid:").count(),
        2,
        "aaron's two sessions: {mine}"
    );

    laptop.click("#logout-everywhere").await;
    let notice = laptop.text("#notice").await;
    assert!(notice.contains("2 session(s) ended"), "{notice}");
    laptop.screenshot("logout-everywhere-laptop").await;

    phone.reload().await;
    phone.wait_for("#login-form").await;
    assert!(!phone.has("#current-user").await);
    phone.screenshot("logout-everywhere-phone").await;

    // Another user's session is untouched.
    other_user.reload().await;
    assert_eq!(other_user.text("#current-user").await, "alice");

    for browser in [laptop, phone, other_user] {
        browser.close().await;
    }
}

#[tokio::test]
async fn the_admin_page_charts_the_last_hour_and_lists_the_users() {
    let _serial = SERIAL.lock().await;
    // The cleanup task samples the live count every second (as well as each admin page view).
    let demo = DemoProcess::start(&[("DEMO_CLEANUP_SECONDS", "1".to_owned())]);
    let driver = Chromedriver::start();
    let admin = driver.browser().await;
    let alice = driver.browser().await;
    let bob = driver.browser().await;

    alice.login(demo.url(), "alice", "demo-alice").await;
    bob.login(demo.url(), "bob", "demo-bob").await;
    admin.login(demo.url(), "aaron", "demo-aaron").await;
    // Tall enough for the chart and the users table in one screenshot.
    admin.set_window_size(1000, 1250).await;
    admin.goto(&demo.at("/admin")).await;
    assert_eq!(admin.text("#session-count").await, "3");

    let chart = admin.wait_for("svg#activity-chart").await;
    assert!(
        chart.is_displayed().await.expect("is displayed"),
        "the chart is shown"
    );
    let (x, y, width, height) = chart.rectangle().await.expect("the chart's rectangle");
    println!("chart at ({x}, {y}), {width} x {height} CSS px");
    assert!(width > 300.0 && height > 100.0, "{width} x {height}");
    // The page scales the 720 x 280 drawing to its width, keeping the aspect ratio.
    assert!(
        (width / height - 720.0 / 280.0).abs() < 0.1,
        "{width} x {height}"
    );
    let label = chart.attr("aria-label").await.unwrap().expect("aria-label");
    assert!(label.contains("3 login(s) in the last hour"), "{label}");
    assert!(admin.has("svg#activity-chart rect.login-bar").await);
    assert!(admin.has("svg#activity-chart circle.live-point").await);
    // The chart's own text is drawn as text (legend, title).
    let drawn = admin.text("svg#activity-chart").await;
    assert!(drawn.contains("Logins per minute"), "{drawn}");

    // One row per user, the most recently active (aaron, who is looking) first.
    let users = admin.text("#users").await;
    let order: Vec<&str> = users
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| ["aaron", "alice", "bob"].contains(name))
        .collect();
    assert_eq!(order, ["aaron", "bob", "alice"], "{users}");

    let page = admin.screenshot("admin-analytics").await;
    println!("admin page screenshot: {}", page.display());
    let chart_only = admin
        .screenshot_element("svg#activity-chart", "admin-chart")
        .await;
    println!("chart screenshot: {}", chart_only.display());
    assert!(page.is_file() && chart_only.is_file());
    for browser in [admin, alice, bob] {
        browser.close().await;
    }
}
