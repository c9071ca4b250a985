//! horolog: APScheduler 4's scheduling model as a Kubernetes operator.
//!
//! The trigger engine and the planner are in the pure core, `horolog_core`; this crate
//! (package `horolog-operator`, crate name `horolog`) is the operator around it (`api`,
//! `controller`, `pod`, `leader`, `metrics`, `operator`) and what the user's command line
//! calls (`crd`, `manifest`, `preview`). The `horolog` binary is package `horolog`; local mode
//! (`horolog run --local`) is the crate `horolog-local` and the kubectl plugin the crate
//! `horolog-kubectl`, both on this library's API types and [`names`].
//! ARCHITECTURE.md at the top of the repository is the map.

#![forbid(unsafe_code)]
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

pub mod api;
pub mod clock;
pub mod controller;
pub mod crd;
pub mod job;
pub mod leader;
pub mod manifest;
pub mod metrics;
pub mod names;
pub mod operator;
pub mod pod;
pub mod preview;
pub mod serve;
pub mod telemetry;
