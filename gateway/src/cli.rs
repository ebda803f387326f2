//! The command line: `run`, `check-config`, `demo` and `account …`. Each command parses its
//! arguments, loads the config and hands over; no behaviour lives here.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use menshen_config::Config;
use menshen_policies::password::check_password;

use crate::accounts::{AccountStore, AddOutcome, KNOWN_ROLES, NewAccount};
use crate::clock;
use crate::passwords::hash_password_blocking;
use crate::random;

#[derive(Parser)]
#[command(
    name = "menshen",
    version,
    about = "Menshen (門神): a two-factor authentication gateway"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Run {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Check a configuration file and report every problem with its line.
    CheckConfig { file: PathBuf },
    /// Run a complete gateway in front of a demo legacy app, with no set-up.
    Demo {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Offer login with this OpenID Connect provider (its issuer URL), as "Google 帳號".
        /// Register `http://login.localhost:PORT/.menshen/oidc/google/callback` as its redirect
        /// URI (`http://LISTEN/…` with --single-host).
        #[arg(long, requires = "oidc_client_id")]
        oidc_issuer: Option<String>,
        #[arg(long)]
        oidc_client_id: Option<String>,
        /// The client secret; read from the environment variable MENSHEN_DEMO_OIDC_SECRET.
        #[arg(
            long,
            env = "MENSHEN_DEMO_OIDC_SECRET",
            hide_env_values = true,
            default_value = ""
        )]
        oidc_client_secret: String,
        /// Offer citizen certificate (自然人憑證) sign-in with the `[certificate]` table in
        /// this file (trust anchors, CRLs, component URL), as in a full configuration.
        #[arg(long)]
        certificate_config: Option<PathBuf>,
        /// Offer mobile citizen certificate (行動自然人憑證) sign-in with the
        /// `[mobile_certificate]` table in this file (the TW FidO stand-in writes one, with
        /// the `[certificate]` table that verifies its certificates).
        #[arg(long)]
        mobile_certificate_config: Option<PathBuf>,
        /// One demo app on any host name, with its own sign-in pages, instead of single
        /// sign-on (portal at login.localhost, apps at registry.localhost and hr.localhost).
        #[arg(long)]
        single_host: bool,
        /// Send mail (reset links, notices) through this SMTP server instead of writing
        /// .eml files to the demo's outbox (`smtp://127.0.0.1:2525?tls=none` for a local
        /// test server).
        #[arg(long)]
        smtp_url: Option<String>,
    },
    /// Make and rotate the keys that seal OTP secrets at rest.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Manage accounts in the configured database.
    Account {
        #[arg(long, short)]
        config: PathBuf,
        #[command(subcommand)]
        action: AccountAction,
    },
}

#[derive(Subcommand)]
enum KeysAction {
    /// Print a new random key entry `ID:BASE64KEY` for `[otp] keys`.
    Generate {
        #[arg(default_value = "k1")]
        id: String,
    },
    /// Re-seal every stored OTP secret with the first (primary) key of `[otp] keys`, after
    /// a new key was put first; the old key can be dropped afterwards.
    Reseal {
        #[arg(long, short)]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum AccountAction {
    /// Add one account. The password is read from standard input with --password-stdin,
    /// otherwise a random one is generated and printed once.
    Add {
        login_name: String,
        #[arg(long)]
        display_name: String,
        #[arg(long)]
        school: String,
        /// Comma-separated: aa (school administrator), staff.
        #[arg(long, default_value = "staff")]
        roles: String,
        #[arg(long, default_value = "")]
        email: String,
        /// Last four digits of the national ID (matched against a citizen certificate when
        /// `certificate.require_identity_match` is on).
        #[arg(long, default_value = "")]
        id_last4: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Import accounts from a CSV file with a header row:
    /// login_name,display_name,school_code,roles,email[,password][,id_last4].
    /// Every bad row is reported with its line, and then nothing is imported.
    Import { file: PathBuf },
    /// List accounts.
    List,
    /// Disable an account; its sessions end on every gateway within seconds.
    Disable { login_name: String },
    /// Enable a disabled account.
    Enable { login_name: String },
    /// Lift a suspension (after wrong passwords or OTP codes) before it ends by itself.
    Unlock { login_name: String },
    /// Remove every second-factor binding (the support desk's reset): the next password
    /// login must bind again. Ends the account's sessions when sessions are in Redis.
    ResetBinding { login_name: String },
    /// Set a new password (from standard input with --password-stdin, else generated).
    ResetPassword {
        login_name: String,
        #[arg(long)]
        password_stdin: bool,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Run { config } => load(&config).and_then(|c| crate::server::run(c, Vec::new())),
        Command::CheckConfig { file } => return check_config(&file),
        Command::Demo {
            listen,
            oidc_issuer,
            oidc_client_id,
            oidc_client_secret,
            certificate_config,
            mobile_certificate_config,
            single_host,
            smtp_url,
        } => {
            let oidc = match (oidc_issuer, oidc_client_id) {
                (Some(issuer), Some(client_id)) => Some(crate::demo::DemoOidc {
                    issuer,
                    client_id,
                    client_secret: oidc_client_secret,
                }),
                _ => None,
            };
            crate::demo::run(crate::demo::DemoOptions {
                listen: &listen,
                oidc: oidc.as_ref(),
                certificate_config: certificate_config.as_deref(),
                mobile_certificate_config: mobile_certificate_config.as_deref(),
                single_sign_on: !single_host,
                smtp_url: smtp_url.as_deref(),
            })
        }
        Command::Account { config, action } => load(&config).and_then(|c| account(&c, action)),
        Command::Keys {
            action: KeysAction::Generate { id },
        } => {
            let entry = menshen_otp::sealed::Keyring::generate_entry(&id);
            match menshen_otp::sealed::Keyring::parse(&entry) {
                Ok(_) => {
                    println!("{entry}");
                    Ok(())
                }
                Err(e) => Err(anyhow::anyhow!("{e}")),
            }
        }
        Command::Keys {
            action: KeysAction::Reseal { config },
        } => load(&config).and_then(|c| reseal(&c)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("menshen: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MENSHEN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn load(path: &Path) -> anyhow::Result<Config> {
    menshen_config::load(path).map_err(|errors| anyhow::anyhow!("invalid configuration:\n{errors}"))
}

fn check_config(path: &Path) -> ExitCode {
    match menshen_config::load(path) {
        Ok(config) => {
            let warnings = match certificate_warnings(&config) {
                Ok(w) => w,
                Err(problem) => {
                    eprintln!("{problem}");
                    eprintln!("{}: 1 problem(s)", path.display());
                    return ExitCode::FAILURE;
                }
            };
            for warning in &warnings {
                eprintln!("warning: {warning}");
            }
            if warnings.is_empty() {
                println!("{}: OK", path.display());
            } else {
                println!("{}: OK, {} warning(s)", path.display(), warnings.len());
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("{}: {} problem(s)", path.display(), errors.0.len());
            ExitCode::FAILURE
        }
    }
}

/// What a valid `[certificate]` table may still get wrong: a CA no configured CRL covers
/// (its certificates would all be refused), or a CRL source that cannot be loaded. Reads the
/// trust store and every CRL source once, URLs included. `Err`: a trust anchor or
/// intermediate that would stop the start.
fn certificate_warnings(config: &Config) -> Result<Vec<String>, String> {
    let Some(table) = config.certificate.clone() else {
        return Ok(Vec::new());
    };
    let certificates =
        crate::certificates::Certificates::new(table).map_err(|e| format!("{e:#}"))?;
    Ok(match runtime() {
        Ok(rt) => rt.block_on(certificates.coverage_warnings()),
        Err(e) => vec![format!("cannot check the CRL sources: {e}")],
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn read_password_stdin() -> anyhow::Result<String> {
    let mut s = String::new();
    std::io::stdin().read_to_string(&mut s)?;
    Ok(s.trim_end_matches(['\r', '\n']).to_string())
}

/// Checks a row's fields; the returned strings are the problems (empty = fine).
fn validate(new: &NewAccount, password: &str, config: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    let name = new.login_name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        problems.push("login name must have 1 to 64 characters".to_string());
    }
    if name
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == ',')
    {
        problems.push("login name must not contain spaces, commas or control characters".into());
    }
    if new.display_name.trim().is_empty() {
        problems.push("display name is empty".into());
    }
    if new.roles.is_empty() {
        problems.push("at least one role is needed (aa, staff)".into());
    }
    for r in &new.roles {
        if !KNOWN_ROLES.contains(&r.as_str()) {
            problems.push(format!(
                "unknown role {r:?} (known: {})",
                KNOWN_ROLES.join(", ")
            ));
        }
    }
    let digits = &new.id_last4;
    if !(digits.is_empty() || digits.len() == 4 && digits.bytes().all(|b| b.is_ascii_digit())) {
        problems.push("id_last4 must be empty or four digits".into());
    }
    if !new.email.is_empty() && !new.email.contains('@') {
        problems.push("email address has no @".into());
    }
    for p in check_password(password, name, &config.login.password_policy) {
        problems.push(format!("password: {p}"));
    }
    problems
}

fn split_roles(roles: &str) -> Vec<String> {
    roles
        .split(',')
        .map(|r| r.trim().to_ascii_lowercase())
        .filter(|r| !r.is_empty())
        .collect()
}

fn account(config: &Config, action: AccountAction) -> anyhow::Result<()> {
    let rt = runtime()?;
    rt.block_on(async {
        let store = AccountStore::connect(&config.store.database).await?;
        let result = account_action(config, &store, action).await;
        store.close().await;
        result
    })
}

async fn account_action(
    config: &Config,
    store: &AccountStore,
    action: AccountAction,
) -> anyhow::Result<()> {
    let now = clock::now_secs() as i64;
    match action {
        AccountAction::Add {
            login_name,
            display_name,
            school,
            roles,
            email,
            id_last4,
            password_stdin,
        } => {
            let (password, generated) = if password_stdin {
                (read_password_stdin()?, false)
            } else {
                (random::readable_password(16), true)
            };
            let mut new = NewAccount {
                login_name,
                display_name,
                school_code: school,
                roles: split_roles(&roles),
                email,
                password_hash: String::new(),
                id_last4,
            };
            let problems = validate(&new, &password, config);
            if !problems.is_empty() {
                anyhow::bail!("account not added:\n  {}", problems.join("\n  "));
            }
            new.password_hash = hash_password_blocking(&password)?;
            match store.add(&new, now).await? {
                AddOutcome::Added(_) => {
                    println!("added {}", new.login_name.trim());
                    if generated {
                        println!("password: {password}");
                    }
                    Ok(())
                }
                AddOutcome::NameTaken => {
                    anyhow::bail!("login name {:?} is already taken", new.login_name.trim())
                }
            }
        }
        AccountAction::Import { file } => import(config, store, &file, now).await,
        AccountAction::List => {
            println!(
                "{:<24} {:<16} {:<10} {:<12} {:<8} email",
                "login_name", "display_name", "school", "roles", "enabled"
            );
            for a in store.list().await? {
                println!(
                    "{:<24} {:<16} {:<10} {:<12} {:<8} {}",
                    a.login_name,
                    a.display_name,
                    a.school_code,
                    a.roles.join(","),
                    if a.enabled { "yes" } else { "no" },
                    a.email
                );
            }
            Ok(())
        }
        AccountAction::Disable { login_name } => set_enabled(store, &login_name, false, now).await,
        AccountAction::Unlock { login_name } => {
            let Some(account) = store.unlock(&login_name, now).await? else {
                anyhow::bail!("no account named {login_name:?}");
            };
            if let Some((_, regulation)) = shared_stores(config)? {
                regulation
                    .unlock(&account.login_name)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            cli_activity(store, &account, "unlock", "").await?;
            println!("unlocked {}", account.login_name);
            Ok(())
        }
        AccountAction::ResetBinding { login_name } => {
            let Some(account) = store.find_by_login(&login_name).await? else {
                anyhow::bail!("no account named {login_name:?}");
            };
            store.reset_bindings(&account.id).await?;
            store.end_sessions_before(&account.id, now).await?;
            if let Some((sessions, _)) = shared_stores(config)? {
                sessions
                    .destroy_account(&account.id)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            cli_activity(
                store,
                &account,
                "unbind",
                "all second factors reset by the support desk",
            )
            .await?;
            println!(
                "second factors of {} reset: the next login must bind again",
                account.login_name
            );
            Ok(())
        }
        AccountAction::Enable { login_name } => set_enabled(store, &login_name, true, now).await,
        AccountAction::ResetPassword {
            login_name,
            password_stdin,
        } => {
            let (password, generated) = if password_stdin {
                (read_password_stdin()?, false)
            } else {
                (random::readable_password(16), true)
            };
            let problems = check_password(&password, &login_name, &config.login.password_policy);
            if !problems.is_empty() {
                let list: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
                anyhow::bail!("password not accepted: {}", list.join("; "));
            }
            let hash = hash_password_blocking(&password)?;
            let Some(account) = store.find_by_login(&login_name).await? else {
                anyhow::bail!("no account named {login_name:?}");
            };
            store.set_password_hash(&login_name, &hash, now).await?;
            // Every session that began before the reset ends, on every instance.
            store.end_sessions_before(&account.id, now).await?;
            cli_activity(store, &account, "reset_password", "").await?;
            println!("password reset for {login_name}");
            if generated {
                println!("password: {password}");
            }
            Ok(())
        }
    }
}

/// Re-seals every OTP secret under the primary key.
fn reseal(config: &Config) -> anyhow::Result<()> {
    let keyring = menshen_otp::sealed::Keyring::parse(&config.otp.keys)
        .map_err(|e| anyhow::anyhow!("otp.keys: {e}"))?;
    runtime()?.block_on(async {
        let store = AccountStore::connect(&config.store.database).await?;
        let mut changed = 0;
        for (account_id, sealed) in store.all_otp_secrets().await? {
            if !keyring.needs_reseal(&sealed) {
                continue;
            }
            let plain = keyring
                .open(&sealed, account_id.as_bytes())
                .map_err(|e| anyhow::anyhow!("an OTP secret cannot be opened: {e}"))?;
            store
                .replace_otp_secret(&account_id, &keyring.seal(&plain, account_id.as_bytes()))
                .await?;
            changed += 1;
        }
        store.close().await;
        println!(
            "re-sealed {changed} OTP secret(s) with key {}",
            keyring.primary_id()
        );
        anyhow::Ok(())
    })
}

/// When sessions and counters are in Redis, the CLI reaches them directly (immediate effect);
/// the database records the change in any case, and every gateway instance reads it within
/// seconds (`sessions_not_before`, `unlocked_at`).
fn shared_stores(
    config: &Config,
) -> anyhow::Result<Option<(crate::sessions::Sessions, crate::regulation::Regulation)>> {
    if config.store.redis.is_none() {
        return Ok(None);
    }
    let (sessions, volatile) = crate::server::stores(config)?;
    Ok(Some((
        crate::sessions::Sessions::new(
            sessions,
            config.session.idle_timeout,
            config.session.absolute_timeout,
        ),
        crate::regulation::Regulation::new(volatile, config.lockout.clone()),
    )))
}

async fn cli_activity(
    store: &AccountStore,
    account: &crate::accounts::Account,
    event: &str,
    detail: &str,
) -> anyhow::Result<()> {
    store
        .record_activity(&crate::accounts::Activity {
            account_id: Some(account.id.clone()),
            login_name: account.login_name.clone(),
            event: event.to_string(),
            method: "cli".to_string(),
            outcome: "success".to_string(),
            client_ip: String::new(),
            user_agent: "menshen account".to_string(),
            detail: detail.to_string(),
            at: clock::now_secs() as i64,
        })
        .await
}

async fn set_enabled(
    store: &AccountStore,
    name: &str,
    enabled: bool,
    now: i64,
) -> anyhow::Result<()> {
    if !store.set_enabled(name, enabled, now).await? {
        anyhow::bail!("no account named {name:?}");
    }
    println!("{} {name}", if enabled { "enabled" } else { "disabled" });
    Ok(())
}

const CSV_COLUMNS: &[&str] = &[
    "login_name",
    "display_name",
    "school_code",
    "roles",
    "email",
];

async fn import(
    config: &Config,
    store: &AccountStore,
    file: &Path,
    now: i64,
) -> anyhow::Result<()> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .trim(csv::Trim::All)
        .from_path(file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let headers = reader
        .headers()
        .with_context(|| format!("{}:1: cannot read the header row", file.display()))?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let missing: Vec<&str> = CSV_COLUMNS
        .iter()
        .copied()
        .filter(|c| col(c).is_none())
        .collect();
    if !missing.is_empty() {
        anyhow::bail!(
            "{}:1: missing column(s): {}",
            file.display(),
            missing.join(", ")
        );
    }
    let password_col = col("password");
    let mut problems = Vec::new();
    let mut rows: Vec<(u64, NewAccount, String, bool)> = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                problems.push(format!("{}:{line}: {e}", file.display()));
                continue;
            }
        };
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let field = |name: &str| {
            col(name)
                .and_then(|i| record.get(i))
                .unwrap_or("")
                .to_string()
        };
        let (password, generated) = match password_col
            .and_then(|i| record.get(i))
            .filter(|p| !p.is_empty())
        {
            Some(p) => (p.to_string(), false),
            None => (random::readable_password(16), true),
        };
        let new = NewAccount {
            login_name: field("login_name"),
            display_name: field("display_name"),
            school_code: field("school_code"),
            roles: split_roles(&field("roles")),
            email: field("email"),
            password_hash: String::new(),
            id_last4: field("id_last4"),
        };
        for p in validate(&new, &password, config) {
            problems.push(format!("{}:{line}: {p}", file.display()));
        }
        let key = menshen_policies::canonical_login_name(&new.login_name);
        if let Some(first) = seen.insert(key, line) {
            problems.push(format!(
                "{}:{line}: login name repeats line {first}",
                file.display()
            ));
        }
        rows.push((line, new, password, generated));
    }
    if !problems.is_empty() {
        anyhow::bail!(
            "nothing imported; fix these rows and import again:\n{}",
            problems.join("\n")
        );
    }
    let mut hashed = Vec::with_capacity(rows.len());
    for (_, new, password, _) in &rows {
        let mut new = new.clone();
        new.password_hash = hash_password_blocking(password)?;
        hashed.push(new);
    }
    let outcomes = store.add_all(&hashed, now).await?;
    let taken: Vec<String> = rows
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| **o == AddOutcome::NameTaken)
        .map(|((line, new, _, _), _)| {
            format!(
                "{}:{line}: login name {:?} is already taken",
                file.display(),
                new.login_name
            )
        })
        .collect();
    if !taken.is_empty() {
        anyhow::bail!(
            "nothing imported; fix these rows and import again:\n{}",
            taken.join("\n")
        );
    }
    println!("imported {} account(s)", rows.len());
    for (_, new, password, generated) in &rows {
        if *generated {
            println!("{}\tpassword: {password}", new.login_name);
        }
    }
    Ok(())
}
