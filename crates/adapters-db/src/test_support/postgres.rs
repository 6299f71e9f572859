//! PostgreSQL for tests: a server from `TEST_DATABASE_URL` or a throwaway [`Cluster`], and one
//! database per test on it.

use diesel_async::SimpleAsyncConnection;
use tokio::sync::OnceCell;
use uuid::Uuid;

use super::cluster::Cluster;
use crate::pool::open_postgres;

pub(super) const HOW_TO_FIX: &str = "PostgreSQL tests need a server: set TEST_DATABASE_URL to a server \
     where the role may CREATE DATABASE (e.g. postgres://postgres@127.0.0.1:5432/postgres), or \
     install the PostgreSQL server binaries (Debian/Ubuntu: apt-get install postgresql) so that \
     a throwaway cluster can be started; binaries are looked for in PG_BIN_DIR, the newest \
     /usr/lib/postgresql/*/bin, then initdb on PATH";

static SERVER: OnceCell<Result<Server, String>> = OnceCell::const_new();

struct Server {
    /// Where `CREATE DATABASE` / `DROP DATABASE` are sent.
    admin_url: String,
    /// The throwaway cluster, when there is one; a static, so it lives until this process
    /// exits.
    _cluster: Option<Cluster>,
}

impl Server {
    fn database_url(&self, name: &str) -> String {
        with_database(&self.admin_url, name)
    }
}

/// Drops a test's database, from `TestDatabase::drop`.
pub(super) struct DropDatabase {
    admin_url: String,
    name: String,
}

impl DropDatabase {
    pub(super) fn run(&self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop is synchronous and may run inside a runtime: do the async work on a thread
        // of its own with a runtime of its own.
        let outcome = std::thread::spawn(move || -> Result<(), String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let mut admin = open_postgres(&admin_url).await.map_err(|e| e.to_string())?;
                admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await
                    .map_err(|e| e.to_string())
            })
        })
        .join();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: could not drop test database {}: {e}", self.name),
            Err(_) => eprintln!("warning: dropping test database {} panicked", self.name),
        }
    }
}

/// Creates an empty database for one test; returns its URL and how to drop it.
pub(super) async fn create_database() -> Result<(String, DropDatabase), String> {
    let server = SERVER
        .get_or_init(start_server)
        .await
        .as_ref()
        .map_err(Clone::clone)?;
    let name = format!("onboarding_test_{}", Uuid::now_v7().simple());
    let mut admin = open_postgres(&server.admin_url)
        .await
        .map_err(|e| format!("cannot connect to the test server: {e}. {HOW_TO_FIX}"))?;
    admin
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
        .map_err(|e| format!("CREATE DATABASE {name} failed: {e}. {HOW_TO_FIX}"))?;
    Ok((
        server.database_url(&name),
        DropDatabase {
            admin_url: server.admin_url.clone(),
            name,
        },
    ))
}

async fn start_server() -> Result<Server, String> {
    if let Ok(url) = std::env::var("TEST_DATABASE_URL")
        && !url.trim().is_empty()
    {
        let url = url.trim().to_owned();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(format!(
                "TEST_DATABASE_URL must be a postgres:// URL. {HOW_TO_FIX}"
            ));
        }
        return Ok(Server {
            admin_url: url,
            _cluster: None,
        });
    }
    let cluster = Cluster::start().await?;
    Ok(Server {
        admin_url: cluster.url("127.0.0.1", ""),
        _cluster: Some(cluster),
    })
}

/// `url` with its database name replaced by `name` (query parameters kept).
pub fn with_database(url: &str, name: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            parsed.set_path(&format!("/{name}"));
            parsed.into()
        }
        // Not a URL: nothing to replace.
        Err(_) => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/postgres", "t1"),
            "postgres://u:p@h:5432/t1"
        );
        assert_eq!(
            with_database("postgresql://h/db?sslmode=disable", "t1"),
            "postgresql://h/t1?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "t1"), "postgres://h/t1");
    }
}
