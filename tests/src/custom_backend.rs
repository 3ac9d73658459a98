//! The reference custom backend as a real process: started on a free port, read back from its
//! first stdout line, killed when dropped.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Path of the custom backend binary built for the integration tests.
#[macro_export]
macro_rules! custom_backend_binary {
    () => {
        std::path::PathBuf::from(env!("CARGO_BIN_EXE_custom-backend-under-test"))
    };
}

/// A running custom backend.
pub struct CustomBackend {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    child: Child,
}

impl CustomBackend {
    /// Starts `binary` with `args` (e.g. `["--break", "schema"]`) on a free port.
    pub async fn start(binary: &Path, args: &[&str]) -> CustomBackend {
        let mut child = Command::new(binary)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start the custom backend");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the custom backend prints its address")
            .expect("read stdout")
            .expect("a first line");
        let addr = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .trim()
            .to_owned();
        CustomBackend {
            url: format!("http://{addr}"),
            child,
        }
    }

    /// Stops the process now (a backend that went down).
    pub async fn stop(&mut self) {
        let _ = self.child.kill().await;
    }
}
