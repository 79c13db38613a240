//! `aerie`: the command line of the Aerie plugin platform.
//!
//! Every subcommand is a thin layer over `aerie-core`; this file only parses arguments and
//! turns errors into messages and exit codes, in one place.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod build;
mod inspect;
mod keys;
mod new;
mod output;

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
    }
}
