//! `cloud image ...`: list, show, create (streamed upload with a progress
//! bar), download (streamed), delete.

use crate::app::App;
use crate::commands::compute::new_key;
use crate::commands::servers::pairs;
use crate::commands::{NamesArg, ShowOne, delete_all, show_one};
use crate::exit::CliResult;
use crate::output::{Col, OutputArgs, print_list, print_show};
use clap::{Args, Subcommand};
use cloud_client::{IMAGE, Progress, ValueExt};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

/// `cloud image ...`.
#[derive(Debug, Subcommand)]
pub enum ImageCmd {
    /// List images you can use.
    #[command(after_help = "Example:\n  cloud image list -f value -c id -c name")]
    List(OutputArgs),
    /// Show an image.
    #[command(after_help = "Example:\n  cloud image show cirros")]
    Show(ShowOne),
    /// Create an image and upload its data.
    #[command(after_help = "Examples:
  cloud image create cirros --file cirros.qcow2 --disk-format qcow2
  cloud image create ubuntu --file noble.img --disk-format raw --property os_distro=ubuntu")]
    Create(ImageCreate),
    /// Save an image's data to a file.
    #[command(after_help = "Example:\n  cloud image download cirros --file cirros.qcow2")]
    Download(ImageDownload),
    /// Delete images.
    #[command(after_help = "Example:\n  cloud image delete cirros")]
    Delete(NamesArg),
}

/// `cloud image create`.
#[derive(Debug, Args)]
pub struct ImageCreate {
    /// Image name.
    pub name: String,
    /// The image data to upload.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// qcow2, raw, ...
    #[arg(long, default_value = "qcow2")]
    pub disk_format: String,
    /// bare, ovf, ...
    #[arg(long, default_value = "bare")]
    pub container_format: String,
    /// private, shared, community or public (admin).
    #[arg(long)]
    pub visibility: Option<String>,
    /// Extra property `key=value` (repeatable).
    #[arg(long = "property", value_name = "KEY=VALUE")]
    pub properties: Vec<String>,
    /// Minimum disk (GiB) a flavor needs for it.
    #[arg(long)]
    pub min_disk: Option<u64>,
    /// Minimum memory (MiB) a flavor needs for it.
    #[arg(long)]
    pub min_ram: Option<u64>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `cloud image download`.
#[derive(Debug, Args)]
pub struct ImageDownload {
    /// Image name or id.
    pub image: String,
    /// Where to write the data.
    #[arg(long, value_name = "FILE")]
    pub file: PathBuf,
}

/// A byte progress bar on a terminal; nothing otherwise.
fn progress_bar(what: &str) -> (Option<Progress>, Option<ProgressBar>) {
    if !std::io::stderr().is_terminal() {
        return (None, None);
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    let b = bar.clone();
    let cb: Progress = Arc::new(move |done, total| {
        if let Some(t) = total {
            b.set_length(t);
        }
        b.set_position(done);
    });
    (Some(cb), Some(bar))
}

/// Runs an image command.
pub async fn image(app: &App, cmd: &ImageCmd) -> CliResult {
    match cmd {
        ImageCmd::List(out) => {
            let items = app.client.list(IMAGE, &[]).await?;
            let cols = vec![
                Col::new("ID", "id"),
                Col::new("Name", "name"),
                Col::new("Status", "status"),
                Col::new("Disk Format", "disk_format"),
                Col::new("Size", "size"),
                Col::new("Visibility", "visibility"),
            ];
            print_list(&items, &cols, out)
        }
        ImageCmd::Show(a) => show_one(app, IMAGE, a).await,
        ImageCmd::Create(a) => {
            let mut body = json!({
                "name": a.name, "disk_format": a.disk_format,
                "container_format": a.container_format,
            });
            if let Some(v) = &a.visibility {
                body["visibility"] = json!(v);
            }
            if let Some(v) = a.min_disk {
                body["min_disk"] = json!(v);
            }
            if let Some(v) = a.min_ram {
                body["min_ram"] = json!(v);
            }
            for (k, v) in pairs(&a.properties, "--property")? {
                body[k] = json!(v);
            }
            let created = app.client.create(IMAGE, body, Some(&new_key())).await?;
            let id = created.id_str();
            if let Some(file) = &a.file {
                let (cb, bar) = progress_bar(&format!("uploading {}", a.name));
                let r = app.client.image_upload(&id, file, cb).await;
                if let Some(b) = bar {
                    b.finish_and_clear();
                }
                r?;
            }
            print_show(&app.client.get(IMAGE, &id).await?, &a.output)
        }
        ImageCmd::Download(a) => {
            let id = app.client.find_id(IMAGE, &a.image).await?;
            let (cb, bar) = progress_bar(&format!("downloading {}", a.image));
            let r = app.client.image_download(&id, &a.file, cb).await;
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            let n = r?;
            eprintln!("{n} bytes written to {}", a.file.display());
            Ok(())
        }
        ImageCmd::Delete(a) => delete_all(app, IMAGE, &a.names).await,
    }
}
