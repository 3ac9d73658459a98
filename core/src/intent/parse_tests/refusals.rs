//! Every way the rule parser refuses a command, and what the refusal says.

use super::{refuse, strings};
use crate::intent::parse::parse_command;

#[test]
fn an_unknown_application_names_the_closest_blueprints() {
    let failure = refuse("install authentk with tls");
    assert_eq!(failure.suggestions, strings(&["authentik"]));
    assert_eq!(
        failure.message,
        "unknown application 'authentk'; did you mean 'authentik'?"
    );
    assert_eq!(
        failure.understood,
        strings(&["action: install", "feature: tls"])
    );
    assert!(failure.not_understood.is_empty());

    let failure = parse_command("install zzzzzzzz", &["redis", "nginx"]).unwrap_err();
    assert!(failure.suggestions.is_empty());
    assert_eq!(
        failure.message,
        "unknown application 'zzzzzzzz'; the catalogue has nginx, redis"
    );
}

#[test]
fn every_action_needs_an_application_of_the_catalogue() {
    for text in [
        "remove grafana",
        "scale grafana to 2",
        "update grafana",
        "restart grafana",
    ] {
        let failure = parse_command(text, &["redis", "grafana-agent"]).unwrap_err();
        assert!(
            failure.message.contains("unknown application 'grafana'"),
            "{text}: {}",
            failure.message
        );
        assert_eq!(failure.suggestions, strings(&["grafana-agent"]), "{text}");
    }
}

#[test]
fn leftover_words_are_reported_as_written_with_what_was_understood() {
    let failure = refuse("install redis quickly please");
    assert_eq!(
        failure.message,
        "could not understand \"quickly please\" in \"install redis quickly please\"; \
         understood: action install, application redis"
    );
    assert_eq!(
        failure.understood,
        strings(&["action: install", "application: redis"])
    );
    assert_eq!(failure.not_understood, strings(&["quickly please"]));
    assert!(failure.suggestions.is_empty());

    let failure = refuse("install Redis With Magic in namespace cache and Sparkles");
    assert_eq!(
        failure.not_understood,
        strings(&["With Magic", "and Sparkles"])
    );
    assert_eq!(
        failure.understood,
        strings(&["action: install", "application: redis", "namespace: cache"])
    );
    assert!(
        failure
            .message
            .starts_with("could not understand \"With Magic\" and \"and Sparkles\""),
        "{}",
        failure.message
    );
}

#[test]
fn an_unknown_action_suggests_the_closest() {
    let failure = refuse("instal redis");
    assert_eq!(failure.not_understood, strings(&["instal"]));
    assert!(failure.understood.is_empty());
    assert!(
        failure
            .message
            .contains("a command starts with install, deploy"),
        "{}",
        failure.message
    );
    assert!(
        failure.message.contains("; did you mean 'install'"),
        "{}",
        failure.message
    );
}

#[test]
fn a_missing_application_is_refused() {
    let failure = refuse("install");
    assert_eq!(
        failure.message,
        "missing the application, e.g. \"install redis\""
    );
    assert_eq!(failure.understood, strings(&["action: install"]));

    let failure = refuse("deploy with tls in namespace web");
    assert!(
        failure.message.starts_with("missing the application"),
        "{}",
        failure.message
    );
    assert_eq!(
        failure.understood,
        strings(&["action: install", "feature: tls", "namespace: web"])
    );
}

#[test]
fn namespaces_domains_and_versions_are_checked() {
    let failure = refuse("install redis in namespace Bad_NS");
    assert!(
        failure
            .message
            .starts_with("namespace 'bad_ns' must be a DNS label"),
        "{}",
        failure.message
    );
    let long = format!("install redis in namespace {}", "a".repeat(64));
    assert!(refuse(&long).message.contains("must be a DNS label"));
    for text in [
        "install authentik on domain -bad-.example.com",
        "install authentik on domain 10.0.0.1",
        "install authentik on domain auth..example.com",
    ] {
        assert!(
            refuse(text).message.contains("is not a host name"),
            "{text}"
        );
    }
    let failure = refuse("update redis to version ../../etc");
    assert!(
        failure.message.starts_with("version '../../etc' must be"),
        "{}",
        failure.message
    );
    assert!(
        refuse("install redis in namespace")
            .message
            .contains("a namespace needs a name")
    );
    assert!(
        refuse("install redis on domain")
            .message
            .contains("a domain needs a host name")
    );
}

#[test]
fn replicas_must_be_in_range() {
    let failure = refuse("deploy redis with 0 replicas");
    assert_eq!(failure.message, "replicas must be between 1 and 100, got 0");
    let failure = refuse("scale grafana to 101 instances");
    assert_eq!(
        failure.message,
        "replicas must be between 0 and 100, got 101"
    );
    let failure = refuse("deploy redis with 99999999999 replicas");
    assert!(
        failure
            .message
            .contains("replicas must be at most 100, got 99999999999"),
        "{}",
        failure.message
    );
}

#[test]
fn scale_needs_a_number() {
    let failure = refuse("scale grafana");
    assert_eq!(
        failure.message,
        "scale needs the number of replicas, e.g. \"scale grafana to 3\""
    );
    let failure = refuse("scale grafana to many");
    assert_eq!(failure.not_understood, strings(&["to many"]));
    assert!(
        failure
            .message
            .starts_with("scale needs the number of replicas"),
        "{}",
        failure.message
    );
}

#[test]
fn conflicting_clauses_are_refused() {
    let failure = refuse("install redis in namespace a in namespace b");
    assert_eq!(
        failure.message,
        "two namespaces given: 'a' and 'b'; give one"
    );
    assert_eq!(
        failure.understood,
        strings(&["action: install", "application: redis", "namespace: a"])
    );
    assert!(
        refuse("install redis on docker on kubernetes")
            .message
            .contains("two platforms given")
    );
    assert!(
        refuse("scale grafana to 2 with 3 replicas")
            .message
            .contains("two replica counts given: '2' and '3'")
    );
    assert!(
        refuse("install nginx on a.example.com on domain b.example.com")
            .message
            .contains("two domains given")
    );
}

#[test]
fn clauses_must_fit_the_action() {
    assert_eq!(
        refuse("remove redis with tls").message,
        "remove cannot take features (with tls, ingress, persistence)"
    );
    assert_eq!(
        refuse("restart redis with 2 replicas").message,
        "restart cannot take replicas"
    );
    assert_eq!(
        refuse("install redis version 7").message,
        "install cannot take a version"
    );
    assert_eq!(
        refuse("scale nginx to 2 on domain www.example.com").message,
        "scale cannot take a domain"
    );
}

#[test]
fn empty_and_too_long_commands_are_refused() {
    for text in ["", "   \n\t"] {
        let failure = refuse(text);
        assert!(
            failure.message.starts_with("the command is empty"),
            "{}",
            failure.message
        );
        assert!(failure.understood.is_empty() && failure.not_understood.is_empty());
    }
    let long = format!("install redis {}", "x".repeat(500));
    let failure = refuse(&long);
    assert_eq!(
        failure.message,
        "the command is 514 characters long; at most 500 are accepted"
    );
    // The limit counts characters, not bytes.
    let accented = format!("install redis in namespace cache {}", "é".repeat(400));
    assert!(!refuse(&accented).message.contains("characters long"));
}
