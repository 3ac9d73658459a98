//! "Did you mean …?" suggestions by edit distance, for misspelt names.

/// Levenshtein distance between two strings, counted in characters.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// The candidates closest to `wanted`, best first: at most three, and only those within a
/// distance that still looks like a typo (or that contain `wanted`, as `postgres` in
/// `postgresql`).
pub(crate) fn closest<'a, I>(wanted: &str, candidates: I) -> Vec<String>
where
    I: IntoIterator<Item = &'a str>,
{
    let limit = (wanted.chars().count() / 3).max(2);
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .filter_map(|candidate| {
            let distance = edit_distance(wanted, candidate);
            let related = candidate.contains(wanted) || wanted.contains(candidate);
            (distance <= limit || (related && !wanted.is_empty())).then_some((distance, candidate))
        })
        .collect();
    scored.sort();
    scored.dedup();
    scored
        .into_iter()
        .take(3)
        .map(|(_, candidate)| candidate.to_owned())
        .collect()
}

/// `"; did you mean 'x'?"` or `"; did you mean 'x' or 'y'?"`, empty without suggestions.
pub(crate) fn did_you_mean(suggestions: &[String]) -> String {
    match suggestions {
        [] => String::new(),
        [only] => format!("; did you mean '{only}'?"),
        [first @ .., last] => {
            let first: Vec<String> = first.iter().map(|s| format!("'{s}'")).collect();
            format!("; did you mean {} or '{last}'?", first.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_edits() {
        assert_eq!(edit_distance("pasword", "password"), 1);
        assert_eq!(edit_distance("redis", "redis"), 0);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn closest_prefers_small_distances_and_containment() {
        let names = ["postgresql", "redis", "mongodb", "traefik"];
        assert_eq!(closest("postgres", names), vec!["postgresql"]);
        assert_eq!(closest("reddis", names), vec!["redis"]);
        assert!(closest("zzzzzzzz", names).is_empty());
    }

    #[test]
    fn phrases_suggestions() {
        assert_eq!(did_you_mean(&[]), "");
        assert_eq!(did_you_mean(&["a".into()]), "; did you mean 'a'?");
        assert_eq!(
            did_you_mean(&["a".into(), "b".into(), "c".into()]),
            "; did you mean 'a', 'b' or 'c'?"
        );
    }
}
