//! Renders every builtin blueprint with default parameters for Kubernetes and for Docker,
//! writing `<name>.k8s.yaml` and `<name>.compose.yml` into the given directory, so the
//! output can be checked with `kubernetes-validate` and `docker-compose config`. It also
//! writes `authentik-tls.k8s.yaml`, the plan of "install authentik with TLS and ingress in
//! namespace auth on domain auth.example.com", which adds a Namespace and an Ingress.
//!
//! ```text
//! cargo run -p orchestrator-core --example render_catalogue -- OUTDIR
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use orchestrator_core::blueprint::{Catalogue, Platform, RenderRequest, render};

/// A fixed intent id, so repeated runs differ only in generated secrets.
const INTENT: &str = "00000000-0000-4000-8000-000000000001";

fn main() -> ExitCode {
    let Some(out_dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: render_catalogue OUTDIR");
        return ExitCode::from(2);
    };
    match run(&out_dir) {
        Ok(count) => {
            println!("rendered {count} blueprints into {}", out_dir.display());
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(out_dir: &std::path::Path) -> Result<usize, String> {
    std::fs::create_dir_all(out_dir)
        .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    let catalogue = Catalogue::builtin();
    for name in catalogue.names() {
        for platform in [Platform::Kubernetes, Platform::Docker] {
            let mut request = RenderRequest::new(&[name], platform);
            request.project = "example".to_owned();
            request.intent = INTENT.to_owned();
            let plan =
                render(&catalogue, &request).map_err(|e| format!("{name} on {platform}: {e}"))?;
            let (file, text) = match platform {
                Platform::Kubernetes => (format!("{name}.k8s.yaml"), plan.manifests()),
                Platform::Docker => (
                    format!("{name}.compose.yml"),
                    plan.compose.unwrap_or_default(),
                ),
            };
            let path = out_dir.join(file);
            std::fs::write(&path, text)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
    }
    let mut request = RenderRequest::new(&["authentik"], Platform::Kubernetes);
    request.project = "example".to_owned();
    request.intent = INTENT.to_owned();
    request.namespace = "auth".to_owned();
    request.domain = Some("auth.example.com".to_owned());
    request.features.tls = true;
    request.features.ingress = true;
    let plan = render(&catalogue, &request).map_err(|e| format!("authentik with TLS: {e}"))?;
    let path = out_dir.join("authentik-tls.k8s.yaml");
    std::fs::write(&path, plan.manifests())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(catalogue.len())
}
