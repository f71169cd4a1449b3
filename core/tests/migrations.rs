//! Databases migrated by earlier binaries must still start: sqlx refuses a database whose
//! recorded checksum of a migration differs from the binary's.

mod support;

use std::borrow::Cow;

use herald_core::db::{Backend, Db};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use support::{postgres, sqlite};

/// A migration as released, when `sqlx::migrate!` read `migrations/postgres` and
/// `migrations/sqlite` (7c726e6): version, description, SQL (the same text, since moved in
/// part to `migrations/shared`) and the SHA-384 that `_sqlx_migrations.checksum` holds in every
/// database migrated since (`sha384sum core/migrations/*/*.sql` at 7c726e6). Never change one.
struct Released {
    version: i64,
    description: &'static str,
    sql: &'static str,
    checksum: &'static str,
}

/// Migrations 2 and 3 were the same on both backends.
const PROCESSING_AND_JOBS: Released = Released {
    version: 2,
    description: "processing and jobs",
    sql: include_str!("../migrations/shared/0002_processing_and_jobs.sql"),
    checksum: "558dfa7ea9682f49d74709ecc53fee835b6dc80692e8947a4203ce351505cde6579a9b9f05735e70b11d3989d52924cc",
};

const OUTBOX_TABLE: Released = Released {
    version: 3,
    description: "outbox table",
    sql: include_str!("../migrations/shared/0003_outbox_table.sql"),
    checksum: "d124e08a752463c235bcf0a56067d070bde87dfcadb3707400df8b18cb64258ad194a84251e8b5cada85385e3981224f",
};

/// Released with authentication (issue 15); the same on both backends.
const API_KEYS: Released = Released {
    version: 4,
    description: "api keys",
    sql: include_str!("../migrations/shared/0004_api_keys.sql"),
    checksum: "ee47bb212cca150760d510cd03d5ef86a31cfc9811b696f23fa90753dd24504c4ba68359d7156370786d6b0c1fb70f68",
};

const POSTGRES: [Released; 4] = [
    Released {
        version: 1,
        description: "notifications",
        sql: include_str!("../migrations/postgres/0001_notifications.sql"),
        checksum: "17bca144f9ba43481211e520025fac0952f33357cfd69db21227cc500363f72a353d6487c18a9a2bca247cb09ee2e87f",
    },
    PROCESSING_AND_JOBS,
    OUTBOX_TABLE,
    API_KEYS,
];

const SQLITE: [Released; 4] = [
    Released {
        version: 1,
        description: "notifications",
        sql: include_str!("../migrations/sqlite/0001_notifications.sql"),
        checksum: "80af66fc5b23db25691b8d687922c5be71b4fec273ba167fc31a9d2ddc928d4401e910fb137548f8f8ff8d8a7f34c42c",
    },
    PROCESSING_AND_JOBS,
    OUTBOX_TABLE,
    API_KEYS,
];

fn released(backend: Backend) -> &'static [Released] {
    match backend {
        Backend::Postgres => &POSTGRES,
        Backend::Sqlite => &SQLITE,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

/// (version, description, checksum) of the released migrations as `db` recorded them.
async fn recorded(db: &Db) -> Vec<(i64, String, String)> {
    let rows: Vec<(i64, String, Vec<u8>)> = sqlx::query_as(
        "SELECT version, description, checksum FROM _sqlx_migrations ORDER BY version",
    )
    .fetch_all(db.pool())
    .await
    .expect("_sqlx_migrations");
    let last = released(db.backend()).len();
    rows.into_iter()
        .take(last)
        .map(|(version, description, checksum)| (version, description, hex(&checksum)))
        .collect()
}

fn expected(backend: Backend) -> Vec<(i64, String, String)> {
    released(backend)
        .iter()
        .map(|m| (m.version, m.description.to_owned(), m.checksum.to_owned()))
        .collect()
}

/// A fresh database migrated by this binary records the released checksums.
async fn records_the_released_checksums(db: Db) {
    assert_eq!(recorded(&db).await, expected(db.backend()));
}

/// A database migrated as a released binary did (its SQL, its checksums) starts and migrates.
async fn migrated_by_a_released_binary_still_starts(db: Db) {
    let backend = db.backend();
    let released_binary = Migrator::with_migrations(
        released(backend)
            .iter()
            .map(|m| Migration {
                checksum: Cow::Owned(unhex(m.checksum)),
                ..Migration::new(
                    m.version,
                    Cow::Borrowed(m.description),
                    MigrationType::Simple,
                    sqlx::SqlStr::from_static(m.sql),
                    false,
                )
            })
            .collect(),
    );
    released_binary
        .run(db.pool())
        .await
        .expect("the released migrations");
    db.migrate()
        .await
        .expect("a database migrated by a released binary is accepted");
    assert_eq!(recorded(&db).await, expected(backend));
}

#[tokio::test]
async fn postgres_records_the_released_checksums() {
    records_the_released_checksums(postgres().await).await;
}

#[tokio::test]
async fn sqlite_records_the_released_checksums() {
    let dir = tempfile::tempdir().expect("tempdir");
    records_the_released_checksums(sqlite(&dir).await).await;
}

#[tokio::test]
async fn postgres_migrated_by_a_released_binary_still_starts() {
    let database = test_support::test_database().await;
    let db = Db::connect(&database.url, 2).await.expect("connect");
    migrated_by_a_released_binary_still_starts(db).await;
}

#[tokio::test]
async fn sqlite_migrated_by_a_released_binary_still_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("herald.db").display());
    let db = Db::connect(&url, 2).await.expect("connect");
    migrated_by_a_released_binary_still_starts(db).await;
}
