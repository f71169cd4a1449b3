//! Durations on the command line: `500us`, `100ms`, `10s`, `2m`, `1h`.

use std::time::Duration;

pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 500ms, 10s or 2m"))?;
    let seconds = match unit.trim() {
        "us" | "µs" => value / 1e6,
        "ms" => value / 1e3,
        "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        "" => return Err(format!("{text:?} needs a unit: us, ms, s, m or h")),
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (us, ms, s, m, h)"
            ));
        }
    };
    if !seconds.is_finite() || seconds > 86_400.0 {
        return Err(format!("{text:?} is longer than a day"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// As `parse`, refusing zero.
pub fn parse_positive(text: &str) -> Result<Duration, String> {
    let duration = parse(text)?;
    if duration.is_zero() {
        return Err(format!("{text:?} must be more than zero"));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse("500us"), Ok(Duration::from_micros(500)));
        assert_eq!(parse("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn bad_input() {
        for text in ["", "10", "s", "10 parsecs", "-1s", "2d", "100000h"] {
            assert!(parse(text).is_err(), "{text}");
        }
        assert!(parse_positive("0ms").is_err());
    }
}
