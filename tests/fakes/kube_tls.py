"""ClusterPki: a kubeadm-like CA, API server and kubernetes-admin certificates, and admin.conf.

The API server certificate names what kubeadm's does (kubernetes, kubernetes.default…, 10.96.0.1, the
node's IP) and, unless told otherwise, not 127.0.0.1: reaching it through a local tunnel then needs
tls-server-name, exactly as against a real cluster.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import ssl
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SERVER_DNS = (
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


class ClusterPki:
    def __init__(self, directory: Path, *, node_ip: str = "10.168.0.2", loopback_san: bool = True) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.dir = directory
        now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
        later = now + dt.timedelta(days=1)
        self.ca_key = _key()
        ca_name = _name("kubernetes")
        self.ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(self.ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(later)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.ca_key, hashes.SHA256())
        )
        ips = [ipaddress.ip_address("10.96.0.1"), ipaddress.ip_address(node_ip)]
        if loopback_san:
            ips.append(ipaddress.ip_address("127.0.0.1"))
        sans: list[x509.GeneralName] = [x509.DNSName(d) for d in (*SERVER_DNS, "node-0")]
        sans += [x509.IPAddress(ip) for ip in ips]
        self.server_key = _key()
        self.server = self._issue(_name("kube-apiserver"), self.server_key, now, later, sans)
        self.client_key = _key()
        self.client = self._issue(
            _name("kubernetes-admin", "kubeadm:cluster-admins"), self.client_key, now, later
        )
        self.ca_path = self._write("ca.crt", self.ca.public_bytes(serialization.Encoding.PEM))
        self.server_cert_path = self._write(
            "apiserver.crt", self.server.public_bytes(serialization.Encoding.PEM)
        )
        self.server_key_path = self._write("apiserver.key", _pem_key(self.server_key))

    def _issue(
        self,
        subject: x509.Name,
        key: ec.EllipticCurvePrivateKey,
        start: dt.datetime,
        end: dt.datetime,
        sans: list[x509.GeneralName] | None = None,
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return builder.sign(self.ca_key, hashes.SHA256())

    def _write(self, name: str, data: bytes) -> Path:
        path = self.dir / name
        path.write_bytes(data)
        path.chmod(0o600)
        return path

    def server_context(self) -> ssl.SSLContext:
        """The API server's side: its certificate, and client certificates required (signed by the CA)."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.server_cert_path, self.server_key_path)
        ctx.load_verify_locations(self.ca_path)
        ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx

    def admin_conf(self, server: str) -> dict[str, Any]:
        """An admin.conf as `kubeadm init` writes it, pointing at `server`."""

        def b64(data: bytes) -> str:
            return base64.b64encode(data).decode()

        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "kubernetes",
                    "cluster": {
                        "certificate-authority-data": b64(self.ca.public_bytes(serialization.Encoding.PEM)),
                        "server": server,
                    },
                }
            ],
            "contexts": [
                {
                    "name": "kubernetes-admin@kubernetes",
                    "context": {"cluster": "kubernetes", "user": "kubernetes-admin"},
                }
            ],
            "current-context": "kubernetes-admin@kubernetes",
            "preferences": {},
            "users": [
                {
                    "name": "kubernetes-admin",
                    "user": {
                        "client-certificate-data": b64(self.client.public_bytes(serialization.Encoding.PEM)),
                        "client-key-data": b64(_pem_key(self.client_key)),
                    },
                }
            ],
        }

    def admin_conf_text(self, server: str) -> str:
        return yaml.safe_dump(self.admin_conf(server), sort_keys=False)
