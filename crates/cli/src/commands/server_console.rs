//! `cloud console`: a server's serial console, through the console proxy's
//! websocket (`os-getSerialConsole`), or just its URL.

use crate::app::App;
use crate::exit::{CliError, CliResult, FAILURE};
use clap::Args;
use cloud_client::{SERVER, ValueExt};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// How long output is still shown after the end of input (piped input:
/// the guest's answer to the last line).
const LINGER: Duration = Duration::from_secs(1);

/// `cloud console`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  cloud console web-1                  # attach: what you type goes to the guest's serial port
  cloud console web-1 --url            # print the websocket URL (one use, expires in minutes)
  echo 'uname -a' | cloud console web-1

Input is sent a line at a time (Enter sends a carriage return, as a serial
terminal does); end of input (Ctrl-D) detaches. The server must be ACTIVE
or PAUSED (exit 5 otherwise).")]
pub struct SerialConsoleArgs {
    /// Server name or id.
    pub server: String,
    /// Print the console's websocket URL instead of attaching.
    #[arg(long, alias = "serial-url")]
    pub url: bool,
}

/// Attaches stdin/stdout to the server's serial console, or prints its URL.
pub async fn console(app: &App, a: &SerialConsoleArgs) -> CliResult {
    let id = app.client.find(SERVER, &a.server).await?.id_str();
    let v = app
        .client
        .server_action(&id, json!({ "os-getSerialConsole": { "type": "serial" } }))
        .await?;
    let url = v["console"].text("url").to_owned();
    if a.url {
        println!("{url}");
        return Ok(());
    }
    attach(&url).await
}

/// Pumps stdin to the console and the console to stdout until either ends.
async fn attach(url: &str) -> CliResult {
    let failed = |e: &dyn std::fmt::Display| CliError::new(FAILURE, format!("serial console: {e}"));
    let mut req = url.into_client_request().map_err(|e| failed(&e))?;
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        tokio_tungstenite::tungstenite::http::HeaderValue::from_static("binary"),
    );
    let (ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .map_err(|e| failed(&e))?;
    let (mut tx, mut rx) = ws.split();
    let mut stdin = tokio::io::stdin();
    let mut stdout = tokio::io::stdout();
    let mut buf = vec![0u8; 1024];
    let mut input_open = true;
    loop {
        tokio::select! {
            n = stdin.read(&mut buf), if input_open => match n {
                Ok(0) | Err(_) => input_open = false,
                Ok(n) => {
                    let line: Vec<u8> = buf[..n]
                        .iter()
                        .map(|&b| if b == b'\n' { b'\r' } else { b })
                        .collect();
                    tx.send(Message::binary(line)).await.map_err(|e| failed(&e))?;
                }
            },
            m = next_or_quiet(&mut rx, input_open) => match m {
                Some(Message::Binary(b)) => write(&mut stdout, &b).await?,
                Some(Message::Text(t)) => write(&mut stdout, t.as_bytes()).await?,
                Some(Message::Close(_)) | None => break,
                Some(_) => {}
            },
        }
    }
    let _ = tx.send(Message::Close(None)).await;
    Ok(())
}

/// The next frame; once input has ended, `None` after [`LINGER`] without
/// output too.
async fn next_or_quiet<S>(rx: &mut S, input_open: bool) -> Option<Message>
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let next = async { rx.next().await.and_then(Result::ok) };
    if input_open {
        next.await
    } else {
        tokio::time::timeout(LINGER, next).await.ok().flatten()
    }
}

async fn write(stdout: &mut tokio::io::Stdout, bytes: &[u8]) -> CliResult {
    stdout
        .write_all(bytes)
        .await
        .map_err(|e| CliError::new(FAILURE, format!("cannot write the console's output: {e}")))?;
    let _ = stdout.flush().await;
    Ok(())
}
