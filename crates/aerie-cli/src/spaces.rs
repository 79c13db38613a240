//! Commands for spaces and what is installed in them, over the HTTP API (through
//! `aerie-client`, and nothing else).

use std::collections::BTreeMap;
use std::io::{BufRead as _, IsTerminal as _, Read as _};

use aerie_api_types::{
    InstallRequest, InstallationView, PermissionsView, SpaceChangeView, UpdateRequest,
};
use aerie_client::ClientError;
use anyhow::{Context as _, bail};

use crate::output::Table;
use crate::registry::{Target, runtime};

/// `NAME` or `NAME@REQUIREMENT`.
fn split_requirement(spec: &str) -> (String, Option<String>) {
    match spec.split_once('@') {
        Some((name, requirement)) => (name.to_string(), Some(requirement.to_string())),
        None => (spec.to_string(), None),
    }
}

pub fn create(target: &Target, name: &str) -> anyhow::Result<()> {
    let space = runtime()?.block_on(target.client()?.create_space(name))?;
    println!(
        "Created the space {} (you are its {})",
        space.name, space.role
    );
    Ok(())
}

pub fn list_spaces(target: &Target, json: bool) -> anyhow::Result<()> {
    let spaces = runtime()?.block_on(target.client()?.spaces())?;
    if json {
        println!("{}", serde_json::to_string_pretty(&spaces)?);
        return Ok(());
    }
    let mut table = Table::default();
    table.row([
        "SPACE".into(),
        "ROLE".into(),
        "PLUGINS".into(),
        "POLICY".into(),
        "CREATED".into(),
    ]);
    for space in spaces {
        table.row([
            space.name,
            space.role,
            space.installations.to_string(),
            match (space.require_certified, space.require_signed) {
                (true, true) => "certified, signed".into(),
                (true, false) => "certified only".into(),
                (false, true) => "signed only".into(),
                (false, false) => "any".into(),
            },
            space.created_at,
        ]);
    }
    print!("{}", table.render());
    Ok(())
}

pub fn policy(
    target: &Target,
    name: &str,
    require_certified: Option<bool>,
    require_signed: Option<bool>,
) -> anyhow::Result<()> {
    let request = aerie_api_types::UpdateSpaceRequest {
        name: None,
        require_certified,
        require_signed,
    };
    let space = runtime()?.block_on(target.client()?.update_space(name, &request))?;
    let rules: Vec<&str> = [
        (space.require_certified, "certified"),
        (space.require_signed, "publisher-signed"),
    ]
    .into_iter()
    .filter_map(|(on, rule)| on.then_some(rule))
    .collect();
    if rules.is_empty() {
        println!("The space {} installs any published version", space.name);
    } else {
        println!(
            "The space {} installs and runs only {} versions",
            space.name,
            rules.join(" and ")
        );
    }
    Ok(())
}

pub fn delete(target: &Target, name: &str, yes: bool) -> anyhow::Result<()> {
    if !yes {
        bail!("deleting `{name}` removes its plugins and all their data; pass --yes to go on");
    }
    runtime()?.block_on(target.client()?.delete_space(name))?;
    println!("Deleted the space {name}");
    Ok(())
}

/// `aerie space members`: list, or add/change (`--add USER --role ROLE`) or remove a member.
pub fn members(
    target: &Target,
    space: &str,
    add: Option<&str>,
    role: Option<&str>,
    remove: Option<&str>,
) -> anyhow::Result<()> {
    let client = target.client()?;
    let runtime = runtime()?;
    match (add, remove) {
        (Some(user), None) => {
            let role = role.context("give the role with --role owner|admin|member|viewer")?;
            runtime.block_on(client.set_space_member(space, user, Some(role)))?;
            println!("{user} is now {role} in {space}");
        }
        (None, Some(user)) => {
            runtime.block_on(client.set_space_member(space, user, None))?;
            println!("Removed {user} from {space}");
        }
        (Some(_), Some(_)) => bail!("give either --add or --remove, not both"),
        (None, None) => {
            let members = runtime.block_on(client.space_members(space))?;
            let mut table = Table::default();
            table.row(["USER".into(), "ROLE".into()]);
            for member in members {
                table.row([member.username, member.role]);
            }
            print!("{}", table.render());
        }
    }
    Ok(())
}

pub fn lockfile(target: &Target, space: &str) -> anyhow::Result<()> {
    print!("{}", runtime()?.block_on(target.client()?.lockfile(space))?);
    Ok(())
}

/// A JSON config given inline or as `@FILE`.
fn read_config(text: &str) -> anyhow::Result<serde_json::Value> {
    let text = match text.strip_prefix('@') {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?
        }
        None => text.to_string(),
    };
    serde_json::from_str(&text).context("the config is not valid JSON")
}

/// Shows the permissions the server asks consent for and asks (unless `yes`); the answer to
/// send back as `accept`.
fn consent(
    err: &ClientError,
    yes: bool,
) -> anyhow::Result<Option<BTreeMap<String, PermissionsView>>> {
    if err.code() != Some("permissions_not_accepted") {
        return Ok(None);
    }
    let permissions: BTreeMap<String, PermissionsView> = err
        .details()
        .and_then(|details| serde_json::from_value(details["permissions"].clone()).ok())
        .context("the registry asked for consent without saying to what")?;
    println!("This grants:");
    for (plugin, view) in &permissions {
        for sentence in &view.sentences {
            println!("  {plugin} may {sentence}");
        }
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            bail!("pass --yes to accept these permissions");
        }
        print!("Accept? [y/N] ");
        std::io::Write::flush(&mut std::io::stdout())?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            bail!("not accepted; nothing was installed");
        }
    }
    Ok(Some(permissions))
}

fn print_change(change: &SpaceChangeView, space: &str) {
    if change.changed.is_empty() {
        println!("Nothing to change in {space}: everything is up to date");
    }
    for (plugin, versions) in &change.changed {
        println!("  {plugin}: {versions}");
    }
}

/// Runs `call` with `accept`, asking for consent once if the server wants it.
fn with_consent<T>(
    yes: bool,
    call: impl Fn(Option<BTreeMap<String, PermissionsView>>) -> Result<T, ClientError>,
) -> anyhow::Result<T> {
    match call(None) {
        Ok(done) => Ok(done),
        Err(err) => match consent(&err, yes)? {
            Some(accept) => Ok(call(Some(accept))?),
            None => Err(err.into()),
        },
    }
}

pub fn install(
    target: &Target,
    space: &str,
    spec: &str,
    config: Option<&str>,
    yes: bool,
) -> anyhow::Result<()> {
    let (plugin, requirement) = split_requirement(spec);
    let config = config.map(read_config).transpose()?;
    let client = target.client()?;
    let runtime = runtime()?;
    let change = with_consent(yes, |accept| {
        let request = InstallRequest {
            plugin: plugin.clone(),
            requirement: requirement.clone(),
            config: config.clone(),
            accept,
        };
        runtime.block_on(client.install(space, &request))
    })?;
    println!("Installed {plugin} in {space}");
    print_change(&change, space);
    if let Some(view) = change
        .installations
        .iter()
        .find(|view| view.plugin == plugin)
    {
        println!("  serving at {}", view.endpoint);
        let missing: Vec<&String> = view
            .declared_secrets
            .iter()
            .filter(|name| !view.secrets.contains(name))
            .collect();
        for name in missing {
            println!("  set its secret with: aerie secret set {plugin} {name} --space {space}");
        }
    }
    Ok(())
}

pub fn update(
    target: &Target,
    space: &str,
    plugin: &str,
    requirement: Option<String>,
    yes: bool,
) -> anyhow::Result<()> {
    let client = target.client()?;
    let runtime = runtime()?;
    let change = with_consent(yes, |accept| {
        let request = UpdateRequest {
            requirement: requirement.clone(),
            accept,
        };
        runtime.block_on(client.update(space, plugin, &request))
    })?;
    print_change(&change, space);
    Ok(())
}

pub fn rollback(target: &Target, space: &str, plugin: &str) -> anyhow::Result<()> {
    let change = runtime()?.block_on(target.client()?.rollback(space, plugin))?;
    print_change(&change, space);
    Ok(())
}

pub fn uninstall(
    target: &Target,
    space: &str,
    plugin: &str,
    keep_data: bool,
) -> anyhow::Result<()> {
    let change = runtime()?.block_on(target.client()?.uninstall(space, plugin, keep_data))?;
    print_change(&change, space);
    if keep_data {
        println!("Its data is kept for a reinstall.");
    }
    Ok(())
}

pub fn set_enabled(
    target: &Target,
    space: &str,
    plugin: &str,
    enabled: bool,
) -> anyhow::Result<()> {
    let view = runtime()?.block_on(target.client()?.set_enabled(space, plugin, enabled))?;
    println!("{plugin} in {space} is {}", view.status);
    Ok(())
}

pub fn config_set(target: &Target, space: &str, plugin: &str, config: &str) -> anyhow::Result<()> {
    let config = read_config(config)?;
    let view = runtime()?.block_on(target.client()?.set_config(space, plugin, config))?;
    println!("{plugin} in {space} runs with the new config:");
    println!("{}", serde_json::to_string_pretty(&view.config)?);
    Ok(())
}

pub fn config_get(target: &Target, space: &str, plugin: &str) -> anyhow::Result<()> {
    let view = runtime()?.block_on(target.client()?.installation(space, plugin))?;
    println!("{}", serde_json::to_string_pretty(&view.config)?);
    Ok(())
}

/// A secret's value: from standard input when it is not a terminal, else asked for without
/// echo. Never from the command line, where other users and shell history would see it.
fn secret_value(name: &str) -> anyhow::Result<String> {
    let value = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("Value of {name}: "))?
    } else {
        let mut value = String::new();
        std::io::stdin()
            .read_to_string(&mut value)
            .context("cannot read the value from standard input")?;
        value.trim_end_matches(['\n', '\r']).to_string()
    };
    if value.is_empty() {
        bail!("the value is empty");
    }
    Ok(value)
}

pub fn secret_set(target: &Target, space: &str, plugin: &str, name: &str) -> anyhow::Result<()> {
    let value = secret_value(name)?;
    runtime()?.block_on(
        target
            .client()?
            .set_secret(space, plugin, name, Some(&value)),
    )?;
    println!("Set the secret {name} of {plugin} in {space}");
    Ok(())
}

pub fn secret_remove(target: &Target, space: &str, plugin: &str, name: &str) -> anyhow::Result<()> {
    runtime()?.block_on(target.client()?.set_secret(space, plugin, name, None))?;
    println!("Removed the secret {name} of {plugin} in {space}");
    Ok(())
}

pub fn list(target: &Target, space: &str, json: bool) -> anyhow::Result<()> {
    let installations = runtime()?.block_on(target.client()?.installations(space))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&installations)?);
        return Ok(());
    }
    let mut table = Table::default();
    table.row([
        "PLUGIN".into(),
        "VERSION".into(),
        "REQUIRES".into(),
        "STATUS".into(),
        "HEALTH".into(),
    ]);
    for view in installations {
        table.row([
            view.plugin,
            view.version,
            view.requirement.unwrap_or_else(|| "(dependency)".into()),
            view.status,
            view.health,
        ]);
    }
    print!("{}", table.render());
    Ok(())
}

fn status_lines(view: &InstallationView) -> Vec<String> {
    let mut lines = vec![format!(
        "{} {} — {}, {}",
        view.plugin, view.version, view.status, view.health
    )];
    if let Some(reason) = &view.status_reason {
        lines.push(format!("    {reason}"));
    }
    lines.push(format!("    endpoint: {}", view.endpoint));
    if let Some(previous) = &view.previous_version {
        lines.push(format!("    rollback returns to {previous}"));
    }
    let missing: Vec<&str> = view
        .declared_secrets
        .iter()
        .filter(|name| !view.secrets.contains(name))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        lines.push(format!("    secrets not set: {}", missing.join(", ")));
    }
    lines
}

pub fn status(
    target: &Target,
    space: &str,
    plugin: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    let client = target.client()?;
    let runtime = runtime()?;
    let installations = match plugin {
        Some(plugin) => vec![runtime.block_on(client.installation(space, plugin))?],
        None => runtime.block_on(client.installations(space))?,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&installations)?);
        return Ok(());
    }
    if installations.is_empty() {
        println!("Nothing is installed in {space}");
    }
    for view in &installations {
        for line in status_lines(view) {
            println!("{line}");
        }
    }
    if let Some(plugin) = plugin {
        let events = runtime.block_on(client.events(space, plugin))?;
        println!("History:");
        for event in events.iter().take(10) {
            let versions = match (&event.from_version, &event.to_version) {
                (Some(from), Some(to)) => format!(" {from} -> {to}"),
                (None, Some(to)) => format!(" {to}"),
                (Some(from), None) => format!(" {from}"),
                (None, None) => String::new(),
            };
            let by = event
                .actor
                .as_deref()
                .map(|actor| format!(" by {actor}"))
                .unwrap_or_default();
            let message = event
                .message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            println!("  {} {}{versions}{by}{message}", event.at, event.kind);
        }
    }
    Ok(())
}

pub fn rotate_master_key(target: &Target) -> anyhow::Result<()> {
    let rotation = runtime()?.block_on(target.client()?.rotate_master_key())?;
    println!(
        "Every space's data key ({}) is now wrapped by master key {}",
        rotation.rewrapped, rotation.master_key_id
    );
    if !rotation.retired.is_empty() {
        println!("Retired: {}", rotation.retired.join(", "));
    }
    Ok(())
}

/// Prints a new master key, for `AERIE_MASTER_KEY`.
pub fn generate_master_key() -> anyhow::Result<()> {
    let key = aerie_core::sealed::MasterKey::generate();
    println!("{}", key.to_text().as_str());
    eprintln!(
        "master key id {}: keep it secret, and keep a copy; sealed secrets need it",
        key.id()
    );
    Ok(())
}
