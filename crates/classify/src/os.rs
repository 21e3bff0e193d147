//! A device's operating system from the shape of its DHCP requests.
//!
//! Only shapes a public source documents are read, each rule citing it;
//! any other shape is unknown, never guessed. The vendor class (option
//! 60) is what the rules read: it is a string the client software writes
//! on purpose to say what it is. The parameter request list (option 55)
//! is shown beside the result but decides nothing here.

/// A family of operating systems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OsFamily {
    /// Android (AOSP's DHCP client).
    Android,
    /// Microsoft Windows.
    Windows,
    /// Linux, by dhcpcd's vendor class.
    Linux,
    /// FreeBSD, by dhcpcd's vendor class.
    FreeBsd,
    /// NetBSD, by dhcpcd's vendor class.
    NetBsd,
    /// OpenBSD, by dhcpcd's vendor class.
    OpenBsd,
    /// DragonFly BSD, by dhcpcd's vendor class.
    DragonFly,
}

impl OsFamily {
    /// The family's name as shown.
    pub fn name(self) -> &'static str {
        match self {
            OsFamily::Android => "Android",
            OsFamily::Windows => "Windows",
            OsFamily::Linux => "Linux",
            OsFamily::FreeBsd => "FreeBSD",
            OsFamily::NetBsd => "NetBSD",
            OsFamily::OpenBsd => "OpenBSD",
            OsFamily::DragonFly => "DragonFly",
        }
    }
}

/// An operating system: its family and, where the source says it, its
/// version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Os {
    /// The family.
    pub family: OsFamily,
    /// The version (the Android release, the kernel release), if given.
    pub version: Option<String>,
}

impl Os {
    /// `Android 14`, or the family alone when the version is unknown.
    pub fn label(&self) -> String {
        match &self.version {
            Some(v) => format!("{} {v}", self.family.name()),
            None => self.family.name().to_owned(),
        }
    }
}

/// Longest version kept.
const MAX_VERSION: usize = 32;

/// `text` as a version when it is one: at most [`MAX_VERSION`] characters,
/// starting with a digit, of digits, letters, `.`, `-`, `_` and `+`.
fn version(text: &str) -> Option<String> {
    let ok = !text.is_empty()
        && text.len() <= MAX_VERSION
        && text.starts_with(|c: char| c.is_ascii_digit())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+'));
    ok.then(|| text.to_owned())
}

/// The operating system a DHCP vendor class (option 60) names, if it is
/// a shape a public source documents.
pub fn os_from_vendor_class(vendor_class: &str) -> Option<Os> {
    // AOSP's DHCP client (NetworkStack, `DhcpPacket.java`) sends
    // "android-dhcp-" + Build.VERSION.RELEASE, the Android release
    // ("android-dhcp-14").
    if let Some(release) = vendor_class.strip_prefix("android-dhcp-") {
        return Some(Os {
            family: OsFamily::Android,
            version: version(release),
        });
    }
    // Microsoft's DHCP client: "MSFT 5.0" for Windows 2000 and later
    // ([MS-DHCPE], Microsoft's DHCP extensions, "Vendor Class Option").
    // The "5.0" is the client's, not the Windows version.
    if vendor_class == "MSFT 5.0" {
        return Some(Os {
            family: OsFamily::Windows,
            version: None,
        });
    }
    // dhcpcd's default vendor class, dhcpcd.conf(5) `vendorclassid`:
    // "dhcpcd-<version>:<os>-<os release>:<machine>:<platform>", the os
    // and release being uname's sysname and release
    // ("dhcpcd-5.5.6:NetBSD-6.99.5:i386:i386").
    if let Some(rest) = vendor_class.strip_prefix("dhcpcd-") {
        let mut parts = rest.split(':');
        let (_dhcpcd_version, system) = (parts.next()?, parts.next()?);
        let (sysname, release) = system.split_once('-').unwrap_or((system, ""));
        let family = match sysname {
            "Linux" => OsFamily::Linux,
            "FreeBSD" => OsFamily::FreeBsd,
            "NetBSD" => OsFamily::NetBsd,
            "OpenBSD" => OsFamily::OpenBsd,
            "DragonFly" => OsFamily::DragonFly,
            _ => return None,
        };
        return Some(Os {
            family,
            version: version(release),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(vc: &str) -> Option<String> {
        os_from_vendor_class(vc).map(|o| o.label())
    }

    #[test]
    fn documented_shapes_name_their_system() {
        assert_eq!(label("android-dhcp-14").as_deref(), Some("Android 14"));
        assert_eq!(
            label("android-dhcp-8.1.0").as_deref(),
            Some("Android 8.1.0")
        );
        assert_eq!(label("MSFT 5.0").as_deref(), Some("Windows"));
        assert_eq!(
            label("dhcpcd-9.4.1:Linux-6.1.0-13-amd64:x86_64:GenuineIntel").as_deref(),
            Some("Linux 6.1.0-13-amd64")
        );
        assert_eq!(
            label("dhcpcd-5.5.6:NetBSD-6.99.5:i386:i386").as_deref(),
            Some("NetBSD 6.99.5")
        );
    }

    #[test]
    fn other_shapes_are_unknown_and_odd_versions_dropped() {
        for vc in [
            "",
            "udhcp 1.36.1",
            "MSFT 5.0 extra",
            "dhcpcd-5.5.6",
            "dhcpcd-10.0.1:Plan9-4:386:386",
            "Android-dhcp-14",
        ] {
            assert_eq!(label(vc), None, "{vc:?}");
        }
        // The family is known, the version is not shown as it came.
        assert_eq!(label("android-dhcp-<script>").as_deref(), Some("Android"));
        assert_eq!(
            label(&format!("android-dhcp-{}", "1".repeat(40))).as_deref(),
            Some("Android")
        );
        assert_eq!(label("android-dhcp-").as_deref(), Some("Android"));
    }
}
