//! Why a run did not complete, which decides loadgen's exit code.

/// Why a run did not complete.
#[derive(Debug)]
pub enum Failure {
    /// Bad flags or a refused target: exit 2.
    Usage(String),
    Runtime(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Self::Runtime(error)
    }
}
