//! The serial console proxy: `GET /serial-console/{server_id}?token=...`,
//! a websocket joined to the guest's serial port.
//!
//! It runs in the API process (docs/adr/0012-serial-console-proxy.md): the
//! token is redeemed (one use, unexpired, made for this server), the
//! server's host says where its serial port is served (a TCP endpoint,
//! `ComputeMsg::SerialConsole`), and bytes are pumped both ways: the
//! guest's output as binary frames, the user's input from binary or text
//! frames. Nova's serial proxy speaks the `binary` subprotocol; clients
//! that ask for it get it.
//!
//! A hard reboot restarts the guest's emulator, which closes its serial
//! port: the session then reconnects to the server's (new) endpoint for
//! [`RECONNECT_WINDOW`], so a user watching the console sees the guest
//! boot again. Output while no emulator listens is only in the console log.

use crate::compute::server_console::{console_host, serial_endpoint};
use crate::console_tokens::{SERIAL, redeem};
use crate::error::{ApiError, FaultKind, Service, render_faults};
use crate::extract::QueryPairs;
use crate::request_id::RequestId;
use crate::server::ConnectionHold;
use crate::state::AppState;
use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, Path, State};
use axum::response::Response;
use axum::routing::get;
use cloud_driver::SerialEndpoint;
use cloud_model::instance::Instance;
use cloud_model::{Error, InstanceId, ResourceKind};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Where the proxy is mounted.
pub const PREFIX: &str = "/serial-console";

/// How long a session whose guest closed its serial port (a reboot) keeps
/// trying to reach it again before it closes.
pub const RECONNECT_WINDOW: Duration = Duration::from_secs(120);

/// Pause between reconnection attempts.
const RECONNECT_PAUSE: Duration = Duration::from_millis(500);

/// Longest a TCP connection to a host's serial port may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// `[api.serial_console]`: the URLs `os-getSerialConsole` hands out.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SerialConsoleConfig {
    /// The proxy's URL as clients reach it (`ws://` or `wss://`, Nova's
    /// `[serial_console] base_url`); unset, it is `public_url` (or the
    /// request's `Host`) with `ws` for `http`, plus [`PREFIX`].
    pub base_url: Option<String>,
    /// How long a console URL's token stays valid (it works once).
    pub token_ttl_secs: u64,
}

impl Default for SerialConsoleConfig {
    fn default() -> Self {
        SerialConsoleConfig {
            base_url: None,
            token_ttl_secs: 600,
        }
    }
}

/// The console URL of server `id` with `token`; `api` is the API's base
/// URL for this request (`crate::extract::BaseUrl`).
pub fn console_url(state: &AppState, api: &str, id: InstanceId, token: &str) -> String {
    let base = match &state.config().serial_console.base_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let ws = if let Some(rest) = api.strip_prefix("https://") {
                format!("wss://{rest}")
            } else if let Some(rest) = api.strip_prefix("http://") {
                format!("ws://{rest}")
            } else {
                api.to_owned()
            };
            format!("{ws}{PREFIX}")
        }
    };
    format!("{base}/{id}?token={token}")
}

/// The proxy's route (not in the OpenAPI document: it is a websocket).
pub fn router() -> Router<AppState> {
    Router::new()
        .route(&format!("{PREFIX}/{{server_id}}"), get(serial_console))
        .layer(axum::middleware::from_fn(
            |req, next: axum::middleware::Next| async move {
                render_faults(Service::Compute, next.run(req).await).await
            },
        ))
}

/// Opens a serial console: redeems the token, reaches the guest's serial
/// port, then upgrades to a websocket joined to it. Errors come before the
/// upgrade, as plain HTTP answers in Nova's fault format.
async fn serial_console(
    State(state): State<AppState>,
    Path(server_id): Path<String>,
    query: QueryPairs,
    Extension(RequestId(request_id)): Extension<RequestId>,
    hold: Option<Extension<ConnectionHold>>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let id = InstanceId::parse(&server_id)
        .ok_or_else(|| ApiError::from(Error::not_found(ResourceKind::Server, &server_id)))?;
    let token = query
        .get("token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                FaultKind::Unauthenticated,
                "A console token is required: open the URL os-getSerialConsole returned.",
            )
        })?;
    if !redeem(&state, token, id, SERIAL).await? {
        return Err(ApiError::new(
            FaultKind::Unauthenticated,
            "The console token is invalid: it was used already, has expired, or was made for \
             another server. Ask for a new console URL.",
        ));
    }
    let target = Target {
        state,
        id,
        request_id,
    };
    let stream = target.connect().await?;
    let hold = hold.map(|Extension(h)| h);
    Ok(ws
        .protocols(["binary"])
        .on_upgrade(move |socket| async move {
            target.session(socket, stream).await;
            drop(hold);
        }))
}

/// The guest a session is joined to.
struct Target {
    state: AppState,
    id: InstanceId,
    request_id: String,
}

/// Why a pump stopped.
enum Ended {
    /// The user closed the websocket (or it broke): the session is over.
    Client,
    /// The guest's serial port closed (its emulator stopped).
    Guest,
}

type WsTx = SplitSink<WebSocket, Message>;
type WsRx = SplitStream<WebSocket>;

impl Target {
    /// The server as the store has it now (deleted ones are not found).
    async fn instance(&self) -> Result<Instance, ApiError> {
        let inst = self.state.store().instance_get_any(self.id).await?;
        if inst.deleted_at.is_some() {
            return Err(Error::not_found(ResourceKind::Server, self.id.to_string()).into());
        }
        Ok(inst)
    }

    /// Connects to the guest's serial port, where its host says it is.
    async fn connect(&self) -> Result<TcpStream, ApiError> {
        let inst = self.instance().await?;
        let host = console_host(&inst)?;
        let SerialEndpoint { host: addr, port } =
            serial_endpoint(&self.state, &inst, &host, &self.request_id).await?;
        let unreachable = |why: String| {
            ApiError::new(
                FaultKind::Unavailable,
                format!(
                    "The serial console of instance {} cannot be reached at {addr}:{port}: {why}",
                    self.id
                ),
            )
        };
        let stream =
            tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((addr.as_str(), port)))
                .await
                .map_err(|_| unreachable("timed out".to_owned()))?
                .map_err(|e| unreachable(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    /// Pumps bytes until the user leaves, reconnecting to the guest when
    /// its serial port closes (a reboot), then closes the websocket.
    async fn session(self, socket: WebSocket, first: TcpStream) {
        let (mut tx, mut rx) = socket.split();
        let mut stream = Some(first);
        loop {
            let s = match stream.take() {
                Some(s) => s,
                None => match self.reconnect(&mut rx).await {
                    Some(s) => s,
                    None => break,
                },
            };
            if let Ended::Client = pump(s, &mut tx, &mut rx).await {
                break;
            }
            tracing::info!(instance = %self.id, "serial port closed; reconnecting");
        }
        let _ = tx.send(Message::Close(None)).await;
    }

    /// Reaches the guest's serial port again within [`RECONNECT_WINDOW`];
    /// `None` when the user left, the server is gone or stopped, or the
    /// window passed. What the user types meanwhile is dropped.
    async fn reconnect(&self, rx: &mut WsRx) -> Option<TcpStream> {
        let until = Instant::now() + RECONNECT_WINDOW;
        while Instant::now() < until {
            let pause = tokio::time::sleep(RECONNECT_PAUSE);
            tokio::pin!(pause);
            loop {
                tokio::select! {
                    () = &mut pause => break,
                    m = rx.next() => match m {
                        None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return None,
                        Some(Ok(_)) => {}
                    },
                }
            }
            match self.connect().await {
                Ok(s) => return Some(s),
                Err(e) if e.0.kind == FaultKind::NotFound(Some(ResourceKind::Server)) => {
                    return None;
                }
                Err(e) => tracing::debug!(instance = %self.id, error = %e.0.message, "not yet"),
            }
        }
        None
    }
}

/// Copies guest output to the websocket and user input to the guest until
/// one side ends.
async fn pump(stream: TcpStream, tx: &mut WsTx, rx: &mut WsRx) -> Ended {
    let (mut from_guest, mut to_guest) = stream.into_split();
    let mut buf = vec![0u8; 4096];
    loop {
        tokio::select! {
            n = from_guest.read(&mut buf) => match n {
                Ok(0) | Err(_) => return Ended::Guest,
                Ok(n) => {
                    let frame = Message::Binary(bytes::Bytes::copy_from_slice(&buf[..n]));
                    if tx.send(frame).await.is_err() {
                        return Ended::Client;
                    }
                }
            },
            m = rx.next() => {
                let input = match m {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return Ended::Client,
                    Some(Ok(Message::Binary(b))) => b,
                    Some(Ok(Message::Text(t))) => bytes::Bytes::copy_from_slice(t.as_bytes()),
                    // Pings are answered by the websocket layer.
                    Some(Ok(_)) => continue,
                };
                if to_guest.write_all(&input).await.is_err() {
                    return Ended::Guest;
                }
            }
        }
    }
}
