//! The fixed vocabulary of purposes.

use std::fmt;
use std::str::FromStr;

macro_rules! purposes {
    ($($variant:ident => $name:literal: $doc:literal,)*) => {
        /// Why a device talks to a destination. A fixed, documented
        /// vocabulary: catalogs and lists may only use these names.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Purpose {
            $(#[doc = $doc] $variant,)*
        }

        impl Purpose {
            /// Every purpose, in documentation order.
            pub const ALL: &'static [Purpose] = &[$(Purpose::$variant,)*];

            /// The label value.
            pub fn as_str(self) -> &'static str {
                match self { $(Purpose::$variant => $name,)* }
            }

            /// One line saying what the purpose means.
            pub fn description(self) -> &'static str {
                match self { $(Purpose::$variant => $doc,)* }
            }
        }

        impl FromStr for Purpose {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($name => Ok(Purpose::$variant),)*
                    _ => Err(format!(
                        "unknown purpose {s:?} (known: {})",
                        [$($name),*].join(", ")
                    )),
                }
            }
        }
    };
}

purposes! {
    OsUpdate => "os-update": "Checking for or downloading operating-system and firmware updates.",
    FilterUpdate => "filter-update": "Updating built-in content or tracker filters.",
    Location => "location": "Network location services (Wi-Fi/cell based positioning).",
    GnssAssistance => "gnss-assistance": "Satellite assistance data for a faster GPS fix (XTRA, LTO, SUPL).",
    ConnectivityCheck => "connectivity-check": "Probing whether the network reaches the internet (captive portals).",
    TimeSync => "time-sync": "Setting the clock (NTP, time servers).",
    DeviceRegistration => "device-registration": "Registering the device with a vendor account or service.",
    KeyAttestation => "key-attestation": "Key attestation and remote key provisioning.",
    CertificateCheck => "certificate-check": "Certificate revocation and status checks (CRL, OCSP).",
    Account => "account": "Signing in to a vendor or app account.",
    CloudSync => "cloud-sync": "Cloud sync and backup of the phone's data (contacts, photos, settings).",
    DeviceManagement => "device-management": "Remote configuration and management of the phone by its vendor or an employer.",
    Telemetry => "telemetry": "Usage, diagnostic, event and crash data the system, its vendor's apps or an app's SDK send home.",
    Analytics => "analytics": "App analytics and install attribution (SDKs in apps, or an imported list).",
    Advertising => "advertising": "Ad serving, ad configuration and ad measurement (or an imported list).",
    Tracking => "tracking": "Trackers, from an imported list.",
    SecurityScan => "security-scan": "Virus and app security scanning.",
    CallerId => "caller-id": "Identifying and blocking callers and spam numbers.",
    Push => "push": "Push-notification channels.",
    AppStore => "app-store": "App repositories, store catalogs and app updates.",
    AppContent => "app-content": "Content and configuration a system or SDK app loads (themes, feeds, remote config, media).",
    VendorServices => "vendor-services": "Other services of the phone's maker that no source explains further.",
    GoogleServices => "google-services": "Other Google services an Android phone uses (the last resort for Google hosts).",
    Dns => "dns": "Plain DNS lookups.",
    EncryptedDns => "encrypted-dns": "DNS over TLS, QUIC or HTTPS: lookups the monitor cannot see.",
    LocalNetwork => "local-network": "The hotspot itself and the local network (DHCP, mDNS).",
    Malware => "malware": "Known-bad destinations, from an imported list.",
    Unknown => "unknown": "No rule or list matched.",
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for p in Purpose::ALL {
            assert_eq!(p.as_str().parse::<Purpose>().unwrap(), *p);
        }
        assert!("shopping"
            .parse::<Purpose>()
            .unwrap_err()
            .contains("gnss-assistance"));
    }
}
