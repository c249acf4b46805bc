//! Pinned downloads: the CLIs a run drives (kind, helm) and the files it installs (Gateway API
//! CRDs), fetched once into `target/tools/<name>-<version>-<sum prefix>/`, verified against the sha256 in
//! `versions.toml`, and used from there afterwards (offline once cached). A cached file is
//! hashed again whenever a run resolves it; the cache directory carries the pinned sum.
//!
//! A download is streamed into a `.partial` file while hashed; only a matching sum turns it
//! into the cached file, so a mismatch leaves nothing behind. The cache records the verified sum
//! next to the file, so a changed pin downloads again instead of trusting an old file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::profile::{GatewayApiPins, ToolPin, Versions};

/// The largest download accepted (helm's archive is ~20 MB, kind ~10 MB).
pub const MAX_DOWNLOAD_BYTES: u64 = 200 * 1024 * 1024;
/// How long one download may take.
pub const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(300);

/// An operating system and CPU as release assets name them (`linux/amd64`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platform {
    pub os: &'static str,
    pub arch: &'static str,
}

impl Platform {
    /// This machine, or `None` where no pinned asset can exist.
    pub fn current() -> Option<Platform> {
        let os = match std::env::consts::OS {
            "linux" => "linux",
            "macos" => "darwin",
            _ => return None,
        };
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            _ => return None,
        };
        Some(Platform { os, arch })
    }

    pub fn key(&self) -> String {
        format!("{}/{}", self.os, self.arch)
    }
}

/// One pinned file: where it comes from, what it must hash to, where it is cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// `kind`, `helm`, `gateway-api`.
    pub name: String,
    pub version: String,
    pub url: String,
    pub sha256: String,
    /// For `.tar.gz` downloads: the member to extract.
    pub archive_path: Option<String>,
    /// The cached file's name inside `<name>-<version>/`.
    pub file: String,
    pub executable: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("versions.toml pins no tool `{0}`")]
    Unpinned(String),
    #[error("{tool} {version} has no pinned sha256 for {platform}; pinned platforms: {known}")]
    NoPlatform { tool: String, version: String, platform: String, known: String },
    #[error("this machine ({os}/{arch}) has no pinned downloads; put the tools on PATH or run elsewhere")]
    UnknownPlatform { os: &'static str, arch: &'static str },
    #[error("cannot download {url}: {reason}")]
    Download { url: String, reason: String },
    #[error(
        "checksum mismatch for {url}: expected sha256 {expected}, got {actual}; the download was deleted. \
         If upstream re-published the file, check the new sum against the release page before changing versions.toml"
    )]
    Mismatch { url: String, expected: String, actual: String },
    #[error("{archive} has no member `{member}`")]
    NotInArchive { archive: String, member: String },
    #[error("cannot write {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

impl ToolPin {
    /// The asset of this tool for `platform`.
    pub fn artifact(&self, name: &str, platform: Platform) -> Result<Artifact, ToolError> {
        let fill = |t: &str| {
            t.replace("{version}", &self.version).replace("{os}", platform.os).replace("{arch}", platform.arch)
        };
        let sha256 = self.sha256.get(&platform.key()).ok_or_else(|| ToolError::NoPlatform {
            tool: name.to_owned(),
            version: self.version.clone(),
            platform: platform.key(),
            known: self.sha256.keys().cloned().collect::<Vec<_>>().join(", "),
        })?;
        Ok(Artifact {
            name: name.to_owned(),
            version: self.version.clone(),
            url: fill(&self.url),
            sha256: sha256.clone(),
            archive_path: self.archive_path.as_deref().map(fill),
            file: name.to_owned(),
            executable: true,
        })
    }
}

impl GatewayApiPins {
    /// One artifact per CRD file, in the order of `versions.toml`'s table (sorted by name).
    pub fn artifacts(&self) -> Vec<Artifact> {
        self.sha256
            .iter()
            .map(|(file, sum)| Artifact {
                name: "gateway-api".into(),
                version: self.version.clone(),
                url: self.url.replace("{version}", &self.version).replace("{file}", file),
                sha256: sum.clone(),
                archive_path: None,
                file: file.clone(),
                executable: false,
            })
            .collect()
    }
}

/// The pinned CLI `name` for this machine.
pub fn tool(versions: &Versions, name: &str) -> Result<Artifact, ToolError> {
    let pin = versions.tools.get(name).ok_or_else(|| ToolError::Unpinned(name.to_owned()))?;
    let platform = Platform::current()
        .ok_or(ToolError::UnknownPlatform { os: std::env::consts::OS, arch: std::env::consts::ARCH })?;
    pin.artifact(name, platform)
}

/// The seam to the network: tests serve files from a local server.
pub trait Fetch: Send + Sync {
    /// Stream `url` into `sink`, at most `limit` bytes.
    fn fetch(
        &self,
        url: &str,
        sink: &mut (dyn Write + Send),
        limit: u64,
    ) -> impl std::future::Future<Output = Result<(), String>> + Send;
}

/// HTTPS through reqwest (ring TLS), following redirects (GitHub assets redirect to a CDN).
pub struct Http {
    client: reqwest::Client,
}

impl Http {
    /// HTTPS only, redirects included: a pin's URL is checked when `versions.toml` is read, and a
    /// redirect to plain HTTP is refused here.
    pub fn new() -> Result<Self, ToolError> {
        Self::build(true)
    }

    /// Plain HTTP allowed, for tests that serve files from a loopback server.
    #[cfg(test)]
    pub(crate) fn plain_for_tests() -> Result<Self, ToolError> {
        Self::build(false)
    }

    fn build(https_only: bool) -> Result<Self, ToolError> {
        crate::tls::install_ring_provider();
        let client = reqwest::Client::builder()
            .https_only(https_only)
            .timeout(DOWNLOAD_TIMEOUT)
            .connect_timeout(Duration::from_secs(20))
            .user_agent(concat!("kong-mesh-e2e/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ToolError::Download { url: String::new(), reason: e.to_string() })?;
        Ok(Http { client })
    }
}

impl Fetch for Http {
    async fn fetch(&self, url: &str, sink: &mut (dyn Write + Send), limit: u64) -> Result<(), String> {
        let mut response = self.client.get(url).send().await.map_err(|e| why_not_fetched(&e))?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status()));
        }
        let mut total = 0u64;
        while let Some(chunk) = response.chunk().await.map_err(|e| why_not_fetched(&e))? {
            total += chunk.len() as u64;
            if total > limit {
                return Err(format!("larger than {limit} bytes"));
            }
            sink.write_all(&chunk).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// Where a download failed, in words that point at the fix: name resolution, the connection,
/// a proxy, TLS, or a timeout; with how to do without the network.
fn why_not_fetched(e: &reqwest::Error) -> String {
    let mut chain = Vec::new();
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        chain.push(s.to_string());
        source = s.source();
    }
    // The proxy's host only: its URL may carry a user and password, never printed.
    let proxy = ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"].iter().find_map(|v| {
        let url = std::env::var(v).ok().filter(|p| !p.is_empty())?;
        let host = url.split("://").last().unwrap_or(&url).rsplit('@').next().unwrap_or_default();
        Some(format!("{v} ({})", host.trim_end_matches('/')))
    });
    failure_cause(&chain, e.is_timeout(), e.is_connect(), proxy.as_deref())
}

/// [`why_not_fetched`] on the error's messages (outermost first), for tests.
fn failure_cause(chain: &[String], timeout: bool, connect: bool, proxy: Option<&str>) -> String {
    let all = chain.join(": ").to_lowercase();
    let innermost = chain.last().map(String::as_str).unwrap_or("unknown error");
    let cause = if all.contains("dns error") || all.contains("failed to lookup address") {
        format!("DNS: the host name does not resolve ({innermost})")
    } else if all.contains("certificate") || all.contains("tls") || all.contains("handshake") {
        format!(
            "TLS: {innermost} (the system's trust store is used: behind a TLS-inspecting proxy, add its CA \
             there)"
        )
    } else if timeout {
        format!("timed out ({innermost})")
    } else if connect {
        match proxy {
            Some(p) => format!("cannot connect through the proxy {p} ({innermost})"),
            None => format!("cannot connect ({innermost}); if this network needs a proxy, set HTTPS_PROXY"),
        }
    } else {
        innermost.to_owned()
    };
    format!(
        "{cause}. Without network access: run `{} tools` on a machine that has it and copy target/tools \
         (or KME2E_TOOLS_DIR) here; cached files are used only if their sha256 matches the pins",
        crate::command_name()
    )
}

/// What `resolve` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub path: PathBuf,
    /// True when this call downloaded it (false: taken from the cache).
    pub downloaded: bool,
}

/// `target/tools/`.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

/// A writer that hashes what passes through it.
struct Hashing<W> {
    inner: W,
    digest: ring::digest::Context,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.digest.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The sha256 of `bytes` as versions.toml writes it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

impl Cache {
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Cache { dir: dir.into() }
    }

    /// `<name>-<version>-<first 12 hex digits of the pinned sum>`: files pinned differently
    /// (e.g. by a trusted bundle) never share a directory with the checkout's.
    pub fn dir_of(&self, a: &Artifact) -> PathBuf {
        let short = a.sha256.get(..12).unwrap_or(&a.sha256);
        self.dir.join(format!("{}-{}-{short}", a.name, a.version))
    }

    pub fn path_of(&self, a: &Artifact) -> PathBuf {
        self.dir_of(a).join(&a.file)
    }

    /// Where an archive's download is kept: the binary inside is checked against it on every use.
    fn archive_of(&self, a: &Artifact) -> PathBuf {
        self.dir_of(a).join(format!(".{}.download", a.file))
    }

    /// The cached file, when it is exactly what the pin names: its sha256 (or, for a binary from
    /// an archive, the archive's sha256 and the binary's bytes against the archive's member) is
    /// computed again on every call. A marker file saying "verified" would trust whoever can
    /// write the cache; hashing ~10-20 MB is cheap next to a cluster run.
    pub fn cached(&self, a: &Artifact) -> Option<PathBuf> {
        let path = self.path_of(a);
        let regular = |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_file());
        if !regular(&path) {
            return None;
        }
        let verified = match &a.archive_path {
            None => sha256_of_file(&path).ok()? == a.sha256,
            Some(member) => {
                let archive = self.archive_of(a);
                regular(&archive)
                    && sha256_of_file(&archive).ok()? == a.sha256
                    && member_digest(&archive, member).ok()? == sha256_of_file(&path).ok()?
            }
        };
        verified.then_some(path)
    }

    /// Put `bytes` in the cache as if downloaded (tests of what uses the cache); `a` must pin
    /// exactly `bytes` (no archive): the cache verifies on every use.
    #[cfg(test)]
    pub(crate) fn seed(&self, a: &Artifact, bytes: &[u8]) {
        assert_eq!(a.sha256, sha256_hex(bytes), "a seeded file must match its pin");
        assert!(a.archive_path.is_none(), "seed plain files only");
        std::fs::create_dir_all(self.dir_of(a)).expect("cache dir");
        std::fs::write(self.path_of(a), bytes).expect("cached file");
    }

    /// The cached file, downloading and verifying it first when needed.
    pub async fn resolve(&self, a: &Artifact, fetch: &impl Fetch) -> Result<Resolved, ToolError> {
        if let Some(path) = self.cached(a) {
            return Ok(Resolved { path, downloaded: false });
        }
        let dir = self.dir_of(a);
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| ToolError::Io { path, source }
        };
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        // Per process, so parallel runs filling the same cache do not write into one file. The
        // guard removes it on every way out: an error, a dropped (interrupted) future, or the
        // second Ctrl-C's immediate exit.
        let partial = Partial::new(dir.join(format!(".{}.{}.partial", a.file, std::process::id())));
        self.download_verified(a, fetch, partial.path()).await?;
        let path = self.path_of(a);
        // Everything is prepared beside the final file and renamed into place at the end, so a
        // concurrent run never executes a half-written binary.
        let ready = match &a.archive_path {
            Some(member) => {
                let unpacked = Partial::new(dir.join(format!(".{}.{}.unpacked", a.file, std::process::id())));
                extract(partial.path(), member, unpacked.path())?;
                // The verified archive stays: it is what the binary is checked against later.
                let archive = self.archive_of(a);
                partial.persist(&archive).map_err(io(&archive))?;
                unpacked
            }
            None => partial,
        };
        if a.executable {
            make_executable(ready.path()).map_err(io(ready.path()))?;
        }
        ready.persist(&path).map_err(io(&path))?;
        Ok(Resolved { path, downloaded: true })
    }

    async fn download_verified(&self, a: &Artifact, fetch: &impl Fetch, partial: &Path) -> Result<(), ToolError> {
        let file =
            std::fs::File::create(partial).map_err(|source| ToolError::Io { path: partial.to_owned(), source })?;
        let mut sink =
            Hashing { inner: std::io::BufWriter::new(file), digest: ring::digest::Context::new(&ring::digest::SHA256) };
        fetch
            .fetch(&a.url, &mut sink, MAX_DOWNLOAD_BYTES)
            .await
            .map_err(|reason| ToolError::Download { url: a.url.clone(), reason })?;
        sink.flush().map_err(|source| ToolError::Io { path: partial.to_owned(), source })?;
        let actual = hex(sink.digest.finish().as_ref());
        if actual != a.sha256 {
            return Err(ToolError::Mismatch { url: a.url.clone(), expected: a.sha256.clone(), actual });
        }
        Ok(())
    }
}

/// Files being written into the cache now, so an immediate exit can remove them.
static IN_PROGRESS: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// A file in the making: removed when dropped unless persisted.
struct Partial {
    path: PathBuf,
    kept: bool,
}

impl Partial {
    fn new(path: PathBuf) -> Self {
        if let Ok(mut files) = IN_PROGRESS.lock() {
            files.push(path.clone());
        }
        Partial { path, kept: false }
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn forget(&self) {
        if let Ok(mut files) = IN_PROGRESS.lock() {
            files.retain(|p| p != &self.path);
        }
    }

    /// Move the finished file to `to` (same directory, so atomic).
    fn persist(mut self, to: &Path) -> std::io::Result<()> {
        std::fs::rename(&self.path, to)?;
        self.kept = true;
        Ok(())
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
        self.forget();
    }
}

/// Remove every cache file still being written: called before the process exits at once (the
/// second Ctrl-C), when no destructor runs.
pub fn remove_partial_files() {
    if let Ok(files) = IN_PROGRESS.lock() {
        for path in files.iter() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The sha256 of everything `reader` yields.
fn sha256_of(reader: &mut (impl std::io::Read + ?Sized)) -> std::io::Result<String> {
    let mut digest = Hashing { inner: std::io::sink(), digest: ring::digest::Context::new(&ring::digest::SHA256) };
    std::io::copy(reader, &mut digest)?;
    Ok(hex(digest.digest.finish().as_ref()))
}

fn sha256_of_file(path: &Path) -> std::io::Result<String> {
    sha256_of(&mut std::fs::File::open(path)?)
}

/// Run `with` on `member` of the `.tar.gz` at `archive`.
fn with_member<T>(
    archive: &Path,
    member: &str,
    with: impl FnOnce(&mut dyn std::io::Read) -> Result<T, ToolError>,
) -> Result<T, ToolError> {
    let io = |source| ToolError::Io { path: archive.to_owned(), source };
    let file = std::fs::File::open(archive).map_err(io)?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    for entry in tar.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        if entry.path().map_err(io)?.as_ref() == Path::new(member) {
            return with(&mut entry);
        }
    }
    Err(ToolError::NotInArchive { archive: archive.display().to_string(), member: member.to_owned() })
}

/// The sha256 of `member` inside the `.tar.gz` at `archive`.
fn member_digest(archive: &Path, member: &str) -> Result<String, ToolError> {
    with_member(archive, member, |entry| {
        sha256_of(entry).map_err(|source| ToolError::Io { path: archive.to_owned(), source })
    })
}

fn extract(archive: &Path, member: &str, to: &Path) -> Result<(), ToolError> {
    with_member(archive, member, |entry| {
        let io = |source| ToolError::Io { path: to.to_owned(), source };
        let mut out = std::fs::File::create(to).map_err(io)?;
        std::io::copy(entry, &mut out).map_err(io)?;
        Ok(())
    })
}

fn make_executable(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Reply, serve};

    /// Download failures name their cause, from the messages reqwest and hyper give (their
    /// wording as of reqwest 0.13 / hyper-util 0.1), and say how to work offline.
    #[test]
    fn download_failures_name_their_cause() {
        let chain = |parts: &[&str]| parts.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let dns = chain(&[
            "error sending request for url (https://get.helm.sh/x)",
            "client error (Connect)",
            "dns error",
            "failed to lookup address information: Name or service not known",
        ]);
        let said = failure_cause(&dns, false, true, None);
        assert!(said.starts_with("DNS: the host name does not resolve (failed to lookup address"), "{said}");
        assert!(said.contains("run `cargo xtask tools` on a machine that has it"), "{said}");
        let tls =
            chain(&["error sending request", "client error (Connect)", "invalid peer certificate: UnknownIssuer"]);
        assert!(failure_cause(&tls, false, true, None).starts_with("TLS: invalid peer certificate: UnknownIssuer"));
        let refused = chain(&["error sending request", "client error (Connect)", "Connection refused (os error 111)"]);
        let said = failure_cause(&refused, false, true, Some("HTTPS_PROXY (proxy:3128)"));
        assert!(said.starts_with("cannot connect through the proxy HTTPS_PROXY (proxy:3128) (Connection refused"));
        assert!(failure_cause(&refused, false, true, None).contains("set HTTPS_PROXY"));
        let slow = chain(&["error sending request", "operation timed out"]);
        assert!(failure_cause(&slow, true, false, None).starts_with("timed out (operation timed out)"));
    }

    /// A real refused connection, through reqwest itself: classified as a connection failure.
    #[tokio::test]
    async fn a_refused_connection_is_said_to_be_one() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let http = Http::plain_for_tests().unwrap();
        let mut sink = Vec::new();
        let said = http.fetch(&format!("http://127.0.0.1:{port}/kind"), &mut sink, 10).await.unwrap_err();
        assert!(said.starts_with("cannot connect"), "{said}");
    }

    fn sha256(bytes: &[u8]) -> String {
        sha256_hex(bytes)
    }

    /// An interrupted download (its future dropped, as the first Ctrl-C does through the
    /// session's cancellation) leaves no `.partial` file; neither does the immediate exit's
    /// clean-up.
    #[tokio::test]
    async fn an_interrupted_download_leaves_nothing() {
        let addr = serve(|_| Reply::Hang).await;
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(cache_dir.path());
        let a = artifact(format!("http://{addr}/kind"), sha256(b"x"), None);
        let http = Http::plain_for_tests().unwrap();
        let resolving = cache.resolve(&a, &http);
        let interrupted = tokio::time::timeout(std::time::Duration::from_millis(300), resolving).await;
        assert!(interrupted.is_err(), "the download hangs until interrupted");
        let left: Vec<_> = std::fs::read_dir(cache.dir_of(&a)).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
        let partial = Partial::new(cache.dir_of(&a).join(".kind.1.partial"));
        std::fs::write(partial.path(), "half").unwrap();
        remove_partial_files();
        assert!(!partial.path().exists());
    }

    /// Production downloads never use plain HTTP, not even through a redirect. (A TLS server
    /// here would need a certificate the client trusts; the redirect case is covered by
    /// reqwest's `https_only`, which its redirect policy also applies: reqwest 0.13
    /// src/redirect.rs, `with_https_only`.)
    #[tokio::test]
    async fn plain_http_is_refused() {
        let addr = serve(|_| Reply::Bytes(b"evil".to_vec())).await;
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(cache_dir.path());
        let a = artifact(format!("http://{addr}/kind"), sha256(b"evil"), None);
        let err = cache.resolve(&a, &Http::new().unwrap()).await.unwrap_err();
        assert!(matches!(err, ToolError::Download { .. }), "{err}");
        assert_eq!(cache.cached(&a), None);
    }

    /// The cache is checked by hashing what is there, on every use: a binary swapped after its
    /// download is not "verified", whatever sits beside it.
    #[tokio::test]
    async fn a_swapped_cached_binary_is_not_used() {
        let body = b"#!/bin/sh\necho kind\n".to_vec();
        let served = body.clone();
        let addr = serve(move |_| Reply::Bytes(served.clone())).await;
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(cache_dir.path());
        let a = artifact(format!("http://{addr}/kind"), sha256(&body), None);
        let got = cache.resolve(&a, &Http::plain_for_tests().unwrap()).await.unwrap();
        assert_eq!(cache.cached(&a), Some(got.path.clone()));
        std::fs::write(&got.path, "#!/bin/sh\necho swapped\n").unwrap();
        assert_eq!(cache.cached(&a), None, "a swapped binary is not the pinned one");
        // resolve downloads the real one again.
        let again = cache.resolve(&a, &Http::plain_for_tests().unwrap()).await.unwrap();
        assert!(again.downloaded);
        assert_eq!(std::fs::read(&again.path).unwrap(), body);
        #[cfg(unix)]
        {
            std::fs::remove_file(&again.path).unwrap();
            let elsewhere = cache_dir.path().join("real-kind");
            std::fs::write(&elsewhere, &body).unwrap();
            std::os::unix::fs::symlink(&elsewhere, &again.path).unwrap();
            assert_eq!(cache.cached(&a), None, "a symlink in the cache is not a cached file");
        }
    }

    fn artifact(url: String, sum: String, archive_path: Option<&str>) -> Artifact {
        Artifact {
            name: "kind".into(),
            version: "v0.32.0".into(),
            url,
            sha256: sum,
            archive_path: archive_path.map(str::to_owned),
            file: "kind".into(),
            executable: true,
        }
    }

    #[tokio::test]
    async fn a_tampered_download_fails_with_both_sums_and_leaves_nothing() {
        let addr = serve(|_| Reply::Bytes(b"#!/bin/sh\necho evil\n".to_vec())).await;
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(cache_dir.path());
        let expected = sha256(b"the real kind");
        let a = artifact(format!("http://{addr}/kind-linux-amd64"), expected.clone(), None);
        let err = cache.resolve(&a, &Http::plain_for_tests().unwrap()).await.unwrap_err();
        let actual = sha256(b"#!/bin/sh\necho evil\n");
        let message = err.to_string();
        assert!(message.contains(&format!("expected sha256 {expected}, got {actual}")), "{message}");
        assert!(message.contains("the download was deleted"), "{message}");
        let left: Vec<_> = std::fs::read_dir(cache.dir_of(&a)).unwrap().collect();
        assert!(left.is_empty(), "nothing may stay behind: {left:?}");
        assert_eq!(cache.cached(&a), None);
    }

    #[tokio::test]
    async fn a_verified_download_is_cached_and_used_offline() {
        let body = b"#!/bin/sh\necho kind v0.32.0\n".to_vec();
        let sum = sha256(&body);
        let served = body.clone();
        let addr = serve(move |_| Reply::Bytes(served.clone())).await;
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(cache_dir.path());
        let a = artifact(format!("http://{addr}/kind"), sum, None);
        let first = cache.resolve(&a, &Http::plain_for_tests().unwrap()).await.unwrap();
        assert!(first.downloaded);
        assert_eq!(std::fs::read(&first.path).unwrap(), body);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&first.path).unwrap().permissions().mode() & 0o777, 0o755);
        }
        // Offline: a dead URL does not matter once cached.
        let offline = Artifact { url: "http://127.0.0.1:1/gone".into(), ..a.clone() };
        let again = cache.resolve(&offline, &Http::plain_for_tests().unwrap()).await.unwrap();
        assert_eq!(again, Resolved { path: first.path.clone(), downloaded: false });
        // A new pin does not trust the old file.
        let repinned = Artifact { sha256: sha256(b"other"), ..offline };
        assert_eq!(cache.cached(&repinned), None);
        assert!(matches!(
            cache.resolve(&repinned, &Http::plain_for_tests().unwrap()).await,
            Err(ToolError::Download { .. })
        ));
    }

    #[tokio::test]
    async fn archives_are_verified_then_unpacked() {
        let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        let exe = b"#!/bin/sh\necho helm\n";
        let mut header = tar::Header::new_gnu();
        header.set_size(exe.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, "linux-amd64/helm", &exe[..]).unwrap();
        let gz = tar.into_inner().unwrap().finish().unwrap();
        let sum = sha256(&gz);
        let addr = serve(move |_| Reply::Bytes(gz.clone())).await;
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = Cache::at(cache_dir.path());
        let a = Artifact {
            name: "helm".into(),
            file: "helm".into(),
            ..artifact(format!("http://{addr}/helm.tar.gz"), sum.clone(), Some("linux-amd64/helm"))
        };
        let got = cache.resolve(&a, &Http::plain_for_tests().unwrap()).await.unwrap();
        assert_eq!(std::fs::read(&got.path).unwrap(), exe);
        assert_eq!(cache.cached(&a), Some(got.path.clone()), "checked against the kept archive");
        std::fs::write(&got.path, "#!/bin/sh\necho swapped\n").unwrap();
        assert_eq!(cache.cached(&a), None, "the binary must be the archive's member");
        let missing = Artifact { archive_path: Some("darwin-arm64/helm".into()), version: "v2".into(), ..a };
        let err = cache.resolve(&missing, &Http::plain_for_tests().unwrap()).await.unwrap_err();
        assert!(err.to_string().contains("has no member `darwin-arm64/helm`"), "{err}");
        assert_eq!(cache.cached(&missing), None);
        let left: Vec<_> = std::fs::read_dir(cache.dir_of(&missing)).unwrap().collect();
        assert!(left.is_empty(), "no partial or unpacked file stays behind: {left:?}");
    }

    #[test]
    fn the_project_pins_every_tool_for_four_platforms() {
        let versions = Versions::parse(include_str!("../../versions.toml")).unwrap();
        for name in ["kind", "helm"] {
            for (os, arch) in [("linux", "amd64"), ("linux", "arm64"), ("darwin", "amd64"), ("darwin", "arm64")] {
                let a = versions.tools[name].artifact(name, Platform { os, arch }).unwrap();
                assert!(a.url.starts_with("https://") && a.url.contains(os) && a.url.contains(arch), "{}", a.url);
            }
        }
        let helm = versions.tools["helm"].artifact("helm", Platform { os: "linux", arch: "arm64" }).unwrap();
        assert_eq!(helm.url, "https://get.helm.sh/helm-v4.3.0-linux-arm64.tar.gz");
        assert_eq!(helm.archive_path.as_deref(), Some("linux-arm64/helm"));
        let err = versions.tools["kind"].artifact("kind", Platform { os: "linux", arch: "s390x" }).unwrap_err();
        assert!(err.to_string().contains("no pinned sha256 for linux/s390x"), "{err}");
        let crds = versions.gateway_api.artifacts();
        assert_eq!(crds.len(), 5);
        assert!(crds.iter().all(|a| a.url.starts_with(
            "https://raw.githubusercontent.com/kubernetes-sigs/gateway-api/v1.3.0/config/crd/standard/gateway.networking.k8s.io_"
        )));
    }
}
