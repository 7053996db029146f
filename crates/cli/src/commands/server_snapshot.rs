//! `cloud snapshot SERVER NAME`: the server's root disk captured as a new
//! image of the project (Nova's createImage, `openstack server image
//! create`). It prints the new image's id; with `--wait` it waits until the
//! image is active and shows it, or says why the snapshot failed.

use crate::app::App;
use crate::commands::servers::pairs;
use crate::exit::{CliError, CliResult, RESOURCE_ERROR, TIMEOUT};
use crate::output::{OutputArgs, print_show};
use clap::Args;
use cloud_client::{IMAGE, Method, Request, SERVER, Service, ValueExt};
use serde_json::{Map, Value, json};
use std::time::{Duration, Instant};

/// How often `--wait` polls the image.
const POLL: Duration = Duration::from_millis(500);

/// `cloud snapshot`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cloud snapshot web-1 web-1-backup --wait        # an image of web-1's disk, once it is active
  cloud snapshot web-1 golden --property os_distro=debian
  cloud boot web-2 --flavor m1.small --image web-1-backup --wait

The server keeps its state (ACTIVE, SHUTOFF, PAUSED or SUSPENDED; other
states exit 5). A running guest on a real host is saved and restored around
the capture, so it pauses briefly but does not reboot. A failed snapshot
leaves no image (exit 6 with --wait, with the reason).")]
pub struct SnapshotArgs {
    /// Server name or id.
    pub server: String,
    /// Name of the new image.
    pub name: String,
    /// Image property `key=value` (repeatable).
    #[arg(long = "property", value_name = "KEY=VALUE")]
    pub properties: Vec<String>,
    /// Wait until the image is active, then show it.
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Snapshots a server.
pub async fn snapshot(app: &App, a: &SnapshotArgs) -> CliResult {
    let id = app.client.find(SERVER, &a.server).await?.id_str();
    let metadata: Map<String, Value> = pairs(&a.properties, "--property")?
        .into_iter()
        .map(|(k, v)| (k, json!(v)))
        .collect();
    let r = app
        .client
        .send(
            Request::new(
                Method::POST,
                Service::Compute,
                format!("servers/{id}/action"),
            )
            .json(json!({"createImage": {"name": a.name, "metadata": metadata}})),
        )
        .await?;
    let image = image_id(r.header("location"), r.json()?)
        .ok_or_else(|| CliError::failure("the cloud did not say which image it creates"))?;
    if !a.wait {
        println!("{image}");
        return Ok(());
    }
    let active = wait_active(app, &id, &a.server, &image).await?;
    print_show(&active, &a.output)
}

/// The new image's id: from the `Location` header (microversions before
/// 2.45) or the body's `image_id` (2.45 and later).
fn image_id(location: Option<&str>, body: Value) -> Option<String> {
    location
        .and_then(|l| l.trim_end_matches('/').rsplit('/').next())
        .map(str::to_owned)
        .or_else(|| body["image_id"].as_str().map(str::to_owned))
        .filter(|s| !s.is_empty())
}

/// Polls image `image` until it is active; a snapshot that failed (the
/// image deleted or killed) exits 6 with the reason the server's action
/// log gives.
async fn wait_active(app: &App, server: &str, label: &str, image: &str) -> CliResult<Value> {
    let started = Instant::now();
    loop {
        let status = match app.client.get(IMAGE, image).await {
            Ok(v) if v.text("status") == "active" => return Ok(v),
            Ok(v) => v.text("status").to_owned(),
            Err(e) if e.is_not_found() => "deleted".to_owned(),
            Err(e) => return Err(e.into()),
        };
        if matches!(status.as_str(), "deleted" | "killed") {
            let why = failure_reason(app, server).await;
            return Err(CliError::new(
                RESOURCE_ERROR,
                format!("the snapshot of server {label} failed: {why}"),
            ));
        }
        if started.elapsed() >= app.wait_timeout {
            return Err(CliError::new(
                TIMEOUT,
                format!(
                    "image {image} of server {label} is still {status} after {} s \
                     (--wait-timeout)",
                    app.wait_timeout.as_secs()
                ),
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Why the server's latest createImage failed, as far as the caller may
/// see (the event's traceback is shown to admins only).
async fn failure_reason(app: &App, server: &str) -> String {
    let fallback = format!("see `cloud actions {server}`");
    let Ok(actions) = app.client.instance_actions(server).await else {
        return fallback;
    };
    let Some(req) = actions
        .iter()
        .find(|a| a.text("action") == "createImage")
        .map(|a| a.text("request_id").to_owned())
    else {
        return fallback;
    };
    let Ok(action) = app.client.instance_action(server, &req).await else {
        return fallback;
    };
    action["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e.text("result") == "Error")
        .find_map(|e| e["traceback"].as_str().map(str::to_owned))
        .unwrap_or(fallback)
}

#[cfg(test)]
mod tests {
    use super::image_id;
    use serde_json::json;

    #[test]
    fn the_image_id_comes_from_the_location_or_the_body() {
        assert_eq!(
            image_id(Some("http://c/image/v2/images/abc"), json!(null)).as_deref(),
            Some("abc")
        );
        assert_eq!(
            image_id(None, json!({"image_id": "def"})).as_deref(),
            Some("def")
        );
        assert_eq!(image_id(None, json!(null)), None);
    }
}
