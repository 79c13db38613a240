//! Commands that talk to a registry over its HTTP API (through `aerie-client`, and nothing
//! else): login, publish, info, yank, download, tokens, namespaces, keys.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use aerie_api_types::{CreateNamespaceRequest, CreateTokenRequest};
use aerie_client::Client;
use aerie_core::name::PluginName;
use aerie_core::package::{PackageLimits, read_package};
use aerie_core::signature::{PublicKey, verify_package};
use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use crate::output::{Table, human_size, load_package};

/// The registry used when none is configured.
const DEFAULT_REGISTRY: &str = "http://127.0.0.1:7878";

/// Where and as whom to reach the registry.
pub struct Target {
    /// `--registry`, if given.
    pub registry: Option<String>,
}

/// What `aerie login` stores.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Credentials {
    registry: String,
    token: String,
}

fn credentials_path() -> anyhow::Result<PathBuf> {
    let dir = match std::env::var_os("AERIE_CONFIG_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => dirs::config_dir()
            .context("cannot find your configuration directory; set AERIE_CONFIG_DIR")?
            .join("aerie"),
    };
    Ok(dir.join("credentials.toml"))
}

fn stored_credentials() -> anyhow::Result<Option<Credentials>> {
    let path = credentials_path()?;
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            Ok(Some(toml::from_str(&text).with_context(|| {
                format!("{} is not valid", path.display())
            })?))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
    }
}

impl Target {
    /// The registry URL: `--registry`, `AERIE_REGISTRY`, the stored login, or the default.
    fn registry(&self, stored: Option<&Credentials>) -> String {
        self.registry
            .clone()
            .or_else(|| std::env::var("AERIE_REGISTRY").ok())
            .or_else(|| stored.map(|credentials| credentials.registry.clone()))
            .unwrap_or_else(|| DEFAULT_REGISTRY.to_string())
    }

    /// A client with the token from `AERIE_TOKEN` or the stored login for this registry.
    pub(crate) fn client(&self) -> anyhow::Result<Client> {
        let stored = stored_credentials()?;
        let registry = self.registry(stored.as_ref());
        let token = std::env::var("AERIE_TOKEN").ok().or_else(|| {
            stored
                .filter(|credentials| credentials.registry == registry)
                .map(|credentials| credentials.token)
        });
        Ok(Client::new(&registry, token)?)
    }
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// A password from `AERIE_PASSWORD`, or asked for.
fn password(prompt: &str) -> anyhow::Result<String> {
    if let Ok(password) = std::env::var("AERIE_PASSWORD") {
        return Ok(password);
    }
    rpassword::prompt_password(prompt).context("cannot read a password; set AERIE_PASSWORD")
}

/// `NAME` or `NAME@VERSION`.
pub(crate) fn split_name(spec: &str) -> anyhow::Result<(PluginName, Option<String>)> {
    let (name, version) = match spec.split_once('@') {
        Some((name, version)) => (name, Some(version.to_string())),
        None => (spec, None),
    };
    Ok((name.parse()?, version))
}

pub fn login(target: &Target, username: &str, admin: bool) -> anyhow::Result<()> {
    let registry = target.registry(stored_credentials()?.as_ref());
    let client = Client::new(&registry, None)?;
    let password = password(&format!("Password for {username} at {registry}: "))?;
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "cli".to_string());
    let request = CreateTokenRequest {
        name: format!(
            "aerie login on {host} at {}",
            humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        ),
        scopes: [
            "publish",
            "yank",
            "read-private",
            "download",
            "spaces",
            "owner",
        ]
        .into_iter()
        .chain(admin.then_some("admin"))
        .map(String::from)
        .collect(),
        namespaces: None,
        expires_in_days: Some(90),
    };
    let created = runtime()?.block_on(client.create_token(username, &password, &request))?;
    let path = credentials_path()?;
    let credentials = Credentials {
        registry: registry.clone(),
        token: created.token,
    };
    crate::keys::write_private(&path, toml::to_string(&credentials)?.as_bytes())?;
    println!("Logged in to {registry} as {username}");
    println!(
        "  token {}… saved in {} (expires in 90 days)",
        created.info.prefix,
        path.display()
    );
    Ok(())
}

pub fn publish(
    target: &Target,
    package_path: &Path,
    signature: Option<PathBuf>,
) -> anyhow::Result<()> {
    let (bytes, package) = load_package(package_path)?;
    let plugin = &package.manifest.plugin;
    let signature_path =
        signature.unwrap_or_else(|| crate::keys::default_signature_path(package_path));
    let signature = match std::fs::read_to_string(&signature_path) {
        Ok(text) => Some(text),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => {
            return Err(err).with_context(|| format!("cannot read {}", signature_path.display()));
        }
    };
    let client = target.client()?;
    let length = bytes.len() as u64;
    let bar = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(length);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .expect("the template is valid")
            .progress_chars("=> "),
        );
        bar.set_message(format!("Uploading {} {}", plugin.name, plugin.version));
        Some(bar)
    } else {
        None
    };
    let chunks: Vec<bytes::Bytes> = bytes::Bytes::from(bytes)
        .chunks(64 * 1024)
        .map(bytes::Bytes::copy_from_slice)
        .collect();
    let progress = bar.clone();
    let body = futures::stream::iter(chunks.into_iter().map(move |chunk| {
        if let Some(bar) = &progress {
            bar.inc(chunk.len() as u64);
        }
        Ok::<_, std::io::Error>(chunk)
    }));
    let published = runtime()?.block_on(client.publish(
        plugin.name.as_str(),
        &plugin.version.to_string(),
        body,
        length,
        signature.as_deref(),
    ));
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let published = published
        .with_context(|| format!("publishing {} {} failed", plugin.name, plugin.version))?;
    let verb = if published.created {
        "Published"
    } else {
        "Already published (identical)"
    };
    println!(
        "{verb} {} {} to {}",
        plugin.name,
        plugin.version,
        client.base()
    );
    println!("  digest  {}", published.version.digest);
    match &published.version.signing_key_id {
        Some(key) => println!("  signed  by key {key}"),
        None => println!("  signed  no"),
    }
    Ok(())
}

pub fn info(target: &Target, spec: &str, json: bool) -> anyhow::Result<()> {
    let (name, version) = split_name(spec)?;
    let client = target.client()?;
    let runtime = runtime()?;
    if let Some(version) = version {
        let view = runtime.block_on(client.version(name.as_str(), &version))?;
        if json {
            println!("{}", serde_json::to_string_pretty(&view)?);
            return Ok(());
        }
        println!("{} {}", view.name, view.version);
        let mut table = Table::default();
        table.row(["digest".into(), view.digest.clone()]);
        table.row(["size".into(), human_size(view.size as u64)]);
        table.row([
            "published".into(),
            format!("{} by {}", view.published_at, view.publisher),
        ]);
        table.row([
            "signed".into(),
            view.signing_key_id
                .clone()
                .map_or("no".into(), |key| format!("by key {key}")),
        ]);
        table.row([
            "yanked".into(),
            if view.yanked {
                "yes".into()
            } else {
                "no".into()
            },
        ]);
        if let Some(message) = &view.deprecated {
            table.row(["deprecated".into(), message.clone()]);
        }
        table.row([
            "certification".into(),
            view.certification
                .as_deref()
                .unwrap_or("not submitted")
                .replace('_', " "),
        ]);
        table.row(["download".into(), view.download_url.clone()]);
        print!("{}", table.render());
        return Ok(());
    }
    let view = runtime.block_on(client.plugin(name.as_str()))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&view)?);
        return Ok(());
    }
    println!(
        "{}: {}",
        view.name,
        view.description.as_deref().unwrap_or("")
    );
    let mut about = Table::default();
    about.row([
        "latest".into(),
        view.latest.clone().unwrap_or_else(|| "none".into()),
    ]);
    about.row(["downloads".into(), view.downloads.to_string()]);
    about.row(["updated".into(), view.updated_at.clone()]);
    print!("{}", about.render());
    println!("versions");
    let mut versions = Table::default();
    for version in &view.versions {
        let mut state = Vec::new();
        if version.yanked {
            state.push("yanked".to_string());
        }
        if version.certification.as_deref() == Some("certified") {
            state.push("certified".to_string());
        }
        if let Some(message) = &version.deprecated {
            state.push(format!("deprecated: {message}"));
        }
        versions.row([
            version.version.clone(),
            version.published_at.clone(),
            human_size(version.size as u64),
            state.join(", "),
        ]);
    }
    print!("{}", versions.render());
    Ok(())
}

pub fn set_yanked(target: &Target, spec: &str, yanked: bool) -> anyhow::Result<()> {
    let (name, version) = split_name(spec)?;
    let version = version.context("give the version to yank as NAME@VERSION")?;
    let view = runtime()?.block_on(target.client()?.set_yanked(name.as_str(), &version, yanked))?;
    let verb = if yanked { "Yanked" } else { "Unyanked" };
    println!("{verb} {} {}", view.name, view.version);
    Ok(())
}

pub fn download(target: &Target, spec: &str, output: Option<PathBuf>) -> anyhow::Result<()> {
    let (name, version) = split_name(spec)?;
    let client = target.client()?;
    let runtime = runtime()?;
    // An exact version is taken as it is, yanked or not; anything else resolves like a new
    // installation does.
    let view = match version.as_deref().map(semver::Version::parse) {
        Some(Ok(exact)) => runtime.block_on(client.version(name.as_str(), &exact.to_string()))?,
        Some(Err(_)) => {
            runtime.block_on(client.resolve(name.as_str(), version.as_deref().unwrap_or("*")))?
        }
        None => runtime.block_on(client.resolve(name.as_str(), "*"))?,
    };
    let bytes = runtime.block_on(client.download(name.as_str(), &view.version))?;
    let package = read_package(&bytes, &PackageLimits::default())
        .context("the downloaded package is invalid")?;
    if package.digest.to_string() != view.digest {
        bail!(
            "the download's digest {} differs from the registry's {}: refusing it",
            package.digest,
            view.digest
        );
    }
    let version = semver::Version::parse(&view.version)?;
    let signed_by = match &view.signing_key_id {
        Some(key_id) => {
            let signature = runtime.block_on(client.signature(name.as_str(), &view.version))?;
            let keys = runtime.block_on(client.keys(name.namespace()))?;
            let key = keys
                .iter()
                .find(|key| &key.key_id == key_id)
                .with_context(|| {
                    format!("the signing key {key_id} is not listed on the namespace")
                })?;
            verify_package(
                &bytes,
                &name,
                &version,
                &signature,
                &PublicKey::parse(&key.public_key)?,
            )
            .context("the signature does not verify")?;
            Some(key_id.clone())
        }
        None => None,
    };
    let output = output.unwrap_or_else(|| {
        PathBuf::from(format!(
            "{}-{}-{}.aerie",
            name.namespace(),
            name.name(),
            view.version
        ))
    });
    std::fs::write(&output, &bytes)
        .with_context(|| format!("cannot write {}", output.display()))?;
    println!(
        "Downloaded {} {} to {}",
        view.name,
        view.version,
        output.display()
    );
    println!("  digest  {} (verified)", view.digest);
    match signed_by {
        Some(key) => println!("  signed  by key {key} (verified)"),
        None => println!("  signed  no: the package carries no signature"),
    }
    if view.yanked {
        println!("  note    this version is yanked");
    }
    if let Some(message) = &view.deprecated {
        println!("  note    deprecated: {message}");
    }
    Ok(())
}

pub struct NewToken {
    pub name: String,
    pub scopes: Vec<String>,
    pub namespaces: Vec<String>,
    pub expires_in_days: Option<u32>,
}

pub fn token_create(target: &Target, token: NewToken) -> anyhow::Result<()> {
    let client = target.client()?;
    let runtime = runtime()?;
    let username = match std::env::var("AERIE_USERNAME") {
        Ok(name) => name,
        Err(_) => {
            runtime
                .block_on(client.me())
                .context("log in first (aerie login), or set AERIE_USERNAME")?
                .user
                .username
        }
    };
    let password = password(&format!("Password for {username}: "))?;
    let request = CreateTokenRequest {
        name: token.name,
        scopes: token.scopes,
        namespaces: (!token.namespaces.is_empty()).then_some(token.namespaces),
        expires_in_days: token.expires_in_days,
    };
    let created = runtime.block_on(client.create_token(&username, &password, &request))?;
    println!("{}", created.token);
    eprintln!(
        "Created token {} ({}); it is shown only this once.",
        created.info.id, created.info.name
    );
    Ok(())
}

pub fn change_password(target: &Target) -> anyhow::Result<()> {
    let current = password("Current password: ")?;
    let new = match std::env::var("AERIE_NEW_PASSWORD") {
        Ok(new) => new,
        Err(_) => {
            let new = rpassword::prompt_password("New password: ")
                .context("cannot read a password; set AERIE_NEW_PASSWORD")?;
            let again = rpassword::prompt_password("New password again: ")?;
            anyhow::ensure!(
                new == again,
                "the two new passwords differ; nothing changed"
            );
            new
        }
    };
    let request = aerie_api_types::PasswordChangeRequest {
        current_password: current,
        new_password: new,
    };
    runtime()?.block_on(target.client()?.change_password(&request))?;
    println!("Password changed; every browser session of yours has ended");
    Ok(())
}

pub fn sessions(target: &Target) -> anyhow::Result<()> {
    let sessions = runtime()?.block_on(target.client()?.sessions())?;
    let mut table = Table::default();
    table.row([
        "ID".into(),
        "BEGAN".into(),
        "LAST USED".into(),
        "FROM".into(),
        "BROWSER".into(),
    ]);
    for session in sessions {
        table.row([
            session.id.to_string(),
            session.created_at,
            session.last_seen_at.unwrap_or_else(|| "never".into()),
            session.ip.unwrap_or_default(),
            session.user_agent.unwrap_or_default(),
        ]);
    }
    print!("{}", table.render());
    Ok(())
}

pub fn sign_out_everywhere(target: &Target) -> anyhow::Result<()> {
    runtime()?.block_on(target.client()?.end_sessions())?;
    println!("Every browser session of yours has ended");
    Ok(())
}

pub fn token_list(target: &Target) -> anyhow::Result<()> {
    let tokens = runtime()?.block_on(target.client()?.tokens())?;
    let mut table = Table::default();
    table.row([
        "ID".into(),
        "NAME".into(),
        "PREFIX".into(),
        "SCOPES".into(),
        "EXPIRES".into(),
        "LAST USED".into(),
        "STATE".into(),
    ]);
    for token in tokens {
        let state = if token.revoked_at.is_some() {
            "revoked"
        } else {
            "active"
        };
        table.row([
            token.id.to_string(),
            token.name,
            token.prefix,
            token.scopes.join(","),
            token.expires_at.unwrap_or_else(|| "never".into()),
            token.last_used_at.unwrap_or_else(|| "never".into()),
            state.into(),
        ]);
    }
    print!("{}", table.render());
    Ok(())
}

pub fn token_revoke(target: &Target, id: i64) -> anyhow::Result<()> {
    runtime()?.block_on(target.client()?.revoke_token(id))?;
    println!("Revoked token {id}");
    Ok(())
}

pub fn namespace_create(
    target: &Target,
    name: &str,
    private: bool,
    allow_unsigned: bool,
) -> anyhow::Result<()> {
    let request = CreateNamespaceRequest {
        name: name.to_string(),
        require_signature: allow_unsigned.then_some(false),
        private,
    };
    let view = runtime()?.block_on(target.client()?.create_namespace(&request))?;
    println!("Created the namespace {}", view.name);
    println!(
        "  signatures  {}",
        if view.require_signature {
            "required"
        } else {
            "optional"
        }
    );
    println!(
        "  visibility  {}",
        if view.private { "private" } else { "public" }
    );
    Ok(())
}

pub fn key_add(target: &Target, namespace: &str, public_key: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(public_key)
        .with_context(|| format!("cannot read {}", public_key.display()))?;
    let view = runtime()?.block_on(target.client()?.add_key(namespace, &text))?;
    println!("Registered key {} on {namespace}", view.key_id);
    Ok(())
}

/// What `aerie search` looks for.
pub struct SearchArgs {
    pub query: Vec<String>,
    pub category: Option<String>,
    pub tag: Option<String>,
    pub sort: Option<String>,
    pub page: Option<usize>,
    pub json: bool,
}

pub fn search(target: &Target, args: SearchArgs) -> anyhow::Result<()> {
    let mut params = vec![("q", args.query.join(" "))];
    for (name, value) in [
        ("category", args.category),
        ("tag", args.tag),
        ("sort", args.sort),
    ] {
        if let Some(value) = value {
            params.push((name, value));
        }
    }
    if let Some(page) = args.page {
        params.push(("page", page.to_string()));
    }
    let results = runtime()?.block_on(target.client()?.search(&params))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
        return Ok(());
    }
    if results.hits.is_empty() {
        println!("No plugin matches.");
        return Ok(());
    }
    let mut table = Table::default();
    table.row([
        "NAME".into(),
        "VERSION".into(),
        "DOWNLOADS".into(),
        "RATING".into(),
        "DESCRIPTION".into(),
    ]);
    for hit in &results.hits {
        let mut description = hit.description.clone();
        if description.chars().count() > 60 {
            description = description.chars().take(59).collect::<String>() + "…";
        }
        let mut notes = Vec::new();
        if hit.certified {
            notes.push("certified");
        }
        if !hit.installable {
            notes.push("every version yanked");
        }
        if !notes.is_empty() {
            description = format!("{description} ({})", notes.join(", "));
        }
        let rating = if hit.ratings == 0 {
            "-".to_string()
        } else {
            format!("{:.1} ({})", hit.rating, hit.ratings)
        };
        table.row([
            hit.name.clone(),
            hit.version.clone(),
            hit.downloads.to_string(),
            rating,
            description,
        ]);
    }
    print!("{}", table.render());
    let shown_to = (results.page - 1) * results.per_page + results.hits.len();
    println!(
        "{} of {}{} plugins ({:.1} ms){}",
        shown_to,
        results.total,
        if results.exhaustive { "" } else { "+" },
        results.took_ms,
        if shown_to < results.total {
            "; --page for more"
        } else {
            ""
        }
    );
    let categories: Vec<String> = results
        .facets
        .categories
        .iter()
        .map(|facet| format!("{} ({})", facet.value, facet.count))
        .collect();
    if !categories.is_empty() {
        println!("categories: {}", categories.join(", "));
    }
    Ok(())
}

pub fn review(target: &Target, name: &str, stars: i64, text: Option<String>) -> anyhow::Result<()> {
    let name: PluginName = name.parse()?;
    let client = target.client()?;
    let runtime = runtime()?;
    let request = aerie_api_types::ReviewRequest {
        stars,
        text: text.unwrap_or_default(),
    };
    runtime.block_on(client.review(name.as_str(), &request))?;
    let reviews = runtime.block_on(client.reviews(name.as_str()))?;
    println!(
        "Rated {name} {stars}/5; it is now rated {:.1} by {} {}",
        reviews.rating,
        reviews.ratings,
        if reviews.ratings == 1 {
            "person"
        } else {
            "people"
        }
    );
    Ok(())
}

/// What `aerie audit` asks the log for.
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
}

/// Entries asked for at a time.
const AUDIT_PAGE: usize = 1000;

/// `aerie audit`: a table of the newest `limit` entries, or every entry as JSON lines.
pub fn audit(
    target: &Target,
    filter: &AuditFilter,
    limit: usize,
    json_lines: bool,
) -> anyhow::Result<()> {
    let client = target.client()?;
    let runtime = runtime()?;
    let params: Vec<(&str, String)> = [
        ("actor", &filter.actor),
        ("action", &filter.action),
        ("target", &filter.target),
        ("since", &filter.since),
        ("until", &filter.until),
    ]
    .into_iter()
    .filter_map(|(name, value)| Some((name, value.clone()?)))
    .collect();
    let wanted = if json_lines { usize::MAX } else { limit };
    let mut entries = Vec::new();
    let mut before: Option<i64> = None;
    while entries.len() < wanted {
        let page = AUDIT_PAGE.min(wanted - entries.len()).max(1);
        let mut query = params.clone();
        query.push(("limit", page.to_string()));
        if let Some(before) = before {
            query.push(("before", before.to_string()));
        }
        let got = runtime.block_on(client.audit(&query))?;
        let last = got.last().map(|entry| entry.id);
        let done = got.len() < page;
        if json_lines {
            // Written as they come: an export of a large log holds one page at a time.
            let mut out = std::io::stdout().lock();
            for entry in &got {
                use std::io::Write as _;
                writeln!(out, "{}", serde_json::to_string(entry)?)?;
            }
        } else {
            entries.extend(got);
        }
        match last {
            Some(last) if !done => before = Some(last),
            _ => break,
        }
    }
    if json_lines {
        return Ok(());
    }
    let mut table = Table::default();
    table.row(["WHEN", "WHO", "ACTION", "TARGET", "FROM"].map(String::from));
    for entry in &entries {
        table.row([
            entry.at.clone(),
            entry.actor.clone().unwrap_or_else(|| "-".into()),
            entry.action.clone(),
            entry.target.clone(),
            entry.ip.clone().unwrap_or_default(),
        ]);
    }
    print!("{}", table.render());
    Ok(())
}

pub fn stats(target: &Target, name: &str, json: bool) -> anyhow::Result<()> {
    let name: PluginName = name.parse()?;
    let stats = runtime()?.block_on(target.client()?.stats(name.as_str()))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
        return Ok(());
    }
    println!("{name}");
    println!("  downloads              {}", stats.total);
    println!("  active installations   {}", stats.active_installations);
    for version in &stats.installations_by_version {
        println!("    {:<20} {}", version.version, version.count);
    }
    // Downloads per day, all versions together, the last 30 days that had any.
    let mut per_day: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
    for day in &stats.days {
        *per_day.entry(day.date.as_str()).or_default() += day.count;
    }
    if !per_day.is_empty() {
        let mut table = Table::default();
        table.row(["DAY".into(), "DOWNLOADS".into()]);
        let skip = per_day.len().saturating_sub(30);
        for (day, count) in per_day.into_iter().skip(skip) {
            table.row([day.to_string(), count.to_string()]);
        }
        print!("{}", table.render());
    }
    Ok(())
}
