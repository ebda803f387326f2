//! Loading from disk through the public API: the path labels every error, and a file that
//! cannot be read is reported like any other problem.

use std::path::Path;

use menshen_config::{load, parse};

#[test]
fn unreadable_file_is_one_error_at_line_zero() {
    let path = Path::new("/nonexistent/menshen.toml");
    let errors = load(path).unwrap_err();
    assert_eq!(errors.0.len(), 1);
    let error = &errors.0[0];
    assert_eq!((error.line, error.column), (0, 0));
    assert_eq!(error.file, "/nonexistent/menshen.toml");
    assert!(error.message.contains("cannot read"), "{}", error.message);
}

#[test]
fn errors_name_the_file_they_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("menshen.toml");
    std::fs::write(&path, "[server]\nthreads = 1000\n").unwrap();
    let errors = load(&path).unwrap_err();
    let first = errors.to_string();
    let first = first.lines().next().unwrap();
    assert_eq!(
        first,
        format!(
            "{}:1:1: at least one [[listen]] table with an `address` is required",
            path.display()
        )
    );
    // No listener, no site, no [otp] keys (all reported at the top), and the bad value.
    assert_eq!(errors.0.len(), 4, "{errors}");
    assert_eq!(errors.0[3].line, 2);
}

#[test]
fn load_and_parse_agree() {
    let text = "[[listen]]\naddress = \"127.0.0.1:8080\"\n[[site]]\nname = \"a\"\n\
                hosts = [\"a.example\"]\nupstreams = [\"127.0.0.1:80\"]\n\
                [otp]\nkeys = \"k:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"\n";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("menshen.toml");
    std::fs::write(&path, text).unwrap();
    let loaded = load(&path).unwrap();
    let parsed = parse(text, "menshen.toml").unwrap();
    assert_eq!(loaded.sites[0].hosts, parsed.sites[0].hosts);
    assert_eq!(loaded.listeners[0].address, parsed.listeners[0].address);
}
