//! Printing results: a two-column table for people, JSON for scripts.

use serde::Serialize;

/// Prints `report` as pretty JSON when `json`, else as the table of `rows`.
pub fn print<T: Serialize>(json: bool, title: &str, report: &T, rows: &[(&str, String)]) {
    if json {
        // Reports are plain data; serializing them cannot fail.
        println!(
            "{}",
            serde_json::to_string_pretty(report).unwrap_or_default()
        );
        return;
    }
    println!("{title}");
    let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    for (name, value) in rows {
        println!("  {name:<width$}  {value}");
    }
}

/// `12,345.6`-style rates for tables.
pub fn rate(per_second: f64) -> String {
    let whole = per_second.round() as u64;
    let digits = whole.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    grouped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_thousands() {
        assert_eq!(rate(0.4), "0");
        assert_eq!(rate(999.0), "999");
        assert_eq!(rate(29_000.2), "29,000");
        assert_eq!(rate(1_234_567.0), "1,234,567");
    }
}
