//! The guard for URLs the product calls out to (remote workers today, custom backends later).
//! Every outbound URL a user supplies passes [`validate_outbound_url`] before it is stored or
//! called, so the rules live in one place and can grow (address ranges, DNS pinning).

use reqwest::Url;

use crate::error::{CoreError, CoreResult};

/// Longest outbound URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// Parses `text` as an outbound base URL: `http` or `https`, a host, no user name or password,
/// no query or fragment. `field` names the input in the error.
pub fn validate_outbound_url(field: &str, text: &str) -> CoreResult<Url> {
    let bad = |why: &str| CoreError::bad_input(field, why.to_string());
    let text = text.trim();
    if text.is_empty() {
        return Err(bad("must be an http:// or https:// URL"));
    }
    if text.len() > MAX_URL_LEN {
        return Err(bad(&format!("must be at most {MAX_URL_LEN} characters")));
    }
    let url = Url::parse(text).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(&format!(
            "scheme {:?} is not allowed; use http or https",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("must name a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "must not contain credentials; the orchestrator sends the worker token itself",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not have a query or fragment"));
    }
    Ok(url)
}

/// `base` joined with an absolute API path, keeping any path prefix of `base`
/// (`http://h/prefix` + `/api/process` → `http://h/prefix/api/process`).
pub fn endpoint(base: &str, path: &str) -> String {
    format!("{}{}", base.trim_end_matches('/'), path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_http_and_https() {
        assert!(validate_outbound_url("u", "http://127.0.0.1:8080").is_ok());
        assert!(validate_outbound_url("u", "https://worker.example.com/base/").is_ok());
    }

    #[test]
    fn refuses_other_schemes_credentials_and_junk() {
        for (url, needle) in [
            ("ftp://h", "scheme"),
            ("file:///etc/passwd", "scheme"),
            ("http://user:pw@h", "credentials"),
            ("http://user@h", "credentials"),
            ("not a url", "not a URL"),
            ("", "http"),
            ("http://h/?a=1", "query"),
        ] {
            let err = validate_outbound_url("input.url", url).unwrap_err();
            let text = err.to_string();
            assert!(text.starts_with("input.url"), "{text}");
            assert!(text.contains(needle), "{url}: {text}");
        }
    }

    #[test]
    fn endpoints_keep_the_base_path() {
        assert_eq!(endpoint("http://h/p/", "/api/x"), "http://h/p/api/x");
        assert_eq!(endpoint("http://h", "/health"), "http://h/health");
    }
}
