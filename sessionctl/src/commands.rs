//! The per-session and per-user subcommands, on any store through the trait.

use std::io::Read as _;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use serde_json::{json, Value};
use session_store::{
    sessions_of, user_of, Clock as _, Lifetime, PutMode, SessionConfig, SessionData, SessionId,
    SessionStore, SessionStoreExt, SystemClock, Timestamp, WriteOptions,
};

use crate::cli::ListArgs;
use crate::output::{human_ms, Failure, Out};

/// Page size for iterating a whole store.
pub const SCAN_PAGE: usize = 1000;

/// Reads `-` from stdin (trimmed), anything else as given.
fn arg_or_stdin(value: &str, what: &str) -> Result<String, Failure> {
    if value != "-" {
        return Ok(value.to_owned());
    }
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| Failure::usage(format!("cannot read the {what} from stdin: {e}")))?;
    Ok(text.trim().to_owned())
}

/// Parses a TOKEN argument. The message says what is wrong, never repeats the token.
pub fn parse_token(value: &str) -> Result<SessionId, Failure> {
    let token = arg_or_stdin(value, "token")?;
    token.parse::<SessionId>().map_err(|err| {
        Failure::usage(format!(
            "{err} (a TOKEN is 43 URL-safe base64 characters, as the session cookie holds)"
        ))
    })
}

fn now() -> Timestamp {
    SystemClock.now()
}

fn lifetime_json(lifetime: &Lifetime, now: Timestamp) -> Value {
    json!({
        "created_at_ms": lifetime.created_at.as_millis(),
        "idle_timeout_s": lifetime.idle_timeout.as_secs(),
        "idle_expires_at_ms": lifetime.idle_expires_at.as_millis(),
        "absolute_expires_at_ms": lifetime.absolute_expires_at.map(|a| a.as_millis()),
        "ttl_ms": lifetime.remaining(now).as_millis() as u64,
    })
}

pub async fn count(store: &dyn SessionStore, out: Out) -> Result<(), Failure> {
    let n = store.count().await?;
    out.print(|| n.to_string(), || json!({"ok": true, "count": n}));
    Ok(())
}

pub async fn get(store: &dyn SessionStore, out: Out, id: &SessionId) -> Result<(), Failure> {
    let session = store.get(id).await?.ok_or_else(Failure::not_found)?;
    let data = Value::Object(session.data().clone());
    out.print(
        || data.to_string(),
        || {
            json!({"ok": true, "handle": id.handle().as_str(), "data": data,
               "lifetime": lifetime_json(session.lifetime(), now())})
        },
    );
    Ok(())
}

pub async fn set(
    store: &dyn SessionStore,
    out: Out,
    id: &SessionId,
    data: &str,
    ttl: Option<u64>,
) -> Result<(), Failure> {
    let text = arg_or_stdin(data, "JSON")?;
    let data: SessionData = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err(Failure::usage("JSON must be an object ({...})")),
        Err(e) => return Err(Failure::usage(format!("JSON does not parse: {e}"))),
    };
    let mut options = WriteOptions::new();
    if let Some(ttl) = ttl {
        options = options.with_idle_timeout(Duration::from_secs(ttl));
    }
    let session = store
        .put(id, Arc::new(data), PutMode::Upsert, options)
        .await?;
    let ttl_ms = session.lifetime().remaining(now()).as_millis() as u64;
    out.print(
        || format!("stored {} (expires in {})", id.fingerprint(), human_ms(ttl_ms)),
        || json!({"ok": true, "handle": id.handle().as_str(), "lifetime": lifetime_json(session.lifetime(), now())}),
    );
    Ok(())
}

pub async fn delete(store: &dyn SessionStore, out: Out, id: &SessionId) -> Result<(), Failure> {
    if !store.delete(id).await? {
        return Err(Failure::not_found());
    }
    out.print(
        || format!("deleted {}", id.fingerprint()),
        || json!({"ok": true, "deleted": true, "handle": id.handle().as_str()}),
    );
    Ok(())
}

pub async fn refresh(store: &dyn SessionStore, out: Out, id: &SessionId) -> Result<(), Failure> {
    if !store.refresh(id).await? {
        return Err(Failure::not_found());
    }
    out.print(
        || format!("refreshed {}", id.fingerprint()),
        || json!({"ok": true, "refreshed": true, "handle": id.handle().as_str()}),
    );
    Ok(())
}

pub async fn revoke_user(store: &dyn SessionStore, out: Out, user: &str) -> Result<(), Failure> {
    // A cleanup pass first: it indexes the sessions another writer stored directly (the
    // existing service's SETEX), which "log out everywhere" must not miss.
    let indexed = store.cleanup().await?.repaired;
    let n = store.delete_user(user).await?;
    out.print(
        || format!("deleted {n} session(s)"),
        || json!({"ok": true, "deleted": n, "index_entries_repaired_first": indexed}),
    );
    Ok(())
}

pub async fn cleanup(store: &dyn SessionStore, out: Out) -> Result<(), Failure> {
    let report = store.cleanup().await?;
    out.print(
        || {
            format!(
                "removed {} expired session(s), repaired {} index entr(ies)",
                report.removed, report.repaired
            )
        },
        || json!({"ok": true, "removed": report.removed, "repaired": report.repaired}),
    );
    Ok(())
}

struct Row {
    handle: String,
    token: Option<String>,
    user: Option<String>,
    lifetime: Lifetime,
}

pub async fn list(
    store: Arc<dyn SessionStore>,
    config: &SessionConfig,
    out: Out,
    args: &ListArgs,
) -> Result<(), Failure> {
    let limit = args.limit.unwrap_or(usize::MAX);
    let mut rows = Vec::new();
    if let (Some(user), false) = (&args.user, args.show_tokens) {
        // The user index: handles only, which is all that is asked for.
        for summary in store.list_user(user).await?.into_iter().take(limit) {
            rows.push(Row {
                handle: summary.handle.as_str().to_owned(),
                token: None,
                user: Some(user.clone()),
                lifetime: summary.lifetime,
            });
        }
    } else {
        // Tokens (or everyone) need the sessions themselves.
        let mut seen = std::collections::HashSet::new();
        let mut sessions = sessions_of(store.as_ref(), SCAN_PAGE);
        while let Some(record) = sessions.next().await {
            let record = record?;
            let owner = user_of(&record.data, &config.user_keys);
            if args.user.is_some() && owner != args.user {
                continue;
            }
            if !seen.insert(record.handle.clone()) {
                continue; // a scan may yield a session twice
            }
            rows.push(Row {
                handle: record.handle.as_str().to_owned(),
                token: args
                    .show_tokens
                    .then(|| record.id.as_ref().map(|id| id.expose_token().to_owned()))
                    .flatten(),
                user: owner,
                lifetime: record.lifetime,
            });
            if rows.len() >= limit {
                break;
            }
        }
    }
    let now = now();
    out.print(
        || {
            let mut text = String::new();
            for row in &rows {
                let ttl = human_ms(row.lifetime.remaining(now).as_millis() as u64);
                let user = row.user.as_deref().unwrap_or("-");
                match &row.token {
                    Some(token) => {
                        text.push_str(&format!("{}  {token}  {user}  {ttl}\n", row.handle))
                    }
                    None => text.push_str(&format!("{}  {user}  {ttl}\n", row.handle)),
                }
            }
            text
        },
        || {
            let sessions: Vec<Value> = rows
                .iter()
                .map(|row| {
                    let mut v = json!({"handle": row.handle, "user": row.user,
                                       "lifetime": lifetime_json(&row.lifetime, now)});
                    if args.show_tokens {
                        v["token"] = json!(row.token);
                    }
                    v
                })
                .collect();
            json!({"ok": true, "count": sessions.len(), "sessions": sessions})
        },
    );
    Ok(())
}
