//! Rendering the whole builtin catalogue, every blueprint with its dependencies, for
//! Kubernetes and for Docker. Plans and dry runs render synchronously inside a request, so
//! this should stay far below 50 ms.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use orchestrator_core::blueprint::{Catalogue, Platform, RenderRequest, render};

fn render_all(catalogue: &Catalogue) -> usize {
    let mut bytes = 0;
    for name in catalogue.names() {
        for platform in [Platform::Kubernetes, Platform::Docker] {
            let plan =
                render(catalogue, &RenderRequest::new(&[name], platform)).expect("builtins render");
            bytes += plan.manifests().len() + plan.compose.map_or(0, |c| c.len());
        }
    }
    bytes
}

fn bench(c: &mut Criterion) {
    let catalogue = Catalogue::builtin();
    c.bench_function("render builtin catalogue (k8s + docker)", |b| {
        b.iter(|| render_all(black_box(&catalogue)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
