//! The migrated database every core test starts from, on both backends.

use herald_core::db::Db;

/// A fresh database on the test environment's PostgreSQL.
pub async fn postgres() -> Db {
    let database = test_support::test_database().await;
    let db = Db::connect(&database.url, 10).await.expect("connect");
    db.migrate().await.expect("migrate");
    db
}

/// A fresh SQLite file in `dir`.
pub async fn sqlite(dir: &tempfile::TempDir) -> Db {
    let url = format!("sqlite://{}", dir.path().join("herald.db").display());
    let db = Db::connect(&url, 4).await.expect("connect");
    db.migrate().await.expect("migrate");
    db
}
