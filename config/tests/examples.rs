//! Every example configuration in `config/examples/` must be valid: they are the
//! documentation, and documentation that does not load is worse than none.

use std::path::Path;

use menshen_config::{Options, load_with_options};

#[test]
fn every_example_configuration_is_valid() {
    // SAFETY: the only test in this binary, so no other thread reads the environment while it
    // is changed. The values are placeholders for the secrets the examples take from it.
    unsafe {
        std::env::set_var("MENSHEN_DB_PASSWORD", "example-db-password");
        std::env::set_var("MENSHEN_REDIS_PASSWORD", "example-redis-password");
        std::env::set_var(
            "MENSHEN_OTP_KEYS",
            "example:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        );
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    let names: Vec<_> = paths
        .iter()
        .filter_map(|p| p.file_name()?.to_str())
        .collect();
    for expected in ["minimal.toml", "multi-instance.toml", "school.toml"] {
        assert!(
            names.contains(&expected),
            "{expected} is missing from {names:?}"
        );
    }
    // TLS files named in the examples exist on the operator's server, not here.
    let options = Options { check_files: false };
    let problems: Vec<String> = paths
        .iter()
        .filter_map(|path| load_with_options(path, options).err())
        .map(|errors| errors.to_string())
        .collect();
    assert!(
        problems.is_empty(),
        "invalid examples:\n{}",
        problems.join("\n")
    );
}
