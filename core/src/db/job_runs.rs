//! The run records of the batch jobs (`job_runs`): started, finished, listed.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::AssertSqlSafe;
use uuid::Uuid;

use super::{Db, DbError, from_micros, to_micros};
use crate::string_enum::string_enum;

string_enum! {
    /// How a job run ended (or that it has not).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum JobStatus {
        /// Started and not finished; a run whose process died stays here.
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
    }
}

/// One row of `job_runs`, as `GET /api/jobs` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobRun {
    pub id: Uuid,
    /// `cleanup`, `report` or `user-sync`.
    pub job: String,
    pub status: JobStatus,
    pub dry_run: bool,
    pub parameters: serde_json::Value,
    pub counts: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub started_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct JobRunRow {
    id: String,
    job: String,
    status: String,
    dry_run: i64,
    parameters: String,
    counts: String,
    error: Option<String>,
    started_at: i64,
    finished_at: Option<i64>,
}

impl TryFrom<JobRunRow> for JobRun {
    type Error = DbError;

    fn try_from(row: JobRunRow) -> Result<Self, DbError> {
        let corrupt = |what: &str| DbError::Corrupt(format!("job run {}: {what}", row.id));
        Ok(JobRun {
            id: Uuid::parse_str(&row.id).map_err(|_| corrupt("id"))?,
            status: JobStatus::parse(&row.status).ok_or_else(|| corrupt("status"))?,
            dry_run: row.dry_run != 0,
            parameters: serde_json::from_str(&row.parameters).map_err(|_| corrupt("parameters"))?,
            counts: serde_json::from_str(&row.counts).map_err(|_| corrupt("counts"))?,
            started_at: from_micros(row.started_at)?,
            finished_at: row.finished_at.map(from_micros).transpose()?,
            job: row.job,
            error: row.error,
        })
    }
}

impl Db {
    /// Records the start of a run; returns its id.
    pub async fn start_job_run(
        &self,
        job: &str,
        dry_run: bool,
        parameters: &serde_json::Value,
    ) -> Result<Uuid, DbError> {
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO job_runs (id, job, status, dry_run, parameters, counts, started_at) \
             VALUES ($1, $2, $3, $4, $5, '{}', $6)",
        )
        .bind(id.to_string())
        .bind(job)
        .bind(JobStatus::Running.as_str())
        .bind(i64::from(dry_run))
        .bind(parameters.to_string())
        .bind(to_micros(Utc::now()))
        .execute(self.pool())
        .await?;
        Ok(id)
    }

    pub async fn finish_job_run(
        &self,
        id: Uuid,
        status: JobStatus,
        counts: &serde_json::Value,
        error: Option<&str>,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE job_runs SET status = $1, counts = $2, error = $3, finished_at = $4 \
             WHERE id = $5",
        )
        .bind(status.as_str())
        .bind(counts.to_string())
        .bind(error)
        .bind(to_micros(Utc::now()))
        .bind(id.to_string())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Runs newest first, at most `limit`, optionally of one job and older than `before`
    /// (a run id: ids are UUIDv7, so they order by start time).
    pub async fn job_runs(
        &self,
        limit: u32,
        job: Option<&str>,
        before: Option<Uuid>,
    ) -> Result<Vec<JobRun>, DbError> {
        let mut conditions = Vec::new();
        if job.is_some() {
            conditions.push(format!("job = ${}", conditions.len() + 1));
        }
        if before.is_some() {
            conditions.push(format!("id < ${}", conditions.len() + 1));
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql = format!(
            "SELECT id, job, status, dry_run, parameters, counts, error, started_at, finished_at \
             FROM job_runs {filter} ORDER BY id DESC LIMIT ${}",
            conditions.len() + 1
        );
        let mut select = sqlx::query_as::<_, JobRunRow>(AssertSqlSafe(sql));
        if let Some(job) = job {
            select = select.bind(job.to_owned());
        }
        if let Some(before) = before {
            select = select.bind(before.to_string());
        }
        let rows = select.bind(i64::from(limit)).fetch_all(self.pool()).await?;
        rows.into_iter().map(JobRun::try_from).collect()
    }
}
