//! The `api_keys` table: services' API keys, as the api-server's `keys` command manages them.
//! The table holds a key's public id, its name and scopes, and a SHA-256 of its secret part;
//! what the scopes and the key format mean is the api-server's business.

use chrono::{DateTime, Utc};

use super::{Db, DbError, from_micros, to_micros};

/// One row of `api_keys`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredApiKey {
    pub id: String,
    pub name: String,
    /// Comma-separated, as the api-server wrote them.
    pub scopes: String,
    /// Lowercase hex.
    pub secret_sha256: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

type Row = (String, String, String, String, i64, Option<i64>);

impl Db {
    pub async fn insert_api_key(&self, key: &StoredApiKey) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO api_keys (id, name, scopes, secret_sha256, created_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, NULL)",
        )
        .bind(&key.id)
        .bind(&key.name)
        .bind(&key.scopes)
        .bind(&key.secret_sha256)
        .bind(to_micros(key.created_at))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Every key, revoked ones included, oldest first.
    pub async fn api_keys(&self) -> Result<Vec<StoredApiKey>, DbError> {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, name, scopes, secret_sha256, created_at, revoked_at FROM api_keys \
             ORDER BY created_at, id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|(id, name, scopes, secret_sha256, created, revoked)| {
                Ok(StoredApiKey {
                    id,
                    name,
                    scopes,
                    secret_sha256,
                    created_at: from_micros(created)?,
                    revoked_at: revoked.map(from_micros).transpose()?,
                })
            })
            .collect()
    }

    /// Revokes the keys whose id or name is `id_or_name` and that are not revoked yet; how
    /// many that was.
    pub async fn revoke_api_key(
        &self,
        id_or_name: &str,
        at: DateTime<Utc>,
    ) -> Result<u64, DbError> {
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = $1 \
             WHERE (id = $2 OR name = $2) AND revoked_at IS NULL",
        )
        .bind(to_micros(at))
        .bind(id_or_name)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }
}
