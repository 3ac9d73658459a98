//! The `orchestrator` binary.

/// mimalloc instead of the system allocator: a subscriber's update allocates and frees many
/// small objects, and thousands of them are sent at once (see `bench/README.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    orchestrator::cli::main()
}
