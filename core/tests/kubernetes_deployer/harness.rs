//! What every deployer scenario needs: a rendered plan, a deployer on a fresh fake API
//! server, and the outcome of an apply or remove together with the progress lines it sent.

use std::sync::Once;
use std::time::Duration;

use orchestrator_core::blueprint::{Catalogue, Platform, RenderRequest, RenderedPlan, render};
use orchestrator_core::deploy::kubernetes::KubernetesDeployer;
use orchestrator_core::deploy::{ApplyReport, ApplyRequest, DeployError, Deployer, RecordedObject};
use tokio::sync::mpsc;

use super::fake_api::FakeApi;

/// The query of every server-side apply, as [`super::fake_api::Seen::line`] shows it.
pub const APPLY: &str = "?fieldManager=orchestrator&force=true";

/// Installs the process-wide TLS crypto provider (kube and reqwest bring two).
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}

/// Renders builtin `roots` for Kubernetes in `namespace`, after `adjust` edits the request.
pub fn plan(
    roots: &[&str],
    namespace: &str,
    adjust: impl FnOnce(&mut RenderRequest),
) -> RenderedPlan {
    let mut request = RenderRequest::new(roots, Platform::Kubernetes);
    request.namespace = namespace.to_owned();
    request.project = "demo".to_owned();
    adjust(&mut request);
    render(&Catalogue::builtin(), &request).expect("builtins render")
}

/// A deployer on a fresh fake API server, polling fast.
pub fn deployer() -> (KubernetesDeployer, FakeApi) {
    install_crypto_provider();
    let (client, fake) = FakeApi::start();
    let deployer =
        KubernetesDeployer::with_client(client).with_poll_interval(Duration::from_millis(10));
    (deployer, fake)
}

/// What one apply or remove returned, with every progress line it sent.
pub struct Outcome<T> {
    pub result: Result<T, DeployError>,
    pub progress: Vec<String>,
}

impl<T: std::fmt::Debug> Outcome<T> {
    /// The success, or a panic.
    pub fn ok(&self) -> &T {
        self.result.as_ref().expect("success")
    }

    /// The failure, or a panic.
    pub fn err(&self) -> &DeployError {
        self.result.as_ref().expect_err("a failure")
    }

    /// Fails if any secret value of `plan` shows in a progress line or the error.
    pub fn assert_no_secret_of(&self, plan: &RenderedPlan) {
        let error = self.result.as_ref().err();
        let texts = self.progress.iter().chain(error.map(|e| &e.message));
        let texts: Vec<&String> = texts
            .chain(error.into_iter().flat_map(|e| &e.details))
            .collect();
        for value in plan.secrets.values() {
            for text in &texts {
                assert!(!text.contains(value.as_str()), "secret value in {text:?}");
            }
        }
    }

    /// True when a progress line contains `line`.
    pub fn said(&self, line: &str) -> bool {
        self.progress.iter().any(|l| l.contains(line))
    }
}

/// Applies `component` of `plan`, collecting its progress lines.
pub async fn apply(
    deployer: &KubernetesDeployer,
    plan: &RenderedPlan,
    component: &str,
    namespace: &str,
    ready_timeout: Duration,
) -> Outcome<ApplyReport> {
    let (progress, mut lines) = mpsc::unbounded_channel();
    let request = ApplyRequest {
        plan,
        component,
        secrets: &plan.secrets,
        namespace,
        ready_timeout,
    };
    let result = deployer.apply(request, &progress).await;
    drop(progress);
    let mut progress = Vec::new();
    while let Some(line) = lines.recv().await {
        progress.push(line);
    }
    Outcome { result, progress }
}

/// Removes `objects`, collecting the progress lines.
pub async fn remove(
    deployer: &KubernetesDeployer,
    objects: &[RecordedObject],
    remove_volumes: bool,
) -> Outcome<()> {
    let (progress, mut lines) = mpsc::unbounded_channel();
    let result = deployer.remove(objects, remove_volumes, &progress).await;
    drop(progress);
    let mut progress = Vec::new();
    while let Some(line) = lines.recv().await {
        progress.push(line);
    }
    Outcome { result, progress }
}

/// A readiness timeout no scenario reaches unless it means to.
pub const MINUTE: Duration = Duration::from_secs(60);
