//! How long a test waits for anything.

use std::time::Duration;

/// Bounds every wait, so a broken server fails the test instead of hanging it. Not a
/// performance expectation.
const PATIENCE: Duration = Duration::from_secs(30);

pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {PATIENCE:?}"))
}
