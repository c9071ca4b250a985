//! `kubectl horolog`: the kubectl plugin. Everything is in the `horolog_kubectl` library.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    horolog_kubectl::main()
}
