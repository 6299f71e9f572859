//! `on_both_backends!`: each named test twice, once on SQLite and once on PostgreSQL, for
//! this crate's tests and the service's alike.

use std::future::Future;

use tokio::runtime::{Builder, Runtime};

use super::TestDatabase;
use crate::Backend;

/// For each named `async fn` of the calling module, a test `sqlite::<name>` and a test
/// `postgres::<name>`. The function takes a fresh, migrated [`TestDatabase`], or the
/// [`Backend`] when it makes its own (a service under test does); it returns `()` or a
/// `Result`, as any test.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() -> impl ::std::process::Termination {
                    $crate::test_support::run_on($crate::Backend::Sqlite, super::$name)
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() -> impl ::std::process::Termination {
                    $crate::test_support::run_on($crate::Backend::Postgres, super::$name)
                }
            )*
        }
    };
}

/// Runs `test` to completion on a runtime of its own, as `#[tokio::test]` does, handing it
/// what it takes on `backend`. Used by [`on_both_backends!`](crate::on_both_backends).
pub fn run_on<A, F>(backend: Backend, test: impl FnOnce(A) -> F) -> F::Output
where
    A: BackendTestInput,
    F: Future,
{
    A::runtime().block_on(async move { test(A::for_backend(backend).await).await })
}

/// What a test of [`on_both_backends!`](crate::on_both_backends) takes.
pub trait BackendTestInput: Sized {
    /// The runtime the test runs on.
    fn runtime() -> Runtime;

    /// The input for a test on `backend`.
    fn for_backend(backend: Backend) -> impl Future<Output = Self>;
}

// Each kind of test keeps the runtime it ran on before one macro served both: a database
// test two workers, a service test `#[tokio::test]`'s single thread.

impl BackendTestInput for TestDatabase {
    fn runtime() -> Runtime {
        Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a Tokio runtime for the test")
    }

    async fn for_backend(backend: Backend) -> Self {
        TestDatabase::new(backend).await
    }
}

impl BackendTestInput for Backend {
    fn runtime() -> Runtime {
        Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a Tokio runtime for the test")
    }

    async fn for_backend(backend: Backend) -> Self {
        backend
    }
}
