//! Throwaway TLS material for TLS test servers, made with the `openssl` command-line tool:
//! a certificate authority, a server certificate for `127.0.0.1` / `localhost` that it
//! signed, and a second, unrelated authority for "wrong CA" tests.
//!
//! Keys are ECDSA P-256 (fast to generate), certificates valid for two days. Nothing is
//! installed anywhere: the files live in their own temp dir, removed on drop; servers started
//! with [`ServerSpec::tls`](crate::ServerSpec::tls) keep an `Arc` of them.
//!
//! ```no_run
//! use std::sync::Arc;
//! use redis_harness::{tls::TlsFiles, RedisServer, ServerSpec};
//!
//! let files = Arc::new(TlsFiles::generate());
//! let server = RedisServer::start_with(ServerSpec::redis().tls(files.clone()));
//! let url = server.tls_url(); // rediss://127.0.0.1:PORT/, trust files.ca_cert()
//! # let _ = url;
//! ```

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

/// The message a test fails with when the `openssl` binary is missing.
pub const OPENSSL_HINT: &str = "openssl not found: install it: apt-get install -y openssl";

/// A CA, a server certificate it signed (for `IP:127.0.0.1` and `DNS:localhost`), and an
/// unrelated CA, as PEM files in a temp dir that is removed on drop.
#[derive(Debug)]
pub struct TlsFiles {
    dir: TempDir,
}

/// Extensions of the server certificate: usable by a server and, for replication links, as
/// a client certificate.
const SERVER_EXTENSIONS: &str = "\
subjectAltName = IP:127.0.0.1, DNS:localhost
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
";

impl TlsFiles {
    /// Generates everything (a few `openssl` runs, well under a second).
    ///
    /// # Panics
    /// If `openssl` is missing ([`OPENSSL_HINT`]) or fails (with its output).
    pub fn generate() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("redis-harness-tls-")
            .tempdir()
            .expect("cannot create a temp dir for TLS files");
        let files = TlsFiles { dir };
        files.self_signed_ca("ca", "redis-harness test CA");
        files.self_signed_ca("other-ca", "redis-harness unrelated CA");
        let ext = files.path("server.ext");
        fs::write(&ext, SERVER_EXTENSIONS).expect("cannot write the extensions file");
        openssl(
            files.dir(),
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        );
        openssl(
            files.dir(),
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "server.ext",
                "-out",
                "server.crt",
            ],
        );
        files
    }

    fn self_signed_ca(&self, name: &str, common_name: &str) {
        openssl(
            self.dir(),
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.crt"),
                "-days",
                "2",
                "-subj",
                &format!("/CN={common_name}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The CA certificate (PEM) that signed the server certificate: what clients trust.
    pub fn ca_cert(&self) -> PathBuf {
        self.path("ca.crt")
    }

    /// The server certificate (PEM).
    pub fn server_cert(&self) -> PathBuf {
        self.path("server.crt")
    }

    /// The server certificate's private key (PEM).
    pub fn server_key(&self) -> PathBuf {
        self.path("server.key")
    }

    /// A CA certificate (PEM) that signed nothing here: trusting only it must fail.
    pub fn other_ca_cert(&self) -> PathBuf {
        self.path("other-ca.crt")
    }

    /// The `redis-server` config lines serving this certificate on `tls_port` (clients
    /// are not asked for certificates).
    pub(crate) fn server_lines(&self, tls_port: u16) -> Vec<String> {
        vec![
            format!("tls-port {tls_port}"),
            format!("tls-cert-file {}", self.server_cert().display()),
            format!("tls-key-file {}", self.server_key().display()),
            format!("tls-ca-cert-file {}", self.ca_cert().display()),
            "tls-auth-clients no".into(),
        ]
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = match Command::new("openssl").args(args).current_dir(dir).output() {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!("{OPENSSL_HINT}"),
        Err(e) => panic!("cannot run openssl: {e}"),
    };
    assert!(
        output.status.success(),
        "openssl {} failed:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
