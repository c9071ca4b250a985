//! horolog: APScheduler 4's scheduling model as a Kubernetes operator.
//!
//! The trigger engine and the planner are in the pure core, `horolog_core`; this crate is
//! the operator around it (`api`, `controller`, `pod`, `leader`, `metrics`, `operator`) and
//! the user's command line (`crd`, `manifest`, `preview`, `local` mode). The kubectl plugin is
//! its own crate, `horolog-kubectl`, on this library's API types and [`names`].
//! ARCHITECTURE.md at the top of the repository is the map.

#![forbid(unsafe_code)]
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

pub mod api;
pub mod clock;
pub mod controller;
pub mod crd;
pub mod job;
pub mod leader;
#[cfg(feature = "local")]
pub mod local;
pub mod manifest;
pub mod metrics;
pub mod names;
pub mod operator;
pub mod pod;
pub mod preview;
pub mod serve;
pub mod telemetry;
