//! The page's login address: the only way to triage from a browser.
//!
//! The token that allows triage is a secret of whoever runs the monitor:
//! it lives in the token file next to the store (readable by that user
//! only) and in the address `run` prints at start. `tetherscope open`
//! reads the file, as a user allowed to, and prints the address; opening
//! it sets the page's session cookie.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tetherscope_exporter::Shared;

use crate::cli::OpenArgs;
use crate::UsageError;

/// Where the packaged service keeps its store (`StateDirectory=tetherscope`).
const SERVICE_STORE: &str = "/var/lib/tetherscope/state.db";

/// `http://HOST:PORT/login?token=T` for a monitor listening on `listen`.
pub fn login_url(listen: SocketAddr, token: &str) -> String {
    // A wildcard address is not one a browser can open; loopback reaches it.
    let host = match listen.ip() {
        IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!(
        "http://{}/login?token={token}",
        SocketAddr::new(host, listen.port())
    )
}

/// Tells the owner how to get triage access, once the monitor serves. Under
/// systemd (`INVOCATION_ID` set) stderr goes to the journal, which other
/// users may read: the address is not printed there, only how to get it.
pub fn announce(listen: SocketAddr, shared: &Shared) {
    let Some(token) = shared.triage_token() else {
        return;
    };
    if std::env::var_os("INVOCATION_ID").is_some() {
        eprintln!(
            "tetherscope: to accept or flag destinations on the page, open the address `sudo tetherscope open` prints"
        );
    } else {
        eprintln!(
            "tetherscope: to accept or flag destinations, open {} (keep it to yourself: it allows triage)",
            login_url(listen, token)
        );
    }
}

/// `tetherscope open`: prints the login address of the monitor whose store
/// is `--state` (or the default ones), and opens it with `--browser`.
pub fn run(args: &OpenArgs) -> anyhow::Result<ExitCode> {
    let token_file = token_file(args.state.as_deref())?;
    let token = read_token(&token_file)?;
    let url = login_url(args.listen, &token);
    println!("{url}");
    if args.browser {
        // Never the address itself on xdg-open's command line: command lines
        // are readable by every local user (/proc/PID/cmdline), and a browser
        // started by it keeps its own for its whole life. The browser opens a
        // file only this user can read that sends it on to the address.
        let page = redirect_page(&url)?;
        let status = std::process::Command::new("xdg-open")
            .arg(&page)
            .status()
            .map_err(|e| UsageError(format!("cannot run xdg-open: {e}")))?;
        if !status.success() {
            return Err(UsageError(format!("xdg-open failed ({status})")).into());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `$XDG_RUNTIME_DIR/tetherscope-open.html` (a directory only this
/// user may enter): see [`redirect_page_in`].
fn redirect_page(url: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|d| d.is_absolute())
        .ok_or_else(|| {
            UsageError(
                "--browser needs XDG_RUNTIME_DIR (a desktop session); copy the printed address instead"
                    .into(),
            )
        })?;
    redirect_page_in(&dir, url)
}

/// `dir/tetherscope-open.html`, mode 0600, created anew without following
/// links (whatever was at that name is removed, not written through): a
/// page that redirects to `url`.
fn redirect_page_in(dir: &Path, url: &str) -> anyhow::Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join("tetherscope-open.html");
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(UsageError(format!("{}: {e}", path.display())).into()),
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
    // The address is ours (digits, dots, colons, hex): nothing to escape.
    writeln!(
        file,
        "<!doctype html><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"0;url={url}\"><title>tetherscope</title><a href=\"{url}\">tetherscope</a>"
    )
    .map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
    Ok(path)
}

/// The token file of the store `state`, or of the first default store with
/// one: this user's (`run` without `--state`), then the service's.
fn token_file(state: Option<&Path>) -> anyhow::Result<PathBuf> {
    let beside = |store: &Path| store.parent().map(|dir| dir.join("token"));
    if let Some(store) = state {
        return beside(store)
            .ok_or_else(|| UsageError(format!("{}: not a store path", store.display())).into());
    }
    let candidates: Vec<PathBuf> = crate::state::default_path()
        .into_iter()
        .chain([PathBuf::from(SERVICE_STORE)])
        .filter_map(|s| beside(&s))
        .collect();
    // `exists` is false also for a file in a directory this user cannot
    // enter: such a one is named, so the error says to use sudo.
    candidates
        .iter()
        .find(|p| p.exists() || p.parent().is_some_and(|d| d.exists() && !can_enter(d)))
        .cloned()
        .ok_or_else(|| {
            let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
            UsageError(format!(
                "no token file ({}): is the monitor running? (give its store with --state)",
                tried.join(", ")
            ))
            .into()
        })
}

fn can_enter(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok()
}

/// The token in `path`: 64 hex digits, or one clear error.
fn read_token(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
            " (only the monitor's user may read it: try sudo)"
        } else if e.kind() == std::io::ErrorKind::NotFound {
            " (the monitor removes it when it stops: is it running?)"
        } else {
            ""
        };
        UsageError(format!("{}: {e}{hint}", path.display()))
    })?;
    let token = text.trim();
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(UsageError(format!("{}: not a tetherscope token", path.display())).into());
    }
    Ok(token.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_browser_page_is_the_owners_alone_and_never_written_through_a_link() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("ts-open-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let planted = dir.join("elsewhere");
        std::fs::write(&planted, "untouched").unwrap();
        std::os::unix::fs::symlink(&planted, dir.join("tetherscope-open.html")).unwrap();
        let url = login_url("127.0.0.1:9433".parse().unwrap(), &"ab".repeat(32));
        let page = redirect_page_in(&dir, &url).unwrap();
        let meta = std::fs::symlink_metadata(&page).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert!(std::fs::read_to_string(&page).unwrap().contains(&url));
        assert_eq!(std::fs::read_to_string(&planted).unwrap(), "untouched");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn login_url_names_an_address_a_browser_can_open() {
        let t = "ab".repeat(32);
        assert_eq!(
            login_url("127.0.0.1:9433".parse().unwrap(), &t),
            format!("http://127.0.0.1:9433/login?token={t}")
        );
        assert_eq!(
            login_url("0.0.0.0:80".parse().unwrap(), "x"),
            "http://127.0.0.1:80/login?token=x"
        );
        assert_eq!(
            login_url("[::]:9433".parse().unwrap(), "x"),
            "http://[::1]:9433/login?token=x"
        );
        assert_eq!(
            login_url("[2001:db8::1]:9433".parse().unwrap(), "x"),
            "http://[2001:db8::1]:9433/login?token=x"
        );
    }

    #[test]
    fn a_file_that_is_not_a_token_is_refused() {
        let dir = std::env::temp_dir().join(format!("tetherscope-open-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, format!("{}\n", "0f".repeat(32))).unwrap();
        assert_eq!(read_token(&path).unwrap(), "0f".repeat(32));
        std::fs::write(&path, "<script>").unwrap();
        assert!(read_token(&path).is_err());
        std::fs::remove_file(&path).unwrap();
        let missing = read_token(&path).unwrap_err().to_string();
        assert!(missing.contains("is it running"), "{missing}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
