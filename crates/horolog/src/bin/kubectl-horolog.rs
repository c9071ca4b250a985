//! `kubectl horolog`: the kubectl plugin. Everything is in `horolog::plugin`.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    horolog::plugin::main()
}
