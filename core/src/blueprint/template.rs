//! The `${variable}` syntax inside blueprint values.
//!
//! A value is split into literal text and references. Parsing is shared by validation (which
//! checks that every reference can be satisfied) and rendering (which substitutes them).

/// What a `${...}` reference points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VarRef {
    /// `${name}`: a declared or implicit parameter.
    Param(String),
    /// `${secret.name}`: a secret generated once per deployment.
    Secret(String),
    /// `${deps.blueprint.export}`: an export of a dependency.
    Dep { blueprint: String, export: String },
    /// `${service.host}`: where dependents reach this component.
    ServiceHost,
    /// `${service.port}`: the main port.
    ServicePort,
    /// `${namespace}`: the target namespace.
    Namespace,
}

impl std::fmt::Display for VarRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VarRef::Param(name) => write!(f, "${{{name}}}"),
            VarRef::Secret(name) => write!(f, "${{secret.{name}}}"),
            VarRef::Dep { blueprint, export } => write!(f, "${{deps.{blueprint}.{export}}}"),
            VarRef::ServiceHost => f.write_str("${service.host}"),
            VarRef::ServicePort => f.write_str("${service.port}"),
            VarRef::Namespace => f.write_str("${namespace}"),
        }
    }
}

/// A piece of a parsed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part<'a> {
    /// Text copied as is.
    Literal(&'a str),
    /// A reference to substitute.
    Var(VarRef),
}

/// Splits `text` into literal parts and references, or says what is wrong with the syntax.
pub(crate) fn parse_template(text: &str) -> Result<Vec<Part<'_>>, String> {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        if start > 0 {
            parts.push(Part::Literal(&rest[..start]));
        }
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!(
                "'${{' without a closing '}}' in \"{text}\"; write ${{name}}, ${{secret.name}} or ${{deps.blueprint.export}}"
            ));
        };
        parts.push(Part::Var(parse_reference(&after[..end])?));
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        parts.push(Part::Literal(rest));
    }
    Ok(parts)
}

/// The references in `text`, ignoring literal parts.
pub(crate) fn references(text: &str) -> Result<Vec<VarRef>, String> {
    Ok(parse_template(text)?
        .into_iter()
        .filter_map(|part| match part {
            Part::Var(var) => Some(var),
            Part::Literal(_) => None,
        })
        .collect())
}

fn parse_reference(inner: &str) -> Result<VarRef, String> {
    let segments: Vec<&str> = inner.split('.').collect();
    let reference = match segments.as_slice() {
        [""] => return Err("empty reference '${}'".to_owned()),
        ["namespace"] => VarRef::Namespace,
        ["service", "host"] => VarRef::ServiceHost,
        ["service", "port"] => VarRef::ServicePort,
        ["service", other] => {
            return Err(format!(
                "unknown variable '${{service.{other}}}'; only ${{service.host}} and ${{service.port}} exist"
            ));
        }
        ["secret", name] => {
            check_identifier(name, inner)?;
            VarRef::Secret((*name).to_owned())
        }
        ["secret", ..] => {
            return Err(format!(
                "'${{{inner}}}' is not a secret reference; write ${{secret.name}} with a name of lowercase letters, digits and '_'"
            ));
        }
        ["deps", blueprint, export] if !blueprint.is_empty() => {
            check_identifier(export, inner)?;
            VarRef::Dep {
                blueprint: (*blueprint).to_owned(),
                export: (*export).to_owned(),
            }
        }
        ["deps", ..] => {
            return Err(format!(
                "'${{{inner}}}' is not a dependency reference; write ${{deps.<blueprint>.<export>}}"
            ));
        }
        [name] => {
            check_identifier(name, inner)?;
            VarRef::Param((*name).to_owned())
        }
        _ => {
            return Err(format!(
                "unknown variable '${{{inner}}}'; use ${{parameter}}, ${{secret.name}}, ${{deps.blueprint.export}}, ${{service.host}}, ${{service.port}} or ${{namespace}}"
            ));
        }
    };
    Ok(reference)
}

/// Whether `name` is a valid parameter, secret or export name.
pub(crate) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn check_identifier(name: &str, inner: &str) -> Result<(), String> {
    if is_identifier(name) {
        Ok(())
    } else {
        Err(format!(
            "'{name}' in '${{{inner}}}' is not a valid name: use lowercase letters, digits and '_', starting with a letter"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_literals_and_references() {
        let parts = parse_template("postgres://${user}:${secret.password}@${deps.pg.host}/x")
            .expect("valid template");
        assert_eq!(
            parts,
            vec![
                Part::Literal("postgres://"),
                Part::Var(VarRef::Param("user".into())),
                Part::Literal(":"),
                Part::Var(VarRef::Secret("password".into())),
                Part::Literal("@"),
                Part::Var(VarRef::Dep {
                    blueprint: "pg".into(),
                    export: "host".into()
                }),
                Part::Literal("/x"),
            ]
        );
    }

    #[test]
    fn a_lone_dollar_is_literal() {
        assert_eq!(
            parse_template("cost $5").expect("valid"),
            vec![Part::Literal("cost $5")]
        );
    }

    #[test]
    fn rejects_bad_syntax_with_a_reason() {
        for (text, expected) in [
            ("${open", "without a closing"),
            ("${}", "empty reference"),
            ("${secret.}", "not a valid name"),
            ("${secret.a.b}", "not a secret reference"),
            ("${deps.redis}", "not a dependency reference"),
            ("${service.ip}", "only ${service.host}"),
            ("${foo.bar}", "unknown variable"),
            ("${Bad}", "not a valid name"),
        ] {
            let err = parse_template(text).expect_err(text);
            assert!(err.contains(expected), "{text}: {err}");
        }
    }
}
