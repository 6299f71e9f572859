//! A TCP proxy between the service and PostgreSQL that a test can cut: every open connection
//! is dropped and new ones are closed at once, which is what the service sees while the
//! database restarts. Works with a throwaway cluster and with `TEST_DATABASE_URL` alike.

use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct DbProxy {
    /// The database URL with the proxy's address in place of the server's.
    url: String,
    /// `true` while the database is "down".
    down: Arc<watch::Sender<bool>>,
}

impl DbProxy {
    pub async fn start(database_url: &str) -> Self {
        let (scheme, rest) = database_url
            .split_once("://")
            .unwrap_or_else(|| panic!("not a URL: {database_url}"));
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (credentials, host_port) = match authority.rsplit_once('@') {
            Some((credentials, host_port)) => (Some(credentials), host_port),
            None => (None, authority),
        };
        let upstream = if host_port.contains(':') {
            host_port.to_owned()
        } else {
            format!("{host_port}:5432")
        };
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the proxy binds a loopback port");
        let listen = listener.local_addr().expect("the proxy's address");
        let url = match credentials {
            Some(credentials) => format!("{scheme}://{credentials}@{listen}/{path}"),
            None => format!("{scheme}://{listen}/{path}"),
        };
        let (down, _) = watch::channel(false);
        let down = Arc::new(down);
        let accept_down = Arc::clone(&down);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if *accept_down.borrow() {
                    drop(client);
                    continue;
                }
                let upstream = upstream.clone();
                let mut cut = accept_down.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let mut client = client;
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.wait_for(|down| *down) => {}
                    }
                });
            }
        });
        Self { url, down }
    }

    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Drops every connection and refuses new ones, until [`DbProxy::restore`].
    pub fn cut(&self) {
        self.down.send_replace(true);
    }

    pub fn restore(&self) {
        self.down.send_replace(false);
    }
}
