//! `aerie`: the command line of the Aerie plugin platform.
//!
//! Every subcommand is a thin layer over `aerie-core`; this file only parses arguments and
//! turns errors into messages and exit codes, in one place.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

// The server allocates for every request; mimalloc keeps that cheap under many threads.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod build;
mod certify;
mod dev;
mod inspect;
mod keys;
mod new;
mod output;
mod registry;
mod server;
mod spaces;
mod telemetry;

/// Aerie: build, publish and run WebAssembly plugins.
///
/// A plugin is a WebAssembly component with a manifest (`aerie.toml`), packaged as one
/// signed archive. Start with:
///
///   aerie plugin new acme/hello     create a plugin project
///   aerie plugin build              build it into a package
///   aerie plugin inspect FILE       see what a package contains and may do
///   aerie key generate              make a signing key
///   aerie plugin sign FILE --key aerie.key
///
/// Run a registry with `aerie serve`, then `aerie login`, `aerie publish FILE`,
/// `aerie download NAME`. Put plugins to work in a space:
///
///   aerie space create team
///   aerie install examples/greeter-client --space team
///   aerie secret set examples/greeter-client access-token --space team
///   aerie status --space team
#[derive(Parser)]
#[command(
    name = "aerie",
    version,
    about,
    long_about,
    verbatim_doc_comment,
    max_term_width = 100
)]
struct Cli {
    /// The registry to talk to [default: AERIE_REGISTRY, the one you logged in to, or
    /// http://127.0.0.1:7878].
    #[arg(long, global = true, value_name = "URL")]
    registry: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create, build, inspect, sign and verify plugin packages.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Run a registry: the HTTP API over a database and package storage.
    ///
    /// Embedded defaults need nothing: SQLite and packages under ./aerie-data. Configure with
    /// a TOML file and AERIE_* variables (AERIE_LISTEN, AERIE_DATA_DIR, AERIE_DATABASE_URL for
    /// PostgreSQL, AERIE_BLOB_STORE=s3 with AERIE_S3_BUCKET ...). The first start creates the
    /// administrator `admin`, with AERIE_ADMIN_PASSWORD or a generated password printed once.
    Serve(ConfigArgs),
    /// Develop a plugin: build the project in DIR, serve it on a local host at
    /// /s/default/NAMESPACE/NAME/, and rebuild and swap it in whenever its files change.
    Dev(DevArgs),
    /// Run a registry and serve plugin packages from files, each at
    /// /s/default/NAMESPACE/NAME/ (with the settings of `aerie serve`).
    Run(RunArgs),
    /// Remove package blobs that no version refers to (left by failed publishes).
    Gc(GcArgs),
    /// Back up a server on SQLite while it serves: a snapshot of its database, the package
    /// blobs the snapshot refers to, its key files and a manifest with their digests. Or,
    /// with `verify`, check a backup. (On PostgreSQL use pg_dump and the bucket's
    /// versioning: see docs/deploy.md.)
    Backup(BackupArgs),
    /// Restore a backup into an empty data directory (and an empty blob store), checking it
    /// first.
    Restore(RestoreArgs),
    /// Ask a URL (http://HOST:PORT/PATH) and succeed only if it answers 2xx within five
    /// seconds: a health check for images without curl (`aerie probe
    /// http://127.0.0.1:7878/readyz`).
    Probe(ProbeArgs),
    /// Log in to a registry: creates an API token and stores it (mode 0600) in your
    /// configuration directory. The password comes from AERIE_PASSWORD or a prompt.
    Login(LoginArgs),
    /// Publish a package; its signature PACKAGE.minisig is sent along when it exists.
    Publish(PublishArgs),
    /// Search the catalogue: typos and prefixes are forgiven.
    Search(SearchCommandArgs),
    /// Rate a plugin (1 to 5 stars) with an optional review; yours replaces your earlier one.
    Review(ReviewArgs),
    /// A plugin's downloads per day and its active installations.
    Stats(StatsArgs),
    /// The audit log, newest first (administrators): who changed what, when and from where,
    /// filtered by actor, action, target and time; every matching entry with --json-lines.
    Audit(AuditArgs),
    /// Certification of versions: publishers submit them; administrators review, certify
    /// (the registry signs) or reject them; spaces can require it.
    #[command(subcommand)]
    Certify(CertifyCommand),
    /// Show a plugin and its versions, or one version (NAME@VERSION).
    Info(InfoArgs),
    /// Yank a version (NAME@VERSION): new resolutions skip it; exact downloads still work.
    Yank(SpecArgs),
    /// Undo a yank.
    Unyank(SpecArgs),
    /// Download a package, verifying its digest and signature. NAME@VERSION takes that
    /// version; NAME or NAME@REQUIREMENT resolves to the newest version not yanked.
    Download(DownloadArgs),
    /// Create, list and revoke API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Your account: change your password, see or end your browser sessions.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Manage namespaces.
    #[command(subcommand)]
    Namespace(NamespaceCommand),
    /// Create, list and delete spaces; manage their members; show their lockfile.
    #[command(subcommand)]
    Space(SpaceCommand),
    /// Install a plugin (NAME or NAME@REQUIREMENT) and what it depends on in a space, after
    /// showing the permissions it needs and asking to accept them.
    Install(InstallArgs),
    /// Update a plugin to the newest version its requirement (or --to) allows. If the new
    /// version does not start, the old one keeps serving.
    Update(UpdateArgs),
    /// Return a plugin to its version before the last update.
    Rollback(PluginArgs),
    /// Uninstall a plugin, and the dependencies nothing else needs.
    Uninstall(UninstallArgs),
    /// Stop serving a plugin, keeping it installed.
    Disable(PluginArgs),
    /// Serve a disabled plugin again.
    Enable(PluginArgs),
    /// Show or replace an installation's config.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Set or remove an installation's secrets. Values are read from standard input or a
    /// prompt, never from the command line.
    #[command(subcommand)]
    Secret(SecretCommand),
    /// The plugins installed in a space.
    List(ListArgs),
    /// Each installation's status, health, endpoint and missing secrets; with a plugin, its
    /// history too.
    Status(StatusArgs),
    /// Server administration.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Args)]
struct AuditArgs {
    /// Only entries by this user.
    #[arg(long)]
    actor: Option<String>,
    /// Only entries with this action, like `version.publish`.
    #[arg(long)]
    action: Option<String>,
    /// Only entries whose target starts with this, like `plugin:acme/`.
    #[arg(long)]
    target: Option<String>,
    /// Only entries at or after this time (RFC 3339, like 2026-12-01T00:00:00Z).
    #[arg(long)]
    since: Option<String>,
    /// Only entries before this time (RFC 3339).
    #[arg(long)]
    until: Option<String>,
    /// At most this many entries (the newest).
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Print every matching entry as one JSON object a line, oldest last, paging through the
    /// whole log (for export); --limit does not apply.
    #[arg(long)]
    json_lines: bool,
}

#[derive(Args)]
struct StatsArgs {
    /// The plugin.
    name: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ReviewArgs {
    /// The plugin.
    name: String,
    /// 1 to 5.
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..=5))]
    stars: i64,
    /// What you have to say about it.
    #[arg(long)]
    text: Option<String>,
}

#[derive(Args)]
struct SearchCommandArgs {
    /// Words to look for; every plugin when absent.
    query: Vec<String>,
    /// Only this category.
    #[arg(long)]
    category: Option<String>,
    /// Only this tag.
    #[arg(long)]
    tag: Option<String>,
    /// relevance, downloads, rating, updated or newest.
    #[arg(long)]
    sort: Option<String>,
    /// The page of results, from 1.
    #[arg(long)]
    page: Option<usize>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum CertifyCommand {
    /// Ask for NAME@VERSION to be certified (its namespace's maintainers).
    Submit {
        /// NAME@VERSION.
        version: String,
        /// A note for the reviewers.
        #[arg(long)]
        note: Option<String>,
    },
    /// Take a submitted version into review (administrators).
    Review {
        /// NAME@VERSION.
        version: String,
        /// A note kept with the step.
        #[arg(long)]
        note: Option<String>,
    },
    /// Certify a version in review: the registry signs it (administrators).
    Approve {
        /// NAME@VERSION.
        version: String,
        /// A note kept with the certification.
        #[arg(long)]
        note: Option<String>,
    },
    /// Reject a version, or withdraw its certification (administrators).
    Reject {
        /// NAME@VERSION.
        version: String,
        /// Why; the publisher reads it.
        #[arg(long)]
        reason: String,
    },
    /// Show a version's certification and history, checking the registry's signature.
    Status {
        /// NAME@VERSION.
        version: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The versions in a state, longest waiting first (administrators).
    Queue {
        /// submitted, in_review, certified, rejected or all.
        #[arg(long, default_value = "submitted")]
        state: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct SpaceArg {
    /// The space [default: AERIE_SPACE].
    #[arg(long, short, env = "AERIE_SPACE")]
    space: String,
}

#[derive(Subcommand)]
enum SpaceCommand {
    /// Create a space; you become its owner.
    Create {
        /// Its name: lowercase letters, digits and `-`.
        name: String,
    },
    /// The spaces you belong to.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List members, or add, change (--add USER --role ROLE) or remove (--remove USER) one.
    Members {
        /// The space.
        name: String,
        /// A user to add or give a new role.
        #[arg(long, requires = "role")]
        add: Option<String>,
        /// owner, admin, member or viewer.
        #[arg(long)]
        role: Option<String>,
        /// A user to remove.
        #[arg(long, conflicts_with = "add")]
        remove: Option<String>,
    },
    /// Delete a space with its plugins and all their data.
    Delete {
        /// The space.
        name: String,
        /// Confirm.
        #[arg(long)]
        yes: bool,
    },
    /// Print the space's lockfile: every plugin at its resolved version and digest.
    Lockfile {
        /// The space.
        name: String,
    },
    /// Set the space's trust policy (owners): with --require-certified true it installs and
    /// runs only versions the registry certified; with --require-signed true only versions
    /// signed by a key registered on their namespace. An option left out keeps its setting.
    Policy {
        /// The space.
        name: String,
        /// true or false.
        #[arg(long, action = clap::ArgAction::Set)]
        require_certified: Option<bool>,
        /// true or false.
        #[arg(long, action = clap::ArgAction::Set)]
        require_signed: Option<bool>,
    },
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Change your password (asked for twice; the current one too). Every browser session of
    /// yours ends; API tokens keep working.
    Password,
    /// List your browser sessions: where and when each began, when it was last used.
    Sessions,
    /// Sign out everywhere: end every browser session of yours.
    SignOutEverywhere,
}

#[derive(Args)]
struct InstallArgs {
    /// NAME or NAME@REQUIREMENT (like examples/hello@^1.2).
    plugin: String,
    #[command(flatten)]
    space: SpaceArg,
    /// Its config: JSON, or @FILE.
    #[arg(long)]
    config: Option<String>,
    /// Accept the permissions it needs without asking.
    #[arg(long, short)]
    yes: bool,
}

#[derive(Args)]
struct UpdateArgs {
    /// The plugin.
    plugin: String,
    #[command(flatten)]
    space: SpaceArg,
    /// A new version requirement.
    #[arg(long)]
    to: Option<String>,
    /// Accept new permissions without asking.
    #[arg(long, short)]
    yes: bool,
}

#[derive(Args)]
struct PluginArgs {
    /// The plugin.
    plugin: String,
    #[command(flatten)]
    space: SpaceArg,
}

#[derive(Args)]
struct UninstallArgs {
    /// The plugin.
    plugin: String,
    #[command(flatten)]
    space: SpaceArg,
    /// Keep its key-value data for a later reinstall.
    #[arg(long)]
    keep_data: bool,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Replace the config (the plugin restarts with it; a config it rejects is not kept).
    Set {
        /// The plugin.
        plugin: String,
        /// The whole config: JSON, or @FILE.
        config: String,
        #[command(flatten)]
        space: SpaceArg,
    },
    /// Print the config.
    Get {
        /// The plugin.
        plugin: String,
        #[command(flatten)]
        space: SpaceArg,
    },
}

#[derive(Subcommand)]
enum SecretCommand {
    /// Set a secret; the value comes from standard input or a prompt.
    Set {
        /// The plugin.
        plugin: String,
        /// The secret's name, as the plugin declares it.
        name: String,
        #[command(flatten)]
        space: SpaceArg,
    },
    /// Remove a secret.
    Remove {
        /// The plugin.
        plugin: String,
        /// The secret's name.
        name: String,
        #[command(flatten)]
        space: SpaceArg,
    },
}

#[derive(Args)]
struct ListArgs {
    #[command(flatten)]
    space: SpaceArg,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct StatusArgs {
    /// One plugin (with its history); every installation when absent.
    plugin: Option<String>,
    #[command(flatten)]
    space: SpaceArg,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Re-wrap every space's data key with a new master key, then retire the old key.
    RotateMasterKey,
    /// Print a new master key (for AERIE_MASTER_KEY); the server is not contacted.
    GenerateMasterKey,
}

#[derive(Args)]
struct DevArgs {
    /// The plugin project (the directory with aerie.toml and Cargo.toml).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1:7878")]
    listen: std::net::SocketAddr,
    /// The cargo profile to build with.
    #[arg(long, default_value = "release")]
    profile: String,
}

#[derive(Args)]
struct RunArgs {
    /// Package files (`.aerie`) to run.
    #[arg(required = true)]
    packages: Vec<PathBuf>,
    /// A TOML configuration file.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Address to listen on (instead of the configuration's).
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Data directory (instead of the configuration's).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(Args)]
struct ConfigArgs {
    /// A TOML configuration file.
    #[arg(long, short)]
    config: Option<PathBuf>,
}

#[derive(Args)]
struct GcArgs {
    /// A TOML configuration file.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Keep unreferenced blobs younger than this: a publish in progress owns them, and a
    /// backup may be copying them (keep it longer than any backup takes).
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    grace: std::time::Duration,
    /// Only report what would be removed.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct BackupArgs {
    #[command(subcommand)]
    check: Option<BackupCommand>,
    /// Where to write the backup: a directory that is empty or does not exist.
    #[arg(required = true)]
    dir: Option<PathBuf>,
    /// A TOML configuration file.
    #[arg(long, short)]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum BackupCommand {
    /// Read a backup whole: every file and package has the digest its manifest says, and
    /// every version in its database has its package.
    Verify {
        /// The backup's directory.
        dir: PathBuf,
    },
}

#[derive(Args)]
struct ProbeArgs {
    /// The URL, plain HTTP.
    url: String,
}

#[derive(Args)]
struct RestoreArgs {
    /// The backup's directory.
    dir: PathBuf,
    /// A TOML configuration file (the data directory restored into, its blob store and key
    /// file paths).
    #[arg(long, short)]
    config: Option<PathBuf>,
}

#[derive(Args)]
struct LoginArgs {
    /// Your user name.
    #[arg(long, short, default_value = "admin")]
    username: String,
    /// Give the token the `admin` scope too (administrators: certification, master key
    /// rotation, audit log). Without it, an administrator's token acts as any publisher's.
    #[arg(long)]
    admin: bool,
}

#[derive(Args)]
struct PublishArgs {
    /// The package [default: the one `aerie plugin build` wrote for the project here].
    package: Option<PathBuf>,
    /// The signature file [default: PACKAGE.minisig, if it exists].
    #[arg(long)]
    signature: Option<PathBuf>,
}

#[derive(Args)]
struct InfoArgs {
    /// NAME or NAME@VERSION.
    spec: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct SpecArgs {
    /// NAME@VERSION.
    spec: String,
}

#[derive(Args)]
struct DownloadArgs {
    /// NAME, NAME@VERSION or NAME@REQUIREMENT.
    spec: String,
    /// Where to write it [default: NAMESPACE-NAME-VERSION.aerie].
    #[arg(long, short)]
    output: Option<PathBuf>,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token (asks for your password; tokens cannot create tokens) and print it.
    Create {
        /// A label for it.
        name: String,
        /// What it may do: publish, yank, read-private, download, admin.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// Limit it to a namespace (repeatable).
        #[arg(long = "namespace")]
        namespaces: Vec<String>,
        /// Days until it expires.
        #[arg(long)]
        expires_days: Option<u32>,
    },
    /// List your tokens.
    List,
    /// Revoke a token by id.
    Revoke {
        /// The token's id, from `aerie token list`.
        id: i64,
    },
}

#[derive(Subcommand)]
enum NamespaceCommand {
    /// Create a namespace you own.
    Create {
        /// Its name.
        name: String,
        /// Only members see it.
        #[arg(long)]
        private: bool,
        /// Accept unsigned versions (signatures are required by default).
        #[arg(long)]
        allow_unsigned: bool,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Create a new plugin project that builds as generated.
    New(NewArgs),
    /// Build the plugin project into a package (runs cargo for wasm32-wasip2).
    Build(BuildArgs),
    /// Show a package's manifest, files, imports with the permission each needs, and exports.
    Inspect(InspectArgs),
    /// Sign a package with your secret key, writing a minisign signature beside it.
    Sign(SignArgs),
    /// Check a package's signature against a publisher's public key.
    Verify(VerifyArgs),
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Generate a signing key pair (minisign format).
    Generate(GenerateArgs),
    /// Register a public key on a namespace, so versions it signs are accepted.
    Add {
        /// The namespace.
        namespace: String,
        /// The public key file.
        #[arg(long, default_value = "aerie.pub")]
        public_key: PathBuf,
    },
}

/// The kind of plugin `aerie plugin new` sets up.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Template {
    /// An HTTP endpoint with typed config.
    Http,
    /// A service other plugins call, with lifecycle hooks.
    Service,
    /// Lifecycle hooks only: the smallest valid plugin.
    Minimal,
}

#[derive(Args)]
struct NewArgs {
    /// The plugin's name, `namespace/name` (lowercase letters, digits and `-`).
    name: String,
    /// What the plugin starts as.
    #[arg(long, value_enum, default_value_t = Template::Http)]
    template: Template,
    /// The directory to create [default: the name part of NAME].
    #[arg(long)]
    path: Option<PathBuf>,
    /// Use the Aerie SDK from this directory instead of the one this `aerie` was built with.
    #[arg(long, value_name = "DIR")]
    sdk_path: Option<PathBuf>,
}

#[derive(Args)]
struct BuildArgs {
    /// The plugin project's directory.
    #[arg(long, default_value = ".")]
    path: PathBuf,
    /// Where to write the package [default: TARGET_DIR/aerie/NAMESPACE-NAME-VERSION.aerie].
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// The cargo profile to build with.
    #[arg(long, default_value = "release")]
    profile: String,
    /// Print only the package's path, digest and size as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct InspectArgs {
    /// The package file.
    package: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct SignArgs {
    /// The package file.
    package: PathBuf,
    /// Your secret key file. An encrypted key's password is read from AERIE_KEY_PASSWORD or
    /// asked for.
    #[arg(long)]
    key: PathBuf,
    /// Where to write the signature [default: PACKAGE.minisig].
    #[arg(long, short)]
    output: Option<PathBuf>,
}

#[derive(Args)]
struct VerifyArgs {
    /// The package file.
    package: PathBuf,
    /// The publisher's public key: a minisign `.pub` file.
    #[arg(long)]
    public_key: PathBuf,
    /// The signature file [default: PACKAGE.minisig].
    #[arg(long)]
    signature: Option<PathBuf>,
}

#[derive(Args)]
struct GenerateArgs {
    /// Path of the key files without extension: writes OUTPUT.key and OUTPUT.pub.
    #[arg(long, short, default_value = "aerie")]
    output: PathBuf,
    /// Encrypt the secret key with a password, read from AERIE_KEY_PASSWORD or asked for.
    #[arg(long)]
    encrypt: bool,
    /// Replace existing key files.
    #[arg(long)]
    force: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // A closed pipe (`aerie plugin inspect x | head`) is not an error worth reporting.
            if let Some(io) = err.downcast_ref::<std::io::Error>()
                && io.kind() == std::io::ErrorKind::BrokenPipe
            {
                return ExitCode::SUCCESS;
            }
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "error: {err}");
            for cause in err.chain().skip(1) {
                let _ = writeln!(stderr, "  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let target = registry::Target {
        registry: cli.registry,
    };
    match cli.command {
        Command::Plugin(PluginCommand::New(args)) => {
            new::run(&args.name, args.template, args.path, args.sdk_path)
        }
        Command::Plugin(PluginCommand::Build(args)) => {
            build::run(&args.path, &args.profile, args.output, args.json)
        }
        Command::Plugin(PluginCommand::Inspect(args)) => inspect::run(&args.package, args.json),
        Command::Plugin(PluginCommand::Sign(args)) => {
            keys::sign(&args.package, &args.key, args.output)
        }
        Command::Plugin(PluginCommand::Verify(args)) => {
            keys::verify(&args.package, &args.public_key, args.signature)
        }
        Command::Key(KeyCommand::Generate(args)) => {
            keys::generate(&args.output, args.encrypt, args.force)
        }
        Command::Key(KeyCommand::Add {
            namespace,
            public_key,
        }) => registry::key_add(&target, &namespace, &public_key),
        Command::Serve(args) => server::serve(args.config.as_deref()),
        Command::Dev(args) => dev::dev(&args.dir, args.listen, &args.profile),
        Command::Run(args) => server::run(
            args.config.as_deref(),
            &args.packages,
            args.listen,
            args.data_dir,
        ),
        Command::Gc(args) => server::gc(args.config.as_deref(), args.grace, args.dry_run),
        Command::Backup(BackupArgs {
            check: Some(BackupCommand::Verify { dir }),
            ..
        }) => server::verify_backup(&dir),
        Command::Backup(args) => server::backup(
            args.config.as_deref(),
            &args.dir.expect("clap requires the directory"),
        ),
        Command::Restore(args) => server::restore(args.config.as_deref(), &args.dir),
        Command::Probe(args) => server::probe(&args.url),
        Command::Login(args) => registry::login(&target, &args.username, args.admin),
        Command::Publish(args) => {
            let package = match args.package {
                Some(package) => package,
                None => build::default_package_path(std::path::Path::new("."))?,
            };
            registry::publish(&target, &package, args.signature)
        }
        Command::Search(args) => registry::search(
            &target,
            registry::SearchArgs {
                query: args.query,
                category: args.category,
                tag: args.tag,
                sort: args.sort,
                page: args.page,
                json: args.json,
            },
        ),
        Command::Stats(args) => registry::stats(&target, &args.name, args.json),
        Command::Audit(args) => registry::audit(
            &target,
            &registry::AuditFilter {
                actor: args.actor,
                action: args.action,
                target: args.target,
                since: args.since,
                until: args.until,
            },
            args.limit,
            args.json_lines,
        ),
        Command::Review(args) => registry::review(&target, &args.name, args.stars, args.text),
        Command::Info(args) => registry::info(&target, &args.spec, args.json),
        Command::Yank(args) => registry::set_yanked(&target, &args.spec, true),
        Command::Unyank(args) => registry::set_yanked(&target, &args.spec, false),
        Command::Download(args) => registry::download(&target, &args.spec, args.output),
        Command::Token(TokenCommand::Create {
            name,
            scopes,
            namespaces,
            expires_days,
        }) => registry::token_create(
            &target,
            registry::NewToken {
                name,
                scopes,
                namespaces,
                expires_in_days: expires_days,
            },
        ),
        Command::Token(TokenCommand::List) => registry::token_list(&target),
        Command::Account(AccountCommand::Password) => registry::change_password(&target),
        Command::Account(AccountCommand::Sessions) => registry::sessions(&target),
        Command::Account(AccountCommand::SignOutEverywhere) => {
            registry::sign_out_everywhere(&target)
        }
        Command::Token(TokenCommand::Revoke { id }) => registry::token_revoke(&target, id),
        Command::Namespace(NamespaceCommand::Create {
            name,
            private,
            allow_unsigned,
        }) => registry::namespace_create(&target, &name, private, allow_unsigned),
        Command::Space(SpaceCommand::Create { name }) => spaces::create(&target, &name),
        Command::Space(SpaceCommand::List { json }) => spaces::list_spaces(&target, json),
        Command::Space(SpaceCommand::Members {
            name,
            add,
            role,
            remove,
        }) => spaces::members(
            &target,
            &name,
            add.as_deref(),
            role.as_deref(),
            remove.as_deref(),
        ),
        Command::Space(SpaceCommand::Delete { name, yes }) => spaces::delete(&target, &name, yes),
        Command::Space(SpaceCommand::Lockfile { name }) => spaces::lockfile(&target, &name),
        Command::Space(SpaceCommand::Policy {
            name,
            require_certified,
            require_signed,
        }) => spaces::policy(&target, &name, require_certified, require_signed),
        Command::Certify(command) => match command {
            CertifyCommand::Submit { version, note } => {
                certify::step(&target, &version, "submit", note)
            }
            CertifyCommand::Review { version, note } => {
                certify::step(&target, &version, "start_review", note)
            }
            CertifyCommand::Approve { version, note } => {
                certify::step(&target, &version, "certify", note)
            }
            CertifyCommand::Reject { version, reason } => {
                certify::step(&target, &version, "reject", Some(reason))
            }
            CertifyCommand::Status { version, json } => certify::status(&target, &version, json),
            CertifyCommand::Queue { state, json } => certify::queue(&target, &state, json),
        },
        Command::Install(args) => spaces::install(
            &target,
            &args.space.space,
            &args.plugin,
            args.config.as_deref(),
            args.yes,
        ),
        Command::Update(args) => {
            spaces::update(&target, &args.space.space, &args.plugin, args.to, args.yes)
        }
        Command::Rollback(args) => spaces::rollback(&target, &args.space.space, &args.plugin),
        Command::Uninstall(args) => {
            spaces::uninstall(&target, &args.space.space, &args.plugin, args.keep_data)
        }
        Command::Disable(args) => {
            spaces::set_enabled(&target, &args.space.space, &args.plugin, false)
        }
        Command::Enable(args) => {
            spaces::set_enabled(&target, &args.space.space, &args.plugin, true)
        }
        Command::Config(ConfigCommand::Set {
            plugin,
            config,
            space,
        }) => spaces::config_set(&target, &space.space, &plugin, &config),
        Command::Config(ConfigCommand::Get { plugin, space }) => {
            spaces::config_get(&target, &space.space, &plugin)
        }
        Command::Secret(SecretCommand::Set {
            plugin,
            name,
            space,
        }) => spaces::secret_set(&target, &space.space, &plugin, &name),
        Command::Secret(SecretCommand::Remove {
            plugin,
            name,
            space,
        }) => spaces::secret_remove(&target, &space.space, &plugin, &name),
        Command::List(args) => spaces::list(&target, &args.space.space, args.json),
        Command::Status(args) => spaces::status(
            &target,
            &args.space.space,
            args.plugin.as_deref(),
            args.json,
        ),
        Command::Admin(AdminCommand::RotateMasterKey) => spaces::rotate_master_key(&target),
        Command::Admin(AdminCommand::GenerateMasterKey) => spaces::generate_master_key(),
    }
}
