//! Picking a free loopback port.

use std::net::{Ipv4Addr, TcpListener};

/// The port a system Redis may be listening on; never handed out.
const SYSTEM_REDIS_PORT: u16 = 6379;

/// A loopback port that was free a moment ago (the OS picks it). Another process may take it
/// before the server binds; [`Process::start`](crate::Process::start) retries on that.
pub fn free_port() -> u16 {
    loop {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .expect("cannot bind any loopback port for a test server");
        let port = listener
            .local_addr()
            .expect("bound listener has an address")
            .port();
        if port != SYSTEM_REDIS_PORT {
            return port;
        }
    }
}
