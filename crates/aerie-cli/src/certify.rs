//! `aerie certify`: publishers submit versions; administrators review, certify or reject
//! them; anyone checks a certification against the registry's key.

use aerie_api_types::{CertificationRequest, CertificationView};
use aerie_core::certification;
use aerie_core::signature::PublicKey;
use anyhow::Context as _;

use crate::output::Table;
use crate::registry::{Target, runtime, split_name};

/// `NAME@VERSION`, parsed.
fn version_spec(spec: &str) -> anyhow::Result<(aerie_core::name::PluginName, String)> {
    let (name, version) = split_name(spec)?;
    let version = version.context("give the version as NAME@VERSION")?;
    Ok((name, version))
}

/// Takes one step (`submit`, `start_review`, `certify`, `reject`) and says where the version
/// is now.
pub fn step(
    target: &Target,
    spec: &str,
    action: &str,
    reason: Option<String>,
) -> anyhow::Result<()> {
    let (name, version) = version_spec(spec)?;
    let request = CertificationRequest {
        action: action.to_string(),
        reason,
    };
    let view = runtime()?.block_on(target.client()?.certification_step(
        name.as_str(),
        &version,
        &request,
    ))?;
    let now = match view.state.as_str() {
        "submitted" => "is submitted for certification".to_string(),
        "in_review" => "is in review".to_string(),
        "certified" => format!(
            "is certified, signed by registry key {}",
            view.signing_key_id.as_deref().unwrap_or("?")
        ),
        "rejected" => "is rejected".to_string(),
        other => format!("is {other}"),
    };
    println!("{} {} {now}", view.plugin, view.version);
    Ok(())
}

/// Whether `view`'s signature is the registry's certification of exactly that package.
fn check_signature(view: &CertificationView, key: &PublicKey) -> anyhow::Result<String> {
    let signature = view
        .signature
        .as_deref()
        .context("the registry sent no signature")?;
    certification::verify(
        &view.plugin.parse()?,
        &view.version.parse()?,
        &view.digest.parse()?,
        signature,
        key,
    )?;
    Ok(format!("verified with registry key {}", key.key_id()))
}

/// Shows a version's certification and history; a certified version's signature is checked
/// against the registry's key.
pub fn status(target: &Target, spec: &str, json: bool) -> anyhow::Result<()> {
    let (name, version) = version_spec(spec)?;
    let client = target.client()?;
    let runtime = runtime()?;
    let view = runtime.block_on(client.certification(name.as_str(), &version))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&view)?);
        return Ok(());
    }
    println!("{} {}", view.plugin, view.version);
    let mut table = Table::default();
    table.row(["state".into(), view.state.replace('_', " ")]);
    if let Some(by) = &view.submitted_by {
        let at = view.submitted_at.clone().unwrap_or_default();
        table.row(["submitted".into(), format!("{at} by {by}")]);
    }
    if let Some(reviewer) = &view.reviewer {
        table.row(["reviewer".into(), reviewer.clone()]);
    }
    if let Some(reason) = &view.reason {
        table.row(["reason".into(), reason.clone()]);
    }
    if view.state == "certified" {
        let key = runtime.block_on(client.registry_key())?;
        let verdict = PublicKey::parse(&key.public_key)
            .map_err(anyhow::Error::from)
            .and_then(|key| check_signature(&view, &key))
            .unwrap_or_else(|err| format!("DOES NOT VERIFY: {err:#}"));
        table.row(["signature".into(), verdict]);
    }
    print!("{}", table.render());
    if !view.history.is_empty() {
        println!("history");
        let mut history = Table::default();
        for event in &view.history {
            history.row([
                event.at.clone(),
                event.actor.clone().unwrap_or_default(),
                format!("{} -> {}", event.from.as_deref().unwrap_or("new"), event.to),
                event.reason.clone().unwrap_or_default(),
            ]);
        }
        print!("{}", history.render());
    }
    Ok(())
}

/// The versions in `state`, longest waiting first.
pub fn queue(target: &Target, state: &str, json: bool) -> anyhow::Result<()> {
    let queue = runtime()?.block_on(target.client()?.certification_queue(state))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&queue)?);
        return Ok(());
    }
    if queue.versions.is_empty() {
        println!("No versions are {}", state.replace('_', " "));
        return Ok(());
    }
    let mut table = Table::default();
    table.row([
        "PLUGIN".into(),
        "VERSION".into(),
        "STATE".into(),
        "SUBMITTED BY".into(),
        "SINCE".into(),
    ]);
    for entry in queue.versions {
        table.row([
            entry.plugin,
            entry.version,
            entry.state,
            entry.submitted_by.unwrap_or_default(),
            entry.updated_at,
        ]);
    }
    print!("{}", table.render());
    Ok(())
}
