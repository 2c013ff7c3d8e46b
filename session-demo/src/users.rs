//! The fixed demo user list and password checks.
//!
//! Only argon2id hashes (PHC strings) are kept for checking; the clear passwords exist solely
//! in [`DEMO_CREDENTIALS`], which the binary prints at startup because this is a demo whose
//! passwords are public by design.

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use argon2::Argon2;
use serde_json::{json, Value};

/// A user's role: what the admin page checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// May open the admin page.
    Admin,
    /// An ordinary user.
    User,
}

impl Role {
    /// The name stored in the session (`"admin"` / `"user"`), as the existing service does.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
        }
    }
}

/// A demo user: the profile stored in the session's `"user"` member, and a password hash.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// Login name.
    pub username: &'static str,
    /// E-mail address shown on the page.
    pub email: &'static str,
    /// Role.
    pub role: Role,
    /// Stable subject id (what `SESSION_USER_KEYS`'s default `user.sub` finds).
    pub sub: &'static str,
    /// argon2id PHC string of the password.
    password_hash: &'static str,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The hash stays out of logs, like a password would.
        f.debug_struct("User")
            .field("username", &self.username)
            .field("role", &self.role)
            .field("sub", &self.sub)
            .finish_non_exhaustive()
    }
}

impl User {
    /// The session's `"user"` member, in the existing service's shape.
    pub fn profile(&self) -> Value {
        json!({
            "username": self.username,
            "email": self.email,
            "role": self.role.as_str(),
            "sub": self.sub,
            "preferred_username": self.username,
        })
    }
}

/// The demo users. Hashes are argon2id with the crate's default (OWASP) parameters, made once
/// with `Argon2::default().hash_password`.
pub const DEMO_USERS: &[User] = &[
    User {
        username: "aaron",
        email: "aaron@example.com",
        role: Role::Admin,
        sub: "2b1f6c0e-0a6d-4c57-9d0e-5f3a7f1d0001",
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$T0OBhbuzmtRuOKUaz8/Kaw$3KL0/8+GD7q4+WqV+bZNSiW9UGY3dcHP6cP9W9SdA+8",
    },
    User {
        username: "alice",
        email: "alice@example.com",
        role: Role::User,
        sub: "2b1f6c0e-0a6d-4c57-9d0e-5f3a7f1d0002",
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$VSV2C5PaIwrhEe7Ast2Riw$HplEgfzGH63IK8e0T8xt4Ip5IkxABjltBZCTgtwXzfo",
    },
    User {
        username: "bob",
        email: "bob@example.com",
        role: Role::User,
        sub: "2b1f6c0e-0a6d-4c57-9d0e-5f3a7f1d0003",
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$ZZLNkiYkiV15SKXCFyehNw$yxZ1zHx3ryzdNiROadauF+tbj+IhaauDAaY3L9QCp6c",
    },
];

/// The demo users' passwords, printed at startup and in the docs (public by design).
pub const DEMO_CREDENTIALS: &[(&str, &str)] = &[
    ("aaron", "demo-aaron"),
    ("alice", "demo-alice"),
    ("bob", "demo-bob"),
];

/// Checked for unknown user names, so a failed login costs the same whether or not the name
/// exists (no user enumeration by timing).
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$ZPTkUh144AYZpC2h2x8uCw$uYmXiAPHRjs2uuATwY4IQsGFhem/9evSiwB1j7QSp/k";

/// Longest accepted password, in bytes: hashing megabytes per request is a denial of service.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The user called `username`, if any.
pub fn find(username: &str) -> Option<&'static User> {
    DEMO_USERS.iter().find(|u| u.username == username)
}

/// Checks a login. Costs one argon2 verification whatever the outcome, so run it off the
/// async executor (`spawn_blocking`).
///
/// ```
/// use session_demo::users::{verify, DEMO_CREDENTIALS};
///
/// let (name, password) = DEMO_CREDENTIALS[0];
/// assert_eq!(verify(name, password).unwrap().username, name);
/// assert!(verify(name, "wrong").is_none());
/// assert!(verify("nobody", password).is_none());
/// ```
pub fn verify(username: &str, password: &str) -> Option<&'static User> {
    if password.len() > MAX_PASSWORD_BYTES {
        return None;
    }
    let user = find(username);
    let hash = user.map_or(DUMMY_HASH, |u| u.password_hash);
    let parsed = PasswordHash::new(hash).expect("the built-in hashes are valid PHC strings");
    let ok = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    user.filter(|_| ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_printed_credential_matches_its_hash() {
        assert_eq!(DEMO_CREDENTIALS.len(), DEMO_USERS.len());
        for (name, password) in DEMO_CREDENTIALS {
            assert_eq!(verify(name, password).map(|u| u.username), Some(*name));
        }
    }

    #[test]
    fn the_dummy_hash_matches_no_user_password() {
        let dummy = PasswordHash::new(DUMMY_HASH).unwrap();
        for (_, password) in DEMO_CREDENTIALS {
            assert!(Argon2::default()
                .verify_password(password.as_bytes(), &dummy)
                .is_err());
        }
    }

    #[test]
    fn debug_hides_the_hash() {
        let shown = format!("{:?}", DEMO_USERS[0]);
        assert!(!shown.contains("argon2"));
        assert!(shown.contains("aaron"));
    }

    #[test]
    fn overlong_password_is_refused_without_hashing() {
        assert!(verify("aaron", &"x".repeat(MAX_PASSWORD_BYTES + 1)).is_none());
    }
}
