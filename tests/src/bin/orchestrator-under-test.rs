//! The `orchestrator` command line, built inside the test package so that cargo builds it
//! before the integration tests that start real processes.

fn main() -> std::process::ExitCode {
    orchestrator::cli::main()
}
