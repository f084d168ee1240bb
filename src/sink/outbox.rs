//! A sink's on-disk outbox: alerts that could not be delivered, one JSON
//! line each, appended with fsync and rewritten atomically (temp + rename)
//! as they are delivered, so a crash never loses or corrupts it.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;

/// One sink's outbox file.
#[derive(Debug)]
pub struct Outbox {
    path: PathBuf,
    depth: usize,
}

impl Outbox {
    /// Open (creating the directory) `<dir>/<name>.jsonl`; counts what is left
    /// from a previous run.
    pub async fn open(dir: &Path, name: &str) -> io::Result<Self> {
        tokio::fs::create_dir_all(dir).await?;
        let path = dir.join(format!("{name}.jsonl"));
        let depth = match tokio::fs::read_to_string(&path).await {
            Ok(s) => s.lines().filter(|l| !l.trim().is_empty()).count(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        Ok(Self { path, depth })
    }

    /// Alerts waiting.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one alert durably.
    pub async fn append(&mut self, json: &str) -> io::Result<()> {
        let mut f = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .await?;
        let mut line = Vec::with_capacity(json.len() + 1);
        line.extend_from_slice(json.as_bytes());
        line.push(b'\n');
        f.write_all(&line).await?;
        f.sync_data().await?;
        self.depth += 1;
        Ok(())
    }

    /// Deliver waiting alerts in order with `deliver` (true = delivered)
    /// until one fails; the rest stay. Returns how many were delivered.
    pub async fn drain<F, Fut>(&mut self, mut deliver: F) -> io::Result<usize>
    where
        F: FnMut(String) -> Fut,
        Fut: Future<Output = bool>,
    {
        let text = match tokio::fs::read_to_string(&self.path).await {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.depth = 0;
                return Ok(0);
            }
            Err(e) => return Err(e),
        };
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let mut done = 0;
        for l in &lines {
            if !deliver(l.to_string()).await {
                break;
            }
            done += 1;
        }
        if done > 0 {
            let rest = &lines[done..];
            let tmp = self.path.with_extension("jsonl.tmp");
            let mut body = rest.join("\n");
            if !body.is_empty() {
                body.push('\n');
            }
            let mut f = tokio::fs::File::create(&tmp).await?;
            f.write_all(body.as_bytes()).await?;
            f.sync_all().await?;
            tokio::fs::rename(&tmp, &self.path).await?;
        }
        self.depth = lines.len() - done;
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn append_drain_partial_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(dir.path(), "webhook-0").await.unwrap();
        for i in 0..5 {
            o.append(&format!("{{\"n\":{i}}}")).await.unwrap();
        }
        assert_eq!(o.depth(), 5);
        let mut seen = Vec::new();
        let n = o
            .drain(|l| {
                let ok = !l.contains("\"n\":2");
                if ok {
                    seen.push(l);
                }
                async move { ok }
            })
            .await
            .unwrap();
        assert_eq!(n, 2);
        assert_eq!(o.depth(), 3);
        let reopened = Outbox::open(dir.path(), "webhook-0").await.unwrap();
        assert_eq!(reopened.depth(), 3);
        let mut o = reopened;
        let mut all = Vec::new();
        o.drain(|l| {
            all.push(l);
            async { true }
        })
        .await
        .unwrap();
        assert_eq!(all, vec!["{\"n\":2}", "{\"n\":3}", "{\"n\":4}"]);
        assert_eq!(o.depth(), 0);
    }
}
