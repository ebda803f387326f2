//! Tests of the whole conversion, from text to `Config` or to the list of every problem.
//!
//! The environment is a fixed fake (see [`env`]) so these tests never touch the process
//! environment, which all test threads share.

use std::env::VarError;
use std::time::Duration;

use menshen_policies::access::Access;
use menshen_policies::password::PasswordPolicy;
use menshen_policies::path::normalize;

use super::*;

/// The secret every test that substitutes a password uses; no message may contain it.
const SECRET: &str = "hunter2-s3cret";

fn env(name: &str) -> Result<String, VarError> {
    match name {
        "MENSHEN_DB_PASSWORD" => Ok(SECRET.to_owned()),
        "REGISTRY_UPSTREAM" => Ok("127.0.0.1:8081".to_owned()),
        "MENSHEN_TWFIDO_AES_KEY" => Ok(MOBILE_KEY.to_owned()),
        "MENSHEN_TWFIDO_SP_ID" => Ok("12345678901234567890".to_owned()),
        _ => Err(VarError::NotPresent),
    }
}

/// A valid `[mobile_certificate]` key (32 bytes 0xfb, base64url without padding).
const MOBILE_KEY: &str = "-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_s";

/// A valid OTP keyring (32 zero bytes): `[otp] keys` is required, so texts that do not test
/// the `[otp]` table get one appended (after their last line, so line numbers hold).
const OTP_TABLE: &str = "\n[otp]\nkeys = \"k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"\n";

fn parse_text(text: &str) -> Result<Config, ConfigErrors> {
    let text = if text.contains("[otp]") {
        text.to_owned()
    } else {
        format!("{text}{OTP_TABLE}")
    };
    parse_with_env(&text, "test.toml", Options::default(), &env)
}

fn valid(text: &str) -> Config {
    match parse_text(text) {
        Ok(config) => config,
        Err(errors) => panic!("expected a valid configuration, got:\n{errors}"),
    }
}

/// Every error as (line, message), in file order.
fn errors(text: &str) -> Vec<(usize, String)> {
    match parse_text(text) {
        Ok(_) => panic!("expected errors, the configuration was accepted"),
        Err(errors) => {
            for error in &errors.0 {
                assert!(
                    !error.message.contains(SECRET),
                    "secret leaked: {}",
                    error.message
                );
            }
            errors.0.into_iter().map(|e| (e.line, e.message)).collect()
        }
    }
}

/// The single error of `text`, as (line, message).
fn one_error(text: &str) -> (usize, String) {
    let mut all = errors(text);
    assert_eq!(all.len(), 1, "expected exactly one error, got {all:#?}");
    all.remove(0)
}

/// A valid configuration (lines 1-6), to which tests append lines starting at line 7.
const BASE: &str = "\
[[listen]]
address = \"127.0.0.1:8080\"
[[site]]
name = \"registry\"
hosts = [\"registry.school.example\"]
upstreams = [\"127.0.0.1:8081\"]
";

fn with_base(rest: &str) -> String {
    format!("{BASE}{rest}{OTP_TABLE}")
}

#[test]
fn minimal_configuration_gets_every_default() {
    let config = valid(BASE);
    assert_eq!(config.threads, 2);
    assert_eq!(config.listeners.len(), 1);
    assert_eq!(
        config.listeners[0].address,
        "127.0.0.1:8080".parse().unwrap()
    );
    assert!(config.listeners[0].tls.is_none());
    assert!(config.metrics.is_none());
    assert_eq!(config.session.idle_timeout, Duration::from_secs(30 * 60));
    assert_eq!(
        config.session.absolute_timeout,
        Duration::from_secs(8 * 3600)
    );
    assert!(!config.session.insecure_dev_cookie);
    assert!(config.store.redis.is_none());
    assert_eq!(config.store.redis_prefix, "menshen:");
    assert_eq!(config.store.database, "sqlite://menshen.db");
    assert_eq!(config.login.argon2_max_concurrent, 2);
    assert_eq!(config.login.argon2_queue, 4);
    assert_eq!(
        config.connections.keepalive_timeout,
        Duration::from_secs(60)
    );
    assert_eq!(config.connections.max_total, 10_000);
    assert_eq!(config.connections.max_per_address, 1_000);
    assert_eq!(config.connections.read_buffer, 0);
    assert_eq!(config.login.default_language, "zh-TW");
    assert!(config.login.notice.is_none());
    assert!(config.login.support.is_none());
    let default_policy = PasswordPolicy::default();
    assert_eq!(
        config.login.password_policy.min_length,
        default_policy.min_length
    );
    assert_eq!(
        config.login.password_policy.max_length,
        default_policy.max_length
    );
    assert_eq!(config.login.password_policy, default_policy);
    assert_eq!(
        (default_policy.min_length, default_policy.max_length),
        (8, 128)
    );
    assert!(default_policy.reject_common);
    assert_eq!(default_policy.min_strength, 2);
    assert_eq!(config.headers, HeaderNames::default());
    assert_eq!(config.headers.user, "X-Menshen-User");
    assert_eq!(config.headers.auth_method, "X-Menshen-Auth-Method");

    let site = &config.sites[0];
    assert_eq!(site.name, "registry");
    assert_eq!(site.hosts, ["registry.school.example"]);
    assert_eq!(site.upstreams, ["127.0.0.1:8081".parse().unwrap()]);
    assert!(!site.upstream_tls);
    assert!(site.upstream_sni.is_none());
    assert_eq!(site.headers, HeaderNames::default());
    // Default access is "authenticated", paths compare case-insensitively.
    let path = normalize("/anything").unwrap();
    assert_eq!(site.rules.lookup(&path), &Access::Authenticated);
}

#[test]
fn every_key_is_read() {
    let config = valid(&with_base(
        "\
[server]
threads = 8
keepalive_timeout = \"15s\"
max_connections = 5000
max_connections_per_address = 50
read_buffer = 16384
[metrics]
address = \"127.0.0.1:9464\"
[session]
idle_timeout = 900
absolute_timeout = \"1d\"
insecure_dev_cookie = true
[store]
redis = \"rediss://cache:6380/1\"
redis_prefix = \"school-a:\"
database = \"postgresql://menshen@db/menshen\"
[login]
argon2_max_concurrent = 4
argon2_queue = 0
default_language = \"en\"
notice = \"Maintenance on Friday\"
support = \"ext. 123\"
[login.password]
min_length = 12
max_length = 64
require_upper = true
require_lower = true
require_digit = true
require_symbol = true
reject_common = false
min_strength = 4
[headers]
school = \"X-School\"
",
    ));
    assert_eq!(config.threads, 8);
    assert_eq!(
        config.connections,
        crate::ConnectionConfig {
            keepalive_timeout: Duration::from_secs(15),
            max_total: 5000,
            max_per_address: 50,
            read_buffer: 16384,
        }
    );
    assert_eq!(config.metrics, Some("127.0.0.1:9464".parse().unwrap()));
    assert_eq!(config.session.idle_timeout, Duration::from_secs(900));
    assert_eq!(config.session.absolute_timeout, Duration::from_secs(86_400));
    assert!(config.session.insecure_dev_cookie);
    assert_eq!(config.store.redis.as_deref(), Some("rediss://cache:6380/1"));
    assert_eq!(config.store.redis_prefix, "school-a:");
    assert_eq!(config.store.database, "postgresql://menshen@db/menshen");
    assert_eq!(config.login.argon2_max_concurrent, 4);
    assert_eq!(config.login.argon2_queue, 0);
    assert_eq!(config.login.default_language, "en");
    assert_eq!(
        config.login.notice.as_deref(),
        Some("Maintenance on Friday")
    );
    assert_eq!(config.login.support.as_deref(), Some("ext. 123"));
    let policy = &config.login.password_policy;
    assert_eq!((policy.min_length, policy.max_length), (12, 64));
    assert!(policy.require_upper && policy.require_lower);
    assert!(policy.require_digit && policy.require_symbol);
    assert!(!policy.reject_common);
    assert_eq!(policy.min_strength, 4);
    assert_eq!(config.headers.school, "X-School");
    assert_eq!(config.headers.user, "X-Menshen-User");
    // The global override reaches sites that do not override it themselves.
    assert_eq!(config.sites[0].headers.school, "X-School");
}

#[test]
fn unknown_top_level_key_is_reported_with_its_line_and_the_valid_keys() {
    let (line, message) = one_error(&with_base("[sesion]\nidle_timeout = 60\n"));
    assert_eq!(line, 7);
    assert!(
        message.contains("unknown top-level key `sesion`"),
        "{message}"
    );
    assert!(
        message.contains("session") && message.contains("listen"),
        "{message}"
    );
}

#[test]
fn unknown_nested_keys_are_reported_with_their_lines() {
    let text = with_base(
        "\
[login.password]
min_lenght = 12
[[site.rule]]
path = \"/admin/\"
access = \"deny\"
role = [\"aa\"]
",
    );
    let all = errors(&text);
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_eq!(all[0].0, 8);
    assert!(
        all[0]
            .1
            .contains("unknown key `min_lenght` in [login.password]")
    );
    assert!(all[0].1.contains("min_length"), "{}", all[0].1);
    assert_eq!(all[1].0, 12);
    assert!(all[1].1.contains("unknown key `role` in [site.rule]"));
    assert!(
        all[1].1.contains("valid: access, path, roles"),
        "{}",
        all[1].1
    );
}

#[test]
fn unknown_key_in_inline_table_is_reported() {
    let text = "\
[[listen]]
address = \"127.0.0.1:8443\"
tls = { certificate = \"c.pem\", key = \"k.pem\", chain = \"x\" }
[[site]]
name = \"a\"
hosts = [\"a.example\"]
upstreams = [\"127.0.0.1:80\"]
";
    let text = format!("{text}{OTP_TABLE}");
    let config = parse_with_env(&text, "t", Options { check_files: false }, &env);
    let errors = config.unwrap_err().0;
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].line, 3);
    assert!(
        errors[0]
            .message
            .contains("unknown key `chain` in [listen.tls]")
    );
}

#[test]
fn wrong_types_are_reported_at_the_value() {
    let (line, message) = one_error(&with_base("[server]\nthreads = \"4\"\n"));
    assert_eq!(line, 8);
    assert_eq!(
        message,
        "`server.threads` must be an integer, found a string"
    );

    let (line, message) = one_error(&with_base("[session]\ninsecure_dev_cookie = \"yes\"\n"));
    assert_eq!(line, 8);
    assert!(message.contains("must be true or false"), "{message}");

    let (line, message) = one_error(&with_base("[login]\nnotice = 5\n"));
    assert_eq!(line, 8);
    assert!(
        message.contains("must be a string, found an integer"),
        "{message}"
    );

    let (line, message) = one_error(&format!("session = 5\n{BASE}"));
    assert_eq!(line, 1);
    assert!(message.contains("`session` must be a table"), "{message}");
}

#[test]
fn hosts_must_be_strings() {
    let text = BASE.replace("[\"registry.school.example\"]", "[\"a.example\", 5]");
    let (line, message) = one_error(&text);
    assert_eq!(line, 5);
    assert!(message.contains("must contain only strings"), "{message}");
}

#[test]
fn out_of_range_integers_are_reported() {
    let (line, message) = one_error(&with_base("[server]\nthreads = 0\n"));
    assert_eq!(line, 8);
    assert_eq!(message, "`server.threads` must be between 1 and 256");
    let (_, message) = one_error(&with_base("[login]\nargon2_max_concurrent = 65\n"));
    assert!(message.contains("between 1 and 64"), "{message}");
    let (_, message) = one_error(&with_base("[server]\nmax_connections_per_address = 0\n"));
    assert!(message.contains("between 1 and 1000000"), "{message}");
    let (_, message) = one_error(&with_base("[server]\nkeepalive_timeout = \"2h\"\n"));
    assert!(message.contains("at most 1h"), "{message}");
    let (_, message) = one_error(&with_base("[login]\nargon2_queue = -1\n"));
    assert!(message.contains("between 0 and 1024"), "{message}");
}

#[test]
fn bad_durations_are_reported() {
    let all = errors(&with_base(
        "\
[session]
idle_timeout = \"30 minutes\"
absolute_timeout = -5
",
    ));
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_eq!(all[0].0, 8);
    assert!(
        all[0].1.starts_with("`session.idle_timeout`: "),
        "{}",
        all[0].1
    );
    assert_eq!(all[1].0, 9);
    assert!(all[1].1.contains("negative"), "{}", all[1].1);

    let (line, message) = one_error(&with_base("[session]\nidle_timeout = \"0s\"\n"));
    assert_eq!(line, 8);
    assert!(message.contains("longer than zero"), "{message}");
}

#[test]
fn idle_timeout_longer_than_absolute_is_an_error() {
    let (line, message) = one_error(&with_base(
        "[session]\nidle_timeout = \"2h\"\nabsolute_timeout = \"1h\"\n",
    ));
    assert_eq!(line, 9);
    assert!(message.contains("(1h) must not be shorter"), "{message}");
    // Against the default absolute timeout of 8 h, reported at the idle timeout.
    let (line, _) = one_error(&with_base("[session]\nidle_timeout = \"9h\"\n"));
    assert_eq!(line, 8);
}

#[test]
fn bad_listen_and_metrics_addresses_are_reported() {
    let text = "\
[[listen]]
address = \"localhost:8080\"
[[listen]]
address = \"0.0.0.0:8443\"
[[listen]]
address = \"127.0.0.1:8443\"
[metrics]
address = \"0.0.0.0:8443\"
[[site]]
name = \"a\"
hosts = [\"a.example\"]
upstreams = [\"127.0.0.1:80\"]
";
    let all = errors(text);
    assert_eq!(all.len(), 3, "{all:#?}");
    assert_eq!(all[0].0, 2);
    assert!(
        all[0].1.contains("is not an IP address with port"),
        "{}",
        all[0].1
    );
    assert_eq!(all[1].0, 6);
    assert!(
        all[1].1.contains("overlaps the listener on line 4"),
        "{}",
        all[1].1
    );
    assert_eq!(all[2].0, 8);
    assert!(all[2].1.contains("metrics address"), "{}", all[2].1);
}

#[test]
fn port_zero_listeners_may_repeat() {
    // Tests bind port 0 for both; the kernel picks distinct ports.
    let text =
        BASE.replace("127.0.0.1:8080", "127.0.0.1:0") + "[metrics]\naddress = \"127.0.0.1:0\"\n";
    assert_eq!(valid(&text).metrics.map(|m| m.port()), Some(0));
}

#[test]
fn missing_listener_and_site_are_reported() {
    let all = errors("[server]\nthreads = 2\n");
    assert_eq!(all.len(), 2, "{all:#?}");
    assert!(all.iter().all(|(line, _)| *line == 1));
    assert!(all[0].1.contains("[[listen]]"));
    assert!(all[1].1.contains("[[site]]"));
}

#[test]
fn missing_required_keys_are_reported_at_their_table() {
    let text = "\
[[listen]]
address = \"127.0.0.1:8080\"
[[site]]
hosts = [\"a.example\"]
upstreams = [\"127.0.0.1:80\"]
[[site.rule]]
path = \"/x/\"
";
    let all = errors(text);
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_eq!(
        all[0],
        (3, "missing required key `name` in [site]".to_owned())
    );
    assert_eq!(
        all[1],
        (6, "missing required key `access` in [site.rule]".to_owned())
    );
}

#[test]
fn a_host_belongs_to_one_site_only() {
    let text = with_base(
        "\
[[site]]
name = \"other\"
hosts = [\"Registry.School.Example.:8443\"]
upstreams = [\"127.0.0.1:8082\"]
",
    );
    let (line, message) = one_error(&text);
    assert_eq!(line, 9);
    assert!(
        message.contains(
            "\"registry.school.example\" is already served by site \"registry\" (line 5)"
        ),
        "{message}"
    );
}

#[test]
fn site_names_are_unique_and_hosts_not_repeated() {
    let text = with_base(
        "\
[[site]]
name = \"registry\"
hosts = [\"b.example\", \"B.example\"]
upstreams = [\"127.0.0.1:8082\"]
",
    );
    let all = errors(&text);
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_eq!(all[0].0, 8);
    assert!(
        all[0].1.contains("already used by the site on line 4"),
        "{}",
        all[0].1
    );
    assert_eq!(all[1].0, 9);
    assert!(all[1].1.contains("listed twice"), "{}", all[1].1);
}

#[test]
fn bad_hosts_and_upstreams_are_reported() {
    let text = "\
[[listen]]
address = \"127.0.0.1:8080\"
[[site]]
name = \"a\"
hosts = [\"https://a.example\"]
upstreams = [\"127.0.0.1\"]
";
    let all = errors(text);
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_eq!(all[0].0, 5);
    assert!(all[0].1.contains("invalid host"), "{}", all[0].1);
    assert_eq!(all[1].0, 6);
    assert!(
        all[1].1.contains("cannot resolve \"127.0.0.1\""),
        "{}",
        all[1].1
    );

    let (line, message) = one_error(&BASE.replace("[\"127.0.0.1:8081\"]", "[]"));
    assert_eq!(line, 6);
    assert!(message.contains("at least one upstream"), "{message}");
}

#[test]
fn upstream_names_resolve_to_every_address() {
    let config = valid(&BASE.replace("127.0.0.1:8081", "localhost:8081"));
    let upstreams = &config.sites[0].upstreams;
    assert!(!upstreams.is_empty());
    assert!(
        upstreams
            .iter()
            .all(|a| a.port() == 8081 && a.ip().is_loopback())
    );
}

#[test]
fn upstream_sni_needs_upstream_tls() {
    let (line, message) = one_error(&with_base("upstream_sni = \"registry.internal\"\n"));
    assert_eq!(line, 7);
    assert!(
        message.contains("only applies with `upstream_tls = true`"),
        "{message}"
    );
    let config = valid(&with_base(
        "upstream_tls = true\nupstream_sni = \"Registry.Internal\"\n",
    ));
    assert!(config.sites[0].upstream_tls);
    assert_eq!(
        config.sites[0].upstream_sni.as_deref(),
        Some("registry.internal")
    );
}

#[test]
fn rules_build_the_access_table() {
    let config = valid(&with_base(
        "\
default_access = \"deny\"
path_case = \"sensitive\"
[[site.rule]]
path = \"/public/\"
access = \"anonymous\"
[[site.rule]]
path = \"/admin\"
access = \"roles\"
roles = [\"aa\", \"principal\"]
",
    ));
    let rules = &config.sites[0].rules;
    let access = |p: &str| rules.lookup(&normalize(p).unwrap()).clone();
    assert_eq!(access("/public/x"), Access::Anonymous);
    assert_eq!(
        access("/admin/users"),
        Access::Roles(vec!["aa".to_owned(), "principal".to_owned()])
    );
    assert_eq!(access("/ADMIN/users"), Access::Deny);
    assert_eq!(access("/other"), Access::Deny);
}

#[test]
fn roles_are_required_with_access_roles_and_only_then() {
    let all = errors(&with_base(
        "\
[[site.rule]]
path = \"/admin/\"
access = \"roles\"
[[site.rule]]
path = \"/staff/\"
access = \"authenticated\"
roles = [\"staff\"]
[[site.rule]]
path = \"/aa/\"
access = \"roles\"
roles = []
",
    ));
    assert_eq!(all.len(), 3, "{all:#?}");
    assert_eq!(all[0].0, 7);
    assert!(all[0].1.contains("`roles` is required"), "{}", all[0].1);
    assert_eq!(all[1].0, 13);
    assert!(
        all[1].1.contains("only allowed with `access = \"roles\"`"),
        "{}",
        all[1].1
    );
    assert_eq!(all[2].0, 17);
    assert!(all[2].1.contains("at least one role"), "{}", all[2].1);
}

#[test]
fn rule_paths_are_checked() {
    let all = errors(&with_base(
        "\
[[site.rule]]
path = \"/.menshen/login\"
access = \"anonymous\"
[[site.rule]]
path = \"/.MENSHEN\"
access = \"anonymous\"
[[site.rule]]
path = \"admin\"
access = \"deny\"
[[site.rule]]
path = \"/a/../b\"
access = \"deny\"
",
    ));
    assert_eq!(all.len(), 4, "{all:#?}");
    assert_eq!(all[0].0, 8);
    assert!(all[0].1.contains("/.menshen/ is reserved"), "{}", all[0].1);
    assert_eq!(all[1].0, 11);
    assert!(all[1].1.contains("/.menshen/ is reserved"), "{}", all[1].1);
    assert_eq!(all[2].0, 14);
    assert!(all[2].1.contains("must start with '/'"), "{}", all[2].1);
    assert_eq!(all[3].0, 17);
    assert!(all[3].1.contains("write \"/b\""), "{}", all[3].1);
}

#[test]
fn duplicate_rule_paths_are_reported() {
    let rules = "\
[[site.rule]]
path = \"/admin/\"
access = \"deny\"
[[site.rule]]
path = \"/Admin\"
access = \"anonymous\"
";
    let (line, message) = one_error(&with_base(rules));
    assert_eq!(line, 11);
    assert!(
        message.contains("duplicates the rule on line 8"),
        "{message}"
    );
    // With case-sensitive paths, /admin and /Admin are different paths.
    valid(&with_base(&format!("path_case = \"sensitive\"\n{rules}")));
}

#[test]
fn bad_choices_list_the_alternatives() {
    let (line, message) = one_error(&with_base("default_access = \"roles\"\n"));
    assert_eq!(line, 7);
    assert_eq!(
        message,
        "`site.default_access` must be one of \"anonymous\", \"authenticated\", \"deny\"; \
         found \"roles\""
    );
    let (_, message) = one_error(&with_base("[login]\ndefault_language = \"fr\"\n"));
    assert!(message.contains("\"zh-TW\", \"en\""), "{message}");
}

#[test]
fn environment_variables_are_substituted_in_every_string() {
    let config = valid(
        &(BASE.replace("127.0.0.1:8081", "${REGISTRY_UPSTREAM}")
            + "[store]\ndatabase = \"postgres://menshen:${MENSHEN_DB_PASSWORD}@db/m\"\n\
               [login]\nnotice = \"Fee: NT$$500\"\n"),
    );
    assert_eq!(
        config.store.database,
        format!("postgres://menshen:{SECRET}@db/m")
    );
    assert_eq!(
        config.sites[0].upstreams,
        ["127.0.0.1:8081".parse().unwrap()]
    );
    assert_eq!(config.login.notice.as_deref(), Some("Fee: NT$500"));
}

#[test]
fn missing_environment_variable_is_named_at_its_line() {
    let (line, message) = one_error(&with_base(
        "[store]\ndatabase = \"postgres://m:${MENSHEN_PG_PASSWORD}@db/m\"\n",
    ));
    assert_eq!(line, 8);
    assert_eq!(
        message,
        "`store.database`: environment variable `MENSHEN_PG_PASSWORD` is not set"
    );
    let (_, message) = one_error(&with_base("[store]\nredis_prefix = \"$HOME\"\n"));
    assert!(message.contains("`$$`"), "{message}");
}

#[test]
fn values_from_the_environment_are_never_quoted_in_errors() {
    // `errors` also asserts that SECRET appears in no message.
    let (line, message) = one_error(&with_base(
        "[store]\ndatabase = \"mysql://m:${MENSHEN_DB_PASSWORD}@db\"\n",
    ));
    assert_eq!(line, 8);
    assert!(
        message.contains("must be a URL starting with sqlite:"),
        "{message}"
    );
    let (_, message) = one_error(&with_base(
        "[headers]\nuser = \"X-${MENSHEN_DB_PASSWORD} bad\"\n",
    ));
    assert!(
        message.contains("after environment substitution"),
        "{message}"
    );
}

#[test]
fn store_urls_are_checked() {
    let all = errors(&with_base(
        "[store]\nredis = \"http://cache\"\nredis_prefix = \"\"\ndatabase = \"menshen.db\"\n",
    ));
    let lines: Vec<usize> = all.iter().map(|(line, _)| *line).collect();
    assert_eq!(lines, [8, 9, 10], "{all:#?}");
}

#[test]
fn password_lengths_are_checked() {
    let (line, message) = one_error(&with_base(
        "[login.password]\nmin_length = 100\nmax_length = 80\n",
    ));
    assert_eq!(line, 9);
    assert!(message.contains("must not be less than"), "{message}");
    // The floors hold even when the pair is consistent.
    let (line, message) = one_error(&with_base(
        "[login.password]\nmin_length = 20\nmax_length = 16\n",
    ));
    assert_eq!(line, 9);
    assert!(message.contains("must be at least 64"), "{message}");
}

#[test]
fn password_lengths_respect_the_nist_floors() {
    let all = errors(&with_base(
        "[login.password]\nmin_length = 7\nmax_length = 63\n",
    ));
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_eq!(all[0].0, 8);
    assert!(
        all[0]
            .1
            .contains("`login.password.min_length` (7) must be at least 8"),
        "{}",
        all[0].1
    );
    assert_eq!(all[1].0, 9);
    assert!(
        all[1]
            .1
            .contains("`login.password.max_length` (63) must be at least 64"),
        "{}",
        all[1].1
    );
    // The floors themselves are fine, and so is the limit.
    let config = valid(&with_base(
        "[login.password]\nmin_length = 8\nmax_length = 64\n",
    ));
    let policy = &config.login.password_policy;
    assert_eq!((policy.min_length, policy.max_length), (8, 64));
    let config = valid(&with_base(
        "[login.password]\nmin_length = 64\nmax_length = 1024\n",
    ));
    let policy = &config.login.password_policy;
    assert_eq!((policy.min_length, policy.max_length), (64, 1024));
    let (line, message) = one_error(&with_base("[login.password]\nmax_length = 1025\n"));
    assert_eq!(line, 8);
    assert!(message.contains("between 1 and 1024"), "{message}");
}

#[test]
fn password_strength_is_checked() {
    for strength in 1..=4 {
        let config = valid(&with_base(&format!(
            "[login.password]\nmin_strength = {strength}\n"
        )));
        assert_eq!(
            i64::from(config.login.password_policy.min_strength),
            strength
        );
    }
    for bad in ["0", "5", "-1"] {
        let (line, message) = one_error(&with_base(&format!(
            "[login.password]\nmin_strength = {bad}\n"
        )));
        assert_eq!(line, 8);
        assert!(
            message.contains("`login.password.min_strength` must be between 1 and 4"),
            "{message}"
        );
    }
    let (line, message) = one_error(&with_base("[login.password]\nreject_common = \"no\"\n"));
    assert_eq!(line, 8);
    assert!(message.contains("reject_common"), "{message}");
    let config = valid(&with_base("[login.password]\nreject_common = false\n"));
    assert!(!config.login.password_policy.reject_common);
}

#[test]
fn header_names_are_checked_and_kept_distinct() {
    let all = errors(&with_base(
        "\
[headers]
user = \"X Menshen User\"
name = \"Cookie\"
[site.headers]
roles = \"x-menshen-school\"
",
    ));
    assert_eq!(all.len(), 3, "{all:#?}");
    assert_eq!(all[0].0, 8);
    assert!(
        all[0].1.contains("not a valid HTTP header name"),
        "{}",
        all[0].1
    );
    assert_eq!(all[1].0, 9);
    assert!(
        all[1].1.contains("managed by HTTP or the gateway"),
        "{}",
        all[1].1
    );
    assert_eq!(all[2].0, 11);
    assert!(
        all[2].1.contains("`roles` and `school` must differ"),
        "{}",
        all[2].1
    );
}

#[test]
fn site_headers_override_the_global_ones_per_field() {
    let config = valid(&with_base(
        "\
[headers]
school = \"X-School-Code\"
[site.headers]
user = \"X-Remote-User\"
[[site]]
name = \"hr\"
hosts = [\"hr.school.example\"]
upstreams = [\"127.0.0.1:8082\"]
",
    ));
    let registry = &config.sites[0].headers;
    assert_eq!(registry.user, "X-Remote-User");
    assert_eq!(registry.school, "X-School-Code");
    assert_eq!(registry.name, "X-Menshen-Name");
    let hr = &config.sites[1].headers;
    assert_eq!(hr.user, "X-Menshen-User");
    assert_eq!(hr.school, "X-School-Code");
}

#[test]
fn several_problems_are_reported_at_once_with_their_lines() {
    let text = "\
[server]
threads = \"many\"
[[listen]]
address = \"127.0.0.1:8080\"
[session]
idle_timeout = \"soon\"
[[site]]
name = \"registry\"
hosts = [\"registry.school.example\"]
upstreams = [\"127.0.0.1:8081\"]
colour = \"blue\"
";
    let all = errors(text);
    let lines: Vec<usize> = all.iter().map(|(line, _)| *line).collect();
    assert_eq!(lines, [2, 6, 11], "{all:#?}");
    assert!(all[0].1.contains("server.threads"));
    assert!(all[1].1.contains("session.idle_timeout"));
    assert!(all[2].1.contains("unknown key `colour` in [site]"));
}

#[test]
fn syntax_errors_are_reported_alone() {
    let all = errors(&with_base("[session]\nidle_timeout = 30m\n"));
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0].0, 8);
    assert!(all[0].1.starts_with("TOML syntax: "), "{}", all[0].1);
}

#[test]
fn errors_display_as_file_line_column() {
    let errors = parse_with_env(
        &with_base("[server]\n  threads = 0\n"),
        "menshen.toml",
        Options::default(),
        &env,
    )
    .unwrap_err();
    assert_eq!(
        errors.to_string(),
        "menshen.toml:8:13: `server.threads` must be between 1 and 256"
    );
}

#[test]
fn tls_files_must_exist_when_checked() {
    let text = "\
[[listen]]
address = \"0.0.0.0:8443\"
tls = { certificate = \"/nonexistent/menshen/cert.pem\", key = \"/nonexistent/menshen/key.pem\" }
[[site]]
name = \"a\"
hosts = [\"a.example\"]
upstreams = [\"127.0.0.1:80\"]
";
    let all = errors(text);
    assert_eq!(all.len(), 2, "{all:#?}");
    assert!(all.iter().all(|(line, _)| *line == 3));
    assert!(
        all[0]
            .1
            .starts_with("`listen.tls.certificate`: \"/nonexistent/menshen/cert.pem\"")
    );
    assert!(all[1].1.starts_with("`listen.tls.key`: "));

    let text = format!("{text}{OTP_TABLE}");
    let unchecked = parse_with_env(&text, "t", Options { check_files: false }, &env);
    let config = unchecked.unwrap();
    let tls = config.listeners[0].tls.as_ref().unwrap();
    assert_eq!(
        tls.certificate,
        std::path::Path::new("/nonexistent/menshen/cert.pem")
    );
}

#[test]
fn tls_files_that_exist_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let certificate = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&certificate, "certificate").unwrap();
    std::fs::write(&key, "key").unwrap();
    let text = format!(
        "[[listen]]\naddress = \"0.0.0.0:8443\"\n[listen.tls]\ncertificate = {:?}\nkey = {:?}\n\
         [[site]]\nname = \"a\"\nhosts = [\"a.example\"]\nupstreams = [\"127.0.0.1:80\"]\n",
        certificate.display().to_string(),
        key.display().to_string()
    );
    let config = valid(&text);
    let tls = config.listeners[0].tls.as_ref().unwrap();
    assert_eq!(tls.certificate, certificate);
    assert_eq!(tls.key, key);

    // A directory is not a certificate.
    let text = text.replace(
        &certificate.display().to_string(),
        &dir.path().display().to_string(),
    );
    let (line, message) = one_error(&text);
    assert_eq!(line, 4);
    assert!(
        message.contains("regular file") || message.contains("cannot be read"),
        "{message}"
    );
}

#[test]
fn certificate_table_is_read_and_checked() {
    let dir = tempfile::tempdir().expect("dir");
    let root = dir.path().join("root.pem");
    std::fs::write(&root, "x").expect("write");
    let base = "[[listen]]\naddress = \"127.0.0.1:8080\"\n\n[[site]]\nname = \"a\"\nhosts = [\"a.test\"]\nupstreams = [\"127.0.0.1:9000\"]\n";
    let text = format!(
        "{base}\n[certificate]\ntrust_anchors = [\"{}\"]\ncrls = [\"https://example.test/g3.crl\"]\n\
         crl_refresh = \"1h\"\nrequired_policies = [\"2.16.886.101.0.3.1\"]\n",
        root.display()
    );
    let config = valid(&text);
    let c = config.certificate.expect("certificate table");
    assert_eq!(c.trust_anchors, vec![root.clone()]);
    assert_eq!(
        c.crls,
        vec![CrlSource::Url("https://example.test/g3.crl".into())]
    );
    assert_eq!(c.crl_refresh, Duration::from_secs(3600));
    assert!(c.require_identity_match, "on unless turned off");
    assert_eq!(c.crl_grace, Duration::from_secs(12 * 3600));
    assert_eq!(c.component_url, "http://localhost:61161");
    assert_eq!(c.component_min_version, "1.3.4");
    assert!(valid(base).certificate.is_none());

    let component = valid(&format!(
        "{base}\n[certificate]\ntrust_anchors = [\"{}\"]\ncomponent_url = \"http://127.0.0.1:4000/\"\n\
         component_min_version = \"1.3.5\"\n",
        root.display()
    ))
    .certificate
    .expect("certificate table");
    assert_eq!(component.component_url, "http://127.0.0.1:4000");
    assert_eq!(component.component_min_version, "1.3.5");
    let wrong = errors(&format!(
        "{base}\n[certificate]\ntrust_anchors = [\"{}\"]\ncomponent_url = \"http://localhost:61161/popupForm\"\n\
         component_min_version = \"1.x\"\n",
        root.display()
    ));
    let wrong_lines: Vec<usize> = wrong.iter().map(|(l, _)| *l).collect();
    assert_eq!(wrong_lines, vec![11, 12], "{wrong:?}");
    assert!(wrong[0].1.contains("must be an origin"), "{wrong:?}");
    assert!(wrong[1].1.contains("is not a version"), "{wrong:?}");

    let bad = format!(
        "{base}\n[certificate]\ntrust_anchors = [\"{}\", \"/nonexistent/root.pem\"]\n\
         crls = [\"ftp://x/y.crl\"]\nrequired_policies = [\"nope\"]\ncrl_refresh = 0\n",
        root.display()
    );
    let found = errors(&bad);
    let lines: Vec<usize> = found.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, vec![10, 11, 12, 13], "{found:?}");
    assert!(found[0].1.contains("/nonexistent/root.pem"), "{found:?}");
    let missing = errors(&format!("{base}\n[certificate]\nintermediates = []\n"));
    assert!(
        missing.iter().any(|(_, m)| m.contains("trust_anchors")),
        "{missing:?}"
    );
}

#[test]
fn certificate_crl_grace_is_read_and_bounded() {
    let dir = tempfile::tempdir().expect("dir");
    let root = dir.path().join("root.pem");
    std::fs::write(&root, "x").expect("write");
    let table = format!("[certificate]\ntrust_anchors = [\"{}\"]\n", root.display());
    let grace = |setting: &str| {
        valid(&with_base(&format!("{table}{setting}\n")))
            .certificate
            .expect("certificate table")
            .crl_grace
    };
    assert_eq!(grace("crl_grace = \"2h\""), Duration::from_secs(7200));
    assert_eq!(
        grace("crl_grace = 0"),
        Duration::ZERO,
        "no grace is a choice"
    );
    assert_eq!(grace("crl_grace = \"7d\""), Duration::from_secs(7 * 86_400));
    assert_eq!(
        grace("require_identity_match = false"),
        Duration::from_secs(12 * 3600)
    );
    let (line, message) = one_error(&with_base(&format!("{table}crl_grace = \"8d\"\n")));
    assert_eq!(line, 9);
    assert!(
        message.contains("`certificate.crl_grace` must be at most 7 days"),
        "{message}"
    );
    let (line, message) = one_error(&with_base(&format!("{table}crl_grace = -1\n")));
    assert_eq!(line, 9);
    assert!(message.contains("`certificate.crl_grace`"), "{message}");
    let off = valid(&with_base(&format!(
        "{table}require_identity_match = false\n"
    )))
    .certificate
    .expect("certificate table");
    assert!(!off.require_identity_match);
}

#[test]
fn certificate_ocsp_keys_are_read_and_checked() {
    let dir = tempfile::tempdir().expect("dir");
    let root = dir.path().join("root.pem");
    std::fs::write(&root, "x").expect("write");
    let table = format!("[certificate]\ntrust_anchors = [\"{}\"]\n", root.display());

    // Absent: off, no URL, three seconds.
    let c = valid(&with_base(&table))
        .certificate
        .expect("certificate table");
    assert_eq!(c.ocsp, model::OcspMode::Off);
    assert_eq!(c.ocsp_url, None);
    assert_eq!(c.ocsp_timeout, Duration::from_secs(3));

    for (word, mode) in [
        ("off", model::OcspMode::Off),
        ("prefer", model::OcspMode::Prefer),
        ("require", model::OcspMode::Require),
    ] {
        let c = valid(&with_base(&format!(
            "{table}ocsp = \"{word}\"\nocsp_url = \"http://ocsp.example.test/cgi-bin/OCSP2/ocsp\"\n\
             ocsp_timeout = \"10s\"\n"
        )))
        .certificate
        .expect("certificate table");
        assert_eq!(c.ocsp, mode, "{word}");
        assert_eq!(
            c.ocsp_url.as_deref(),
            Some("http://ocsp.example.test/cgi-bin/OCSP2/ocsp")
        );
        assert_eq!(c.ocsp_timeout, Duration::from_secs(10));
    }

    // Every problem at once, each on its own line (the table starts at line 7).
    let found = errors(&with_base(&format!(
        "{table}ocsp = \"always\"\nocsp_url = \"ldap://ocsp.example.test/\"\nocsp_timeout = \"5x\"\n"
    )));
    let lines: Vec<usize> = found.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, vec![9, 10, 11], "{found:?}");
    assert!(
        found[0]
            .1
            .contains("`certificate.ocsp` must be one of \"off\", \"prefer\", \"require\""),
        "{found:?}"
    );
    assert!(found[1].1.contains("`certificate.ocsp_url`"), "{found:?}");
    assert!(
        found[1].1.contains("not an http:// or https:// URL"),
        "{found:?}"
    );
    assert!(
        found[2].1.contains("`certificate.ocsp_timeout`"),
        "{found:?}"
    );

    let (line, message) = one_error(&with_base(&format!("{table}ocsp_timeout = \"2m\"\n")));
    assert_eq!(line, 9);
    assert!(message.contains("at most 30 seconds"), "{message}");
    let (line, message) = one_error(&with_base(&format!("{table}ocsp_timeout = 0\n")));
    assert_eq!(line, 9);
    assert!(message.contains("longer than zero"), "{message}");
    let (line, message) = one_error(&with_base(&format!("{table}ocsp = true\n")));
    assert_eq!(line, 9);
    assert!(message.contains("`certificate.ocsp`"), "{message}");
}

#[test]
fn portal_host_is_read_and_canonicalised() {
    let config = valid(&with_base(
        "[session]\ninsecure_dev_cookie = true\n[portal]\nhost = \"Login.School.Example.\"\n",
    ));
    assert_eq!(
        config.portal,
        Some(Portal {
            host: "login.school.example".into()
        })
    );
    assert!(
        valid(BASE).portal.is_none(),
        "no [portal]: single-host mode"
    );
}

#[test]
fn forwarding_headers_can_be_added_and_kept_per_site() {
    let config = valid(BASE);
    let site = &config.sites[0];
    assert!(!site.allow_double_encoded_separators);
    assert_eq!(
        site.untrusted_headers,
        menshen_policies::headers::FORWARDING
            .iter()
            .map(|n| (*n).to_owned())
            .collect::<Vec<_>>()
    );
    let config = valid(&with_base(
        "\
allow_double_encoded_separators = true
strip_headers = [\"X_Legacy_Client\", \"x-real-ip\"]
keep_headers = [\"X-Forwarded-Prefix\", \"x_original_host\"]
",
    ));
    let site = &config.sites[0];
    assert!(site.allow_double_encoded_separators);
    let has = |n: &str| site.untrusted_headers.iter().any(|h| h == n);
    assert!(has("x-legacy-client"));
    assert!(has("x-real-ip"));
    assert!(!has("x-forwarded-prefix"));
    assert!(!has("x-original-host"));
    assert_eq!(
        site.untrusted_headers.len(),
        menshen_policies::headers::FORWARDING.len() - 1
    );
}

#[test]
fn portal_needs_a_host_of_its_own() {
    assert_eq!(
        one_error(&with_base(
            "[session]\ninsecure_dev_cookie = true\n[portal]\n"
        )),
        (9, "missing required key `host` in [portal]".into())
    );
    let (line, message) = one_error(&with_base(
        "[session]\ninsecure_dev_cookie = true\n[portal]\nhost = \"registry.school.example:8443\"\n",
    ));
    assert_eq!(line, 10);
    assert!(
        message.contains("also a host of site \"registry\""),
        "{message}"
    );
    let (line, message) = one_error(&with_base(
        "[session]\ninsecure_dev_cookie = true\n[portal]\nhost = \"*\"\n",
    ));
    assert_eq!(line, 10);
    assert!(message.contains("must name one host"), "{message}");
    let (_, message) = one_error(&with_base(
        "[session]\ninsecure_dev_cookie = true\n[portal]\nhost = \"https://login\"\n",
    ));
    assert!(
        message.starts_with("`portal.host`: invalid host"),
        "{message}"
    );
}

#[test]
fn portal_refuses_catch_all_sites() {
    let text = "\
[[listen]]
address = \"127.0.0.1:8080\"
[session]
insecure_dev_cookie = true
[[site]]
name = \"any\"
hosts = [\"*\"]
upstreams = [\"127.0.0.1:8081\"]
[portal]
host = \"login.school.example\"
";
    let (line, message) = one_error(text);
    assert_eq!(line, 10);
    assert!(message.contains("catch-all `*`"), "{message}");
}

#[test]
fn portal_must_be_served_over_tls_outside_development() {
    let (line, message) = one_error(&with_base("[portal]\nhost = \"login.school.example\"\n"));
    assert_eq!(line, 7);
    assert!(
        message.contains("needs a [[listen]] with `tls`"),
        "{message}"
    );
}

#[test]
fn forwarding_header_lists_are_checked() {
    let all = errors(&with_base(
        "\
keep_headers = [\"X-Forwarded-For\", \"X-Not-On-The-List\", \"Client-IP\"]
strip_headers = [\"bad name\", \"Host\", \"client_ip\"]
",
    ));
    assert_eq!(all.len(), 5, "{all:#?}");
    assert!(all[0].1.contains("set by Menshen itself"), "{}", all[0].1);
    assert!(all[1].1.contains("nothing to keep"), "{}", all[1].1);
    assert!(
        all[2].1.contains("not a valid HTTP header name"),
        "{}",
        all[2].1
    );
    assert!(all[3].1.contains("managed by HTTP"), "{}", all[3].1);
    assert!(all[4].1.contains("also in `keep_headers`"), "{}", all[4].1);
    assert!(all.iter().all(|(line, _)| *line == 7 || *line == 8));
}

#[test]
fn forward_auth_lists_its_trusted_proxies() {
    let config = valid(&with_base(
        "[forward_auth]\ntrusted_proxies = [\"127.0.0.1/32\", \"10.0.0.0/8\", \"::1\"]\n",
    ));
    let fa = config.forward_auth.expect("[forward_auth]");
    assert_eq!(fa.trusted_proxies.len(), 3);
    assert!(valid(BASE).forward_auth.is_none());
    assert_eq!(
        one_error(&with_base("[forward_auth]\n")),
        (
            7,
            "missing required key `trusted_proxies` in [forward_auth]".into()
        )
    );
    let (line, message) = one_error(&with_base("[forward_auth]\ntrusted_proxies = []\n"));
    assert_eq!(line, 8);
    assert!(message.contains("at least one"), "{message}");
    let (line, message) = one_error(&with_base(
        "[forward_auth]\ntrusted_proxies = [\"nginx.local\"]\n",
    ));
    assert_eq!(line, 8);
    assert!(
        message.contains("is not an address or network"),
        "{message}"
    );
}

/// `[certificate]` with a readable anchor, then `[mobile_certificate]` from line 12 on
/// (lines 1-7 the base, 8 blank, 9-10 `[certificate]`, 11 `[mobile_certificate]`).
fn mobile_text(dir: &tempfile::TempDir, rest: &str) -> String {
    let root = dir.path().join("root.pem");
    std::fs::write(&root, "x").expect("write");
    format!(
        "[[listen]]\naddress = \"127.0.0.1:8080\"\n\n[[site]]\nname = \"a\"\nhosts = [\"a.test\"]\n\
         upstreams = [\"127.0.0.1:9000\"]\n\n[certificate]\ntrust_anchors = [\"{}\"]\n\
         [mobile_certificate]\n{rest}",
        root.display()
    )
}

#[test]
fn mobile_certificate_table_is_read() {
    let dir = tempfile::tempdir().expect("dir");
    let config = valid(&mobile_text(
        &dir,
        "api_url = \"https://fidoapi.moi.gov.tw/\"\nsp_service_id = \"12345678901234567890\"\n\
         aes_key = \"${MENSHEN_TWFIDO_AES_KEY}\"\n",
    ));
    let m = config.mobile_certificate.expect("mobile_certificate table");
    assert_eq!(m.api_url, "https://fidoapi.moi.gov.tw");
    assert_eq!(m.sp_service_id, "12345678901234567890");
    assert_eq!(m.aes_key, MobileKey([0xfb; 32]));
    assert_eq!(m.time_limit, Duration::from_secs(120));
    assert_eq!(m.request_timeout, Duration::from_secs(10));
    // The key never shows in Debug output, in any form.
    let shown = format!("{m:?}");
    assert!(!shown.contains(MOBILE_KEY), "{shown}");
    assert!(!shown.contains("251"), "{shown}");
    assert!(!shown.to_ascii_lowercase().contains("fb"), "{shown}");

    // Standard base64 with padding, and a time limit at each end of MOI's range.
    for (limit, seconds) in [("\"30s\"", 30), ("600", 600), ("\"10m\"", 600)] {
        let m = valid(&mobile_text(
            &dir,
            &format!(
                "api_url = \"http://127.0.0.1:4100\"\nsp_service_id = \"x\"\n\
                 aes_key = \"+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/s=\"\ntime_limit = {limit}\n"
            ),
        ))
        .mobile_certificate
        .expect("mobile_certificate table");
        assert_eq!(m.aes_key, MobileKey([0xfb; 32]));
        assert_eq!(m.time_limit, Duration::from_secs(seconds));
    }
    assert!(valid(BASE).mobile_certificate.is_none());
}

#[test]
fn mobile_certificate_errors_are_reported_with_lines() {
    let dir = tempfile::tempdir().expect("dir");
    // A key of the wrong length that is otherwise plausible: it must not be quoted.
    let wrong_key = "c2VjcmV0LWJ1dC10b28tc2hvcnQ";
    let found = errors(&mobile_text(
        &dir,
        &format!(
            "api_url = \"ftp://fidoapi.moi.gov.tw\"\nsp_service_id = \"has space\"\n\
             aes_key = \"{wrong_key}\"\ntime_limit = \"29s\"\n"
        ),
    ));
    let lines: Vec<usize> = found.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, vec![12, 13, 14, 15], "{found:?}");
    assert!(
        found[0].1.contains("`mobile_certificate.api_url`"),
        "{found:?}"
    );
    assert!(
        found[1].1.contains("`mobile_certificate.sp_service_id`"),
        "{found:?}"
    );
    assert!(
        found[2]
            .1
            .contains("`mobile_certificate.aes_key` must be 32 bytes"),
        "{found:?}"
    );
    assert!(found[3].1.contains("between 30s and 600s"), "{found:?}");
    for (_, message) in &found {
        assert!(!message.contains(wrong_key), "key leaked: {message}");
    }

    let too_long = one_error(&mobile_text(
        &dir,
        "api_url = \"https://a.test\"\nsp_service_id = \"x\"\n\
         aes_key = \"${MENSHEN_TWFIDO_AES_KEY}\"\ntime_limit = \"601s\"\n",
    ));
    assert_eq!(too_long.0, 15);
    assert!(too_long.1.contains("between 30s and 600s"), "{too_long:?}");

    let slow = one_error(&mobile_text(
        &dir,
        "api_url = \"https://a.test\"\nsp_service_id = \"x\"\n\
         aes_key = \"${MENSHEN_TWFIDO_AES_KEY}\"\nrequest_timeout = \"31s\"\n",
    ));
    assert_eq!(slow.0, 15);
    assert!(slow.1.contains("between 1s and 30s"), "{slow:?}");
    let quick = valid(&mobile_text(
        &dir,
        "api_url = \"https://a.test\"\nsp_service_id = \"x\"\n\
         aes_key = \"${MENSHEN_TWFIDO_AES_KEY}\"\nrequest_timeout = \"2s\"\n",
    ));
    let quick = quick.mobile_certificate.expect("mobile_certificate table");
    assert_eq!(quick.request_timeout, Duration::from_secs(2));

    let query = one_error(&mobile_text(
        &dir,
        "api_url = \"https://a.test/?x=1\"\nsp_service_id = \"x\"\n\
         aes_key = \"${MENSHEN_TWFIDO_AES_KEY}\"\n",
    ));
    assert_eq!(query.0, 12, "{query:?}");

    // Every required key is named.
    let missing = errors(&mobile_text(&dir, ""));
    for key in ["api_url", "sp_service_id", "aes_key"] {
        assert!(
            missing.iter().any(|(l, m)| *l == 11 && m.contains(key)),
            "{key}: {missing:?}"
        );
    }

    // An unknown key is refused, as in every table.
    let unknown = one_error(&mobile_text(
        &dir,
        "api_url = \"https://a.test\"\nsp_service_id = \"x\"\n\
         aes_key = \"${MENSHEN_TWFIDO_AES_KEY}\"\nop_mode = \"PUSH\"\n",
    ));
    assert_eq!(unknown.0, 15, "{unknown:?}");
}

#[test]
fn mobile_certificate_requires_certificate() {
    let text = "[[listen]]\naddress = \"127.0.0.1:8080\"\n\n[[site]]\nname = \"a\"\nhosts = [\"a.test\"]\n\
                upstreams = [\"127.0.0.1:9000\"]\n\n[mobile_certificate]\napi_url = \"https://a.test\"\n\
                sp_service_id = \"x\"\naes_key = \"${MENSHEN_TWFIDO_AES_KEY}\"\n";
    let (line, message) = one_error(text);
    assert_eq!(line, 9);
    assert!(
        message.contains("requires a `[certificate]` table"),
        "{message}"
    );
    assert!(!message.contains(MOBILE_KEY), "{message}");
}

/// The commented-out `[mobile_certificate]` block of `examples/school.toml`, uncommented,
/// is a valid table: the reference cannot drift from the parser.
#[test]
fn mobile_certificate_example_is_valid() {
    let example = include_str!("../examples/school.toml");
    let block: String = example
        .lines()
        .skip_while(|l| *l != "# [mobile_certificate]")
        .skip(1)
        .take_while(|l| l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("# "))
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(block.contains("aes_key"), "{block}");
    let dir = tempfile::tempdir().expect("dir");
    let m = valid(&mobile_text(&dir, &block))
        .mobile_certificate
        .expect("mobile_certificate table");
    assert_eq!(m.api_url, "https://fidoapi.moi.gov.tw");
    assert_eq!(m.time_limit, Duration::from_secs(120));
}

#[test]
fn mail_is_off_unless_configured() {
    let config = valid(BASE);
    assert!(config.mail.is_none());
    assert!(config.login.help.is_none());
}

#[test]
fn mail_over_starttls_with_a_password_from_the_environment() {
    let config = valid(&with_base(
        "[mail]\nfrom = \"門神 Menshen <noreply@school.example>\"\n\
         smtp_url = \"smtp://menshen%40school:${MENSHEN_DB_PASSWORD}@mail.school.example\"\n\
         link_base = \"https://login.school.example/\"\n",
    ));
    let mail = config.mail.unwrap();
    assert_eq!(mail.from, "門神 Menshen <noreply@school.example>");
    assert_eq!(mail.timeout, Duration::from_secs(15));
    assert_eq!(
        mail.link_base.as_deref(),
        Some("https://login.school.example")
    );
    let MailTransport::Smtp(server) = mail.transport else {
        panic!("expected SMTP");
    };
    assert_eq!(server.host, "mail.school.example");
    assert_eq!(server.port, 587);
    assert_eq!(server.security, SmtpSecurity::StartTls);
    assert_eq!(server.user.as_deref(), Some("menshen@school"));
    assert_eq!(server.password, Some(MailPassword(SECRET.to_owned())));
    assert!(!format!("{server:?}").contains(SECRET));
}

#[test]
fn mail_over_tls_and_plain_loopback_and_outbox() {
    let tls = valid(&with_base(
        "[mail]\nfrom = \"noreply@school.example\"\nsmtp_url = \"smtps://mail.school.example\"\n\
         timeout = \"30s\"\n",
    ))
    .mail
    .unwrap();
    assert_eq!(tls.timeout, Duration::from_secs(30));
    match tls.transport {
        MailTransport::Smtp(s) => {
            assert_eq!((s.port, s.security), (465, SmtpSecurity::Tls));
            assert!(s.user.is_none() && s.password.is_none());
        }
        other => panic!("{other:?}"),
    }
    let plain = valid(&with_base(
        "[mail]\nfrom = \"noreply@school.example\"\nsmtp_url = \"smtp://127.0.0.1:2525?tls=none\"\n",
    ))
    .mail
    .unwrap();
    match plain.transport {
        MailTransport::Smtp(s) => assert_eq!((s.port, s.security), (2525, SmtpSecurity::None)),
        other => panic!("{other:?}"),
    }
    let outbox = valid(&with_base(
        "[mail]\nfrom = \"noreply@school.example\"\noutbox = \"/tmp/outbox\"\n",
    ))
    .mail
    .unwrap();
    assert_eq!(
        outbox.transport,
        MailTransport::Outbox(std::path::PathBuf::from("/tmp/outbox"))
    );
}

#[test]
fn bad_mail_settings_are_reported_at_their_lines_without_the_password() {
    let (line, message) = one_error(&with_base(
        "[mail]\nfrom = \"noreply@school.example\"\n\
         smtp_url = \"smtp://u:${MENSHEN_DB_PASSWORD}@mail.school.example?tls=none\"\n",
    ));
    assert_eq!(line, 9);
    assert!(
        message.contains("only for a server on this machine"),
        "{message}"
    );
    let (line, message) = one_error(&with_base(
        "[mail]\nfrom = \"not an address\"\noutbox = \"/tmp/o\"\n",
    ));
    assert_eq!(line, 8);
    assert!(message.contains("`mail.from`"), "{message}");
    let (line, message) = one_error(&with_base(
        "[mail]\nfrom = \"a@b.example\"\nsmtp_url = \"http://mail.school.example\"\n",
    ));
    assert_eq!(line, 9);
    assert!(message.contains("smtp:// or smtps://"), "{message}");
    let (line, message) = one_error(&with_base("[mail]\nfrom = \"a@b.example\"\n"));
    assert_eq!(line, 7);
    assert!(message.contains("needs `smtp_url`"), "{message}");
    let all = errors(&with_base(
        "[mail]\nfrom = \"a@b.example\"\nsmtp_url = \"smtp://h\"\noutbox = \"/o\"\n\
         timeout = \"10m\"\nlink_base = \"https://login.school.example/path\"\n",
    ));
    let lines: Vec<usize> = all.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, vec![10, 11, 12], "{all:#?}");
    let (line, _) = one_error(&with_base("[mail]\noutbox = \"/o\"\n"));
    assert_eq!(line, 7);
}

#[test]
fn login_help_text() {
    let config = valid(&with_base(
        "[login]\nsupport = \"教務處 分機 123\"\nhelp = \"請於上班時間來電。\"\n",
    ));
    assert_eq!(config.login.help.as_deref(), Some("請於上班時間來電。"));
}

#[test]
fn a_site_may_have_a_display_name() {
    let config = valid(&format!(
        "{BASE}display_name = \"  屏東縣學籍管理系統 \"\n{OTP_TABLE}"
    ));
    assert_eq!(
        config.sites[0].display_name.as_deref(),
        Some("屏東縣學籍管理系統")
    );
    assert!(valid(BASE).sites[0].display_name.is_none());
    let (line, message) = one_error(&format!("{BASE}display_name = \"a\\nb\"\n{OTP_TABLE}"));
    assert_eq!(line, 7);
    assert!(message.contains("display_name"), "{message}");
}
