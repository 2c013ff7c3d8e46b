//! The actix-web demo (`session_demo::actix`) sharing sessions with the axum demo through one
//! real Redis: a login through actix is listed by `list_user` of another store on the same
//! server (what the axum admin page reads), and `delete_user` there ("log out everywhere" on
//! the axum demo) logs the actix browser out.

use actix_web::cookie::{Cookie, Key};
use actix_web::http::header::ContentType;
use actix_web::http::StatusCode;
use actix_web::{test, App};
use redis_harness::RedisServer;
use session_demo::actix::{ActixDemo, COOKIE_NAME};
use session_demo::users;
use session_store::SessionConfig;

/// The value of the form's hidden `csrf_token` field.
fn csrf_in(body: &str) -> String {
    let at = body.find("name=\"csrf_token\"").expect("a CSRF field");
    let rest = &body[at..];
    let start = rest.find("value=\"").expect("its value") + "value=\"".len();
    rest[start..][..rest[start..].find('"').unwrap()].to_owned()
}

fn session_cookie<B>(res: &actix_web::dev::ServiceResponse<B>) -> Option<Cookie<'static>> {
    res.response()
        .cookies()
        .find(|c| c.name() == COOKIE_NAME)
        .map(Cookie::into_owned)
}

#[test]
fn actix_login_is_shared_with_a_second_store_on_the_same_redis() {
    let redis = RedisServer::start();
    actix_web::rt::System::new().block_on(async {
        // The actix demo's store, and the "axum side": a second connection to the same server.
        let actix_store = session_store::from_url(&redis.url()).await.unwrap();
        let axum_store = session_store::from_url(&redis.url()).await.unwrap();
        let demo = ActixDemo::new(actix_store, &SessionConfig::default(), false);
        let app = test::init_service(
            App::new()
                .wrap(demo.middleware(Key::generate()))
                .configure(demo.clone().routes()),
        )
        .await;

        // First visit: the login form and an anonymous session holding its CSRF token.
        let res = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
        assert_eq!(res.status(), StatusCode::OK);
        let anonymous = session_cookie(&res).expect("session cookie");
        assert_eq!(anonymous.http_only(), Some(true));
        let body = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
        assert!(body.contains("action=\"/login\""), "{body}");
        let csrf = csrf_in(&body);

        // A POST without the token is refused.
        let req = test::TestRequest::post()
            .uri("/login")
            .cookie(anonymous.clone())
            .insert_header(ContentType::form_url_encoded())
            .set_payload("username=alice&password=demo-alice")
            .to_request();
        assert_eq!(
            test::call_service(&app, req).await.status(),
            StatusCode::FORBIDDEN
        );

        // Log in as alice through actix.
        let req = test::TestRequest::post()
            .uri("/login")
            .cookie(anonymous.clone())
            .insert_header(ContentType::form_url_encoded())
            .set_payload(format!(
                "username=alice&password=demo-alice&csrf_token={csrf}"
            ))
            .to_request();
        let res = test::call_service(&app, req).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let logged_in = session_cookie(&res).expect("a renewed session cookie");
        assert_ne!(logged_in.value(), anonymous.value(), "the id is renewed");

        let req = test::TestRequest::get()
            .uri("/")
            .cookie(logged_in.clone())
            .to_request();
        let body = String::from_utf8(test::call_and_read_body(&app, req).await.to_vec()).unwrap();
        assert!(
            body.contains("Logged in as <strong>alice</strong>"),
            "{body}"
        );
        assert!(body.contains("<strong>1</strong> live session"), "{body}");

        // The other store sees it under the user key the axum demo uses (`user.sub`), with
        // the axum demo's data shape.
        let alice = users::find("alice").unwrap();
        let listed = axum_store.list_user(alice.sub).await.unwrap();
        assert_eq!(listed.len(), 1, "{listed:?}");
        let listed = axum_store.list_user("alice").await.unwrap();
        assert!(listed.is_empty(), "indexed by sub, not by name: {listed:?}");

        // "Log out everywhere" from the other side ends the actix session.
        assert_eq!(axum_store.delete_user(alice.sub).await.unwrap(), 1);
        let req = test::TestRequest::get()
            .uri("/")
            .cookie(logged_in.clone())
            .to_request();
        let body = String::from_utf8(test::call_and_read_body(&app, req).await.to_vec()).unwrap();
        assert!(!body.contains("Logged in as"), "{body}");
        assert!(body.contains("action=\"/login\""), "{body}");
        assert_eq!(axum_store.list_user(alice.sub).await.unwrap().len(), 0);
    });
}
