//! `report`: notifications created per hour, type and status over a period, stored in the
//! `reports` table (a re-run of a period replaces its rows) and returned for printing.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde::Serialize;

use super::options::{JobError, JobOptions};
use super::progress::Progress;
use crate::db::{Db, ReportCell};

const HOUR_MICROS: i64 = 3_600_000_000;

/// Which hours to report on. Bounds are widened to whole hours, so every hour is either
/// entirely in a report or not at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportPeriod {
    /// The last `n` hours, the current (partial) hour included.
    LastHours(u32),
    Between {
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    },
}

impl ReportPeriod {
    /// The period as `[from, to)` on hour boundaries, at time `now`.
    pub fn resolve(&self, now: DateTime<Utc>) -> Result<(DateTime<Utc>, DateTime<Utc>), JobError> {
        let invalid = |message: String| JobError::Invalid(message);
        let hour = TimeDelta::hours(1);
        let (from, to) = match *self {
            Self::LastHours(hours) => {
                if !(1..=24 * 366).contains(&hours) {
                    return Err(invalid(format!(
                        "the report covers 1 to {} hours, not {hours}",
                        24 * 366
                    )));
                }
                let to = floor_hour(now)? + hour;
                (to - TimeDelta::hours(hours.into()), to)
            }
            Self::Between { from, to } => {
                let from = floor_hour(from)?;
                let floor_to = floor_hour(to)?;
                let to = if floor_to == to {
                    floor_to
                } else {
                    floor_to + hour
                };
                (from, to)
            }
        };
        if from >= to {
            return Err(invalid(format!(
                "the report period is empty: from {from} is not before to {to}"
            )));
        }
        Ok((from, to))
    }
}

fn floor_hour(time: DateTime<Utc>) -> Result<DateTime<Utc>, JobError> {
    time.duration_trunc(TimeDelta::hours(1))
        .map_err(|e| JobError::Invalid(format!("time {time}: {e}")))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportParams {
    pub period: ReportPeriod,
}

/// One line of a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportRow {
    pub hour: DateTime<Utc>,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub dry_run: bool,
    /// Notifications created in the period: the sum of the rows' counts.
    pub total: u64,
    /// By hour, then type, then status; combinations without notifications are left out.
    pub rows: Vec<ReportRow>,
}

/// What `job_runs.counts` holds for a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportCounts {
    pub notifications: u64,
    pub rows: u64,
}

impl Report {
    pub fn counts(&self) -> ReportCounts {
        ReportCounts {
            notifications: self.total,
            rows: self.rows.len() as u64,
        }
    }
}

/// A plain-text table for terminals.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "notifications created from {} to {}", self.from, self.to)?;
        writeln!(
            f,
            "{:<22} {:<8} {:<10} {:>10}",
            "hour", "type", "status", "count"
        )?;
        for row in &self.rows {
            writeln!(
                f,
                "{:<22} {:<8} {:<10} {:>10}",
                row.hour.format("%Y-%m-%d %H:00 UTC"),
                row.kind,
                row.status,
                row.count
            )?;
        }
        write!(f, "{:<42} {:>10}", "total", self.total)
    }
}

pub(super) async fn run(
    db: &Db,
    params: &ReportParams,
    options: JobOptions,
    now: DateTime<Utc>,
    progress: &dyn Progress,
) -> Result<Report, JobError> {
    let (from, to) = params.period.resolve(now)?;
    let expected = db.count_created_between(from, to).await?;
    let mut cells: BTreeMap<ReportCell, u64> = BTreeMap::new();
    let mut after = i64::MIN;
    let mut done = 0;
    loop {
        let batch = db
            .report_sources(from, to, after, options.batch_size)
            .await?;
        let Some(last) = batch.last() else { break };
        after = last.sequence;
        done += batch.len() as u64;
        for source in batch {
            let cell = ReportCell {
                hour: source.created_at - source.created_at.rem_euclid(HOUR_MICROS),
                kind: source.kind,
                status: source.status,
            };
            *cells.entry(cell).or_default() += 1;
        }
        progress.update("report", done, Some(expected));
    }
    if !options.dry_run {
        db.replace_report(from, to, &cells).await?;
    }
    let rows = cells
        .into_iter()
        .map(|(cell, count)| {
            let hour = DateTime::from_timestamp_micros(cell.hour).unwrap_or_default();
            ReportRow {
                hour,
                kind: cell.kind,
                status: cell.status,
                count,
            }
        })
        .collect();
    Ok(Report {
        from,
        to,
        dry_run: options.dry_run,
        total: done,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().expect("time")
    }

    #[test]
    fn periods_widen_to_whole_hours() {
        let now = at("2026-01-02T10:30:00Z");
        let (from, to) = ReportPeriod::LastHours(2).resolve(now).expect("valid");
        assert_eq!(
            (from, to),
            (at("2026-01-02T09:00:00Z"), at("2026-01-02T11:00:00Z"))
        );
        let between = ReportPeriod::Between {
            from: at("2026-01-01T00:15:00Z"),
            to: at("2026-01-01T03:00:00Z"),
        };
        assert_eq!(
            between.resolve(now).expect("valid"),
            (at("2026-01-01T00:00:00Z"), at("2026-01-01T03:00:00Z"))
        );
        let empty = ReportPeriod::Between {
            from: at("2026-01-01T03:00:00Z"),
            to: at("2026-01-01T03:00:00Z"),
        };
        assert!(empty.resolve(now).is_err());
        assert!(ReportPeriod::LastHours(0).resolve(now).is_err());
    }
}
