//! The harness itself: servers start on free loopback ports, restart on the same port, and
//! die with their owner.

use std::path::Path;

use redis_harness::{RedisServer, ServerSpec};

fn ping(server: &RedisServer) -> String {
    redis::cmd("PING").query(&mut server.connection()).unwrap()
}

fn alive(pid: u32) -> bool {
    // A killed and reaped child has no /proc entry any more.
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn servers_get_their_own_ports_and_dirs() {
    let a = RedisServer::start();
    let b = RedisServer::start();
    assert_ne!(a.port(), b.port());
    assert_ne!(a.port(), 6379);
    assert_ne!(a.dir(), b.dir());
    assert_eq!(ping(&a), "PONG");
    assert_eq!(a.url(), format!("redis://127.0.0.1:{}/", a.port()));
    let save: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("save")
        .query(&mut a.connection())
        .unwrap();
    assert_eq!(
        save,
        vec!["save".to_string(), String::new()],
        "no persistence"
    );
}

#[test]
fn kill_and_restart_on_the_same_port() {
    let mut server = RedisServer::start();
    let port = server.port();
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut server.connection())
        .unwrap();
    server.kill();
    assert!(server
        .client()
        .get_connection_with_timeout(std::time::Duration::from_millis(200))
        .is_err());
    server.restart();
    assert_eq!(server.port(), port);
    let value: Option<String> = redis::cmd("GET")
        .arg("k")
        .query(&mut server.connection())
        .unwrap();
    assert_eq!(value, None, "a restarted server starts empty");
}

#[test]
fn drop_kills_the_process_and_removes_the_dir() {
    let mut server = RedisServer::start();
    let pid = server.process().pid().unwrap();
    let dir = server.dir().to_owned();
    assert!(alive(pid) && dir.exists());
    drop(server);
    assert!(!alive(pid), "redis-server {pid} survived its owner");
    assert!(!dir.exists());
}

#[test]
fn a_panicking_test_still_kills_its_server() {
    let (tx, rx) = std::sync::mpsc::channel();
    let result = std::thread::spawn(move || {
        let mut server = RedisServer::start();
        tx.send(server.process().pid().unwrap()).unwrap();
        panic!("the test fails");
    })
    .join();
    assert!(result.is_err());
    assert!(!alive(rx.recv().unwrap()));
}

#[test]
fn password_protected_server() {
    let server = RedisServer::start_with(ServerSpec::redis().requirepass("harness-pw"));
    assert_eq!(ping(&server), "PONG");
    let anonymous = redis::Client::open(server.url()).unwrap();
    let err = redis::cmd("PING")
        .query::<String>(&mut anonymous.get_connection().unwrap())
        .unwrap_err();
    assert_eq!(err.code(), Some("NOAUTH"));
}
