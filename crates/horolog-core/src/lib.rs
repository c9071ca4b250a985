//! horolog's pure core: when a Schedule fires and what its due fire times turn into.
//!
//! - [`spec`]: the value types users write (trigger, durations, policies);
//! - [`trigger`]: compiles a trigger spec and answers "when does it fire next?";
//! - [`plan`]: which fire times are due at an instant, coalesced and checked against the
//!   misfire grace time, with jitter;
//! - [`admission`]: which runs of a pool of slots start, wait, are skipped or replaced;
//! - [`exclusion`]: Calendars and inline exclusions: which fire times do not fire, and where
//!   Following / Preceding move them;
//! - [`progress`]: where a Schedule stands on its trigger (Calendars applied, the hash that
//!   marks an edit, the cursor, maxRuns remaining, finished): the operator fires by it and the
//!   kubectl plugin reports by it;
//! - [`clock`]: time as a parameter (the trait; the wall clock lives with the operator).
//!
//! Nothing here talks to Kubernetes, runs async code or reads the wall clock: every function
//! takes the current instant as an argument, so every rule is testable without a cluster and
//! without sleeping. Cargo enforces it: this crate depends on neither kube nor tokio, and on
//! chrono without its `clock` feature.

#![forbid(unsafe_code)]
#![cfg_attr(not(test), warn(unused_crate_dependencies))]
#![warn(missing_docs)]

pub mod admission;
pub mod clock;
pub mod exclusion;
pub mod plan;
pub mod progress;
pub mod spec;
pub mod trigger;
