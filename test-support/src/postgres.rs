use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Executor, PgConnection};

use crate::{reach, settings, unique_name, unreachable_component};

/// A database of its own for one test, created empty on the test environment's server.
pub struct TestDatabase {
    pub pool: PgPool,
    /// Connection URL of this database, for a service under test.
    pub url: String,
    pub name: String,
}

/// Creates a fresh database. Databases are left behind for inspection; `scripts/testenv down`
/// removes them all.
pub async fn test_database() -> TestDatabase {
    let admin_url = &settings().database_url;
    let options = PgConnectOptions::from_str(admin_url)
        .unwrap_or_else(|e| panic!("DATABASE_URL {admin_url} is not a PostgreSQL URL: {e}"));
    let mut admin = reach("postgres", admin_url, PgConnection::connect_with(&options)).await;
    let name = unique_name("t").replace('-', "_");
    // The name is ours (a uuid), so formatting it into the statement is safe.
    admin
        .execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap_or_else(|e| panic!("creating database {name}: {e}"));
    admin.close().await.ok();

    let options = options.database(&name);
    let url = options.to_url_lossy().to_string();
    let pool = PgPoolOptions::new()
        .max_connections(5)
        .connect_with(options)
        .await
        .unwrap_or_else(|e| unreachable_component("postgres", &url, e));
    TestDatabase { pool, url, name }
}
