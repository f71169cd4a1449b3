//! The schema's migrations, for both backends from one list. Where PostgreSQL and SQLite run
//! the same SQL, its one file is in `migrations/shared/`; where the dialects differ, each
//! backend has its own file (`migrations/postgres/`, `migrations/sqlite/`).
//!
//! A database records the SHA-384 of every migration it ran and refuses to start when one
//! changed, so versions, descriptions and file contents (comments included) stay exactly as
//! released: `core/tests/migrations.rs` holds the checksums databases already have. A new
//! migration is a new file (or one per backend) and a new line in [`MIGRATIONS`].

use std::borrow::Cow;
use std::sync::LazyLock;

use sqlx::SqlStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

use super::backend::Backend;

/// One migration's SQL: the same for both backends, or one per backend.
enum Sql {
    Shared(File),
    PerBackend { postgres: File, sqlite: File },
}

/// A migration file: its text, and (for the test that every file is listed) its path under
/// `migrations/`.
struct File {
    text: &'static str,
    #[cfg(test)]
    path: &'static str,
}

macro_rules! migration_file {
    ($path:literal) => {
        File {
            #[cfg(test)]
            path: $path,
            text: include_str!(concat!("../../migrations/", $path)),
        }
    };
}

/// Version, description (what `sqlx::migrate!` made of the file name) and SQL.
const MIGRATIONS: &[(i64, &str, Sql)] = &[
    (
        1,
        "notifications",
        Sql::PerBackend {
            postgres: migration_file!("postgres/0001_notifications.sql"),
            sqlite: migration_file!("sqlite/0001_notifications.sql"),
        },
    ),
    (
        2,
        "processing and jobs",
        Sql::Shared(migration_file!("shared/0002_processing_and_jobs.sql")),
    ),
    (
        3,
        "outbox table",
        Sql::Shared(migration_file!("shared/0003_outbox_table.sql")),
    ),
    (
        4,
        "api keys",
        Sql::Shared(migration_file!("shared/0004_api_keys.sql")),
    ),
];

impl Sql {
    fn file(&self, backend: Backend) -> &File {
        match (self, backend) {
            (Self::Shared(file), _) => file,
            (Self::PerBackend { postgres, .. }, Backend::Postgres) => postgres,
            (Self::PerBackend { sqlite, .. }, Backend::Sqlite) => sqlite,
        }
    }
}

/// The migrations of `backend`.
pub(super) fn migrator(backend: Backend) -> &'static Migrator {
    static POSTGRES: LazyLock<Migrator> = LazyLock::new(|| build(Backend::Postgres));
    static SQLITE: LazyLock<Migrator> = LazyLock::new(|| build(Backend::Sqlite));
    match backend {
        Backend::Postgres => &POSTGRES,
        Backend::Sqlite => &SQLITE,
    }
}

fn build(backend: Backend) -> Migrator {
    Migrator::with_migrations(
        MIGRATIONS
            .iter()
            .map(|(version, description, sql)| {
                let text = sql.file(backend).text;
                Migration::new(
                    *version,
                    Cow::Borrowed(*description),
                    MigrationType::Simple,
                    SqlStr::from_static(text),
                    // As sqlx::migrate! reads a file that opts out of the transaction.
                    text.starts_with("-- no-transaction"),
                )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Nothing picks a new file under `migrations/` up by itself: it must be in the list.
    #[test]
    fn every_migration_file_is_listed() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut on_disk = BTreeSet::new();
        for dir in std::fs::read_dir(&root).expect("migrations/") {
            let dir = dir.expect("entry").path();
            for file in std::fs::read_dir(&dir).expect("a backend's directory") {
                let file = file.expect("entry").path();
                let relative = file.strip_prefix(&root).expect("under migrations/");
                on_disk.insert(relative.to_string_lossy().into_owned());
            }
        }
        let listed: BTreeSet<_> = MIGRATIONS
            .iter()
            .flat_map(|(_, _, sql)| match sql {
                Sql::Shared(file) => vec![file.path.to_owned()],
                Sql::PerBackend { postgres, sqlite } => {
                    vec![postgres.path.to_owned(), sqlite.path.to_owned()]
                }
            })
            .collect();
        assert_eq!(on_disk, listed);
    }
}
