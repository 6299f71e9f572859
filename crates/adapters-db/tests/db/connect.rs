//! `connect`: which URLs are refused, and that errors never show a password.

use onboarding_adapters_db::test_support::TestDatabase;
use onboarding_adapters_db::{DbConfig, DbError, connect};

use diesel::sql_types::{BigInt, Text};

use crate::support::{TestResult, query};

const PASSWORD: &str = "Sup3rSecretPw";

fn assert_hidden(error: &DbError) {
    let shown = format!("{error} / {error:?}");
    assert!(!shown.contains(PASSWORD), "password leaked: {shown}");
}

#[tokio::test]
async fn in_memory_sqlite_is_refused() {
    match connect(&DbConfig::new("sqlite::memory:")).await {
        Err(DbError::Config(message)) => {
            assert!(
                message.contains("cannot back a connection pool"),
                "{message}"
            )
        }
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

#[tokio::test]
async fn unsupported_schemes_are_refused_without_the_url() {
    let url = format!("mysql://root:{PASSWORD}@127.0.0.1/onboarding");
    match connect(&DbConfig::new(url)).await {
        Err(e @ DbError::Config(_)) => {
            assert!(e.to_string().contains("'mysql'"), "{e}");
            assert_hidden(&e);
        }
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

#[tokio::test]
async fn an_empty_pool_is_refused() {
    let mut config = DbConfig::new("sqlite://x.db");
    config.max_connections = 0;
    assert!(matches!(connect(&config).await, Err(DbError::Config(_))));
}

#[tokio::test]
async fn an_unopenable_sqlite_file_names_the_path() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("missing-dir").join("x.db");
    let url = format!("sqlite://{}", path.display());
    match connect(&DbConfig::new(url)).await {
        Err(DbError::Unavailable(message)) => {
            assert!(message.contains("missing-dir"), "{message}")
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn unreachable_postgres_error_hides_the_password() {
    let url = format!("postgres://alice:{PASSWORD}@127.0.0.1:1/onboarding");
    let config = DbConfig::new(url);
    assert!(!format!("{config:?}").contains(PASSWORD));
    match connect(&config).await {
        Err(e @ DbError::Unavailable(_)) => {
            assert_hidden(&e);
            // The cause, not only "error connecting to server".
            assert!(e.to_string().to_lowercase().contains("refused"), "{e}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_refusal_hides_the_password() -> TestResult {
    // A live server that refuses: the database does not exist.
    let db = TestDatabase::postgres().await;
    let (scheme, rest) = db.url().split_once("://").unwrap_or(("postgres", db.url()));
    let (userinfo, host_and_db) = rest.rsplit_once('@').unwrap_or(("postgres", rest));
    let user = userinfo.split(':').next().unwrap_or("postgres");
    let host = host_and_db.split('/').next().unwrap_or(host_and_db);
    let url = format!("{scheme}://{user}:{PASSWORD}@{host}/no_such_database_{PASSWORD}");
    match connect(&DbConfig::new(url)).await {
        Err(e) => {
            assert!(matches!(e, DbError::Unavailable(_)), "{e:?}");
            assert!(e.to_string().contains("does not exist"), "{e}");
            assert_hidden(&e);
        }
        Ok(_) => panic!("connected to a database that does not exist"),
    }
    Ok(())
}

#[derive(diesel::QueryableByName)]
struct JournalMode {
    #[diesel(sql_type = Text)]
    journal_mode: String,
}

#[derive(diesel::QueryableByName)]
struct BusyTimeout {
    #[diesel(sql_type = BigInt)]
    timeout: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_connections_are_set_up_for_concurrency() -> TestResult {
    let db = TestDatabase::sqlite().await;
    // Several checkouts, so that more than one pooled connection is looked at.
    for _ in 0..3 {
        let mode = query::<JournalMode>(&db, "PRAGMA journal_mode").await?;
        assert_eq!(mode.first().map(|m| m.journal_mode.as_str()), Some("wal"));
        let busy = query::<BusyTimeout>(&db, "PRAGMA busy_timeout").await?;
        assert_eq!(busy.first().map(|b| b.timeout), Some(5000));
    }
    Ok(())
}

/// Connections the server closed (a restart, an administrator) are dropped at checkout and
/// replaced: the next queries succeed without one failing first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_the_server_closed_are_replaced() -> TestResult {
    let db = TestDatabase::postgres().await;
    // Open several pooled connections by holding them at once.
    let held = futures::future::try_join_all((0..4).map(|_| async {
        match db.pool() {
            onboarding_adapters_db::DbPool::Postgres(pool) => pool.get().await,
            onboarding_adapters_db::DbPool::Sqlite(_) => unreachable!("a PostgreSQL database"),
        }
    }))
    .await?;
    drop(held);

    // One of them closes all the others from the server side.
    let closed = db
        .count(
            "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .await?;
    assert!(closed >= 3, "terminated {closed}");
    // The connections' tasks see the closed sockets.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;

    let answers = futures::future::join_all((0..8).map(|_| db.ping())).await;
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    Ok(())
}

/// An HTTP worker has a Tokio runtime of its own and ends before the process does. A
/// connection the pool opened for it must not die with it while another task still uses it
/// (the debug-log writer, writing the last rows at shutdown).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_outlive_the_runtime_that_asked_for_them() -> TestResult {
    let test_db = TestDatabase::postgres().await;
    let mut config = DbConfig::new(test_db.url().to_owned());
    config.max_connections = 2;
    let db = connect(&config).await?;

    // A "worker": a runtime of its own, on which the pool opens its second connection.
    let (opened_tx, opened_rx) = std::sync::mpsc::channel::<()>();
    let (end_tx, end_rx) = std::sync::mpsc::channel::<()>();
    let worker_db = db.clone();
    let worker = std::thread::spawn(move || -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            // Two at once: one reuses the connection `connect` opened, one is new.
            let (a, b) = futures::join!(worker_db.ping(), worker_db.ping());
            a.and(b)
        })?;
        opened_tx.send(())?;
        end_rx.recv()?;
        drop(runtime);
        Ok(())
    });
    opened_rx.recv()?;

    // Both connections busy here while the worker's runtime ends.
    let slow = || query::<Slept>(&db, "SELECT pg_sleep(0.4)::text AS slept");
    let (a, b, ended) = futures::join!(slow(), slow(), async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        end_tx.send(())
    });
    ended?;
    worker
        .join()
        .map_err(|_| anyhow::anyhow!("worker panicked"))??;
    a?;
    b?;
    Ok(())
}

#[derive(diesel::QueryableByName)]
struct Slept {
    #[diesel(sql_type = Text)]
    #[allow(dead_code)]
    slept: String,
}

/// A connection the server terminates (`pg_terminate_backend`, SQLSTATE 57P01, as in a
/// restart or failover) is "unavailable, retry later", not a database error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_connection_is_unavailable() -> TestResult {
    use onboarding_adapters_db::DbPool;
    use onboarding_domain::ports::RepoError;

    let test_db = TestDatabase::postgres().await;
    let db = connect(&DbConfig::new(test_db.url().to_owned())).await?;
    let DbPool::Postgres(pool) = db.pool() else {
        anyhow::bail!("not PostgreSQL");
    };
    let mut victim = pool.get().await?;
    #[derive(diesel::QueryableByName)]
    struct Pid {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pid: i32,
    }
    use diesel_async::RunQueryDsl;
    let pid = diesel::sql_query("SELECT pg_backend_pid() AS pid")
        .get_result::<Pid>(&mut *victim)
        .await?
        .pid;
    let sleeping = async {
        diesel::sql_query("SELECT pg_sleep(5)")
            .execute(&mut *victim)
            .await
    };
    let terminate = async {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        TestDatabase::execute(&test_db, &format!("SELECT pg_terminate_backend({pid})")).await
    };
    let (slept, terminated) = futures::join!(sleeping, terminate);
    terminated?;
    let error = slept
        .err()
        .ok_or_else(|| anyhow::anyhow!("the query survived its backend"))?;
    let repo = RepoError::from(DbError::from(error));
    assert!(matches!(repo, RepoError::Unavailable(_)), "{repo:?}");
    Ok(())
}
