//! Simulated serial consoles: each VM whose console is asked for gets a
//! TCP listener on 127.0.0.1 that behaves like a tiny serial console. A
//! client is greeted with a banner and a login prompt, and what it types
//! is echoed back (a fresh prompt after each line), which is what the
//! console proxy and its users can check end to end.

use cloud_driver::SerialEndpoint;
use cloud_model::InstanceId;
use std::collections::HashMap;
use std::io;
use std::sync::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// The serial console listeners of a fake host, one per VM.
#[derive(Debug, Default)]
pub(crate) struct SerialPorts {
    open: Mutex<HashMap<InstanceId, (u16, JoinHandle<()>)>>,
}

impl SerialPorts {
    /// The endpoint of VM `id` (named `name`), its listener started on
    /// first use.
    pub(crate) async fn endpoint(&self, id: InstanceId, name: &str) -> io::Result<SerialEndpoint> {
        if let Some((port, _)) = self.lock().get(&id) {
            return Ok(endpoint(*port));
        }
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let task = tokio::spawn(serve(listener, name.to_owned()));
        let mut open = self.lock();
        // Another request may have opened one meanwhile: keep the first.
        if let Some((port, _)) = open.get(&id) {
            task.abort();
            return Ok(endpoint(*port));
        }
        open.insert(id, (port, task));
        Ok(endpoint(port))
    }

    /// Closes VM `id`'s console (its listener and every client of it).
    pub(crate) fn close(&self, id: InstanceId) {
        if let Some((_, task)) = self.lock().remove(&id) {
            task.abort();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<InstanceId, (u16, JoinHandle<()>)>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for SerialPorts {
    fn drop(&mut self) {
        for (_, (_, task)) in self.lock().drain() {
            task.abort();
        }
    }
}

fn endpoint(port: u16) -> SerialEndpoint {
    SerialEndpoint {
        host: "127.0.0.1".to_owned(),
        port,
    }
}

/// Accepts clients until aborted; aborting it drops the clients too.
async fn serve(listener: TcpListener, name: String) {
    let mut clients = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    clients.spawn(session(stream, name.clone()));
                }
                // Transient (out of descriptors): try again shortly.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            },
            Some(_) = clients.join_next(), if !clients.is_empty() => {}
        }
    }
}

/// One client: the banner and prompt, then an echo of every byte typed.
async fn session(mut stream: TcpStream, name: String) {
    let prompt = format!("{name} login: ");
    let banner = format!("\r\nFake serial console of {name}\r\n\r\n{prompt}");
    if stream.write_all(banner.as_bytes()).await.is_err() {
        return;
    }
    let mut buf = [0u8; 1024];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut out = Vec::with_capacity(n + prompt.len());
        for &b in &buf[..n] {
            if b == b'\r' || b == b'\n' {
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(prompt.as_bytes());
            } else {
                out.push(b);
            }
        }
        if stream.write_all(&out).await.is_err() {
            return;
        }
    }
}
