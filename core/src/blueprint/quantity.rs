//! Kubernetes quantities (`500m`, `512Mi`, `1.5G`) as numbers, for validation and for Docker,
//! which wants bytes and nano-CPUs.

/// The value of a quantity in base units (cores, bytes), or `None` when it is not one.
pub(crate) fn parse_quantity(text: &str) -> Option<f64> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let multiplier = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => return None,
    };
    Some(value * multiplier)
}

/// Memory quantity in whole bytes.
pub(crate) fn memory_bytes(text: &str) -> Option<i64> {
    // Quantities above i64::MAX bytes do not occur in practice; the cast saturates.
    parse_quantity(text).map(|bytes| bytes.round() as i64)
}

/// CPU quantity in billionths of a core, as Docker's `NanoCpus`.
pub(crate) fn nano_cpus(text: &str) -> Option<i64> {
    parse_quantity(text).map(|cores| (cores * 1e9).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_decimal_and_binary_suffixes() {
        assert_eq!(parse_quantity("500m"), Some(0.5));
        assert_eq!(parse_quantity("2"), Some(2.0));
        assert_eq!(memory_bytes("512Mi"), Some(536_870_912));
        assert_eq!(memory_bytes("1G"), Some(1_000_000_000));
        assert_eq!(nano_cpus("250m"), Some(250_000_000));
        assert_eq!(nano_cpus("1.5"), Some(1_500_000_000));
    }

    #[test]
    fn rejects_what_is_not_a_quantity() {
        for text in ["", "Mi", "1 Gi", "1GB", ".5", "5.", "-1", "ten"] {
            assert_eq!(parse_quantity(text), None, "{text}");
        }
    }
}
