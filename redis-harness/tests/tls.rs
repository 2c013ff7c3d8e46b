//! TLS servers: a throwaway CA whose server certificate verifies for 127.0.0.1, a TLS port
//! next to the plain one, kept across a restart. (Speaking TLS to it is the client crates'
//! job: the harness's `redis` client is built without TLS.)

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use redis_harness::tls::TlsFiles;
use redis_harness::{RedisServer, ServerSpec};

fn verifies(ca: &std::path::Path, cert: &std::path::Path) -> bool {
    Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(ca)
        .args(["-verify_ip", "127.0.0.1"])
        .arg(cert)
        .output()
        .expect("openssl")
        .status
        .success()
}

/// Whether a plain-text `PING` on `port` gets `+PONG` back.
fn plain_pong(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 5];
    stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG"
}

#[test]
fn tls_server_with_a_throwaway_ca() {
    let files = Arc::new(TlsFiles::generate());
    assert!(verifies(&files.ca_cert(), &files.server_cert()));
    assert!(!verifies(&files.other_ca_cert(), &files.server_cert()));

    let mut server = RedisServer::start_with(ServerSpec::redis().tls(files.clone()));
    let tls_port = server.tls_port();
    assert_ne!(tls_port, server.port());
    assert_eq!(server.tls_url(), format!("rediss://127.0.0.1:{tls_port}/"));
    assert!(
        plain_pong(server.port()),
        "the plain port stays for the harness"
    );
    assert!(
        !plain_pong(tls_port),
        "the TLS port does not speak plain text"
    );

    server.restart();
    assert_eq!(server.tls_port(), tls_port);
    assert!(plain_pong(server.port()));
    let conf = std::fs::read_to_string(server.dir().join("redis.conf")).unwrap();
    assert!(conf.contains(&format!("tls-port {tls_port}")), "{conf}");
}
