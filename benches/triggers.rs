//! Placeholder until the trigger engine lands; replaced by the real benchmark.
use criterion::{Criterion, criterion_group, criterion_main};
fn none(_: &mut Criterion) {}
criterion_group!(benches, none);
criterion_main!(benches);
