//! Tests of parsing and validation: every kind of error names its field and, where the
//! text allows, its line.

use super::{BlueprintError, Catalogue, parse_blueprint, parse_blueprint_in};

const VALID: &str = "\
name: demo
defaults:
  image: nginx:1.27
  port: 80
parameters:
  password: { type: string, default: x }
ports:
  - name: http
    port: 80
environment:
  A: ${password}
";

fn errors(yaml: &str) -> Vec<BlueprintError> {
    parse_blueprint(yaml).expect_err("should be rejected")
}

fn only_error(yaml: &str) -> BlueprintError {
    let mut errors = errors(yaml);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    errors.remove(0)
}

fn error_at<'a>(errors: &'a [BlueprintError], field: &str) -> &'a BlueprintError {
    errors
        .iter()
        .find(|error| error.field == field)
        .unwrap_or_else(|| panic!("no error for {field}: {errors:#?}"))
}

#[test]
fn a_valid_blueprint_parses_with_defaults_filled_in() {
    let blueprint = parse_blueprint(VALID).expect("valid");
    assert_eq!(blueprint.defaults.replicas, 1);
    assert_eq!(blueprint.ports[0].container_port(), 80);
    assert_eq!(blueprint.environment["A"].as_str(), "${password}");
}

#[test]
fn yaml_syntax_errors_carry_line_and_column() {
    let error = only_error("name: demo\ndefaults:\n  image: [nginx\n  port: 80\n");
    assert!(error.line.is_some() && error.column.is_some(), "{error:?}");
    assert!(error.line >= Some(3), "{error:?}");
}

#[test]
fn unknown_keys_are_named_with_the_allowed_ones() {
    let error = only_error(&VALID.replace("    port: 80\n", "    prot: 80\n"));
    assert_eq!(error.field, "ports[0].prot");
    assert_eq!(error.line, Some(9));
    assert_eq!(error.column, Some(5));
    assert!(
        error
            .message
            .contains("unknown key 'prot'; did you mean 'port'"),
        "{}",
        error.message
    );
    assert!(
        error
            .message
            .contains("allowed here: name, port, targetPort, protocol"),
        "{}",
        error.message
    );
}

#[test]
fn unknown_top_level_keys_suggest_the_intended_one() {
    let error = only_error(&format!("{VALID}dependancies: [redis]\n"));
    assert_eq!(error.field, "dependancies");
    assert_eq!(error.line, Some(12));
    assert!(
        error.message.contains("did you mean 'dependencies'?"),
        "{}",
        error.message
    );
}

#[test]
fn snake_case_keys_point_to_the_camel_case_spelling() {
    let yaml = format!("{VALID}volumes:\n  - name: data\n    mount_path: /data\n    size: 1Gi\n");
    let error = only_error(&yaml);
    assert_eq!(error.field, "volumes[0].mount_path");
    assert!(
        error.message.contains("did you mean 'mountPath'?"),
        "{}",
        error.message
    );
}

#[test]
fn wrong_types_name_the_field() {
    let error = only_error(&VALID.replace(
        "  port: 80\nparameters",
        "  port: 80\n  replicas: many\nparameters",
    ));
    assert_eq!(error.field, "defaults.replicas");
    assert_eq!(error.line, Some(5));
    assert!(error.message.starts_with("wrong type"), "{}", error.message);
}

#[test]
fn missing_required_keys_are_named() {
    let error = only_error("name: demo\n");
    assert_eq!(error.field, "defaults");
    assert!(
        error.message.contains("required key 'defaults' is missing"),
        "{}",
        error.message
    );
}

#[test]
fn invalid_names_are_rejected_at_their_line() {
    let error = only_error(&VALID.replace("name: demo", "name: My_App"));
    assert_eq!(
        (error.field.as_str(), error.line, error.column),
        ("name", Some(1), Some(7))
    );
    assert!(
        error.message.contains("'My_App' is not a valid name"),
        "{}",
        error.message
    );
    let long = "a".repeat(64);
    assert_eq!(
        only_error(&VALID.replace("name: demo", &format!("name: {long}"))).field,
        "name"
    );
    assert_eq!(
        only_error(&VALID.replace("name: demo", "name: -demo")).field,
        "name"
    );
}

#[test]
fn ports_out_of_range_are_rejected() {
    let error = only_error(&VALID.replace("    port: 80\n", "    port: 70000\n"));
    assert_eq!(
        (error.field.as_str(), error.line, error.column),
        ("ports[0].port", Some(9), Some(11))
    );
    assert_eq!(error.message, "port 70000 is out of range 1..=65535");
    let errors = errors(&VALID.replace("  port: 80\nparameters", "  port: 0\nparameters"));
    assert_eq!(error_at(&errors, "defaults.port").line, Some(4));
}

#[test]
fn references_to_undeclared_parameters_suggest_the_closest() {
    let error = only_error(&VALID.replace("A: ${password}", "A: ${pasword}"));
    assert_eq!(
        (error.field.as_str(), error.line),
        ("environment.A", Some(11))
    );
    assert!(
        error
            .message
            .contains("unknown parameter 'pasword'; did you mean 'password'?"),
        "{}",
        error.message
    );
}

#[test]
fn implicit_parameters_can_be_referenced_but_not_declared() {
    parse_blueprint(&VALID.replace("A: ${password}", "A: ${image}/${replicas}"))
        .expect("implicit parameters");
    let error = only_error(&VALID.replace(
        "  password: { type: string, default: x }",
        "  password: { type: string, default: x }\n  image: { type: string }",
    ));
    assert_eq!(error.field, "parameters.image");
}

#[test]
fn malformed_variables_are_reported() {
    for (text, expected) in [
        ("${secret.}", "not a valid name"),
        ("${secret.a.b}", "not a secret reference"),
        ("${deps.redis}", "not a dependency reference"),
        ("${oops", "without a closing"),
        ("${service.address}", "only ${service.host}"),
    ] {
        let error = only_error(&VALID.replace("A: ${password}", &format!("A: \"{text}\"")));
        assert_eq!(error.field, "environment.A", "{text}");
        assert!(
            error.message.contains(expected),
            "{text}: {}",
            error.message
        );
    }
}

#[test]
fn dependency_references_need_a_declared_dependency() {
    let error = only_error(&VALID.replace("A: ${password}", "A: ${deps.redis.host}"));
    assert_eq!(error.field, "environment.A");
    assert!(
        error
            .message
            .contains("'redis' is not a dependency of demo"),
        "{}",
        error.message
    );
}

#[test]
fn secrets_are_refused_on_command_lines() {
    let error = only_error(&format!("{VALID}args: [--password, \"${{secret.pw}}\"]\n"));
    assert_eq!((error.field.as_str(), error.line), ("args[1]", Some(12)));
    assert!(
        error
            .message
            .contains("secrets may only be used in environment"),
        "{}",
        error.message
    );
}

#[test]
fn parameter_defaults_must_match_their_type() {
    let error = only_error(&VALID.replace("default: x", "default: 5"));
    assert_eq!(
        (error.field.as_str(), error.line),
        ("parameters.password.default", Some(6))
    );
    assert!(
        error.message.contains("is not of type string"),
        "{}",
        error.message
    );
}

#[test]
fn healthchecks_need_exactly_one_kind() {
    let errors = errors(&format!(
        "{VALID}healthcheck: {{ http: health, tcp: 80 }}\n"
    ));
    assert!(
        error_at(&errors, "healthcheck")
            .message
            .contains("either http or tcp")
    );
    assert!(
        error_at(&errors, "healthcheck.http")
            .message
            .contains("starting with '/'")
    );
    let error = only_error(&format!(
        "{VALID}healthcheck: {{ initialDelaySeconds: 5 }}\n"
    ));
    assert!(error.message.contains("one of http"), "{}", error.message);
}

#[test]
fn volumes_need_absolute_paths_and_quantities() {
    let errors = errors(&format!(
        "{VALID}volumes:\n  - {{ name: data, mountPath: data, size: lots }}\n"
    ));
    assert!(
        error_at(&errors, "volumes[0].mountPath")
            .message
            .contains("absolute")
    );
    let size = error_at(&errors, "volumes[0].size");
    assert_eq!(size.line, Some(13));
    assert!(size.message.contains("not a quantity"), "{}", size.message);
}

#[test]
fn every_problem_is_reported_at_once() {
    let yaml = VALID
        .replace("name: demo", "name: Demo")
        .replace("    port: 80\n", "    port: 99999\n")
        .replace("A: ${password}", "A: ${nope}");
    let fields: Vec<String> = errors(&yaml).into_iter().map(|e| e.field).collect();
    assert_eq!(fields, vec!["name", "ports[0].port", "environment.A"]);
}

#[test]
fn misspelt_exports_of_a_dependency_suggest_the_right_one() {
    let yaml = "name: app\ndefaults: { image: busybox }\ndependencies: [postgresql]\nenvironment:\n  DB_PASSWORD: ${deps.postgresql.pasword}\n";
    let errors = parse_blueprint_in(yaml, &Catalogue::builtin()).expect_err("bad export");
    let error = error_at(&errors, "environment.DB_PASSWORD");
    assert_eq!(error.line, Some(5));
    assert!(
        error.message.starts_with("postgresql exports no 'pasword'; did you mean 'password'? (postgresql exports: host, port, user, password, database, url)"),
        "{}",
        error.message
    );
}

#[test]
fn unknown_dependencies_name_the_closest_blueprints() {
    let yaml = "name: app\ndefaults: { image: busybox }\ndependencies:\n  - redis\n  - postgress\n";
    let errors = parse_blueprint_in(yaml, &Catalogue::builtin()).expect_err("unknown dependency");
    let error = error_at(&errors, "dependencies[1]");
    assert_eq!((error.line, error.column), (Some(5), Some(5)));
    assert_eq!(
        error.message,
        "no blueprint named 'postgress' exists; did you mean 'postgresql'?"
    );
}

#[test]
fn a_blueprint_closing_a_cycle_is_rejected() {
    let a =
        parse_blueprint("name: a\ndefaults: { image: busybox }\ndependencies: [b]\n").expect("a");
    let catalogue = Catalogue::from_blueprints(vec![a]);
    let errors = parse_blueprint_in(
        "name: b\ndefaults: { image: busybox }\ndependencies: [a]\n",
        &catalogue,
    )
    .expect_err("cycle");
    let error = error_at(&errors, "dependencies");
    assert_eq!(error.message, "dependency cycle: b -> a -> b");
    assert_eq!(error.line, Some(3));
}

#[test]
fn errors_display_with_position() {
    let error = only_error(&VALID.replace("    port: 80\n", "    port: 70000\n"));
    assert_eq!(
        error.to_string(),
        "line 9, column 11: ports[0].port: port 70000 is out of range 1..=65535"
    );
}

#[test]
fn unknown_enum_values_list_the_allowed_ones() {
    let error = only_error(&VALID.replace("name: demo", "name: demo\nplatform: kubernets"));
    assert_eq!(
        (error.field.as_str(), error.line, error.column),
        ("platform", Some(2), Some(11))
    );
    assert_eq!(
        error.message,
        "unknown value 'kubernets'; did you mean 'kubernetes'? (allowed: kubernetes, docker, both)"
    );
    let error = only_error(&VALID.replace("type: string", "type: text"));
    assert_eq!(error.field, "parameters.password.type");
    assert!(
        error
            .message
            .contains("allowed: string, integer, number, boolean"),
        "{}",
        error.message
    );
}

#[test]
fn the_contract_example_is_accepted() {
    // The blueprint shown in CONTRACTS.md §4.
    let yaml = r#"
name: authentik
description: identity provider
category: auth
platform: both
version: "2024.8"
defaults: { image: ghcr.io/goauthentik/server:2024.8.3, replicas: 1, port: 9000 }
parameters:
  domain: { type: string, required: false }
dependencies: [postgresql, redis]
ports: [ { name: http, port: 9000, targetPort: 9000 } ]
volumes: [ { name: media, mountPath: /media, size: 5Gi } ]
environment:
  AUTHENTIK_SECRET_KEY: ${secret.secret_key}
  AUTHENTIK_POSTGRESQL__HOST: ${deps.postgresql.host}
  AUTHENTIK_POSTGRESQL__PASSWORD: ${deps.postgresql.password}
exports:
  host: ${service.host}
  port: "9000"
healthcheck: { http: /-/health/live/, port: 9000 }
"#;
    let blueprint = parse_blueprint_in(yaml, &Catalogue::builtin()).expect("contract example");
    assert_eq!(blueprint.dependencies, ["postgresql", "redis"]);
    assert_eq!(blueprint.volumes[0].mount_path, "/media");
}
