//! The `orchestrator` binary.

fn main() -> std::process::ExitCode {
    orchestrator::cli::main()
}
