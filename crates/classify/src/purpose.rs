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
    OsUpdate => "os-update": "Checking for or downloading operating-system updates.",
    FilterUpdate => "filter-update": "Updating built-in content or tracker filters.",
    Location => "location": "Network location services (Wi-Fi/cell based positioning).",
    GnssAssistance => "gnss-assistance": "Satellite assistance data for a faster GPS fix (XTRA, SUPL).",
    ConnectivityCheck => "connectivity-check": "Probing whether the network reaches the internet (captive portals).",
    TimeSync => "time-sync": "Setting the clock (NTP, time servers).",
    DeviceRegistration => "device-registration": "Registering the device with a vendor account or service.",
    KeyAttestation => "key-attestation": "Key attestation and remote key provisioning.",
    Push => "push": "Push-notification channels.",
    AppStore => "app-store": "App repositories, store catalogs and app updates.",
    GoogleServices => "google-services": "Other Google services an Android phone uses.",
    Dns => "dns": "Plain DNS lookups.",
    EncryptedDns => "encrypted-dns": "DNS over TLS, QUIC or HTTPS: lookups the monitor cannot see.",
    LocalNetwork => "local-network": "The hotspot itself and the local network (DHCP, mDNS).",
    Tracking => "tracking": "Trackers, from an imported list.",
    Advertising => "advertising": "Advertising, from an imported list.",
    Analytics => "analytics": "Analytics and telemetry, from an imported list.",
    Malware => "malware": "Known-bad destinations, from an imported list.",
    Unknown => "unknown": "No rule matched.",
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
