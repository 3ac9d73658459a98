//! Keeps secret values out of text the deployer hands on. An API server's validation message
//! may quote a field it rejected, and that field can be a Secret's value; every error message
//! passes through a [`Redactor`] before it reaches progress lines, errors or logs.

/// Replaces known secret values in text with a mask.
#[derive(Debug, Clone, Default)]
pub(super) struct Redactor {
    /// Longest first, so a value containing another is masked whole.
    values: Vec<String>,
}

/// What a secret value becomes in redacted text.
const MASK: &str = "<redacted>";

/// Values shorter than this are not masked: replacing every `1` or `on` would garble
/// messages, and such values are not secrets worth the name.
const MIN_SECRET_LEN: usize = 4;

impl Redactor {
    /// A redactor for `values`.
    pub fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Redactor {
        let mut values: Vec<String> = values
            .into_iter()
            .filter(|value| value.len() >= MIN_SECRET_LEN)
            .map(str::to_owned)
            .collect();
        values.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        values.dedup();
        Redactor { values }
    }

    /// `text` with every known secret value masked.
    pub fn scrub(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for value in &self.values {
            if text.contains(value.as_str()) {
                text = text.replace(value.as_str(), MASK);
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_known_values_longest_first() {
        let redactor = Redactor::new(["s3cret", "s3cret-and-more", "ab"]);
        assert_eq!(
            redactor.scrub("bad value \"s3cret-and-more\" and s3cret, ab"),
            "bad value \"<redacted>\" and <redacted>, ab"
        );
    }
}
