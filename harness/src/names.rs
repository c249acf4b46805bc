//! Names that become paths, Kubernetes names or URLs. Inputs (scenario files, fixtures,
//! `versions.toml`, repro bundles) may come from strangers, so every name taken from them is
//! checked here before it is joined to a directory or sent to the API server.
//!
//! Invariant: a path built from input text goes through [`join_under`] (or a name checked by
//! [`file_segment`]); nothing else joins input text to a directory.

use std::path::{Path, PathBuf};

/// The longest name accepted as one path segment (file systems allow 255 bytes).
pub const MAX_SEGMENT: usize = 128;

/// A Kubernetes DNS-1123 label: at most 63 characters of `[a-z0-9-]`, starting and ending with
/// an alphanumeric (namespaces, Services, Helm release names).
pub fn dns1123_label(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 63 {
        return Err(format!("`{}` is not a DNS-1123 label: it must have 1 to 63 characters", printable(name)));
    }
    let ok = name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a DNS-1123 label: lowercase letters, digits and `-`, starting and ending with a letter or digit",
            printable(name)
        ))
    }
}

/// A Kubernetes DNS-1123 subdomain: at most 253 characters, dot-separated labels (most object
/// names: ConfigMaps, Deployments, ServiceAccounts, custom resources).
pub fn dns1123_subdomain(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 253 {
        return Err(format!("`{}` is not a DNS-1123 subdomain: it must have 1 to 253 characters", printable(name)));
    }
    if name.split('.').all(|label| dns1123_label(label).is_ok()) {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a DNS-1123 subdomain: lowercase letters, digits, `-` and `.`, each part starting and \
             ending with a letter or digit",
            printable(name)
        ))
    }
}

/// A name that goes into an API path as one segment, as the API server accepts names in paths
/// (k8s.io/apimachinery api/validation/path `IsValidPathSegmentName`: not `.` or `..`, no `/`
/// or `%`), printable and at most 253 characters. kube-rs puts a name into the URL as written,
/// so `../..` would address another resource.
pub fn api_path_segment(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name != "."
        && name != ".."
        && !name.contains(['/', '%'])
        && name.chars().all(|c| !c.is_control() && !c.is_whitespace());
    if ok {
        Ok(())
    } else {
        Err(format!("`{}` cannot name an object in an API path (no `/`, `%`, `.` or `..`)", printable(name)))
    }
}

/// A label key as Kubernetes accepts it: an optional DNS-1123 subdomain prefix and `/`, then a
/// name of at most 63 characters of `[A-Za-z0-9._-]` starting and ending alphanumeric
/// (k8s.io/apimachinery `validation.IsQualifiedName`). Keys and values taken from the API become
/// label selectors: a `,` or `=` in them would change what the selector selects.
pub fn label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if prefix.is_some_and(|p| dns1123_subdomain(p).is_err()) || label_value(name).is_err() || name.is_empty() {
        return Err(format!("`{}` is not a Kubernetes label key", printable(key)));
    }
    Ok(())
}

/// A label value: empty, or at most 63 characters of `[A-Za-z0-9._-]` starting and ending with an
/// alphanumeric (k8s.io/apimachinery `validation.IsValidLabelValue`).
pub fn label_value(value: &str) -> Result<(), String> {
    let ok = value.is_empty()
        || (value.len() <= 63
            && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            && value.as_bytes().first().is_some_and(u8::is_ascii_alphanumeric)
            && value.as_bytes().last().is_some_and(u8::is_ascii_alphanumeric));
    if ok { Ok(()) } else { Err(format!("`{}` is not a Kubernetes label value", printable(value))) }
}

/// One path segment made of `[A-Za-z0-9._+-]`, not starting with `.` (so neither `.`, `..` nor a
/// hidden file), at most [`MAX_SEGMENT`] bytes: versions (`v0.32.0`, `edge-26.8.3`), file names.
pub fn file_segment(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_SEGMENT
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` cannot name a file: use letters, digits, `.`, `_`, `-` and `+` (at most {MAX_SEGMENT}, not starting with `.`)",
            printable(name)
        ))
    }
}

/// `root/rel` where `rel` is `/`-separated segments each accepted by [`file_segment`]: the
/// result can only be under `root`.
pub fn join_under(root: &Path, rel: &str) -> Result<PathBuf, String> {
    let mut path = root.to_path_buf();
    for segment in rel.split('/') {
        file_segment(segment).map_err(|e| format!("path `{}` leaves its directory: {e}", printable(rel)))?;
        path.push(segment);
    }
    Ok(path)
}

/// An `https://` URL with a host: downloads and chart repositories never use plain HTTP.
pub fn https_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| format!("`{}` is not an https:// URL; downloads use TLS only", printable(url)))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let ok = !host.is_empty() && !host.contains('@') && url.bytes().all(|b| b.is_ascii_graphic());
    if ok { Ok(()) } else { Err(format!("`{}` is not a plain https://host/path URL", printable(url))) }
}

/// Whether `path` may be read or replaced as a file of its own: it exists as a regular file
/// and is not a link (`Ok(true)`), does not exist (`Ok(false)`), or is something else (a link,
/// directory, FIFO, socket or device: the error says which). Links are never followed: a link
/// placed in a project could point anywhere, `~/.ssh` included.
pub fn regular_or_absent(path: &Path) -> std::io::Result<bool> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(std::io::Error::other(
            "a symbolic link: links are never followed here (replace it with the file itself)",
        )),
        Ok(meta) if meta.is_file() => Ok(true),
        Ok(meta) if meta.is_dir() => Err(std::io::Error::other("a directory, not a file")),
        Ok(_) => Err(std::io::Error::other("not a regular file (FIFOs, sockets and devices are never opened)")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Open `path` for reading only as a regular file, never through a link: checked before the
/// open, and the open itself refuses a link (`O_NOFOLLOW`) and cannot block on a FIFO
/// (`O_NONBLOCK`), and what was opened is checked again.
pub fn open_regular(path: &Path) -> std::io::Result<std::fs::File> {
    use rustix::fs::{Mode, OFlags};
    if !regular_or_absent(path)? {
        return Err(std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"));
    }
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let fd = rustix::fs::open(path, flags, Mode::empty()).map_err(|e| {
        if e == rustix::io::Errno::LOOP {
            std::io::Error::other("a symbolic link: links are never followed here")
        } else {
            std::io::Error::from(e)
        }
    })?;
    let file = std::fs::File::from(fd);
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file (FIFOs, sockets and devices are never read)"));
    }
    Ok(file)
}

/// At most `max` bytes of the regular file `path` ([`open_regular`]); a larger file is an error,
/// found without reading more than `max + 1` bytes.
pub fn read_regular(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    open_regular(path)?.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than the {} KiB limit for this file", max / 1024),
        ));
    }
    Ok(bytes)
}

/// [`read_regular`] as UTF-8 text.
pub fn read_regular_text(path: &Path, max: u64) -> std::io::Result<String> {
    String::from_utf8(read_regular(path, max)?)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// Write `bytes` as the regular file `path`: refused when `path` is a link or anything but a
/// regular file; written into a new file beside it and renamed over it, so a link put in its
/// place meanwhile is replaced, never written through.
pub fn write_regular(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    regular_or_absent(path)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut file = tempfile::Builder::new().prefix(".write-").suffix(".tmp").tempfile_in(dir)?;
    file.write_all(bytes)?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The digits of run ids.
const BASE36: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// `n` random characters of `[0-9a-z]` from the operating system's CSPRNG (ring's SystemRandom).
pub fn random_base36(n: usize) -> String {
    use ring::rand::SecureRandom;
    let random = ring::rand::SystemRandom::new();
    let mut out = String::with_capacity(n);
    while out.len() < n {
        let mut bytes = [0u8; 32];
        // The OS generator does not fail on supported platforms. Should it, std's per-process
        // random hasher keys (also OS-seeded) stand in rather than a fixed value.
        if random.fill(&mut bytes).is_err() {
            use std::hash::{BuildHasher, Hasher};
            for chunk in bytes.chunks_mut(8) {
                let mut h = std::collections::hash_map::RandomState::new().build_hasher();
                h.write_u128(
                    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos(),
                );
                chunk.copy_from_slice(&h.finish().to_le_bytes()[..chunk.len()]);
            }
        }
        // 252 = 7 * 36: rejecting larger bytes keeps every character equally likely.
        for b in bytes.into_iter().filter(|b| *b < 252).take(n - out.len()) {
            out.push(char::from(BASE36[usize::from(b % 36)]));
        }
    }
    out
}

/// A new run id: `r`, six base-36 digits of the time (sortable for 69 years) and six random
/// ones (36^6 = 2.2e9 ids per second), a valid DNS label part for cluster and namespace names.
pub fn new_run_id() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let mut seconds = now.as_secs() % 36u64.pow(6);
    let mut time = [b'0'; 6];
    for digit in time.iter_mut().rev() {
        *digit = BASE36[(seconds % 36) as usize];
        seconds /= 36;
    }
    format!("r{}{}", String::from_utf8_lossy(&time), random_base36(6))
}

/// `text` with control characters escaped, for messages that quote input.
pub fn printable(text: &str) -> String {
    crate::diagnostic::escape_controls(text)
}

/// `echo-v1-6d8f9c7b5-x2x9q` -> `echo-v1-[hash]`: ReplicaSet and pod suffixes change every rollout.
pub fn pod_name(pod: &str) -> String {
    let parts: Vec<&str> = pod.split('-').collect();
    let is_suffix = |s: &str, min: usize, max: usize| {
        (min..=max).contains(&s.len()) && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    };
    match parts.as_slice() {
        [head @ .., rs, pod] if !head.is_empty() && is_suffix(rs, 6, 10) && is_suffix(pod, 5, 5) => {
            format!("{}-[hash]", head.join("-"))
        }
        [head @ .., pod] if !head.is_empty() && is_suffix(pod, 5, 5) => format!("{}-[hash]", head.join("-")),
        _ => pod.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_subdomains() {
        for good in ["kong", "a", "kong-gateway", "x1"] {
            assert_eq!(dns1123_label(good), Ok(()), "{good}");
        }
        for bad in ["", "-a", "a-", "Kong", "a.b", "../x", "a_b", &"a".repeat(64)] {
            assert!(dns1123_label(bad).is_err(), "{bad}");
        }
        assert_eq!(dns1123_subdomain("echo.v1"), Ok(()));
        for bad in ["../victim", "a..b", ".a", "a/b", "A"] {
            assert!(dns1123_subdomain(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn segments_and_joins_cannot_leave_their_root() {
        for good in ["v0.32.0", "edge-26.8.3", "gateway.networking.k8s.io_gateways.yaml", "v1.2.3+k3s1"] {
            assert_eq!(file_segment(good), Ok(()), "{good}");
        }
        for bad in ["", ".", "..", ".hidden", "a/b", "a\\b", "v1/../../x", "a\0b", "é"] {
            assert!(file_segment(bad).is_err(), "{bad:?}");
        }
        let root = Path::new("/r");
        assert_eq!(join_under(root, "kong/plugins.yaml").unwrap(), Path::new("/r/kong/plugins.yaml"));
        for bad in ["../x", "a/../../x", "/etc/passwd", "a//b", "a/./b", ""] {
            let err = join_under(root, bad).unwrap_err();
            assert!(err.contains("leaves its directory"), "{bad}: {err}");
        }
    }

    #[test]
    fn run_ids_are_dns_label_parts_and_do_not_repeat() {
        // 200 ids in one second: a collision of 6 random base-36 digits has odds below 1e-5.
        let ids: std::collections::BTreeSet<String> = (0..200).map(|_| new_run_id()).collect();
        assert_eq!(ids.len(), 200, "ids made in the same second are distinct");
        for id in &ids {
            assert_eq!(id.len(), 13, "{id}");
            assert_eq!(dns1123_label(id), Ok(()));
        }
        let a = new_run_id();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert!(new_run_id()[..7] > a[..7], "later runs sort after earlier ones");
    }

    /// Links, FIFOs and directories are neither read nor written through; a regular file is
    /// read within its bound and replaced by rename.
    #[test]
    fn files_are_read_and_written_only_as_regular_files() {
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("id_ed25519");
        std::fs::write(&victim, "PRIVATE").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let err = read_regular(&link, 1024).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        let err = write_regular(&link, b"over").unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "PRIVATE", "the link's target is untouched");
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        assert!(read_regular(&fifo, 1024).unwrap_err().to_string().contains("not a regular file"));
        assert!(write_regular(&fifo, b"x").is_err());
        assert!(read_regular(dir.path(), 1024).is_err());
        let file = dir.path().join("file");
        write_regular(&file, b"one").unwrap();
        write_regular(&file, b"two").unwrap();
        assert_eq!(read_regular(&file, 3).unwrap(), b"two");
        assert!(read_regular(&file, 2).unwrap_err().to_string().contains("limit"));
        assert_eq!(read_regular(&dir.path().join("none"), 9).unwrap_err().kind(), std::io::ErrorKind::NotFound);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left.len(), 3, "no temporary file left behind: {left:?}");
    }

    #[test]
    fn only_https_urls() {
        assert_eq!(https_url("https://get.helm.sh/helm-{version}-{os}-{arch}.tar.gz"), Ok(()));
        for bad in [
            "http://evil.test/kind",
            "file:///bin/sh",
            "https://",
            "https://user@evil.test/x",
            "ftp://x",
            "https://a b",
        ] {
            assert!(https_url(bad).is_err(), "{bad}");
        }
    }
}
