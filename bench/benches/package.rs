//! Reading and inspecting packages: `cargo bench -p aerie-bench --bench package`.

use aerie_core::inspect::inspect_component;
use aerie_core::package::{PackageLimits, read_package};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn inspect_large_component(c: &mut Criterion) {
    let size = 10 << 20;
    let component = aerie_bench::large_component(size);
    let package = aerie_bench::large_package(size);
    let mut group = c.benchmark_group("10 MiB component");
    group.sample_size(20);
    group.throughput(Throughput::Bytes(component.len() as u64));
    group.bench_function("inspect_component", |b| {
        b.iter(|| inspect_component(&component).unwrap())
    });
    group.bench_function("read_package (gunzip + untar + manifest + inspect)", |b| {
        b.iter(|| read_package(&package, &PackageLimits::default()).unwrap())
    });
    group.finish();
}

criterion_group!(benches, inspect_large_component);
criterion_main!(benches);
