//! Store URLs: `memory://`, `redis://`, `rediss://`, `redis+sentinel://`, `rediss+sentinel://`,
//! `redis+cluster://`.
//!
//! A URL names the backend, its address and its credentials; every other setting
//! (`SESSION_*`, timeouts, Sentinel credentials and durability) still comes from the lookup
//! (the environment). Address and credential variables (`REDIS_HOST`, `REDIS_PORT`,
//! `REDIS_DB`, `REDIS_URL`, `REDIS_USERNAME`, `REDIS_PASSWORD`, `REDIS_SENTINELS`,
//! `REDIS_MASTER_NAME`, `REDIS_CLUSTER_NODES`) are ignored, so one server's password never
//! travels to another when two URLs are used side by side (`sessionctl migrate --from … --to …`).
//!
//! Errors name the setting `URL` and say what was expected; they never repeat the URL,
//! which may hold a password.

use session_core::{Error, Result};

/// The setting named in errors about a URL.
pub(crate) const URL: &str = "URL";

/// Variables a URL replaces: ignored in the lookup when a URL is given.
pub(crate) const ADDRESS_VARIABLES: [&str; 9] = [
    "REDIS_HOST",
    "REDIS_PORT",
    "REDIS_DB",
    "REDIS_URL",
    "REDIS_USERNAME",
    "REDIS_PASSWORD",
    "REDIS_SENTINELS",
    "REDIS_MASTER_NAME",
    "REDIS_CLUSTER_NODES",
];

/// The backend a URL names, by its scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    Memory,
    Redis,
    Sentinel { tls: bool },
    Cluster { tls: bool },
}

pub(crate) fn scheme_of(url: &str) -> Result<Scheme> {
    let (scheme, _) = url.split_once("://").ok_or_else(|| {
        Error::config(
            URL,
            "expected memory://, redis://, rediss://, redis+sentinel://, rediss+sentinel:// or \
             redis+cluster://",
        )
    })?;
    match scheme.to_ascii_lowercase().as_str() {
        "memory" => Ok(Scheme::Memory),
        "redis" | "rediss" => Ok(Scheme::Redis),
        "redis+sentinel" => Ok(Scheme::Sentinel { tls: false }),
        "rediss+sentinel" => Ok(Scheme::Sentinel { tls: true }),
        "redis+cluster" => Ok(Scheme::Cluster { tls: false }),
        "rediss+cluster" => Ok(Scheme::Cluster { tls: true }),
        _ => Err(Error::config(
            URL,
            "unknown scheme: expected memory, redis, rediss, redis+sentinel, rediss+sentinel or \
             redis+cluster",
        )),
    }
}

/// `[user[:password]@]hosts[/path]` after the scheme, credentials decoded; the path without
/// its leading `/` (`None` without one). Query strings and fragments are not part of any form.
struct Authority<'a> {
    username: Option<String>,
    password: Option<String>,
    hosts: &'a str,
    path: Option<&'a str>,
}

fn split_authority<'a>(url: &'a str, form: &'static str) -> Result<Authority<'a>> {
    let bad = || Error::config(URL, form);
    let (_, rest) = url.split_once("://").ok_or_else(bad)?;
    if rest.contains(['?', '#']) {
        return Err(bad());
    }
    let (authority, path) = match rest.split_once('/') {
        Some((authority, path)) => (authority, Some(path)),
        None => (rest, None),
    };
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (Some(userinfo), hosts),
        None => (None, authority),
    };
    let (username, password) = match userinfo {
        None => (None, None),
        Some(info) => {
            let (user, password) = match info.split_once(':') {
                Some((user, password)) => (user, Some(password)),
                None => (info, None),
            };
            let user = percent_decode(user)?;
            let password = password.map(percent_decode).transpose()?;
            (
                Some(user).filter(|u| !u.is_empty()),
                password.filter(|p| !p.is_empty()),
            )
        }
    };
    Ok(Authority {
        username,
        password,
        hosts,
        path,
    })
}

/// Whether `hosts` is a non-empty comma-separated list without empty entries.
fn is_host_list(hosts: &str) -> bool {
    !hosts.is_empty() && !hosts.split(',').any(|h| h.trim().is_empty())
}

/// The parts of `redis+sentinel://[user[:password]@]host1[:port1],host2[:port2]/master[/db]`,
/// as the variables `session-sentinel` reads.
#[cfg_attr(not(feature = "sentinel"), allow(dead_code))]
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SentinelUrl {
    pub username: Option<String>,
    pub password: Option<String>,
    /// `host:port,host:port` as `REDIS_SENTINELS` takes it.
    pub sentinels: String,
    pub master_name: String,
    pub db: Option<String>,
}

const SENTINEL_FORM: &str =
    "expected redis+sentinel://[user[:password]@]host:port[,host:port…]/master_name[/db]";

#[cfg_attr(not(feature = "sentinel"), allow(dead_code))]
pub(crate) fn parse_sentinel(url: &str) -> Result<SentinelUrl> {
    let bad = || Error::config(URL, SENTINEL_FORM);
    let Authority {
        username,
        password,
        hosts,
        path,
    } = split_authority(url, SENTINEL_FORM)?;
    let path = path.ok_or_else(bad)?;
    if !is_host_list(hosts) {
        return Err(Error::config(
            URL,
            "no Sentinel address before the master name",
        ));
    }
    let mut segments = path.split('/');
    let master_name = percent_decode(segments.next().unwrap_or_default())?;
    if master_name.is_empty() {
        return Err(Error::config(
            URL,
            "missing the master name after the addresses",
        ));
    }
    let db = match segments.next() {
        None | Some("") => None,
        Some(db) if db.bytes().all(|b| b.is_ascii_digit()) => Some(db.to_owned()),
        Some(_) => return Err(Error::config(URL, "the db must be a number")),
    };
    if segments.any(|s| !s.is_empty()) {
        return Err(bad());
    }
    Ok(SentinelUrl {
        username,
        password,
        sentinels: hosts.to_owned(),
        master_name,
        db,
    })
}

impl std::fmt::Debug for SentinelUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentinelUrl")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("sentinels", &self.sentinels)
            .field("master_name", &self.master_name)
            .field("db", &self.db)
            .finish()
    }
}

/// The parts of `redis+cluster://[user[:password]@]host1[:port1][,host2[:port2]…][/0]`, as
/// the variables `session-cluster` reads.
#[cfg_attr(not(feature = "cluster"), allow(dead_code))]
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ClusterUrl {
    pub username: Option<String>,
    pub password: Option<String>,
    /// `host:port,host:port` as `REDIS_CLUSTER_NODES` takes it.
    pub nodes: String,
}

const CLUSTER_FORM: &str = "expected redis+cluster://[user[:password]@]host:port[,host:port…][/]";

#[cfg_attr(not(feature = "cluster"), allow(dead_code))]
pub(crate) fn parse_cluster(url: &str) -> Result<ClusterUrl> {
    let Authority {
        username,
        password,
        hosts,
        path,
    } = split_authority(url, CLUSTER_FORM)?;
    if !is_host_list(hosts) {
        return Err(Error::config(URL, "no cluster node address"));
    }
    // A cluster has one database; `/0` is accepted for URLs written out of habit.
    match path.map(|p| p.strip_suffix('/').unwrap_or(p)) {
        None | Some("" | "0") => {}
        Some(db) if db.bytes().all(|b| b.is_ascii_digit()) => {
            return Err(Error::config(URL, "Redis Cluster has only database 0"))
        }
        Some(_) => return Err(Error::config(URL, CLUSTER_FORM)),
    }
    Ok(ClusterUrl {
        username,
        password,
        nodes: hosts.to_owned(),
    })
}

impl std::fmt::Debug for ClusterUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterUrl")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("nodes", &self.nodes)
            .finish()
    }
}

/// Decodes `%XX` escapes (user names and passwords with `@`, `:` or `/` in them).
fn percent_decode(text: &str) -> Result<String> {
    let bad = || Error::config(URL, "malformed %-escape in the URL");
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or_else(bad)?;
            let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes() {
        assert_eq!(scheme_of("memory://").unwrap(), Scheme::Memory);
        assert_eq!(scheme_of("REDIS://h").unwrap(), Scheme::Redis);
        assert_eq!(scheme_of("rediss://h").unwrap(), Scheme::Redis);
        assert_eq!(
            scheme_of("rediss+sentinel://h/m").unwrap(),
            Scheme::Sentinel { tls: true }
        );
        for bad in ["http://:pw@h", "pw@h", ""] {
            let err = scheme_of(bad).unwrap_err();
            assert!(err.to_string().contains("URL"), "{err}");
        }
    }

    #[test]
    fn sentinel_form() {
        let u = parse_sentinel("redis+sentinel://svc:p%40ss@10.0.0.1:26379,[::1]:26380/mymaster/2")
            .unwrap();
        assert_eq!(u.username.as_deref(), Some("svc"));
        assert_eq!(u.password.as_deref(), Some("p@ss"));
        assert_eq!(u.sentinels, "10.0.0.1:26379,[::1]:26380");
        assert_eq!(u.master_name, "mymaster");
        assert_eq!(u.db.as_deref(), Some("2"));
        assert!(!format!("{u:?}").contains("p@ss"));

        let u = parse_sentinel("redis+sentinel://h1,h2/m").unwrap();
        assert_eq!((u.username, u.password, u.db), (None, None, None));
    }

    #[test]
    fn cluster_form() {
        assert_eq!(
            scheme_of("Redis+Cluster://h").unwrap(),
            Scheme::Cluster { tls: false }
        );
        assert_eq!(
            scheme_of("rediss+cluster://h").unwrap(),
            Scheme::Cluster { tls: true }
        );
        let u = parse_cluster("redis+cluster://svc:p%40ss@10.0.0.1:7000,[::1]:7001,h3/").unwrap();
        assert_eq!(u.username.as_deref(), Some("svc"));
        assert_eq!(u.password.as_deref(), Some("p@ss"));
        assert_eq!(u.nodes, "10.0.0.1:7000,[::1]:7001,h3");
        assert!(!format!("{u:?}").contains("p@ss"));
        for good in [
            "redis+cluster://h1,h2",
            "redis+cluster://h1/0",
            "redis+cluster://h1/0/",
        ] {
            let u = parse_cluster(good).unwrap();
            assert_eq!((u.username, u.password), (None, None), "{good}");
        }
    }

    #[test]
    fn bad_cluster_urls_never_echo_the_password() {
        for bad in [
            "redis+cluster://:topsecret@",
            "redis+cluster://:topsecret@/",
            "redis+cluster://:topsecret@h1,,h2",
            "redis+cluster://:topsecret@h1/2",
            "redis+cluster://:topsecret@h1/mymaster",
            "redis+cluster://:topsecret@h1/0/extra",
            "redis+cluster://:top%zzsecret@h1",
            "redis+cluster://:topsecret@h1?db=0",
        ] {
            let err = parse_cluster(bad).unwrap_err();
            let text = format!("{err} {err:?}");
            assert!(text.contains("URL"), "{text}");
            assert!(!text.contains("secret"), "{bad}: {text}");
        }
    }

    #[test]
    fn bad_sentinel_urls_never_echo_the_password() {
        for bad in [
            "redis+sentinel://:topsecret@h1",
            "redis+sentinel://:topsecret@/m",
            "redis+sentinel://:topsecret@h1/",
            "redis+sentinel://:topsecret@h1/m/x",
            "redis+sentinel://:topsecret@h1/m/1/extra",
            "redis+sentinel://:topsecret@h1,,h2/m",
            "redis+sentinel://:top%zzsecret@h1/m",
            "redis+sentinel://:topsecret@h1/m?db=1",
        ] {
            let err = parse_sentinel(bad).unwrap_err();
            let text = format!("{err} {err:?}");
            assert!(text.contains("URL"), "{text}");
            assert!(
                !text.contains("topsecret") && !text.contains("secret"),
                "{text}"
            );
        }
    }
}
