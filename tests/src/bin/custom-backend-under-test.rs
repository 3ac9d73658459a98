//! The reference custom backend (`examples/custom-backend`) as a binary of this package, so
//! integration tests can run it as a real process (`custom_backend_binary!()`).

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let options = custom_backend::Options::parse();
    match custom_backend::run(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
