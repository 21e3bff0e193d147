#!/usr/bin/env python3
"""Independent JA4 fingerprints for the oracle test (tests/ja4_oracle.rs).

Reads each capture named on the command line with the `ja4plus` package (an
independent implementation of the JA4 specification, installed pinned by
`scripts/setup.sh --test` into its own virtual environment) and prints one
JSON line per ClientHello it fingerprints:

    {"pcap": ..., "ja4": ..., "src": ..., "sport": ..., "dst": ..., "dport": ...,
     "grease": bool, "ech": bool, "reassembled": bool}

`grease`/`ech` say whether the hello offered GREASE values or an
encrypted_client_hello extension; `reassembled` whether it spanned several
TCP segments or QUIC packets. A capture the package cannot read prints one
line with an "error" key instead.
"""

import json
import os
import sys

from scapy.utils import PcapReader

from ja4plus.fingerprinters import ja4 as ja4_module
from ja4plus.utils import quic_utils, tls_utils
from ja4plus.utils.tls_utils import is_grease_value

ECH = 0xFE0D

# The package computes the fingerprint from a dict of ClientHello fields; the
# wrapper notes what kind of hello each fingerprint came from.
_last = {}
_generate = ja4_module.generate_ja4


def _noting_generate(tls_info, original_order=False):
    if not original_order and tls_info:
        values = list(tls_info.get("ciphers", [])) + list(tls_info.get("extensions", []))
        _last["grease"] = any(is_grease_value(v) for v in values)
        _last["ech"] = ECH in tls_info.get("extensions", [])
    return _generate(tls_info, original_order)


ja4_module.generate_ja4 = _noting_generate


# The package derives QUIC Initial keys with the version 1 or 2 salt only. The
# IETF drafts before version 1 differ from it only by their salt (draft-ietf-
# quic-tls-23 §5.2, -29 §5.2; Facebook's mvfst versions use draft-23's), so
# the package reads draft captures too once it is handed the right salt.
DRAFT_23_SALT = bytes.fromhex("c3eef712c72ebb5a11a7d2432bb46365bef9f502")
DRAFT_29_SALT = bytes.fromhex("afbfec289993d24c9e9786f19c6111e04390a899")
_version = [1]


def _draft_salt(version):
    if version in (0xFACEB002, 0xFACEB00E):
        return DRAFT_23_SALT
    if version & 0x0F0F0F0F == 0x0A0A0A0A:
        # A reserved version that forces version negotiation (RFC 9000
        # §15); clients that send one (quic-go) protect it as draft-29.
        return DRAFT_29_SALT
    if version >> 8 == 0xFF0000:
        draft = version & 0xFF
        if 23 <= draft <= 28:
            return DRAFT_23_SALT
        if 29 <= draft <= 32:
            return DRAFT_29_SALT
    return None


_derive = quic_utils.derive_initial_secrets


def _derive_for_version(dcid, version=1):
    salt = _draft_salt(_version[0])
    if salt is None:
        return _derive(dcid, version)
    v1_salt = quic_utils.QUIC_V1_SALT
    quic_utils.QUIC_V1_SALT = salt
    try:
        return _derive(dcid, 1)
    finally:
        quic_utils.QUIC_V1_SALT = v1_salt


def _noting_version(read):
    def wrapper(udp_payload, *args, **kwargs):
        if len(udp_payload) >= 5:
            _version[0] = int.from_bytes(udp_payload[1:5], "big")
        return read(udp_payload, *args, **kwargs)
    return wrapper


quic_utils.derive_initial_secrets = _derive_for_version
quic_utils.decrypt_quic_initial_crypto = _noting_version(quic_utils.decrypt_quic_initial_crypto)
tls_utils.parse_quic_initial = _noting_version(quic_utils.parse_quic_initial)


class NotingFingerprinter(ja4_module.JA4Fingerprinter):
    """Marks hellos completed by the multi-segment or multi-packet paths."""

    def _try_quic_multi_packet(self, packet):
        info = super()._try_quic_multi_packet(packet)
        if info:
            _last["reassembled"] = True
        return info

    def _try_tcp_segments(self, packet):
        info = super()._try_tcp_segments(packet)
        if info:
            _last["reassembled"] = True
        return info


def main(paths):
    for path in paths:
        name = os.path.basename(path)
        fp = NotingFingerprinter(thread_safe=False)
        try:
            with PcapReader(path) as reader:
                for packet in reader:
                    _last.clear()
                    seen = len(fp.fingerprints)
                    try:
                        fp.process_packet(packet)
                    except Exception as e:  # a packet the package cannot read
                        print(f"{name}: packet skipped: {e}", file=sys.stderr)
                        continue
                    for entry in fp.fingerprints[seen:]:
                        print(json.dumps({
                            "pcap": name,
                            "ja4": entry["fingerprint"],
                            "src": entry.get("src"),
                            "sport": entry.get("srcport"),
                            "dst": entry.get("dst"),
                            "dport": entry.get("dstport"),
                            "grease": _last.get("grease", False),
                            "ech": _last.get("ech", False),
                            "reassembled": _last.get("reassembled", False),
                        }))
        except Exception as e:  # a capture format the package cannot read
            print(json.dumps({"pcap": name, "error": str(e)}))


if __name__ == "__main__":
    main(sys.argv[1:])
