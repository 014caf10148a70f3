//! Command-line values with units: durations (`"500ms"`, `"10s"`, `"5m"`) and sizes
//! (`"10KiB"`, `"2MiB"`, `"4096"`), spelled the same way as Lifeboat's own
//! configuration (SPEC §8) so one vocabulary serves both.

use std::time::Duration;

/// Why a value with a unit was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnitError {
    #[error("empty value")]
    Empty,
    #[error("`{0}` does not start with a number")]
    NoNumber(String),
    #[error("unknown unit `{unit}` in `{value}`")]
    UnknownUnit { value: String, unit: String },
    #[error("`{0}` is too large")]
    Overflow(String),
}

/// Splits `"10KiB"` into `(10, "KiB")`; the number may have a fraction (`"1.5s"`).
fn split_number(value: &str) -> Result<(f64, &str), UnitError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(UnitError::Empty);
    }
    let digits_end = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let number: f64 = value[..digits_end]
        .parse()
        .map_err(|_| UnitError::NoNumber(value.to_string()))?;
    Ok((number, value[digits_end..].trim()))
}

/// Parses a duration such as `"250ms"`, `"10s"`, `"2m"`, `"1h"`; a bare number is seconds.
pub fn parse_duration(value: &str) -> Result<Duration, UnitError> {
    let (number, unit) = split_number(value)?;
    let seconds_per_unit = match unit {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        _ => {
            return Err(UnitError::UnknownUnit {
                value: value.to_string(),
                unit: unit.to_string(),
            })
        }
    };
    Duration::try_from_secs_f64(number * seconds_per_unit)
        .map_err(|_| UnitError::Overflow(value.to_string()))
}

/// Parses a size such as `"4096"`, `"10KiB"`, `"1MiB"`, `"10kB"`; binary units are
/// powers of 1024, decimal ones powers of 1000, as in SPEC §8.
pub fn parse_size(value: &str) -> Result<u64, UnitError> {
    let (number, unit) = split_number(value)?;
    let bytes_per_unit: f64 = match unit {
        "" | "B" => 1.0,
        "K" | "KiB" | "k" => 1024.0,
        "M" | "MiB" => 1024.0 * 1024.0,
        "G" | "GiB" => 1024.0 * 1024.0 * 1024.0,
        "kB" | "KB" => 1000.0,
        "MB" => 1_000_000.0,
        "GB" => 1_000_000_000.0,
        _ => {
            return Err(UnitError::UnknownUnit {
                value: value.to_string(),
                unit: unit.to_string(),
            })
        }
    };
    let bytes = (number * bytes_per_unit).round();
    if !(0.0..=(u64::MAX as f64)).contains(&bytes) {
        return Err(UnitError::Overflow(value.to_string()));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let cases = [
            ("10s", Duration::from_secs(10)),
            ("10", Duration::from_secs(10)),
            ("250ms", Duration::from_millis(250)),
            ("1.5s", Duration::from_millis(1500)),
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_duration(input), Ok(expected), "{input}");
        }
        assert!(matches!(parse_duration(""), Err(UnitError::Empty)));
        assert!(matches!(
            parse_duration("5 fortnights"),
            Err(UnitError::UnknownUnit { .. })
        ));
        assert!(matches!(parse_duration("s"), Err(UnitError::NoNumber(_))));
    }

    #[test]
    fn sizes() {
        let cases = [
            ("4096", 4096),
            ("10KiB", 10 * 1024),
            ("10k", 10 * 1024),
            ("2MiB", 2 * 1024 * 1024),
            ("10kB", 10_000),
            ("1.5KiB", 1536),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_size(input), Ok(expected), "{input}");
        }
        assert!(matches!(
            parse_size("3 parsecs"),
            Err(UnitError::UnknownUnit { .. })
        ));
    }
}
