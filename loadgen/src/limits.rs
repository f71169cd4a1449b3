//! This process's resource limits.

use crate::failure::Failure;

/// Raises this process's open-files limit to at least `needed` (up to the hard limit), since
/// every client and connection is a file descriptor.
pub fn raise_open_files(needed: u64) -> Result<(), Failure> {
    let limit = rlimit::increase_nofile_limit(needed)
        .map_err(|error| anyhow::anyhow!("raising the open-files limit: {error}"))?;
    if limit < needed {
        return Err(Failure::Usage(format!(
            "this run needs {needed} open files but the hard limit is {limit}: lower the \
             client count or raise the hard limit (ulimit -Hn)"
        )));
    }
    Ok(())
}
