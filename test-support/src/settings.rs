use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

/// Where the components of the test environment listen.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: String,
    pub redis_url: String,
    pub kafka_brokers: String,
    pub kubeconfig: PathBuf,
    /// `scripts/testenv`, for tests that stop and start a component.
    pub testenv: PathBuf,
}

/// The settings, read once per test binary.
pub fn settings() -> &'static Settings {
    static SETTINGS: OnceLock<Settings> = OnceLock::new();
    SETTINGS.get_or_init(load)
}

fn load() -> Settings {
    let run_dir = std::env::var("HERALD_RUN_DIR").unwrap_or_else(|_| "/tmp/herald-testenv".into());
    let file = PathBuf::from(run_dir).join("env");
    let from_file = std::fs::read_to_string(&file)
        .map(|text| parse_exports(&text))
        .unwrap_or_default();
    let get = |key: &str| -> String {
        std::env::var(key)
            .ok()
            .or_else(|| from_file.get(key).cloned())
            .unwrap_or_else(|| {
                panic!(
                    "{key} is not set and {} does not exist: start the test environment with \
                     `scripts/testenv up`",
                    file.display()
                )
            })
    };
    Settings {
        database_url: get("DATABASE_URL"),
        redis_url: get("REDIS_URL"),
        kafka_brokers: get("KAFKA_BROKERS"),
        kubeconfig: get("KUBECONFIG").into(),
        testenv: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/testenv")),
    }
}

/// Reads the `export KEY=VALUE` lines that `scripts/testenv env` prints.
fn parse_exports(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("export "))
        .filter_map(|pair| pair.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::parse_exports;

    #[test]
    fn reads_export_lines_and_ignores_the_rest() {
        let vars = parse_exports(
            "export DATABASE_URL=postgres://u@127.0.0.1:1/db\n# comment\nexport KUBECONFIG=/k\n",
        );
        assert_eq!(vars["DATABASE_URL"], "postgres://u@127.0.0.1:1/db");
        assert_eq!(vars["KUBECONFIG"], "/k");
        assert_eq!(vars.len(), 2);
    }
}
