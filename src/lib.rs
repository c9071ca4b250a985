//! horolog: APScheduler 4's scheduling model as a Kubernetes operator.
#![forbid(unsafe_code)]

pub mod api;
pub mod clock;
pub mod crd;
pub mod manifest;
