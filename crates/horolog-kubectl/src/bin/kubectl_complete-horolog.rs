//! `kubectl_complete-horolog`: kubectl runs it for `kubectl horolog <TAB>` (kubectl 1.26+),
//! with the words typed after `kubectl horolog`; it prints the candidates in Cobra's format.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    horolog_kubectl::complete::complete_main(std::env::args().skip(1).collect())
}
