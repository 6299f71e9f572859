//! PostgreSQL over TLS: `sslmode` and `sslrootcert` in `DATABASE_URL`.
//!
//! The tests share two throwaway clusters of this module's own (never `TEST_DATABASE_URL`'s
//! server, whose TLS set-up is unknown): one with `ssl = on` serving a certificate for
//! `localhost` only, signed by a CA made here, and one without TLS.

use std::path::{Path, PathBuf};

use diesel::sql_types::Bool;
use onboarding_adapters_db::test_support::Cluster;
use onboarding_adapters_db::{
    Database, DbConfig, DbError, connect, pending_migrations, run_migrations,
};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tempfile::TempDir;
use tokio::sync::OnceCell;

use crate::support::{TestResult, query};

const PASSWORD: &str = "Sup3rSecretTlsPw";

struct TlsServer {
    cluster: Cluster,
    /// The CA that signed the server's certificate, PEM.
    ca_pem: String,
    /// A CA that did not, PEM.
    other_ca_pem: String,
}

static TLS_SERVER: OnceCell<Result<TlsServer, String>> = OnceCell::const_new();
static PLAIN_SERVER: OnceCell<Result<Cluster, String>> = OnceCell::const_new();

async fn tls_server() -> &'static TlsServer {
    TLS_SERVER
        .get_or_init(|| async {
            let ca = make_ca("onboarding test CA").map_err(|e| e.to_string())?;
            let other_ca = make_ca("some other CA").map_err(|e| e.to_string())?;
            let (cert_pem, key_pem) = make_server_cert(&ca).map_err(|e| e.to_string())?;
            let cluster = Cluster::start_with_tls(&cert_pem, &key_pem).await?;
            Ok(TlsServer {
                cluster,
                ca_pem: ca.pem(),
                other_ca_pem: other_ca.pem(),
            })
        })
        .await
        .as_ref()
        // Not expect: the reason is several lines (the server's log), which expect would escape.
        .expect("cannot start the TLS test cluster")
}

async fn plain_server() -> &'static Cluster {
    PLAIN_SERVER
        .get_or_init(Cluster::start)
        .await
        .as_ref()
        .expect("cannot start the plain test cluster")
}

fn make_ca(name: &str) -> Result<CertifiedIssuer<'static, KeyPair>, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate()?)
}

/// A server certificate naming `localhost` only (not 127.0.0.1), and its key, PEM.
fn make_server_cert(
    ca: &CertifiedIssuer<'static, KeyPair>,
) -> Result<(String, String), rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec!["localhost".to_owned()])?;
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, ca)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Writes `pem` to a file in a fresh temporary directory; the directory goes with the test.
fn pem_file(pem: &str) -> anyhow::Result<(TempDir, PathBuf)> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, pem)?;
    Ok((dir, path))
}

fn root(path: &Path) -> String {
    format!("&sslrootcert={}", path.display())
}

async fn open(url: String) -> Result<Database, DbError> {
    let mut config = DbConfig::new(url);
    config.max_connections = 2;
    connect(&config).await
}

#[derive(diesel::QueryableByName)]
struct Ssl {
    #[diesel(sql_type = Bool)]
    ssl: bool,
}

/// Whether the connection the pool hands out is encrypted, as the server sees it.
async fn uses_tls(db: &Database) -> anyhow::Result<bool> {
    let rows = query::<Ssl>(
        db,
        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    )
    .await?;
    rows.first()
        .map(|row| row.ssl)
        .ok_or_else(|| anyhow::anyhow!("pg_stat_ssl has no row for this connection"))
}

fn refused(outcome: Result<Database, DbError>) -> DbError {
    match outcome {
        Ok(_) => panic!("connected, but the connection should have been refused"),
        Err(e) => {
            let shown = format!("{e} / {e:?}");
            assert!(!shown.contains(PASSWORD), "password leaked: {shown}");
            e
        }
    }
}

#[tokio::test]
async fn require_encrypts_without_checking_the_certificate() -> TestResult {
    let server = tls_server().await;
    let db = open(server.cluster.url("127.0.0.1", "?sslmode=require")).await?;
    assert!(uses_tls(&db).await?);
    Ok(())
}

#[tokio::test]
async fn prefer_is_the_default_and_encrypts_when_the_server_offers_tls() -> TestResult {
    let server = tls_server().await;
    let db = open(server.cluster.url("127.0.0.1", "")).await?;
    assert!(uses_tls(&db).await?);
    let db = open(server.cluster.url("127.0.0.1", "?sslmode=prefer")).await?;
    assert!(uses_tls(&db).await?);
    Ok(())
}

#[tokio::test]
async fn disable_does_not_encrypt() -> TestResult {
    let server = tls_server().await;
    let db = open(server.cluster.url("127.0.0.1", "?sslmode=disable")).await?;
    assert!(!uses_tls(&db).await?);
    Ok(())
}

#[tokio::test]
async fn verify_full_with_the_servers_ca_connects() -> TestResult {
    let server = tls_server().await;
    let (_dir, ca) = pem_file(&server.ca_pem)?;
    // The parameters may come after others.
    let url = server.cluster.url(
        "localhost",
        &format!(
            "?application_name=tls_test&sslmode=verify-full{}",
            root(&ca)
        ),
    );
    let db = open(url).await?;
    assert!(uses_tls(&db).await?);
    Ok(())
}

#[tokio::test]
async fn verify_full_with_another_ca_is_refused() -> TestResult {
    let server = tls_server().await;
    let (_dir, other_ca) = pem_file(&server.other_ca_pem)?;
    // With a password (the server trusts any), which no error may show.
    let url = format!(
        "postgres://postgres:{PASSWORD}@localhost:{}/postgres?sslmode=verify-full{}",
        server.cluster.port(),
        root(&other_ca)
    );
    let e = refused(open(url).await);
    assert!(matches!(e, DbError::Unavailable(_)), "{e:?}");
    assert!(e.to_string().contains("certificate"), "{e}");
    Ok(())
}

#[tokio::test]
async fn verify_full_refuses_a_host_the_certificate_does_not_name_but_verify_ca_accepts_it()
-> TestResult {
    let server = tls_server().await;
    let (_dir, ca) = pem_file(&server.ca_pem)?;
    let url = |mode: &str| {
        server
            .cluster
            .url("127.0.0.1", &format!("?sslmode={mode}{}", root(&ca)))
    };
    let e = refused(open(url("verify-full")).await);
    assert!(e.to_string().contains("not valid for name"), "{e}");

    let db = open(url("verify-ca")).await?;
    assert!(uses_tls(&db).await?);
    Ok(())
}

/// Without `sslrootcert` the system's CAs are the roots, and the test CA is not one of them
/// (a machine without any CA file is refused at start-up instead).
#[tokio::test]
async fn verify_full_without_sslrootcert_trusts_the_system_cas_only() -> TestResult {
    let server = tls_server().await;
    let e = refused(open(server.cluster.url("localhost", "?sslmode=verify-full")).await);
    assert!(e.to_string().contains("certificate"), "{e}");
    Ok(())
}

#[tokio::test]
async fn verify_ca_and_require_with_sslrootcert_check_the_chain() -> TestResult {
    let server = tls_server().await;
    let (_dir, other_ca) = pem_file(&server.other_ca_pem)?;
    for mode in ["verify-ca", "require"] {
        let url = server
            .cluster
            .url("localhost", &format!("?sslmode={mode}{}", root(&other_ca)));
        let e = refused(open(url).await);
        assert!(e.to_string().contains("certificate"), "{mode}: {e}");
    }
    Ok(())
}

#[tokio::test]
async fn require_against_a_server_without_tls_is_refused() -> TestResult {
    let plain = plain_server().await;
    let e = refused(open(plain.url("127.0.0.1", "?sslmode=require")).await);
    assert!(matches!(e, DbError::Unavailable(_)), "{e:?}");
    assert!(e.to_string().contains("server does not support TLS"), "{e}");

    // The default, prefer, falls back to a plain connection.
    let db = open(plain.url("127.0.0.1", "")).await?;
    assert!(!uses_tls(&db).await?);
    Ok(())
}

#[tokio::test]
async fn an_unknown_sslmode_is_a_configuration_error() {
    let url = format!("postgres://alice:{PASSWORD}@127.0.0.1:1/db?sslmode=verify_full");
    match refused(open(url).await) {
        DbError::Config(m) => assert!(m.contains("sslmode"), "{m}"),
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unreadable_or_invalid_sslrootcert_is_a_configuration_error() -> TestResult {
    let (dir, not_pem) = pem_file("not a certificate")?;
    let missing = dir.path().join("missing.pem");
    for path in [&missing, &not_pem] {
        let url = format!(
            "postgres://alice:{PASSWORD}@127.0.0.1:1/db?sslmode=verify-full{}",
            root(path)
        );
        match refused(open(url).await) {
            DbError::Config(m) => assert!(m.contains("sslrootcert"), "{m}"),
            other => panic!(
                "{}: expected a configuration error, got {other:?}",
                path.display()
            ),
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_over_tls() -> TestResult {
    let server = tls_server().await;
    let (_dir, ca) = pem_file(&server.ca_pem)?;
    let db = open(
        server
            .cluster
            .url("localhost", &format!("?sslmode=verify-full{}", root(&ca))),
    )
    .await?;
    run_migrations(db.pool()).await?;
    assert_eq!(pending_migrations(db.pool()).await?, 0);
    assert!(uses_tls(&db).await?);
    Ok(())
}
