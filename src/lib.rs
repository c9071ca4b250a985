//! horolog: APScheduler 4's scheduling model as a Kubernetes operator.
#![forbid(unsafe_code)]

pub mod api;
pub mod apiserver;
pub mod clock;
pub mod controller;
pub mod crd;
pub mod leader;
pub mod loadtest;
pub mod local;
pub mod manifest;
pub mod metrics;
pub mod operator;
pub mod plan;
pub mod pod;
pub mod preview;
pub mod sandbox;
pub mod serve;
pub mod telemetry;
pub mod trigger;
