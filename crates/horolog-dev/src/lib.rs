//! horolog's developer tools, kept out of the operator and its image: a stand-in cluster
//! ([`sandbox`]) and the load tool ([`load`]). The binary is `horolog-dev`.

#![forbid(unsafe_code)]
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

pub mod load;
pub mod sandbox;
