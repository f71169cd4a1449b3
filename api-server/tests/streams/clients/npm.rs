//! npm packages the tests drive (socket.io-client, playwright-core), installed once under the
//! herald cache, never into the repository.

use std::path::PathBuf;

use tokio::process::Command;

/// The `node_modules` directory holding `spec` (e.g. `socket.io-client@4`), installed into
/// `<cache>/npm/<dir>` if `package` is not there yet. Call it once per process (through a
/// `OnceCell`): concurrent installs into one directory would trip over each other.
pub async fn modules(dir: &str, spec: &str, package: &str) -> PathBuf {
    let cache = std::env::var_os("HERALD_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/herald")
        });
    let dir = cache.join("npm").join(dir);
    let modules = dir.join("node_modules");
    if !modules.join(package).join("package.json").exists() {
        std::fs::create_dir_all(&dir).expect("creating the npm cache directory");
        let output = Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                spec,
            ])
            .current_dir(&dir)
            .output()
            .await
            .expect("running npm (Node.js 20 and npm are needed for these tests)");
        assert!(
            output.status.success(),
            "npm install {spec} failed in {}:\n{}",
            dir.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    modules
}
