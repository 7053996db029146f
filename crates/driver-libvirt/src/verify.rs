//! Checking an image download while it streams: a writer that counts and
//! hashes (MD5 for Glance's `checksum`, SHA-512 for `os_hash_value`)
//! every byte it passes on, so a corrupt or short download is caught
//! without reading the file again.

use md5::{Digest, Md5};
use sha2::Sha512;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;

/// What the image API says the bytes should be. `None` = not checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expected {
    /// Size in bytes.
    pub size: Option<u64>,
    /// MD5, hex.
    pub md5: Option<String>,
    /// SHA-512, hex.
    pub sha512: Option<String>,
}

/// Passes bytes on to `inner`, hashing and counting them.
pub struct VerifyingWriter<W> {
    inner: W,
    md5: Md5,
    sha512: Sha512,
    written: u64,
}

impl<W> VerifyingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        VerifyingWriter {
            inner,
            md5: Md5::new(),
            sha512: Sha512::new(),
            written: 0,
        }
    }

    /// Checks what was written against `expected` and against the count the
    /// fetcher `reported`. The error is the message shown to the user.
    pub fn finish(self, reported: u64, expected: &Expected) -> Result<(), String> {
        let got = self.written;
        if let Some(size) = expected.size {
            if got < size {
                return Err(format!(
                    "download truncated: received {got} of {size} bytes"
                ));
            }
            if got > size {
                return Err(format!(
                    "size mismatch: received {got} bytes, the image has {size}"
                ));
            }
        }
        if reported > got {
            return Err(format!(
                "download truncated: the source sent {reported} bytes but {got} arrived"
            ));
        }
        if reported < got {
            return Err(format!(
                "size mismatch: the source sent {reported} bytes but {got} arrived"
            ));
        }
        if let Some(want) = &expected.md5 {
            let have = hex::encode(self.md5.finalize());
            if !have.eq_ignore_ascii_case(want.trim()) {
                return Err(format!(
                    "checksum mismatch: MD5 of the data is {have}, expected {want}"
                ));
            }
        }
        if let Some(want) = &expected.sha512 {
            let have = hex::encode(self.sha512.finalize());
            if !have.eq_ignore_ascii_case(want.trim()) {
                return Err(format!(
                    "checksum mismatch: SHA-512 of the data is {have}, expected {want}"
                ));
            }
        }
        Ok(())
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for VerifyingWriter<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                // Only what the inner writer accepted counts.
                this.md5.update(&buf[..n]);
                this.sha512.update(&buf[..n]);
                this.written += n as u64;
                Poll::Ready(Ok(n))
            }
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn hashes(data: &[u8]) -> (String, String) {
        (
            hex::encode(Md5::digest(data)),
            hex::encode(Sha512::digest(data)),
        )
    }

    async fn write(data: &[u8]) -> VerifyingWriter<Vec<u8>> {
        let mut w = VerifyingWriter::new(Vec::new());
        for chunk in data.chunks(7) {
            w.write_all(chunk).await.unwrap();
        }
        w
    }

    #[tokio::test]
    async fn accepts_matching_data_and_names_each_mismatch() {
        let data = b"hello image bytes, streamed in chunks".to_vec();
        let (md5, sha) = hashes(&data);
        let exp = Expected {
            size: Some(data.len() as u64),
            md5: Some(md5.to_uppercase()),
            sha512: Some(sha.clone()),
        };
        let n = data.len() as u64;
        assert_eq!(write(&data).await.finish(n, &exp), Ok(()));

        let mut bad = data.clone();
        bad[3] ^= 1;
        let e = write(&bad).await.finish(n, &exp).unwrap_err();
        assert!(e.starts_with("checksum mismatch: MD5"), "{e}");

        let only_sha = Expected {
            md5: None,
            ..exp.clone()
        };
        let e = write(&bad).await.finish(n, &only_sha).unwrap_err();
        assert!(e.starts_with("checksum mismatch: SHA-512"), "{e}");

        let e = write(&data[..10]).await.finish(10, &exp).unwrap_err();
        assert_eq!(e, format!("download truncated: received 10 of {n} bytes"));

        let e = write(&data)
            .await
            .finish(n + 5, &Expected::default())
            .unwrap_err();
        assert!(e.starts_with("download truncated"), "{e}");
    }
}
