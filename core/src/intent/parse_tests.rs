//! The rule parser against every command of seed 002 and the contract, the accepted variants,
//! and each way a command can be refused.

use super::model::{IntentAction, IntentFeatures, ParseFailure, ParsedIntent};
use super::parse::parse_command;
use crate::blueprint::Platform;

use IntentAction::{Install, Remove, Restart, Scale, Update};

mod refusals;

/// The builtin blueprints plus a project's own `grafana`, as seed 002's users had it.
const CATALOGUE: &[&str] = &[
    "aaf-backend",
    "authentik",
    "database",
    "grafana",
    "mongodb",
    "nginx",
    "postgresql",
    "redis",
    "simple-service",
    "traefik",
    "webapp",
];

fn parse(text: &str) -> ParsedIntent {
    parse_command(text, CATALOGUE).unwrap_or_else(|f| panic!("{text:?} failed: {}", f.message))
}

fn refuse(text: &str) -> ParseFailure {
    match parse_command(text, CATALOGUE) {
        Ok(intent) => panic!("{text:?} parsed as {intent:?}"),
        Err(failure) => failure,
    }
}

fn intent(action: IntentAction, application: &str) -> ParsedIntent {
    ParsedIntent {
        action,
        application: application.to_owned(),
        platform: None,
        namespace: None,
        domain: None,
        replicas: None,
        version: None,
        features: IntentFeatures::default(),
    }
}

const TLS: IntentFeatures = IntentFeatures {
    tls: true,
    ingress: false,
    persistence: false,
};

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn every_command_of_seed_002_parses() {
    assert_eq!(parse("install authentik"), intent(Install, "authentik"));
    assert_eq!(
        parse("install authentik with TLS"),
        ParsedIntent {
            features: TLS,
            ..intent(Install, "authentik")
        }
    );
    assert_eq!(
        parse("deploy postgresql with 3 replicas"),
        ParsedIntent {
            replicas: Some(3),
            ..intent(Install, "postgresql")
        }
    );
    assert_eq!(
        parse(
            "install authentik with TLS and ingress in namespace auth on domain auth.example.com"
        ),
        ParsedIntent {
            namespace: Some("auth".into()),
            domain: Some("auth.example.com".into()),
            features: IntentFeatures {
                tls: true,
                ingress: true,
                persistence: false,
            },
            ..intent(Install, "authentik")
        }
    );
    assert_eq!(
        parse("scale grafana to 5 instances"),
        ParsedIntent {
            replicas: Some(5),
            ..intent(Scale, "grafana")
        }
    );
    assert_eq!(parse("update postgres"), intent(Update, "postgresql"));
    assert_eq!(parse("remove redis"), intent(Remove, "redis"));
    assert_eq!(
        parse("install authentik with TLS in namespace auth"),
        ParsedIntent {
            namespace: Some("auth".into()),
            features: TLS,
            ..intent(Install, "authentik")
        }
    );
    assert_eq!(parse("install postgresql"), intent(Install, "postgresql"));
}

#[test]
fn every_clause_of_the_contract_grammar_parses_in_any_order() {
    let expected = ParsedIntent {
        platform: Some(Platform::Kubernetes),
        namespace: Some("web".into()),
        domain: Some("www.example.com".into()),
        replicas: Some(2),
        features: IntentFeatures {
            tls: true,
            ingress: true,
            persistence: true,
        },
        ..intent(Install, "nginx")
    };
    for text in [
        "install nginx with tls and ingress and persistence in namespace web on domain www.example.com with 2 replicas on kubernetes",
        "install nginx on kubernetes with 2 replicas on domain www.example.com in namespace web with tls and ingress and persistence",
        "deploy nginx in namespace web, with tls, ingress and persistence, on domain www.example.com and with 2 replicas on k8s",
        "add nginx with https and an ingress and persistent storage in the web namespace at www.example.com with 2 instances using kubernetes",
    ] {
        assert_eq!(parse(text), expected, "{text}");
    }
}

#[test]
fn words_are_case_insensitive_and_a_final_period_is_ignored() {
    assert_eq!(
        parse("INSTALL Authentik WITH Tls IN NAMESPACE Auth ON DOMAIN Auth.Example.COM."),
        ParsedIntent {
            namespace: Some("auth".into()),
            domain: Some("auth.example.com".into()),
            features: TLS,
            ..intent(Install, "authentik")
        }
    );
    assert_eq!(parse("Remove Redis!"), intent(Remove, "redis"));
}

#[test]
fn action_synonyms() {
    for (text, action) in [
        ("install redis", Install),
        ("deploy redis", Install),
        ("add redis", Install),
        ("remove redis", Remove),
        ("uninstall redis", Remove),
        ("delete redis", Remove),
        ("update redis", Update),
        ("upgrade redis", Update),
        ("restart redis", Restart),
    ] {
        assert_eq!(parse(text), intent(action, "redis"), "{text}");
    }
}

#[test]
fn scale_update_remove_and_restart_take_their_clauses() {
    assert_eq!(
        parse("scale grafana to 0"),
        ParsedIntent {
            replicas: Some(0),
            ..intent(Scale, "grafana")
        }
    );
    assert_eq!(
        parse("scale webapp to 3 replicas in namespace apps on docker"),
        ParsedIntent {
            replicas: Some(3),
            namespace: Some("apps".into()),
            platform: Some(Platform::Docker),
            ..intent(Scale, "webapp")
        }
    );
    assert_eq!(
        parse("upgrade postgres to version 16.2"),
        ParsedIntent {
            version: Some("16.2".into()),
            ..intent(Update, "postgresql")
        }
    );
    assert_eq!(
        parse("update mongo to v7.0.4-RC1 in namespace data"),
        ParsedIntent {
            version: Some("v7.0.4-RC1".into()),
            namespace: Some("data".into()),
            ..intent(Update, "mongodb")
        }
    );
    assert_eq!(
        parse("remove redis in namespace cache"),
        ParsedIntent {
            namespace: Some("cache".into()),
            ..intent(Remove, "redis")
        }
    );
    assert_eq!(
        parse("restart traefik in docker"),
        ParsedIntent {
            platform: Some(Platform::Docker),
            ..intent(Restart, "traefik")
        }
    );
}

#[test]
fn repeating_the_same_value_is_not_a_conflict() {
    assert_eq!(
        parse("install redis in namespace cache with tls and in namespace cache with tls"),
        ParsedIntent {
            namespace: Some("cache".into()),
            features: TLS,
            ..intent(Install, "redis")
        }
    );
}

#[test]
fn aliases_apply_only_when_the_catalogue_has_the_target_and_not_the_alias() {
    assert_eq!(
        parse_command("install postgres", &["postgresql"]).unwrap(),
        intent(Install, "postgresql")
    );
    assert_eq!(
        parse_command("install postgres", &["postgres", "postgresql"]).unwrap(),
        intent(Install, "postgres")
    );
    let failure = parse_command("install mongo", &["redis"]).unwrap_err();
    assert!(
        failure.message.contains("unknown application 'mongo'"),
        "{}",
        failure.message
    );
}
